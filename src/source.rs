//! The source stage: the binlog, read as a replica reads it, turned into
//! committed transactions of row changes.
//!
//! In: the server's binlog stream (or a binlog file, in the fixture tests).
//! Out: [`decoder::Transaction`]s, in commit order, each with the changed
//! rows of the tables some rule reads (before and after images, only the
//! columns read, values as exact JSON), the changed rows of rowhook's own
//! `webhooks` table, and the position and GTID state to resume after it.
//! Guarantees: rows of other tables are never parsed; reading resumes only at
//! a transaction boundary; corrupt data is an error or a skipped event, never
//! a panic; a purged position or a refused replica stops with what to do.
//!
//! - [`reader`]: the actor: connects, resumes (by GTID where it can), batches,
//!   waits for the next stage to store each batch (backpressure), reconnects.
//! - [`decoder`]: the state machine fed one event at a time: positions,
//!   transactions, DDL; [`rows`]: row images, read fast from the table map;
//!   [`guards`]: checks that keep corrupt data from the parsers that trust it;
//!   [`mariadb_gtid`] and [`gtid`]: MariaDB's GTID state and MySQL's GTID sets.
//! - [`value`]: column values as exact JSON ([`collations`]: character sets;
//!   [`charset_tables`]: MariaDB's conversion of the legacy character sets
//!   where encoding_rs's (WHATWG's) tables differ; [`wkt`]: GEOMETRY as WKT).
//! - [`schema`]: the server's settings, grants and the read tables' columns.

pub mod charset_tables;
pub mod collations;
pub mod decoder;
pub mod gtid;
pub mod guards;
pub mod mariadb_gtid;
pub mod reader;
pub mod rows;
pub mod schema;
pub mod value;
pub mod wkt;
