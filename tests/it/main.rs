//! Integration tests: one binary, one private MariaDB (started on first use,
//! a database per test), real HTTP receivers on ephemeral ports.

mod admin_tls;
mod api;
mod backfill;
mod charsets;
mod console;
#[path = "../corruption/mod.rs"]
mod corruption;
mod faults;
mod grants;
mod gtid;
mod harness_selftest;
mod https;
mod instances;
mod messages;
mod migrations;
mod ordering;
mod outages;
mod ops;
mod pipeline;
mod queue;
mod refusals;
mod replay;
mod rowhook;
mod schema_changes;
mod schemathesis;
mod secrets;
mod ssrf;
mod startup;
mod subscriptions;
mod tls;
mod tokens;
mod support;
mod types;
mod verify;
