//! What `livehub host watch` prints: one line per server message, with every character a
//! terminal would act on written out visibly, so a comment cannot forge lines or move the cursor.

use crate::protocol::{DealStatus, ServerMsg};

/// One line for a server message, for `watch`: control characters in what users wrote
/// (names, comments, titles, announcements) are escaped.
pub fn describe(m: &ServerMsg) -> String {
    escape_controls(&describe_raw(m)).into_owned()
}

fn describe_raw(m: &ServerMsg) -> String {
    match m {
        ServerMsg::Welcome {
            room,
            seq,
            viewers,
            likes,
            pinned,
            deals,
            ..
        } => format!(
            "welcome room={room} seq={seq} viewers={viewers} likes={likes} pinned={} deals={}",
            pinned.as_ref().map_or("-".to_owned(), |p| p.id.to_string()),
            deals.len()
        ),
        ServerMsg::Comment(c) => format!(
            "#{} comment {} {}({}): {}",
            c.seq, c.id, c.name, c.user, c.text
        ),
        ServerMsg::CommentDeleted { seq, id } => format!("#{seq} comment_deleted {id}"),
        ServerMsg::Pinned { seq, product } => format!(
            "#{seq} pinned {} \"{}\" {} {}",
            product.id, product.title, product.price_cents, product.currency
        ),
        ServerMsg::Unpinned { seq } => format!("#{seq} unpinned"),
        ServerMsg::Deal { seq, deal } => format!(
            "#{seq} deal {}{} {} {}/{} left, {} {}",
            deal.id,
            if deal.title.is_empty() {
                String::new()
            } else {
                format!(" \"{}\"", deal.title)
            },
            status_word(deal.status),
            deal.remaining,
            deal.stock,
            deal.price_cents,
            deal.currency
        ),
        ServerMsg::Announcement { seq, text } => format!("#{seq} announcement: {text}"),
        ServerMsg::Stream { seq, url } => {
            format!("#{seq} stream {}", url.as_deref().unwrap_or("(none)"))
        }
        ServerMsg::Skipped {
            seq,
            from,
            comments,
        } => format!("#{from}-{seq} {comments} comments not shown (this connection fell behind)"),
        ServerMsg::Stock { deal, remaining } => format!("stock {deal} {remaining} left"),
        ServerMsg::Viewers { count } => format!("viewers {count}"),
        ServerMsg::Likes { total } => format!("likes {total}"),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// A deal status as the protocol spells it.
fn status_word(s: DealStatus) -> &'static str {
    match s {
        DealStatus::Live => "live",
        DealStatus::SoldOut => "sold_out",
        DealStatus::Ended => "ended",
    }
}

/// `s` with every character a terminal would act on written out visibly: `\n`, `\r`, `\t`
/// and the other C0 and C1 controls and DEL as `\u{..}` (ESC is `\u{1b}`), and so are the
/// bidirectional overrides and isolates (U+202A to U+202E, U+2066 to U+2069), the direction
/// marks and the line and paragraph separators, which reorder or break what follows them.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{2028}' | '\u{2029}'
                | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_visibly() {
        assert_eq!(
            escape_controls("plain text, émoji 🧣"),
            "plain text, émoji 🧣"
        );
        assert!(matches!(
            escape_controls("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("hi\n#99 announcement: free\r\t!"),
            "hi\\n#99 announcement: free\\r\\t!"
        );
        assert_eq!(
            escape_controls("\u{1b}[2J\u{7}\u{0}"),
            "\\u{1b}[2J\\u{7}\\u{0}"
        );
        assert_eq!(
            escape_controls("a\u{7f}b\u{85}c\u{9b}d"),
            "a\\u{7f}b\\u{85}c\\u{9b}d"
        );
        for bidi in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{2028}',
        ] {
            let out = escape_controls(&format!("x{bidi}y")).into_owned();
            assert_eq!(out, format!("x\\u{{{:x}}}y", bidi as u32));
        }
    }

    #[test]
    fn watch_lines_escape_every_user_supplied_field() {
        let forged = "ok\n#2 announcement: \u{1b}[31mfree\u{202e}";
        let comment: ServerMsg = serde_json::from_value(serde_json::json!({
            "type": "comment", "seq": 1, "id": "c1", "user": "u1", "name": forged, "text": forged, "ts": 0
        }))
        .unwrap();
        let pinned: ServerMsg = serde_json::from_value(serde_json::json!({
            "type": "pinned", "seq": 1, "product": {"id": "p", "title": forged, "price_cents": 1, "currency": "USD"}
        }))
        .unwrap();
        let announcement: ServerMsg = serde_json::from_value(serde_json::json!({
            "type": "announcement", "seq": 1, "text": forged
        }))
        .unwrap();
        let other: ServerMsg = serde_json::from_value(serde_json::json!({
            "type": "error", "code": "bad_request", "message": forged
        }))
        .unwrap();
        let deal: ServerMsg = serde_json::from_value(serde_json::json!({
            "type": "deal", "seq": 1, "deal": {"id": "d1", "product_id": "p", "title": forged,
            "price_cents": 1999, "currency": "USD", "stock": 5, "remaining": 4,
            "per_user_limit": 1, "ends_at": 0, "status": "sold_out"}
        }))
        .unwrap();
        for m in [comment, pinned, announcement, deal] {
            let line = describe(&m);
            assert!(!line.chars().any(needs_escape), "{line:?}");
            assert!(
                line.contains("ok\\n#2 announcement: \\u{1b}[31mfree\\u{202e}"),
                "{line:?}"
            );
        }
        // Messages without a line of their own are printed as JSON, escaped the same way.
        let line = describe(&other);
        assert!(!line.chars().any(needs_escape), "{line:?}");
        assert!(line.contains("free\\u{202e}"), "{line:?}");
    }

    #[test]
    fn a_deal_line_names_its_product_and_spells_the_status_as_the_protocol_does() {
        let deal: ServerMsg = serde_json::from_value(serde_json::json!({
            "type": "deal", "seq": 2, "deal": {"id": "d1", "product_id": "scarf",
            "title": "Cozy scarf", "price_cents": 1999, "currency": "USD", "stock": 500,
            "remaining": 0, "per_user_limit": 2, "ends_at": 0, "status": "sold_out"}
        }))
        .unwrap();
        assert_eq!(
            describe(&deal),
            "#2 deal d1 \"Cozy scarf\" sold_out 0/500 left, 1999 USD"
        );
    }
}
