//! The actors: thin shells that sequence the plain modules.
//!
//! - [`reader`]: reads the binlog, decodes with [`crate::decoder`], hands
//!   committed transactions to the router in batches and waits for each to be
//!   stored (backpressure: it reads no further while the router is behind).
//! - [`router`]: fans events out to subscribed webhooks, stores deliveries,
//!   hands the new rows to the delivery actors, then moves the checkpoint;
//!   owns one delivery actor per webhook.
//! - [`delivery`]: one per webhook; sends what was handed over or claims due
//!   deliveries, records every attempt.
//! - [`http`]: `/healthz`, `/readyz` (actix-web).

pub mod delivery;
pub mod http;
pub mod reader;
pub mod router;
