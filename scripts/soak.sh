#!/usr/bin/env bash
# Soak: one hub on a throwaway redis-server plays a long show at a moderate rate (1,000 viewers
# in two rooms, churn with ?since= resumes, chat, likes, a flash deal every 90 s with buyers who
# check out, cancel or abandon their holds). Every 15 s the hub's /metrics gauges are sampled:
# resident memory, open file descriptors, live tasks and connections, into OUT/samples.csv.
# At the end it prints the first sample after warm-up, the last one and the maxima, and the
# load tester's own SLO verdict (no lost event, no oversell, no leaked hold).
#   bash scripts/soak.sh [MINUTES=30] [OUT=target/soak]
# SOAK_CHURN sets the viewers leaving (and coming back) per second (default 5).
# HUB_WRAPPER runs the hub under a tool, e.g. HUB_WRAPPER="heaptrack -o target/soak/heap".
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-30}; OUT=${2:-target/soak}
mkdir -p "$OUT"
cargo build --release --workspace -q
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
RPORT=$(free_port); HUBPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null &
RPID=$!
HPID=; SPID=
trap 'pkill -P "$HPID" 2>/dev/null; kill $SPID $HPID $RPID 2>/dev/null || true' EXIT
for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

SECS=$((MINUTES * 60))
{
  cat <<EOF
name = "soak"
description = "$MINUTES minutes: 1,000 viewers, two rooms, churn, chat, a deal every 90 s"
duration_s = $SECS
seed = 5
rooms = 2
room_prefix = "soak"

[[viewers]]
at_s = 0
count = 1000
shape = "linear"
over_s = 30

[churn]
leaves_per_s = ${SOAK_CHURN:-5}
away_s = 2

[chat]
comments_per_s = 5
likes_per_s = 10
like_burst = 5
start_s = 5

[[host]]
at_s = 2
action = "pin"
product = "scarf"
title = "Merino wool scarf"
price_cents = 2599

[buyers]
share = 0.2
window_s = 5
shape = "spike"
checkout = 0.5
cancel = 0.2
think_s = 2

[slo]
max_lost = 0
max_oversold = 0
max_leaked = 0
min_connect_success = 0.999
min_deliveries = 1
EOF
  for ((t = 40, i = 0; t + 70 < SECS; t += 90, i++)); do
    cat <<EOF

[[host]]
at_s = $t
action = "deal_start"
deal = "soak-$i"
product = "scarf"
price_cents = 1999
stock = 50
per_user_limit = 1
duration_s = 80

[[host]]
at_s = $((t + 60))
action = "deal_end"
deal = "soak-$i"
EOF
  done
} >"$OUT/soak.toml"

LIVEHUB_SERVER__BIND=127.0.0.1:$HUBPORT LIVEHUB_LIMITS__CONNECTIONS_PER_IP=0 \
LIVEHUB_INVENTORY__BACKEND=redis LIVEHUB_REDIS__URL=redis://127.0.0.1:$RPORT \
LIVEHUB_INVENTORY__HOLD_MS=20000 RUST_LOG=warn ${HUB_WRAPPER:-} ./target/release/livehub serve 2>"$OUT/hub.log" &
HPID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HUBPORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$HUBPORT/healthz" >/dev/null || { echo "the hub did not start: $OUT/hub.log" >&2; exit 1; }

gauge() { awk -v g="$1" '$1 == g { print $2 }' "$OUT/metrics.txt"; }
echo "elapsed_s,rss_bytes,open_fds,tasks,connections" >"$OUT/samples.csv"
(
  start=$(date +%s)
  while kill -0 "$HPID" 2>/dev/null; do
    if curl -sf "http://127.0.0.1:$HUBPORT/metrics" >"$OUT/metrics.txt"; then
      echo "$(($(date +%s) - start)),$(gauge livehub_process_resident_bytes),$(gauge livehub_process_open_fds),$(gauge livehub_runtime_alive_tasks),$(gauge livehub_connections)" >>"$OUT/samples.csv"
    fi
    sleep 15
  done
) &
SPID=$!

set +e
./target/release/livehub-loadtest run --url "ws://127.0.0.1:$HUBPORT" --hub-pid "$HPID" --quiet \
  --report "$OUT/report.json" "$OUT/soak.toml" | tee "$OUT/loadtest.txt"
RC=${PIPESTATUS[0]}
set -e
# One sample after the viewers have left: what a drained hub holds.
sleep 5
curl -sf "http://127.0.0.1:$HUBPORT/metrics" >"$OUT/metrics.txt" &&
  echo "drained,$(gauge livehub_process_resident_bytes),$(gauge livehub_process_open_fds),$(gauge livehub_runtime_alive_tasks),$(gauge livehub_connections)" >>"$OUT/samples.csv"

python3 - "$OUT/samples.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
live = [r for r in rows if r["elapsed_s"] != "drained" and int(r["elapsed_s"]) >= 60]
drained = [r for r in rows if r["elapsed_s"] == "drained"]
def show(label, r):
    print(f"{label:<22} t={r['elapsed_s']:>5}  rss={int(float(r['rss_bytes']))/2**20:8.1f} MiB  fds={int(float(r['open_fds'])):>6}  tasks={int(float(r['tasks'])):>6}  connections={int(float(r['connections'])):>6}")
if live:
    show("first after warm-up", live[0])
    show("last under load", live[-1])
    for k in ("rss_bytes", "open_fds", "tasks"):
        vals = [float(r[k]) for r in live]
        print(f"{k:<22} min {min(vals):.0f}  max {max(vals):.0f}  last/first {vals[-1] / vals[0]:.3f}")
for r in drained:
    show("after the show", r)
EOF
echo "samples: $OUT/samples.csv, hub log: $OUT/hub.log, report: $OUT/report.json"
exit "$RC"
