//! Test support: a private MariaDB with a row-based binlog and a recording HTTP receiver.
//!
//! ```ignore
//! let db = support::mariadb::shared();
//! let name = db.fresh_database("deliveries").await;   // helpdesk schema loaded
//! let receiver = support::Receiver::start().await;     // receiver.url() = http://127.0.0.1:P/hook
//! ```
#![allow(dead_code)]

pub mod mariadb;
pub mod netns;
pub mod receiver;

#[allow(unused_imports)]
pub use mariadb::MariaDb;
#[allow(unused_imports)]
pub use receiver::{Received, Receiver};

use std::path::PathBuf;

/// Both signatures of a delivery (`webhook-signature`, Standard Webhooks,
/// and the seed's `X-Webhook-Signature`) verify with this plaintext secret.
pub fn assert_signed_with(r: &Received, secret: &str) {
    use rowhook::delivery::signing::{self, SigningKey};
    let key = SigningKey::from_secret(secret).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    signing::verify_standard(
        &key,
        r.header("webhook-signature").expect("webhook-signature"),
        r.header("webhook-id").expect("webhook-id"),
        r.header("webhook-timestamp").expect("webhook-timestamp"),
        &r.body,
        now,
        std::time::Duration::from_secs(300),
    )
    .expect("webhook-signature (Standard Webhooks) verifies with the plaintext secret");
    signing::verify_seed(&key, r.header("x-webhook-signature").expect("X-Webhook-Signature"), &r.body)
        .expect("X-Webhook-Signature verifies with the plaintext secret");
}

/// The `rowhook` binary built by cargo for these tests.
pub fn rowhook_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rowhook"))
}

/// Installs rustls' ring provider as the process default (idempotent). reqwest is built with
/// `rustls-no-provider`; plain http:// clients work without it, https:// ones need it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
