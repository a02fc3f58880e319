// The SDK's room state against a real hub (memory backend): after a show of every event kind,
// `room.state` equals the hub's own room snapshot; buying as promises; typed rejections.

import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { LiveRoom, LiveHubError } from "../livehub-client.js";
import { startHub, token, http, next, until, uid, closeAll } from "./harness.js";

afterEach(closeAll);

let hub;
before(async () => {
  hub = await startHub();
});
after(async () => {
  await hub.stop();
});

function join(room, sub, role = "viewer", extra = {}) {
  const r = new LiveRoom({ url: hub.url, room, token: token({ sub, role, room }), ...extra });
  r.connect();
  return r;
}

const DEAL = (id, stock = 5, limit = 2) => ({
  id,
  product_id: "tee",
  title: `Tee ${id}`,
  price_cents: 1999,
  stock,
  per_user_limit: limit,
  duration_ms: 600000,
});

/** The snapshot's fields the state holds, in the state's shape. */
const dealIn = (s, id) => s.deals.find((d) => d.id === id);

function fromSnapshot(snap) {
  const deals = [...snap.deals].sort((a, b) => a.id.localeCompare(b.id));
  return { seq: snap.seq, likes: snap.likes, pinned: snap.pinned, deals, comments: snap.recent };
}

function fromState(s) {
  const deals = [...s.deals].sort((a, b) => a.id.localeCompare(b.id));
  return { seq: s.seq, likes: s.likes, pinned: s.pinned, deals, comments: s.comments };
}

test("the state equals the hub's room snapshot after a show of every event kind", async () => {
  const id = uid("show");
  const host = join(id, "host1", "host");
  await until(host, (s) => s.connection === "connected");
  const viewer = join(id, "ann");
  await until(viewer, (s) => s.connection === "connected");

  await host.pin({ id: "tee", title: "Organic tee", price_cents: 1999, currency: "USD" });
  await host.startDeal(DEAL("d1", 3, 2));
  await host.startDeal(DEAL("d2", 10, 3));
  const { seq: c1 } = await viewer.comment("hello");
  await viewer.comment("second");
  await host.deleteComment(`c${c1}`);
  await host.announce("Two deals live!");
  await viewer.like(3);
  const hold = await viewer.reserve("d1", 2);
  assert.equal(hold.deal, "d1");
  assert.equal(hold.qty, 2);
  assert.ok(viewer.state.holds.some((h) => h.reservation === hold.reservation));
  const order = await viewer.checkout(hold);
  assert.equal(order.reservation, hold.reservation);
  assert.deepEqual(viewer.state.holds, []);
  assert.equal(viewer.state.orders.length, 1);
  const second = await viewer.reserve("d2", 1);
  await viewer.cancel(second);
  await host.mute("troll", 60000);
  await host.endDeal("d2");
  await host.unpin();
  await host.pin({ id: "mug", title: "Mug", price_cents: 899, currency: "USD" });

  // Counters are coalesced per tick: wait until the viewer's state has the last of them.
  const settled = (s) => s.likes === 3 && dealIn(s, "d1")?.remaining === 1 && s.pinned?.id === "mug";
  await until(viewer, settled);
  await until(host, settled); // the host's counters come on its own tick
  const snap = await http(hub.url, `/api/rooms/${id}`, { tok: token({ sub: "x", room: id }) });
  assert.equal(snap.status, 200);
  assert.deepEqual(fromState(viewer.state), fromSnapshot(snap.body));
  assert.deepEqual(fromState(host.state), fromSnapshot(snap.body));
  assert.equal(viewer.state.announcement.text, "Two deals live!");
  assert.deepEqual(
    viewer.state.deals.map((d) => d.id),
    ["d2", "d1"],
    "newest deal first",
  );
  assert.equal(viewer.deal("d2").status, "ended");
  viewer.close();
  host.close();
});

test("a late joiner's state is the same as one who watched the whole show", async () => {
  const id = uid("late");
  const host = join(id, "h", "host");
  await until(host, (s) => s.connection === "connected");
  const early = join(id, "early");
  await until(early, (s) => s.connection === "connected");
  await host.startDeal(DEAL("a", 4, 2));
  await early.comment("first!");
  await host.pin({ id: "tee", title: "Tee", price_cents: 500, currency: "USD" });
  const h = await early.reserve("a", 1);
  await until(early, (s) => dealIn(s, "a")?.remaining === 3);
  const late = join(id, "late");
  await until(late, (s) => s.connection === "connected" && dealIn(s, "a")?.remaining === 3);
  assert.deepEqual(fromState(late.state), fromState(early.state));
  assert.ok(h.reservation);
  for (const r of [host, early, late]) r.close();
});

test("reserve rejects with a typed reason: over the limit, sold out, a deal that is not live", async () => {
  const id = uid("rej");
  const host = join(id, "h", "host");
  await until(host, (s) => s.connection === "connected");
  await host.startDeal(DEAL("one", 1, 1));
  const a = join(id, "a");
  const b = join(id, "b");
  await until(a, (s) => s.connection === "connected");
  await until(b, (s) => s.connection === "connected");
  await assert.rejects(a.reserve("one", 2), (e) => e instanceof LiveHubError && e.reason === "limit_reached");
  await a.reserve("one", 1);
  await assert.rejects(b.reserve("one", 1), (e) => e.reason === "sold_out");
  await assert.rejects(b.reserve("nope", 1), (e) => ["deal_not_live", "not_found"].includes(e.reason));
  await assert.rejects(a.startDeal(DEAL("x")), (e) => e.reason === "forbidden");
  await assert.rejects(host.startDeal(DEAL("one")), (e) => e.reason === "conflict");
  for (const r of [host, a, b]) r.close();
});

test("durable events reach handlers exactly once each, in seq order", async () => {
  const id = uid("order");
  const host = join(id, "h", "host");
  await until(host, (s) => s.connection === "connected");
  const v = join(id, "v");
  await until(v, (s) => s.connection === "connected");
  const seqs = [];
  for (const t of ["comment", "announcement", "pinned", "deal"]) v.on(t, (m) => seqs.push(m.seq));
  const done = next(v, "announcement", (m) => m.text === "end");
  const sends = [];
  for (let i = 0; i < 40; i++) sends.push(host.announce(`a${i}`));
  sends.push(host.startDeal(DEAL("dd")));
  await Promise.all(sends); // pipelined: nothing waited for its ack before the next went
  v.reconnect(); // a resume in the middle
  for (let i = 0; i < 10; i++) await host.announce(`after ${i}`);
  await host.announce("end");
  await done;
  const sorted = [...seqs].sort((x, y) => x - y);
  assert.deepEqual(seqs, sorted);
  assert.equal(new Set(seqs).size, seqs.length);
  assert.equal(seqs.length, 52);
  host.close();
  v.close();
});

test("a call before connect() or after close() rejects with closed", async () => {
  const r = new LiveRoom({ url: hub.url, room: "nowhere" });
  await assert.rejects(r.reserve("d", 1), (e) => e.reason === "closed");
  assert.throws(() => new LiveRoom({ url: "ftp://x", room: "a" }), TypeError);
  assert.throws(() => new LiveRoom({ url: hub.url, room: "bad room" }), TypeError);
});

test("a room closed by the app can connect again and resumes where it left off", async () => {
  const id = uid("again");
  const host = join(id, "h", "host");
  await until(host, (s) => s.connection === "connected");
  const v = join(id, "v");
  await until(v, (s) => s.connection === "connected");
  await host.announce("one");
  await until(v, (s) => s.announcement?.text === "one");
  v.close();
  await host.announce("two");
  const seen = [];
  v.on("announcement", (m) => seen.push(m.text));
  v.connect();
  await until(v, (s) => s.connection === "connected" && s.announcement?.text === "two");
  assert.deepEqual(seen, ["two"], "the missed event, once");
  const hold = await host.startDeal(DEAL("z")).then(() => v.reserve("z", 1));
  assert.equal(hold.deal, "z");
  host.close();
  v.close();
});

test("a late joiner's state holds the stream, the latest announcement and deals newest first", async () => {
  const id = uid("late2");
  const host = join(id, "h", "host");
  await until(host, (s) => s.connection === "connected");
  await host.startDeal(DEAL("old"));
  await host.startDeal(DEAL("new"));
  await host.setStream("https://cdn.example.com/live/show.m3u8");
  await host.announce("Doors open");
  const late = join(id, "late");
  await until(late, (s) => s.connection === "connected");
  assert.equal(late.state.stream, "https://cdn.example.com/live/show.m3u8");
  assert.equal(late.state.announcement.text, "Doors open");
  assert.deepEqual(late.state.deals.map((d) => d.id), ["new", "old"]);
  assert.ok(late.state.deals.every((d) => typeof d.started_at === "number"));
  assert.equal(late.state.viewers, 1, "the host console is not a viewer");
  await host.setStream(null);
  await until(late, (s) => s.stream === null);
  await assert.rejects(host.setStream("javascript:alert(1)"), (e) => e.reason === "bad_request");
  for (const r of [host, late]) r.close();
});

test("a host mutes and unmutes; its state marks the muted users", async () => {
  const id = uid("mute");
  const host = join(id, "h", "host");
  await until(host, (s) => s.connection === "connected");
  const v = join(id, "loud");
  await until(v, (s) => s.connection === "connected");
  await host.mute("loud", 60000);
  assert.deepEqual(host.state.muted.map((m) => m.user), ["loud"]);
  await assert.rejects(v.comment("hey"), (e) => e.reason === "forbidden");
  const again = join(id, "h2", "host");
  await until(again, (s) => s.connection === "connected");
  assert.deepEqual(again.state.muted.map((m) => m.user), ["loud"], "a console that joins later sees the mutes");
  await host.unmute("loud");
  assert.deepEqual(host.state.muted, []);
  await v.comment("hey");
  await assert.rejects(host.unmute("loud"), (e) => e.reason === "not_found");
  for (const r of [host, v, again]) r.close();
});
