// viewer.js: the viewer page (/rooms/{room}). Connects to the room as a viewer (token from
// ?token=, the development token endpoint or a pasted token; or anonymously, read-only), shows
// the stage, the comment feed, likes, the pinned product and the flash deal, and runs the
// reserve -> checkout/cancel flow. Uses only textContent for anything from users or the hub.
//
// Everything the page says is drawn by render() from the state below, so a message lasts
// exactly as long as the state it describes: a hold, an order or a refusal belongs to the deal
// that made it (a new deal starts with a clean card), and a banner goes when the connection,
// the sign-in or the mute it describes does.
"use strict";

(function () {
  const { $, el, setText, show } = LH;

  const FEED_MAX = 300; // feed items kept in the page
  const STICK_PX = 48; // "at the bottom" tolerance for auto-scroll
  const ANSWER_TIMEOUT_MS = 6000; // a reserve/checkout/cancel unanswered this long may be retried
  const LIKE_WINDOW_MS = 300; // extra like clicks within this window are sent together
  const SLOW_DOWN_MS = 5000; // how long "slow down" stays under the comment box
  const ENDED_HOLD_MS = 30000; // how long "your hold on X expired" stays in "Your holds and orders"
  const PURCHASE = new Set(["reserve", "checkout", "cancel"]);
  const HOLD_ENDINGS = new Set(["expired", "hold_gone", "released", "lost", "error"]); // listed under "Your holds and orders"

  const state = {
    room: null,
    hub: null,
    token: null,
    tokenSource: null, // "url" | "dev" | "pasted" | "anonymous"
    readOnly: false,
    you: null,
    conn: "connecting", // connecting | live | reconnecting | policy | not_live | refused
    everLive: false, // has this page been in the room (then "connecting" means reconnecting)
    refusal: null, // {status, code, message}: why the hub refused the token
    devRenewed: false, // a refused development token was replaced once since the last welcome
    pinned: null,
    products: new Map(), // product id -> Product, every product seen pinned (a deal's "was" price)
    deals: new Map(), // deal id -> Deal, as the hub last described it
    dealOrder: [], // deal ids, oldest first
    buys: new Map(), // deal key -> Purchase: this shopper's holds, orders and last outcome
    pending: new Map(), // request_id -> {kind, key, reservation, text, sentAt}
    mutedUntil: 0, // Date.now() at which the host's mute ends
    commentNote: null, // {text, until}: the comment box's last refusal
    brokenImages: new Set(),
    savedBuys: null, // the purchases as last kept in sessionStorage (JSON)
    restoredFor: null, // the storage key the purchases were restored from
    stickToBottom: true,
    likeQueued: 0,
    likeTimer: null,
    likeLastSent: 0,
  };

  // ---- startup ---------------------------------------------------------------------------

  async function main() {
    state.room = LH.roomFromPath();
    if (!state.room) {
      setText("status", "bad room id");
      document.body.append(el("p", { className: "card", text: "This room id is not valid." }));
      return;
    }
    setText("room-name", state.room);
    document.title = `${state.room} · livehub`;
    const info = await LH.pageInfo();
    renderStage(info.stream_url);
    bindUi();
    const choice = await LH.chooseToken("viewer", state.room, LH.guestName(state.room), info, true);
    if (choice) begin(choice);
    else LH.askForToken();
  }

  function onSigninSubmit(e) {
    e.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    LH.session(`livehub.viewer.token.${state.room}`, token);
    LH.session(`livehub.viewer.anon.${state.room}`, null);
    switchIdentity({ token, source: "pasted" });
  }

  function onWatchOnly() {
    LH.session(`livehub.viewer.anon.${state.room}`, "1");
    LH.session(`livehub.viewer.token.${state.room}`, null);
    switchIdentity({ token: null, source: "anonymous" });
  }

  /** Starts with `choice`, or (already running, e.g. the old token was refused) reconnects. */
  function switchIdentity(choice) {
    if (!state.hub) return begin(choice);
    state.token = choice.token;
    state.tokenSource = choice.source;
    state.readOnly = !choice.token;
    state.refusal = null;
    state.conn = "connecting";
    show("signin", false);
    render();
    state.hub.retry();
  }

  /** Leaves watch-only mode: forget the choice and ask again. */
  function onSigninAgain() {
    LH.session(`livehub.viewer.anon.${state.room}`, null);
    location.reload();
  }

  /** Shows the token form (the token was refused); `focus` when the shopper asked for it. */
  function offerSignin(note, focus) {
    LH.showSignin(note || "");
    if (!focus) return;
    $("signin").scrollIntoView({ block: "nearest" });
    $("token-input").focus({ preventScroll: true });
  }

  function begin(choice) {
    show("signin", false);
    show("app", true);
    state.token = choice.token;
    state.tokenSource = choice.source;
    state.readOnly = !choice.token;
    state.hub = new LH.HubSocket({
      room: state.room,
      getToken,
      onMessage: handleMessage,
      onState,
      onRefused,
    });
    render();
    state.hub.start();
    setInterval(tick, 250);
  }

  /**
   * Token for the next connection. A development token is renewed when it expires; one the hub
   * refuses is renewed by onRefused. Not merely because upgrades failed: while the hub is away
   * they all fail, and a new development token is a new user, without this one's holds.
   */
  async function getToken() {
    if (state.tokenSource === "dev" && LH.tokenExpired(state.token)) {
      state.token = await LH.storedDevToken("viewer", state.room, LH.guestName(state.room), true);
    }
    return state.token;
  }

  /**
   * An upgrade failed before the socket opened. The browser is not told the HTTP status, so ask
   * the room snapshot, which follows the same authorization as joining: a 401/403 means the
   * token will not work (say so now instead of reconnecting for ever); anything else (the hub
   * is away, a connection cap) means keep trying.
   */
  async function onRefused() {
    const r = await LH.probeRoom(state.room, state.token);
    if (!r || (r.status !== 401 && r.status !== 403)) return false;
    if (state.tokenSource === "dev" && !state.devRenewed) {
      state.devRenewed = true; // development tokens renew themselves, once per refusal
      state.token = await LH.storedDevToken("viewer", state.room, LH.guestName(state.room), true);
      return false;
    }
    state.refusal = r;
    state.conn = "refused";
    LH.setStatus("status", "signin");
    offerSignin(refusalText(r).form);
    render();
    return true;
  }

  function onState(s) {
    state.conn = s;
    LH.setStatus("status", s);
    render();
  }

  function renderStage(streamUrl) {
    const stage = $("stage");
    stage.textContent = "";
    const onAir = el(
      "div",
      { className: "on-air" },
      el("span", { className: "live-dot" }),
      el("span", { attrs: { id: "stage-label" } }, "Connecting…"),
    );
    if (streamUrl && LH.safeMediaUrl(streamUrl)) {
      const video = el("video", {
        attrs: { id: "stream", autoplay: "", playsinline: "", controls: "" },
      });
      video.muted = true;
      video.setAttribute("muted", "");
      video.src = streamUrl;
      onAir.classList.add("overlay");
      stage.append(video, onAir);
    } else {
      stage.append(el("div", { className: "stage-placeholder" }, onAir));
    }
  }

  // ---- UI events -------------------------------------------------------------------------

  function bindUi() {
    $("comment-form").addEventListener("submit", onCommentSubmit);
    $("like").addEventListener("click", onLike);
    $("buy").addEventListener("click", onBuy);
    $("checkout").addEventListener("click", () => cardHold() && checkout(cardHold().reservation));
    $("cancel").addEventListener("click", () => cardHold() && cancel(cardHold().reservation));
    $("jump").addEventListener("click", () => scrollFeedToBottom());
    $("feed").addEventListener("scroll", onFeedScroll, { passive: true });
    $("banner-action").addEventListener("click", onBannerAction);
    $("signin-form").addEventListener("submit", onSigninSubmit);
    $("watch-only").addEventListener("click", onWatchOnly);
    $("signin-again").addEventListener("click", onSigninAgain);
  }

  /** Sends one command; false (nothing sent) while the page is not in the room. */
  function send(msg) {
    return isConnected() && state.hub.send(msg);
  }

  function isConnected() {
    return !!(state.hub && state.hub.connected && state.conn === "live");
  }

  function onCommentSubmit(e) {
    e.preventDefault();
    if (state.readOnly || mutedLeft() > 0) return;
    const input = $("comment-input");
    const text = input.value.trim();
    if (!text) return;
    if (text.length > 500) return commentNote("Too long: 500 characters at most.");
    const rid = LH.requestId("c");
    if (!send({ type: "comment", text, request_id: rid })) return render(); // Send is paused
    state.pending.set(rid, { kind: "comment", text, sentAt: Date.now() });
    commentNote(null);
  }

  function commentNote(text, forMs) {
    state.commentNote = text ? { text, until: forMs ? Date.now() + forMs : Infinity } : null;
    renderComposer();
  }

  /** The first click goes out at once; clicks right after it are summed into one like. */
  function onLike() {
    if (!isConnected() || state.readOnly) return;
    state.likeQueued += 1;
    bumpLikes(1);
    if (state.likeTimer) return;
    const wait = Math.max(0, state.likeLastSent + LIKE_WINDOW_MS - Date.now());
    state.likeTimer = setTimeout(flushLikes, wait);
  }

  function flushLikes() {
    state.likeTimer = null;
    const count = Math.min(50, state.likeQueued);
    if (count < 1) return;
    state.likeQueued -= count;
    state.likeLastSent = Date.now();
    send({ type: "like", count });
    if (state.likeQueued > 0) state.likeTimer = setTimeout(flushLikes, LIKE_WINDOW_MS);
  }

  /** Optimistic local bump; the next `likes` total from the hub replaces it. */
  function bumpLikes(n) {
    const node = $("likes");
    node.textContent = String((Number(node.textContent) || 0) + n);
    node.classList.remove("pop");
    void node.offsetWidth; // restart the animation
    node.classList.add("pop");
  }

  function onBannerAction() {
    const s = state.conn;
    if (s === "refused") return offerSignin(refusalText(state.refusal).form, true);
    if (s === "policy") return state.hub.retry();
    state.hub.reconnectNow();
  }

  // ---- purchases -------------------------------------------------------------------------
  // A Purchase is this shopper's side of one deal: {key, dealId, title, price_cents, currency,
  // limit, holds: [{reservation, qty, expires_at, checkoutRid, cancelRid}], orders: [{order,
  // qty, price_cents, currency}], retryRid (a reserve to repeat with the same request_id),
  // limitHit, notice: {kind, text?, at} (the last outcome that is not a hold or an order)}.
  // It is keyed by the deal's id and end time, so a deal id used again (after a hub restart)
  // is a new deal with a clean card.

  function dealKey(d) {
    return `${d.id}@${d.ends_at}`;
  }

  function purchaseFor(d) {
    const key = dealKey(d);
    let p = state.buys.get(key);
    if (!p) {
      p = { key, dealId: d.id, holds: [], orders: [], retryRid: null, limitHit: false, notice: null };
      state.buys.set(key, p);
    }
    // Kept with the purchase, so its holds and orders still say what they are for when the
    // deal is gone.
    p.title = dealTitle(d);
    p.price_cents = d.price_cents;
    p.currency = d.currency;
    p.limit = Number(d.per_user_limit) || 1;
    return p;
  }

  /** The deal a purchase is for, while the hub still describes that same deal. */
  function dealOf(p) {
    const d = state.deals.get(p.dealId);
    return d && dealKey(d) === p.key ? d : null;
  }

  function findHold(reservation) {
    for (const p of state.buys.values()) {
      const hold = p.holds.find((h) => h.reservation === reservation);
      if (hold) return { p, hold };
    }
    return null;
  }

  function unitsOf(p) {
    let n = 0;
    for (const h of p.holds) n += Number(h.qty) || 1;
    for (const o of p.orders) n += Number(o.qty) || 1;
    return n;
  }

  /** Is a command with this request_id sent and not yet answered (nor given up on)? */
  function waiting(rid) {
    const pend = rid && state.pending.get(rid);
    return !!pend && Date.now() - pend.sentAt < ANSWER_TIMEOUT_MS;
  }

  function reserving(p) {
    return waiting(p.retryRid);
  }

  function holdBusy(hold) {
    return waiting(hold.checkoutRid) || waiting(hold.cancelRid);
  }

  function onBuy() {
    if (state.readOnly) return offerSignin("Paste a viewer token to buy.", true);
    const d = currentDeal();
    if (!d) return;
    const p = purchaseFor(d);
    if (p.holds.length || displayStatus(d) !== "live" || reserving(p) || atLimit(p)) return;
    const rid = p.retryRid || LH.requestId("rsv"); // the same request_id never holds twice
    if (!send({ type: "reserve", request_id: rid, deal: d.id, qty: 1 })) return render();
    p.retryRid = rid; // kept until answered: a retry repeats it
    p.notice = null;
    state.pending.set(rid, { kind: "reserve", key: p.key, sentAt: Date.now() });
    render();
  }

  function checkout(reservation) {
    const found = findHold(reservation);
    if (!found || holdBusy(found.hold)) return;
    found.hold.checkoutRid = found.hold.checkoutRid || LH.requestId("chk");
    sendHoldCommand("checkout", found, found.hold.checkoutRid);
  }

  function cancel(reservation) {
    const found = findHold(reservation);
    if (!found || holdBusy(found.hold)) return;
    found.hold.cancelRid = found.hold.cancelRid || LH.requestId("cxl");
    sendHoldCommand("cancel", found, found.hold.cancelRid);
  }

  function sendHoldCommand(kind, { p, hold }, rid) {
    if (!send({ type: kind, request_id: rid, reservation: hold.reservation })) return render();
    p.notice = null;
    state.pending.set(rid, { kind, key: p.key, reservation: hold.reservation, sentAt: Date.now() });
    render();
  }

  /** After a reconnect: repeat unanswered purchase commands with their request_ids. */
  function resendPending() {
    for (const [rid, pend] of state.pending) {
      if (!PURCHASE.has(pend.kind)) {
        state.pending.delete(rid); // a comment's answer went with the old socket
        continue;
      }
      const p = state.buys.get(pend.key);
      const d = p && dealOf(p);
      if (!p || (pend.kind === "reserve" ? !d : !findHold(pend.reservation))) {
        state.pending.delete(rid);
        continue;
      }
      const msg =
        pend.kind === "reserve"
          ? { type: "reserve", request_id: rid, deal: d.id, qty: 1 }
          : { type: pend.kind, request_id: rid, reservation: pend.reservation };
      if (state.hub.send(msg)) pend.sentAt = Date.now();
    }
  }

  // Holds and orders are kept in sessionStorage for this room and user, so a reload of the tab
  // still shows them (and can check the holds out).

  function buysKey() {
    return state.you && state.you.user ? `livehub.viewer.buys.${state.room}.${state.you.user}` : null;
  }

  function saveBuys() {
    const key = buysKey();
    if (!key) return;
    const kept = [];
    for (const p of state.buys.values()) {
      if (!p.holds.length && !p.orders.length) continue;
      kept.push({
        key: p.key,
        dealId: p.dealId,
        title: p.title,
        price_cents: p.price_cents,
        currency: p.currency,
        limit: p.limit,
        holds: p.holds.map((h) => ({ reservation: h.reservation, qty: h.qty, expires_at: h.expires_at })),
        orders: p.orders,
      });
    }
    const json = JSON.stringify(kept);
    if (json === state.savedBuys) return;
    state.savedBuys = json;
    LH.session(key, kept.length ? json : null);
  }

  /** Once per user: the purchases kept by an earlier load of this tab. */
  function restoreBuys() {
    const key = buysKey();
    if (!key || state.restoredFor === key) return;
    state.restoredFor = key;
    let kept;
    try {
      kept = JSON.parse(LH.session(key) || "[]");
    } catch (_) {
      return;
    }
    if (!Array.isArray(kept)) return;
    const str = (v) => (typeof v === "string" ? v : "");
    for (const k of kept) {
      if (!k || typeof k.key !== "string" || state.buys.has(k.key)) continue;
      const p = {
        key: k.key,
        dealId: str(k.dealId),
        title: str(k.title) || str(k.dealId),
        price_cents: Number(k.price_cents) || 0,
        currency: str(k.currency) || "USD",
        limit: Number(k.limit) || 1,
        holds: [],
        orders: [],
        retryRid: null,
        limitHit: false,
        notice: null,
      };
      // Holds only on deals the hub still has (the others went with them).
      const live = !!dealOf(p);
      for (const h of Array.isArray(k.holds) && live ? k.holds : []) {
        if (!h || typeof h.reservation !== "string") continue;
        p.holds.push({
          reservation: h.reservation,
          qty: Number(h.qty) || 1,
          expires_at: Number(h.expires_at) || 0,
          checkoutRid: null,
          cancelRid: null,
        });
      }
      for (const o of Array.isArray(k.orders) ? k.orders : []) {
        if (!o || typeof o.order !== "string") continue;
        p.orders.push({ order: o.order, qty: Number(o.qty) || 1, price_cents: Number(o.price_cents) || 0, currency: str(o.currency) || "USD" });
      }
      if (p.holds.length || p.orders.length) state.buys.set(p.key, p);
    }
  }

  /** Ends a hold that did not become an order, and says why on its deal. */
  function endHold(p, reservation, kind) {
    p.holds = p.holds.filter((h) => h.reservation !== reservation);
    p.notice = { kind, at: Date.now() };
  }

  // ---- messages --------------------------------------------------------------------------

  const HANDLERS = {
    welcome: onWelcome,
    comment: (m) => addComment(m),
    comment_deleted: (m) => removeComment(m.id),
    announcement: (m) => addAnnouncement(m),
    pinned: (m, hub) => !hub.isReplay(m.seq) && setPinned(m.product),
    unpinned: (m, hub) => !hub.isReplay(m.seq) && setPinned(null),
    deal: (m, hub) => !hub.isReplay(m.seq) && upsertDeal(m.deal),
    stock: onStock,
    viewers: (m) => setText("viewers", m.count),
    likes: (m) => setText("likes", m.total),
    reserved: onReserved,
    rejected: onRejected,
    order: onOrder,
    released: onReleased,
    ack: onAck,
    error: onError,
  };

  function handleMessage(msg, hub) {
    const h = HANDLERS[msg.type];
    if (h) h(msg, hub);
    render();
  }

  function onWelcome(m) {
    show("signin", false);
    state.refusal = null;
    state.devRenewed = false;
    state.everLive = true;
    state.you = m.you || null;
    setText("you", state.you && !state.readOnly ? `you: ${state.you.name || state.you.user}` : "");
    setText("viewers", m.viewers);
    setText("likes", m.likes);
    if (!m.resumed) rebuildFeed(m.recent || []);
    setPinned(m.pinned || null);
    state.deals = new Map();
    state.dealOrder = [];
    for (const d of m.deals || []) upsertDeal(d);
    restoreBuys();
    // A hold on a deal the hub no longer has (a restart that lost its inventory) is gone.
    for (const p of state.buys.values()) {
      for (const h of p.holds.slice()) if (!dealOf(p)) endHold(p, h.reservation, "lost");
    }
    resendPending();
  }

  function onStock(m) {
    const d = state.deals.get(m.deal);
    if (!d) return;
    const p = state.buys.get(dealKey(d));
    // Stock came back (a hold expired or was cancelled, maybe one of this shopper's in
    // another tab): the limit may allow another one now.
    if (p && Number(m.remaining) > Number(d.remaining)) p.limitHit = false;
    d.remaining = m.remaining;
  }

  function onReserved(m) {
    const pend = state.pending.get(m.request_id);
    state.pending.delete(m.request_id);
    const d = state.deals.get(m.deal);
    const p = pend ? state.buys.get(pend.key) : d ? purchaseFor(d) : null;
    if (!p) return;
    if (p.retryRid === m.request_id) p.retryRid = null;
    if (!p.holds.some((h) => h.reservation === m.reservation)) {
      p.holds.push({
        reservation: m.reservation,
        qty: Number(m.qty) || 1,
        expires_at: Number(m.expires_at) || 0,
        checkoutRid: null,
        cancelRid: null,
      });
    }
    if (d && dealKey(d) === p.key && typeof m.remaining === "number") d.remaining = m.remaining;
    p.notice = null;
  }

  function onRejected(m) {
    const pend = state.pending.get(m.request_id);
    // An answer to nothing this page is waiting for says nothing about what it shows.
    if (!pend || !PURCHASE.has(pend.kind)) return;
    state.pending.delete(m.request_id);
    const p = state.buys.get(pend.key);
    if (!p) return;
    const d = dealOf(p);
    if (pend.kind === "reserve") {
      if (m.reason !== "unavailable") p.retryRid = null;
      if (m.reason === "limit_reached") p.limitHit = true;
      if (m.reason === "sold_out" && d) d.remaining = 0; // the stock event follows
      if (m.reason === "deal_not_live" && d) d.status = "ended";
      p.notice = { kind: m.reason, at: Date.now() };
    } else if (m.reason === "not_found") {
      endHold(p, pend.reservation, pend.kind === "cancel" ? "released" : "hold_gone");
    } else {
      p.notice = { kind: "hold_retry", at: Date.now() };
    }
  }

  function onOrder(m) {
    const pend = state.pending.get(m.request_id);
    state.pending.delete(m.request_id);
    const found = findHold(m.reservation);
    let p = found ? found.p : pend ? state.buys.get(pend.key) : null;
    if (!p) {
      const d = state.deals.get(m.deal);
      if (!d) return;
      p = purchaseFor(d);
    }
    p.holds = p.holds.filter((h) => h.reservation !== m.reservation);
    if (!p.orders.some((o) => o.order === m.order)) {
      p.orders.push({
        order: m.order,
        qty: Number(m.qty) || 1,
        price_cents: m.price_cents,
        currency: m.currency,
      });
    }
    p.notice = null;
  }

  function onReleased(m) {
    state.pending.delete(m.request_id);
    const found = findHold(m.reservation);
    if (found) endHold(found.p, m.reservation, "released");
  }

  function onAck(m) {
    const pend = state.pending.get(m.request_id);
    if (!pend) return;
    state.pending.delete(m.request_id);
    if (pend.kind === "comment") {
      const input = $("comment-input");
      if (input.value.trim() === pend.text) input.value = "";
      state.commentNote = null;
    }
  }

  function onError(m) {
    const pend = m.request_id ? state.pending.get(m.request_id) : null;
    if (pend) state.pending.delete(m.request_id);
    const code = String(m.code || "");
    const message = String(m.message || "");
    if (pend && PURCHASE.has(pend.kind)) {
      const p = state.buys.get(pend.key);
      if (!p) return;
      if (pend.kind === "reserve" && code !== "unavailable") p.retryRid = null;
      p.notice = { kind: "error", text: LH.errorText(m), at: Date.now() };
      return;
    }
    // The comment box's refusals (and a frame refused without a request id).
    const muted = code === "forbidden" && /muted/i.test(message);
    if (muted) {
      const secs = Number((/(\d+)\s*more second/i.exec(message) || [])[1]) || 60;
      state.mutedUntil = Date.now() + secs * 1000;
      state.commentNote = null;
    } else if (code === "rate_limited") {
      commentNote("Slow down: you are sending too fast. Wait a few seconds, then send again.", SLOW_DOWN_MS);
    } else {
      commentNote(LH.errorText(m));
    }
  }

  // ---- feed ------------------------------------------------------------------------------

  function rebuildFeed(recent) {
    $("feed").textContent = "";
    for (const c of recent) addComment(c, true);
    scrollFeedToBottom();
  }

  function addComment(c, quiet) {
    const feed = $("feed");
    if (feed.querySelector(`.comment[data-id="${CSS.escape(String(c.id))}"]`)) return;
    const mine = state.you && c.user === state.you.user;
    const item = el(
      "li",
      {
        className: "comment" + (mine ? " mine" : ""),
        dataset: { id: c.id, seq: c.seq, user: c.user },
        title: LH.formatTime(c.ts),
      },
      el("span", { className: "name", text: c.name || c.user }),
      el("span", { className: "text", text: c.text }),
    );
    appendFeedItem(item, quiet);
  }

  function addAnnouncement(a) {
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
    if (state.stickToBottom) scrollFeedToBottom();
    else show("jump", true);
  }

  function onFeedScroll() {
    const feed = $("feed");
    state.stickToBottom = feed.scrollHeight - feed.scrollTop - feed.clientHeight <= STICK_PX;
    if (state.stickToBottom) show("jump", false);
  }

  function scrollFeedToBottom() {
    const feed = $("feed");
    feed.scrollTop = feed.scrollHeight;
    state.stickToBottom = true;
    show("jump", false);
  }

  // ---- products and deals ----------------------------------------------------------------

  function setPinned(product) {
    state.pinned = product;
    if (product && product.id) state.products.set(product.id, product);
    const card = $("pinned");
    if (!product) return;
    const title = product.title || product.id;
    card.querySelector(".title").textContent = title;
    card.querySelector(".price").textContent = LH.formatMoney(product.price_cents, product.currency);
    setMedia(card.querySelector(".media"), product.image_url, title);
  }

  /** Adds or updates a deal. A deal id the hub reuses for a new deal goes to the end. */
  function upsertDeal(deal) {
    if (!deal || !deal.id) return;
    const known = state.deals.get(deal.id);
    if (known && dealKey(known) !== dealKey(deal)) {
      state.dealOrder = state.dealOrder.filter((id) => id !== deal.id);
    }
    if (!known || dealKey(known) !== dealKey(deal)) state.dealOrder.push(deal.id);
    state.deals.set(deal.id, Object.assign({}, deal));
  }

  /** The product a deal is for, when it was pinned on this page (for its regular price). */
  function productOf(d) {
    return state.products.get(d.product_id) || null;
  }

  /** The deal's product title: the hub carries it in every deal. */
  function dealTitle(d) {
    return (typeof d.title === "string" && d.title) || d.product_id || d.id;
  }

  /** The deal on the card: the most recently started live deal, else the most recent one. */
  function currentDeal() {
    const ids = state.dealOrder;
    for (let i = ids.length - 1; i >= 0; i--) {
      const d = state.deals.get(ids[i]);
      if (d && displayStatus(d) === "live") return d;
    }
    return ids.length ? state.deals.get(ids[ids.length - 1]) : null;
  }

  function displayStatus(d) {
    if (d.status === "ended" || (d.ends_at && d.ends_at <= Date.now())) return "ended";
    if (d.status === "sold_out" || Number(d.remaining) <= 0) return "sold_out";
    return "live";
  }

  function atLimit(p) {
    return p.limitHit || unitsOf(p) >= p.limit;
  }

  /** A product picture, or (no picture, or it fails to load) a tile with the title's initial. */
  function setMedia(box, url, title) {
    const src = LH.safeMediaUrl(url) && !state.brokenImages.has(url) ? url : "";
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
    // alt="": the title is printed next to the picture, and a broken picture must not show it.
    const img = el("img", { attrs: { alt: "", loading: "lazy", decoding: "async", referrerpolicy: "no-referrer" } });
    img.addEventListener("error", () => {
      state.brokenImages.add(url);
      if (box.dataset.sig === sig) setMedia(box, url, title);
    });
    img.src = src;
    box.append(img);
  }

  // ---- rendering -------------------------------------------------------------------------

  function put(node, text) {
    const t = text === null || text === undefined ? "" : String(text);
    if (node.textContent !== t) node.textContent = t;
  }

  function mutedLeft() {
    return Math.max(0, state.mutedUntil - Date.now());
  }

  function render() {
    saveBuys();
    renderBanner();
    renderOnAir();
    renderDeal();
    renderPinned();
    renderMine();
    renderComposer();
  }

  /** What a refusal means for the shopper: the banner line and the sign-in form's note. */
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

  function bannerFor() {
    const s = state.conn;
    if (s === "refused") {
      const r = refusalText(state.refusal);
      return { tone: "bad", text: r.text + " Sign in again to watch, chat and buy.", detail: r.detail, action: "Sign in" };
    }
    if (s === "policy") {
      return {
        tone: "bad",
        text: "Disconnected: the hub closed this connection (too many messages). Buying is paused.",
        action: "Reconnect",
      };
    }
    if (s === "reconnecting" || (s === "connecting" && state.everLive)) {
      return state.everLive
        ? { tone: "warn", text: "Connection lost. Reconnecting… Buying is paused until it is back.", action: "Retry now" }
        : { tone: "warn", text: "Cannot reach the show. Retrying…", action: "Retry now" };
    }
    if (s === "not_live") {
      return { tone: "info", text: "The show has not started yet. This page joins by itself when the host goes live." };
    }
    const muted = mutedLeft();
    if (s === "live" && muted > 0) {
      return {
        tone: "warn",
        text: `The host muted you: you can comment again in ${LH.formatCountdown(muted)}. You can still watch and buy.`,
      };
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
    banner.dataset.state = state.conn;
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

  const ON_AIR = {
    live: "Live",
    not_live: "Starting soon",
    policy: "Disconnected",
    refused: "Signed out",
  };

  /** The stage says Live only while this page is in the room. */
  function renderOnAir() {
    const s = state.conn;
    const label = $("stage-label");
    if (label) put(label, ON_AIR[s] || (state.everLive ? "Reconnecting…" : "Connecting…"));
    $("stage").classList.toggle("off-air", s !== "live");
  }

  const STATUS_LABEL = { live: "Live", sold_out: "Sold out", ended: "Deal over", paused: "Paused" };

  function renderDeal() {
    const d = currentDeal();
    const card = $("deal");
    show(card, !!d);
    if (!d) return;
    const p = purchaseFor(d);
    const product = productOf(d);
    const title = dealTitle(d);
    card.dataset.id = d.id;
    card.dataset.key = p.key;
    put(card.querySelector(".title"), title);
    put(card.querySelector(".price"), LH.formatMoney(d.price_cents, d.currency));
    const was = product && product.price_cents > d.price_cents;
    put(card.querySelector(".was"), was ? LH.formatMoney(product.price_cents, product.currency) : "");
    setMedia(card.querySelector(".media"), d.image_url || (product && product.image_url), title);
    const remaining = Math.max(0, Number(d.remaining) || 0);
    const stock = Math.max(1, Number(d.stock) || 1);
    put($("deal-left"), `${remaining} left`);
    $("deal-bar").style.width = `${Math.min(100, (remaining / stock) * 100).toFixed(1)}%`;
    const st = displayStatus(d);
    const badge = $("deal-status");
    // Out of the room, the page cannot vouch that the deal is still live.
    const shown = st === "live" && !isConnected() ? "paused" : st;
    put(badge, STATUS_LABEL[shown]);
    badge.className = "badge " + shown;
    card.classList.toggle("is-over", st !== "live");
    const units = unitsOf(p);
    put(
      card.querySelector(".deal-limit"),
      `Limit ${p.limit} per person` + (units ? ` · you have ${units}` : ""),
    );
    const left = (Number(d.ends_at) || 0) - Date.now();
    put(card.querySelector(".countdown"), st === "ended" || left <= 0 ? "ended" : `ends in ${LH.formatCountdown(left)}`);
    renderBuy(d, p, st);
    renderCardHold(p);
    const note = noticeText(p, d);
    const result = $("buy-result");
    put(result, note ? note.text : "");
    result.className = "result" + (note ? " " + note.tone : "");
    show(result, !!note);
    renderOrders($("order"), p);
  }

  function renderBuy(d, p, st) {
    const buy = $("buy");
    const holding = p.holds.length > 0;
    show(buy, !holding); // while holding, Checkout is the action
    let label;
    let enabled = false;
    if (state.readOnly) [label, enabled] = ["Sign in to buy", true];
    else if (st === "ended") label = "Deal over";
    else if (!isConnected()) label = "Paused: reconnecting…";
    else if (st === "sold_out") label = "Sold out";
    else if (atLimit(p)) label = `Limit reached (${p.limit} per person)`;
    else if (reserving(p)) label = "Reserving…";
    else if (p.retryRid) [label, enabled] = ["Try again", true];
    else [label, enabled] = [`${unitsOf(p) ? "Buy another" : "Buy now"} · ${LH.formatMoney(d.price_cents, d.currency)}`, true];
    put(buy, label);
    buy.disabled = !enabled;
    buy.dataset.state = enabled ? "ready" : "off";
  }

  /** The card's hold: the oldest hold on the card's deal (any others are listed below). */
  function cardHold() {
    const d = currentDeal();
    const p = d && state.buys.get(dealKey(d));
    return p && p.holds.length ? p.holds[0] : null;
  }

  function renderCardHold(p) {
    const hold = p.holds[0] || null;
    show("hold", !!hold);
    if (!hold) return;
    put($("hold").querySelector(".hold-what"), `${hold.qty} × ${p.title} at ${LH.formatMoney(p.price_cents, p.currency)}`);
    renderHoldButtons(hold, $("checkout"), $("cancel"));
  }

  function renderHoldButtons(hold, checkoutBtn, cancelBtn) {
    const left = LH.formatCountdown(hold.expires_at - Date.now());
    const connected = isConnected();
    const checkingOut = waiting(hold.checkoutRid);
    const cancelling = waiting(hold.cancelRid);
    let label = `Checkout · ${left}`;
    if (checkingOut) label = "Checking out…";
    else if (!connected) label = `Checkout paused · ${left}`;
    put(checkoutBtn, label);
    checkoutBtn.disabled = !connected || checkingOut || cancelling;
    put(cancelBtn, cancelling ? "Cancelling…" : "Cancel hold");
    cancelBtn.disabled = !connected || checkingOut || cancelling;
  }

  /** The purchase's last outcome, while the state it describes lasts; null otherwise. */
  function noticeText(p, d) {
    const holding = p.holds.length > 0;
    const st = d ? displayStatus(d) : "ended";
    const n = p.notice;
    if (!n) {
      if (p.retryRid && !reserving(p) && !holding && st === "live") {
        return { text: "No answer from the shop yet. Tap Try again: it will not reserve twice.", tone: "warn" };
      }
      return null;
    }
    if (n.kind === "error") return { text: n.text, tone: "bad" };
    if (n.kind === "hold_retry") {
      return holding ? { text: "The shop did not answer. Tap Checkout again.", tone: "warn" } : null;
    }
    if (holding || reserving(p)) return null;
    switch (n.kind) {
      case "sold_out":
        return st === "sold_out" ? { text: "Sold out: the last one went just before your tap.", tone: "bad" } : null;
      case "limit_reached":
        return p.limitHit ? { text: `You have reached the limit of ${p.limit} per person for this deal.`, tone: "warn" } : null;
      case "unavailable":
        return p.retryRid && st === "live" ? { text: "The shop did not answer. Tap Try again: it will not reserve twice.", tone: "warn" } : null;
      case "expired":
        return { text: "Your hold expired and went back on sale.", tone: "bad" };
      case "hold_gone":
        return { text: "Your hold had already ended, so it could not be checked out.", tone: "bad" };
      case "released":
        return { text: "Hold cancelled: it went back on sale.", tone: "info" };
      case "lost":
        return { text: "Your hold ended when the show restarted.", tone: "bad" };
      default:
        return null; // deal_not_live: the card says "Deal over"
    }
  }

  function orderText(o, p) {
    return `Order ${o.order} confirmed · ${o.qty} × ${p.title} · ${LH.formatMoney(o.price_cents, o.currency)}`;
  }

  function renderOrders(list, p) {
    syncRows(
      list,
      p.orders.map((o) => ({
        key: `o:${o.order}`,
        build: () => el("li", { className: "order-line" }),
        update: (li) => put(li, `✓ ${orderText(o, p)}`),
      })),
    );
    show(list, p.orders.length > 0);
  }

  /** The card hides the pinned product while it is selling that very product. */
  function renderPinned() {
    const pinned = state.pinned;
    const d = currentDeal();
    const onCard = d && displayStatus(d) !== "ended" && d.product_id === (pinned && pinned.id);
    show("pinned", !!pinned && !onCard);
  }

  /** Holds and orders on deals that are not on the card, each naming its product. */
  function renderMine() {
    const d = currentDeal();
    const cardKey = d ? dealKey(d) : null;
    const rows = [];
    const now = Date.now();
    for (const p of state.buys.values()) {
      const onCard = p.key === cardKey;
      p.holds.forEach((hold, i) => {
        if (onCard && i === 0) return;
        rows.push({ key: `h:${hold.reservation}`, build: () => buildHoldRow(hold.reservation), update: (li) => updateHoldRow(li, p, hold) });
      });
      if (!onCard) {
        for (const o of p.orders) {
          rows.push({ key: `o:${o.order}`, build: () => el("li", { className: "mine-order" }), update: (li) => put(li, `✓ ${orderText(o, p)}`) });
        }
        const recent = p.notice && HOLD_ENDINGS.has(p.notice.kind) && now - p.notice.at < ENDED_HOLD_MS;
        const note = recent ? noticeText(p, dealOf(p)) : null;
        if (note) {
          rows.push({
            key: `n:${p.key}`,
            build: () => el("li", { className: "mine-note" }),
            update: (li) => put(li, `${p.title}: ${note.text}`),
          });
        }
      }
    }
    syncRows($("mine-list"), rows);
    show("mine", rows.length > 0);
  }

  function buildHoldRow(reservation) {
    return el(
      "li",
      { className: "mine-hold" },
      el("div", { className: "mine-what" }),
      el(
        "div",
        { className: "mine-actions" },
        el("button", { className: "primary small mine-checkout", type: "button", onClick: () => checkout(reservation) }),
        el("button", { className: "link mine-cancel", type: "button", onClick: () => cancel(reservation) }),
      ),
    );
  }

  function updateHoldRow(li, p, hold) {
    put(li.querySelector(".mine-what"), `Reserved: ${hold.qty} × ${p.title} · ${LH.formatMoney(p.price_cents, p.currency)}`);
    renderHoldButtons(hold, li.querySelector(".mine-checkout"), li.querySelector(".mine-cancel"));
  }

  /** Makes `list`'s children the rows, in order, reusing each row's node by its key. */
  function syncRows(list, rows) {
    const old = new Map();
    for (const node of list.children) old.set(node.dataset.key, node);
    let prev = null;
    for (const row of rows) {
      let node = old.get(row.key);
      old.delete(row.key);
      if (!node) {
        node = row.build();
        node.dataset.key = row.key;
      }
      row.update(node);
      const want = prev ? prev.nextSibling : list.firstChild;
      if (node !== want) list.insertBefore(node, want);
      prev = node;
    }
    for (const node of old.values()) node.remove();
  }

  function renderComposer() {
    const ro = state.readOnly;
    const muted = mutedLeft();
    const connected = isConnected();
    const input = $("comment-input");
    input.disabled = ro || muted > 0;
    input.placeholder = ro
      ? "Watching only: sign in to chat"
      : muted > 0
        ? `Muted for ${LH.formatCountdown(muted)}`
        : "Say something…";
    $("comment-send").disabled = ro || muted > 0 || !connected;
    $("like").disabled = ro || !connected;
    show("signin-again", ro);
    let note = null;
    if (muted > 0) note = `The host muted you: you can comment again in ${LH.formatCountdown(muted)}.`;
    else if (state.commentNote && state.commentNote.until > Date.now()) note = state.commentNote.text;
    put($("comment-error"), note || "");
    show("comment-error", !!note);
  }

  /** Runs four times a second: countdowns, hold expiry, unanswered requests. */
  function tick() {
    const now = Date.now();
    for (const p of state.buys.values()) {
      for (const h of p.holds.slice()) if (h.expires_at <= now) endHold(p, h.reservation, "expired");
    }
    render();
  }

  document.addEventListener("DOMContentLoaded", main);
})();
