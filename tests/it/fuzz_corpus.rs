//! The fuzz corpora, replayed on the stable toolchain: every checked-in file of
//! `fuzz/corpus/client_frame/` and `fuzz/corpus/token/` goes through the same checks as the
//! `cargo fuzz` targets (`fuzz/checks.rs`), so a regression on any seed (or on a unit a fuzzing
//! run found and that was checked in) fails `cargo test` without nightly. See docs/fuzzing.md.
//!
//! The seed files themselves are written by the ignored test at the bottom:
//! `cargo test --test it -- --ignored fuzz_corpus::write_seed_corpus`.

#[path = "../../fuzz/checks.rs"]
mod checks;

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name)
}

/// Every file of a corpus directory, sorted, with its bytes.
fn files(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus(name);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                bytes,
            )
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 20,
        "{} holds {} files; the checked-in seed corpus has more",
        dir.display(),
        out.len()
    );
    out
}

/// Runs `check` on every file; panics naming every file that failed.
fn replay<T>(name: &str, check: impl Fn(&[u8]) -> T) -> Vec<T> {
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for (file, bytes) in files(name) {
        match catch_unwind(AssertUnwindSafe(|| check(&bytes))) {
            Ok(r) => results.push(r),
            Err(_) => failed.push(file),
        }
    }
    assert!(
        failed.is_empty(),
        "fuzz/corpus/{name}: the checks failed on {failed:?} (messages above); reproduce with \
         `cargo +nightly fuzz run {name} fuzz/corpus/{name}/FILE`"
    );
    results
}

#[test]
fn every_client_frame_seed_passes_the_checks() {
    let parsed = replay("client_frame", checks::client_frame);
    let kinds: BTreeSet<&str> = parsed.iter().flatten().map(|m| m.kind()).collect();
    let missing: Vec<&str> = checks::CLIENT_KINDS
        .iter()
        .copied()
        .filter(|k| !kinds.contains(k))
        .collect();
    assert!(missing.is_empty(), "no seed parses as {missing:?}");
    assert!(
        parsed.iter().any(Option::is_none),
        "no seed is refused by the parser"
    );
}

/// Issue 19's red-team finding, as checked in: one non-final text frame, then zero-length
/// non-final continuation frames (600 of them; the attack sent them without end). The reader
/// refuses the message at its 65th frame (`limits.max_fragments` = 64), having read no more, and
/// the hub answers 1008. A message of exactly 64 frames still passes.
#[test]
fn the_empty_continuation_flood_seed_is_refused_at_the_fragment_limit() {
    let limits = livehub::config::Config::defaults().limits;
    assert_eq!(limits.max_fragments, 64);
    let seed = |name: &str| {
        let bytes = std::fs::read(corpus("client_frame").join(name)).unwrap();
        assert_eq!(bytes[0], checks::WIRE, "{name} is not a wire seed");
        bytes
    };

    let flood = seed("seed-wire-empty-continuation-flood");
    let read = livehub::frame::read_client_bytes(&limits, &flood[1..]);
    assert!(read.messages.is_empty(), "{:?}", read.messages);
    assert_eq!(read.frames, 65, "frames read before the refusal");
    assert_eq!(read.refused_fragments(), Some(64), "{:?}", read.error);
    assert_eq!(read.close, Some(1008));

    let at_limit = seed("seed-wire-like-in-64-fragments");
    let read = livehub::frame::read_client_bytes(&limits, &at_limit[1..]);
    assert_eq!(read.messages.len(), 1, "{read:?}");
    assert_eq!(read.messages[0].1, 64);
    assert_eq!(
        read.messages[0].0.to_text().unwrap(),
        r#"{"type":"like","count":1}"#
    );
    assert_eq!(read.error.map(|e| e.to_string()), None);
}

#[test]
fn every_token_seed_passes_the_checks() {
    let verdicts = replay("token", checks::token);
    let strict: BTreeSet<&str> = verdicts.iter().flatten().map(|v| v[0]).collect();
    let lax: BTreeSet<&str> = verdicts.iter().flatten().map(|v| v[1]).collect();
    for want in ["ok", "invalid", "expired", "not_yet_valid", "missing_exp"] {
        assert!(
            strict.contains(want),
            "no token seed gets {want} with require_exp (got {strict:?})"
        );
    }
    assert!(
        lax.contains("ok") && !lax.contains("missing_exp"),
        "verdicts without require_exp: {lax:?}"
    );
}

/// Writes the seed files (`seed-*`) of both corpora. Run it after changing a seed:
/// `cargo test --test it -- --ignored fuzz_corpus::write_seed_corpus`.
#[test]
#[ignore = "writes fuzz/corpus/*/seed-*; run by hand"]
fn write_seed_corpus() {
    let write = |corpus_name: &str, name: &str, bytes: &[u8]| {
        let path = corpus(corpus_name).join(format!("seed-{name}"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    };
    for (name, frame) in client_frame_seeds() {
        write("client_frame", &name, frame.as_bytes());
    }
    write(
        "client_frame",
        "not-utf8",
        b"{\"type\":\"comment\",\"text\":\"\xff\xfe\"}",
    );
    for (name, wire) in wire_seeds() {
        write("client_frame", &name, &wire);
    }
    for (name, token) in token_seeds() {
        write("token", &name, token.as_bytes());
    }
    for (name, bytes) in claims_seeds() {
        write("token", &name, &bytes);
    }
}

fn client_frame_seeds() -> Vec<(String, String)> {
    let deal = |fields: &str| {
        format!(
            r#"{{"type":"deal_start","deal":{{"id":"d1","product_id":"p1",{fields}}},"request_id":"h2"}}"#
        )
    };
    let ok_deal = r#""price_cents":999,"stock":100,"per_user_limit":2,"duration_ms":60000"#;
    let seeds: Vec<(&str, String)> = vec![
        // One of each command, as docs/protocol.md shows them.
        ("comment", r#"{"type":"comment","text":"hello"}"#.into()),
        ("comment-request-id", r#"{"type":"comment","text":"  hi  ","request_id":"c-1"}"#.into()),
        ("like", r#"{"type":"like","count":3}"#.into()),
        ("reserve", r#"{"type":"reserve","request_id":"r1","deal":"d1","qty":1}"#.into()),
        ("checkout", r#"{"type":"checkout","request_id":"r2","reservation":"res-1"}"#.into()),
        ("cancel", r#"{"type":"cancel","request_id":"r3","reservation":"res-1"}"#.into()),
        (
            "pin",
            r#"{"type":"pin","product":{"id":"p1","title":"Mug","price_cents":1299,"currency":"USD","image_url":"https://example.com/m.png"},"request_id":"h1"}"#.into(),
        ),
        ("pin-defaults", r#"{"type":"pin","product":{"id":"p2","title":"Tea","price_cents":0}}"#.into()),
        ("unpin", r#"{"type":"unpin"}"#.into()),
        ("unpin-request-id", r#"{"type":"unpin","request_id":"h3"}"#.into()),
        ("deal-start", deal(ok_deal)),
        (
            "deal-start-max",
            deal(r#""price_cents":100000000,"currency":"JPY","stock":10000000,"per_user_limit":10000000,"duration_ms":604800000"#),
        ),
        (
            "deal-start-title",
            deal(
                r#""title":"Mug, blue","image_url":"https://example.com/m.png","price_cents":1,"stock":5,"per_user_limit":1,"duration_ms":1000"#,
            ),
        ),
        (
            "deal-title-blank",
            deal(r#""title":" ","price_cents":1,"stock":5,"per_user_limit":1,"duration_ms":1000"#),
        ),
        (
            "deal-image-control",
            deal(
                r#""image_url":"x\u0007","price_cents":1,"stock":5,"per_user_limit":1,"duration_ms":1000"#,
            ),
        ),
        ("deal-end", r#"{"type":"deal_end","deal":"d1","request_id":"h4"}"#.into()),
        ("delete-comment", r#"{"type":"delete_comment","id":"c17"}"#.into()),
        ("mute", r#"{"type":"mute","user":"u9","duration_ms":60000}"#.into()),
        ("announce", r#"{"type":"announce","text":"Flash deal in 1 minute!"}"#.into()),
        // Content limits (parse, then refused by validate).
        ("comment-blank", r#"{"type":"comment","text":"  \t\n "}"#.into()),
        ("comment-501", format!(r#"{{"type":"comment","text":"{}"}}"#, "a".repeat(501))),
        (
            "comment-unicode",
            r#"{"type":"comment","text":"h\u00e9llo \ud83d\ude00 \u0000 \u202e ✓ 👋","request_id":"u-1"}"#.into(),
        ),
        ("announce-blank", r#"{"type":"announce","text":""}"#.into()),
        ("like-zero", r#"{"type":"like","count":0}"#.into()),
        ("like-51", r#"{"type":"like","count":51}"#.into()),
        ("reserve-qty-zero", r#"{"type":"reserve","request_id":"r1","deal":"d1","qty":0}"#.into()),
        ("pin-currency-lower", r#"{"type":"pin","product":{"id":"p1","title":"Mug","price_cents":1,"currency":"usd"}}"#.into()),
        ("pin-price-over", r#"{"type":"pin","product":{"id":"p1","title":"Mug","price_cents":100000001}}"#.into()),
        ("pin-title-blank", r#"{"type":"pin","product":{"id":"p1","title":"   ","price_cents":1}}"#.into()),
        ("pin-image-control", r#"{"type":"pin","product":{"id":"p1","title":"Mug","price_cents":1,"image_url":"http://x/\n"}}"#.into()),
        ("deal-limit-over-stock", deal(r#""price_cents":1,"stock":2,"per_user_limit":3,"duration_ms":1"#)),
        ("deal-zero-duration", deal(r#""price_cents":1,"stock":2,"per_user_limit":1,"duration_ms":0"#)),
        ("deal-stock-over", deal(r#""price_cents":1,"stock":10000001,"per_user_limit":1,"duration_ms":1"#)),
        ("mute-31-days", r#"{"type":"mute","user":"u9","duration_ms":2592000001}"#.into()),
        // Wrong numbers and types (parse errors).
        ("like-negative", r#"{"type":"like","count":-1}"#.into()),
        ("like-float", r#"{"type":"like","count":1.5}"#.into()),
        ("like-huge", r#"{"type":"like","count":1e40}"#.into()),
        ("like-string", r#"{"type":"like","count":"3"}"#.into()),
        ("reserve-qty-negative", r#"{"type":"reserve","request_id":"r1","deal":"d1","qty":-2}"#.into()),
        ("reserve-qty-u32-overflow", r#"{"type":"reserve","request_id":"r1","deal":"d1","qty":4294967296}"#.into()),
        ("reserve-qty-string", r#"{"type":"reserve","request_id":"r1","deal":"d1","qty":"x"}"#.into()),
        ("reserve-no-request-id", r#"{"type":"reserve","deal":"d1","qty":1}"#.into()),
        ("reserve-bad-request-id", r#"{"type":"reserve","request_id":"r 1","deal":"d1","qty":1}"#.into()),
        (
            "reserve-long-request-id",
            format!(r#"{{"type":"reserve","request_id":"{}","deal":"d1","qty":1}}"#, "r".repeat(65)),
        ),
        ("reserve-request-id-number", r#"{"type":"reserve","request_id":5,"deal":"d1","qty":1}"#.into()),
        ("deal-price-u64-overflow", deal(r#""price_cents":18446744073709551616,"stock":1,"per_user_limit":1,"duration_ms":1"#)),
        ("mute-negative", r#"{"type":"mute","user":"u9","duration_ms":-60000}"#.into()),
        ("checkout-missing-reservation", r#"{"type":"checkout","request_id":"r2"}"#.into()),
        ("delete-comment-id-null", r#"{"type":"delete_comment","id":null,"request_id":"x"}"#.into()),
        // Not a command at all.
        ("unknown-type", r#"{"type":"buy","qty":1,"request_id":"b1"}"#.into()),
        ("type-capitalised", r#"{"type":"Comment","text":"x"}"#.into()),
        ("type-number", r#"{"type":7}"#.into()),
        ("no-type", r#"{"text":"hi","request_id":"n0"}"#.into()),
        ("duplicate-type", r#"{"type":"like","type":"comment","text":"x","count":1}"#.into()),
        ("duplicate-field", r#"{"type":"comment","text":"a","text":"b"}"#.into()),
        ("extra-fields", r#"{"type":"like","count":1,"extra":{"x":[null,true,1e-9]}}"#.into()),
        ("nested-junk", r#"{"type":"comment","text":{"a":[[[[{}]]]]},"request_id":"n1"}"#.into()),
        ("deep-nesting", format!("{}{}", "[".repeat(200), "]".repeat(200))),
        ("array", "[1,2,3]".into()),
        ("string", r#""comment""#.into()),
        ("null", "null".into()),
        ("empty", String::new()),
        ("truncated", r#"{"type":"comment","text":"hi"#.into()),
        ("lone-surrogate", r#"{"type":"comment","text":"\ud800"}"#.into()),
        ("bom", "\u{feff}{\"type\":\"unpin\"}".into()),
        ("trailing-junk", r#"{"type":"unpin"} {"type":"unpin"}"#.into()),
    ];
    seeds.into_iter().map(|(n, s)| (n.to_owned(), s)).collect()
}

/// A client's frame, masked (as a client must send it): `first` is the FIN bit and opcode.
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![first];
    match payload.len() {
        n @ 0..=125 => frame.push(0x80 | n as u8),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
        }
    }
    frame.extend_from_slice(&KEY);
    frame.extend(payload.iter().zip(KEY.iter().cycle()).map(|(b, k)| b ^ k));
    frame
}

/// Seeds of `client_frame`'s wire mode (a leading `checks::WIRE` byte, then frames), each under
/// libFuzzer's default `-max_len` of 4,096 bytes.
fn wire_seeds() -> Vec<(String, Vec<u8>)> {
    const TEXT: u8 = 0x01;
    const CONTINUE: u8 = 0x00;
    const FIN: u8 = 0x80;
    const PING: u8 = 0x89;
    const CLOSE: u8 = 0x88;
    let wire = |frames: Vec<Vec<u8>>| [vec![checks::WIRE], frames.concat()].concat();

    // Issue 19: one non-final text frame, then empty non-final continuation frames.
    let mut flood = vec![masked(TEXT, b"{")];
    flood.extend(std::iter::repeat_n(masked(CONTINUE, b""), 600));

    // A message of exactly max_fragments (64) frames: the text, 62 empty frames, an empty final.
    let mut at_limit = vec![masked(TEXT, br#"{"type":"like","count":1}"#)];
    at_limit.extend(std::iter::repeat_n(masked(CONTINUE, b""), 62));
    at_limit.push(masked(FIN | CONTINUE, b""));

    let fragmented = vec![
        masked(TEXT, br#"{"type":"comment","#),
        masked(CONTINUE, br#""text":"hel"#),
        masked(PING, b"p"),
        masked(CONTINUE, b""),
        masked(FIN | CONTINUE, br#"lo","request_id":"w1"}"#),
        masked(FIN | TEXT, br#"{"type":"unpin"}"#),
        masked(CLOSE, &1000u16.to_be_bytes()),
    ];
    vec![
        ("wire-empty-continuation-flood".to_owned(), wire(flood)),
        ("wire-like-in-64-fragments".to_owned(), wire(at_limit)),
        ("wire-fragmented-comment".to_owned(), wire(fragmented)),
    ]
}

/// Far in the future (2100-01-01), so these seeds stay valid.
const LATER: u64 = 4_102_444_800;

fn sign_with(alg: jsonwebtoken::Algorithm, secret: &str, claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn sign(claims: serde_json::Value) -> String {
    sign_with(jsonwebtoken::Algorithm::HS256, checks::SECRET, claims)
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The same token in standard base64 (`+`, `/`, `=` padding) instead of JWT's URL-safe alphabet.
fn standard_base64(token: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    token
        .split('.')
        .map(|part| STANDARD.encode(URL_SAFE_NO_PAD.decode(part).unwrap()))
        .collect::<Vec<_>>()
        .join(".")
}

fn token_seeds() -> Vec<(String, String)> {
    use livehub::auth::{Authenticator, Claims};
    use livehub::protocol::Role;
    use serde_json::json;

    let minter = Authenticator::new(checks::SECRET, true);
    let mint = |sub: &str, name: Option<&str>, role, room: &str, exp| {
        minter
            .mint(&Claims {
                sub: sub.into(),
                name: name.map(str::to_owned),
                role,
                room: room.into(),
                exp,
                src: None,
                aff: None,
            })
            .unwrap()
    };
    let viewer = mint("u1", Some("Ann"), Role::Viewer, "r1", Some(LATER));
    let (head, rest) = viewer.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let none_header = b64(br#"{"alg":"none","typ":"JWT"}"#);

    let seeds: Vec<(&str, String)> = vec![
        ("viewer", viewer.clone()),
        (
            "host",
            mint("host-1", Some("Host Ann"), Role::Host, "r1", Some(LATER)),
        ),
        (
            "admin-any-room",
            mint("ops", None, Role::Admin, "*", Some(LATER)),
        ),
        ("no-exp", mint("u2", None, Role::Viewer, "r1", None)),
        (
            "expired",
            mint("u3", None, Role::Viewer, "r1", Some(1_000_000_000)),
        ),
        (
            "exp-zero",
            sign(json!({"sub": "u3", "room": "r1", "exp": 0})),
        ),
        (
            "nbf-future",
            sign(json!({"sub": "u4", "room": "r1", "exp": LATER, "nbf": LATER - 60})),
        ),
        (
            "name-long",
            mint(
                "u5",
                Some("é".repeat(100).as_str()),
                Role::Viewer,
                "r1",
                Some(LATER),
            ),
        ),
        (
            "name-control",
            mint(
                "u6",
                Some("\u{7}Bob\u{0}\n\u{1b}[31m"),
                Role::Viewer,
                "r1",
                Some(LATER),
            ),
        ),
        (
            "name-blank",
            mint("u7", Some(" \t\u{0} "), Role::Viewer, "r1", Some(LATER)),
        ),
        (
            "name-unicode",
            mint(
                "u8",
                Some("Zoë 🛍️ \u{202e}abc"),
                Role::Host,
                "r-9",
                Some(LATER),
            ),
        ),
        (
            "name-number",
            sign(json!({"sub": "u1", "name": 7, "room": "r1", "exp": LATER})),
        ),
        (
            "viewer-any-room-forged",
            sign(json!({"sub": "u1", "role": "viewer", "room": "*", "exp": LATER})),
        ),
        (
            "host-any-room-forged",
            sign(json!({"sub": "u1", "role": "host", "room": "*"})),
        ),
        (
            "sub-space",
            sign(json!({"sub": "a b", "room": "r1", "exp": LATER})),
        ),
        (
            "sub-empty",
            sign(json!({"sub": "", "room": "r1", "exp": LATER})),
        ),
        (
            "sub-65",
            sign(json!({"sub": "u".repeat(65), "room": "r1", "exp": LATER})),
        ),
        ("sub-missing", sign(json!({"room": "r1", "exp": LATER}))),
        (
            "sub-number",
            sign(json!({"sub": 5, "room": "r1", "exp": LATER})),
        ),
        ("room-missing", sign(json!({"sub": "u1", "exp": LATER}))),
        (
            "room-bad",
            sign(json!({"sub": "u1", "room": "../r1", "exp": LATER})),
        ),
        (
            "role-unknown",
            sign(json!({"sub": "u1", "room": "r1", "role": "god", "exp": LATER})),
        ),
        (
            "exp-string",
            sign(json!({"sub": "u1", "room": "r1", "exp": "tomorrow"})),
        ),
        (
            "exp-negative",
            sign(json!({"sub": "u1", "room": "r1", "exp": -1})),
        ),
        (
            "exp-float",
            sign(json!({"sub": "u1", "room": "r1", "exp": 4.1e9})),
        ),
        (
            "exp-huge",
            sign(json!({"sub": "u1", "room": "r1", "exp": u64::MAX})),
        ),
        ("claims-array", sign(json!(["u1", "r1"]))),
        (
            "other-secret",
            sign_with(
                jsonwebtoken::Algorithm::HS256,
                "livehub-dev-secret-change-me",
                json!({"sub": "u1", "room": "r1", "exp": LATER}),
            ),
        ),
        (
            "hs512",
            sign_with(
                jsonwebtoken::Algorithm::HS512,
                checks::SECRET,
                json!({"sub": "u1", "room": "r1", "exp": LATER}),
            ),
        ),
        ("alg-none", format!("{none_header}.{payload}.")),
        (
            "alg-none-signed",
            format!("{none_header}.{payload}.{signature}"),
        ),
        (
            "header-garbage",
            format!("{}.{payload}.{signature}", b64(b"{not json")),
        ),
        (
            "payload-garbage",
            format!("{head}.{}.{signature}", b64(b"\x00\xff garbage")),
        ),
        (
            "signature-cut",
            format!("{head}.{payload}.{}", &signature[..10]),
        ),
        ("signature-empty", format!("{head}.{payload}.")),
        ("padded-base64", format!("{head}==.{payload}.{signature}")),
        ("standard-base64", standard_base64(&viewer)),
        ("bearer-prefix", format!("Bearer {viewer}")),
        ("trailing-newline", format!("{viewer}\n")),
        ("four-parts", format!("{viewer}.{signature}")),
        ("two-parts", format!("{head}.{payload}")),
        ("dots", "...".into()),
        ("not-a-jwt", "not.a.jwt".into()),
        ("empty", String::new()),
        ("unicode", "é.€.🙂".into()),
    ];
    seeds.into_iter().map(|(n, s)| (n.to_owned(), s)).collect()
}

/// Seeds for the structured half of `token` (`claims_from` in fuzz/checks.rs): role byte, sub
/// (kind, length, bytes), room selector (0 = "*") and room, name selector and name, exp selector
/// (and eight bytes of exp).
fn claims_seeds() -> Vec<(String, Vec<u8>)> {
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        (
            "claims-host",
            [b"\x01\x01\x04user\x01\x01\x02r1\x01\x03Ann\x01".as_slice()].concat(),
        ),
        ("claims-admin-any", b"\x02\x01\x03ops\x00\x00\x02".to_vec()),
        (
            "claims-viewer-any",
            b"\x00\x01\x02u1\x00\x01\x00\x01".to_vec(),
        ),
        (
            "claims-raw-sub",
            b"\x01\x00\x04a b!\x01\x01\x02r1\x00\x00".to_vec(),
        ),
        (
            "claims-exp-u64",
            b"\x00\x01\x02u1\x01\x01\x02r1\x00\x03\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
        ),
    ];
    seeds.into_iter().map(|(n, b)| (n.to_owned(), b)).collect()
}
