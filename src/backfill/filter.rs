//! A backfill's filter: which rows of the table it copies.
//!
//! The request gives a list of tests on named columns, in the vocabulary of
//! the rules' conditions (`equals`, `not_equals`, `is_null`) plus
//! comparisons (`>`, `>=`, `<`, `<=`, `in`, `between`); every test must
//! hold. They are checked against the table's columns and compiled into a
//! WHERE clause with placeholders: column names are the schema's own
//! (quoted), values are parameters, and no text of the request ever reaches
//! the server as SQL.
//!
//! ```json
//! [{"column": "status", "equals": "open"}, {"column": "id", ">=": 1000},
//!  {"column": "status", "in": ["open", "pending"]}, {"column": "created_at", "between": ["2026-01-01", "2026-07-01"]}]
//! ```

use serde_json::Value as Json;

use crate::source::schema::TableSchema;

/// One test on one column.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Equals(Json),
    NotEquals(Json),
    IsNull(bool),
    Greater(Json),
    GreaterOrEqual(Json),
    Less(Json),
    LessOrEqual(Json),
    In(Vec<Json>),
    Between(Json, Json),
}

/// A test on a named column.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    pub column: String,
    pub test: Test,
}

/// What is wrong with a filter: the field (`filter[2].column`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FilterError {
    pub field: String,
    pub message: String,
}

const TESTS: [&str; 9] = ["equals", "not_equals", "is_null", ">", ">=", "<", "<=", "in", "between"];

fn error(field: String, message: impl Into<String>) -> FilterError {
    FilterError { field, message: message.into() }
}

/// A scalar (string, number or boolean) for a comparison.
fn scalar(field: &str, value: &Json) -> Result<Json, FilterError> {
    match value {
        Json::String(_) | Json::Number(_) | Json::Bool(_) => Ok(value.clone()),
        _ => Err(error(field.to_string(), "must be a string, a number or true/false")),
    }
}

/// Checks a filter (a JSON array of tests; null or absent: every row) against the table.
pub fn parse(value: Option<&Json>, table: &TableSchema) -> Result<Vec<Predicate>, FilterError> {
    let items = match value {
        None | Some(Json::Null) => return Ok(Vec::new()),
        Some(Json::Array(items)) => items,
        Some(_) => return Err(error("filter".into(), "must be an array of tests, e.g. [{\"column\": \"status\", \"equals\": \"open\"}]")),
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("filter[{i}]");
        let Some(object) = item.as_object() else {
            return Err(error(at, "must be an object: {\"column\": ..., \"<test>\": ...}"));
        };
        let column = object.get("column").and_then(Json::as_str).ok_or_else(|| error(format!("{at}.column"), "is required (a column name)"))?;
        if !table.has_column(column) {
            let known: Vec<&str> = table.columns.iter().map(|c| &*c.name).collect();
            return Err(error(format!("{at}.column"), format!("the table has no column `{column}`; its columns are {}", known.join(", "))));
        }
        let tests: Vec<(&String, &Json)> = object.iter().filter(|(k, _)| k.as_str() != "column").collect();
        let [(name, value)] = tests[..] else {
            return Err(error(at, format!("needs exactly one test besides `column`: one of {}", TESTS.join(", "))));
        };
        let field = format!("{at}.{name}");
        let test = match name.as_str() {
            "equals" => Test::Equals(scalar(&field, value)?),
            "not_equals" => Test::NotEquals(scalar(&field, value)?),
            "is_null" => Test::IsNull(value.as_bool().ok_or_else(|| error(field.clone(), "must be true or false"))?),
            ">" => Test::Greater(scalar(&field, value)?),
            ">=" => Test::GreaterOrEqual(scalar(&field, value)?),
            "<" => Test::Less(scalar(&field, value)?),
            "<=" => Test::LessOrEqual(scalar(&field, value)?),
            "in" => {
                let list = value.as_array().filter(|l| !l.is_empty() && l.len() <= 1000);
                let list = list.ok_or_else(|| error(field.clone(), "must be an array of 1 to 1,000 values"))?;
                Test::In(list.iter().map(|v| scalar(&field, v)).collect::<Result<_, _>>()?)
            }
            "between" => match value.as_array().map(Vec::as_slice) {
                Some([low, high]) => Test::Between(scalar(&field, low)?, scalar(&field, high)?),
                _ => return Err(error(field, "must be an array of two values [low, high]")),
            },
            other => return Err(error(format!("{at}.{other}"), format!("unknown test; one of {}", TESTS.join(", ")))),
        };
        out.push(Predicate { column: column.to_string(), test });
    }
    Ok(out)
}

/// A column name as SQL: back-quoted, any back quote doubled.
pub fn quoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A JSON scalar as a statement parameter: numbers by their exact text.
pub fn parameter(value: &Json) -> mysql_async::Value {
    match value {
        Json::Bool(b) => mysql_async::Value::Int(i64::from(*b)),
        Json::Number(n) => mysql_async::Value::Bytes(n.to_string().into_bytes()),
        Json::String(s) => mysql_async::Value::Bytes(s.clone().into_bytes()),
        _ => mysql_async::Value::NULL,
    }
}

/// The predicates as `cond AND cond ...` with placeholders, and their
/// parameters (an empty list: `TRUE`).
pub fn where_sql(predicates: &[Predicate]) -> (String, Vec<mysql_async::Value>) {
    if predicates.is_empty() {
        return ("TRUE".into(), Vec::new());
    }
    let mut params = Vec::new();
    let parts: Vec<String> = predicates
        .iter()
        .map(|p| {
            let column = quoted(&p.column);
            let mut one = |op: &str, v: &Json| {
                params.push(parameter(v));
                format!("{column} {op} ?")
            };
            match &p.test {
                Test::Equals(v) => one("=", v),
                Test::NotEquals(v) => one("<>", v),
                Test::Greater(v) => one(">", v),
                Test::GreaterOrEqual(v) => one(">=", v),
                Test::Less(v) => one("<", v),
                Test::LessOrEqual(v) => one("<=", v),
                Test::IsNull(true) => format!("{column} IS NULL"),
                Test::IsNull(false) => format!("{column} IS NOT NULL"),
                Test::In(values) => {
                    params.extend(values.iter().map(parameter));
                    format!("{column} IN ({})", vec!["?"; values.len()].join(", "))
                }
                Test::Between(low, high) => {
                    params.push(parameter(low));
                    params.push(parameter(high));
                    format!("{column} BETWEEN ? AND ?")
                }
            }
        })
        .collect();
    (parts.join(" AND "), params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::schema::ColumnInfo;
    use serde_json::json;

    fn threads() -> TableSchema {
        let column = |name: &str| ColumnInfo {
            name: name.into(),
            data_type: "int".into(),
            column_type: "int".into(),
            is_json: false,
            charset: None,
            primary_key: name == "id",
        };
        TableSchema { columns: vec![column("id"), column("status"), column("we`ird")] }
    }

    #[test]
    fn tests_compile_to_placeholders_and_names_to_quoted_columns() {
        let filter = json!([
            {"column": "status", "equals": "open"},
            {"column": "id", ">=": 10},
            {"column": "id", "in": [1, 2, 3]},
            {"column": "status", "between": ["a", "m"]},
            {"column": "we`ird", "is_null": false},
        ]);
        let predicates = parse(Some(&filter), &threads()).unwrap();
        let (sql, params) = where_sql(&predicates);
        assert_eq!(sql, "`status` = ? AND `id` >= ? AND `id` IN (?, ?, ?) AND `status` BETWEEN ? AND ? AND `we``ird` IS NOT NULL");
        assert_eq!(params.len(), 7);
        assert_eq!(params[1], mysql_async::Value::Bytes(b"10".to_vec()));
        assert_eq!(where_sql(&[]).0, "TRUE");
    }

    #[test]
    fn bad_filters_name_the_field_and_say_why() {
        for (filter, field, says) in [
            (json!({"column": "id"}), "filter", "array"),
            (json!([{"column": "nope", "equals": 1}]), "filter[0].column", "no column `nope`"),
            (json!([{"equals": 1}]), "filter[0].column", "required"),
            (json!([{"column": "id"}]), "filter[0]", "exactly one test"),
            (json!([{"column": "id", "equals": 1, ">": 2}]), "filter[0]", "exactly one test"),
            (json!([{"column": "id", "like": "x%"}]), "filter[0].like", "unknown test"),
            (json!([{"column": "id", "equals": [1]}]), "filter[0].equals", "string, a number"),
            (json!([{"column": "id", "in": []}]), "filter[0].in", "1 to 1,000"),
            (json!([{"column": "id", "between": [1]}]), "filter[0].between", "two values"),
            (json!([{"column": "id", "is_null": "yes"}]), "filter[0].is_null", "true or false"),
            (json!(["id = 1; DROP TABLE threads"]), "filter[0]", "object"),
        ] {
            let err = parse(Some(&filter), &threads()).unwrap_err();
            assert_eq!(err.field, field, "{filter}");
            assert!(err.message.contains(says), "{filter}: {}", err.message);
        }
        assert!(parse(None, &threads()).unwrap().is_empty());
    }
}
