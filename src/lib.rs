//! rowhook: outgoing webhooks from a MySQL/MariaDB application's binlog,
//! without a line of change to the application.
//!
//! # Layout
//!
//! The tree follows an event's path: one folder per stage, each with a
//! module (`source.rs` beside `source/`) saying what enters it, what leaves
//! it and what it guarantees. Plain modules hold the logic, with their unit
//! tests; the actors are thin shells that sequence it.
//!
//! - [`source`]: the binlog, read as a replica reads it, into committed
//!   transactions of changed rows (reader actor, decoder, row images, values,
//!   GTIDs, server checks).
//! - [`events`]: the `[[events]]` rules: changed rows into events with their
//!   stable ids and the exact bodies sent.
//! - [`delivery`]: the router actor (maps, routes by the subscriptions in
//!   force at each commit, stores) and one delivery actor per webhook
//!   (signed sends, retries, health), with the sender, signing, retry policy
//!   and SSRF guard.
//! - [`backfill`]: a table's current rows sent to one webhook, interleaved
//!   with the live stream by watermarks (between the events and delivery stages).
//! - [`state`]: the state database (webhooks, queue, history, checkpoint,
//!   migrations), the instance lock, and webhook secrets sealed at rest
//!   (`[admin] secrets_key`; opened where the delivery stage signs).
//! - [`admin`]: the HTTP server: admin API, validation, OpenAPI, metrics,
//!   HTTPS with its certificate reloaded on SIGHUP.
//!
//! Dependencies point one way, along the flow: `events` uses `source`'s
//! types, `backfill` uses both, `delivery` uses those three, and all of
//! them use `state`, which uses none of them; `admin` and the top-level
//! modules use everything. At the top: [`daemon`] starts and stops it all
//! ([`daemon::run`] takes a listener and a shutdown signal, so tests run the
//! real daemon in-process on port 0), [`config`] is the TOML file,
//! [`listen`] is `rowhook listen`, [`client`] is `rowhook backfill` and
//! `rowhook replay` against a running daemon. Shared leaves that every stage
//! may use and that use no stage: [`config`]'s types, [`dburl`] (database
//! URLs, and a failed connection to one said once), [`metrics`] (defined in
//! one place).
//!
//! Why this cut: each stage has one job and one hand-off (a transaction of
//! mapped rows; events; a stored delivery), and each feature lands in one
//! place (ordering and replay in `delivery`, backfill in `backfill`, the
//! console and scoped tokens in `admin`). The source stage maps each row as
//! it decodes it, through a trait it defines ([`source::decoder::RowMapper`])
//! that the events stage's rules implement: it never depends on a later stage,
//! and a transaction holds what its rows became, not their images.

pub mod admin;
pub mod backfill;
pub mod client;
pub mod config;
pub mod daemon;
pub mod dburl;
pub mod delivery;
pub mod events;
pub mod listen;
pub mod metrics;
pub mod source;
pub mod state;
