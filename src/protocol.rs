//! The v1 wire protocol (`docs/protocol.md`): every message a client or the hub may send, as types.
//!
//! Server messages are built from these enums and serialized once per event; client frames are
//! parsed into [`ClientMsg`] and validated by [`ClientMsg::validate`] before anything acts on them,
//! so a malformed command can never reach the room or the inventory.

use serde::{Deserialize, Serialize};

/// The commerce bounds the protocol validates with, from their home [`crate::commerce`].
pub use crate::commerce::{MAX_BPS, MAX_DEAL_STOCK, MAX_PRICE_CENTS, MAX_TOTAL_CENTS};
use crate::error::{ErrorCode, HubError};
/// Protocol ids, from their home [`crate::id`] (a leaf the commerce terms use too).
pub use crate::id::{Id, MAX_ID_LEN, is_valid_id};
use crate::orders::OrderStatus;

fn default_currency() -> String {
    "USD".to_owned()
}

fn validate_currency(c: &str) -> Result<(), HubError> {
    if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(HubError::BadRequest(format!(
            "currency {c:?} is not an ISO-4217 code (three capital letters)"
        )))
    }
}

/// A product that can be pinned: `{"id","title","price_cents","currency","image_url"?}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: Id,
    pub title: String,
    pub price_cents: u64,
    #[serde(default = "default_currency")]
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
}

/// Longest product title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest image URL, in bytes.
pub const MAX_IMAGE_URL_BYTES: usize = 2048;

/// True for a character that shows nothing by itself: white space, control characters, and the
/// Unicode format and default-ignorable characters (zero-width spaces and joiners, bidi marks,
/// embeddings, overrides and isolates, the byte-order mark, variation selectors, tag characters,
/// Hangul fillers, the blank braille pattern ...). A text made only of these looks empty.
///
/// Some of them are needed *inside* visible text (a zero-width joiner in an emoji sequence, a
/// variation selector after a heart), so texts are refused for having nothing else, never
/// stripped of them.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}' // soft hyphen
                | '\u{034F}' // combining grapheme joiner
                | '\u{061C}' // Arabic letter mark
                | '\u{115F}' | '\u{1160}' // Hangul choseong and jungseong fillers
                | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels
                | '\u{180B}'..='\u{180F}' // Mongolian variation selectors and vowel separator
                | '\u{200B}'..='\u{200F}' // zero-width space, (non-)joiner, LRM, RLM
                | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
                | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, bidi isolates
                | '\u{2800}' // braille pattern blank
                | '\u{3164}' // Hangul filler
                | '\u{FE00}'..='\u{FE0F}' // variation selectors
                | '\u{FEFF}' // byte-order mark (zero-width no-break space)
                | '\u{FFA0}' // halfwidth Hangul filler
                | '\u{FFF0}'..='\u{FFFB}' // unassigned specials, interlinear annotation
                | '\u{1BCA0}'..='\u{1BCA3}' // shorthand format controls
                | '\u{1D173}'..='\u{1D17A}' // musical symbol format controls
                | '\u{E0000}'..='\u{E0FFF}' // tags, variation selectors supplement
        )
}

/// True for the bidirectional-text controls that reorder what follows them on screen (LRM/RLM,
/// the Arabic letter mark, embeddings, overrides and isolates): in a display name they can make
/// "Ann\u{202E}nimda" show as "Annadmin".
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// True when `s` has at least one character that is not [invisible](is_invisible).
pub fn has_visible(s: &str) -> bool {
    s.chars().any(|c| !is_invisible(c))
}

/// Refuses a text with a control character other than those in `allowed`, or with nothing
/// visible in it.
fn check_visible(field: &str, text: &str, allowed: &[char]) -> Result<(), HubError> {
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() && !allowed.contains(c))
    {
        let allowed = if allowed.is_empty() {
            ""
        } else {
            " (line breaks and tabs are allowed)"
        };
        return Err(HubError::BadRequest(format!(
            "{field} must not contain control characters such as U+{:04X}{allowed}",
            u32::from(c)
        )));
    }
    if !has_visible(text) {
        return Err(HubError::BadRequest(format!(
            "{field} must not be empty (or only invisible characters)"
        )));
    }
    Ok(())
}

fn validate_title(field: &str, title: &str) -> Result<(), HubError> {
    check_visible(field, title, &[])?;
    let len = title.trim().chars().count();
    if len == 0 || len > MAX_TITLE_CHARS {
        return Err(HubError::BadRequest(format!(
            "{field} must be 1 to {MAX_TITLE_CHARS} characters"
        )));
    }
    Ok(())
}

/// True for an image URL a page can show without it running anything: `https://` or `http://`
/// (in any letter case) and more, or a path starting with `/` (on the page's own site; `//host/…`
/// takes the page's scheme, which is http or https). `javascript:`, `data:`, `file:` and any
/// other scheme, and relative paths without a leading `/`, are not.
pub fn is_allowed_image_url(url: &str) -> bool {
    let b = url.as_bytes();
    let has_scheme =
        |scheme: &[u8]| b.len() > scheme.len() && b[..scheme.len()].eq_ignore_ascii_case(scheme);
    has_scheme(b"https://") || has_scheme(b"http://") || url.starts_with('/')
}

fn validate_image_url(field: &str, url: Option<&str>) -> Result<(), HubError> {
    let Some(url) = url else { return Ok(()) };
    if url.len() > MAX_IMAGE_URL_BYTES || url.chars().any(char::is_control) {
        return Err(HubError::BadRequest(format!(
            "{field} must be at most {MAX_IMAGE_URL_BYTES} characters"
        )));
    }
    if !is_allowed_image_url(url) {
        return Err(HubError::BadRequest(format!(
            "{field} must be an https:// or http:// URL or a path starting with /"
        )));
    }
    Ok(())
}

impl Product {
    /// Checks the fields a host supplies: title 1..=[`MAX_TITLE_CHARS`] characters with one
    /// visible and no control character, a price of at most [`MAX_PRICE_CENTS`], a currency
    /// code, an image URL of at most [`MAX_IMAGE_URL_BYTES`] that [`is_allowed_image_url`].
    pub fn validate(&self) -> Result<(), HubError> {
        validate_title("product.title", &self.title)?;
        validate_price("product.price_cents", self.price_cents)?;
        validate_currency(&self.currency)?;
        validate_image_url("product.image_url", self.image_url.as_deref())
    }
}

/// Where a flash deal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DealStatus {
    Live,
    SoldOut,
    Ended,
}

/// A flash deal as viewers see it. `title` (and `image_url`) name the product on sale, so a
/// page can show the deal whatever is pinned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deal {
    pub id: Id,
    pub product_id: Id,
    /// The product's title (a deal saved before titles existed reads as empty).
    #[serde(default)]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    pub price_cents: u64,
    pub currency: String,
    pub stock: u32,
    pub remaining: u32,
    pub per_user_limit: u32,
    /// Basis points of each order's total paid to the host creator who started the deal
    /// (0..=[`MAX_BPS`]; a deal saved before rates existed reads as 0).
    #[serde(default)]
    pub commission_bps: u32,
    /// Basis points of each order's total paid to the buyer's affiliate (`aff`), if any.
    #[serde(default)]
    pub affiliate_bps: u32,
    pub ends_at: u64,
    pub status: DealStatus,
    /// When the deal started (Unix ms, the hub's clock); None for a deal stored before
    /// starts were recorded, and then not shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
}

/// A host's `deal_start` payload. `title` and `image_url` may be left out for a product of the
/// catalog or the pinned product: the hub fills them in from there (see
/// [`crate::command`]'s `deal_start`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DealSpec {
    pub id: Id,
    pub product_id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    pub price_cents: u64,
    #[serde(default = "default_currency")]
    pub currency: String,
    pub stock: u32,
    pub per_user_limit: u32,
    pub duration_ms: u64,
    /// Basis points paid to the host creator on each order (0..=[`MAX_BPS`], default 0).
    #[serde(default)]
    pub commission_bps: u32,
    /// Basis points paid to the buyer's affiliate on each order (0..=[`MAX_BPS`], default 0).
    #[serde(default)]
    pub affiliate_bps: u32,
}

/// Longest a deal may run: one week.
pub const MAX_DEAL_DURATION_MS: u64 = 7 * 24 * 3600 * 1000;

fn validate_bps(field: &str, bps: u32) -> Result<(), HubError> {
    if bps > MAX_BPS {
        return Err(HubError::BadRequest(format!(
            "{field} must be 0 to {MAX_BPS} (basis points: 10000 is 100%)"
        )));
    }
    Ok(())
}

fn validate_price(field: &str, price_cents: u64) -> Result<(), HubError> {
    if price_cents > MAX_PRICE_CENTS {
        return Err(HubError::BadRequest(format!(
            "{field} must be 0 to {MAX_PRICE_CENTS} (minor units of the currency)"
        )));
    }
    Ok(())
}

impl DealSpec {
    /// The title the deal is sold under: the spec's, or (for a spec nobody filled in) the
    /// product id.
    pub fn title_or_id(&self) -> String {
        self.title
            .clone()
            .unwrap_or_else(|| self.product_id.to_string())
    }

    /// Checks price (0..=[`MAX_PRICE_CENTS`]), stock (1..=[`MAX_DEAL_STOCK`]), limit
    /// (1..=stock), duration (1 ms to a week), currency, commission and affiliate rates
    /// (0..=[`MAX_BPS`] each and together, so an order never pays out more than its total), and
    /// a title and image URL when given (as a product's).
    pub fn validate(&self) -> Result<(), HubError> {
        if let Some(title) = &self.title {
            validate_title("deal.title", title)?;
        }
        validate_image_url("deal.image_url", self.image_url.as_deref())?;
        validate_price("deal.price_cents", self.price_cents)?;
        if self.stock == 0 || self.stock > MAX_DEAL_STOCK {
            return Err(HubError::BadRequest(format!(
                "deal.stock must be 1 to {MAX_DEAL_STOCK}"
            )));
        }
        if self.per_user_limit == 0 || self.per_user_limit > self.stock {
            return Err(HubError::BadRequest(
                "deal.per_user_limit must be 1 to deal.stock".into(),
            ));
        }
        if self.duration_ms == 0 || self.duration_ms > MAX_DEAL_DURATION_MS {
            return Err(HubError::BadRequest(
                "deal.duration_ms must be 1 to 604800000 (a week)".into(),
            ));
        }
        validate_bps("deal.commission_bps", self.commission_bps)?;
        validate_bps("deal.affiliate_bps", self.affiliate_bps)?;
        let both = self.commission_bps + self.affiliate_bps;
        if both > MAX_BPS {
            return Err(HubError::BadRequest(format!(
                "deal.commission_bps + deal.affiliate_bps must be at most {MAX_BPS} (100% of an \
                 order, which pays both when the affiliate is the host); they add up to {both}"
            )));
        }
        validate_currency(&self.currency)
    }
}

/// An auction bidder as viewers see them: the display name, never the user id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bidder {
    pub name: String,
}

/// A live auction as viewers see it (the `auction` event and `welcome`'s `auctions`): what is
/// sold, by which rules, and where it stands. `current_cents` is null before the first bid;
/// `winner` is set once it closed `sold`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionView {
    pub id: Id,
    pub product_id: Id,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    pub currency: String,
    pub start_cents: u64,
    pub increment_cents: u64,
    pub current_cents: Option<u64>,
    pub leader: Option<Bidder>,
    pub bids: u32,
    pub ends_at: u64,
    pub extend_ms: u64,
    pub sudden_death: bool,
    pub status: AuctionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<Bidder>,
    pub started_at: u64,
}

/// A host's `auction_start` body, from the rules' home.
pub use crate::auction::AuctionSpec;
/// Where an auction stands, from its rules: `live`, `sold` or `unsold`.
pub use crate::auction::Status as AuctionStatus;

/// A chat comment as stored and broadcast.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub seq: u64,
    pub id: Id,
    pub user: Id,
    pub name: String,
    pub text: String,
    pub ts: u64,
}

/// The room's latest announcement, as `welcome` and the room snapshot show it (a late joiner
/// sees what the host last announced).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announced {
    /// The `seq` of its `announcement` event.
    pub seq: u64,
    pub text: String,
}

/// A user muted in the room until `until` (Unix ms), as a host's or an admin's `welcome` lists
/// them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Muted {
    pub user: Id,
    pub until: u64,
}

/// Who is on the other end of a connection, as told in `welcome`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct You {
    pub user: Id,
    pub name: String,
    pub role: Role,
}

/// What a token lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Host,
    Admin,
    /// The shop's backend: settles orders and reads the order feed (issue 23); never joins a
    /// room.
    Merchant,
}

impl Role {
    /// True for the roles whose token may name every room (`"room": "*"`): admin and merchant.
    pub fn is_shop_wide(self) -> bool {
        matches!(self, Role::Admin | Role::Merchant)
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "host" => Ok(Role::Host),
            "admin" => Ok(Role::Admin),
            "merchant" => Ok(Role::Merchant),
            other => Err(format!(
                "unknown role {other:?}: expected viewer, host, admin or merchant"
            )),
        }
    }
}

/// Why a reserve, checkout or cancel was refused.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RejectReason {
    SoldOut,
    LimitReached,
    DealNotLive,
    NotFound,
    Unavailable,
    /// A bid below the least amount accepted now (`min_cents` says it).
    TooLow,
    /// A bid at or after the auction's end.
    Ended,
    /// Bids faster than `limits.bids_per_s` on one auction.
    RateLimited,
    /// A bid whose amounts are out of range.
    BadRequest,
}

/// Every message the hub sends. `seq` is present exactly on the durable events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(tag = "type", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ServerMsg {
    Welcome {
        room: Id,
        seq: u64,
        you: You,
        viewers: u64,
        likes: u64,
        pinned: Option<Product>,
        deals: Vec<Deal>,
        recent: Vec<Comment>,
        resumed: bool,
        /// The room's live video stream: the host's `set_stream` URL, else the configured
        /// `pages.stream_url`, else null.
        #[serde(default)]
        stream_url: Option<String>,
        /// The room's latest announcement, null before the first.
        #[serde(default)]
        announcement: Option<Announced>,
        /// The room's live auctions in their current state (none for a v1 room).
        #[serde(default)]
        auctions: Vec<AuctionView>,
        /// The room's current mutes: only in a host's or an admin's welcome.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        muted: Option<Vec<Muted>>,
    },
    Comment(Comment),
    CommentDeleted {
        seq: u64,
        id: Id,
    },
    Pinned {
        seq: u64,
        product: Product,
    },
    Unpinned {
        seq: u64,
    },
    Deal {
        seq: u64,
        deal: Deal,
    },
    Announcement {
        seq: u64,
        text: String,
    },
    /// The room's live video stream changed (`set_stream`); `url` is null when it was cleared.
    Stream {
        seq: u64,
        url: Option<String>,
    },
    /// An auction started or closed (`status` says which).
    Auction {
        seq: u64,
        auction: AuctionView,
    },
    /// Comments `from..=seq` were not shown to this connection: it fell behind (a chat storm, a
    /// slow link) and the hub thinned other viewers' comments rather than close it. Not a gap:
    /// the next durable event is `seq + 1`. `comments` of them were thinned.
    Skipped {
        seq: u64,
        from: u64,
        comments: u64,
    },
    /// Sent instead of `welcome` to a viewer of a room its host has not opened; the connection
    /// then closes with 1013 and the client tries again after `retry_ms`.
    NotLive {
        room: Id,
        retry_ms: u64,
    },
    Stock {
        deal: Id,
        remaining: u32,
    },
    Viewers {
        count: u64,
    },
    /// A live auction's latest bid, coalesced like `stock`: at most one per tick per auction,
    /// always the latest.
    AuctionBid {
        auction: Id,
        current_cents: u64,
        leader: Option<Bidder>,
        bids: u32,
        ends_at: u64,
    },
    /// The bidder's own bid was accepted: the price now, whether they lead, the end now, and
    /// its place in the auction's order of bids (`bids`, 1 for the first).
    BidAccepted {
        request_id: Id,
        auction: Id,
        amount_cents: u64,
        current_cents: u64,
        leading: bool,
        ends_at: u64,
        bids: u32,
    },
    Likes {
        total: u64,
    },
    Reserved {
        request_id: Id,
        reservation: Id,
        deal: Id,
        qty: u32,
        expires_at: u64,
        remaining: u32,
    },
    Rejected {
        request_id: Id,
        reason: RejectReason,
        /// With `too_low`: the least amount a bid would be accepted at now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_cents: Option<u64>,
    },
    /// A checkout's order (to its buyer), or an auction's (to its winner, at the close: no
    /// `request_id` or `reservation`, `auction` instead of `deal`).
    Order {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<Id>,
        order: Id,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reservation: Option<Id>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deal: Option<Id>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auction: Option<Id>,
        qty: u32,
        price_cents: u64,
        currency: String,
        /// With `orders.payment = "external"`: `pending` when made, or the order's status now
        /// on a repeated checkout. Absent with `"none"` (the order is paid), as in v1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<OrderStatus>,
        /// Unix ms by which a pending order must be paid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pay_by: Option<u64>,
    },
    /// The buyer's own order changed status (paid, failed, expired): sent to each of the
    /// buyer's connections in the order's room, on every node.
    OrderStatus {
        order: Id,
        deal: Id,
        status: OrderStatus,
        qty: u32,
        total_cents: u64,
        currency: String,
    },
    Released {
        request_id: Id,
        reservation: Id,
    },
    Ack {
        request_id: Id,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<Id>,
    },
}

impl ServerMsg {
    /// The durable sequence number, for events that carry one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            ServerMsg::Comment(c) => Some(c.seq),
            ServerMsg::CommentDeleted { seq, .. }
            | ServerMsg::Pinned { seq, .. }
            | ServerMsg::Unpinned { seq }
            | ServerMsg::Deal { seq, .. }
            | ServerMsg::Announcement { seq, .. }
            | ServerMsg::Stream { seq, .. }
            | ServerMsg::Auction { seq, .. }
            | ServerMsg::Skipped { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    /// The `type` tag as sent on the wire.
    pub fn kind(&self) -> &'static str {
        self.into()
    }

    /// Serializes the message. Only fails on a bug (every field is plain data), which becomes
    /// an `internal` error rather than a panic.
    pub fn to_json(&self) -> Result<String, HubError> {
        serde_json::to_string(self).map_err(|e| HubError::Internal(format!("encode: {e}")))
    }
}

/// Every command a client may send: viewer commands first, then host commands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(tag = "type", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ClientMsg {
    Comment {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<Id>,
    },
    Like {
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<Id>,
    },
    Reserve {
        request_id: Id,
        deal: Id,
        qty: u32,
    },
    Checkout {
        request_id: Id,
        reservation: Id,
    },
    Cancel {
        request_id: Id,
        reservation: Id,
    },
    Pin {
        product: Product,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<Id>,
    },
    Unpin {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<Id>,
    },
    DealStart {
        deal: DealSpec,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<Id>,
    },
    DealEnd {
        deal: Id,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<Id>,
    },
    DeleteComment {
        id: Id,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<Id>,
    },
    Mute {
        user: Id,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<Id>,
    },
    Announce {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<Id>,
    },
    /// Lifts `user`'s mute in the room.
    Unmute {
        user: Id,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<Id>,
    },
    /// Sets the room's live video stream (`url` is required; null clears it).
    SetStream {
        #[serde(deserialize_with = "nullable")]
        url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<Id>,
    },
    /// A viewer's bid on a live auction; `max_cents` (default the amount) is the most the hub
    /// may bid for them (a proxy bid).
    Bid {
        request_id: Id,
        auction: Id,
        amount_cents: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_cents: Option<u64>,
    },
    /// Starts an auction in the room.
    AuctionStart {
        auction: AuctionSpec,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<Id>,
    },
    /// Ends an auction that has no bid yet (one with a bid runs to its end).
    AuctionEnd {
        auction: Id,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<Id>,
    },
}

/// A field that must be present but may be null (`"url": null`), so a misspelt field name is
/// refused rather than read as null.
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

/// Content limits checked by [`ClientMsg::validate`]. Besides its length, a comment or an
/// announcement must hold at least one visible character (see [`is_invisible`]) and no control
/// character other than a line break (`\n`) or a tab.
#[derive(Clone, Copy, Debug)]
pub struct ContentLimits {
    /// Longest comment, in characters after trimming.
    pub comment_max_chars: usize,
    /// Longest announcement, in characters after trimming.
    pub announce_max_chars: usize,
}

/// Largest `like.count`.
pub const MAX_LIKES_PER_MESSAGE: u32 = 50;
/// Longest mute: thirty days.
pub const MAX_MUTE_MS: u64 = 30 * 24 * 3600 * 1000;

/// The control characters a comment or an announcement may hold.
pub const TEXT_CONTROLS_ALLOWED: [char; 2] = ['\n', '\t'];

fn check_text(field: &str, text: &str, max: usize) -> Result<(), HubError> {
    check_visible(field, text, &TEXT_CONTROLS_ALLOWED)?;
    let n = text.trim().chars().count();
    if n == 0 {
        Err(HubError::BadRequest(format!("{field} must not be empty")))
    } else if n > max {
        Err(HubError::BadRequest(format!(
            "{field} is {n} characters; the limit is {max}"
        )))
    } else {
        Ok(())
    }
}

/// The pattern of every [`ClientMsg`] whose `request_id` is optional, binding it to `$id`: one
/// list for [`ClientMsg::request_id`] and [`ClientMsg::set_request_id`].
macro_rules! optional_request_id {
    ($id:ident) => {
        ClientMsg::Comment {
            request_id: $id,
            ..
        } | ClientMsg::Like {
            request_id: $id,
            ..
        } | ClientMsg::Pin {
            request_id: $id,
            ..
        } | ClientMsg::Unpin { request_id: $id }
            | ClientMsg::DealStart {
                request_id: $id,
                ..
            }
            | ClientMsg::DealEnd {
                request_id: $id,
                ..
            }
            | ClientMsg::DeleteComment {
                request_id: $id,
                ..
            }
            | ClientMsg::Mute {
                request_id: $id,
                ..
            }
            | ClientMsg::Unmute {
                request_id: $id,
                ..
            }
            | ClientMsg::SetStream {
                request_id: $id,
                ..
            }
            | ClientMsg::Announce {
                request_id: $id,
                ..
            }
            | ClientMsg::AuctionStart {
                request_id: $id,
                ..
            }
            | ClientMsg::AuctionEnd {
                request_id: $id,
                ..
            }
    };
}

impl ClientMsg {
    /// The command's `request_id`, if it carried one.
    pub fn request_id(&self) -> Option<&Id> {
        match self {
            ClientMsg::Reserve { request_id, .. }
            | ClientMsg::Checkout { request_id, .. }
            | ClientMsg::Cancel { request_id, .. }
            | ClientMsg::Bid { request_id, .. } => Some(request_id),
            optional_request_id!(request_id) => request_id.as_ref(),
        }
    }

    /// Sets the `request_id` of a command whose id is optional (every command but `reserve`,
    /// `checkout` and `cancel`, whose required id stays as built): for a client that numbers
    /// its commands after building them (the load tester). False when the command has a
    /// required id.
    pub fn set_request_id(&mut self, id: Option<Id>) -> bool {
        match self {
            optional_request_id!(request_id) => {
                *request_id = id;
                true
            }
            ClientMsg::Reserve { .. }
            | ClientMsg::Checkout { .. }
            | ClientMsg::Cancel { .. }
            | ClientMsg::Bid { .. } => false,
        }
    }

    /// The `type` tag as sent on the wire.
    pub fn kind(&self) -> &'static str {
        self.into()
    }

    /// True for the commands only a host of the room or an admin may send.
    pub fn is_host_command(&self) -> bool {
        !matches!(
            self,
            ClientMsg::Comment { .. }
                | ClientMsg::Like { .. }
                | ClientMsg::Reserve { .. }
                | ClientMsg::Checkout { .. }
                | ClientMsg::Cancel { .. }
                | ClientMsg::Bid { .. }
        )
    }

    /// Checks every content limit that does not depend on room state (comment and announcement
    /// length and visible content, like count, `qty >= 1`, product and deal fields). Per-deal
    /// limits are the inventory's job.
    pub fn validate(&self, limits: &ContentLimits) -> Result<(), HubError> {
        match self {
            ClientMsg::Comment { text, .. } => check_text("text", text, limits.comment_max_chars),
            ClientMsg::Announce { text, .. } => check_text("text", text, limits.announce_max_chars),
            ClientMsg::Like { count, .. } => {
                if (1..=MAX_LIKES_PER_MESSAGE).contains(count) {
                    Ok(())
                } else {
                    Err(HubError::BadRequest(format!(
                        "count must be 1 to {MAX_LIKES_PER_MESSAGE}"
                    )))
                }
            }
            ClientMsg::Reserve { qty, .. } => {
                if *qty >= 1 {
                    Ok(())
                } else {
                    Err(HubError::BadRequest("qty must be at least 1".into()))
                }
            }
            ClientMsg::Pin { product, .. } => product.validate(),
            // A stream URL is shown by the page as a product image is: the same rule.
            ClientMsg::SetStream { url, .. } => validate_image_url("url", url.as_deref()),
            ClientMsg::DealStart { deal, .. } => deal.validate(),
            ClientMsg::Mute { duration_ms, .. } => {
                if (1..=MAX_MUTE_MS).contains(duration_ms) {
                    Ok(())
                } else {
                    Err(HubError::BadRequest(
                        "duration_ms must be 1 to 2592000000 (thirty days)".into(),
                    ))
                }
            }
            ClientMsg::AuctionStart { auction, .. } => validate_auction(auction),
            // A bid's amounts are the rules' to judge: out of range is `rejected` `bad_request`.
            ClientMsg::Checkout { .. }
            | ClientMsg::Bid { .. }
            | ClientMsg::AuctionEnd { .. }
            | ClientMsg::Cancel { .. }
            | ClientMsg::Unpin { .. }
            | ClientMsg::DealEnd { .. }
            | ClientMsg::DeleteComment { .. }
            | ClientMsg::Unmute { .. } => Ok(()),
        }
    }
}

/// An auction's rules and rates within bounds ([`AuctionSpec::check`]), its currency, and its
/// title and image URL when given (as a product's).
fn validate_auction(spec: &AuctionSpec) -> Result<(), HubError> {
    spec.check()
        .map_err(|e| HubError::BadRequest(format!("auction.{}", e.0)))?;
    if let Some(title) = &spec.title {
        validate_title("auction.title", title)?;
    }
    validate_image_url("auction.image_url", spec.image_url.as_deref())?;
    validate_currency(&spec.currency)
}

/// A client frame that could not be parsed into a command.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// What was wrong, for the `error` message.
    pub message: String,
    /// The frame's `request_id`, when it had a well-formed one, so the error can echo it.
    pub request_id: Option<Id>,
}

/// Parses one client text frame. Never panics, whatever the input (see the property test).
pub fn parse_client(text: &str) -> Result<ClientMsg, ParseError> {
    serde_json::from_str::<ClientMsg>(text).map_err(|e| {
        #[derive(Deserialize)]
        struct RequestIdOnly {
            request_id: Option<Id>,
        }
        let request_id = serde_json::from_str::<RequestIdOnly>(text)
            .ok()
            .and_then(|r| r.request_id);
        let message = if e.is_syntax() || e.is_eof() {
            format!("invalid JSON: {e}")
        } else {
            format!("invalid command: {e}")
        };
        ParseError {
            message,
            request_id,
        }
    })
}

/// Wraps an error as the protocol's `error` message.
pub fn error_msg(err: &HubError, request_id: Option<Id>) -> ServerMsg {
    ServerMsg::Error {
        code: err.code(),
        message: err.to_string(),
        request_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_charset_and_length() {
        assert!(is_valid_id("a-B_9"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a b"));
        assert!(!is_valid_id(&"x".repeat(65)));
        assert!(is_valid_id(&"x".repeat(64)));
    }

    #[test]
    fn server_messages_carry_their_type_tag() {
        let m = ServerMsg::Stock {
            deal: Id::new("d1").unwrap(),
            remaining: 3,
        };
        assert_eq!(
            m.to_json().unwrap(),
            r#"{"type":"stock","deal":"d1","remaining":3}"#
        );
    }

    #[test]
    fn wire_names_are_serdes_own() {
        use strum::IntoEnumIterator;
        for r in RejectReason::iter() {
            let name: &str = r.into();
            assert_eq!(serde_json::to_value(r).unwrap(), name);
            assert_eq!(name.parse::<RejectReason>().unwrap(), r);
        }
        let clients = [
            r#"{"type":"comment","text":"hi"}"#,
            r#"{"type":"like","count":1}"#,
            r#"{"type":"reserve","request_id":"r","deal":"d","qty":1}"#,
            r#"{"type":"checkout","request_id":"r","reservation":"h"}"#,
            r#"{"type":"cancel","request_id":"r","reservation":"h"}"#,
            r#"{"type":"pin","product":{"id":"p","title":"T","price_cents":1}}"#,
            r#"{"type":"unpin"}"#,
            r#"{"type":"deal_start","deal":{"id":"d","product_id":"p","price_cents":1,"stock":1,"per_user_limit":1,"duration_ms":1}}"#,
            r#"{"type":"deal_end","deal":"d"}"#,
            r#"{"type":"delete_comment","id":"c1"}"#,
            r#"{"type":"mute","user":"u","duration_ms":1}"#,
            r#"{"type":"announce","text":"hi"}"#,
            r#"{"type":"set_stream","url":"https://cdn.example/live.m3u8"}"#,
            r#"{"type":"set_stream","url":null}"#,
            r#"{"type":"unmute","user":"u"}"#,
        ];
        for json in clients {
            let msg: ClientMsg = serde_json::from_str(json).expect(json);
            let tag = serde_json::to_value(&msg).unwrap()["type"].clone();
            assert_eq!(tag, msg.kind(), "{json}");
        }
        let id = || Id::new("x").unwrap();
        let servers = [
            ServerMsg::Stock {
                deal: id(),
                remaining: 1,
            },
            ServerMsg::Viewers { count: 1 },
            ServerMsg::Likes { total: 1 },
            ServerMsg::Unpinned { seq: 1 },
            ServerMsg::Stream { seq: 1, url: None },
            ServerMsg::Skipped {
                seq: 2,
                from: 1,
                comments: 2,
            },
            ServerMsg::Rejected {
                request_id: id(),
                reason: RejectReason::SoldOut,
                min_cents: None,
            },
            ServerMsg::Ack {
                request_id: id(),
                seq: Some(1),
            },
        ];
        for msg in servers {
            let tag = serde_json::to_value(&msg).unwrap()["type"].clone();
            assert_eq!(tag, msg.kind());
        }
    }

    #[test]
    fn deal_rates_default_to_zero_and_are_always_shown() {
        let spec: DealSpec = serde_json::from_str(
            r#"{"id":"d","product_id":"p","price_cents":1,"stock":1,"per_user_limit":1,"duration_ms":1}"#,
        )
        .unwrap();
        assert_eq!((spec.commission_bps, spec.affiliate_bps), (0, 0));
        let old = r#"{"id":"d","product_id":"p","price_cents":1,"currency":"USD","stock":1,
            "remaining":1,"per_user_limit":1,"ends_at":1,"status":"live"}"#;
        let deal: Deal = serde_json::from_str(old).unwrap();
        assert_eq!((deal.commission_bps, deal.affiliate_bps), (0, 0));
        let shown = serde_json::to_value(&deal).unwrap();
        assert_eq!(shown["commission_bps"], 0);
        assert_eq!(shown["affiliate_bps"], 0);
        // A deal stored before starts were recorded: no `started_at`, and none shown.
        assert_eq!(deal.started_at, None);
        assert!(shown.get("started_at").is_none(), "{shown}");
    }

    const LIMITS: ContentLimits = ContentLimits {
        comment_max_chars: 500,
        announce_max_chars: 2000,
    };

    fn comment(text: &str) -> Result<(), HubError> {
        ClientMsg::Comment {
            text: text.into(),
            request_id: None,
        }
        .validate(&LIMITS)
    }

    fn announce(text: &str) -> Result<(), HubError> {
        ClientMsg::Announce {
            text: text.into(),
            request_id: None,
        }
        .validate(&LIMITS)
    }

    fn refusal(r: Result<(), HubError>) -> String {
        match r {
            Err(HubError::BadRequest(m)) => m,
            other => panic!("expected bad_request, got {other:?}"),
        }
    }

    #[test]
    fn texts_of_only_invisible_characters_are_refused() {
        for text in [
            "\u{200b}",
            "\u{feff}",
            "\u{200b}\u{200c}\u{200d}\u{2060}",
            " \u{202e} \u{2066}\u{2069} ",
            "\u{3164}\u{115f}\u{ffa0}",
            "\u{2800}\u{00ad}\u{fe0f}",
            "\u{e0041}\u{e007f}",
            "\n\t\n",
        ] {
            let m = refusal(comment(text));
            assert!(m.contains("invisible"), "{text:?}: {m}");
            let m = refusal(announce(text));
            assert!(m.contains("invisible"), "{text:?}: {m}");
        }
        // Invisible characters inside visible text are kept: emoji sequences need them.
        assert!(comment("\u{1f469}\u{200d}\u{1f4bb} \u{2764}\u{fe0f}").is_ok());
        assert!(comment("\u{200b}hi\u{200b}").is_ok());
        assert!(comment("\u{0645}\u{0631}\u{062d}\u{0628}\u{0627}").is_ok());
    }

    #[test]
    fn texts_with_control_characters_are_refused_but_line_breaks_and_tabs_pass() {
        for text in [
            "nul\0here",
            "\0",
            "bell\u{7}",
            "cr\rlf",
            "esc\u{1b}[2J",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            let m = refusal(comment(text));
            assert!(m.contains("control characters"), "{text:?}: {m}");
            assert!(announce(text).is_err(), "{text:?}");
        }
        assert!(comment("two\nlines\tand a tab").is_ok());
        assert!(announce("Doors open\n\tat eight").is_ok());
    }

    #[test]
    fn titles_follow_the_same_visibility_rule_without_line_breaks() {
        let product = |title: &str| Product {
            id: Id::new("p").unwrap(),
            title: title.into(),
            price_cents: 1,
            currency: "USD".into(),
            image_url: None,
        };
        assert!(product("Mug").validate().is_ok());
        for title in ["\u{200b}\u{200b}", "Mug\nblue", "Mug\0"] {
            let m = refusal(product(title).validate());
            assert!(m.starts_with("product.title"), "{title:?}: {m}");
        }
    }

    fn spec(commission_bps: u32, affiliate_bps: u32, image_url: Option<&str>) -> DealSpec {
        DealSpec {
            id: Id::new("d").unwrap(),
            product_id: Id::new("p").unwrap(),
            title: Some("Mug".into()),
            image_url: image_url.map(Into::into),
            price_cents: 100,
            currency: "USD".into(),
            stock: 5,
            per_user_limit: 1,
            duration_ms: 60_000,
            commission_bps,
            affiliate_bps,
        }
    }

    #[test]
    fn commission_and_affiliate_rates_together_are_at_most_a_whole_order() {
        assert!(spec(10_000, 0, None).validate().is_ok());
        assert!(spec(6_000, 4_000, None).validate().is_ok());
        let m = refusal(spec(9_000, 9_000, None).validate());
        assert!(
            m.contains("deal.commission_bps")
                && m.contains("deal.affiliate_bps")
                && m.contains("18000"),
            "{m}"
        );
        assert!(spec(5_001, 5_000, None).validate().is_err());
    }

    #[test]
    fn image_urls_are_http_https_or_a_path() {
        for ok in [
            "https://img.example/mug.png",
            "HTTPS://img.example/mug.png",
            "http://img.example/mug.png",
            "/img/scarf.png",
            "//cdn.example/mug.png",
        ] {
            assert!(spec(0, 0, Some(ok)).validate().is_ok(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "data:image/svg+xml,<svg onload=alert(1)>",
            "vbscript:x",
            "file:///etc/passwd",
            "img/scarf.png",
            "https://",
            "",
        ] {
            let m = refusal(spec(0, 0, Some(bad)).validate());
            assert!(m.contains("deal.image_url"), "{bad:?}: {m}");
            let pin = ClientMsg::Pin {
                product: Product {
                    id: Id::new("p").unwrap(),
                    title: "Mug".into(),
                    price_cents: 1,
                    currency: "USD".into(),
                    image_url: Some(bad.into()),
                },
                request_id: None,
            };
            let m = refusal(pin.validate(&LIMITS));
            assert!(m.contains("product.image_url"), "{bad:?}: {m}");
        }
    }

    #[test]
    fn set_stream_needs_its_url_field_and_checks_it_as_an_image_url() {
        let set = |json: &str| parse_client(json).map(|m| m.validate(&LIMITS));
        assert!(matches!(
            set(r#"{"type":"set_stream","url":"https://cdn.example/live.m3u8"}"#),
            Ok(Ok(()))
        ));
        assert!(matches!(
            set(r#"{"type":"set_stream","url":"/live/a.m3u8"}"#),
            Ok(Ok(()))
        ));
        assert!(matches!(
            set(r#"{"type":"set_stream","url":null}"#),
            Ok(Ok(()))
        ));
        assert!(set(r#"{"type":"set_stream"}"#).is_err(), "url is required");
        assert!(set(r#"{"type":"set_stream","uri":"/a"}"#).is_err());
        let long = format!("https://x/{}", "a".repeat(MAX_IMAGE_URL_BYTES));
        for bad in ["javascript:alert(1)", "live.m3u8", "data:x", long.as_str()] {
            let json = serde_json::json!({"type": "set_stream", "url": bad}).to_string();
            let m = refusal(set(&json).unwrap());
            assert!(m.starts_with("url "), "{bad:?}: {m}");
        }
    }

    #[test]
    fn bidi_controls_are_invisible_and_named() {
        for c in [
            '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{061c}',
        ] {
            assert!(is_bidi_control(c) && is_invisible(c), "{c:?}");
        }
        assert!(
            !is_bidi_control('\u{200d}'),
            "the joiner is not a bidi control"
        );
        assert!(!is_bidi_control('a'));
    }

    #[test]
    fn parse_errors_echo_a_valid_request_id() {
        let e = parse_client(r#"{"type":"reserve","request_id":"r1","qty":"x"}"#).unwrap_err();
        assert_eq!(e.request_id.unwrap().as_str(), "r1");
        let e = parse_client("{not json").unwrap_err();
        assert!(e.message.starts_with("invalid JSON"));
    }

    #[test]
    fn an_optional_request_id_can_be_set_and_a_required_one_stays() {
        let id = |s: &str| Id::new(s).unwrap();
        let mut pin = parse_client(r#"{"type":"unpin"}"#).unwrap();
        assert_eq!(pin.request_id(), None);
        assert!(pin.set_request_id(Some(id("h1"))));
        assert_eq!(pin.request_id(), Some(&id("h1")));
        let mut reserve =
            parse_client(r#"{"type":"reserve","request_id":"r1","deal":"d","qty":1}"#).unwrap();
        assert!(!reserve.set_request_id(Some(id("other"))));
        assert_eq!(reserve.request_id(), Some(&id("r1")));
    }
}
