//! The funnel in numbers and in words: the drop between each pair of stages, and one sentence
//! per channel that says where it lost its viewers ("paid: 4,210 viewers, 3% saw a deal: they
//! left before the first deal"). Every figure is total: a channel with no viewers gets a
//! sentence too, never a NaN.

use super::fmt::{count, percent, percent_of, share};
use crate::funnel::Stage;
use crate::funnel::view::StageRow;

/// The share of `from`'s users that did not reach `to`, in percent (negative when more reached
/// `to`: the stages are not strict subsets, e.g. a viewer can see a deal before staying long
/// enough to count as engaged). `None` when `from` had nobody.
pub fn drop(c: &StageRow, from: Stage, to: Stage) -> Option<f64> {
    let (a, b) = (c.stage(from), c.stage(to));
    share(a.abs_diff(b), a).map(|p| if b > a { -p } else { p })
}

/// A drop as the funnel table writes it: `"−97%"` lost, `"+12%"` more, `"0%"`, `"–"` for none.
pub fn drop_text(d: Option<f64>) -> String {
    match d {
        None => "–".into(),
        Some(p) if p > 0.0 => format!("−{}", percent(Some(p))),
        Some(p) if p < 0.0 => format!("+{}", percent(Some(-p))),
        Some(_) => "0%".into(),
    }
}

/// A channel's name in words: `short_video` -> `short video`.
pub fn channel_label(wire: &str) -> String {
    wire.replace('_', " ")
}

/// How long a viewer must stay to count as engaged, in words: `30 s`, `1.5 s`, `2 min` (the
/// contract's 30 s when the hub did not say).
pub fn engaged_words(engaged_ms: u64) -> String {
    let ms = if engaged_ms == 0 { 30_000 } else { engaged_ms };
    if ms >= 120_000 && ms.is_multiple_of(60_000) {
        format!("{} min", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// What reaching `stage` means, after its share of the viewers: "3% saw a deal".
fn reached(stage: Stage, engaged: &str) -> String {
    match stage {
        Stage::Viewers => "joined".into(),
        Stage::Engaged => format!("stayed {engaged}"),
        Stage::Exposed => "saw a deal".into(),
        Stage::Tapped => "tapped buy".into(),
        Stage::Held => "got a hold".into(),
        Stage::Ordered => "ordered".into(),
    }
}

/// Why the viewers that did not reach `stage` were lost there.
fn reason(stage: Stage, c: &StageRow, engaged: &str) -> String {
    match stage {
        Stage::Viewers => String::new(),
        Stage::Engaged => format!("they left within the first {engaged}"),
        Stage::Exposed => "they left before the first deal".into(),
        Stage::Tapped => "the deals did not convince them".into(),
        Stage::Held if c.sold_out_taps > 0 => "the stock ran out before them".into(),
        Stage::Held => "their taps did not get a hold".into(),
        Stage::Ordered => "checkout lost them".into(),
    }
}

/// The stages that tell the channel's story: the viewers, then each stage that at least as
/// many users reached as any later one. A stage fewer reached than a later one (no one stayed
/// 30 s, yet some bought) was no gate on the way to buying, so it cannot be where they left.
fn chain(c: &StageRow) -> Vec<Stage> {
    let mut out = vec![Stage::Viewers];
    for (i, stage) in Stage::ROOM.iter().enumerate().skip(1) {
        let later = Stage::ROOM[i + 1..]
            .iter()
            .map(|s| c.stage(*s))
            .max()
            .unwrap_or(0);
        if c.stage(*stage) >= later {
            out.push(*stage);
        }
    }
    out
}

/// One sentence saying where the channel named `label` lost its viewers: the largest share
/// lost between consecutive stages of its story (see [`chain`]), the earliest on a tie, told
/// with the shares of the viewers that reached both ends and the stage's reason. Never divides
/// by zero: a channel without viewers says so.
pub fn where_lost(label: &str, c: &StageRow, engaged_ms: u64) -> String {
    let viewers = c.stage(Stage::Viewers);
    if viewers == 0 {
        return format!("{label}: no viewers came this way");
    }
    let engaged = engaged_words(engaged_ms);
    let head = format!(
        "{label}: {} viewer{}",
        count(viewers),
        if viewers == 1 { "" } else { "s" }
    );
    let chain = chain(c);
    let worst = chain
        .windows(2)
        .filter_map(|w| drop(c, w[0], w[1]).map(|d| (w[0], w[1], d)))
        .filter(|(_, _, d)| *d > 0.0)
        .fold(None::<(Stage, Stage, f64)>, |best, cur| match best {
            Some(b) if b.2 >= cur.2 => Some(b),
            _ => Some(cur),
        });
    let Some((from, to, lost)) = worst else {
        return format!(
            "{head}, {} ordered: no stage lost them",
            percent_of(c.ordered, viewers)
        );
    };
    let of_viewers = |s: Stage| {
        format!(
            "{} {}",
            percent_of(c.stage(s), viewers),
            reached(s, &engaged)
        )
    };
    let mut out = head;
    if from != Stage::Viewers {
        out.push_str(", ");
        out.push_str(&of_viewers(from));
    }
    if to == Stage::Ordered {
        out.push_str(&format!(
            ", {} of those holding did not check out",
            percent(Some(lost))
        ));
    } else {
        out.push_str(", ");
        out.push_str(&of_viewers(to));
    }
    out.push_str(": ");
    out.push_str(&reason(to, c, &engaged));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(stages: [u64; 6]) -> StageRow {
        let [viewers, engaged, exposed, tapped, held, ordered] = stages;
        StageRow {
            viewers: Some(viewers),
            engaged: Some(engaged),
            exposed,
            tapped,
            held,
            ordered,
            ..StageRow::default()
        }
    }

    #[test]
    fn a_channel_that_left_before_the_deals_says_so() {
        let paid = counts([4210, 3000, 126, 40, 30, 25]);
        assert_eq!(
            where_lost("paid", &paid, 30_000),
            "paid: 4,210 viewers, 71% stayed 30 s, 3% saw a deal: they left before the first deal"
        );
    }

    #[test]
    fn a_channel_that_saw_deals_but_did_not_tap_says_the_deals_did_not_convince() {
        let creator = counts([800, 700, 496, 32, 30, 28]);
        assert_eq!(
            where_lost("creator", &creator, 30_000),
            "creator: 800 viewers, 62% saw a deal, 4% tapped buy: the deals did not convince them"
        );
    }

    #[test]
    fn a_channel_that_held_but_did_not_check_out_blames_checkout() {
        let live = counts([1000, 950, 900, 800, 700, 210]);
        assert_eq!(
            where_lost("live", &live, 30_000),
            "live: 1,000 viewers, 70% got a hold, 70% of those holding did not check out: checkout lost them"
        );
    }

    #[test]
    fn taps_that_met_sold_out_stock_blame_the_stock() {
        let mut c = counts([100, 90, 90, 80, 8, 8]);
        c.sold_out_taps = 72;
        assert!(
            where_lost("short video", &c, 30_000)
                .ends_with("80% tapped buy, 8% got a hold: the stock ran out before them"),
            "{}",
            where_lost("short video", &c, 30_000)
        );
    }

    #[test]
    fn a_stage_fewer_reached_than_a_later_one_is_not_where_they_left() {
        // A short show: nobody stayed 30 s, yet two saw the deal and one bought.
        let c = counts([3, 0, 2, 2, 2, 1]);
        assert_eq!(
            where_lost("paid", &c, 30_000),
            "paid: 3 viewers, 67% got a hold, 50% of those holding did not check out: checkout lost them"
        );
    }

    #[test]
    fn zero_viewers_and_no_loss_give_sentences_without_nan() {
        let none = StageRow::default();
        assert_eq!(
            where_lost("direct", &none, 30_000),
            "direct: no viewers came this way"
        );
        let all = counts([2, 2, 2, 2, 2, 2]);
        assert_eq!(
            where_lost("live", &all, 30_000),
            "live: 2 viewers, 100% ordered: no stage lost them"
        );
        let one = counts([1, 0, 0, 0, 0, 0]);
        assert_eq!(
            where_lost("live", &one, 2_500),
            "live: 1 viewer, 0% stayed 2.5 s: they left within the first 2.5 s"
        );
        for s in [where_lost("x", &none, 0), where_lost("x", &one, 0)] {
            assert!(!s.contains("NaN") && !s.contains("inf"), "{s}");
        }
    }

    #[test]
    fn drops_are_signed_and_absent_from_an_empty_stage() {
        let c = counts([100, 50, 60, 0, 0, 0]);
        assert_eq!(drop_text(drop(&c, Stage::Viewers, Stage::Engaged)), "−50%");
        assert_eq!(drop_text(drop(&c, Stage::Engaged, Stage::Exposed)), "+20%");
        assert_eq!(drop_text(drop(&c, Stage::Tapped, Stage::Held)), "–");
        assert_eq!(drop_text(drop(&c, Stage::Exposed, Stage::Tapped)), "−100%");
    }
}
