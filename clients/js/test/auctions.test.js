// Live auctions (issue 24) through the SDK, against a real hub (memory backend): bidders outbid
// each other and every room's state follows, `too_low` says the least accepted amount, a bid in
// the last seconds moves the end for everyone, the close names the winner and sends them the
// order, and a bid whose answer was lost is sent again with its request id and answered as the
// first time.

import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { LiveRoom, LiveHubError } from "../livehub-client.js";
import { startHub, token, next, until, uid, closeAll } from "./harness.js";

afterEach(closeAll);

let hub;
before(async () => {
  hub = await startHub();
});
after(async () => {
  await hub.stop();
});

function join(room, sub, role = "viewer") {
  const r = new LiveRoom({ url: hub.url, room, token: token({ sub, role, room }) });
  r.connect();
  return r;
}

const AUCTION = (id, durationMs, extendMs = 10000) => ({
  id,
  product_id: "lamp",
  title: "Brass desk lamp",
  start_cents: 1000,
  increment_cents: 100,
  duration_ms: durationMs,
  extend_ms: extendMs,
});

/** A host and two bidders in a fresh room with `auction` live on every screen. */
async function show(auction) {
  const id = uid("auc");
  const host = join(id, "host1", "host");
  await until(host, (s) => s.connection === "connected");
  await host.startAuction(auction);
  const ann = join(id, "ann");
  const bo = join(id, "bo");
  for (const r of [host, ann, bo]) await until(r, (s) => s.connection === "connected" && !!r.auction(auction.id));
  return { id, host, ann, bo };
}

/** Rejects with the LiveHubError `promise` rejects with. */
async function refusal(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof LiveHubError, `not a LiveHubError: ${e}`);
    return e;
  }
  assert.fail("expected a refusal");
}

test("two bidders outbid each other; too_low says the least amount; a late joiner sees the price", async () => {
  const { id, host, ann, bo } = await show(AUCTION("a1", 60000));
  assert.equal(ann.auction("a1").current_cents, null);
  assert.equal(ann.minBid("a1"), 1000, "the first bid is the start price");

  const first = await ann.bid("a1", 1000);
  assert.deepEqual([first.amount_cents, first.current_cents, first.leading], [1000, 1000, true]);
  const mine = ann.myBid("a1");
  assert.deepEqual([mine.amount_cents, mine.max_cents, mine.leading, mine.result], [1000, 1000, true, null]);

  const low = await refusal(bo.bid("a1", 1000));
  assert.equal(low.reason, "too_low");
  assert.equal(low.minCents, 1100, "the price plus one increment");
  await until(bo, (s) => s.auctions[0].bids === 1 && s.auctions[0].leader?.name === "ann");
  assert.equal(bo.minBid("a1"), 1100);

  const outbid = next(ann, "outbid");
  const second = await bo.bid("a1", bo.minBid("a1"));
  assert.deepEqual([second.current_cents, second.leading], [1100, true]);
  const { auction } = await outbid;
  assert.equal(auction.leader.name, "bo");
  assert.equal(ann.myBid("a1").leading, false);
  assert.equal(ann.minBid("a1"), 1200);

  await ann.bid("a1", 1200);
  await until(bo, (s) => s.auctions[0].leader?.name === "ann" && s.myBids[0].leading === false);
  // A proxy bid: bo's maximum answers ann's next bid by itself.
  const proxy = await bo.bid("a1", 1300, { maxCents: 2000 });
  assert.deepEqual([proxy.current_cents, proxy.leading], [1300, true]);
  const answered = await ann.bid("a1", 1400);
  assert.deepEqual([answered.current_cents, answered.leading], [1500, false], "bo's proxy answered");
  assert.equal(bo.minBid("a1"), 2000, "the leader may only raise their own maximum");

  const settled = (s) => s.auctions[0].current_cents === 1500 && s.auctions[0].leader?.name === "bo" && s.auctions[0].bids === 5;
  for (const r of [host, ann, bo]) await until(r, settled);
  assert.equal(ann.myBid("a1").leading, false);
  assert.equal(bo.myBid("a1").leading, true);
  const late = join(id, "cy");
  await until(late, (s) => s.connection === "connected" && settled(s));
  assert.deepEqual(late.auction("a1"), bo.auction("a1"), "the welcome's auction is the one the bidders see");

  // A host may end an auction only while it has no bid.
  const ending = await refusal(host.endAuction("a1"));
  assert.equal(ending.reason, "conflict");
});

test("a late bid extends the countdown for everyone; the winner gets the order, the other sees the result", async () => {
  const { host, ann, bo } = await show(AUCTION("a2", 5000, 3000));
  await ann.bid("a2", 1000);
  const firstEnd = ann.auction("a2").ends_at;
  // Into the last three seconds (the extend window), with a second to spare for the bid.
  await new Promise((r) => setTimeout(r, Math.max(0, firstEnd - 2000 - Date.now())));
  const sentAt = Date.now();
  const snipe = await bo.bid("a2", 1100);
  assert.equal(snipe.leading, true);
  assert.ok(snipe.ends_at > firstEnd, `the end moved: ${firstEnd} -> ${snipe.ends_at}`);
  assert.ok(Math.abs(snipe.ends_at - (sentAt + 3000)) < 1000, `the end is the bid's time plus extend_ms: ${snipe.ends_at - sentAt}`);
  for (const r of [host, ann]) await until(r, (s) => s.auctions[0].ends_at === snipe.ends_at && s.auctions[0].leader?.name === "bo");

  const order = next(bo, "order", (o) => o.auction === "a2", 15000);
  const sold = (s) => s.auctions[0].status === "sold";
  for (const r of [host, ann, bo]) await until(r, sold, 15000, "the close");
  for (const r of [host, ann, bo]) {
    const a = r.auction("a2");
    assert.deepEqual([a.winner.name, a.current_cents, a.bids], ["bo", 1100, 2], "the result is the same on every screen");
  }
  const won = await order;
  assert.deepEqual([won.auction, won.qty, won.price_cents, won.currency], ["a2", 1, 1100, "USD"]);
  assert.equal(won.request_id, undefined, "nobody asked for it");
  await until(bo, (s) => s.myBids[0]?.result === "won" && s.orders.some((o) => o.auction === "a2"));
  assert.equal(ann.myBid("a2").result, "lost");
  assert.deepEqual(ann.state.orders, [], "the loser has no order");
  assert.equal(ann.minBid("a2"), null, "nothing to bid on");
  const late = await refusal(ann.bid("a2", 5000));
  assert.equal(late.reason, "ended");
});

test("a bid whose answer was lost is sent again with its request id and answered as the first time", async () => {
  const { id, ann, bo } = await show(AUCTION("a3", 60000));
  // Ann's first answer is lost on the way (as in a dropped connection).
  let lost = null;
  const receive = ann.receive.bind(ann);
  ann.receive = (data) => {
    const m = JSON.parse(data);
    if (m.type === "bid_accepted" && !lost) {
      lost = m;
      return;
    }
    receive(data);
  };
  const pending = ann.bid("a3", 1000);
  await until(bo, (s) => s.auctions[0].bids === 1, 15000, "ann's bid to land");
  assert.ok(lost, "the answer was held back");
  // Bo outbids: a bid of 1000 now would be too low...
  await bo.bid("a3", 1100);
  await until(ann, (s) => s.auctions[0].bids === 2);
  // ...but the retry after the reconnect is answered as the first time, and counts once.
  ann.reconnect();
  const answer = await pending;
  assert.equal(answer.request_id, lost.request_id);
  assert.deepEqual(
    [answer.amount_cents, answer.current_cents, answer.leading, answer.ends_at],
    [1000, 1000, true, lost.ends_at],
  );
  await until(ann, (s) => s.connection === "connected" && s.auctions[0].bids === 2 && s.myBids[0].leading === false);
  // The hub counted it once: a newcomer's welcome has two bids, bo leading at 1100.
  const late = join(id, "cy");
  await until(late, (s) => s.connection === "connected" && s.auctions.length === 1);
  const a = late.auction("a3");
  assert.deepEqual([a.bids, a.current_cents, a.leader.name], [2, 1100, "bo"]);
});
