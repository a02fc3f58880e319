//! Tokens: HS256 JWTs with `sub`, `name`, `role`, `room`, `exp` (and `nbf` when present), and
//! the funnel's attribution: `src` (the traffic channel) and `aff` (the affiliate creator who
//! brought the viewer; commission is paid only on this signed claim).
//! Verification happens before a WebSocket upgrade and on every REST call; what a verified
//! identity may do is decided here too. A client is told only a generic reason ("invalid token",
//! "token expired" ...); the precise one is logged at debug level.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::commerce::{Buyer, Channel};
use crate::error::HubError;
use crate::protocol::{Id, Role, has_visible, is_bidi_control};

/// A token's claims.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id, required; must be a protocol id.
    pub sub: String,
    /// Display name; defaults to `sub`. Control and bidi control characters are removed; a name
    /// with nothing visible left counts as missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Defaults to `viewer`.
    #[serde(default = "default_role")]
    pub role: Role,
    /// A room id, or `"*"` for every room (admin tokens only).
    pub room: String,
    /// Expiry, Unix seconds. Required when `auth.require_exp` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// The traffic channel the viewer came from (`short_video`, `creator`, `paid`, `live`,
    /// `product_card`); anything else counts as `direct`. Wins over `?src=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    /// The affiliate creator whose video or link brought the viewer (a user id). Paid
    /// `affiliate_bps` of this viewer's orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aff: Option<String>,
}

fn default_role() -> Role {
    Role::Viewer
}

/// The `room` claim that means every room; only admin tokens may carry it.
pub const ANY_ROOM: &str = "*";

/// Which rooms an identity may enter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomScope {
    /// `"*"`: every room (admin tokens, and anonymous viewers, who are read-only).
    Any,
    /// Exactly this room.
    One(Id),
}

/// Who is connected or calling, after the token was verified.
#[derive(Clone, Debug)]
pub struct Identity {
    pub user: Id,
    pub name: String,
    pub role: Role,
    pub scope: RoomScope,
    /// A connection without a token: read-only.
    pub anonymous: bool,
    /// The channel this connection came through: the token's `src`, else `?src=`, else
    /// `direct` (see [`Identity::with_query_src`]).
    pub channel: Channel,
    /// True when `channel` comes from the signed token (a query cannot change it).
    pub signed_src: bool,
    /// The affiliate from the signed `aff` claim; never from a query parameter.
    pub aff: Option<Id>,
}

/// Why a token was refused. The messages are what a client sees, so they are generic: never a
/// library's error text. `Invalid` carries the precise reason for the hub's log only.
/// `Missing`, `Invalid`, `Expired`, `NotYetValid` and `MissingExp` map to 401,
/// `WrongRoom`/`WrongRole` to 403.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing token")]
    Missing,
    /// The reason (not shown to the client) is in the field.
    #[error("invalid token")]
    Invalid(String),
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token must carry exp")]
    MissingExp,
    /// The room that was asked for (not shown to the client).
    #[error("wrong room")]
    WrongRoom(String),
    #[error("{0}")]
    WrongRole(String),
    /// Refused at minting: `room: "*"` with a role other than admin.
    #[error(
        "room \"*\" is for admin and merchant tokens only: give viewer and host tokens a room id"
    )]
    AnyRoomNeedsAdmin,
}

impl From<AuthError> for HubError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing
            | AuthError::Invalid(_)
            | AuthError::Expired
            | AuthError::NotYetValid
            | AuthError::MissingExp => HubError::Unauthorized(e.to_string()),
            AuthError::WrongRoom(_) | AuthError::WrongRole(_) | AuthError::AnyRoomNeedsAdmin => {
                HubError::Forbidden(e.to_string())
            }
        }
    }
}

/// Longest display name kept; longer names are cut.
pub const MAX_NAME_CHARS: usize = 64;

/// Seconds a token's `exp` and `nbf` may be off (clock skew between the minter and the hub).
pub const CLOCK_LEEWAY_SECS: u64 = 5;

/// Verifies and mints tokens with one secret.
#[derive(Clone)]
pub struct Authenticator {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator { .. }")
    }
}

impl Authenticator {
    /// `require_exp`: refuse tokens that carry no `exp`. `exp` and `nbf` are checked when
    /// present, with [`CLOCK_LEEWAY_SECS`] of leeway for clocks that disagree.
    pub fn new(secret: &str, require_exp: bool) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = CLOCK_LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.required_spec_claims.clear();
        if require_exp {
            validation.required_spec_claims.insert("exp".into());
        }
        Authenticator {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// Signs `claims`. Refuses `room: "*"` on anything but an admin token, which
    /// [`Authenticator::verify`] would refuse anyway.
    pub fn mint(&self, claims: &Claims) -> Result<String, AuthError> {
        if claims.room == ANY_ROOM && !claims.role.is_shop_wide() {
            return Err(AuthError::AnyRoomNeedsAdmin);
        }
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }

    /// Checks signature, expiry, not-before and claim shapes. The precise reason for a refusal
    /// is logged at debug level; the error's message is generic.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        self.verify_claims(token).inspect_err(|e| {
            let reason = match e {
                AuthError::Invalid(reason) => reason.as_str(),
                _ => "",
            };
            tracing::debug!(error = %e, reason, "token refused");
        })
    }

    fn verify_claims(&self, token: &str) -> Result<Identity, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => AuthError::MissingExp,
                _ => AuthError::Invalid(e.to_string()),
            })?;
        let c = data.claims;
        let user = Id::new(c.sub).map_err(|e| AuthError::Invalid(format!("sub: {e}")))?;
        let scope = if c.room == ANY_ROOM {
            if !c.role.is_shop_wide() {
                return Err(AuthError::Invalid(format!(
                    "room \"*\" on a {:?} token (admin and merchant only)",
                    c.role
                )));
            }
            RoomScope::Any
        } else {
            RoomScope::One(Id::new(c.room).map_err(|e| AuthError::Invalid(format!("room: {e}")))?)
        };
        let name = c
            .name
            .map(|n| clean_name(&n))
            .filter(|n| has_visible(n))
            .unwrap_or_else(|| user.to_string());
        let aff = c
            .aff
            .map(|a| Id::new(a).map_err(|e| AuthError::Invalid(format!("aff: {e}"))))
            .transpose()?;
        Ok(Identity {
            user,
            name,
            role: c.role,
            scope,
            anonymous: false,
            channel: c.src.as_deref().map_or(Channel::Direct, Channel::parse),
            signed_src: c.src.is_some(),
            aff,
        })
    }
}

/// The display name as shown to everyone: without control characters and bidi controls (which
/// could make a name show reversed, or reorder the text after it), trimmed, cut to
/// [`MAX_NAME_CHARS`]. A name with nothing visible left is replaced by the user id (as a missing
/// one is) by the caller.
fn clean_name(n: &str) -> String {
    let kept: String = n
        .chars()
        .filter(|&c| !c.is_control() && !is_bidi_control(c))
        .collect();
    let cut: String = kept.trim().chars().take(MAX_NAME_CHARS).collect();
    cut.trim_end().to_owned()
}

impl Identity {
    /// A read-only viewer without a token; `id` must be unique per connection (the funnel
    /// counts each anonymous connection once), e.g. [`crate::hub::Hub::anonymous_id`].
    pub fn anonymous(id: String) -> Self {
        Identity {
            user: Id::generated(id),
            name: "Guest".into(),
            role: Role::Viewer,
            scope: RoomScope::Any,
            anonymous: true,
            channel: Channel::Direct,
            signed_src: false,
            aff: None,
        }
    }

    /// The identity with the channel of `?src=` when the token carries no `src` (the claim
    /// wins). Only the channel: a query can never name an affiliate.
    pub fn with_query_src(mut self, src: Option<&str>) -> Self {
        if let (false, Some(src)) = (self.signed_src, src) {
            self.channel = Channel::parse(src);
        }
        self
    }

    /// The buyer as the sales ledger attributes them: `channel` (the channel of their first
    /// join to the room, as the caller knows it) and the signed affiliate.
    pub fn buyer(&self, channel: Channel) -> Buyer {
        Buyer {
            channel,
            aff: self.aff.clone(),
        }
    }

    /// May this identity enter `room` at all?
    pub fn check_room(&self, room: &Id) -> Result<(), AuthError> {
        match &self.scope {
            RoomScope::Any => Ok(()),
            RoomScope::One(r) if r == room => Ok(()),
            RoomScope::One(_) => Err(AuthError::WrongRoom(room.to_string())),
        }
    }

    /// May this identity run host commands and read audits in `room`?
    pub fn check_host(&self, room: &Id) -> Result<(), AuthError> {
        self.check_room(room)?;
        match self.role {
            Role::Admin => Ok(()),
            Role::Host if !self.anonymous => Ok(()),
            _ => Err(AuthError::WrongRole(
                "only the room's host or an admin may do this".into(),
            )),
        }
    }

    /// May this identity settle orders and read the order feed (a merchant or an admin)?
    pub fn check_merchant(&self) -> Result<(), AuthError> {
        match self.role {
            Role::Admin | Role::Merchant if !self.anonymous => Ok(()),
            _ => Err(AuthError::WrongRole(
                "only a merchant or an admin token may do this".into(),
            )),
        }
    }

    /// May this identity join a room's WebSocket? Every role but a merchant's, which is for
    /// the order API only.
    pub fn check_joins(&self) -> Result<(), AuthError> {
        if self.role == Role::Merchant {
            Err(AuthError::WrongRole(
                "a merchant token is for the order API (/api/orders/...), not for joining a room"
                    .into(),
            ))
        } else {
            Ok(())
        }
    }

    /// May this identity send viewer commands (comment, like, reserve …)?
    pub fn check_viewer_command(&self) -> Result<(), AuthError> {
        if self.anonymous {
            Err(AuthError::WrongRole(
                "anonymous viewers are read-only: sign in to comment, like or buy".into(),
            ))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(role: Role, room: &str, exp: Option<u64>) -> Claims {
        Claims {
            sub: "u1".into(),
            name: Some("Ann".into()),
            role,
            room: room.into(),
            exp,
            src: None,
            aff: None,
        }
    }

    #[test]
    fn minted_tokens_verify_and_carry_their_claims() {
        let a = Authenticator::new("0123456789abcdef", false);
        let t = a.mint(&claims(Role::Host, "r1", None)).unwrap();
        let id = a.verify(&t).unwrap();
        assert_eq!(id.user.as_str(), "u1");
        assert_eq!(id.name, "Ann");
        assert!(id.check_host(&Id::new("r1").unwrap()).is_ok());
        assert!(id.check_room(&Id::new("r2").unwrap()).is_err());
    }

    #[test]
    fn a_token_signed_with_another_secret_is_invalid() {
        let a = Authenticator::new("0123456789abcdef", false);
        let b = Authenticator::new("fedcba9876543210", false);
        let t = b.mint(&claims(Role::Admin, "*", None)).unwrap();
        let e = a.verify(&t).unwrap_err();
        assert!(matches!(e, AuthError::Invalid(_)));
        assert_eq!(HubError::from(e).to_string(), "invalid token");
    }

    fn sign(payload: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &payload,
            &EncodingKey::from_secret(b"0123456789abcdef"),
        )
        .unwrap()
    }

    #[test]
    fn the_any_room_is_for_admins_only() {
        let a = Authenticator::new("0123456789abcdef", false);
        for role in [Role::Viewer, Role::Host] {
            assert!(matches!(
                a.mint(&claims(role, "*", None)),
                Err(AuthError::AnyRoomNeedsAdmin)
            ));
            let forged = sign(serde_json::json!({"sub": "u1", "role": role, "room": "*"}));
            let e = a.verify(&forged).unwrap_err();
            assert!(matches!(e, AuthError::Invalid(_)), "{e:?}");
        }
        let admin = a.mint(&claims(Role::Admin, "*", None)).unwrap();
        assert_eq!(a.verify(&admin).unwrap().scope, RoomScope::Any);
    }

    #[test]
    fn a_token_before_its_nbf_is_refused() {
        let a = Authenticator::new("0123456789abcdef", false);
        let now = crate::clock::now_ms() / 1000;
        let early = sign(serde_json::json!({"sub": "u1", "room": "r", "nbf": now + 120}));
        assert!(matches!(a.verify(&early), Err(AuthError::NotYetValid)));
        let within_leeway = sign(serde_json::json!({"sub": "u1", "room": "r", "nbf": now + 2}));
        assert!(a.verify(&within_leeway).is_ok());
        let past = sign(serde_json::json!({"sub": "u1", "room": "r", "nbf": now - 60}));
        assert!(a.verify(&past).is_ok());
    }

    #[test]
    fn refusals_never_quote_the_library() {
        let a = Authenticator::new("0123456789abcdef", true);
        let now = crate::clock::now_ms() / 1000;
        let cases = [
            ("not.a.jwt".to_owned(), "invalid token"),
            (
                sign(serde_json::json!({"room": "r", "exp": now + 60})),
                "invalid token",
            ),
            (
                sign(serde_json::json!({"sub": "a b", "room": "r", "exp": now + 60})),
                "invalid token",
            ),
            (
                sign(serde_json::json!({"sub": "u", "room": "r", "role": "god", "exp": now + 60})),
                "invalid token",
            ),
            (
                sign(serde_json::json!({"sub": "u", "room": "r"})),
                "token must carry exp",
            ),
            (
                sign(serde_json::json!({"sub": "u", "room": "r", "exp": now - 60})),
                "token expired",
            ),
        ];
        for (token, want) in cases {
            let e = HubError::from(a.verify(&token).unwrap_err());
            assert_eq!(
                (e.code(), e.to_string().as_str()),
                (crate::error::ErrorCode::Unauthorized, want)
            );
        }
    }

    fn name_of(name: &str) -> String {
        let a = Authenticator::new("0123456789abcdef", false);
        let t = sign(serde_json::json!({"sub": "u1", "room": "r", "name": name}));
        a.verify(&t).unwrap().name
    }

    #[test]
    fn names_lose_bidi_and_control_characters_and_an_empty_one_falls_back_to_the_user_id() {
        // "Ann" then a right-to-left override: "nimda" would show as "admin".
        assert_eq!(name_of("Ann\u{202e}nimda"), "Annnimda");
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{2066}', '\u{2067}', '\u{2068}',
            '\u{2069}', '\u{200e}', '\u{200f}', '\u{061c}',
        ] {
            assert_eq!(name_of(&format!("{c}Bo{c}b{c}")), "Bob", "{c:?}");
        }
        assert_eq!(name_of("Ann\0\u{7}\n"), "Ann");
        assert_eq!(name_of(" \u{202e} Ann "), "Ann");
        // Right-to-left scripts themselves are kept, and so is an emoji's joiner.
        assert_eq!(
            name_of("\u{05d3}\u{05e0}\u{05d4}"),
            "\u{05d3}\u{05e0}\u{05d4}"
        );
        assert_eq!(
            name_of("\u{1f469}\u{200d}\u{1f373}"),
            "\u{1f469}\u{200d}\u{1f373}"
        );
        for nothing in ["\u{202e}", "\u{200b}\u{feff}", "\u{2066}\u{2069} \0", ""] {
            assert_eq!(name_of(nothing), "u1", "{nothing:?}");
        }
        assert_eq!(name_of(&"x".repeat(100)).chars().count(), MAX_NAME_CHARS);
    }

    #[test]
    fn require_exp_refuses_tokens_without_exp() {
        let a = Authenticator::new("0123456789abcdef", true);
        let t = a.mint(&claims(Role::Viewer, "r1", None)).unwrap();
        assert!(matches!(a.verify(&t), Err(AuthError::MissingExp)));
    }
}
