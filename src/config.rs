//! Typed configuration: one TOML file, every key overridable from the
//! environment as `ROWHOOK__SECTION__KEY`.
//!
//! Layers, lowest first: serde defaults, the file, the environment. Unknown
//! keys are refused with their file and line or their variable, and the
//! closest known key ([`keys`]); durations are strings such as `"5s"` or
//! `"2h"`, and [`Config::validate`] checks what serde cannot (an empty retry
//! schedule, a rule without operations, ...) with messages that name the
//! offending key and where it was set. Rules are numbered from 1 in file
//! order in every message ([`rule_label`]). Checking the rules against the
//! live schema happens in [`crate::source::schema`], because it needs the
//! database.

pub mod keys;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use keys::{Origin, Origins, UnknownKey};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path} not found (pass --config PATH)")]
    Missing { path: String },
    #[error("config file {path}: {message}")]
    Unreadable { path: String, message: String },
    /// Not TOML: the parser's message, with line, column and the line itself.
    #[error("config file {path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{}", unknown_keys(.0))]
    UnknownKeys(Vec<UnknownKey>),
    /// A value of the wrong type (the `config` crate's message), and where it was set.
    #[error("config: {message}{}", located(.at))]
    Value { message: String, at: Option<Origin> },
    #[error("config: {key}: {message}{}", located(.at))]
    Invalid {
        /// The key as messages name it: `source.url`, `events rule 6 (note.added): operations`.
        key: String,
        /// The key's dotted path, to find where it was set: `events.5.operations`.
        path: String,
        message: String,
        at: Option<Origin>,
    },
}

fn unknown_keys(keys: &[UnknownKey]) -> String {
    match keys {
        [one] => format!("config: {one}"),
        many => {
            let lines: Vec<String> = many.iter().map(|k| format!("\n  - {k}")).collect();
            format!("config: {} unknown keys:{}", many.len(), lines.concat())
        }
    }
}

fn located(at: &Option<Origin>) -> String {
    match at {
        Some(origin) => format!(" ({origin})"),
        None => String::new(),
    }
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    let key = key.into();
    ConfigError::Invalid { path: key.clone(), key, message: message.into(), at: None }
}

/// How messages name a rule: by its place in the file counted from 1, and
/// its type (`events rule 6 (note.added)` is the sixth `[[events]]`).
/// `index` counts from 0, as the rules' vector does.
pub fn rule_label(index: usize, event_type: &str) -> String {
    format!("events rule {} ({event_type})", index + 1)
}

/// An error about `field` of the rule at `index`.
fn invalid_rule(index: usize, rule: &EventRule, field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: format!("{}: {field}", rule_label(index, &rule.event_type)),
        path: format!("events.{index}.{}", field.replace('[', ".").replace(']', "")),
        message: message.into(),
        at: None,
    }
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
    /// Where each key was set (empty for [`Config::from_toml`]), for messages.
    #[serde(skip)]
    pub origins: Origins,
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
    /// The server's certificate chain, PEM (leaf first): with `tls_key`, the
    /// server speaks only HTTPS. Read again on SIGHUP.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { listen: default_listen(), tls_cert: None, tls_key: None }
    }
}

/// A certificate chain and its key, as read from `[http] tls_cert` and `tls_key`.
pub struct TlsFiles {
    pub certs: Vec<rustls_pki_types::CertificateDer<'static>>,
    pub key: rustls_pki_types::PrivateKeyDer<'static>,
}

impl HttpConfig {
    /// Whether the server speaks HTTPS (both files are set).
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// The certificate chain and key the files hold now (None: no TLS);
    /// an error names the key, the file and what is wrong with it. Called
    /// at load (validation), at start and on every SIGHUP.
    pub fn tls_files(&self) -> Result<Option<TlsFiles>, ConfigError> {
        use rustls_pki_types::pem::PemObject as _;
        let (cert, key) = match (&self.tls_cert, &self.tls_key) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            (Some(_), None) => return Err(invalid("http.tls_key", "is missing: tls_cert needs its key (both or neither)")),
            (None, Some(_)) => return Err(invalid("http.tls_cert", "is missing: tls_key needs its certificate (both or neither)")),
        };
        let read = |name: &str, path: &Path| {
            std::fs::read(path).map_err(|e| invalid(format!("http.{name}"), format!("cannot read {}: {e}", path.display())))
        };
        let pem = read("tls_cert", cert)?;
        let certs = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("http.tls_cert", format!("{} is not a PEM certificate chain: {e}", cert.display())))?;
        if certs.is_empty() {
            return Err(invalid(
                "http.tls_cert",
                format!("{} holds no certificate (-----BEGIN CERTIFICATE-----)", cert.display()),
            ));
        }
        let pem = read("tls_key", key)?;
        let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
            invalid("http.tls_key", format!("{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}", key.display()))
        })?;
        Ok(Some(TlsFiles { certs, key }))
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// Access to the admin API and the console.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// A bearer token with scope admin, written as is: the single token of
    /// the first versions, named `token` in the audit log. Named tokens
    /// (`tokens`) keep only a hash in the file.
    pub token: Option<String>,
    /// Named bearer tokens (`[admin.tokens.NAME]`), each with a scope and
    /// the SHA-256 of the token (never the token itself).
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenConfig>,
    /// After a secret rotation, how long deliveries carry the old secret's signature too.
    #[serde(default = "default_rotation_overlap", with = "humantime_serde")]
    pub secret_rotation_overlap: Duration,
    /// How long a console sign-in lasts; then the console asks for the token again.
    #[serde(default = "default_session_lifetime", with = "humantime_serde")]
    pub session_lifetime: Duration,
    /// `/metrics` needs a bearer token too (either scope); by default it is
    /// open, as Prometheus scrapes without one unless told.
    #[serde(default)]
    pub protect_metrics: bool,
    /// The key webhook secrets are sealed with in the table: standard base64
    /// of 32 random bytes (`openssl rand -base64 32`). None: stored as given.
    #[serde(default)]
    pub secrets_key: Option<String>,
    /// ... or the file holding it.
    #[serde(default)]
    pub secrets_key_file: Option<PathBuf>,
    /// The key before a rotation: it still opens secrets, it seals none.
    #[serde(default)]
    pub secrets_key_previous: Option<String>,
    /// ... or the file holding it.
    #[serde(default)]
    pub secrets_key_previous_file: Option<PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            token: None,
            tokens: BTreeMap::new(),
            secret_rotation_overlap: default_rotation_overlap(),
            session_lifetime: default_session_lifetime(),
            protect_metrics: false,
            secrets_key: None,
            secrets_key_file: None,
            secrets_key_previous: None,
            secrets_key_previous_file: None,
        }
    }
}

impl AdminConfig {
    /// Whether any token is configured: without one, the API and the console
    /// are open, and rowhook listens on loopback addresses only.
    pub fn has_tokens(&self) -> bool {
        self.token.as_deref().is_some_and(|t| !t.is_empty()) || !self.tokens.is_empty()
    }
}

/// The bytes of a secrets key.
pub type SecretsKeyBytes = [u8; 32];

impl AdminConfig {
    /// The current and the previous secrets key, each from its value or its
    /// file (not both). An error names the key and what to do.
    pub fn secrets_keys(&self) -> Result<(Option<SecretsKeyBytes>, Option<SecretsKeyBytes>), ConfigError> {
        let current = secrets_key("admin.secrets_key", self.secrets_key.as_deref(), self.secrets_key_file.as_deref())?;
        let previous =
            secrets_key("admin.secrets_key_previous", self.secrets_key_previous.as_deref(), self.secrets_key_previous_file.as_deref())?;
        if current.is_none() && previous.is_some() {
            return Err(invalid(
                "admin.secrets_key_previous",
                "is set without secrets_key: set secrets_key to the new key (the previous one only opens what it sealed)",
            ));
        }
        if current.is_some() && current == previous {
            return Err(invalid("admin.secrets_key_previous", "is the same key as secrets_key: set it to the key before the rotation"));
        }
        Ok((current, previous))
    }
}

/// One secrets key from its value (`key`) or its file (`key` + `_file`).
fn secrets_key(key: &str, value: Option<&str>, file: Option<&Path>) -> Result<Option<SecretsKeyBytes>, ConfigError> {
    let (text, name) = match (value, file) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => return Err(invalid(key, format!("is set twice, as {key} and {key}_file: keep one"))),
        (Some(text), None) => (text.to_string(), key.to_string()),
        (None, Some(path)) => {
            let name = format!("{key}_file");
            let text = std::fs::read_to_string(path).map_err(|e| invalid(&name, format!("cannot read {}: {e}", path.display())))?;
            (text, name)
        }
    };
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| invalid(&name, "is not base64 of 32 bytes: make a key with `openssl rand -base64 32`"))?;
    let bytes = SecretsKeyBytes::try_from(bytes.as_slice())
        .map_err(|_| invalid(&name, format!("is {} bytes, not 32: make a key with `openssl rand -base64 32`", bytes.len())))?;
    Ok(Some(bytes))
}

fn default_rotation_overlap() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_session_lifetime() -> Duration {
    Duration::from_secs(12 * 3600)
}

/// One named token: `[admin.tokens.NAME]` with `scope` and `hash`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// What the token may do.
    pub scope: TokenScope,
    /// `sha256:` and the 64 hex digits of the SHA-256 of the token's UTF-8
    /// bytes (`printf %s "$TOKEN" | sha256sum`, or `rowhook hash-token`).
    pub hash: String,
}

impl TokenConfig {
    /// The SHA-256 digest the hash names; None when it is not `sha256:<64 hex digits>`.
    pub fn digest(&self) -> Option<[u8; 32]> {
        token_digest(&self.hash)
    }
}

/// `sha256:<64 hex digits>` (either case) as the digest's bytes.
pub fn token_digest(hash: &str) -> Option<[u8; 32]> {
    let hex = hash.trim().strip_prefix("sha256:")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// Read: GET requests of the API, the console without its actions.
    Read,
    /// Everything.
    Admin,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Admin => "admin",
        }
    }
}

/// The name the single `[admin] token` has in the audit log; no named token may take it.
pub const SINGLE_TOKEN_NAME: &str = "token";

/// A token name: a lowercase letter, then up to 63 lowercase letters,
/// digits, `-` and `_` (no `__`: it separates the parts of an environment
/// variable's name), so that the file and `ROWHOOK__ADMIN__TOKENS__NAME__...` agree.
fn is_token_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
        && !name.contains("__")
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
        // Names and scopes only: a hash of a short token can be guessed from.
        let tokens: BTreeMap<&str, TokenScope> = self.tokens.iter().map(|(name, t)| (name.as_str(), t.scope)).collect();
        f.debug_struct("AdminConfig")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("tokens", &tokens)
            .field("secret_rotation_overlap", &self.secret_rotation_overlap)
            .field("session_lifetime", &self.session_lifetime)
            .field("protect_metrics", &self.protect_metrics)
            .field("secrets_key", &self.secrets_key.as_ref().map(|_| "***"))
            .field("secrets_key_file", &self.secrets_key_file)
            .field("secrets_key_previous", &self.secrets_key_previous.as_ref().map(|_| "***"))
            .field("secrets_key_previous_file", &self.secrets_key_previous_file)
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
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable { path: name.clone(), message: e.to_string() })?;
        let mut env = Vec::new();
        for (key, value) in std::env::vars_os() {
            let Ok(key) = key.into_string() else { continue };
            if !key.to_ascii_uppercase().starts_with(keys::ENV_PREFIX) {
                continue;
            }
            let value = value
                .into_string()
                .map_err(|_| ConfigError::Unreadable { path: format!("environment variable {key}"), message: "not UTF-8".into() })?;
            env.push((key, value));
        }
        Config::layered(&text, &name, env)
    }

    /// Parses a TOML string (no environment): for tests. Unknown keys are
    /// refused as in a file; no origins are kept (callers change the values).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let mut config = Config::layered(text, "the config text", Vec::new())?;
        config.origins = Origins::default();
        Ok(config)
    }

    /// The file's `text` (named `name` in messages) under the `env`
    /// variables: keys checked, merged, deserialized, validated.
    fn layered(text: &str, name: &str, env: Vec<(String, String)>) -> Result<Config, ConfigError> {
        let document = toml::de::DeTable::parse(text)
            .map_err(|e| ConfigError::Syntax { path: name.to_string(), message: e.to_string().trim_end().to_string() })?;
        let (mut origins, mut unknown) = keys::check_file(text, document.get_ref(), name);
        let (env_origins, env_unknown) = keys::check_environment(env.iter().cloned());
        origins.extend(env_origins);
        unknown.extend(env_unknown);
        if !unknown.is_empty() {
            return Err(ConfigError::UnknownKeys(unknown));
        }
        let mut builder = config::Config::builder().add_source(config::File::from_str(text, config::FileFormat::Toml));
        if !env.is_empty() {
            builder = builder.add_source(environment().source(Some(env.into_iter().collect())));
        }
        let rules = keys::rule_labels(document.get_ref());
        let locate = |e: config::ConfigError| value_error(e, &origins, &rules);
        let mut config: Config = builder.build().map_err(locate)?.try_deserialize().map_err(locate)?;
        config.validate().map_err(|e| match e {
            ConfigError::Invalid { key, path, message, .. } => {
                let at = origins.nearest(&path).cloned();
                ConfigError::Invalid { key, path, message, at }
            }
            other => other,
        })?;
        config.origins = origins;
        Ok(config)
    }

    /// The setting `path` (`source.url`) as a message names it: the
    /// variable that set it, else the key with its file and line, else the
    /// key alone (`[source] url`).
    pub fn setting(&self, path: &str) -> String {
        let key = match path.split_once('.') {
            Some((section, key)) => format!("[{section}] {key}"),
            None => path.to_string(),
        };
        match self.origins.get(path) {
            Some(Origin::Env(name)) => name.clone(),
            Some(origin @ Origin::File { .. }) => format!("{key} in {origin}"),
            None => key,
        }
    }

    /// The state database URL: `[state] url`, else the source.
    pub fn state_url(&self) -> &str {
        self.state.url.as_deref().unwrap_or(&self.source.url)
    }

    /// The source database (whose options are `opts`), as messages name it.
    pub fn source_target(&self, opts: &mysql_async::Opts) -> crate::dburl::Target {
        crate::dburl::Target::new("the source database", opts, self.setting("source.url"))
    }

    /// The state database (whose options are `opts`), as messages name it:
    /// without `[state] url`, the source database under that name.
    pub fn state_target(&self, opts: &mysql_async::Opts) -> crate::dburl::Target {
        match self.state.url {
            Some(_) => crate::dburl::Target::new("the state database", opts, self.setting("state.url")),
            None => crate::dburl::Target::new(
                "the source database, also used as the state database because [state] url is not set",
                opts,
                self.setting("source.url"),
            ),
        }
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
        self.validate_admin()?;
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
            if rule.event_type.is_empty() || rule.event_type.len() > 100 {
                return Err(invalid_rule(i, rule, "type", "must be 1 to 100 characters"));
            }
            if rule.table.is_empty() {
                return Err(invalid_rule(i, rule, "table", "must not be empty"));
            }
            if rule.operations.is_empty() {
                return Err(invalid_rule(i, rule, "operations", "needs at least one of insert, update, delete"));
            }
            if rule.changes.is_some() && rule.operations != [Operation::Update] {
                return Err(invalid_rule(i, rule, "changes", "only applies to rules with operations = [\"update\"]"));
            }
            if rule.group_by.iter().flatten().any(|c| c.trim().is_empty()) {
                return Err(invalid_rule(i, rule, "group_by", "column names must not be empty (group_by = [] groups nothing)"));
            }
            for (j, c) in rule.conditions.iter().enumerate() {
                let tests = [c.equals.is_some(), c.not_equals.is_some(), c.is_null.is_some(), c.became.is_some(), c.changed.is_some()];
                if tests.iter().filter(|t| **t).count() != 1 {
                    return Err(ConfigError::Invalid {
                        key: format!("{}: condition {}", rule_label(i, &rule.event_type), j + 1),
                        path: format!("events.{i}.conditions.{j}"),
                        message: "needs exactly one of equals, not_equals, is_null, became, changed".into(),
                        at: None,
                    });
                }
            }
        }
        Ok(())
    }
}

impl Config {
    /// `[admin]`: token names and hashes, the session lifetime, the secrets
    /// keys; and `[http]`'s TLS files (readable, PEM).
    fn validate_admin(&self) -> Result<(), ConfigError> {
        let admin = &self.admin;
        if admin.token.as_deref().is_some_and(|t| t.trim_start().starts_with("sha256:")) {
            return Err(invalid(
                "admin.token",
                "holds the token itself, not a hash: put a sha256: hash in a named token instead \
                 ([admin.tokens.NAME] with scope and hash)",
            ));
        }
        for (name, token) in &admin.tokens {
            let key = format!("admin.tokens.{name}");
            if !is_token_name(name) {
                return Err(invalid(
                    key,
                    "a token name is a lowercase letter, then lowercase letters, digits, - and _ (at most 64, no __)",
                ));
            }
            if name == SINGLE_TOKEN_NAME {
                return Err(invalid(key, "`token` is the name of the single [admin] token; choose another"));
            }
            if token.digest().is_none() {
                return Err(invalid(
                    format!("{key}.hash"),
                    "must be sha256: and the 64 hex digits of the token's SHA-256: \
                     printf %s \"$TOKEN\" | sha256sum, or rowhook hash-token",
                ));
            }
        }
        if admin.session_lifetime < Duration::from_secs(1) {
            return Err(invalid("admin.session_lifetime", "must be at least 1s"));
        }
        admin.secrets_keys()?;
        self.http.tls_files()?;
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

/// A `config` crate error (a value of the wrong type, mostly), with where
/// the key was set when the error names it (`events[5]operations[0]`, the
/// sixth rule's), and the rule it belongs to; `rules`: the rules' labels.
fn value_error(error: config::ConfigError, origins: &Origins, rules: &[String]) -> ConfigError {
    let key = match &error {
        config::ConfigError::Type { key, .. } | config::ConfigError::At { key, .. } => key.clone(),
        config::ConfigError::NotFound(key) => Some(key.clone()),
        _ => None,
    };
    let Some(path) = key.as_deref().map(dotted) else {
        return ConfigError::Value { message: error.to_string(), at: None };
    };
    let mut message = match (&error, path.split_once('.')) {
        (config::ConfigError::NotFound(_), Some((section, key))) => format!(
            "missing key `{key}` in [{section}]: set it in the file or as {}{}__{}",
            keys::ENV_PREFIX,
            section.to_ascii_uppercase(),
            key.to_ascii_uppercase()
        ),
        _ => error.to_string(),
    };
    let rule = path.strip_prefix("events.").and_then(|rest| rest.split('.').next()?.parse::<usize>().ok());
    if let Some(label) = rule.and_then(|i| rules.get(i)) {
        message = format!("{message}, in {label}");
    }
    ConfigError::Value { message, at: origins.nearest(&path).cloned() }
}

/// A `config` crate key as a dotted path: `events[5]operations[0]` is `events.5.operations.0`.
fn dotted(key: &str) -> String {
    let mut path = String::with_capacity(key.len());
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '[' => path.push('.'),
            ']' => {
                if chars.peek().is_some_and(|n| *n != '.' && *n != '[') {
                    path.push('.');
                }
            }
            c => path.push(c),
        }
    }
    path
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
        assert!(err.to_string().contains("events rule 1 (x.y): condition 1:"), "{err}");
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
    fn secrets_keys_come_from_a_value_or_a_file() {
        use base64::Engine as _;
        let b64 = |bytes: [u8; 32]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let with = |admin: &str| Config::from_toml(&format!("{MINIMAL}\n[admin]\n{admin}\n"));
        let c = with(&format!("secrets_key = \"{}\"\nsecrets_key_previous = \"{}\"", b64([1; 32]), b64([2; 32]))).unwrap();
        assert_eq!(c.admin.secrets_keys().unwrap(), (Some([1; 32]), Some([2; 32])));
        assert!(!format!("{c:?}").contains(&b64([1; 32])), "no key in Debug");
        assert_eq!(Config::from_toml(MINIMAL).unwrap().admin.secrets_keys().unwrap(), (None, None));
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), format!("{}\n", b64([3; 32]))).unwrap();
        let c = with(&format!("secrets_key_file = \"{}\"", file.path().display())).unwrap();
        assert_eq!(c.admin.secrets_keys().unwrap(), (Some([3; 32]), None));
        for (admin, key, says) in [
            ("secrets_key = \"not base64!\"".to_string(), "admin.secrets_key", "openssl rand -base64 32"),
            (format!("secrets_key = \"{}\"", base64::engine::general_purpose::STANDARD.encode([1u8; 16])), "admin.secrets_key", "16 bytes"),
            (format!("secrets_key = \"{}\"\nsecrets_key_file = \"/k\"", b64([1; 32])), "admin.secrets_key", "keep one"),
            ("secrets_key_file = \"/nonexistent/key\"".to_string(), "admin.secrets_key_file", "/nonexistent/key"),
            (format!("secrets_key_previous = \"{}\"", b64([1; 32])), "admin.secrets_key_previous", "without secrets_key"),
            (format!("secrets_key = \"{0}\"\nsecrets_key_previous = \"{0}\"", b64([1; 32])), "admin.secrets_key_previous", "same key"),
        ] {
            let err = with(&admin).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains(says), "{admin}: {err}");
        }
    }

    #[test]
    fn tls_needs_both_files_readable_and_in_pem() {
        let with = |http: &str| Config::from_toml(&format!("{MINIMAL}\n[http]\n{http}\n"));
        assert!(!Config::from_toml(MINIMAL).unwrap().http.tls());
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, junk) = (dir.path().join("cert.pem"), dir.path().join("key.pem"), dir.path().join("junk.pem"));
        std::fs::write(&junk, "not a pem file\n").unwrap();
        // A structurally valid PEM (rustls checks the key's type when it loads it).
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n").unwrap();
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n").unwrap();
        let c = with(&format!("tls_cert = {:?}\ntls_key = {:?}", cert, key)).unwrap();
        assert!(c.http.tls() && c.http.tls_files().unwrap().is_some());
        for (http, says) in [
            (format!("tls_cert = {cert:?}"), "http.tls_key: is missing"),
            (format!("tls_key = {key:?}"), "http.tls_cert: is missing"),
            (format!("tls_cert = \"/nonexistent.pem\"\ntls_key = {key:?}"), "http.tls_cert: cannot read /nonexistent.pem"),
            (format!("tls_cert = {junk:?}\ntls_key = {key:?}"), "holds no certificate"),
            (format!("tls_cert = {cert:?}\ntls_key = {junk:?}"), "http.tls_key"),
        ] {
            let err = with(&http).unwrap_err().to_string();
            assert!(err.contains(says), "{http}: {err}");
        }
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

    /// The file text under these variables, as `Config::load` layers them.
    fn layered(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::layered(text, "rowhook.toml", env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn rules_count_from_1_in_file_order() {
        let rule = |t: &str, ops: &str| format!("\n[[events]]\ntype = \"{t}\"\ntable = \"t\"\noperations = {ops}\n");
        let text = format!("{MINIMAL}{}{}{}", rule("a.one", "[\"insert\"]"), rule("b.two", "[\"insert\"]"), rule("c.three", "[]"));
        let err = layered(&text, &[]).unwrap_err().to_string();
        assert_eq!(
            err,
            "config: events rule 3 (c.three): operations: needs at least one of insert, update, delete (rowhook.toml, line 18)"
        );
        assert_eq!(rule_label(5, "note.added"), "events rule 6 (note.added)", "the sixth rule");
    }

    #[test]
    fn unknown_keys_in_the_file_and_the_environment_are_reported_together() {
        let text = format!("{MINIMAL}[delivery]\ntimeuot = \"5s\"\n");
        let err = layered(&text, &[("ROWHOOK__SOURCE__URLL", "x")]).unwrap_err();
        let ConfigError::UnknownKeys(keys) = &err else { panic!("{err}") };
        assert_eq!(keys.len(), 2, "{err}");
        let text = err.to_string();
        assert!(text.starts_with("config: 2 unknown keys:\n  - "), "{text}");
        assert!(text.contains("`timeuot` in [delivery] (rowhook.toml, line 5): did you mean `timeout`?"), "{text}");
        assert!(text.contains("from the environment variable ROWHOOK__SOURCE__URLL: did you mean ROWHOOK__SOURCE__URL?"), "{text}");
    }

    #[test]
    fn bad_values_say_where_they_were_set() {
        let err = layered(&format!("{MINIMAL}[delivery]\ntimeout = \"ten\"\n"), &[]).unwrap_err().to_string();
        assert!(err.contains("delivery.timeout") && err.ends_with("(rowhook.toml, line 5)"), "{err}");
        let err = layered(MINIMAL, &[("ROWHOOK__DELIVERY__TIMEOUT", "ten")]).unwrap_err().to_string();
        assert!(err.ends_with("(environment variable ROWHOOK__DELIVERY__TIMEOUT)"), "{err}");
        let err = layered(MINIMAL, &[("ROWHOOK__SOURCE__TIME_ZONE", "Europe/Paris")]).unwrap_err().to_string();
        assert!(err.contains("source.time_zone") && err.ends_with("(environment variable ROWHOOK__SOURCE__TIME_ZONE)"), "{err}");
        let rule = "[[events]]\ntype = \"a.b\"\ntable = \"t\"\noperations = [\"insrt\"]\n";
        let err = layered(&format!("{MINIMAL}{rule}"), &[]).unwrap_err().to_string();
        assert!(err.contains("insrt") && err.ends_with(", in events rule 1 (a.b) (rowhook.toml, line 7)"), "{err}");
        let err = layered("[source]\nserver_id = 7\n", &[]).unwrap_err().to_string();
        assert!(err.contains("missing key `url` in [source]: set it in the file or as ROWHOOK__SOURCE__URL"), "{err}");
        assert_eq!(dotted("events[5]operations[0]"), "events.5.operations.0");
        assert_eq!(dotted("events[5].conditions[1].equals"), "events.5.conditions.1.equals");
        let err = layered("[source]\nurl = \"mysql://r@h:1/db\"\n[delivery\n", &[]).unwrap_err().to_string();
        assert!(err.starts_with("config file rowhook.toml: TOML parse error at line 3"), "{err}");
    }

    #[test]
    fn a_setting_is_named_by_its_variable_or_its_line() {
        let c = layered(MINIMAL, &[]).unwrap();
        assert_eq!(c.setting("source.url"), "[source] url in rowhook.toml, line 3");
        assert_eq!(c.setting("state.url"), "[state] url");
        let c = layered(MINIMAL, &[("ROWHOOK__SOURCE__URL", "mysql://r@other:1/db")]).unwrap();
        assert_eq!(c.setting("source.url"), "ROWHOOK__SOURCE__URL");
        assert_eq!(Config::from_toml(MINIMAL).unwrap().setting("source.url"), "[source] url");
    }

    const HASH: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn named_tokens_from_the_file_and_the_environment() {
        let text = format!("{MINIMAL}[admin]\ntoken = \"single\"\n[admin.tokens.dashboard]\nscope = \"read\"\nhash = \"{HASH}\"\n");
        let c = layered(&text, &[]).unwrap();
        assert_eq!(c.admin.tokens["dashboard"].scope, TokenScope::Read);
        assert_eq!(c.admin.tokens["dashboard"].digest(), token_digest(HASH));
        assert!(c.admin.has_tokens());
        let c = layered(
            MINIMAL,
            &[("ROWHOOK__ADMIN__TOKENS__CI_BOT__SCOPE", "admin"), ("ROWHOOK__ADMIN__TOKENS__CI_BOT__HASH", HASH)],
        )
        .unwrap();
        assert_eq!(c.admin.tokens["ci_bot"].scope, TokenScope::Admin, "a token from the environment alone");
        assert!(c.admin.has_tokens());
        let c = layered(&text, &[("ROWHOOK__ADMIN__TOKENS__DASHBOARD__SCOPE", "admin")]).unwrap();
        assert_eq!(c.admin.tokens["dashboard"].scope, TokenScope::Admin, "the environment overrides one key of a file's token");
        assert!(!Config::from_toml(MINIMAL).unwrap().admin.has_tokens());
        let debug = format!("{:?}", layered(&text, &[]).unwrap().admin);
        assert!(debug.contains("dashboard") && !debug.contains("ba7816bf") && !debug.contains("single"), "{debug}");
    }

    #[test]
    fn token_mistakes_are_named_where_they_were_made() {
        let file = |body: &str| layered(&format!("{MINIMAL}{body}"), &[]).unwrap_err().to_string();
        let err = file(&format!("[admin.tokens.dash]\nscope = \"read\"\nhsah = \"{HASH}\"\n"));
        assert!(err.contains("unknown key `hsah` in [admin.tokens.dash] (rowhook.toml, line 6): did you mean `hash`?"), "{err}");
        let err = layered(MINIMAL, &[("ROWHOOK__ADMIN__TOKENS__DASH__HSAH", HASH)]).unwrap_err().to_string();
        assert!(err.contains("from the environment variable ROWHOOK__ADMIN__TOKENS__DASH__HSAH: did you mean ROWHOOK__ADMIN__TOKENS__DASH__HASH?"), "{err}");
        let err = file("[admin.tokens.dash]\nscope = \"read\"\nhash = \"ba7816bf\"\n");
        assert!(err.contains("admin.tokens.dash.hash: must be sha256:") && err.contains("sha256sum") && err.ends_with("(rowhook.toml, line 6)"), "{err}");
        let err = file(&format!("[admin.tokens.dash]\nscope = \"write\"\nhash = \"{HASH}\"\n"));
        assert!(err.contains("write") && err.contains("line 5"), "{err}");
        let err = file(&format!("[admin.tokens.Dash]\nscope = \"read\"\nhash = \"{HASH}\"\n"));
        assert!(err.contains("admin.tokens.Dash: a token name is a lowercase letter"), "{err}");
        let err = file(&format!("[admin.tokens.token]\nscope = \"read\"\nhash = \"{HASH}\"\n"));
        assert!(err.contains("`token` is the name of the single [admin] token"), "{err}");
        let err = file(&format!("[admin]\ntoken = \"{HASH}\"\n"));
        assert!(err.contains("admin.token: holds the token itself"), "{err}");
        let err = file("[admin.tokens.dash]\nscope = \"read\"\n");
        assert!(err.contains("hash"), "a token without its hash: {err}");
        let err = file("[admin]\nsession_lifetime = \"0s\"\n");
        assert!(err.contains("admin.session_lifetime"), "{err}");
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
