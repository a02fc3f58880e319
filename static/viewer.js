// viewer.js: the shop page viewers use (/rooms/{room}), built on the livehub-client SDK.
//
// The SDK (/static/livehub-client.js, the same module shops' apps use) keeps the connection:
// reconnects with backoff and ?since=, refreshes tokens, resends a reserve, checkout or cancel
// with the same request_id after a drop, closes the socket on pagehide, and keeps room.state
// right from the events. This page draws from room.state alone, plus what only this shopper's
// tab knows: which card a purchase's outcome belongs to, holds and orders kept across a reload,
// and the comment box's notes.
//
// The page: the stage (the room's stream in a <video>, hls.js or native HLS, or a placeholder)
// with the latest announcement over it, the chat, and a shelf with every deal the room shows,
// newest first, the pinned product's highlighted. Each deal card has its own price, "N left",
// countdown, quantity picker within the deal's per_user_limit and Buy; a hold, its Checkout and
// any refusal stay on the deal's card. Live auctions come first on the shelf: each card has the
// current bid and who leads, a countdown that says when a late bid extended it, quick bids at
// the next valid amounts, a maximum (proxy) bid, the bidder's own standing ("You're winning",
// "Outbid"), and at the close the result for everyone and the winner's order.
import { LiveRoom } from "/static/livehub-client.js";

const LH = window.LH;
const { $, el, setText, show } = LH;

const FEED_MAX = 300; // feed items kept in the page
const STICK_PX = 48; // "at the bottom" tolerance for auto-scroll
const LIKE_WINDOW_MS = 300; // extra like clicks within this window are sent together
const SLOW_DOWN_MS = 5000; // how long "slow down" stays under the comment box
const NOTE_MS = 30000; // how long "your hold on X expired" stays in "Your holds and orders"
const QTY_MAX = 10; // the quantity picker offers at most this many
const RESULT_UP_FRONT_MS = 60000; // a closed auction's card stays first on the shelf this long
const ENDING_MS = 10000; // an auction's countdown turns red under this
const EXTENDED_SHOWN_MS = 2500; // how long "Extended +Ns" shows after a late bid moved the end

const page = {
  room: null, // the room id
  live: null, // the LiveRoom
  info: null, // /api/pages
  token: null,
  tokenSource: null,
  readOnly: false,
  conn: "connecting", // connecting | live | reconnecting | not_live | refused | policy
  everLive: false,
  refusal: null,
  user: null,
  cards: new Map(), // deal id -> {node, ...parts}
  auctionCards: new Map(), // auction id -> {node, ...parts, endsAt, extendedBy, extendedUntil}
  auctionUi: new Map(), // auction id -> {busy, notice: {kind, text}}
  auctionOrders: new Map(), // order id -> {order, auction, title, price_cents, currency}
  closedSeen: new Map(), // auction id -> when this page first saw it closed
  ui: new Map(), // deal id -> {busy, notice: {kind, text, when?}, qty}
  holds: new Map(), // reservation -> {reservation, deal, qty, expires_at, busy, notice}
  orders: new Map(), // order id -> {order, reservation, deal, qty, price_cents, currency}
  titles: new Map(), // deal id -> {title, price_cents, currency} (for holds whose deal is gone)
  notes: [], // [{key, text, until}] under "Your holds and orders"
  restored: false,
  mutedUntil: 0,
  commentNote: null,
  likeQueued: 0,
  likeTimer: null,
  likeLastSent: 0,
  stickToBottom: true,
  brokenImages: new Set(),
  stream: undefined, // the URL the stage plays ("" for none)
  hls: null,
  feedAnnouncements: new Set(),
};

// ---- start -------------------------------------------------------------------------------

async function main() {
  page.room = LH.roomFromPath();
  if (!page.room) {
    setText("status", "bad room id");
    document.body.append(el("p", { className: "card", text: "This room id is not valid." }));
    return;
  }
  setText("room-name", page.room);
  document.title = `${page.room} · livehub`;
  page.info = await LH.pageInfo();
  bindUi();
  renderStream();
  const choice = await LH.chooseToken("viewer", page.room, LH.guestName(page.room), page.info, true);
  if (choice) begin(choice);
  else LH.askForToken();
}

function begin(choice) {
  show("signin", false);
  show("app", true);
  page.token = choice.token;
  page.tokenSource = choice.source;
  page.readOnly = !choice.token;
  page.refusal = null;
  page.conn = page.everLive ? "reconnecting" : "connecting";
  if (page.live) page.live.close();
  const opts = { url: location.origin, room: page.room };
  if (choice.source === "dev") {
    // A development token renews itself: the first call keeps this tab's user (and its holds),
    // later calls (ahead of expiry, or after a refusal) mint a new one.
    let calls = 0;
    opts.getToken = async () => {
      calls += 1;
      if (calls > 1 || LH.tokenExpired(page.token)) {
        page.token = await LH.storedDevToken("viewer", page.room, LH.guestName(page.room), true);
      }
      return page.token;
    };
  } else if (choice.token) {
    opts.token = choice.token;
  }
  const live = new LiveRoom(opts);
  page.live = live;
  live.on("state", () => live === page.live && render());
  live.on("connection", (c) => live === page.live && onConnection(c));
  live.on("welcome", (m) => live === page.live && onWelcome(m));
  live.on("not_live", () => {
    if (live !== page.live) return;
    page.conn = "not_live";
    LH.setStatus("status", "not_live");
    render();
  });
  live.on("comment", (c) => live === page.live && addComment(c, false));
  live.on("comment_deleted", (m) => live === page.live && removeComment(m.id));
  live.on("announcement", (m) => live === page.live && addAnnouncement(m));
  live.on("hold_expired", (h) => live === page.live && holdEnded(h.reservation, "expired"));
  live.connect();
  render();
}

/** The SDK's connection state, in the page's words. */
function onConnection({ state, reason, final }) {
  if (state === "connected") {
    page.conn = "live";
    page.everLive = true;
  } else if (state === "connecting") {
    if (page.conn !== "not_live") page.conn = page.everLive ? "reconnecting" : "connecting";
  } else if (reason === "closed") {
    return;
  } else if (final && reason === "policy") {
    page.conn = "policy";
  } else if (final) {
    refused();
    return;
  } else if (reason === "not_live") {
    page.conn = "not_live";
  } else {
    page.conn = page.everLive ? "reconnecting" : "connecting";
  }
  LH.setStatus("status", page.conn === "refused" ? "signin" : page.conn);
  render();
}

/** The hub refused the token for good: ask the room snapshot why, and offer the form. */
async function refused() {
  const r = await LH.probeRoom(page.room, page.token);
  page.refusal = r || { status: 401, code: "unauthorized", message: "" };
  page.conn = "refused";
  LH.setStatus("status", "signin");
  offerSignin(refusalText(page.refusal).form);
  render();
}

function onWelcome(m) {
  page.user = m.you ? m.you.user : null;
  setText("you", m.you && m.you.role !== "viewer" ? `${m.you.name} (${m.you.role})` : m.you ? m.you.name : "");
  if (!page.restored && page.user) {
    page.restored = true;
    restoreBuys();
  }
  const s = page.live.state;
  if (!m.resumed) {
    // A new incarnation of the room (a restart that lost its state): a hold on a deal it no
    // longer has is gone.
    for (const h of [...page.holds.values()]) {
      if (!s.deals.some((d) => d.id === h.deal)) holdEnded(h.reservation, "restart");
    }
  }
  rebuildFeed(s.comments);
}

// ---- sign-in -----------------------------------------------------------------------------

function onSigninSubmit(e) {
  e.preventDefault();
  const token = $("token-input").value.trim();
  if (!token) return;
  LH.session(`livehub.viewer.token.${page.room}`, token);
  LH.session(`livehub.viewer.anon.${page.room}`, null);
  begin({ token, source: "pasted" });
}

function onWatchOnly() {
  LH.session(`livehub.viewer.anon.${page.room}`, "1");
  LH.session(`livehub.viewer.token.${page.room}`, null);
  begin({ token: null, source: "anonymous" });
}

function onSigninAgain() {
  LH.session(`livehub.viewer.anon.${page.room}`, null);
  location.reload();
}

function offerSignin(note, focus) {
  LH.showSignin(note || "");
  if (!focus) return;
  $("signin").scrollIntoView({ block: "nearest" });
  $("token-input").focus({ preventScroll: true });
}

function refusalText(r) {
  const msg = (r && r.message) || "";
  const detail = r ? `${r.code || r.status}${msg ? ": " + msg : ""}` : "";
  let text;
  if (r && r.status === 403) text = "This sign-in is for another show.";
  else if (/missing/i.test(msg)) text = "Sign in to watch this show.";
  else if (/expired/i.test(msg)) text = "Your sign-in expired.";
  else if (/not yet valid/i.test(msg)) text = "Your sign-in is not valid yet.";
  else text = "Your sign-in is not valid.";
  return { text, detail, form: `${text} Paste a new viewer token, or watch only.` };
}

function onBannerAction() {
  if (page.conn === "refused") return offerSignin(refusalText(page.refusal).form, true);
  begin({ token: page.token, source: page.tokenSource });
}

// ---- UI events ---------------------------------------------------------------------------

function bindUi() {
  $("comment-form").addEventListener("submit", onCommentSubmit);
  $("like").addEventListener("click", onLike);
  $("jump").addEventListener("click", () => scrollFeedToBottom());
  $("feed").addEventListener("scroll", onFeedScroll, { passive: true });
  $("banner-action").addEventListener("click", onBannerAction);
  $("signin-form").addEventListener("submit", onSigninSubmit);
  $("watch-only").addEventListener("click", onWatchOnly);
  $("signin-again").addEventListener("click", onSigninAgain);
  $("shelf").addEventListener("click", onShelfClick);
  $("shelf").addEventListener("change", onShelfChange);
  $("shelf").addEventListener("submit", onMaxBidSubmit);
  $("mine-list").addEventListener("click", onShelfClick);
  $("unmute").addEventListener("click", () => {
    const video = $("stream");
    if (video) {
      video.muted = false;
      video.play().catch(() => {});
    }
    show("unmute", false);
  });
  setInterval(tick, 250);
}

function connected() {
  return page.conn === "live" && page.live && page.live.state.connection === "connected";
}

function onCommentSubmit(e) {
  e.preventDefault();
  if (page.readOnly || mutedLeft() > 0 || !connected()) return;
  const input = $("comment-input");
  const text = input.value.trim();
  if (!text) return;
  if (text.length > 500) return commentNote("Too long: 500 characters at most.");
  commentNote(null);
  page.live.comment(text).then(
    () => {
      if (input.value.trim() === text) input.value = "";
    },
    (err) => {
      const message = String(err.message || "");
      if (err.reason === "forbidden" && /muted/i.test(message)) {
        const secs = Number((/(\d+)\s*more second/i.exec(message) || [])[1]) || 60;
        page.mutedUntil = Date.now() + secs * 1000;
        page.commentNote = null;
        render();
      } else if (err.reason === "rate_limited") {
        commentNote("Slow down: you are sending too fast. Wait a few seconds, then send again.", SLOW_DOWN_MS);
      } else {
        commentNote(LH.errorText({ code: err.reason, message: err.detail && err.detail.message }));
      }
    },
  );
}

function commentNote(text, forMs) {
  page.commentNote = text ? { text, until: forMs ? Date.now() + forMs : Infinity } : null;
  renderComposer();
}

function onLike() {
  if (!connected() || page.readOnly) return;
  page.likeQueued += 1;
  bumpLikes(1);
  if (page.likeTimer) return;
  const wait = Math.max(0, page.likeLastSent + LIKE_WINDOW_MS - Date.now());
  page.likeTimer = setTimeout(flushLikes, wait);
}

function flushLikes() {
  page.likeTimer = null;
  const count = Math.min(50, page.likeQueued);
  if (count < 1) return;
  page.likeQueued -= count;
  page.likeLastSent = Date.now();
  page.live.like(count).catch(() => {});
  if (page.likeQueued > 0) page.likeTimer = setTimeout(flushLikes, LIKE_WINDOW_MS);
}

function bumpLikes(n) {
  const node = $("likes");
  node.textContent = String((Number(node.textContent) || 0) + n);
  node.classList.remove("pop");
  void node.offsetWidth; // restart the animation
  node.classList.add("pop");
}

// ---- buying ------------------------------------------------------------------------------

function uiOf(dealId) {
  let u = page.ui.get(dealId);
  if (!u) {
    u = { busy: null, notice: null, qty: 1 };
    page.ui.set(dealId, u);
  }
  return u;
}

function onShelfChange(e) {
  const sel = e.target.closest("select.qty");
  if (!sel) return;
  uiOf(sel.dataset.deal).qty = Number(sel.value) || 1;
  render();
}

function onShelfClick(e) {
  const btn = e.target.closest("button[data-action]");
  if (!btn || btn.disabled) return;
  const { action, deal, reservation } = btn.dataset;
  if (action === "bid") placeBid(btn.dataset.auction, Number(btn.dataset.amount));
  else if (action === "buy") buy(deal);
  else if (action === "checkout") checkout(reservation);
  else if (action === "cancel") cancel(reservation);
}

/** What a refused reserve means, on the deal's card. */
const REFUSED = {
  sold_out: "Sold out: the last one went just before your tap",
  deal_not_live: "Too late: this deal has ended",
  rate_limited: "Too many taps: wait a moment, then try again",
  unavailable: "The shop could not answer: try again",
  timeout: "No answer from the shop: try again",
  disconnected: "The connection dropped: try again",
};

function buy(dealId) {
  const d = page.live.deal(dealId);
  if (!d || !connected()) return;
  const u = uiOf(dealId);
  const qty = Math.max(1, Math.min(u.qty || 1, qtyMax(d)));
  u.busy = "reserve";
  u.notice = null;
  render();
  page.live.reserve(dealId, qty).then(
    (hold) => {
      u.busy = null;
      rememberDeal(d);
      page.holds.set(hold.reservation, {
        reservation: hold.reservation,
        deal: dealId,
        qty: hold.qty,
        expires_at: Number(hold.expires_at),
        busy: null,
        notice: null,
      });
      u.qty = 1;
      render();
    },
    (err) => {
      u.busy = null;
      const text =
        err.reason === "limit_reached"
          ? `You have reached the limit of ${d.per_user_limit} per person for this deal.`
          : REFUSED[err.reason] || `Not bought: ${err.message}`;
      u.notice = { kind: err.reason === "sold_out" ? "bad" : "warn", text, reason: err.reason, at: Date.now() };
      // The hub counts holds and orders made elsewhere (another device): at the limit is at the limit.
      if (err.reason === "limit_reached") u.limitHit = true;
      render();
    },
  );
}

function checkout(reservation) {
  const h = page.holds.get(reservation);
  if (!h || h.busy || !connected()) return;
  h.busy = "checkout";
  h.notice = null;
  render();
  page.live.checkout(reservation).then(
    (o) => {
      page.holds.delete(reservation);
      page.orders.set(o.order, { order: o.order, reservation, deal: o.deal, qty: o.qty, price_cents: o.price_cents, currency: o.currency });
      render();
    },
    (err) => {
      h.busy = null;
      if (err.reason === "not_found") return holdEnded(reservation, "expired");
      h.notice = REFUSED[err.reason] || `Not checked out: ${err.message}`;
      render();
    },
  );
}

function cancel(reservation) {
  const h = page.holds.get(reservation);
  if (!h || h.busy || !connected()) return;
  h.busy = "cancel";
  render();
  page.live.cancel(reservation).then(
    () => {
      page.holds.delete(reservation);
      uiOf(h.deal).notice = { kind: "info", text: "Hold cancelled: the item went back on sale" };
      render();
    },
    (err) => {
      h.busy = null;
      if (err.reason === "not_found") return holdEnded(reservation, "hold_gone");
      h.notice = REFUSED[err.reason] || `Not cancelled: ${err.message}`;
      render();
    },
  );
}

/** A hold that is no more (expired, or lost in a restart): said once, under the shelf. */
function holdEnded(reservation, why) {
  const h = page.holds.get(reservation);
  if (!h) return;
  page.holds.delete(reservation);
  const t = titleOf(h.deal);
  const text =
    why === "restart"
      ? `Your hold ended when the show restarted: ${h.qty} × ${t.title}`
      : `Your hold on ${h.qty} × ${t.title} expired before checkout`;
  page.notes.push({ key: `${why}:${reservation}`, text, until: Date.now() + NOTE_MS });
  render();
}

function rememberDeal(d) {
  page.titles.set(d.id, { title: d.title || d.product_id, price_cents: d.price_cents, currency: d.currency });
}

function titleOf(dealId) {
  const d = page.live && page.live.deal(dealId);
  if (d) rememberDeal(d);
  return page.titles.get(dealId) || { title: dealId, price_cents: 0, currency: "USD" };
}

/** Units of a deal this shopper holds or bought. */
function unitsOf(dealId) {
  let n = 0;
  for (const h of page.holds.values()) if (h.deal === dealId) n += h.qty;
  for (const o of page.orders.values()) if (o.deal === dealId) n += o.qty;
  return n;
}

function qtyMax(d) {
  const limit = Number(d.per_user_limit) || 1;
  return Math.max(1, Math.min(QTY_MAX, limit - unitsOf(d.id), Math.max(1, Number(d.remaining) || 0)));
}

function buysKey() {
  return page.user ? `livehub.viewer.buys.${page.room}.${page.user}` : null;
}

function saveBuys() {
  const key = buysKey();
  if (!key) return;
  const holds = [...page.holds.values()].map(({ reservation, deal, qty, expires_at }) => ({ reservation, deal, qty, expires_at }));
  const orders = [...page.orders.values()];
  const auctionOrders = [...page.auctionOrders.values()];
  const titles = {};
  for (const x of [...holds, ...orders]) titles[x.deal] = titleOf(x.deal);
  const json = JSON.stringify({ holds, orders, titles, auctionOrders });
  if (LH.session(key) !== json) LH.session(key, holds.length || orders.length || auctionOrders.length ? json : null);
}

function restoreBuys() {
  let kept;
  try {
    kept = JSON.parse(LH.session(buysKey()) || "null");
  } catch (_) {
    kept = null;
  }
  if (!kept) return;
  for (const [id, t] of Object.entries(kept.titles || {})) page.titles.set(id, t);
  const now = Date.now();
  for (const h of kept.holds || []) {
    if (h.expires_at > now) page.holds.set(h.reservation, { ...h, busy: null, notice: null });
  }
  for (const o of kept.orders || []) page.orders.set(o.order, o);
  for (const o of kept.auctionOrders || []) page.auctionOrders.set(o.order, o);
}

// ---- auctions ----------------------------------------------------------------------------

function auctionUiOf(id) {
  let u = page.auctionUi.get(id);
  if (!u) {
    u = { busy: false, notice: null };
    page.auctionUi.set(id, u);
  }
  return u;
}

/** What a refused bid means, on the auction's card. */
const BID_REFUSED = {
  ended: "Too late: bidding has ended",
  not_found: "This auction is no longer running",
  rate_limited: "Too many bids at once: wait a moment",
  unavailable: "The shop could not take your bid: try again",
  bad_request: "That amount cannot be bid",
  timeout: "No answer from the shop: check the price and bid again",
  disconnected: "The connection dropped: bid again",
};

/** Bids `amount` (minor units), with `max` as a proxy maximum when given. */
function placeBid(id, amount, max) {
  const a = page.live && page.live.auction(id);
  const u = auctionUiOf(id);
  if (!a || a.status !== "live" || u.busy || !connected() || page.readOnly || !(amount > 0)) return;
  u.busy = true;
  u.notice = null;
  render();
  page.live.bid(id, amount, max ? { maxCents: max } : {}).then(
    (r) => {
      u.busy = false;
      if (max) {
        const input = auctionInput(id);
        if (input) input.value = "";
      }
      u.notice = r.leading
        ? null
        : { kind: "bad", text: `Another bidder's maximum is higher: the bid is ${LH.formatMoney(r.current_cents, a.currency)} now` };
      render();
    },
    (err) => {
      u.busy = false;
      const text =
        err.reason === "too_low" && typeof err.minCents === "number"
          ? `Someone bid first: the next bid is at least ${LH.formatMoney(err.minCents, a.currency)}`
          : BID_REFUSED[err.reason] || `Not bid: ${err.message}`;
      u.notice = { kind: err.reason === "ended" ? "bad" : "warn", text };
      render();
    },
  );
}

function auctionInput(id) {
  const card = page.auctionCards.get(id);
  return card ? card.maxInput : null;
}

/** The max-bid form: bids the least amount now, with the typed maximum as a proxy. */
function onMaxBidSubmit(e) {
  const form = e.target.closest("form.max-form");
  if (!form) return;
  e.preventDefault();
  const id = form.dataset.auction;
  const a = page.live && page.live.auction(id);
  const min = page.live ? page.live.minBid(id) : null;
  if (!a || min === null) return;
  const u = auctionUiOf(id);
  const typed = form.querySelector("input").value.trim();
  const max = LH.parseMoney(typed, a.currency);
  if (!typed || Number.isNaN(max)) {
    u.notice = { kind: "warn", text: `Type your maximum as an amount, such as ${LH.moneyInput(min * 2, a.currency)}` };
  } else if (max < min) {
    u.notice = { kind: "warn", text: `Your maximum must be at least ${LH.formatMoney(min, a.currency)}` };
  } else {
    return placeBid(id, min, max);
  }
  render();
}

function auctionCardFor(a) {
  let card = page.auctionCards.get(a.id);
  if (!card) {
    card = buildAuctionCard(a);
    page.auctionCards.set(a.id, card);
  }
  updateAuctionCard(card, a);
  return card;
}

function buildAuctionCard(a) {
  const q = (cls, tag = "div", props = {}) => el(tag, { className: cls, ...props });
  const c = {};
  c.media = q("media deal-media", "div", { attrs: { "aria-hidden": "true" } });
  c.badge = q("badge deal-status", "span", { attrs: { "aria-live": "polite" } });
  c.title = q("deal-title title");
  c.price = q("price auction-price", "span");
  c.priceLabel = q("auction-price-label muted", "span");
  c.leader = q("auction-leader", "span");
  c.clock = q("auction-clock", "span", { attrs: { "aria-label": "Time left" } });
  c.standing = q("standing", "div", { attrs: { role: "status" } });
  c.bidMin = el("button", { className: "buy bid-min", type: "button", dataset: { action: "bid", auction: a.id } });
  c.bidMore = el("button", { className: "bid-more", type: "button", dataset: { action: "bid", auction: a.id } });
  c.bidRow = el("div", { className: "bid-row" }, c.bidMin, c.bidMore);
  c.maxInput = el("input", {
    className: "max-input",
    type: "text",
    attrs: { inputmode: "decimal", autocomplete: "off", enterkeyhint: "send", "aria-label": "Your maximum bid", placeholder: "Max bid" },
  });
  c.maxButton = el("button", { className: "max-set", type: "submit", text: "Set max" });
  c.maxForm = el("form", { className: "max-form row-form", dataset: { auction: a.id }, attrs: { autocomplete: "off" } }, c.maxInput, c.maxButton);
  c.result = q("result", "div", { attrs: { role: "status" } });
  c.outcome = q("auction-result", "div", { attrs: { role: "status" } });
  c.orders = q("order", "ul");
  c.node = el(
    "article",
    { className: "card auction-card", dataset: { auction: a.id }, attrs: { id: `auction-${a.id}` } },
    el(
      "div",
      { className: "deal-top" },
      c.media,
      el(
        "div",
        { className: "deal-main" },
        el("div", { className: "deal-head" }, (c.eyebrow = el("span", { className: "eyebrow" })), c.badge),
        c.title,
        el("div", { className: "deal-prices" }, c.price, c.priceLabel),
      ),
    ),
    (c.meta = el("div", { className: "auction-meta" }, c.leader, c.clock)),
    c.outcome,
    c.standing,
    c.bidRow,
    c.maxForm,
    c.result,
    c.orders,
  );
  c.endsAt = a.ends_at;
  c.extendedUntil = 0;
  return c;
}

function updateAuctionCard(c, a) {
  const now = Date.now();
  const live = a.status === "live";
  const title = a.title || a.product_id;
  const money = (cents) => LH.formatMoney(cents, a.currency);
  c.node.classList.toggle("is-over", !live);
  c.node.dataset.status = a.status;
  c.node.dataset.endsAt = String(a.ends_at);
  put(c.eyebrow, live ? "Live auction" : "Auction");
  put(c.title, title);
  setMedia(c.media, a.image_url, title);
  show(c.meta, live);
  const bid = a.current_cents !== null && a.current_cents !== undefined;
  put(c.price, money(bid ? a.current_cents : a.start_cents));
  put(c.priceLabel, !bid ? "starting bid" : live ? "current bid" : a.status === "sold" ? "winning bid" : "");
  const bids = `${a.bids} bid${a.bids === 1 ? "" : "s"}`;
  put(c.leader, a.leader ? `${a.leader.name} leads · ${bids}` : live ? "No bids yet: be the first" : "No bids");
  show(c.leader, live);

  // The countdown, and the moment a late bid moved the end.
  if (a.ends_at > c.endsAt && live) {
    c.extendedBy = a.ends_at - c.endsAt;
    c.extendedUntil = now + EXTENDED_SHOWN_MS;
  }
  c.endsAt = a.ends_at;
  const left = a.ends_at - now;
  put(c.clock, !live ? "" : left > 0 ? LH.formatCountdown(left) : "Closing…");
  c.clock.classList.toggle("ending", live && left < ENDING_MS);
  show(c.clock, live);
  // The badge says Live, or for a moment that a late bid extended the countdown.
  const extended = live && now < c.extendedUntil;
  let badge = ["Unsold", "ended"];
  if (extended) badge = [`Extended +${Math.round(c.extendedBy / 1000)}s`, "extended"];
  else if (live) badge = connected() ? ["Live", "live"] : ["Paused", "paused"];
  else if (a.status === "sold") badge = ["Sold", "sold"];
  put(c.badge, badge[0]);
  c.badge.className = `badge deal-status ${badge[1]}`;

  // The result, for everyone.
  put(c.outcome, a.status === "sold" && a.winner ? `Sold to ${a.winner.name} for ${money(a.current_cents)}` : a.status === "unsold" ? "Unsold: no bids" : "");
  c.outcome.className = `auction-result ${a.status}`;
  show(c.outcome, !live);

  // This bidder's own standing.
  const mine = page.live ? page.live.myBid(a.id) : null;
  const ordered = [...page.auctionOrders.values()].filter((o) => o.auction === a.id);
  let standing = null;
  if (ordered.length || (mine && mine.result === "won")) standing = ["won", "You won!"];
  else if (mine && mine.result === "lost") standing = ["lost", "You didn't win this one"];
  else if (mine && live && mine.leading) standing = ["winning", `Your max: ${money(mine.max_cents)}`];
  else if (mine && live) standing = ["outbid", "Outbid: bid again to win"];
  put(c.standing, standing ? standing[1] : "");
  c.standing.className = `standing ${standing ? standing[0] : ""}`;
  show(c.standing, !!standing);

  // Quick bids at the next valid amounts, and a maximum.
  const u = auctionUiOf(a.id);
  const min = page.live ? page.live.minBid(a.id) : null;
  const leading = !!(mine && live && mine.leading);
  const can = live && min !== null && !page.readOnly && connected() && !u.busy && left > 0;
  show(c.bidRow, live);
  show(c.maxForm, live && !page.readOnly);
  if (live) {
    const more = min === null ? null : min + 2 * a.increment_cents;
    let label = min === null ? "Bid" : `Bid ${money(min)}`;
    if (page.readOnly) label = "Sign in to bid";
    else if (!connected()) label = "Paused: reconnecting";
    else if (u.busy) label = "Bidding…";
    else if (leading) label = "You're winning";
    put(c.bidMin, label);
    c.bidMin.dataset.amount = String(min || 0);
    c.bidMin.disabled = !can || leading;
    c.bidMin.classList.toggle("is-leading", leading);
    put(c.bidMore, more === null ? "" : `Bid ${money(more)}`);
    c.bidMore.dataset.amount = String(more || 0);
    c.bidMore.disabled = !can || leading;
    show(c.bidMore, !page.readOnly && connected() && !leading);
    put(c.maxButton, leading ? "Raise max" : "Set max");
    c.maxButton.disabled = !can;
    c.maxInput.disabled = !live || page.readOnly;
    const placeholder = min === null ? "Max bid" : `Max bid (${LH.moneyInput(min + 5 * a.increment_cents, a.currency)})`;
    if (c.maxInput.placeholder !== placeholder) c.maxInput.placeholder = placeholder;
  }

  // The last refusal, while the auction runs; the winner's order.
  const notice = live ? u.notice : null;
  put(c.result, notice ? notice.text : "");
  c.result.className = `result ${notice ? notice.kind : ""}`;
  show(c.result, !!notice);
  syncList(c.orders, ordered.map((o) => ({ key: o.order, text: auctionOrderText(o) })));
  show(c.orders, ordered.length > 0);
}

/** The winner's order for an auction (from the SDK's state: the `order` with `auction`). */
function collectAuctionOrders() {
  const s = page.live ? page.live.state : null;
  if (!s) return;
  for (const o of s.orders) {
    if (!o.auction || page.auctionOrders.has(o.order)) continue;
    const a = page.live.auction(o.auction);
    page.auctionOrders.set(o.order, {
      order: o.order,
      auction: o.auction,
      title: a ? a.title || a.product_id : o.auction,
      price_cents: o.price_cents,
      currency: o.currency,
    });
  }
}

function auctionOrderText(o) {
  return `Order ${o.order} confirmed · ${o.title} · ${LH.formatMoney(o.price_cents, o.currency)}`;
}

// ---- feed --------------------------------------------------------------------------------

function rebuildFeed(recent) {
  $("feed").textContent = "";
  for (const c of recent) addComment(c, true);
  scrollFeedToBottom();
}

function addComment(c, quiet) {
  const feed = $("feed");
  if (feed.querySelector(`.comment[data-id="${CSS.escape(String(c.id))}"]`)) return;
  const mine = page.user && c.user === page.user;
  const item = el(
    "li",
    { className: "comment" + (mine ? " mine" : ""), dataset: { id: c.id, seq: c.seq, user: c.user }, title: LH.formatTime(c.ts) },
    el("span", { className: "name", text: c.name || c.user }),
    el("span", { className: "text", text: c.text }),
  );
  appendFeedItem(item, quiet);
}

function addAnnouncement(a) {
  if (page.feedAnnouncements.has(a.seq)) return;
  page.feedAnnouncements.add(a.seq);
  const item = el(
    "li",
    { className: "announcement", dataset: { seq: a.seq } },
    el("span", { className: "badge", text: "Host" }),
    el("span", { className: "text", text: a.text }),
  );
  appendFeedItem(item, false);
}

function removeComment(id) {
  const node = $("feed").querySelector(`.comment[data-id="${CSS.escape(String(id))}"]`);
  if (node) node.remove();
}

function appendFeedItem(item, quiet) {
  const feed = $("feed");
  feed.append(item);
  while (feed.children.length > FEED_MAX) feed.firstElementChild.remove();
  if (quiet) return;
  if (page.stickToBottom) scrollFeedToBottom();
  else show("jump", true);
}

function onFeedScroll() {
  const feed = $("feed");
  page.stickToBottom = feed.scrollHeight - feed.scrollTop - feed.clientHeight <= STICK_PX;
  if (page.stickToBottom) show("jump", false);
}

function scrollFeedToBottom() {
  const feed = $("feed");
  feed.scrollTop = feed.scrollHeight;
  page.stickToBottom = true;
  show("jump", false);
}

// ---- the stage ---------------------------------------------------------------------------

/** The room's stream (state.stream, set by the host) or the hub's pages.stream_url. */
function streamUrl() {
  const s = page.live ? page.live.state.stream : null;
  const url = s || (page.info && page.info.stream_url) || "";
  return LH.safeMediaUrl(url) ? url : "";
}

function renderStream() {
  const url = streamUrl();
  if (url === page.stream) return;
  page.stream = url;
  const box = $("stage-media");
  if (page.hls) {
    page.hls.destroy();
    page.hls = null;
  }
  box.textContent = "";
  $("stage").classList.toggle("has-video", !!url);
  show("unmute", !!url);
  if (!url) {
    box.append(el("div", { className: "stage-placeholder" }, el("span", { text: "No video right now" })));
    return;
  }
  // No native controls: on a phone they would sit under the chat lines; "Tap for sound" unmutes.
  const video = el("video", { attrs: { id: "stream", autoplay: "", playsinline: "" } });
  video.muted = true; // browsers play muted video by themselves; the viewer unmutes
  video.setAttribute("muted", "");
  box.append(video);
  const isHls = /\.m3u8(\?|#|$)/i.test(new URL(url, location.href).pathname + new URL(url, location.href).search);
  const Hls = window.Hls;
  if (isHls && Hls && Hls.isSupported()) {
    const hls = new Hls({ enableWorker: false });
    page.hls = hls;
    hls.on(Hls.Events.ERROR, (_, data) => {
      video.dataset.hlsError = data.details; // for whoever debugs a stream that does not play
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
      else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else {
    video.src = url; // native HLS (Safari, iOS) or a plain video file
  }
  video.play().catch(() => {});
}

// ---- rendering ---------------------------------------------------------------------------

function put(node, text) {
  const t = text === null || text === undefined ? "" : String(text);
  if (node.textContent !== t) node.textContent = t;
}

function mutedLeft() {
  return Math.max(0, page.mutedUntil - Date.now());
}

function render() {
  const s = page.live ? page.live.state : null;
  if (s) {
    put($("viewers"), s.viewers);
    if (!page.likeTimer) put($("likes"), s.likes);
  }
  renderStream();
  renderBanner();
  renderOnAir();
  renderAnnouncement();
  collectAuctionOrders();
  renderShelf();
  renderMine();
  renderComposer();
  saveBuys();
}

function bannerFor() {
  const s = page.conn;
  if (s === "refused") {
    const r = refusalText(page.refusal);
    return { tone: "bad", text: r.text + " Sign in again to watch, chat and buy.", detail: r.detail, action: "Sign in" };
  }
  if (s === "policy") {
    return { tone: "bad", text: "Disconnected: the hub closed this connection (too many messages). Buying is paused.", action: "Reconnect" };
  }
  if (s === "reconnecting" || (s === "connecting" && page.everLive)) {
    return { tone: "warn", text: "Connection lost. Reconnecting… Buying is paused until it is back." };
  }
  if (s === "not_live") {
    return { tone: "info", text: "The show has not started yet. This page joins by itself when the host goes live." };
  }
  const muted = mutedLeft();
  if (s === "live" && muted > 0) {
    return { tone: "warn", text: `The host muted you: you can comment again in ${LH.formatCountdown(muted)}. You can still watch and buy.` };
  }
  return null;
}

function renderBanner() {
  const b = bannerFor();
  const banner = $("banner");
  show(banner, !!b);
  document.body.classList.toggle("has-banner", !!b);
  if (!b) return;
  banner.className = `banner ${b.tone}`;
  banner.dataset.state = page.conn;
  const text = $("banner-text");
  const full = b.text + (b.detail ? ` (${b.detail})` : "");
  if (text.textContent !== full) {
    text.textContent = b.text;
    if (b.detail) text.append(" ", el("span", { className: "banner-detail", text: `(${b.detail})` }));
  }
  const action = $("banner-action");
  put(action, b.action || "");
  show(action, !!b.action);
}

const ON_AIR = { live: "Live", not_live: "Starting soon", policy: "Disconnected", refused: "Signed out" };

function renderOnAir() {
  put($("stage-label"), ON_AIR[page.conn] || (page.everLive ? "Reconnecting…" : "Connecting…"));
  $("stage").classList.toggle("off-air", page.conn !== "live");
}

function renderAnnouncement() {
  const a = page.live ? page.live.state.announcement : null;
  show("announcement", !!(a && a.text));
  put($("announcement-text"), a ? a.text : "");
}

/** A deal's state as a shopper reads it. */
function phase(d) {
  if (d.status === "ended" || d.ends_at <= Date.now()) return "ended";
  if (d.status === "sold_out" || Number(d.remaining) <= 0) return "claimed";
  return "live";
}

const BADGE = { live: ["Live", "live"], claimed: ["All claimed", "sold_out"], ended: ["Ended", "ended"] };

function renderShelf() {
  const s = page.live ? page.live.state : null;
  const deals = s ? s.deals : [];
  const auctions = s ? s.auctions : [];
  const pinned = s ? s.pinned : null;
  // The pinned product's own card, when no deal on the shelf sells it.
  const pinnedDeal = pinned && deals.some((d) => d.product_id === pinned.id && phase(d) !== "ended");
  renderPinned(pinned && !pinnedDeal ? pinned : null);
  // Live auctions first (and a closed one for a minute, so everyone sees its result), then the
  // pinned product and the deals, then older auction results.
  const now = Date.now();
  const front = [];
  const back = [];
  for (const a of auctions) {
    if (a.status !== "live" && !page.closedSeen.has(a.id)) page.closedSeen.set(a.id, now);
    const recent = a.status === "live" || now - page.closedSeen.get(a.id) < RESULT_UP_FRONT_MS;
    (recent ? front : back).push(auctionCardFor(a).node);
  }
  const dealNodes = [];
  for (const d of deals) {
    rememberDeal(d);
    let card = page.cards.get(d.id);
    if (!card) {
      card = buildCard(d);
      page.cards.set(d.id, card);
    }
    dealNodes.push(card.node);
    updateCard(card, d, pinned);
  }
  dropCards(page.cards, new Set(deals.map((d) => d.id)));
  dropCards(page.auctionCards, new Set(auctions.map((a) => a.id)));
  placeInOrder($("shelf"), [...front, $("pinned"), ...dealNodes, ...back, $("shelf-empty")]);
  show("shelf-empty", deals.length === 0 && auctions.length === 0 && !pinned);
  const live = deals.filter((d) => phase(d) !== "ended").length + auctions.filter((a) => a.status === "live").length;
  put($("shelf-count"), live ? `${live} live` : "");
}

function dropCards(cards, keep) {
  for (const [id, card] of cards) {
    if (!keep.has(id)) {
      card.node.remove();
      cards.delete(id);
    }
  }
}

/** Puts `nodes` into `box` in this order, moving only those out of place (a moved node loses
 * focus, so a card being typed into stays where it is). */
function placeInOrder(box, nodes) {
  let prev = null;
  for (const node of nodes) {
    const inPlace = prev ? prev.nextElementSibling === node : box.firstElementChild === node;
    if (!inPlace) {
      if (prev) prev.after(node);
      else box.prepend(node);
    }
    prev = node;
  }
}

function renderPinned(product) {
  const card = $("pinned");
  show(card, !!product);
  if (!product) return;
  const title = product.title || product.id;
  put(card.querySelector(".title"), title);
  put(card.querySelector(".price"), LH.formatMoney(product.price_cents, product.currency));
  setMedia(card.querySelector(".media"), product.image_url, title);
}

function buildCard(d) {
  const q = (cls, tag = "div", props = {}) => el(tag, { className: cls, ...props });
  const c = {};
  c.media = q("media deal-media", "div", { attrs: { "aria-hidden": "true" } });
  c.eyebrow = q("eyebrow", "span", { text: "Flash deal" });
  c.badge = q("badge deal-status", "span");
  c.title = q("deal-title title");
  c.price = q("price", "span");
  c.was = q("was", "s");
  c.left = q("deal-left", "span");
  c.countdown = q("countdown", "span", { attrs: { "aria-label": "Time left" } });
  c.barFill = q("bar-fill");
  c.status = q("deal-state");
  c.limit = q("deal-limit muted");
  c.qty = el("select", { className: "qty", dataset: { deal: d.id }, attrs: { "aria-label": "Quantity" } });
  c.buy = el("button", { className: "buy", type: "button", dataset: { action: "buy", deal: d.id } });
  c.buyRow = el("div", { className: "buy-row" }, el("label", { className: "qty-label" }, el("span", { className: "muted", text: "Qty" }), c.qty), c.buy);
  c.holds = q("holds");
  c.result = q("result", "div", { attrs: { role: "status" } });
  c.orders = q("order", "ul");
  c.node = el(
    "article",
    { className: "card deal-card", dataset: { deal: d.id }, attrs: { id: `deal-${d.id}` } },
    el(
      "div",
      { className: "deal-top" },
      c.media,
      el("div", { className: "deal-main" }, el("div", { className: "deal-head" }, c.eyebrow, c.badge), c.title, el("div", { className: "deal-prices" }, c.price, c.was)),
    ),
    el("div", { className: "deal-meta" }, c.left, c.countdown),
    el("div", { className: "bar" }, c.barFill),
    c.status,
    c.limit,
    c.buyRow,
    c.holds,
    c.result,
    c.orders,
  );
  c.qtyMax = 0;
  return c;
}

function updateCard(c, d, pinned) {
  const ph = connected() || phase(d) === "ended" ? phase(d) : "paused";
  const title = d.title || d.product_id;
  const isPinned = !!(pinned && pinned.id === d.product_id);
  c.node.classList.toggle("is-pinned", isPinned);
  c.node.classList.toggle("is-over", ph === "ended");
  c.node.classList.toggle("is-claimed", ph === "claimed");
  put(c.eyebrow, isPinned ? "Pinned · flash deal" : "Flash deal");
  const [badgeText, badgeClass] = ph === "paused" ? ["Paused", "paused"] : BADGE[ph];
  put(c.badge, badgeText);
  c.badge.className = `badge deal-status ${badgeClass}`;
  put(c.title, title);
  setMedia(c.media, d.image_url, title);
  put(c.price, LH.formatMoney(d.price_cents, d.currency));
  const was = isPinned && Number(pinned.price_cents) > Number(d.price_cents);
  put(c.was, was ? LH.formatMoney(pinned.price_cents, pinned.currency) : "");
  const remaining = Math.max(0, Number(d.remaining) || 0);
  const left = d.ends_at - Date.now();
  const over = phase(d) === "ended";
  // Ended and all-claimed say so in the line under the bar; no count then.
  put(c.left, over || phase(d) === "claimed" ? "" : `${remaining} left`);
  show(c.barFill.parentElement, !over);
  put(c.countdown, over ? "" : `ends in ${LH.formatCountdown(left)}`);
  c.barFill.style.width = `${over ? 0 : Math.round((100 * remaining) / Math.max(1, Number(d.stock) || 1))}%`;
  put(c.status, over ? "Ended" : phase(d) === "claimed" ? "All claimed: unpaid holds may come back" : "");
  show(c.status, over || phase(d) === "claimed");
  c.status.className = `deal-state ${over ? "ended" : "claimed"}`;

  const units = unitsOf(d.id);
  const limit = Number(d.per_user_limit) || 1;
  put(c.limit, `Limit ${limit} per person${units ? ` · you have ${units}` : ""}`);
  show(c.limit, !over);

  const u = uiOf(d.id);
  const holds = [...page.holds.values()].filter((h) => h.deal === d.id);
  // Buy: hidden during a hold (Checkout is the action) and once the deal is over.
  show(c.buyRow, holds.length === 0 && !over);
  const max = qtyMax(d);
  if (c.qtyMax !== max) {
    c.qtyMax = max;
    c.qty.textContent = "";
    for (let i = 1; i <= max; i++) c.qty.append(el("option", { text: String(i), attrs: { value: String(i) } }));
  }
  u.qty = Math.min(Math.max(1, u.qty || 1), max);
  if (c.qty.value !== String(u.qty)) c.qty.value = String(u.qty);
  let label;
  let enabled = false;
  if (page.readOnly) label = "Sign in to buy";
  else if (ph === "paused") label = "Paused: reconnecting";
  else if (ph === "claimed") label = "All claimed";
  else if (units >= limit || u.limitHit) label = `Limit reached (${limit} per person)`;
  else if (u.busy === "reserve") label = "Reserving…";
  else {
    const price = LH.formatMoney(d.price_cents * u.qty, d.currency);
    label = u.qty > 1 ? `Buy ${u.qty} · ${price}` : `${units ? "Buy another" : "Buy now"} · ${price}`;
    enabled = true;
  }
  put(c.buy, label);
  c.buy.disabled = !enabled;
  c.qty.disabled = !enabled || max <= 1;

  // Holds on this deal, each with its Checkout and Cancel.
  syncHolds(c.holds, holds, d);

  // The last refusal, while it still describes the deal.
  // "Sold out: the last one went..." is dropped once units are back on sale (a hold returned),
  // after a moment: the stock reading of the race may still be on its way.
  if (u.notice && u.notice.reason === "sold_out" && phase(d) === "live" && remaining > 0 && Date.now() - u.notice.at > 2000) {
    u.notice = null;
  }
  const notice = u.notice;
  put(c.result, notice ? notice.text : "");
  c.result.className = `result ${notice ? notice.kind : ""}`;
  show(c.result, !!notice);

  const orders = [...page.orders.values()].filter((o) => o.deal === d.id);
  syncList(c.orders, orders.map((o) => ({ key: o.order, text: orderText(o) })));
  show(c.orders, orders.length > 0);
}

function syncHolds(box, holds, d) {
  const want = holds.map((h) => h.reservation).join(",");
  if (box.dataset.sig !== want) {
    box.dataset.sig = want;
    box.textContent = "";
    for (const h of holds) {
      box.append(
        el(
          "div",
          { className: "hold", dataset: { reservation: h.reservation } },
          el("div", { className: "hold-text" }, "Reserved for you: ", el("strong", { className: "hold-what" }), ". Check out before the timer runs out."),
          el("button", { className: "buy checkout", type: "button", dataset: { action: "checkout", reservation: h.reservation } }),
          el("button", { className: "link cancel", type: "button", dataset: { action: "cancel", reservation: h.reservation }, text: "Cancel hold" }),
          el("div", { className: "result bad hold-note", attrs: { role: "status" } }),
        ),
      );
    }
  }
  for (const node of box.children) {
    const h = page.holds.get(node.dataset.reservation);
    if (!h) continue;
    put(node.querySelector(".hold-what"), `${h.qty} × ${d.title || d.product_id} at ${LH.formatMoney(d.price_cents, d.currency)}`);
    renderHoldButtons(h, node.querySelector(".checkout"), node.querySelector(".cancel"));
    const note = node.querySelector(".hold-note");
    put(note, h.notice || "");
    show(note, !!h.notice);
  }
}

function renderHoldButtons(h, checkoutBtn, cancelBtn) {
  const left = LH.formatCountdown(h.expires_at - Date.now());
  const on = connected();
  let label = `Checkout · ${left}`;
  if (!on) label = `Checkout paused · ${left}`;
  else if (h.busy === "checkout") label = "Checking out…";
  put(checkoutBtn, label);
  checkoutBtn.disabled = !on || !!h.busy;
  put(cancelBtn, h.busy === "cancel" ? "Cancelling…" : "Cancel hold");
  cancelBtn.disabled = !on || !!h.busy;
}

function orderText(o) {
  const t = titleOf(o.deal);
  return `Order ${o.order} confirmed · ${o.qty} × ${t.title} · ${LH.formatMoney(o.price_cents, o.currency)}`;
}

function syncList(list, rows) {
  const sig = rows.map((r) => `${r.key}:${r.text}`).join("\n");
  if (list.dataset.sig === sig) return;
  list.dataset.sig = sig;
  list.textContent = "";
  for (const r of rows) list.append(el("li", { className: r.className || "", text: r.text }));
}

/** Holds and orders whose deal is no longer on the shelf, and notes about ended holds. */
function renderMine() {
  const onShelf = new Set(page.live ? page.live.state.deals.map((d) => d.id) : []);
  const list = $("mine-list");
  const now = Date.now();
  page.notes = page.notes.filter((n) => n.until > now);
  const holds = [...page.holds.values()].filter((h) => !onShelf.has(h.deal));
  const orders = [...page.orders.values()].filter((o) => !onShelf.has(o.deal));
  const onShelfAuctions = new Set(page.live ? page.live.state.auctions.map((a) => a.id) : []);
  const won = [...page.auctionOrders.values()].filter((o) => !onShelfAuctions.has(o.auction));
  const sig = [
    ...holds.map((h) => `h:${h.reservation}`),
    ...orders.map((o) => `o:${o.order}`),
    ...won.map((o) => `o:${o.order}`),
    ...page.notes.map((n) => `n:${n.key}`),
  ].join(",");
  if (list.dataset.sig !== sig) {
    list.dataset.sig = sig;
    list.textContent = "";
    for (const h of holds) {
      list.append(
        el(
          "li",
          { className: "mine-hold", dataset: { reservation: h.reservation } },
          el("span", { className: "mine-what" }),
          el(
            "span",
            { className: "mine-actions" },
            el("button", { className: "small primary mine-checkout", type: "button", dataset: { action: "checkout", reservation: h.reservation } }),
            el("button", { className: "link mine-cancel", type: "button", dataset: { action: "cancel", reservation: h.reservation }, text: "Cancel" }),
          ),
        ),
      );
    }
    for (const o of orders) list.append(el("li", { className: "mine-order", text: orderText(o) }));
    for (const o of won) list.append(el("li", { className: "mine-order", text: auctionOrderText(o) }));
    for (const n of page.notes) list.append(el("li", { className: "mine-note", text: n.text }));
  }
  for (const li of list.querySelectorAll(".mine-hold")) {
    const h = page.holds.get(li.dataset.reservation);
    if (!h) continue;
    const t = titleOf(h.deal);
    put(li.querySelector(".mine-what"), `Reserved: ${h.qty} × ${t.title} · ${LH.formatMoney(t.price_cents, t.currency)}`);
    renderHoldButtons(h, li.querySelector(".mine-checkout"), li.querySelector(".mine-cancel"));
  }
  show("mine", list.children.length > 0);
}

function renderComposer() {
  const ro = page.readOnly;
  const muted = mutedLeft();
  const on = connected();
  const input = $("comment-input");
  input.disabled = ro || muted > 0;
  input.placeholder = ro ? "Watching only: sign in to chat" : muted > 0 ? `Muted for ${LH.formatCountdown(muted)}` : "Say something…";
  $("comment-send").disabled = ro || muted > 0 || !on;
  $("like").disabled = ro || !on;
  show("signin-again", ro);
  let note = null;
  if (muted > 0) note = `The host muted you: you can comment again in ${LH.formatCountdown(muted)}.`;
  else if (page.commentNote && page.commentNote.until > Date.now()) note = page.commentNote.text;
  put($("comment-error"), note || "");
  show("comment-error", !!note);
}

function setMedia(box, url, title) {
  const src = LH.safeMediaUrl(url) && !page.brokenImages.has(url) ? url : "";
  const letter = (String(title || "").trim()[0] || "?").toUpperCase();
  const sig = src ? `img:${src}` : `letter:${letter}`;
  if (box.dataset.sig === sig) return;
  box.dataset.sig = sig;
  box.textContent = "";
  box.classList.toggle("is-empty", !src);
  if (!src) {
    box.append(el("span", { className: "media-letter", text: letter }));
    return;
  }
  const img = el("img", { attrs: { alt: "", loading: "lazy", decoding: "async", referrerpolicy: "no-referrer" } });
  img.addEventListener("error", () => {
    page.brokenImages.add(url);
    if (box.dataset.sig === sig) setMedia(box, url, title);
  });
  img.src = src;
  box.append(img);
}

/** Four times a second: countdowns and hold expiry. */
function tick() {
  const now = Date.now();
  for (const h of [...page.holds.values()]) if (h.expires_at <= now) holdEnded(h.reservation, "expired");
  render();
}

main();
