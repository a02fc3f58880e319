// funnel.js: the host console's Funnel panel (#funnel-pane). Polls the room's funnel and
// timeline (GET /api/rooms/{room}/funnel and /timeline, with the console's host token) every few
// seconds and draws them: per channel the stages viewers → engaged → saw a deal → tapped → held
// → ordered as bars relative to that channel's viewers (the count on each bar), the room's GMV,
// the top deal by GMV, the sold-out taps (missed demand, per deal), and the timeline as an
// inline SVG chart (viewers line, GMV bars per 10 s bucket) with the pin and deal moments
// marked and labelled. Absent channels and deals are zeros. A refusal is said in plain words in
// the panel; a failed refresh keeps the last figures and says how old they are. Everything from
// the hub is set as textContent (titles are user text); nothing is fetched from elsewhere.
"use strict";

(function () {
  const { $, el, setText, show } = LH;

  const POLL_EVERY_MS = 3000;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const STAGES = [
    ["viewers", "Viewers"],
    ["engaged", "Engaged"],
    ["exposed", "Saw a deal"],
    ["tapped", "Tapped buy"],
    ["held", "Held"],
    ["ordered", "Ordered"],
  ];

  const CHANNELS = {
    short_video: "Short video",
    creator: "Creator",
    paid: "Paid",
    live: "Live",
    product_card: "Product card",
    direct: "Direct",
  };

  const MOMENT_WORD = { pin: "pin", deal_start: "start", deal_end: "end" };

  // Chart geometry (CSS pixels; the SVG is drawn at the width it is shown at, so labels keep
  // their size on a phone).
  const CHART = { height: 150, left: 30, right: 54, bottom: 20, row: 15, maxRows: 6, charPx: 7, labelChars: 22 };

  /**
   * Starts the panel. `opts`: room, getToken() -> the console's current token, blocked() -> true
   * while the console cannot host (no polls then). Returns {refresh}: poll now (e.g. when the
   * tab is shown).
   */
  function start(opts) {
    const panel = {
      room: opts.room,
      getToken: opts.getToken,
      blocked: opts.blocked || (() => false),
      funnel: null,
      timeline: null,
      at: 0, // when the figures shown were fetched
      inflight: false,
      drawn: 0, // the width the chart was last drawn at
      drawnFrom: null, // and the timeline it was drawn from
    };
    new ResizeObserver(() => drawChart(panel)).observe($("funnel-chart"));
    const refresh = () => poll(panel);
    setInterval(refresh, POLL_EVERY_MS);
    refresh();
    return { refresh };
  }

  // ---- fetching --------------------------------------------------------------------------

  async function poll(panel) {
    const token = panel.getToken();
    if (panel.inflight || !token || panel.blocked()) return;
    panel.inflight = true;
    const base = `/api/rooms/${encodeURIComponent(panel.room)}`;
    try {
      const [funnel, timeline] = await Promise.all([get(`${base}/funnel`, token), get(`${base}/timeline`, token)]);
      panel.funnel = funnel;
      panel.timeline = timeline;
      panel.at = Date.now();
      note("", "");
      render(panel);
    } catch (err) {
      failed(panel, err);
    } finally {
      panel.inflight = false;
    }
  }

  /** GET `url` with the token: the JSON, or throws {status, code, message}. */
  async function get(url, token) {
    let r;
    try {
      r = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
    } catch (e) {
      throw { status: 0, code: "network", message: e.message };
    }
    let body = null;
    try {
      body = await r.json();
    } catch (_) {
      /* not JSON: the status speaks */
    }
    if (r.ok && body && typeof body === "object") return body;
    const err = body && typeof body.error === "object" && body.error ? body.error : {};
    throw {
      status: r.status,
      code: typeof err.code === "string" ? err.code : `http_${r.status}`,
      message: typeof err.message === "string" ? err.message : r.ok ? "the answer is not JSON" : `HTTP ${r.status}`,
    };
  }

  function failed(panel, err) {
    const why = `${err.code}: ${err.message}`;
    let text;
    if (err.status === 401) text = `The hub refuses this token the funnel (${why}). Sign in again to see it.`;
    else if (err.status === 403) text = `This token may not read the room's funnel (${why}): only the room's host or an admin may.`;
    else if (err.status === 404) text = `No funnel for this room yet (${why}).`;
    else if (err.status === 0) text = `Could not reach the hub for the funnel (${err.message}).`;
    else text = `The funnel could not be read (${why}).`;
    if (panel.funnel && err.status !== 401 && err.status !== 403) {
      text += ` Showing the figures from ${clock(panel.at)}.`;
    }
    note(err.status === 401 || err.status === 403 ? "bad" : "warn", text);
    if (err.status === 401 || err.status === 403) {
      panel.funnel = null;
      panel.timeline = null;
      render(panel);
    }
  }

  function note(kind, text) {
    const line = $("funnel-note");
    line.className = `feedback funnel-note ${kind}`;
    setText(line, text);
    show(line, !!text);
  }

  // ---- numbers -----------------------------------------------------------------------------

  const n = (v) => (Number.isFinite(Number(v)) && Number(v) > 0 ? Number(v) : 0);
  const countText = (v) => n(v).toLocaleString("en-US");

  /** `part` of `whole` as a whole percent; "<1%" and ">99%" instead of false 0% and 100%. */
  function pct(part, whole) {
    if (!(whole > 0)) return "–";
    const p = (part * 100) / whole;
    if (p > 0 && p < 0.5) return "<1%";
    if (p >= 99.5 && p < 100) return ">99%";
    return `${Math.round(p)}%`;
  }

  /** "1 order", "2,048 orders". */
  function plural(count, word) {
    return `${countText(count)} ${word}${count === 1 ? "" : "s"}`;
  }

  function clock(ts) {
    return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function elapsed(ms) {
    return LH.formatCountdown(ms);
  }

  function objectOf(v) {
    return v && typeof v === "object" && !Array.isArray(v) ? v : {};
  }

  // ---- drawing -----------------------------------------------------------------------------

  function render(panel) {
    const f = objectOf(panel.funnel);
    const currency = typeof f.currency === "string" && f.currency ? f.currency : "USD";
    const total = objectOf(f.total);
    const deals = Object.entries(objectOf(f.deals)).map(([id, d]) => [id, objectOf(d)]);
    setText("funnel-gmv", LH.formatMoney(n(total.gmv_cents), currency));
    setText("funnel-orders", `${plural(n(total.orders), "order")} · ${plural(n(total.units), "unit")} · ${plural(n(total.viewers), "viewer")} in all`);
    renderTopDeal(deals, currency);
    renderMissed(total, deals);
    renderChannels(objectOf(f.channels));
    setText("funnel-updated", panel.at && panel.funnel ? `as of ${clock(panel.at)}` : "");
    drawChart(panel);
  }

  function dealCurrency(d, fallback) {
    return typeof d.currency === "string" && d.currency ? d.currency : fallback;
  }

  function dealName(id, d) {
    return typeof d.title === "string" && d.title ? d.title : id;
  }

  function renderTopDeal(deals, currency) {
    const top = deals
      .filter(([, d]) => n(d.gmv_cents) > 0)
      .sort((a, b) => n(b[1].gmv_cents) - n(a[1].gmv_cents) || n(b[1].units) - n(a[1].units) || (a[0] < b[0] ? -1 : 1))[0];
    const box = $("funnel-top-deal");
    if (!top) {
      setText(box, "none yet");
      box.removeAttribute("data-deal");
      box.removeAttribute("title");
      setText("funnel-top-detail", "");
      return;
    }
    const [id, d] = top;
    setText(box, dealName(id, d));
    box.dataset.deal = id;
    box.title = dealName(id, d);
    setText(
      "funnel-top-detail",
      `${LH.formatMoney(n(d.gmv_cents), dealCurrency(d, currency))} · ${plural(n(d.units), "unit")}`
    );
  }

  function renderMissed(total, deals) {
    setText("funnel-sold-out", countText(total.sold_out_taps));
    const missed = deals
      .filter(([, d]) => n(d.sold_out_taps) > 0)
      .sort((a, b) => n(b[1].sold_out_taps) - n(a[1].sold_out_taps));
    const list = $("funnel-missed");
    list.textContent = "";
    for (const [id, d] of missed) {
      list.append(
        el("li", { dataset: { deal: id } },
          el("span", { className: "missed-title", text: dealName(id, d) }),
          el("span", { className: "missed-count", text: `${countText(d.sold_out_taps)} sold-out` }))
      );
    }
    show(list, missed.length > 0);
  }

  /** The channels present, in the hub's order (direct last), then any the console does not know. */
  function channelOrder(channels) {
    const known = Object.keys(CHANNELS).filter((c) => c in channels);
    const other = Object.keys(channels).filter((c) => !(c in CHANNELS)).sort();
    return [...known, ...other];
  }

  function renderChannels(channels) {
    const box = $("funnel-channels");
    box.textContent = "";
    const order = channelOrder(channels);
    if (!order.length) {
      box.append(el("p", { className: "muted empty", text: "No viewers yet: each channel's funnel shows here as they join." }));
      return;
    }
    for (const name of order) box.append(channelBlock(name, objectOf(channels[name])));
  }

  function channelBlock(name, c) {
    const viewers = n(c.viewers);
    const stages = el("ol", { className: "funnel-stages" });
    for (const [key, label] of STAGES) {
      const count = n(c[key]);
      const fill = el("span", { className: "funnel-stage-fill" });
      fill.style.width = `${viewers > 0 ? Math.min(100, (count * 100) / viewers).toFixed(1) : 0}%`;
      stages.append(
        el("li", { className: "funnel-stage", dataset: { stage: key } },
          el("span", { className: "funnel-stage-name", text: label }),
          el("span", { className: "funnel-stage-bar" }, fill, el("span", { className: "funnel-stage-count", text: countText(count) })),
          el("span", { className: "funnel-stage-pct muted", text: key === "viewers" ? "" : pct(count, viewers) }))
      );
    }
    return el(
      "article",
      { className: "funnel-channel", dataset: { channel: name } },
      el("div", { className: "funnel-channel-head" },
        el("strong", { text: CHANNELS[name] || name }),
        el("span", { className: "muted", text: `${plural(viewers, "viewer")} · ${plural(n(c.orders), "order")}` })),
      stages
    );
  }

  // ---- the timeline chart ----------------------------------------------------------------

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    for (const c of children) if (c) node.append(c);
    return node;
  }

  function svgText(attrs, text) {
    const t = svg("text", attrs);
    t.textContent = text;
    return t;
  }

  function tooltip(text) {
    const t = svg("title");
    t.textContent = text;
    return t;
  }

  function momentLabel(m) {
    const word = MOMENT_WORD[m.kind] || String(m.kind || "");
    const name = m.kind === "pin" ? m.title || m.product : m.deal || m.title;
    let label = `${word} ${name || ""}`.trim();
    if (label.length > CHART.labelChars) label = `${label.slice(0, CHART.labelChars - 1)}…`;
    return label;
  }

  /**
   * Rows for the labels so that none overlaps another: each takes the first row free where it
   * starts; a label no row has room for gets -1 (its marker stays, named by its tooltip).
   */
  function labelRows(spans) {
    const ends = [];
    const rows = spans.map(([x, w]) => {
      let row = ends.findIndex((end) => end + 6 <= x);
      if (row < 0 && ends.length < CHART.maxRows) {
        ends.push(-Infinity);
        row = ends.length - 1;
      }
      if (row >= 0) ends[row] = x + w;
      return row;
    });
    return { rows, count: ends.length };
  }

  function drawChart(panel) {
    const box = $("funnel-chart");
    const t = objectOf(panel.timeline);
    const buckets = (Array.isArray(t.buckets) ? t.buckets : []).map(objectOf).filter((b) => Number.isFinite(Number(b.t)));
    const moments = (Array.isArray(t.moments) ? t.moments : []).map(objectOf).filter((m) => Number.isFinite(Number(m.t)));
    const width = Math.floor(box.clientWidth);
    if (!width) return; // not on screen (another tab): drawn when shown
    if (panel.drawn === width && panel.drawnFrom === panel.timeline) return; // nothing changed
    panel.drawn = width;
    panel.drawnFrom = panel.timeline;
    if (!buckets.length && !moments.length) {
      box.textContent = "";
      box.append(el("p", { className: "muted empty", text: "The timeline fills in as the show goes: viewers, sales and the pin and deal moments." }));
      return;
    }
    const bucketMs = n(t.bucket_ms) || 10000;
    const currency = typeof t.currency === "string" && t.currency ? t.currency : "USD";
    const times = [...buckets.map((b) => Number(b.t)), ...moments.map((m) => Number(m.t))];
    const first = Math.min(...times);
    const last = Math.max(...buckets.map((b) => Number(b.t) + bucketMs), ...moments.map((m) => Number(m.t)));
    const span = Math.max(bucketMs, last - first);
    const plotW = Math.max(40, width - CHART.left - CHART.right);
    const x = (ts) => CHART.left + ((ts - first) / span) * plotW;

    const texts = moments.map(momentLabel);
    const widths = measureLabels(box, texts);
    const labels = moments.map((m, i) => {
      const text = texts[i];
      const w = widths[i];
      const mx = x(Number(m.t));
      const start = mx + 3 + w > width ? Math.max(0, mx - 3 - w) : mx + 3;
      return { m, text, mx, start, w };
    });
    const placed = labelRows(labels.map((l) => [l.start, l.w]));
    const top = 6 + placed.count * CHART.row;
    const bottom = top + CHART.height;
    const height = bottom + CHART.bottom;
    const maxViewers = Math.max(1, ...buckets.map((b) => n(b.viewers)));
    const maxGmv = Math.max(1, ...buckets.map((b) => n(b.gmv_cents)));
    const yViewers = (v) => bottom - (n(v) / maxViewers) * CHART.height;

    const chart = svg("svg", {
      class: "timeline",
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": "Timeline: viewers, GMV per bucket and the show's moments",
    });
    for (const frac of [0, 0.5, 1]) {
      const y = bottom - frac * CHART.height;
      chart.append(svg("line", { class: "grid", x1: CHART.left, x2: width - CHART.right, y1: y, y2: y }));
      chart.append(svgText({ class: "axis viewers-axis", x: CHART.left - 4, y: y + 4, "text-anchor": "end" }, countText(Math.round(maxViewers * frac))));
      const sold = buckets.some((b) => n(b.gmv_cents) > 0);
      if (sold || frac === 0) {
        // No sales yet: one $0.00 at the bottom, not three.
        const gmv = sold ? Math.round(maxGmv * frac) : 0;
        chart.append(svgText({ class: "axis gmv-axis", x: width - CHART.right + 4, y: y + 4 }, LH.formatMoney(gmv, currency)));
      }
    }
    for (const b of buckets) {
      const x0 = x(Number(b.t));
      const x1 = x(Number(b.t) + bucketMs);
      const h = (n(b.gmv_cents) / maxGmv) * CHART.height;
      chart.append(
        svg("rect", { class: "gmv-bar", x: x0 + (x1 - x0) * 0.1, y: bottom - h, width: Math.max(0.8, (x1 - x0) * 0.8), height: h },
          tooltip(`+${elapsed(Number(b.t) - first)}: ${countText(b.viewers)} viewers, ${countText(b.orders)} orders, ${LH.formatMoney(n(b.gmv_cents), currency)}`))
      );
    }
    const points = buckets.map((b) => `${x(Number(b.t) + bucketMs / 2).toFixed(1)},${yViewers(b.viewers).toFixed(1)}`);
    if (points.length > 1) chart.append(svg("polyline", { class: "viewers-line", points: points.join(" ") }));
    if (points.length <= 60) {
      for (const p of points) {
        const [cx, cy] = p.split(",");
        chart.append(svg("circle", { class: "viewers-dot", cx, cy, r: 2.5 }));
      }
    }
    labels.forEach((l, i) => {
      const row = placed.rows[i];
      const y = 6 + Math.max(0, row) * CHART.row + 11;
      chart.append(
        svg("g", { class: `moment ${l.m.kind}`, "data-kind": String(l.m.kind || "") },
          tooltip(`${l.m.kind} ${l.m.title || l.m.deal || l.m.product || ""} at +${elapsed(Number(l.m.t) - first)}`),
          svg("line", { x1: l.mx, x2: l.mx, y1: row < 0 ? top : y - 10, y2: bottom }),
          row < 0 ? null : svgText({ x: l.start, y }, l.text))
      );
    });
    const step = tickStep(span, width < 480 ? 3 : 5);
    for (let at = 0; at <= span; at += step) {
      const tx = x(first + at);
      const anchor = at === 0 ? "start" : tx > width - CHART.right - 14 ? "end" : "middle";
      chart.append(svgText({ class: "axis", x: tx, y: bottom + 15, "text-anchor": anchor }, elapsed(at)));
    }
    box.textContent = "";
    box.append(chart);
  }

  /** The smallest round step (1 s, 2 s, 5 s … 4 h) that puts at most `ticks` steps across `span`. */
  function tickStep(span, ticks) {
    const seconds = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800];
    const hit = seconds.map((s) => s * 1000).find((step) => Math.floor(span / step) <= ticks);
    return hit || Math.max(1000, Math.ceil(span / ticks));
  }

  /**
   * The drawn width of each moment label, measured in a hidden copy of the chart's text (an
   * estimate per character when the browser cannot say), so that no two labels in a row meet.
   */
  function measureLabels(box, texts) {
    const probe = svg("svg", { class: "timeline probe", width: 1, height: 1 });
    const g = svg("g", { class: "moment" });
    probe.append(g);
    box.append(probe);
    const widths = texts.map((text) => {
      const t = svgText({ x: 0, y: 10 }, text);
      g.append(t);
      const w = typeof t.getComputedTextLength === "function" ? t.getComputedTextLength() : 0;
      return w > 0 ? Math.ceil(w) + 2 : text.length * CHART.charPx;
    });
    probe.remove();
    return widths;
  }

  LH.funnelPanel = { start };
})();
