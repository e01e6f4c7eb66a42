//! What rowhook needs to know about the source server before it reads:
//! its binlog settings, the replica grants, and the mapped tables' columns.
//!
//! [`check_server`] refuses, with the statement to run, a server whose binlog
//! cannot give full row images. [`load_tables`] reads the mapped tables from
//! `information_schema` in one query; the decoder falls back to these column
//! names when the server does not log them (`binlog_row_metadata` other than
//! FULL) and learns from them which MariaDB LONGTEXT columns are really JSON.
//! [`check_rules`] is pure: every table and column a rule names must exist.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_async::prelude::*;

use crate::config::EventRule;

/// Why the source cannot be used as it is.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot query the source database: {0}")]
    Query(#[from] mysql_async::Error),
    #[error("the binlog is off on the source server: start it with log_bin (for example --log-bin=mysql-bin) and binlog_format=ROW")]
    BinlogOff,
    #[error("binlog_format is {0}, rowhook needs ROW: run SET GLOBAL binlog_format = 'ROW' and put binlog_format=ROW in the server's config")]
    NotRowFormat(String),
    #[error("binlog_row_image is {0}, rowhook needs FULL: run SET GLOBAL binlog_row_image = 'FULL' and put binlog_row_image=FULL in the server's config")]
    NotFullImage(String),
    #[error("log_bin_compress is ON: compressed row events cannot be decoded; run SET GLOBAL log_bin_compress = OFF")]
    Compressed,
    #[error("the user {user} lacks REPLICATION SLAVE: run GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO {user} (docs/source-database.md lists every grant)")]
    MissingGrant { user: String },
    /// `rule`: as messages number rules, from 1 in file order.
    #[error("events rule {rule} ({event_type}): table `{table}` does not exist in database `{database}`")]
    UnknownTable { rule: usize, event_type: String, table: String, database: String },
    #[error("events rule {rule} ({event_type}): table `{table}` has no column `{column}`")]
    UnknownColumn { rule: usize, event_type: String, table: String, column: String },
}

/// Facts about the source server that decoding depends on.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub version: String,
    pub is_mariadb: bool,
    /// Column names travel in the binlog (binlog_row_metadata=FULL).
    pub full_row_metadata: bool,
}

/// Checks the binlog settings and the replica grant.
pub async fn check_server(conn: &mut mysql_async::Conn) -> Result<ServerInfo, SchemaError> {
    let (log_bin, format, image, version): (String, String, String, String) = conn
        .query_first("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@version")
        .await?
        .unwrap_or_default();
    if log_bin != "1" && !log_bin.eq_ignore_ascii_case("on") {
        return Err(SchemaError::BinlogOff);
    }
    if !format.eq_ignore_ascii_case("row") {
        return Err(SchemaError::NotRowFormat(format));
    }
    if !image.eq_ignore_ascii_case("full") {
        return Err(SchemaError::NotFullImage(image));
    }
    let is_mariadb = version.to_ascii_lowercase().contains("mariadb");
    // Older servers lack the variable: then there is no metadata.
    let metadata: Option<String> = conn.query_first("SELECT @@binlog_row_metadata").await.ok().flatten();
    if is_mariadb {
        let compress: Option<String> = conn.query_first("SELECT @@log_bin_compress").await.ok().flatten();
        if compress.is_some_and(|c| c == "1" || c.eq_ignore_ascii_case("on")) {
            return Err(SchemaError::Compressed);
        }
    }
    let grants: Vec<String> = conn.query("SHOW GRANTS").await?;
    let can_replicate = grants.iter().any(|g| {
        let g = g.to_ascii_uppercase();
        (g.contains("ALL PRIVILEGES ON *.*") || g.contains("REPLICATION SLAVE") || g.contains("REPLICATION REPLICA"))
            && g.contains(" ON *.* ")
    });
    if !can_replicate {
        let user: Option<String> = conn.query_first("SELECT CURRENT_USER()").await?;
        let user = user.unwrap_or_default();
        let user = match user.split_once('@') {
            Some((name, host)) => format!("'{name}'@'{host}'"),
            None => user,
        };
        return Err(SchemaError::MissingGrant { user });
    }
    Ok(ServerInfo { version, is_mariadb, full_row_metadata: metadata.is_some_and(|m| m.eq_ignore_ascii_case("full")) })
}

/// One column as `information_schema` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    pub name: Arc<str>,
    /// `int`, `varchar`, `enum`, ...
    pub data_type: String,
    /// The full type, such as `enum('open','closed')`.
    pub column_type: String,
    /// A JSON column (MySQL's type, or MariaDB's LONGTEXT with a json_valid check).
    pub is_json: bool,
    /// The character set of a text column (`utf8mb4`, `latin1`, ...), for
    /// servers that do not log it (binlog_row_metadata other than FULL).
    pub charset: Option<String>,
}

/// A table's columns in ordinal order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableSchema {
    pub columns: Vec<ColumnInfo>,
}

impl TableSchema {
    pub fn has_column(&self, name: &str) -> bool {
        self.columns.iter().any(|c| &*c.name == name)
    }

    /// The values of an ENUM or SET column, from its `column_type`.
    pub fn enum_values(&self, index: usize) -> Option<Vec<String>> {
        let column = self.columns.get(index)?;
        let inner = column
            .column_type
            .strip_prefix("enum(")
            .or_else(|| column.column_type.strip_prefix("set("))?
            .strip_suffix(')')?;
        Some(parse_quoted_list(inner))
    }
}

/// Parses `'a','b''c'` into `["a", "b'c"]`.
fn parse_quoted_list(text: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    value.push('\'');
                } else {
                    break;
                }
            } else if c == '\\' {
                if let Some(escaped) = chars.next() {
                    value.push(escaped);
                }
            } else {
                value.push(c);
            }
        }
        values.push(value);
    }
    values
}

/// Reads the columns of `tables` in `database`, one query for all of them.
pub async fn load_tables(
    conn: &mut mysql_async::Conn,
    database: &str,
    tables: &[String],
    is_mariadb: bool,
) -> Result<HashMap<String, TableSchema>, SchemaError> {
    let mut result: HashMap<String, TableSchema> = HashMap::new();
    if tables.is_empty() {
        return Ok(result);
    }
    let placeholders = vec!["?"; tables.len()].join(",");
    let mut params: Vec<mysql_async::Value> = vec![database.into()];
    params.extend(tables.iter().map(|t| mysql_async::Value::from(t.as_str())));
    let rows: Vec<(String, String, String, String, Option<String>)> = conn
        .exec(
            format!(
                "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN ({placeholders}) ORDER BY TABLE_NAME, ORDINAL_POSITION"
            ),
            params.clone(),
        )
        .await?;
    for (table, name, data_type, column_type, charset) in rows {
        let is_json = data_type.eq_ignore_ascii_case("json");
        result.entry(table).or_default().columns.push(ColumnInfo {
            name: Arc::from(name),
            data_type: data_type.to_ascii_lowercase(),
            column_type,
            is_json,
            charset,
        });
    }
    if is_mariadb {
        // MariaDB's JSON is LONGTEXT with a CHECK (json_valid(`col`)).
        let checks: Vec<(String, String)> = conn
            .exec(
                format!(
                    "SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                     WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME IN ({placeholders})"
                ),
                params,
            )
            .await?;
        for (table, clause) in checks {
            let Some(schema) = result.get_mut(&table) else { continue };
            for column in &mut schema.columns {
                if clause.contains(&format!("json_valid(`{}`)", column.name)) {
                    column.is_json = true;
                }
            }
        }
    }
    Ok(result)
}

/// Every table and column the rules name must exist.
pub fn check_rules(rules: &[EventRule], database: &str, tables: &HashMap<String, TableSchema>) -> Result<(), SchemaError> {
    for (i, rule) in rules.iter().enumerate() {
        let Some(table) = tables.get(&rule.table) else {
            return Err(SchemaError::UnknownTable {
                rule: i + 1,
                event_type: rule.event_type.clone(),
                table: rule.table.clone(),
                database: database.to_string(),
            });
        };
        let mut columns: Vec<&str> = rule.fields.values().map(String::as_str).collect();
        columns.extend(rule.conditions.iter().map(|c| c.column.as_str()));
        if let Some(changes) = &rule.changes {
            columns.extend(changes.ignore.iter().map(String::as_str));
            columns.extend(changes.columns.iter().flatten().map(String::as_str));
        }
        if let Some(missing) = columns.into_iter().find(|c| !table.has_column(c)) {
            return Err(SchemaError::UnknownColumn {
                rule: i + 1,
                event_type: rule.event_type.clone(),
                table: rule.table.clone(),
                column: missing.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn quoted_lists() {
        assert_eq!(parse_quoted_list("'open','pending','closed'"), ["open", "pending", "closed"]);
        assert_eq!(parse_quoted_list("'it''s','a,b'"), ["it's", "a,b"]);
    }

    #[test]
    fn rules_naming_missing_columns_are_refused() {
        let config = Config::from_toml(
            "[source]\nurl = \"mysql://r@h:1/db\"\n[[events]]\ntype = \"a.b\"\ntable = \"t\"\noperations = [\"insert\"]\nfields = { x = \"nope\" }\n",
        )
        .unwrap();
        let mut tables = HashMap::new();
        let err = check_rules(&config.events, "db", &tables).unwrap_err();
        assert!(err.to_string().contains("table `t` does not exist"), "{err}");
        tables.insert(
            "t".to_string(),
            TableSchema {
                columns: vec![ColumnInfo { name: "id".into(), data_type: "int".into(), column_type: "int".into(), is_json: false, charset: None }],
            },
        );
        let err = check_rules(&config.events, "db", &tables).unwrap_err();
        assert!(err.to_string().contains("no column `nope`"), "{err}");
    }
}
