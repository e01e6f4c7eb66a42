//! Column values from the binlog as JSON, exactly.
//!
//! The binlog carries values in their storage form: DECIMAL as text,
//! TIMESTAMP as seconds since the epoch, ENUM as an index, SET as a bitmask,
//! strings as bytes in the column's character set. [`to_json`] turns each into
//! the JSON a subscriber expects, driven by the column's [`ColumnKind`], which
//! the decoder derives once per table map:
//!
//! | column | JSON |
//! |---|---|
//! | integers (any width, signed or unsigned) | number, exact |
//! | DECIMAL | string, exact (`"12.50"`) |
//! | FLOAT, DOUBLE | number (NaN and infinities: null) |
//! | DATE | `"YYYY-MM-DD"` |
//! | DATETIME | `"YYYY-MM-DDTHH:MM:SS[.ffffff]"` (no offset: the server's wall clock) |
//! | TIMESTAMP | `"YYYY-MM-DDTHH:MM:SS[.ffffff]Z"` (an instant, UTC) |
//! | TIME | `"[-]HH:MM:SS[.ffffff]"`, hours beyond 24 kept |
//! | YEAR | number |
//! | zero dates (`0000-00-00`) | null |
//! | CHAR, VARCHAR, TEXT | string, decoded from the column's character set |
//! | BINARY, VARBINARY, BLOB | base64 string |
//! | JSON | the JSON value itself |
//! | ENUM | its string; SET: array of strings; BIT: number |

use std::sync::Arc;

use base64::Engine as _;
use mysql_common::binlog::value::BinlogValue;
use mysql_common::value::Value;
use serde_json::Value as Json;

/// The MySQL collation id of the `binary` pseudo character set.
pub const BINARY_CHARSET: u16 = 63;

/// What a column holds, as far as its JSON form is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnKind {
    Integer,
    Decimal,
    Float,
    Year,
    Date,
    DateTime,
    Timestamp,
    Time,
    Bit,
    /// Text in a character set (collation id; 0 when unknown: treated as UTF-8).
    Text { charset: u16 },
    Binary,
    Json,
    Enum(Arc<[String]>),
    Set(Arc<[String]>),
    /// Anything else (GEOMETRY, VECTOR): base64 of the raw bytes.
    Other,
}

/// Converts one binlog value of a column of `kind` to JSON.
pub fn to_json(value: &BinlogValue<'_>, kind: &ColumnKind) -> Json {
    match value {
        BinlogValue::Value(v) => plain_to_json(v, kind),
        BinlogValue::Jsonb(j) => Json::try_from(j.clone()).unwrap_or(Json::Null),
        // Partial JSON updates (MySQL binlog_row_value_options=PARTIAL_JSON)
        // carry only a diff; rowhook asks servers for full images.
        BinlogValue::JsonDiff(_) => Json::Null,
    }
}

fn plain_to_json(v: &Value, kind: &ColumnKind) -> Json {
    match v {
        Value::NULL => Json::Null,
        Value::Int(i) => match kind {
            ColumnKind::Enum(names) => enum_name(names, *i as u64),
            ColumnKind::Timestamp => timestamp_json(*i, 0),
            _ => Json::from(*i),
        },
        Value::UInt(u) => match kind {
            ColumnKind::Enum(names) => enum_name(names, *u),
            _ => Json::from(*u),
        },
        Value::Float(f) => serde_json::Number::from_f64(f64::from(*f)).map(Json::Number).unwrap_or(Json::Null),
        Value::Double(f) => serde_json::Number::from_f64(*f).map(Json::Number).unwrap_or(Json::Null),
        Value::Date(y, mo, d, h, mi, s, us) => date_json(*y, *mo, *d, *h, *mi, *s, *us, kind),
        Value::Time(neg, days, h, mi, s, us) => {
            let hours = u64::from(*days) * 24 + u64::from(*h);
            let sign = if *neg { "-" } else { "" };
            Json::String(format!("{sign}{hours:02}:{mi:02}:{s:02}{}", fraction(*us)))
        }
        Value::Bytes(bytes) => bytes_to_json(bytes, kind),
    }
}

fn enum_name(names: &[String], index: u64) -> Json {
    // ENUM indexes are 1-based; 0 is the empty "error" value.
    match index.checked_sub(1).and_then(|i| names.get(i as usize)) {
        Some(name) => Json::String(name.clone()),
        None if index == 0 => Json::String(String::new()),
        None => Json::from(index),
    }
}

fn fraction(us: u32) -> String {
    if us == 0 {
        String::new()
    } else {
        format!(".{us:06}")
    }
}

#[allow(clippy::too_many_arguments)]
fn date_json(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8, us: u32, kind: &ColumnKind) -> Json {
    if y == 0 && mo == 0 && d == 0 {
        return Json::Null; // zero date
    }
    match kind {
        ColumnKind::Date => Json::String(format!("{y:04}-{mo:02}-{d:02}")),
        _ => Json::String(format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}", fraction(us))),
    }
}

/// Seconds (and microseconds) since the epoch as an RFC 3339 UTC instant.
fn timestamp_json(secs: i64, micros: u32) -> Json {
    if secs == 0 && micros == 0 {
        return Json::Null; // zero timestamp
    }
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => Json::String(format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            fraction(micros)
        )),
        Err(_) => Json::Null,
    }
}

fn bytes_to_json(bytes: &[u8], kind: &ColumnKind) -> Json {
    match kind {
        ColumnKind::Decimal => Json::String(String::from_utf8_lossy(bytes).into_owned()),
        ColumnKind::Year => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse::<u16>().ok())
            .map(|y| if y == 1900 { Json::Null } else { Json::from(y) })
            .unwrap_or(Json::Null),
        ColumnKind::Timestamp => {
            // "seconds" or "seconds.micros"
            let text = String::from_utf8_lossy(bytes);
            let (secs, micros) = text.split_once('.').unwrap_or((&text, "0"));
            match (secs.parse::<i64>(), micros.parse::<u32>()) {
                (Ok(s), Ok(us)) => timestamp_json(s, us),
                _ => Json::Null,
            }
        }
        ColumnKind::Bit => {
            let n = bytes.iter().take(8).fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            Json::from(n)
        }
        ColumnKind::Set(names) => {
            // little-endian bitmask
            let members = names
                .iter()
                .enumerate()
                .filter(|(i, _)| bytes.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0))
                .map(|(_, name)| Json::String(name.clone()))
                .collect();
            Json::Array(members)
        }
        ColumnKind::Json => match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(_) => Json::String(String::from_utf8_lossy(bytes).into_owned()),
        },
        ColumnKind::Text { charset } => Json::String(decode_text(bytes, *charset)),
        ColumnKind::Binary | ColumnKind::Other | ColumnKind::Enum(_) => {
            Json::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        // Values whose storage form is bytes but whose kind says otherwise
        // (should not happen): keep the text.
        _ => Json::String(String::from_utf8_lossy(bytes).into_owned()),
    }
}

/// Is this collation id one of the latin1 collations?
fn is_latin1(charset: u16) -> bool {
    matches!(charset, 5 | 8 | 15 | 31 | 47 | 48 | 49 | 94)
}

/// Decodes text bytes of a column in `charset` to a Rust string. Bytes that
/// are not valid in the character set become U+FFFD rather than failing the row.
pub fn decode_text(bytes: &[u8], charset: u16) -> String {
    if is_latin1(charset) {
        // MySQL's latin1 is Windows-1252; the bytes 0x80-0x9F differ from
        // ISO-8859-1, the rest map one to one.
        bytes.iter().map(|b| cp1252(*b)).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

fn cp1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}', '\u{90}', '‘',
        '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
    ];
    if (0x80..0xa0).contains(&b) {
        HIGH[usize::from(b - 0x80)]
    } else {
        char::from(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(value: Value, kind: ColumnKind) -> Json {
        to_json(&BinlogValue::Value(value), &kind)
    }

    #[test]
    fn integers_are_exact() {
        assert_eq!(v(Value::UInt(u64::MAX), ColumnKind::Integer), serde_json::json!(18446744073709551615u64));
        assert_eq!(v(Value::Int(i64::MIN), ColumnKind::Integer), serde_json::json!(-9223372036854775808i64));
    }

    #[test]
    fn decimal_stays_a_string() {
        assert_eq!(v(Value::Bytes(b"12345678.91".to_vec()), ColumnKind::Decimal), "12345678.91");
    }

    #[test]
    fn timestamps_are_utc_instants() {
        assert_eq!(v(Value::Bytes(b"1700000000".to_vec()), ColumnKind::Timestamp), "2023-11-14T22:13:20Z");
        assert_eq!(v(Value::Bytes(b"1700000000.000042".to_vec()), ColumnKind::Timestamp), "2023-11-14T22:13:20.000042Z");
        assert_eq!(v(Value::Bytes(b"0".to_vec()), ColumnKind::Timestamp), Json::Null);
    }

    #[test]
    fn datetimes_dates_and_zero_dates() {
        assert_eq!(v(Value::Date(2024, 2, 29, 23, 59, 58, 123456), ColumnKind::DateTime), "2024-02-29T23:59:58.123456");
        assert_eq!(v(Value::Date(2024, 2, 29, 0, 0, 0, 0), ColumnKind::Date), "2024-02-29");
        assert_eq!(v(Value::Date(0, 0, 0, 0, 0, 0, 0), ColumnKind::DateTime), Json::Null);
    }

    #[test]
    fn time_keeps_sign_and_long_hours() {
        assert_eq!(v(Value::Time(true, 1, 2, 3, 4, 500000), ColumnKind::Time), "-26:03:04.500000");
        assert_eq!(v(Value::Time(false, 0, 8, 0, 0, 0), ColumnKind::Time), "08:00:00");
    }

    #[test]
    fn enum_set_and_bit() {
        let names: Arc<[String]> = vec!["open".to_string(), "pending".into(), "closed".into()].into();
        assert_eq!(v(Value::Int(2), ColumnKind::Enum(names.clone())), "pending");
        assert_eq!(v(Value::Bytes(vec![0b101]), ColumnKind::Set(names)), serde_json::json!(["open", "closed"]));
        assert_eq!(v(Value::Bytes(vec![1, 2]), ColumnKind::Bit), 258);
    }

    #[test]
    fn text_binary_and_json() {
        assert_eq!(v(Value::Bytes("héllo 🎉".as_bytes().to_vec()), ColumnKind::Text { charset: 45 }), "héllo 🎉");
        assert_eq!(v(Value::Bytes(vec![0x63, 0x61, 0x66, 0xe9, 0x80]), ColumnKind::Text { charset: 8 }), "café€");
        assert_eq!(v(Value::Bytes(vec![0xff, 0x00]), ColumnKind::Binary), "/wA=");
        assert_eq!(v(Value::Bytes(vec![0xff, b'a']), ColumnKind::Text { charset: 45 }), "\u{fffd}a");
        assert_eq!(
            v(Value::Bytes(br#"["a@example.com"]"#.to_vec()), ColumnKind::Json),
            serde_json::json!(["a@example.com"])
        );
    }
}
