//! What the fuzz targets share: a panic hook that tells rowhook's own panics
//! from its dependencies', and the binlog harness (also used to check seeds).
//!
//! libFuzzer reports a crash when the process aborts. rowhook catches a panic
//! of mysql_common's event parsers (they trust the lengths in the data; the
//! decoder's `feed` skips and counts the event, by design), so those are not
//! findings unless `FUZZ_UPSTREAM_PANICS=1`; a panic in rowhook's own code is
//! one even where a `catch_unwind` would have hidden it.

use std::collections::HashMap;
use std::sync::{Arc, Once};

use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::events::{Event, EventData, OptionalMetadataField};
use mysql_common::binlog::EventStreamReader;
use rowhook::config::Config;
use rowhook::events::envelope::events_of;
use rowhook::events::mapping::Mapper;
use rowhook::source::decoder::{Decoded, Decoder, Position};
use rowhook::source::schema::{ColumnInfo, TableSchema};

/// Installs the panic hook (once): abort, and so a libFuzzer crash, on a
/// panic whose location is not in a dependency's source or the standard library.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let upstream_too = std::env::var("FUZZ_UPSTREAM_PANICS").is_ok_and(|v| v == "1");
        std::panic::set_hook(Box::new(move |info| {
            let file = info.location().map(|l| l.file()).unwrap_or("");
            let upstream = file.contains("/.cargo/registry/") || file.contains("/.cargo/git/") || file.starts_with("/rustc/");
            if upstream && !upstream_too {
                return;
            }
            eprintln!("{info}\n{}", std::backtrace::Backtrace::force_capture());
            std::process::abort();
        }));
    });
}

/// Runs `f`, treating a panic as upstream's (the hook has already aborted on
/// rowhook's own): what mysql_async's stream does with its reader's panics is
/// not rowhook's to fuzz.
fn upstream<T>(f: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

/// The events of `data` (a binlog file, with or without its magic bytes), cut
/// by each header's event size. Each CRC32 is made valid again once a format
/// description says events carry one, so that mutations reach the parsers
/// instead of the checksum test.
pub fn split_events(data: &[u8]) -> Vec<Vec<u8>> {
    let mut at = if data.starts_with(b"\xfebin") { 4 } else { 0 };
    let mut events = Vec::new();
    let mut checksums = false;
    while at + 19 <= data.len() && events.len() < 4096 {
        let size = u32::from_le_bytes(data[at + 9..at + 13].try_into().unwrap()) as usize;
        if size < 19 || at + size > data.len() {
            break;
        }
        let mut event = data[at..at + size].to_vec();
        if event[4] == 15 && size >= 19 + 57 + 5 {
            // FORMAT_DESCRIPTION: its checksum algorithm is the byte before its own CRC.
            checksums = event[size - 5] == 1;
        }
        if checksums && size >= 23 {
            let crc = crc32fast::hash(&event[..size - 4]);
            event[size - 4..].copy_from_slice(&crc.to_le_bytes());
        }
        events.push(event);
        at += size;
    }
    events
}

/// Per database of the table maps in `events`: rules mapping every table (each
/// column a field; inserts and deletes, and updates with `changes`), and a
/// schema naming the columns for servers that log no names. As the fixture
/// tests do, so that every value of every rows event is decoded.
fn rules_for_every_table(events: &[Vec<u8>]) -> Vec<(String, Config, HashMap<String, TableSchema>)> {
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut databases: HashMap<String, HashMap<String, Vec<String>>> = HashMap::new();
    for raw in events {
        let Some(Ok(Some(event))) = upstream(|| reader.read(&mut &raw[..])) else { continue };
        // Table maps only: mysql_common reads other events' counts unchecked (a PREVIOUS_GTIDS
        // count allocates before it is checked: the decoder guards it, so must this pass).
        if event.header().event_type_raw() != 19 {
            continue;
        }
        let Some(Ok(Some(EventData::TableMapEvent(tme)))) = upstream(|| event.read_data()) else { continue };
        let names = upstream(|| {
            let mut names: Vec<String> = tme
                .iter_optional_meta()
                .flatten()
                .find_map(|field| match field {
                    OptionalMetadataField::ColumnName(names) => Some(names.iter_names().flatten().map(|n| n.name().into_owned()).collect()),
                    _ => None,
                })
                .unwrap_or_default();
            if names.is_empty() {
                names = (0..tme.columns_count()).map(|i| format!("c{i}")).collect();
            }
            (tme.database_name().into_owned(), tme.table_name().into_owned(), names)
        });
        if let Some((database, table, names)) = names {
            databases.entry(database).or_default().insert(table, names);
        }
    }
    let mut out = Vec::new();
    for (database, tables) in databases.into_iter().take(2) {
        let mut rules = String::new();
        let mut schemas = HashMap::new();
        for (table, names) in tables.into_iter().take(8) {
            let quote = |s: &str| serde_json::to_string(s).unwrap();
            let fields: Vec<String> = names.iter().map(|n| format!("{} = {}", quote(n), quote(n))).collect();
            let fields = fields.join(", ");
            let table_rules = format!(
                "[[events]]\ntype = {}\ntable = {}\noperations = [\"insert\", \"delete\"]\nfields = {{ {fields} }}\n\
                 [[events]]\ntype = {}\ntable = {}\noperations = [\"update\"]\nfields = {{ {fields} }}\nchanges = {{}}\n",
                quote(&format!("{table}.changed")),
                quote(&table),
                quote(&format!("{table}.updated")),
                quote(&table),
            );
            // Only tables whose names make valid rules (a name may be anything in a mutated map).
            if Config::from_toml(&format!("[source]\nurl = \"mysql://r@h:1/db\"\n{table_rules}")).is_ok() {
                rules.push_str(&table_rules);
                let columns = names
                    .iter()
                    .map(|n| ColumnInfo {
                        name: Arc::from(n.as_str()),
                        data_type: "varchar".into(),
                        column_type: "varchar(255)".into(),
                        is_json: false,
                        charset: None,
                        primary_key: false,
                    })
                    .collect();
                schemas.insert(table, TableSchema { columns });
            }
        }
        if let Ok(config) = Config::from_toml(&format!("[source]\nurl = \"mysql://r@h:1/db\"\n{rules}")) {
            out.push((database, config, schemas));
        }
    }
    out
}

/// Feeds `data`'s events to a decoder per database, as the reader actor does
/// (events of a TRANSACTION_PAYLOAD after it), and renders what commits as the
/// router would. Returns how many events were made.
pub fn feed_binlog(data: &[u8]) -> usize {
    let events = split_events(data);
    let mut made = 0;
    for (database, config, tables) in rules_for_every_table(&events) {
        let mapper = Arc::new(Mapper::new(&config.events));
        let mut decoder = Decoder::new(mapper, &database, tables, Position { file: "binlog.000001".into(), pos: 4 });
        let mut reader = EventStreamReader::new(BinlogVersion::Version4);
        for raw in &events {
            let Some(Ok(Some(event))) = upstream(|| reader.read(&mut &raw[..])) else { continue };
            made += feed(&mut decoder, &reader, &event);
            if event.header().event_type_raw() != 40 {
                continue;
            }
            let inner = upstream(|| {
                let mut inner_events = Vec::new();
                if let Ok(Some(EventData::TransactionPayloadEvent(payload))) = event.read_data() {
                    if let Ok(mut inner) = payload.decompressed() {
                        while let Ok(Some(event)) = reader.read_decompressed(&mut inner) {
                            inner_events.push(event);
                            if inner_events.len() > 4096 {
                                break;
                            }
                        }
                    }
                }
                inner_events
            });
            for event in inner.unwrap_or_default() {
                made += feed(&mut decoder, &reader, &event);
            }
        }
    }
    made
}

fn feed(decoder: &mut Decoder, reader: &EventStreamReader, event: &Event) -> usize {
    match decoder.feed(event, |id| reader.get_tme(id)) {
        Ok(Decoded::Commit(t)) | Ok(Decoded::Partial(t)) => events_of(&t, 0).len(),
        _ => 0,
    }
}
