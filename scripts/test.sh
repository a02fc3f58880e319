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


# Clippy's lints run in the test build itself. `cargo clippy` is cargo with clippy-driver wrapping
# rustc for the workspace's own crates, in check mode: it checks every dependency once more
# (metadata only) besides the build of them the tests need. With the same wrapper and arguments
# on `cargo test --all-targets`, every target clippy would lint is linted while it is compiled,
# and the dependencies are built once. The verdict is `cargo clippy --workspace --all-targets --
# -D warnings`'s (a warning fails the build). Every cargo test below uses the same environment,
# so nothing is rebuilt between them.
lint_cargo=(env "RUSTC_WORKSPACE_WRAPPER=$(command -v clippy-driver)"
  "CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" cargo)

if $quick; then
  cargo fmt --all -- --check
  python3 scripts/import-cycles.py --quiet # no module imports one that imports it back
  "${lint_cargo[@]}" test --workspace --all-targets --quiet --no-run
  "${lint_cargo[@]}" test --workspace --quiet --lib --bins
  skips=()
  for t in "${redis_tests[@]}"; do skips+=(--skip "$t"); done
  "${lint_cargo[@]}" test --quiet --test it -- "${skips[@]}"
  exit 0
fi

need_pkg redis-server redis-server
need_pkg chromium chromium
need_pkg chromedriver chromium-driver
need_pkg ffmpeg ffmpeg # a real HLS stream for the shop page test (tests/browser/shelf.rs)
need_pkg nginx nginx # /usr/sbin/nginx, for tests/it/proxy.rs (config/nginx.conf run for real)
need_pkg faketime faketime # libfaketime, for the skewed-clock node in tests/it/multi_node.rs
need_pkg node nodejs # the SDK's tests (clients/js), Node's own test runner
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || {
  echo "scripts/test.sh: the SDK (clients/js) needs Node 20 or later; this is $(node --version)" >&2
  exit 1
}

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
browser_pid=""
sdk_pid=""
fuzz_pids=""
cleanup() { # background jobs run in sessions of their own: a failure stops them, children too
  for pid in $fuzz_build_pid $browser_pid $sdk_pid $fuzz_pids; do kill -- "-$pid" 2>/dev/null || true; done
  rm -rf "$fuzz_tmp"
}
trap cleanup EXIT
suite_start=$SECONDS
phase() { echo "scripts/test.sh: [$((SECONDS - suite_start)) s] $*" >&2; } # per-phase times

phase "fmt and import cycles"
cargo fmt --all -- --check
python3 scripts/import-cycles.py --quiet # no module imports one that imports it back
phase "build and lint every target"
"${lint_cargo[@]}" test --workspace --all-targets --quiet --no-run
# The fuzz build (its own workspace, nightly, instrumented: it shares nothing with the test
# build) runs from here on at the lowest priority, beside the tests, which leave about one core
# idle (they mostly wait on hubs, Redis, nginx, Chromium): started beside the test build instead,
# it made that build 192 s instead of 180 s and the suite no shorter. setsid starts a new session, and where the kernel groups each session
# for scheduling (sched_autogroup_enabled), a process's nice value only ranks it within its own
# session: the session's group itself is lowered through /proc/self/autogroup, or the fuzz build
# takes a full core from the test build (273 s instead of 146 s for the build on a fresh clone).
lowest_priority() { # lowest_priority COMMAND...: run COMMAND in its own session, below everything
  [ -w /proc/self/autogroup ] && echo 19 >/proc/self/autogroup 2>/dev/null || true
  exec nice -n 19 "$@"
}
setsid bash -c "$(declare -f lowest_priority); lowest_priority \"\$@\"" lowest_priority \
  "${fuzz_cargo[@]}" fuzz build --dev --sanitizer none >"$fuzz_tmp/build.log" 2>&1 &
fuzz_build_pid=$!
# The page tests (tests/browser.rs, Chromium) run beside the other test binaries, two at a time
# (four at a time, Chromium starved the integration tests). Its binary is run directly (as cargo
# test would, from the package's directory), since one cargo holds the build directory while its
# tests run. A new integration test goes in tests/it/ (a module of its own), which the cargo test
# below runs.
browser_exe=$("${lint_cargo[@]}" test --quiet --test browser --no-run --message-format=json |
  grep '"name":"browser"' | grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//')
[ -x "$browser_exe" ] || { echo "scripts/test.sh: no tests/browser.rs binary found" >&2; exit 1; }
phase "page tests and SDK tests start in the background"
setsid "$browser_exe" --test-threads 2 >"$fuzz_tmp/browser.log" 2>&1 &
browser_pid=$!
# The SDK (clients/js): its tests against the hub binary the test build made (real hubs, a
# throwaway redis-server), then a type check of its declarations on a usage example (tsc from
# the npm registry, cached by npx after the first run).
sdk_run() {
  LIVEHUB_BIN="$PWD/target/debug/livehub" sh clients/js/test/run.sh &&
    (cd clients/js && npx --yes --package typescript@5 -- tsc --noEmit --strict --target es2022 \
      --module nodenext --moduleResolution nodenext --lib es2022,dom test/types-example.ts)
}
setsid bash -c "$(declare -f sdk_run); sdk_run" >"$fuzz_tmp/sdk.log" 2>&1 &
sdk_pid=$!
phase "unit and integration tests"
# Four at once: most integration tests wait on hubs, Redis and timers (alone on this 2-core
# machine: 101.67 s on two threads, 48.21 s on six, 72 s of CPU either way); six at once beside
# the page tests made those miss their waits. The tests that stop
# a Redis mid-show and time how fast clients hear `unavailable` run after them, one at a time: on
# a machine that busy, a comment or a reserve that outlived its deadline can still land before
# Redis stops, and the tests' exact counts then differ.
outage_tests=(when_redis_stops)
outage_skips=()
for t in "${outage_tests[@]}"; do outage_skips+=(--skip "$t"); done
"${lint_cargo[@]}" test --workspace --quiet --lib --bins --test it -- --test-threads 4 "${outage_skips[@]}"
"${lint_cargo[@]}" test --quiet --test it -- --test-threads 1 "${outage_tests[@]}"
phase "doc tests"
"${lint_cargo[@]}" test --workspace --quiet --doc
phase "waiting for the page tests"
browser_ok=true
wait "$browser_pid" || browser_ok=false
browser_pid=""
cat "$fuzz_tmp/browser.log"
$browser_ok || { echo "scripts/test.sh: the page tests (tests/browser.rs) failed" >&2; exit 1; }
phase "waiting for the SDK tests"
sdk_ok=true
wait "$sdk_pid" || sdk_ok=false
sdk_pid=""
grep -E '^# (tests|pass|fail)' "$fuzz_tmp/sdk.log" | sed 's/^# /sdk /' || true
$sdk_ok || { cat "$fuzz_tmp/sdk.log" >&2; echo "scripts/test.sh: the SDK's tests (clients/js) failed" >&2; exit 1; }
phase "waiting for the fuzz build"
if ! wait "$fuzz_build_pid"; then
  fuzz_build_pid=""
  cat "$fuzz_tmp/build.log" >&2
  echo "scripts/test.sh: building the fuzz targets failed" >&2
  exit 1
fi
fuzz_build_pid=""

# Both targets at once, each for 10 s, at the lowest priority beside the load tester's tests (which
# leave more than a core idle: they mostly wait). libFuzzer writes new units into the first corpus
# directory it is given, a scratch one here, so fuzz/corpus/ stays as checked in. A crash, a
# timeout or running out of memory fails the suite; the input is saved under fuzz/artifacts/.
fuzz_run() { # fuzz_run SCRATCH TARGET CARGO...: in a session of its own, below everything
  local scratch=$1 target=$2
  shift 2
  [ -w /proc/self/autogroup ] && echo 19 >/proc/self/autogroup 2>/dev/null || true
  exec nice -n 19 "$@" fuzz run --dev --sanitizer none "$target" "$scratch" "fuzz/corpus/$target" -- \
    -seed=1 -max_total_time=10 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
}
phase "fuzzing and load tester tests"
targets=(client_frame token)
for target in "${targets[@]}"; do
  mkdir -p "$fuzz_tmp/$target"
  setsid bash -c "$(declare -f fuzz_run); fuzz_run \"\$@\"" fuzz_run "$fuzz_tmp/$target" "$target" \
    "${fuzz_cargo[@]}" >"$fuzz_tmp/$target.log" 2>&1 &
  fuzz_pids+=" $!"
done
# The load tester's tests (loadtest/tests) run after the integration, page and SDK tests, not
# beside them: their ordering checks fail on a machine that busy. They are mostly waiting (timed
# scenarios against hub processes: 12 s of CPU in 57 s on two threads), so they run eight at once.
"${lint_cargo[@]}" test --workspace --quiet --test loadtest -- --test-threads 8
phase "waiting for the fuzzers"
failed=0
set -- $fuzz_pids
for target in "${targets[@]}"; do
  if ! wait "$1"; then
    tail -n 80 "$fuzz_tmp/$target.log" >&2
    echo "scripts/test.sh: fuzz target $target failed; the input is under fuzz/artifacts/$target/ (docs/fuzzing.md: reproduce a crash)" >&2
    failed=1
  else
    echo "fuzz $target: $(grep -E '^Done [0-9]+ runs' "$fuzz_tmp/$target.log"), $(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$fuzz_tmp/$target.log" | tail -n 1)"
  fi
  shift
done
fuzz_pids=""
phase "done"
exit "$failed"
