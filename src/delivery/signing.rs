//! Webhook signatures: how a receiver can tell that a delivery came from us
//! and was not altered on the way.
//!
//! Every delivery carries two signatures so that receivers written for
//! either convention can check it:
//!
//! * `X-Webhook-Signature` ("seed" format): lowercase hex of
//!   HMAC-SHA256(key, raw body). This is what a PHP receiver gets from
//!   `hash_hmac('sha256', $body, $secret)`.
//! * `webhook-signature` ([Standard Webhooks](https://www.standardwebhooks.com/)):
//!   `v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`. During a
//!   secret rotation the header holds one such signature per active key,
//!   separated by spaces, so receivers holding either the old or the new
//!   secret accept the delivery.
//!
//! A secret that starts with `whsec_` is a Standard Webhooks secret: the key
//! is the base64 decoding of the rest. Any other secret is used as its raw
//! UTF-8 bytes. New secrets are made by [`generate_secret`].
//!
//! The `verify_*` functions are the receiver's side; the daemon uses them in
//! tests and in its self-check tooling. They compare in constant time.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Prefix that marks a Standard Webhooks secret (base64 key follows).
pub const WHSEC_PREFIX: &str = "whsec_";

/// Name of the header carrying the hex HMAC of the body ("seed" format).
pub const SEED_SIGNATURE_HEADER: &str = "X-Webhook-Signature";

/// Name of the Standard Webhooks signature header.
pub const STANDARD_SIGNATURE_HEADER: &str = "webhook-signature";

/// Default tolerance for the Standard Webhooks timestamp check (5 minutes),
/// the value recommended by the specification.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Why a configured secret cannot be used as a signing key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The secret is the empty string.
    #[error(
        "webhook secret is empty: set a secret, e.g. one made by `generate_secret` (whsec_...)"
    )]
    Empty,
    /// The part after `whsec_` is not valid standard base64.
    #[error("webhook secret starts with \"whsec_\" but the rest is not valid base64: copy the whole secret exactly as issued, or use a secret without the whsec_ prefix")]
    InvalidBase64,
    /// The part after `whsec_` decodes to zero bytes.
    #[error("webhook secret \"whsec_\" has no key after the prefix: copy the whole secret exactly as issued")]
    EmptyKey,
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The `webhook-timestamp` header is absent or blank.
    #[error("missing webhook-timestamp header")]
    MissingTimestamp,
    /// The `webhook-timestamp` header is not an integer number of seconds.
    #[error("invalid webhook-timestamp header {0:?}: expected Unix seconds")]
    InvalidTimestamp(String),
    /// The timestamp is further in the past than the tolerance allows.
    #[error("webhook timestamp {timestamp} is too old (now {now}, tolerance {tolerance_secs}s): possible replay, or the clocks of sender and receiver differ")]
    TimestampTooOld {
        /// Timestamp from the header.
        timestamp: i64,
        /// Receiver's current Unix time.
        now: i64,
        /// Allowed skew in seconds.
        tolerance_secs: u64,
    },
    /// The timestamp is further in the future than the tolerance allows.
    #[error("webhook timestamp {timestamp} is too far in the future (now {now}, tolerance {tolerance_secs}s): check the clocks of sender and receiver")]
    TimestampTooNew {
        /// Timestamp from the header.
        timestamp: i64,
        /// Receiver's current Unix time.
        now: i64,
        /// Allowed skew in seconds.
        tolerance_secs: u64,
    },
    /// The `webhook-id` header is absent or blank.
    #[error("missing webhook-id header")]
    MissingMessageId,
    /// The signature header is empty or not in the expected format.
    #[error("malformed signature header: {0}")]
    MalformedHeader(&'static str),
    /// No signature in the header matches the body with this key.
    #[error("no matching signature: the body was altered or the secret differs from the sender's")]
    NoMatchingSignature,
}

/// An HMAC-SHA256 key derived from a webhook secret.
///
/// Holds the keyed HMAC state, ready to sign. Its `Debug` output never shows
/// the key.
#[derive(Clone)]
pub struct SigningKey(HmacSha256);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// Derives the key from a configured secret.
    ///
    /// `whsec_<base64>` yields the decoded bytes (an error if they do not
    /// decode or are empty); any other non-empty secret yields its UTF-8
    /// bytes, as PHP's `hash_hmac` would use it.
    pub fn from_secret(secret: &str) -> Result<SigningKey, SecretError> {
        if secret.is_empty() {
            return Err(SecretError::Empty);
        }
        let bytes = match secret.strip_prefix(WHSEC_PREFIX) {
            Some(rest) => {
                let key = BASE64
                    .decode(rest)
                    .map_err(|_| SecretError::InvalidBase64)?;
                if key.is_empty() {
                    return Err(SecretError::EmptyKey);
                }
                key
            }
            None => secret.as_bytes().to_vec(),
        };
        // HMAC accepts keys of any length, so this cannot fail; map it anyway
        // rather than unwrap.
        HmacSha256::new_from_slice(&bytes)
            .map(SigningKey)
            .map_err(|_| SecretError::EmptyKey)
    }

    /// HMAC-SHA256 over the concatenation of `parts`.
    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// Makes a new Standard Webhooks secret: `whsec_` followed by the standard
/// base64 of 32 random bytes from the operating system's CSPRNG.
pub fn generate_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{WHSEC_PREFIX}{}", BASE64.encode(bytes))
}

/// Value of the `X-Webhook-Signature` header: lowercase hex of
/// HMAC-SHA256(key, body).
pub fn seed_signature(key: &SigningKey, body: &[u8]) -> String {
    to_hex(&key.mac(&[body]))
}

/// One Standard Webhooks signature, `v1,<base64>`, over
/// `"{msg_id}.{timestamp}.{body}"`.
pub fn standard_signature(key: &SigningKey, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = standard_mac(key, msg_id, timestamp, body);
    format!("v1,{}", BASE64.encode(mac))
}

/// Value for the webhook-signature header: signatures of all keys, space-separated.
pub fn standard_signature_header(
    keys: &[SigningKey],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    keys.iter()
        .map(|k| standard_signature(k, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks an `X-Webhook-Signature` value (hex, either case, surrounding
/// whitespace ignored) against the body, in constant time.
pub fn verify_seed(key: &SigningKey, header: &str, body: &[u8]) -> Result<(), VerifyError> {
    let given = from_hex(header.trim()).ok_or(VerifyError::MalformedHeader(
        "expected 64 hexadecimal digits",
    ))?;
    let expected = key.mac(&[body]);
    if bool::from(given.ct_eq(&expected)) {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

/// Checks that at least one v1 signature in the space-separated header matches, and that timestamp is within `tolerance` of `now_unix`.
///
/// Signatures of other versions are ignored. Each entry must look like
/// `<version>,<signature>`; an empty header or an entry without a comma is
/// [`VerifyError::MalformedHeader`].
pub fn verify_standard(
    key: &SigningKey,
    header: &str,
    msg_id: &str,
    timestamp_header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    if msg_id.trim().is_empty() {
        return Err(VerifyError::MissingMessageId);
    }
    let ts_text = timestamp_header.trim();
    if ts_text.is_empty() {
        return Err(VerifyError::MissingTimestamp);
    }
    let timestamp: i64 = ts_text
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp(ts_text.to_owned()))?;
    let tolerance_secs = tolerance.as_secs();
    let tol = i64::try_from(tolerance_secs).unwrap_or(i64::MAX);
    if timestamp < now_unix.saturating_sub(tol) {
        return Err(VerifyError::TimestampTooOld {
            timestamp,
            now: now_unix,
            tolerance_secs,
        });
    }
    if timestamp > now_unix.saturating_add(tol) {
        return Err(VerifyError::TimestampTooNew {
            timestamp,
            now: now_unix,
            tolerance_secs,
        });
    }

    let mut entries = header.split_ascii_whitespace().peekable();
    if entries.peek().is_none() {
        return Err(VerifyError::MalformedHeader("no signatures"));
    }
    let expected = standard_mac(key, msg_id, timestamp, body);
    let mut matched = false;
    for entry in entries {
        let (version, sig) = entry.split_once(',').ok_or(VerifyError::MalformedHeader(
            "expected space-separated \"v1,<base64>\" entries",
        ))?;
        if version != "v1" {
            continue;
        }
        if let Ok(given) = BASE64.decode(sig) {
            // Keep looping after a match so the time taken does not depend
            // on which entry matched.
            matched |= bool::from(given.as_slice().ct_eq(&expected));
        }
    }
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

fn standard_mac(key: &SigningKey, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    let ts = timestamp.to_string();
    key.mac(&[msg_id.as_bytes(), b".", ts.as_bytes(), b".", body])
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Decodes exactly 32 bytes of hex; `None` for anything else.
fn from_hex(s: &str) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *o = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SW_TS: i64 = 1614265330;
    const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SW_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn key(secret: &str) -> SigningKey {
        SigningKey::from_secret(secret).expect("valid test secret")
    }

    #[test]
    fn standard_webhooks_published_vector() {
        let k = key(SW_SECRET);
        assert_eq!(standard_signature(&k, SW_ID, SW_TS, SW_BODY), SW_SIG);
        assert_eq!(
            verify_standard(
                &k,
                SW_SIG,
                SW_ID,
                "1614265330",
                SW_BODY,
                SW_TS,
                DEFAULT_TOLERANCE
            ),
            Ok(())
        );
    }

    #[test]
    fn php_hash_hmac_vector() {
        let k = key("secret");
        let sig = seed_signature(&k, b"hello");
        assert_eq!(
            sig,
            "88aab3ede8d3adf94d26ab90d3bafd4a2083070c3bcce9c014ee04a443847c0b"
        );
        assert_eq!(verify_seed(&k, &sig, b"hello"), Ok(()));
        assert_eq!(
            verify_seed(&k, &format!("  {}\n", sig.to_uppercase()), b"hello"),
            Ok(())
        );
    }

    #[test]
    fn seed_rejects_tampering_and_garbage() {
        let k = key("secret");
        let sig = seed_signature(&k, b"hello");
        assert_eq!(
            verify_seed(&k, &sig, b"hellp"),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            verify_seed(&key("other"), &sig, b"hello"),
            Err(VerifyError::NoMatchingSignature)
        );
        assert!(matches!(
            verify_seed(&k, "", b"hello"),
            Err(VerifyError::MalformedHeader(_))
        ));
        assert!(matches!(
            verify_seed(&k, &sig[..62], b"hello"),
            Err(VerifyError::MalformedHeader(_))
        ));
        let bad = format!("zz{}", &sig[2..]);
        assert!(matches!(
            verify_seed(&k, &bad, b"hello"),
            Err(VerifyError::MalformedHeader(_))
        ));
        // Multi-byte UTF-8 must not panic the hex decoder.
        let utf8 = "é".repeat(32);
        assert!(matches!(
            verify_seed(&k, &utf8, b"hello"),
            Err(VerifyError::MalformedHeader(_))
        ));
    }

    #[test]
    fn secret_parsing() {
        assert_eq!(SigningKey::from_secret("").unwrap_err(), SecretError::Empty);
        assert_eq!(
            SigningKey::from_secret("whsec_").unwrap_err(),
            SecretError::EmptyKey
        );
        assert_eq!(
            SigningKey::from_secret("whsec_not base64!").unwrap_err(),
            SecretError::InvalidBase64
        );
        assert_eq!(
            SigningKey::from_secret("whsec_QUJD=").unwrap_err(),
            SecretError::InvalidBase64
        );
        // whsec_ key is the decoded bytes: "QUJD" is base64 of "ABC".
        assert_eq!(
            seed_signature(&key("whsec_QUJD"), b"x"),
            seed_signature(&key("ABC"), b"x")
        );
        // Only the exact lowercase prefix marks a whsec_ secret.
        assert_eq!(seed_signature(&key("WHSEC_QUJD"), b"x").len(), 64);
        assert_ne!(
            seed_signature(&key("WHSEC_QUJD"), b"x"),
            seed_signature(&key("ABC"), b"x")
        );
    }

    #[test]
    fn debug_hides_key() {
        assert_eq!(format!("{:?}", key("hunter2")), "SigningKey(..)");
    }

    #[test]
    fn generated_secrets_are_usable_and_distinct() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert!(a.starts_with("whsec_"));
        assert_eq!(BASE64.decode(&a[6..]).expect("base64").len(), 32);
        let k = key(&a);
        let sig = standard_signature(&k, "msg_1", 10, b"{}");
        assert_eq!(
            verify_standard(&k, &sig, "msg_1", "10", b"{}", 10, DEFAULT_TOLERANCE),
            Ok(())
        );
    }

    #[test]
    fn rotation_header() {
        let old = key(SW_SECRET);
        let new = key("whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=");
        let stranger = key("whsec_c3RyYW5nZXI=");
        let header = standard_signature_header(&[old.clone(), new.clone()], SW_ID, SW_TS, SW_BODY);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], SW_SIG);
        assert_eq!(parts[1], standard_signature(&new, SW_ID, SW_TS, SW_BODY));
        let check = |k: &SigningKey| {
            verify_standard(
                k,
                &header,
                SW_ID,
                "1614265330",
                SW_BODY,
                SW_TS + 60,
                DEFAULT_TOLERANCE,
            )
        };
        assert_eq!(check(&old), Ok(()));
        assert_eq!(check(&new), Ok(()));
        assert_eq!(check(&stranger), Err(VerifyError::NoMatchingSignature));
        assert_eq!(standard_signature_header(&[], SW_ID, SW_TS, SW_BODY), "");
    }

    #[test]
    fn standard_rejects_tampering() {
        let k = key(SW_SECRET);
        let ok = |h: &str, id: &str, ts: &str, body: &[u8]| {
            verify_standard(&k, h, id, ts, body, SW_TS, DEFAULT_TOLERANCE)
        };
        assert_eq!(
            ok(SW_SIG, SW_ID, "1614265330", br#"{"test": 2432232315}"#),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            ok(SW_SIG, "msg_other", "1614265330", SW_BODY),
            Err(VerifyError::NoMatchingSignature)
        );
        // A different timestamp inside the tolerance still breaks the signature.
        assert_eq!(
            ok(SW_SIG, SW_ID, "1614265331", SW_BODY),
            Err(VerifyError::NoMatchingSignature)
        );
        // Wrong version, bad base64 and truncated signatures are non-matches.
        let v2 = SW_SIG.replacen("v1,", "v2,", 1);
        assert_eq!(
            ok(&v2, SW_ID, "1614265330", SW_BODY),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            ok("v1,%%%", SW_ID, "1614265330", SW_BODY),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            ok(&SW_SIG[..20], SW_ID, "1614265330", SW_BODY),
            Err(VerifyError::NoMatchingSignature)
        );
        // A valid v1 among junk versions still matches.
        assert_eq!(
            ok(&format!("v1a,xyz {SW_SIG}"), SW_ID, "1614265330", SW_BODY),
            Ok(())
        );
    }

    #[test]
    fn standard_header_and_timestamp_errors() {
        let k = key(SW_SECRET);
        let tol = Duration::from_secs(300);
        let v = |h: &str, ts: &str, now: i64| verify_standard(&k, h, SW_ID, ts, SW_BODY, now, tol);
        assert_eq!(v(SW_SIG, "", SW_TS), Err(VerifyError::MissingTimestamp));
        assert_eq!(v(SW_SIG, "  ", SW_TS), Err(VerifyError::MissingTimestamp));
        assert_eq!(
            v(SW_SIG, "12a", SW_TS),
            Err(VerifyError::InvalidTimestamp("12a".into()))
        );
        assert_eq!(
            v(SW_SIG, "99999999999999999999", SW_TS),
            Err(VerifyError::InvalidTimestamp("99999999999999999999".into()))
        );
        assert_eq!(v(SW_SIG, "1614265330", SW_TS + 300), Ok(()));
        assert_eq!(v(SW_SIG, "1614265330", SW_TS - 300), Ok(()));
        assert_eq!(
            v(SW_SIG, "1614265330", SW_TS + 301),
            Err(VerifyError::TimestampTooOld {
                timestamp: SW_TS,
                now: SW_TS + 301,
                tolerance_secs: 300
            })
        );
        assert_eq!(
            v(SW_SIG, "1614265330", SW_TS - 301),
            Err(VerifyError::TimestampTooNew {
                timestamp: SW_TS,
                now: SW_TS - 301,
                tolerance_secs: 300
            })
        );
        // Extreme values must not overflow.
        assert!(matches!(
            v(SW_SIG, "-9223372036854775808", i64::MAX),
            Err(VerifyError::TimestampTooOld { .. })
        ));
        assert!(matches!(
            v(SW_SIG, "9223372036854775807", i64::MIN),
            Err(VerifyError::TimestampTooNew { .. })
        ));
        assert!(matches!(
            v("", "1614265330", SW_TS),
            Err(VerifyError::MalformedHeader(_))
        ));
        assert!(matches!(
            v("v1", "1614265330", SW_TS),
            Err(VerifyError::MalformedHeader(_))
        ));
        assert_eq!(
            verify_standard(&k, SW_SIG, " ", "1614265330", SW_BODY, SW_TS, tol),
            Err(VerifyError::MissingMessageId)
        );
        assert!(VerifyError::TimestampTooOld {
            timestamp: 1,
            now: 400,
            tolerance_secs: 300
        }
        .to_string()
        .contains("too old"));
    }
}
