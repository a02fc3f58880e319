//! The `Livehub-Signature` header, in Stripe's form: `t=UNIX_SECONDS,v1=HEX`, where HEX is the
//! HMAC-SHA256 of `"{t}.{body}"` under the endpoint's secret. A receiver recomputes it over the
//! raw body, compares in constant time, and refuses a `t` more than five minutes from its clock
//! (a replayed request). [`verify`] is that check, for receivers written in Rust and for tests.

use ring::hmac;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "livehub-signature";
/// The header that carries the event's id (the receiver's idempotency key).
pub const EVENT_ID_HEADER: &str = "livehub-event-id";
/// How far a signature's `t` may be from the receiver's clock: five minutes.
pub const TOLERANCE_S: u64 = 300;

/// The header value for `body` sent at `t` (Unix seconds).
pub fn sign(secret: &str, t: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={t},v1={}", hex(ctx.sign().as_ref()))
}

/// Why a signature was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the header is not t=...,v1=...")]
    Malformed,
    #[error("signed at {t}, more than {TOLERANCE_S} s from now ({now}): a replay?")]
    Stale { t: u64, now: u64 },
    #[error("no v1 signature matches the body")]
    Mismatch,
}

/// Checks `header` against `body` and `secret` at `now` (Unix seconds): the signing time within
/// [`TOLERANCE_S`] and one `v1` equal, compared in constant time.
pub fn verify(secret: &str, header: &str, body: &[u8], now: u64) -> Result<(), VerifyError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<u64>().ok(),
            Some(("v1", v)) => sigs.push(unhex(v).ok_or(VerifyError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::Malformed)?;
    if sigs.is_empty() {
        return Err(VerifyError::Malformed);
    }
    if t.abs_diff(now) > TOLERANCE_S {
        return Err(VerifyError::Stale { t, now });
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let signed = [t.to_string().as_bytes(), b".", body].concat();
    sigs.iter()
        .any(|s| hmac::verify(&key, &signed, s).is_ok())
        .then_some(())
        .ok_or(VerifyError::Mismatch)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_matches_hmac_sha256_of_t_dot_body() {
        // Python: hmac.new(b"whsec_0123456789abcdef", b'1700000000.{"a":1}', sha256).hexdigest()
        let h = sign("whsec_0123456789abcdef", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            h,
            "t=1700000000,v1=9f5e37cdc7ea587c7c02062d93283cad000d66a831b2a1676418696db47ed6c2"
        );
        assert_eq!(
            verify("whsec_0123456789abcdef", &h, br#"{"a":1}"#, 1_700_000_010),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_a_wrong_secret_or_an_old_time_is_refused() {
        let h = sign("whsec_0123456789abcdef", 1_700_000_000, b"body");
        let now = 1_700_000_000;
        assert_eq!(
            verify("whsec_0123456789abcdef", &h, b"bodY", now),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("whsec_other_secret_000", &h, b"body", now),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("whsec_0123456789abcdef", &h, b"body", now + TOLERANCE_S + 1),
            Err(VerifyError::Stale {
                t: now,
                now: now + TOLERANCE_S + 1
            })
        );
        for bad in ["", "t=1", "v1=00", "t=x,v1=00", "t=1700000000,v1=0g"] {
            assert_eq!(
                verify("whsec_0123456789abcdef", bad, b"body", now),
                Err(VerifyError::Malformed),
                "{bad}"
            );
        }
    }
}
