//! What the fuzz targets check, in one place: `fuzz/fuzz_targets/*.rs` call these on every input
//! libFuzzer makes, and `tests/fuzz_corpus.rs` calls them on every checked-in corpus file with the
//! stable toolchain. A broken invariant is a panic (libFuzzer saves the input as a crash). See
//! docs/fuzzing.md.
//!
//! Dependencies: `livehub`, `serde_json` and `jsonwebtoken` only (all three are available to the
//! main crate's integration tests and listed in fuzz/Cargo.toml).

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use livehub::auth::{
    ANY_ROOM, AuthError, Authenticator, Claims, Identity, MAX_NAME_CHARS, RoomScope,
};
use livehub::config::{Config, LimitsConfig};
use livehub::error::{ErrorCode, HubError};
use livehub::protocol::{
    ClientMsg, ContentLimits, MAX_BPS, MAX_DEAL_DURATION_MS, MAX_DEAL_STOCK, MAX_IMAGE_URL_BYTES,
    MAX_LIKES_PER_MESSAGE, MAX_MUTE_MS, MAX_PRICE_CENTS, MAX_TITLE_CHARS, MAX_TOTAL_CENTS, Role,
    is_bidi_control, is_invisible, is_valid_id, parse_client,
};

/// The secret the `token` target signs and verifies with; the token seeds in
/// `fuzz/corpus/token/` were minted with it (see `tests/fuzz_corpus.rs`, `write_seed_corpus`).
pub const SECRET: &str = "livehub-fuzz-secret-not-for-deployment";

/// Every `type` a client may send (docs/protocol.md, "Client to server").
pub const CLIENT_KINDS: [&str; 12] = [
    "comment",
    "like",
    "reserve",
    "checkout",
    "cancel",
    "pin",
    "unpin",
    "deal_start",
    "deal_end",
    "delete_comment",
    "mute",
    "announce",
];

/// The host commands among them.
pub const HOST_KINDS: [&str; 7] = [
    "pin",
    "unpin",
    "deal_start",
    "deal_end",
    "delete_comment",
    "mute",
    "announce",
];

/// The only messages a refused token may show a client.
pub const TOKEN_REFUSALS: [&str; 5] = [
    "missing token",
    "invalid token",
    "token expired",
    "token not yet valid",
    "token must carry exp",
];

struct Frames {
    limits: ContentLimits,
    max_frame_bytes: usize,
    /// All of `[limits]`, for the WebSocket reader.
    all: LimitsConfig,
}

/// The content limits and frame size of the compiled-in default configuration.
fn frames() -> &'static Frames {
    static FRAMES: OnceLock<Frames> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let l = Config::defaults().limits;
        Frames {
            limits: ContentLimits {
                comment_max_chars: l.comment_max_chars,
                announce_max_chars: l.announce_max_chars,
            },
            max_frame_bytes: l.max_frame_bytes,
            all: l,
        }
    })
}

/// The first byte of a `client_frame` input that is not one frame's payload but the bytes a
/// client writes on an open connection: (masked) frames, fragmented messages, control frames.
pub const WIRE: u8 = 0x00;

/// One client text frame (see [`text_frame`]), or, after a leading [`WIRE`] byte, a client's
/// bytes on an open connection (see [`client_wire`]). Returns the command when the frame (the
/// first text message, on the wire) parsed: the corpus test counts the kinds its seeds reach.
pub fn client_frame(data: &[u8]) -> Option<ClientMsg> {
    match data.split_first() {
        Some((&WIRE, wire)) => client_wire(wire),
        _ => text_frame(data),
    }
}

/// A client's bytes after the upgrade, read by the hub's WebSocket reader with the default
/// configuration's limits (`frame::read_client_bytes`, the vendored tungstenite):
///
/// - every message is at most `limits.max_frame_bytes` long; each text message passes
///   [`text_frame`];
/// - the reader never reads more than `max_fragments` + 1 frames before it hands over a message
///   or ends (a message's fragments, then a control frame; or the frame over the limit): empty
///   continuation frames count like any other (issue 19), and every frame read is counted once;
/// - a message over the fragment limit ends reading, answered with close 1008 like a size limit;
///   any other error with 1000 or 1008.
pub fn client_wire(wire: &[u8]) -> Option<ClientMsg> {
    let f = frames();
    let max = f.all.max_fragments as u64;
    let read = livehub::frame::read_client_bytes(&f.all, wire);
    let mut first = None;
    let mut in_messages = 0u64;
    for (msg, frames) in &read.messages {
        assert!(
            (1..=max + 1).contains(frames),
            "{frames} frames read for one message (limit {max}): {msg:?}"
        );
        in_messages += frames;
        assert!(
            msg.len() <= f.max_frame_bytes,
            "a message of {} bytes passed",
            msg.len()
        );
        if msg.is_text() {
            let text = msg.to_text().expect("a text message is text");
            let parsed = text_frame(text.as_bytes());
            first = first.or(parsed);
        }
    }
    assert!(
        read.frames >= in_messages,
        "{} frames read, {in_messages} in messages",
        read.frames
    );
    let unfinished = read.frames - in_messages;
    assert!(
        unfinished <= max + 1,
        "{unfinished} frames read without a message (limit {max}): {:?}",
        read.error
    );
    if read.refused_fragments().is_some() {
        assert!(unfinished >= 1, "refused without reading a frame");
    }
    match (&read.error, read.close) {
        (None, None) | (Some(_), Some(1000 | 1008)) => {}
        (error, close) => panic!("reading ended with {error:?}, answered with close {close:?}"),
    }
    if let Some(limit) = read.refused_fragments() {
        assert_eq!(limit as u64, max, "{:?}", read.error);
        assert_eq!(read.close, Some(1008), "{:?}", read.error);
    }
    first
}

/// One client text frame: parse, validate, the accessors, and a JSON round trip. Returns the
/// command when the frame parsed.
pub fn text_frame(data: &[u8]) -> Option<ClientMsg> {
    let f = frames();
    // The hub closes the connection (1008) on a larger frame before parsing it, and a text
    // frame is UTF-8 (the WebSocket layer refuses anything else).
    if data.len() > f.max_frame_bytes {
        return None;
    }
    let text = std::str::from_utf8(data).ok()?;
    let msg = match parse_client(text) {
        Ok(msg) => msg,
        Err(e) => {
            assert!(!e.message.is_empty(), "empty parse error for {text:?}");
            assert!(
                e.message.starts_with("invalid JSON: ")
                    || e.message.starts_with("invalid command: "),
                "parse error {:?} for {text:?}",
                e.message
            );
            if let Some(id) = &e.request_id {
                assert!(
                    is_valid_id(id.as_str()),
                    "echoed request_id {id:?} is not an id"
                );
            }
            return None;
        }
    };

    let kind = msg.kind();
    assert!(CLIENT_KINDS.contains(&kind), "unknown kind {kind:?}");
    assert_eq!(
        msg.is_host_command(),
        HOST_KINDS.contains(&kind),
        "is_host_command() of {kind}"
    );
    if let Some(id) = msg.request_id() {
        assert!(is_valid_id(id.as_str()), "request_id {id:?} is not an id");
    }
    if matches!(kind, "reserve" | "checkout" | "cancel") {
        assert!(msg.request_id().is_some(), "{kind} without a request_id");
    }
    // What parsed is one JSON object whose `type` is the kind.
    let value: serde_json::Value =
        serde_json::from_str(text).expect("a frame that parsed as a command is JSON");
    assert_eq!(
        value.get("type").and_then(serde_json::Value::as_str),
        Some(kind),
        "type tag of {text:?}"
    );

    match msg.validate(&f.limits) {
        Ok(()) => check_valid_command(&msg, &f.limits),
        Err(e) => check_refusal(&e, ErrorCode::BadRequest),
    }

    // The command's own JSON (what `livehub host` and the load tester send) parses back to it.
    let json = serde_json::to_string(&msg).expect("a command serializes");
    match parse_client(&json) {
        Ok(back) => assert_eq!(back, msg, "round trip through {json}"),
        Err(e) => panic!(
            "the command's own JSON {json} does not parse: {}",
            e.message
        ),
    }
    Some(msg)
}

fn check_refusal(e: &HubError, code: ErrorCode) {
    assert_eq!(e.code(), code, "{e:?}");
    assert!(!e.to_string().is_empty(), "{e:?} has an empty message");
}

fn check_text(field: &str, text: &str, max: usize) {
    let n = text.trim().chars().count();
    assert!(
        (1..=max).contains(&n),
        "{field} of {n} characters passed (limit {max})"
    );
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "{field} with a control character passed: {text:?}"
    );
    assert!(
        text.chars().any(|c| !is_invisible(c)),
        "{field} with nothing visible passed: {text:?}"
    );
}

fn check_currency(c: &str) {
    assert!(
        c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()),
        "currency {c:?} passed"
    );
}

fn check_title(title: &str) {
    let n = title.trim().chars().count();
    assert!(
        (1..=MAX_TITLE_CHARS).contains(&n),
        "title of {n} characters passed"
    );
    assert!(
        !title.chars().any(char::is_control) && title.chars().any(|c| !is_invisible(c)),
        "title with a control character or nothing visible passed: {title:?}"
    );
}

fn check_image_url(url: Option<&str>) {
    if let Some(url) = url {
        assert!(
            url.len() <= MAX_IMAGE_URL_BYTES && !url.chars().any(char::is_control),
            "image_url of {} bytes passed: {url:?}",
            url.len()
        );
        let lower = url.to_ascii_lowercase();
        assert!(
            lower.starts_with("https://") || lower.starts_with("http://") || url.starts_with('/'),
            "image_url that is not http(s) or a path passed: {url:?}"
        );
    }
}

/// What `validate` promises about a command it passed.
fn check_valid_command(msg: &ClientMsg, limits: &ContentLimits) {
    match msg {
        ClientMsg::Comment { text, .. } => check_text("comment", text, limits.comment_max_chars),
        ClientMsg::Announce { text, .. } => check_text("announce", text, limits.announce_max_chars),
        ClientMsg::Like { count, .. } => {
            assert!(
                (1..=MAX_LIKES_PER_MESSAGE).contains(count),
                "like.count {count} passed"
            );
        }
        ClientMsg::Reserve { qty, .. } => assert!(*qty >= 1, "reserve.qty {qty} passed"),
        ClientMsg::Mute { duration_ms, .. } => {
            assert!(
                (1..=MAX_MUTE_MS).contains(duration_ms),
                "mute {duration_ms} ms passed"
            );
        }
        ClientMsg::Pin { product, .. } => {
            check_title(&product.title);
            assert!(
                product.price_cents <= MAX_PRICE_CENTS,
                "price {} passed",
                product.price_cents
            );
            check_currency(&product.currency);
            check_image_url(product.image_url.as_deref());
        }
        ClientMsg::DealStart { deal, .. } => {
            if let Some(title) = &deal.title {
                check_title(title);
            }
            check_image_url(deal.image_url.as_deref());
            assert!(
                deal.price_cents <= MAX_PRICE_CENTS,
                "price {} passed",
                deal.price_cents
            );
            assert!(
                (1..=MAX_DEAL_STOCK).contains(&deal.stock),
                "stock {} passed",
                deal.stock
            );
            assert!(
                (1..=deal.stock).contains(&deal.per_user_limit),
                "per_user_limit {} of stock {} passed",
                deal.per_user_limit,
                deal.stock
            );
            assert!(
                (1..=MAX_DEAL_DURATION_MS).contains(&deal.duration_ms),
                "duration {} ms passed",
                deal.duration_ms
            );
            check_currency(&deal.currency);
            assert!(
                deal.commission_bps + deal.affiliate_bps <= MAX_BPS,
                "rates paying out more than an order passed: {deal:?}"
            );
            // Every order total stays within MAX_TOTAL_CENTS (< 2^53, exact as a double in the
            // inventory's Lua scripts and in JavaScript clients).
            let total = deal.price_cents.checked_mul(u64::from(deal.stock));
            assert!(
                total.is_some_and(|t| t <= MAX_TOTAL_CENTS),
                "price x stock overflows: {deal:?}"
            );
        }
        ClientMsg::SetStream { url, .. } => check_image_url(url.as_deref()),
        ClientMsg::AuctionStart { auction: a, .. } => {
            if let Some(title) = &a.title {
                check_title(title);
            }
            check_image_url(a.image_url.as_deref());
            check_currency(&a.currency);
            for cents in [a.start_cents, a.increment_cents] {
                assert!(
                    (1..=MAX_PRICE_CENTS).contains(&cents),
                    "auction price {cents} passed"
                );
            }
            assert!(
                (5_000..=3_600_000).contains(&a.duration_ms) && a.extend_ms <= 60_000,
                "auction timings passed: {a:?}"
            );
            assert!(
                a.commission_bps + a.affiliate_bps <= MAX_BPS,
                "auction rates paying out more than the price passed: {a:?}"
            );
        }
        ClientMsg::Checkout { .. }
        | ClientMsg::Bid { .. }
        | ClientMsg::AuctionEnd { .. }
        | ClientMsg::Cancel { .. }
        | ClientMsg::Unpin { .. }
        | ClientMsg::DealEnd { .. }
        | ClientMsg::DeleteComment { .. }
        | ClientMsg::Unmute { .. } => {}
    }
}

struct Auth {
    /// `require_exp = true`, as in production configuration.
    strict: Authenticator,
    /// `require_exp = false`, as in the development default.
    lax: Authenticator,
}

fn auth() -> &'static Auth {
    static AUTH: OnceLock<Auth> = OnceLock::new();
    AUTH.get_or_init(|| Auth {
        strict: Authenticator::new(SECRET, true),
        lax: Authenticator::new(SECRET, false),
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// A verdict's name: `ok`, or the refusal.
pub fn verdict_name(r: &Result<Identity, AuthError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(AuthError::Missing) => "missing",
        Err(AuthError::Invalid(_)) => "invalid",
        Err(AuthError::Expired) => "expired",
        Err(AuthError::NotYetValid) => "not_yet_valid",
        Err(AuthError::MissingExp) => "missing_exp",
        Err(AuthError::WrongRoom(_)) => "wrong_room",
        Err(AuthError::WrongRole(_)) => "wrong_role",
        Err(AuthError::AnyRoomNeedsAdmin) => "any_room_needs_admin",
    }
}

/// What holds for any answer of `verify`, whatever the token.
fn check_verdict(r: &Result<Identity, AuthError>, token: &str) {
    match r {
        Ok(id) => {
            assert!(
                is_valid_id(id.user.as_str()),
                "user {:?} from {token:?}",
                id.user
            );
            assert!(!id.anonymous, "a verified token is anonymous: {token:?}");
            match &id.scope {
                RoomScope::Any => {
                    assert_eq!(id.role, Role::Admin, "room \"*\" on a non-admin: {token:?}");
                }
                RoomScope::One(room) => assert!(is_valid_id(room.as_str()), "room {room:?}"),
            }
            assert!(!id.name.is_empty(), "empty name from {token:?}");
            assert!(
                id.name.chars().count() <= MAX_NAME_CHARS,
                "name of {} characters from {token:?}",
                id.name.chars().count()
            );
            assert!(
                !id.name
                    .chars()
                    .any(|c| c.is_control() || is_bidi_control(c)),
                "control or bidi control character in name {:?} from {token:?}",
                id.name
            );
            assert!(
                id.name.chars().any(|c| !is_invisible(c)),
                "nothing visible in name {:?} from {token:?}",
                id.name
            );
        }
        Err(e) => {
            assert!(
                matches!(
                    e,
                    AuthError::Invalid(_)
                        | AuthError::Expired
                        | AuthError::NotYetValid
                        | AuthError::MissingExp
                ),
                "verify answered {e:?} for {token:?}"
            );
            let message = e.to_string();
            assert!(
                TOKEN_REFUSALS.contains(&message.as_str()),
                "refusal {message:?} for {token:?}"
            );
            let hub = HubError::from(clone_refusal(e));
            check_refusal(&hub, ErrorCode::Unauthorized);
            assert_eq!(hub.to_string(), message);
        }
    }
}

fn clone_refusal(e: &AuthError) -> AuthError {
    match e {
        AuthError::Missing => AuthError::Missing,
        AuthError::Invalid(s) => AuthError::Invalid(s.clone()),
        AuthError::Expired => AuthError::Expired,
        AuthError::NotYetValid => AuthError::NotYetValid,
        AuthError::MissingExp => AuthError::MissingExp,
        AuthError::WrongRoom(s) => AuthError::WrongRoom(s.clone()),
        AuthError::WrongRole(s) => AuthError::WrongRole(s.clone()),
        AuthError::AnyRoomNeedsAdmin => AuthError::AnyRoomNeedsAdmin,
    }
}

fn same_identity(a: &Identity, b: &Identity) -> bool {
    a.user == b.user
        && a.name == b.name
        && a.role == b.role
        && a.scope == b.scope
        && a.anonymous == b.anonymous
}

/// One token: the bytes as a token string (when UTF-8), verified with and without
/// `require_exp`; then the same bytes read as claims, minted and verified. Returns the two
/// verdicts of the first half (`[strict, lax]`) for the corpus test.
pub fn token(data: &[u8]) -> Option<[&'static str; 2]> {
    let verdicts = std::str::from_utf8(data).ok().map(raw_token);
    claims_round_trip(data);
    verdicts
}

fn raw_token(token: &str) -> [&'static str; 2] {
    let a = auth();
    let strict = a.strict.verify(token);
    let lax = a.lax.verify(token);
    check_verdict(&strict, token);
    check_verdict(&lax, token);
    // require_exp only adds a refusal: missing_exp where the lax verifier answers anything.
    match (&strict, &lax) {
        (Ok(s), Ok(l)) => assert!(same_identity(s, l), "{s:?} vs {l:?} for {token:?}"),
        (Ok(_), Err(e)) => panic!("accepted only with require_exp (lax: {e:?}): {token:?}"),
        (Err(AuthError::MissingExp), _) => {}
        (Err(s), l) => assert_eq!(
            verdict_name(&strict),
            verdict_name(l),
            "strict {s:?} vs lax {l:?} for {token:?}"
        ),
    }
    [verdict_name(&strict), verdict_name(&lax)]
}

/// Reads claims off the fuzzer's bytes (past the end, every byte is 0).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| acc << 8 | u64::from(self.byte()))
    }

    /// Mostly ids of 0 to 71 characters of the id charset (so both valid and too long or empty
    /// ones), else any text.
    fn id_like(&mut self) -> String {
        const CHARSET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
        let kind = self.byte();
        let len = usize::from(self.byte()) % 72;
        let raw = self.take(len);
        if !kind.is_multiple_of(4) {
            raw.iter()
                .map(|b| char::from(CHARSET[usize::from(b % 64)]))
                .collect()
        } else {
            String::from_utf8_lossy(raw).into_owned()
        }
    }

    fn text(&mut self) -> String {
        let len = usize::from(self.byte());
        String::from_utf8_lossy(self.take(len)).into_owned()
    }
}

fn claims_from(data: &[u8], now: u64) -> Claims {
    let mut r = Reader(data);
    let role = [Role::Viewer, Role::Host, Role::Admin][usize::from(r.byte() % 3)];
    let sub = r.id_like();
    let room = if r.byte() % 4 == 0 {
        ANY_ROOM.to_owned()
    } else {
        r.id_like()
    };
    let name = match r.byte() % 3 {
        0 => None,
        _ => Some(r.text()),
    };
    let exp = match r.byte() % 4 {
        0 => None,
        1 => Some(now + 3600),
        2 => Some(now - 3600),
        _ => Some(r.u64()),
    };
    Claims {
        sub,
        name,
        role,
        room,
        exp,
        src: None,
        aff: None,
    }
}

/// A name that `verify` must keep exactly as it is.
fn is_clean_name(n: &str) -> bool {
    n.chars().any(|c| !is_invisible(c))
        && n.trim() == n
        && n.chars().count() <= MAX_NAME_CHARS
        && !n.chars().any(|c| c.is_control() || is_bidi_control(c))
}

/// The verdict well-formed claims must get: `None` when it depends on the clock (an `exp`
/// within a minute of now).
fn expected_verdict(c: &Claims, require_exp: bool, now: u64) -> Option<&'static str> {
    match c.exp {
        None if require_exp => return Some("missing_exp"),
        None => {}
        Some(exp) if exp.saturating_add(60) < now => return Some("expired"),
        Some(exp) if exp <= now + 60 => return None,
        Some(_) => {}
    }
    if !is_valid_id(&c.sub) || (c.room != ANY_ROOM && !is_valid_id(&c.room)) {
        return Some("invalid");
    }
    Some("ok")
}

fn claims_round_trip(data: &[u8]) {
    let a = auth();
    let now = now_secs();
    let claims = claims_from(data, now);
    let minted = a.lax.mint(&claims);
    let what = format!("{claims:?}");

    if claims.room == ANY_ROOM && claims.role != Role::Admin {
        assert!(
            matches!(minted, Err(AuthError::AnyRoomNeedsAdmin)),
            "minted {minted:?} from {what}"
        );
        // Signed anyway (as someone holding the secret could): verify must still refuse it.
        let forged = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encode");
        for verifier in [&a.strict, &a.lax] {
            let r = verifier.verify(&forged);
            check_verdict(&r, &forged);
            assert!(r.is_err(), "a non-admin \"*\" token verified: {what}");
        }
        return;
    }

    let token = match minted {
        Ok(t) => t,
        Err(e) => panic!("mint refused {what}: {e:?}"),
    };
    for (verifier, require_exp) in [(&a.strict, true), (&a.lax, false)] {
        let r = verifier.verify(&token);
        check_verdict(&r, &token);
        let Some(want) = expected_verdict(&claims, require_exp, now) else {
            continue;
        };
        assert_eq!(
            verdict_name(&r),
            want,
            "{what} (require_exp {require_exp}): {r:?}"
        );
        if let Ok(id) = r {
            assert_eq!(id.user.as_str(), claims.sub, "{what}");
            assert_eq!(id.role, claims.role, "{what}");
            match &id.scope {
                RoomScope::Any => assert_eq!(claims.room, ANY_ROOM, "{what}"),
                RoomScope::One(room) => assert_eq!(room.as_str(), claims.room, "{what}"),
            }
            match &claims.name {
                None => assert_eq!(id.name, claims.sub, "{what}"),
                Some(n) if is_clean_name(n) => assert_eq!(&id.name, n, "{what}"),
                Some(_) => {}
            }
        }
    }
}
