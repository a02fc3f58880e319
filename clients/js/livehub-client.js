// livehub-client: the viewer and host client for livehub rooms (docs/protocol.md).
//
// One ES module, no dependencies, for browsers and Node 20+ (pass `WebSocket` where the runtime
// has none). A `LiveRoom` keeps one connection to a room: it reconnects with jittered
// exponential backoff and resumes with `?since=`, refreshes its token before it expires (one
// refresh at a time), retries a buyer's reserve, checkout, cancel and bid with the same
// `request_id` after a dropped connection (so a tap never makes two holds or two bids and is
// never lost), and keeps `room.state` right from the events, so a UI renders from it alone. The
// README next to this file is the guide; livehub-client.d.ts has the types.

/** The SDK's version, sent nowhere; for apps that log it. */
export const VERSION = "0.1.0";

/** Reasons a call or a connection can fail with, besides the hub's own reject reasons and error
 * codes (`sold_out`, `limit_reached`, `deal_not_live`, `not_found`, `unavailable`,
 * `bad_request`, `forbidden`, `rate_limited`, `conflict`, `internal`, ...). */
export const CLIENT_REASONS = Object.freeze([
  "timeout", // no answer within requestTimeoutMs
  "closed", // the app called close()
  "disconnected", // a host command was sent and the connection dropped before its answer
  "token_expired", // a static token expired and there is no getToken
  "token_error", // getToken threw
  "unauthorized", // the hub refused the token (after one refresh, when there is getToken)
  "forbidden", // the token may not join this room
  "policy", // the hub closed the connection with 1008
  "bad_url", // the room id or URL cannot be used
]);

/** A failed call or connection: `reason` is one of the hub's reasons or codes, or one of
 * CLIENT_REASONS; `detail` is the hub's message (or the error getToken threw). A bid refused
 * `too_low` carries `minCents`: the least amount the hub accepts now. */
export class LiveHubError extends Error {
  constructor(reason, message, detail) {
    super(message || reason);
    this.name = "LiveHubError";
    this.reason = reason;
    this.detail = detail;
    if (detail && typeof detail === "object" && typeof detail.min_cents === "number") this.minCents = detail.min_cents;
  }
}

const DEFAULTS = {
  minDelayMs: 250,
  maxDelayMs: 15000,
  stableMs: 10000,
  connectTimeoutMs: 10000,
  refreshBeforeMs: 60000,
  requestTimeoutMs: 20000,
  unavailableRetries: 4,
  maxComments: 50,
};

const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const COMMERCE = new Set(["reserve", "checkout", "cancel", "bid"]);
const REPLY_TYPES = new Set(["reserved", "rejected", "order", "released", "bid_accepted", "ack", "error"]);
/** Closed auctions kept in state (with their result) besides the live ones. */
const CLOSED_AUCTIONS_KEPT = 20;
/** Close codes after which retrying cannot help. */
const CLOSE_POLICY = 1008;
const CLOSE_GOING_AWAY = 1001;
const CLOSE_RESYNC = 4000;

/** Seconds since the epoch at which a JWT expires, or null (no `exp`, not a JWT). */
export function tokenExpiry(token) {
  if (typeof token !== "string") return null;
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const json = typeof atob === "function" ? atob(b64) : Buffer.from(b64, "base64").toString("binary");
    const exp = JSON.parse(json).exp;
    return typeof exp === "number" ? exp : null;
  } catch (_) {
    return null;
  }
}

/** Where the token comes from: a static one, or getToken (called once at a time). */
class TokenSource {
  constructor(token, getToken, refreshBeforeMs, onBackgroundError) {
    this.token = token || null;
    this.getToken = getToken || null;
    this.refreshBeforeMs = refreshBeforeMs;
    this.onBackgroundError = onBackgroundError;
    this.inflight = null;
    this.timer = null;
    this.stopped = false;
    this.schedule();
  }

  /** Ms until the token expires (Infinity without exp, or without a token). */
  leftMs() {
    const exp = tokenExpiry(this.token);
    return exp === null ? Infinity : exp * 1000 - Date.now();
  }

  /** The token to connect with: refreshed first when it is about to expire. */
  async current() {
    if (this.getToken && (!this.token || this.leftMs() < 5000)) return this.refresh();
    if (this.token && this.leftMs() <= 0) {
      throw new LiveHubError("token_expired", "the token expired and there is no getToken");
    }
    return this.token;
  }

  /** A new token from getToken; callers at the same time share one call. */
  refresh() {
    if (!this.getToken) return Promise.resolve(this.token);
    if (!this.inflight) {
      this.inflight = Promise.resolve()
        .then(() => this.getToken())
        .then((t) => {
          const token = t && typeof t === "object" ? t.token : t;
          if (typeof token !== "string" || token === "") {
            throw new Error("getToken returned no token");
          }
          this.token = token;
          this.schedule();
          return token;
        })
        .catch((e) => {
          throw e instanceof LiveHubError ? e : new LiveHubError("token_error", "getToken failed", e);
        })
        .finally(() => {
          this.inflight = null;
        });
    }
    return this.inflight;
  }

  /** Refreshes ahead of expiry: refreshBeforeMs before it, or at 80% of a shorter life. */
  schedule() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped || !this.getToken) return;
    const left = this.leftMs();
    if (!Number.isFinite(left)) return;
    const wait = Math.max(0, left - Math.min(this.refreshBeforeMs, left / 5));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refresh().catch((e) => this.onBackgroundError(e));
    }, wait);
    if (this.timer && typeof this.timer.unref === "function") this.timer.unref();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
  }
}

/** A room's state from the hub's point of view, rebuilt from events; plain data. */
function emptyState(room) {
  return {
    room,
    connection: "disconnected",
    seq: 0,
    you: null,
    viewers: 0,
    likes: 0,
    pinned: null,
    deals: [],
    comments: [],
    announcement: null,
    stream: null,
    muted: [],
    hiddenComments: 0,
    holds: [],
    orders: [],
    auctions: [],
    myBids: [],
  };
}

/** Newest deal first: by `started_at`, then by `ends_at` (hubs before started_at existed). */
function byNewest(a, b) {
  return (b.started_at || 0) - (a.started_at || 0) || (b.ends_at || 0) - (a.ends_at || 0);
}

let requestCounter = 0;
function newRequestId(kind) {
  requestCounter = (requestCounter + 1) % 1e9;
  const rand = Math.random().toString(36).slice(2, 10);
  return `${kind.slice(0, 3)}-${Date.now().toString(36)}-${requestCounter.toString(36)}-${rand}`;
}

/**
 * One room on a livehub hub. Events: every server message type by its `type` (`comment`,
 * `deal`, `stock`, `auction`, `auction_bid`, ...; durable events exactly once each, in seq
 * order), plus `state` (after any change of `room.state`), `connection` ({state, reason,
 * final}), `hold_expired` (a hold's time ran out), `outbid` (this user led an auction and a
 * higher bid took the lead), `token_error` (a refresh ahead of expiry failed; the connection
 * stays).
 */
export class LiveRoom {
  constructor(opts) {
    if (!opts || typeof opts !== "object") throw new TypeError("LiveRoom needs options");
    if (!ID_RE.test(String(opts.room))) throw new TypeError(`bad room id: ${opts.room}`);
    const urls = Array.isArray(opts.url) ? opts.url : [opts.url];
    if (urls.length === 0 || urls.some((u) => typeof u !== "string" || !/^(wss?|https?):\/\//.test(u))) {
      throw new TypeError("url must be an http(s):// or ws(s):// URL of a hub, or a list of them");
    }
    this.room = String(opts.room);
    this.urls = urls.map((u) => u.replace(/\/+$/, ""));
    this.src = opts.src || null;
    this.options = { ...DEFAULTS, ...opts };
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    if (typeof this.WebSocket !== "function") {
      throw new TypeError("no WebSocket: pass one as options.WebSocket (Node 20: --experimental-websocket or the ws package)");
    }
    // Bound: a browser's fetch called as a method of another object throws "Illegal
    // invocation", which would read as "unreachable" and hide a refused token.
    this.fetch = opts.fetch || (typeof globalThis.fetch === "function" ? globalThis.fetch.bind(globalThis) : null);
    this.tokens = new TokenSource(opts.token, opts.getToken, this.options.refreshBeforeMs, (e) =>
      this.emit("token_error", e),
    );
    this.state = emptyState(this.room);
    this.handlers = new Map();
    this.ws = null;
    this.urlIndex = 0;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.lastSeq = null;
    this.welcomeSeq = 0;
    this.resumed = false;
    this.notLiveMs = 0;
    this.refreshedForRefusal = false;
    this.pending = new Map(); // request_id -> call
    this.holdTimers = new Map();
    this.deals = new Map();
    this.dealOrder = 0;
    this.auctions = new Map();
    this.browserHooks = null;
  }

  // ---- events ----------------------------------------------------------------------------

  /** Calls fn(payload, room) on each event of `type`; returns a function that removes it. */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) {
    const set = this.handlers.get(type);
    if (set) set.delete(fn);
  }

  emit(type, payload) {
    const set = this.handlers.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(payload, this);
      } catch (e) {
        console.error(`livehub-client: a "${type}" handler threw`, e);
      }
    }
  }

  // ---- connection ------------------------------------------------------------------------

  /** Starts connecting (and keeps the room connected until close()). */
  connect() {
    if (!this.stopped) return this;
    this.stopped = false;
    this.attempt = 0;
    this.tokens.stopped = false;
    this.tokens.schedule();
    this.hookBrowser();
    this.open();
    return this;
  }

  /** Closes the connection for good: pending calls reject with `closed`. */
  close() {
    this.stop("closed", null, false);
  }

  /** Drops the connection and resumes at once with `?since=` (e.g. after a network change). */
  reconnect() {
    if (this.stopped) return;
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(CLOSE_RESYNC, "resync");
    this.lostConnection();
    clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
    this.open();
  }

  setConnection(state, reason, final = false) {
    this.state = { ...this.state, connection: state };
    this.emit("connection", { state, reason: reason || null, final });
    this.emit("state", this.state);
  }

  async open() {
    this.timer = null;
    if (this.stopped || this.ws) return;
    this.setConnection("connecting");
    let token;
    try {
      token = await this.tokens.current();
    } catch (e) {
      return this.stop(e.reason || "token_error", e.detail || e, true);
    }
    if (this.stopped || this.ws) return;
    let ws;
    try {
      ws = new this.WebSocket(this.wsUrl(token));
    } catch (e) {
      return this.stop("bad_url", e, true);
    }
    this.ws = ws;
    this.welcomed = false;
    let opened = false;
    const finish = (code, reason) => {
      clearTimeout(giveUp);
      if (ws !== this.ws) return;
      this.ws = null;
      try {
        ws.close();
      } catch (_) {}
      this.closed(code, reason, opened, token);
    };
    // A node that never answers (blackholed) is given up on like one that refused.
    const giveUp = setTimeout(() => finish(1006, "connect timeout"), this.options.connectTimeoutMs);
    ws.onopen = () => {
      clearTimeout(giveUp);
      opened = true;
      this.openedAt = Date.now();
    };
    ws.onmessage = (ev) => {
      if (ws === this.ws) this.receive(ev.data);
    };
    // Some runtimes (Node 20's) report a failed connection with `error` and no `close`.
    ws.onerror = () => {
      if (!opened) finish(1006, "connect failed");
    };
    ws.onclose = (ev) => finish(ev.code, ev.reason);
  }

  wsUrl(token) {
    const base = this.urls[this.urlIndex % this.urls.length].replace(/^http/, "ws");
    const q = new URLSearchParams();
    if (token) q.set("token", token);
    if (this.lastSeq !== null) q.set("since", String(this.lastSeq));
    if (this.src) q.set("src", this.src);
    const qs = q.toString();
    return `${base}/ws/rooms/${encodeURIComponent(this.room)}${qs ? "?" + qs : ""}`;
  }

  httpUrl(path) {
    return this.urls[this.urlIndex % this.urls.length].replace(/^ws/, "http") + path;
  }

  /** What the connection's end means: stop, resume at once, ask why, or back off. */
  closed(code, reason, opened, token) {
    this.lostConnection();
    if (this.stopped) return;
    if (code === CLOSE_POLICY) return this.stop("policy", reason, true);
    if (this.notLiveMs) {
      const wait = this.notLiveMs;
      this.notLiveMs = 0;
      this.setConnection("disconnected", "not_live");
      this.timer = setTimeout(() => this.open(), wait);
      return;
    }
    if (opened && Date.now() - this.openedAt >= this.options.stableMs) this.attempt = 0;
    if (code === CLOSE_GOING_AWAY) {
      // The node is draining: another node, at once (with a little jitter for the herd).
      this.urlIndex += 1;
      this.setConnection("disconnected", "going_away");
      this.timer = setTimeout(() => this.open(), Math.random() * this.options.minDelayMs);
      return;
    }
    if (!opened) return this.askWhyRefused(token);
    this.backoff(`closed_${code}`);
  }

  /** The upgrade failed: the room snapshot with the same token tells a refused token from a
   * node that is down. */
  async askWhyRefused(token) {
    let status = 0;
    if (this.fetch) {
      try {
        const q = token ? `?token=${encodeURIComponent(token)}` : "";
        const res = await this.fetch(this.httpUrl(`/api/rooms/${encodeURIComponent(this.room)}${q}`));
        status = res.status;
      } catch (_) {
        status = 0;
      }
    }
    if (this.stopped || this.ws || this.timer) return;
    if (status === 401) {
      if (this.tokens.getToken && !this.refreshedForRefusal) {
        this.refreshedForRefusal = true;
        try {
          await this.tokens.refresh();
        } catch (e) {
          return this.stop(e.reason || "token_error", e.detail || e, true);
        }
        return this.backoff("unauthorized");
      }
      return this.stop("unauthorized", "the hub refused the token", true);
    }
    if (status === 403) return this.stop("forbidden", "the token may not join this room", true);
    if (status === 400) return this.stop("bad_url", "the hub refused the room id", true);
    if (status === 0) this.urlIndex += 1; // unreachable: try the next node
    this.backoff(status ? `refused_${status}` : "unreachable");
  }

  backoff(reason) {
    if (this.stopped || this.timer) return;
    this.setConnection("disconnected", reason);
    const { minDelayMs, maxDelayMs } = this.options;
    const cap = Math.min(maxDelayMs, minDelayMs * Math.pow(2, this.attempt));
    this.attempt += 1;
    this.timer = setTimeout(() => this.open(), cap / 2 + Math.random() * (cap / 2));
  }

  /** Stops for good; `final` says the hub's answer (not the app) stopped it. */
  stop(reason, detail, final) {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
    this.tokens.stop();
    this.unhookBrowser();
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, "bye");
    this.lostConnection();
    for (const call of [...this.pending.values()]) {
      this.settle(call, new LiveHubError(reason, typeof detail === "string" ? detail : reason, detail));
    }
    for (const t of this.holdTimers.values()) clearTimeout(t);
    this.holdTimers.clear();
    this.setConnection("disconnected", reason, final);
  }

  /** The socket is gone: host commands already sent cannot be known to have run. */
  lostConnection() {
    this.welcomed = false;
    for (const call of [...this.pending.values()]) {
      if (call.sent && !COMMERCE.has(call.msg.type)) {
        this.settle(call, new LiveHubError("disconnected", "the connection dropped before the answer; it may have run"));
      } else {
        call.sent = false;
      }
    }
  }

  hookBrowser() {
    if (this.browserHooks || typeof window === "undefined" || this.options.closeOnPageHide === false) return;
    const hide = () => {
      const ws = this.ws;
      this.ws = null;
      clearTimeout(this.timer);
      this.timer = null;
      if (ws) ws.close(1000, "pagehide");
      this.lostConnection();
      if (!this.stopped) this.setConnection("disconnected", "pagehide");
    };
    const show = () => {
      if (!this.stopped && !this.ws && !this.timer) this.open();
    };
    const online = () => {
      if (!this.stopped && this.timer) {
        clearTimeout(this.timer);
        this.timer = null;
        this.open();
      }
    };
    window.addEventListener("pagehide", hide);
    window.addEventListener("pageshow", show);
    window.addEventListener("online", online);
    this.browserHooks = { hide, show, online };
  }

  unhookBrowser() {
    if (!this.browserHooks) return;
    window.removeEventListener("pagehide", this.browserHooks.hide);
    window.removeEventListener("pageshow", this.browserHooks.show);
    window.removeEventListener("online", this.browserHooks.online);
    this.browserHooks = null;
  }

  // ---- receiving -------------------------------------------------------------------------

  receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (_) {
      return;
    }
    if (!msg || typeof msg.type !== "string") return;
    if (msg.type === "not_live") {
      this.notLiveMs = Math.max(1000, Number(msg.retry_ms) || 5000);
      this.emit("not_live", msg);
      return;
    }
    if (msg.type === "welcome") return this.onWelcome(msg);
    let replay = false;
    if (typeof msg.seq === "number" && msg.type !== "ack") {
      const first = msg.type === "skipped" ? Number(msg.from) : msg.seq;
      if (!this.sequence(msg.seq, first)) return;
      // A resume replays events the welcome's snapshot already holds: told, not applied
      // (an announcement is applied when it is newer than the one the state has).
      replay = this.resumed && msg.seq <= this.welcomeSeq;
      if (replay && msg.type === "announcement") replay = msg.seq <= (this.state.announcement?.seq || 0);
      // The welcome lists live auctions only: a close replayed after it is news (and merging an
      // auction is idempotent: a close is final, a start never undoes bids).
      if (replay && msg.type === "auction") replay = false;
    }
    if (!replay) this.apply(msg);
    if (REPLY_TYPES.has(msg.type) && msg.request_id) this.answer(msg);
    this.emit(msg.type, msg);
    this.emit("state", this.state);
  }

  /** Applies durable seqs first..=seq: false for a repeat; a gap resumes. */
  sequence(seq, first) {
    if (this.lastSeq === null) {
      this.lastSeq = seq;
      return true;
    }
    if (seq <= this.lastSeq) return false;
    if (first > this.lastSeq + 1) {
      this.reconnect();
      return false;
    }
    this.lastSeq = seq;
    return true;
  }

  onWelcome(msg) {
    this.welcomed = true;
    this.refreshedForRefusal = false;
    this.welcomeSeq = Number(msg.seq) || 0;
    this.resumed = !!msg.resumed && this.lastSeq !== null;
    if (!this.resumed) this.lastSeq = this.welcomeSeq;
    this.applyWelcome(msg);
    for (const b of this.state.myBids) this.restand(b.auction); // outbid while away?
    this.setConnection("connected", this.resumed ? "resumed" : "welcome");
    this.emit("welcome", msg);
    this.emit("state", this.state);
    for (const call of this.pending.values()) if (!call.sent) this.transmit(call);
  }

  applyWelcome(msg) {
    this.deals.clear();
    for (const d of msg.deals || []) this.putDeal(d);
    const live = Array.isArray(msg.auctions) ? msg.auctions : [];
    if (!this.resumed) {
      // A new incarnation of the room (or history too old to resume): a live auction it does
      // not list is gone; closed ones keep their result. (On a resume its close is replayed.)
      for (const [id, a] of this.auctions) {
        if (a.status === "live" && !live.some((x) => x.id === id)) this.auctions.delete(id);
      }
    }
    for (const a of live) this.putAuction(a);
    const recent = (msg.recent || []).slice(-this.options.maxComments);
    this.state = {
      ...this.state,
      seq: this.welcomeSeq,
      you: msg.you || null,
      viewers: Number(msg.viewers) || 0,
      likes: Number(msg.likes) || 0,
      pinned: msg.pinned || null,
      deals: this.dealList(),
      auctions: this.auctionList(),
      comments: recent,
      announcement: msg.announcement !== undefined ? msg.announcement : this.state.announcement,
      stream: msg.stream_url !== undefined ? msg.stream_url : this.state.stream,
      muted: Array.isArray(msg.muted) ? msg.muted : [],
    };
  }

  putDeal(deal) {
    const old = this.deals.get(deal.id);
    this.deals.set(deal.id, { ...deal, seen: old ? old.seen : ++this.dealOrder });
  }

  dealList() {
    return [...this.deals.values()]
      .sort((a, b) => byNewest(a, b) || b.seen - a.seen)
      .map(({ seen, ...deal }) => deal);
  }

  /** Keeps an auction as an event or a welcome shows it, by the hub's own rule: a later run
   * replaces an earlier one, a close is final, and a live view never undoes bids already heard
   * (an `auction_bid` may overtake the event). True when it changed what is kept. */
  putAuction(view) {
    const old = this.auctions.get(view.id);
    if (old && old.started_at > view.started_at) return false;
    if (old && old.started_at === view.started_at) {
      if (old.status !== "live") return false;
      if (view.status === "live" && old.bids > view.bids) return false;
    }
    this.auctions.set(view.id, { ...view });
    const closed = [...this.auctions.values()].filter((a) => a.status !== "live").sort(byNewest);
    for (const a of closed.slice(CLOSED_AUCTIONS_KEPT)) this.auctions.delete(a.id);
    return true;
  }

  /** An `auction_bid` frame: applied to the live run unless it is older than what is kept. */
  auctionBid(msg) {
    const a = this.auctions.get(msg.auction);
    // The same count is the same state (a run's state is its bids): it may correct what this
    // user's own answer could not know (who leads after a bid a maximum answered).
    if (!a || a.status !== "live" || !(Number(msg.bids) >= a.bids)) return false;
    const { current_cents, leader, bids, ends_at } = msg;
    this.auctions.set(a.id, { ...a, current_cents, leader: leader || null, bids, ends_at });
    return true;
  }

  /** Newest first, like deals. */
  auctionList() {
    return [...this.auctions.values()].sort(byNewest);
  }

  /** This user's own accepted bid: their standing (`myBids`), and, when it leads, the auction
   * as it left it. A bid another bidder's maximum answered leaves the price and the leader to
   * the `auction_bid` frame every viewer gets for it. */
  bidAccepted(msg) {
    const a = this.auctions.get(msg.auction);
    const me = this.state.you ? { name: this.state.you.name } : null;
    // Newer than the auction kept here? Hubs that send the bid's place (`bids`) say exactly;
    // otherwise the price, which rises with every accepted bid, tells.
    const exact = typeof msg.bids === "number";
    const newer = !a || (exact ? msg.bids > a.bids : msg.current_cents > (a.current_cents ?? -1));
    const place = exact ? msg.bids : !a ? 1 : newer ? a.bids + 1 : a.bids;
    if (a && a.status === "live" && msg.leading && me && newer) {
      const ends_at = Math.max(a.ends_at, msg.ends_at);
      this.auctions.set(a.id, { ...a, current_cents: msg.current_cents, ends_at, bids: place, leader: me });
    }
    const call = this.pending.get(msg.request_id);
    const asked = call ? Number(call.msg.max_cents) || 0 : 0;
    const old = this.state.myBids.find((b) => b.auction === msg.auction);
    const sameRun = !!old && (!a || old.started_at === a.started_at);
    const mine = {
      auction: msg.auction,
      started_at: a ? a.started_at : sameRun ? old.started_at : 0,
      amount_cents: msg.amount_cents,
      max_cents: Math.max(msg.amount_cents, asked, sameRun ? old.max_cents : 0),
      leading: !!msg.leading,
      result: null,
      // An answer the kept auction has already passed: the auction says where they stand.
      at_bids: newer ? place : place - 1,
    };
    this.state = {
      ...this.state,
      auctions: this.auctionList(),
      myBids: [...this.state.myBids.filter((b) => b.auction !== msg.auction), mine],
    };
    // Bids after this one were heard already (or it closed): the standing is theirs to say.
    this.restand(msg.auction);
  }

  /** This user's standing in `auctionId` after the auction moved past the bids it was known
   * at: leading while the leader shown is them within their maximum; at the close, won or
   * lost. Emits `outbid` when a lead was lost. */
  restand(auctionId) {
    const a = this.auctions.get(auctionId);
    const i = this.state.myBids.findIndex((b) => b.auction === auctionId);
    if (!a || i < 0) return;
    const old = this.state.myBids[i];
    if (old.started_at !== a.started_at || old.result === "won") return;
    const myName = this.state.you ? this.state.you.name : null;
    let next;
    if (a.status === "live") {
      if (a.bids <= old.at_bids) return; // nothing newer than what the standing is from
      const leading = !!a.leader && a.leader.name === myName && (a.current_cents ?? 0) <= old.max_cents;
      next = { ...old, leading, at_bids: a.bids };
    } else {
      const won = a.status === "sold" && !!a.winner && a.winner.name === myName;
      next = { ...old, leading: won, result: won ? "won" : "lost", at_bids: a.bids };
    }
    const myBids = [...this.state.myBids];
    myBids[i] = next;
    this.state = { ...this.state, myBids };
    if (old.leading && !next.leading && a.status === "live") this.emit("outbid", { auction: a, bid: next });
  }

  /** The state after one event or reply. */
  apply(msg) {
    const s = this.state;
    const seq = typeof msg.seq === "number" && msg.type !== "ack" ? { seq: msg.seq } : {};
    switch (msg.type) {
      case "comment": {
        const { type, ...c } = msg;
        this.state = { ...s, ...seq, comments: [...s.comments, c].slice(-this.options.maxComments) };
        break;
      }
      case "comment_deleted":
        this.state = { ...s, ...seq, comments: s.comments.filter((c) => c.id !== msg.id) };
        break;
      case "skipped":
        this.state = { ...s, ...seq, hiddenComments: s.hiddenComments + (Number(msg.comments) || 0) };
        break;
      case "pinned":
        this.state = { ...s, ...seq, pinned: msg.product };
        break;
      case "unpinned":
        this.state = { ...s, ...seq, pinned: null };
        break;
      case "deal":
        this.putDeal(msg.deal);
        this.state = { ...s, ...seq, deals: this.dealList() };
        break;
      case "announcement":
        this.state = { ...s, ...seq, announcement: { text: msg.text, seq: msg.seq, ts: msg.ts } };
        break;
      case "stream":
        this.state = { ...s, ...seq, stream: msg.url || null };
        break;
      case "stock": {
        const d = this.deals.get(msg.deal);
        if (d) {
          this.deals.set(msg.deal, { ...d, remaining: msg.remaining });
          this.state = { ...s, deals: this.dealList() };
        }
        break;
      }
      case "viewers":
        this.state = { ...s, viewers: msg.count };
        break;
      case "likes":
        this.state = { ...s, likes: msg.total };
        break;
      case "reserved":
        this.addHold(msg);
        break;
      case "order":
        this.dropHold(msg.reservation);
        if (!this.state.orders.some((o) => o.order === msg.order)) {
          const { type, ...order } = msg;
          this.state = { ...this.state, orders: [...this.state.orders, order] };
        }
        if (msg.auction) {
          // An auction's winner: the order is the proof (the close names a display name only).
          const myBids = this.state.myBids.map((b) => (b.auction === msg.auction ? { ...b, leading: true, result: "won" } : b));
          this.state = { ...this.state, myBids };
        }
        break;
      case "auction":
        this.putAuction(msg.auction);
        this.state = { ...s, ...seq, auctions: this.auctionList() };
        this.restand(msg.auction.id);
        break;
      case "auction_bid":
        if (this.auctionBid(msg)) {
          this.state = { ...s, auctions: this.auctionList() };
          this.restand(msg.auction);
        }
        break;
      case "bid_accepted":
        this.bidAccepted(msg);
        break;
      case "order_status": {
        // A pending order (orders.payment = "external") became paid, failed or expired.
        const i = s.orders.findIndex((o) => o.order === msg.order);
        if (i >= 0) {
          const orders = [...s.orders];
          orders[i] = { ...orders[i], status: msg.status };
          this.state = { ...s, orders };
        }
        break;
      }
      case "released":
        this.dropHold(msg.reservation);
        break;
      default:
        if (seq.seq) this.state = { ...s, ...seq };
    }
  }

  addHold(msg) {
    if (this.state.holds.some((h) => h.reservation === msg.reservation)) return;
    const hold = {
      reservation: msg.reservation,
      deal: msg.deal,
      qty: msg.qty,
      expires_at: msg.expires_at,
      request_id: msg.request_id,
    };
    this.state = { ...this.state, holds: [...this.state.holds, hold] };
    const t = setTimeout(() => {
      this.holdTimers.delete(hold.reservation);
      if (!this.state.holds.some((h) => h.reservation === hold.reservation)) return;
      this.dropHold(hold.reservation);
      this.emit("hold_expired", hold);
      this.emit("state", this.state);
    }, Math.max(0, hold.expires_at - Date.now()));
    if (typeof t.unref === "function") t.unref();
    this.holdTimers.set(hold.reservation, t);
  }

  dropHold(reservation) {
    clearTimeout(this.holdTimers.get(reservation));
    this.holdTimers.delete(reservation);
    if (this.state.holds.some((h) => h.reservation === reservation)) {
      this.state = { ...this.state, holds: this.state.holds.filter((h) => h.reservation !== reservation) };
    }
  }

  // ---- calls -----------------------------------------------------------------------------

  /** Sends a command and settles with its answer. Commerce calls survive reconnects. */
  call(msg, expect) {
    if (this.stopped) {
      return Promise.reject(new LiveHubError("closed", "not connected: call connect() first (or the room was closed)"));
    }
    const request_id = msg.request_id || newRequestId(msg.type);
    const full = { ...msg, request_id };
    return new Promise((resolve, reject) => {
      const call = { msg: full, expect, resolve, reject, sent: false, tries: 0, timer: null };
      call.timer = setTimeout(
        () => this.settle(call, new LiveHubError("timeout", `no answer to ${msg.type} in time`)),
        this.options.requestTimeoutMs,
      );
      this.pending.set(request_id, call);
      if (this.welcomed) this.transmit(call);
    });
  }

  transmit(call) {
    if (!this.ws || !this.welcomed) return;
    try {
      this.ws.send(JSON.stringify(call.msg));
      call.sent = true;
    } catch (_) {
      call.sent = false; // the socket is closing: sent again after the resume
    }
  }

  settle(call, err, value) {
    if (!this.pending.has(call.msg.request_id)) return;
    this.pending.delete(call.msg.request_id);
    clearTimeout(call.timer);
    if (err) call.reject(err);
    else call.resolve(value);
  }

  /** A reply to one of our calls. */
  answer(msg) {
    const call = this.pending.get(msg.request_id);
    if (!call) return;
    if (msg.type === "rejected" && msg.reason === "unavailable" && call.tries < this.options.unavailableRetries) {
      // Ambiguous: the backend may have done it. The same request_id again gets its answer.
      call.tries += 1;
      call.sent = false;
      const wait = this.options.minDelayMs * Math.pow(2, call.tries - 1) * (0.5 + Math.random() / 2);
      setTimeout(() => {
        if (this.pending.get(msg.request_id) === call && !call.sent) this.transmit(call);
      }, wait);
      return;
    }
    if (msg.type === "rejected") {
      return this.settle(call, new LiveHubError(msg.reason, `rejected: ${msg.reason}`, msg));
    }
    if (msg.type === "error") {
      return this.settle(call, new LiveHubError(msg.code, msg.message, msg));
    }
    if (msg.type !== call.expect) return;
    const { type, ...value } = msg;
    if (type === "reserved") value.expires_at = Number(value.expires_at);
    this.settle(call, null, value);
  }

  // ---- viewer calls ----------------------------------------------------------------------

  /** Holds `qty` units of a deal: resolves to the hold, rejects with a LiveHubError whose
   * reason says why (`sold_out`, `limit_reached`, `deal_not_live`, `rate_limited`, ...). */
  reserve(deal, qty = 1) {
    return this.call({ type: "reserve", deal: String(deal), qty }, "reserved");
  }

  /** Turns a hold (object or reservation id) into an order. */
  checkout(hold) {
    const reservation = typeof hold === "object" && hold ? hold.reservation : hold;
    return this.call({ type: "checkout", reservation }, "order");
  }

  /** Gives a hold (object or reservation id) back at once. */
  cancel(hold) {
    const reservation = typeof hold === "object" && hold ? hold.reservation : hold;
    return this.call({ type: "cancel", reservation }, "released");
  }

  /** Bids `amountCents` on a live auction; `maxCents` makes it a proxy bid (the hub bids for
   * this user up to it). Resolves to the accepted answer `{auction, amount_cents,
   * current_cents, leading, ends_at}`; rejects with a LiveHubError whose reason says why
   * (`too_low` with `minCents`, `ended`, `not_found`, `rate_limited`, ...). Like a reserve, a
   * bid whose answer a dropped connection lost is sent again with the same request_id, and the
   * hub answers it as it answered the first time (never a second bid). */
  bid(auction, amountCents, { maxCents } = {}) {
    const msg = { type: "bid", auction: String(auction), amount_cents: amountCents };
    if (maxCents !== undefined && maxCents !== null) msg.max_cents = maxCents;
    return this.call(msg, "bid_accepted");
  }

  /** Posts a comment; resolves to {seq} once the room has it. */
  comment(text) {
    return this.call({ type: "comment", text }, "ack");
  }

  /** Sends likes (1 to 50); resolves once the hub counted them. */
  like(count = 1) {
    return this.call({ type: "like", count }, "ack");
  }

  // ---- host calls (host or admin tokens) --------------------------------------------------

  pin(product) {
    return this.call({ type: "pin", product }, "ack");
  }

  unpin() {
    return this.call({ type: "unpin" }, "ack");
  }

  /** Starts a deal: `{id, product_id, price_cents, stock, per_user_limit, duration_ms, ...}`. */
  startDeal(deal) {
    return this.call({ type: "deal_start", deal }, "ack");
  }

  endDeal(deal) {
    return this.call({ type: "deal_end", deal: String(deal) }, "ack");
  }

  /** Starts an auction: `{id, product_id, start_cents, increment_cents, duration_ms,
   * extend_ms?, sudden_death?, title?, image_url?, currency?, ...}`. */
  startAuction(auction) {
    return this.call({ type: "auction_start", auction }, "ack");
  }

  /** Ends an auction that has no bid (it closes unsold); one with a bid runs to its end. */
  endAuction(auction) {
    return this.call({ type: "auction_end", auction: String(auction) }, "ack");
  }

  announce(text) {
    return this.call({ type: "announce", text }, "ack");
  }

  mute(user, durationMs) {
    return this.call({ type: "mute", user, duration_ms: durationMs }, "ack").then((v) => {
      const until = Date.now() + durationMs;
      const muted = [...this.state.muted.filter((m) => m.user !== user), { user, until }];
      this.state = { ...this.state, muted };
      this.emit("state", this.state);
      return v;
    });
  }

  unmute(user) {
    return this.call({ type: "unmute", user }, "ack").then((v) => {
      this.state = { ...this.state, muted: this.state.muted.filter((m) => m.user !== user) };
      this.emit("state", this.state);
      return v;
    });
  }

  deleteComment(id) {
    return this.call({ type: "delete_comment", id }, "ack");
  }

  /** Sets (or with null clears) the room's live video stream URL. */
  setStream(url) {
    return this.call({ type: "set_stream", url }, "ack");
  }

  // ---- reading state ---------------------------------------------------------------------

  /** The deal with this id from state, or undefined. */
  deal(id) {
    return this.state.deals.find((d) => d.id === id);
  }

  /** The auction with this id from state, or undefined. */
  auction(id) {
    return this.state.auctions.find((a) => a.id === id);
  }

  /** This user's standing in an auction they bid on, or undefined. */
  myBid(id) {
    return this.state.myBids.find((b) => b.auction === id);
  }

  /** The least amount a bid of this user on a live auction is accepted at now: the start
   * price before the first bid, then the price plus one increment, and for the leader at least
   * their own maximum. Null for an auction that is not live here. */
  minBid(id) {
    const a = this.auctions.get(id);
    if (!a || a.status !== "live") return null;
    let min = a.current_cents === null || a.current_cents === undefined ? a.start_cents : a.current_cents + a.increment_cents;
    const mine = this.myBid(id);
    if (mine && mine.leading && mine.started_at === a.started_at) min = Math.max(min, mine.max_cents);
    return min;
  }

  /** The durable seq last applied (null before the first welcome). */
  get seq() {
    return this.lastSeq;
  }
}
