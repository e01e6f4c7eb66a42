//! Where a backfill's chunks meet the live stream: DBLog's watermark windows.
//!
//! The runner writes a *low* watermark (a row of `rowhook_watermarks`),
//! reads a chunk once that write has committed, leaves the chunk in the
//! [`ChunkBox`], and writes a *high* watermark. The router meets both
//! watermarks in the binlog, in commit order among the application's
//! changes ([`Windows`]): between them it collects the keys of the rows that
//! changed, and at the high watermark it takes the chunk, drops every row
//! whose key changed in the window (the live stream carries those rows'
//! newer state, before or after this point), and queues the rest right
//! there, among the live events. So a row is never sent older after newer,
//! a row deleted during the window does not come back, and every other row
//! goes out as it was read. The dropped keys go back to the runner, which
//! reads them again in a later window.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::events::envelope::OutgoingEvent;

/// A chunk read by the runner, waiting for its high watermark.
#[derive(Debug)]
pub struct Chunk {
    pub webhook_id: u64,
    pub table: Arc<str>,
    /// (key, event), in key order.
    pub rows: Vec<(String, OutgoingEvent)>,
    /// How the chunk went, once its deliveries are stored.
    pub report: oneshot::Sender<ChunkReport>,
}

/// What became of a chunk.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChunkReport {
    /// Rows queued for the webhook.
    pub sent: usize,
    /// Keys left out: the rows changed while the chunk was read.
    pub dropped: Vec<String>,
}

/// Chunks between the runner and the router, by (backfill, chunk).
#[derive(Debug, Default)]
pub struct ChunkBox {
    chunks: Mutex<HashMap<(u64, u64), Chunk>>,
}

impl ChunkBox {
    pub fn put(&self, backfill: u64, chunk: u64, rows: Chunk) {
        self.lock().insert((backfill, chunk), rows);
    }

    pub fn take(&self, backfill: u64, chunk: u64) -> Option<Chunk> {
        self.lock().remove(&(backfill, chunk))
    }

    /// Drops a backfill's chunks (cancelled, or its runner gone).
    pub fn forget(&self, backfill: u64) {
        self.lock().retain(|(b, _), _| *b != backfill);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(u64, u64), Chunk>> {
        self.chunks.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A watermark as the binlog shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    pub backfill: u64,
    pub chunk: u64,
    pub low: bool,
}

/// A watermark from a changed row of `rowhook_watermarks` (None: a delete, or not one).
pub fn watermark_of(row: &crate::source::decoder::ChangedRow) -> Option<Watermark> {
    let image = row.after.as_ref()?;
    let backfill = image.get("backfill_id")?.as_u64()?;
    let chunk = image.get("chunk")?.as_u64()?;
    let low = match image.get("mark")?.as_str()? {
        "low" => true,
        "high" => false,
        _ => return None,
    };
    Some(Watermark { backfill, chunk, low })
}

/// The windows open in the stream: per backfill, its chunk and the keys
/// changed since its low watermark.
#[derive(Debug, Default, Clone)]
pub struct Windows {
    open: HashMap<u64, (u64, ChangedKeys)>,
}

/// Keys of changed rows: (table, key).
type ChangedKeys = HashSet<(Arc<str>, String)>;

/// A chunk that reached its high watermark: what to queue, and its report.
#[derive(Debug)]
pub struct Closed {
    pub webhook_id: u64,
    pub events: Vec<OutgoingEvent>,
    pub report: ChunkReport,
    pub reply: oneshot::Sender<ChunkReport>,
    /// The chunk as it was, to put back should storing fail.
    pub chunk: (u64, u64),
}

impl Windows {
    /// Whether any window is open (keys need collecting).
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Keys of rows a transaction changed.
    pub fn changed(&mut self, keys: &[(Arc<str>, String)]) {
        for (_, changed) in self.open.values_mut() {
            changed.extend(keys.iter().cloned());
        }
    }

    /// A watermark: a low one opens its window; a high one closes it and
    /// gives back its chunk without the rows that changed meanwhile. A high
    /// watermark whose chunk is not in the box (a chunk of before a restart)
    /// closes nothing.
    pub fn watermark(&mut self, mark: Watermark, chunks: &ChunkBox) -> Option<Closed> {
        if mark.low {
            self.open.insert(mark.backfill, (mark.chunk, HashSet::new()));
            return None;
        }
        let (chunk, changed) = self.open.remove(&mark.backfill).filter(|(chunk, _)| *chunk == mark.chunk)?;
        let Chunk { webhook_id, table, rows, report } = chunks.take(mark.backfill, chunk)?;
        let mut closed = Closed { webhook_id, events: Vec::new(), report: ChunkReport::default(), reply: report, chunk: (mark.backfill, chunk) };
        for (key, event) in rows {
            if changed.contains(&(table.clone(), key.clone())) {
                closed.report.dropped.push(key);
            } else {
                closed.events.push(event);
            }
        }
        closed.report.sent = closed.events.len();
        Some(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> OutgoingEvent {
        OutgoingEvent { id: id.into(), event_type: Arc::from("thread.created"), group: None, body: "{}".into() }
    }

    #[test]
    fn rows_changed_inside_the_window_are_dropped_the_rest_queued_at_the_high_mark() {
        let chunks = ChunkBox::default();
        let mut windows = Windows::default();
        let table: Arc<str> = Arc::from("threads");
        let (reply, _report) = oneshot::channel();
        // Changes before the low watermark do not count.
        windows.changed(&[(table.clone(), "[1]".into())]);
        assert!(windows.watermark(Watermark { backfill: 7, chunk: 1, low: true }, &chunks).is_none());
        let rows = vec![("[1]".to_string(), event("a")), ("[2]".to_string(), event("b")), ("[3]".to_string(), event("c"))];
        chunks.put(7, 1, Chunk { webhook_id: 9, table: table.clone(), rows, report: reply });
        windows.changed(&[(table.clone(), "[2]".into()), (Arc::from("notes"), "[3]".into())]);
        let closed = windows.watermark(Watermark { backfill: 7, chunk: 1, low: false }, &chunks).expect("closed");
        assert_eq!(closed.webhook_id, 9);
        assert_eq!(closed.events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["a", "c"], "row 2 changed in the window; notes' key 3 is another table's");
        assert_eq!(closed.report, ChunkReport { sent: 2, dropped: vec!["[2]".into()] });
        assert!(windows.is_empty());
    }

    #[test]
    fn a_high_watermark_without_its_chunk_or_window_closes_nothing() {
        let chunks = ChunkBox::default();
        let mut windows = Windows::default();
        assert!(windows.watermark(Watermark { backfill: 1, chunk: 5, low: false }, &chunks).is_none(), "no window");
        windows.watermark(Watermark { backfill: 1, chunk: 6, low: true }, &chunks);
        assert!(windows.watermark(Watermark { backfill: 1, chunk: 5, low: false }, &chunks).is_none(), "another chunk's");
        windows.watermark(Watermark { backfill: 1, chunk: 7, low: true }, &chunks);
        assert!(windows.watermark(Watermark { backfill: 1, chunk: 7, low: false }, &chunks).is_none(), "its chunk is gone (a restart)");
    }
}
