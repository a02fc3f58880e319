// Orders with external payment (issue 23) through the SDK, against a real hub with
// `orders.payment = "external"`: a checkout's order is pending in `room.state.orders`, and the
// shop's settlement over HTTP (a merchant token) reaches the buyer's state as `order_status`.

import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { LiveRoom } from "../livehub-client.js";
import { startHub, token, http, next, until, uid, closeAll } from "./harness.js";

afterEach(closeAll);

let hub;
before(async () => {
  hub = await startHub({ LIVEHUB_ORDERS__PAYMENT: "external" });
});
after(async () => {
  await hub.stop();
});

function join(room, sub, role = "viewer") {
  const r = new LiveRoom({ url: hub.url, room, token: token({ sub, role, room }) });
  r.connect();
  return r;
}

const merchant = () => token({ sub: "shop-backend", role: "merchant", room: "*" });

test("a pending order's state follows the shop's paid and failed calls", async () => {
  const id = uid("pay");
  const host = join(id, "h", "host");
  await until(host, (s) => s.connection === "connected");
  await host.startDeal({
    id: "d",
    product_id: "tee",
    title: "Tee",
    price_cents: 1999,
    stock: 3,
    per_user_limit: 2,
    duration_ms: 600000,
  });
  const buyer = join(id, "b");
  await until(buyer, (s) => s.connection === "connected" && s.deals.length === 1);

  const first = await buyer.checkout(await buyer.reserve("d", 1));
  assert.equal(first.status, "pending");
  assert.ok(first.pay_by > Date.now() - 60000, `pay_by ${first.pay_by}`);
  const second = await buyer.checkout(await buyer.reserve("d", 1));
  await until(buyer, (s) => s.orders.length === 2 && s.orders.every((o) => o.status === "pending"));

  const paidEvent = next(buyer, "order_status", (m) => m.order === first.order);
  const paid = await http(hub.url, `/api/orders/${first.order}/paid`, { method: "POST", tok: merchant() });
  assert.equal(paid.status, 200, paid.text);
  assert.equal((await paidEvent).status, "paid");
  const failed = await http(hub.url, `/api/orders/${second.order}/failed`, { method: "POST", tok: merchant() });
  assert.equal(failed.status, 200, failed.text);
  const s = await until(buyer, (st) => st.orders.find((o) => o.order === second.order)?.status === "failed");
  assert.equal(s.orders.find((o) => o.order === first.order).status, "paid");

  // The failed order's unit is on sale again: the state's live counter shows it.
  await until(buyer, (st) => st.deals[0].remaining === 2);
  // A viewer token cannot settle orders.
  const refused = await http(hub.url, `/api/orders/${first.order}/paid`, { method: "POST", tok: token({ sub: "b", room: id }) });
  assert.equal(refused.status, 403);
  for (const r of [host, buyer]) r.close();
});
