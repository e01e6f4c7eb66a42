//! The decoder on real binlog files of servers that cannot run here (MySQL 8)
//! and of formats a row-only reader must refuse. The files live in
//! `../shared/fixtures/binlogs/` beside the checkout (see its README).

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

use mysql_common::binlog::events::Event;
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::EventStreamReader;
use rowhook::config::Config;
use rowhook::decoder::{DecodeError, Decoded, Decoder, Position, Transaction};
use rowhook::mapping::Mapper;
use rowhook::schema::{ColumnInfo, TableSchema};

fn fixture(path: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/binlogs").join(path);
    assert!(path.exists(), "fixture {} missing: the binlog fixtures live in ../shared beside the checkout", path.display());
    path
}

/// Feeds every event of a binlog file to a decoder; returns the transactions or the first error.
fn decode_file(path: &PathBuf, database: &str, rules: &str, tables: HashMap<String, TableSchema>) -> Result<Vec<Transaction>, DecodeError> {
    let config = Config::from_toml(&format!("[source]\nurl = \"mysql://r@h:1/{database}\"\n{rules}")).unwrap();
    let mapper = Arc::new(Mapper::new(&config.events));
    let file_name = path.file_name().unwrap().to_string_lossy().to_string();
    let mut decoder = Decoder::new(mapper, database, tables, Position { file: file_name, pos: 4 });
    let mut input = BufReader::new(std::fs::File::open(path).unwrap());
    let mut magic = [0u8; 4];
    input.read_exact(&mut magic).unwrap();
    assert_eq!(&magic, b"\xfebin");
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut out = Vec::new();
    loop {
        let event: Event = match reader.read(&mut input) {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("reading {}: {e}", path.display()),
        };
        if let Decoded::Commit(t) = decoder.feed(&event, |id| reader.get_tme(id))? {
            out.push(t);
        }
    }
    Ok(out)
}

fn columns(names: &[&str], data_type: &str) -> TableSchema {
    TableSchema {
        columns: names
            .iter()
            .map(|n| ColumnInfo { name: Arc::from(*n), data_type: data_type.into(), column_type: data_type.into(), is_json: false, charset: None })
            .collect(),
    }
}

#[test]
fn mysql8_integer_rows_decode_with_names_from_the_schema() {
    // MySQL 8.2, binlog_row_metadata=MINIMAL: no names in the binlog, so they come from information_schema.
    let rules = "[[events]]\ntype = \"int.inserted\"\ntable = \"int_table\"\noperations = [\"insert\"]\n\
                 fields = { a = \"col1\", b = \"col2\", c = \"col3\", d = \"col4\", e = \"col5\", f = \"col6\" }\n";
    let tables = HashMap::from([(
        "int_table".to_string(),
        columns(&["col1", "col2", "col3", "col4", "col5", "col6"], "int"),
    )]);
    let transactions = decode_file(&fixture("mysql-cdc-rs/8.0_19_30_write_rows_binlog.000018"), "test", rules, tables).unwrap();
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
    let rules = "[[events]]\ntype = \"int.inserted\"\ntable = \"int_table\"\noperations = [\"insert\"]\n";
    let tables = HashMap::from([("int_table".to_string(), columns(&["col1", "col2"], "int"))]);
    let err = decode_file(&fixture("mysql-cdc-rs/8.0_19_30_write_rows_binlog.000018"), "test", rules, tables).unwrap_err();
    assert!(matches!(err, DecodeError::ColumnCountMismatch { found: 6, expected: 2, .. }), "{err}");
}

#[test]
fn unmapped_tables_give_empty_transactions() {
    let transactions = decode_file(&fixture("mysql-cdc-rs/8.0_19_30_write_rows_binlog.000018"), "test", "", HashMap::new()).unwrap();
    assert!(!transactions.is_empty());
    assert!(transactions.iter().all(|t| t.events.is_empty() && t.rows_seen == 0));
}

#[test]
fn statement_based_dml_is_refused_not_skipped() {
    // MariaDB 11.8, sysbench DML on `sbtest-repl` logged as statements.
    let err = decode_file(&fixture("mariadb-poc/domain_id_0/mariadb-repl-bin.000007"), "sbtest-repl", "", HashMap::new()).unwrap_err();
    assert!(matches!(err, DecodeError::StatementBased { .. }), "{err}");
    assert!(err.to_string().contains("binlog_format=ROW"), "{err}");
}

