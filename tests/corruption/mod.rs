//! Binlog files with corrupted events, fed to the decoder (shared by the
//! fixture tests and the live MariaDB tests, `#[path]`-included by both).
//!
//! Each trial alters one event of a file (a few bytes of its body set to
//! random values or to 0x00 / 0xff, now and then its type byte), keeps its
//! CRC32 valid, and feeds the whole file to a fresh decoder as the reader
//! actor does. The decoder may refuse, skip and count: it must never panic,
//! abort or hang. The seed is fixed so that a failure repeats;
//! `ROWHOOK_CORRUPTION_SEED` explores others.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::events::EventData;
use mysql_common::binlog::EventStreamReader;
use rowhook::config::Config;
use rowhook::source::decoder::{Decoded, Decoder, Position};
use rowhook::events::envelope::events_of;
use rowhook::events::mapping::Mapper;
use rowhook::source::schema::TableSchema;

/// The seed of this run.
pub fn seed() -> u64 {
    std::env::var("ROWHOOK_CORRUPTION_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed)
}

/// The events of a binlog file as raw bytes (header, body, checksum), by the
/// header's event size.
pub fn raw_events(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let mut events = Vec::new();
    let mut at = 4;
    while at + 19 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[at + 9..at + 13].try_into().unwrap()) as usize;
        if size < 19 || at + size > bytes.len() {
            break;
        }
        events.push(bytes[at..at + size].to_vec());
        at += size;
    }
    events
}

/// Feeds raw events to a decoder as the reader actor does, skipping what the
/// event reader refuses and going on after the decoder's errors. Reading the
/// event stream itself (framing, table maps, transaction payloads) is
/// mysql_async's part in the daemon, mysql_common's here; its panics on
/// corrupt data are upstream's and skipped (`upstream`); the decoder's own
/// part must never panic or abort.
pub fn feed_raw(events: &[Vec<u8>], database: &str, config: &Config, tables: &HashMap<String, TableSchema>) -> usize {
    // The events stage runs on what the decoder gives, as the router runs it.
    let mapper = Arc::new(Mapper::new(&config.events));
    let mut decoder = Decoder::new(mapper.clone(), database, tables.clone(), Position { file: "binlog.000001".into(), pos: 4 });
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut decoded = 0;
    let upstream = |f: &mut dyn FnMut()| {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    };
    for raw in events {
        let mut read = None;
        upstream(&mut || read = Some(reader.read(&mut &raw[..])));
        let Some(Ok(Some(event))) = read else { continue };
        if let Ok(Decoded::Commit(t)) = decoder.feed(&event, |id| reader.get_tme(id)) {
            decoded += events_of(&t, 0).len();
        }
        // As mysql_async's stream does: only a TRANSACTION_PAYLOAD is read here.
        if event.header().event_type_raw() != 40 {
            continue;
        }
        let mut inner_events = Vec::new();
        upstream(&mut || {
            if let Ok(Some(EventData::TransactionPayloadEvent(payload))) = event.read_data() {
                let Ok(mut inner) = payload.decompressed() else { return };
                while let Ok(Some(event)) = reader.read_decompressed(&mut inner) {
                    inner_events.push(event);
                }
            }
        });
        for event in inner_events {
            if let Ok(Decoded::Commit(t)) = decoder.feed(&event, |id| reader.get_tme(id)) {
                decoded += events_of(&t, 0).len();
            }
        }
    }
    decoded
}

/// A small deterministic generator (the test must fail the same way twice).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// `per_event` trials for each event of `events` but the format description;
/// returns how many files were fed.
pub fn corrupt_and_feed(
    events: &[Vec<u8>],
    database: &str,
    config: &Config,
    tables: &HashMap<String, TableSchema>,
    seed: u64,
    per_event: usize,
) -> usize {
    let mut rng = Lcg(seed);
    let mut trials = 0;
    for victim in 0..events.len() {
        // The format description sets how every later event is read: left alone.
        if events[victim][4] == 15 {
            continue;
        }
        for _ in 0..per_event {
            let mut altered = events.to_vec();
            let event = &mut altered[victim];
            let has_crc = event.len() > 23 && {
                let (body, crc) = event.split_at(event.len() - 4);
                crc32fast::hash(body).to_le_bytes() == crc
            };
            let end = if has_crc { event.len() - 4 } else { event.len() };
            if end <= 19 {
                continue;
            }
            // A few bytes of the body set to random values, or to 0x00 / 0xff
            // (lengths and counts at their extremes).
            for _ in 0..1 + rng.next() % 3 {
                let at = 19 + (rng.next() as usize) % (end - 19);
                event[at] = match rng.next() % 4 {
                    0 => 0x00,
                    1 => 0xff,
                    _ => rng.next() as u8,
                };
            }
            // Now and then the body is read as another kind of event.
            if rng.next() % 8 == 0 {
                const KINDS: [u8; 16] = [2, 4, 16, 19, 23, 24, 25, 30, 31, 32, 33, 35, 39, 40, 162, 163];
                event[4] = KINDS[(rng.next() as usize) % KINDS.len()];
            }
            if has_crc {
                let crc = crc32fast::hash(&event[..end]).to_le_bytes();
                event[end..].copy_from_slice(&crc);
            }
            feed_raw(&altered, database, config, tables);
            trials += 1;
        }
    }
    trials
}
