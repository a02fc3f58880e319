#!/bin/sh
# The SDK's tests with Node's own test runner, against real hubs (a livehub binary: the
# workspace's build or $LIVEHUB_BIN) and a throwaway redis-server. Node 20 has WebSocket behind
# a flag; later versions have it built in.
set -eu
cd "$(dirname "$0")/.."
flags=""
node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' || flags="--experimental-websocket"
exec node $flags --test --test-timeout=60000 test/*.test.js
