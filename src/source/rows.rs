//! Row images: the values of a rows event's rows, read as JSON.
//!
//! mysql_common reads a row by re-deriving every column's type, metadata and
//! signedness from the table map, per row, and copies every string. For a
//! table a rule reads, the decoder derives that once per table map
//! (`TablePlan`, `column_plans`) and reads the rows itself
//! (`FastRows`), borrowing strings from the event and skipping the columns
//! no rule reads; should the table map's metadata not parse, mysql_common's
//! own row reader is used and reports the problem row by row. A `Layout`
//! names each column of an image and says how its value becomes JSON.
//! `EventImages` walks one rows event: (before, after) per row.

use std::sync::{Arc, OnceLock};

use mysql_common::binlog::events::{OptionalMetaExtractor, OptionalMetadataField, RowsEventData, TableMapEvent};
use mysql_common::binlog::row::BinlogRow;
use mysql_common::binlog::value::BinlogValue;
use mysql_common::constants::ColumnType;
use mysql_common::io::ParseBuf;
use mysql_common::proto::MySerialize;
use serde_json::Value as Json;

use super::decoder::{Columns, DecodeError, Position};
use super::guards::variant_lists;
use super::schema::{ColumnInfo, TableSchema};
use super::value::{self, Charset, ColumnKind};
use crate::config::Operation;

/// One row image: column name -> value, in table order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowImage {
    pub columns: Vec<(Arc<str>, Json)>,
}

impl RowImage {
    pub fn get(&self, column: &str) -> Option<&Json> {
        self.columns.iter().find(|(name, _)| &**name == column).map(|(_, v)| v)
    }
}

/// Names and JSON kinds of the columns of a rows event's images that some
/// rule reads, with their index in the image; derived once per event.
struct Layout {
    columns: Vec<(usize, Arc<str>, ColumnKind)>,
}

impl Layout {
    /// `columns`: name, type and signedness of each column of the image.
    fn new(
        columns: &[(String, ColumnType, bool)],
        present: &[usize],
        tme: &TableMapEvent<'_>,
        source: &ImageSource<'_>,
        wanted: &dyn Fn(&str, ColumnType) -> bool,
    ) -> Result<Layout, DecodeError> {
        let ImageSource { table, position, schema, datetime_offset, is_mariadb, .. } = *source;
        let has_names = columns.first().is_some_and(|(name, _, _)| !name.starts_with('@'));
        if !has_names {
            let expected = schema.map_or(0, |s| s.columns.len());
            let found = usize::try_from(tme.columns_count()).unwrap_or(0);
            if expected != found {
                return Err(DecodeError::ColumnCountMismatch { table: table.to_string(), position: position.clone(), found, expected });
            }
        }
        let (enums, sets) = enum_and_set_values(tme);
        let collations = column_collations(tme, is_mariadb);
        let (mut enum_i, mut set_i) = (0, 0);
        let mut out = Vec::with_capacity(columns.len());
        for (k, (column_name, column_type, column_unsigned)) in columns.iter().enumerate() {
            // The column's index in the table (the row holds the present ones only).
            let i = present.get(k).copied().unwrap_or(k);
            let name: Arc<str> = if has_names {
                Arc::from(column_name.as_str())
            } else {
                schema.and_then(|s| s.columns.get(i)).map_or_else(|| Arc::from(format!("@{i}")), |c| c.name.clone())
            };
            let info = schema.and_then(|s| s.columns.iter().position(|c| c.name == name).map(|p| (p, &s.columns[p])));
            let unsigned = *column_unsigned
                || info.is_some_and(|(_, c)| c.column_type.to_ascii_lowercase().contains("unsigned"));
            let integer = |bits: u8| if unsigned { ColumnKind::Unsigned(bits) } else { ColumnKind::Integer };
            let kind = match *column_type {
                ColumnType::MYSQL_TYPE_TINY => integer(8),
                ColumnType::MYSQL_TYPE_SHORT => integer(16),
                ColumnType::MYSQL_TYPE_INT24 if unsigned => ColumnKind::Unsigned(24),
                ColumnType::MYSQL_TYPE_INT24 => ColumnKind::SignedInt24,
                ColumnType::MYSQL_TYPE_LONG => integer(32),
                ColumnType::MYSQL_TYPE_LONGLONG => integer(64),
                ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL => ColumnKind::Decimal,
                ColumnType::MYSQL_TYPE_FLOAT | ColumnType::MYSQL_TYPE_DOUBLE => ColumnKind::Float,
                ColumnType::MYSQL_TYPE_YEAR => ColumnKind::Year,
                ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => ColumnKind::Date,
                ColumnType::MYSQL_TYPE_DATETIME | ColumnType::MYSQL_TYPE_DATETIME2 => {
                    ColumnKind::DateTime { offset: datetime_offset.cloned() }
                }
                ColumnType::MYSQL_TYPE_TIMESTAMP | ColumnType::MYSQL_TYPE_TIMESTAMP2 => ColumnKind::Timestamp,
                ColumnType::MYSQL_TYPE_TIME | ColumnType::MYSQL_TYPE_TIME2 => ColumnKind::Time,
                ColumnType::MYSQL_TYPE_BIT => ColumnKind::Bit,
                ColumnType::MYSQL_TYPE_JSON => ColumnKind::Json,
                ColumnType::MYSQL_TYPE_GEOMETRY => ColumnKind::Geometry,
                ColumnType::MYSQL_TYPE_VECTOR => ColumnKind::Vector,
                ColumnType::MYSQL_TYPE_ENUM => {
                    let values = enums.get(enum_i).cloned().or_else(|| info.and_then(|(p, _)| schema?.enum_values(p)));
                    enum_i += 1;
                    ColumnKind::Enum(values.unwrap_or_default().into())
                }
                ColumnType::MYSQL_TYPE_SET => {
                    let values = sets.get(set_i).cloned().or_else(|| info.and_then(|(p, _)| schema?.enum_values(p)));
                    set_i += 1;
                    ColumnKind::Set(values.unwrap_or_default().into())
                }
                column_type @ (ColumnType::MYSQL_TYPE_VARCHAR
                | ColumnType::MYSQL_TYPE_VAR_STRING
                | ColumnType::MYSQL_TYPE_STRING
                | ColumnType::MYSQL_TYPE_TINY_BLOB
                | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
                | ColumnType::MYSQL_TYPE_LONG_BLOB
                | ColumnType::MYSQL_TYPE_BLOB) => {
                    string_kind(column_type, collations.get(i).copied().unwrap_or(0), info.map(|(_, c)| c), tme.get_column_metadata(i))
                }
                _ => ColumnKind::Other,
            };
            if wanted(&name, *column_type) {
                out.push((k, name, kind));
            }
        }
        Ok(Layout { columns: out })
    }

    /// One row image as JSON. Partial JSON updates in an after image are
    /// resolved against `before`; those that cannot be become null and an
    /// entry in `errors`.
    /// Per table column: present in the image but read by no rule.
    fn unread(&self, present: &[usize], count: usize) -> Vec<bool> {
        let mut unread = vec![false; count];
        for &i in present {
            if let Some(u) = unread.get_mut(i) {
                *u = true;
            }
        }
        for (k, _, _) in &self.columns {
            if let Some(u) = present.get(*k).and_then(|&i| unread.get_mut(i)) {
                *u = false;
            }
        }
        unread
    }

    fn image(&self, row: &RawRow<'_>, before: Option<&RowImage>, errors: &mut Vec<value::JsonDiffError>) -> RowImage {
        let columns = self
            .columns
            .iter()
            .map(|(k, name, kind)| {
                let value = match row.value(*k) {
                    None => serde_json::Value::Null,
                    Some(RawValue::Bytes(bytes)) => value::bytes_to_json(bytes, kind),
                    Some(RawValue::Timestamp(secs, micros)) => timestamp_json(secs, micros, kind),
                    Some(RawValue::Binlog(BinlogValue::JsonDiff(diffs))) => {
                        let old = before.and_then(|b| b.get(name));
                        match old {
                            Some(old) => value::apply_json_diffs(old, diffs).unwrap_or_else(|e| {
                                errors.push(e);
                                serde_json::Value::Null
                            }),
                            None => {
                                errors.push(value::JsonDiffError { path: "$".into(), reason: "no before image" });
                                serde_json::Value::Null
                            }
                        }
                    }
                    Some(RawValue::Binlog(v)) => value::to_json(v, kind),
                };
                (name.clone(), value)
            })
            .collect();
        RowImage { columns }
    }
}

/// The string values of each ENUM and each SET column, from the table
/// map's optional metadata (empty when it has none).
fn enum_and_set_values(tme: &TableMapEvent<'_>) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let (mut enums, mut sets) = (Vec::new(), Vec::new());
    for field in tme.iter_optional_meta().flatten() {
        let mut raw = Vec::new();
        match field {
            OptionalMetadataField::EnumStrValue(values) => {
                values.serialize(&mut raw);
                enums = variant_lists(&raw);
            }
            OptionalMetadataField::SetStrValue(values) => {
                values.serialize(&mut raw);
                sets = variant_lists(&raw);
            }
            _ => {}
        }
    }
    (enums, sets)
}

/// How a CHAR, VARCHAR, TEXT or BLOB column becomes JSON: a JSON document
/// (MariaDB's JSON is LONGTEXT), bytes (binary collation), or text in its
/// character set (from its collation, else from information_schema).
fn string_kind(column_type: ColumnType, collation: u16, info: Option<&ColumnInfo>, meta: Option<&[u8]>) -> ColumnKind {
    if info.is_some_and(|c| c.is_json) {
        return ColumnKind::Json;
    }
    let binary_by_schema =
        info.is_some_and(|c| matches!(c.data_type.as_str(), "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"));
    if collation == value::BINARY_CHARSET || (collation == 0 && binary_by_schema) {
        // BINARY(n): the binlog drops trailing zero bytes, SELECT shows them.
        let pad_to = (column_type == ColumnType::MYSQL_TYPE_STRING).then(|| meta.and_then(string_length)).flatten();
        return ColumnKind::Binary { pad_to };
    }
    let charset = Charset::from_collation(collation)
        .or_else(|| info.and_then(|c| c.charset.as_deref()).map(Charset::from_name))
        .unwrap_or(Charset::Utf8);
    ColumnKind::Text(charset)
}

/// One row image's values: read here from the rows event's bytes
/// ([`FastRows`]), or by mysql_common's own row reader.
enum RawRow<'a> {
    Fast(Vec<FastValue<'a>>),
    Slow(BinlogRow),
}

/// A value as [`read_image`] reads it: strings and TIMESTAMPs borrowed or
/// read from the event's bytes, where mysql_common copies the one and turns
/// the other into text (per value, a tenth of catch-up decoding); the rest
/// as mysql_common reads it.
enum FastValue<'a> {
    Binlog(BinlogValue<'a>),
    Bytes(&'a [u8]),
    Timestamp(i32, i32),
}

/// A value of either kind of row.
enum RawValue<'r> {
    Binlog(&'r BinlogValue<'r>),
    /// VARCHAR, TEXT, BLOB: mysql_common's `Value::Bytes`, not copied.
    Bytes(&'r [u8]),
    /// TIMESTAMP2 seconds and microseconds (mysql_common: `"secs[.micros]"`).
    Timestamp(i32, i32),
}

impl RawRow<'_> {
    /// The value of the image's `k`th column.
    fn value(&self, k: usize) -> Option<RawValue<'_>> {
        match self {
            RawRow::Fast(values) => values.get(k).map(|v| match v {
                FastValue::Binlog(v) => RawValue::Binlog(v),
                FastValue::Bytes(bytes) => RawValue::Bytes(bytes),
                FastValue::Timestamp(secs, micros) => RawValue::Timestamp(*secs, *micros),
            }),
            RawRow::Slow(row) => row.as_ref(k).map(RawValue::Binlog),
        }
    }
}

/// A TIMESTAMP2 value as JSON: what [`value::to_json`] makes of the text
/// mysql_common gives it (`"secs"`, or `"secs.micros"` with six digits).
fn timestamp_json(secs: i32, micros: i32, kind: &ColumnKind) -> serde_json::Value {
    match (kind, u32::try_from(micros)) {
        (ColumnKind::Timestamp, Ok(micros)) => value::timestamp_json(i64::from(secs), micros),
        _ => {
            let text = if micros == 0 { secs.to_string() } else { format!("{secs}.{micros:06}") };
            value::bytes_to_json(text.as_bytes(), kind)
        }
    }
}

/// What the decoder derives from a read table's table map,
/// kept while the table map stays the same: every transaction repeats it,
/// and deriving it again for every rows event cost a tenth of catch-up decoding.
pub(crate) struct TablePlan {
    /// The table map this was derived from.
    tme: TableMapEvent<'static>,
    /// Columns of the rows events it was derived for.
    num_columns: u64,
    columns: Vec<ColumnPlan>,
    /// The layout of an image of every column (not for partial JSON updates),
    /// once built.
    full_layout: OnceLock<Arc<Layout>>,
}

impl TablePlan {
    /// Derives the plan of a table map. Fails where mysql_common's row reader would.
    pub(crate) fn derive(tme: &TableMapEvent<'static>, num_columns: u64) -> std::io::Result<TablePlan> {
        let columns = column_plans(tme, num_columns)?;
        Ok(TablePlan { tme: tme.clone(), num_columns, columns, full_layout: OnceLock::new() })
    }

    /// Whether this plan was derived from this table map.
    pub(crate) fn fits(&self, tme: &TableMapEvent<'_>, num_columns: u64) -> bool {
        self.num_columns == num_columns && self.tme == *tme
    }
}

/// Where a rows event's rows come from and what of them to read.
pub(crate) struct ImageSource<'a> {
    pub table: &'a str,
    pub position: &'a Position,
    /// The table's columns from information_schema (names when the binlog has none).
    pub schema: Option<&'a TableSchema>,
    pub reads: &'a Columns,
    /// DATETIME values get this UTC offset (`[source] time_zone`).
    pub datetime_offset: Option<&'a Arc<str>>,
    pub is_mariadb: bool,
}

/// One row's images (before, after) and the partial JSON updates that did not apply.
pub(crate) type Images = (Option<RowImage>, Option<RowImage>, Vec<value::JsonDiffError>);

/// The rows of one rows event, read into [`RowImage`]s: fast (borrowed,
/// unread columns skipped) when the table map's plan derived, else through
/// mysql_common's row reader.
pub(crate) struct EventImages<'a> {
    source: ImageSource<'a>,
    tme: &'a TableMapEvent<'static>,
    plan: Option<&'a TablePlan>,
    operation: Operation,
    partial_update: bool,
    /// Columns of the table.
    count: usize,
    /// Table indexes of the columns each image holds.
    before_columns: Vec<usize>,
    after_columns: Vec<usize>,
    before_layout: Option<Arc<Layout>>,
    after_layout: Option<Arc<Layout>>,
    fast: Option<FastRows<'a>>,
    slow: Option<mysql_common::binlog::events::RowsEventRows<'a>>,
}

impl<'a> EventImages<'a> {
    /// Refuses images of a subset of the columns (MINIMAL, NOBLOB): they would
    /// deliver wrong nulls and miss changes.
    pub(crate) fn new(
        rows: &'a RowsEventData<'_>,
        tme: &'a TableMapEvent<'static>,
        plan: Option<&'a TablePlan>,
        source: ImageSource<'a>,
    ) -> Result<EventImages<'a>, DecodeError> {
        let operation = match rows {
            RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => Operation::Insert,
            RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => Operation::Delete,
            _ => Operation::Update,
        };
        // Images may hold a subset of the columns (partial JSON updates,
        // MINIMAL images): one layout per image, from its column bitmap.
        let count = usize::try_from(tme.columns_count()).unwrap_or(0);
        // (A bitmap of every column, the usual case, needs no walk bit by bit.)
        let before_columns =
            present_columns(rows.columns_before_image().filter(|b| !(b.len() == count && b.all())).map(|b| b.iter_ones()), count);
        let after_columns =
            present_columns(rows.columns_after_image().filter(|b| !(b.len() == count && b.all())).map(|b| b.iter_ones()), count);
        let images = match operation {
            Operation::Insert => [&after_columns, &after_columns],
            Operation::Delete => [&before_columns, &before_columns],
            Operation::Update => [&before_columns, &after_columns],
        };
        if let Some(found) = images.iter().map(|c| c.len()).find(|&n| n < count) {
            return Err(DecodeError::PartialRowImage {
                table: source.table.to_string(),
                position: source.position.clone(),
                found,
                expected: count,
            });
        }
        let fast = plan.map(|plan| FastRows::new(rows, tme, &plan.columns));
        let slow = if fast.is_none() { Some(rows.rows(tme)) } else { None };
        Ok(EventImages {
            source,
            tme,
            plan,
            operation,
            partial_update: matches!(rows, RowsEventData::PartialUpdateRowsEvent(_)),
            count,
            before_columns,
            after_columns,
            before_layout: None,
            after_layout: None,
            fast,
            slow,
        })
    }

    pub(crate) fn operation(&self) -> Operation {
        self.operation
    }

    /// The next row's images; Ok(None) after the last row. Inner Err: this
    /// row cannot be read (the next may). Outer Err: the layout does not fit.
    pub(crate) fn next_row(&mut self) -> Result<Option<std::io::Result<Images>>, DecodeError> {
        let row = match (&mut self.fast, &mut self.slow) {
            (Some(fast), _) => fast.next().map(|r| r.map(|(b, a)| (b.map(RawRow::Fast), a.map(RawRow::Fast)))),
            (None, Some(slow)) => slow.next().map(|r| r.map(|(b, a)| (b.map(RawRow::Slow), a.map(RawRow::Slow)))),
            (None, None) => None,
        };
        let (before, after) = match row {
            None => return Ok(None),
            Some(Err(e)) => return Ok(Some(Err(e))),
            Some(Ok(pair)) => pair,
        };
        let mut diff_errors = Vec::new();
        let before = self.image(before, Side::Before, None, &mut diff_errors)?;
        let after = self.image(after, Side::After, before.as_ref(), &mut diff_errors)?;
        if let Some(fast) = &mut self.fast {
            // The next rows' values no rule reads need not be copied out.
            if fast.unread_before.is_none() {
                fast.unread_before = self.before_layout.as_ref().map(|l| l.unread(&self.before_columns, self.count));
            }
            if fast.unread_after.is_none() {
                fast.unread_after = self.after_layout.as_ref().map(|l| l.unread(&self.after_columns, self.count));
            }
        }
        Ok(Some(Ok((before, after, diff_errors))))
    }

    /// One image of a row as JSON, through its side's layout (built at the
    /// first row that needs it; for images of every column, once per table map).
    fn image(
        &mut self,
        row: Option<RawRow<'_>>,
        side: Side,
        old: Option<&RowImage>,
        diff_errors: &mut Vec<value::JsonDiffError>,
    ) -> Result<Option<RowImage>, DecodeError> {
        let Some(row) = row else { return Ok(None) };
        let (layout, columns) = match side {
            Side::Before => (&self.before_layout, &self.before_columns),
            Side::After => (&self.after_layout, &self.after_columns),
        };
        if let Some(layout) = layout {
            return Ok(Some(layout.image(&row, old, diff_errors)));
        }
        // The layout of an image of every column (before or after) is
        // the same for every rows event of the same table map.
        let full = match (&row, self.plan) {
            (RawRow::Fast(_), Some(plan)) if columns.len() == self.count && !self.partial_update => Some(&plan.full_layout),
            _ => None,
        };
        let layout = match full.and_then(OnceLock::get) {
            Some(layout) => layout.clone(),
            None => {
                let built = Arc::new(self.build_layout(&row, columns)?);
                if let Some(cell) = full {
                    let _ = cell.set(built.clone());
                }
                built
            }
        };
        let image = layout.image(&row, old, diff_errors);
        match side {
            Side::Before => self.before_layout = Some(layout),
            Side::After => self.after_layout = Some(layout),
        }
        Ok(Some(image))
    }

    /// The layout of an image holding `columns`, from the name, type and
    /// signedness of each. Only the columns read become JSON; partial JSON
    /// updates resolve (or report) every JSON column.
    fn build_layout(&self, row: &RawRow<'_>, columns: &[usize]) -> Result<Layout, DecodeError> {
        let described: Vec<(String, ColumnType, bool)> = match (row, self.plan) {
            (RawRow::Fast(_), Some(plan)) => {
                columns.iter().filter_map(|&i| plan.columns.get(i)).map(|p| (p.name.clone(), p.column_type, p.unsigned)).collect()
            }
            (RawRow::Slow(row), _) => row
                .columns_ref()
                .iter()
                .map(|c| {
                    let unsigned = c.flags().contains(mysql_common::constants::ColumnFlags::UNSIGNED_FLAG);
                    (c.name_str().into_owned(), c.column_type(), unsigned)
                })
                .collect(),
            (RawRow::Fast(_), None) => Vec::new(), // fast rows come with plans
        };
        let (reads, partial_update) = (self.source.reads, self.partial_update);
        let wanted = |name: &str, column_type: ColumnType| {
            reads.contains(name) || (partial_update && column_type == ColumnType::MYSQL_TYPE_JSON)
        };
        Layout::new(&described, columns, self.tme, &self.source, &wanted)
    }
}

#[derive(Clone, Copy)]
enum Side {
    Before,
    After,
}

/// How to read one column of a table's rows, from the table map.
struct ColumnPlan {
    column_type: ColumnType,
    meta: Vec<u8>,
    unsigned: bool,
    /// From the table map's metadata, else `@<index>`.
    name: String,
}

/// Per column of a table map: what mysql_common's row reader
/// (`BinlogRow::deserialize`) derives from the table map for every row,
/// derived once, failing where it would.
fn column_plans(tme: &TableMapEvent<'_>, num_columns: u64) -> std::io::Result<Vec<ColumnPlan>> {
    use std::io::{Error, ErrorKind};
    let extractor = OptionalMetaExtractor::new(tme.iter_optional_meta())?;
    let mut signedness = extractor.iter_signedness();
    let mut charsets = extractor.iter_charset();
    let mut enum_and_set_charsets = extractor.iter_enum_and_set_charset();
    let mut primary_key = extractor.iter_primary_key();
    let mut names = extractor.iter_column_name();
    let mut plans = Vec::with_capacity(usize::try_from(num_columns).unwrap_or(0));
    for i in 0..usize::try_from(num_columns).unwrap_or(0) {
        let column_type = match tme.get_column_type(i) {
            Ok(Some(t)) => t,
            Ok(None) => return Err(Error::new(ErrorKind::InvalidData, "No column type")),
            Err(e) => return Err(Error::new(ErrorKind::InvalidData, e)),
        };
        let meta = tme.get_column_metadata(i).unwrap_or(&[]).to_vec();
        let unsigned = column_type.is_numeric_type().then(|| signedness.next()).flatten().unwrap_or_default();
        if column_type.is_character_type() {
            charsets.next().transpose()?;
        } else if column_type.is_enum_or_set_type() {
            enum_and_set_charsets.next().transpose()?;
        }
        let name = names.next().transpose()?.map_or_else(|| format!("@{i}"), |n| String::from_utf8_lossy(n.name_raw()).into_owned());
        primary_key.next_if(|next| next.is_err() || next.as_ref().ok() == Some(&(i as u64))).transpose()?;
        plans.push(ColumnPlan { column_type, meta, unsigned, name });
    }
    Ok(plans)
}

/// The rows of a rows event, read as mysql_common's `RowsEventRows` reads
/// them but with the table map's facts derived once ([`column_plans`]) and
/// values borrowed from the event rather than copied.
struct FastRows<'a> {
    plans: &'a [ColumnPlan],
    buf: ParseBuf<'a>,
    /// Which columns each image holds (from the event's column bitmaps).
    before: Option<Vec<bool>>,
    after: Option<Vec<bool>>,
    /// Per table column: no rule reads it, so text and blob values are
    /// skipped, not copied (see [`Layout::unread`]); their value reads NULL.
    unread_before: Option<Vec<bool>>,
    unread_after: Option<Vec<bool>>,
    /// A MySQL PARTIAL_UPDATE_ROWS_EVENT: after images start with value options.
    shared_after: bool,
    json_columns: usize,
}

impl<'a> FastRows<'a> {
    fn new(rows: &'a RowsEventData<'_>, tme: &'a TableMapEvent<'_>, plans: &'a [ColumnPlan]) -> FastRows<'a> {
        FastRows {
            plans,
            buf: ParseBuf(rows.rows_data()),
            before: rows.columns_before_image().map(|bits| bits.iter().map(|b| *b).collect()),
            after: rows.columns_after_image().map(|bits| bits.iter().map(|b| *b).collect()),
            unread_before: None,
            unread_after: None,
            shared_after: matches!(rows, RowsEventData::PartialUpdateRowsEvent(_)),
            json_columns: tme.json_column_count(),
        }
    }
}

impl<'a> Iterator for FastRows<'a> {
    type Item = std::io::Result<(Option<Vec<FastValue<'a>>>, Option<Vec<FastValue<'a>>>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let left = self.buf.len();
        let row = match self.read_row() {
            // A row takes at least a byte (its null bitmap): one of none comes of
            // a corrupt column bitmap, and reading on would never end.
            Ok(_) if self.buf.len() >= left => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "a row of no bytes (corrupt column bitmap)")),
            row => row,
        };
        if row.is_err() {
            // Where the next row starts is unknown after a bad one.
            self.buf = ParseBuf(b"");
        }
        Some(row)
    }
}

impl<'a> FastRows<'a> {
    #[allow(clippy::type_complexity)]
    fn read_row(&mut self) -> std::io::Result<(Option<Vec<FastValue<'a>>>, Option<Vec<FastValue<'a>>>)> {
        let before = match &self.before {
            Some(columns) => Some(read_image(self.plans, &mut self.buf, columns, self.unread_before.as_deref(), false, self.json_columns)?),
            None => None,
        };
        let after = match &self.after {
            Some(columns) => {
                Some(read_image(self.plans, &mut self.buf, columns, self.unread_after.as_deref(), self.shared_after, self.json_columns)?)
            }
            None => None,
        };
        Ok((before, after))
    }
}

/// One row image (`BinlogRow::deserialize`'s steps): value options and the
/// partial-JSON bitmap (shared image only), the null bitmap, then the value
/// of each present column.
fn read_image<'a>(
    plans: &'a [ColumnPlan],
    buf: &mut ParseBuf<'a>,
    columns: &[bool],
    unread: Option<&[bool]>,
    shared_image: bool,
    json_columns: usize,
) -> std::io::Result<Vec<FastValue<'a>>> {
    let eof = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "can't parse: buf doesn't have enough data");
    let partial_bits: Option<&[u8]> = if shared_image {
        let options = buf.checked_eat_lenenc_int().ok_or_else(eof)?;
        if options & PARTIAL_JSON_UPDATES != 0 {
            Some(buf.checked_eat(json_columns.div_ceil(8)).ok_or_else(eof)?)
        } else {
            None
        }
    } else {
        None
    };
    let present = columns.iter().filter(|&&b| b).count();
    let nulls = buf.checked_eat(present.div_ceil(8)).ok_or_else(eof)?;
    let bit = |bytes: &[u8], k: usize| bytes.get(k / 8).map(|b| (b >> (k % 8)) & 1 == 1);
    let mut values = Vec::with_capacity(present);
    let (mut image_index, mut json_index) = (0, 0);
    for (i, plan) in plans.iter().enumerate() {
        let is_partial = plan.column_type == ColumnType::MYSQL_TYPE_JSON
            && partial_bits.is_some_and(|bits| {
                json_index += 1;
                json_index <= json_columns && bit(bits, json_index - 1).unwrap_or(false)
            });
        if columns.get(i).copied().unwrap_or(false) {
            let null = bit(nulls, image_index).unwrap_or(true);
            let value = if null {
                None
            } else if let Some(bytes) = read_string(plan, buf)? {
                // A value no rule reads reads NULL.
                let unread = unread.is_some_and(|u| u.get(i).copied().unwrap_or(false));
                (!unread).then_some(FastValue::Bytes(bytes))
            } else if plan.column_type == ColumnType::MYSQL_TYPE_TIMESTAMP2 {
                let (secs, micros) = read_timestamp2(plan, buf).ok_or_else(eof)?;
                Some(FastValue::Timestamp(secs, micros))
            } else {
                Some(FastValue::Binlog(buf.parse((plan.column_type, plan.meta.as_slice(), plan.unsigned, is_partial))?))
            };
            values.push(value.unwrap_or(FastValue::Binlog(BinlogValue::Value(mysql_common::value::Value::NULL))));
            image_index += 1;
        }
    }
    Ok(values)
}

/// Reads a VARCHAR, TEXT or BLOB value as mysql_common would (length
/// prefix per the column's metadata, then the bytes), without copying it.
/// None (nothing consumed): not such a column; read it otherwise.
fn read_string<'a>(plan: &ColumnPlan, buf: &mut ParseBuf<'a>) -> std::io::Result<Option<&'a [u8]>> {
    let eof = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "can't parse: buf doesn't have enough data");
    let length = match plan.column_type {
        ColumnType::MYSQL_TYPE_TINY_BLOB
        | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
        | ColumnType::MYSQL_TYPE_LONG_BLOB
        | ColumnType::MYSQL_TYPE_BLOB => match plan.meta.first() {
            Some(1) => buf.checked_eat_u8().map(usize::from),
            Some(2) => buf.checked_eat_u16_le().map(usize::from),
            Some(3) => buf.checked_eat_u24_le().map(|n| n as usize),
            Some(4) => buf.checked_eat_u32_le().map(|n| n as usize),
            _ => return Ok(None),
        },
        ColumnType::MYSQL_TYPE_VARCHAR | ColumnType::MYSQL_TYPE_VAR_STRING => match plan.meta.as_slice() {
            [low, high, ..] if (u16::from(*low) | (u16::from(*high) << 8)) < 256 => buf.checked_eat_u8().map(usize::from),
            [_, _, ..] => buf.checked_eat_u16_le().map(usize::from),
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    buf.checked_eat(length.ok_or_else(eof)?).ok_or_else(eof).map(Some)
}

/// A TIMESTAMP2 value as mysql_common reads it (`my_timestamp_from_binary`):
/// big-endian seconds, then a fraction of as many bytes as its precision needs.
fn read_timestamp2(plan: &ColumnPlan, buf: &mut ParseBuf<'_>) -> Option<(i32, i32)> {
    let secs = u32::from_be_bytes(buf.checked_eat(4)?.try_into().ok()?) as i32;
    let micros = match plan.meta.first().copied().unwrap_or(0) {
        1 | 2 => i32::from(buf.checked_eat_u8()? as i8) * 10000,
        3 | 4 => i32::from(i16::from_be_bytes(buf.checked_eat(2)?.try_into().ok()?)) * 100,
        5 | 6 => {
            let b = buf.checked_eat(3)?;
            // Sign-extended 24 bits.
            i32::from_be_bytes([b[0], b[0], b[1], b[2]]) << 8 >> 8
        }
        _ => 0,
    };
    Some((secs, micros))
}

/// `binlog_row_value_options` bit of partial JSON updates.
const PARTIAL_JSON_UPDATES: u64 = 1;

/// The table indexes of an image's columns, from its bitmap (all when none).
fn present_columns(ones: Option<impl Iterator<Item = usize>>, count: usize) -> Vec<usize> {
    match ones {
        Some(ones) => ones.filter(|&i| i < count).collect(),
        None => (0..count).collect(),
    }
}

/// The collation id of every column of a table map (0: not a text column or
/// not logged). mysql_common assigns the logged charsets to CHAR, VARCHAR and
/// BLOB columns only; MySQL 9 also logs one (binary) for VECTOR columns and
/// MariaDB for GEOMETRY columns, which would shift every text column after one.
fn column_collations(tme: &TableMapEvent<'_>, is_mariadb: bool) -> Vec<u16> {
    let count = usize::try_from(tme.columns_count()).unwrap_or(0);
    let mut out = vec![0u16; count];
    let text_columns: Vec<usize> = (0..count)
        .filter(|&i| match tme.get_column_type(i) {
            Ok(Some(t)) => {
                t.is_character_type() || t == ColumnType::MYSQL_TYPE_VECTOR || (is_mariadb && t == ColumnType::MYSQL_TYPE_GEOMETRY)
            }
            _ => false,
        })
        .collect();
    for field in tme.iter_optional_meta().flatten() {
        match field {
            OptionalMetadataField::DefaultCharset(charsets) => {
                for &i in &text_columns {
                    out[i] = charsets.default_charset();
                }
                for other in charsets.iter_non_default().flatten() {
                    if let Some(&i) = usize::try_from(other.column_index()).ok().and_then(|k| text_columns.get(k)) {
                        out[i] = other.charset();
                    }
                }
            }
            OptionalMetadataField::ColumnCharset(charsets) => {
                for (&i, charset) in text_columns.iter().zip(charsets.iter_charsets()) {
                    out[i] = charset.unwrap_or(0);
                }
            }
            _ => {}
        }
    }
    out
}

/// The declared byte length of a CHAR/BINARY column from its table-map
/// metadata (as mysql_common reads it).
fn string_length(meta: &[u8]) -> Option<usize> {
    let (byte0, byte1) = (usize::from(*meta.first()?), usize::from(*meta.get(1)?));
    if byte0 == 0 {
        return None;
    }
    Some(if (byte0 & 0x30) != 0x30 { byte1 | (((byte0 & 0x30) ^ 0x30) << 4) } else { byte1 })
}



#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_timestamps_read_as_mysql_common_reads_them() {
        let plan = |column_type, meta: &[u8]| ColumnPlan { column_type, meta: meta.to_vec(), unsigned: false, name: String::new() };
        for dec in 0..=6u8 {
            for bytes in [[0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 9], [0x65, 0x53, 0xf1, 0x00, 0x0f, 0x42, 0x3f, 9], [0xff, 0xff, 0xff, 0xff, 0x80, 0, 1, 9], [0; 8]] {
                let plan = plan(ColumnType::MYSQL_TYPE_TIMESTAMP2, &[dec]);
                let (mut ours, mut theirs) = (ParseBuf(&bytes), ParseBuf(&bytes));
                let (secs, micros) = read_timestamp2(&plan, &mut ours).unwrap();
                let value: BinlogValue<'_> = theirs.parse((plan.column_type, plan.meta.as_slice(), false, false)).unwrap();
                assert_eq!(ours.len(), theirs.len(), "decimals {dec}");
                for kind in [ColumnKind::Timestamp, ColumnKind::Decimal] {
                    assert_eq!(timestamp_json(secs, micros, &kind), value::to_json(&value, &kind), "{bytes:?}, decimals {dec}");
                }
            }
        }
        let long: Vec<u8> = [&[0x2c, 0x01][..], &[b'x'; 300]].concat();
        for (column_type, meta, bytes) in [
            (ColumnType::MYSQL_TYPE_VARCHAR, &[40, 0][..], &b"\x05h\"llo!"[..]),
            (ColumnType::MYSQL_TYPE_VARCHAR, &[0, 2], &long),
            (ColumnType::MYSQL_TYPE_BLOB, &[2], &long),
            (ColumnType::MYSQL_TYPE_BLOB, &[1], &b"\x00"[..]),
        ] {
            let plan = plan(column_type, meta);
            let (mut ours, mut theirs) = (ParseBuf(bytes), ParseBuf(bytes));
            let text = read_string(&plan, &mut ours).unwrap().unwrap();
            let value: BinlogValue<'_> = theirs.parse((column_type, meta, false, false)).unwrap();
            assert_eq!(ours.len(), theirs.len());
            let kind = ColumnKind::Text(Charset::Utf8);
            assert_eq!(value::bytes_to_json(text, &kind), value::to_json(&value, &kind));
        }
        assert_eq!(read_string(&plan(ColumnType::MYSQL_TYPE_LONG, &[]), &mut ParseBuf(&[1, 0, 0, 0])).unwrap(), None);
    }
}
