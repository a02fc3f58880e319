// The runtime's fetch, as browsers have it: calling it as a method of anything but the global
// object throws "Illegal invocation". A refused token must still be told from a hub that is down.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { LiveRoom } from "../livehub-client.js";
import { startHub, until } from "./harness.js";

let hub;
before(async () => {
  hub = await startHub();
});
after(async () => {
  await hub.stop();
});

test("with the global fetch of a browser, a refused token stops with unauthorized at once", async () => {
  const realFetch = globalThis.fetch;
  let calls = 0;
  globalThis.fetch = function (...args) {
    calls += 1;
    if (this !== undefined && this !== globalThis) throw new TypeError("Illegal invocation");
    return realFetch(...args);
  };
  try {
    const v = new LiveRoom({ url: hub.url, room: "fetch-this", token: "not.a.token", minDelayMs: 50 });
    const seen = [];
    v.on("connection", (c) => seen.push(c));
    v.connect();
    await until(v, () => v.stopped);
    assert.ok(calls >= 1, "the room snapshot was asked why");
    const last = seen[seen.length - 1];
    assert.equal(last.reason, "unauthorized", JSON.stringify(seen));
    assert.equal(last.final, true);
    assert.ok(!seen.some((c) => c.reason === "unreachable"), JSON.stringify(seen));
  } finally {
    globalThis.fetch = realFetch;
  }
});
