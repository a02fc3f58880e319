// The SDK across hub nodes on one Redis: kill -9 of the node a client is on, a reserve sent as
// the connection drops, a 1001 drain.

import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { LiveRoom } from "../livehub-client.js";
import { startHub, startRedis, redisEnv, token, http, next, until, uid, closeAll } from "./harness.js";

afterEach(closeAll);

let redis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.stop();
});

async function nodes(n) {
  const env = redisEnv(redis.url);
  const out = [];
  for (let i = 0; i < n; i++) out.push(await startHub(env));
  return out;
}

function join(urls, room, sub, role = "viewer") {
  const r = new LiveRoom({ url: urls, room, token: token({ sub, role, room }), minDelayMs: 50, maxDelayMs: 500 });
  r.connect();
  return r;
}

/** Every durable event a room's handlers got, as comparable records. */
function record(room) {
  const events = [];
  for (const t of ["comment", "comment_deleted", "pinned", "unpinned", "deal", "announcement", "skipped"]) {
    room.on(t, (m) => events.push(JSON.stringify(m)));
  }
  return events;
}

const connected = (r) => until(r, (s) => s.connection === "connected");

test("kill -9 of a client's node mid-show: it resumes on the other node with the same events as a client that never dropped", async () => {
  const [a, b] = await nodes(2);
  const room = uid("kill");
  const host = join([b.url], room, "host", "host");
  await connected(host);
  const mover = join([a.url, b.url], room, "mover");
  const steady = join([b.url], room, "steady");
  await Promise.all([connected(mover), connected(steady)]);
  const [moved, kept] = [record(mover), record(steady)];
  await host.startDeal({ id: "d", product_id: "p", title: "P", price_cents: 100, stock: 50, per_user_limit: 5, duration_ms: 600000 });
  for (let i = 0; i < 30; i++) await host.announce(`before ${i}`);
  await a.kill();
  for (let i = 0; i < 30; i++) await host.announce(`during ${i}`);
  await until(mover, (s) => s.connection === "connected", 15000, "the mover reconnected");
  for (let i = 0; i < 30; i++) await host.announce(`after ${i}`);
  await host.announce("end");
  await Promise.all([mover, steady].map((r) => until(r, (s) => s.announcement?.text === "end")));
  assert.ok(moved.length >= 92, `the mover saw ${moved.length} events`);
  assert.deepEqual(moved, kept);
  assert.deepEqual(mover.state.deals, steady.state.deals);
  for (const r of [host, mover, steady]) r.close();
  await b.stop();
});

test("a reserve sent as the node dies resolves exactly once, with one hold", async () => {
  const [a, b] = await nodes(2);
  const room = uid("drop");
  const host = join([b.url], room, "host", "host");
  await connected(host);
  await host.startDeal({ id: "d", product_id: "p", title: "P", price_cents: 100, stock: 5, per_user_limit: 3, duration_ms: 600000 });
  const buyer = join([a.url, b.url], room, "buyer");
  await until(buyer, (s) => s.connection === "connected" && s.deals.length === 1);
  let settled = 0;
  const tap = buyer.reserve("d", 2).finally(() => (settled += 1));
  await a.kill(); // the reserve may or may not have reached Redis
  const hold = await tap;
  assert.equal(hold.qty, 2);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(settled, 1);
  assert.equal(buyer.state.holds.length, 1);
  const audit = await http(b.url, `/api/rooms/${room}/deals/d`, { tok: token({ sub: "host", role: "host", room }) });
  assert.equal(audit.status, 200);
  assert.equal(audit.body.held, 2, JSON.stringify(audit.body));
  assert.equal(audit.body.stock, audit.body.remaining + audit.body.held + audit.body.sold);
  const order = await buyer.checkout(hold);
  assert.equal(order.reservation, hold.reservation);
  for (const r of [host, buyer]) r.close();
  await b.stop();
});

test("a reserve sent as the connection drops is answered once (the same request_id after the resume)", async () => {
  const [a] = await nodes(1);
  const room = uid("re");
  const host = join([a.url], room, "host", "host");
  await connected(host);
  await host.startDeal({ id: "d", product_id: "p", title: "P", price_cents: 100, stock: 10, per_user_limit: 10, duration_ms: 600000 });
  const buyer = join([a.url], room, "buyer");
  await connected(buyer);
  const taps = [];
  for (let i = 0; i < 5; i++) {
    taps.push(buyer.reserve("d", 1));
    buyer.reconnect(); // the socket goes with the frame maybe in it
    await connected(buyer);
  }
  const holds = await Promise.all(taps);
  assert.equal(new Set(holds.map((h) => h.reservation)).size, 5);
  const audit = await http(a.url, `/api/rooms/${room}/deals/d`, { tok: token({ sub: "host", role: "host", room }) });
  assert.equal(audit.body.held, 5, JSON.stringify(audit.body));
  for (const r of [host, buyer]) r.close();
  await a.stop();
});

test("a node draining (1001) moves its clients to another node without losing an event", async () => {
  const [a, b] = await nodes(2);
  const room = uid("drain");
  const host = join([b.url], room, "host", "host");
  await connected(host);
  const mover = join([a.url, b.url], room, "mover");
  const steady = join([b.url], room, "steady");
  await Promise.all([connected(mover), connected(steady)]);
  const [moved, kept] = [record(mover), record(steady)];
  const reasons = [];
  mover.on("connection", (c) => reasons.push(c.reason));
  for (let i = 0; i < 10; i++) await host.announce(`x ${i}`);
  const stopping = a.stop();
  for (let i = 0; i < 10; i++) await host.announce(`y ${i}`);
  await stopping;
  await host.announce("end");
  await Promise.all([mover, steady].map((r) => until(r, (s) => s.announcement?.text === "end")));
  assert.ok(reasons.includes("going_away"), reasons.join());
  assert.deepEqual(moved, kept);
  for (const r of [host, mover, steady]) r.close();
  await b.stop();
});
