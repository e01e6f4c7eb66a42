//! Every column type, end to end on a live MariaDB: a table with one column of
//! each type, rows of extreme values, zero dates and NULLs, a rule that maps
//! every column, and the exact JSON each value arrives as at a real receiver
//! (the table in `docs/types.md`). Run on the shared server (names and
//! character sets in the binlog, binlog_row_metadata=FULL) and on a server
//! with binlog_row_metadata=NO_LOG (everything from information_schema,
//! reloaded after an ALTER TABLE that passes in the stream).

use std::time::Duration;

use mysql_async::prelude::*;
use serde_json::{json, Value as Json};

use crate::rowhook::{test_config, InProcess};
use crate::support::mariadb::{self, MariaDb};
use crate::support::Receiver;

const COLUMNS: &str = "
    id INT PRIMARY KEY,
    ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
    mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
    de DECIMAL(20,2), f FLOAT, d DOUBLE,
    da DATE, dt DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), y YEAR,
    c CHAR(10), vc VARCHAR(100), tx TEXT,
    u3 VARCHAR(20) CHARACTER SET utf8mb3, l1 VARCHAR(20) CHARACTER SET latin1, u16 VARCHAR(20) CHARACTER SET utf16,
    bn BINARY(4), vb VARBINARY(10), bl BLOB,
    js JSON, en ENUM('small','medium','large'), st SET('a','b','c','d'), bt BIT(10),
    g GEOMETRY, big MEDIUMTEXT,
    cp VARCHAR(20) CHARACTER SET cp1251, sj VARCHAR(20) CHARACTER SET sjis, gb VARCHAR(20) CHARACTER SET gbk,
    l2 VARCHAR(30) CHARACTER SET latin2, kr VARCHAR(20) CHARACTER SET euckr, b5 VARCHAR(20) CHARACTER SET big5";

const NAMES: [&str; 40] = [
    "id", "ti", "tiu", "si", "siu", "mi", "miu", "i", "iu", "bi", "biu", "de", "f", "d", "da", "dt", "ts", "tm", "y", "c",
    "vc", "tx", "u3", "l1", "u16", "bn", "vb", "bl", "js", "en", "st", "bt", "g", "big", "cp", "sj", "gb", "l2", "kr", "b5",
];

/// Text in the legacy character sets of the columns cp .. b5 (sent as utf8mb4,
/// stored converted), with characters MariaDB's sjis and big5 map otherwise
/// than the web's tables (issue 18: `〜‖−¢£¬` arrived as `～∥－￠￡￢`, `•∼` as `‧～`).
const LEGACY_TEXT: [(&str, &str); 6] =
    [("cp", "Привет, мир"), ("sj", "日本語〜‖−¢£¬テキスト"), ("gb", "中文文本"), ("l2", "Zażółć gęślą jaźń"), ("kr", "한국어 텍스트"), ("b5", "繁體中文•∼")];

fn names() -> &'static [&'static str] {
    &NAMES
}

const INSERTS: [&str; 4] = [
    "INSERT INTO alltypes VALUES (1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, \
     9223372036854775807, 18446744073709551615, 123456789012345678.91, 1.1, 1.2345678901234567, \
     '2024-02-29', '2024-02-29 23:59:58.123456', '2038-01-19 03:14:07.999999', '838:59:59.000000', 2155, \
     'ab', 'héllo 🎉', 'emoji 😀 text', 'Grüße', 'café € ÿ', 'ünï 𝄞', \
     0x0102, 0x00ff, 0xdeadbeef, '{\"a\": [1, 2.5, \"x\"], \"b\": null, \"n\": 18446744073709551615}', \
     'large', 'a,d', b'1111111111', ST_GeomFromText('POINT(1 2)'), REPEAT('0123456789abcdef', 65536), \
     'Привет, мир', '日本語〜‖−¢£¬テキスト', '中文文本', 'Zażółć gęślą jaźń', '한국어 텍스트', '繁體中文•∼')",
    "INSERT INTO alltypes VALUES (2, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, \
     -9223372036854775808, 0, -999999999999999999.99, -1.5e-10, -1.7976931348623157e308, \
     '1000-01-01', '1000-01-01 00:00:00', '1970-01-01 00:00:01', '-838:59:59', 1901, \
     '', '', '', '', '', '', 0x00, '', '', '[]', 'small', '', b'0', ST_GeomFromText('LINESTRING(0 0, 1 1)'), '', '', '', '', '', '', '')",
    "INSERT INTO alltypes (id, de, f, d, da, dt, ts, tm, y) VALUES \
     (3, -0.05, 0, 0.1, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '-00:00:01.5', 0)",
    "INSERT INTO alltypes (id, tm, dt) VALUES (4, '100:00:00.5', '2024-01-02 03:04:05.000010')",
];

fn expected() -> Vec<Json> {
    let big = "0123456789abcdef".repeat(65536);
    let row1 = json!({
        "id": 1, "ti": 127, "tiu": 255, "si": 32767, "siu": 65535, "mi": 8388607, "miu": 16777215,
        "i": 2147483647, "iu": 4294967295u64, "bi": 9223372036854775807i64, "biu": 18446744073709551615u64,
        "de": "123456789012345678.91", "f": 1.1, "d": 1.2345678901234567,
        "da": "2024-02-29", "dt": "2024-02-29T23:59:58.123456", "ts": "2038-01-19T03:14:07.999999Z",
        "tm": "838:59:59", "y": 2155,
        "c": "ab", "vc": "héllo 🎉", "tx": "emoji 😀 text", "u3": "Grüße", "l1": "café € ÿ", "u16": "ünï 𝄞",
        "bn": "AQIAAA==", "vb": "AP8=", "bl": "3q2+7w==",
        "js": {"a": [1, 2.5, "x"], "b": null, "n": 18446744073709551615u64},
        "en": "large", "st": ["a", "d"], "bt": 1023,
        "g": "POINT(1 2)", "big": big,
    });
    let mut row1 = row1;
    for (column, text) in LEGACY_TEXT {
        row1[column] = json!(text);
    }
    let row2 = json!({
        "id": 2, "ti": -128, "tiu": 0, "si": -32768, "siu": 0, "mi": -8388608, "miu": 0,
        "i": -2147483648i64, "iu": 0, "bi": -9223372036854775808i64, "biu": 0,
        "de": "-999999999999999999.99", "f": -1.5e-10, "d": -1.7976931348623157e308,
        "da": "1000-01-01", "dt": "1000-01-01T00:00:00", "ts": "1970-01-01T00:00:01Z",
        "tm": "-838:59:59", "y": 1901,
        "c": "", "vc": "", "tx": "", "u3": "", "l1": "", "u16": "",
        "bn": "AAAAAA==", "vb": "", "bl": "",
        "js": [], "en": "small", "st": [], "bt": 0,
        "g": "LINESTRING(0 0,1 1)", "big": "",
        "cp": "", "sj": "", "gb": "", "l2": "", "kr": "", "b5": "",
    });
    let mut row3 = nulls(3);
    for (k, v) in [
        ("de", json!("-0.05")),
        ("f", json!(0.0)),
        ("d", json!(0.1)),
        ("da", Json::Null),
        ("dt", Json::Null),
        ("ts", Json::Null),
        ("tm", json!("-00:00:01.500000")),
        ("y", Json::Null),
    ] {
        row3[k] = v;
    }
    let mut row4 = nulls(4);
    row4["tm"] = json!("100:00:00.500000");
    row4["dt"] = json!("2024-01-02T03:04:05.000010");
    vec![row1, row2, row3, row4]
}

fn nulls(id: u64) -> Json {
    let mut row = serde_json::Map::new();
    for name in names() {
        row.insert(name.to_string(), Json::Null);
    }
    row.insert("id".into(), json!(id));
    Json::Object(row)
}

fn rule() -> String {
    let fields: Vec<String> = names().iter().map(|n| format!("{n} = \"{n}\"")).collect();
    format!(
        "[[events]]\ntype = \"row.inserted\"\ntable = \"alltypes\"\noperations = [\"insert\"]\nfields = {{ {} }}\n",
        fields.join(", ")
    )
}

/// A fresh database on `server` with rowhook's tables and the `alltypes` table.
async fn setup(server: &MariaDb, prefix: &str) -> (String, mysql_async::Conn) {
    let name = server.fresh_database(prefix).await;
    let url = server.url(&name);
    rowhook::state::store::Store::new(&url).unwrap().migrate().await.expect("migrate");
    let mut conn = mysql_async::Conn::from_url(url.as_str()).await.expect("connect");
    conn.query_drop(format!("CREATE TABLE alltypes ({COLUMNS}) DEFAULT CHARSET=utf8mb4")).await.expect("create alltypes");
    // Zero dates need a lenient sql_mode; TIMESTAMPs are written in UTC.
    conn.query_drop("SET SESSION sql_mode = '', time_zone = '+00:00', NAMES utf8mb4").await.unwrap();
    (url, conn)
}

async fn start(url: &str, receiver: &Receiver, conn: &mut mysql_async::Conn) -> InProcess {
    conn.exec_drop("INSERT INTO webhooks (url, events, secret) VALUES (?, '[\"*\"]', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')", (receiver.url(),))
        .await
        .unwrap();
    let mut config = test_config(url);
    let rules = rowhook::config::Config::from_toml(&format!("[source]\nurl = \"{url}\"\n{}", rule())).unwrap();
    config.events = rules.events;
    config.delivery.max_payload_bytes = 8 * 1024 * 1024;
    InProcess::start(config).await
}

/// The `data` of every delivery, by row id.
async fn received_rows(receiver: &Receiver, n: usize) -> Vec<Json> {
    let received = receiver.wait_for(n, Duration::from_secs(30)).await;
    assert_eq!(received.len(), n, "deliveries: {:?}", received.iter().map(|r| r.text().chars().take(300).collect::<String>()).collect::<Vec<_>>());
    let mut rows: Vec<Json> = received.iter().map(|r| r.json()["data"].clone()).collect();
    rows.sort_by_key(|r| r["id"].as_u64());
    rows
}

fn assert_rows(got: &[Json], want: &[Json]) {
    assert_eq!(got.len(), want.len());
    for (got, want) in got.iter().zip(want) {
        for name in names() {
            let (g, w) = (&got[*name], &want[*name]);
            if *name == "big" {
                assert!(g == w, "row {} column big: {} chars, want {}", want["id"], g.as_str().map_or(0, str::len), w.as_str().map_or(0, str::len));
            } else {
                assert_eq!(g, w, "row {} column {name}", want["id"]);
            }
        }
        assert_eq!(got.as_object().unwrap().len(), names().len(), "row {}: only the mapped fields", want["id"]);
    }
}

#[actix_rt::test]
async fn every_column_type_arrives_as_exact_json() {
    let server = mariadb::shared();
    let (url, mut conn) = setup(server, "types").await;
    let receiver = Receiver::start().await;
    let rowhook = start(&url, &receiver, &mut conn).await;
    for sql in INSERTS {
        conn.query_drop(sql).await.unwrap_or_else(|e| panic!("{e}: {}", &sql[..80]));
    }
    let got = received_rows(&receiver, 4).await;
    assert_rows(&got, &expected());
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn every_column_type_without_row_metadata_and_across_an_alter_table() {
    let server = MariaDb::start_private(&["--binlog-row-metadata=NO_LOG"]);
    let (url, mut conn) = setup(&server, "types_nolog").await;
    let metadata: String = conn.query_first("SELECT @@binlog_row_metadata").await.unwrap().unwrap();
    assert_eq!(metadata, "NO_LOG");
    let receiver = Receiver::start().await;
    let rowhook = start(&url, &receiver, &mut conn).await;
    for sql in &INSERTS[..2] {
        conn.query_drop(*sql).await.unwrap_or_else(|e| panic!("{e}: {}", &sql[..80]));
    }
    let got = received_rows(&receiver, 2).await;
    assert_rows(&got, &expected()[..2]);

    // A column added in front shifts every position: without the reload after
    // the DDL, names would be off by one (or the column count would not match).
    conn.query_drop("ALTER TABLE alltypes ADD COLUMN added VARCHAR(10) NOT NULL DEFAULT 'new' FIRST").await.unwrap();
    for sql in &INSERTS[2..] {
        conn.query_drop(*sql).await.unwrap_or_else(|e| panic!("{e}: {}", &sql[..80]));
    }
    let got = received_rows(&receiver, 4).await;
    assert_rows(&got, &expected());
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn datetimes_carry_the_configured_source_time_zone() {
    let server = mariadb::shared();
    let (url, mut conn) = setup(server, "types_tz").await;
    let receiver = Receiver::start().await;
    conn.exec_drop("INSERT INTO webhooks (url, events, secret) VALUES (?, '[\"*\"]', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')", (receiver.url(),))
        .await
        .unwrap();
    let mut config = test_config(&url);
    config.events = rowhook::config::Config::from_toml(&format!("[source]\nurl = \"{url}\"\n{}", rule())).unwrap().events;
    config.source.time_zone = Some("+02:00".into());
    config.validate().unwrap();
    let rowhook = InProcess::start(config).await;
    conn.query_drop("INSERT INTO alltypes (id, dt, ts, da) VALUES (9, '2024-01-02 03:04:05.000010', '2024-01-02 03:04:05', '2024-01-02')")
        .await
        .unwrap();
    let got = received_rows(&receiver, 1).await;
    assert_eq!(got[0]["dt"], "2024-01-02T03:04:05.000010+02:00", "DATETIME gets the offset");
    assert_eq!(got[0]["ts"], "2024-01-02T03:04:05Z", "TIMESTAMP stays a UTC instant");
    assert_eq!(got[0]["da"], "2024-01-02", "DATE has no time, no offset");
    rowhook.stop().await.expect("clean stop");
}

/// Geometries of every type, with and without an SRID, and awkward numbers.
const GEOMETRIES: [(&str, u32); 14] = [
    ("POINT(1 2)", 0),
    ("POINT(-0.1 1e20)", 4326),
    ("POINT(123456789012345678 0.000001)", 0),
    ("POINT(1e-7 1e300)", 3857),
    ("POINT(0.30000000000000004 2.5e-5)", 0),
    ("POINT(1e15 1234567890123456.7)", 0),
    ("LINESTRING(0 0, 1 1, -2.5 3.75)", 0),
    ("POLYGON((0 0,10 0,10 10,0 10,0 0),(1 1,2 1,2 2,1 1))", 0),
    ("MULTIPOINT(1 1,2 2)", 4326),
    ("MULTILINESTRING((0 0,1 1),(2 2,3 3))", 0),
    ("MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))", 0),
    ("GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1 1),POLYGON((0 0,1 0,1 1,0 0)))", 0),
    ("GEOMETRYCOLLECTION(MULTIPOINT(1 1,2 2),POLYGON((0 0,1 0,1 1,0 0)))", 0),
    ("GEOMETRYCOLLECTION EMPTY", 0),
];

#[actix_rt::test]
async fn geometries_arrive_as_the_servers_own_st_astext() {
    let server = mariadb::shared();
    let name = server.fresh_database("types_geo").await;
    let url = server.url(&name);
    rowhook::state::store::Store::new(&url).unwrap().migrate().await.expect("migrate");
    let mut conn = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    conn.query_drop("CREATE TABLE geo (id INT PRIMARY KEY, g GEOMETRY)").await.unwrap();
    let receiver = Receiver::start().await;
    conn.exec_drop("INSERT INTO webhooks (url, events, secret) VALUES (?, '[\"*\"]', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')", (receiver.url(),))
        .await
        .unwrap();
    let mut config = test_config(&url);
    let rules = "[[events]]\ntype = \"geo.inserted\"\ntable = \"geo\"\noperations = [\"insert\"]\nfields = { id = \"id\", g = \"g\" }\n";
    config.events = rowhook::config::Config::from_toml(&format!("[source]\nurl = \"{url}\"\n{rules}")).unwrap().events;
    let rowhook = InProcess::start(config).await;
    for (id, (wkt, srid)) in GEOMETRIES.iter().enumerate() {
        conn.exec_drop("INSERT INTO geo VALUES (?, ST_GeomFromText(?, ?))", (id, wkt, srid)).await.unwrap_or_else(|e| panic!("{wkt}: {e}"));
    }
    let got = received_rows(&receiver, GEOMETRIES.len()).await;
    for row in &got {
        let (wkt, _) = GEOMETRIES[row["id"].as_u64().unwrap() as usize];
        let want: String = conn
            .exec_first("SELECT IF(ST_SRID(g) = 0, ST_AsText(g), CONCAT('SRID=', ST_SRID(g), ';', ST_AsText(g))) FROM geo WHERE id = ?", (row["id"].as_u64(),))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row["g"], json!(want), "{wkt}");
    }
    assert_eq!(got[0]["g"], "POINT(1 2)");
    assert_eq!(got[1]["g"], "SRID=4326;POINT(-0.1 1e20)");
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn corrupted_events_of_every_column_type_are_errors_or_skipped_never_a_panic() {
    let server = MariaDb::start_private(&[]);
    let (url, mut conn) = setup(&server, "types_corrupt").await;
    conn.query_drop("FLUSH BINARY LOGS").await.unwrap();
    for sql in INSERTS {
        conn.query_drop(sql).await.unwrap_or_else(|e| panic!("{e}: {}", &sql[..80]));
    }
    // Updates and deletes too, with a DECIMAL inside JSON (an opaque binary JSON value on MySQL).
    conn.query_drop("UPDATE alltypes SET vc = 'changed', de = 1.25, js = '{\"k\": [1, {\"d\": 1.50}]}' WHERE id = 1").await.unwrap();
    conn.query_drop("DELETE FROM alltypes WHERE id = 2").await.unwrap();
    let file: String = conn.query_first("SHOW MASTER STATUS").await.unwrap().map(|row: mysql_async::Row| row.get(0).unwrap()).unwrap();
    conn.query_drop("FLUSH BINARY LOGS").await.unwrap();
    let database = url.rsplit('/').next().unwrap().to_string();
    let tables = rowhook::source::schema::load_tables(&mut conn, &database, &["alltypes".to_string()], true).await.unwrap();
    let rules = rule().replace("operations = [\"insert\"]", "operations = [\"insert\", \"update\", \"delete\"]");
    let config = rowhook::config::Config::from_toml(&format!("[source]\nurl = \"{url}\"\n{rules}")).unwrap();

    let events = crate::corruption::raw_events(&server.datadir().join(&file));
    let clean = crate::corruption::feed_raw(&events, &database, &config, &tables);
    assert_eq!(clean, 6, "the file as written: four inserts, an update, a delete");
    let trials = crate::corruption::corrupt_and_feed(&events, &database, &config, &tables, crate::corruption::seed(), 8);
    assert!(trials > 100, "{trials} altered files fed");
}

/// JSON as text with every number kept as written (the test's own reading,
/// whatever serde_json's features: a lossy parse on both sides would hide
/// lost digits), but for the spelling of exponents. Objects keyed in order,
/// the last of duplicate keys wins.
#[derive(Debug, Clone, PartialEq)]
enum RawJson {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<RawJson>),
    Object(std::collections::BTreeMap<String, RawJson>),
}

fn raw_json(text: &str) -> RawJson {
    fn ws(s: &mut &[u8]) {
        while let [b' ' | b'\t' | b'\n' | b'\r', rest @ ..] = *s {
            *s = rest;
        }
    }
    fn string(s: &mut &[u8]) -> String {
        assert_eq!(s[0], b'"');
        let mut out = Vec::new();
        let mut i = 1;
        while s[i] != b'"' {
            if s[i] == b'\\' {
                i += 1;
                match s[i] {
                    b'u' => {
                        let unit = u32::from_str_radix(std::str::from_utf8(&s[i + 1..i + 5]).unwrap(), 16).unwrap();
                        let mut buf = [0; 4];
                        out.extend_from_slice(char::from_u32(unit).unwrap_or('\u{fffd}').encode_utf8(&mut buf).as_bytes());
                        i += 4;
                    }
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    c => out.push(c),
                }
            } else {
                out.push(s[i]);
            }
            i += 1;
        }
        *s = &s[i + 1..];
        String::from_utf8(out).unwrap()
    }
    fn value(s: &mut &[u8]) -> RawJson {
        ws(s);
        match s[0] {
            b'n' => {
                *s = &s[4..];
                RawJson::Null
            }
            b't' => {
                *s = &s[4..];
                RawJson::Bool(true)
            }
            b'f' => {
                *s = &s[5..];
                RawJson::Bool(false)
            }
            b'"' => RawJson::String(string(s)),
            b'[' => {
                *s = &s[1..];
                let mut items = Vec::new();
                loop {
                    ws(s);
                    if s[0] == b']' {
                        *s = &s[1..];
                        return RawJson::Array(items);
                    }
                    if s[0] == b',' {
                        *s = &s[1..];
                    }
                    items.push(value(s));
                }
            }
            b'{' => {
                *s = &s[1..];
                let mut map = std::collections::BTreeMap::new();
                loop {
                    ws(s);
                    match s[0] {
                        b'}' => {
                            *s = &s[1..];
                            return RawJson::Object(map);
                        }
                        b',' => *s = &s[1..],
                        _ => {
                            let key = string(s);
                            ws(s);
                            assert_eq!(s[0], b':');
                            *s = &s[1..];
                            map.insert(key, value(s));
                        }
                    }
                }
            }
            _ => {
                let end = s.iter().position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')).unwrap_or(s.len());
                let number = std::str::from_utf8(&s[..end]).unwrap();
                *s = &s[end..];
                // serde_json spells an exponent `e+N` or `e-N` (`1E29` is
                // written `1e+29`): the same number, the same digits.
                RawJson::Number(match number.split_once(['e', 'E']) {
                    Some((mantissa, exponent)) if exponent.starts_with(['+', '-']) => format!("{mantissa}e{exponent}"),
                    Some((mantissa, exponent)) => format!("{mantissa}e+{exponent}"),
                    None => number.to_string(),
                })
            }
        }
    }
    let mut s = text.as_bytes();
    let v = value(&mut s);
    ws(&mut s);
    assert!(s.is_empty(), "trailing text after JSON: {}", String::from_utf8_lossy(s));
    v
}

/// Numbers inside JSON columns, as written and as the server computes them.
const JSON_NUMBERS: [&str; 9] = [
    "'[1, 123456789012345678901234567890, -123456789012345678901234567890, 18446744073709551616, -9223372036854775809]'",
    "'{\"pi\": 3.14159265358979323846264338327950288419716939937510, \"tiny\": -0.000000000000000000000000000001, \"price\": 19.90}'",
    "'[1e400, -1e400, 1.5e-400, 1E+29, 2e-7, 1.0, -0, -0.0, 0, 100, 0.1]'",
    "'{\"a\": [{\"b\": [18446744073709551616, {\"c\": 99999999999999999999.999999999}]}], \"d\": {\"e\": 1.10}, \"s\": \"123456789012345678901234567890\"}'",
    "'12345678901234567890123'",
    "'-0'",
    "JSON_OBJECT('big', 12345678901234567890123456789012345678901234567890, 'dec', CAST(1.50 AS DECIMAL(10,2)), \
     'neg', -0.0, 'arr', JSON_ARRAY(1e2, 1.0, 99999999999999999999.999999, -1.5e-10))",
    "JSON_ARRAY(CAST(-12345678901234567890.123456789 AS DECIMAL(40,9)), CAST(1e300 AS DOUBLE), 2.5e-5, 1/3)",
    "JSON_SET('{\"n\": 1}', '$.n', 123456789012345678901234567890.5, '$.m', 0.000001)",
];

#[actix_rt::test]
async fn numbers_inside_json_columns_arrive_exactly_as_the_server_returns_them() {
    let server = mariadb::shared();
    let name = server.fresh_database("types_jsonnum").await;
    let url = server.url(&name);
    rowhook::state::store::Store::new(&url).unwrap().migrate().await.expect("migrate");
    let mut conn = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    conn.query_drop("CREATE TABLE jsonnum (id INT PRIMARY KEY, js JSON)").await.unwrap();
    let receiver = Receiver::start().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    conn.exec_drop("INSERT INTO webhooks (url, events, secret) VALUES (?, '[\"*\"]', ?)", (receiver.url(), secret)).await.unwrap();
    let mut config = test_config(&url);
    let rules = "[[events]]\ntype = \"j.inserted\"\ntable = \"jsonnum\"\noperations = [\"insert\"]\nfields = { id = \"id\", js = \"js\" }\n";
    config.events = rowhook::config::Config::from_toml(&format!("[source]\nurl = \"{url}\"\n{rules}")).unwrap().events;
    let rowhook = InProcess::start(config).await;
    for (id, value) in JSON_NUMBERS.iter().enumerate() {
        conn.query_drop(format!("INSERT INTO jsonnum VALUES ({id}, {value})")).await.unwrap_or_else(|e| panic!("{value}: {e}"));
    }
    let received = receiver.wait_for(JSON_NUMBERS.len(), Duration::from_secs(30)).await;
    assert_eq!(received.len(), JSON_NUMBERS.len());
    let key = rowhook::delivery::signing::SigningKey::from_secret(secret).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    for delivery in &received {
        let RawJson::Object(body) = raw_json(&delivery.text()) else { panic!("{}", delivery.text()) };
        let RawJson::Object(data) = &body["data"] else { panic!("{}", delivery.text()) };
        let RawJson::Number(id) = &data["id"] else { panic!("{}", delivery.text()) };
        let stored: String = conn.query_first(format!("SELECT js FROM jsonnum WHERE id = {id}")).await.unwrap().unwrap();
        let as_char: String = conn.query_first(format!("SELECT CAST(js AS CHAR) FROM jsonnum WHERE id = {id}")).await.unwrap().unwrap();
        assert_eq!(stored, as_char);
        assert_eq!(data["js"], raw_json(&stored), "row {id}: rowhook sent {}, the server returns {stored}", delivery.text());
        // The body is signed as sent, digits and all.
        rowhook::delivery::signing::verify_standard(
            &key,
            delivery.header("webhook-signature").unwrap(),
            delivery.header("webhook-id").unwrap(),
            delivery.header("webhook-timestamp").unwrap(),
            &delivery.body,
            now,
            Duration::from_secs(300),
        )
        .expect("signature over the delivered bytes");
    }
    // The example, as literal text of the body (not only equal once parsed).
    assert!(received.iter().any(|r| r.text().contains(",123456789012345678901234567890,-123456789012345678901234567890,")));
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn a_backfill_copies_every_column_type_as_the_live_stream_delivers_it() {
    let server = mariadb::shared();
    let (url, mut conn) = setup(server, "types_backfill").await;
    let receiver = Receiver::start().await;
    let rowhook = start(&url, &receiver, &mut conn).await;
    for sql in INSERTS {
        conn.query_drop(sql).await.unwrap_or_else(|e| panic!("{e}: {}", &sql[..80]));
    }
    let live = received_rows(&receiver, 4).await;
    assert_rows(&live, &expected());
    receiver.clear();
    // The same rows, read with SELECT by a backfill.
    let answer: Json = reqwest::Client::new()
        .post(format!("{}/api/webhooks/1/backfills", rowhook.base_url))
        .json(&json!({"event_type": "row.inserted"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["data"]["state"], "queued", "{answer}");
    let copied = received_rows(&receiver, 4).await;
    for r in receiver.received() {
        assert!(r.header("webhook-id").unwrap().starts_with("bf_"), "a backfill's event id");
        assert_eq!(r.json()["backfill"], answer["data"]["id"], "marked as the backfill's");
    }
    assert_rows(&copied, &expected());
    rowhook.stop().await.expect("clean stop");
}
