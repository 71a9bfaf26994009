#!/usr/bin/env bash
# Fetch, start, wait for and stop the Keycloak server of the demo and the tests.
#
#   scripts/keycloak.sh fetch   download Keycloak (pinned) through Maven and unpack it once
#   scripts/keycloak.sh start   wipe its data, render and import the realms of deploy/keycloak, start it
#   scripts/keycloak.sh wait    block until the realm's discovery document returns 200
#   scripts/keycloak.sh stop    stop the server that `start` started
#   scripts/keycloak.sh status  print whether that server is running
#
# Environment (defaults are the demo ports of docs/design.md):
#   KEYCLOAK_PORT             HTTP port on 127.0.0.1                 (18080)
#   KEYCLOAK_MANAGEMENT_PORT  management port, serves /health        (19000)
#   SHOP_URL                  demo shop base URL, put into the realm (http://localhost:18400)
#   NEXTJS_URL                Next.js example base URL, put into the realm (http://localhost:18500)
#   COUNTERSIGN_URL           Countersign base URL, put into the realm (http://127.0.0.1:18300)
#   KEYCLOAK_HOME_DIR         unpacked server       (<repo>/.cache/keycloak-26.7.3)
#   KEYCLOAK_RUN_DIR          log, pid file, rendered realm (<repo>/.cache/keycloak-run)
#   KEYCLOAK_WAIT_SECONDS     timeout of `wait`, in seconds          (240)
#   KEYCLOAK_HEAP             JVM heap flags        (-Xms128m -Xmx768m)
#   KEYCLOAK_MODE             optimized (build once, then `start --optimized`) or dev (`start-dev`)
#
# One server runs per KEYCLOAK_HOME_DIR at a time, because its database lives in
# KEYCLOAK_HOME_DIR/data, which `start` wipes.
set -euo pipefail

readonly KEYCLOAK_VERSION="26.7.3"
readonly REALM="countersign-demo"

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_DIR

KEYCLOAK_PORT="${KEYCLOAK_PORT:-18080}"
KEYCLOAK_MANAGEMENT_PORT="${KEYCLOAK_MANAGEMENT_PORT:-19000}"
SHOP_URL="${SHOP_URL:-http://localhost:18400}"
NEXTJS_URL="${NEXTJS_URL:-http://localhost:18500}"
COUNTERSIGN_URL="${COUNTERSIGN_URL:-http://127.0.0.1:18300}"
KEYCLOAK_HOME_DIR="${KEYCLOAK_HOME_DIR:-$REPO_DIR/.cache/keycloak-$KEYCLOAK_VERSION}"
KEYCLOAK_RUN_DIR="${KEYCLOAK_RUN_DIR:-$REPO_DIR/.cache/keycloak-run}"
KEYCLOAK_WAIT_SECONDS="${KEYCLOAK_WAIT_SECONDS:-240}"
KEYCLOAK_HEAP="${KEYCLOAK_HEAP:--Xms128m -Xmx768m}"
KEYCLOAK_MODE="${KEYCLOAK_MODE:-optimized}"

readonly REALM_TEMPLATE_DIR="$REPO_DIR/deploy/keycloak"
readonly PID_FILE="$KEYCLOAK_RUN_DIR/keycloak.pid"
readonly LOG_FILE="$KEYCLOAK_RUN_DIR/keycloak.log"
# Build-time options of the optimized server. `fetch` builds with them once and
# records them in BUILD_STAMP, so a change here triggers a new build.
readonly BUILD_OPTIONS=(--db=dev-file --health-enabled=true)
readonly BUILD_STAMP="$KEYCLOAK_HOME_DIR/.countersign-build-options"

log() {
  printf 'keycloak: %s\n' "$*" >&2
}

die() {
  printf 'keycloak: error: %s\n' "$*" >&2
  exit 1
}

require_port() {
  local name="$1" value="$2"
  [[ "$value" =~ ^[0-9]+$ ]] && ((value > 0 && value < 65536)) ||
    die "$name must be a TCP port number, got '$value'"
}

# The URLs go into JSON strings and redirect URI patterns, so accept only a
# plain scheme://host[:port] without a trailing slash.
require_base_url() {
  local name="$1" value="$2"
  [[ "$value" =~ ^https?://[A-Za-z0-9.-]+(:[0-9]+)?$ ]] ||
    die "$name must look like http://host:port (no path, no trailing slash), got '$value'"
}

fetch() {
  local tarball_dir
  if [[ ! -x "$KEYCLOAK_HOME_DIR/bin/kc.sh" ]]; then
    command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven) to fetch Keycloak"
    tarball_dir="$(mktemp -d)"
    log "fetching keycloak-quarkus-dist $KEYCLOAK_VERSION through Maven"
    # Maven 3.8 prints colour resets even with -q and style.color=never, so
    # its output goes to a file and is shown only when the fetch fails.
    if ! mvn -B -q -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
      "-Dartifact=org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:tar.gz" \
      "-DoutputDirectory=$tarball_dir" >"$tarball_dir/maven.log" 2>&1; then
      cat "$tarball_dir/maven.log" >&2
      die "fetching keycloak-quarkus-dist $KEYCLOAK_VERSION through Maven failed (output above)"
    fi
    log "unpacking into $KEYCLOAK_HOME_DIR"
    mkdir -p "$KEYCLOAK_HOME_DIR.partial"
    tar -xzf "$tarball_dir/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz" \
      -C "$KEYCLOAK_HOME_DIR.partial" --strip-components=1
    rm -rf "$tarball_dir" "$KEYCLOAK_HOME_DIR"
    mv "$KEYCLOAK_HOME_DIR.partial" "$KEYCLOAK_HOME_DIR"
  fi

  if [[ "$KEYCLOAK_MODE" == optimized ]] &&
    [[ "$(cat "$BUILD_STAMP" 2>/dev/null)" != "${BUILD_OPTIONS[*]}" ]]; then
    log "building the optimized server (${BUILD_OPTIONS[*]}), once per install"
    JAVA_OPTS_KC_HEAP="$KEYCLOAK_HEAP" "$KEYCLOAK_HOME_DIR/bin/kc.sh" build "${BUILD_OPTIONS[@]}" \
      >"$KEYCLOAK_HOME_DIR/build.log" 2>&1 ||
      die "kc.sh build failed, see $KEYCLOAK_HOME_DIR/build.log"
    printf '%s\n' "${BUILD_OPTIONS[*]}" >"$BUILD_STAMP"
  fi
}

# Copy a realm template into the import folder with the run's URLs filled
# in. Keycloak rejects unknown fields, so the template's one-line "_comment"
# entries are dropped.
render_realm() {
  local template="$1" target="$2" realm_json
  realm_json="$(grep -v '^[[:space:]]*"_comment":' "$template")"
  realm_json="${realm_json//'${SHOP_URL}'/$SHOP_URL}"
  realm_json="${realm_json//'${NEXTJS_URL}'/$NEXTJS_URL}"
  realm_json="${realm_json//'${COUNTERSIGN_URL}'/$COUNTERSIGN_URL}"
  if [[ "$realm_json" == *'${'* ]]; then
    die "$template has a placeholder other than \${SHOP_URL}, \${NEXTJS_URL} and \${COUNTERSIGN_URL}"
  fi
  printf '%s\n' "$realm_json" >"$target"
}

running_pid() {
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null)" || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && printf '%s\n' "$pid"
}

start() {
  local pid mode_args template
  require_port KEYCLOAK_PORT "$KEYCLOAK_PORT"
  require_port KEYCLOAK_MANAGEMENT_PORT "$KEYCLOAK_MANAGEMENT_PORT"
  require_base_url SHOP_URL "$SHOP_URL"
  require_base_url NEXTJS_URL "$NEXTJS_URL"
  require_base_url COUNTERSIGN_URL "$COUNTERSIGN_URL"
  if pid="$(running_pid)"; then
    die "already running (pid $pid); run '$0 stop' first"
  fi
  fetch

  rm -rf "$KEYCLOAK_HOME_DIR/data"
  mkdir -p "$KEYCLOAK_HOME_DIR/data/import" "$KEYCLOAK_RUN_DIR"
  for template in "$REALM_TEMPLATE_DIR"/*-realm.json; do
    render_realm "$template" "$KEYCLOAK_HOME_DIR/data/import/$(basename "$template")"
  done

  case "$KEYCLOAK_MODE" in
    optimized)
      # Production mode over plain HTTP on the loopback address. Without a
      # pinned hostname the issuer follows the host of each request.
      mode_args=(start --optimized --http-enabled=true --hostname-strict=false)
      ;;
    dev)
      # start-dev re-augments the install for the dev profile, so the next
      # optimized start has to build again.
      rm -f "$BUILD_STAMP"
      mode_args=(start-dev "${BUILD_OPTIONS[@]}")
      ;;
    *)
      die "KEYCLOAK_MODE must be 'optimized' or 'dev', got '$KEYCLOAK_MODE'"
      ;;
  esac

  log "starting on http://127.0.0.1:$KEYCLOAK_PORT (management $KEYCLOAK_MANAGEMENT_PORT, $KEYCLOAK_MODE mode), log: $LOG_FILE"
  # setsid gives the server its own process group, so `stop` ends kc.sh and
  # the JVM it launches together.
  JAVA_OPTS_KC_HEAP="$KEYCLOAK_HEAP" setsid "$KEYCLOAK_HOME_DIR/bin/kc.sh" "${mode_args[@]}" \
    --import-realm \
    --http-host=127.0.0.1 \
    --http-port="$KEYCLOAK_PORT" \
    --http-management-port="$KEYCLOAK_MANAGEMENT_PORT" \
    --cache=local \
    </dev/null >"$LOG_FILE" 2>&1 &
  printf '%s\n' "$!" >"$PID_FILE"
}

wait_ready() {
  local url="http://127.0.0.1:$KEYCLOAK_PORT/realms/$REALM/.well-known/openid-configuration"
  local started=$SECONDS next_report=$((SECONDS + 10))
  log "waiting up to ${KEYCLOAK_WAIT_SECONDS}s for $url"
  until curl -fsS -o /dev/null --max-time 5 "$url" 2>/dev/null; do
    if ! running_pid >/dev/null; then
      tail -n 40 "$LOG_FILE" >&2 || true
      die "the server exited before the realm was ready, see $LOG_FILE"
    fi
    if ((SECONDS - started >= KEYCLOAK_WAIT_SECONDS)); then
      tail -n 40 "$LOG_FILE" >&2 || true
      die "timed out after ${KEYCLOAK_WAIT_SECONDS}s waiting for $url, see $LOG_FILE"
    fi
    if ((SECONDS >= next_report)); then
      log "still starting ($((SECONDS - started))s)"
      next_report=$((SECONDS + 10))
    fi
    sleep 1
  done
  log "realm $REALM ready after $((SECONDS - started))s"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  log "stopping pid $pid"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still running after 30s, sending SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
}

status() {
  local pid
  if pid="$(running_pid)"; then
    log "running (pid $pid)"
  else
    log "not running"
    return 1
  fi
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  wait) wait_ready ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 fetch|start|wait|stop|status" >&2
    exit 2
    ;;
esac
