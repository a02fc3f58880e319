//! Protocol ids (room, user, deal, product, comment, reservation, request): `[A-Za-z0-9_-]{1,64}`.
//! A leaf, so the commerce terms and the protocol can both name an id without importing each
//! other; [`crate::protocol`] re-exports everything here.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A stable 64-bit digest of `bytes` (FNV-1a), the same on every node and every run: the one
/// the hub names things by (deals' order ids, counter slots, auction lots).
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// Longest id the protocol accepts (`[A-Za-z0-9_-]{1,64}`).
pub const MAX_ID_LEN: usize = 64;

/// True when `s` is a protocol id: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A protocol id (room, user, deal, product, comment, reservation, request). Construction
/// validates the charset and length, so every `Id` in the hub is well formed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Id(String);

impl Id {
    /// Validates `s` as an id; the error names what is wrong.
    pub fn new(s: impl Into<String>) -> Result<Self, String> {
        let s = s.into();
        if is_valid_id(&s) {
            Ok(Id(s))
        } else {
            Err(format!(
                "invalid id {s:?}: expected 1 to 64 of [A-Za-z0-9_-]"
            ))
        }
    }

    /// An id the hub generated itself from id-safe parts (a prefix and numbers); checked in
    /// debug builds.
    pub(crate) fn generated(s: String) -> Self {
        debug_assert!(is_valid_id(&s), "generated id {s:?} is not a protocol id");
        Id(s)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Id {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Id::new(s)
    }
}

impl From<Id> for String {
    fn from(id: Id) -> String {
        id.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for Id {
    fn borrow(&self) -> &str {
        &self.0
    }
}
