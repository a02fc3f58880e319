#!/usr/bin/env bash
# Fan-out side by side, in one run, with the same load client: the uWebSockets.js reference
# (../shared/peers/uws) and a release livehub, 2,000 viewers in one room, the send rate raised in
# steps. Prints both step tables and writes docs-ready markdown to target/bench-compare.md.
#   bash scripts/bench-compare.sh [VIEWERS=2000] [RATES=25,50,100,200,300,400] [STEP_SECS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
VIEWERS=${1:-2000}; RATES=${2:-25,50,100,200,300,400}; STEP=${3:-5}
PEER=${PEER_DIR:-../shared/peers/uws}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
cargo build --release --workspace -q
WORK=$(mktemp -d)
cp "$PEER"/package.json "$PEER"/package-lock.json "$PEER"/server.js "$WORK"/
(cd "$WORK" && npm install --no-audit --no-fund --silent >/dev/null)
UPORT=$(free_port); HPORT=$(free_port)
node "$WORK/server.js" "$UPORT" >/dev/null &
UPID=$!
LIVEHUB_SERVER__BIND=127.0.0.1:$HPORT RUST_LOG=error \
LIVEHUB_LIMITS__COMMENT_RATE_PER_SEC=1000000 LIVEHUB_LIMITS__COMMENT_BURST=1000000 \
LIVEHUB_LIMITS__HOST_FRAMES_PER_SEC=1000000 LIVEHUB_LIMITS__HOST_FRAMES_BURST=1000000 \
  ./target/release/livehub serve &
HPID=$!
trap 'kill $UPID $HPID 2>/dev/null || true; rm -rf "$WORK"' EXIT
sleep 1
LT=./target/release/livehub-loadtest
echo "== reference (uWebSockets.js), $VIEWERS viewers"
$LT fanout --target raw --url "ws://127.0.0.1:$UPORT" --viewers "$VIEWERS" --rates "$RATES" --step-secs "$STEP" \
  --keep-going --server-pid "$UPID" --json target/fanout-raw.json
echo "== livehub, $VIEWERS viewers"
$LT fanout --target livehub --url "ws://127.0.0.1:$HPORT" --viewers "$VIEWERS" --rates "$RATES" --step-secs "$STEP" \
  --keep-going --server-pid "$HPID" --json target/fanout-livehub.json
python3 - "$VIEWERS" <<'PY'
import json, sys
raw = json.load(open("target/fanout-raw.json")); lh = json.load(open("target/fanout-livehub.json"))
rows = ["| msg/s | reference delivered/s | reference p99 ms | livehub delivered/s | livehub p99 ms | lost (ref / livehub) | p99 ratio livehub/ref |", "|---|---|---|---|---|---|---|"]
for a, b in zip(raw["steps"], lh["steps"]):
    rows.append(f"| {a['rate']} | {a['delivered_per_s']:.0f} | {a['p99_ms']:.1f} | {b['delivered_per_s']:.0f} | {b['p99_ms']:.1f} | {a['lost']} / {b['lost']} | {b['p99_ms']/max(a['p99_ms'],0.001):.2f} |")
ceil = lambda r: (r["ceiling_rate"], r["ceiling_delivered_per_s"])
rows.append("")
rows.append(f"Ceiling (p99 <= 100 ms, nothing lost): reference {ceil(raw)[0]} msg/s = {ceil(raw)[1]:.0f}/s; livehub {ceil(lh)[0]} msg/s = {ceil(lh)[1]:.0f}/s. Server RSS after: reference {raw.get('server_rss_kib')} KiB, livehub {lh.get('server_rss_kib')} KiB.")
open("target/bench-compare.md", "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
