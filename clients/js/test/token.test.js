// Tokens: refreshed ahead of expiry (one refresh at a time), a refused token refreshed once, and
// the cases retrying cannot fix stop with their reason instead of reconnecting for ever.

import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { LiveRoom } from "../livehub-client.js";
import { startHub, token, until, uid, closeAll } from "./harness.js";

afterEach(closeAll);

let hub;
before(async () => {
  hub = await startHub();
});
after(async () => {
  await hub.stop();
});

const connected = (r) => until(r, (s) => s.connection === "connected");
const final = (r) => until(r, (s) => s.connection === "disconnected" && r.stopped);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function openRoom(room) {
  const host = new LiveRoom({ url: hub.url, room, token: token({ sub: "host", role: "host", room }) });
  host.connect();
  await connected(host);
  return host;
}

test("a token that expires mid-show is refreshed before it expires, and a later reconnect loses no event", async () => {
  const room = uid("exp");
  const host = await openRoom(room);
  let calls = 0;
  let inFlight = 0;
  let most = 0;
  const v = new LiveRoom({
    url: hub.url,
    room,
    getToken: async () => {
      calls += 1;
      inFlight += 1;
      most = Math.max(most, inFlight);
      await sleep(50);
      inFlight -= 1;
      return token({ sub: "v", room, ttlS: calls === 1 ? 1 : 3600 });
    },
  });
  const steady = new LiveRoom({ url: hub.url, room, token: token({ sub: "s", room }) });
  v.connect();
  steady.connect();
  await Promise.all([connected(v), connected(steady)]);
  const seen = { v: [], s: [] };
  v.on("announcement", (m) => seen.v.push(m.seq));
  steady.on("announcement", (m) => seen.s.push(m.seq));
  await until(v, () => calls >= 2, 5000, "the refresh ahead of expiry");
  // Past the first token's exp and the hub's 5 s leeway: only the refreshed token is accepted.
  for (let i = 0; i < 30; i++) {
    await host.announce(`a ${i}`);
    await sleep(200);
  }
  v.reconnect();
  await connected(v);
  await host.announce("end");
  await until(v, (s) => s.announcement?.text === "end");
  await until(steady, (s) => s.announcement?.text === "end");
  assert.deepEqual(seen.v, seen.s);
  assert.equal(calls, 2, "one call to connect, one ahead of expiry");
  assert.equal(most, 1, "never two refreshes at once");
  for (const r of [host, v, steady]) r.close();
});

test("a static token that has expired stops with token_expired instead of reconnecting", async () => {
  const room = uid("static");
  const host = await openRoom(room);
  const v = new LiveRoom({ url: hub.url, room, token: token({ sub: "v", room, ttlS: -60 }) });
  const states = [];
  v.on("connection", (c) => states.push(c));
  v.connect();
  await final(v);
  assert.equal(states.at(-1).reason, "token_expired");
  assert.equal(states.at(-1).final, true);
  await sleep(300);
  assert.equal(states.filter((c) => c.state === "connecting").length, 1);
  host.close();
});

test("an error thrown from getToken stops retrying with token_error", async () => {
  const v = new LiveRoom({
    url: hub.url,
    room: uid("err"),
    getToken: async () => {
      throw new Error("session over");
    },
  });
  let last;
  v.on("connection", (c) => (last = c));
  v.connect();
  await final(v);
  assert.equal(last.reason, "token_error");
  assert.equal(last.final, true);
});

test("a refused token is refreshed once; a token refused again, or for another room, stops", async () => {
  const room = uid("ref");
  const host = await openRoom(room);
  let calls = 0;
  const forged = token({ sub: "v", room }).replace(/\.[^.]+$/, ".AAAA");
  const v = new LiveRoom({
    url: hub.url,
    room,
    token: forged,
    minDelayMs: 20,
    getToken: async () => {
      calls += 1;
      return token({ sub: "v", room });
    },
  });
  v.connect();
  await connected(v);
  assert.equal(calls, 1);

  const stuck = new LiveRoom({ url: hub.url, room, token: forged, minDelayMs: 20 });
  let last;
  stuck.on("connection", (c) => (last = c));
  stuck.connect();
  await final(stuck);
  assert.equal(last.reason, "unauthorized");

  const elsewhere = new LiveRoom({ url: hub.url, room, token: token({ sub: "v", room: "other" }), minDelayMs: 20 });
  elsewhere.on("connection", (c) => (last = c));
  elsewhere.connect();
  await final(elsewhere);
  assert.equal(last.reason, "forbidden");
  for (const r of [host, v]) r.close();
});

test("a hold's reserve pending when the app closes the room rejects with closed", async () => {
  const room = uid("close");
  const host = await openRoom(room);
  const v = new LiveRoom({ url: hub.url, room, token: token({ sub: "v", room }) });
  v.connect();
  const tap = v.reserve("nope", 1).catch((e) => e.reason);
  v.close();
  assert.equal(await tap, "closed");
  host.close();
});
