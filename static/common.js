// common.js: helpers shared by the livehub pages (viewer, host console, landing page).
// - DOM helpers that only ever set text (never HTML) from user or server data
// - money and countdown formatting
// - tokens: ?token=, the development token endpoint, tokens pasted into a form
// - HubSocket: the room WebSocket with exponential-backoff reconnect and ?since= resume
// - the landing page's few lines (room form, /api/pages facts), run when #room-form exists
// Everything is exported on the global `LH`.
"use strict";

(function () {
  const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

  // ---- DOM -------------------------------------------------------------------------------

  function $(id) {
    return document.getElementById(id);
  }

  /**
   * Builds an element. `props` may hold: className, text (set as textContent), title, type,
   * dataset (object), attrs (object of attributes), onClick. Children are nodes or strings
   * (strings become text nodes). Never interprets anything as HTML.
   */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    const p = props || {};
    if (p.className) node.className = p.className;
    if (p.text !== undefined && p.text !== null) node.textContent = String(p.text);
    if (p.title) node.title = p.title;
    if (p.type) node.type = p.type;
    if (p.dataset) {
      for (const [k, v] of Object.entries(p.dataset)) node.dataset[k] = String(v);
    }
    if (p.attrs) {
      for (const [k, v] of Object.entries(p.attrs)) node.setAttribute(k, String(v));
    }
    if (p.onClick) node.addEventListener("click", p.onClick);
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }

  function setText(target, value) {
    const node = typeof target === "string" ? $(target) : target;
    if (node) node.textContent = value === null || value === undefined ? "" : String(value);
  }

  function show(target, visible) {
    const node = typeof target === "string" ? $(target) : target;
    if (node) node.hidden = !visible;
  }

  /** True for http(s) URLs and same-origin paths; used before loading images or video. */
  function safeMediaUrl(url) {
    if (typeof url !== "string" || url === "") return false;
    try {
      const u = new URL(url, location.href);
      return u.protocol === "http:" || u.protocol === "https:";
    } catch (_) {
      return false;
    }
  }

  // ---- formatting ------------------------------------------------------------------------

  const moneyFormats = new Map();

  /** Formats integer minor units, e.g. (1999, "USD") -> "$19.99", (500, "JPY") -> "¥500". */
  function formatMoney(cents, currency) {
    const cur = typeof currency === "string" && currency ? currency : "USD";
    const amount = Number(cents) || 0;
    try {
      let fmt = moneyFormats.get(cur);
      if (!fmt) {
        fmt = new Intl.NumberFormat(undefined, { style: "currency", currency: cur });
        moneyFormats.set(cur, fmt);
      }
      const digits = fmt.resolvedOptions().maximumFractionDigits;
      return fmt.format(amount / Math.pow(10, digits));
    } catch (_) {
      return (amount / 100).toFixed(2) + " " + cur;
    }
  }

  /** Formats a duration: "0:42", "4:05", "1:02:03". Negative durations show as "0:00". */
  function formatCountdown(ms) {
    const total = Math.max(0, Math.ceil((Number(ms) || 0) / 1000));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    const ss = String(s).padStart(2, "0");
    return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  }

  function formatTime(ts) {
    const d = new Date(Number(ts) || Date.now());
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // ---- ids -------------------------------------------------------------------------------

  let ridCounter = 0;

  /** A fresh request id, valid as a protocol id ([A-Za-z0-9_-]{1,64}). */
  function requestId(prefix) {
    ridCounter += 1;
    const rnd = Math.random().toString(36).slice(2, 10);
    return `${prefix || "r"}-${Date.now().toString(36)}-${ridCounter}-${rnd}`;
  }

  function isValidId(s) {
    return typeof s === "string" && ID_RE.test(s);
  }

  /** The room id: the last path segment (/rooms/demo, /host/demo), or ?room= as a fallback. */
  function roomFromPath() {
    const parts = location.pathname.split("/").filter(Boolean);
    let room = parts.length ? parts[parts.length - 1] : "";
    try {
      room = decodeURIComponent(room);
    } catch (_) {
      room = "";
    }
    if (!isValidId(room) || /\.html$/.test(location.pathname)) {
      room = new URLSearchParams(location.search).get("room") || room;
    }
    return isValidId(room) ? room : null;
  }

  // ---- hub HTTP --------------------------------------------------------------------------

  let pageInfoPromise = null;

  /** GET /api/pages -> {dev_tokens, stream_url, version}; falls back to safe defaults. */
  function pageInfo() {
    if (!pageInfoPromise) {
      pageInfoPromise = fetch("/api/pages", { cache: "no-store" })
        .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))))
        .then((j) => ({
          dev_tokens: !!(j && j.dev_tokens),
          stream_url: j && typeof j.stream_url === "string" && j.stream_url ? j.stream_url : null,
          version: j && j.version ? String(j.version) : "",
          ok: true,
        }))
        .catch(() => ({ dev_tokens: false, stream_url: null, version: "", ok: false }));
    }
    return pageInfoPromise;
  }

  /**
   * Asks the hub why joining `room` with `token` (null: anonymous) fails. A refused WebSocket
   * upgrade gives the browser no status, but GET /api/rooms/{room} follows the same
   * authorization as joining. Resolves to {status, code, message} (status 200 when the token
   * is fine), or null when the hub cannot be reached.
   */
  async function probeRoom(room, token) {
    const q = token ? "?" + new URLSearchParams({ token }).toString() : "";
    try {
      const r = await fetch(`/api/rooms/${encodeURIComponent(room)}${q}`, { cache: "no-store" });
      let body = null;
      try {
        body = await r.json();
      } catch (_) {
        /* not JSON: only the status speaks */
      }
      const err = body && typeof body.error === "object" && body.error ? body.error : {};
      return {
        status: r.status,
        code: typeof err.code === "string" ? err.code : "",
        message: typeof err.message === "string" ? err.message : "",
      };
    } catch (_) {
      return null;
    }
  }

  /**
   * Picks a page's token: ?token= first, then one pasted earlier in this tab, then (viewers who
   * chose it) watch-only, then a development token when the hub offers them. Returns
   * {token, source}, or null when the user must sign in.
   */
  async function chooseToken(role, room, name, info, allowAnonymous) {
    const fromUrl = tokenFromUrl();
    if (fromUrl) return { token: fromUrl, source: "url" };
    const pasted = session(`livehub.${role}.token.${room}`);
    if (pasted) return { token: pasted, source: "pasted" };
    if (allowAnonymous && session(`livehub.${role}.anon.${room}`)) {
      return { token: null, source: "anonymous" };
    }
    if (info.dev_tokens) {
      try {
        return { token: await storedDevToken(role, room, name, false), source: "dev" };
      } catch (_) {
        /* fall through to the form */
      }
    }
    return null;
  }

  /** Shows the token form; `note` says why (e.g. the current token keeps being refused). */
  function showSignin(note) {
    setText("signin-note", note || "");
    show("signin-note", !!note);
    show("signin", true);
  }

  /** No token to use: say so in the status and show the form. */
  function askForToken() {
    setStatus("status", "signin");
    showSignin("");
  }

  function tokenFromUrl() {
    const t = new URLSearchParams(location.search).get("token");
    return t && t.trim() ? t.trim() : null;
  }

  /** GET /api/dev/token -> {token, user}. Rejects when the endpoint is off or fails. */
  async function devToken(role, room, name) {
    const q = new URLSearchParams({ role, room, name });
    const r = await fetch("/api/dev/token?" + q.toString(), { cache: "no-store" });
    if (!r.ok) throw new Error("dev token: HTTP " + r.status);
    const j = await r.json();
    if (!j || typeof j.token !== "string" || !j.token) throw new Error("dev token: no token");
    return { token: j.token, user: j.user || null };
  }

  /** Seconds-since-epoch `exp` of a JWT, or null when absent or unreadable. */
  function tokenExp(token) {
    try {
      const part = String(token).split(".")[1];
      const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
      const exp = JSON.parse(json).exp;
      return typeof exp === "number" ? exp : null;
    } catch (_) {
      return null;
    }
  }

  /** True when a token's `exp` has passed (or passes within a minute). */
  function tokenExpired(token) {
    const exp = tokenExp(token);
    return exp !== null && exp * 1000 < Date.now() + 60000;
  }

  /**
   * A development token for (role, room), kept in sessionStorage so a reload or a reconnect
   * keeps the same user (the endpoint mints a new user id each call, and holds belong to a
   * user). `fresh` forces a new one.
   */
  async function storedDevToken(role, room, name, fresh) {
    const key = `livehub.${role}.devtoken.${room}`;
    const kept = session(key);
    if (kept && !fresh && !tokenExpired(kept)) return kept;
    const t = await devToken(role, room, name);
    session(key, t.token);
    return t.token;
  }

  function session(key, value) {
    try {
      if (value === undefined) return sessionStorage.getItem(key);
      if (value === null) sessionStorage.removeItem(key);
      else sessionStorage.setItem(key, value);
    } catch (_) {
      /* storage disabled: behave as if empty */
    }
    return null;
  }

  /** The guest name for this room in this tab, e.g. "guest-1234" (kept in sessionStorage). */
  function guestName(room) {
    const key = `livehub.guest.${room}`;
    let name = session(key);
    if (!name) {
      name = "guest-" + String(Math.floor(1000 + Math.random() * 9000));
      session(key, name);
    }
    return name;
  }

  // ---- status ----------------------------------------------------------------------------

  const STATUS_TEXT = {
    connecting: "connecting",
    live: "live",
    reconnecting: "reconnecting…",
    policy: "disconnected (policy)",
    signin: "signed out",
    not_live: "the show has not started",
  };

  /** Shows a connection state on the #status element: text plus a class of the same name. */
  function setStatus(node, state) {
    const target = typeof node === "string" ? $(node) : node;
    if (!target) return;
    target.textContent = STATUS_TEXT[state] || state;
    for (const s of Object.keys(STATUS_TEXT)) target.classList.remove(s);
    target.classList.add(state);
  }

  // ---- human texts -----------------------------------------------------------------------

  const REJECT_TEXT = {
    sold_out: "Sold out",
    limit_reached: "Limit reached",
    deal_not_live: "Deal over",
    not_found: "Hold expired",
    unavailable: "Try again",
  };

  const ERROR_TEXT = {
    bad_request: "Not accepted",
    unauthorized: "Sign in again",
    forbidden: "Not allowed",
    not_found: "Not found",
    conflict: "Conflict",
    rate_limited: "Slow down",
    too_large: "Too long",
    unavailable: "Try again",
    internal: "Something went wrong",
  };

  function errorText(msg) {
    const code = msg && msg.code ? String(msg.code) : "error";
    const label = ERROR_TEXT[code] || "Error";
    const detail = msg && msg.message ? String(msg.message) : "";
    return `${label} (${code})${detail ? ": " + detail : ""}`;
  }

  // ---- WebSocket -------------------------------------------------------------------------

  const BACKOFF_BASE_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const STABLE_MS = 5000; // a connection that lived this long resets the backoff
  const REFUSED_BEFORE_REFRESH = 6; // failed upgrades in a row before a token is re-fetched

  /**
   * The room connection. Options:
   *   room, getToken(refresh) -> Promise<string|null> (null: anonymous); `refresh` asks for a
   *   new token (after several upgrades in a row failed: the token may be bad or expired),
   *   onMessage(msg, hub), onState(state) with state in connecting|live|reconnecting|policy,
   *   and optionally onRefused() -> Promise<bool>: called when an upgrade fails before the
   *   socket opens (the page may ask the hub why, see probeRoom); true stops reconnecting (the
   *   page says why; retry() starts again).
   * Tracks the last seq seen, drops repeated events, reconnects with ?since= on a gap, a close
   * (1001, 1013, network) or an error; a 1008 close stops it (policy).
   */
  class HubSocket {
    constructor(opts) {
      this.room = opts.room;
      this.getToken = opts.getToken;
      this.onMessage = opts.onMessage;
      this.onState = opts.onState || (() => {});
      this.onRefused = opts.onRefused || null;
      this.connects = 0; // connection attempts so far (tells an old refusal from a newer try)
      this.ws = null;
      this.lastSeq = null; // last durable seq applied; null before the first welcome
      this.welcomeSeq = 0; // seq of the room at the latest welcome
      this.resumed = false; // whether the latest welcome resumed
      this.welcomed = false; // whether the current socket has had its welcome
      this.attempt = 0;
      this.timer = null;
      this.stopped = false;
      this.refused = 0; // upgrades in a row that failed before the socket opened
      this.everConnected = false;
      window.addEventListener("online", () => this.reconnectNow());
    }

    start() {
      this.stopped = false;
      this.connect();
    }

    stop() {
      this.stopped = true;
      clearTimeout(this.timer);
      this.timer = null;
      if (this.ws) {
        const ws = this.ws;
        this.ws = null;
        ws.close(1000, "bye");
      }
    }

    get connected() {
      return !!(this.ws && this.ws.readyState === WebSocket.OPEN && this.welcomed);
    }

    /** Sends one command; false when not connected (nothing was sent). */
    send(obj) {
      if (!this.connected) return false;
      this.ws.send(JSON.stringify(obj));
      return true;
    }

    /** True for an event replayed after a resumed welcome that the welcome snapshot covers. */
    isReplay(seq) {
      return this.resumed && typeof seq === "number" && seq <= this.welcomeSeq;
    }

    url(token) {
      const proto = location.protocol === "https:" ? "wss" : "ws";
      const q = new URLSearchParams();
      if (token) q.set("token", token);
      if (this.lastSeq !== null) q.set("since", String(this.lastSeq));
      const qs = q.toString();
      return `${proto}://${location.host}/ws/rooms/${encodeURIComponent(this.room)}${qs ? "?" + qs : ""}`;
    }

    async connect() {
      this.timer = null;
      if (this.stopped) return;
      this.connects += 1;
      this.onState(this.everConnected || this.attempt > 0 ? "reconnecting" : "connecting");
      let token;
      try {
        token = await this.getToken(this.refused >= REFUSED_BEFORE_REFRESH);
      } catch (_) {
        this.scheduleReconnect();
        return;
      }
      if (this.stopped) return;
      if (this.refused >= REFUSED_BEFORE_REFRESH) this.refused = 0;
      let ws;
      try {
        ws = new WebSocket(this.url(token));
      } catch (_) {
        this.scheduleReconnect();
        return;
      }
      this.ws = ws;
      this.welcomed = false;
      let openedAt = 0;
      ws.onopen = () => {
        openedAt = Date.now();
      };
      ws.onmessage = (ev) => {
        if (ws === this.ws) this.receive(ev.data);
      };
      ws.onclose = (ev) => {
        if (ws !== this.ws) return;
        this.ws = null;
        this.welcomed = false;
        this.closed(ev.code, openedAt);
      };
    }

    closed(code, openedAt) {
      if (this.stopped) return;
      if (code === 1008) {
        this.onState("policy");
        return;
      }
      if (this.notLiveMs) {
        // The host has not opened the room yet: wait as the hub asked, then look again.
        const wait = this.notLiveMs;
        this.notLiveMs = 0;
        this.onState("not_live");
        this.timer = setTimeout(() => this.connect(), wait);
        return;
      }
      this.refused = openedAt ? 0 : this.refused + 1; // refused before the upgrade: the token?
      if (openedAt && Date.now() - openedAt >= STABLE_MS) this.attempt = 0;
      if (!openedAt && this.onRefused) {
        this.askWhyRefused();
        return;
      }
      this.scheduleReconnect();
    }

    /** The upgrade failed before the socket opened: let the page find out why first. */
    askWhyRefused() {
      const attempt = this.connects;
      Promise.resolve()
        .then(() => this.onRefused())
        .catch(() => false)
        .then((stop) => {
          // Stopped, or retry() has started another attempt meanwhile.
          if (this.stopped || this.ws || this.timer || this.connects !== attempt) return;
          if (stop) this.stopped = true;
          else this.scheduleReconnect();
        });
    }

    scheduleReconnect() {
      if (this.stopped || this.timer) return;
      this.onState("reconnecting");
      const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, this.attempt));
      const delay = cap / 2 + Math.random() * (cap / 2); // "equal jitter"
      this.attempt += 1;
      this.timer = setTimeout(() => this.connect(), delay);
    }

    /** Reconnects at once if a reconnect is waiting (e.g. the browser came back online). */
    reconnectNow() {
      if (this.stopped || !this.timer) return;
      clearTimeout(this.timer);
      this.connect();
    }

    /** After a policy close: start again from scratch on the user's request. */
    retry() {
      if (this.ws) return;
      this.attempt = 0;
      clearTimeout(this.timer);
      this.timer = null;
      this.stopped = false;
      this.connect();
    }

    /** Drops the socket (e.g. on a seq gap) and reconnects quickly with ?since=. */
    resync() {
      const ws = this.ws;
      this.ws = null;
      this.welcomed = false;
      if (ws) ws.close(4000, "resync");
      this.attempt = 0;
      this.scheduleReconnect();
    }

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
        this.onState("not_live");
        return;
      }
      if (msg.type === "welcome") {
        this.welcome(msg);
      } else if (typeof msg.seq === "number" && msg.type !== "ack") {
        // `skipped` covers seqs from..=seq (comments the hub thinned): not a gap.
        const first = msg.type === "skipped" ? Number(msg.from) : msg.seq;
        if (!this.sequence(msg.seq, first)) return;
      }
      this.onMessage(msg, this);
    }

    welcome(msg) {
      this.welcomed = true;
      this.everConnected = true;
      this.welcomeSeq = Number(msg.seq) || 0;
      this.resumed = !!msg.resumed && this.lastSeq !== null;
      if (!this.resumed) this.lastSeq = this.welcomeSeq;
      this.onState("live");
    }

    /**
     * Applies durable seqs first..=seq (one event: first == seq): false for a repeat (drop
     * it); a gap triggers a resync.
     */
    sequence(seq, first = seq) {
      if (this.lastSeq === null) {
        this.lastSeq = seq;
        return true;
      }
      if (seq <= this.lastSeq) return false;
      if (first > this.lastSeq + 1) {
        this.resync();
        return false;
      }
      this.lastSeq = seq;
      return true;
    }
  }

  // ---- landing page (/) ----------------------------------------------------------------
  // Lives here so index.html needs no script of its own (and no inline script).

  function initLandingPage() {
    const input = $("room-input");
    const room = () => input.value.trim();

    function update() {
      const r = room();
      const ok = isValidId(r);
      show("room-error", !ok && r !== "");
      for (const [id, base] of [["open-viewer", "/rooms/"], ["open-host", "/host/"]]) {
        const a = $(id);
        a.href = ok ? base + encodeURIComponent(r) : "#";
        a.classList.toggle("disabled", !ok);
        a.setAttribute("aria-disabled", String(!ok));
      }
    }

    function go(base, e) {
      e.preventDefault();
      const r = room();
      if (!isValidId(r)) return show("room-error", true);
      location.href = base + encodeURIComponent(r);
    }

    input.addEventListener("input", update);
    $("room-form").addEventListener("submit", (e) => go("/rooms/", e));
    $("open-viewer").addEventListener("click", (e) => go("/rooms/", e));
    $("open-host").addEventListener("click", (e) => go("/host/", e));
    update();
    pageInfo().then(showPageInfo);
  }

  function showPageInfo(info) {
    if (!info.ok) {
      for (const id of ["info-version", "info-dev", "info-stream"]) setText(id, "unknown");
      setText("info-note", "Could not reach /api/pages.");
      return;
    }
    setText("info-version", info.version || "unknown");
    setText("info-dev", info.dev_tokens ? "on: the pages sign you in automatically" : "off: paste a token");
    setText("info-stream", info.stream_url || "none (placeholder stage)");
    setText(
      "info-note",
      info.dev_tokens
        ? "Development tokens are on: anyone who can reach this hub can get a host token."
        : "Mint tokens with: livehub token --role viewer|host --room ROOM"
    );
  }

  document.addEventListener("DOMContentLoaded", () => {
    if ($("room-form")) initLandingPage();
  });

  window.LH = {
    $,
    el,
    setText,
    show,
    safeMediaUrl,
    formatMoney,
    formatCountdown,
    formatTime,
    requestId,
    isValidId,
    roomFromPath,
    pageInfo,
    probeRoom,
    tokenFromUrl,
    chooseToken,
    showSignin,
    askForToken,
    devToken,
    storedDevToken,
    tokenExpired,
    session,
    guestName,
    setStatus,
    errorText,
    REJECT_TEXT,
    ERROR_TEXT,
    HubSocket,
  };
})();
