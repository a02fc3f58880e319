// host.js: the host console (/host/{room}). Signs in as the room's host (token from ?token=,
// a token pasted into #signin, or the development token endpoint), then runs the show over the
// room WebSocket: pin products from an editable catalog, start and end flash deals with a live
// stock panel (fed by `stock` messages and a 1 s poll of the stock audit endpoint), moderate
// comments (delete, mute) and post announcements. The Funnel pane (static/funnel.js) shows the
// show's funnel per channel, GMV, the top deal, sold-out taps and the timeline, polled with the
// same token.
//
// Every command carries a request_id and says how it went where the creator is looking: the
// deal form, the announce box, the Unpin button and each deal panel have a feedback line right
// under the control; moderation and pins answer with a toast. While a command waits for its
// `ack` or `error`, its button is busy. Live auctions start from the form under the deal form
// (prices in currency units, with a preview of what viewers will see); each has a panel with the
// bid, the bid count and who leads as they move, its countdown (and when a late bid extended
// it), End while it has no bid, and the result at the close. A viewer token is told it cannot
// host. On a phone the
// four panes (Deals, Chat, Products, Funnel) are tabs in the sticky top bar; on a desktop they
// are columns that scroll on their own (the funnel under the products), so chat stays beside
// the deals. User text is only ever set as textContent.
import { LiveRoom } from "/static/livehub-client.js";

/**
 * The console's room connection: the livehub-client SDK (the same module shops' apps use, so a
 * connection fix reaches both) behind the small interface the console was written against
 * (start, stop, retry, reconnectNow, connected, send, isReplay; onMessage, onState, onRefused).
 * The SDK reconnects with backoff and ?since=, renews tokens through getToken and stops for good
 * on a refusal; send() maps each host command to its SDK call and turns the promise's outcome
 * back into the `ack` or `error` the console waits for, under the console's own request_id.
 */
class RoomSocket {
  constructor(opts) {
    this.opts = opts;
    this.live = null;
    this.everConnected = false;
    this.resumed = false;
    this.welcomeSeq = 0;
  }

  start() {
    const { room, getToken, onMessage, onState } = this.opts;
    const live = new LiveRoom({ url: location.origin, room, getToken: () => getToken(false) });
    this.live = live;
    const mine = () => live === this.live;
    for (const type of ["welcome", "comment", "comment_deleted", "pinned", "unpinned", "deal", "announcement", "stream", "stock", "viewers", "likes", "not_live"]) {
      live.on(type, (m) => {
        if (!mine()) return;
        if (type === "welcome") {
          this.resumed = !!m.resumed;
          this.welcomeSeq = Number(m.seq) || 0;
        }
        onMessage(m, this);
      });
    }
    // The hub's errors for frames without a request_id (the SDK's own calls are answered
    // through their promises, below).
    live.on("error", (m) => mine() && !m.request_id && onMessage(m, this));
    live.on("state", (s) => mine() && this.opts.onRoomState && this.opts.onRoomState(s));
    live.on("connection", (c) => mine() && this.connection(c));
    live.connect();
  }

  connection({ state, reason, final }) {
    const onState = this.opts.onState;
    if (state === "connected") {
      this.everConnected = true;
      return onState("live");
    }
    if (state === "connecting") return onState(this.everConnected ? "reconnecting" : "connecting");
    if (reason === "closed") return;
    if (final && reason === "policy") return onState("policy");
    if (final) {
      // Refused for good: the console asks why; false (a development token renewed) tries again.
      const live = this.live;
      onState("reconnecting");
      Promise.resolve(this.opts.onRefused ? this.opts.onRefused() : true).then((stopped) => {
        if (!stopped && live === this.live) this.retry();
      });
      return;
    }
    onState(reason === "not_live" ? "not_live" : this.everConnected ? "reconnecting" : "connecting");
  }

  stop() {
    const live = this.live;
    this.live = null;
    if (live) live.close();
  }

  /** Starts over (after a policy close, or with a new token). */
  retry() {
    this.stop();
    this.start();
  }

  reconnectNow() {
    if (this.live) this.live.reconnect();
  }

  get connected() {
    return !!(this.live && this.live.state.connection === "connected");
  }

  get state() {
    return this.live ? this.live.state : null;
  }

  isReplay(seq) {
    return this.resumed && typeof seq === "number" && seq <= this.welcomeSeq;
  }

  /** Sends one command; false when not connected (nothing was sent). */
  send(msg) {
    const live = this.live;
    if (!live || !this.connected) return false;
    const calls = {
      pin: () => live.pin(msg.product),
      unpin: () => live.unpin(),
      deal_start: () => live.startDeal(msg.deal),
      deal_end: () => live.endDeal(msg.deal),
      auction_start: () => live.startAuction(msg.auction),
      auction_end: () => live.endAuction(msg.auction),
      announce: () => live.announce(msg.text),
      mute: () => live.mute(msg.user, msg.duration_ms),
      unmute: () => live.unmute(msg.user),
      delete_comment: () => live.deleteComment(msg.id),
      set_stream: () => live.setStream(msg.url),
      comment: () => live.comment(msg.text),
    };
    const call = calls[msg.type];
    if (!call) return false;
    const rid = msg.request_id;
    call().then(
      (v) => live === this.live && this.opts.onMessage({ ...v, type: "ack", request_id: rid }, this),
      (e) => {
        // A dropped connection or no answer: the console says so itself (onState, its timer).
        if (live !== this.live || ["disconnected", "closed", "timeout"].includes(e.reason)) return;
        const detail = e.detail && typeof e.detail === "object" ? e.detail : {};
        const message = detail.message || e.message;
        this.opts.onMessage({ type: "error", code: e.reason, message, request_id: rid }, this);
      },
    );
    return true;
  }
}

(function () {
  const { $, el, setText, show, askForToken, showSignin } = LH;

  const FEED_MAX = 500;
  const STICK_PX = 48; // "at the bottom" tolerance for the chat's auto-scroll
  const MUTE_MS = 600000;
  const AUDIT_EVERY_MS = 1000;
  const AUDIT_SOON_MS = 250;
  const ANSWER_TIMEOUT_MS = 10000; // a command unanswered this long is reported as such
  const OK_SHOWN_MS = 5000; // success lines fade after this; errors stay until the next try
  const TOAST_OK_MS = 3500;
  const TOAST_BAD_MS = 9000;
  const TOASTS_MAX = 4;

  const MAX_PRICE_CENTS = 100000000; // the hub's limit (protocol::MAX_PRICE_CENTS)

  const STATUS_LABEL = { live: "Live", sold_out: "Sold out", ended: "Ended" };
  const AUCTION_LABEL = { live: "Live", sold: "Sold", unsold: "Unsold" };
  const AUCTION_TICK_MS = 250; // auction countdowns run seconds long: redrawn four times a second
  const EXTENDED_SHOWN_MS = 2500; // "extended +Ns" under an auction's countdown

  const state = {
    room: null,
    hub: null,
    token: null,
    tokenSource: null, // "url" | "pasted" | "dev"
    pending: new Map(), // request_id -> command options (see `command`)
    payment: "none", // orders.payment, from /api/pages: "external" counts pending orders apart
    serverCatalog: [],
    localCatalog: [],
    catalogProblem: "",
    deals: new Map(), // id -> {deal, audit, finalPolled, inflight, stopped}
    auctions: [], // the room's auctions as the SDK keeps them (newest first)
    auctionEnds: new Map(), // auction id -> {endsAt, by, until}: when a late bid extended it
    pinned: null,
    auditErrors: new Set(),
    lastDevRefresh: 0,
    started: false,
    cannotHost: false,
    devRenewed: false, // a refused development token was renewed once (reset by a welcome)
    pane: "deals-pane",
    unread: 0,
    stick: true, // the chat is scrolled to its newest line (and stays there as it grows)
    feedbackTimers: new WeakMap(),
    funnel: null, // the Funnel pane (funnel.js): {refresh}
  };

  // ---- startup ---------------------------------------------------------------------------

  async function main() {
    state.room = LH.roomFromPath();
    if (!state.room) {
      setText("status", "bad room id");
      return;
    }
    $("signin-form").addEventListener("submit", onSigninSubmit);
    setText("room-name", state.room);
    setText("signin-room", state.room);
    document.title = `host · ${state.room} · livehub`;
    const info = await LH.pageInfo();
    state.payment = info.payment;
    const choice = await LH.chooseToken("host", state.room, "host", info, false);
    if (choice) begin(choice);
    else askForToken();
  }

  function onSigninSubmit(e) {
    e.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    LH.session(`livehub.host.token.${state.room}`, token);
    $("token-input").value = "";
    if (!state.started) return begin({ token, source: "pasted" });
    // Already running (the old token was refused, or could not host): switch tokens, reconnect.
    state.token = token;
    state.tokenSource = "pasted";
    state.auditErrors.clear();
    show("signin", false);
    if (state.cannotHost) {
      state.cannotHost = false;
      setText("signin-title", "Host sign-in");
      show("signin-watch", false);
      showConsole(true);
      connectHub();
    } else {
      state.hub.retry();
    }
  }

  function begin(choice) {
    if (state.started) return;
    state.started = true;
    show("signin", false);
    showConsole(true);
    state.token = choice.token;
    state.tokenSource = choice.source;
    bindUi();
    loadCatalog();
    connectHub();
    setInterval(pollAudits, AUDIT_EVERY_MS);
    setInterval(renderAuctionClocks, AUCTION_TICK_MS);
    setInterval(() => {
      renderCountdowns();
      if (state.room_state) renderMuted(state.room_state.muted || []); // mutes run out; buttons settle
    }, 1000);
    state.funnel = LH.funnelPanel.start({
      room: state.room,
      getToken: () => state.token,
      blocked: () => state.cannotHost,
    });
  }

  /** A fresh room connection (a new one after a token that could not host: no ?since=). */
  function connectHub() {
    state.hub = new RoomSocket({
      room: state.room,
      getToken,
      onMessage: handleMessage,
      onState: onHubState,
      onRoomState,
      onRefused,
    });
    state.hub.start();
  }

  function showConsole(visible) {
    show("app", visible);
    show("tabs", visible);
    measureTopbar();
  }

  function onHubState(s) {
    if (state.cannotHost && s !== "live") return; // stopped on purpose: keep saying why
    $("status").classList.remove("not_host");
    LH.setStatus("status", s);
    show("reconnect", s === "policy");
    if (s === "live") {
      // Back: the "connection dropped" lines are history now.
      for (const line of document.querySelectorAll('.feedback[data-connection="1"]')) clearFeedback(line);
    }
    if (s !== "live") failPending("The connection dropped before the hub answered: check whether it took effect, then try again.");
  }

  /**
   * Token for the next connection: a development token is renewed when it expires (one the hub
   * refuses is renewed by onRefused; failed upgrades alone prove nothing, the hub may be away).
   */
  async function getToken() {
    if (state.tokenSource === "dev" && LH.tokenExpired(state.token)) await refreshDevToken();
    return state.token;
  }

  async function refreshDevToken() {
    state.lastDevRefresh = Date.now();
    state.token = await LH.storedDevToken("host", state.room, "host", true);
  }

  function bindUi() {
    $("unpin").addEventListener("click", onUnpin);
    $("announce-form").addEventListener("submit", onAnnounce);
    $("product-form").addEventListener("submit", onAddProduct);
    $("deal-form").addEventListener("submit", onStartDeal);
    $("deal-form").addEventListener("input", () => {
      clearFeedback("deal-feedback", "bad");
      renderDealPreview();
    });
    $("auction-form").addEventListener("submit", onStartAuction);
    $("auction-form").addEventListener("input", () => {
      clearFeedback("auction-feedback", "bad");
      renderAuctionPreview();
    });
    $("auction-product").addEventListener("change", renderAuctionPreview);
    $("auctions").addEventListener("click", onAuctionsClick);
    $("stream-form").addEventListener("submit", onSetStream);
    $("stream-clear").addEventListener("click", () => setStream(null));
    $("muted-list").addEventListener("click", onMutedClick);
    $("deal-product").addEventListener("input", onDealProductChange);
    $("deal-product").addEventListener("change", onDealProductChange);
    $("catalog").addEventListener("click", onCatalogClick);
    $("deals").addEventListener("click", onDealsClick);
    $("feed").addEventListener("click", onFeedClick);
    $("feed").addEventListener("scroll", onFeedScroll);
    $("chat-jump").addEventListener("click", scrollFeedToBottom);
    $("tabs").addEventListener("click", onTabsClick);
    $("reconnect").addEventListener("click", () => state.hub && state.hub.retry());
    new ResizeObserver(measureTopbar).observe($("topbar")); // it wraps, and the status changes
    // A pane shown again, or a window resized: the chat stays on its newest line if it was.
    new ResizeObserver(() => state.stick && scrollFeedToBottom()).observe($("feed"));
  }

  /** Publishes the sticky top bar's height as --console-top (the phone chat pane fits under it). */
  function measureTopbar() {
    const h = $("topbar").getBoundingClientRect().height;
    document.documentElement.style.setProperty("--console-top", `${Math.ceil(h)}px`);
  }

  // ---- tabs (phone) ----------------------------------------------------------------------

  function onTabsClick(e) {
    const tab = e.target.closest(".console-tab");
    if (tab) selectPane(tab.dataset.pane);
  }

  /** Shows one pane on a phone (on a desktop all panes show and this only marks the tab). */
  function selectPane(id) {
    state.pane = id;
    for (const tab of $("tabs").querySelectorAll(".console-tab")) {
      const active = tab.dataset.pane === id;
      tab.classList.toggle("is-active", active);
      tab.setAttribute("aria-selected", String(active));
    }
    for (const pane of document.querySelectorAll(".console-pane")) pane.classList.toggle("is-active", pane.id === id);
    if (id === "chat-pane") {
      state.unread = 0;
      renderUnread();
      scrollFeedToBottom();
    }
    if (id === "funnel-pane" && state.funnel) state.funnel.refresh();
    if (window.scrollY > 0) window.scrollTo(0, 0);
  }

  function chatOnScreen() {
    return $("chat-pane").getClientRects().length > 0;
  }

  function renderUnread() {
    const badge = $("chat-unread");
    badge.textContent = state.unread > 99 ? "99+" : String(state.unread);
    show(badge, state.unread > 0);
  }

  // ---- commands, acks and errors ---------------------------------------------------------

  /**
   * Sends a host command with a fresh request_id. `opts`:
   *   label     names the command in messages ("deal_start d3")
   *   feedback  the feedback line (id or element) beside the control; without one, a toast
   *   button    disabled (with the text `busy`) until the hub answers
   *   ok        text (or fn(ack) -> text) shown on success; none: the event itself is the feedback
   *   toastOk   success as a toast even with a feedback line (the control may move or go)
   *   describe  fn(error) -> text, for errors this command explains better than the hub
   *   onAck, onFail  callbacks
   * Returns false when nothing was sent (not connected), after saying so at the control.
   */
  function command(msg, opts) {
    const o = opts || {};
    clearFeedback(o.feedback);
    const rid = LH.requestId("h");
    msg.request_id = rid;
    if (!state.hub || !state.hub.send(msg)) {
      report(o, "bad", "Not connected to the hub, so nothing was sent. Wait for ● live and try again.");
      if (o.feedback) node(o.feedback).dataset.connection = "1"; // cleared when the connection is back
      return false;
    }
    o.timer = setTimeout(() => {
      if (!state.pending.delete(rid)) return;
      settle(o);
      report(o, "bad", "No answer from the hub within 10 s. It may still take effect: check before trying again.");
      if (o.onFail) o.onFail(null);
    }, ANSWER_TIMEOUT_MS);
    setBusy(o.button, o.busy);
    state.pending.set(rid, o);
    return true;
  }

  function settle(o) {
    clearTimeout(o.timer);
    setBusy(o.button, null);
  }

  function onAck(m) {
    const o = state.pending.get(m.request_id);
    if (!o) return;
    state.pending.delete(m.request_id);
    settle(o);
    const text = typeof o.ok === "function" ? o.ok(m) : o.ok;
    if (text) {
      if (o.toastOk) toast("ok", text);
      else report(o, "ok", text);
    }
    if (o.onAck) o.onAck(m);
  }

  function onError(m) {
    const o = m.request_id ? state.pending.get(m.request_id) : null;
    if (!o) {
      toast("bad", describeError(m));
      return;
    }
    state.pending.delete(m.request_id);
    settle(o);
    report(o, "bad", (o.describe && o.describe(m)) || describeError(m));
    if (o.onFail) o.onFail(m);
  }

  /** Every waiting command failed with `text` (the socket they went out on is gone). */
  function failPending(text) {
    for (const [rid, o] of [...state.pending]) {
      state.pending.delete(rid);
      settle(o);
      report(o, "bad", text);
      if (o.feedback) node(o.feedback).dataset.connection = "1"; // cleared when the connection is back
      if (o.onFail) o.onFail(null);
    }
  }

  const ERROR_LEAD = {
    bad_request: "Not accepted",
    unauthorized: "Not signed in",
    forbidden: "Not allowed",
    not_found: "Not found",
    conflict: "Refused",
    rate_limited: "Too fast",
    too_large: "Too long",
    unavailable: "The hub could not do it right now",
    internal: "The hub failed",
  };

  /** "Refused: deal d1 was already used in room demo." from an `error` message. */
  function describeError(m) {
    const lead = ERROR_LEAD[m.code] || "Error";
    const detail = m.message ? String(m.message).replace(/\.?$/, ".") : `(${m.code || "error"})`;
    return `${lead}: ${detail}`;
  }

  /** Shows an outcome beside the command's control, or as a toast when it has none. */
  function report(o, kind, text) {
    if (o.feedback) setFeedback(o.feedback, kind, text);
    else toast(kind, text);
  }

  function node(target) {
    return typeof target === "string" ? $(target) : target;
  }

  /** A feedback line: `kind` is "ok" (fades after a few seconds), "bad" or "warn" (stay). */
  function setFeedback(target, kind, text) {
    const line = node(target);
    if (!line) return;
    line.textContent = text;
    delete line.dataset.connection;
    line.classList.remove("ok", "bad", "warn");
    line.classList.add(kind);
    line.setAttribute("role", kind === "ok" ? "status" : "alert");
    show(line, true);
    clearTimeout(state.feedbackTimers.get(line));
    if (kind === "ok") state.feedbackTimers.set(line, setTimeout(() => show(line, false), OK_SHOWN_MS));
  }

  /** Hides a feedback line (only when it shows `kind`, if given). */
  function clearFeedback(target, kind) {
    const line = target ? node(target) : null;
    if (!line || line.hidden || (kind && !line.classList.contains(kind))) return;
    clearTimeout(state.feedbackTimers.get(line));
    show(line, false);
  }

  function setBusy(button, busyText) {
    const b = node(button);
    if (!b) return;
    if (busyText) {
      if (!b.dataset.label) b.dataset.label = b.textContent;
      b.textContent = busyText;
      b.disabled = true;
      b.setAttribute("aria-busy", "true");
    } else {
      if (b.dataset.label) b.textContent = b.dataset.label;
      delete b.dataset.label;
      b.disabled = false;
      b.removeAttribute("aria-busy");
    }
  }

  /** A short message at the bottom of the screen; click to dismiss. */
  function toast(kind, text) {
    const box = $("toasts");
    const item = el("div", { className: `toast ${kind}`, text, attrs: { role: kind === "bad" ? "alert" : "status" } });
    item.addEventListener("click", () => item.remove());
    box.append(item);
    while (box.children.length > TOASTS_MAX) box.firstElementChild.remove();
    setTimeout(() => item.remove(), kind === "bad" ? TOAST_BAD_MS : TOAST_OK_MS);
  }

  // ---- messages --------------------------------------------------------------------------

  const HANDLERS = {
    welcome: onWelcome,
    comment: (m) => addComment(m, true),
    comment_deleted: (m) => removeComment(m.id),
    announcement: (m) => addAnnouncement(m),
    pinned: (m, hub) => !hub.isReplay(m.seq) && setPinned(m.product),
    unpinned: (m, hub) => !hub.isReplay(m.seq) && setPinned(null),
    deal: (m, hub) => !hub.isReplay(m.seq) && upsertDeal(m.deal),
    stock: onStock,
    viewers: (m) => setText("viewers", m.count),
    likes: (m) => setText("likes", m.total),
    ack: onAck,
    error: onError,
  };

  function handleMessage(msg, hub) {
    if (state.cannotHost) return;
    const h = HANDLERS[msg.type];
    if (h) h(msg, hub);
  }

  function onWelcome(m) {
    const you = m.you || {};
    if (you.role !== "host" && you.role !== "admin") return refuseToHost(you);
    state.devRenewed = false;
    show("signin", false);
    setText("viewers", m.viewers);
    setText("likes", m.likes);
    setPinned(m.pinned || null);
    if (!m.resumed) {
      $("feed").textContent = "";
      for (const c of m.recent || []) addComment(c, false);
      dropDealsNotIn(m.deals || []);
    }
    for (const d of m.deals || []) upsertDeal(d);
    scrollFeedToBottom();
  }

  /**
   * The token signed in, but not as a host (a viewer token): a console whose every control
   * fails would mislead, so stop, hide the controls and ask for a host token.
   */
  function refuseToHost(you) {
    const who = you.name || you.user;
    const role = you.role || "viewer";
    blockConsole(
      `This is a ${role} token${who ? ` for ${who}` : ""}: it can watch and buy in room ` +
        `${state.room}, but a ${role} cannot host, so the console's controls would all be refused.`
    );
    // The same token opens the viewer page (a development token is per page: that page gets
    // its own).
    const watch = $("signin-watch");
    const q = state.tokenSource === "dev" ? "" : `?token=${encodeURIComponent(state.token)}`;
    watch.href = `/rooms/${encodeURIComponent(state.room)}${q}`;
    show(watch, true);
  }

  /**
   * An upgrade failed before the socket opened; the browser is not told why, but the room
   * snapshot follows the same authorization as joining. A 401/403 means this token will never
   * work here: say why and ask for another instead of reconnecting for ever. Anything else (the
   * hub is away) means keep trying. Returns true to stop the socket.
   */
  async function onRefused() {
    const r = await LH.probeRoom(state.room, state.token);
    if (!r || (r.status !== 401 && r.status !== 403)) return false;
    if (state.tokenSource === "dev" && !state.devRenewed) {
      state.devRenewed = true; // a development token renews itself, once per refusal
      await refreshDevToken();
      return false;
    }
    blockConsole(refusalText(r));
    show("signin-watch", false);
    return true;
  }

  function refusalText(r) {
    const why = r.message || r.code || `HTTP ${r.status}`;
    if (r.status === 401 && /expired/i.test(why)) return "This token has expired, so the hub refuses it.";
    if (r.status === 401) return `The hub refuses this token (${why}): it is damaged, or signed for another hub.`;
    if (/wrong room/i.test(why)) return `This token is for another room, so it cannot host room ${state.room}.`;
    return `The hub refuses this token for room ${state.room} (${why}).`;
  }

  /** Stops the console and shows why (`note`) with the sign-in form; a pasted token restarts it. */
  function blockConsole(note) {
    state.cannotHost = true;
    if (state.hub) state.hub.stop();
    state.hub = null;
    failPending("This token cannot host, so the hub refused the command.");
    showConsole(false);
    setText("signin-title", "This token cannot host");
    showSignin(note);
    LH.setStatus("status", "policy");
    $("status").classList.add("not_host");
    setText("status", "cannot host");
    show("reconnect", false);
  }

  // ---- room state from the SDK: muted users, the stream -------------------------------------

  function muteMs() {
    return Number($("mute-duration").value) || MUTE_MS;
  }

  function muteLabel() {
    const sel = $("mute-duration");
    return sel.options[sel.selectedIndex] ? sel.options[sel.selectedIndex].text : "10 minutes";
  }

  function onRoomState(s) {
    state.room_state = s;
    if (s.auctions !== state.auctions) renderAuctions(s.auctions || []);
    renderMuted(s.muted || []);
    renderStream(s.stream || null);
  }

  function renderMuted(list) {
    const now = Date.now();
    const live = list.filter((m) => !m.until || m.until > now);
    const ul = $("muted-list");
    const sig = live.map((m) => `${m.user}:${m.until}`).join(",");
    if (ul.dataset.sig !== sig) {
      ul.dataset.sig = sig;
      ul.textContent = "";
      for (const m of live) {
        const name = nameOf(m.user);
        ul.append(
          el(
            "li",
            { dataset: { user: m.user } },
            el("span", { className: "name", text: name }),
            el("span", { className: "muted until", text: m.until ? `until ${LH.formatTime(m.until)}` : "" }),
            el("button", { type: "button", className: "unmute small", text: "Unmute", dataset: { user: m.user } }),
          ),
        );
      }
    }
    show("muted", live.length > 0);
    const mutedUsers = new Set(live.map((m) => m.user));
    for (const li of $("feed").querySelectorAll(".comment")) {
      const on = mutedUsers.has(li.dataset.user);
      li.classList.toggle("is-muted", on);
      const btn = li.querySelector(".mute");
      if (btn && !btn.disabled) {
        btn.textContent = on ? "Unmute" : "Mute";
        btn.classList.toggle("is-unmute", on);
      }
    }
  }

  function nameOf(user) {
    const c = $("feed").querySelector(`.comment[data-user="${CSS.escape(String(user))}"] .name`);
    return c ? `${c.textContent} (${user})` : user;
  }

  function unmute(user, button) {
    command(
      { type: "unmute", user },
      {
        label: `unmute ${user}`,
        button,
        busy: "Unmuting…",
        ok: `Unmuted ${nameOf(user)}.`,
        onAck: () => state.room_state && renderMuted(state.room_state.muted || []),
      },
    );
  }

  function onMutedClick(e) {
    const b = e.target.closest(".unmute");
    if (b) unmute(b.dataset.user, b);
  }

  function renderStream(url) {
    setText("stream-now", url ? `Viewers see: ${url}` : "No stream: viewers see a placeholder.");
  }

  function onSetStream(e) {
    e.preventDefault();
    const url = $("stream-url").value.trim();
    if (!url) return setStream(null);
    if (!LH.safeMediaUrl(url) || !/^https?:\/\//i.test(url)) {
      return setFeedback("stream-feedback", "bad", "Stream URL: an http(s):// address, such as https://cdn.example/live.m3u8.");
    }
    setStream(url);
  }

  function setStream(url) {
    command(
      { type: "set_stream", url },
      {
        label: "set_stream",
        feedback: "stream-feedback",
        button: url ? "stream-set" : "stream-clear",
        busy: url ? "Setting…" : "Clearing…",
        ok: url ? "Stream set: viewers' pages play it now." : "Stream cleared: viewers see a placeholder.",
        onAck: () => {
          if (!url) $("stream-url").value = "";
        },
      },
    );
  }

  // ---- pinned ----------------------------------------------------------------------------

  function setPinned(product) {
    state.pinned = product;
    const box = $("pinned");
    box.textContent = "";
    box.classList.toggle("muted", !product);
    if (!product) {
      box.textContent = "Nothing pinned";
      box.removeAttribute("data-id");
    } else {
      box.dataset.id = product.id;
      box.append(
        el("span", { className: "eyebrow", text: "Pinned now" }),
        el("strong", { className: "title", text: product.title }),
        el("span", { className: "pinned-meta" },
          el("span", { className: "price", text: LH.formatMoney(product.price_cents, product.currency) }),
          el("span", { className: "muted", text: ` · ${product.id}` }))
      );
    }
    $("unpin").disabled = !product;
    for (const li of $("catalog").querySelectorAll(".product")) {
      const pinned = !!product && li.dataset.id === product.id;
      li.classList.toggle("is-pinned", pinned);
      const pin = li.querySelector(".pin");
      if (pin && !pin.hasAttribute("aria-busy")) pin.textContent = pinned ? "Pinned" : "Pin";
    }
    renderAllDeals(); // a deal may take its title from the pin
  }

  function onUnpin() {
    const title = state.pinned ? state.pinned.title : "";
    command({ type: "unpin" }, {
      label: "unpin",
      feedback: "pin-feedback",
      button: "unpin",
      busy: "Unpinning…",
      ok: title ? `Unpinned ${title}.` : "Unpinned.",
    });
  }

  // ---- catalog ---------------------------------------------------------------------------

  function catalogKey() {
    return `livehub.catalog.${state.room}`;
  }

  async function loadCatalog() {
    try {
      const stored = JSON.parse(localStorage.getItem(catalogKey()) || "[]");
      state.localCatalog = Array.isArray(stored) ? stored.filter((p) => !validateProduct(p)) : [];
    } catch (_) {
      state.localCatalog = [];
    }
    renderCatalog();
    try {
      const r = await fetch("/api/catalog", { cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      const list = await r.json();
      state.serverCatalog = Array.isArray(list) ? list.filter((p) => p && LH.isValidId(p.id)) : [];
      state.catalogProblem = "";
    } catch (e) {
      state.catalogProblem = `Could not load the hub's catalog (${e.message}). Products you add below still work.`;
    }
    renderCatalog();
    renderAllDeals(); // titles from the catalog
  }

  function saveLocalCatalog() {
    try {
      localStorage.setItem(catalogKey(), JSON.stringify(state.localCatalog));
    } catch (_) {
      /* storage full or disabled: the list still works for this page */
    }
  }

  /** Server products, then this room's local ones (a local product replaces one with its id). */
  function catalog() {
    const byId = new Map();
    for (const p of state.serverCatalog) byId.set(p.id, { product: p, local: false });
    for (const p of state.localCatalog) byId.set(p.id, { product: p, local: true });
    return [...byId.values()];
  }

  /** The product with `id`: from the catalog, else the pinned product, else null. */
  function findProduct(id) {
    const hit = catalog().find((x) => x.product.id === id);
    if (hit) return hit.product;
    return state.pinned && state.pinned.id === id ? state.pinned : null;
  }

  function renderCatalog() {
    const list = $("catalog");
    list.textContent = "";
    const items = catalog();
    if (state.catalogProblem) list.append(el("li", { className: "feedback bad", text: state.catalogProblem }));
    else if (!items.length) list.append(el("li", { className: "muted empty", text: "No products yet: add one below." }));
    for (const { product, local } of items) list.append(productItem(product, local));
    const ids = $("product-ids");
    ids.textContent = "";
    for (const { product } of items) ids.append(el("option", { attrs: { value: product.id }, text: product.title }));
    setPinned(state.pinned);
    onDealProductChange();
    renderAuctionPreview();
  }

  function productItem(p, local) {
    const media = LH.safeMediaUrl(p.image_url)
      ? el("img", { attrs: { alt: "", loading: "lazy", referrerpolicy: "no-referrer", src: p.image_url } })
      : el("span", { className: "thumb-empty" });
    return el(
      "li",
      { className: "product", dataset: { id: p.id } },
      media,
      el(
        "span",
        { className: "product-text" },
        el("span", { className: "title", text: p.title }),
        el("span", { className: "meta muted", text: `${p.id} · ${LH.formatMoney(p.price_cents, p.currency)}` })
      ),
      el("span", { className: "product-actions" },
        el("button", { type: "button", className: "deal small", text: "Deal", title: `Start a deal for ${p.title}` }),
        el("button", { type: "button", className: "pin primary small", text: "Pin", title: `Pin ${p.title}` }),
        local ? el("button", { type: "button", className: "remove small", text: "✕", title: "Remove from this list" }) : null)
    );
  }

  function onCatalogClick(e) {
    const li = e.target.closest(".product");
    if (!li) return;
    const id = li.dataset.id;
    if (e.target.closest(".pin")) pinProduct(id, e.target.closest(".pin"));
    else if (e.target.closest(".remove")) {
      state.localCatalog = state.localCatalog.filter((p) => p.id !== id);
      saveLocalCatalog();
      renderCatalog();
    } else if (e.target.closest(".deal")) {
      $("deal-product").value = id;
      onDealProductChange();
      selectPane("deals-pane");
      $("deal-price").focus();
    }
  }

  function pinProduct(id, button) {
    const p = findProduct(id);
    if (!p) return;
    const product = { id: p.id, title: p.title, price_cents: Number(p.price_cents), currency: p.currency || "USD" };
    if (p.image_url) product.image_url = p.image_url;
    command({ type: "pin", product }, {
      label: `pin ${p.id}`,
      button,
      busy: "Pinning…",
      ok: `Pinned ${p.title}.`,
      onAck: () => setPinned(state.pinned), // the button's label waited for the answer
    });
  }

  /** Returns an error text for an invalid product, or "" when it is fine. */
  function validateProduct(p) {
    if (!p || !LH.isValidId(p.id)) return "Id: 1 to 64 of letters, digits, _ and -.";
    if (typeof p.title !== "string" || !p.title.trim() || p.title.length > 200) return "Title: 1 to 200 characters.";
    if (!Number.isInteger(p.price_cents) || p.price_cents < 0 || p.price_cents > MAX_PRICE_CENTS)
      return "Price: a whole number of cents, up to 100,000,000.";
    if (!/^[A-Z]{3}$/.test(p.currency || "")) return "Currency: three capital letters, e.g. USD.";
    if (p.image_url && !LH.safeMediaUrl(p.image_url)) return "Image URL: http(s) only.";
    return "";
  }

  function onAddProduct(e) {
    e.preventDefault();
    const p = {
      id: $("product-id").value.trim(),
      title: $("product-title").value.trim(),
      price_cents: Number($("product-price").value),
      currency: ($("product-currency").value.trim() || "USD").toUpperCase(),
    };
    const image = $("product-image").value.trim();
    if (image) p.image_url = image;
    const problem = validateProduct(p);
    if (problem) return setFeedback("product-feedback", "bad", problem);
    state.localCatalog = state.localCatalog.filter((x) => x.id !== p.id).concat([p]);
    saveLocalCatalog();
    renderCatalog();
    for (const id of ["product-id", "product-title", "product-price", "product-image"]) $(id).value = "";
    setFeedback("product-feedback", "ok", `Added ${p.title} to this room's catalog.`);
  }

  // ---- deals -----------------------------------------------------------------------------

  /** Names the chosen product under the field, and offers its price as the deal price. */
  function onDealProductChange() {
    const id = $("deal-product").value.trim();
    const p = id ? findProduct(id) : null;
    $("deal-price").placeholder = p ? LH.moneyInput(p.price_cents, p.currency || "USD") : "list price";
    renderDealPreview();
    const hint = $("deal-product-hint");
    hint.classList.toggle("muted", !id || !!p);
    hint.classList.toggle("unknown", !!id && !p);
    show(hint, !!id);
    if (!id) hint.textContent = "";
    else if (p) hint.textContent = `${p.title} · list price ${LH.formatMoney(p.price_cents, p.currency)}`;
    else hint.textContent = `“${id}” is not in the catalog: add it under Products first.`;
  }

  function nextDealId() {
    let n = 1;
    while (state.deals.has(`d${n}`)) n += 1;
    return `d${n}`;
  }

  /** Basis points from a percentage typed in the form ("12.5" -> 1250); empty is 0, NaN when not a number. */
  function percentToBps(text) {
    const t = String(text || "").trim().replace(/%$/, "").trim();
    if (t === "") return 0;
    if (!/^\d+(\.\d{0,2})?$/.test(t)) return NaN;
    return Math.round(Number(t) * 100);
  }

  /** What viewers will see of the deal being typed: title, price, stock, limit, and the rates. */
  function renderDealPreview() {
    const box = $("deal-preview");
    const product = findProduct($("deal-product").value.trim());
    show(box, !!product);
    if (!product) return;
    const currency = product.currency || "USD";
    const typed = $("deal-price").value.trim();
    const cents = typed === "" ? Number(product.price_cents) : LH.parseMoney(typed, currency);
    const priceText = Number.isNaN(cents) ? "Price: type an amount such as 19.99" : LH.formatMoney(cents, currency);
    const was = !Number.isNaN(cents) && cents < Number(product.price_cents) ? ` (list ${LH.formatMoney(product.price_cents, currency)})` : "";
    setText(box.querySelector(".preview-title"), product.title);
    setText(box.querySelector(".preview-price"), priceText + was);
    box.querySelector(".preview-price").classList.toggle("bad", Number.isNaN(cents));
    const stock = numField("deal-stock");
    const limit = numField("deal-limit");
    const mins = numField("deal-duration");
    setText(
      box.querySelector(".preview-meta"),
      `${Number.isNaN(stock) ? "?" : stock} left · limit ${Number.isNaN(limit) ? "?" : limit} per person · ends in ${Number.isNaN(mins) ? "?" : LH.formatCountdown(mins * 60000)}`,
    );
    const c = percentToBps($("deal-commission").value);
    const a = percentToBps($("deal-affiliate").value);
    const pct = (bps) => (Number.isNaN(bps) ? "?" : `${(bps / 100).toLocaleString("en", { maximumFractionDigits: 2 })}%`);
    setText(box.querySelector(".preview-rates"), `Commission ${pct(c)} · affiliate ${pct(a)} (${Number.isNaN(c) ? "?" : c} + ${Number.isNaN(a) ? "?" : a} bps)`);
  }

  function numField(id) {
    const v = $(id).value.trim();
    return v === "" ? NaN : Number(v);
  }

  function onStartDeal(e) {
    e.preventDefault();
    const productId = $("deal-product").value.trim();
    const product = findProduct(productId);
    const currency = (product && product.currency) || "USD";
    let price = LH.parseMoney($("deal-price").value, currency);
    if ($("deal-price").value.trim() === "" && product) price = Number(product.price_cents);
    const deal = {
      id: $("deal-id").value.trim() || nextDealId(),
      product_id: productId,
      price_cents: price,
      currency,
      stock: numField("deal-stock"),
      per_user_limit: numField("deal-limit"),
      duration_ms: Math.round(numField("deal-duration") * 60000),
      commission_bps: percentToBps($("deal-commission").value),
      affiliate_bps: percentToBps($("deal-affiliate").value),
    };
    const problem = validateDeal(deal, product);
    if (problem) return setFeedback("deal-feedback", "bad", problem);
    // The deal carries its product's title (and image), so every viewer sees a name, not an id.
    deal.title = product.title;
    if (product.image_url) deal.image_url = product.image_url;
    command({ type: "deal_start", deal }, {
      label: `deal_start ${deal.id}`,
      feedback: "deal-feedback",
      button: "deal-start",
      busy: "Starting…",
      ok: `Started ${deal.id}: ${deal.title}, ${deal.stock} at ${LH.formatMoney(deal.price_cents, deal.currency)}.`,
      describe: (m) =>
        m.code === "conflict"
          ? `Deal id “${deal.id}” is already used in this room: pick another id (deal ids cannot be reused).`
          : null,
      onAck: () => {
        if ($("deal-id").value.trim() === deal.id) $("deal-id").value = "";
        $("deal-id").placeholder = nextDealId();
      },
    });
  }

  function validateDeal(d, product) {
    if (!LH.isValidId(d.id)) return "Deal id: 1 to 64 of letters, digits, _ and -.";
    if (!LH.isValidId(d.product_id)) return "Product: enter a product id from the catalog.";
    if (!product) return `Not sent: add “${d.product_id}” under Products first (a deal needs the product's title).`;
    if (!Number.isInteger(d.price_cents) || d.price_cents < 0 || d.price_cents > MAX_PRICE_CENTS)
      return `Price: an amount such as 19.99, up to ${LH.formatMoney(MAX_PRICE_CENTS, d.currency)}.`;
    for (const [k, label] of [["commission_bps", "Commission"], ["affiliate_bps", "Affiliate"]]) {
      if (!Number.isInteger(d[k]) || d[k] < 0 || d[k] > 10000) return `${label}: a percentage from 0 to 100, such as 12.5.`;
    }
    if (d.commission_bps + d.affiliate_bps > 10000) return "Commission and affiliate together: at most 100%.";
    if (!Number.isInteger(d.stock) || d.stock < 1 || d.stock > 10000000) return "Stock: 1 to 10,000,000.";
    if (!Number.isInteger(d.per_user_limit) || d.per_user_limit < 1 || d.per_user_limit > d.stock)
      return "Limit per viewer: 1 to the stock.";
    if (!Number.isInteger(d.duration_ms) || d.duration_ms < 1 || d.duration_ms > 7 * 24 * 3600 * 1000)
      return "Minutes: how long the deal runs, up to a week (10080).";
    return "";
  }

  /** The deal's product title: the deal's own, else the catalog's or the pin's, else its id. */
  function dealTitle(d) {
    if (typeof d.title === "string" && d.title) return d.title;
    const p = findProduct(d.product_id);
    return p ? p.title : d.product_id;
  }

  /** Adds or updates a deal (from welcome or a `deal` event) and its panel. */
  function upsertDeal(deal) {
    if (!deal || !deal.id) return;
    let entry = state.deals.get(deal.id);
    if (!entry) {
      entry = { deal: {}, audit: null, finalPolled: false, inflight: false, stopped: false, soon: null };
      state.deals.set(deal.id, entry);
    }
    const wasEnded = entry.deal.status === "ended";
    Object.assign(entry.deal, deal);
    if (deal.status === "ended" && !wasEnded) entry.finalPolled = false; // one more poll
    renderDealPanel(entry);
    $("deal-id").placeholder = nextDealId();
    if (!entry.audit) pollAudit(entry);
    else auditSoon(entry);
  }

  function dropDealsNotIn(deals) {
    const keep = new Set(deals.map((d) => d.id));
    for (const id of [...state.deals.keys()]) {
      if (keep.has(id)) continue;
      state.deals.delete(id);
      const panel = dealPanel(id);
      if (panel) panel.remove();
    }
    renderDealCount();
  }

  function onStock(m) {
    const entry = state.deals.get(m.deal);
    if (!entry) return;
    entry.deal.remaining = m.remaining;
    renderDealPanel(entry);
    auditSoon(entry);
  }

  /** Stock moved: re-read held and sold shortly (at most every AUDIT_SOON_MS per deal), so the
   * counts add up again without waiting for the next one-second poll. */
  function auditSoon(entry) {
    if (entry.soon) return;
    entry.soon = setTimeout(() => {
      entry.soon = null;
      pollAudit(entry);
    }, AUDIT_SOON_MS);
  }

  function dealPanel(id) {
    return $("deals").querySelector(`.deal-panel[data-id="${CSS.escape(String(id))}"]`);
  }

  function createDealPanel(id) {
    const stat = (cls, label) =>
      el("div", { className: "count" }, el("span", { className: cls, text: "0" }), el("span", { className: "muted", text: label }));
    const panel = el(
      "article",
      { className: "deal-panel", dataset: { id } },
      el(
        "div",
        { className: "deal-panel-head" },
        el("span", { className: "deal-heading" },
          el("strong", { className: "deal-title" }),
          el("span", { className: "deal-info muted" })),
        el("span", { className: "status badge" })
      ),
      // With external payment an order is pending until the shop says it is paid: both shown.
      state.payment === "external"
        ? el("div", { className: "counts five" }, stat("remaining", "left"), stat("held", "held"),
            stat("pending", "pending"), stat("sold", "paid"), stat("stock", "stock"))
        : el("div", { className: "counts" }, stat("remaining", "left"), stat("held", "held"), stat("sold", "sold"), stat("stock", "stock")),
      el("div", { className: "bar" }, el("div", { className: "bar-fill" })),
      el(
        "div",
        { className: "deal-actions" },
        el("span", { className: "countdown muted" }),
        el("button", { type: "button", className: "end small danger", text: "End deal" })
      ),
      el("p", { className: "feedback deal-feedback", attrs: { hidden: "" } })
    );
    const empty = $("deals").querySelector(".empty");
    if (empty) empty.remove();
    $("deals").prepend(panel);
    return panel;
  }

  /** Live and sold-out deals first (newest on top), then ended ones (latest ended first). */
  function placePanel(panel) {
    const list = $("deals");
    const firstOver = [...list.querySelectorAll(".deal-panel.is-over")].find((p) => p !== panel);
    if (firstOver) list.insertBefore(panel, firstOver);
    else list.append(panel);
  }

  function renderDealPanel(entry) {
    const d = entry.deal;
    const panel = dealPanel(d.id) || createDealPanel(d.id);
    const q = (sel) => panel.querySelector(sel);
    const a = entry.audit;
    const stock = Number(d.stock) || (a && a.stock) || 0;
    const remaining = Number(d.remaining) || 0;
    q(".remaining").textContent = String(remaining);
    q(".held").textContent = String(a ? a.held : 0);
    q(".sold").textContent = String(a ? a.sold : 0);
    const pending = a ? Number(a.pending) || 0 : 0;
    if (q(".pending")) q(".pending").textContent = String(pending);
    q(".stock").textContent = String(stock);
    const status = STATUS_LABEL[d.status] ? d.status : "live";
    const badge = q(".status");
    badge.textContent = STATUS_LABEL[status];
    badge.className = `status badge ${status}`;
    panel.dataset.status = status;
    q(".deal-title").textContent = dealTitle(d);
    q(".deal-info").textContent =
      `${d.id} · ${LH.formatMoney(d.price_cents, d.currency)} · limit ${d.per_user_limit} per viewer`;
    const soldPct = a && stock ? (a.sold / stock) * 100 : 0;
    const heldPct = a && stock ? ((a.held + pending) / stock) * 100 : 0;
    q(".bar-fill").style.width = `${Math.min(100, soldPct + heldPct).toFixed(1)}%`;
    const wasOver = panel.classList.contains("is-over");
    if (status === "ended") {
      // An ended deal cannot be ended again: its End button and any open confirm go.
      for (const sel of [".end", ".confirm"]) if (q(sel)) q(sel).remove();
      panel.classList.add("is-over");
      if (!wasOver) placePanel(panel);
    }
    renderCountdown(panel, d);
    renderDealCount();
  }

  function renderAllDeals() {
    for (const entry of state.deals.values()) renderDealPanel(entry);
  }

  /** The number of running deals, on the Deals tab. */
  function renderDealCount() {
    let live = 0;
    for (const entry of state.deals.values()) if (entry.deal.status !== "ended") live += 1;
    setText("tab-deals-live", live);
    show("tab-deals-live", live > 0);
  }

  function renderCountdown(panel, d) {
    const left = (Number(d.ends_at) || 0) - Date.now();
    let text = "";
    if (d.status === "ended") text = d.ends_at ? `ended · ${LH.formatTime(Math.min(Date.now(), d.ends_at))}` : "ended";
    else if (left > 0) text = `ends in ${LH.formatCountdown(left)}`;
    else text = "ending…";
    panel.querySelector(".countdown").textContent = text;
  }

  function renderCountdowns() {
    for (const entry of state.deals.values()) {
      const panel = dealPanel(entry.deal.id);
      if (panel) renderCountdown(panel, entry.deal);
    }
  }

  function onDealsClick(e) {
    const panel = e.target.closest(".deal-panel");
    if (!panel) return;
    if (e.target.closest(".end")) askToEnd(panel);
    else if (e.target.closest(".confirm-cancel")) closeConfirm(panel);
    else if (e.target.closest(".confirm-end")) endDeal(panel, e.target.closest(".confirm-end"));
  }

  /** End is two steps: the End button opens an in-panel confirm that names the deal. */
  function askToEnd(panel) {
    const entry = state.deals.get(panel.dataset.id);
    if (!entry || entry.deal.status === "ended") return;
    let box = panel.querySelector(".confirm");
    if (!box) {
      box = el(
        "div",
        { className: "confirm", attrs: { role: "group", "aria-label": "Confirm ending the deal" } },
        el("p", { className: "confirm-text" }),
        el(
          "div",
          { className: "confirm-actions" },
          el("button", { type: "button", className: "confirm-cancel small", text: "Keep it live" }),
          el("button", { type: "button", className: "confirm-end small danger-solid", text: "End now" })
        )
      );
      panel.querySelector(".deal-actions").after(box);
    }
    box.querySelector(".confirm-text").textContent =
      `End “${dealTitle(entry.deal)}” (${entry.deal.id}) now? Viewers can no longer buy it; holds already made may still check out.`;
    clearFeedback(panel.querySelector(".deal-feedback"));
    show(box, true);
    show(panel.querySelector(".end"), false);
    box.querySelector(".confirm-cancel").focus();
  }

  function closeConfirm(panel) {
    const box = panel.querySelector(".confirm");
    if (box) box.remove();
    const end = panel.querySelector(".end");
    if (end) {
      show(end, true);
      end.focus();
    }
  }

  function endDeal(panel, button) {
    const entry = state.deals.get(panel.dataset.id);
    if (!entry) return;
    const { id } = entry.deal;
    const title = dealTitle(entry.deal);
    command({ type: "deal_end", deal: id }, {
      label: `deal_end ${id}`,
      feedback: panel.querySelector(".deal-feedback"),
      button,
      busy: "Ending…",
      ok: `Ended ${id}: ${title}.`,
      toastOk: true,
      onAck: () => {
        const box = panel.querySelector(".confirm");
        if (box) box.remove();
      },
      onFail: () => closeConfirm(panel),
    });
  }

  // ---- auctions ----------------------------------------------------------------------------

  function nextAuctionId() {
    const used = new Set(state.auctions.map((a) => a.id));
    let n = 1;
    while (used.has(`a${n}`)) n += 1;
    return `a${n}`;
  }

  /** The auction being typed, in the wire's shape (amounts NaN where they do not parse). */
  function auctionFromForm() {
    const productId = $("auction-product").value.trim();
    const product = findProduct(productId);
    const currency = (product && product.currency) || "USD";
    return {
      product,
      auction: {
        id: $("auction-id").value.trim() || nextAuctionId(),
        product_id: productId,
        currency,
        start_cents: LH.parseMoney($("auction-start").value, currency),
        increment_cents: LH.parseMoney($("auction-increment").value, currency),
        duration_ms: Math.round(numField("auction-duration") * 1000),
        extend_ms: Math.round(numField("auction-extend") * 1000),
        sudden_death: $("auction-sudden").checked,
      },
    };
  }

  /** What viewers will see of the auction being typed; names the product under the field. */
  function renderAuctionPreview() {
    const { product, auction: a } = auctionFromForm();
    const hint = $("auction-product-hint");
    const id = a.product_id;
    hint.classList.toggle("muted", !id || !!product);
    hint.classList.toggle("unknown", !!id && !product);
    show(hint, !!id);
    hint.textContent = !id ? "" : product ? `${product.title} · list price ${LH.formatMoney(product.price_cents, product.currency)}` : `“${id}” is not in the catalog: add it under Products first.`;
    $("auction-start").placeholder = product ? LH.moneyInput(Math.max(1, Math.round(product.price_cents / 2)), a.currency) : "10.00";
    $("auction-id").placeholder = nextAuctionId();
    const box = $("auction-preview");
    show(box, !!product);
    if (!product) return;
    const money = (c) => (Number.isNaN(c) ? "?" : LH.formatMoney(c, a.currency));
    const priceBad = Number.isNaN(a.start_cents) || Number.isNaN(a.increment_cents);
    setText(box.querySelector(".preview-title"), product.title);
    setText(
      box.querySelector(".preview-price"),
      priceBad ? "Starting bid and bid step: amounts such as 10 or 12.50" : `${money(a.start_cents)} starting bid`,
    );
    box.querySelector(".preview-price").classList.toggle("bad", priceBad);
    const ends = Number.isNaN(a.duration_ms) ? "?" : LH.formatCountdown(a.duration_ms);
    setText(box.querySelector(".preview-meta"), `Bids go up by ${money(a.increment_cents)} · ends in ${ends}`);
    const ext = a.extend_ms / 1000;
    setText(
      box.querySelector(".preview-rules"),
      a.sudden_death
        ? "Sudden death: the end never moves, however late a bid"
        : Number.isNaN(ext) || ext > 0
          ? `A bid in the last ${Number.isNaN(ext) ? "?" : ext} s moves the end to ${Number.isNaN(ext) ? "?" : ext} s after it`
          : "No extension: the end never moves",
    );
  }

  function validateAuction(a, product) {
    if (!LH.isValidId(a.id)) return "Auction id: 1 to 64 of letters, digits, _ and -.";
    if (!LH.isValidId(a.product_id)) return "Product: enter a product id from the catalog.";
    if (!product) return `Not sent: add “${a.product_id}” under Products first (an auction needs the product's title).`;
    const inRange = (c) => Number.isInteger(c) && c >= 1 && c <= MAX_PRICE_CENTS;
    if (!inRange(a.start_cents)) return `Starting bid: an amount such as 10 or 12.50, up to ${LH.formatMoney(MAX_PRICE_CENTS, a.currency)}.`;
    if (!inRange(a.increment_cents)) return "Bid step: how much each bid adds, such as 1 or 0.50 (more than zero).";
    if (!Number.isInteger(a.duration_ms) || a.duration_ms < 5000 || a.duration_ms > 3600000) return "Seconds: how long the auction runs, 5 to 3600.";
    if (!Number.isInteger(a.extend_ms) || a.extend_ms < 0 || a.extend_ms > 60000) return "Extend by: 0 to 60 seconds.";
    return "";
  }

  function onStartAuction(e) {
    e.preventDefault();
    const { product, auction } = auctionFromForm();
    const problem = validateAuction(auction, product);
    if (problem) return setFeedback("auction-feedback", "bad", problem);
    auction.title = product.title;
    if (product.image_url) auction.image_url = product.image_url;
    command({ type: "auction_start", auction }, {
      label: `auction_start ${auction.id}`,
      feedback: "auction-feedback",
      button: "auction-start-button",
      busy: "Starting…",
      ok: `Started auction ${auction.id}: ${auction.title} from ${LH.formatMoney(auction.start_cents, auction.currency)}.`,
      describe: (m) =>
        m.code === "conflict"
          ? `Auction id “${auction.id}” was already used in this room: pick another id (auction ids cannot be reused).`
          : null,
      toastOk: true, // the form folds away: its panel above shows the bids
      onAck: () => {
        if ($("auction-id").value.trim() === auction.id) $("auction-id").value = "";
        $("auction-new").open = false;
        const panel = auctionPanel(auction.id);
        if (panel) panel.scrollIntoView({ block: "nearest" });
      },
    });
  }

  function auctionPanel(id) {
    return $("auctions").querySelector(`.auction-panel[data-id="${CSS.escape(String(id))}"]`);
  }

  function createAuctionPanel(id) {
    const stat = (cls, label) =>
      el("div", { className: `count ${cls}-count` }, el("span", { className: cls, text: "–" }), el("span", { className: "muted", text: label }));
    return el(
      "article",
      { className: "deal-panel auction-panel", dataset: { id } },
      el(
        "div",
        { className: "deal-panel-head" },
        el("span", { className: "deal-heading" }, el("strong", { className: "deal-title" }), el("span", { className: "deal-info muted" })),
        el("span", { className: "status badge" }),
      ),
      el("div", { className: "counts three" }, stat("current", "bid now"), stat("bids", "bids"), stat("leader", "leading")),
      el("p", { className: "auction-outcome", attrs: { hidden: "" } }),
      el(
        "div",
        { className: "deal-actions" },
        el("span", { className: "auction-countdown" }, el("span", { className: "countdown muted" }), el("span", { className: "extended" })),
        el("button", { type: "button", className: "end small danger", text: "End now (no bids)" }),
        el("span", { className: "has-bids muted", text: "Has bids: runs to its end" }),
      ),
      el("p", { className: "feedback deal-feedback", attrs: { hidden: "" } }),
    );
  }

  /** Every auction's panel, live ones first (newest on top), then closed ones. */
  function renderAuctions(auctions) {
    state.auctions = auctions;
    const list = $("auctions");
    const ordered = [...auctions.filter((a) => a.status === "live"), ...auctions.filter((a) => a.status !== "live")];
    let prev = null;
    for (const a of ordered) {
      const panel = auctionPanel(a.id) || createAuctionPanel(a.id);
      const inPlace = prev ? prev.nextElementSibling === panel : list.firstElementChild === panel;
      if (!inPlace) {
        if (prev) prev.after(panel);
        else list.prepend(panel);
      }
      prev = panel;
      renderAuctionPanel(panel, a);
    }
    const keep = new Set(auctions.map((a) => a.id));
    for (const panel of [...list.querySelectorAll(".auction-panel")]) if (!keep.has(panel.dataset.id)) panel.remove();
    const live = auctions.filter((a) => a.status === "live").length;
    setText("auctions-live", `${live} live`);
    show("auctions-live", live > 0);
    $("auction-id").placeholder = nextAuctionId();
  }

  function renderAuctionPanel(panel, a) {
    const q = (sel) => panel.querySelector(sel);
    const money = (c) => LH.formatMoney(c, a.currency);
    const live = a.status === "live";
    panel.classList.toggle("is-over", !live);
    panel.dataset.status = a.status;
    setText(q(".deal-title"), a.title || a.product_id);
    setText(q(".deal-info"), `${a.id} · from ${money(a.start_cents)} · +${money(a.increment_cents)} a bid${a.sudden_death ? " · sudden death" : a.extend_ms ? ` · late bids add ${a.extend_ms / 1000} s` : ""}`);
    const badge = q(".status");
    badge.textContent = AUCTION_LABEL[a.status] || a.status;
    badge.className = `status badge ${a.status === "sold" ? "sold" : a.status === "unsold" ? "ended" : "live"}`;
    const bid = a.current_cents !== null && a.current_cents !== undefined;
    setText(q(".current"), bid ? money(a.current_cents) : "–");
    setText(q(".bids"), a.bids);
    setText(q(".leader"), a.leader ? a.leader.name : "–");
    const outcome = q(".auction-outcome");
    setText(outcome, a.status === "sold" && a.winner ? `Sold to ${a.winner.name} for ${money(a.current_cents)}` : a.status === "unsold" ? "Unsold: it closed without a bid" : "");
    outcome.className = `auction-outcome ${a.status}`;
    show(outcome, !live);
    show(q(".end"), live && a.bids === 0);
    show(q(".has-bids"), live && a.bids > 0);
    const seen = state.auctionEnds.get(a.id);
    if (seen && live && a.ends_at > seen.endsAt) state.auctionEnds.set(a.id, { endsAt: a.ends_at, by: a.ends_at - seen.endsAt, until: Date.now() + EXTENDED_SHOWN_MS });
    else if (!seen || seen.endsAt !== a.ends_at) state.auctionEnds.set(a.id, { endsAt: a.ends_at, by: 0, until: 0 });
    renderAuctionClock(panel, a);
  }

  function renderAuctionClock(panel, a) {
    const left = a.ends_at - Date.now();
    let text;
    if (a.status !== "live") text = `closed · ${LH.formatTime(Math.min(Date.now(), a.ends_at))}`;
    else if (left > 0) text = `ends in ${LH.formatCountdown(left)}`;
    else text = "closing…";
    setText(panel.querySelector(".countdown"), text);
    const ext = state.auctionEnds.get(a.id);
    const extended = a.status === "live" && ext && Date.now() < ext.until;
    setText(panel.querySelector(".extended"), extended ? `extended +${Math.round(ext.by / 1000)} s` : "");
  }

  function renderAuctionClocks() {
    for (const a of state.auctions) {
      const panel = auctionPanel(a.id);
      if (panel) renderAuctionClock(panel, a);
    }
  }

  function onAuctionsClick(e) {
    const button = e.target.closest(".end");
    const panel = e.target.closest(".auction-panel");
    if (!button || !panel) return;
    const a = state.auctions.find((x) => x.id === panel.dataset.id);
    if (!a || a.status !== "live") return;
    command({ type: "auction_end", auction: a.id }, {
      label: `auction_end ${a.id}`,
      feedback: panel.querySelector(".deal-feedback"),
      button,
      busy: "Ending…",
      ok: `Ended auction ${a.id}: unsold, no bids.`,
      toastOk: true,
      describe: (m) => (m.code === "conflict" ? `Not ended: ${a.id} has a bid now, and an auction with a bid runs to its end.` : null),
    });
  }

  // ---- stock audit -------------------------------------------------------------------------

  function pollAudits() {
    if (!state.hub || !state.hub.connected) return; // the hub is away: polls would only fail
    for (const entry of state.deals.values()) {
      if (entry.stopped) continue;
      if (entry.deal.status === "ended" && entry.finalPolled) continue;
      pollAudit(entry);
    }
  }

  /** GET /api/rooms/{room}/deals/{deal} with the host token; updates the deal's panel. */
  async function pollAudit(entry) {
    if (entry.inflight || !state.token || state.cannotHost) return;
    entry.inflight = true;
    const id = entry.deal.id;
    const url = `/api/rooms/${encodeURIComponent(state.room)}/deals/${encodeURIComponent(id)}`;
    try {
      const r = await fetch(url, { headers: { Authorization: `Bearer ${state.token}` }, cache: "no-store" });
      if (r.ok) applyAudit(entry, await r.json());
      else await auditFailed(entry, r);
    } catch (err) {
      auditError(entry, "network", `Stock audit failed (${err.message}); the counts may be stale.`);
    } finally {
      entry.inflight = false;
    }
  }

  function applyAudit(entry, audit) {
    if (!audit || audit.id !== entry.deal.id) return;
    entry.audit = audit;
    let hadError = false;
    for (const key of [...state.auditErrors]) {
      if (key.startsWith(`${audit.id}:`)) {
        state.auditErrors.delete(key);
        hadError = true;
      }
    }
    if (typeof audit.remaining === "number") entry.deal.remaining = audit.remaining;
    // An audit that raced a `deal` event must not bring an ended deal back.
    if (audit.status && entry.deal.status !== "ended") entry.deal.status = audit.status;
    if (audit.status === "ended") entry.finalPolled = true;
    renderDealPanel(entry);
    const panel = dealPanel(audit.id);
    if (hadError && panel) clearFeedback(panel.querySelector(".deal-feedback"), "warn");
  }

  async function auditFailed(entry, r) {
    let code = `http_${r.status}`;
    let message = `HTTP ${r.status}`;
    try {
      const j = await r.json();
      if (j && j.error) {
        code = j.error.code || code;
        message = j.error.message || message;
      }
    } catch (_) {
      /* not JSON */
    }
    if (r.status === 404) entry.stopped = true;
    if (r.status === 401 && state.tokenSource === "dev" && Date.now() - state.lastDevRefresh > 10000) {
      refreshDevToken().catch(() => {});
    }
    auditError(entry, code, `Stock audit failed: ${message}. The held and sold counts may be stale.`);
  }

  /** Shows an audit failure on its deal's panel, once until an audit succeeds again. */
  function auditError(entry, code, text) {
    const key = `${entry.deal.id}:${code}`;
    if (state.auditErrors.has(key)) return;
    state.auditErrors.add(key);
    const panel = dealPanel(entry.deal.id);
    if (panel) setFeedback(panel.querySelector(".deal-feedback"), "warn", text);
  }

  // ---- comments and announcements ----------------------------------------------------------

  /** Adds a comment to the chat; `live` ones (not history) count as unread on a phone. */
  function addComment(c, live) {
    const feed = $("feed");
    if (feed.querySelector(`.comment[data-id="${CSS.escape(String(c.id))}"]`)) return;
    const item = el(
      "li",
      { className: "comment", dataset: { id: c.id, seq: c.seq, user: c.user }, title: `${c.user} · ${LH.formatTime(c.ts)}` },
      el("span", { className: "body" },
        el("span", { className: "name", text: c.name || c.user }),
        el("span", { className: "text", text: c.text })),
      el(
        "span",
        { className: "mod" },
        el("button", { type: "button", className: "delete small", text: "Delete", title: "Delete this comment for everyone" }),
        el("button", { type: "button", className: "mute small", text: "Mute", title: `Mute ${c.name || c.user} for 10 minutes` })
      )
    );
    appendFeedItem(item);
    if (live && !chatOnScreen()) {
      state.unread += 1;
      renderUnread();
    }
  }

  function addAnnouncement(a) {
    appendFeedItem(
      el(
        "li",
        { className: "announcement", dataset: { seq: a.seq } },
        el("span", { className: "badge", text: "Announcement" }),
        el("span", { className: "text", text: a.text })
      )
    );
  }

  function removeComment(id) {
    const item = $("feed").querySelector(`.comment[data-id="${CSS.escape(String(id))}"]`);
    if (item) item.remove();
  }

  function feedAtBottom() {
    const feed = $("feed");
    return feed.scrollHeight - feed.scrollTop - feed.clientHeight <= STICK_PX;
  }

  function appendFeedItem(item) {
    const feed = $("feed");
    feed.append(item);
    while (feed.children.length > FEED_MAX) feed.firstElementChild.remove();
    if (state.stick || !chatOnScreen()) scrollFeedToBottom();
    else show("chat-jump", true);
  }

  function onFeedScroll() {
    if (!chatOnScreen()) return; // a hidden feed has no scroll position to keep
    state.stick = feedAtBottom();
    if (state.stick) show("chat-jump", false);
  }

  function scrollFeedToBottom() {
    const feed = $("feed");
    feed.scrollTop = feed.scrollHeight;
    state.stick = true;
    show("chat-jump", false);
  }

  function onFeedClick(e) {
    const item = e.target.closest(".comment");
    if (!item) return;
    const { id, user } = item.dataset;
    const name = item.querySelector(".name").textContent;
    const del = e.target.closest(".delete");
    const mute = e.target.closest(".mute");
    if (del) {
      command({ type: "delete_comment", id }, { label: `delete ${id}`, button: del, busy: "Deleting…", ok: `Deleted ${name}'s comment.` });
    } else if (mute && mute.classList.contains("is-unmute")) {
      unmute(user, mute);
    } else if (mute) {
      command(
        { type: "mute", user, duration_ms: muteMs() },
        {
          label: `mute ${name}`,
          button: mute,
          busy: "Muting…",
          ok: `Muted ${name} for ${muteLabel()}.`,
          onAck: () => state.room_state && renderMuted(state.room_state.muted || []),
        }
      );
    }
  }

  function onAnnounce(e) {
    e.preventDefault();
    const input = $("announce-input");
    const text = input.value.trim();
    if (!text) return setFeedback("announce-feedback", "bad", "Write something to announce first.");
    command({ type: "announce", text }, {
      label: "announce",
      feedback: "announce-feedback",
      button: "announce-button",
      busy: "Sending…",
      ok: "Announced to everyone in the room.",
      onAck: () => {
        if (input.value.trim() === text) input.value = "";
      },
    });
  }

  document.addEventListener("DOMContentLoaded", main);
})();
