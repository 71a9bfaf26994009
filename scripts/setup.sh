#!/usr/bin/env bash
# Install what the demo and the tests need on a Debian machine: Chromium,
# Java and Maven for Keycloak, curl, the npm packages of e2e/, sdk/ and
# examples/nextjs-shop/, and the Keycloak server itself. Safe to run again:
# each step checks first and prints one line.
#
# Expects cargo and Node.js 20 or newer on PATH. Debian's own nodejs package
# can be older, so this script reports a missing or old Node.js instead of
# installing one.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_DIR

APT_UPDATED=false

step() {
  printf 'setup: %s\n' "$*"
}

die() {
  printf 'setup: error: %s\n' "$*" >&2
  exit 1
}

# Runs a command as root: directly when this script already is root,
# otherwise through sudo.
as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "'$*' needs root, and sudo is not installed: run this script as root"
  fi
}

apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found: install $* by hand (this script supports Debian only)"
  if [[ "$APT_UPDATED" == false ]]; then
    as_root apt-get update -qq
    APT_UPDATED=true
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_system_packages() {
  local missing=()
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  command -v java >/dev/null || missing+=(default-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  command -v curl >/dev/null || missing+=(curl)
  if ((${#missing[@]} == 0)); then
    step "system packages: chromium, java, maven and curl present"
    return
  fi
  step "system packages: installing ${missing[*]} with apt-get"
  apt_install "${missing[@]}"
}

check_toolchains() {
  local node_major
  command -v cargo >/dev/null || die "cargo not found: install a Rust toolchain (rust-version in Cargo.toml)"
  command -v node >/dev/null || die "node not found: install Node.js 20 or newer"
  node_major="$(node -p 'process.versions.node.split(".")[0]')"
  ((node_major >= 20)) || die "Node.js $(node --version) is too old: the tests need 20 or newer"
  step "toolchains: cargo $(cargo --version | cut -d' ' -f2), node $(node --version)"
}

# Installs a package's npm dependencies unless node_modules already matches
# its lock file. npm writes node_modules/.package-lock.json on every install,
# so that file is newer than the lock file after a complete install.
ensure_npm_packages() {
  local dir="$1" installed="$1/node_modules/.package-lock.json"
  [[ -f "$dir/package.json" ]] || return 0
  if [[ -f "$installed" && "$installed" -nt "$dir/package.json" ]] &&
    { [[ ! -f "$dir/package-lock.json" ]] || [[ "$installed" -nt "$dir/package-lock.json" ]]; }; then
    step "npm packages in ${dir#"$REPO_DIR"/}: up to date"
    return
  fi
  if [[ -f "$dir/package-lock.json" ]]; then
    step "npm packages in ${dir#"$REPO_DIR"/}: npm ci"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  else
    step "npm packages in ${dir#"$REPO_DIR"/}: npm install (no package-lock.json)"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}

ensure_system_packages
check_toolchains
ensure_npm_packages "$REPO_DIR/e2e"
ensure_npm_packages "$REPO_DIR/sdk"
ensure_npm_packages "$REPO_DIR/examples/nextjs-shop"
step "keycloak: fetch (a no-op when installed)"
"$REPO_DIR/scripts/keycloak.sh" fetch
step "done"
