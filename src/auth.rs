//! Tokens: HS256 JWTs with `sub`, `name`, `role`, `room`, `exp`. Verification happens before a
//! WebSocket upgrade and on every REST call; what a verified identity may do is decided here too.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::error::HubError;
use crate::protocol::{Id, Role};

/// A token's claims.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id, required; must be a protocol id.
    pub sub: String,
    /// Display name; defaults to `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Defaults to `viewer`.
    #[serde(default = "default_role")]
    pub role: Role,
    /// A room id, or `"*"` for every room.
    pub room: String,
    /// Expiry, Unix seconds. Required when `auth.require_exp` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
}

fn default_role() -> Role {
    Role::Viewer
}

/// Which rooms an identity may enter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomScope {
    /// `"*"`: every room.
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
}

/// Why a token was refused. `Invalid` maps to 401, `WrongRoom`/`WrongRole` to 403.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token has expired")]
    Expired,
    #[error("token is not valid for room {0}")]
    WrongRoom(String),
    #[error("{0}")]
    WrongRole(String),
}

impl From<AuthError> for HubError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing | AuthError::Invalid(_) | AuthError::Expired => {
                HubError::Unauthorized(e.to_string())
            }
            AuthError::WrongRoom(_) | AuthError::WrongRole(_) => HubError::Forbidden(e.to_string()),
        }
    }
}

/// Longest display name kept; longer names are cut.
pub const MAX_NAME_CHARS: usize = 64;

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
    /// `require_exp`: refuse tokens that carry no `exp`.
    pub fn new(secret: &str, require_exp: bool) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
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

    /// Signs `claims`.
    pub fn mint(&self, claims: &Claims) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }

    /// Checks signature, expiry and claim shapes.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid(e.to_string()),
            })?;
        let c = data.claims;
        let user = Id::new(c.sub).map_err(|e| AuthError::Invalid(format!("sub: {e}")))?;
        let scope = if c.room == "*" {
            RoomScope::Any
        } else {
            RoomScope::One(Id::new(c.room).map_err(|e| AuthError::Invalid(format!("room: {e}")))?)
        };
        let name = c
            .name
            .map(|n| clean_name(&n))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| user.to_string());
        Ok(Identity {
            user,
            name,
            role: c.role,
            scope,
            anonymous: false,
        })
    }
}

fn clean_name(n: &str) -> String {
    n.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect()
}

impl Identity {
    /// A read-only viewer without a token.
    pub fn anonymous(n: u64) -> Self {
        Identity {
            user: Id::generated(format!("anon-{n}")),
            name: "Guest".into(),
            role: Role::Viewer,
            scope: RoomScope::Any,
            anonymous: true,
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
        let t = b.mint(&claims(Role::Viewer, "*", None)).unwrap();
        assert!(matches!(a.verify(&t), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn require_exp_refuses_tokens_without_exp() {
        let a = Authenticator::new("0123456789abcdef", true);
        let t = a.mint(&claims(Role::Viewer, "*", None)).unwrap();
        assert!(a.verify(&t).is_err());
    }
}
