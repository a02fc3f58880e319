// A usage example the type declarations are checked against (tsc --noEmit --strict).
import { LiveRoom, LiveHubError, type RoomState, type Hold } from "../livehub-client.js";

const room = new LiveRoom({
  url: ["http://127.0.0.1:8080", "http://127.0.0.1:8081"],
  room: "spring-sale",
  getToken: async () => "a.b.c",
});
const off = room.on("state", (s: RoomState) => {
  const first = s.deals[0];
  if (first) console.log(first.title, first.remaining, first.started_at ?? 0);
  console.log(s.announcement?.text, s.stream, s.holds.length, s.pinned?.price_cents);
});
room.on("connection", ({ state, reason, final }) => console.log(state, reason, final));
room.on("stock", (m) => console.log(m.deal, m.remaining));
room.connect();

async function buy(deal: string): Promise<string | null> {
  try {
    const hold: Hold = await room.reserve(deal, 2);
    const order = await room.checkout(hold);
    return order.order;
  } catch (e) {
    if (e instanceof LiveHubError && e.reason === "sold_out") return null;
    throw e;
  }
}
void buy("d1");
void room.startDeal({ id: "d2", product_id: "tee", price_cents: 1999, stock: 10, per_user_limit: 2, duration_ms: 60000 });
void room.startAuction({ id: "a1", product_id: "lamp", start_cents: 1000, increment_cents: 100, duration_ms: 60000, extend_ms: 10000 });
room.on("outbid", ({ auction }) => console.log(`outbid on ${auction.title}: ${auction.current_cents ?? auction.start_cents}`));

async function bidNext(auction: string): Promise<boolean> {
  const min = room.minBid(auction);
  if (min === null) return false;
  try {
    const accepted = await room.bid(auction, min, { maxCents: min * 2 });
    return accepted.leading && room.myBid(auction)?.result !== "lost";
  } catch (e) {
    if (e instanceof LiveHubError && e.reason === "too_low") return bidNext(auction); // e.minCents moved on
    throw e;
  }
}
void bidNext("a1");
const won = room.state.orders.filter((o) => typeof o.auction === "string").map((o) => o.price_cents);
console.log(won, room.auction("a1")?.winner?.name);
off();
room.close();
