#!/usr/bin/env bash
# Fan-out side by side, with the same load client: the uWebSockets.js reference
# (../shared/peers/uws) and a release livehub, VIEWERS viewers in one room, the send rate raised
# in steps. Each round runs the reference, then livehub, each on a fresh server process that is
# stopped before the other starts (so neither pays for the other's backlog). Run-to-run variance
# on a shared 2-core VM is large, hence ROUNDS. Prints the step tables and writes docs-ready
# markdown to target/bench-compare.md (JSON per run in target/fanout-{raw,livehub}-R.json).
#   bash scripts/bench-compare.sh [VIEWERS=2000] [RATES=25,200,400,600,800,1000,1200] [STEP_SECS=5] [ROUNDS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
VIEWERS=${1:-2000}; RATES=${2:-25,200,400,600,800,1000,1200}; STEP=${3:-5}; ROUNDS=${4:-2}
PEER=${PEER_DIR:-../shared/peers/uws}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
cargo build --release --workspace -q
WORK=$(mktemp -d)
cp "$PEER"/package.json "$PEER"/package-lock.json "$PEER"/server.js "$WORK"/
(cd "$WORK" && npm install --no-audit --no-fund --silent >/dev/null)
SPID=""
trap '[ -n "$SPID" ] && kill $SPID 2>/dev/null; rm -rf "$WORK"' EXIT
LT=./target/release/livehub-loadtest
wait_port() { for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
stop_server() { kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; SPID=""; sleep 2; }
for R in $(seq "$ROUNDS"); do
  PORT=$(free_port)
  node "$WORK/server.js" "$PORT" >/dev/null & SPID=$!
  wait_port "$PORT"
  echo "== round $R: reference (uWebSockets.js), $VIEWERS viewers"
  $LT fanout --target raw --url "ws://127.0.0.1:$PORT" --viewers "$VIEWERS" --rates "$RATES" --step-secs "$STEP" \
    --keep-going --server-pid "$SPID" --json "target/fanout-raw-$R.json"
  stop_server
  PORT=$(free_port)
  LIVEHUB_SERVER__BIND=127.0.0.1:$PORT LIVEHUB_LIMITS__CONNECTIONS_PER_IP=0 RUST_LOG=error \
  LIVEHUB_LIMITS__COMMENT_RATE_PER_SEC=1000000 LIVEHUB_LIMITS__COMMENT_BURST=1000000 \
  LIVEHUB_LIMITS__HOST_FRAMES_PER_SEC=1000000 LIVEHUB_LIMITS__HOST_FRAMES_BURST=1000000 \
    ./target/release/livehub serve & SPID=$!
  wait_port "$PORT"
  echo "== round $R: livehub, $VIEWERS viewers"
  $LT fanout --target livehub --url "ws://127.0.0.1:$PORT" --viewers "$VIEWERS" --rates "$RATES" --step-secs "$STEP" \
    --keep-going --server-pid "$SPID" --json "target/fanout-livehub-$R.json"
  stop_server
done
python3 - "$ROUNDS" <<'PY'
import json, sys
rounds = int(sys.argv[1])
out = []
f = lambda v: "-" if v is None else f"{v:.2f}"
for r in range(1, rounds + 1):
    raw = json.load(open(f"target/fanout-raw-{r}.json")); lh = json.load(open(f"target/fanout-livehub-{r}.json"))
    out += [f"Round {r}:", "",
            "| msg/s | reference delivered/s | reference p99 ms | livehub delivered/s | livehub p99 ms | lost (ref / livehub) | p99 livehub/ref | server CPU µs per delivery (ref / livehub) |",
            "|---|---|---|---|---|---|---|---|"]
    for a, b in zip(raw["steps"], lh["steps"]):
        out.append(f"| {a['rate']} | {a['delivered_per_s']:.0f} | {a['p99_ms']:.1f} | {b['delivered_per_s']:.0f} | {b['p99_ms']:.1f} | {a['lost']} / {b['lost']} | {b['p99_ms']/max(a['p99_ms'],0.001):.2f} | {f(a.get('server_cpu_us_per_delivery'))} / {f(b.get('server_cpu_us_per_delivery'))} |")
    rc, lc = raw["ceiling_delivered_per_s"], lh["ceiling_delivered_per_s"]
    ratio = f"{lc/rc:.2f}" if rc else "n/a"
    out += ["", f"Ceiling (p99 <= 100 ms, nothing lost): reference {raw['ceiling_rate']} msg/s = {rc:.0f}/s; livehub {lh['ceiling_rate']} msg/s = {lc:.0f}/s; ratio livehub/reference {ratio}. Server RSS after: reference {raw.get('server_rss_kib')} KiB, livehub {lh.get('server_rss_kib')} KiB.", ""]
open("target/bench-compare.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
