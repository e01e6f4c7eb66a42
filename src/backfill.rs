//! Backfills: a webhook's copy of the rows a table holds now, sent as
//! events among the live ones without ever sending a row older after newer.
//!
//! In: `POST /api/webhooks/{id}/backfills` (an event type, so a rule and
//! its table; a filter; a limit), queued in `rowhook_backfills`. Out: one
//! delivery per row, the rule's payload as if the row had just been
//! inserted, marked `"backfill": <id>` in the body, with an id (`bf_...`)
//! no live event has. Guarantees: consistent with the live stream by
//! Netflix DBLog's watermark method (what Debezium's incremental snapshots
//! do): each chunk is read between a low and a high watermark written to
//! `rowhook_watermarks`, and queued where the high watermark passes in the
//! binlog, without the rows the log changed in between ([`windows`]); so no
//! row is missed, none is sent older after newer (per group: the deliveries
//! keep their place in commit order), and a row deleted during the backfill
//! does not come back after its delete. Resumable from its cursor after a
//! restart or `kill -9`, cancellable, throttled, one at a time.
//!
//! - [`filter`]: the request's filter, checked and compiled to placeholders.
//! - [`select`]: chunks read with SELECT into the binlog's row images.
//! - [`windows`]: the watermark windows the router keeps, and the chunks' box.
//! - [`runner`]: the task that runs the backfills.
//! - [`replay`]: replay from the binlog: what the server still has, re-read
//!   for one webhook (the history's replay is the store's: no binlog needed).
//!
//! The state database must live on the source server: the watermarks must
//! pass through the source's binlog.

pub mod filter;
pub mod replay;
pub mod runner;
pub mod select;
pub mod windows;
