//! Binlog events in, committed transactions of row changes out.
//!
//! The [`Decoder`] is a state machine fed one binlog event at a time, from a
//! live replication stream or from a binlog file (the fixture tests). It
//! tracks the position, groups row events into transactions (GTID/BEGIN ...
//! XID/COMMIT), decodes the rows of the tables its [`RowMapper`] reads (other
//! tables' rows are never parsed), hands each changed row to the mapper at
//! once (its images are dropped right after: a transaction never holds its
//! rows' images, only what they map to) and, at each commit, hands back a
//! [`Transaction`] with the [`RowEvent`]s and the position just after it:
//! the checkpoint that resumes after this transaction. The mapper is the
//! events stage's rules, behind a trait this stage defines, so the source
//! depends on no stage after it. Each event keeps its row's binlog
//! coordinates (the rows event's position and the row's index), from which
//! the events stage makes stable event ids. Rows inside a MySQL
//! TRANSACTION_PAYLOAD (binlog transaction compression) carry no position of
//! their own: they take the payload's position and a row index counted
//! across the whole payload.
//!
//! GTIDs (MariaDB): the decoder keeps the GTID state, the last GTID of every
//! replication domain (`0-1-42,1-1-7`, [`super::mariadb_gtid`]), starting
//! from the state it is given ([`Decoder::set_gtid_state`]) and from GTID_LIST
//! events; every [`Transaction`] carries the state after it, which the
//! checkpoint stores and a restart resumes from.
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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use mysql_common::binlog::consts::EventType;
use mysql_common::binlog::events::{Event, EventData, QueryEvent, RowsEventData, TableMapEvent};

use super::gtid::GtidSet;
use super::guards::{impossible_decimal, previous_gtids_fit};
use super::mariadb_gtid::{format_gtid_state, mariadb_gtid, mariadb_gtid_list, parse_gtid_state};
use super::rows::{EventImages, ImageSource, RowImage, TablePlan};
use super::schema::TableSchema;
use crate::config::Operation;

/// Where reading resumes: the position of the next event to read.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub file: String,
    pub pos: u64,
}

impl Position {
    /// Whether this position is at or before `other` in one server's
    /// binlog: the files by their number (`binlog.000012`), then the offset.
    pub fn at_or_before(&self, other: &Position) -> bool {
        let number = |file: &str| file.rsplit('.').next().and_then(|n| n.parse::<u64>().ok());
        match (number(&self.file), number(&other.file)) {
            (Some(a), Some(b)) if a != b => a < b,
            _ if self.file != other.file => self.file < other.file,
            _ => self.pos <= other.pos,
        }
    }

    /// As the state database stores it: (file, offset).
    pub fn stored(&self) -> (&str, u64) {
        (&self.file, self.pos)
    }
}

impl From<(String, u64)> for Position {
    fn from((file, pos): (String, u64)) -> Position {
        Position { file, pos }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
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
    /// The transaction in the source: its GTID (MariaDB `0-1-42`, MySQL
    /// `uuid:42`) where the server has one, else `file:position` of its start.
    /// The same for every part of a large transaction.
    pub source_id: String,
    /// What the changed rows of the tables read mapped to, in binlog order.
    pub events: Vec<RowEvent>,
    /// Its changes to rowhook's `webhooks` table, in binlog order, with
    /// before and after images: how the router learns of webhooks added,
    /// changed and removed by SQL, in commit order, without re-reading the
    /// table (a row need not be visible yet when its binlog event arrives).
    pub webhook_rows: Vec<ChangedRow>,
    /// Its changes to `rowhook_watermarks` (a backfill's chunk boundaries).
    pub watermark_rows: Vec<ChangedRow>,
    /// The keys of its changed rows of the tables a backfill watches ([`KeyWatch`]): (table, key).
    pub changed_keys: Vec<(Arc<str>, String)>,
    /// Rows of read tables per rows event: (table, operation, rows), for metrics.
    pub rows_by_table: Vec<(Arc<str>, Operation, usize)>,
    /// False for a part of a large transaction handed over before its commit
    /// (see [`MAX_PENDING_ROWS`]): its events are stored, the checkpoint stays.
    pub complete: bool,
}

/// One changed row: its table, the operation, the images (the columns read,
/// as JSON) and its binlog coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedRow {
    pub table: Arc<str>,
    pub operation: Operation,
    /// Present for updates and deletes.
    pub before: Option<RowImage>,
    /// Present for inserts and updates.
    pub after: Option<RowImage>,
    /// The position of its rows event (of the TRANSACTION_PAYLOAD around it).
    pub pos: u64,
    /// Its index in the rows event (in the payload).
    pub index: usize,
}

/// One changed row, borrowed: what a [`RowMapper`] maps.
#[derive(Debug, Clone, Copy)]
pub struct RowChange<'a> {
    pub table: &'a str,
    pub operation: Operation,
    /// Present for updates and deletes.
    pub before: Option<&'a RowImage>,
    /// Present for inserts and updates.
    pub after: Option<&'a RowImage>,
}

impl<'a> RowChange<'a> {
    pub fn of(row: &'a ChangedRow) -> RowChange<'a> {
        RowChange { table: &row.table, operation: row.operation, before: row.before.as_ref(), after: row.after.as_ref() }
    }
}

/// What one changed row maps to: an event's rule, type, `data` (JSON text)
/// and group, before it has an id and an envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedRow {
    /// Index of the rule in the configuration (part of the event id).
    pub rule: usize,
    pub event_type: Arc<str>,
    pub data: String,
    /// The group key (None: a group of its own).
    pub group: Option<String>,
}

/// A [`MappedRow`] with its row's binlog coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct RowEvent {
    pub mapped: MappedRow,
    /// The position of its rows event (of the TRANSACTION_PAYLOAD around it).
    pub pos: u64,
    /// Its row's index in the rows event (in the payload).
    pub index: usize,
}

/// Which tables and columns to decode, and what their changed rows become:
/// the events stage's rules (`events::mapping::Mapper`) behind a trait of
/// this stage's.
pub trait RowMapper: Send + Sync {
    /// The columns of `table` (in the source database) to decode; None: the
    /// table is not read and its rows are skipped unparsed.
    fn columns(&self, table: &str) -> Option<&Columns>;
    /// The tables read.
    fn tables(&self) -> Vec<String>;
    /// What one changed row becomes (often nothing).
    fn map(&self, change: &RowChange<'_>) -> Vec<MappedRow>;
}

/// A [`RowMapper`] that decodes the tables it is given and maps nothing:
/// for decoding alone (tests).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadSet {
    tables: HashMap<String, Columns>,
}

impl RowMapper for ReadSet {
    fn columns(&self, table: &str) -> Option<&Columns> {
        self.tables.get(table)
    }
    fn tables(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }
    fn map(&self, _: &RowChange<'_>) -> Vec<MappedRow> {
        Vec::new()
    }
}

/// The columns of a table to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Columns {
    All,
    Named(HashSet<String>),
}

impl Columns {
    pub fn contains(&self, column: &str) -> bool {
        match self {
            Columns::All => true,
            Columns::Named(names) => names.contains(column),
        }
    }
}

impl ReadSet {
    pub fn new(tables: HashMap<String, Columns>) -> ReadSet {
        ReadSet { tables }
    }
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



/// The decoding state machine; see the module docs.
pub struct Decoder {
    mapper: Arc<dyn RowMapper>,
    database: String,
    /// Column facts per mapped table, from information_schema.
    tables: HashMap<String, TableSchema>,
    /// Rowhook's own tables whose changes come through this binlog (the
    /// state database's `webhooks` and `rowhook_watermarks`), in this database.
    own: Option<OwnTables>,
    /// Tables whose changed rows' keys a backfill needs.
    keys: Arc<KeyWatch>,
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
    /// Where the event being fed starts, and where the open transaction started.
    event_start_pos: u64,
    transaction_start_pos: u64,
    /// Per mapped table: what its rows events need from its table map.
    table_plans: HashMap<String, Arc<TablePlan>>,
    /// Inside a TRANSACTION_PAYLOAD: its position and the rows seen in it.
    payload: Option<(u64, usize)>,
    /// DATETIME values get this offset (`[source] time_zone`).
    datetime_offset: Option<Arc<str>>,
    /// The binlog comes from MariaDB (per its FORMAT_DESCRIPTION).
    is_mariadb: bool,
    events: Vec<RowEvent>,
    webhook_rows: Vec<ChangedRow>,
    watermark_rows: Vec<ChangedRow>,
    changed_keys: Vec<(Arc<str>, String)>,
    rows_by_table: Vec<(Arc<str>, Operation, usize)>,
    /// Rows that could not be decoded (logged with their coordinates).
    pub row_errors: u64,
}

impl Decoder {
    pub fn new(mapper: Arc<dyn RowMapper>, database: &str, tables: HashMap<String, TableSchema>, start: Position) -> Decoder {
        Decoder {
            mapper,
            database: database.to_string(),
            tables,
            own: None,
            keys: Arc::default(),
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
            event_start_pos: 0,
            transaction_start_pos: 0,
            table_plans: HashMap::new(),
            payload: None,
            datetime_offset: None,
            is_mariadb: false,
            events: Vec::new(),
            webhook_rows: Vec::new(),
            watermark_rows: Vec::new(),
            changed_keys: Vec::new(),
            rows_by_table: Vec::new(),
            row_errors: 0,
        }
    }

    /// Also report the changed rows of rowhook's own tables in `own`
    /// ([`Transaction::webhook_rows`], [`Transaction::watermark_rows`]).
    pub fn watch_own_tables(&mut self, own: OwnTables) {
        self.own = Some(own);
        self.table_plans.retain(|key, _| !key.starts_with('\0'));
    }

    /// Report the keys of the changed rows of the tables `keys` names ([`Transaction::changed_keys`]).
    pub fn watch_keys(&mut self, keys: Arc<KeyWatch>) {
        self.keys = keys;
    }

    /// One of rowhook's own tables changed its columns (DDL).
    pub fn set_own_schema(&mut self, table: OwnTable, schema: Option<TableSchema>) {
        if let Some(own) = self.own.as_mut() {
            own.schemas.insert(table, schema);
        }
        self.table_plans.remove(table.plan_key());
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
            self.event_start_pos = event_start.pos;
            self.position.pos = u64::from(header.log_pos());
            self.payload = None;
        } else if let Some((payload_pos, _)) = self.payload {
            // An event inside a TRANSACTION_PAYLOAD: it has no position of its own.
            event_start.pos = payload_pos;
        }
        if let Some(decoded) = self.raw_event(event, &event_start)? {
            return Ok(decoded);
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
                self.rotate(&rotate);
                Ok(Decoded::Nothing)
            }
            EventData::FormatDescriptionEvent(fde) => {
                self.format_description(&fde);
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
            EventData::QueryEvent(query) => self.query_event(&query, header.timestamp(), event_start),
            EventData::XidEvent(_) => Ok(self.commit(header.timestamp())),
            EventData::RowsEvent(rows) => {
                self.rows_event(&rows, &event_start, &table_map)?;
                if self.events.len() >= MAX_PENDING_EVENTS {
                    return Ok(Decoded::Partial(self.partial(header.timestamp())));
                }
                Ok(Decoded::Nothing)
            }
            _ => Ok(Decoded::Nothing),
        }
    }

    /// Events read from their raw bytes: a TRANSACTION_PAYLOAD's start, and
    /// MariaDB's own events, which mysql_common leaves undecoded. None: not one of them.
    fn raw_event(&mut self, event: &Event, event_start: &Position) -> Result<Option<Decoded>, DecodeError> {
        let header = event.header();
        match header.event_type_raw() {
            TRANSACTION_PAYLOAD if header.log_pos() != 0 => self.payload = Some((event_start.pos, 0)),
            MARIADB_GTID => {
                self.begin();
                self.gtid = mariadb_gtid(event.data(), header.server_id());
            }
            MARIADB_GTID_LIST => {
                // The state at the start of a binlog file: adopt what we do not know yet.
                for (domain, server, sequence) in mariadb_gtid_list(event.data()).unwrap_or_default() {
                    self.gtid_state.entry(domain).or_insert((server, sequence));
                }
            }
            MARIADB_ANNOTATE_ROWS | MARIADB_BINLOG_CHECKPOINT | MARIADB_START_ENCRYPTION => {}
            t if (MARIADB_QUERY_COMPRESSED..=MARIADB_DELETE_ROWS_COMPRESSED_V1).contains(&t) => {
                return Err(DecodeError::Compressed { event_type: t, position: event_start.clone() });
            }
            _ => return Ok(None),
        }
        Ok(Some(Decoded::Nothing))
    }

    /// A ROTATE: the next binlog file (the stream's first one names the file asked for).
    fn rotate(&mut self, rotate: &mysql_common::binlog::events::RotateEvent<'_>) {
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
    }

    /// A FORMAT_DESCRIPTION: which server wrote the file, and whether it checksums events.
    fn format_description(&mut self, fde: &mysql_common::binlog::events::FormatDescriptionEvent<'_>) {
        self.is_mariadb = fde.server_version().to_ascii_lowercase().contains("mariadb");
        self.table_plans.clear(); // their layouts depend on the server's kind
        if let Some(mut name) = self.pending_rotate_name.take() {
            // The fake ROTATE came before the server said it checksums events.
            let checksums = matches!(fde.footer().get_checksum_alg(), Ok(Some(alg)) if alg != mysql_common::binlog::consts::BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_OFF);
            if checksums && name.len() > 4 {
                name.truncate(name.len() - 4);
                self.position.file = String::from_utf8_lossy(&name).into_owned();
            }
        }
    }

    /// A statement: BEGIN, COMMIT or ROLLBACK of a transaction; DML logged
    /// as a statement (which a row-based reader must refuse for its
    /// database); DDL, which ends its own transaction and may change the
    /// columns of a table read.
    fn query_event(&mut self, query: &QueryEvent<'_>, timestamp: u32, event_start: Position) -> Result<Decoded, DecodeError> {
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
            "COMMIT" => Ok(self.commit(timestamp)),
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
                Ok(self.statement_end(timestamp))
            }
            _ => {
                // DDL and other statements: each is its own transaction.
                let touched: Vec<String> = if matches!(keyword.as_str(), "ALTER" | "CREATE" | "DROP" | "RENAME" | "TRUNCATE")
                {
                    self.mapper
                        .tables()
                        .iter()
                        .map(String::as_str)
                        .chain(self.own.iter().flat_map(|_| [OwnTable::Webhooks.name(), OwnTable::Watermarks.name()]))
                        .filter(|t| contains_identifier(trimmed, t))
                        .map(str::to_string)
                        .collect()
                } else {
                    Vec::new()
                };
                let decoded = self.statement_end(timestamp);
                if !touched.is_empty() {
                    return Ok(Decoded::SchemaChanged(touched));
                }
                Ok(decoded)
            }
        }
    }

    fn begin(&mut self) {
        self.reset();
        self.in_transaction = true;
        self.transaction_start_pos = self.event_start_pos;
    }

    /// The open transaction's [`Transaction::source_id`].
    fn source_id(&self) -> String {
        if let Some((domain, server, sequence)) = self.gtid {
            return format!("{domain}-{server}-{sequence}");
        }
        if let Some((uuid, tag, gno)) = &self.mysql_gtid {
            let mut one = GtidSet::new();
            one.add(*uuid, tag, *gno);
            return one.to_string();
        }
        format!("{}:{}", self.position.file, self.transaction_start_pos)
    }

    fn reset(&mut self) {
        self.in_transaction = false;
        self.explicit_begin = false;
        self.gtid = None;
        self.mysql_gtid = None;
        self.events.clear();
        self.webhook_rows.clear();
        self.watermark_rows.clear();
        self.changed_keys.clear();
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

    /// The rows so far of a transaction still open; the transaction goes on.
    fn partial(&mut self, timestamp: u32) -> Transaction {
        Transaction {
            end: self.position.clone(),
            gtid: None,
            timestamp,
            source_id: self.source_id(),
            events: self.events.drain(..).collect(), // (keeps the buffer: no regrowing per transaction)
            webhook_rows: std::mem::take(&mut self.webhook_rows),
            watermark_rows: std::mem::take(&mut self.watermark_rows),
            changed_keys: std::mem::take(&mut self.changed_keys),
            rows_by_table: std::mem::take(&mut self.rows_by_table),
            complete: false,
        }
    }

    fn commit(&mut self, timestamp: u32) -> Decoded {
        // (Only transactions with rows to map need it: not the skip path.)
        let source_id = if self.events.is_empty() { String::new() } else { self.source_id() };
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
            source_id,
            events: self.events.drain(..).collect(), // (keeps the buffer: no regrowing per transaction)
            webhook_rows: std::mem::take(&mut self.webhook_rows),
            watermark_rows: std::mem::take(&mut self.watermark_rows),
            changed_keys: std::mem::take(&mut self.changed_keys),
            rows_by_table: std::mem::take(&mut self.rows_by_table),
            complete: true,
        };
        self.reset();
        Decoded::Commit(transaction)
    }

    /// The [`TablePlan`] of `key` for this table map: the one kept when the
    /// table map is the same, else derived anew. None: its metadata does not parse.
    fn table_plan(&mut self, key: &str, tme: &TableMapEvent<'static>, num_columns: u64) -> Option<Arc<TablePlan>> {
        if let Some(plan) = self.table_plans.get(key) {
            if plan.fits(tme, num_columns) {
                return Some(plan.clone());
            }
        }
        let plan = Arc::new(TablePlan::derive(tme, num_columns).ok()?);
        self.table_plans.insert(key.to_string(), plan.clone());
        Some(plan)
    }

    /// The rows of a rows event, when its table is read: each becomes a
    /// [`ChangedRow`] of the transaction (of the webhooks table's rows when
    /// it is that table). A row that cannot be read is counted, logged with
    /// its coordinates and skipped; a layout that does not fit the table
    /// (columns without names, in a number rowhook does not know) stops.
    fn rows_event<'t>(
        &mut self,
        rows: &RowsEventData<'_>,
        event_start: &Position,
        table_map: &impl Fn(u64) -> Option<&'t TableMapEvent<'static>>,
    ) -> Result<(), DecodeError> {
        let Some(tme) = table_map(rows.table_id()) else {
            return Err(DecodeError::MissingTableMap { table_id: rows.table_id(), position: event_start.clone() });
        };
        let (database, table) = (tme.database_name(), tme.table_name());
        let own = self.own.as_ref().filter(|o| database == o.database.as_str()).and_then(|_| OwnTable::named(&table));
        // Every column of rowhook's own tables (the router reads them all);
        // of a table in the source database, those the rules read.
        let mapper = self.mapper.clone();
        let reads = match own {
            Some(_) => Some(&Columns::All),
            None if database == self.database.as_str() => mapper.columns(&table),
            None => None,
        };
        let Some(reads) = reads else {
            return Ok(()); // not decoded: nobody reads this table
        };
        // Rows about to be read: not with metadata that would abort the process.
        if let Some(column) = impossible_decimal(tme) {
            self.row_errors += 1;
            tracing::error!(table = %table, position = %event_start, column, "the table map gives a DECIMAL column an impossible precision or scale; the rows event is skipped");
            return Ok(());
        }
        // What mysql_common re-derives from the table map for every row,
        // derived once per table map; should its metadata not parse,
        // mysql_common's own row reader reports that row by row, as before.
        let plan_key: &str = match own {
            Some(own) => own.plan_key(),
            None => &table,
        };
        let plan = self.table_plan(plan_key, tme, rows.num_columns());
        let schema = match own {
            Some(own) => self.own.as_ref().and_then(|o| o.schemas.get(&own)).and_then(Option::as_ref),
            None => self.tables.get(table.as_ref()),
        };
        // A backfill of this table needs its changed rows' keys.
        let key_columns = if own.is_none() { self.keys.columns(&table) } else { None };
        let source = ImageSource {
            table: &table,
            position: event_start,
            schema,
            reads,
            datetime_offset: self.datetime_offset.as_ref(),
            is_mariadb: self.is_mariadb,
        };
        let mut images = EventImages::new(rows, tme, plan.as_deref(), source)?;
        let operation = images.operation();
        let table_name: Arc<str> = Arc::from(table.as_ref());
        // Inside a transaction payload, rows are numbered across the payload.
        let first_index = self.payload.map_or(0, |(_, rows)| rows);
        let (mut rows_in_event, mut read) = (0, 0);
        for index in first_index.. {
            let Some(row) = images.next_row()? else { break };
            rows_in_event += 1;
            // Every row takes a byte at least: more rows than bytes means rows
            // of no bytes (a corrupt column bitmap), which would never end.
            if rows_in_event > rows.rows_data().len() {
                self.row_errors += 1;
                tracing::error!(table = %table, position = %event_start, "rows of no bytes (corrupt column bitmap); the rest of the event is skipped");
                break;
            }
            let (before, after, diff_errors) = match row {
                Ok(images) => images,
                Err(e) => {
                    self.row_errors += 1;
                    tracing::error!(table = %table, position = %event_start, row = index, error = %e, "cannot decode row; skipped");
                    continue;
                }
            };
            for error in diff_errors {
                self.row_errors += 1;
                tracing::error!(table = %table, position = %event_start, row = index, error = %error, "partial JSON update not resolved; the value is delivered as null");
            }
            if let Some(own) = own {
                let row = ChangedRow { table: table_name.clone(), operation, before, after, pos: event_start.pos, index };
                match own {
                    OwnTable::Webhooks => self.webhook_rows.push(row),
                    OwnTable::Watermarks => self.watermark_rows.push(row),
                }
                continue;
            }
            read += 1;
            if let Some(columns) = &key_columns {
                // Both keys when an update changes the key.
                for image in [before.as_ref(), after.as_ref()].into_iter().flatten() {
                    let key = row_key(image, columns);
                    if !self.changed_keys.last().is_some_and(|(t, k)| *t == table_name && *k == key) {
                        self.changed_keys.push((table_name.clone(), key));
                    }
                }
            }
            // Mapped at once: the images are dropped here, not kept for the commit.
            let change = RowChange { table: &table, operation, before: before.as_ref(), after: after.as_ref() };
            for mapped in mapper.map(&change) {
                self.events.push(RowEvent { mapped, pos: event_start.pos, index });
            }
        }
        if let Some((_, rows)) = self.payload.as_mut() {
            *rows += rows_in_event;
        }
        if read > 0 {
            self.rows_by_table.push((table_name, operation, read));
        }
        Ok(())
    }
}

/// The longest GTID state the checkpoint stores (`rowhook_checkpoints.gtid`,
/// TEXT since migration V5).
pub const MAX_GTID_STATE_LEN: usize = 65_535;

/// Rowhook's own tables the decoder reports the changed rows of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnTable {
    /// `webhooks`: the subscriptions ([`Transaction::webhook_rows`]).
    Webhooks,
    /// `rowhook_watermarks`: a backfill's chunk boundaries ([`Transaction::watermark_rows`]).
    Watermarks,
}

impl OwnTable {
    pub fn name(self) -> &'static str {
        match self {
            OwnTable::Webhooks => "webhooks",
            OwnTable::Watermarks => "rowhook_watermarks",
        }
    }

    fn named(table: &str) -> Option<OwnTable> {
        [OwnTable::Webhooks, OwnTable::Watermarks].into_iter().find(|t| t.name() == table)
    }

    /// The key of its [`TablePlan`] (a mapped table of the same name may live in another database).
    fn plan_key(self) -> &'static str {
        match self {
            OwnTable::Webhooks => "\0webhooks",
            OwnTable::Watermarks => "\0watermarks",
        }
    }
}

/// Rowhook's own tables in the state database, when it lives on the source
/// server: their database and columns (names when the binlog has none).
#[derive(Debug, Clone, Default)]
pub struct OwnTables {
    pub database: String,
    pub schemas: HashMap<OwnTable, Option<TableSchema>>,
}

/// The tables whose changed rows' keys are reported, with their key columns:
/// set by a running backfill, read by the decoder for every rows event of a
/// table it reads (a lock-free check while none is set).
#[derive(Debug, Default)]
pub struct KeyWatch {
    watched: std::sync::atomic::AtomicUsize,
    tables: std::sync::RwLock<HashMap<String, (usize, Vec<String>)>>,
}

impl KeyWatch {
    /// Report the keys (`columns`) of `table`'s changed rows, until [`KeyWatch::unwatch`].
    pub fn watch(&self, table: &str, columns: Vec<String>) {
        let mut tables = self.tables.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        tables.entry(table.to_string()).or_insert((0, columns)).0 += 1;
        self.watched.store(tables.len(), std::sync::atomic::Ordering::SeqCst);
    }

    pub fn unwatch(&self, table: &str) {
        let mut tables = self.tables.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((count, _)) = tables.get_mut(table) {
            *count -= 1;
            if *count == 0 {
                tables.remove(table);
            }
        }
        self.watched.store(tables.len(), std::sync::atomic::Ordering::SeqCst);
    }

    /// The key columns of `table`, when its keys are watched.
    pub fn columns(&self, table: &str) -> Option<Vec<String>> {
        if self.watched.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            return None;
        }
        let tables = self.tables.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        tables.get(table).map(|(_, columns)| columns.clone())
    }
}

/// A row's key as text: the JSON array of its key columns' values (`[42]`),
/// the same whether the row comes from the binlog or from a SELECT.
pub fn row_key(image: &RowImage, columns: &[String]) -> String {
    let values: Vec<&serde_json::Value> = columns.iter().map(|c| image.get(c).unwrap_or(&serde_json::Value::Null)).collect();
    serde_json::to_string(&values).unwrap_or_default()
}

const TRANSACTION_PAYLOAD: u8 = 40;
const MARIADB_ANNOTATE_ROWS: u8 = 160;
const MARIADB_BINLOG_CHECKPOINT: u8 = 161;
const MARIADB_GTID: u8 = 162;
const MARIADB_GTID_LIST: u8 = 163;
const MARIADB_START_ENCRYPTION: u8 = 164;
const MARIADB_QUERY_COMPRESSED: u8 = 165;
const MARIADB_DELETE_ROWS_COMPRESSED_V1: u8 = 171;

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

#[cfg(test)]
mod tests {
    use super::*;





    #[test]
    fn identifiers_and_keywords() {
        assert!(contains_identifier("ALTER TABLE `threads` ADD x INT", "threads"));
        assert!(!contains_identifier("ALTER TABLE threads_archive ADD x INT", "threads"));
        assert_eq!(first_word("insert into t values (1)"), "INSERT");
    }

    #[test]
    fn gtid_states_parse_format_and_stay_storable() {
        let state = parse_gtid_state("1-1-7, 0-1-42,junk,2-x-1");
        assert_eq!(format_gtid_state(&state), "0-1-42,1-1-7");
        let mut decoder = Decoder::new(Arc::new(ReadSet::default()), "db", HashMap::new(), Position::default());
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



}
