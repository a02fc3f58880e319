#!/usr/bin/env bash
# Show-start surge and restart (issue 7, target 6): VIEWERS viewers connect to one room at once;
# once all are in and a host is posting, the hub is stopped with SIGTERM (viewers get 1001) and
# started again on the same port with the same server.state_file. Every viewer must be connected
# within 5 s, resume with ?since= within 10 s of the first disconnect, and miss no event.
#   bash scripts/bench-surge.sh [VIEWERS=10000]
set -euo pipefail
cd "$(dirname "$0")/.."
VIEWERS=${1:-10000}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
cargo build --release --workspace -q
WORK=$(mktemp -d); PORT=$(free_port); HPID=""; LPID=""
trap '[ -n "$HPID" ] && kill $HPID 2>/dev/null; [ -n "$LPID" ] && kill $LPID 2>/dev/null; rm -rf "$WORK"' EXIT
start_hub() {
  LIVEHUB_SERVER__BIND=127.0.0.1:$PORT LIVEHUB_LIMITS__CONNECTIONS_PER_IP=0 LIVEHUB_SERVER__STATE_FILE=$WORK/state.json RUST_LOG=info \
    ./target/release/livehub serve >>"$WORK/hub.log" 2>&1 & HPID=$!
  wait_port "$PORT"
}
start_hub
./target/release/livehub-loadtest surge --url "ws://127.0.0.1:$PORT" --viewers "$VIEWERS" \
  --ready-file "$WORK/ready" --json target/surge.json & LPID=$!
while [ ! -f "$WORK/ready" ]; do kill -0 "$LPID" 2>/dev/null || { wait "$LPID"; exit $?; }; sleep 0.1; done
T0=$(date +%s.%N)
kill -TERM "$HPID"; wait "$HPID" || true
T1=$(date +%s.%N)
start_hub
T2=$(date +%s.%N)
echo "hub stopped in $(python3 -c "print(f'{$T1-$T0:.2f}')") s (closing $VIEWERS viewers, saving the state), started again in $(python3 -c "print(f'{$T2-$T1:.2f}')") s"
grep -E "state saved|restored" "$WORK/hub.log" | sed 's/\x1b\[[0-9;]*m//g' || true
STATUS=0; wait "$LPID" || STATUS=$?; LPID=""
exit $STATUS
