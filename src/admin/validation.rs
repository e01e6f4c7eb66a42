//! Validation of admin API input: pure functions from a parsed JSON body (or
//! query) to typed values, or a [`FieldError`] naming the field.
//!
//! Bodies are read as `serde_json::Value` first and checked field by field,
//! so every error names its field and says what is expected, which serde's
//! derive messages do not always do.

use crate::config::Ordering;
use serde_json::{Map, Value};

/// The longest URL the `webhooks.url` column holds.
pub const MAX_URL_CHARS: usize = 500;
/// The shortest secret accepted from a client.
pub const MIN_SECRET_CHARS: usize = 16;
/// The largest page.
pub const MAX_PER_PAGE: u64 = 100;

/// What is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError { field: field.to_string(), message: message.into() }
}

/// `POST /api/webhooks`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub secret: Option<String>,
    pub is_active: bool,
    /// Its own ordering (None: `[delivery] ordering`).
    pub ordering: Option<Ordering>,
}

/// `PUT /api/webhooks/{id}`: only what is given changes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub is_active: Option<bool>,
    /// Some(None): back to `[delivery] ordering`.
    pub ordering: Option<Option<Ordering>>,
}

fn object(body: &Value) -> Result<&Map<String, Value>, FieldError> {
    body.as_object().ok_or_else(|| error("body", "must be a JSON object"))
}

fn reject_unknown(body: &Map<String, Value>, allowed: &[&str], hint: &str) -> Result<(), FieldError> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(error(key, format!("unknown field; allowed: {}{hint}", allowed.join(", ")))),
        None => Ok(()),
    }
}

fn url(value: &Value) -> Result<String, FieldError> {
    let text = value.as_str().ok_or_else(|| error("url", "must be a string"))?;
    if text.chars().count() > MAX_URL_CHARS {
        return Err(error("url", format!("must be at most {MAX_URL_CHARS} characters")));
    }
    let parsed = url::Url::parse(text).map_err(|e| error("url", format!("not a valid URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(error("url", "must be an http or https URL"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(error("url", "must name a host"));
    }
    Ok(text.to_string())
}

fn events(value: &Value, known: &[String]) -> Result<Vec<String>, FieldError> {
    let list = value.as_array().ok_or_else(|| error("events", "must be an array of event types"))?;
    if list.is_empty() {
        return Err(error("events", "must not be empty"));
    }
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let name = item.as_str().ok_or_else(|| error("events", "every item must be a string"))?;
        if name != "*" && !known.iter().any(|k| k == name) {
            return Err(error("events", format!("unknown event type {name:?}; known: {}, or \"*\" for all", known.join(", "))));
        }
        if !out.iter().any(|e| e == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

/// `"group"`, `"webhook"`, `"none"`, or null for `[delivery] ordering`.
fn ordering(value: &Value) -> Result<Option<Ordering>, FieldError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ordering::parse(text)
            .map(Some)
            .ok_or_else(|| error("ordering", format!("unknown ordering {text:?}: must be \"group\", \"webhook\", \"none\" or null (the configured default)"))),
        _ => Err(error("ordering", "must be \"group\", \"webhook\", \"none\" or null")),
    }
}

fn boolean(field: &str, value: &Value) -> Result<bool, FieldError> {
    value.as_bool().ok_or_else(|| error(field, "must be true or false"))
}

/// Checks a registration body.
pub fn new_webhook(body: &Value, known_types: &[String]) -> Result<NewWebhook, FieldError> {
    let body = object(body)?;
    reject_unknown(body, &["url", "events", "secret", "is_active", "ordering"], "")?;
    let url = url(body.get("url").ok_or_else(|| error("url", "is required"))?)?;
    let events = events(body.get("events").ok_or_else(|| error("events", "is required"))?, known_types)?;
    let secret = match body.get("secret") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let secret = value.as_str().ok_or_else(|| error("secret", "must be a string"))?;
            if secret.chars().count() < MIN_SECRET_CHARS {
                return Err(error("secret", format!("must be at least {MIN_SECRET_CHARS} characters")));
            }
            if secret.len() > 255 {
                return Err(error("secret", "must be at most 255 bytes"));
            }
            if secret.starts_with(crate::state::secrets::SEALED_PREFIX) {
                return Err(error("secret", "must not start with \"enc:\", which marks a secret sealed with [admin] secrets_key"));
            }
            if let Err(e) = crate::delivery::signing::SigningKey::from_secret(secret) {
                return Err(error("secret", e.to_string()));
            }
            Some(secret.to_string())
        }
    };
    let is_active = match body.get("is_active") {
        None => true,
        Some(value) => boolean("is_active", value)?,
    };
    let ordering = match body.get("ordering") {
        None => None,
        Some(value) => ordering(value)?,
    };
    Ok(NewWebhook { url, events, secret, is_active, ordering })
}

/// Checks an update body.
pub fn webhook_changes(body: &Value, known_types: &[String]) -> Result<WebhookChanges, FieldError> {
    let body = object(body)?;
    reject_unknown(body, &["url", "events", "is_active", "ordering"], " (a new secret: POST /api/webhooks/{id}/rotate-secret)")?;
    let changes = WebhookChanges {
        url: body.get("url").map(url).transpose()?,
        events: body.get("events").map(|v| events(v, known_types)).transpose()?,
        is_active: body.get("is_active").map(|v| boolean("is_active", v)).transpose()?,
        ordering: body.get("ordering").map(ordering).transpose()?,
    };
    if changes == WebhookChanges::default() {
        return Err(error("body", "nothing to change: give url, events, is_active or ordering"));
    }
    Ok(changes)
}

/// `POST /api/webhooks/{id}/replay` (from the history): the stored
/// deliveries created in `[since, until)` go out again.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// Seconds since the epoch.
    pub since: i64,
    pub until: i64,
    /// Only failed deliveries (true), or delivered and failed ones.
    pub failed_only: bool,
    /// Only these event types (None: all).
    pub event_types: Option<Vec<String>>,
}

fn instant(field: &str, value: &Value) -> Result<i64, FieldError> {
    let text = value.as_str().ok_or_else(|| error(field, "must be an RFC 3339 time, e.g. \"2026-12-01T00:00:00Z\""))?;
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| error(field, format!("not an RFC 3339 time ({e}), e.g. \"2026-12-01T00:00:00Z\"")))
}

/// A replay from the binlog, checked: where it starts, and which event types.
#[derive(Debug, Clone, PartialEq)]
pub struct BinlogReplay {
    pub start: crate::backfill::replay::Start,
    pub event_types: Option<Vec<String>>,
}

/// What a replay body asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayRequest {
    History(Replay),
    Binlog(BinlogReplay),
}

/// Checks a replay body: from the history (`since`, `until`, `status`,
/// `event_types`) or, with `"from": "binlog"`, from the binlog (one of
/// `since`, `position`, `gtid`; `event_types`).
pub fn replay_request(body: &Value, known_types: &[String], now: i64) -> Result<ReplayRequest, FieldError> {
    let object = object(body)?;
    match object.get("from").map(|f| f.as_str()) {
        None | Some(Some("history")) => {
            let mut rest = object.clone();
            rest.remove("from");
            replay(&Value::Object(rest), known_types, now).map(ReplayRequest::History)
        }
        Some(Some("binlog")) => {
            reject_unknown(object, &["from", "since", "position", "gtid", "event_types"], " (a replay from the binlog reads up to now)")?;
            let starts: Vec<&str> = ["since", "position", "gtid"].into_iter().filter(|k| object.get(*k).is_some_and(|v| !v.is_null())).collect();
            let [start] = starts[..] else {
                return Err(error("from", "a replay from the binlog starts at exactly one of since (RFC 3339), position (\"binlog.000012:4\") or gtid (\"0-1-42\")"));
            };
            use crate::backfill::replay::Start;
            let start = match start {
                "since" => Start::Since(instant("since", &object["since"])?),
                "position" => {
                    let text = object["position"].as_str().unwrap_or_default();
                    let (file, pos) = text.rsplit_once(':').ok_or_else(|| error("position", "must be FILE:POSITION, e.g. \"binlog.000012:4\""))?;
                    let pos = pos.parse::<u64>().ok().filter(|p| *p >= 4).ok_or_else(|| error("position", "the position must be a number from 4"))?;
                    if file.is_empty() || file.contains(['/', '\'', '\\']) {
                        return Err(error("position", "must name a binlog file, e.g. \"binlog.000012:4\""));
                    }
                    Start::Position(crate::source::decoder::Position { file: file.to_string(), pos })
                }
                _ => {
                    let text = object["gtid"].as_str().unwrap_or_default();
                    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit() || c == '-' || c == ',') {
                        return Err(error("gtid", "must be a MariaDB GTID state, e.g. \"0-1-42\" or \"0-1-42,1-1-7\""));
                    }
                    Start::Gtid(text.to_string())
                }
            };
            let event_types = match object.get("event_types") {
                None | Some(Value::Null) => None,
                Some(value) => Some(events(value, known_types).map_err(|e| error("event_types", e.message))?),
            };
            Ok(ReplayRequest::Binlog(BinlogReplay { start, event_types }))
        }
        _ => Err(error("from", "must be \"history\" (the default) or \"binlog\"")),
    }
}

/// Checks a replay body; without `until`, the window ends after the
/// current second `now` (whole seconds; deliveries are created with
/// milliseconds, so one created earlier in this second is in it).
pub fn replay(body: &Value, known_types: &[String], now: i64) -> Result<Replay, FieldError> {
    let body = object(body)?;
    reject_unknown(body, &["since", "until", "status", "event_types"], "")?;
    let since = instant("since", body.get("since").ok_or_else(|| error("since", "is required (RFC 3339)"))?)?;
    let until = match body.get("until") {
        None | Some(Value::Null) => now + 1,
        Some(value) => instant("until", value)?,
    };
    if until <= since {
        return Err(error("until", "must be after since"));
    }
    let failed_only = match body.get("status").map(|v| v.as_str()) {
        None | Some(Some("failed")) => true,
        Some(Some("all")) => false,
        _ => return Err(error("status", "must be \"failed\" (the default) or \"all\" (delivered and failed)")),
    };
    let event_types = match body.get("event_types") {
        None | Some(Value::Null) => None,
        Some(value) => Some(events(value, known_types).map_err(|e| error("event_types", e.message))?),
    };
    Ok(Replay { since, until, failed_only, event_types: event_types.filter(|t| !t.iter().any(|e| e == "*")) })
}

/// `POST /api/webhooks/{id}/backfills`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillRequest {
    pub event_type: String,
    pub filter: Option<Value>,
    pub limit: Option<u64>,
}

/// Checks a backfill body: an event type some rule makes and the webhook
/// subscribes to; a filter on its table's columns; a limit.
pub fn backfill(
    body: &Value,
    mapper: &crate::events::mapping::Mapper,
    subscribed: &[String],
    tables: &std::collections::HashMap<String, crate::source::schema::TableSchema>,
) -> Result<BackfillRequest, FieldError> {
    let body = object(body)?;
    reject_unknown(body, &["event_type", "filter", "limit"], "")?;
    let event_type = body.get("event_type").and_then(Value::as_str).ok_or_else(|| error("event_type", "is required: the event type whose rule maps the table's rows"))?;
    let (_, rule) = mapper.rule_of(event_type).ok_or_else(|| error("event_type", format!("no rule makes {event_type:?} events")))?;
    if !subscribed.iter().any(|e| e == event_type || e == "*") {
        return Err(error("event_type", format!("the webhook does not subscribe to {event_type:?}: add it to its events first")));
    }
    let table = tables.get(&rule.table).ok_or_else(|| error("event_type", format!("table `{}` is not known to rowhook", rule.table)))?;
    if table.primary_key().is_empty() {
        return Err(error("event_type", format!("table `{}` has no primary key: a backfill walks a table by its key", rule.table)));
    }
    let filter = body.get("filter").filter(|f| !f.is_null());
    crate::backfill::filter::parse(filter, table).map_err(|e| FieldError { field: e.field, message: e.message })?;
    let limit = match body.get("limit") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_u64().filter(|n| (1..=1_000_000_000).contains(n)).ok_or_else(|| error("limit", "must be a whole number from 1 to 1,000,000,000"))?),
    };
    Ok(BackfillRequest { event_type: event_type.to_string(), filter: filter.cloned(), limit })
}

/// `page` and `per_page` from a query string's values (1-based, per_page capped).
pub fn page(page: Option<&str>, per_page: Option<&str>) -> Result<(u64, u64), FieldError> {
    let page = match page {
        None => 1,
        Some(p) => p.parse::<u64>().ok().filter(|p| (1..=1_000_000).contains(p)).ok_or_else(|| error("page", "must be a whole number from 1 to 1,000,000"))?,
    };
    let per_page = match per_page {
        None => 20,
        Some(p) => p.parse::<u64>().ok().filter(|p| *p >= 1).ok_or_else(|| error("per_page", "must be a whole number from 1"))?.min(MAX_PER_PAGE),
    };
    Ok((page, per_page))
}

/// A delivery status filter.
pub fn status(value: &str) -> Result<String, FieldError> {
    match value {
        "pending" | "waiting" | "delivered" | "failed" => Ok(value.to_string()),
        _ => Err(error("status", "must be pending, waiting, delivered or failed")),
    }
}

/// A time of the history's `since` / `until` filters: RFC 3339
/// (`2026-11-28T10:04:59Z`, `...+02:00`), or `YYYY-MM-DDTHH:MM[:SS]` read
/// as UTC (what a browser's `datetime-local` field sends). Returned as the
/// UTC `YYYY-MM-DD HH:MM:SS` the state database compares with.
pub fn time_filter(field: &str, value: &str) -> Result<String, FieldError> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    let value = value.trim();
    let parsed = time::OffsetDateTime::parse(value, &Rfc3339)
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .or_else(|_| time::PrimitiveDateTime::parse(value, format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]")).map(|t| t.assume_utc()))
        .or_else(|_| time::PrimitiveDateTime::parse(value, format_description!("[year]-[month]-[day]T[hour]:[minute]")).map(|t| t.assume_utc()))
        .map_err(|_| error(field, "must be a time such as 2026-11-28T10:04:59Z (RFC 3339), or 2026-11-28T10:04 in UTC"))?;
    if !(1970..=9999).contains(&parsed.year()) {
        return Err(error(field, "must be between the years 1970 and 9999"));
    }
    parsed
        .format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"))
        .map_err(|_| error(field, "cannot be written as a UTC time"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn history_times_are_utc_whatever_their_offset() {
        assert_eq!(time_filter("since", "2026-11-28T10:04:59Z").unwrap(), "2026-11-28 10:04:59");
        assert_eq!(time_filter("since", "2026-11-28T12:04:59+02:00").unwrap(), "2026-11-28 10:04:59");
        assert_eq!(time_filter("until", "2026-11-28T10:04").unwrap(), "2026-11-28 10:04:00");
        assert_eq!(time_filter("until", " 2026-11-28T10:04:07 ").unwrap(), "2026-11-28 10:04:07");
        for bad in ["", "yesterday", "2026-13-01T00:00", "2026-11-28", "0001-01-01T00:00:00Z", "2026-11-28T10:04:59Z'; DROP TABLE x"] {
            let e = time_filter("since", bad).unwrap_err();
            assert_eq!(e.field, "since", "{bad}");
        }
    }

    fn known() -> Vec<String> {
        vec!["thread.created".into(), "note.added".into()]
    }

    #[test]
    fn a_good_registration() {
        let w = new_webhook(&json!({"url": "https://example.com/h", "events": ["note.added", "note.added"]}), &known()).unwrap();
        assert_eq!(w, NewWebhook { url: "https://example.com/h".into(), events: vec!["note.added".into()], secret: None, is_active: true, ordering: None });
        let w = new_webhook(&json!({"url": "http://x.example", "events": ["*"], "secret": "0123456789abcdef", "is_active": false}), &known()).unwrap();
        assert_eq!(w.secret.as_deref(), Some("0123456789abcdef"));
        assert!(!w.is_active);
    }

    #[test]
    fn every_bad_field_is_named() {
        let k = known();
        let cases = [
            (json!([1]), "body"),
            (json!({"events": ["*"]}), "url"),
            (json!({"url": "ftp://x.example", "events": ["*"]}), "url"),
            (json!({"url": "not a url", "events": ["*"]}), "url"),
            (json!({"url": format!("https://x.example/{}", "a".repeat(500)), "events": ["*"]}), "url"),
            (json!({"url": "https://x.example"}), "events"),
            (json!({"url": "https://x.example", "events": []}), "events"),
            (json!({"url": "https://x.example", "events": ["thread.exploded"]}), "events"),
            (json!({"url": "https://x.example", "events": "*"}), "events"),
            (json!({"url": "https://x.example", "events": ["*"], "secret": "short"}), "secret"),
            (json!({"url": "https://x.example", "events": ["*"], "secret": "whsec_!!!!not-base64!!!!"}), "secret"),
            (json!({"url": "https://x.example", "events": ["*"], "secret": "enc:v1:0123abcd:AAAAAAAAAAAA"}), "secret"),
            (json!({"url": "https://x.example", "events": ["*"], "is_active": "yes"}), "is_active"),
            (json!({"url": "https://x.example", "events": ["*"], "colour": "red"}), "colour"),
        ];
        for (body, field) in cases {
            let err = new_webhook(&body, &k).unwrap_err();
            assert_eq!(err.field, field, "{body}: {err}");
        }
    }

    #[test]
    fn updates_change_only_what_is_given() {
        let c = webhook_changes(&json!({"is_active": true}), &known()).unwrap();
        assert_eq!(c, WebhookChanges { is_active: Some(true), ..Default::default() });
        assert_eq!(webhook_changes(&json!({}), &known()).unwrap_err().field, "body");
        let c = webhook_changes(&json!({"ordering": "webhook"}), &known()).unwrap();
        assert_eq!(c.ordering, Some(Some(Ordering::Webhook)));
        assert_eq!(webhook_changes(&json!({"ordering": null}), &known()).unwrap().ordering, Some(None), "null: back to the default");
        let err = webhook_changes(&json!({"ordering": "fifo"}), &known()).unwrap_err();
        assert_eq!(err.field, "ordering");
        assert!(err.message.contains("\"group\""), "{}", err.message);
        let w = new_webhook(&json!({"url": "https://example.com/h", "events": ["*"], "ordering": "none"}), &known()).unwrap();
        assert_eq!(w.ordering, Some(Ordering::None));
        assert_eq!(new_webhook(&json!({"url": "https://example.com/h", "events": ["*"], "ordering": 1}), &known()).unwrap_err().field, "ordering");
    }

    #[test]
    fn replay_windows() {
        let now = 1_800_000_000;
        let r = replay(&json!({"since": "2026-12-01T00:00:00Z"}), &known(), now).unwrap();
        assert_eq!((r.since, r.until, r.failed_only, r.event_types), (1_796_083_200, now + 1, true, None), "until: the end of this second");
        let r = replay(
            &json!({"since": "2026-12-01T00:00:00Z", "until": "2026-12-02T00:00:00+01:00", "status": "all", "event_types": ["note.added"]}),
            &known(),
            now,
        )
        .unwrap();
        assert_eq!((r.until, r.failed_only, r.event_types), (1_796_166_000, false, Some(vec!["note.added".to_string()])));
        for (body, field) in [
            (json!({}), "since"),
            (json!({"since": "yesterday"}), "since"),
            (json!({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}), "until"),
            (json!({"since": "2026-12-01T00:00:00Z", "status": "pending"}), "status"),
            (json!({"since": "2026-12-01T00:00:00Z", "event_types": ["nope"]}), "event_types"),
            (json!({"since": "2026-12-01T00:00:00Z", "from": 1}), "from"),
        ] {
            assert_eq!(replay(&body, &known(), now).unwrap_err().field, field, "{body}");
        }
        let err = webhook_changes(&json!({"secret": "0123456789abcdef"}), &known()).unwrap_err();
        assert_eq!(err.field, "secret");
        assert!(err.message.contains("rotate-secret"));
    }

    #[test]
    fn pages() {
        assert_eq!(page(None, None).unwrap(), (1, 20));
        assert_eq!(page(Some("3"), Some("1000")).unwrap(), (3, 100));
        assert_eq!(page(Some("0"), None).unwrap_err().field, "page");
        assert_eq!(page(None, Some("x")).unwrap_err().field, "per_page");
        assert!(status("bogus").is_err());
    }
}
