//! Replay from the binlog: what the server's binlog still holds, re-read from
//! a start, mapped with today's rules and queued again for one webhook.
//!
//! For when the history is pruned, or the webhook did not exist yet: a
//! second replication stream (its own server id, the live reader's with the
//! top bit flipped) reads from the start (a binlog position, a MariaDB GTID
//! state, or the oldest binlog for a time, skipping what committed before
//! it) up to where the source stood when the replay began. Every event of a
//! type the webhook subscribes to is queued for that webhook only, with its
//! usual id: one still in the history goes out again in its place (status
//! back to pending), one pruned is queued anew, after what waits for its
//! group. The live reader and its checkpoint are not touched. One replay at
//! a time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use mysql_async::prelude::*;
use mysql_async::BinlogStreamRequest;

use crate::events::envelope;
use crate::events::mapping::Mapper;
use crate::source::decoder::{Decoded, Decoder, Position};
use crate::source::schema::TableSchema;
use crate::state::store::{NewDelivery, Store, StoreError};

/// Where a replay starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// A binlog position (`binlog.000012:4`): the start of a transaction.
    Position(Position),
    /// A MariaDB GTID state (`0-1-42`): after that transaction.
    Gtid(String),
    /// Everything committed at or after this time (seconds since the epoch).
    Since(i64),
}

/// Why a replay cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the binlog the replay would start in is gone from the server; the oldest it has is {oldest}")]
    Purged { oldest: String },
    #[error("another replay from the binlog is running; try again when it ends")]
    Busy,
    #[error("reading the source's binlog: {0}")]
    Source(#[from] mysql_async::Error),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the binlog could not be decoded: {0}")]
    Decode(#[from] crate::source::decoder::DecodeError),
}

/// What a replay needs of the daemon.
#[derive(Clone)]
pub struct Replayer {
    pub store: Store,
    pub source: mysql_async::Opts,
    pub database: String,
    pub server_id: u32,
    pub is_mariadb: bool,
    pub mapper: Arc<Mapper>,
    pub tables: Arc<std::collections::HashMap<String, TableSchema>>,
    pub datetime_offset: Option<String>,
    /// Set while one runs.
    pub running: Arc<AtomicBool>,
    /// The running replay's progress, or the last one's outcome.
    pub progress: Arc<Mutex<Option<ReplayProgress>>>,
}

/// How far a replay from the binlog got (shown by the console).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplayProgress {
    pub webhook_id: u64,
    /// `running`, `done` or `failed`.
    pub state: &'static str,
    /// Seconds since the epoch.
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// Where it reads now, and where it stops (the source's position when it began).
    pub position: String,
    pub end: String,
    /// Deliveries queued so far.
    pub queued: u64,
    pub error: Option<String>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Deliveries queued per statement.
const BATCH: usize = 500;

impl Replayer {
    /// The server id of the replay's stream: the live reader's, top bit flipped.
    fn stream_id(&self) -> u32 {
        self.server_id ^ 0x8000_0000
    }

    /// Checks the start against the binlogs the server has; the position to
    /// read from (the oldest binlog for a time start, or by GTID).
    pub async fn resolve(&self, start: &Start) -> Result<(Position, Option<String>), ReplayError> {
        let mut conn = mysql_async::Conn::new(self.source.clone()).await?;
        let logs: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await?;
        let files: Vec<String> = logs.iter().filter_map(|r| r.get::<String, _>(0)).collect();
        let oldest = files.first().cloned().unwrap_or_default();
        let resolved = match start {
            Start::Position(position) if files.contains(&position.file) => Ok((position.clone(), None)),
            Start::Position(_) => Err(ReplayError::Purged { oldest: format!("{oldest}:4") }),
            Start::Gtid(state) => {
                // The state must be in a binlog the server has: the oldest file's GTID list starts it.
                let first: Option<Option<String>> = conn.exec_first("SELECT BINLOG_GTID_POS(?, 4)", (&oldest,)).await?;
                let base = first.flatten().unwrap_or_default();
                if base.is_empty() || gtid_at_or_after(state, &base) {
                    Ok((Position { file: oldest.clone(), pos: 4 }, Some(state.clone())))
                } else {
                    Err(ReplayError::Purged { oldest: format!("{oldest} (its GTID state {base})") })
                }
            }
            Start::Since(since) => {
                let began = self.file_start_time(&oldest).await?;
                if began.is_some_and(|began| *since < i64::from(began)) {
                    let at = began.map(crate::events::envelope::rfc3339).unwrap_or_default();
                    Err(ReplayError::Purged { oldest: format!("{oldest}, which starts at {at}") })
                } else {
                    Ok((Position { file: oldest.clone(), pos: 4 }, None))
                }
            }
        };
        let _ = conn.disconnect().await;
        resolved
    }

    /// When a binlog file was started: its FORMAT_DESCRIPTION's time.
    async fn file_start_time(&self, file: &str) -> Result<Option<u32>, ReplayError> {
        let conn = self.connect().await?;
        let request = BinlogStreamRequest::new(self.stream_id()).with_filename(file.as_bytes()).with_pos(4u64);
        let mut stream = conn.get_binlog_stream(request).await?;
        let mut at = None;
        for _ in 0..4 {
            let Some(event) = stream.next().await else { break };
            let event = event?;
            if event.header().event_type_raw() == mysql_common::binlog::consts::EventType::FORMAT_DESCRIPTION_EVENT as u8 {
                at = Some(event.header().timestamp());
                break;
            }
        }
        let _ = stream.close().await;
        Ok(at)
    }

    async fn connect(&self) -> Result<mysql_async::Conn, ReplayError> {
        let mut conn = mysql_async::Conn::new(self.source.clone()).await?;
        if self.is_mariadb {
            conn.query_drop("SET @mariadb_slave_capability = 4").await?;
        }
        conn.query_drop("SET @master_heartbeat_period = 1000000000").await?;
        Ok(conn)
    }

    /// Re-reads from `from` (a position, and a GTID state to resume by) to
    /// where the source stands now and queues the events of `events` types
    /// (`*`: all) for the webhook. Returns how many deliveries were queued.
    pub async fn replay(&self, webhook_id: u64, events: &[String], from: Position, gtid: Option<String>, since: Option<i64>) -> Result<u64, ReplayError> {
        if self.running.swap(true, Ordering::SeqCst) {
            return Err(ReplayError::Busy);
        }
        self.set_progress(|p| {
            *p = Some(ReplayProgress {
                webhook_id,
                state: "running",
                started_at: unix_now(),
                finished_at: None,
                position: from.to_string(),
                end: String::new(),
                queued: 0,
                error: None,
            })
        });
        let result = self.read(webhook_id, events, from, gtid, since).await;
        self.set_progress(|p| {
            if let Some(p) = p {
                p.state = if result.is_ok() { "done" } else { "failed" };
                p.finished_at = Some(unix_now());
                p.error = result.as_ref().err().map(ToString::to_string);
            }
        });
        self.running.store(false, Ordering::SeqCst);
        result
    }

    /// The running replay's progress, or the last one's outcome.
    pub fn progress(&self) -> Option<ReplayProgress> {
        self.progress.lock().map_or(None, |p| p.clone())
    }

    fn set_progress(&self, change: impl FnOnce(&mut Option<ReplayProgress>)) {
        if let Ok(mut progress) = self.progress.lock() {
            change(&mut progress);
        }
    }

    async fn read(&self, webhook_id: u64, events: &[String], from: Position, gtid: Option<String>, since: Option<i64>) -> Result<u64, ReplayError> {
        let mut info = mysql_async::Conn::new(self.source.clone()).await?;
        // (File, Position, and columns that differ between servers.)
        // MySQL 8.4 renamed SHOW MASTER STATUS; MariaDB and older MySQL know only the old name.
        let status: Option<mysql_async::Row> = match info.query_first("SHOW BINARY LOG STATUS").await {
            Ok(row) => row,
            Err(_) => info.query_first("SHOW MASTER STATUS").await?,
        };
        let _ = info.disconnect().await;
        let end = status.and_then(|row| Some(Position { file: row.get::<String, _>(0)?, pos: row.get::<u64, _>(1)? }));
        let Some(end) = end else { return Ok(0) };
        self.set_progress(|p| {
            if let Some(p) = p {
                p.end = end.to_string();
            }
        });
        let mut conn = self.connect().await?;
        let request = match &gtid {
            Some(state) if self.is_mariadb => {
                conn.query_drop(format!("SET @slave_connect_state = '{}'", state.replace('\'', ""))).await?;
                conn.query_drop("SET @slave_gtid_strict_mode = 0").await?;
                BinlogStreamRequest::new(self.stream_id())
            }
            _ => BinlogStreamRequest::new(self.stream_id()).with_filename(from.file.as_bytes()).with_pos(from.pos),
        };
        let mut stream = conn.get_binlog_stream(request).await.map_err(|e| match &e {
            mysql_async::Error::Server(s) if s.code == 1236 => ReplayError::Purged { oldest: s.message.clone() },
            _ => ReplayError::Source(e),
        })?;
        let start = if gtid.is_some() { Position { file: String::new(), pos: 4 } } else { from.clone() };
        let mut decoder = Decoder::new(self.mapper.clone(), &self.database, (*self.tables).clone(), start);
        decoder.set_datetime_offset(self.datetime_offset.as_deref());
        let wanted = |event_type: &str| events.iter().any(|e| e == event_type || e == "*");
        let mut queued = 0u64;
        let mut pending: Vec<envelope::OutgoingEvent> = Vec::new();
        let mut open_events = 0;
        loop {
            let Some(event) = stream.next().await else { break };
            let event = event?;
            let decoded = decoder.feed(&event, |id| stream.get_tme(id))?;
            if let Decoded::Commit(t) | Decoded::Partial(t) = decoded {
                let mapped = envelope::events_of(&t, open_events);
                open_events = if t.complete { 0 } else { open_events + mapped.len() };
                if since.is_none_or(|since| i64::from(t.timestamp) >= since) {
                    pending.extend(mapped.into_iter().filter(|e| wanted(&e.event_type)));
                }
                if pending.len() >= BATCH {
                    queued += self.queue(webhook_id, &std::mem::take(&mut pending)).await?;
                }
                let at = decoder.position();
                self.set_progress(|p| {
                    if let Some(p) = p {
                        p.position = at.to_string();
                        p.queued = queued;
                    }
                });
            }
            let at = decoder.position();
            if !at.file.is_empty() && end.at_or_before(at) {
                break;
            }
        }
        queued += self.queue(webhook_id, &pending).await?;
        let _ = stream.close().await;
        self.set_progress(|p| {
            if let Some(p) = p {
                p.position = end.to_string();
                p.queued = queued;
            }
        });
        Ok(queued)
    }

    async fn queue(&self, webhook_id: u64, events: &[envelope::OutgoingEvent]) -> Result<u64, ReplayError> {
        if events.is_empty() {
            return Ok(0);
        }
        let deliveries: Vec<NewDelivery<'_>> = events
            .iter()
            .map(|e| NewDelivery { webhook_id, event_id: &e.id, event_type: &e.event_type, payload: &e.body, group_key: e.group.as_deref() })
            .collect();
        Ok(self.store.requeue(&deliveries).await?)
    }
}

/// Whether MariaDB GTID state `state` is at or after `base` in every domain `base` has.
fn gtid_at_or_after(state: &str, base: &str) -> bool {
    let parse = crate::source::mariadb_gtid::parse_gtid_state;
    let (state, base) = (parse(state), parse(base));
    base.iter().all(|(domain, (_, seq))| state.get(domain).is_some_and(|(_, s)| s >= seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gtid_state_before_the_oldest_binlog_is_gone() {
        assert!(gtid_at_or_after("0-1-50", "0-1-40"));
        assert!(gtid_at_or_after("0-1-40,1-1-3", "0-1-40"));
        assert!(!gtid_at_or_after("0-1-39", "0-1-40"));
        assert!(!gtid_at_or_after("1-1-99", "0-1-40"), "a domain the state does not have");
    }
}
