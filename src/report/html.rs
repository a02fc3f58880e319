//! The post-show report as one self-contained HTML page: inline CSS and inline SVG, no script,
//! nothing fetched. [`render`] is a pure function of the funnel and the timeline; every string
//! that came from the hub (titles, ids, creator names) is escaped.

use std::fmt::Write;

use super::chart::{GMV_COLOUR, NARROW, VIEWERS_COLOUR, WIDE, moment_colour, timeline_svg};
use super::fmt::{count, esc, money, percent_of, plural, utc};
use super::story::{channel_label, drop, drop_text, engaged_words, where_lost};
use crate::funnel::view::{RoomFunnel, StageRow, Timeline};
use crate::funnel::{MomentKind, Stage};

const STYLE: &str = r#"
:root { --ink: #16181d; --muted: #6b7280; --line: #e3e5ea; --bg: #f4f5f7; --accent: #e11d48; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1140px; margin: 0 auto; padding: 1rem; display: flex; flex-direction: column; gap: 1rem; }
h1 { font-size: 1.5rem; margin: 0.1rem 0 0.2rem; overflow-wrap: anywhere; }
h2 { font-size: 1.1rem; margin: 0 0 0.7rem; }
h3 { font-size: 1rem; margin: 0 0 0.5rem; display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.2rem 0.6rem; }
h3 .muted { font-weight: 500; font-size: 0.88rem; }
p { margin: 0.3rem 0; }
.muted { color: var(--muted); }
.eyebrow { font-size: 0.75rem; font-weight: 700; letter-spacing: 0.06em; text-transform: uppercase; color: var(--muted); margin: 0; }
section, header { background: #fff; border: 1px solid var(--line); border-radius: 12px; padding: 1rem; min-width: 0; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 0.6rem; margin-top: 0.8rem; }
.tile { background: var(--bg); border-radius: 10px; padding: 0.6rem 0.75rem; min-width: 0; }
.tile b { display: block; font-size: 1.3rem; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.tile span { color: var(--muted); font-size: 0.85rem; }
.tile.top b { font-size: 1.05rem; }
.story { margin: 0; padding-left: 1.2rem; display: flex; flex-direction: column; gap: 0.35rem; }
.story li { overflow-wrap: anywhere; }
.channels { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 0.9rem; }
.channel { border: 1px solid var(--line); border-radius: 10px; padding: 0.75rem; min-width: 0; }
.channel.total { background: #fafafa; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 0.3rem 0.45rem; text-align: left; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { font-size: 0.8rem; color: var(--muted); font-weight: 600; white-space: nowrap; }
td.n, th.n { text-align: right; white-space: nowrap; }
td.drop { color: #b91c1c; }
td.title { overflow-wrap: anywhere; min-width: 9rem; }
td.title small { display: block; color: var(--muted); }
.stages { table-layout: fixed; font-size: 0.88rem; }
.stages col.name { width: 27%; } .stages col.users { width: 39%; } .stages col.pct { width: 16%; } .stages col.drop { width: 18%; }
.stages th, .stages td { padding: 0.28rem 0.3rem; }
.stages td:first-child { overflow-wrap: anywhere; }
.bar { position: relative; height: 1.25rem; background: #f1f2f5; border-radius: 5px; overflow: hidden; }
.bar i { position: absolute; inset: 0 auto 0 0; background: #fbcfe8; }
.bar b { position: relative; padding-left: 0.4rem; font-size: 0.82rem; line-height: 1.25rem; }
.channel .money { font-size: 0.88rem; color: var(--muted); margin-top: 0.5rem; }
.legend { display: flex; flex-wrap: wrap; gap: 0.3rem 1rem; font-size: 0.85rem; color: var(--muted); margin-bottom: 0.4rem; }
.legend span::before { content: ""; display: inline-block; width: 0.8rem; height: 0.8rem; border-radius: 2px; margin-right: 0.35rem; vertical-align: -0.1rem; background: var(--c); }
svg.timeline { width: 100%; height: auto; display: block; }
.chart.narrow { display: none; }
.narrow-only { display: none; }
footer { color: var(--muted); font-size: 0.82rem; text-align: center; padding-bottom: 1rem; }
@media (max-width: 600px) {
  main { padding: 0.5rem; gap: 0.6rem; }
  section, header { padding: 0.75rem; }
  .channels { grid-template-columns: minmax(0, 1fr); }
  th, td { padding: 0.25rem 0.3rem; }
  table { font-size: 0.85rem; }
  th { white-space: normal; }
  td.title { min-width: 6rem; }
  .wide-only { display: none; }
  .narrow-only { display: inline; }
  td.n, th.n { padding-left: 0.2rem; padding-right: 0.2rem; }
  .chart.wide { display: none; }
  .chart.narrow { display: block; }
}
"#;

/// What each stage counts, in a line under the funnel's heading.
fn stage_definitions(engaged_ms: u64) -> String {
    format!(
        "viewers: joined · engaged: stayed {} or more · exposed: watched while a deal was live · \
         tapped: pressed Buy · held: got a hold · ordered: checked out",
        engaged_words(engaged_ms)
    )
}

/// The bar's width: `n` of `whole`, at most the whole bar; 0 when there is no whole.
fn bar_width(n: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (n as f64 * 100.0 / whole as f64).min(100.0)
    }
}

fn channel_block(
    out: &mut String,
    name: &str,
    label: &str,
    c: &StageRow,
    f: &RoomFunnel,
    total: bool,
) {
    let cur = f.currency();
    let _ = write!(
        out,
        r#"<article class="channel{}" data-channel="{}"><h3>{}<span class="muted">{} · {} GMV</span></h3><table class="stages"><colgroup><col class="name"><col class="users"><col class="pct"><col class="drop"></colgroup><thead><tr><th>Stage</th><th>Users</th><th class="n">share</th><th class="n">drop</th></tr></thead><tbody>"#,
        if total { " total" } else { "" },
        esc(name),
        esc(label),
        plural(c.stage(Stage::Viewers), "viewer"),
        esc(&money(c.gmv_cents, cur)),
    );
    for (i, stage) in Stage::ROOM.iter().enumerate() {
        let n = c.stage(*stage);
        let drop_cell = if i == 0 {
            String::new()
        } else {
            drop_text(drop(c, Stage::ROOM[i - 1], *stage))
        };
        let _ = write!(
            out,
            r#"<tr data-stage="{}"><td>{}</td><td class="barcell"><div class="bar"><i style="width:{:.1}%"></i><b>{}</b></div></td><td class="n">{}</td><td class="n{}">{}</td></tr>"#,
            stage.as_str(),
            stage.as_str(),
            bar_width(n, c.stage(Stage::Viewers)),
            count(n),
            percent_of(n, c.stage(Stage::Viewers)),
            if drop_cell.starts_with('−') {
                " drop"
            } else {
                " muted"
            },
            drop_cell,
        );
    }
    let _ = write!(
        out,
        r#"</tbody></table><p class="money">{} · {} · {} GMV · {}</p></article>"#,
        plural(c.orders, "order"),
        plural(c.units, "unit"),
        esc(&money(c.gmv_cents, cur)),
        plural(c.sold_out_taps, "sold-out tap"),
    );
}

fn tiles(out: &mut String, f: &RoomFunnel) {
    let t = &f.total;
    let top = f
        .deals_by_gmv()
        .into_iter()
        .find(|(_, d)| d.row.gmv_cents > 0);
    let top_text = match top {
        Some((id, d)) => format!(
            "{} · {}",
            esc(if d.title.is_empty() { id } else { &d.title }),
            esc(&money(
                d.row.gmv_cents,
                if d.currency.is_empty() {
                    f.currency()
                } else {
                    &d.currency
                }
            ))
        ),
        None => "none yet".into(),
    };
    let _ = write!(
        out,
        r#"<div class="tiles"><div class="tile" id="tile-gmv"><b>{}</b><span>GMV</span></div><div class="tile"><b>{}</b><span>viewers</span></div><div class="tile"><b>{}</b><span>orders · {} units</span></div><div class="tile top" id="tile-top"><b>{}</b><span>top deal</span></div><div class="tile"><b>{}</b><span>sold-out taps</span></div></div>"#,
        esc(&money(t.gmv_cents, f.currency())),
        count(t.stage(Stage::Viewers)),
        count(t.orders),
        count(t.units),
        top_text,
        count(t.sold_out_taps),
    );
}

fn deals_table(out: &mut String, f: &RoomFunnel) {
    out.push_str(r#"<section id="deals"><h2>Deals ranked by GMV</h2>"#);
    let deals = f.deals_by_gmv();
    if deals.is_empty() {
        out.push_str(r#"<p class="muted">No deals ran.</p></section>"#);
        return;
    }
    out.push_str(r#"<div class="scroll"><table><thead><tr><th class="n">#</th><th>Deal</th><th class="n wide-only">Price</th><th class="n">Units</th><th class="n">Orders</th><th class="n">GMV</th><th class="n wide-only">Exposed</th><th class="n wide-only">Ordered</th><th class="n"><span class="wide-only">Exposed → ordered</span><span class="narrow-only">Conv.</span></th></tr></thead><tbody>"#);
    for (rank, (id, d)) in deals.iter().enumerate() {
        let cur = if d.currency.is_empty() {
            f.currency()
        } else {
            &d.currency
        };
        let _ = write!(
            out,
            r#"<tr data-deal="{}"><td class="n">{}</td><td class="title">{}<small>{} · {}</small></td><td class="n wide-only">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n wide-only">{}</td><td class="n wide-only">{}</td><td class="n conv">{}</td></tr>"#,
            esc(id),
            rank + 1,
            esc(if d.title.is_empty() { id } else { &d.title }),
            esc(id),
            esc(&d.product_id),
            esc(&money(d.price_cents, cur)),
            count(d.row.units),
            count(d.row.orders),
            esc(&money(d.row.gmv_cents, cur)),
            count(d.row.exposed),
            count(d.row.ordered),
            percent_of(d.row.ordered, d.row.exposed),
        );
    }
    out.push_str("</tbody></table></div></section>");
}

fn missed_demand(out: &mut String, f: &RoomFunnel) {
    out.push_str(r#"<section id="missed"><h2>Missed demand</h2>"#);
    let mut missed: Vec<_> = f
        .deals_by_gmv()
        .into_iter()
        .filter(|(_, d)| d.row.sold_out_taps > 0)
        .collect();
    missed.sort_by(|a, b| {
        b.1.row
            .sold_out_taps
            .cmp(&a.1.row.sold_out_taps)
            .then(a.0.cmp(b.0))
    });
    let taps = f
        .total
        .sold_out_taps
        .max(missed.iter().map(|(_, d)| d.row.sold_out_taps).sum());
    if taps == 0 {
        out.push_str(r#"<p class="muted">No tap met a sold-out deal.</p></section>"#);
        return;
    }
    let _ = write!(
        out,
        r#"<p id="missed-total">{} on Buy {} answered “sold out”: viewers who wanted to buy and could not.</p>"#,
        if taps == 1 {
            "1 tap".to_owned()
        } else {
            format!("{} taps", count(taps))
        },
        if taps == 1 { "was" } else { "were" },
    );
    if missed.is_empty() {
        out.push_str(r#"<p class="muted">The hub gave no figures per deal.</p></section>"#);
        return;
    }
    let _ = write!(
        out,
        r#"<div class="scroll"><table><thead><tr><th>Deal</th><th class="n">Sold-out<span class="wide-only"> taps</span></th><th class="n wide-only">Units sold</th><th class="n"><span class="wide-only">At the deal price, one unit a tap</span><span class="narrow-only">Lost, est.</span></th></tr></thead><tbody>"#
    );
    for (id, d) in missed {
        let cur = if d.currency.is_empty() {
            f.currency()
        } else {
            &d.currency
        };
        let _ = write!(
            out,
            r#"<tr data-deal="{}"><td class="title">{}<small>{}</small></td><td class="n">{}</td><td class="n wide-only">{}</td><td class="n">{}</td></tr>"#,
            esc(id),
            esc(if d.title.is_empty() { id } else { &d.title }),
            esc(id),
            count(d.row.sold_out_taps),
            count(d.row.units),
            esc(&money(
                d.row.sold_out_taps.saturating_mul(d.price_cents),
                cur
            )),
        );
    }
    out.push_str("</tbody></table></div></section>");
}

fn creators_table(out: &mut String, f: &RoomFunnel) {
    out.push_str(r#"<section id="creators"><h2>Creator commission</h2>"#);
    if f.creators.is_empty() {
        out.push_str(
            r#"<p class="muted">No creator earned commission in this room.</p></section>"#,
        );
        return;
    }
    let mut rows: Vec<_> = f.creators.iter().collect();
    rows.sort_by(|a, b| {
        b.1.earning
            .commission_cents
            .cmp(&a.1.earning.commission_cents)
            .then(a.0.cmp(b.0))
    });
    out.push_str(r#"<div class="scroll"><table><thead><tr><th>Creator</th><th>Role</th><th class="n">Orders</th><th class="n wide-only">Units</th><th class="n">GMV</th><th class="n">Commission</th></tr></thead><tbody>"#);
    for (id, c) in rows {
        let _ = write!(
            out,
            r#"<tr data-creator="{}"><td class="title">{}</td><td>{}</td><td class="n">{}</td><td class="n wide-only">{}</td><td class="n">{}</td><td class="n commission">{}</td></tr>"#,
            esc(id),
            esc(id),
            esc(&c.role),
            count(c.earning.sales.orders),
            count(c.earning.sales.units),
            esc(&money(c.earning.sales.gmv_cents, f.currency())),
            esc(&money(c.earning.commission_cents, f.currency())),
        );
    }
    out.push_str(r#"</tbody></table></div><p class="muted">A creator who both hosted and sent buyers in this room is “both”, with the sums of both. GMV is attributed to each role: a sale by an affiliate’s buyer counts for the host too.</p></section>"#);
}

/// The report for `funnel` and `timeline` (the hub's JSON, read back by [`crate::funnel::view`]): one
/// HTML document with every figure the report promises (the funnel per channel with the drop
/// between stages, a sentence per channel on where it lost its viewers, the timeline chart with
/// its moments, deals by GMV, missed demand and the creator commission table). It uses no
/// script and loads nothing; all text from the hub is escaped.
pub fn render(funnel: &RoomFunnel, timeline: &Timeline) -> String {
    let f = funnel;
    let room = if f.room.is_empty() {
        &timeline.room
    } else {
        &f.room
    };
    let mut out = String::with_capacity(32 * 1024);
    let _ = write!(
        out,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Post-show report · {room}</title><style>{STYLE}</style></head><body><main><header><p class="eyebrow">livehub · post-show report</p><h1>Room {room}</h1><p class="muted">Figures as of {at} · money in {cur}</p>"#,
        room = esc(room),
        at = if f.generated_at == 0 {
            "an unknown time".into()
        } else {
            utc(f.generated_at)
        },
        cur = esc(f.currency()),
    );
    tiles(&mut out, f);
    out.push_str("</header>");

    let channels: Vec<(&str, &StageRow)> =
        f.channels.iter().map(|(c, r)| (c.as_str(), r)).collect();
    out.push_str(r#"<section id="lost"><h2>Where each channel lost its viewers</h2>"#);
    if channels.is_empty() {
        out.push_str(r#"<p class="muted">No viewers joined.</p>"#);
    } else {
        out.push_str(r#"<ul class="story">"#);
        for (name, c) in &channels {
            let _ = write!(
                out,
                r#"<li data-channel="{}">{}</li>"#,
                esc(name),
                esc(&where_lost(&channel_label(name), c, f.engaged_ms))
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");

    let _ = write!(
        out,
        r#"<section id="funnel"><h2>Funnel per channel</h2><p class="muted">Each bar is the share of that channel’s viewers who reached the stage; the drop is the share lost since the stage before (a + means more reached it: one can see a deal before staying long enough to count as engaged).</p><p class="muted defs">{}</p><div class="channels">"#,
        esc(&stage_definitions(f.engaged_ms))
    );
    channel_block(&mut out, "total", "all channels", &f.total, f, true);
    for (name, c) in &channels {
        channel_block(&mut out, name, &channel_label(name), c, f, false);
    }
    out.push_str("</div></section>");

    let bucket_s = if timeline.bucket_ms == 0 {
        10
    } else {
        timeline.bucket_ms / 1000
    };
    let _ = write!(
        out,
        r#"<section id="timeline"><h2>Timeline</h2><div class="legend"><span style="--c:{VIEWERS_COLOUR}">viewers (most at once)</span><span style="--c:{GMV_COLOUR}">GMV per {bucket_s} s</span><span style="--c:{}">pin</span><span style="--c:{}">deal start</span><span style="--c:{}">deal end</span><span style="--c:{}">auction start</span><span style="--c:{}">auction close</span></div><div class="chart wide">{}</div><div class="chart narrow">{}</div></section>"#,
        moment_colour(MomentKind::Pin),
        moment_colour(MomentKind::DealStart),
        moment_colour(MomentKind::DealEnd),
        moment_colour(MomentKind::AuctionStart),
        moment_colour(MomentKind::AuctionClose),
        timeline_svg(timeline, f.currency(), WIDE),
        timeline_svg(timeline, f.currency(), NARROW),
    );

    deals_table(&mut out, f);
    missed_demand(&mut out, f);
    creators_table(&mut out, f);
    let _ = write!(
        out,
        r#"<footer>Written by livehub {} · <code>livehub report --room {}</code></footer></main></body></html>"#,
        env!("CARGO_PKG_VERSION"),
        esc(room)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract's example shapes, with figures in them.
    fn fixture() -> (RoomFunnel, Timeline) {
        let funnel = serde_json::json!({
            "room": "demo", "currency": "USD", "engaged_ms": 30000, "generated_at": 1764633600000u64,
            "total": {"viewers": 5010, "engaged": 3700, "exposed": 622, "tapped": 72, "held": 60, "ordered": 53,
                      "units": 60, "gmv_cents": 119940, "sold_out_taps": 14, "orders": 55},
            "channels": {
                "paid": {"viewers": 4210, "engaged": 3000, "exposed": 126, "tapped": 40, "held": 30, "ordered": 25,
                         "units": 30, "gmv_cents": 59970, "sold_out_taps": 10, "orders": 26},
                "creator": {"viewers": 800, "engaged": 700, "exposed": 496, "tapped": 32, "held": 30, "ordered": 28,
                            "units": 30, "gmv_cents": 59970, "sold_out_taps": 4, "orders": 29},
                "direct": {"viewers": 0}
            },
            "deals": {
                "d1": {"title": "Merino scarf", "product_id": "scarf", "price_cents": 1999, "currency": "USD",
                       "exposed": 600, "tapped": 70, "held": 58, "ordered": 50, "units": 55, "gmv_cents": 109945,
                       "sold_out_taps": 14, "orders": 52, "channels": {"paid": {"exposed": 1}}},
                "d2": {"title": "<img src=x onerror=alert(1)> & \"mug\"", "product_id": "mug", "price_cents": 3332,
                       "currency": "USD", "exposed": 0, "ordered": 3, "units": 3, "gmv_cents": 9995, "orders": 3}
            },
            "creators": {
                "ana": {"role": "host", "orders": 55, "units": 60, "gmv_cents": 119940, "commission_cents": 11993},
                "bo": {"role": "affiliate", "orders": 29, "units": 30, "gmv_cents": 59970, "commission_cents": 2998}
            }
        });
        let timeline = serde_json::json!({
            "room": "demo", "bucket_ms": 10000, "currency": "USD",
            "buckets": [{"t": 1764633600000u64, "viewers": 12, "comments": 3, "taps": 5, "orders": 2, "gmv_cents": 3998},
                        {"t": 1764633610000u64, "viewers": 40, "comments": 1, "taps": 0, "orders": 0, "gmv_cents": 0}],
            "moments": [{"t": 1764633603120u64, "kind": "pin", "product": "scarf", "title": "Merino scarf"},
                        {"t": 1764633610000u64, "kind": "deal_start", "deal": "d1", "product": "scarf", "title": "Merino scarf"},
                        {"t": 1764633670000u64, "kind": "deal_end", "deal": "d1", "product": "scarf", "title": "Merino scarf"}]
        });
        (
            serde_json::from_value(funnel).expect("funnel fixture"),
            serde_json::from_value(timeline).expect("timeline fixture"),
        )
    }

    #[test]
    fn the_report_holds_every_section_with_separated_numbers() {
        let (f, t) = fixture();
        let html = render(&f, &t);
        for want in [
            r#"id="lost""#,
            r#"id="funnel""#,
            r#"id="timeline""#,
            r#"id="deals""#,
            r#"id="missed""#,
            r#"id="creators""#,
            "paid: 4,210 viewers, 71% stayed 30 s, 3% saw a deal: they left before the first deal",
            "creator: 800 viewers, 62% saw a deal, 4% tapped buy: the deals did not convince them",
            "$1,199.40",
            "$119.93",
            "<svg class=\"timeline w960\"",
            "<svg class=\"timeline w360\"",
            r#"data-kind="deal_end""#,
        ] {
            assert!(html.contains(want), "missing {want}");
        }
        // Deals by GMV: d1 before d2.
        let (d1, d2) = (
            html.find(r#"tr data-deal="d1""#),
            html.find(r#"tr data-deal="d2""#),
        );
        assert!(d1 < d2 && d1.is_some(), "d1 ranks first");
        // Exposed → ordered: 50 of 600.
        assert!(html.contains(r#"<td class="n conv">8%</td>"#));
        // The drop between stages, per channel: paid 126 → 40 exposed to tapped.
        assert!(html.contains("−68%"));
        assert!(!html.contains("<script"), "no script");
        assert!(!html.contains("http://") || html.contains("http://www.w3.org/2000/svg"));
    }

    #[test]
    fn titles_from_the_hub_are_escaped() {
        let (f, t) = fixture();
        let html = render(&f, &t);
        assert!(!html.contains("<img"), "a title cannot inject markup");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt; &amp; &quot;mug&quot;"));
        let mut evil = f.clone();
        evil.room = "</title><script>x</script>".into();
        assert!(!render(&evil, &t).contains("<script>"));
    }

    #[test]
    fn a_zero_viewer_channel_and_an_empty_show_render_without_nan() {
        let (f, t) = fixture();
        let html = render(&f, &t);
        assert!(html.contains("direct: no viewers came this way"));
        assert!(!html.contains("NaN") && !html.contains("inf%"));
        let empty = render(&RoomFunnel::default(), &Timeline::default());
        for want in [
            "No viewers joined.",
            "No deals ran.",
            "No activity on the timeline yet.",
            "$0.00",
        ] {
            assert!(empty.contains(want), "missing {want}");
        }
        assert!(!empty.contains("NaN"));
    }

    #[test]
    fn missed_demand_counts_the_taps_even_without_figures_per_deal() {
        let (mut f, t) = fixture();
        f.deals.clear();
        let html = render(&f, &t);
        assert!(html.contains("14 taps on Buy were answered “sold out”"));
        assert!(html.contains("The hub gave no figures per deal."));
        f.total.sold_out_taps = 1;
        assert!(render(&f, &t).contains("1 tap on Buy was answered"));
    }

    #[test]
    fn absent_fields_read_as_zeros() {
        let f: RoomFunnel = serde_json::from_str(
            r#"{"room":"r","channels":{"paid":{},"hologram":{}},"deals":{"d1":{}},"new":1}"#,
        )
        .expect("lenient");
        assert_eq!(
            f.channels[&crate::commerce::Channel::Paid],
            StageRow::default()
        );
        assert_eq!(
            f.channels.len(),
            1,
            "a channel this build does not know is left out"
        );
        assert_eq!(f.currency(), "USD");
        let html = render(&f, &Timeline::default());
        assert!(html.contains("paid: no viewers came this way"));
    }
}
