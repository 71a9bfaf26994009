#!/usr/bin/env bash
# Run the demo on the ports of docs/design.md: Keycloak on 18080, Countersign
# on 18300 and the demo shop on 18400, all on 127.0.0.1. Stays in the
# foreground until Ctrl-C, then stops everything it started.
#
# The demo's state (Countersign's config and database, the logs) lives in
# .cache/demo and starts fresh on each run, like Keycloak's realm.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_DIR
readonly DEMO_DIR="$REPO_DIR/.cache/demo"

export KEYCLOAK_PORT=18080 KEYCLOAK_MANAGEMENT_PORT=19000
readonly COUNTERSIGN_PORT=18300 SHOP_PORT=18400
# Not exported: keycloak.sh gets them on its command line, and countersign
# would warn about an unknown COUNTERSIGN_* variable in its environment.
readonly COUNTERSIGN_URL="http://127.0.0.1:$COUNTERSIGN_PORT"
readonly SHOP_URL="http://localhost:$SHOP_PORT"
readonly KEYCLOAK_CLIENT_SECRET="demo-only-countersign-secret"
readonly SHOP_CLIENT_SECRET="demo-only-shop-secret"

KEYCLOAK_STARTED=false
CHILD_PIDS=()

log() {
  printf 'demo: %s\n' "$*" >&2
}

die() {
  printf 'demo: error: %s\n' "$*" >&2
  exit 1
}

cleanup() {
  local pid
  for pid in "${CHILD_PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${CHILD_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  CHILD_PIDS=()
  if [[ "$KEYCLOAK_STARTED" == true ]]; then
    "$REPO_DIR/scripts/keycloak.sh" stop || log "stopping Keycloak failed"
    KEYCLOAK_STARTED=false
  fi
}
trap cleanup EXIT
trap 'log "stopping"; exit 0' INT TERM

# Starts a command in its own process group with its output in a log file,
# and records its pid for cleanup.
start_background() {
  local log_file="$1"
  shift
  setsid "$@" </dev/null >"$log_file" 2>&1 &
  CHILD_PIDS+=("$!")
}

# Polls a URL until it returns a status below 500, or fails with the log's tail.
wait_for_http() {
  local name="$1" url="$2" pid="$3" log_file="$4" started=$SECONDS
  until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" || true)" =~ ^[1-4][0-9][0-9]$ ]]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$log_file" >&2 || true
      die "$name exited during startup, see $log_file"
    fi
    if ((SECONDS - started > 60)); then
      tail -n 30 "$log_file" >&2 || true
      die "timed out after 60s waiting for $url, see $log_file"
    fi
    sleep 0.5
  done
}

# Fails when something accepts TCP connections on the port (bash's /dev/tcp).
require_free_port() {
  local port="$1"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port on 127.0.0.1 is in use: stop what runs there first"
  fi
}

for port in "$KEYCLOAK_PORT" "$KEYCLOAK_MANAGEMENT_PORT" "$COUNTERSIGN_PORT" "$SHOP_PORT"; do
  require_free_port "$port"
done

"$REPO_DIR/scripts/setup.sh"
log "building the countersign and demo-shop binaries"
(cd "$REPO_DIR" && cargo build --workspace)
if [[ -f "$REPO_DIR/sdk/package.json" ]]; then
  log "building the SDK"
  (cd "$REPO_DIR/sdk" && npm run --silent build)
fi

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"

# A fresh API key per run. Countersign stores only its SHA-256.
api_key="cs_demo_$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
api_key_sha256="$(printf '%s' "$api_key" | sha256sum | cut -d' ' -f1)"
cat >"$DEMO_DIR/countersign.toml" <<TOML
[server]
listen = "127.0.0.1:$COUNTERSIGN_PORT"
public_url = "$COUNTERSIGN_URL"

[database]
path = "$DEMO_DIR/countersign.sqlite"

[oidc]
issuer = "http://127.0.0.1:$KEYCLOAK_PORT/realms/countersign-demo"
client_id = "countersign"

[approvals]
allowed_origins = ["$SHOP_URL"]

[[api_keys]]
name = "demo-shop"
sha256 = "$api_key_sha256"
TOML

env COUNTERSIGN_URL="$COUNTERSIGN_URL" SHOP_URL="$SHOP_URL" "$REPO_DIR/scripts/keycloak.sh" start
KEYCLOAK_STARTED=true
"$REPO_DIR/scripts/keycloak.sh" wait

log "starting Countersign on $COUNTERSIGN_URL, log: $DEMO_DIR/countersign.log"
start_background "$DEMO_DIR/countersign.log" \
  env COUNTERSIGN_OIDC_CLIENT_SECRET="$KEYCLOAK_CLIENT_SECRET" \
  "$REPO_DIR/target/debug/countersign" serve --config "$DEMO_DIR/countersign.toml"
countersign_pid="${CHILD_PIDS[-1]}"
wait_for_http countersign "$COUNTERSIGN_URL/healthz" "$countersign_pid" "$DEMO_DIR/countersign.log"

log "starting the demo shop on $SHOP_URL, log: $DEMO_DIR/demo-shop.log"
(
  cd "$REPO_DIR"
  export SHOP_LISTEN="127.0.0.1:$SHOP_PORT" SHOP_PUBLIC_URL="$SHOP_URL"
  export SHOP_OIDC_ISSUER="http://localhost:$KEYCLOAK_PORT/realms/countersign-demo"
  export SHOP_OIDC_CLIENT_ID="demo-shop" SHOP_OIDC_CLIENT_SECRET="$SHOP_CLIENT_SECRET"
  export SHOP_COUNTERSIGN_URL="$COUNTERSIGN_URL" SHOP_COUNTERSIGN_API_KEY="$api_key"
  export SHOP_SDK_PATH="$REPO_DIR/sdk/dist/countersign.js"
  exec setsid "$REPO_DIR/target/debug/demo-shop" </dev/null >"$DEMO_DIR/demo-shop.log" 2>&1
) &
CHILD_PIDS+=("$!")
shop_pid="$!"
wait_for_http demo-shop "http://127.0.0.1:$SHOP_PORT/" "$shop_pid" "$DEMO_DIR/demo-shop.log"

cat <<TEXT

  Countersign demo is running.

  Shop:        $SHOP_URL
  Countersign: $COUNTERSIGN_URL
  Keycloak:    http://localhost:$KEYCLOAK_PORT (realm countersign-demo)

  Demo accounts (demo-only passwords):
    cashier   / demo-cashier-password    Carla Cashier, CASHIER: signs in to the shop and asks for refunds
    manager   / demo-manager-password    Maria Manager, MANAGER: approves in the popup
    manager2  / demo-manager2-password   Max Manager, MANAGER
    clerk     / demo-clerk-password      Chris Clerk, no role: cannot approve

  Logs: $DEMO_DIR and $REPO_DIR/.cache/keycloak-run
  Press Ctrl-C to stop.

TEXT

# Returns when Countersign or the shop exits, or on Ctrl-C (the INT trap).
status=0
wait -n "$countersign_pid" "$shop_pid" || status=$?
die "a demo process exited (status $status): see the logs in $DEMO_DIR"
