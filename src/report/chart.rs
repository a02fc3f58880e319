//! The timeline as an inline SVG chart: the most viewers at once per bucket as a line, GMV per
//! bucket as bars, and the show's moments (pin, deal start, deal end) as marked, labelled
//! vertical lines. The SVG needs no script or font of its own; every text in it is escaped.

use std::fmt::Write;

use super::fmt::{count, elapsed, esc, money};
use crate::funnel::view::{Bucket, Timeline};
use crate::funnel::{Moment, MomentKind};
use crate::protocol::Id;

const PLOT_HEIGHT: f64 = 200.0;
const BOTTOM: f64 = 30.0;
const ROW: f64 = 16.0;
const MAX_ROWS: usize = 6;
/// About how wide one character of an 11 px label is.
const CHAR_PX: f64 = 7.0;
const LABEL_CHARS: usize = 26;

/// A chart's drawing size: its width in SVG units (at 11 px labels), the room for the two
/// axes' labels, and how many time ticks it has.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    pub width: f64,
    left: f64,
    right: f64,
    ticks: u64,
}

/// For a screen: 960 units wide, six time ticks.
pub const WIDE: Size = Size {
    width: 960.0,
    left: 52.0,
    right: 76.0,
    ticks: 6,
};
/// For a phone: 360 units wide (its labels stay readable at a phone's width), three ticks.
pub const NARROW: Size = Size {
    width: 360.0,
    left: 30.0,
    right: 58.0,
    ticks: 3,
};

/// The colours, shared with the page's legend.
pub const VIEWERS_COLOUR: &str = "#2563eb";
pub const GMV_COLOUR: &str = "#f9a8d4";
/// A moment's colour by its kind.
pub fn moment_colour(kind: MomentKind) -> &'static str {
    match kind {
        MomentKind::Pin => "#7c3aed",
        MomentKind::DealStart => "#15803d",
        MomentKind::DealEnd => "#b91c1c",
        MomentKind::AuctionStart => "#0e7490",
        MomentKind::AuctionClose => "#a16207",
    }
}

/// A moment's label: `pin Merino scarf`, `start d1`, `end d1` (titles cut to fit).
pub fn moment_label(m: &Moment) -> String {
    let what = match m.kind {
        MomentKind::Pin => "pin",
        MomentKind::DealStart => "start",
        MomentKind::DealEnd => "end",
        MomentKind::AuctionStart => "auction",
        MomentKind::AuctionClose => "close",
    };
    let name = match m.kind {
        MomentKind::Pin => m.title.as_deref().or(m.product.as_ref().map(Id::as_str)),
        _ => m.deal.as_ref().map(Id::as_str).or(m.title.as_deref()),
    }
    .unwrap_or("");
    let mut label = format!("{what} {name}");
    if label.chars().count() > LABEL_CHARS {
        label = label.chars().take(LABEL_CHARS - 1).collect::<String>() + "…";
    }
    label.trim_end().to_owned()
}

/// Rows for the moments' labels, left to right: each takes the first row free where it starts,
/// so no two labels overlap; a label no row has room for (more than [`MAX_ROWS`] at one place)
/// gets `None`, its marker named by its tooltip only. Returns the rows and how many are used.
fn label_rows(xs_and_widths: &[(f64, f64)]) -> (Vec<Option<usize>>, usize) {
    let mut ends: Vec<f64> = Vec::new();
    let mut rows = Vec::with_capacity(xs_and_widths.len());
    for &(x, w) in xs_and_widths {
        let row = match ends.iter().position(|end| *end + 6.0 <= x) {
            Some(r) => Some(r),
            None if ends.len() < MAX_ROWS => {
                ends.push(f64::MIN);
                Some(ends.len() - 1)
            }
            None => None,
        };
        if let Some(r) = row {
            ends[r] = x + w;
        }
        rows.push(row);
    }
    (rows, ends.len())
}

/// The smallest round step (1 s, 2 s, 5 s, 10 s, 15 s, 30 s, 1 min … 4 h) that puts at most
/// `ticks` steps across `span_ms`.
fn tick_step(span_ms: u64, ticks: u64) -> u64 {
    const STEPS_S: [u64; 16] = [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14_400, 28_800,
    ];
    let ticks = ticks.max(1);
    STEPS_S
        .iter()
        .map(|s| s * 1000)
        .find(|step| span_ms / step <= ticks)
        .unwrap_or_else(|| span_ms.div_ceil(ticks).max(1))
}

/// Where things go on one timeline chart: the time span, the plot's box, the scales.
struct Frame<'a> {
    size: Size,
    bucket_ms: u64,
    /// The start of the first bucket or moment, Unix ms.
    first: u64,
    /// The time shown, ms (at least one bucket).
    span: f64,
    /// The plot's top (below the moments' label rows) and bottom.
    top: f64,
    bottom: f64,
    max_viewers: u64,
    max_gmv: u64,
    currency: &'a str,
}

impl Frame<'_> {
    fn x(&self, t: u64) -> f64 {
        let plot_w = self.size.width - self.size.left - self.size.right;
        self.size.left + (t.saturating_sub(self.first) as f64 / self.span) * plot_w
    }

    fn y_viewers(&self, v: u64) -> f64 {
        self.bottom - v as f64 / self.max_viewers.max(1) as f64 * PLOT_HEIGHT
    }

    fn h_gmv(&self, g: u64) -> f64 {
        g as f64 / self.max_gmv.max(1) as f64 * PLOT_HEIGHT
    }
}

/// The chart of `timeline` at `size`, money in `currency`; a short note instead when it holds
/// nothing.
pub fn timeline_svg(timeline: &Timeline, currency: &str, size: Size) -> String {
    let bucket_ms = if timeline.bucket_ms == 0 {
        10_000
    } else {
        timeline.bucket_ms
    };
    let buckets = &timeline.buckets;
    let moments = &timeline.moments;
    if buckets.is_empty() && moments.is_empty() {
        return r#"<p class="muted">No activity on the timeline yet.</p>"#.into();
    }
    let first = buckets
        .iter()
        .map(|b| b.t)
        .chain(moments.iter().map(|m| m.t))
        .min()
        .unwrap_or(0);
    let last = buckets
        .iter()
        .map(|b| b.t.saturating_add(bucket_ms))
        .chain(moments.iter().map(|m| m.t))
        .max()
        .unwrap_or(first);
    let mut frame = Frame {
        size,
        bucket_ms,
        first,
        span: (last.saturating_sub(first)).max(bucket_ms) as f64,
        top: 0.0,
        bottom: 0.0,
        max_viewers: buckets.iter().map(|b| b.viewers).max().unwrap_or(0),
        max_gmv: buckets.iter().map(|b| b.gmv_cents).max().unwrap_or(0),
        currency,
    };
    // Moment labels first: they decide how much room the top needs.
    let placed = place_labels(&frame, moments);
    frame.top = 10.0 + placed.rows_used as f64 * ROW;
    frame.bottom = frame.top + PLOT_HEIGHT;
    let width = size.width;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="timeline w{width}" viewBox="0 0 {width} {}" role="img" aria-label="Timeline: viewers, GMV per {} s and the show's moments" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="11">"#,
        frame.bottom + BOTTOM,
        bucket_ms / 1000
    );
    grid(&mut s, &frame);
    gmv_bars(&mut s, &frame, buckets);
    viewers_line(&mut s, &frame, buckets);
    moment_marks(&mut s, &frame, moments, &placed);
    time_axis(&mut s, &frame);
    s.push_str("</svg>");
    s
}

/// The moments' labels: each one's line x, text and start x, and its row (see [`label_rows`]).
struct Labels {
    placed: Vec<(f64, String, f64)>,
    rows: Vec<Option<usize>>,
    rows_used: usize,
}

fn place_labels(frame: &Frame, moments: &[Moment]) -> Labels {
    let width = frame.size.width;
    let placed: Vec<(f64, String, f64)> = moments
        .iter()
        .map(|m| {
            let label = moment_label(m);
            let w = label.chars().count() as f64 * CHAR_PX;
            let mx = frame.x(m.t);
            // A label that would run off the right edge ends at its line instead.
            let start = if mx + 3.0 + w > width {
                (mx - 3.0 - w).max(0.0)
            } else {
                mx + 3.0
            };
            (mx, label, start)
        })
        .collect();
    let spans: Vec<(f64, f64)> = placed
        .iter()
        .map(|(_, l, s)| (*s, l.chars().count() as f64 * CHAR_PX))
        .collect();
    let (rows, rows_used) = label_rows(&spans);
    Labels {
        placed,
        rows,
        rows_used,
    }
}

/// The grid lines with the viewers scale on the left and the GMV scale on the right.
fn grid(s: &mut String, f: &Frame) {
    let Size {
        width, left, right, ..
    } = f.size;
    for frac in [0.0, 0.5, 1.0] {
        let y = f.bottom - frac * PLOT_HEIGHT;
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e5ea"/>"##,
            width - right
        );
        let v = (f.max_viewers as f64 * frac).round() as u64;
        let g = (f.max_gmv as f64 * frac).round() as u64;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="{VIEWERS_COLOUR}">{}</text>"#,
            left - 6.0,
            y + 4.0,
            count(v)
        );
        // No sales yet: one $0.00 at the bottom, not three.
        if f.max_gmv > 0 || frac == 0.0 {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" fill="#9d174d">{}</text>"##,
                width - right + 6.0,
                y + 4.0,
                esc(&money(g, f.currency))
            );
        }
    }
}

/// GMV per bucket as bars, each with its figures as a tooltip.
fn gmv_bars(s: &mut String, f: &Frame, buckets: &[Bucket]) {
    for b in buckets {
        let (x0, x1) = (f.x(b.t), f.x(b.t.saturating_add(f.bucket_ms)));
        let h = f.h_gmv(b.gmv_cents);
        let w = ((x1 - x0) * 0.8).max(0.8);
        let _ = write!(
            s,
            r#"<rect class="gmv" x="{:.1}" y="{:.1}" width="{w:.1}" height="{h:.1}" fill="{GMV_COLOUR}"><title>+{}: {} orders, {}, {} viewers</title></rect>"#,
            x0 + (x1 - x0) * 0.1,
            f.bottom - h,
            elapsed(b.t.saturating_sub(f.first)),
            count(b.orders),
            esc(&money(b.gmv_cents, f.currency)),
            count(b.viewers)
        );
    }
}

/// The viewers line, through each bucket's middle, with dots while there are few buckets.
fn viewers_line(s: &mut String, f: &Frame, buckets: &[Bucket]) {
    let points: Vec<String> = buckets
        .iter()
        .map(|b| {
            let mid = f.x(b.t.saturating_add(f.bucket_ms / 2));
            format!("{mid:.1},{:.1}", f.y_viewers(b.viewers))
        })
        .collect();
    if points.len() > 1 {
        let _ = write!(
            s,
            r#"<polyline class="viewers" points="{}" fill="none" stroke="{VIEWERS_COLOUR}" stroke-width="2" stroke-linejoin="round"/>"#,
            points.join(" ")
        );
    }
    if points.len() <= 60 {
        for p in &points {
            let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(
                s,
                r#"<circle cx="{px}" cy="{py}" r="2.5" fill="{VIEWERS_COLOUR}"/>"#
            );
        }
    }
}

/// Each moment as a dashed line with its label in its row (none when no row had room).
fn moment_marks(s: &mut String, f: &Frame, moments: &[Moment], labels: &Labels) {
    let bottom = f.bottom;
    for ((m, (mx, label, start)), row) in moments.iter().zip(&labels.placed).zip(&labels.rows) {
        let colour = moment_colour(m.kind);
        let ly = 10.0 + row.unwrap_or(0) as f64 * ROW + 11.0;
        let text = match row {
            Some(_) => format!(
                r#"<text x="{start:.1}" y="{ly:.1}" fill="{colour}" font-weight="600">{}</text>"#,
                esc(label)
            ),
            None => String::new(),
        };
        let _ = write!(
            s,
            r#"<g class="moment" data-kind="{kind}"><title>{full} at +{at}</title><line x1="{mx:.1}" x2="{mx:.1}" y1="{:.1}" y2="{bottom:.1}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="4 3"/>{text}</g>"#,
            if row.is_some() { ly - 10.0 } else { f.top },
            kind = m.kind.as_str(),
            full = esc(&format!(
                "{} {}",
                m.kind.as_str(),
                m.title
                    .as_deref()
                    .or(m.deal.as_ref().map(Id::as_str))
                    .unwrap_or("")
            )),
            at = elapsed(m.t.saturating_sub(f.first)),
        );
    }
}

/// The time axis: round steps (2 s, 30 s, 5 min …) from the start, at most `size.ticks`.
fn time_axis(s: &mut String, f: &Frame) {
    let Size {
        width,
        right,
        ticks,
        ..
    } = f.size;
    let span_ms = f.span as u64;
    let step = tick_step(span_ms, ticks);
    for k in 0..=span_ms / step {
        let at = k * step;
        let tx = f.x(f.first + at);
        let anchor = if k == 0 {
            "start"
        } else if tx > width - right - 14.0 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            s,
            r##"<text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" fill="#6b7280">{}</text>"##,
            f.bottom + 18.0,
            elapsed(at)
        );
    }
}

/// A two-series line chart as inline SVG: `points` are (x, first series, second series), both
/// series on one y axis from 0, `names` their legend, `unit` said under the x axis (seconds).
/// The load tester's HTML report draws its latency and throughput with it.
pub fn line_chart(points: &[(f64, f64, f64)], names: (&str, &str), unit: &str) -> String {
    let (w, h, pad) = (900.0, 260.0, 50.0);
    let xmax = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let ymax = points.iter().map(|p| p.1.max(p.2)).fold(1.0, f64::max) * 1.1;
    let line = |f: &dyn Fn(&(f64, f64, f64)) -> f64| {
        points
            .iter()
            .map(|p| {
                format!(
                    "{:.1},{:.1}",
                    pad + p.0 / xmax * (w - 2.0 * pad),
                    h - pad - f(p) / ymax * (h - 2.0 * pad)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">"
    );
    let _ = write!(
        s,
        "<rect x=\"{pad}\" y=\"{pad}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#ccc\"/>",
        w - 2.0 * pad,
        h - 2.0 * pad
    );
    for i in 0..=4 {
        let y = h - pad - (i as f64 / 4.0) * (h - 2.0 * pad);
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"10\">{:.0}</text><line x1=\"{pad}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>",
            y + 3.0,
            ymax * i as f64 / 4.0,
            w - pad
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.0}\" y=\"{:.0}\" font-size=\"11\">seconds (max {xmax:.0})  [{}]</text>",
        w / 2.0 - 60.0,
        h - 10.0,
        esc(unit)
    );
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{}\"/>",
        line(&|p| p.1)
    );
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"{}\"/>",
        line(&|p| p.2)
    );
    let _ = write!(
        s,
        "<text x=\"{pad}\" y=\"20\" font-size=\"12\" fill=\"#1f77b4\">{}</text><text x=\"{}\" y=\"20\" font-size=\"12\" fill=\"#d62728\">{}</text></svg>",
        esc(names.0),
        pad + 160.0,
        esc(names.1)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moment(t: u64, kind: MomentKind, title: &str) -> Moment {
        Moment {
            t,
            kind,
            deal: Id::new("d1").ok(),
            product: Id::new("scarf").ok(),
            title: Some(title.into()),
        }
    }

    #[test]
    fn moments_are_marked_and_labelled_with_escaped_titles() {
        let t = Timeline {
            bucket_ms: 10_000,
            buckets: vec![
                Bucket {
                    t: 0,
                    viewers: 3,
                    ..Bucket::default()
                },
                Bucket {
                    t: 10_000,
                    viewers: 5,
                    orders: 2,
                    gmv_cents: 3998,
                    ..Bucket::default()
                },
            ],
            moments: vec![
                moment(1_000, MomentKind::Pin, "<b>Scarf</b>"),
                moment(2_000, MomentKind::DealStart, "x"),
                moment(19_000, MomentKind::DealEnd, "x"),
            ],
            ..Timeline::default()
        };
        let svg = timeline_svg(&t, "USD", WIDE);
        for kind in ["pin", "deal_start", "deal_end"] {
            assert!(svg.contains(&format!(r#"data-kind="{kind}""#)), "{kind}");
        }
        assert!(svg.contains("pin &lt;b&gt;Scarf&lt;/b&gt;"), "{svg}");
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("$39.98"));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn time_ticks_fall_on_round_steps() {
        assert_eq!(tick_step(10_000, 6), 2_000);
        assert_eq!(tick_step(70_000, 6), 15_000);
        assert_eq!(tick_step(3_600_000, 6), 600_000);
        assert_eq!(tick_step(0, 3), 1_000);
        assert!(tick_step(u64::MAX / 2, 3) > 0);
    }

    #[test]
    fn close_moments_get_rows_of_their_own() {
        let (rows, used) = label_rows(&[(10.0, 80.0), (20.0, 80.0), (200.0, 10.0)]);
        assert_eq!(rows, vec![Some(0), Some(1), Some(0)]);
        assert_eq!(used, 2);
        let crowd = [(10.0, 80.0); MAX_ROWS + 1];
        let (rows, used) = label_rows(&crowd);
        assert_eq!(
            rows[MAX_ROWS], None,
            "a label with no room is left out, never overlapped"
        );
        assert_eq!(used, MAX_ROWS);
    }

    #[test]
    fn an_empty_timeline_is_a_note_and_one_bucket_has_no_nan() {
        assert!(timeline_svg(&Timeline::default(), "USD", NARROW).contains("No activity"));
        let one = Timeline {
            buckets: vec![Bucket {
                t: 5_000_000,
                ..Bucket::default()
            }],
            ..Timeline::default()
        };
        let svg = timeline_svg(&one, "USD", NARROW);
        assert!(svg.starts_with("<svg") && !svg.contains("NaN"), "{svg}");
    }
}
