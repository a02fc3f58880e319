#!/usr/bin/env bash
# The whole livehub test suite, from a fresh clone, in one command: `bash scripts/test.sh`.
# `bash scripts/test.sh --quick` is the edit-test loop: fmt, clippy, the unit tests and the
# integration tests that need no Redis, nginx or browser (the memory backend).
#
# Tests start what they need themselves (a hub on port 0; a throwaway redis-server on a free port
# for the Redis tests; chromedriver and headless Chromium for the page tests; nginx in front of
# hub processes for the load-balancer example). This script makes sure the programs they start
# are installed: where one is missing it installs Debian's package when it can (root or
# passwordless sudo), and otherwise stops with a message that says how to install it.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
case "${1:-}" in
  --quick) quick=true ;;
  "") ;;
  *) echo "usage: bash scripts/test.sh [--quick]" >&2; exit 2 ;;
esac

# Integration tests (tests/it/, one binary) that need Redis, nginx or several hub processes: the
# memory-backend run skips them by name (a test whose name contains any of these).
redis_tests=(redis multi_node:: cluster proxy:: funnel::the_funnel_of_a_room_on_two_nodes
  funnel::a_node_killed_after_its_flush)

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


if $quick; then
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets --quiet -- -D warnings
  python3 scripts/import-cycles.py >/dev/null # no module imports one that imports it back
  cargo test --workspace --quiet --lib --bins
  skips=()
  for t in "${redis_tests[@]}"; do skips+=(--skip "$t"); done
  cargo test --quiet --test it -- "${skips[@]}"
  exit 0
fi

need_pkg redis-server redis-server
need_pkg chromium chromium
need_pkg chromedriver chromium-driver
need_pkg nginx nginx # /usr/sbin/nginx, for tests/it/proxy.rs (config/nginx.conf run for real)
need_pkg faketime faketime # libfaketime, for the skewed-clock node in tests/it/multi_node.rs

# Fuzzing (docs/fuzzing.md): the two cargo-fuzz targets in fuzz/ (a workspace of their own), each
# for 10 seconds with a fixed seed over its checked-in corpus. One unoptimized build (--dev, no
# sanitizer: livehub is safe Rust) serves both targets.
fuzz_cargo=(cargo +nightly)
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "scripts/test.sh: no nightly toolchain; building the fuzz targets with RUSTC_BOOTSTRAP=1" >&2
  fuzz_cargo=(env RUSTC_BOOTSTRAP=1 cargo)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "scripts/test.sh: cargo-fuzz is missing; installing it with cargo install cargo-fuzz --locked" >&2
  cargo install cargo-fuzz --locked
fi
fuzz_tmp=$(mktemp -d)
fuzz_build_pid=""
cleanup() {
  [ -n "$fuzz_build_pid" ] && kill "$fuzz_build_pid" 2>/dev/null
  rm -rf "$fuzz_tmp"
}
trap cleanup EXIT

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
python3 scripts/import-cycles.py >/dev/null # no module imports one that imports it back
cargo test --workspace --quiet --no-run
# The tests mostly wait (on hubs, Redis, nginx, Chromium): the fuzz build, which needs both
# cores, runs meanwhile at the lowest priority, so it takes only what the tests leave idle.
nice -n 19 "${fuzz_cargo[@]}" fuzz build --dev --sanitizer none >"$fuzz_tmp/build.log" 2>&1 &
fuzz_build_pid=$!
cargo test --workspace --quiet
if ! wait "$fuzz_build_pid"; then
  fuzz_build_pid=""
  cat "$fuzz_tmp/build.log" >&2
  echo "scripts/test.sh: building the fuzz targets failed" >&2
  exit 1
fi
fuzz_build_pid=""

# Both targets at once (each runs on one core). libFuzzer writes new units into the first corpus
# directory it is given, a scratch one here, so fuzz/corpus/ stays as checked in. A crash, a
# timeout or running out of memory fails the suite; the input is saved under fuzz/artifacts/.
fuzz_run() { # fuzz_run TARGET
  mkdir -p "$fuzz_tmp/$1"
  "${fuzz_cargo[@]}" fuzz run --dev --sanitizer none "$1" "$fuzz_tmp/$1" "fuzz/corpus/$1" -- \
    -seed=1 -max_total_time=10 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$fuzz_tmp/$1.log" 2>&1
}
targets=(client_frame token)
pids=()
for target in "${targets[@]}"; do
  fuzz_run "$target" &
  pids+=($!)
done
failed=0
for i in "${!targets[@]}"; do
  target=${targets[$i]}
  if ! wait "${pids[$i]}"; then
    tail -n 80 "$fuzz_tmp/$target.log" >&2
    echo "scripts/test.sh: fuzz target $target failed; the input is under fuzz/artifacts/$target/ (docs/fuzzing.md: reproduce a crash)" >&2
    failed=1
    continue
  fi
  echo "fuzz $target: $(grep -E '^Done [0-9]+ runs' "$fuzz_tmp/$target.log"), $(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$fuzz_tmp/$target.log" | tail -n 1)"
done
exit "$failed"
