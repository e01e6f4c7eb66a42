//! The backfill runner: one task that runs the queued backfills, one at a
//! time, oldest first, chunk by chunk between watermarks ([`super::windows`]).
//!
//! Per chunk: the low watermark is written (and committed), the next rows
//! after the cursor are read in key order, mapped through the backfill's
//! rule as if inserted, left in the [`ChunkBox`], and the high watermark is
//! written; the router queues the chunk where it meets the high watermark in
//! the binlog and reports back. The cursor and the counts are then saved
//! (a restart or a `kill -9` resumes after the last chunk saved; a chunk read
//! again gives the same event ids, so nothing is queued twice). Rows left
//! out because they changed during their window are read again in a later
//! window. Between chunks the runner waits until the webhook has sent most
//! of the chunk before (throttle): a backfill never buries the webhook's
//! live events under more than about a chunk of its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use serde_json::Value as Json;
use tokio::sync::Notify;

use super::filter;
use super::select;
use super::windows::{Chunk, ChunkBox, ChunkReport};
use crate::events::envelope;
use crate::events::mapping::Mapper;
use crate::metrics::Metrics;
use crate::source::decoder::{row_key, KeyWatch, RowMapper};
use crate::source::schema::TableSchema;
use crate::state::store::{BackfillView, Store, StoreError};

/// Rows per chunk.
pub const CHUNK_ROWS: u64 = 512;
/// A chunk is read only once the backfill's deliveries still waiting are fewer than this.
const THROTTLE_PENDING: u64 = CHUNK_ROWS / 4;
/// How often a row that keeps changing under its window is read again.
const MAX_REREADS: usize = 5;
/// The longest a chunk waits for the router (the reader reconnecting, say) before it is read again.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a backfill stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("reading the source: {0}")]
    Source(#[from] mysql_async::Error),
    #[error("no rule makes `{0}` events (the config changed since the backfill was asked for)")]
    NoRule(String),
    #[error("table `{0}` is gone from the source database")]
    NoTable(String),
    #[error("table `{0}` has no primary key: a backfill walks a table by its key")]
    NoKey(String),
    #[error("the filter no longer fits the table: {0}")]
    Filter(#[from] filter::FilterError),
}

/// What the runner needs.
#[derive(Clone)]
pub struct Runner {
    pub store: Store,
    /// The source database (a connection of its own for the chunks).
    pub source: mysql_async::Opts,
    pub mapper: Arc<Mapper>,
    pub tables: Arc<HashMap<String, TableSchema>>,
    pub datetime_offset: Option<Arc<str>>,
    pub chunks: Arc<ChunkBox>,
    pub keys: Arc<KeyWatch>,
    pub metrics: Metrics,
    /// Woken when a backfill is queued or cancelled.
    pub wake: Arc<Notify>,
    pub stopping: Arc<AtomicBool>,
}

impl Runner {
    /// Runs backfills until rowhook stops.
    pub async fn run(self) {
        while !self.stopping.load(Ordering::SeqCst) {
            let next = match self.store.next_backfill().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "backfills: cannot read the queue; trying again in a second");
                    None
                }
            };
            let Some(backfill) = next else {
                let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
                continue;
            };
            let id = backfill.id;
            self.metrics.backfills_running.set(1);
            let result = self.backfill(&backfill).await;
            self.metrics.backfills_running.set(0);
            self.chunks.forget(id);
            match result {
                Ok(true) => {
                    if let Err(e) = self.store.finish_backfill(id, None).await {
                        tracing::warn!(backfill = id, error = %e, "backfill done, but its state could not be saved");
                    }
                }
                Ok(false) => {} // cancelled, or rowhook stopping: it stays as it is
                Err(BackfillError::Store(e)) => {
                    tracing::warn!(backfill = id, error = %e, "backfill interrupted by the state database; resuming in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    tracing::error!(backfill = id, webhook_id = backfill.webhook_id, error = %e, "backfill failed");
                    let _ = self.store.finish_backfill(id, Some(&e.to_string())).await;
                }
            }
        }
    }

    /// One backfill, from its cursor to its end. Ok(false): cancelled or stopping.
    async fn backfill(&self, backfill: &BackfillView) -> Result<bool, BackfillError> {
        let (rule, rule_def) = self.mapper.rule_of(&backfill.event_type).ok_or_else(|| BackfillError::NoRule(backfill.event_type.clone()))?;
        let table_name = rule_def.table.clone();
        let table = self.tables.get(&table_name).ok_or_else(|| BackfillError::NoTable(table_name.clone()))?;
        let key = table.primary_key();
        if key.is_empty() {
            return Err(BackfillError::NoKey(table_name));
        }
        let predicates = filter::parse(backfill.filter.as_ref(), table)?;
        let (filter_sql, filter_params) = filter::where_sql(&predicates);
        let reads = self.mapper.columns(&table_name);
        let columns = select::chunk_columns(table, |c| reads.is_some_and(|r| r.contains(c)), &key, self.datetime_offset.as_ref());
        let mut conn = mysql_async::Conn::new(self.source.clone()).await?;
        // Text as utf8mb4 (the server converts every character set), times in UTC.
        conn.query_drop("SET NAMES utf8mb4, time_zone = '+00:00'").await?;
        let estimate = if backfill.rows_estimate.is_none() {
            let count: Option<u64> = conn.exec_first(format!("SELECT COUNT(*) FROM {} WHERE {filter_sql}", filter::quoted(&table_name)), filter_params.clone()).await?;
            count.map(|c| backfill.limit.map_or(c, |l| c.min(l)))
        } else {
            None
        };
        self.store.start_backfill(backfill.id, estimate).await?;
        tracing::info!(backfill = backfill.id, webhook_id = backfill.webhook_id, event_type = %backfill.event_type, table = %table_name, rows_read = backfill.rows_read, "backfill running");
        self.keys.watch(&table_name, key.clone());
        let result = self
            .chunks(backfill, rule, &table_name, &key, &columns, (&filter_sql, &filter_params), &mut conn)
            .await;
        self.keys.unwatch(&table_name);
        let _ = conn.disconnect().await;
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn chunks(
        &self,
        backfill: &BackfillView,
        rule: usize,
        table: &str,
        key: &[String],
        columns: &[(Arc<str>, crate::source::value::ColumnKind)],
        filter: (&str, &[mysql_async::Value]),
        conn: &mut mysql_async::Conn,
    ) -> Result<bool, BackfillError> {
        let mut cursor = backfill.cursor.clone();
        let mut read_so_far = backfill.rows_read;
        let mut main_done = backfill.limit.is_some_and(|l| read_so_far >= l);
        let mut reread: Vec<(Vec<Json>, usize)> = Vec::new();
        let started = Instant::now();
        let mut last_log = Instant::now();
        loop {
            self.throttle(backfill).await?;
            // Asked after the throttle's wait: a cancel during it reads no further chunk.
            if self.stopping.load(Ordering::SeqCst) || !self.store.backfill_wanted(backfill.id).await? {
                return Ok(false);
            }
            let asked = backfill.limit.map_or(CHUNK_ROWS, |l| l.saturating_sub(read_so_far).min(CHUNK_ROWS));
            let main = !main_done && asked > 0;
            // The table in key order first; then the rows left out of their windows.
            let (sql, params, again) = if main {
                let (sql, params) = select::chunk_sql(table, columns, key, cursor.as_deref(), filter, asked);
                (sql, params, Vec::new())
            } else if !reread.is_empty() {
                let batch: Vec<(Vec<Json>, usize)> = reread.drain(..reread.len().min(CHUNK_ROWS as usize)).collect();
                let keys: Vec<Vec<Json>> = batch.iter().map(|(k, _)| k.clone()).collect();
                let (sql, params) = select::keys_sql(table, columns, key, &keys, filter);
                (sql, params, batch)
            } else {
                return Ok(true);
            };
            let chunk = chunk_number();
            self.store.write_watermark(backfill.id, chunk, true).await?;
            // Read only now: the low watermark's commit has returned, so
            // every transaction before it in the binlog is visible.
            let rows = select::read_rows(conn, sql, params, columns).await?;
            let read = rows.len() as u64;
            let last_key: Option<Vec<Json>> = rows.last().map(|r| key.iter().map(|k| r.get(k).cloned().unwrap_or(Json::Null)).collect());
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32);
            let mut events = Vec::with_capacity(rows.len());
            for (index, image) in rows.iter().enumerate() {
                let Some(mapped) = self.mapper.map_as_insert(rule, image) else { continue };
                let row = row_key(image, key);
                let event = envelope::backfill_event(backfill.id, chunk, index, index + 1 == rows.len(), &row, &mapped, now);
                events.push((row, event));
            }
            let (reply, report) = tokio::sync::oneshot::channel();
            self.chunks.put(backfill.id, chunk, Chunk { webhook_id: backfill.webhook_id, table: Arc::from(table), rows: events, report: reply });
            self.store.write_watermark(backfill.id, chunk, false).await?;
            let report = match tokio::time::timeout(CHUNK_TIMEOUT, report).await {
                Ok(Ok(report)) => report,
                // The router never met the high watermark (or dropped the chunk): read it again.
                _ => {
                    self.chunks.forget(backfill.id);
                    tracing::warn!(backfill = backfill.id, "a chunk was not queued within {CHUNK_TIMEOUT:?}; reading it again");
                    continue;
                }
            };
            self.note_dropped(&report, &again, &mut reread);
            if main {
                cursor = last_key.or(cursor);
                read_so_far += read;
                let saved = cursor.as_ref().map(|c| serde_json::to_string(c).unwrap_or_default());
                self.store.backfill_progress(backfill.id, saved.as_deref(), read, report.sent as u64).await?;
                // The end of the table, or the limit: only re-reads are left.
                main_done = read < asked || backfill.limit.is_some_and(|l| read_so_far >= l);
            } else {
                self.store.backfill_progress(backfill.id, None, 0, report.sent as u64).await?;
            }
            self.metrics.backfill_rows.inc_by(report.sent as u64);
            if last_log.elapsed() >= Duration::from_secs(5) {
                last_log = Instant::now();
                tracing::info!(backfill = backfill.id, rows_read = read_so_far, elapsed_s = started.elapsed().as_secs(), "backfill progress");
            }
        }
    }

    /// Keys the router left out go back in line for a later window (each a few times at most).
    fn note_dropped(&self, report: &ChunkReport, again: &[(Vec<Json>, usize)], reread: &mut Vec<(Vec<Json>, usize)>) {
        for dropped in &report.dropped {
            let Ok(key) = serde_json::from_str::<Vec<Json>>(dropped) else { continue };
            let tries = again.iter().find(|(k, _)| *k == key).map_or(0, |(_, n)| *n) + 1;
            if tries <= MAX_REREADS {
                reread.push((key, tries));
            } else {
                tracing::warn!(key = %dropped, "a row changed under every window it was read in; the live stream carries its changes");
            }
        }
    }

    /// Waits until the backfill's deliveries still waiting are few, so live events are not buried.
    async fn throttle(&self, backfill: &BackfillView) -> Result<(), StoreError> {
        while !self.stopping.load(Ordering::SeqCst) && self.store.backfill_pending(backfill.webhook_id, backfill.id).await? > THROTTLE_PENDING {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }
}

/// A chunk's number: unique across restarts (a watermark of a chunk from
/// before a restart must not close a window of one after it).
fn chunk_number() -> u64 {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    (millis << 16) | (NEXT.fetch_add(1, Ordering::Relaxed) & 0xffff)
}
