#!/usr/bin/env bash
# The Redis and multi-node integration tests N times in a row (default 10), to shake out flaky
# waits: `bash scripts/soak-tests.sh [N]`. Every run starts its own shared Redis server and
# Redis Cluster (tests/common/redis.rs). Stops at the first failing run and says which.
# Needs what scripts/test.sh installs (redis-server, nginx, faketime).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
cargo test --quiet --test it --no-run
start=$SECONDS
for i in $(seq 1 "$n"); do
  echo "soak-tests: run $i of $n"
  if ! cargo test --quiet --test it -- redis multi_node:: cluster proxy:: \
    funnel::the_funnel_of_a_room_on_two_nodes funnel::a_node_killed_after_its_flush; then
    echo "soak-tests: run $i of $n failed" >&2
    exit 1
  fi
done
echo "soak-tests: $n runs passed in $((SECONDS - start)) s"
