//! Every code of MariaDB's legacy character sets, decoded by rowhook from the
//! binlog and compared with the server's own conversion to utf8mb4.
//!
//! For each character set: every byte sequence that could be one of its
//! characters (one byte; two bytes with a lead byte of 0x80 and up; for ujis
//! and eucjpms also three bytes after 0x8F) is offered to a column of that
//! character set; the ones the server stores as one character unchanged are
//! its valid codes. They go into a table of their own, one row per code
//! (`id` = the code as a number), in one INSERT, and into two rows of text
//! holding all of them (in code order; backwards with an `x` between). The
//! binlog files are then read back through rowhook's [`Decoder`], and each
//! code's text and each row of text compared with `HEX(CONVERT(col USING
//! utf8mb4))` from the same server. Nothing expected is written here: the
//! server is asked. The character sets: all rowhook decodes but the Unicode
//! ones and MySQL's gb18030.
//!
//! One rule rowhook chose where the server has no character for a code (its
//! conversion gives `?`): rowhook delivers U+FFFD, the replacement character,
//! which a real `?` cannot be mistaken for (`docs/types.md#character-sets`).
//!
//! `ROWHOOK_WRITE_CHARSET_TABLES=PATH` writes, from the same comparison, the
//! table of codes where the server's conversion differs from encoding_rs's
//! decoder (`src/source/charset_tables.rs`: rowhook's corrections).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use mysql_async::prelude::*;
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::EventStreamReader;
use rowhook::source::decoder::{Decoded, Decoder, Position};
use rowhook::events::mapping::Mapper;
use serde_json::Value as Json;

use crate::support::MariaDb;

/// The character sets rowhook decodes with encoding_rs's decoders and its
/// corrections, and latin1, and the longest code of each in bytes (three:
/// JIS X 0212 after 0x8F).
const CHARSETS: [(&str, u8); 23] = [
    ("sjis", 2),
    ("cp932", 2),
    ("big5", 2),
    ("gbk", 2),
    ("gb2312", 2),
    ("euckr", 2),
    ("ujis", 3),
    ("eucjpms", 3),
    ("latin1", 1),
    ("latin2", 1),
    ("latin5", 1),
    ("latin7", 1),
    ("greek", 1),
    ("hebrew", 1),
    ("cp1250", 1),
    ("cp1251", 1),
    ("cp1256", 1),
    ("cp1257", 1),
    ("cp866", 1),
    ("koi8r", 1),
    ("koi8u", 1),
    ("macroman", 1),
    ("tis620", 1),
];

/// The bytes of code `id` (1, 2 or 3 bytes, big-endian).
fn code_bytes(id: u32) -> Vec<u8> {
    let all = id.to_be_bytes();
    let skip = if id < 0x100 { 3 } else if id < 0x1_0000 { 2 } else { 1 };
    all[skip..].to_vec()
}

/// What rowhook should deliver for a code the server converts to `server`
/// (its UTF-8): the same, except U+FFFD where the server writes `?` for a
/// code that is not `?` itself.
fn wanted(id: u32, server: String) -> String {
    if server == "?" && id != u32::from(b'?') {
        "\u{fffd}".to_string()
    } else {
        server
    }
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

fn describe(text: &str) -> String {
    let points: Vec<String> = text.chars().map(|c| format!("U+{:04X}", u32::from(c))).collect();
    format!("{} {text:?}", points.join(" "))
}

/// Creates `codes_<charset>` holding every valid code of the character set,
/// one row each; returns how many.
async fn insert_codes(conn: &mut mysql_async::Conn, charset: &str, longest: u8) -> usize {
    let hex = |digits: usize| format!("UNHEX(LPAD(HEX(seq), {digits}, '0'))");
    let mut candidates = vec![format!("SELECT seq, {0}, {0} FROM seq_0_to_255", hex(2))];
    if longest >= 2 {
        candidates.push(format!("SELECT seq, {0}, {0} FROM seq_32768_to_65535", hex(4)));
    }
    if longest >= 3 {
        candidates.push(format!("SELECT seq, {0}, {0} FROM seq_9371648_to_9437183", hex(6)));
    }
    // Codes the server does not take as one character of the set are changed
    // (to `?`, cut short) under INSERT IGNORE: keeping only the unchanged ones
    // asks the server which codes are valid.
    conn.query_drop(format!(
        "CREATE TEMPORARY TABLE candidates_{charset} (id INT PRIMARY KEY, code VARBINARY(3) NOT NULL, \
         c VARCHAR(4) CHARACTER SET {charset})"
    ))
    .await
    .unwrap();
    for select in candidates {
        conn.query_drop(format!("INSERT IGNORE INTO candidates_{charset} {select}")).await.unwrap_or_else(|e| panic!("{charset}: {e}"));
    }
    conn.query_drop(format!("CREATE TABLE codes_{charset} (id INT PRIMARY KEY, c VARCHAR(1) CHARACTER SET {charset} NOT NULL)"))
        .await
        .unwrap();
    conn.query_drop(format!(
        "INSERT INTO codes_{charset} SELECT id, c FROM candidates_{charset} WHERE CAST(c AS BINARY) = code AND CHAR_LENGTH(c) = 1"
    ))
    .await
    .unwrap();
    // All of them in a row, in code order and backwards with an `x` between:
    // decoded as text, not one code at a time.
    conn.query_drop(format!("CREATE TABLE texts_{charset} (id INT PRIMARY KEY, t MEDIUMTEXT CHARACTER SET {charset} NOT NULL)"))
        .await
        .unwrap();
    conn.query_drop(format!(
        "INSERT INTO texts_{charset} SELECT 1, GROUP_CONCAT(c ORDER BY id SEPARATOR '') FROM codes_{charset} \
         UNION ALL SELECT 2, GROUP_CONCAT(c ORDER BY id DESC SEPARATOR 'x') FROM codes_{charset}"
    ))
    .await
    .unwrap();
    conn.query_first::<usize, _>(format!("SELECT COUNT(*) FROM codes_{charset}")).await.unwrap().unwrap()
}

/// The text of every code (and of the rows of all codes) as rowhook decodes
/// it from the binlog files of `server`: charset (`text.<charset>`) -> id -> text.
fn decode_binlogs(server: &MariaDb, database: &str, files: &[String], tables: HashMap<String, rowhook::source::schema::TableSchema>) -> HashMap<String, BTreeMap<u32, String>> {
    let rules: String = CHARSETS
        .iter()
        .map(|(charset, _)| {
            format!(
                "[[events]]\ntype = \"{charset}\"\ntable = \"codes_{charset}\"\noperations = [\"insert\"]\nfields = {{ id = \"id\", c = \"c\" }}\n\
                 [[events]]\ntype = \"text.{charset}\"\ntable = \"texts_{charset}\"\noperations = [\"insert\"]\nfields = {{ id = \"id\", c = \"t\" }}\n"
            )
        })
        .collect();
    let config = rowhook::config::Config::from_toml(&format!("[source]\nurl = \"mysql://x@127.0.0.1/{database}\"\n{rules}")).unwrap();
    let mapper = Arc::new(Mapper::new(&config.events));
    let mut decoded: HashMap<String, BTreeMap<u32, String>> = HashMap::new();
    for file in files {
        let bytes = std::fs::read(server.datadir().join(file)).unwrap();
        let mut input = &bytes[4..];
        let mut decoder = Decoder::new(mapper.clone(), database, tables.clone(), Position { file: file.clone(), pos: 4 });
        let mut reader = EventStreamReader::new(BinlogVersion::Version4);
        while let Some(event) = reader.read(&mut input).unwrap() {
            if let Decoded::Commit(t) | Decoded::Partial(t) = decoder.feed(&event, |id| reader.get_tme(id)).unwrap() {
                // Decoding and the events stage, as the reader and the router run them.
                for e in rowhook::events::envelope::events_of(&t, 0) {
                    let body: Json = serde_json::from_str(&e.body).unwrap();
                    let id = body["data"]["id"].as_u64().unwrap() as u32;
                    let text = body["data"]["c"].as_str().unwrap().to_string();
                    decoded.entry(e.event_type.to_string()).or_default().insert(id, text);
                }
            }
        }
    }
    decoded
}

#[actix_rt::test]
async fn every_code_of_the_legacy_character_sets_decodes_as_the_server_converts_it() {
    let server = MariaDb::start_private(&[]);
    let database = server.fresh_database("charsets").await;
    let mut conn = mysql_async::Conn::from_url(server.url(&database)).await.unwrap();
    conn.query_drop("SET SESSION sql_mode = '', group_concat_max_len = 16777216").await.unwrap();
    let mut counts = BTreeMap::new();
    for (charset, longest) in CHARSETS {
        counts.insert(charset, insert_codes(&mut conn, charset, longest).await);
    }
    let logs: Vec<String> = conn.query_map("SHOW BINARY LOGS", |row: mysql_async::Row| row.get::<String, _>(0).unwrap()).await.unwrap();
    conn.query_drop("FLUSH BINARY LOGS").await.unwrap();
    let names: Vec<String> = CHARSETS.iter().flat_map(|(c, _)| [format!("codes_{c}"), format!("texts_{c}")]).collect();
    let tables = rowhook::source::schema::load_tables(&mut conn, &database, &names, true).await.unwrap();
    let decoded = decode_binlogs(&server, &database, &logs, tables);

    let mut differences = String::new();
    // Per character set: every valid code, what rowhook should deliver, and
    // what encoding_rs alone decodes it to (for the table of corrections).
    let mut all: BTreeMap<&str, Vec<(u32, String, String)>> = BTreeMap::new();
    for (charset, _) in CHARSETS {
        let server_text: Vec<(u32, String)> = conn
            .query_map(format!("SELECT id, HEX(CONVERT(c USING utf8mb4)) FROM codes_{charset} ORDER BY id"), |(id, hex): (u32, String)| {
                (id, String::from_utf8(unhex(&hex)).unwrap())
            })
            .await
            .unwrap();
        let ours = decoded.get(charset).cloned().unwrap_or_default();
        assert_eq!(ours.len(), counts[charset], "{charset}: every code inserted arrives, once");
        assert!(counts[charset] >= 128, "{charset}: {} codes (the server's valid codes, at least ASCII)", counts[charset]);
        let mut wrong = 0;
        let mut wants = Vec::new();
        for (id, server) in server_text {
            let want = wanted(id, server);
            wants.push(want.clone());
            let got = ours.get(&id).map(String::as_str).unwrap_or("(missing)");
            if got != want {
                wrong += 1;
                if wrong <= 12 {
                    let _ = writeln!(differences, "  {charset} 0x{id:02X}: server {}, rowhook {}", describe(&want), describe(got));
                }
            }
            if let rowhook::source::value::Charset::Legacy(legacy) = rowhook::source::value::Charset::from_name(charset) {
                let alone = legacy.encoding.decode_without_bom_handling(&code_bytes(id)).0.into_owned();
                all.entry(charset).or_default().push((id, want, alone));
            }
        }
        // The rows of all codes: what the codes give one by one, and what the
        // server converts the whole text to (with its `?` for U+FFFD).
        let texts = decoded.get(&format!("text.{charset}")).cloned().unwrap_or_default();
        let server_texts: Vec<(u32, String)> = conn
            .query_map(format!("SELECT id, HEX(CONVERT(t USING utf8mb4)) FROM texts_{charset} ORDER BY id"), |(id, hex): (u32, String)| {
                (id, String::from_utf8(unhex(&hex)).unwrap())
            })
            .await
            .unwrap();
        assert_eq!(server_texts.len(), 2, "{charset}");
        for (id, server) in server_texts {
            let ours = texts.get(&id).map(String::as_str).unwrap_or("(missing)");
            let by_code = if id == 1 { wants.concat() } else { wants.iter().rev().map(String::as_str).collect::<Vec<_>>().join("x") };
            // The server's `?` for a code it has no character for is rowhook's U+FFFD.
            let same = |ours: &str, theirs: &str, question_mark: bool| {
                let agree = |(a, b): &(char, char)| a == b || question_mark && *a == '\u{fffd}' && *b == '?';
                let at = ours.chars().zip(theirs.chars()).take_while(agree).count();
                (at == ours.chars().count() && at == theirs.chars().count()).then_some(()).ok_or(at)
            };
            for (theirs, what, question_mark) in [(&server, "the server's conversion", true), (&by_code, "its codes one by one", false)] {
                if let Err(at) = same(ours, theirs, question_mark) {
                    let context = |t: &str| describe(&t.chars().skip(at.saturating_sub(2)).take(5).collect::<String>());
                    let _ = writeln!(differences, "  {charset} row {id} of all codes, character {at}: {what} {}, rowhook {}", context(theirs), context(ours));
                }
            }
        }
        if wrong > 12 {
            let _ = writeln!(differences, "  {charset}: {} more", wrong - 12);
        }
        if wrong > 0 {
            let _ = writeln!(differences, "  {charset}: {wrong} of {} codes differ", counts[charset]);
        }
    }
    if let Ok(path) = std::env::var("ROWHOOK_WRITE_CHARSET_TABLES") {
        let version: String = conn.query_first("SELECT VERSION()").await.unwrap().unwrap();
        std::fs::write(&path, tables_source(&version, &all)).unwrap();
    }
    assert!(differences.is_empty(), "codes rowhook decodes otherwise than the server converts them:\n{differences}");
}

/// The character a run of corrections gives code `code`: consecutive
/// characters from its first, or U+FFFD throughout.
fn run_char(run: (u32, u32, char), code: u32) -> Option<char> {
    if run.2 == '\u{fffd}' {
        Some('\u{fffd}')
    } else {
        char::from_u32(u32::from(run.2) + (code - run.0))
    }
}

/// Corrections as runs (first code, last code, first character), from every
/// valid code of a character set with what it should decode to and what
/// encoding_rs decodes it to. A run covers the codes encoding_rs gets wrong
/// and, between them, codes it gets right that follow the run's rule anyway,
/// and codes that are not valid (never stored, so never looked up).
fn correction_runs(codes: &[(u32, String, String)]) -> Vec<(u32, u32, char)> {
    let mut runs: Vec<(u32, u32, char)> = Vec::new();
    let mut since_run: Vec<(u32, char)> = Vec::new();
    for (code, want, alone) in codes {
        let mut chars = want.chars();
        let (Some(want), None) = (chars.next(), chars.next()) else { panic!("code 0x{code:X} converts to {want:?}, not one character") };
        if *alone == want.to_string() {
            since_run.push((*code, want));
            continue;
        }
        let same_width = |a: u32, b: u32| (a < 0x100) == (b < 0x100) && (a < 0x1_0000) == (b < 0x1_0000);
        match runs.last_mut() {
            Some(run)
                if same_width(run.0, *code)
                    && since_run.iter().chain([&(*code, want)]).all(|&(c, w)| run_char(*run, c) == Some(w)) =>
            {
                run.1 = *code
            }
            _ => runs.push((*code, *code, want)),
        }
        since_run.clear();
    }
    runs
}

/// `src/source/charset_tables.rs`: the corrections of every character set, as Rust.
fn tables_source(version: &str, all: &BTreeMap<&str, Vec<(u32, String, String)>>) -> String {
    let mut out = format!(
        "//! MariaDB's own conversion of its legacy character sets, where it differs\n\
         //! from encoding_rs's decoders (the WHATWG Encoding Standard's tables, made\n\
         //! for the web): [`crate::source::value::decode_text`] decodes with encoding_rs and\n\
         //! puts these characters in place of what it gives for these codes.\n\
         //!\n\
         //! Generated, not edited: `tests/it/charsets.rs` stores every valid code of\n\
         //! each character set in a column of that set on MariaDB {version}, asks the\n\
         //! server for `CONVERT(col USING utf8mb4)` of each, and writes this file with\n\
         //! `ROWHOOK_WRITE_CHARSET_TABLES=src/source/charset_tables.rs cargo test --test it charsets`.\n\
         //! Where the server has no character for a code (its conversion gives `?`),\n\
         //! the table says U+FFFD. The same test then checks rowhook's decoding of\n\
         //! every code against the server.\n\
         //!\n\
         //! Each table: runs `(first code, last code, first character)`, sorted and\n\
         //! not overlapping; a code is its bytes read big-endian (`0x8160`). The codes\n\
         //! of a run decode to consecutive characters from the first, or all to U+FFFD\n\
         //! when the first is U+FFFD. A run may span codes the server does not accept\n\
         //! (never stored, never looked up).\n\
         \n\
         /// Runs of corrected codes; see the module docs.\n\
         pub type Corrections = &'static [(u32, u32, char)];\n"
    );
    for (charset, codes) in all {
        let runs = correction_runs(codes);
        let corrected: usize = codes.iter().filter(|(_, want, alone)| want != alone).count();
        let _ = write!(
            out,
            "\n/// {charset}: {corrected} of its {} codes, in {} runs.\n#[rustfmt::skip]\npub static {}: Corrections = &[",
            codes.len(),
            runs.len(),
            charset.to_uppercase()
        );
        for (k, (first, last, c)) in runs.iter().enumerate() {
            if k % 4 == 0 {
                out.push_str("\n   ");
            }
            let _ = write!(out, " (0x{first:X}, 0x{last:X}, '\\u{{{:x}}}'),", u32::from(*c));
        }
        out.push_str("\n];\n");
    }
    out
}
