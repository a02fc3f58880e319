// host.js: the host console (/host/{room}). Signs in as the room's host (token from ?token=,
// a token pasted into #signin, or the development token endpoint), then runs the show over the
// room WebSocket: pin products from an editable catalog, start and end flash deals with a live
// stock panel (fed by `stock` messages and a 1 s poll of the stock audit endpoint), moderate
// comments (delete, mute) and post announcements. Every command carries a request_id; `error`
// replies are listed in #errors and `ack`s flash "ok". User text is only ever set as textContent.
"use strict";

(function () {
  const { $, el, setText, show, askForToken, showSignin } = LH;

  const FEED_MAX = 500;
  const ERRORS_MAX = 50;
  const MUTE_MS = 600000;
  const AUDIT_EVERY_MS = 1000;

  const state = {
    room: null,
    hub: null,
    token: null,
    tokenSource: null, // "url" | "pasted" | "dev"
    pending: new Map(), // request_id -> {label, onAck}
    serverCatalog: [],
    localCatalog: [],
    deals: new Map(), // id -> {deal, audit, finalPolled, inflight, stopped}
    pinned: null,
    auditErrors: new Set(),
    lastDevRefresh: 0,
    flashTimer: null,
    warnedRole: false,
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
    document.title = `host · ${state.room} · livehub`;
    const info = await LH.pageInfo();
    const choice = await chooseToken(info);
    if (choice) begin(choice);
    else askForToken();
  }

  function chooseToken(info) {
    return LH.chooseToken("host", state.room, "host", info, false);
  }



  function onSigninSubmit(e) {
    e.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    LH.session(`livehub.host.token.${state.room}`, token);
    if (!state.hub) return begin({ token, source: "pasted" });
    // Already running (the old token was refused): switch tokens and reconnect.
    state.token = token;
    state.tokenSource = "pasted";
    state.auditErrors.clear();
    show("signin", false);
    state.hub.retry();
  }

  function begin(choice) {
    if (state.hub) return;
    show("signin", false);
    show("app", true);
    state.token = choice.token;
    state.tokenSource = choice.source;
    bindUi();
    loadCatalog();
    state.hub = new LH.HubSocket({
      room: state.room,
      getToken,
      onMessage: handleMessage,
      onState: (s) => {
        LH.setStatus("status", s);
        show("reconnect", s === "policy");
      },
    });
    state.hub.start();
    setInterval(pollAudits, AUDIT_EVERY_MS);
    setInterval(renderCountdowns, 1000);
  }

  /** Token for the next connection; a dev token is re-fetched when expired or refused. */
  async function getToken(refresh) {
    if (state.tokenSource === "dev" && (refresh || LH.tokenExpired(state.token))) {
      await refreshDevToken();
    } else if (refresh) {
      // A token we cannot renew keeps being refused (or the hub is away): offer the form while
      // retrying.
      showSignin("Still cannot connect with this token. Paste another, or keep waiting.");
    }
    return state.token;
  }

  async function refreshDevToken() {
    state.lastDevRefresh = Date.now();
    state.token = await LH.storedDevToken("host", state.room, "host", true);
  }

  function bindUi() {
    $("unpin").addEventListener("click", () => command({ type: "unpin" }, "unpin"));
    $("announce-form").addEventListener("submit", onAnnounce);
    $("product-form").addEventListener("submit", onAddProduct);
    $("deal-form").addEventListener("submit", onStartDeal);
    $("deal-product").addEventListener("input", onDealProductChange);
    $("catalog").addEventListener("click", onCatalogClick);
    $("deals").addEventListener("click", onDealsClick);
    $("feed").addEventListener("click", onFeedClick);
    $("errors-clear").addEventListener("click", () => ($("errors").textContent = ""));
    $("reconnect").addEventListener("click", () => state.hub.retry());
  }

  // ---- commands, acks and errors ---------------------------------------------------------

  /** Sends a host command with a fresh request_id; `label` names it in flashes and errors. */
  function command(msg, label, onAck) {
    const rid = LH.requestId("h");
    msg.request_id = rid;
    if (!state.hub || !state.hub.send(msg)) {
      addError("unavailable", "not connected to the hub; try again in a moment", label);
      return false;
    }
    state.pending.set(rid, { label, onAck });
    return true;
  }

  function onAck(m) {
    const p = state.pending.get(m.request_id);
    state.pending.delete(m.request_id);
    flash(p ? `ok · ${p.label}` : "ok");
    if (p && p.onAck) p.onAck(m);
  }

  function onError(m) {
    const p = m.request_id ? state.pending.get(m.request_id) : null;
    if (p) state.pending.delete(m.request_id);
    addError(m.code, m.message, p ? p.label : null);
  }

  /** Appends `.error` to #errors: "code: message" plus the command it answers. */
  function addError(code, message, label) {
    const list = $("errors");
    const item = el(
      "li",
      { className: "error", dataset: { code: code || "error" } },
      el("span", { className: "code", text: code || "error" }),
      el("span", { className: "message", text: message ? `: ${message}` : "" }),
      label ? el("span", { className: "label muted", text: ` (${label})` }) : null,
      el("span", { className: "time muted", text: ` ${LH.formatTime(Date.now())}` })
    );
    list.prepend(item);
    while (list.children.length > ERRORS_MAX) list.lastElementChild.remove();
  }

  function flash(text) {
    const node = $("flash");
    node.textContent = text;
    show(node, true);
    clearTimeout(state.flashTimer);
    state.flashTimer = setTimeout(() => show(node, false), 1500);
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
    ack: onAck,
    error: onError,
  };

  function handleMessage(msg, hub) {
    const h = HANDLERS[msg.type];
    if (h) h(msg, hub);
  }

  function onWelcome(m) {
    show("signin", false);
    if (m.you && m.you.role === "viewer" && !state.warnedRole) {
      state.warnedRole = true;
      addError("forbidden", "this token is a viewer token: host commands will be refused", "sign-in");
    }
    setText("viewers", m.viewers);
    setText("likes", m.likes);
    setPinned(m.pinned || null);
    if (!m.resumed) {
      $("feed").textContent = "";
      for (const c of m.recent || []) addComment(c);
      dropDealsNotIn(m.deals || []);
    }
    for (const d of m.deals || []) upsertDeal(d);
    scrollFeedToBottom();
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
        el("span", { className: "eyebrow", text: "Pinned " }),
        el("strong", { className: "title", text: product.title }),
        " ",
        el("span", { className: "price", text: LH.formatMoney(product.price_cents, product.currency) }),
        el("span", { className: "muted", text: ` · ${product.id}` })
      );
    }
    $("unpin").disabled = !product;
    for (const li of $("catalog").querySelectorAll(".product")) {
      li.classList.toggle("is-pinned", !!product && li.dataset.id === product.id);
    }
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
    } catch (e) {
      addError("catalog", `could not load /api/catalog (${e.message})`, null);
    }
    renderCatalog();
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

  function findProduct(id) {
    const hit = catalog().find((x) => x.product.id === id);
    return hit ? hit.product : null;
  }

  function renderCatalog() {
    const list = $("catalog");
    list.textContent = "";
    const items = catalog();
    if (!items.length) list.append(el("li", { className: "muted empty", text: "No products yet: add one below." }));
    for (const { product, local } of items) list.append(productItem(product, local));
    const ids = $("product-ids");
    ids.textContent = "";
    for (const { product } of items) ids.append(el("option", { attrs: { value: product.id }, text: product.title }));
    setPinned(state.pinned);
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
      el("button", { type: "button", className: "pin primary small", text: "Pin" }),
      local ? el("button", { type: "button", className: "remove small", text: "✕", title: "Remove from this list" }) : null
    );
  }

  function onCatalogClick(e) {
    const li = e.target.closest(".product");
    if (!li) return;
    const id = li.dataset.id;
    if (e.target.closest(".pin")) pinProduct(id);
    else if (e.target.closest(".remove")) {
      state.localCatalog = state.localCatalog.filter((p) => p.id !== id);
      saveLocalCatalog();
      renderCatalog();
    } else {
      $("deal-product").value = id;
      onDealProductChange();
    }
  }

  function pinProduct(id) {
    const p = findProduct(id);
    if (!p) return;
    const product = { id: p.id, title: p.title, price_cents: Number(p.price_cents), currency: p.currency || "USD" };
    if (p.image_url) product.image_url = p.image_url;
    command({ type: "pin", product }, `pin ${p.id}`);
  }

  /** Returns an error text for an invalid product, or "" when it is fine. */
  function validateProduct(p) {
    if (!p || !LH.isValidId(p.id)) return "Id: 1 to 64 of letters, digits, _ and -.";
    if (typeof p.title !== "string" || !p.title.trim() || p.title.length > 200) return "Title: 1 to 200 characters.";
    if (!Number.isInteger(p.price_cents) || p.price_cents < 0) return "Price: a whole number of cents.";
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
    setText("product-error", problem);
    show("product-error", !!problem);
    if (problem) return;
    state.localCatalog = state.localCatalog.filter((x) => x.id !== p.id).concat([p]);
    saveLocalCatalog();
    renderCatalog();
    for (const id of ["product-id", "product-title", "product-price", "product-image"]) $(id).value = "";
  }

  // ---- deals -----------------------------------------------------------------------------

  /** Shows the chosen product's price as the deal price placeholder (used when left empty). */
  function onDealProductChange() {
    const p = findProduct($("deal-product").value.trim());
    $("deal-price").placeholder = p ? `${p.price_cents} (product price)` : "product price";
  }

  function nextDealId() {
    let n = 1;
    while (state.deals.has(`d${n}`)) n += 1;
    return `d${n}`;
  }

  function intField(id) {
    const v = $(id).value.trim();
    return v === "" ? NaN : Number(v);
  }

  function onStartDeal(e) {
    e.preventDefault();
    const productId = $("deal-product").value.trim();
    const product = findProduct(productId);
    let price = intField("deal-price");
    if (Number.isNaN(price) && product) price = Number(product.price_cents);
    const deal = {
      id: $("deal-id").value.trim() || nextDealId(),
      product_id: productId,
      price_cents: price,
      currency: (product && product.currency) || "USD",
      stock: intField("deal-stock"),
      per_user_limit: intField("deal-limit"),
      duration_ms: Math.round(intField("deal-duration") * 1000),
    };
    const problem = validateDeal(deal);
    setText("deal-error", problem);
    show("deal-error", !!problem);
    if (problem) return;
    command({ type: "deal_start", deal }, `deal_start ${deal.id}`, () => {
      if ($("deal-id").value.trim() === deal.id) $("deal-id").value = "";
      $("deal-id").placeholder = nextDealId();
    });
  }

  function validateDeal(d) {
    if (!LH.isValidId(d.id)) return "Deal id: 1 to 64 of letters, digits, _ and -.";
    if (!LH.isValidId(d.product_id)) return "Product: enter a product id.";
    if (!Number.isInteger(d.price_cents) || d.price_cents < 0) return "Price: a whole number of cents.";
    if (!Number.isInteger(d.stock) || d.stock < 1 || d.stock > 10000000) return "Stock: 1 to 10,000,000.";
    if (!Number.isInteger(d.per_user_limit) || d.per_user_limit < 1 || d.per_user_limit > d.stock)
      return "Limit: 1 to the stock.";
    if (!Number.isInteger(d.duration_ms) || d.duration_ms < 1 || d.duration_ms > 7 * 24 * 3600 * 1000)
      return "Duration: 1 second to a week.";
    return "";
  }

  /** Adds or updates a deal (from welcome or a `deal` event) and its panel. */
  function upsertDeal(deal) {
    if (!deal || !deal.id) return;
    let entry = state.deals.get(deal.id);
    if (!entry) {
      entry = { deal: {}, audit: null, finalPolled: false, inflight: false, stopped: false };
      state.deals.set(deal.id, entry);
    }
    const wasEnded = entry.deal.status === "ended";
    Object.assign(entry.deal, deal);
    if (deal.status === "ended" && !wasEnded) entry.finalPolled = false; // one more poll
    renderDealPanel(entry);
    $("deal-id").placeholder = nextDealId();
    if (!entry.audit) pollAudit(entry);
  }

  function dropDealsNotIn(deals) {
    const keep = new Set(deals.map((d) => d.id));
    for (const id of [...state.deals.keys()]) {
      if (keep.has(id)) continue;
      state.deals.delete(id);
      const panel = dealPanel(id);
      if (panel) panel.remove();
    }
  }

  function onStock(m) {
    const entry = state.deals.get(m.deal);
    if (!entry) return;
    entry.deal.remaining = m.remaining;
    renderDealPanel(entry);
  }

  function dealPanel(id) {
    return $("deals").querySelector(`.deal-panel[data-id="${CSS.escape(String(id))}"]`);
  }

  function createDealPanel(id) {
    const stat = (cls, label) =>
      el("div", { className: "count" }, el("span", { className: cls, text: "0" }), el("span", { className: "muted", text: label }));
    const panel = el(
      "div",
      { className: "deal-panel", dataset: { id } },
      el(
        "div",
        { className: "deal-panel-head" },
        el("strong", { className: "deal-name", text: id }),
        el("span", { className: "status badge", text: "live" }),
        el("span", { className: "countdown muted" }),
        el("span", { className: "spacer" }),
        el("button", { type: "button", className: "end small danger", text: "End" })
      ),
      el("div", { className: "deal-info muted" }),
      el("div", { className: "counts" }, stat("remaining", "left"), stat("held", "held"), stat("sold", "sold"), stat("stock", "stock")),
      el("div", { className: "bar" }, el("div", { className: "bar-fill" }))
    );
    const empty = $("deals").querySelector(".empty");
    if (empty) empty.remove();
    $("deals").prepend(panel);
    return panel;
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
    q(".stock").textContent = String(stock);
    const status = d.status || "live";
    const badge = q(".status");
    badge.textContent = status;
    badge.className = `status badge ${status}`;
    q(".end").disabled = status === "ended";
    panel.classList.toggle("is-over", status === "ended");
    q(".deal-info").textContent =
      `${d.product_id} · ${LH.formatMoney(d.price_cents, d.currency)} · limit ${d.per_user_limit}`;
    const soldPct = a && stock ? (a.sold / stock) * 100 : 0;
    const heldPct = a && stock ? (a.held / stock) * 100 : 0;
    const bar = q(".bar-fill");
    bar.style.width = `${Math.min(100, soldPct + heldPct).toFixed(1)}%`;
    renderCountdown(panel, d);
  }

  function renderCountdown(panel, d) {
    const left = (Number(d.ends_at) || 0) - Date.now();
    panel.querySelector(".countdown").textContent =
      d.status === "ended" || left <= 0 ? "" : `ends in ${LH.formatCountdown(left)}`;
  }

  function renderCountdowns() {
    for (const entry of state.deals.values()) {
      const panel = dealPanel(entry.deal.id);
      if (panel) renderCountdown(panel, entry.deal);
    }
  }

  function onDealsClick(e) {
    const btn = e.target.closest(".end");
    if (!btn) return;
    const id = btn.closest(".deal-panel").dataset.id;
    command({ type: "deal_end", deal: id }, `deal_end ${id}`);
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
    if (entry.inflight || !state.token) return;
    entry.inflight = true;
    const id = entry.deal.id;
    const url = `/api/rooms/${encodeURIComponent(state.room)}/deals/${encodeURIComponent(id)}`;
    try {
      const r = await fetch(url, { headers: { Authorization: `Bearer ${state.token}` }, cache: "no-store" });
      if (r.ok) applyAudit(entry, await r.json());
      else await auditFailed(entry, r);
    } catch (err) {
      auditError(id, "network", `audit of ${id} failed (${err.message})`);
    } finally {
      entry.inflight = false;
    }
  }

  function applyAudit(entry, audit) {
    if (!audit || audit.id !== entry.deal.id) return;
    entry.audit = audit;
    for (const key of [...state.auditErrors]) if (key.startsWith(`${audit.id}:`)) state.auditErrors.delete(key);
    if (typeof audit.remaining === "number") entry.deal.remaining = audit.remaining;
    // An audit that raced a `deal` event must not bring an ended deal back.
    if (audit.status && entry.deal.status !== "ended") entry.deal.status = audit.status;
    if (audit.status === "ended") entry.finalPolled = true;
    renderDealPanel(entry);
  }

  async function auditFailed(entry, r) {
    let code = `http_${r.status}`;
    let message = `audit of ${entry.deal.id}: HTTP ${r.status}`;
    try {
      const j = await r.json();
      if (j && j.error) {
        code = j.error.code || code;
        message = `audit of ${entry.deal.id}: ${j.error.message || r.status}`;
      }
    } catch (_) {
      /* not JSON */
    }
    if (r.status === 404) entry.stopped = true;
    if (r.status === 401 && state.tokenSource === "dev" && Date.now() - state.lastDevRefresh > 10000) {
      refreshDevToken().catch(() => {});
    }
    auditError(entry.deal.id, code, message);
  }

  /** Lists an audit failure once until an audit succeeds again (the poll runs every second). */
  function auditError(id, code, message) {
    const key = `${id}:${code}`;
    if (state.auditErrors.has(key)) return;
    state.auditErrors.add(key);
    addError(code, message, "audit");
  }

  // ---- comments and announcements ----------------------------------------------------------

  function addComment(c) {
    const feed = $("feed");
    if (feed.querySelector(`.comment[data-id="${CSS.escape(String(c.id))}"]`)) return;
    const item = el(
      "li",
      { className: "comment", dataset: { id: c.id, seq: c.seq, user: c.user }, title: `${c.user} · ${LH.formatTime(c.ts)}` },
      el("span", { className: "name", text: c.name || c.user }),
      el("span", { className: "text", text: c.text }),
      el(
        "span",
        { className: "mod" },
        el("button", { type: "button", className: "delete small", text: "Delete" }),
        el("button", { type: "button", className: "mute small", text: "Mute 10m" })
      )
    );
    appendFeedItem(item);
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
    const node = $("feed").querySelector(`.comment[data-id="${CSS.escape(String(id))}"]`);
    if (node) node.remove();
  }

  function appendFeedItem(item) {
    const feed = $("feed");
    const atBottom = feed.scrollHeight - feed.scrollTop - feed.clientHeight <= 48;
    feed.append(item);
    while (feed.children.length > FEED_MAX) feed.firstElementChild.remove();
    if (atBottom) scrollFeedToBottom();
  }

  function scrollFeedToBottom() {
    const feed = $("feed");
    feed.scrollTop = feed.scrollHeight;
  }

  function onFeedClick(e) {
    const item = e.target.closest(".comment");
    if (!item) return;
    const { id, user } = item.dataset;
    const name = item.querySelector(".name").textContent;
    if (e.target.closest(".delete")) {
      command({ type: "delete_comment", id }, `delete ${id}`);
    } else if (e.target.closest(".mute")) {
      command({ type: "mute", user, duration_ms: MUTE_MS }, `mute ${name}`);
    }
  }

  function onAnnounce(e) {
    e.preventDefault();
    const input = $("announce-input");
    const text = input.value.trim();
    if (!text) return;
    command({ type: "announce", text }, "announce", () => {
      if (input.value.trim() === text) input.value = "";
    });
  }

  document.addEventListener("DOMContentLoaded", main);
})();
