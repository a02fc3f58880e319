// viewer.js: the viewer page (/rooms/{room}). Connects to the room as a viewer (token from
// ?token=, the development token endpoint or a pasted token; or anonymously, read-only), shows
// the stage, the comment feed, likes, the pinned product and the flash deal, and runs the
// reserve -> checkout/cancel flow. Uses only textContent for anything from users or the hub.
"use strict";

(function () {
  const { $, el, setText, show, askForToken, showSignin } = LH;

  const FEED_MAX = 300; // feed items kept in the page
  const STICK_PX = 48; // "at the bottom" tolerance for auto-scroll
  const ANSWER_TIMEOUT_MS = 6000; // a reserve/checkout/cancel unanswered this long may be retried
  const LIKE_WINDOW_MS = 300; // extra like clicks within this window are sent together

  const state = {
    room: null,
    hub: null,
    token: null,
    tokenSource: null, // "url" | "dev" | "pasted" | "anonymous"
    readOnly: false,
    you: null,
    pinned: null,
    deals: new Map(), // id -> Deal
    dealOrder: [], // deal ids, oldest first
    holds: [], // {reservation, deal, qty, expires_at, checkoutRid, cancelRid}, oldest first
    pending: new Map(), // request_id -> {kind, ...}
    reserveRetry: null, // {rid, deal}: reuse this request_id (after unavailable / no answer)
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
    const choice = await chooseToken(info);
    if (choice) begin(choice);
    else askForToken();
  }

  /** Picks a token without asking: ?token=, a pasted one kept for this tab, or a dev token. */
  function chooseToken(info) {
    return LH.chooseToken("viewer", state.room, LH.guestName(state.room), info, true);
  }



  function onSigninSubmit(e) {
    e.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    LH.session(`livehub.viewer.token.${state.room}`, token);
    LH.session(`livehub.viewer.anon.${state.room}`, null);
    if (!state.hub) return begin({ token, source: "pasted" });
    // Already running (the old token was refused): switch tokens and reconnect.
    state.token = token;
    state.tokenSource = "pasted";
    state.readOnly = false;
    applyReadOnly();
    show("signin", false);
    state.hub.retry();
  }

  function onWatchOnly() {
    LH.session(`livehub.viewer.anon.${state.room}`, "1");
    LH.session(`livehub.viewer.token.${state.room}`, null);
    if (!state.hub) return begin({ token: null, source: "anonymous" });
    state.token = null;
    state.tokenSource = "anonymous";
    state.readOnly = true;
    applyReadOnly();
    show("signin", false);
    state.hub.retry();
  }

  /** Leaves watch-only mode: forget the choice and ask again. */
  function onSigninAgain() {
    LH.session(`livehub.viewer.anon.${state.room}`, null);
    location.reload();
  }

  function begin(choice) {
    show("signin", false);
    show("app", true);
    state.token = choice.token;
    state.tokenSource = choice.source;
    state.readOnly = !choice.token;
    applyReadOnly();
    state.hub = new LH.HubSocket({
      room: state.room,
      getToken,
      onMessage: handleMessage,
      onState,
    });
    state.hub.start();
    setInterval(tick, 250);
  }

  /** Token for the next connection; a dev token is re-fetched when expired or refused. */
  async function getToken(refresh) {
    if (state.tokenSource === "dev" && (refresh || LH.tokenExpired(state.token))) {
      state.token = await LH.storedDevToken("viewer", state.room, LH.guestName(state.room), true);
    } else if (refresh && state.token) {
      // A token we cannot renew keeps being refused (or the hub is away): offer the form while
      // retrying.
      showSignin("Still cannot connect with this token. Paste another, or keep waiting.");
    }
    return state.token;
  }

  function applyReadOnly() {
    const ro = state.readOnly;
    $("comment-input").disabled = ro;
    $("comment-send").disabled = ro;
    $("like").disabled = ro;
    $("comment-input").placeholder = ro ? "Watching only: sign in to comment" : "Say something…";
    show("signin-again", ro);
    renderDeal();
  }

  function onState(s) {
    LH.setStatus("status", s);
    // The stage says Live only while the room is live on this page.
    state.conn = s;
    renderOnAir();
    show("reconnect", s === "policy");
    renderDeal();
  }

  function renderOnAir() {
    const s = state.conn;
    const label = $("stage-label");
    if (label) label.textContent = s === "live" ? "Live" : s === "not_live" ? "Starting soon" : "Offline";
    const stage = $("stage");
    if (stage) stage.classList.toggle("off-air", s !== "live");
  }

  function renderStage(streamUrl) {
    const stage = $("stage");
    stage.textContent = "";
    if (streamUrl && LH.safeMediaUrl(streamUrl)) {
      const video = el("video", {
        attrs: { id: "stream", autoplay: "", playsinline: "", controls: "" },
      });
      video.muted = true;
      video.setAttribute("muted", "");
      video.src = streamUrl;
      stage.append(video);
    } else {
      stage.append(
        el("div", { className: "stage-placeholder" }, el("span", { className: "live-dot" }), el("span", { attrs: { id: "stage-label" } }, "Live")),
      );
      renderOnAir();
    }
  }

  // ---- UI events -------------------------------------------------------------------------

  function bindUi() {
    $("comment-form").addEventListener("submit", onCommentSubmit);
    $("like").addEventListener("click", onLike);
    $("buy").addEventListener("click", onBuy);
    $("checkout").addEventListener("click", onCheckout);
    $("cancel").addEventListener("click", onCancel);
    $("jump").addEventListener("click", () => scrollFeedToBottom());
    $("feed").addEventListener("scroll", onFeedScroll, { passive: true });
    $("reconnect").addEventListener("click", () => state.hub && state.hub.retry());
    $("signin-form").addEventListener("submit", onSigninSubmit);
    $("watch-only").addEventListener("click", onWatchOnly);
    $("signin-again").addEventListener("click", onSigninAgain);
  }

  function onCommentSubmit(e) {
    e.preventDefault();
    const input = $("comment-input");
    const text = input.value.trim();
    if (!text) return;
    if (text.length > 500) return commentError("Too long: 500 characters at most.");
    const rid = LH.requestId("c");
    if (!state.hub.send({ type: "comment", text, request_id: rid })) {
      return commentError("Not connected, try again in a moment.");
    }
    state.pending.set(rid, { kind: "comment", text });
  }

  function commentError(text) {
    setText("comment-error", text);
    show("comment-error", !!text);
  }

  /** The first click goes out at once; clicks right after it are summed into one like. */
  function onLike() {
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
    state.hub.send({ type: "like", count });
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

  // ---- buying ----------------------------------------------------------------------------

  function onBuy() {
    const deal = currentDeal();
    if (!deal || state.readOnly) return;
    let rid;
    if (state.reserveRetry && state.reserveRetry.deal === deal.id) {
      rid = state.reserveRetry.rid; // same request_id: never a second hold
    } else {
      rid = LH.requestId("rsv");
    }
    if (!state.hub.send({ type: "reserve", request_id: rid, deal: deal.id, qty: 1 })) {
      return buyResult("Not connected, try again in a moment.", "warn");
    }
    state.reserveRetry = { rid, deal: deal.id };
    state.pending.set(rid, { kind: "reserve", deal: deal.id, sentAt: Date.now() });
    buyResult("Reserving…", "info");
    renderDeal();
  }

  function onCheckout() {
    const hold = currentHold();
    if (!hold) return;
    hold.checkoutRid = hold.checkoutRid || LH.requestId("chk");
    sendHoldCommand("checkout", hold, hold.checkoutRid);
  }

  function onCancel() {
    const hold = currentHold();
    if (!hold) return;
    hold.cancelRid = hold.cancelRid || LH.requestId("cxl");
    sendHoldCommand("cancel", hold, hold.cancelRid);
  }

  function sendHoldCommand(kind, hold, rid) {
    const msg = { type: kind, request_id: rid, reservation: hold.reservation };
    if (!state.hub.send(msg)) return buyResult("Not connected, try again in a moment.", "warn");
    state.pending.set(rid, { kind, reservation: hold.reservation, sentAt: Date.now() });
    $("checkout").disabled = true;
    $("cancel").disabled = true;
  }

  function buyResult(text, tone) {
    const node = $("buy-result");
    node.textContent = text || "";
    node.className = "result" + (tone ? " " + tone : "");
    show(node, !!text);
  }

  function awaitingReserve() {
    for (const p of state.pending.values()) {
      if (p.kind === "reserve" && Date.now() - p.sentAt < ANSWER_TIMEOUT_MS) return true;
    }
    return false;
  }

  function currentHold() {
    return state.holds.length ? state.holds[state.holds.length - 1] : null;
  }

  function removeHold(reservation) {
    state.holds = state.holds.filter((h) => h.reservation !== reservation);
    renderHold();
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
  }

  function onWelcome(m) {
    if (state.hub) show("signin", false);
    state.you = m.you || null;
    setText("you", state.you && !state.readOnly ? `you: ${state.you.name || state.you.user}` : "");
    setText("viewers", m.viewers);
    setText("likes", m.likes);
    if (!m.resumed) rebuildFeed(m.recent || []);
    setPinned(m.pinned || null);
    state.deals = new Map();
    state.dealOrder = [];
    for (const d of m.deals || []) upsertDeal(d, true);
    renderDeal();
  }

  function onStock(m) {
    const d = state.deals.get(m.deal);
    if (!d) return;
    d.remaining = m.remaining;
    renderDeal();
  }

  function onReserved(m) {
    state.pending.delete(m.request_id);
    if (state.reserveRetry && state.reserveRetry.rid === m.request_id) state.reserveRetry = null;
    if (!state.holds.some((h) => h.reservation === m.reservation)) {
      state.holds.push({
        reservation: m.reservation,
        deal: m.deal,
        qty: m.qty,
        expires_at: m.expires_at,
        checkoutRid: null,
        cancelRid: null,
      });
    }
    show("order", false);
    buyResult("Reserved! Check out before the timer runs out.", "ok");
    renderHold();
    renderDeal();
  }

  function onRejected(m) {
    const p = state.pending.get(m.request_id) || { kind: "reserve" };
    state.pending.delete(m.request_id);
    const text = LH.REJECT_TEXT[m.reason] || "Try again";
    if (p.kind === "reserve") {
      if (m.reason !== "unavailable" && state.reserveRetry && state.reserveRetry.rid === m.request_id) {
        state.reserveRetry = null;
      }
    } else if (m.reason === "not_found" && p.reservation) {
      removeHold(p.reservation);
    }
    buyResult(text, m.reason === "unavailable" ? "warn" : "bad");
    renderHold();
    renderDeal();
  }

  function onOrder(m) {
    state.pending.delete(m.request_id);
    removeHold(m.reservation);
    setText("order-id", m.order);
    const qty = Number(m.qty) || 1;
    setText("order-detail", ` · ${qty} × ${LH.formatMoney(m.price_cents, m.currency)}`);
    show("order", true);
    buyResult("", null);
    renderDeal();
  }

  function onReleased(m) {
    state.pending.delete(m.request_id);
    removeHold(m.reservation);
    buyResult("Hold released", "info");
    renderDeal();
  }

  function onAck(m) {
    const p = state.pending.get(m.request_id);
    if (!p) return;
    state.pending.delete(m.request_id);
    if (p.kind === "comment") {
      const input = $("comment-input");
      if (input.value.trim() === p.text) input.value = "";
      commentError("");
    }
  }

  function onError(m) {
    const p = m.request_id ? state.pending.get(m.request_id) : null;
    if (p) state.pending.delete(m.request_id);
    const text = LH.errorText(m);
    if (p && (p.kind === "reserve" || p.kind === "checkout" || p.kind === "cancel")) {
      if (p.kind === "reserve" && m.code !== "unavailable") state.reserveRetry = null;
      buyResult(text, "bad");
      renderHold();
      renderDeal();
    } else {
      commentError(text);
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
      el("span", { className: "text", text: c.text })
    );
    appendFeedItem(item, quiet);
  }

  function addAnnouncement(a) {
    const item = el(
      "li",
      { className: "announcement", dataset: { seq: a.seq } },
      el("span", { className: "badge", text: "Host" }),
      el("span", { className: "text", text: a.text })
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

  // ---- pinned product ----------------------------------------------------------------------

  function setPinned(product) {
    state.pinned = product;
    const card = $("pinned");
    show(card, !!product);
    if (!product) return renderDeal();
    card.querySelector(".title").textContent = product.title || product.id;
    card.querySelector(".price").textContent = LH.formatMoney(product.price_cents, product.currency);
    const media = card.querySelector(".product-media");
    media.textContent = "";
    if (LH.safeMediaUrl(product.image_url)) {
      const img = el("img", { attrs: { alt: product.title || "", loading: "lazy", referrerpolicy: "no-referrer" } });
      img.src = product.image_url;
      media.append(img);
    }
    show(media, media.childElementCount > 0);
    renderDeal();
  }

  // ---- flash deal --------------------------------------------------------------------------

  /** Adds or updates a deal; a known deal keeps its place in start order. */
  function upsertDeal(deal, quiet) {
    if (!deal || !deal.id) return;
    if (!state.deals.has(deal.id)) state.dealOrder.push(deal.id);
    state.deals.set(deal.id, Object.assign({}, deal));
    if (!quiet) renderDeal();
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

  const STATUS_LABEL = { live: "live", sold_out: "Sold out", ended: "Deal over" };

  function renderDeal() {
    const d = currentDeal();
    const card = $("deal");
    show(card, !!d);
    if (!d) return;
    const product = state.pinned && state.pinned.id === d.product_id ? state.pinned : null;
    card.dataset.id = d.id;
    card.querySelector(".title").textContent = product ? product.title : d.product_id;
    card.querySelector(".price").textContent = LH.formatMoney(d.price_cents, d.currency);
    const was = card.querySelector(".was");
    const showWas = product && product.price_cents > d.price_cents;
    was.textContent = showWas ? LH.formatMoney(product.price_cents, product.currency) : "";
    const remaining = Math.max(0, Number(d.remaining) || 0);
    const stock = Math.max(1, Number(d.stock) || 1);
    setText("deal-left", `${remaining} left`);
    $("deal-bar").style.width = `${Math.min(100, (remaining / stock) * 100).toFixed(1)}%`;
    const st = displayStatus(d);
    const badge = $("deal-status");
    badge.textContent = STATUS_LABEL[st];
    badge.className = "badge " + st;
    card.classList.toggle("is-over", st !== "live");
    card.querySelector(".deal-limit").textContent = `Limit ${d.per_user_limit} per person`;
    renderCountdown(d);
    renderBuyButton(d, st);
  }

  function renderBuyButton(d, st) {
    const buy = $("buy");
    const waiting = awaitingReserve();
    const retry = state.reserveRetry && state.reserveRetry.deal === d.id && !waiting;
    buy.disabled = state.readOnly || waiting || !(state.hub && state.hub.connected);
    if (state.readOnly) buy.textContent = "Sign in to buy";
    else if (waiting) buy.textContent = "Reserving…";
    else if (retry) buy.textContent = "Try again";
    else if (st === "sold_out") buy.textContent = "Sold out";
    else if (st === "ended") buy.textContent = "Deal over";
    else buy.textContent = `Buy now · ${LH.formatMoney(d.price_cents, d.currency)}`;
  }

  function renderCountdown(d) {
    const node = $("deal").querySelector(".countdown");
    const left = (Number(d.ends_at) || 0) - Date.now();
    node.textContent = d.status === "ended" || left <= 0 ? "ended" : `ends in ${LH.formatCountdown(left)}`;
  }

  // ---- hold ------------------------------------------------------------------------------

  function renderHold() {
    const hold = currentHold();
    show("hold", !!hold);
    if (!hold) return;
    const busy = [hold.checkoutRid, hold.cancelRid].some((rid) => {
      const p = rid && state.pending.get(rid);
      return p && Date.now() - p.sentAt < ANSWER_TIMEOUT_MS;
    });
    $("checkout").disabled = busy;
    $("cancel").disabled = busy;
    setText("hold-countdown", LH.formatCountdown(hold.expires_at - Date.now()));
  }

  /** Runs four times a second: countdowns, hold expiry, unanswered requests. */
  function tick() {
    const now = Date.now();
    const expired = state.holds.filter((h) => h.expires_at <= now);
    if (expired.length) {
      for (const h of expired) removeHold(h.reservation);
      buyResult("Hold expired", "bad");
    }
    renderHold();
    renderDeal();
  }

  document.addEventListener("DOMContentLoaded", main);
})();
