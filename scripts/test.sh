#!/usr/bin/env bash
# Run every test of the repository and print the time of each stage:
#
#   setup   scripts/setup.sh (system packages, npm packages, Keycloak)
#   build   cargo build --workspace
#   rust    cargo test --workspace
#   sdk     npm run build and npm test in sdk/ (when sdk/package.json exists)
#   e2e     Keycloak on free ports and `next build` of examples/nextjs-shop
#           while it starts, then node --test in e2e/
#
# With arguments, runs only the named stages in the given order, for example
# `scripts/test.sh build e2e`. The e2e stage needs the binaries of the build
# stage and the SDK bundle of the sdk stage.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_DIR
readonly ALL_STAGES=(setup build rust sdk e2e)

KEYCLOAK_STARTED=false
TIMINGS=()

log() {
  printf 'test: %s\n' "$*" >&2
}

cleanup() {
  if [[ "$KEYCLOAK_STARTED" == true ]]; then
    "$REPO_DIR/scripts/keycloak.sh" stop || log "stopping Keycloak failed"
    KEYCLOAK_STARTED=false
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

print_timings() {
  local line
  log "stage timings:"
  for line in "${TIMINGS[@]}"; do
    log "  $line"
  done
}

run_stage() {
  local name="$1" started=$SECONDS status=0
  log "=== $name ==="
  "stage_$name" || status=$?
  TIMINGS+=("$(printf '%-6s %4ds %s' "$name" $((SECONDS - started)) "$([[ $status == 0 ]] && echo ok || echo "FAILED (exit $status)")")")
  if ((status != 0)); then
    print_timings
    log "stage $name failed with exit status $status"
    exit "$status"
  fi
}

stage_setup() {
  "$REPO_DIR/scripts/setup.sh"
}

stage_build() {
  (cd "$REPO_DIR" && cargo build --workspace --locked)
}

stage_rust() {
  (cd "$REPO_DIR" && cargo test --workspace --locked)
}

stage_sdk() {
  if [[ ! -f "$REPO_DIR/sdk/package.json" ]]; then
    log "sdk/package.json not found, skipping"
    return 0
  fi
  (cd "$REPO_DIR/sdk" && npm run build && npm test)
}


# Builds examples/nextjs-shop for tests/nextjs-shop.test.mjs, offline and
# without telemetry. It needs the SDK bundle of the sdk stage.
build_nextjs_example() {
  local dir="$REPO_DIR/examples/nextjs-shop" started=$SECONDS
  if [[ ! -d "$dir/node_modules" ]]; then
    log "$dir/node_modules not found: run scripts/setup.sh first"
    return 1
  fi
  (cd "$dir" && NEXT_TELEMETRY_DISABLED=1 npx --no-install next build) || return
  log "next build of examples/nextjs-shop took $((SECONDS - started))s"
}

# Each command in a stage ends with `|| return`, because run_stage calls the
# stage in a `||` list, where bash ignores `set -e`.
stage_e2e() {
  local ports
  mapfile -t ports < <(node "$REPO_DIR/e2e/lib/ports.mjs" 5) || return
  ((${#ports[@]} == 5)) || return
  export KEYCLOAK_PORT="${ports[0]}" KEYCLOAK_MANAGEMENT_PORT="${ports[1]}"
  export E2E_KEYCLOAK_PORT="${ports[0]}" E2E_COUNTERSIGN_PORT="${ports[2]}" E2E_SHOP_PORT="${ports[3]}"
  export E2E_NEXTJS_PORT="${ports[4]}"

  # Passed to keycloak.sh only: countersign warns about unknown COUNTERSIGN_*
  # variables in its environment.
  SHOP_URL="http://localhost:$E2E_SHOP_PORT" COUNTERSIGN_URL="http://127.0.0.1:$E2E_COUNTERSIGN_PORT" \
    NEXTJS_URL="http://localhost:$E2E_NEXTJS_PORT" \
    "$REPO_DIR/scripts/keycloak.sh" start || return
  KEYCLOAK_STARTED=true
  build_nextjs_example || return
  "$REPO_DIR/scripts/keycloak.sh" wait || return
  # The test files share one Keycloak, whose redirect URIs fix the
  # Countersign, shop and Next.js ports, so they run one at a time.
  (cd "$REPO_DIR/e2e" && node --test --test-concurrency=1 tests/) || return
  cleanup
}

stages=("$@")
if ((${#stages[@]} == 0)); then
  stages=("${ALL_STAGES[@]}")
fi
for stage in "${stages[@]}"; do
  if [[ " ${ALL_STAGES[*]} " != *" $stage "* ]]; then
    log "unknown stage '$stage': expected one of ${ALL_STAGES[*]}"
    exit 2
  fi
done

for stage in "${stages[@]}"; do
  run_stage "$stage"
done
print_timings
