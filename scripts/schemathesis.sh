#!/usr/bin/env bash
# Fuzz the host API with schemathesis, driven by Countersign's own OpenAPI
# document.
#
# The script installs schemathesis from PyPI into .cache/venv-schemathesis,
# builds countersign, starts it on a free 127.0.0.1 port with a temporary
# config, SQLite file and API key, runs schemathesis against
# /api/v1/openapi.json and stops the server. No identity provider is
# needed: the host API never calls it, and the issuer points at a closed
# local port.
#
# Usage: scripts/schemathesis.sh [extra schemathesis options]
# Environment:
#   SCHEMATHESIS_VERSION   version installed from PyPI (default below)
#   SCHEMATHESIS_MAX_TIME  time budget of the run in seconds (default 120)
#   SCHEMATHESIS_CHECKS    checks to run (default below)
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_DIR
readonly VENV_DIR="$REPO_DIR/.cache/venv-schemathesis"
readonly VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
readonly MAX_TIME="${SCHEMATHESIS_MAX_TIME:-120}"
readonly CHECKS="${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance}"

SERVER_PID=""
WORK_DIR=""

log() {
  printf 'schemathesis: %s\n' "$*" >&2
}

cleanup() {
  if [[ -n "$SERVER_PID" ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -n "$WORK_DIR" ]]; then
    rm -rf "$WORK_DIR"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

install_schemathesis() {
  if [[ ! -x "$VENV_DIR/bin/python" ]]; then
    log "creating the virtualenv $VENV_DIR"
    python3 -m venv "$VENV_DIR"
  fi
  if [[ "$("$VENV_DIR/bin/python" -m pip show schemathesis 2>/dev/null | sed -n 's/^Version: //p')" != "$VERSION" ]]; then
    log "installing schemathesis $VERSION from PyPI"
    "$VENV_DIR/bin/python" -m pip install --quiet "schemathesis==$VERSION"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start_server() {
  local port="$1" key="$2" issuer_port
  issuer_port="$(free_port)"
  cat >"$WORK_DIR/countersign.toml" <<EOF
[server]
listen = "127.0.0.1:$port"

[database]
path = "$WORK_DIR/countersign.sqlite"

[oidc]
issuer = "http://127.0.0.1:$issuer_port/realms/not-running"
client_id = "countersign"

[approvals]
allowed_origins = ["http://localhost:18400"]

[limits]
# The fuzzer creates many requests with one key, and a lower limit would
# reject most of them with 429.
create_per_minute = 100000

[[api_keys]]
name = "schemathesis"
sha256 = "$(printf %s "$key" | sha256sum | cut -d' ' -f1)"
EOF

  COUNTERSIGN_OIDC_CLIENT_SECRET=not-used RUST_LOG=warn \
    "$REPO_DIR/target/debug/countersign" --config "$WORK_DIR/countersign.toml" serve \
    2>"$WORK_DIR/server.log" &
  SERVER_PID=$!

  local attempt
  for attempt in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      log "countersign exited during startup:"
      cat "$WORK_DIR/server.log" >&2
      return 1
    fi
    sleep 0.1
  done
  log "countersign did not answer /healthz within 10 seconds"
  return 1
}

main() {
  install_schemathesis

  log "building countersign"
  cargo build --quiet -p countersign --manifest-path "$REPO_DIR/Cargo.toml"

  WORK_DIR="$(mktemp -d)"
  local port key status=0
  port="$(free_port)"
  key="$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  start_server "$port" "$key"
  log "countersign listens on 127.0.0.1:$port"

  # Run in the work directory, where schemathesis leaves its .schemathesis cache.
  (
    cd "$WORK_DIR"
    NO_PROXY=127.0.0.1 no_proxy=127.0.0.1 \
      "$VENV_DIR/bin/schemathesis" run "http://127.0.0.1:$port/api/v1/openapi.json" \
      --header "Authorization: Bearer $key" \
      --checks "$CHECKS" \
      --max-time "$MAX_TIME" \
      --request-timeout 10 \
      "$@"
  ) || status=$?

  if grep -q 'panicked' "$WORK_DIR/server.log"; then
    log "the server log records a panic:"
    grep -A5 'panicked' "$WORK_DIR/server.log" >&2
    status=1
  fi
  return "$status"
}

main "$@"
