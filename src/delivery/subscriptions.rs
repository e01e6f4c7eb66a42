//! Which webhooks an event goes to: the subscriptions in force at its commit.
//!
//! The PHP app (or an operator) registers, changes and removes webhooks with
//! SQL on the `webhooks` table. Those changes reach rowhook through the same
//! binlog as the events, in commit order and with before and after images
//! ([`ChangedRow`]s). Taking them from the images, never re-reading the table
//! because a binlog event said it changed, matters twice:
//!
//! - A replica receives a transaction's binlog events *before* the engine's
//!   commit makes its rows visible to other connections (two-phase commit:
//!   prepare, binlog write, engine commit). A `SELECT` run the moment the
//!   event arrives may miss the row, and nothing would ever make rowhook look
//!   again: a new webhook stayed unknown until some later, unrelated change.
//! - An event is routed by the subscriptions as they were when it committed,
//!   not when rowhook happens to read it: after downtime with a backlog, a
//!   webhook created during the downtime gets nothing committed before it
//!   existed, and one deactivated during the downtime still gets what was
//!   committed while it was active.
//!
//! [`Subscriptions`] is that view: who is subscribed to what, moved forward
//! change by change at each change's binlog position. The router saves it
//! with the checkpoint ([`Subscriptions::to_json`]), so a restart resumes
//! with the view that belongs to the checkpoint's position. A view read from
//! the table instead (the first start, a `--reset-position`, or a state
//! database on another server, whose changes never come through this binlog)
//! is the table as of a position; changes at or before it are already in it
//! and are skipped ([`Subscriptions::apply`]).
//!
//! Where an event goes is decided here; how it is sent (URL, secret) is the
//! webhook as it is now, which the delivery actors follow.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::config::{Operation, Ordering};
use crate::source::decoder::{ChangedRow, Position};
use crate::source::rows::RowImage;
use crate::state::store::Webhook;

/// One webhook's subscription: what routing needs of it, and nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: u64,
    pub is_active: bool,
    /// Event types; `"*"` means all.
    pub events: Vec<String>,
}

impl Subscription {
    pub fn of(webhook: &Webhook) -> Subscription {
        Subscription { id: webhook.id, is_active: webhook.is_active, events: webhook.events.clone() }
    }

    pub fn receives(&self, event_type: &str) -> bool {
        self.is_active && self.events.iter().any(|e| e == event_type || e == "*")
    }
}

/// A change of the webhooks table, read from a row's images.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookChange {
    /// Inserted or updated: the row as it is after the change.
    Upsert(Webhook),
    Remove(u64),
}

/// Why a row of the webhooks table cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("the row has no `{0}` column")]
    Missing(&'static str),
    #[error("`{column}` is not what rowhook expects: {found}")]
    Invalid { column: &'static str, found: String },
}

/// The changes one changed row amounts to. An update that changes the id
/// removes the old one.
pub fn changes_of(row: &ChangedRow, now_unix: i64) -> Result<Vec<WebhookChange>, RowError> {
    fn image(image: &Option<RowImage>) -> Result<&RowImage, RowError> {
        image.as_ref().ok_or(RowError::Missing("row image"))
    }
    Ok(match row.operation {
        Operation::Insert => vec![WebhookChange::Upsert(webhook_of(image(&row.after)?, now_unix)?)],
        Operation::Delete => vec![WebhookChange::Remove(id_of(image(&row.before)?)?)],
        Operation::Update => {
            let after = webhook_of(image(&row.after)?, now_unix)?;
            let before = id_of(image(&row.before)?)?;
            if before == after.id {
                vec![WebhookChange::Upsert(after)]
            } else {
                vec![WebhookChange::Remove(before), WebhookChange::Upsert(after)]
            }
        }
    })
}

fn id_of(image: &RowImage) -> Result<u64, RowError> {
    let id = image.get("id").ok_or(RowError::Missing("id"))?;
    id.as_u64().ok_or_else(|| RowError::Invalid { column: "id", found: id.to_string() })
}

fn text<'a>(image: &'a RowImage, column: &'static str) -> Result<Option<&'a str>, RowError> {
    match image.get(column) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => Err(RowError::Invalid { column, found: other.to_string() }),
    }
}

/// A webhook as [`crate::state::store::Store::load_webhooks`] would read this row:
/// the same defaults (`is_active` NULL is active, `events` that are not a
/// JSON array of strings subscribe to nothing), the previous secret only
/// while its overlap lasts. Secrets as the row holds them, sealed or
/// plaintext ([`crate::state::secrets`]): the delivery actor opens them.
pub fn webhook_of(image: &RowImage, now_unix: i64) -> Result<Webhook, RowError> {
    let id = id_of(image)?;
    let url = text(image, "url")?.ok_or(RowError::Missing("url"))?.to_string();
    let secret = text(image, "secret")?.ok_or(RowError::Missing("secret"))?.to_string();
    // MariaDB's JSON is text (a JSON value once its CHECK is known, else a string).
    let events = match image.get("events") {
        Some(Json::String(text)) => crate::state::store::parse_events(id, text),
        Some(other) => crate::state::store::parse_events(id, &other.to_string()),
        None => return Err(RowError::Missing("events")),
    };
    let expires = text(image, "previous_secret_expires_at")?.and_then(unix_seconds);
    let previous_secret =
        text(image, "previous_secret")?.filter(|_| expires.is_some_and(|at| at > now_unix)).map(str::to_string);
    let is_active = match image.get("is_active") {
        None | Some(Json::Null) => true,
        Some(Json::Bool(b)) => *b,
        Some(value) => value.as_i64().map(|n| n != 0).ok_or_else(|| RowError::Invalid { column: "is_active", found: value.to_string() })?,
    };
    let failed_attempts = image.get("failed_attempts").and_then(Json::as_i64).map_or(0, |n| u32::try_from(n).unwrap_or(0));
    let ordering = text(image, "ordering")?.and_then(Ordering::parse);
    Ok(Webhook { id, url, events, secret, previous_secret, is_active, failed_attempts, ordering })
}

/// Seconds since the epoch of an RFC 3339 time (how the decoder writes TIMESTAMP).
fn unix_seconds(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok().map(|t| t.unix_timestamp())
}

/// Whether `at` is at or before `as_of` in one server's binlog ([`Position::at_or_before`]).
pub fn at_or_before(at: &Position, as_of: &Position) -> bool {
    at.at_or_before(as_of)
}

/// The subscriptions as of a binlog position: see the module docs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subscriptions {
    by_id: BTreeMap<u64, Subscription>,
    /// Read from the table as of this position: changes at or before it are in already.
    as_of: Option<Position>,
    /// Changed since [`Subscriptions::to_json`] last ran.
    changed: bool,
}

/// How the view is saved with the checkpoint.
#[derive(Serialize, Deserialize)]
struct Saved {
    /// A view read from the table keeps its position (changes at or before it are in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    as_of: Option<Position>,
    webhooks: Vec<Subscription>,
}

impl Subscriptions {
    /// The table as read at `as_of` (None: nothing to skip).
    pub fn from_table(webhooks: &[Webhook], as_of: Option<Position>) -> Subscriptions {
        Subscriptions { by_id: webhooks.iter().map(|w| (w.id, Subscription::of(w))).collect(), as_of, changed: true }
    }

    /// The table as polled from a state database on another server: its
    /// changes never come through the binlog, and the view is never saved.
    pub fn polled(webhooks: &[Webhook]) -> Subscriptions {
        Subscriptions { changed: false, ..Subscriptions::from_table(webhooks, None) }
    }

    /// The view saved with the checkpoint the reader resumes from.
    pub fn from_json(text: &str) -> Result<Subscriptions, serde_json::Error> {
        let saved: Saved = serde_json::from_str(text)?;
        Ok(Subscriptions {
            by_id: saved.webhooks.into_iter().map(|s| (s.id, s)).collect(),
            as_of: saved.as_of,
            changed: false,
        })
    }

    /// The view as saved with a checkpoint; clears [`Subscriptions::changed`].
    pub fn to_json(&mut self) -> String {
        self.changed = false;
        let saved = Saved { as_of: self.as_of.clone(), webhooks: self.by_id.values().cloned().collect() };
        serde_json::to_string(&saved).unwrap_or_default()
    }

    /// Whether the view changed since it was last saved.
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// Applies a change committed at `at`; one at or before the table read
    /// the view came from is in it already. True when the view changed.
    pub fn apply(&mut self, change: &WebhookChange, at: &Position) -> bool {
        if self.as_of.as_ref().is_some_and(|as_of| at_or_before(at, as_of)) {
            return false;
        }
        let changed = match change {
            WebhookChange::Upsert(webhook) => {
                let new = Subscription::of(webhook);
                self.by_id.insert(webhook.id, new.clone()).is_none_or(|old| old != new)
            }
            WebhookChange::Remove(id) => self.by_id.remove(id).is_some(),
        };
        self.changed |= changed;
        changed
    }

    /// The ids of the webhooks that receive `event_type`.
    pub fn receivers<'a>(&'a self, event_type: &'a str) -> impl Iterator<Item = u64> + 'a {
        self.by_id.values().filter(move |s| s.receives(event_type)).map(|s| s.id)
    }

    pub fn get(&self, id: u64) -> Option<&Subscription> {
        self.by_id.get(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn image(columns: &[(&str, Json)]) -> RowImage {
        RowImage { columns: columns.iter().map(|(n, v)| (Arc::from(*n), v.clone())).collect() }
    }

    fn row(id: u64, events: Json, active: Json) -> RowImage {
        image(&[
            ("id", id.into()),
            ("url", "http://example.com/hook".into()),
            ("events", events),
            ("secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
            ("previous_secret", Json::Null),
            ("previous_secret_expires_at", Json::Null),
            ("is_active", active),
            ("failed_attempts", 3.into()),
        ])
    }

    fn changed(operation: Operation, before: Option<RowImage>, after: Option<RowImage>) -> ChangedRow {
        ChangedRow { table: Arc::from("webhooks"), operation, before, after, pos: 4, index: 0 }
    }

    fn at(file: &str, pos: u64) -> Position {
        Position { file: file.into(), pos }
    }

    #[test]
    fn a_row_reads_as_the_table_would() {
        // MariaDB's JSON arrives as text when its CHECK is unknown, as JSON when known.
        for events in [Json::String(r#"["thread.created","note.added"]"#.into()), serde_json::json!(["thread.created", "note.added"])] {
            let webhook = webhook_of(&row(7, events, 1.into()), 0).unwrap();
            assert_eq!(webhook.id, 7);
            assert_eq!(webhook.events, ["thread.created", "note.added"]);
            assert!(webhook.is_active);
            assert_eq!(webhook.failed_attempts, 3);
            assert_eq!(webhook.secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        }
        assert!(!webhook_of(&row(7, "[]".into(), 0.into()), 0).unwrap().is_active);
        assert!(webhook_of(&row(7, "[]".into(), Json::Null), 0).unwrap().is_active, "NULL is active, as in load_webhooks");
        let broken = webhook_of(&row(7, "not json".into(), 1.into()), 0).unwrap();
        assert!(broken.events.is_empty(), "events that do not parse subscribe to nothing");
        assert_eq!(webhook_of(&image(&[("id", 1.into())]), 0), Err(RowError::Missing("url")));
        assert!(matches!(webhook_of(&row(7, "[]".into(), "yes".into()), 0), Err(RowError::Invalid { column: "is_active", .. })));
    }

    #[test]
    fn the_previous_secret_counts_only_while_its_overlap_lasts() {
        let mut image = row(1, "[]".into(), 1.into());
        image.columns[4].1 = "whsec_old".into();
        image.columns[5].1 = "2026-12-07T22:00:00Z".into();
        let expires = unix_seconds("2026-12-07T22:00:00Z").unwrap();
        assert_eq!(webhook_of(&image, expires - 1).unwrap().previous_secret.as_deref(), Some("whsec_old"));
        assert_eq!(webhook_of(&image, expires).unwrap().previous_secret, None);
    }

    #[test]
    fn inserts_updates_and_deletes_become_changes() {
        let insert = changed(Operation::Insert, None, Some(row(1, "[\"*\"]".into(), 1.into())));
        assert!(matches!(&changes_of(&insert, 0).unwrap()[..], [WebhookChange::Upsert(w)] if w.id == 1));
        let delete = changed(Operation::Delete, Some(row(1, "[]".into(), 1.into())), None);
        assert_eq!(changes_of(&delete, 0).unwrap(), [WebhookChange::Remove(1)]);
        let renumber = changed(Operation::Update, Some(row(1, "[]".into(), 1.into())), Some(row(2, "[]".into(), 1.into())));
        let changes = changes_of(&renumber, 0).unwrap();
        assert!(matches!(&changes[..], [WebhookChange::Remove(1), WebhookChange::Upsert(w)] if w.id == 2));
        let no_after = changed(Operation::Insert, None, None);
        assert!(changes_of(&no_after, 0).is_err());
    }

    #[test]
    fn positions_compare_by_file_number_then_offset() {
        assert!(at_or_before(&at("binlog.000002", 900), &at("binlog.000002", 900)));
        assert!(at_or_before(&at("binlog.000002", 100), &at("binlog.000002", 900)));
        assert!(!at_or_before(&at("binlog.000002", 901), &at("binlog.000002", 900)));
        assert!(at_or_before(&at("binlog.000001", 5000), &at("binlog.000002", 4)));
        assert!(!at_or_before(&at("binlog.000003", 4), &at("binlog.000002", 9000)));
        // Past 999999 the number grows a digit: still in order.
        assert!(at_or_before(&at("binlog.999999", 4), &at("binlog.1000000", 4)));
    }

    #[test]
    fn the_view_follows_changes_in_order_and_skips_what_the_table_read_had() {
        let webhook = |id, active, events: &[&str]| Webhook {
            id,
            url: "http://h/".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            secret: "s".into(),
            previous_secret: None,
            is_active: active,
            failed_attempts: 0,
            ordering: None,
        };
        let mut view = Subscriptions::from_table(&[webhook(1, true, &["*"])], Some(at("b.000001", 500)));
        assert_eq!(view.receivers("thread.created").collect::<Vec<_>>(), [1]);
        // A change the table read had seen already: skipped (it would take the view back in time).
        assert!(!view.apply(&WebhookChange::Remove(1), &at("b.000001", 400)));
        assert_eq!(view.receivers("thread.created").count(), 1);
        // Later ones apply.
        assert!(view.apply(&WebhookChange::Upsert(webhook(2, true, &["note.added"])), &at("b.000001", 600)));
        assert!(view.apply(&WebhookChange::Upsert(webhook(1, false, &["*"])), &at("b.000001", 700)));
        assert!(!view.apply(&WebhookChange::Upsert(webhook(1, false, &["*"])), &at("b.000001", 800)), "the same again is no change");
        assert_eq!(view.receivers("thread.created").count(), 0);
        assert_eq!(view.receivers("note.added").collect::<Vec<_>>(), [2]);
        // Saved and read back: the same routing, nothing secret in it.
        let json = view.to_json();
        assert!(!view.changed());
        assert!(!json.contains("http://h/") && !json.contains("\"s\""), "{json}");
        let back = Subscriptions::from_json(&json).unwrap();
        assert_eq!(back.get(1), view.get(1));
        assert_eq!(back.as_of, view.as_of, "the table read's position is kept: {json}");
        assert_eq!(back.receivers("note.added").collect::<Vec<_>>(), [2]);
        assert!(Subscriptions::from_json("[1,2]").is_err());
    }
}
