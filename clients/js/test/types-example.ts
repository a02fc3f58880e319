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
off();
room.close();
