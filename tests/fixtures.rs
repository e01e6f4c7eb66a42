//! The decoder on real binlog files of servers that cannot run here (MySQL 8)
//! and of formats a row-only reader must refuse. The files live in
//! `../shared/fixtures/binlogs/` beside the checkout (see its README), or in
//! the directory `ROWHOOK_FIXTURES` names (relative to the checkout).
//!
//! A clone without them (a user's) cannot run these tests: each then prints
//! one line saying it is skipped and why, and passes. Where they must run, in
//! CI (`CI=true`) or with `ROWHOOK_REQUIRE_FIXTURES=1`, their absence fails
//! each test with that message instead (`ROWHOOK_REQUIRE_FIXTURES=0` allows
//! the skip in CI too).

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mysql_common::binlog::events::{Event, EventData};
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::EventStreamReader;
use rowhook::config::Config;
use rowhook::events::envelope::{events_of, OutgoingEvent};
use rowhook::events::mapping::Mapper;
use rowhook::source::decoder::{DecodeError, Decoded, Decoder, Position, Transaction};
use rowhook::source::schema::{ColumnInfo, TableSchema};

mod corruption;

// ------------------------------------------------------------- the fixtures

/// The directory of binlog fixtures, once found.
struct Fixtures {
    dir: PathBuf,
}

impl Fixtures {
    /// A fixture file. The directory is there, so a missing file is a broken
    /// fixture set: that fails, it is not skipped.
    fn path(&self, path: &str) -> PathBuf {
        let path = self.dir.join(path);
        assert!(path.exists(), "fixture {} missing from {} (see its README.md)", path.display(), self.dir.display());
        path
    }
}

/// Where the fixtures are looked for: `ROWHOOK_FIXTURES` (relative to the
/// checkout), else `../shared/fixtures/binlogs` beside the checkout.
fn fixture_dir(variable: Option<&str>) -> PathBuf {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
    match variable.filter(|v| !v.is_empty()) {
        Some(dir) => checkout.join(dir),
        None => checkout.parent().unwrap_or(checkout).join("shared/fixtures/binlogs"),
    }
}

/// Whether absent fixtures fail rather than skip: `ROWHOOK_REQUIRE_FIXTURES`
/// when it is set, else whether this runs under CI (`CI` set, not to `false` or `0`).
fn fixtures_required(require: Option<&str>, ci: Option<&str>) -> bool {
    let yes = |v: &str| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false" | "no");
    match require {
        Some(v) if !v.trim().is_empty() => yes(v),
        _ => ci.is_some_and(yes),
    }
}

/// What became of the search for the fixtures.
#[derive(Debug)]
enum Found {
    Here(PathBuf),
    /// Absent: the line to print, and the test passes.
    Skip(String),
    /// Absent where they are required: the test fails with this.
    Missing(String),
}

/// The fixtures are there when `dir` exists and is not empty.
fn look_for_fixtures(dir: &Path, required: bool, why_required: &str) -> Found {
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Found::Here(dir.to_path_buf());
    }
    let absent = format!(
        "the binlog fixtures (MySQL 8/9 and MariaDB 11.8 binlog files) are not at {} (they live in ../shared/fixtures/binlogs \
         beside the checkout; set ROWHOOK_FIXTURES=<dir> to point elsewhere)",
        dir.display()
    );
    if required {
        Found::Missing(format!("{absent}, and {why_required} requires them (ROWHOOK_REQUIRE_FIXTURES=0 skips these tests instead)"))
    } else {
        Found::Skip(format!("skipped: {absent}"))
    }
}

/// The fixtures, or `None` after printing one line saying that the calling
/// test is skipped and why. Panics where the fixtures are required.
fn fixtures() -> Option<Fixtures> {
    let var = |name: &str| std::env::var(name).ok();
    let (require, ci) = (var("ROWHOOK_REQUIRE_FIXTURES"), var("CI"));
    let why = match &require {
        Some(v) if !v.trim().is_empty() => format!("ROWHOOK_REQUIRE_FIXTURES={v}"),
        _ => format!("CI={}", ci.as_deref().unwrap_or_default()),
    };
    let dir = fixture_dir(var("ROWHOOK_FIXTURES").as_deref());
    match look_for_fixtures(&dir, fixtures_required(require.as_deref(), ci.as_deref()), &why) {
        Found::Here(dir) => Some(Fixtures { dir }),
        Found::Skip(line) => {
            // Straight to stderr: the test harness captures print!/eprint! of passing tests.
            let test = std::thread::current().name().unwrap_or("a fixture test").to_string();
            let _ = writeln!(std::io::stderr(), "{test}: {line}");
            None
        }
        Found::Missing(message) => panic!("{message}"),
    }
}

#[test]
fn absent_fixtures_skip_with_a_line_and_fail_where_required() {
    assert!(!fixtures_required(None, None));
    assert!(fixtures_required(None, Some("true")));
    assert!(fixtures_required(None, Some("1")));
    assert!(!fixtures_required(None, Some("false")));
    assert!(fixtures_required(Some("1"), None));
    assert!(!fixtures_required(Some("0"), Some("true")), "an explicit 0 allows the skip in CI");
    assert!(fixtures_required(Some(""), Some("true")), "an empty value is unset");

    let empty = tempfile::tempdir().unwrap();
    let at = empty.path().display().to_string();
    match look_for_fixtures(empty.path(), false, "CI=") {
        Found::Skip(line) => {
            assert!(line.starts_with("skipped: ") && line.contains(&at) && line.contains("ROWHOOK_FIXTURES=<dir>"), "{line}");
            assert!(!line.contains('\n'), "one line: {line}");
        }
        other => panic!("an empty directory: {other:?}"),
    }
    match look_for_fixtures(&empty.path().join("nowhere"), true, "CI=true") {
        Found::Missing(message) => assert!(message.contains(&at) && message.contains("CI=true requires them"), "{message}"),
        other => panic!("a missing directory in CI: {other:?}"),
    }
    std::fs::write(empty.path().join("x.000001"), b"\xfebin").unwrap();
    assert!(matches!(look_for_fixtures(empty.path(), true, "CI=true"), Found::Here(_)));

    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(fixture_dir(None), checkout.parent().unwrap().join("shared/fixtures/binlogs"));
    assert_eq!(fixture_dir(Some("")), fixture_dir(None));
    assert_eq!(fixture_dir(Some("fx")), checkout.join("fx"));
    assert_eq!(fixture_dir(Some("/data/fx")), Path::new("/data/fx"));
}

/// What decoding some binlog files gave.
struct Decoding {
    transactions: Vec<Committed>,
    row_errors: u64,
}

/// Feeds every event of a binlog file to a decoder; returns the transactions or the first error.
/// A committed transaction and the events the rules make of it (the events
/// stage, as the router runs it).
#[derive(Debug)]
struct Committed {
    transaction: Transaction,
    events: Vec<OutgoingEvent>,
}

impl std::ops::Deref for Committed {
    type Target = Transaction;
    fn deref(&self) -> &Transaction {
        &self.transaction
    }
}

fn decode_file(path: &Path, database: &str, rules: &str, tables: HashMap<String, TableSchema>) -> Result<Vec<Committed>, DecodeError> {
    decode_files(&[path.to_path_buf()], database, rules, tables).map(|d| d.transactions)
}

/// Feeds the events of several binlog files, in order, to one decoder (as a
/// stream crossing a ROTATE would). Events inside a TRANSACTION_PAYLOAD are
/// decompressed and fed after it, as mysql_async's stream yields them.
fn decode_files(paths: &[PathBuf], database: &str, rules: &str, tables: HashMap<String, TableSchema>) -> Result<Decoding, DecodeError> {
    let config = Config::from_toml(&format!("[source]\nurl = \"mysql://r@h:1/{database}\"\n{rules}")).unwrap();
    let mapper = Arc::new(Mapper::new(&config.events));
    let file_name = paths[0].file_name().unwrap().to_string_lossy().to_string();
    let mut decoder = Decoder::new(mapper.clone(), database, tables, Position { file: file_name, pos: 4 });
    let committed = |transaction: Transaction| Committed { events: events_of(&transaction, 0), transaction };
    let mut out = Vec::new();
    for path in paths {
        let mut input = BufReader::new(std::fs::File::open(path).unwrap());
        let mut magic = [0u8; 4];
        input.read_exact(&mut magic).unwrap();
        assert_eq!(&magic, b"\xfebin");
        let mut reader = EventStreamReader::new(BinlogVersion::Version4);
        loop {
            let event: Event = match reader.read(&mut input) {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => panic!("reading {}: {e}", path.display()),
            };
            if let Decoded::Commit(t) = decoder.feed(&event, |id| reader.get_tme(id))? {
                out.push(committed(t));
            }
            if let Ok(Some(EventData::TransactionPayloadEvent(payload))) = event.read_data() {
                let mut inner = payload.decompressed().expect("zstd payload");
                while let Some(event) = reader.read_decompressed(&mut inner).expect("payload event") {
                    assert_eq!(event.header().log_pos(), 0, "events inside a payload have no position");
                    if let Decoded::Commit(t) = decoder.feed(&event, |id| reader.get_tme(id))? {
                        out.push(committed(t));
                    }
                }
            }
        }
    }
    Ok(Decoding { transactions: out, row_errors: decoder.row_errors })
}

/// The bodies of every event, parsed.
fn bodies(transactions: &[Committed]) -> Vec<serde_json::Value> {
    transactions.iter().flat_map(|t| &t.events).map(|e| serde_json::from_str(&e.body).unwrap()).collect()
}

/// The `data` of every event.
fn data(transactions: &[Committed]) -> Vec<serde_json::Value> {
    bodies(transactions).into_iter().map(|b| b["data"].clone()).collect()
}

fn columns(names: &[&str], data_type: &str) -> TableSchema {
    TableSchema {
        columns: names
            .iter()
            .map(|n| ColumnInfo { name: Arc::from(*n), data_type: data_type.into(), column_type: data_type.into(), is_json: false, charset: None, primary_key: false })
            .collect(),
    }
}

#[test]
fn mysql8_integer_rows_decode_with_names_from_the_schema() {
    let Some(fixtures) = fixtures() else { return };
    // MySQL 8.2, binlog_row_metadata=MINIMAL: no names in the binlog, so they come from information_schema.
    let rules = "[[events]]\ntype = \"int.inserted\"\ntable = \"int_table\"\noperations = [\"insert\"]\n\
                 fields = { a = \"col1\", b = \"col2\", c = \"col3\", d = \"col4\", e = \"col5\", f = \"col6\" }\n";
    let tables = HashMap::from([(
        "int_table".to_string(),
        columns(&["col1", "col2", "col3", "col4", "col5", "col6"], "int"),
    )]);
    let transactions = decode_file(&fixtures.path("mysql-cdc-rs/8.0_19_30_write_rows_binlog.000018"), "test", rules, tables).unwrap();
    let events: Vec<_> = transactions.iter().flat_map(|t| &t.events).collect();
    assert_eq!(events.len(), 1, "mysqlbinlog -vv shows one INSERT");
    let body: serde_json::Value = serde_json::from_str(&events[0].body).unwrap();
    assert_eq!(body["type"], "int.inserted");
    assert_eq!(body["data"], serde_json::json!({"a": 1, "b": 11, "c": 111, "d": 1111, "e": 11111, "f": 1}));
    assert_eq!(body["timestamp"], "2023-12-19T12:30:03Z");
    assert!(!events[0].id.contains('.'));
    // The checkpoint after the transaction lies inside the file.
    assert!(transactions.last().unwrap().end.pos > 4);
}

#[test]
fn a_column_count_that_does_not_match_the_schema_stops_decoding() {
    let Some(fixtures) = fixtures() else { return };
    let rules = "[[events]]\ntype = \"int.inserted\"\ntable = \"int_table\"\noperations = [\"insert\"]\n";
    let tables = HashMap::from([("int_table".to_string(), columns(&["col1", "col2"], "int"))]);
    let err = decode_file(&fixtures.path("mysql-cdc-rs/8.0_19_30_write_rows_binlog.000018"), "test", rules, tables).unwrap_err();
    assert!(matches!(err, DecodeError::ColumnCountMismatch { found: 6, expected: 2, .. }), "{err}");
}

#[test]
fn unmapped_tables_give_empty_transactions() {
    let Some(fixtures) = fixtures() else { return };
    let transactions = decode_file(&fixtures.path("mysql-cdc-rs/8.0_19_30_write_rows_binlog.000018"), "test", "", HashMap::new()).unwrap();
    assert!(!transactions.is_empty());
    assert!(transactions.iter().all(|t| t.events.is_empty() && t.rows_by_table.is_empty()));
}

#[test]
fn statement_based_dml_is_refused_not_skipped() {
    let Some(fixtures) = fixtures() else { return };
    // MariaDB 11.8, sysbench DML on `sbtest-repl` logged as statements.
    let err = decode_file(&fixtures.path("mariadb-poc/domain_id_0/mariadb-repl-bin.000007"), "sbtest-repl", "", HashMap::new()).unwrap_err();
    assert!(matches!(err, DecodeError::StatementBased { .. }), "{err}");
    assert!(err.to_string().contains("binlog_format=ROW"), "{err}");
}


fn rule(event_type: &str, table: &str, operations: &str, fields: &[&str]) -> String {
    let fields: Vec<String> = fields.iter().map(|f| format!("{f} = \"{f}\"")).collect();
    format!("[[events]]\ntype = \"{event_type}\"\ntable = \"{table}\"\noperations = [{operations}]\nfields = {{ {} }}\n", fields.join(", "))
}

#[test]
fn mysql8_binary_json_and_partial_updates_under_minimal_images() {
    let Some(fixtures) = fixtures() else { return };
    // MySQL 8.0.22, binlog_row_value_options=PARTIAL_JSON, MINIMAL metadata
    // (names from the schema). Inserts and full updates decode to the exact
    // documents; the PARTIAL_UPDATE_ROWS event was logged with
    // binlog_row_image=MINIMAL (the before image holds only the key), which
    // rowhook refuses in the stream as it does at start.
    let rules = rule("t.inserted", "t", "\"insert\"", &["id", "json_col", "name", "age"])
        + &rule("t.updated", "t", "\"update\"", &["id", "json_col", "name", "age"]);
    let tables = || HashMap::from([("t".to_string(), columns(&["id", "json_col", "name", "age"], "int"))]);
    let err = decode_files(&[fixtures.path("rust_mysql_common/json.binlog.000001")], "mysql", &rules, tables()).err().expect("refused");
    assert!(
        matches!(&err, DecodeError::PartialRowImage { position, found: 1, expected: 4, .. } if position.pos == 3750),
        "{err}"
    );
    assert!(err.to_string().contains("binlog_row_image = 'FULL'"), "{err}");

    // Everything before the partial update: read the file only that far.
    let path = fixtures.path("rust_mysql_common/json.binlog.000001");
    let bytes = std::fs::read(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("json.binlog.000001");
    std::fs::write(&head, &bytes[..3606]).unwrap();
    let decoded = decode_files(&[head], "mysql", &rules, tables()).unwrap();
    let people = [(1, "Joe", 24, "xxxxxxxxxx"), (2, "Sue", 32, "yyyyyyyyyy"), (3, "Pete", 40, "zzzzzzzzzz")];
    let mut want = Vec::new();
    for round in 0..2 {
        for (id, name, age, filler) in people {
            want.push(serde_json::json!({"id": id + 3 * round, "name": name, "age": age, "json_col": {"age": age, "data": filler, "name": name}}));
        }
    }
    for (k, (_, name, age, filler)) in people.iter().chain(people.iter()).enumerate() {
        let age = age + 1;
        want.push(serde_json::json!({"id": k + 1, "name": name, "age": age, "json_col": {"age": age, "data": filler, "name": name}}));
    }
    assert_eq!(data(&decoded.transactions), want);
    assert_eq!(decoded.row_errors, 0);
}

#[test]
fn mysql9_json_opaque_values() {
    let Some(fixtures) = fixtures() else { return };
    let rules = rule("j.inserted", "test", "\"insert\"", &["a"]);
    let tables = HashMap::from([("test".to_string(), columns(&["a"], "json"))]);
    let decoded = decode_files(&[fixtures.path("rust_mysql_common/json-opaque.binlog")], "foo", &rules, tables).unwrap();
    let values: Vec<String> = data(&decoded.transactions).into_iter().map(|d| d["a"].to_string()).collect();
    // Opaque scalars as MySQL prints them: DATE/DATETIME/TIME as text,
    // DECIMAL as a number with every digit and its scale (the JSON text, not
    // only an equal value: `9.00`, not `9` or `"9.00"`), other types as
    // `base64:type<N>:<data>`.
    assert_eq!(
        values,
        [
            r#"{"a":"base64:type15:VQ=="}"#,
            r#"{"b":"2012-03-18"}"#,
            r#"{"c":"2012-03-18 11:30:45.000000"}"#,
            r#"{"c":"87:31:46.654321"}"#,
            r#"{"d":123.456}"#,
            r#"{"e":9.00}"#,
            r#"{"e":[0,1,true,false]}"#,
            r#"{"e":null}"#,
        ]
    );
    assert_eq!(decoded.row_errors, 0);
}

#[test]
fn mysql8_invisible_columns_are_decoded_like_the_others() {
    let Some(fixtures) = fixtures() else { return };
    let rules = rule("t1.changed", "t1", "\"insert\", \"update\"", &["f1", "f2", "f3", "f4", "f5", "f6"]);
    let tables = HashMap::from([("t1".to_string(), columns(&["f1", "f2", "f3", "f4", "f5", "f6"], "int"))]);
    let decoded = decode_files(&[fixtures.path("rust_mysql_common/binlog-invisible-columns.000001")], "mysql", &rules, tables).unwrap();
    assert_eq!(
        data(&decoded.transactions),
        vec![
            serde_json::json!({"f1": 1, "f2": 2, "f3": -3, "f4": "4", "f5": "BQ==", "f6": 6000000000u64}),
            serde_json::json!({"f1": null, "f2": null, "f3": -33, "f4": "44", "f5": "VQ==", "f6": null}),
            serde_json::json!({"f1": 111, "f2": 222, "f3": -333, "f4": "444", "f5": "VQ==", "f6": null}),
        ]
    );
}

#[test]
fn compressed_transactions_get_unique_stable_ids_and_resume_after_the_payload() {
    let Some(fixtures) = fixtures() else { return };
    // MySQL 8.0.31, GTID mode, binlog_transaction_compression=ON: two
    // TRANSACTION_PAYLOAD events; the second holds an UPDATE and an INSERT.
    let names: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let rules = rule("p.changed", "test_table_3", "\"insert\", \"update\"", &["c0"]) + &rule("b.inserted", "b", "\"insert\"", &["id"]);
    let tables = HashMap::from([
        ("test_table_3".to_string(), columns(&names, "int")),
        ("b".to_string(), columns(&["id"], "int")),
    ]);
    let decoded = decode_files(&[fixtures.path("mysql-binlog-connector-rust/mysql-bin.000057")], "a", &rules, tables).unwrap();
    let with_events: Vec<&Committed> = decoded.transactions.iter().filter(|t| !t.events.is_empty()).collect();
    assert_eq!(with_events.len(), 2);
    let ids: Vec<&str> = with_events.iter().flat_map(|t| &t.events).map(|e| e.id.as_str()).collect();
    // Rows take the payload's position; rows are numbered across the payload.
    assert_eq!(ids, ["evt_000057_457_0_1", "evt_000057_730_0_0", "evt_000057_730_1_0"]);
    assert_eq!(data(&decoded.transactions)[1..], [serde_json::json!({"c0": 55555}), serde_json::json!({"c0": 6666})]);
    // Each transaction resumes after its payload, never at position 0.
    assert_eq!(with_events[0].end.pos, 651);
    assert_eq!(with_events[1].end.pos, 1283);

    let rules = rule("m.updated", "movies", "\"update\"", &["c0"]);
    let names: Vec<String> = (0..11).map(|i| format!("c{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let tables = HashMap::from([("movies".to_string(), columns(&names, "int"))]);
    let decoded = decode_files(&[fixtures.path("mysql-binlog-connector-java/mysql-bin.compressed")], "demo", &rules, tables).unwrap();
    let events: Vec<_> = decoded.transactions.iter().flat_map(|t| &t.events).collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, "evt_compressed_236_0_0");
    assert_eq!(decoded.transactions.last().unwrap().end.pos, 724);
}

#[test]
fn mariadb_gtid_state_per_domain_across_files() {
    let Some(fixtures) = fixtures() else { return };
    // Two MariaDB 11.8 servers' binlogs: domain 0 (from GTID_LIST 0-10-292196
    // on), then domain 1; one decoder keeps the last GTID of each domain.
    let decoded = decode_files(
        &[fixtures.path("mariadb-poc/domain_id_0/mariadb-repl-bin.000010"), fixtures.path("mariadb-poc/domain_id_1/mariadb-repl-bin.000002")],
        "sbtest-repl",
        "",
        HashMap::new(),
    )
    .unwrap();
    let states: Vec<&str> = decoded.transactions.iter().filter_map(|t| t.gtid.as_deref()).collect();
    assert_eq!(states.len(), decoded.transactions.len(), "every transaction carries the state");
    assert_eq!(states[0], "0-10-292197");
    assert!(states.contains(&"0-10-292206"));
    assert_eq!(states.last().copied(), Some("0-10-292206,1-10-12"));
}

#[test]
fn mariadb_gtid_state_starts_from_the_gtid_list() {
    let Some(fixtures) = fixtures() else { return };
    let decoded = decode_files(&[fixtures.path("mariadb-poc/domain_id_0/mariadb-repl-bin.000009")], "x", "", HashMap::new()).unwrap();
    let states: Vec<&str> = decoded.transactions.iter().filter_map(|t| t.gtid.as_deref()).collect();
    assert!(!states.is_empty());
    assert!(states.iter().all(|s| s.starts_with("0-10-")), "{states:?}");
}

#[test]
fn mysql8_time_beyond_24_hours_and_negative() {
    let Some(fixtures) = fixtures() else { return };
    let rules = rule("t.inserted", "t", "\"insert\"", &["c"]);
    let tables = HashMap::from([("t".to_string(), columns(&["c"], "time"))]);
    let decoded = decode_files(&[fixtures.path("rust_mysql_common/time_issue.000001")], "noria", &rules, tables).unwrap();
    assert_eq!(data(&decoded.transactions), [serde_json::json!({"c": "-507:48:27"})]);
}

#[test]
fn mysql8_bit_columns_as_numbers() {
    let Some(fixtures) = fixtures() else { return };
    let rules = rule("foo.inserted", "foo", "\"insert\"", &["a", "b", "c"]);
    let decoded = decode_files(&[fixtures.path("rust_mysql_common/mysql_type_bit.000001")], "mysql", &rules, HashMap::new()).unwrap();
    assert_eq!(data(&decoded.transactions), [serde_json::json!({"a": 4, "b": "foo", "c": 32})]);
}

#[test]
fn mysql8_enum_and_set_strings_from_full_metadata() {
    let Some(fixtures) = fixtures() else { return };
    // No schema given: names, ENUM and SET values and charsets all come from the table map.
    let rules = rule("t.changed", "t", "\"insert\", \"update\", \"delete\"", &["f1", "f2", "f3", "f4", "f5"]);
    let decoded = decode_files(&[fixtures.path("rust_mysql_common/mysql-enum-string-set.000001")], "mysql", &rules, HashMap::new()).unwrap();
    let data = data(&decoded.transactions);
    let pick: Vec<serde_json::Value> = data.iter().map(|d| serde_json::json!([d["f1"].as_str().map(str::len), d["f2"].as_str().map(|s| &s[..s.len().min(8)]), d["f3"], d["f4"]])).collect();
    assert_eq!(
        pick,
        [
            serde_json::json!([100, "01234567", "var1", ["one", "three"]]),
            serde_json::json!([6, "field_2", "variant2", ["two", "four"]]),
            serde_json::json!([6, "field_2", "variant2", ["two", "four"]]),
        ]
    );
    assert_eq!(data[0]["f1"], "0123456789".repeat(10));
    assert_eq!(data[1]["f1"], "field1");
    assert_eq!(data[1]["f2"], "field_2");
}

#[test]
fn mysql8_transaction_compression_single_payload() {
    let Some(fixtures) = fixtures() else { return };
    let rules = rule("tb1.inserted", "tb1", "\"insert\"", &["id"]);
    let tables = HashMap::from([("tb1".to_string(), columns(&["id"], "int"))]);
    let transactions = decode_file(&fixtures.path("rust_mysql_common/transaction_compression.000001"), "test", &rules, tables).unwrap();
    let events: Vec<_> = transactions.iter().flat_map(|t| &t.events).collect();
    assert_eq!(events.len(), 1);
    let payload_at: Vec<&str> = events[0].id.split('_').collect();
    assert_eq!(payload_at[0..2], ["evt", "000001"]);
    assert_ne!(payload_at[2], "0", "the payload's position, not the inner event's 0: {}", events[0].id);
    assert_eq!(data(&transactions), [serde_json::json!({"id": 1})]);
    let end = &transactions.iter().find(|t| !t.events.is_empty()).unwrap().end;
    assert!(end.pos > payload_at[2].parse::<u64>().unwrap(), "resumes after the payload");
}

#[test]
fn a_minimal_row_image_of_a_mapped_table_is_refused() {
    let Some(fixtures) = fixtures() else { return };
    // MySQL 8.0.40, binlog_row_image=MINIMAL: the insert logs 3 of 5 columns.
    let rules = rule("t1.inserted", "t1", "\"insert\"", &["a"]);
    let tables = HashMap::from([("t1".to_string(), columns(&["a", "b", "c", "d", "e"], "int"))]);
    let err = decode_file(&fixtures.path("rust_mysql_common/minimal_row_metadata.000001"), "noria", &rules, tables).unwrap_err();
    assert!(matches!(err, DecodeError::PartialRowImage { found: 3, expected: 5, .. }), "{err}");
    // Unmapped, the same rows are never parsed.
    assert!(decode_file(&fixtures.path("rust_mysql_common/minimal_row_metadata.000001"), "noria", "", HashMap::new()).is_ok());
}

#[test]
fn mysql9_vectors_as_arrays_of_numbers() {
    let Some(fixtures) = fixtures() else { return };
    let rules = rule("bar.changed", "bar", "\"insert\", \"delete\"", &["id", "vector_column", "foo", "vector_column2"]);
    let decoded = decode_files(&[fixtures.path("rust_mysql_common/vector.binlog")], "dtb", &rules, HashMap::new()).unwrap();
    let data = data(&decoded.transactions);
    assert!(!data.is_empty());
    for row in &data {
        assert_eq!(row["vector_column"].as_array().map(Vec::len), Some(2), "{row}");
        assert_eq!(row["vector_column2"].as_array().map(Vec::len), Some(4), "{row}");
        assert!(row["vector_column"].as_array().unwrap().iter().all(serde_json::Value::is_number), "{row}");
    }
    assert_eq!(
        data[..2],
        [
            serde_json::json!({"id": 1, "vector_column": [1.1, 2.2], "foo": null, "vector_column2": [1.1, 2.2, 3.3, 4.4]}),
            serde_json::json!({"id": 2, "vector_column": [1.01, -1.01], "foo": "bar", "vector_column2": [42.0, 43.0, 44.0, 45.0]}),
        ]
    );
}

#[test]
fn mysql_gtid_set_after_each_transaction_from_an_empty_previous_gtids() {
    let Some(fixtures) = fixtures() else { return };
    // MySQL 8.0.28, gtid_mode=ON: PREVIOUS_GTIDS (empty), then five
    // transactions 93e95066-...:1..5 (two DDL, three DML).
    let decoded = decode_files(&[fixtures.path("rust_mysql_common/mysql-enum-string-set.000001")], "mysql", "", HashMap::new()).unwrap();
    let states: Vec<&str> = decoded.transactions.iter().filter_map(|t| t.gtid.as_deref()).collect();
    let uuid = "93e95066-a2f4-11ec-9b69-9657f0ae95e2";
    assert_eq!(states, (1..=5).map(|n| if n == 1 { format!("{uuid}:1") } else { format!("{uuid}:1-{n}") }).collect::<Vec<_>>());
    assert_eq!(decoded.transactions.last().unwrap().end.pos, 3331);
}

#[test]
fn mysql_gtid_set_starts_from_previous_gtids_and_counts_compressed_transactions() {
    let Some(fixtures) = fixtures() else { return };
    // MySQL 8.0.31: PREVIOUS_GTIDS 76f3e7be-...:1-10, then GTID 11 (DDL) and
    // GTIDs 12 and 13, each a TRANSACTION_PAYLOAD whose XID is inside it.
    let decoded = decode_files(&[fixtures.path("mysql-binlog-connector-rust/mysql-bin.000057")], "a", "", HashMap::new()).unwrap();
    let states: Vec<(&str, u64)> = decoded.transactions.iter().map(|t| (t.gtid.as_deref().unwrap_or("-"), t.end.pos)).collect();
    let uuid = "76f3e7be-6720-11ed-9cad-0242ac110002";
    assert_eq!(
        states,
        [(format!("{uuid}:1-11").as_str(), 378), (format!("{uuid}:1-12").as_str(), 651), (format!("{uuid}:1-13").as_str(), 1283)]
    );
}

/// The GTID state of each transaction of a binlog file fed to `decoder`, leaving out events of `skip` type.
fn gtid_states(decoder: &mut Decoder, path: &Path, skip: Option<u8>) -> Vec<Option<String>> {
    let mut input = BufReader::new(std::fs::File::open(path).unwrap());
    input.read_exact(&mut [0u8; 4]).unwrap();
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut states = Vec::new();
    while let Ok(Some(event)) = reader.read(&mut input) {
        if Some(event.header().event_type_raw()) == skip {
            continue;
        }
        if let Decoded::Commit(t) = decoder.feed(&event, |id| reader.get_tme(id)).unwrap() {
            states.push(t.gtid);
        }
        if let Ok(Some(EventData::TransactionPayloadEvent(payload))) = event.read_data() {
            let mut inner = payload.decompressed().expect("zstd payload");
            while let Some(event) = reader.read_decompressed(&mut inner).expect("payload event") {
                if let Decoded::Commit(t) = decoder.feed(&event, |id| reader.get_tme(id)).unwrap() {
                    states.push(t.gtid);
                }
            }
        }
    }
    states
}

fn bare_decoder(file: &str) -> Decoder {
    let config = Config::from_toml("[source]\nurl = \"mysql://r@h:1/a\"\n").unwrap();
    Decoder::new(Arc::new(Mapper::new(&config.events)), "a", HashMap::new(), Position { file: file.into(), pos: 4 })
}

#[test]
fn mysql_gtid_set_from_the_checkpoint_merges_with_the_stream() {
    let Some(fixtures) = fixtures() else { return };
    // A stored set with another server's UUID and a gap: the stream's GTIDs join it, merged.
    let mut decoder = bare_decoder("mysql-bin.000057");
    let other = "11111111-2222-3333-4444-555555555555:1-100";
    decoder.set_gtid_state(&format!("76F3E7BE-6720-11ED-9CAD-0242AC110002:1-5:12,\n{other}"));
    let states = gtid_states(&mut decoder, &fixtures.path("mysql-binlog-connector-rust/mysql-bin.000057"), None);
    let uuid = "76f3e7be-6720-11ed-9cad-0242ac110002";
    let want = |n: u32| Some(format!("{other},{uuid}:1-{n}"));
    assert_eq!(states, [want(12), want(12), want(13)]);
    assert_eq!(decoder.gtid_state(), format!("{other},{uuid}:1-13"));
}

#[test]
fn without_a_known_start_no_mysql_gtid_set_is_stored() {
    let Some(fixtures) = fixtures() else { return };
    // Read from the middle of a file (here: no PREVIOUS_GTIDS) and no stored
    // set: the GTIDs seen are not the whole history, so only file/pos is stored.
    let mut decoder = bare_decoder("mysql-bin.000057");
    let states = gtid_states(&mut decoder, &fixtures.path("mysql-binlog-connector-rust/mysql-bin.000057"), Some(35));
    assert_eq!(states, [None, None, None]);
    assert_eq!(decoder.gtid_state(), "");
}

// ----------------------------------------------------------- corrupted events

/// Every fixture binlog file.
fn all_fixture_files(fixtures: &Fixtures) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![fixtures.dir.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if std::fs::read(&path).is_ok_and(|b| b.starts_with(b"\xfebin")) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Rules that map every table of the file's table maps, with every column as
/// a field (and `changes` on updates), so that every value is decoded; and a
/// schema for servers that log no column names. Per database.
fn rules_for_every_table(events: &[Vec<u8>]) -> Vec<(String, String, HashMap<String, TableSchema>)> {
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut databases: HashMap<String, HashMap<String, Vec<String>>> = HashMap::new();
    for raw in events {
        let Ok(Some(event)) = reader.read(&mut &raw[..]) else { continue };
        if let Ok(Some(EventData::TableMapEvent(tme))) = event.read_data() {
            let mut names: Vec<String> = tme
                .iter_optional_meta()
                .flatten()
                .find_map(|field| match field {
                    mysql_common::binlog::events::OptionalMetadataField::ColumnName(names) => {
                        Some(names.iter_names().flatten().map(|n| n.name().into_owned()).collect())
                    }
                    _ => None,
                })
                .unwrap_or_default();
            if names.is_empty() {
                names = (0..tme.columns_count()).map(|i| format!("c{i}")).collect();
            }
            databases.entry(tme.database_name().into_owned()).or_default().insert(tme.table_name().into_owned(), names);
        }
    }
    databases
        .into_iter()
        .map(|(database, tables)| {
            let mut rules = String::new();
            let mut schemas = HashMap::new();
            for (table, names) in tables {
                let quoted: Vec<&str> = names.iter().map(String::as_str).collect();
                rules.push_str(&rule(&format!("{table}.changed"), &table, "\"insert\", \"delete\"", &quoted));
                rules.push_str(&rule(&format!("{table}.updated"), &table, "\"update\"", &quoted));
                rules.push_str("changes = {}\n");
                schemas.insert(table, columns(&quoted, "varchar"));
            }
            (database, rules, schemas)
        })
        .collect()
}

#[test]
fn corrupted_events_of_every_fixture_are_errors_or_skipped_never_a_panic() {
    let Some(fixtures) = fixtures() else { return };
    let seed = corruption::seed();
    let mut trials = 0;
    for path in all_fixture_files(&fixtures) {
        let events = corruption::raw_events(&path);
        for (database, rules, tables) in rules_for_every_table(&events) {
            let config = Config::from_toml(&format!("[source]\nurl = \"mysql://r@h:1/{database}\"\n{rules}")).unwrap();
            trials += corruption::corrupt_and_feed(&events, &database, &config, &tables, seed, 48);
        }
    }
    assert!(trials > 10_000, "{trials} altered files fed");
}
