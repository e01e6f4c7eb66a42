//! Webhook secrets encrypted at rest: the `secret` and `previous_secret`
//! columns of the `webhooks` table, sealed with `[admin] secrets_key`.
//!
//! A secret in the table is either plaintext (as the PHP app, an operator's
//! SQL, or rowhook without a key wrote it) or sealed, in a self-describing
//! text form:
//!
//! ```text
//! enc:v1:<key id>:<base64 of nonce (12 bytes) + ciphertext + tag (16 bytes)>
//! ```
//!
//! sealed with ChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`, a fresh
//! random nonce each time). The key id is the first 8 hex digits of the
//! SHA-256 of the key: it names which key sealed a secret, so that keys can
//! be rotated ([`Keyring`] holds the current key and the previous one, both
//! opening, only the current one sealing), and a secret no configured key
//! opens is reported by its key id, never by its bytes. The version and key
//! id are bound to the ciphertext as associated data: changing either makes
//! it not open.
//!
//! Why here, in the state stage: both readers of the table need it (the
//! store at start and for `rowhook rotate-secrets-key`, the delivery stage
//! for the binlog's row images), and the state stage uses no other stage.
//! Where it is used: the admin API seals a new secret before it is stored;
//! the delivery actor opens a webhook's secrets when it makes its signing
//! keys (the only place a secret is used), whatever read the row; the router
//! seals plaintext it sees ([`Keyring::reseal`]) with a guarded `UPDATE`
//! whose own row image is sealed, so it cannot loop.
//!
//! A secret is never printed: [`Keyring`]'s `Debug` shows key ids only, and
//! errors name a key id, never a secret or a key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

/// What marks a sealed secret.
pub const SEALED_PREFIX: &str = "enc:";
/// The current sealed form's prefix.
const V1: &str = "enc:v1:";
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;
/// The bytes of a key.
pub const KEY_BYTES: usize = 32;

/// Why a stored secret cannot be opened, or a secret not sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error(
        "the secret is sealed with key id {key_id}, and no configured key has that id: set [admin] secrets_key \
         (or secrets_key_previous while rotating) to the key that sealed it"
    )]
    UnknownKey { key_id: String },
    #[error(
        "the secret sealed with key id {key_id} does not open: it was altered in the table (or cut short), \
         or another key has the same id; set a new secret (POST /api/webhooks/{{id}}/rotate-secret)"
    )]
    Tampered { key_id: String },
    #[error(
        "the secret starts with \"enc:\" but is not rowhook's sealed form (enc:v1:<key id>:<base64>): \
         set a new secret (POST /api/webhooks/{{id}}/rotate-secret)"
    )]
    Malformed,
    #[error("the secret is too long to seal")]
    TooLong,
}

impl SecretsError {
    /// The key id the error is about, when it names one.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            SecretsError::UnknownKey { key_id } | SecretsError::Tampered { key_id } => Some(key_id),
            SecretsError::Malformed | SecretsError::TooLong => None,
        }
    }
}

/// One key: 32 bytes and its id.
#[derive(Clone)]
pub struct SecretsKey {
    id: String,
    cipher: ChaCha20Poly1305,
}

impl SecretsKey {
    pub fn new(bytes: [u8; KEY_BYTES]) -> SecretsKey {
        SecretsKey {
            id: key_id(&bytes),
            cipher: ChaCha20Poly1305::new(&Key::from(bytes)),
        }
    }

    /// The key's id: the first 8 hex digits of its SHA-256.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn seal(&self, plaintext: &str) -> Result<String, SecretsError> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(&self.id);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::TooLong)?;
        let mut bytes = Vec::with_capacity(NONCE_BYTES + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Ok(format!("{V1}{}:{}", self.id, STANDARD.encode(bytes)))
    }

    fn open(&self, body: &str) -> Result<String, SecretsError> {
        let tampered = || SecretsError::Tampered {
            key_id: self.id.clone(),
        };
        let bytes = STANDARD.decode(body).map_err(|_| tampered())?;
        if bytes.len() < NONCE_BYTES + TAG_BYTES {
            return Err(tampered());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| tampered())?;
        let aad = associated_data(&self.id);
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| tampered())?;
        String::from_utf8(plain).map_err(|_| tampered())
    }
}

/// The id of a key: the first 8 hex digits of its SHA-256.
pub fn key_id(bytes: &[u8; KEY_BYTES]) -> String {
    let digest = Sha256::digest(bytes);
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// What the ciphertext is bound to besides the key: the form's version and the key id.
fn associated_data(key_id: &str) -> String {
    format!("rowhook webhook secret v1 {key_id}")
}

/// Whether a stored secret is in the sealed form (or claims to be).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// The key id a sealed secret names (None: plaintext, or not the v1 form).
pub fn sealed_key_id(stored: &str) -> Option<&str> {
    stored.strip_prefix(V1)?.split_once(':').map(|(id, _)| id)
}

/// The keys rowhook seals and opens secrets with: the current key (none:
/// secrets are stored as given, today's behaviour) and the previous one,
/// which still opens while every row is re-sealed with the current one.
#[derive(Clone, Default)]
pub struct Keyring {
    current: Option<SecretsKey>,
    previous: Option<SecretsKey>,
}

impl Keyring {
    pub fn new(current: Option<[u8; KEY_BYTES]>, previous: Option<[u8; KEY_BYTES]>) -> Keyring {
        Keyring {
            current: current.map(SecretsKey::new),
            previous: previous.map(SecretsKey::new),
        }
    }

    /// Whether secrets are sealed (a current key is configured).
    pub fn seals(&self) -> bool {
        self.current.is_some()
    }

    /// The current key's id.
    pub fn current_id(&self) -> Option<&str> {
        self.current.as_ref().map(SecretsKey::id)
    }

    /// The form to store `plaintext` in: sealed with the current key, or as
    /// it is without one.
    pub fn seal(&self, plaintext: &str) -> Result<String, SecretsError> {
        match &self.current {
            Some(key) => key.seal(plaintext),
            None => Ok(plaintext.to_string()),
        }
    }

    /// The plaintext of a stored secret: a plaintext one as it is, a sealed
    /// one opened by the key its id names.
    pub fn open(&self, stored: &str) -> Result<String, SecretsError> {
        if !is_sealed(stored) {
            return Ok(stored.to_string());
        }
        let rest = stored.strip_prefix(V1).ok_or(SecretsError::Malformed)?;
        let (id, body) = rest.split_once(':').ok_or(SecretsError::Malformed)?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SecretsError::Malformed);
        }
        let key = [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .find(|k| k.id == id)
            .ok_or_else(|| SecretsError::UnknownKey {
                key_id: id.to_string(),
            })?;
        key.open(body)
    }

    /// What a stored secret should become: Some(sealed with the current key)
    /// when it is plaintext or sealed with another key; None when it is
    /// sealed with the current key already, or there is no current key.
    pub fn reseal(&self, stored: &str) -> Result<Option<String>, SecretsError> {
        let Some(current) = &self.current else {
            return Ok(None);
        };
        if sealed_key_id(stored) == Some(current.id()) {
            return Ok(None);
        }
        let plaintext = self.open(stored)?;
        current.seal(&plaintext).map(Some)
    }
}

// Key ids only: never a key.
impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.as_ref().map(SecretsKey::id))
            .field("previous", &self.previous.as_ref().map(SecretsKey::id))
            .finish()
    }
}

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 32] = [7; 32];
    const B: [u8; 32] = [9; 32];
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn ring(current: Option<[u8; 32]>, previous: Option<[u8; 32]>) -> Keyring {
        Keyring::new(current, previous)
    }

    #[test]
    fn a_sealed_secret_opens_to_itself_and_contains_nothing_of_it() {
        let keys = ring(Some(A), None);
        let sealed = keys.seal(SECRET).unwrap();
        assert!(
            sealed.starts_with(&format!("enc:v1:{}:", key_id(&A))),
            "{sealed}"
        );
        assert!(!sealed.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") && !sealed.contains("whsec_"));
        assert_eq!(keys.open(&sealed).unwrap(), SECRET);
        // A fresh nonce each time: the same secret never seals the same twice.
        assert_ne!(keys.seal(SECRET).unwrap(), sealed);
        // The longest secret the API takes (255 bytes) fits the column (VARCHAR(512)).
        let long = "x".repeat(255);
        let sealed = keys.seal(&long).unwrap();
        assert!(sealed.len() <= 512, "{}", sealed.len());
        assert_eq!(keys.open(&sealed).unwrap(), long);
        assert_eq!(keys.open(&keys.seal("").unwrap()).unwrap(), "");
    }

    #[test]
    fn a_wrong_or_missing_key_is_named_by_its_id() {
        let sealed = ring(Some(A), None).seal(SECRET).unwrap();
        let id = key_id(&A);
        for other in [ring(Some(B), None), ring(None, None), ring(None, Some(B))] {
            let err = other.open(&sealed).unwrap_err();
            assert_eq!(err, SecretsError::UnknownKey { key_id: id.clone() });
            assert!(
                err.to_string().contains(&id) && !err.to_string().contains(SECRET),
                "{err}"
            );
        }
        // A different key that claims the same id does not open it either.
        let forged = sealed.replace(&id, &key_id(&B));
        assert_eq!(
            ring(Some(B), None).open(&forged).unwrap_err(),
            SecretsError::Tampered { key_id: key_id(&B) }
        );
    }

    #[test]
    fn tampered_ciphertext_does_not_open() {
        let keys = ring(Some(A), None);
        let sealed = keys.seal(SECRET).unwrap();
        let (head, body) = sealed.rsplit_once(':').unwrap();
        let mut bytes = STANDARD.decode(body).unwrap();
        for i in [0, NONCE_BYTES, bytes.len() - 1] {
            bytes[i] ^= 1;
            let altered = format!("{head}:{}", STANDARD.encode(&bytes));
            assert!(
                matches!(keys.open(&altered), Err(SecretsError::Tampered { .. })),
                "byte {i}"
            );
            bytes[i] ^= 1;
        }
        for bad in [
            format!("{head}:"),
            format!("{head}:!!!"),
            format!("{head}:{}", STANDARD.encode([1u8; 27])),
            sealed[..sealed.len() - 4].to_string(),
        ] {
            assert!(
                matches!(keys.open(&bad), Err(SecretsError::Tampered { .. })),
                "{bad}"
            );
        }
        for bad in [
            "enc:",
            "enc:v2:abcd:AAAA",
            "enc:v1:",
            "enc:v1:nothex:AAAA",
            "enc:v1::AAAA",
            "enc:v1:abcd",
        ] {
            assert_eq!(
                keys.open(bad).unwrap_err(),
                SecretsError::Malformed,
                "{bad}"
            );
        }
    }

    #[test]
    fn plaintext_passes_through_and_no_key_stores_as_given() {
        let php = "275670f9a4d4c02741e23b2c29dd6674f1197a051345278cc58d110c301418cb";
        for keys in [ring(Some(A), None), ring(None, None)] {
            assert_eq!(keys.open(php).unwrap(), php);
            assert_eq!(keys.open(SECRET).unwrap(), SECRET);
        }
        let none = ring(None, None);
        assert!(!none.seals());
        assert_eq!(none.seal(SECRET).unwrap(), SECRET);
        assert_eq!(none.reseal(php).unwrap(), None);
        assert!(!is_sealed(php) && is_sealed("enc:v1:x:y"));
    }

    #[test]
    fn key_ids_are_short_stable_hashes() {
        assert_eq!(key_id(&A), key_id(&A));
        assert_ne!(key_id(&A), key_id(&B));
        assert_eq!(key_id(&A).len(), 8);
        assert!(key_id(&A).bytes().all(|b| b.is_ascii_hexdigit()));
        // The SHA-256 of 32 zero bytes begins 66687aad.
        assert_eq!(key_id(&[0; 32]), "66687aad");
        assert_eq!(
            ring(Some(A), Some(B)).current_id(),
            Some(key_id(&A).as_str())
        );
        let sealed = ring(Some(A), None).seal(SECRET).unwrap();
        assert_eq!(sealed_key_id(&sealed), Some(key_id(&A).as_str()));
        assert_eq!(sealed_key_id(SECRET), None);
    }

    #[test]
    fn rotation_reseals_what_the_previous_key_or_nobody_sealed() {
        let old = ring(Some(A), None).seal(SECRET).unwrap();
        let rotating = ring(Some(B), Some(A));
        assert_eq!(
            rotating.open(&old).unwrap(),
            SECRET,
            "the previous key still opens"
        );
        let new = rotating
            .reseal(&old)
            .unwrap()
            .expect("resealed with the current key");
        assert_eq!(sealed_key_id(&new), Some(key_id(&B).as_str()));
        assert_eq!(ring(Some(B), None).open(&new).unwrap(), SECRET);
        assert_eq!(
            rotating.reseal(&new).unwrap(),
            None,
            "sealed with the current key already"
        );
        let from_plain = rotating
            .reseal(SECRET)
            .unwrap()
            .expect("plaintext gets sealed");
        assert_eq!(rotating.open(&from_plain).unwrap(), SECRET);
        assert!(matches!(
            ring(Some(B), None).reseal(&old),
            Err(SecretsError::UnknownKey { .. })
        ));
    }

    #[test]
    fn debug_shows_key_ids_only() {
        let text = format!("{:?}", ring(Some(A), Some(B)));
        assert!(
            text.contains(&key_id(&A)) && text.contains(&key_id(&B)),
            "{text}"
        );
        assert!(
            !text.contains(&STANDARD.encode(A)) && !text.contains("7, 7"),
            "{text}"
        );
    }
}
