//! rowhook: outgoing webhooks from a MySQL/MariaDB application's binlog,
//! without a line of change to the application.
//!
//! # Layout
//!
//! Plain modules hold the domain logic, each with its unit tests:
//! - [`config`]: the TOML file and `ROWHOOK__*` overrides, validated.
//! - [`dburl`]: database URLs, with the CA file TLS needs.
//! - [`schema`]: server settings, grants and mapped tables' columns, checked at start.
//! - [`decoder`]: binlog events -> committed transactions of typed events ([`gtid`]: MySQL GTID sets).
//! - [`value`]: column values -> exact JSON ([`collations`]: which character set a collation id is;
//!   [`charset_tables`]: MariaDB's conversion of legacy character sets where encoding_rs differs;
//!   [`wkt`]: GEOMETRY as WKT).
//! - [`mapping`]: the `[[events]]` rules: row changes -> event payloads.
//! - [`signing`]: HMAC-SHA256 signatures (the seed's and Standard Webhooks').
//! - [`retry`]: what follows a failed attempt (schedule, jitter, Retry-After).
//! - [`ssrf`]: no deliveries to private addresses unless allowed.
//! - [`sender`]: one signed POST and what came back.
//! - [`store`]: the state database (queue, history, checkpoint), migrations.
//! - [`handoff`]: fresh rows from the router to a delivery actor without reading them back.
//! - [`instance`]: one active instance per state database (a named lock); others stand by.
//!
//! [`actors`] sequences them: reader -> router -> one delivery actor per
//! webhook, plus the HTTP server. [`daemon::run`] starts it all on a listener
//! and a shutdown signal the caller provides, so tests run the real daemon
//! in-process on port 0.

pub mod actors;
pub mod charset_tables;
pub mod collations;
pub mod config;
pub mod daemon;
pub mod dburl;
pub mod decoder;
pub mod gtid;
pub mod handoff;
pub mod instance;
pub mod listen;
pub mod mapping;
pub mod metrics;
pub mod retry;
pub mod schema;
pub mod sender;
pub mod signing;
pub mod validation;
pub mod ssrf;
pub mod store;
pub mod value;
pub mod wkt;
