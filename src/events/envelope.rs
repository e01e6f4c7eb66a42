//! Event ids and the wire envelope.
//!
//! Event ids come from binlog coordinates: `evt_<file number>_<position of
//! the rows event>_<row index>_<rule index>`. They are the same on every
//! retry and after a restart (reading always resumes at a transaction
//! boundary), unique, and contain no `.`. Rows inside a MySQL
//! TRANSACTION_PAYLOAD (binlog transaction compression) carry no position of
//! their own: they take the payload's position and a row index counted
//! across the whole payload (the source stage numbers them so).
//!
//! The body sent is the envelope `{"id", "type", "timestamp", "data"}`, with
//! the transaction's commit time, written as serde_json writes such a struct.

use std::fmt::Write;
use std::sync::Arc;

use crate::source::decoder::{MappedRow, Transaction};
use crate::source::value;

/// `evt_<file number>_<pos>_<row>_<rule>`; the file number is the binlog
/// file's numeric extension (`binlog.000042` -> `000042`).
pub fn event_id(file: &str, pos: u64, row: usize, rule: usize) -> String {
    let number = file.rsplit_once('.').map_or(file, |(_, ext)| ext);
    // Written piece by piece: `format!` here was 7% of catch-up decoding.
    let mut id = Vec::with_capacity(48 + number.len());
    id.extend_from_slice(b"evt_");
    id.extend(number.bytes().filter(u8::is_ascii_alphanumeric));
    for n in [pos, row as u64, rule as u64] {
        id.push(b'_');
        value::push_padded(&mut id, n, 0);
    }
    String::from_utf8(id).unwrap_or_default() // ASCII
}

/// Seconds since the epoch as RFC 3339 UTC.
pub fn rfc3339(secs: u32) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::from(secs))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// The wire envelope of an event: `{"id", "type", "timestamp", "data"}`,
/// as serde_json writes such a struct (compact, fields in this order).
fn envelope(id: &str, event_type: &str, timestamp: &str, data: &str, group: Option<&str>, source: &Source<'_>) -> String {
    let mut body = String::with_capacity(data.len() + id.len() + event_type.len() + timestamp.len() + source.id.len() + 112);
    let string = |s: &str, body: &mut String| {
        // serde_json escapes control characters, `"` and `\` only: a string
        // without them (always an id and a timestamp) is written as it is.
        if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            // A str always serializes, into valid UTF-8.
            body.push_str(&serde_json::to_string(s).unwrap_or_default());
        } else {
            body.push('"');
            body.push_str(s);
            body.push('"');
        }
    };
    body.push_str("{\"id\":");
    string(id, &mut body);
    body.push_str(",\"type\":");
    string(event_type, &mut body);
    body.push_str(",\"timestamp\":");
    string(timestamp, &mut body);
    body.push_str(",\"data\":");
    body.push_str(data);
    body.push_str(",\"group\":");
    match group {
        Some(group) => string(group, &mut body),
        None => body.push_str("null"),
    }
    body.push_str(",\"transaction\":{\"id\":");
    string(source.id, &mut body);
    let _ = write!(body, ",\"index\":{}", source.index); // writing to a String cannot fail
    body.push_str(if source.last { ",\"last\":true}" } else { ",\"last\":false}" });
    if let Some(backfill) = source.backfill {
        let _ = write!(body, ",\"backfill\":{backfill}");
    }
    body.push('}');
    body
}

/// Where an event comes from in the source: its transaction's id, its index
/// among the transaction's events, and whether it is the last of them.
struct Source<'a> {
    id: &'a str,
    index: usize,
    last: bool,
    /// A backfill's event: the backfill's id.
    backfill: Option<u64>,
}

/// One event ready for delivery: its id, type, group and serialized body.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    pub id: String,
    pub event_type: Arc<str>,
    /// Its group key (None: a group of its own).
    pub group: Option<String>,
    /// The exact bytes sent: `{"id", "type", "timestamp", "data"}`.
    pub body: String,
}

/// The events of a committed transaction (or of a part of a large one), in
/// binlog order, each with its id and body. `first` is the index of the
/// first (the events of the parts before it); the last event of a complete
/// transaction is marked so.
pub fn events_of(transaction: &Transaction, first: usize) -> Vec<OutgoingEvent> {
    if transaction.events.is_empty() {
        return Vec::new();
    }
    let stamp = rfc3339(transaction.timestamp);
    let count = transaction.events.len();
    transaction
        .events
        .iter()
        .enumerate()
        .map(|(k, event)| {
            let mapped = &event.mapped;
            let id = event_id(&transaction.end.file, event.pos, event.index, mapped.rule);
            let source = Source { id: &transaction.source_id, index: first + k, last: transaction.complete && k + 1 == count, backfill: None };
            let body = envelope(&id, &mapped.event_type, &stamp, &mapped.data, mapped.group.as_deref(), &source);
            OutgoingEvent { id, event_type: mapped.event_type.clone(), group: mapped.group.clone(), body }
        })
        .collect()
}

/// The prefix of every backfill event's id (and of no live event's).
pub const BACKFILL_ID_PREFIX: &str = "bf_";

/// Whether an event id is a backfill's (see [`backfill_event`]).
pub fn is_backfill_event(event_id: &str) -> bool {
    event_id.starts_with(BACKFILL_ID_PREFIX)
}

/// A backfill's event for one row (`key`: [`crate::source::decoder::row_key`])
/// of chunk `chunk`: its id is `bf_<backfill>_<32 hex digits of the key's
/// SHA-256>`, which no live event's (`evt_...`) can be and which is the same
/// when a chunk is read again after a restart (so it is not queued twice);
/// its `transaction` is the chunk (`backfill-<id>-<chunk>`), and `backfill` its id.
pub fn backfill_event(backfill: u64, chunk: u64, index: usize, last: bool, key: &str, mapped: &MappedRow, timestamp: u32) -> OutgoingEvent {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut id = format!("{BACKFILL_ID_PREFIX}{backfill}_");
    for byte in &digest[..16] {
        let _ = write!(id, "{byte:02x}");
    }
    let transaction = format!("backfill-{backfill}-{chunk}");
    let source = Source { id: &transaction, index, last, backfill: Some(backfill) };
    let body = envelope(&id, &mapped.event_type, &rfc3339(timestamp), &mapped.data, mapped.group.as_deref(), &source);
    OutgoingEvent { id, event_type: mapped.event_type.clone(), group: mapped.group.clone(), body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_what_serde_writes() {
        #[derive(serde::Serialize)]
        struct Envelope<'a> {
            id: &'a str,
            #[serde(rename = "type")]
            event_type: &'a str,
            timestamp: &'a str,
            data: &'a serde_json::Value,
            group: Option<&'a str>,
            transaction: TransactionRef<'a>,
        }
        #[derive(serde::Serialize)]
        struct TransactionRef<'a> {
            id: &'a str,
            index: usize,
            last: bool,
        }
        let data = serde_json::json!({"a": "x\"y\u{7}", "b": [1, 2.5], "c": null});
        let (id, timestamp) = ("evt_000001_4_0_0", "2026-11-28T10:00:00Z");
        for event_type in ["th\"read\\.created", "thread.created", "tab\there\u{1}", "é\u{7f}/"] {
            for (group, tx_id, index, last) in [(Some("42"), "0-1-42", 0, true), (None, "binlog.000001:4", 7, false), (Some("a\"b"), "q\\", 1, false)] {
                assert_eq!(
                    envelope(id, event_type, timestamp, &data.to_string(), group, &Source { id: tx_id, index, last, backfill: None }),
                    serde_json::to_string(&Envelope {
                        id,
                        event_type,
                        timestamp,
                        data: &data,
                        group,
                        transaction: TransactionRef { id: tx_id, index, last }
                    })
                    .unwrap()
                );
            }
        }
    }

    #[test]
    fn event_ids_are_stable_and_dot_free() {
        assert_eq!(event_id("binlog.000042", 1234, 3, 0), "evt_000042_1234_3_0");
        assert!(!event_id("mysql-bin.000001", 4, 0, 1).contains('.'));
        assert_eq!(event_id("my-bin.0a_b", u64::MAX, 0, 17), format!("evt_0ab_{}_0_17", u64::MAX));
    }

    #[test]
    fn commit_times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_324_000), "2025-11-28T10:00:00Z");
    }
}
