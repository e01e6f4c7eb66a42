//! The events stage: row changes become events.
//!
//! In: the row changes of a committed [`crate::source::decoder::Transaction`].
//! Out: typed events, each with its stable id (from the row's binlog
//! coordinates and the rule), type and the exact body sent (the envelope
//! `{"id", "type", "timestamp", "data"}`).
//! Guarantees: the `[[events]]` rules alone decide what leaves the database
//! (columns not named never do); the same row change gives the same event id
//! and body on every read of the binlog.
//!
//! - [`mapping`]: the rules: conditions, the payload allowlist, `changes`.
//! - [`envelope`]: event ids and the wire envelope.

pub mod envelope;
pub mod mapping;
