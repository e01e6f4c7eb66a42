//! Column values from the binlog as JSON, exactly.
//!
//! The binlog carries values in their storage form: DECIMAL as text,
//! TIMESTAMP as seconds since the epoch, ENUM as an index, SET as a bitmask,
//! strings as bytes in the column's character set. [`to_json`] turns each into
//! the JSON a subscriber expects, driven by the column's [`ColumnKind`], which
//! the decoder derives once per rows event from the table map and, where the
//! server logs no metadata, from `information_schema`. The full table, with
//! examples, is in `docs/types.md`:
//!
//! | column | JSON |
//! |---|---|
//! | integers (any width, signed or unsigned) | number, exact |
//! | DECIMAL | string, exact (`"12.50"`) |
//! | FLOAT, DOUBLE | number, shortest form that reads back the same (NaN, infinities: null) |
//! | DATE | `"YYYY-MM-DD"` |
//! | DATETIME | `"YYYY-MM-DDTHH:MM:SS[.ffffff]"`, with the `[source] time_zone` offset when set |
//! | TIMESTAMP | `"YYYY-MM-DDTHH:MM:SS[.ffffff]Z"` (an instant, UTC) |
//! | TIME | `"[-]HH:MM:SS[.ffffff]"`, hours beyond 24 kept |
//! | YEAR | number |
//! | zero dates (`0000-00-00`), YEAR 0000 | null |
//! | CHAR, VARCHAR, TEXT | string, decoded from the column's character set as MariaDB converts it |
//! | BINARY, VARBINARY, BLOB | base64 string (BINARY(n) padded to n bytes) |
//! | JSON | the JSON value itself, numbers as the server prints them (every digit) |
//! | ENUM | its string; SET: array of strings; BIT: number |
//! | GEOMETRY | WKT as MariaDB's `ST_AsText` prints it (`POINT(1 2)`), `SRID=n;` first when the SRID is not 0; malformed WKB: lowercase hex of it |
//! | VECTOR | array of numbers |
//!
//! Fractions of seconds are printed with six digits when not zero and left
//! out when zero, whatever the column's precision.
//!
//! Numbers inside JSON columns arrive as the server returns them, every digit
//! (`123456789012345678901234567890`, `1.50`, `-0`): serde_json is built with
//! `arbitrary_precision`, so a parsed number keeps its text (an exponent
//! spelt `e+N` or `e-N`: `1E400` arrives as `1e+400`), and a DECIMAL inside
//! MySQL's binary JSON becomes a number of its digits. The price is a small
//! allocation per number, integer columns included (`docs/benchmarks.md`);
//! two numbers are equal when their texts are.

use std::sync::Arc;

use base64::Engine as _;
use mysql_common::binlog::jsondiff::{JsonDiff, JsonDiffOperation};
use mysql_common::binlog::value::BinlogValue;
use mysql_common::value::Value;
use serde_json::Value as Json;

/// The MySQL collation id of the `binary` pseudo character set.
pub const BINARY_CHARSET: u16 = 63;

/// A character set rowhook decodes text from. Cheap to copy: the decoder
/// derives one per text column once per rows event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// utf8mb4, utf8mb3, ascii, and the character sets without a decoder
    /// (swe7, dec8, hp8, keybcs2, armscii8, geostd8, cp850, cp852, macce):
    /// bytes that are not UTF-8 become U+FFFD.
    Utf8,
    /// MySQL's latin1, which is Windows-1252.
    Latin1,
    /// ucs2 and utf16 (big-endian).
    Utf16Be,
    Utf16Le,
    /// utf32 (big-endian).
    Utf32Be,
    /// Another character set, decoded by encoding_rs and corrected to
    /// MariaDB's own conversion (cp1251, sjis, gbk, ...; see [`Charset::from_name`]).
    Legacy(&'static Legacy),
}

impl Charset {
    /// From a collation id of the table map's metadata (0: unknown). Ids
    /// neither server knows decode as UTF-8.
    pub fn from_collation(id: u16) -> Option<Charset> {
        if id == 0 {
            return None;
        }
        Some(crate::source::collations::charset_name(id).map_or(Charset::Utf8, Charset::from_name))
    }

    /// From a character set name, as `information_schema.COLUMNS.CHARACTER_SET_NAME`
    /// and [`crate::source::collations::charset_name`] spell it.
    pub fn from_name(name: &str) -> Charset {
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "latin1" => Charset::Latin1,
            "ucs2" | "utf16" => Charset::Utf16Be,
            "utf16le" => Charset::Utf16Le,
            "utf32" => Charset::Utf32Be,
            // utf8mb4, utf8mb3, ascii, and the character sets encoding_rs has no decoder for.
            _ => LEGACY.iter().find(|l| l.name == name).map_or(Charset::Utf8, Charset::Legacy),
        }
    }
}

/// A legacy character set: encoding_rs's decoder (the WHATWG Encoding
/// Standard's, made for the web) and the codes MariaDB converts otherwise,
/// which [`decode_text`] puts right (`src/source/charset_tables.rs`, generated from
/// the server's own conversion and checked code by code against it by
/// `tests/it/charsets.rs`).
pub struct Legacy {
    /// The server's name (`sjis`).
    pub name: &'static str,
    /// encoding_rs's decoder, right for every code but the corrected ones.
    pub encoding: &'static encoding_rs::Encoding,
    corrections: crate::source::charset_tables::Corrections,
    /// How many bytes a code takes, by its first byte.
    widths: [u8; 256],
    /// Every code is one byte.
    one_byte: bool,
    /// By first byte, the smallest and largest second byte of the corrected
    /// codes (a one-byte code: 0 and 255; none: 255 and 0). A code outside
    /// it is encoding_rs's without a lookup: Japanese text in sjis looks up
    /// a few punctuation marks, not its kana and kanji.
    window: [(u8, u8); 256],
}

impl std::fmt::Debug for Legacy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Legacy({})", self.name)
    }
}

impl PartialEq for Legacy {
    fn eq(&self, other: &Legacy) -> bool {
        self.name == other.name
    }
}

impl Eq for Legacy {}

/// How many bytes a code takes, told by its first byte (as encoding_rs's
/// decoders read them, so that text splits where they would split it).
#[derive(Debug, Clone, Copy)]
enum Shape {
    Single,
    /// sjis, cp932: leads 0x81-0x9F and 0xE0-0xFC.
    ShiftJis,
    /// big5, gbk, gb2312, euckr: leads 0x81-0xFE.
    DoubleHigh,
    /// ujis, eucjpms: 0x8E and 0xA1-0xFE lead two bytes, 0x8F three.
    EucJp,
}

impl Shape {
    const fn width(self, lead: u8) -> u8 {
        match (self, lead) {
            (Shape::ShiftJis, 0x81..=0x9f | 0xe0..=0xfc) | (Shape::DoubleHigh, 0x81..=0xfe) | (Shape::EucJp, 0x8e | 0xa1..=0xfe) => 2,
            (Shape::EucJp, 0x8f) => 3,
            _ => 1,
        }
    }
}

impl Legacy {
    const fn new(name: &'static str, encoding: &'static encoding_rs::Encoding, corrections: crate::source::charset_tables::Corrections, shape: Shape) -> Legacy {
        let mut widths = [1u8; 256];
        let mut b = 0;
        while b < 256 {
            widths[b] = shape.width(b as u8);
            b += 1;
        }
        let mut window = [(255u8, 0u8); 256];
        let mut k = 0;
        while k < corrections.len() {
            let (first, last, _) = corrections[k];
            // First and second bytes of the run's ends (one-byte codes: any second byte).
            let ((lead, second), (last_lead, last_second)) = if last < 0x100 {
                ((first, 0), (last, 255))
            } else {
                let shift = if last < 0x1_0000 { 0 } else { 8 };
                (((first >> shift) >> 8, (first >> shift) & 0xff), ((last >> shift) >> 8, (last >> shift) & 0xff))
            };
            let mut at = lead;
            while at <= last_lead {
                let low = if at == lead && last >= 0x100 { second as u8 } else { 0 };
                let high = if at == last_lead { last_second as u8 } else { 255 };
                let (lo, hi) = window[at as usize];
                window[at as usize] = (if low < lo { low } else { lo }, if high > hi { high } else { hi });
                at += 1;
            }
            k += 1;
        }
        Legacy { name, encoding, corrections, widths, one_byte: matches!(shape, Shape::Single), window }
    }

    /// `bytes` as text: encoding_rs's decoding, with the corrected codes'
    /// characters in place of what it gives for them. Text without any
    /// corrected code (most) is one call to encoding_rs after one pass over
    /// its codes' first two bytes.
    fn decode(&self, bytes: &[u8]) -> String {
        let whole = |bytes| self.encoding.decode_without_bom_handling(bytes).0;
        if self.corrections.is_empty() || bytes.is_ascii() {
            return whole(bytes).into_owned();
        }
        // One-byte codes only (cp1251, latin5, ...): a tighter first pass.
        if self.one_byte && !bytes.iter().any(|&b| self.window[usize::from(b)].0 == 0) {
            return whole(bytes).into_owned();
        }
        let mut out = String::new();
        // Decoded up to `done`; the code at `at` is next.
        let (mut done, mut at) = (0, 0);
        while let Some(&lead) = bytes.get(at) {
            let width = usize::from(self.widths[usize::from(lead)]);
            let (lo, hi) = self.window[usize::from(lead)];
            if lo <= hi && (width == 1 || bytes.get(at + 1).is_some_and(|b| (lo..=hi).contains(b))) {
                if let Some(c) = bytes.get(at..at + width).and_then(|code| self.corrected(code.iter().fold(0, |n, b| n << 8 | u32::from(*b)))) {
                    if out.is_empty() {
                        out.reserve(bytes.len() * 3 / 2);
                    }
                    out.push_str(&whole(&bytes[done..at]));
                    out.push(c);
                    done = at + width;
                }
            }
            at += width;
        }
        if done == 0 {
            return whole(bytes).into_owned();
        }
        out.push_str(&whole(&bytes[done..]));
        out
    }

    /// MariaDB's character for `code` (its bytes big-endian), when it is one
    /// of the corrected codes.
    fn corrected(&self, code: u32) -> Option<char> {
        let k = self.corrections.partition_point(|run| run.0 <= code).checked_sub(1)?;
        let (first, last, c) = self.corrections[k];
        match c {
            _ if code > last => None,
            '\u{fffd}' => Some(c),
            _ => char::from_u32(u32::from(c) + (code - first)),
        }
    }
}

/// Every legacy character set rowhook decodes, by the server's name.
static LEGACY: [Legacy; 23] = {
    use crate::source::charset_tables as t;
    use encoding_rs as e;
    [
        Legacy::new("latin2", &e::ISO_8859_2_INIT, t::LATIN2, Shape::Single),
        // ISO-8859-9, which WHATWG decodes as its superset windows-1254 (corrected: 0x80-0x9F).
        Legacy::new("latin5", &e::WINDOWS_1254_INIT, t::LATIN5, Shape::Single),
        Legacy::new("latin7", &e::ISO_8859_13_INIT, t::LATIN7, Shape::Single),
        Legacy::new("greek", &e::ISO_8859_7_INIT, t::GREEK, Shape::Single),
        Legacy::new("hebrew", &e::ISO_8859_8_INIT, t::HEBREW, Shape::Single),
        Legacy::new("cp1250", &e::WINDOWS_1250_INIT, t::CP1250, Shape::Single),
        Legacy::new("cp1251", &e::WINDOWS_1251_INIT, t::CP1251, Shape::Single),
        Legacy::new("cp1256", &e::WINDOWS_1256_INIT, t::CP1256, Shape::Single),
        Legacy::new("cp1257", &e::WINDOWS_1257_INIT, t::CP1257, Shape::Single),
        Legacy::new("cp866", &e::IBM866_INIT, t::CP866, Shape::Single),
        Legacy::new("koi8r", &e::KOI8_R_INIT, t::KOI8R, Shape::Single),
        Legacy::new("koi8u", &e::KOI8_U_INIT, t::KOI8U, Shape::Single),
        Legacy::new("macroman", &e::MACINTOSH_INIT, t::MACROMAN, Shape::Single),
        // TIS-620, which WHATWG decodes as its superset windows-874.
        Legacy::new("tis620", &e::WINDOWS_874_INIT, t::TIS620, Shape::Single),
        Legacy::new("sjis", &e::SHIFT_JIS_INIT, t::SJIS, Shape::ShiftJis),
        Legacy::new("cp932", &e::SHIFT_JIS_INIT, t::CP932, Shape::ShiftJis),
        Legacy::new("ujis", &e::EUC_JP_INIT, t::UJIS, Shape::EucJp),
        Legacy::new("eucjpms", &e::EUC_JP_INIT, t::EUCJPMS, Shape::EucJp),
        Legacy::new("euckr", &e::EUC_KR_INIT, t::EUCKR, Shape::DoubleHigh),
        Legacy::new("gb2312", &e::GBK_INIT, t::GB2312, Shape::DoubleHigh),
        Legacy::new("gbk", &e::GBK_INIT, t::GBK, Shape::DoubleHigh),
        // MySQL only: no MariaDB to take corrections from.
        Legacy::new("gb18030", &e::GB18030_INIT, &[], Shape::DoubleHigh),
        Legacy::new("big5", &e::BIG5_INIT, t::BIG5, Shape::DoubleHigh),
    ]
};

/// What a column holds, as far as its JSON form is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnKind {
    Integer,
    /// An UNSIGNED integer of this many bits: a negative value (read without
    /// signedness metadata) is reinterpreted as unsigned.
    Unsigned(u8),
    /// A signed MEDIUMINT: mysql_common 0.37 reads negative ones without
    /// their sign (-1 arrives as 16777215), so values of 2^23 and up are sign-extended.
    SignedInt24,
    Decimal,
    Float,
    Year,
    Date,
    /// DATETIME, with the offset of the configured source time zone (`"+02:00"`), if any.
    DateTime { offset: Option<Arc<str>> },
    Timestamp,
    Time,
    Bit,
    Text(Charset),
    /// Binary strings; BINARY(n) (`pad_to`) gets back the trailing zero bytes the binlog drops.
    Binary { pad_to: Option<usize> },
    Json,
    Enum(Arc<[String]>),
    Set(Arc<[String]>),
    /// GEOMETRY: WKT (see [`crate::source::wkt`]).
    Geometry,
    /// MySQL 9 VECTOR: little-endian f32s, as an array of numbers.
    Vector,
    /// Anything else: base64 of the raw bytes.
    Other,
}

/// Converts one binlog value of a column of `kind` to JSON. Partial JSON
/// updates need the before image: see [`apply_json_diffs`].
pub fn to_json(value: &BinlogValue<'_>, kind: &ColumnKind) -> Json {
    match value {
        BinlogValue::Value(v) => plain_to_json(v, kind),
        BinlogValue::Jsonb(j) => jsonb_to_json(j),
        BinlogValue::JsonDiff(_) => Json::Null,
    }
}

/// MySQL's binary JSON as JSON. Opaque scalars as MySQL's own JSON output
/// has them: DECIMAL as a number with all its digits (`9.00`),
/// DATE/TIME/DATETIME as `"YYYY-MM-DD HH:MM:SS.ffffff"` (mysql_common's),
/// other types as `"base64:type<N>:<data>"`.
pub fn jsonb_to_json(j: &mysql_common::binlog::jsonb::Value<'_>) -> Json {
    match jsonb_dom(j.clone(), 0) {
        Ok(json) => json,
        Err(e) => {
            tracing::warn!(error = %e, "invalid binary JSON value; delivered as null");
            Json::Null
        }
    }
}

/// Deeper than any document MySQL stores (it refuses depth 100 and more):
/// only a corrupt or crafted value gets here, and a chain of nested arrays of
/// a few bytes each would otherwise overflow the stack.
const MAX_JSONB_DEPTH: usize = 128;

/// Arrays and objects walked here, scalars parsed by mysql_common: its own
/// walk reserves room for the element count a value claims (a corrupt count
/// aborts the process) and knows no depth limit. Here a container holds what
/// its bytes hold, and nesting stops at [`MAX_JSONB_DEPTH`].
fn jsonb_dom(value: mysql_common::binlog::jsonb::Value<'_>, depth: usize) -> std::io::Result<Json> {
    use mysql_common::binlog::jsonb::{JsonDom, JsonNumber, JsonScalar, Value as Jsonb};
    if depth > MAX_JSONB_DEPTH {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "binary JSON nested too deep"));
    }
    let array = |items: &mut dyn Iterator<Item = std::io::Result<Jsonb<'_>>>| -> std::io::Result<Json> {
        let mut out = Vec::new();
        for item in items {
            out.push(jsonb_dom(item?, depth + 1)?);
        }
        Ok(Json::Array(out))
    };
    let object = |entries: &mut dyn Iterator<Item = std::io::Result<(mysql_common::binlog::jsonb::ObjectKey<'_>, Jsonb<'_>)>>| {
        let mut out = serde_json::Map::new();
        for entry in entries {
            let (key, item) = entry?;
            out.insert(key.value().into_owned(), jsonb_dom(item, depth + 1)?);
        }
        Ok(Json::Object(out))
    };
    match value {
        Jsonb::SmallArray(a) => array(&mut a.iter()),
        Jsonb::LargeArray(a) => array(&mut a.iter()),
        Jsonb::SmallObject(o) => object(&mut o.iter()),
        Jsonb::LargeObject(o) => object(&mut o.iter()),
        // A DECIMAL inside JSON: precision, scale, then the digits; mysql_common
        // sizes its buffer from the two, and a scale above the precision would
        // abort the process.
        Jsonb::Opaque(o)
            if o.value_type() == mysql_common::constants::ColumnType::MYSQL_TYPE_NEWDECIMAL
                && !matches!(o.data_raw(), &[precision, scale, ..] if precision <= 65 && scale <= 38 && scale <= precision) =>
        {
            Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "DECIMAL in binary JSON with an impossible precision or scale"))
        }
        scalar => Ok(match scalar.parse()? {
            JsonDom::Scalar(JsonScalar::Number(JsonNumber::Decimal(decimal))) => decimal_number(decimal.to_string()),
            dom => Json::from(dom),
        }),
    }
}

/// A DECIMAL inside binary JSON as the number MySQL prints (`9.00`, every
/// digit and the scale kept), where mysql_common makes it a string. Its text
/// is always a JSON number; should it not be, it stays a string.
fn decimal_number(text: String) -> Json {
    match text.parse::<serde_json::Number>() {
        Ok(number) => Json::Number(number),
        Err(_) => Json::String(text),
    }
}

/// Why a partial JSON update could not be resolved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot apply the partial JSON update at `{path}`: {reason}")]
pub struct JsonDiffError {
    pub path: String,
    pub reason: &'static str,
}

/// Resolves a MySQL partial JSON update (`binlog_row_value_options=PARTIAL_JSON`)
/// to the full new document by applying its diffs to the before image.
pub fn apply_json_diffs(before: &Json, diffs: &[JsonDiff<'_>]) -> Result<Json, JsonDiffError> {
    let mut doc = before.clone();
    for diff in diffs {
        let value = diff.value().map(jsonb_to_json);
        apply_json_diff(&mut doc, diff.operation(), &diff.path_str(), value)?;
    }
    Ok(doc)
}

/// Applies one diff (operation, path, new value) to `doc`.
fn apply_json_diff(doc: &mut Json, operation: JsonDiffOperation, path: &str, value: Option<Json>) -> Result<(), JsonDiffError> {
    let fail = |reason| JsonDiffError { path: path.to_string(), reason };
    let steps = parse_json_path(path).ok_or_else(|| fail("unsupported path"))?;
    let Some((last, parents)) = steps.split_last() else {
        // `$` itself.
        return match (operation, value) {
            (JsonDiffOperation::REPLACE, Some(v)) => {
                *doc = v;
                Ok(())
            }
            _ => Err(fail("cannot insert or remove the root")),
        };
    };
    let mut target = doc;
    for step in parents {
        target = match (step, target) {
            (PathStep::Key(k), Json::Object(map)) => map.get_mut(k).ok_or_else(|| fail("missing key"))?,
            (PathStep::Index(i), Json::Array(items)) => items.get_mut(*i).ok_or_else(|| fail("missing index"))?,
            _ => return Err(fail("path does not match the document")),
        };
    }
    match (operation, last, target, value) {
        (JsonDiffOperation::REPLACE | JsonDiffOperation::INSERT, PathStep::Key(k), Json::Object(map), Some(v)) => {
            map.insert(k.clone(), v);
        }
        (JsonDiffOperation::REPLACE, PathStep::Index(i), Json::Array(items), Some(v)) => {
            *items.get_mut(*i).ok_or_else(|| fail("missing index"))? = v;
        }
        (JsonDiffOperation::INSERT, PathStep::Index(i), Json::Array(items), Some(v)) => {
            let at = (*i).min(items.len());
            items.insert(at, v);
        }
        (JsonDiffOperation::REMOVE, PathStep::Key(k), Json::Object(map), _) => {
            map.remove(k).ok_or_else(|| fail("missing key"))?;
        }
        (JsonDiffOperation::REMOVE, PathStep::Index(i), Json::Array(items), _) => {
            if *i >= items.len() {
                return Err(fail("missing index"));
            }
            items.remove(*i);
        }
        _ => return Err(fail("path does not match the document")),
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
enum PathStep {
    Key(String),
    Index(usize),
}

/// Parses the simple JSON paths MySQL writes in diffs: `$`, `.key`,
/// `."quoted key"`, `[N]`. Wildcards and ranges never appear in diffs.
fn parse_json_path(path: &str) -> Option<Vec<PathStep>> {
    let mut rest = path.trim().strip_prefix('$')?;
    let mut steps = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Some(steps);
        }
        if let Some(after) = rest.strip_prefix('.') {
            let after = after.trim_start();
            if let Some(quoted) = after.strip_prefix('"') {
                let mut key = String::new();
                let mut chars = quoted.char_indices();
                let end = loop {
                    match chars.next()? {
                        (i, '"') => break i,
                        (_, '\\') => key.push(chars.next()?.1),
                        (_, c) => key.push(c),
                    }
                };
                steps.push(PathStep::Key(key));
                rest = &quoted[end + 1..];
            } else {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                let key = after[..end].trim();
                if key.is_empty() {
                    return None;
                }
                steps.push(PathStep::Key(key.to_string()));
                rest = &after[end..];
            }
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            steps.push(PathStep::Index(after[..end].trim().parse().ok()?));
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
}

pub(crate) fn plain_to_json(v: &Value, kind: &ColumnKind) -> Json {
    match v {
        Value::NULL => Json::Null,
        Value::Int(i) => match kind {
            ColumnKind::Enum(names) => enum_name(names, *i as u64),
            ColumnKind::Timestamp => timestamp_json(*i, 0),
            ColumnKind::SignedInt24 if *i >= 1 << 23 => Json::from(*i - (1 << 24)),
            ColumnKind::Unsigned(bits) if *i < 0 => {
                let mask = if *bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
                Json::from((*i as u64) & mask)
            }
            _ => Json::from(*i),
        },
        Value::UInt(u) => match kind {
            ColumnKind::Enum(names) => enum_name(names, *u),
            _ => Json::from(*u),
        },
        // An f32 widened to f64 shows its binary error (3.14 -> 3.140000104904175):
        // go through its shortest decimal form instead, which is what was written.
        Value::Float(f) => f.to_string().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Json::Number).unwrap_or(Json::Null),
        Value::Double(f) => serde_json::Number::from_f64(*f).map(Json::Number).unwrap_or(Json::Null),
        Value::Date(y, mo, d, h, mi, s, us) => date_json(*y, *mo, *d, *h, *mi, *s, *us, kind),
        Value::Time(neg, days, h, mi, s, us) => {
            let hours = u64::from(*days) * 24 + u64::from(*h);
            let mut out = Vec::with_capacity(16);
            if *neg {
                out.push(b'-');
            }
            push_time(&mut out, hours, *mi, *s, *us);
            ascii_json(out)
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

// Dates and times are written digit by digit as bytes, then checked as
// UTF-8 once, rather than with `format!`, which cost a sixth of catch-up
// decoding (`docs/benchmarks.md`).

/// Text written as bytes (ASCII, and the `str`s appended) as a JSON string.
fn ascii_json(bytes: Vec<u8>) -> Json {
    Json::String(String::from_utf8(bytes).unwrap_or_default())
}

/// Appends `n` in decimal, zero-padded to `width` digits: `format!("{n:0width$}")`.
pub(crate) fn push_padded(out: &mut Vec<u8>, mut n: u64, width: usize) {
    if width == 2 && n < 100 {
        // Most parts of a date and time.
        out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]);
        return;
    }
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = at.min(digits.len().saturating_sub(width));
    out.extend_from_slice(&digits[start..]);
}

/// `YYYY-MM-DD` (a negative year as `format!("{y:04}")` writes it: `-005`).
fn push_date(out: &mut Vec<u8>, y: i32, mo: u8, d: u8) {
    if y < 0 {
        out.push(b'-');
        push_padded(out, u64::from(y.unsigned_abs()), 3);
    } else {
        push_padded(out, u64::from(y.unsigned_abs()), 4);
    }
    out.push(b'-');
    push_padded(out, u64::from(mo), 2);
    out.push(b'-');
    push_padded(out, u64::from(d), 2);
}

/// `HH:MM:SS[.ffffff]`: hours of at least two digits, the fraction when not zero.
fn push_time(out: &mut Vec<u8>, hours: u64, mi: u8, s: u8, us: u32) {
    push_padded(out, hours, 2);
    out.push(b':');
    push_padded(out, u64::from(mi), 2);
    out.push(b':');
    push_padded(out, u64::from(s), 2);
    if us != 0 {
        out.push(b'.');
        push_padded(out, u64::from(us), 6);
    }
}

#[allow(clippy::too_many_arguments)]
fn date_json(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8, us: u32, kind: &ColumnKind) -> Json {
    if y == 0 && mo == 0 && d == 0 {
        return Json::Null; // zero date
    }
    let mut out = Vec::with_capacity(32);
    push_date(&mut out, i32::from(y), mo, d);
    match kind {
        ColumnKind::Date => {}
        ColumnKind::DateTime { offset: Some(offset) } => {
            out.push(b'T');
            push_time(&mut out, u64::from(h), mi, s, us);
            out.extend_from_slice(offset.as_bytes());
        }
        _ => {
            out.push(b'T');
            push_time(&mut out, u64::from(h), mi, s, us);
        }
    }
    ascii_json(out)
}

/// Seconds (and microseconds) since the epoch as an RFC 3339 UTC instant.
pub(crate) fn timestamp_json(secs: i64, micros: u32) -> Json {
    if secs == 0 && micros == 0 {
        return Json::Null; // zero timestamp
    }
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => {
            let mut out = Vec::with_capacity(28);
            push_date(&mut out, t.year(), u8::from(t.month()), t.day());
            out.push(b'T');
            push_time(&mut out, u64::from(t.hour()), t.minute(), t.second(), micros);
            out.push(b'Z');
            ascii_json(out)
        }
        Err(_) => Json::Null,
    }
}

pub(crate) fn bytes_to_json(bytes: &[u8], kind: &ColumnKind) -> Json {
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
        ColumnKind::Text(charset) => Json::String(decode_text(bytes, *charset)),
        ColumnKind::Binary { pad_to: Some(n) } if bytes.len() < *n => {
            let mut padded = bytes.to_vec();
            padded.resize(*n, 0);
            Json::String(base64::engine::general_purpose::STANDARD.encode(padded))
        }
        // MySQL's internal form: a 4-byte SRID, then WKB. Malformed WKB: its hex.
        ColumnKind::Geometry => Json::String(crate::source::wkt::geometry_text(bytes).unwrap_or_else(|e| {
            tracing::debug!(error = %e, "GEOMETRY value is not valid WKB; delivered as hex");
            let wkb = bytes.get(4..).unwrap_or_default();
            wkb.iter().map(|b| format!("{b:02x}")).collect()
        })),
        ColumnKind::Vector if bytes.len() % 4 == 0 => Json::Array(
            bytes
                .chunks_exact(4)
                .map(|c| {
                    let f = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    f.to_string().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Json::Null, Json::Number)
                })
                .collect(),
        ),
        ColumnKind::Binary { .. } | ColumnKind::Other | ColumnKind::Enum(_) | ColumnKind::Vector => {
            Json::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        // Values whose storage form is bytes but whose kind says otherwise
        // (should not happen): keep the text.
        _ => Json::String(String::from_utf8_lossy(bytes).into_owned()),
    }
}

/// Decodes text bytes of a column in `charset` to a Rust string. Bytes that
/// are not valid in the character set become U+FFFD rather than failing the row.
pub fn decode_text(bytes: &[u8], charset: Charset) -> String {
    match charset {
        // MySQL's latin1 is Windows-1252; the bytes 0x80-0x9F differ from
        // ISO-8859-1, the rest map one to one.
        Charset::Latin1 => bytes.iter().map(|b| cp1252(*b)).collect(),
        Charset::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        Charset::Utf16Be | Charset::Utf16Le => {
            let units = bytes.chunks(2).map(|c| match (charset, c) {
                (Charset::Utf16Be, [a, b]) => u16::from_be_bytes([*a, *b]),
                (_, [a, b]) => u16::from_le_bytes([*a, *b]),
                _ => 0xfffd,
            });
            char::decode_utf16(units).map(|c| c.unwrap_or('\u{fffd}')).collect()
        }
        Charset::Utf32Be => bytes
            .chunks(4)
            .map(|c| {
                <[u8; 4]>::try_from(c)
                    .ok()
                    .and_then(|c| char::from_u32(u32::from_be_bytes(c)))
                    .unwrap_or('\u{fffd}')
            })
            .collect(),
        // No BOM sniffing: the bytes are in the column's character set, whatever they start with.
        Charset::Legacy(legacy) => legacy.decode(bytes),
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

    /// MySQL's binary JSON of `depth` arrays, each holding the next (the innermost empty).
    fn nested_arrays(depth: usize) -> Vec<u8> {
        fn data(depth: usize) -> Vec<u8> {
            if depth == 0 {
                return vec![0, 0, 4, 0]; // no elements, 4 bytes
            }
            let child = data(depth - 1);
            let size = u16::try_from(7 + child.len()).unwrap().to_le_bytes();
            // One element: a small array (type 2) at offset 7, after this header and entry.
            let mut out = vec![1, 0, size[0], size[1], 2, 7, 0];
            out.extend(child);
            out
        }
        let mut value = vec![2];
        value.extend(data(depth));
        value
    }

    #[test]
    fn binary_json_nests_as_deep_as_mysql_allows_and_no_deeper() {
        use mysql_common::binlog::jsonb::Value as Jsonb;
        let parse = |bytes: &[u8]| jsonb_to_json(&mysql_common::io::ParseBuf(bytes).parse::<Jsonb<'_>>(()).unwrap());
        let mut expected = Json::Array(vec![]);
        for _ in 0..100 {
            expected = Json::Array(vec![expected]);
        }
        assert_eq!(parse(&nested_arrays(100)), expected);
        assert_eq!(parse(&nested_arrays(MAX_JSONB_DEPTH + 50)), Json::Null, "too deep: null, not a stack overflow");
    }

    /// MySQL's binary DECIMAL (`decimal2bin`): groups of nine digits in four
    /// bytes, the partial groups at either end in as few bytes as they need,
    /// all bytes inverted when negative, then the first byte's top bit flipped.
    fn decimal_bin(text: &str, precision: usize, scale: usize) -> Vec<u8> {
        const BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
        let (negative, digits) = text.strip_prefix('-').map_or((false, text), |d| (true, d));
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let int = format!("{int:0>width$}", width = precision - scale);
        let frac = format!("{frac:0<scale$}");
        let mut out = Vec::new();
        let mut group = |digits: &str| {
            let n: u32 = digits.parse().unwrap();
            out.extend_from_slice(&n.to_be_bytes()[4 - BYTES[digits.len()]..]);
        };
        let lead = int.len() % 9;
        if lead > 0 {
            group(&int[..lead]);
        }
        for chunk in int.as_bytes()[lead..].chunks(9).chain(frac.as_bytes().chunks(9)) {
            group(std::str::from_utf8(chunk).unwrap());
        }
        if negative {
            out.iter_mut().for_each(|b| *b = !*b);
        }
        out[0] ^= 0x80;
        out
    }

    /// A DECIMAL as MySQL stores it inside binary JSON: an opaque value of
    /// type NEWDECIMAL (246) holding precision, scale and the binary form.
    fn opaque_decimal(text: &str, precision: usize, scale: usize) -> Vec<u8> {
        let mut data = vec![precision as u8, scale as u8];
        data.extend(decimal_bin(text, precision, scale));
        let mut out = vec![246, data.len() as u8];
        out.extend(data);
        out
    }

    #[test]
    fn numbers_in_json_text_keep_their_text() {
        // MariaDB's JSON columns are text: `SELECT` returns each number as
        // written. Its digits stay; only an exponent is spelt `e+N` / `e-N`.
        let text = r#"{"b": [1e400, -0, 1.0, -0.0, 1E+29, 2e-7, 18446744073709551616], "a": 123456789012345678901234567890.000000000000000000001}"#;
        let json = v(Value::Bytes(text.as_bytes().to_vec()), ColumnKind::Json);
        assert_eq!(
            json.to_string(),
            r#"{"a":123456789012345678901234567890.000000000000000000001,"b":[1e+400,-0,1.0,-0.0,1e+29,2e-7,18446744073709551616]}"#
        );
        // Numbers compare by their text: what the server returns differs.
        assert_ne!(v(Value::Bytes(b"1.0".to_vec()), ColumnKind::Json), v(Value::Bytes(b"1".to_vec()), ColumnKind::Json));
        assert_eq!(v(Value::Bytes(b"[7]".to_vec()), ColumnKind::Json), serde_json::json!([7]));
    }

    #[test]
    fn decimals_inside_binary_json_are_numbers_with_every_digit() {
        use mysql_common::binlog::jsonb::Value as Jsonb;
        // MySQL's own example (decimal.c): 1234567890.1234 as DECIMAL(14,4).
        assert_eq!(decimal_bin("1234567890.1234", 14, 4), [0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2]);
        assert_eq!(decimal_bin("-1234567890.1234", 14, 4), [0x7E, 0xF2, 0x04, 0xC7, 0x2D, 0xFB, 0x2D]);
        let parse = |bytes: &[u8]| jsonb_to_json(&mysql_common::io::ParseBuf(bytes).parse::<Jsonb<'_>>(()).unwrap());
        // (value, precision, scale, as MySQL prints it: no leading zeros, `scale` decimals)
        for (text, precision, scale, printed) in [
            ("1234567890.1234", 14, 4, "1234567890.1234"),
            ("-1234567890.1234", 14, 4, "-1234567890.1234"),
            ("9.00", 3, 2, "9.00"),
            ("-0.05", 3, 2, "-0.05"),
            ("0.000000001", 10, 9, "0.000000001"),
            ("100", 10, 0, "100"),
            ("0", 5, 0, "0"),
            ("0.00", 4, 2, "0.00"),
            ("12345678901234567890123456789012345678901234567890123456.123456789", 65, 9, "12345678901234567890123456789012345678901234567890123456.123456789"),
            ("-99999999999999999999999999999999999999999999999999999999999999999", 65, 0, "-99999999999999999999999999999999999999999999999999999999999999999"),
            ("0.12345678901234567890123456789012345678", 39, 38, "0.12345678901234567890123456789012345678"),
            ("123456789012345678901234567890", 30, 0, "123456789012345678901234567890"),
        ] {
            // A scalar document: the opaque type (0x0F), then the value.
            let mut scalar = vec![0x0F];
            scalar.extend(opaque_decimal(text, precision, scale));
            let json = parse(&scalar);
            assert!(json.is_number(), "{text}: {json}");
            assert_eq!(json.to_string(), printed, "{text} as DECIMAL({precision},{scale})");
            // Inside an array, beside an integer: `[<decimal>, 7]`.
            let value = opaque_decimal(text, precision, scale);
            let size = u16::try_from(10 + value.len()).unwrap().to_le_bytes();
            let mut array = vec![0x02, 2, 0, size[0], size[1], 0x0F, 10, 0, 0x05, 7, 0];
            array.extend(value);
            assert_eq!(parse(&array).to_string(), format!("[{printed},7]"), "{text} in an array");
        }
    }

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
        assert_eq!(v(Value::Date(2024, 2, 29, 23, 59, 58, 123456), ColumnKind::DateTime { offset: None }), "2024-02-29T23:59:58.123456");
        assert_eq!(v(Value::Date(2024, 2, 29, 0, 0, 0, 0), ColumnKind::Date), "2024-02-29");
        assert_eq!(v(Value::Date(0, 0, 0, 0, 0, 0, 0), ColumnKind::DateTime { offset: None }), Json::Null);
    }

    #[test]
    fn digits_are_written_as_format_writes_them() {
        for (n, width) in [(0u64, 0), (0, 2), (7, 2), (42, 2), (123, 2), (5, 6), (123456, 6), (u64::MAX, 4), (u64::MAX, 20)] {
            let mut out = Vec::new();
            push_padded(&mut out, n, width);
            assert_eq!(out, format!("{n:0width$}").as_bytes());
        }
        for y in [-12345, -5, 0, 7, 1970, 9999, 12345] {
            let mut out = Vec::new();
            push_date(&mut out, y, 1, 2);
            assert_eq!(out, format!("{y:04}-01-02").as_bytes());
        }
        assert_eq!(v(Value::Date(7, 1, 2, 3, 4, 5, 6), ColumnKind::DateTime { offset: None }), "0007-01-02T03:04:05.000006");
        assert_eq!(v(Value::Time(false, 40, 1, 2, 3, 0), ColumnKind::Time), "961:02:03");
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
        assert_eq!(v(Value::Bytes("héllo 🎉".as_bytes().to_vec()), ColumnKind::Text(Charset::Utf8)), "héllo 🎉");
        assert_eq!(v(Value::Bytes(vec![0x63, 0x61, 0x66, 0xe9, 0x80]), ColumnKind::Text(Charset::Latin1)), "café€");
        assert_eq!(v(Value::Bytes(vec![0xff, 0x00]), ColumnKind::Binary { pad_to: None }), "/wA=");
        assert_eq!(v(Value::Bytes(vec![0xff, b'a']), ColumnKind::Text(Charset::Utf8)), "\u{fffd}a");
        assert_eq!(
            v(Value::Bytes(br#"["a@example.com"]"#.to_vec()), ColumnKind::Json),
            serde_json::json!(["a@example.com"])
        );
    }

    #[test]
    fn floats_unsigned_and_mediumint() {
        assert_eq!(v(Value::Float(1.1), ColumnKind::Float), serde_json::json!(1.1));
        assert_eq!(v(Value::Float(f32::NAN), ColumnKind::Float), Json::Null);
        assert_eq!(v(Value::Int(-1), ColumnKind::Unsigned(8)), 255);
        assert_eq!(v(Value::Int(-1), ColumnKind::Unsigned(64)), serde_json::json!(u64::MAX));
        assert_eq!(v(Value::Int(16777215), ColumnKind::SignedInt24), -1);
        assert_eq!(v(Value::Int(8388607), ColumnKind::SignedInt24), 8388607);
    }

    #[test]
    fn other_charsets_binary_padding_and_geometry() {
        assert_eq!(decode_text(&[0, b'a', 0xd8, 0x34, 0xdd, 0x1e], Charset::Utf16Be), "a𝄞");
        assert_eq!(decode_text(&[b'a', 0], Charset::Utf16Le), "a");
        assert_eq!(decode_text(&[0, 1, 0xd1, 0x1e], Charset::Utf32Be), "𝄞");
        assert_eq!(decode_text(&[0, 0x11, 0, 0], Charset::Utf32Be), "\u{fffd}");
        assert_eq!(Charset::from_collation(8), Some(Charset::Latin1));
        assert_eq!(Charset::from_collation(45), Some(Charset::Utf8));
        assert_eq!(Charset::from_collation(0), None);
        assert_eq!(Charset::from_name("utf16"), Charset::Utf16Be);
        assert_eq!(v(Value::Bytes(vec![1]), ColumnKind::Binary { pad_to: Some(3) }), "AQAA");
        assert_eq!(v(Value::Bytes(vec![0, 0, 0, 0, 1, 2]), ColumnKind::Geometry), "0102", "malformed WKB: hex");
        assert_eq!(v(Value::Bytes(vec![1]), ColumnKind::Geometry), "");
        let mut point = vec![0xe6, 0x10, 0, 0, 1, 1, 0, 0, 0];
        point.extend(1.5f64.to_le_bytes());
        point.extend((-2f64).to_le_bytes());
        assert_eq!(v(Value::Bytes(point.clone()), ColumnKind::Geometry), "SRID=4326;POINT(1.5 -2)");
        point[..4].copy_from_slice(&[0; 4]);
        assert_eq!(v(Value::Bytes(point), ColumnKind::Geometry), "POINT(1.5 -2)");
        let vector: Vec<u8> = [1.5f32, -0.1].iter().flat_map(|f| f.to_le_bytes()).collect();
        assert_eq!(v(Value::Bytes(vector), ColumnKind::Vector), serde_json::json!([1.5, -0.1]));
        assert_eq!(v(Value::Bytes(vec![1, 2, 3]), ColumnKind::Vector), "AQID");
        let offset = Some(Arc::from("+02:00"));
        assert_eq!(v(Value::Date(2024, 1, 2, 3, 4, 5, 0), ColumnKind::DateTime { offset }), "2024-01-02T03:04:05+02:00");
    }

    #[test]
    fn legacy_character_sets_by_name_and_collation() {
        // Bytes as the server stores them (SELECT HEX(col)) and the text they are.
        for (charset, bytes, text) in [
            ("cp1251", &b"\xcf\xf0\xe8\xe2\xe5\xf2"[..], "Привет"),
            ("koi8r", b"\xf0\xd2\xc9\xd7\xc5\xd4", "Привет"),
            ("cp866", b"\x8f\xe0\xa8\xa2\xa5\xe2", "Привет"),
            ("sjis", b"\x93\xfa\x96\x7b\x8c\xea", "日本語"),
            ("cp932", b"\x87\x40", "①"),
            ("ujis", b"\xc6\xfc\xcb\xdc", "日本"),
            ("gbk", b"\xd6\xd0\xce\xc4", "中文"),
            ("gb2312", b"\xd6\xd0\xce\xc4", "中文"),
            ("gb18030", b"\x81\x30\x81\x30", "\u{80}"),
            ("big5", b"\xa4\xa4\xa4\xe5", "中文"),
            ("euckr", b"\xc7\xd1\xb1\xb9", "한국"),
            ("latin2", b"\xa3\xf3d\xbc", "Łódź"),
            ("cp1250", b"\xa3\xf3d\x9f", "Łódź"),
            ("greek", b"\xc5\xeb\xeb\xdc\xe4\xe1", "Ελλάδα"),
            ("hebrew", b"\xf9\xec\xe5\xed", "שלום"),
            ("cp1256", b"\xe3\xd1\xcd\xc8\xc7", "مرحبا"),
            ("latin5", b"\xdd\xfe", "İş"),
            ("latin7", b"\xc0\xe0", "Ąą"),
            ("cp1257", b"\xc0\xe0", "Ąą"),
            ("koi8u", b"\xa4", "є"),
            ("macroman", b"\x8e", "é"),
            ("tis620", b"\xca\xc7\xd1\xca\xb4\xd5", "สวัสดี"),
        ] {
            assert_eq!(decode_text(bytes, Charset::from_name(charset)), text, "{charset}");
            assert_eq!(decode_text(bytes, Charset::from_name(&charset.to_uppercase())), text, "{charset}");
        }
        // No BOM sniffing: cp1251 bytes that look like a UTF-8 BOM stay text.
        assert_eq!(decode_text(b"\xef\xbb\xbfa", Charset::from_name("cp1251")), "п»їa");
        // Invalid sequences become U+FFFD, never an error.
        assert_eq!(decode_text(b"a\x82", Charset::from_name("sjis")), "a\u{fffd}");
        // Collation ids reach the same decoders.
        let legacy = |charset: Option<Charset>| match charset {
            Some(Charset::Legacy(legacy)) => legacy.name,
            other => panic!("{other:?}"),
        };
        assert_eq!(legacy(Charset::from_collation(14)), "cp1251"); // cp1251_bulgarian_ci
        assert_eq!(legacy(Charset::from_collation(13)), "sjis"); // sjis_japanese_ci
        assert_eq!(legacy(Charset::from_collation(28)), "gbk"); // gbk_chinese_ci
        assert_eq!(legacy(Charset::from_collation(9)), "latin2"); // latin2_general_ci
        assert_eq!(legacy(Charset::from_collation(1075)), "cp1251"); // MariaDB cp1251_general_nopad_ci
        assert_eq!(legacy(Charset::from_collation(248)), "gb18030"); // MySQL gb18030_chinese_ci
        assert_eq!(Charset::from_collation(255), Some(Charset::Utf8)); // MySQL utf8mb4_0900_ai_ci
        assert_eq!(Charset::from_collation(2304), Some(Charset::Utf8)); // MariaDB utf8mb4_uca1400_ai_ci
        assert_eq!(Charset::from_collation(2816), Some(Charset::Utf16Be)); // MariaDB utf16_uca1400_ai_ci
        assert_eq!(Charset::from_collation(56), Some(Charset::Utf16Le));
        assert_eq!(Charset::from_collation(9999), Some(Charset::Utf8), "unknown ids: UTF-8");
        // Character sets without a decoder keep the UTF-8 fallback.
        for name in ["swe7", "dec8", "hp8", "keybcs2", "armscii8", "geostd8", "cp850", "cp852", "macce", "ascii", "utf8mb3"] {
            assert_eq!(Charset::from_name(name), Charset::Utf8, "{name}");
        }
        // MySQL's latin1 is Windows-1252, byte for byte as encoding_rs has it.
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode_text(&all, Charset::Latin1), encoding_rs::WINDOWS_1252.decode_without_bom_handling(&all).0);
    }

    #[test]
    fn legacy_character_sets_decode_as_mariadb_converts() {
        let decode = |name: &str, bytes: &[u8]| decode_text(bytes, Charset::from_name(name));
        // issue 18: what MariaDB stores for `〜‖−¢£¬` and `•∼` (its HEX()).
        assert_eq!(decode("sjis", b"\x81\x60\x81\x61\x81\x7c\x81\x91\x81\x92\x81\xca"), "〜‖−¢£¬");
        assert_eq!(decode("ujis", b"\xa1\xc1\xa1\xc2\xa1\xdd\xa1\xf1\xa1\xf2\xa2\xcc"), "〜‖−¢£¬");
        assert_eq!(decode("big5", b"\xa1\x45\xa1\xe3"), "•∼");
        // cp932 is Microsoft's: there 0x8160 is U+FF5E, as in encoding_rs.
        assert_eq!(decode("cp932", b"\x81\x60"), "～");
        // A code the server has no character for: U+FFFD, one for the code
        // (0xC653: encoding_rs would give U+FFFD and `S`).
        assert_eq!(decode("sjis", b"\xf0\x40"), "\u{fffd}");
        assert_eq!(decode("euckr", b"a\xc6\x53b"), "a\u{fffd}b");
        // Three-byte codes (JIS X 0212 rows of the user-defined area).
        assert_eq!(decode("ujis", b"\x8f\xf5\xa1\x8f\xa2\xb7"), "\u{e3ac}~");
        // Corrected codes amid others, at either end, one after another.
        assert_eq!(decode("sjis", b"\x81\x60\x93\xfa\x96\x7bab\x81\x60\x81\x60c\x81\x60"), "〜日本ab〜〜c〜");
        assert_eq!(decode("latin5", b"\x80\xdd\xfe"), "\u{80}İş");
        // A code cut short at the end stays encoding_rs's U+FFFD.
        assert_eq!(decode("sjis", b"\x81\x60\x81"), "〜\u{fffd}");
        // Without a corrected code, the text is encoding_rs's.
        assert_eq!(decode("gbk", b"\xd6\xd0\xce\xc4"), "中文");
    }

    #[test]
    fn legacy_text_decodes_as_its_codes_one_by_one() {
        // Codes of each table's runs (first, last, one past the last), and
        // plain ones, strung together in a fixed pseudo-random order: the text
        // is what its codes give one at a time, wherever a run begins.
        let mut seed = 0x5eed_u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for legacy in &LEGACY {
            let width = |code: u32| if code < 0x100 { 1 } else if code < 0x1_0000 { 2 } else { 3 };
            let mut codes: Vec<u32> = vec![u32::from(b'a'), u32::from(b'~'), u32::from(b'\\')];
            for &(first, last, _) in legacy.corrections {
                codes.extend([first, last, last + 1]);
            }
            codes.retain(|&c| {
                let bytes = &c.to_be_bytes()[4 - width(c)..];
                usize::from(legacy.widths[usize::from(bytes[0])]) == bytes.len() && !decode_text(bytes, Charset::Legacy(legacy)).contains('\u{fffd}')
                    || legacy.corrected(c).is_some()
            });
            for _ in 0..200 {
                let picked: Vec<u32> = (0..1 + next() % 12).map(|_| codes[next() % codes.len()]).collect();
                let bytes: Vec<u8> = picked.iter().flat_map(|&c| c.to_be_bytes()[4 - width(c)..].to_vec()).collect();
                let one_by_one: String = picked.iter().map(|&c| decode_text(&c.to_be_bytes()[4 - width(c)..], Charset::Legacy(legacy))).collect();
                assert_eq!(decode_text(&bytes, Charset::Legacy(legacy)), one_by_one, "{} {bytes:02x?}", legacy.name);
            }
            // Any bytes at all (a corrupt or cut value) decode without a panic,
            // and without a corrected code exactly as encoding_rs does.
            for _ in 0..500 {
                let bytes: Vec<u8> = (0..next() % 24).map(|_| [next() as u8, 0x80 | next() as u8, b'a'][next() % 3]).collect();
                let text = decode_text(&bytes, Charset::Legacy(legacy));
                if text == legacy.encoding.decode_without_bom_handling(&bytes).0 {
                    continue;
                }
                assert!(legacy.corrections.iter().any(|&(first, last, _)| {
                    let width = if last < 0x100 { 1 } else if last < 0x1_0000 { 2 } else { 3 };
                    bytes.windows(width).any(|w| (first..=last).contains(&w.iter().fold(0, |n, b| n << 8 | u32::from(*b))))
                }), "{} {bytes:02x?}: {text:?}", legacy.name);
            }
        }
    }

    #[test]
    fn json_paths_and_partial_updates() {
        assert_eq!(
            parse_json_path(r#"$.a[2]."b c".d"#),
            Some(vec![PathStep::Key("a".into()), PathStep::Index(2), PathStep::Key("b c".into()), PathStep::Key("d".into())])
        );
        assert_eq!(parse_json_path("$[*]"), None);
        assert_eq!(parse_json_path("a"), None);
        let mut doc = serde_json::json!({"age": 24, "tags": ["a", "c"], "x": {"y": 1}});
        apply_json_diff(&mut doc, JsonDiffOperation::REPLACE, "$.age", Some(serde_json::json!(25))).unwrap();
        apply_json_diff(&mut doc, JsonDiffOperation::INSERT, "$.tags[1]", Some(serde_json::json!("b"))).unwrap();
        apply_json_diff(&mut doc, JsonDiffOperation::REMOVE, "$.x.y", None).unwrap();
        apply_json_diff(&mut doc, JsonDiffOperation::INSERT, "$.new", Some(serde_json::json!(null))).unwrap();
        assert_eq!(doc, serde_json::json!({"age": 25, "tags": ["a", "b", "c"], "x": {}, "new": null}));
        let err = apply_json_diff(&mut doc, JsonDiffOperation::REPLACE, "$.missing.deep", Some(serde_json::json!(1))).unwrap_err();
        assert_eq!(err.reason, "missing key");
        assert!(apply_json_diff(&mut doc, JsonDiffOperation::REMOVE, "$.tags[9]", None).is_err());
        apply_json_diff(&mut doc, JsonDiffOperation::REPLACE, "$", Some(serde_json::json!([1]))).unwrap();
        assert_eq!(doc, serde_json::json!([1]));
    }
}
