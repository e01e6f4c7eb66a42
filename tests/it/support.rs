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

/// The `rowhook` binary built by cargo for these tests.
pub fn rowhook_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rowhook"))
}

/// Installs rustls' ring provider as the process default (idempotent). reqwest is built with
/// `rustls-no-provider`; plain http:// clients work without it, https:// ones need it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
