//! Integration tests: one binary, one private MariaDB (started on first use,
//! a database per test), real HTTP receivers on ephemeral ports.

mod api;
mod charsets;
#[path = "../corruption/mod.rs"]
mod corruption;
mod faults;
mod gtid;
mod harness_selftest;
mod https;
mod instances;
mod migrations;
mod outages;
mod ops;
mod pipeline;
mod queue;
mod refusals;
mod rowhook;
mod schema_changes;
mod startup;
mod tls;
mod support;
mod types;
mod verify;
