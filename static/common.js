// common.js: helpers shared by the livehub pages (viewer, host console, landing page).
// - DOM helpers that only ever set text (never HTML) from user or server data
// - money and countdown formatting
// - tokens: ?token=, the development token endpoint, tokens pasted into a form
// (The room connection is the SDK's: /static/livehub-client.js, LiveRoom.)
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

  /** Minor units from an amount typed in currency units ("19.99", "$1,299.5"); NaN when it is
   * not one. */
  function parseMoney(text, currency) {
    const t = String(text || "").trim().replace(/^[^\d.]+/, "").replace(/,/g, "");
    const digits = currencyDigits(currency);
    const re = digits > 0 ? new RegExp(`^\\d+(\\.\\d{0,${digits}})?$`) : /^\d+$/;
    if (!re.test(t)) return NaN;
    const [whole, frac = ""] = t.split(".");
    return Number(whole) * Math.pow(10, digits) + Number((frac + "0".repeat(digits)).slice(0, digits) || 0);
  }

  /** Digits after the decimal point of a currency's minor unit (2 for USD, 0 for JPY). */
  function currencyDigits(currency) {
    try {
      return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
    } catch (_) {
      return 2;
    }
  }

  /** Minor units as currency units for an input field: (1999, "USD") -> "19.99". */
  function moneyInput(cents, currency) {
    const digits = currencyDigits(currency);
    return (Number(cents) / Math.pow(10, digits)).toFixed(digits);
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

  /** GET /api/pages -> {dev_tokens, stream_url, version, payment}; falls back to safe defaults. */
  function pageInfo() {
    if (!pageInfoPromise) {
      pageInfoPromise = fetch("/api/pages", { cache: "no-store" })
        .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))))
        .then((j) => ({
          dev_tokens: !!(j && j.dev_tokens),
          stream_url: j && typeof j.stream_url === "string" && j.stream_url ? j.stream_url : null,
          version: j && j.version ? String(j.version) : "",
          payment: j && j.payment === "external" ? "external" : "none",
          ok: true,
        }))
        .catch(() => ({ dev_tokens: false, stream_url: null, version: "", payment: "none", ok: false }));
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
    parseMoney,
    currencyDigits,
    moneyInput,
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
  };
})();
