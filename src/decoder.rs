//! Binlog events in, committed transactions of typed events out.
//!
//! The [`Decoder`] is a state machine fed one binlog event at a time, from a
//! live replication stream or from a binlog file (the fixture tests). It
//! tracks the position, groups row events into transactions (GTID/BEGIN ...
//! XID/COMMIT), decodes the rows of mapped tables only (other tables' rows are
//! never parsed), runs them through the [`Mapper`] and, at each commit, hands
//! back a [`Transaction`] with the events and the position just after it: the
//! checkpoint that resumes after this transaction.
//!
//! Event ids come from binlog coordinates: `evt_<file number>_<position of the
//! rows event>_<row index>_<rule index>`. They are the same on every retry and
//! after a restart (reading always resumes at a transaction boundary), unique,
//! and contain no `.`. Events inside a MySQL TRANSACTION_PAYLOAD (binlog
//! transaction compression) carry no position of their own: their rows take
//! the payload's position and a row index counted across the whole payload.
//!
//! GTIDs (MariaDB): the decoder keeps the GTID state, the last GTID of every
//! replication domain (`0-1-42,1-1-7`), starting from the state it is given
//! ([`Decoder::set_gtid_state`]) and from GTID_LIST events; every
//! [`Transaction`] carries the state after it, which the checkpoint stores and
//! a restart resumes from.
//!
//! GTIDs (MySQL, `gtid_mode=ON`): the decoder keeps the executed GTID set
//! ([`GtidSet`], `uuid:1-5:7-9,...`), adding each GTID event's `uuid:gno` when
//! its transaction commits. Its start is the set it is given (the
//! checkpoint's) or a PREVIOUS_GTIDS event, which opens every binlog file;
//! until it has one of them (reading from the middle of a file without a
//! stored set) it reports no set, since a set missing the earlier history
//! would make a restart by GTID replay that history. The flavour needs no
//! setting: MariaDB's and MySQL's GTID events have different types.
//!
//! MySQL partial JSON updates (`binlog_row_value_options=PARTIAL_JSON`) are
//! resolved against the before image into the full new document; a diff that
//! does not apply makes the value null and counts a row error (logged with
//! its coordinates).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use mysql_common::binlog::consts::EventType;
use mysql_common::binlog::events::{Event, EventData, RowsEventData, TableMapEvent};
use mysql_common::binlog::events::{OptionalMetaExtractor, OptionalMetadataField};
use mysql_common::io::ParseBuf;
use mysql_common::proto::MySerialize;
use mysql_common::binlog::row::BinlogRow;
use mysql_common::binlog::value::BinlogValue;
use mysql_common::constants::ColumnType;

use crate::config::Operation;
use crate::gtid::GtidSet;
use crate::mapping::{Mapper, RowChange, RowImage};
use crate::schema::TableSchema;
use crate::value::{self, Charset, ColumnKind};

/// Where reading resumes: the position of the next event to read.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub file: String,
    pub pos: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// One event ready for delivery: its id, type and serialized body.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    pub id: String,
    pub event_type: Arc<str>,
    /// The exact bytes sent: `{"id", "type", "timestamp", "data"}`.
    pub body: String,
}

/// A committed source transaction, reduced to what rowhook needs.
#[derive(Debug, Clone, Default)]
pub struct Transaction {
    /// Resume here to continue after this transaction.
    pub end: Position,
    /// The GTID state after this transaction, when known: MariaDB's
    /// (`domain-server-sequence` of the last transaction of every domain,
    /// comma-separated) or MySQL's executed GTID set (`uuid:1-5:7-9,...`).
    pub gtid: Option<String>,
    /// Commit time, seconds since the epoch.
    pub timestamp: u32,
    pub events: Vec<OutgoingEvent>,
    /// Its changes to rowhook's `webhooks` table, in binlog order, with
    /// before and after images: how the router learns of webhooks added,
    /// changed and removed by SQL, in commit order, without re-reading the
    /// table (a row need not be visible yet when its binlog event arrives).
    pub webhook_rows: Vec<WebhookRow>,
    /// Rows of mapped tables seen.
    pub rows_seen: usize,
    /// Rows of mapped tables per rows event: (table, operation, rows), for metrics.
    pub rows_by_table: Vec<(Arc<str>, Operation, usize)>,
    /// False for a part of a large transaction handed over before its commit
    /// (see [`MAX_PENDING_EVENTS`]): its events are stored, the checkpoint stays.
    pub complete: bool,
}

/// One changed row of rowhook's `webhooks` table, every column as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRow {
    pub operation: Operation,
    /// Present for updates and deletes.
    pub before: Option<RowImage>,
    /// Present for inserts and updates.
    pub after: Option<RowImage>,
}

/// A transaction's events are handed over in parts of this many, so one huge
/// transaction never sits in memory whole. Parts are stored without moving the
/// checkpoint; after a crash the transaction is read again and the stored
/// parts are not enqueued twice (stable event ids, unique per webhook).
pub const MAX_PENDING_EVENTS: usize = 1000;

/// What one binlog event amounted to.
#[derive(Debug)]
pub enum Decoded {
    Nothing,
    Commit(Transaction),
    /// Part of a large transaction, before its commit (`complete` is false).
    Partial(Transaction),
    Heartbeat,
    /// A DDL statement touched these mapped tables: reload their columns.
    SchemaChanged(Vec<String>),
}

/// Why the stream cannot be decoded further. All of these stop the reader:
/// skipping would lose or mislabel data.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("statement-based DML for `{database}` at {position}: rowhook needs binlog_format=ROW ({query})")]
    StatementBased { database: String, position: Position, query: String },
    #[error("compressed binlog event (type {event_type}) at {position}: turn log_bin_compress off on the server")]
    Compressed { event_type: u8, position: Position },
    #[error("row of `{table}` at {position} has {found} columns but the schema known to rowhook has {expected}: log binlog_row_metadata=FULL or restart rowhook after the schema change")]
    ColumnCountMismatch { table: String, position: Position, found: usize, expected: usize },
    #[error("row of `{table}` at {position} has only {found} of its {expected} columns (binlog_row_image MINIMAL or NOBLOB): rowhook needs full row images; run SET GLOBAL binlog_row_image = 'FULL', put binlog_row_image=FULL in the server's config, and make sure no session sets it otherwise")]
    PartialRowImage { table: String, position: Position, found: usize, expected: usize },
    #[error("rows event for unknown table id {table_id} at {position}: the stream did not start at a transaction boundary")]
    MissingTableMap { table_id: u64, position: Position },
}

/// The wire envelope of an event: `{"id", "type", "timestamp", "data"}`,
/// as serde_json writes such a struct (compact, fields in this order).
fn envelope(id: &str, event_type: &str, timestamp: &str, data: &str) -> String {
    let mut body = String::with_capacity(data.len() + id.len() + event_type.len() + timestamp.len() + 48);
    let string = |s: &str, body: &mut String| {
        // serde_json escapes control characters, `"` and `\` only: a string
        // without them (always an id and a timestamp) is written as it is.
        if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            // A str always serializes, into valid UTF-8.
            body.push_str(&serde_json::to_string(s).unwrap_or_default());
        } else {
            body.push('"');
            body.push_str(s);
            body.push('"');
        }
    };
    body.push_str("{\"id\":");
    string(id, &mut body);
    body.push_str(",\"type\":");
    string(event_type, &mut body);
    body.push_str(",\"timestamp\":");
    string(timestamp, &mut body);
    body.push_str(",\"data\":");
    body.push_str(data);
    body.push('}');
    body
}

/// A mapped event waiting for its transaction's commit (which gives the timestamp).
struct PendingEvent {
    id: String,
    event_type: Arc<str>,
    /// The event's `data`, as JSON text.
    data: String,
}

/// The decoding state machine; see the module docs.
pub struct Decoder {
    mapper: Arc<Mapper>,
    database: String,
    /// Column facts per mapped table, from information_schema.
    tables: HashMap<String, TableSchema>,
    /// Rowhook's own `webhooks` table, when its changes come through this binlog.
    webhooks_table: Option<(String, String)>,
    /// Its columns, from information_schema (names when the binlog has none).
    webhooks_schema: Option<TableSchema>,
    position: Position,
    /// The next ROTATE is the stream's first (fake) one, whose name may carry
    /// checksum bytes: keep the file we asked for instead.
    first_rotate: bool,
    in_transaction: bool,
    explicit_begin: bool,
    /// The GTID state: the last GTID per domain, as (server, sequence).
    gtid_state: BTreeMap<u32, (u32, u64)>,
    /// Warned once that the GTID state does not fit the checkpoint.
    gtid_state_too_long_logged: bool,
    /// The current transaction's GTID (domain, server, sequence).
    gtid: Option<(u32, u32, u64)>,
    /// MySQL: the executed GTID set, and whether its start is known (from the
    /// checkpoint or a PREVIOUS_GTIDS event).
    mysql_gtids: GtidSet,
    mysql_gtids_known: bool,
    /// MySQL: the current transaction's GTID (uuid, tag, gno).
    mysql_gtid: Option<([u8; 16], String, u64)>,
    /// The first ROTATE's name when no file was asked for (GTID resume):
    /// fixed up at the FORMAT_DESCRIPTION that follows (checksum bytes).
    pending_rotate_name: Option<Vec<u8>>,
    /// Per mapped table: what its rows events need from its table map.
    table_plans: HashMap<String, Arc<TablePlan>>,
    /// Inside a TRANSACTION_PAYLOAD: its position and the rows seen in it.
    payload: Option<(u64, usize)>,
    /// DATETIME values get this offset (`[source] time_zone`).
    datetime_offset: Option<Arc<str>>,
    /// The binlog comes from MariaDB (per its FORMAT_DESCRIPTION).
    is_mariadb: bool,
    pending: Vec<PendingEvent>,
    webhook_rows: Vec<WebhookRow>,
    rows_seen: usize,
    rows_by_table: Vec<(Arc<str>, Operation, usize)>,
    /// Rows that could not be decoded (logged with their coordinates).
    pub row_errors: u64,
}

impl Decoder {
    pub fn new(mapper: Arc<Mapper>, database: &str, tables: HashMap<String, TableSchema>, start: Position) -> Decoder {
        Decoder {
            mapper,
            database: database.to_string(),
            tables,
            webhooks_table: None,
            webhooks_schema: None,
            position: start,
            first_rotate: true,
            in_transaction: false,
            explicit_begin: false,
            gtid_state: BTreeMap::new(),
            gtid_state_too_long_logged: false,
            gtid: None,
            mysql_gtids: GtidSet::new(),
            mysql_gtids_known: false,
            mysql_gtid: None,
            pending_rotate_name: None,
            table_plans: HashMap::new(),
            payload: None,
            datetime_offset: None,
            is_mariadb: false,
            pending: Vec::new(),
            webhook_rows: Vec::new(),
            rows_seen: 0,
            rows_by_table: Vec::new(),
            row_errors: 0,
        }
    }

    /// Also report the changed rows of `database.table` (rowhook's webhooks
    /// table) with their images ([`Transaction::webhook_rows`]). `schema`
    /// names its columns when the binlog does not (`binlog_row_metadata` not FULL).
    pub fn watch_webhooks(&mut self, database: &str, table: &str, schema: Option<TableSchema>) {
        self.webhooks_table = Some((database.to_string(), table.to_string()));
        self.webhooks_schema = schema;
        self.table_plans.remove(WEBHOOKS_PLAN);
    }

    /// The webhooks table's columns changed (DDL).
    pub fn set_webhooks_schema(&mut self, schema: Option<TableSchema>) {
        self.webhooks_schema = schema;
        self.table_plans.remove(WEBHOOKS_PLAN);
    }

    /// The name of the watched webhooks table, if any.
    pub fn webhooks_table(&self) -> Option<&str> {
        self.webhooks_table.as_ref().map(|(_, t)| t.as_str())
    }

    /// Replaces the known columns of the mapped tables (after DDL).
    pub fn set_tables(&mut self, tables: HashMap<String, TableSchema>) {
        self.tables = tables;
        self.table_plans.clear(); // their layouts used the old columns
    }

    /// Starts from this GTID state: MariaDB's (`0-1-42,1-1-7`; unparsable
    /// parts are ignored) or, when it has a `:`, a MySQL GTID set
    /// (`uuid:1-5,...`; one that does not parse is logged and ignored).
    pub fn set_gtid_state(&mut self, state: &str) {
        if state.contains(':') {
            self.gtid_state.clear();
            match GtidSet::parse(state) {
                Ok(set) => {
                    self.mysql_gtids = set;
                    self.mysql_gtids_known = true;
                }
                Err(e) => tracing::warn!(error = %e, "the stored GTID set does not parse; ignored"),
            }
        } else {
            self.gtid_state = parse_gtid_state(state);
        }
    }

    /// The GTID state after the last committed transaction (empty: unknown):
    /// MariaDB's, or else MySQL's GTID set.
    pub fn gtid_state(&self) -> String {
        self.stored_gtid_state().unwrap_or_default()
    }

    /// What the checkpoint stores, before the length check: MariaDB's state
    /// when there is one, else MySQL's set once its start is known.
    fn stored_gtid_state(&self) -> Option<String> {
        if !self.gtid_state.is_empty() {
            Some(format_gtid_state(&self.gtid_state))
        } else if self.mysql_gtids_known && !self.mysql_gtids.is_empty() {
            Some(self.mysql_gtids.to_string())
        } else {
            None
        }
    }

    /// DATETIME values get this UTC offset (`+02:00`, `Z`); None: no offset.
    pub fn set_datetime_offset(&mut self, offset: Option<&str>) {
        self.datetime_offset = offset.map(Arc::from);
        self.table_plans.clear(); // their layouts used the old offset
    }

    /// The position after the last event fed.
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// Feeds one event; `table_map` looks up the TABLE_MAP events seen so far.
    ///
    /// A panic while the event is read (mysql_common's parsers trust the
    /// lengths and counts in the data; no server writes data that trips them)
    /// is caught here: the event is skipped, counted and logged like a row
    /// that cannot be decoded, and the reader goes on.
    pub fn feed<'t>(
        &mut self,
        event: &Event,
        table_map: impl Fn(u64) -> Option<&'t TableMapEvent<'static>>,
    ) -> Result<Decoded, DecodeError> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.feed_event(event, table_map))) {
            Ok(result) => result,
            Err(panic) => {
                self.row_errors += 1;
                let header = event.header();
                let start = u64::from(header.log_pos()).saturating_sub(u64::from(header.event_size()));
                let reason = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(
                    position = %Position { file: self.position.file.clone(), pos: start },
                    event_type = header.event_type_raw(),
                    error = %reason,
                    "binlog event could not be read (its parser gave up); skipped"
                );
                Ok(Decoded::Nothing)
            }
        }
    }

    fn feed_event<'t>(
        &mut self,
        event: &Event,
        table_map: impl Fn(u64) -> Option<&'t TableMapEvent<'static>>,
    ) -> Result<Decoded, DecodeError> {
        let header = event.header();
        let event_type = header.event_type_raw();
        let mut event_start = Position {
            file: self.position.file.clone(),
            pos: u64::from(header.log_pos()).saturating_sub(u64::from(header.event_size())),
        };
        if header.log_pos() != 0 {
            self.position.pos = u64::from(header.log_pos());
            self.payload = None;
        } else if let Some((payload_pos, _)) = self.payload {
            // An event inside a TRANSACTION_PAYLOAD: it has no position of its own.
            event_start.pos = payload_pos;
        }
        match event_type {
            TRANSACTION_PAYLOAD if header.log_pos() != 0 => {
                self.payload = Some((event_start.pos, 0));
                return Ok(Decoded::Nothing);
            }
            // MariaDB's own events, which mysql_common leaves undecoded.
            MARIADB_GTID => {
                self.begin();
                self.gtid = mariadb_gtid(event.data(), header.server_id());
                return Ok(Decoded::Nothing);
            }
            MARIADB_GTID_LIST => {
                // The state at the start of a binlog file: adopt what we do not know yet.
                for (domain, server, sequence) in mariadb_gtid_list(event.data()).unwrap_or_default() {
                    self.gtid_state.entry(domain).or_insert((server, sequence));
                }
                return Ok(Decoded::Nothing);
            }
            MARIADB_ANNOTATE_ROWS | MARIADB_BINLOG_CHECKPOINT | MARIADB_START_ENCRYPTION => return Ok(Decoded::Nothing),
            t if (MARIADB_QUERY_COMPRESSED..=MARIADB_DELETE_ROWS_COMPRESSED_V1).contains(&t) => {
                return Err(DecodeError::Compressed { event_type: t, position: event_start });
            }
            _ => {}
        }
        if event_type == EventType::HEARTBEAT_EVENT as u8 {
            return Ok(Decoded::Heartbeat);
        }
        if event_type == EventType::PREVIOUS_GTIDS_EVENT as u8 && !previous_gtids_fit(event.data()) {
            self.row_errors += 1;
            tracing::error!(position = %event_start, "corrupt PREVIOUS_GTIDS event (its counts exceed its size); skipped");
            return Ok(Decoded::Nothing);
        }
        let data = match event.read_data() {
            Ok(Some(data)) => data,
            Ok(None) => return Ok(Decoded::Nothing),
            Err(e) => {
                self.row_errors += 1;
                tracing::error!(position = %event_start, event_type, error = %e, "cannot parse binlog event; skipped");
                return Ok(Decoded::Nothing);
            }
        };
        match data {
            EventData::RotateEvent(rotate) => {
                let name = rotate.name().to_string();
                if self.first_rotate && !self.position.file.is_empty() {
                    // Keep the requested file name (see `first_rotate`).
                } else if self.first_rotate {
                    self.pending_rotate_name = Some(rotate.name_raw().to_vec());
                    self.position.file = name;
                } else {
                    self.position.file = name;
                }
                self.first_rotate = false;
                self.position.pos = rotate.position();
                Ok(Decoded::Nothing)
            }
            EventData::FormatDescriptionEvent(fde) => {
                self.is_mariadb = fde.server_version().to_ascii_lowercase().contains("mariadb");
                self.table_plans.clear(); // their layouts depend on the server's kind
                if let Some(mut name) = self.pending_rotate_name.take() {
                    // The fake ROTATE came before the server said it checksums events.
                    if matches!(fde.footer().get_checksum_alg(), Ok(Some(alg)) if alg != mysql_common::binlog::consts::BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_OFF)
                        && name.len() > 4
                    {
                        name.truncate(name.len() - 4);
                        self.position.file = String::from_utf8_lossy(&name).into_owned();
                    }
                }
                Ok(Decoded::Nothing)
            }
            EventData::GtidEvent(gtid) => {
                self.begin();
                let tag = gtid.tag().map(|t| t.as_str().to_string()).unwrap_or_default();
                self.mysql_gtid = Some((gtid.sid(), tag, gtid.gno()));
                Ok(Decoded::Nothing)
            }
            EventData::AnonymousGtidEvent(_) => {
                self.begin();
                Ok(Decoded::Nothing)
            }
            EventData::PreviousGtidsEvent(previous) => {
                // Everything before this binlog file: the set's start.
                for sid in previous.sids() {
                    let tag = sid.tag().map(|t| t.as_str().to_string()).unwrap_or_default();
                    for interval in sid.intervals() {
                        self.mysql_gtids.add_interval(sid.uuid(), &tag, interval.start(), interval.end().saturating_sub(1));
                    }
                }
                self.mysql_gtids_known = true;
                Ok(Decoded::Nothing)
            }
            EventData::QueryEvent(query) => {
                let text = query.query();
                let trimmed = text.trim_start();
                let keyword = first_word(trimmed);
                match keyword.as_str() {
                    "BEGIN" => {
                        let gtid = self.gtid.take();
                        let mysql_gtid = self.mysql_gtid.take();
                        self.begin();
                        self.gtid = gtid;
                        self.mysql_gtid = mysql_gtid;
                        self.explicit_begin = true;
                        Ok(Decoded::Nothing)
                    }
                    "COMMIT" => Ok(self.commit(header.timestamp())),
                    "ROLLBACK" => {
                        // MySQL logs a rolled-back transaction only when it changed a
                        // non-transactional table; its GTID is spent all the same.
                        if let Some((uuid, tag, gno)) = self.mysql_gtid.take() {
                            self.mysql_gtids.add(uuid, &tag, gno);
                        }
                        self.reset();
                        Ok(Decoded::Nothing)
                    }
                    "INSERT" | "UPDATE" | "DELETE" | "REPLACE" => {
                        let schema = query.schema();
                        if schema == self.database || trimmed.contains(&format!("`{}`.", self.database)) {
                            return Err(DecodeError::StatementBased {
                                database: self.database.clone(),
                                position: event_start,
                                query: trimmed.chars().take(120).collect(),
                            });
                        }
                        Ok(self.statement_end(header.timestamp()))
                    }
                    _ => {
                        // DDL and other statements: each is its own transaction.
                        let touched: Vec<String> = if matches!(keyword.as_str(), "ALTER" | "CREATE" | "DROP" | "RENAME" | "TRUNCATE")
                        {
                            self.mapper
                                .tables()
                                .chain(self.webhooks_table.as_ref().map(|(_, t)| t.as_str()))
                                .filter(|t| contains_identifier(trimmed, t))
                                .map(str::to_string)
                                .collect()
                        } else {
                            Vec::new()
                        };
                        let decoded = self.statement_end(header.timestamp());
                        if !touched.is_empty() {
                            return Ok(Decoded::SchemaChanged(touched));
                        }
                        Ok(decoded)
                    }
                }
            }
            EventData::XidEvent(_) => Ok(self.commit(header.timestamp())),
            EventData::RowsEvent(rows) => {
                self.rows_event(&rows, &event_start, &table_map)?;
                if self.pending.len() >= MAX_PENDING_EVENTS {
                    return Ok(Decoded::Partial(self.partial(header.timestamp())));
                }
                Ok(Decoded::Nothing)
            }
            _ => Ok(Decoded::Nothing),
        }
    }

    fn begin(&mut self) {
        self.reset();
        self.in_transaction = true;
    }

    fn reset(&mut self) {
        self.in_transaction = false;
        self.explicit_begin = false;
        self.gtid = None;
        self.mysql_gtid = None;
        self.pending.clear();
        self.webhook_rows.clear();
        self.rows_seen = 0;
        self.rows_by_table.clear();
    }

    /// A statement outside BEGIN/COMMIT (DDL) ends its transaction.
    fn statement_end(&mut self, timestamp: u32) -> Decoded {
        if self.explicit_begin {
            Decoded::Nothing
        } else {
            self.commit(timestamp)
        }
    }

    /// Serializes the pending events with their timestamp.
    fn drain_events(&mut self, timestamp: u32) -> Vec<OutgoingEvent> {
        let stamp = rfc3339(timestamp);
        self.pending
            .drain(..)
            .map(|p| {
                let body = envelope(&p.id, &p.event_type, &stamp, &p.data);
                OutgoingEvent { id: p.id, event_type: p.event_type, body }
            })
            .collect()
    }

    /// The events so far of a transaction still open; the transaction goes on.
    fn partial(&mut self, timestamp: u32) -> Transaction {
        let events = self.drain_events(timestamp);
        let rows_seen = std::mem::take(&mut self.rows_seen);
        Transaction {
            end: self.position.clone(),
            gtid: None,
            timestamp,
            events,
            webhook_rows: std::mem::take(&mut self.webhook_rows),
            rows_seen,
            rows_by_table: std::mem::take(&mut self.rows_by_table),
            complete: false,
        }
    }

    fn commit(&mut self, timestamp: u32) -> Decoded {
        let events = self.drain_events(timestamp);
        if let Some((domain, server, sequence)) = self.gtid.take() {
            self.gtid_state.insert(domain, (server, sequence));
        }
        if let Some((uuid, tag, gno)) = self.mysql_gtid.take() {
            self.mysql_gtids.add(uuid, &tag, gno);
        }
        let gtid = self.stored_gtid_state().filter(|state| {
            // The checkpoint column (TEXT) holds 65,535 bytes: beyond, resume by file/pos.
            let fits = state.len() <= MAX_GTID_STATE_LEN;
            if !fits && !self.gtid_state_too_long_logged {
                self.gtid_state_too_long_logged = true;
                tracing::warn!(length = state.len(), "the GTID state is too long to store; resuming by file and position");
            }
            fits
        });
        let transaction = Transaction {
            end: self.position.clone(),
            gtid,
            timestamp,
            events,
            webhook_rows: std::mem::take(&mut self.webhook_rows),
            rows_seen: self.rows_seen,
            rows_by_table: std::mem::take(&mut self.rows_by_table),
            complete: true,
        };
        self.reset();
        Decoded::Commit(transaction)
    }

    /// The [`TablePlan`] of `table` for this table map: the one kept when the
    /// table map is the same, else derived anew. None: its metadata does not parse.
    fn table_plan(&mut self, table: &str, tme: &TableMapEvent<'static>, num_columns: u64) -> Option<Arc<TablePlan>> {
        if let Some(plan) = self.table_plans.get(table) {
            if plan.num_columns == num_columns && plan.tme == *tme {
                return Some(plan.clone());
            }
        }
        let columns = column_plans(tme, num_columns).ok()?;
        let plan = Arc::new(TablePlan { tme: tme.clone(), num_columns, columns, full_layout: OnceLock::new() });
        self.table_plans.insert(table.to_string(), plan.clone());
        Some(plan)
    }

    fn rows_event<'t>(
        &mut self,
        rows: &RowsEventData<'_>,
        event_start: &Position,
        table_map: &impl Fn(u64) -> Option<&'t TableMapEvent<'static>>,
    ) -> Result<(), DecodeError> {
        let Some(tme) = table_map(rows.table_id()) else {
            return Err(DecodeError::MissingTableMap { table_id: rows.table_id(), position: event_start.clone() });
        };
        let database = tme.database_name();
        let table = tme.table_name();
        let webhooks_rows = self.webhooks_table.as_ref().is_some_and(|(db, t)| database == db.as_str() && table == t.as_str());
        if !webhooks_rows && (database != self.database.as_str() || !self.mapper.is_mapped(&table)) {
            return Ok(()); // not decoded: nobody maps this table
        }
        // Rows about to be read: not with metadata that would abort the process.
        if let Some(column) = impossible_decimal(tme) {
            self.row_errors += 1;
            tracing::error!(table = %table, position = %event_start, column, "the table map gives a DECIMAL column an impossible precision or scale; the rows event is skipped");
            return Ok(());
        }
        // What mysql_common re-derives from the table map for every row,
        // derived once per table map; should its metadata not parse,
        // mysql_common's own row reader reports that row by row, as before.
        let cached = self.table_plan(if webhooks_rows { WEBHOOKS_PLAN } else { &table }, tme, rows.num_columns());
        let plans = cached.as_deref().map(|c| c.columns.as_slice());
        let operation = match rows {
            RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => Operation::Insert,
            RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => Operation::Delete,
            _ => Operation::Update,
        };
        let schema = if webhooks_rows { self.webhooks_schema.as_ref() } else { self.tables.get(table.as_ref()) };
        // Images may hold a subset of the columns (partial JSON updates,
        // MINIMAL images): one layout per image, from its column bitmap.
        let count = usize::try_from(tme.columns_count()).unwrap_or(0);
        // (A bitmap of every column, the usual case, needs no walk bit by bit.)
        let before_columns =
            present_columns(rows.columns_before_image().filter(|b| !(b.len() == count && b.all())).map(|b| b.iter_ones()), count);
        let after_columns =
            present_columns(rows.columns_after_image().filter(|b| !(b.len() == count && b.all())).map(|b| b.iter_ones()), count);
        // A partial image (MINIMAL, NOBLOB) would deliver wrong nulls and
        // miss changes: refuse it, as at start, rather than guess.
        let images = match operation {
            Operation::Insert => [&after_columns, &after_columns],
            Operation::Delete => [&before_columns, &before_columns],
            Operation::Update => [&before_columns, &after_columns],
        };
        if let Some(found) = images.iter().map(|c| c.len()).find(|&n| n < count) {
            return Err(DecodeError::PartialRowImage { table: table.to_string(), position: event_start.clone(), found, expected: count });
        }
        let (mut before_layout, mut after_layout): (Option<Arc<Layout>>, Option<Arc<Layout>>) = (None, None);
        let rows_before = self.rows_seen;
        // Inside a transaction payload, rows are numbered across the payload.
        let first_index = self.payload.map_or(0, |(_, rows)| rows);
        let mut rows_in_event = 0;
        // Only the columns some rule reads become JSON; partial JSON updates
        // resolve (or report) every JSON column, as before.
        // (Every column of the webhooks table: the router reads them all.)
        let reads = if webhooks_rows { None } else { self.mapper.reads(&table) };
        let partial_update = matches!(rows, RowsEventData::PartialUpdateRowsEvent(_));
        let wanted = |name: &str, column_type: ColumnType| {
            reads.is_none_or(|r| r.contains(name)) || (partial_update && column_type == ColumnType::MYSQL_TYPE_JSON)
        };
        let mut fast = plans.map(|plans| FastRows::new(rows, tme, plans));
        let mut slow = if fast.is_none() { Some(rows.rows(tme)) } else { None };
        for index in first_index.. {
            let row = match (&mut fast, &mut slow) {
                (Some(fast), _) => fast.next().map(|r| r.map(|(b, a)| (b.map(RawRow::Fast), a.map(RawRow::Fast)))),
                (None, Some(slow)) => slow.next().map(|r| r.map(|(b, a)| (b.map(RawRow::Slow), a.map(RawRow::Slow)))),
                (None, None) => None,
            };
            let Some(row) = row else { break };
            rows_in_event += 1;
            // Every row takes a byte at least: more rows than bytes means rows
            // of no bytes (a corrupt column bitmap), which would never end.
            if rows_in_event > rows.rows_data().len() {
                self.row_errors += 1;
                tracing::error!(table = %table, position = %event_start, "rows of no bytes (corrupt column bitmap); the rest of the event is skipped");
                break;
            }
            let (before, after) = match row {
                Ok(pair) => pair,
                Err(e) => {
                    self.row_errors += 1;
                    tracing::error!(table = %table, position = %event_start, row = index, error = %e, "cannot decode row; skipped");
                    continue;
                }
            };
            let mut diff_errors = Vec::new();
            let mut image = |row: Option<RawRow<'_>>,
                             layout: &mut Option<Arc<Layout>>,
                             columns: &[usize],
                             old: Option<&RowImage>|
             -> Result<Option<RowImage>, DecodeError> {
                let Some(row) = row else { return Ok(None) };
                // The layout of an image of every column (before or after) is
                // the same for every rows event of the same table map.
                let full = match (&row, cached.as_deref()) {
                    (RawRow::Fast(_), Some(cached)) if columns.len() == count && !partial_update => Some(&cached.full_layout),
                    _ => None,
                };
                if layout.is_none() {
                    *layout = full.and_then(OnceLock::get).cloned();
                }
                if layout.is_none() {
                    // Name, type and signedness of the image's columns.
                    let described: Vec<(String, ColumnType, bool)> = match (&row, plans) {
                        (RawRow::Fast(_), Some(plans)) => columns
                            .iter()
                            .filter_map(|&i| plans.get(i))
                            .map(|p| (p.name.clone(), p.column_type, p.unsigned))
                            .collect(),
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
                    let built = Arc::new(Layout::new(
                        &described,
                        columns,
                        tme,
                        schema,
                        &table,
                        event_start,
                        self.datetime_offset.as_ref(),
                        self.is_mariadb,
                        &wanted,
                    )?);
                    if let Some(cell) = full {
                        let _ = cell.set(built.clone());
                    }
                    *layout = Some(built);
                }
                Ok(layout.as_ref().map(|l| l.image(&row, old, &mut diff_errors)))
            };
            let before = image(before, &mut before_layout, &before_columns, None)?;
            let after = image(after, &mut after_layout, &after_columns, before.as_ref())?;
            if let Some(fast) = &mut fast {
                // The next rows' values no rule reads need not be copied out.
                if fast.unread_before.is_none() {
                    fast.unread_before = before_layout.as_ref().map(|l| l.unread(&before_columns, count));
                }
                if fast.unread_after.is_none() {
                    fast.unread_after = after_layout.as_ref().map(|l| l.unread(&after_columns, count));
                }
            }
            for error in diff_errors {
                self.row_errors += 1;
                tracing::error!(table = %table, position = %event_start, row = index, error = %error, "partial JSON update not resolved; the value is delivered as null");
            }
            if webhooks_rows {
                self.webhook_rows.push(WebhookRow { operation, before, after });
                continue;
            }
            self.rows_seen += 1;
            let change = RowChange { table: &table, operation, before: before.as_ref(), after: after.as_ref() };
            for mapped in self.mapper.map_serialized(&change) {
                self.pending.push(PendingEvent {
                    id: event_id(&event_start.file, event_start.pos, index, mapped.rule),
                    event_type: mapped.event_type,
                    data: mapped.data,
                });
            }
        }
        if let Some((_, rows)) = self.payload.as_mut() {
            *rows += rows_in_event;
        }
        let rows = self.rows_seen - rows_before;
        if rows > 0 {
            self.rows_by_table.push((Arc::from(table.as_ref()), operation, rows));
        }
        Ok(())
    }
}

/// Names and JSON kinds of the columns of a rows event's images that some
/// rule reads, with their index in the image; derived once per event.
struct Layout {
    columns: Vec<(usize, Arc<str>, ColumnKind)>,
}

impl Layout {
    /// `columns`: name, type and signedness of each column of the image.
    #[allow(clippy::too_many_arguments)]
    fn new(
        columns: &[(String, ColumnType, bool)],
        present: &[usize],
        tme: &TableMapEvent<'_>,
        schema: Option<&TableSchema>,
        table: &str,
        position: &Position,
        datetime_offset: Option<&Arc<str>>,
        is_mariadb: bool,
        wanted: &dyn Fn(&str, ColumnType) -> bool,
    ) -> Result<Layout, DecodeError> {
        let has_names = columns.first().is_some_and(|(name, _, _)| !name.starts_with('@'));
        if !has_names {
            let expected = schema.map_or(0, |s| s.columns.len());
            let found = usize::try_from(tme.columns_count()).unwrap_or(0);
            if expected != found {
                return Err(DecodeError::ColumnCountMismatch { table: table.to_string(), position: position.clone(), found, expected });
            }
        }
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
                    if info.is_some_and(|(_, c)| c.is_json) {
                        ColumnKind::Json
                    } else {
                        let collation = collations.get(i).copied().unwrap_or(0);
                        let binary_by_schema = info.is_some_and(|(_, c)| {
                            matches!(c.data_type.as_str(), "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob")
                        });
                        if collation == value::BINARY_CHARSET || (collation == 0 && binary_by_schema) {
                            // BINARY(n): the binlog drops trailing zero bytes, SELECT shows them.
                            let pad_to = (column_type == ColumnType::MYSQL_TYPE_STRING)
                                .then(|| tme.get_column_metadata(i).and_then(string_length))
                                .flatten();
                            ColumnKind::Binary { pad_to }
                        } else {
                            let charset = Charset::from_collation(collation)
                                .or_else(|| info.and_then(|(_, c)| c.charset.as_deref()).map(Charset::from_name))
                                .unwrap_or(Charset::Utf8);
                            ColumnKind::Text(charset)
                        }
                    }
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

/// What [`Decoder::rows_event`] derives from a mapped table's table map,
/// kept while the table map stays the same: every transaction repeats it,
/// and deriving it again for every rows event cost a tenth of catch-up decoding.
struct TablePlan {
    /// The table map this was derived from.
    tme: TableMapEvent<'static>,
    /// Columns of the rows events it was derived for.
    num_columns: u64,
    columns: Vec<ColumnPlan>,
    /// The layout of an image of every column (not for partial JSON updates),
    /// once built.
    full_layout: OnceLock<Arc<Layout>>,
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


/// The longest GTID state the checkpoint stores (`rowhook_checkpoints.gtid`,
/// TEXT since migration V5).
pub const MAX_GTID_STATE_LEN: usize = 65_535;

/// The key of the webhooks table's [`TablePlan`] (a mapped table of the
/// same name may live in another database).
const WEBHOOKS_PLAN: &str = "\0webhooks";

const TRANSACTION_PAYLOAD: u8 = 40;
const MARIADB_ANNOTATE_ROWS: u8 = 160;
const MARIADB_BINLOG_CHECKPOINT: u8 = 161;
const MARIADB_GTID: u8 = 162;
const MARIADB_GTID_LIST: u8 = 163;
const MARIADB_START_ENCRYPTION: u8 = 164;
const MARIADB_QUERY_COMPRESSED: u8 = 165;
const MARIADB_DELETE_ROWS_COMPRESSED_V1: u8 = 171;

/// `domain-server-sequence` from a MariaDB GTID event body
/// (sequence u64, domain u32, flags u8; little-endian).
fn mariadb_gtid(data: &[u8], server_id: u32) -> Option<(u32, u32, u64)> {
    let sequence = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
    let domain = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?);
    Some((domain, server_id, sequence))
}

/// The GTIDs of a MariaDB GTID_LIST event body: a count (u32, low 28 bits),
/// then (domain u32, server u32, sequence u64) each; little-endian.
/// The first DECIMAL column whose table-map metadata no server writes (a
/// scale above the precision, a precision above 65): mysql_common sizes its
/// read buffer from them, and such a pair would abort the process.
fn impossible_decimal(tme: &TableMapEvent<'_>) -> Option<usize> {
    (0..usize::try_from(tme.columns_count()).unwrap_or(0)).find(|&i| {
        matches!(tme.get_column_type(i), Ok(Some(ColumnType::MYSQL_TYPE_NEWDECIMAL)))
            && match tme.get_column_metadata(i) {
                Some(&[precision, scale, ..]) => precision > 65 || scale > 38 || scale > precision,
                _ => true,
            }
    })
}

/// The string values of each ENUM or SET column, from a table map's
/// ENUM_STR_VALUE or SET_STR_VALUE field: per column a length-encoded count,
/// then that many length-encoded strings. Read here, within the field's
/// bytes: mysql_common reserves room for the count it reads first, and a
/// corrupt count would abort the process. Malformed: what came before it.
fn variant_lists(mut raw: &[u8]) -> Vec<Vec<String>> {
    let mut lists = Vec::new();
    while !raw.is_empty() {
        let Some(count) = lenenc_int(&mut raw) else { break };
        let mut values = Vec::new();
        for _ in 0..count {
            let Some(value) = lenenc_int(&mut raw).and_then(|n| usize::try_from(n).ok()).and_then(|n| {
                let (value, rest) = (raw.get(..n)?, raw.get(n..)?);
                raw = rest;
                Some(value)
            }) else {
                return lists;
            };
            values.push(String::from_utf8_lossy(value).into_owned());
        }
        lists.push(values);
    }
    lists
}

/// A length-encoded integer of the protocol, taken off the front of `raw`.
fn lenenc_int(raw: &mut &[u8]) -> Option<u64> {
    let (&first, rest) = raw.split_first()?;
    let width = match first {
        0..=0xfa => {
            *raw = rest;
            return Some(u64::from(first));
        }
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        _ => return None,
    };
    let bytes = rest.get(..width)?;
    *raw = &rest[width..];
    let mut value = [0u8; 8];
    value[..width].copy_from_slice(bytes);
    Some(u64::from_le_bytes(value))
}

/// Whether a MySQL PREVIOUS_GTIDS event's counts fit in its bytes (8-byte
/// count of server UUIDs, each with a 16-byte UUID, an 8-byte count of
/// intervals and 16 bytes per interval). mysql_common reserves room for the
/// counts it reads; a corrupt one would abort the process.
fn previous_gtids_fit(data: &[u8]) -> bool {
    let count = |at: usize| data.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0xff; 8])));
    let Some(sids) = count(0) else { return false };
    let mut at = 8usize;
    for _ in 0..sids {
        let Some(intervals) = count(at + 16) else { return false };
        let Some(next) = usize::try_from(intervals).ok().and_then(|n| n.checked_mul(16)).and_then(|n| n.checked_add(at + 24)) else {
            return false;
        };
        if next > data.len() {
            return false;
        }
        at = next;
    }
    true
}

fn mariadb_gtid_list(data: &[u8]) -> Option<Vec<(u32, u32, u64)>> {
    let count = u32::from_le_bytes(data.get(0..4)?.try_into().ok()?) & 0x0fff_ffff;
    let mut out = Vec::new();
    for k in 0..count as usize {
        let at = 4 + k * 16;
        let entry = data.get(at..at + 16)?;
        out.push((
            u32::from_le_bytes(entry[0..4].try_into().ok()?),
            u32::from_le_bytes(entry[4..8].try_into().ok()?),
            u64::from_le_bytes(entry[8..16].try_into().ok()?),
        ));
    }
    Some(out)
}

/// `0-1-42,1-1-7` -> {0: (1, 42), 1: (1, 7)}; parts that do not parse are skipped.
pub fn parse_gtid_state(state: &str) -> BTreeMap<u32, (u32, u64)> {
    state
        .split(',')
        .filter_map(|part| {
            let mut it = part.trim().splitn(3, '-');
            let domain = it.next()?.parse().ok()?;
            let server = it.next()?.parse().ok()?;
            let sequence = it.next()?.parse().ok()?;
            Some((domain, (server, sequence)))
        })
        .collect()
}

/// The inverse of [`parse_gtid_state`], domains in order.
pub fn format_gtid_state(state: &BTreeMap<u32, (u32, u64)>) -> String {
    state.iter().map(|(d, (s, n))| format!("{d}-{s}-{n}")).collect::<Vec<_>>().join(",")
}

/// `evt_<file number>_<pos>_<row>_<rule>`; the file number is the binlog
/// file's numeric extension (`binlog.000042` -> `000042`).
pub fn event_id(file: &str, pos: u64, row: usize, rule: usize) -> String {
    let number = file.rsplit_once('.').map_or(file, |(_, ext)| ext);
    // Written piece by piece: `format!` here was 7% of catch-up decoding.
    let mut id = Vec::with_capacity(48 + number.len());
    id.extend_from_slice(b"evt_");
    id.extend(number.bytes().filter(u8::is_ascii_alphanumeric));
    for n in [pos, row as u64, rule as u64] {
        id.push(b'_');
        value::push_padded(&mut id, n, 0);
    }
    String::from_utf8(id).unwrap_or_default() // ASCII
}

fn first_word(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c == '(' || c == '/')
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// Whether `sql` mentions `name` as an identifier (bare or back-quoted).
fn contains_identifier(sql: &str, name: &str) -> bool {
    sql.match_indices(name).any(|(i, _)| {
        let before = sql[..i].chars().next_back();
        let after = sql[i + name.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        boundary(before) && boundary(after)
    })
}

/// Seconds since the epoch as RFC 3339 UTC.
pub fn rfc3339(secs: u32) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::from(secs))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_and_set_values_are_read_within_their_bytes() {
        // Two columns: ('a', 'bc') and ('x').
        let raw = [2, 1, b'a', 2, b'b', b'c', 1, 1, b'x'];
        assert_eq!(variant_lists(&raw), vec![vec!["a".to_string(), "bc".to_string()], vec!["x".to_string()]]);
        // A count of 2^56 with two bytes behind it: what came before, no allocation for the count.
        let corrupt = [1, 1, b'a', 0xfe, 0, 0, 0, 0, 0, 0, 0, 1, 1, b'z'];
        assert_eq!(variant_lists(&corrupt), vec![vec!["a".to_string()]]);
        assert_eq!(variant_lists(&[1, 5, b'a']), Vec::<Vec<String>>::new(), "a value longer than the bytes left");
        let mut wide: &[u8] = &[0xfc, 0x34, 0x12, 9];
        assert_eq!(lenenc_int(&mut wide), Some(0x1234));
        assert_eq!(wide, &[9]);
        assert_eq!(lenenc_int(&mut &[0xfb][..]), None);
    }

    #[test]
    fn a_previous_gtids_event_must_hold_the_uuids_and_intervals_it_counts() {
        let mut event = 1u64.to_le_bytes().to_vec();
        event.extend([7u8; 16]); // server UUID
        event.extend(1u64.to_le_bytes()); // one interval
        event.extend(1u64.to_le_bytes());
        event.extend(6u64.to_le_bytes());
        assert!(previous_gtids_fit(&event));
        assert!(previous_gtids_fit(&0u64.to_le_bytes()), "no UUIDs");
        let mut many_uuids = event.clone();
        many_uuids[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(!previous_gtids_fit(&many_uuids));
        let mut many_intervals = event.clone();
        many_intervals[24..32].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        assert!(!previous_gtids_fit(&many_intervals));
        assert!(!previous_gtids_fit(&event[..30]), "cut short");
    }

    #[test]
    fn envelope_is_what_serde_writes() {
        #[derive(serde::Serialize)]
        struct Envelope<'a> {
            id: &'a str,
            #[serde(rename = "type")]
            event_type: &'a str,
            timestamp: &'a str,
            data: &'a serde_json::Value,
        }
        let data = serde_json::json!({"a": "x\"y\u{7}", "b": [1, 2.5], "c": null});
        let (id, timestamp) = ("evt_000001_4_0_0", "2026-11-28T10:00:00Z");
        for event_type in ["th\"read\\.created", "thread.created", "tab\there\u{1}", "é\u{7f}/"] {
            assert_eq!(
                envelope(id, event_type, timestamp, &data.to_string()),
                serde_json::to_string(&Envelope { id, event_type, timestamp, data: &data }).unwrap()
            );
        }
    }

    #[test]
    fn event_ids_are_stable_and_dot_free() {
        assert_eq!(event_id("binlog.000042", 1234, 3, 0), "evt_000042_1234_3_0");
        assert!(!event_id("mysql-bin.000001", 4, 0, 1).contains('.'));
        assert_eq!(event_id("my-bin.0a_b", u64::MAX, 0, 17), format!("evt_0ab_{}_0_17", u64::MAX));
    }

    #[test]
    fn identifiers_and_keywords() {
        assert!(contains_identifier("ALTER TABLE `threads` ADD x INT", "threads"));
        assert!(!contains_identifier("ALTER TABLE threads_archive ADD x INT", "threads"));
        assert_eq!(first_word("insert into t values (1)"), "INSERT");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn gtid_states_parse_format_and_stay_storable() {
        let state = parse_gtid_state("1-1-7, 0-1-42,junk,2-x-1");
        assert_eq!(format_gtid_state(&state), "0-1-42,1-1-7");
        let mapper = Arc::new(Mapper::new(&[]));
        let mut decoder = Decoder::new(mapper, "db", HashMap::new(), Position::default());
        decoder.set_gtid_state("0-1-42");
        let Decoded::Commit(t) = decoder.commit(0) else { panic!("a commit") };
        assert_eq!(t.gtid.as_deref(), Some("0-1-42"));
        // Forty large domains (1,350 characters): far beyond the old VARCHAR(255), stored whole.
        let many: Vec<String> = (0..40).map(|d| format!("{d}-4294967295-18446744073709551615")).collect();
        decoder.set_gtid_state(&many.join(","));
        let Decoded::Commit(t) = decoder.commit(0) else { panic!("a commit") };
        assert_eq!(t.gtid.as_deref(), Some(many.join(",").as_str()));
        let too_many: Vec<String> = (0..2100).map(|d| format!("{d}-4294967295-18446744073709551615")).collect();
        decoder.set_gtid_state(&too_many.join(","));
        let Decoded::Commit(t) = decoder.commit(0) else { panic!("a commit") };
        assert_eq!(t.gtid, None, "too long for the checkpoint: file/pos only");
    }

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

    #[test]
    fn mariadb_gtid_body() {
        let mut body = 42u64.to_le_bytes().to_vec();
        body.extend(1u32.to_le_bytes());
        body.push(0);
        assert_eq!(mariadb_gtid(&body, 7), Some((1, 7, 42)));
        assert_eq!(mariadb_gtid(&[1, 2], 7), None);
    }
}
