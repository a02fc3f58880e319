//! Property tests: the client-frame parser never panics on arbitrary input, and every command
//! survives a round trip through JSON.

use livehub::protocol::{ClientMsg, ContentLimits, parse_client};
use proptest::prelude::*;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("comment"),
            Just("like"),
            Just("reserve"),
            Just("checkout"),
            Just("cancel"),
            Just("pin"),
            Just("unpin"),
            Just("deal_start"),
            Just("deal_end"),
            Just("delete_comment"),
            Just("mute"),
            Just("announce")
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_string()),
                    Just("text".to_string()),
                    Just("qty".to_string()),
                    Just("deal".to_string()),
                    Just("request_id".to_string()),
                    Just("product".to_string()),
                    Just("count".to_string()),
                    "[a-z_]{1,10}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

const LIMITS: ContentLimits = ContentLimits {
    comment_max_chars: 500,
    announce_max_chars: 2000,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_json_never_panics_the_parser(v in json_value()) {
        let text = v.to_string();
        if let Ok(cmd) = parse_client(&text) {
            let _ = cmd.validate(&LIMITS);
            // What parses re-serializes and parses to the same command.
            let again = parse_client(&serde_json::to_string(&cmd).unwrap()).unwrap();
            prop_assert_eq!(again, cmd);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(s in ".{0,200}") {
        let _ = parse_client(&s);
    }

    #[test]
    fn a_reserve_frame_parses_exactly_when_its_fields_are_valid(
        rid in "[A-Za-z0-9_-]{0,70}", deal in "[A-Za-z0-9_ -]{0,70}", qty in any::<i64>()
    ) {
        let frame = serde_json::json!({"type": "reserve", "request_id": rid, "deal": deal, "qty": qty}).to_string();
        let ok_id = |s: &str| livehub::protocol::is_valid_id(s);
        let valid = ok_id(&rid) && ok_id(&deal) && (0..=i64::from(u32::MAX)).contains(&qty);
        match parse_client(&frame) {
            Ok(ClientMsg::Reserve { qty: q, .. }) => { prop_assert!(valid); prop_assert_eq!(i64::from(q), qty); }
            Ok(other) => prop_assert!(false, "parsed as {:?}", other),
            Err(_) => prop_assert!(!valid),
        }
    }
}
