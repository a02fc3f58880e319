#!/usr/bin/env bash
# The whole livehub test suite, from a fresh clone, in one command: `bash scripts/test.sh`.
#
# Tests start what they need themselves (a hub on port 0; a throwaway redis-server on a free port
# for the Redis tests; chromedriver and headless Chromium for the page tests; nginx in front of
# hub processes for the load-balancer example). This script makes sure the programs they start
# are installed: where one is missing it installs Debian's package when it can (root or
# passwordless sudo), and otherwise stops with a message that says how to install it.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkg() { # need_pkg BINARY DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "scripts/test.sh: $1 is missing; installing Debian package $2" >&2
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      echo "scripts/test.sh: cannot install $2 without root. Install it with: sudo apt-get install -y $2" >&2
      exit 1
    fi
  fi
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null; }; then
    echo "scripts/test.sh: installing $2 failed. Install it with: sudo apt-get install -y $2" >&2
    exit 1
  fi
  command -v "$1" >/dev/null 2>&1 || { echo "scripts/test.sh: $2 installed but $1 not on PATH" >&2; exit 1; }
}

need_pkg redis-server redis-server
need_pkg chromium chromium
need_pkg chromedriver chromium-driver
need_pkg nginx nginx # /usr/sbin/nginx, for tests/proxy.rs (config/nginx.conf run for real)

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace --quiet
