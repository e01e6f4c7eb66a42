#!/usr/bin/env bash
# What `make test` needs beyond the Rust toolchain, installed from Debian's packages when missing
# (as root with apt-get; otherwise it prints the command and stops):
#   mariadb-server   mariadbd: the integration tests start their own private server
#   systemd          systemd-analyze verifies the shipped unit
#   prometheus       promtool checks the shipped alert rules
#   python3, nodejs, php-cli   run the signature-verification samples in docs/verify/
#   openssl          makes the certificates of the TLS tests
#   chromium, npm    the console's browser test: Debian's chromium driven by playwright-core,
#                    installed with `npm ci` into tests/console/node_modules (pinned by its
#                    package-lock.json; no browser is downloaded)
#   python3-venv     schemathesis (pinned below), from PyPI with pip into target/schemathesis-venv:
#                    the API fuzzed against its OpenAPI document (tests/it/schemathesis.rs)
#   cargo-deny       (pinned below) `cargo install --locked` from crates.io when missing or another
#                    version: `make test` runs `cargo deny check licenses bans sources` (deny.toml)
# `make test` runs it first, and so does CI (.ci/run).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive

find_mariadbd() {
  command -v mariadbd 2>/dev/null && return 0
  local d
  for d in /usr/sbin /usr/local/sbin; do
    if [ -x "$d/mariadbd" ]; then echo "$d/mariadbd"; return 0; fi
  done
  return 1
}

APT_UPDATED=
apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "test-deps: missing $*; install it with: sudo apt-get install -y --no-install-recommends $*" >&2
    exit 1
  fi
  echo "test-deps: installing $* from Debian's packages"
  # Keep package post-install steps from starting system-wide services.
  local policy=/usr/sbin/policy-rc.d created=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
  fi
  local rc=0
  { [ -n "$APT_UPDATED" ] || apt-get update -q; } \
    && apt-get install -y -q --no-install-recommends "$@" </dev/null || rc=$?
  APT_UPDATED=1
  if [ -n "$created" ]; then rm -f "$policy"; fi
  if [ "$rc" != 0 ]; then
    echo "test-deps: apt-get install $* failed ($rc)" >&2
    exit "$rc"
  fi
}

MARIADBD=$(find_mariadbd) || { apt_install mariadb-server; MARIADBD=$(find_mariadbd); } || {
  echo "test-deps: mariadbd still not found after installing mariadb-server" >&2
  exit 1
}

# The operations and subscriber tests run real tools: systemd-analyze (the unit), promtool (the
# alert rules), python3, node and php (the signature samples in docs/verify/), openssl (the
# certificates of the TLS tests).
MISSING=()
command -v systemd-analyze >/dev/null 2>&1 || MISSING+=(systemd)
command -v promtool >/dev/null 2>&1 || MISSING+=(prometheus)
command -v python3 >/dev/null 2>&1 || MISSING+=(python3)
command -v node >/dev/null 2>&1 || MISSING+=(nodejs)
command -v php >/dev/null 2>&1 || MISSING+=(php-cli)
command -v openssl >/dev/null 2>&1 || MISSING+=(openssl)
command -v mariadb >/dev/null 2>&1 || MISSING+=(mariadb-client)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || MISSING+=(chromium)
command -v npm >/dev/null 2>&1 || MISSING+=(npm)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || MISSING+=(python3-venv)
if [ "${#MISSING[@]}" -gt 0 ]; then apt_install "${MISSING[@]}"; fi

# playwright-core for the console's browser test, at the version package-lock.json pins.
want=$(node -p 'require("./tests/console/package-lock.json").packages["node_modules/playwright-core"].version')
have=$(node -p 'require("./tests/console/node_modules/playwright-core/package.json").version' 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  echo "test-deps: npm ci in tests/console (playwright-core)"
  (cd tests/console && npm ci --no-audit --no-fund --loglevel=error)
fi

# schemathesis for tests/it/schemathesis.rs, in a venv of its own (the version the test expects).
SCHEMATHESIS_VERSION=4.32.5
VENV=target/schemathesis-venv
if [ "$("$VENV/bin/st" --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
  echo "test-deps: pip install schemathesis==$SCHEMATHESIS_VERSION into $VENV (from PyPI)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# cargo-deny for the supply-chain check of `make test` (about 3 to 5 minutes to compile on 2 cores).
CARGO_DENY_VERSION=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
  echo "test-deps: cargo install cargo-deny $CARGO_DENY_VERSION (from crates.io; a few minutes)"
  cargo install --locked cargo-deny --version "$CARGO_DENY_VERSION"
fi

echo "test-deps: $(cargo --version)"
echo "test-deps: $(rustc --version)"
echo "test-deps: $("$MARIADBD" --version)"
echo "test-deps: $(systemd-analyze --version | sed -n 1p); $(promtool --version 2>&1 | sed -n 1p)"
echo "test-deps: $(python3 --version 2>&1); node $(node --version); $(php --version | sed -n 1p)"
echo "test-deps: $("$VENV/bin/st" --version); $(cargo deny --version)"
echo "test-deps: $(chromium --version 2>/dev/null || /usr/bin/chromium --version); playwright-core $(node -p 'require("./tests/console/node_modules/playwright-core/package.json").version')"

