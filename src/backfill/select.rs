//! A backfill's chunks: rows read with SELECT, turned into the same row
//! images the binlog gives.
//!
//! A chunk is the next rows after a key, in key (primary key) order, of the
//! columns the rules read plus the key, through the binary protocol
//! (prepared statements: typed values, as the binlog has them). The
//! connection reads text as utf8mb4 (the server converts every character
//! set, as the live path decodes it) and times in UTC. Each value becomes
//! JSON through the same conversion as the binlog's values
//! (`source::value`), by a kind derived from information_schema: a row
//! copied by a backfill and the same row inserted live give the same event
//! data (a test compares them for every column type).

use std::sync::Arc;

use mysql_async::prelude::*;
use mysql_common::value::Value;
use serde_json::Value as Json;

use super::filter::{parameter, quoted};
use crate::source::rows::RowImage;
use crate::source::schema::{ColumnInfo, TableSchema};
use crate::source::value::{self, Charset, ColumnKind};

/// How a column's value from a SELECT becomes JSON.
pub fn kind_of(column: &ColumnInfo, datetime_offset: Option<&Arc<str>>) -> ColumnKind {
    let unsigned = column.column_type.to_ascii_lowercase().contains("unsigned");
    let integer = |bits: u8| if unsigned { ColumnKind::Unsigned(bits) } else { ColumnKind::Integer };
    match column.data_type.as_str() {
        "tinyint" => integer(8),
        "smallint" => integer(16),
        "mediumint" => integer(24),
        "int" | "integer" => integer(32),
        "bigint" => integer(64),
        "decimal" | "numeric" => ColumnKind::Decimal,
        "float" | "double" | "real" => ColumnKind::Float,
        "year" => ColumnKind::Year,
        "date" => ColumnKind::Date,
        "datetime" => ColumnKind::DateTime { offset: datetime_offset.cloned() },
        "timestamp" => ColumnKind::Timestamp,
        "time" => ColumnKind::Time,
        "bit" => ColumnKind::Bit,
        "json" => ColumnKind::Json,
        _ if column.is_json => ColumnKind::Json,
        // ENUM and SET come as their text; SET is split into its members below.
        "enum" => ColumnKind::Text(Charset::Utf8),
        "set" => ColumnKind::Set(Arc::from(Vec::new())),
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring" | "multipolygon"
        | "geometrycollection" => ColumnKind::Geometry,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => ColumnKind::Binary { pad_to: None },
        // Text arrives converted to utf8mb4 by the server.
        _ => ColumnKind::Text(Charset::Utf8),
    }
}

/// One selected value as JSON, as the binlog's would be.
pub fn value_json(value: &Value, kind: &ColumnKind) -> Json {
    match (value, kind) {
        // A TIMESTAMP read in UTC: seconds since the epoch, as the binlog has it.
        (Value::Date(y, mo, d, h, mi, s, us), ColumnKind::Timestamp) => {
            if *y == 0 && *mo == 0 && *d == 0 {
                return Json::Null;
            }
            let date = time::Month::try_from(*mo).ok().and_then(|m| time::Date::from_calendar_date(i32::from(*y), m, *d).ok());
            let at = date.and_then(|date| date.with_hms(*h, *mi, *s).ok());
            match at {
                Some(at) => value::timestamp_json(at.assume_utc().unix_timestamp(), *us),
                None => Json::Null,
            }
        }
        // The zero YEAR: the binlog's 0 (1900) is null.
        (Value::Int(0) | Value::UInt(0), ColumnKind::Year) => Json::Null,
        // A SET as its members' text: `a,b`.
        (Value::Bytes(bytes), ColumnKind::Set(_)) => {
            let text = String::from_utf8_lossy(bytes);
            Json::Array(text.split(',').filter(|m| !m.is_empty()).map(|m| Json::String(m.to_string())).collect())
        }
        _ => value::plain_to_json(value, kind),
    }
}

/// The columns a chunk reads, with how each becomes JSON: the ones `read`
/// names that the table has, and the key columns.
pub fn chunk_columns(table: &TableSchema, read: impl Fn(&str) -> bool, key: &[String], datetime_offset: Option<&Arc<str>>) -> Vec<(Arc<str>, ColumnKind)> {
    table
        .columns
        .iter()
        .filter(|c| read(&c.name) || key.iter().any(|k| **k == *c.name))
        .map(|c| (c.name.clone(), kind_of(c, datetime_offset)))
        .collect()
}

/// The next chunk's statement: `columns` of `table` after the key `after`
/// (None: from the first row), in key order, where `filter` holds, at most
/// `limit` rows. With its parameters (`filter`'s first).
pub fn chunk_sql(
    table: &str,
    columns: &[(Arc<str>, ColumnKind)],
    key: &[String],
    after: Option<&[Json]>,
    filter: (&str, &[mysql_async::Value]),
    limit: u64,
) -> (String, Vec<mysql_async::Value>) {
    let list: Vec<String> = columns.iter().map(|(c, _)| quoted(c)).collect();
    let key_list: Vec<String> = key.iter().map(|k| quoted(k)).collect();
    let mut params: Vec<mysql_async::Value> = filter.1.to_vec();
    let mut sql = format!("SELECT {} FROM {} WHERE ({})", list.join(", "), quoted(table), filter.0);
    if let Some(after) = after {
        // A row comparison: (a, b) > (?, ?), which walks the primary key in order.
        sql.push_str(&format!(" AND ({}) > ({})", key_list.join(", "), vec!["?"; key.len()].join(", ")));
        params.extend(after.iter().map(parameter));
    }
    sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", key_list.join(", ")));
    (sql, params)
}

/// Rows of `table` whose keys are in `keys` (each a JSON array of key values), in key order.
pub fn keys_sql(
    table: &str,
    columns: &[(Arc<str>, ColumnKind)],
    key: &[String],
    keys: &[Vec<Json>],
    filter: (&str, &[mysql_async::Value]),
) -> (String, Vec<mysql_async::Value>) {
    let list: Vec<String> = columns.iter().map(|(c, _)| quoted(c)).collect();
    let key_list: Vec<String> = key.iter().map(|k| quoted(k)).collect();
    let one = format!("({})", vec!["?"; key.len()].join(", "));
    let mut params: Vec<mysql_async::Value> = filter.1.to_vec();
    params.extend(keys.iter().flatten().map(parameter));
    let sql = format!(
        "SELECT {} FROM {} WHERE ({}) AND ({}) IN ({}) ORDER BY {}",
        list.join(", "),
        quoted(table),
        filter.0,
        key_list.join(", "),
        vec![one; keys.len()].join(", "),
        key_list.join(", ")
    );
    (sql, params)
}

/// Reads rows with `sql` into row images.
pub async fn read_rows(
    conn: &mut mysql_async::Conn,
    sql: String,
    params: Vec<mysql_async::Value>,
    columns: &[(Arc<str>, ColumnKind)],
) -> Result<Vec<RowImage>, mysql_async::Error> {
    let rows: Vec<mysql_async::Row> = conn.exec(sql, params).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let values = row.unwrap();
            RowImage { columns: columns.iter().zip(values.iter()).map(|((name, kind), v)| (name.clone(), value_json(v, kind))).collect() }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, data_type: &str, column_type: &str) -> ColumnInfo {
        ColumnInfo { name: name.into(), data_type: data_type.into(), column_type: column_type.into(), is_json: false, charset: None, primary_key: false }
    }

    #[test]
    fn kinds_from_information_schema() {
        assert_eq!(kind_of(&column("a", "bigint", "bigint(20) unsigned"), None), ColumnKind::Unsigned(64));
        assert_eq!(kind_of(&column("a", "int", "int(11)"), None), ColumnKind::Integer);
        assert_eq!(kind_of(&column("a", "enum", "enum('a','b')"), None), ColumnKind::Text(Charset::Utf8));
        assert_eq!(kind_of(&column("a", "longtext", "longtext"), None), ColumnKind::Text(Charset::Utf8));
        assert_eq!(kind_of(&ColumnInfo { is_json: true, ..column("a", "longtext", "longtext") }, None), ColumnKind::Json);
        assert_eq!(kind_of(&column("a", "varbinary", "varbinary(9)"), None), ColumnKind::Binary { pad_to: None });
    }

    #[test]
    fn timestamps_and_sets_as_the_binlog_gives_them() {
        let utc = value_json(&Value::Date(2026, 12, 7, 22, 32, 37, 120), &ColumnKind::Timestamp);
        assert_eq!(utc, value::timestamp_json(1_796_682_757, 120));
        assert_eq!(value_json(&Value::Date(0, 0, 0, 0, 0, 0, 0), &ColumnKind::Timestamp), Json::Null);
        let set = value_json(&Value::Bytes(b"open,closed".to_vec()), &ColumnKind::Set(Arc::from(Vec::new())));
        assert_eq!(set, serde_json::json!(["open", "closed"]));
        assert_eq!(value_json(&Value::Bytes(Vec::new()), &ColumnKind::Set(Arc::from(Vec::new()))), serde_json::json!([]));
    }

    #[test]
    fn chunks_walk_the_key_in_order_with_the_filter_first() {
        let columns = vec![(Arc::from("id"), ColumnKind::Integer), (Arc::from("subject"), ColumnKind::Text(Charset::Utf8))];
        let key = vec!["id".to_string()];
        let (sql, params) = chunk_sql("threads", &columns, &key, Some(&[serde_json::json!(41)]), ("`status` = ?", &[parameter(&"open".into())]), 500);
        assert_eq!(sql, "SELECT `id`, `subject` FROM `threads` WHERE (`status` = ?) AND (`id`) > (?) ORDER BY `id` LIMIT 500");
        assert_eq!(params, vec![Value::Bytes(b"open".to_vec()), Value::Bytes(b"41".to_vec())]);
        let (sql, params) = keys_sql("threads", &columns, &key, &[vec![serde_json::json!(3)], vec![serde_json::json!(9)]], ("TRUE", &[]));
        assert_eq!(sql, "SELECT `id`, `subject` FROM `threads` WHERE (TRUE) AND (`id`) IN ((?), (?)) ORDER BY `id`");
        assert_eq!(params.len(), 2);
    }
}
