//! From row changes to typed events: a pure function driven by the
//! `[[events]]` rules of the configuration.
//!
//! A [`RowChange`] (table, operation, before and after images as JSON) goes
//! through every rule of its table; each rule whose operation matches and
//! whose conditions all hold yields one [`MappedEvent`] whose `data` holds only
//! the allowlisted `fields` (and, for updates with `changes`, the changed
//! columns). Columns a rule does not name never leave the database.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use crate::config::{Became, ChangesSpec, Condition, EventRule, Operation};
use crate::source::decoder::{Columns, MappedRow, ReadSet, RowChange, RowMapper};
use crate::source::rows::RowImage;
use crate::source::schema::TableSchema;

/// An event produced by one rule from one row change.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedEvent {
    /// Index of the rule in the configuration (part of the event id).
    pub rule: usize,
    pub event_type: Arc<str>,
    pub data: Json,
}

/// The rules, indexed by table.
#[derive(Debug, Default)]
pub struct Mapper {
    by_table: HashMap<String, Vec<(usize, Arc<str>, EventRule)>>,
    reads: HashMap<String, Columns>,
}

impl Mapper {
    pub fn new(rules: &[EventRule]) -> Mapper {
        let mut by_table: HashMap<String, Vec<_>> = HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            by_table
                .entry(rule.table.clone())
                .or_default()
                .push((i, Arc::from(rule.event_type.as_str()), rule.clone()));
        }
        let reads = by_table
            .iter()
            .map(|(table, rules)| {
                let mut names = HashSet::new();
                for (_, _, rule) in rules {
                    names.extend(rule.fields.values().cloned());
                    names.extend(rule.conditions.iter().map(|c| c.column.clone()));
                    names.extend(rule.group_by.iter().flatten().cloned());
                    if let Some(spec) = &rule.changes {
                        match &spec.columns {
                            Some(columns) => names.extend(columns.iter().cloned()),
                            None => return (table.clone(), Columns::All),
                        }
                    }
                }
                (table.clone(), Columns::Named(names))
            })
            .collect();
        Mapper { by_table, reads }
    }

    /// The tables the rules read and, of each, the columns, without the
    /// mapping: for decoding alone.
    pub fn read_set(&self) -> ReadSet {
        ReadSet::new(self.reads.clone())
    }

    /// Also read the primary key columns of every mapped table (a backfill
    /// follows the rows it copies by their keys).
    pub fn read_keys(&mut self, tables: &HashMap<String, TableSchema>) {
        for (table, columns) in self.reads.iter_mut() {
            if let (Columns::Named(names), Some(schema)) = (columns, tables.get(table)) {
                names.extend(schema.primary_key());
            }
        }
    }

    /// The first rule of `event_type` (in the config's order): its index and the rule.
    pub fn rule_of(&self, event_type: &str) -> Option<(usize, &EventRule)> {
        self.by_table.values().flatten().filter(|(_, t, _)| &**t == event_type).map(|(i, _, rule)| (*i, rule)).min_by_key(|(i, _)| *i)
    }

    /// A row as if it were just inserted, through one rule (whatever its
    /// operations): a backfill's event. None when its conditions do not hold.
    pub fn map_as_insert(&self, rule_index: usize, image: &RowImage) -> Option<MappedRow> {
        let (i, event_type, rule) = self.by_table.values().flatten().find(|(i, _, _)| *i == rule_index)?;
        let change = RowChange { table: &rule.table, operation: Operation::Insert, before: None, after: Some(image) };
        if !rule.conditions.iter().all(|c| condition_holds(c, &change)) {
            return None;
        }
        write_data(rule, &change).map(|data| MappedRow { rule: *i, event_type: event_type.clone(), data, group: group_key(rule, &change) })
    }

    /// The columns of `table` the rules read (None: the table is not mapped).
    pub fn reads(&self, table: &str) -> Option<&Columns> {
        self.reads.get(table)
    }

    /// All events one row change produces (often none).
    pub fn map(&self, change: &RowChange<'_>) -> Vec<MappedEvent> {
        self.matching(change)
            .filter_map(|(i, event_type, rule)| {
                build_data(rule, change).map(|data| MappedEvent { rule: *i, event_type: event_type.clone(), data })
            })
            .collect()
    }

    /// The rules of the change's table whose operation matches and whose conditions hold.
    fn matching<'m>(&'m self, change: &'m RowChange<'_>) -> impl Iterator<Item = &'m (usize, Arc<str>, EventRule)> + 'm {
        self.by_table
            .get(change.table)
            .into_iter()
            .flatten()
            .filter(|(_, _, rule)| rule.operations.contains(&change.operation))
            .filter(|(_, _, rule)| rule.conditions.iter().all(|c| condition_holds(c, change)))
    }
}


impl Mapper {
    /// [`Mapper::map`] with each `data` written straight to JSON text, the
    /// same bytes as serializing `map`'s, without building and cloning a
    /// `serde_json::Value` per event (the decoder's hot path).
    /// Each `data` is exactly `serde_json::to_string` of [`MappedEvent::data`].
    pub fn map_serialized(&self, change: &RowChange<'_>) -> Vec<MappedRow> {
        self.matching(change)
            .filter_map(|(i, event_type, rule)| {
                write_data(rule, change).map(|data| MappedRow { rule: *i, event_type: event_type.clone(), data, group: group_key(rule, change) })
            })
            .collect()
    }
}

/// The rules as the source stage's [`RowMapper`]: which tables and columns
/// it decodes, and what their changed rows become, row by row as it decodes.
impl RowMapper for Mapper {
    fn columns(&self, table: &str) -> Option<&Columns> {
        self.reads.get(table)
    }
    fn tables(&self) -> Vec<String> {
        self.reads.keys().cloned().collect()
    }
    fn map(&self, change: &RowChange<'_>) -> Vec<MappedRow> {
        self.map_serialized(change)
    }
}

/// The longest group key stored as it is; longer ones are stored as their
/// SHA-256 (`webhook_deliveries.group_key` is a VARCHAR(191), indexed).
pub const MAX_GROUP_KEY_LEN: usize = 191;

/// The event's group key: the values of the rule's `group_by` columns in
/// the row (after image; before image for deletes). One column: its value
/// as text (`42`, `abc`), so that `threads.id` 42 and `emails.thread_id` 42
/// are the same group; several: a JSON array of the values. None when the
/// rule groups by nothing.
pub fn group_key(rule: &EventRule, change: &RowChange<'_>) -> Option<String> {
    let columns = rule.group_by.as_deref().filter(|c| !c.is_empty())?;
    let row = current(change);
    let value = |column: &String| row.and_then(|r| r.get(column)).unwrap_or(&Json::Null);
    let key = match columns {
        [one] => match value(one) {
            Json::String(text) => text.clone(),
            other => other.to_string(),
        },
        many => Json::Array(many.iter().map(|c| value(c).clone()).collect()).to_string(),
    };
    if key.len() <= MAX_GROUP_KEY_LEN {
        return Some(key);
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    Some(format!("sha256:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// The rules with every `group_by` left out filled in: the table's primary
/// key (from the live schema). A table without one leaves its events
/// ungrouped (said in the log).
pub fn with_default_groups(rules: &[EventRule], tables: &HashMap<String, TableSchema>) -> Vec<EventRule> {
    rules
        .iter()
        .map(|rule| {
            let mut rule = rule.clone();
            if rule.group_by.is_none() {
                let key = tables.get(&rule.table).map(TableSchema::primary_key).unwrap_or_default();
                if key.is_empty() {
                    tracing::warn!(event_type = %rule.event_type, table = %rule.table, "the table has no primary key and the rule no group_by: its events are not grouped (no order among them)");
                }
                rule.group_by = Some(key);
            }
            rule
        })
        .collect()
}

/// The columns an update changed that `spec` reports: (column, old, new), in table order.
fn changed_columns<'r>(spec: &ChangesSpec, before: &'r RowImage, after: &'r RowImage) -> Vec<(&'r str, &'r Json, &'r Json)> {
    after
        .columns
        .iter()
        .filter(|(name, _)| spec.columns.as_ref().is_none_or(|cols| cols.iter().any(|c| **c == **name)))
        .filter(|(name, _)| !spec.ignore.iter().any(|c| **c == **name))
        .map(|(name, new)| (&**name, before.get(name).unwrap_or(&Json::Null), new))
        .filter(|(_, old, new)| old != new)
        .collect()
}

/// [`build_data`] serialized, written directly: keys in the order a
/// `serde_json::Map` (a BTreeMap) keeps them. Values nested deep enough to
/// need [`cap_depth`] take the `build_data` path.
fn write_data(rule: &EventRule, change: &RowChange<'_>) -> Option<String> {
    let row = current(change);
    // "changes": (column, old, new), by column name as a Map orders them.
    let mut changes: Vec<(&str, &Json, &Json)> = Vec::new();
    let has_changes = if let (Some(spec), Some(before), Some(after)) = (&rule.changes, change.before, change.after) {
        changes = changed_columns(spec, before, after);
        if changes.is_empty() {
            return None;
        }
        changes.sort_by(|a, b| a.0.cmp(b.0));
        changes.dedup_by(|a, b| a.0 == b.0);
        true
    } else {
        false
    };
    // data (1) -> field (2); data -> changes (2) -> column (3) -> old/new (4).
    let too_deep = rule.fields.values().any(|c| row.and_then(|r| r.get(c)).is_some_and(|v| nests_beyond(v, MAX_DATA_DEPTH - 1)))
        || changes.iter().any(|(_, old, new)| nests_beyond(old, MAX_DATA_DEPTH - 3) || nests_beyond(new, MAX_DATA_DEPTH - 3));
    if too_deep {
        return build_data(rule, change).map(|data| data.to_string());
    }
    let mut out: Vec<u8> = Vec::with_capacity(256);
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, name: &str| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        write_json(out, name);
        out.push(b':');
    };
    let mut changes_written = !has_changes;
    let write_changes = |out: &mut Vec<u8>| {
        out.push(b'{');
        for (k, (name, old, new)) in changes.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            write_json(out, name);
            out.extend_from_slice(b":{\"new\":");
            write_json(out, new);
            out.extend_from_slice(b",\"old\":");
            write_json(out, old);
            out.push(b'}');
        }
        out.push(b'}');
    };
    for (output, column) in &rule.fields {
        if !changes_written && output.as_str() >= "changes" {
            key(&mut out, "changes");
            write_changes(&mut out);
            changes_written = true;
            if output == "changes" {
                continue; // the changes replace a field of that name
            }
        }
        key(&mut out, output);
        write_json(&mut out, row.and_then(|r| r.get(column)).unwrap_or(&Json::Null));
    }
    if !changes_written {
        key(&mut out, "changes");
        write_changes(&mut out);
    }
    out.push(b'}');
    String::from_utf8(out).ok()
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing to a Vec cannot fail; a map with non-string keys cannot occur.
    let _ = serde_json::to_writer(out, value);
}

/// Would [`cap_depth`] with this `max` change `value`?
fn nests_beyond(value: &Json, max: usize) -> bool {
    match value {
        Json::Array(_) | Json::Object(_) if max <= 1 => true,
        Json::Array(items) => items.iter().any(|v| nests_beyond(v, max - 1)),
        Json::Object(map) => map.values().any(|v| nests_beyond(v, max - 1)),
        _ => false,
    }
}

/// The image conditions and fields read: after, else before (deletes).
fn current<'a>(change: &RowChange<'a>) -> Option<&'a RowImage> {
    change.after.or(change.before)
}

fn condition_holds(condition: &Condition, change: &RowChange<'_>) -> bool {
    let now = current(change).and_then(|row| row.get(&condition.column));
    let before = change.before.and_then(|row| row.get(&condition.column));
    if let Some(expected) = &condition.equals {
        return now.is_some_and(|v| loosely_equal(v, expected));
    }
    if let Some(expected) = &condition.not_equals {
        return now.is_some_and(|v| !loosely_equal(v, expected));
    }
    if let Some(want_null) = condition.is_null {
        return now.is_some_and(|v| v.is_null() == want_null);
    }
    if let Some(became) = condition.became {
        let was_null = before.is_none_or(Json::is_null);
        let is_null = now.is_none_or(Json::is_null);
        return match (change.operation, became) {
            (Operation::Insert, Became::NotNull) => !is_null,
            (Operation::Update, Became::NotNull) => was_null && !is_null,
            (Operation::Update, Became::Null) => !was_null && is_null,
            _ => false,
        };
    }
    if let Some(want_changed) = condition.changed {
        return change.operation == Operation::Update && (before != now) == want_changed;
    }
    false
}

/// JSON equality, except that a number and its decimal text compare equal
/// (`1` equals `"1"`), so rules need not know how a column is encoded.
fn loosely_equal(value: &Json, expected: &Json) -> bool {
    if value == expected {
        return true;
    }
    match (value, expected) {
        (Json::String(s), Json::Number(n)) | (Json::Number(n), Json::String(s)) => s == &n.to_string(),
        (Json::Bool(b), Json::Number(n)) | (Json::Number(n), Json::Bool(b)) => n.as_u64() == Some(u64::from(*b)),
        _ => false,
    }
}

/// The deepest nesting an event's `data` may have. MariaDB refuses JSON nested
/// deeper than 32 levels in `webhook_deliveries.payload`; the envelope adds one.
pub const MAX_DATA_DEPTH: usize = 30;

/// Replaces values nested deeper than `max` levels by their JSON text, so a
/// deeply nested JSON column can never make the event unstorable.
/// Returns whether anything was replaced.
pub fn cap_depth(value: &mut Json, max: usize) -> bool {
    match value {
        Json::Array(_) | Json::Object(_) if max <= 1 => {
            *value = Json::String(value.to_string());
            true
        }
        Json::Array(items) => items.iter_mut().fold(false, |acc, v| cap_depth(v, max - 1) | acc),
        Json::Object(map) => map.values_mut().fold(false, |acc, v| cap_depth(v, max - 1) | acc),
        _ => false,
    }
}

/// The payload of one event, or None when an update rule's `changes` is empty.
fn build_data(rule: &EventRule, change: &RowChange<'_>) -> Option<Json> {
    let row = current(change);
    let mut data = Map::new();
    for (output, column) in &rule.fields {
        let value = row.and_then(|r| r.get(column)).cloned().unwrap_or(Json::Null);
        data.insert(output.clone(), value);
    }
    if let (Some(spec), Some(before), Some(after)) = (&rule.changes, change.before, change.after) {
        let changes: Map<String, Json> = changed_columns(spec, before, after)
            .into_iter()
            .map(|(name, old, new)| (name.to_string(), serde_json::json!({ "old": old, "new": new })))
            .collect();
        if changes.is_empty() {
            return None;
        }
        data.insert("changes".to_string(), Json::Object(changes));
    }
    let mut data = Json::Object(data);
    if cap_depth(&mut data, MAX_DATA_DEPTH) {
        tracing::warn!(
            event_type = %rule.event_type,
            max_depth = MAX_DATA_DEPTH,
            "a value nests deeper than the state database stores; its deepest parts are sent as JSON text"
        );
    }
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    fn shipped() -> Mapper {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rowhook.toml");
        let config = Config::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
        Mapper::new(&config.events)
    }

    fn row(pairs: &[(&str, Json)]) -> RowImage {
        RowImage { columns: pairs.iter().map(|(k, v)| (Arc::from(*k), v.clone())).collect() }
    }

    fn thread(status: &str, updated: &str) -> RowImage {
        row(&[
            ("id", json!(7)),
            ("subject", json!("Printer on fire")),
            ("status", json!(status)),
            ("assigned_to", Json::Null),
            ("created_at", json!("2026-11-28T10:00:00Z")),
            ("updated_at", json!(updated)),
        ])
    }

    fn email(direction: &str, sent_at: Json) -> RowImage {
        row(&[
            ("id", json!(3)),
            ("thread_id", json!(7)),
            ("direction", json!(direction)),
            ("subject", json!("Re: Printer")),
            ("from_address", json!("a@example.com")),
            ("to_addresses", json!(["b@example.com"])),
            ("body_text", json!("secret body")),
            ("sent_at", sent_at),
            ("received_at", json!("2026-11-28T10:00:00")),
        ])
    }

    fn types(events: &[MappedEvent]) -> Vec<&str> {
        events.iter().map(|e| &*e.event_type).collect()
    }

    #[test]
    fn thread_insert_gives_thread_created_with_allowlisted_fields() {
        let after = thread("open", "2026-11-28T10:00:00Z");
        let events = shipped().map(&RowChange { table: "threads", operation: Operation::Insert, before: None, after: Some(&after) });
        assert_eq!(types(&events), ["thread.created"]);
        assert_eq!(
            events[0].data,
            json!({"thread_id": 7, "subject": "Printer on fire", "status": "open", "created_at": "2026-11-28T10:00:00Z"})
        );
    }

    #[test]
    fn thread_update_reports_changes_but_not_updated_at_alone() {
        let before = thread("open", "2026-11-28T10:00:00Z");
        let after = thread("closed", "2026-11-28T11:00:00Z");
        let m = shipped();
        let events = m.map(&RowChange { table: "threads", operation: Operation::Update, before: Some(&before), after: Some(&after) });
        assert_eq!(types(&events), ["thread.updated"]);
        assert_eq!(
            events[0].data,
            json!({"thread_id": 7, "updated_at": "2026-11-28T11:00:00Z", "changes": {"status": {"old": "open", "new": "closed"}}})
        );
        let touched = thread("open", "2026-11-28T12:00:00Z");
        let none = m.map(&RowChange { table: "threads", operation: Operation::Update, before: Some(&before), after: Some(&touched) });
        assert!(none.is_empty());
    }

    #[test]
    fn thread_delete_uses_the_before_image() {
        let before = thread("open", "x");
        let events = shipped().map(&RowChange { table: "threads", operation: Operation::Delete, before: Some(&before), after: None });
        assert_eq!(types(&events), ["thread.deleted"]);
        assert_eq!(events[0].data, json!({"thread_id": 7, "subject": "Printer on fire"}));
    }

    #[test]
    fn emails_by_direction_and_sent_at() {
        let m = shipped();
        let incoming = email("incoming", Json::Null);
        let e = m.map(&RowChange { table: "emails", operation: Operation::Insert, before: None, after: Some(&incoming) });
        assert_eq!(types(&e), ["email.received"]);
        assert_eq!(e[0].data["from"], "a@example.com");
        assert!(e[0].data.get("body_text").is_none());

        let draft = email("outgoing", Json::Null);
        assert!(m.map(&RowChange { table: "emails", operation: Operation::Insert, before: None, after: Some(&draft) }).is_empty());
        let sent = email("outgoing", json!("2026-11-28T10:05:00"));
        let e = m.map(&RowChange { table: "emails", operation: Operation::Update, before: Some(&draft), after: Some(&sent) });
        assert_eq!(types(&e), ["email.sent"]);
        assert_eq!(e[0].data["to"], json!(["b@example.com"]));
        // Sent already: a later update is no second email.sent.
        assert!(m.map(&RowChange { table: "emails", operation: Operation::Update, before: Some(&sent), after: Some(&sent) }).is_empty());
        // Inserted as sent.
        let e = m.map(&RowChange { table: "emails", operation: Operation::Insert, before: None, after: Some(&sent) });
        assert_eq!(types(&e), ["email.sent"]);
    }

    #[test]
    fn deep_values_are_capped_as_text() {
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        let mut data = json!({"doc": deep});
        assert!(cap_depth(&mut data, MAX_DATA_DEPTH));
        fn depth(v: &Json) -> usize {
            match v {
                Json::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
                Json::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
                _ => 0,
            }
        }
        assert_eq!(depth(&data), MAX_DATA_DEPTH - 1, "capped at the limit");
        let mut shallow = json!({"a": [1, {"b": 2}]});
        assert!(!cap_depth(&mut shallow, MAX_DATA_DEPTH));
        assert_eq!(shallow, json!({"a": [1, {"b": 2}]}));
    }

    /// `map_serialized` writes exactly what serializing `map`'s data gives.
    fn assert_same_serialization(m: &Mapper, change: &RowChange<'_>) {
        let expected: Vec<(usize, String)> = m.map(change).into_iter().map(|e| (e.rule, e.data.to_string())).collect();
        let got: Vec<(usize, String)> = m.map_serialized(change).into_iter().map(|e| (e.rule, e.data)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn serialized_data_is_byte_identical() {
        let m = shipped();
        let (open, closed) = (thread("open", "2026-11-28T10:00:00Z"), thread("clo\"sed\u{1F600}", "2026-11-28T11:00:00Z"));
        for (operation, before, after) in [
            (Operation::Insert, None, Some(&open)),
            (Operation::Update, Some(&open), Some(&closed)),
            (Operation::Update, Some(&open), Some(&open)),
            (Operation::Delete, Some(&open), None),
        ] {
            assert_same_serialization(&m, &RowChange { table: "threads", operation, before, after });
        }
        let (draft, sent) = (email("outgoing", Json::Null), email("outgoing", json!("2026-11-28T10:05:00")));
        assert_same_serialization(&m, &RowChange { table: "emails", operation: Operation::Update, before: Some(&draft), after: Some(&sent) });
        assert_same_serialization(&m, &RowChange { table: "emails", operation: Operation::Insert, before: None, after: Some(&email("incoming", Json::Null)) });

        // Fields around and named "changes", a changes list, deep values (capped as text).
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!({"a": [deep]});
        }
        let config = Config::from_toml(
            r#"
            [source]
            url = "mysql://u@h/db"
            [[events]]
            type = "x.changed"
            table = "t"
            operations = ["update"]
            fields = { a = "id", changes = "id", zed = "doc", chan = "id", d = "doc" }
            changes = { columns = ["doc", "n", "id"] }
            [[events]]
            type = "x.all"
            table = "t"
            operations = ["update"]
            fields = { b = "n" }
            changes = {}
            "#,
        )
        .unwrap();
        let m = Mapper::new(&config.events);
        for doc in [json!({"k": [1, 2.5, "é"]}), deep] {
            let before = row(&[("id", json!(1)), ("n", json!(2)), ("doc", json!(null)), ("zz", json!("a"))]);
            let after = row(&[("id", json!(1)), ("n", json!(3)), ("doc", doc), ("zz", json!("b"))]);
            assert_same_serialization(&m, &RowChange { table: "t", operation: Operation::Update, before: Some(&before), after: Some(&after) });
        }
    }

    #[test]
    fn columns_read_by_the_rules() {
        let m = shipped();
        assert_eq!(m.reads("threads"), Some(&Columns::All), "thread.updated reports changes of every column");
        let emails = m.reads("emails").unwrap();
        for column in ["id", "thread_id", "subject", "from_address", "to_addresses", "received_at", "sent_at", "direction"] {
            assert!(emails.contains(column), "{column}");
        }
        assert!(!emails.contains("body_text"));
        assert!(!m.reads("notes").unwrap().contains("content"));
        assert_eq!(m.reads("users"), None);
    }

    #[test]
    fn unmapped_tables_and_loose_equality() {
        let m = shipped();
        let read = m.read_set();
        assert_eq!(read.columns("users"), None, "no rule reads users: its rows are not decoded");
        assert!(read.columns("notes").is_some());
        assert!(loosely_equal(&json!("1"), &json!(1)));
        assert!(loosely_equal(&json!(1), &json!(true)));
        assert!(!loosely_equal(&json!("incoming"), &json!("outgoing")));
    }
}
