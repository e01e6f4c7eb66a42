//! Typed configuration: one TOML file, every key overridable from the
//! environment as `ROWHOOK__SECTION__KEY`.
//!
//! Layers, lowest first: serde defaults, the file, the environment. Unknown
//! keys are refused (`deny_unknown_fields`), durations are strings such as
//! `"5s"` or `"2h"`, and [`Config::validate`] checks what serde cannot (an
//! empty retry schedule, a rule without operations, ...) with messages that
//! name the offending key. Checking the rules against the live schema happens
//! in [`crate::source::schema`], because it needs the database.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path} not found (pass --config PATH)")]
    Missing { path: String },
    #[error("config: {0}")]
    Parse(#[from] config::ConfigError),
    #[error("config: {key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), message: message.into() }
}

/// The whole configuration of one rowhook process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub source: SourceConfig,
    #[serde(default)]
    pub state: StateConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// The event rules: which row changes become which events.
    #[serde(default)]
    pub events: Vec<EventRule>,
}

/// The database whose binlog rowhook reads.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `mysql://user:password@host:port/database`; the database holds the mapped tables.
    pub url: String,
    /// Replica server id, unique among all replicas of the source.
    #[serde(default = "default_server_id")]
    pub server_id: u32,
    /// Where to begin when there is no checkpoint yet.
    #[serde(default)]
    pub start: StartAt,
    /// How often the server sends a heartbeat while idle; no event for three
    /// periods means the connection is dead.
    #[serde(default = "default_heartbeat", with = "humantime_serde")]
    pub heartbeat: Duration,
    /// The UTC offset the application writes DATETIME values in (`"+02:00"`,
    /// `"-05:30"`, `"Z"`). Set, DATETIME values carry it
    /// (`2024-01-02T03:04:05+02:00`); unset, they have no offset. One fixed
    /// offset: zones with daylight saving time cannot be expressed.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// `Z` or `+HH:MM` / `-HH:MM` (hours up to 14).
fn is_utc_offset(zone: &str) -> bool {
    if zone == "Z" {
        return true;
    }
    let b = zone.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    b.len() == 6
        && matches!(b[0], b'+' | b'-')
        && digits(1..3)
        && b[3] == b':'
        && digits(4..6)
        && zone[1..3].parse::<u8>().is_ok_and(|h| h <= 14)
        && zone[4..6].parse::<u8>().is_ok_and(|m| m < 60)
}

fn default_server_id() -> u32 {
    // "RH" in ASCII, far from the small ids servers usually get.
    0x5248_0001
}
fn default_heartbeat() -> Duration {
    Duration::from_secs(5)
}

/// Where reading starts when no checkpoint exists.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// The server's current binlog position: only changes from now on.
    #[default]
    Current,
    /// The oldest binlog the server still has.
    Earliest,
}

/// Where rowhook keeps webhooks, deliveries and its checkpoint.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Defaults to the source database.
    pub url: Option<String>,
}

/// The HTTP server (admin API, metrics, health).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { listen: default_listen() }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// Access to the admin API.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer token for `/api/*`.
    pub token: Option<String>,
    /// After a secret rotation, how long deliveries carry the old secret's signature too.
    #[serde(default = "default_rotation_overlap", with = "humantime_serde")]
    pub secret_rotation_overlap: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { token: None, secret_rotation_overlap: default_rotation_overlap() }
    }
}

fn default_rotation_overlap() -> Duration {
    Duration::from_secs(24 * 3600)
}

/// A database URL with its password replaced, for logs and `Debug`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "<unparseable URL>".to_string(),
    }
}

// Hand-written so that no `{:?}` can ever print a password or a token.
impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("url", &redact_url(&self.url))
            .field("server_id", &self.server_id)
            .field("start", &self.start)
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for StateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateConfig").field("url", &self.url.as_deref().map(redact_url)).finish()
    }
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("secret_rotation_overlap", &self.secret_rotation_overlap)
            .finish()
    }
}

/// The order a webhook's deliveries keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    /// Per group (the rule's `group_by`): one delivery in flight per group,
    /// a group's deliveries in commit order across retries; groups in parallel.
    #[default]
    Group,
    /// The whole webhook in commit order, one delivery at a time; a retry holds back everything after it.
    Webhook,
    /// No promise: every delivery on its own, up to `max_in_flight` at once.
    None,
}

impl Ordering {
    pub fn as_str(self) -> &'static str {
        match self {
            Ordering::Group => "group",
            Ordering::Webhook => "webhook",
            Ordering::None => "none",
        }
    }

    /// `group`, `webhook` or `none`.
    pub fn parse(text: &str) -> Option<Ordering> {
        match text {
            "group" => Some(Ordering::Group),
            "webhook" => Some(Ordering::Webhook),
            "none" => Some(Ordering::None),
            _ => None,
        }
    }
}

/// How deliveries are made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Time allowed for a whole attempt (connect, send, response).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Delays between attempts; its length is the number of retries.
    #[serde(deserialize_with = "duration_list")]
    pub retry_schedule: Vec<Duration>,
    /// Random spread applied to each delay, as a fraction (0.2 = ±20%).
    pub retry_jitter: f64,
    /// Consecutive failed attempts after which a webhook is deactivated.
    pub auto_disable_after: u32,
    /// ... and only once it has been failing at least this long.
    #[serde(with = "humantime_serde")]
    pub auto_disable_min_failing: Duration,
    /// Larger event bodies are not sent; the delivery is recorded as failed.
    pub max_payload_bytes: usize,
    /// How much of a receiver's answer is kept in the delivery history.
    pub max_response_bytes: usize,
    /// Requests in flight per webhook (across groups; one per group).
    pub max_in_flight: usize,
    /// The order a webhook's deliveries keep, unless the webhook says otherwise.
    pub ordering: Ordering,
    /// Permit loopback, private and link-local targets (tests, demos, intranets).
    pub allow_private_targets: bool,
    /// Refuse `http://` webhook URLs: at registration (422) and at delivery
    /// (a failed attempt saying so), whether the PHP app or the API wrote them.
    pub https_only: bool,
    /// How long shutdown waits for deliveries in flight.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Finished deliveries older than this are pruned from the history.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let secs = Duration::from_secs;
        DeliveryConfig {
            timeout: secs(10),
            connect_timeout: secs(5),
            // Svix's schedule: 8 attempts over about 28 hours.
            retry_schedule: vec![
                secs(5),
                secs(5 * 60),
                secs(30 * 60),
                secs(2 * 3600),
                secs(5 * 3600),
                secs(10 * 3600),
                secs(10 * 3600),
            ],
            retry_jitter: 0.2,
            auto_disable_after: 10,
            auto_disable_min_failing: secs(5 * 60),
            max_payload_bytes: 256 * 1024,
            max_response_bytes: 20 * 1024,
            max_in_flight: 16,
            ordering: Ordering::Group,
            allow_private_targets: false,
            https_only: false,
            shutdown_timeout: secs(10),
            retention: secs(30 * 24 * 3600),
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `rowhook=debug`, ...
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into(), format: LogFormat::Text }
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A row operation in the binlog.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Insert,
    Update,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// One `[[events]]` rule: row changes of `table` with one of `operations`
/// that meet every condition become an event of `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRule {
    #[serde(rename = "type")]
    pub event_type: String,
    pub table: String,
    pub operations: Vec<Operation>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The payload allowlist: output name -> column.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// For updates: add a `changes` object of changed columns.
    pub changes: Option<ChangesSpec>,
    /// The columns whose values form the event's group key: a webhook gets
    /// the events of one group in commit order, one at a time, and other
    /// groups meanwhile. None: the table's primary key (filled in at start,
    /// from the live schema); empty: no group (each event on its own).
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
}

/// A test on one column's value. Exactly one test per condition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub column: String,
    /// The row's value (after image; before image for deletes) equals this.
    pub equals: Option<serde_json::Value>,
    pub not_equals: Option<serde_json::Value>,
    /// The value is (true) or is not (false) NULL.
    pub is_null: Option<bool>,
    /// `"not_null"`: an insert with a value, or an update from NULL to a value.
    /// `"null"`: an update from a value to NULL.
    pub became: Option<Became>,
    /// An update changed (true) or did not change (false) this column.
    pub changed: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Became {
    NotNull,
    Null,
}

/// The `changes` object of update events.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesSpec {
    /// Only these columns are reported (default: all).
    pub columns: Option<Vec<String>>,
    /// Columns never reported; an update that changes nothing else emits no event.
    #[serde(default)]
    pub ignore: Vec<String>,
}

impl Config {
    /// Reads `path` and the `ROWHOOK__*` environment, then validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        if !path.exists() {
            return Err(ConfigError::Missing { path: path.display().to_string() });
        }
        let raw = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(environment())
            .build()?;
        let config: Config = raw.try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML string (no environment): for tests.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let raw = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()?;
        let config: Config = raw.try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    /// The state database URL: `[state] url`, else the source.
    pub fn state_url(&self) -> &str {
        self.state.url.as_deref().unwrap_or(&self.source.url)
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let source = url::Url::parse(&self.source.url)
            .map_err(|e| invalid("source.url", format!("not a URL: {e}")))?;
        if source.scheme() != "mysql" {
            return Err(invalid("source.url", "must start with mysql://"));
        }
        if source.path().trim_start_matches('/').is_empty() {
            return Err(invalid("source.url", "must name the database, as in mysql://user@host:3306/helpdesk"));
        }
        crate::dburl::opts(&self.source.url).map_err(|e| invalid("source.url", e.to_string()))?;
        if let Some(state) = &self.state.url {
            let state = url::Url::parse(state).map_err(|e| invalid("state.url", format!("not a URL: {e}")))?;
            if state.scheme() != "mysql" || state.path().trim_start_matches('/').is_empty() {
                return Err(invalid("state.url", "must be mysql://user@host:port/database"));
            }
            crate::dburl::opts(state.as_str()).map_err(|e| invalid("state.url", e.to_string()))?;
        }
        if self.source.server_id == 0 {
            return Err(invalid("source.server_id", "must be a non-zero id unique among the source's replicas"));
        }
        if let Some(zone) = &self.source.time_zone {
            if !is_utc_offset(zone) {
                return Err(invalid("source.time_zone", "must be a UTC offset such as \"+02:00\", \"-05:30\" or \"Z\""));
            }
        }
        if self.source.heartbeat < Duration::from_millis(100) {
            return Err(invalid("source.heartbeat", "must be at least 100ms"));
        }
        let d = &self.delivery;
        if d.timeout.is_zero() {
            return Err(invalid("delivery.timeout", "must be more than 0s"));
        }
        if d.connect_timeout.is_zero() {
            return Err(invalid("delivery.connect_timeout", "must be more than 0s"));
        }
        if !(0.0..1.0).contains(&d.retry_jitter) {
            return Err(invalid("delivery.retry_jitter", "must be at least 0 and below 1"));
        }
        if d.auto_disable_after == 0 {
            return Err(invalid("delivery.auto_disable_after", "must be at least 1"));
        }
        if d.max_in_flight == 0 || d.max_in_flight > 64 {
            return Err(invalid("delivery.max_in_flight", "must be between 1 and 64"));
        }
        if d.max_payload_bytes < 1024 {
            return Err(invalid("delivery.max_payload_bytes", "must be at least 1024"));
        }
        for (i, rule) in self.events.iter().enumerate() {
            let key = format!("events[{i}] ({})", rule.event_type);
            if rule.event_type.is_empty() || rule.event_type.len() > 100 {
                return Err(invalid(format!("events[{i}].type"), "must be 1 to 100 characters"));
            }
            if rule.table.is_empty() {
                return Err(invalid(format!("{key}.table"), "must not be empty"));
            }
            if rule.operations.is_empty() {
                return Err(invalid(format!("{key}.operations"), "needs at least one of insert, update, delete"));
            }
            if rule.changes.is_some() && rule.operations != [Operation::Update] {
                return Err(invalid(format!("{key}.changes"), "only applies to rules with operations = [\"update\"]"));
            }
            if rule.group_by.iter().flatten().any(|c| c.trim().is_empty()) {
                return Err(invalid(format!("{key}.group_by"), "column names must not be empty (group_by = [] groups nothing)"));
            }
            for (j, c) in rule.conditions.iter().enumerate() {
                let tests = [c.equals.is_some(), c.not_equals.is_some(), c.is_null.is_some(), c.became.is_some(), c.changed.is_some()];
                if tests.iter().filter(|t| **t).count() != 1 {
                    return Err(invalid(
                        format!("{key}.conditions[{j}]"),
                        "needs exactly one of equals, not_equals, is_null, became, changed",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A list of duration strings such as `["5s", "5m"]`.
fn duration_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    let items: Vec<String> = Vec::deserialize(d)?;
    items
        .iter()
        .map(|s| humantime::parse_duration(s.trim()).map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}"))))
        .collect()
}

/// The `ROWHOOK__SECTION__KEY` environment source.
fn environment() -> config::Environment {
    config::Environment::with_prefix("ROWHOOK")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .with_list_parse_key("delivery.retry_schedule")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[source]
url = "mysql://root@127.0.0.1:3306/helpdesk"
"#;

    #[test]
    fn defaults_follow_the_seed_and_svix() {
        let c = Config::from_toml(MINIMAL).unwrap();
        assert_eq!(c.delivery.timeout, Duration::from_secs(10));
        assert_eq!(c.delivery.auto_disable_after, 10);
        assert_eq!(c.delivery.retry_schedule.len(), 7);
        assert_eq!(c.http.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.source.start, StartAt::Current);
        assert_eq!(c.state_url(), "mysql://root@127.0.0.1:3306/helpdesk");
        assert!(!c.delivery.allow_private_targets);
        assert!(!c.delivery.https_only);
    }

    #[test]
    fn source_time_zone_is_a_fixed_offset() {
        let with = |zone: &str| Config::from_toml(&format!("[source]\nurl = \"mysql://r@h:1/db\"\ntime_zone = \"{zone}\"\n"));
        assert_eq!(with("+02:00").unwrap().source.time_zone.as_deref(), Some("+02:00"));
        assert!(with("Z").is_ok() && with("-05:30").is_ok() && with("+14:00").is_ok());
        for bad in ["Europe/Paris", "+2:00", "+15:00", "+02:60", "02:00", ""] {
            let err = with(bad).unwrap_err();
            assert!(err.to_string().contains("source.time_zone"), "{bad}: {err}");
        }
        assert_eq!(Config::from_toml(MINIMAL).unwrap().source.time_zone, None);
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = Config::from_toml(&format!("{MINIMAL}\n[delivery]\ntimeuot = \"5s\"\n")).unwrap_err();
        assert!(err.to_string().contains("timeuot"), "{err}");
    }

    #[test]
    fn bad_durations_are_refused() {
        let err = Config::from_toml(&format!("{MINIMAL}\n[delivery]\ntimeout = \"ten seconds\"\n")).unwrap_err();
        assert!(err.to_string().contains("timeout"), "{err}");
    }

    #[test]
    fn conditions_need_exactly_one_test() {
        let text = format!(
            "{MINIMAL}\n[[events]]\ntype = \"x.y\"\ntable = \"t\"\noperations = [\"insert\"]\nconditions = [{{ column = \"a\" }}]\n"
        );
        let err = Config::from_toml(&text).unwrap_err();
        assert!(err.to_string().contains("conditions[0]"), "{err}");
    }

    #[test]
    fn database_url_parameters_are_checked_when_the_config_is_loaded() {
        let err = Config::from_toml("[source]\nurl = \"mysql://r@h:1/db?sslmode=require\"\n").unwrap_err();
        assert!(err.to_string().contains("source.url") && err.to_string().contains("sslmode"), "{err}");
        let err = Config::from_toml("[source]\nurl = \"mysql://r@h:1/db\"\n[state]\nurl = \"mysql://r@h:1/st?ssl_ca=/nonexistent.pem\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("state.url") && err.to_string().contains("/nonexistent.pem"), "{err}");
    }

    #[test]
    fn source_url_must_name_a_database() {
        let err = Config::from_toml("[source]\nurl = \"mysql://root@localhost:3306\"\n").unwrap_err();
        assert!(err.to_string().contains("source.url"), "{err}");
    }

    #[test]
    fn debug_output_hides_passwords_and_tokens() {
        let mut c = Config::from_toml("[source]\nurl = \"mysql://rowhook:s3cret-pw@db:3306/helpdesk\"\n[admin]\ntoken = \"tok-123456\"\n").unwrap();
        c.state.url = Some("mysql://u:other-pw@h:1/state".into());
        let text = format!("{c:?}");
        for secret in ["s3cret-pw", "tok-123456", "other-pw"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("rowhook:***@db"), "{text}");
    }

    #[test]
    fn environment_overrides_the_file() {
        // The only test that reads the environment (Config::load), so no other test sees these.
        let dir = std::env::temp_dir().join(format!("rowhook-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rowhook.toml");
        std::fs::write(&path, MINIMAL).unwrap();
        std::env::set_var("ROWHOOK__SOURCE__URL", "mysql://rowhook@db.internal:3307/app");
        std::env::set_var("ROWHOOK__HTTP__LISTEN", "0.0.0.0:9090");
        std::env::set_var("ROWHOOK__DELIVERY__ALLOW_PRIVATE_TARGETS", "true");
        std::env::set_var("ROWHOOK__DELIVERY__RETRY_SCHEDULE", "1s,2m");
        let loaded = Config::load(&path);
        std::env::set_var("ROWHOOK__DELIVERY__TIMEOUTT", "1s");
        let misspelled = Config::load(&path);
        for key in ["SOURCE__URL", "HTTP__LISTEN", "DELIVERY__ALLOW_PRIVATE_TARGETS", "DELIVERY__RETRY_SCHEDULE", "DELIVERY__TIMEOUTT"] {
            std::env::remove_var(format!("ROWHOOK__{key}"));
        }
        let c = loaded.unwrap();
        assert_eq!(c.source.url, "mysql://rowhook@db.internal:3307/app");
        assert_eq!(c.http.listen, "0.0.0.0:9090".parse().unwrap());
        assert!(c.delivery.allow_private_targets);
        assert_eq!(c.delivery.retry_schedule, [Duration::from_secs(1), Duration::from_secs(120)]);
        let err = misspelled.unwrap_err();
        assert!(err.to_string().contains("timeoutt"), "an unknown environment key is refused by name: {err}");
        assert!(Config::load(&dir.join("missing.toml")).unwrap_err().to_string().contains("--config"));
    }

    #[test]
    fn shipped_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rowhook.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let c = Config::from_toml(&text).unwrap();
        let types: Vec<&str> = c.events.iter().map(|r| r.event_type.as_str()).collect();
        for t in ["thread.created", "thread.updated", "thread.deleted", "email.received", "email.sent", "note.added"] {
            assert!(types.contains(&t), "{t} missing from config/rowhook.toml");
        }
    }
}
