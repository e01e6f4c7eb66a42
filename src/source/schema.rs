//! What rowhook needs to know about the source server before it reads:
//! its binlog settings, the replica grants, and the mapped tables' columns.
//!
//! Every check runs and every finding is kept, so that one `rowhook
//! check-config` lists all that is wrong, each [`Problem`] with the statement
//! or setting that fixes it and whether the server must restart.
//! [`inspect_server`] reads the binlog settings and the grants;
//! [`check_select`] tries to read each mapped table; [`load_tables`] reads
//! their columns from `information_schema` in one query (the decoder falls
//! back to these column names when the server does not log them,
//! `binlog_row_metadata` other than FULL, and learns from them which MariaDB
//! LONGTEXT columns are really JSON). [`check_rules`] is pure: every table
//! and column a rule names must exist.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use mysql_async::prelude::*;

use crate::config::{rule_label, EventRule};

/// The server's binlog files and their sizes, oldest first (`SHOW BINARY LOGS`).
pub async fn binary_logs(conn: &mut mysql_async::Conn) -> Result<Vec<(String, u64)>, mysql_async::Error> {
    let rows: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await?;
    Ok(rows.into_iter().filter_map(|r| Some((r.get::<String, _>(0)?, r.get::<u64, _>(1)?))).collect())
}

/// How many bytes of binlog the server has written after `position`: the
/// rest of its file and all of every later one. None when the server no
/// longer lists the file (or never did).
pub fn bytes_behind(logs: &[(String, u64)], position: &crate::source::decoder::Position) -> Option<u64> {
    let at = logs.iter().position(|(name, _)| *name == position.file)?;
    let rest = logs[at].1.saturating_sub(position.pos);
    Some(rest + logs[at + 1..].iter().map(|(_, size)| size).sum::<u64>())
}

/// Why the source cannot be used as it is.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot query the source database: {}", crate::dburl::cause_once(.0))]
    Query(#[from] mysql_async::Error),
    /// Every problem found, errors and warnings, at least one an error.
    #[error("{0}")]
    Refused(Problems),
}

/// Something about the source server or the rules that keeps rowhook from
/// reading correctly (an error), or makes it work less well (a warning).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("the binlog is off (log_bin = OFF)")]
    BinlogOff,
    #[error("binlog_format is {0}; rowhook needs ROW")]
    NotRowFormat(String),
    #[error("binlog_row_image is {0}; rowhook needs FULL")]
    NotFullImage(String),
    /// A warning: the value, or None when the server has no such variable.
    #[error("binlog_row_metadata is {}: column names come from information_schema, not from the binlog", .0.as_deref().unwrap_or("not supported by this server"))]
    NoRowMetadata(Option<String>),
    #[error("log_bin_compress is ON: compressed row events cannot be decoded")]
    Compressed,
    #[error("the user {user} lacks {}", .missing.join(" and "))]
    MissingGrant { user: String, missing: Vec<&'static str> },
    #[error("the user {user} cannot read {}: no SELECT privilege (or no such table)", tables_list(.database, .tables))]
    NoSelect { user: String, database: String, tables: Vec<String> },
    #[error("{rule}: table `{table}` does not exist in database `{database}`")]
    UnknownTable {
        /// As messages name rules: `events rule 3 (order.shipped)`.
        rule: String,
        table: String,
        database: String,
        /// The database's table closest to `table`, if one is close.
        near: Option<String>,
    },
    /// A warning: `[admin] secrets_key` is not set.
    #[error("no [admin] secrets_key: webhook secrets are stored in plaintext in the webhooks table")]
    SecretsInPlaintext,
    #[error("{rule}: table `{table}` has no column `{column}`")]
    UnknownColumn {
        rule: String,
        table: String,
        column: String,
        /// The table's columns.
        columns: Vec<String>,
    },
}

fn tables_list(database: &str, tables: &[String]) -> String {
    let names: Vec<String> = tables.iter().map(|t| format!("`{database}`.`{t}`")).collect();
    names.join(", ")
}

/// Whether fixing a problem needs a restart of the source server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    Needed,
    NotNeeded,
    /// A fix in rowhook's config, not on the server.
    NotTheServer,
}

impl Problem {
    /// rowhook works anyway, less well.
    pub fn is_warning(&self) -> bool {
        matches!(self, Problem::NoRowMetadata(_) | Problem::SecretsInPlaintext)
    }

    /// What fixes it: the SQL to run or the setting to change, and what to know about it.
    pub fn fix(&self) -> String {
        const KEEP: &str = "in the server's config file (my.cnf: [mariadbd] on MariaDB, [mysqld] on MySQL) so that it holds after a restart";
        match self {
            Problem::BinlogOff => format!(
                "add log_bin = mysql-bin (and a server_id) {}, then restart the server; \
                 docs/source-database.md has every setting",
                KEEP.replace(" so that it holds after a restart", "")
            ),
            Problem::NotRowFormat(now) => format!(
                "SET GLOBAL binlog_format = 'ROW'; it applies only to connections opened afterwards: connections already \
                 open keep logging {now} events until they reconnect (reconnect or restart the application). \
                 Also put binlog_format = ROW {KEEP}"
            ),
            Problem::NotFullImage(now) => format!(
                "SET GLOBAL binlog_row_image = 'FULL'; it applies only to connections opened afterwards: connections \
                 already open keep logging {now} row images until they reconnect (reconnect or restart the application). \
                 Also put binlog_row_image = FULL {KEEP}"
            ),
            Problem::NoRowMetadata(None) => {
                "nothing to do: rowhook reads column names from information_schema and reloads them when DDL on a \
                 mapped table passes by (MySQL 8.0.1+ and MariaDB 10.5+ can log them: binlog_row_metadata = FULL)"
                    .to_string()
            }
            Problem::NoRowMetadata(Some(_)) => format!(
                "rowhook works without it, with column names from information_schema, reloaded when DDL on a mapped \
                 table passes by. For names in the binlog: SET GLOBAL binlog_row_metadata = 'FULL' (events written \
                 afterwards carry them), and binlog_row_metadata = FULL {KEEP}"
            ),
            Problem::Compressed => format!(
                "SET GLOBAL log_bin_compress = OFF, and log_bin_compress = OFF {KEEP}; events already written \
                 compressed stay undecodable"
            ),
            Problem::MissingGrant { user, missing } => format!(
                "GRANT {} ON *.* TO {user}; (REPLICATION SLAVE reads the binlog, REPLICATION CLIENT finds its position; \
                 docs/source-database.md lists every grant)",
                missing.join(", ")
            ),
            Problem::NoSelect { user, database, .. } => format!(
                "GRANT SELECT ON `{database}`.* TO {user}; (rowhook reads the mapped tables' columns from \
                 information_schema, which shows a table only to a user with a privilege on it), or fix the rules' `table`"
            ),
            Problem::SecretsInPlaintext => "set [admin] secrets_key (or secrets_key_file, or ROWHOOK__ADMIN__SECRETS_KEY) to a key \
                 made with `openssl rand -base64 32` and restart rowhook: new secrets are sealed, plaintext ones as rowhook \
                 sees them, and `rowhook rotate-secrets-key` seals every row at once (docs/security.md)"
                .to_string(),
            Problem::UnknownTable { near: Some(near), .. } => format!("did you mean `{near}`? Fix the rule's `table`"),
            Problem::UnknownTable { .. } => "fix the rule's `table`, or create the table".to_string(),
            Problem::UnknownColumn { column, columns, .. } => match crate::config::keys::closest(column, &as_strs(columns)) {
                Some(near) => format!("did you mean `{near}`? Fix the rule"),
                None => format!("fix the rule; the table's columns are {}", columns.join(", ")),
            },
        }
    }

    pub fn restart(&self) -> Restart {
        match self {
            Problem::BinlogOff => Restart::Needed,
            Problem::UnknownTable { .. } | Problem::UnknownColumn { .. } | Problem::SecretsInPlaintext => Restart::NotTheServer,
            _ => Restart::NotNeeded,
        }
    }
}

fn as_strs(items: &[String]) -> Vec<&str> {
    items.iter().map(String::as_str).collect()
}

/// Every problem found, errors first in the order the checks ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn errors(&self) -> usize {
        self.0.iter().filter(|p| !p.is_warning()).count()
    }

    pub fn warnings(&self) -> usize {
        self.0.iter().filter(|p| p.is_warning()).count()
    }

    /// The problems as a numbered list, one problem with its fix and restart per item.
    pub fn list(&self) -> String {
        let mut text = String::new();
        for (i, problem) in self.0.iter().enumerate() {
            let kind = if problem.is_warning() { "warning" } else { "error" };
            text.push_str(&format!("\n  {}. {kind}: {problem}\n     fix: {}", i + 1, problem.fix()));
            match problem.restart() {
                Restart::Needed => text.push_str("\n     server restart: needed"),
                Restart::NotNeeded => text.push_str("\n     server restart: not needed"),
                Restart::NotTheServer => {}
            }
        }
        text
    }
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the source database and the rules are not ready for rowhook ({}, {}):{}",
            plural(self.errors(), "error"),
            plural(self.warnings(), "warning"),
            self.list()
        )
    }
}

/// Facts about the source server that decoding depends on.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub version: String,
    pub is_mariadb: bool,
    /// Column names travel in the binlog (binlog_row_metadata=FULL).
    pub full_row_metadata: bool,
    /// The connected account, quoted for SQL: `'rowhook'@'%'`.
    pub user: String,
}

/// The binlog settings and the replica grants: what the server is, and every problem found.
pub async fn inspect_server(conn: &mut mysql_async::Conn) -> Result<(ServerInfo, Vec<Problem>), SchemaError> {
    let (log_bin, format, image, version): (String, String, String, String) = conn
        .query_first("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@version")
        .await?
        .unwrap_or_default();
    let mut problems = Vec::new();
    if log_bin != "1" && !log_bin.eq_ignore_ascii_case("on") {
        problems.push(Problem::BinlogOff);
    }
    if !format.eq_ignore_ascii_case("row") {
        problems.push(Problem::NotRowFormat(format));
    }
    if !image.eq_ignore_ascii_case("full") {
        problems.push(Problem::NotFullImage(image));
    }
    let is_mariadb = version.to_ascii_lowercase().contains("mariadb");
    // Older servers lack the variable: then there is no metadata.
    let metadata: Option<String> = conn.query_first("SELECT @@binlog_row_metadata").await.ok().flatten();
    let full_row_metadata = metadata.as_deref().is_some_and(|m| m.eq_ignore_ascii_case("full"));
    if !full_row_metadata {
        problems.push(Problem::NoRowMetadata(metadata));
    }
    if is_mariadb {
        let compress: Option<String> = conn.query_first("SELECT @@log_bin_compress").await.ok().flatten();
        if compress.is_some_and(|c| c == "1" || c.eq_ignore_ascii_case("on")) {
            problems.push(Problem::Compressed);
        }
    }
    let user: Option<String> = conn.query_first("SELECT CURRENT_USER()").await?;
    let user = user.unwrap_or_default();
    let user = match user.split_once('@') {
        Some((name, host)) => format!("'{name}'@'{host}'"),
        None => user,
    };
    let grants: Vec<String> = conn.query("SHOW GRANTS").await?;
    let missing = missing_replication_grants(&grants);
    if !missing.is_empty() {
        problems.push(Problem::MissingGrant { user: user.clone(), missing });
    }
    Ok((ServerInfo { version, is_mariadb, full_row_metadata, user }, problems))
}

/// Which of REPLICATION SLAVE and REPLICATION CLIENT the `SHOW GRANTS`
/// lines do not give, on `*.*` (by another name: MariaDB shows REPLICATION
/// CLIENT as BINLOG MONITOR, MySQL may show REPLICATION SLAVE as
/// REPLICATION REPLICA; ALL PRIVILEGES gives both, SUPER the second).
fn missing_replication_grants(grants: &[String]) -> Vec<&'static str> {
    let mut global: BTreeSet<String> = BTreeSet::new();
    for grant in grants {
        let upper = grant.to_ascii_uppercase();
        let Some(rest) = upper.strip_prefix("GRANT ") else { continue };
        let Some((privileges, _)) = rest.split_once(" ON *.* TO ") else { continue };
        global.extend(privileges.split(',').map(|p| p.trim().to_string()));
    }
    let has = |names: &[&str]| names.iter().any(|n| global.contains(*n));
    let all = ["ALL PRIVILEGES", "ALL"];
    let mut missing = Vec::new();
    if !has(&all) && !has(&["REPLICATION SLAVE", "REPLICATION REPLICA"]) {
        missing.push("REPLICATION SLAVE");
    }
    if !has(&all) && !has(&["REPLICATION CLIENT", "BINLOG MONITOR", "SUPER"]) {
        missing.push("REPLICATION CLIENT");
    }
    missing
}

/// Tries to read each of `tables` (nothing is fetched): the tables the user
/// may not read, as one problem, and their names.
pub async fn check_select(
    conn: &mut mysql_async::Conn,
    database: &str,
    tables: &[String],
    user: &str,
) -> Result<(Option<Problem>, Vec<String>), SchemaError> {
    let mut denied = Vec::new();
    for table in tables.iter().collect::<BTreeSet<_>>() {
        let sql = format!("SELECT 1 FROM {}.{} LIMIT 0", quote(database), quote(table));
        match conn.query_drop(sql).await {
            Ok(()) => {}
            // ER_TABLEACCESS_DENIED_ERROR, ER_COLUMNACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR
            Err(mysql_async::Error::Server(e)) if matches!(e.code, 1142 | 1143 | 1044) => denied.push(table.clone()),
            // ER_NO_SUCH_TABLE: the rules check says so.
            Err(mysql_async::Error::Server(e)) if e.code == 1146 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let problem = (!denied.is_empty())
        .then(|| Problem::NoSelect { user: user.to_string(), database: database.to_string(), tables: denied.clone() });
    Ok((problem, denied))
}

/// An identifier quoted for SQL.
fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The names of the tables of `database` (for "did you mean").
pub async fn table_names(conn: &mut mysql_async::Conn, database: &str) -> Result<Vec<String>, SchemaError> {
    Ok(conn.exec("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", (database,)).await?)
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
    /// Part of the table's primary key.
    pub primary_key: bool,
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

    /// The primary key's columns, in table order.
    pub fn primary_key(&self) -> Vec<String> {
        self.columns.iter().filter(|c| c.primary_key).map(|c| c.name.to_string()).collect()
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
    let rows: Vec<(String, String, String, String, Option<String>, String)> = conn
        .exec(
            format!(
                "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, COLUMN_KEY FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN ({placeholders}) ORDER BY TABLE_NAME, ORDINAL_POSITION"
            ),
            params.clone(),
        )
        .await?;
    for (table, name, data_type, column_type, charset, key) in rows {
        let is_json = data_type.eq_ignore_ascii_case("json");
        result.entry(table).or_default().columns.push(ColumnInfo {
            name: Arc::from(name),
            data_type: data_type.to_ascii_lowercase(),
            column_type,
            is_json,
            charset,
            primary_key: key == "PRI",
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

/// Every table and column the rules name must exist: a problem for each
/// that does not, each column once per rule. Tables in `denied` are left out
/// (the user may not read them: [`check_select`] said so); `all_tables`
/// (the database's) serve for "did you mean".
pub fn check_rules(
    rules: &[EventRule],
    database: &str,
    tables: &HashMap<String, TableSchema>,
    denied: &[String],
    all_tables: &[String],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        if denied.contains(&rule.table) {
            continue;
        }
        let label = rule_label(i, &rule.event_type);
        let Some(table) = tables.get(&rule.table) else {
            problems.push(Problem::UnknownTable {
                rule: label,
                table: rule.table.clone(),
                database: database.to_string(),
                near: crate::config::keys::closest(&rule.table, &as_strs(all_tables)).map(str::to_string),
            });
            continue;
        };
        let mut columns: Vec<&str> = rule.fields.values().map(String::as_str).collect();
        columns.extend(rule.conditions.iter().map(|c| c.column.as_str()));
        if let Some(changes) = &rule.changes {
            columns.extend(changes.ignore.iter().map(String::as_str));
            columns.extend(changes.columns.iter().flatten().map(String::as_str));
        }
        columns.extend(rule.group_by.iter().flatten().map(String::as_str));
        let mut seen = BTreeSet::new();
        for missing in columns.into_iter().filter(|c| !table.has_column(c)) {
            if seen.insert(missing) {
                problems.push(Problem::UnknownColumn {
                    rule: label.clone(),
                    table: rule.table.clone(),
                    column: missing.to_string(),
                    columns: table.columns.iter().map(|c| c.name.to_string()).collect(),
                });
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_behind_counts_the_rest_of_the_file_and_every_later_one() {
        let logs = vec![("b.000001".to_string(), 1000), ("b.000002".to_string(), 500), ("b.000003".to_string(), 300)];
        let at = |file: &str, pos| crate::source::decoder::Position { file: file.into(), pos };
        assert_eq!(bytes_behind(&logs, &at("b.000003", 300)), Some(0), "caught up");
        assert_eq!(bytes_behind(&logs, &at("b.000003", 100)), Some(200));
        assert_eq!(bytes_behind(&logs, &at("b.000001", 900)), Some(100 + 500 + 300));
        assert_eq!(bytes_behind(&logs, &at("b.000002", 9999)), Some(300), "a position past the size read so far is no negative");
        assert_eq!(bytes_behind(&logs, &at("b.000000", 4)), None, "purged");
        assert_eq!(bytes_behind(&[], &at("b.000001", 4)), None);
    }
    use crate::config::Config;

    #[test]
    fn quoted_lists() {
        assert_eq!(parse_quoted_list("'open','pending','closed'"), ["open", "pending", "closed"]);
        assert_eq!(parse_quoted_list("'it''s','a,b'"), ["it's", "a,b"]);
    }

    fn column(name: &str) -> ColumnInfo {
        ColumnInfo { name: name.into(), data_type: "int".into(), column_type: "int".into(), is_json: false, charset: None, primary_key: false }
    }

    #[test]
    fn every_missing_table_and_column_is_a_problem_with_rules_counted_from_1() {
        let rule = |t: &str, table: &str, fields: &str| {
            format!("[[events]]\ntype = \"{t}\"\ntable = \"{table}\"\noperations = [\"update\"]\nfields = {fields}\n")
        };
        let text = format!(
            "[source]\nurl = \"mysql://r@h:1/db\"\n{}{}{}{}",
            rule("a.ok", "t", "{ x = \"id\" }"),
            rule("b.cols", "t", "{ x = \"nope\", y = \"subjet\", z = \"nope\" }"),
            rule("c.table", "threds", "{ x = \"id\" }"),
            rule("d.denied", "secret", "{ x = \"id\" }"),
        );
        let config = Config::from_toml(&text).unwrap();
        let mut tables = HashMap::new();
        tables.insert("t".to_string(), TableSchema { columns: vec![column("id"), column("subject")] });
        let problems = check_rules(&config.events, "db", &tables, &["secret".to_string()], &["t".into(), "threads".into()]);
        let said: Vec<String> = problems.iter().map(|p| format!("{p} | {}", p.fix())).collect();
        assert_eq!(
            said,
            [
                "events rule 2 (b.cols): table `t` has no column `nope` | fix the rule; the table's columns are id, subject",
                "events rule 2 (b.cols): table `t` has no column `subjet` | did you mean `subject`? Fix the rule",
                "events rule 3 (c.table): table `threds` does not exist in database `db` | did you mean `threads`? Fix the rule's `table`",
            ]
        );
        assert!(problems.iter().all(|p| !p.is_warning() && p.restart() == Restart::NotTheServer));
    }

    #[test]
    fn replication_grants_are_read_from_show_grants() {
        let grants = |lines: &[&str]| missing_replication_grants(&lines.iter().map(|l| l.to_string()).collect::<Vec<_>>());
        assert_eq!(grants(&["GRANT USAGE ON *.* TO `u`@`%`"]), ["REPLICATION SLAVE", "REPLICATION CLIENT"]);
        let mariadb = "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `rowhook`@`%` IDENTIFIED BY PASSWORD '*AB12'";
        assert!(grants(&[mariadb, "GRANT SELECT ON `helpdesk`.* TO `rowhook`@`%`"]).is_empty());
        assert!(grants(&["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"]).is_empty());
        assert_eq!(grants(&["GRANT REPLICATION SLAVE ADMIN, REPLICATION CLIENT ON *.* TO `u`@`%`"]), ["REPLICATION SLAVE"], "not a prefix match");
        assert_eq!(grants(&["GRANT REPLICATION SLAVE ON `app`.* TO `u`@`%`"]), ["REPLICATION SLAVE", "REPLICATION CLIENT"], "only ON *.*");
        assert_eq!(grants(&["GRANT REPLICATION REPLICA ON *.* TO `u`@`%`"]), ["REPLICATION CLIENT"]);
    }

    #[test]
    fn each_problem_says_its_fix_and_whether_the_server_restarts() {
        let problems = Problems(vec![
            Problem::BinlogOff,
            Problem::NotRowFormat("STATEMENT".into()),
            Problem::NoRowMetadata(Some("MINIMAL".into())),
        ]);
        let text = problems.to_string();
        assert!(text.starts_with("the source database and the rules are not ready for rowhook (2 errors, 1 warning):\n  1. error: the binlog is off"), "{text}");
        assert!(text.contains("add log_bin = mysql-bin") && text.contains("server restart: needed"), "{text}");
        assert!(text.contains("2. error: binlog_format is STATEMENT; rowhook needs ROW\n     fix: SET GLOBAL binlog_format = 'ROW'; it applies only to connections opened afterwards"), "{text}");
        assert!(text.contains("Also put binlog_format = ROW in the server's config file (my.cnf"), "{text}");
        assert!(text.contains("3. warning: binlog_row_metadata is MINIMAL"), "{text}");
        assert_eq!(text.matches("server restart: not needed").count(), 2, "{text}");
    }
}
