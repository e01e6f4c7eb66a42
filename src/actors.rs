//! The actors: thin shells that sequence the plain modules.
//!
//! - [`reader`]: reads the binlog, decodes with [`crate::decoder`], hands
//!   committed transactions to the router in batches and waits for each to be
//!   stored (backpressure: it reads no further while the router is behind).
//! - [`router`]: fans events out to subscribed webhooks and stores deliveries
//!   and the checkpoint in one transaction; owns one delivery actor per webhook.
//! - [`delivery`]: one per webhook; claims due deliveries, sends, records.
//! - [`http`]: `/healthz`, `/readyz` (actix-web).

pub mod delivery;
pub mod http;
pub mod reader;
pub mod router;
