//! The binlog reader actor.
//!
//! Connects as a replica, resumes at the checkpoint, feeds every event to the
//! [`Decoder`], and sends committed transactions to the router in batches: a
//! batch closes when the stream has nothing more ready or when it is large.
//! It waits for the router to store each batch before reading on, so a slow
//! state database slows the reader instead of filling memory.
//!
//! On MariaDB, once a GTID state is known (from the checkpoint, or computed
//! with `BINLOG_GTID_POS` at the first file/pos connect), every connection
//! resumes from it (`@slave_connect_state`), so rowhook follows a failover to
//! a server whose binlog files are numbered differently; file and position
//! are the fallback. Event ids still come from the file/pos the server sends.
//!
//! On MySQL (`gtid_mode=ON`), once the executed GTID set is known (from the
//! checkpoint, from SHOW MASTER STATUS at a `current` start, or from the
//! PREVIOUS_GTIDS event of a file read from its start), every connection
//! asks for the binlog with COM_BINLOG_DUMP_GTID and that set: the server
//! sends every transaction not in it. (Untested against a live MySQL here:
//! no MySQL server runs on the development machines.)
//!
//! Failures are split: a lost connection, a dead (silent) server or an
//! unreachable state database are transient, retried with backoff from the
//! last stored position; a purged position or undecodable data are definite
//! and stop rowhook with a message saying what to do.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::{FutureExt, StreamExt};
use mysql_async::prelude::*;
use mysql_async::BinlogStreamRequest;
use tokio::sync::{oneshot, watch};

use crate::source::decoder::{DecodeError, Decoded, Decoder, KeyWatch, OwnTable, OwnTables, Position, RowMapper, Transaction};
use crate::source::gtid::GtidSet;
use crate::metrics::{self, Metrics};
use crate::source::schema::{self, SchemaError, TableSchema};
use crate::state::store::StoreError;

/// A batch closes at this many transactions ...
const MAX_BATCH_TRANSACTIONS: usize = 2000;
/// ... or this many changed rows.
const MAX_BATCH_ROWS: usize = 1000;

/// Committed transactions, in binlog order, for the next stage (the
/// router), which answers once it has stored what they amount to.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct CommitBatch {
    pub transactions: Arc<Vec<Transaction>>,
}

/// Errors that stop the reader for good.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    #[error("the binlog position {position} is no longer on the server (purged?): {message}. Choose a new start explicitly with `rowhook run --reset-position current` (or `earliest`); events in between are not delivered")]
    PositionLost { position: Position, message: String },
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("replication refused by the server: {0}")]
    Refused(String),
    #[error("the binlog reader stopped without a result (it panicked: the log above says where); rowhook stops so that it is restarted")]
    Vanished,
}

/// Everything the reader needs, fixed at start.
#[derive(Clone)]
pub struct ReaderSettings {
    pub source: mysql_async::Opts,
    pub database: String,
    pub server_id: u32,
    pub heartbeat: Duration,
    pub is_mariadb: bool,
    /// The tables to decode, their columns, and what their rows become (the rules).
    pub mapper: Arc<dyn RowMapper>,
    pub tables: HashMap<String, TableSchema>,
    /// The GTID state to resume from (MariaDB's state or MySQL's GTID set), from the checkpoint.
    pub start_gtid: Option<String>,
    /// DATETIME values carry this UTC offset (`[source] time_zone`).
    pub datetime_offset: Option<String>,
    /// Rowhook's own tables (webhooks, watermarks) when the state database is on the source server.
    pub own_tables: Option<OwnTables>,
    /// The tables whose changed rows' keys a running backfill needs.
    pub keys: Arc<KeyWatch>,
    pub metrics: Metrics,
}

/// What the reader shows the world (for /readyz).
#[derive(Debug, Clone, Default)]
pub struct ReaderStatus {
    pub connected: bool,
    pub last_error: Option<String>,
    pub position: Position,
}

pub struct Reader {
    settings: ReaderSettings,
    start: Position,
    router: Recipient<CommitBatch>,
    status: watch::Sender<ReaderStatus>,
    shutdown: watch::Receiver<bool>,
    done: Option<oneshot::Sender<Result<(), ReaderError>>>,
}

impl Reader {
    pub fn new(
        settings: ReaderSettings,
        start: Position,
        router: Recipient<CommitBatch>,
        status: watch::Sender<ReaderStatus>,
        shutdown: watch::Receiver<bool>,
        done: oneshot::Sender<Result<(), ReaderError>>,
    ) -> Reader {
        Reader { settings, start, router, status, shutdown, done: Some(done) }
    }
}

impl Actor for Reader {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let run = read_forever(
            self.settings.clone(),
            self.start.clone(),
            self.router.clone(),
            self.status.clone(),
            self.shutdown.clone(),
        );
        ctx.spawn(run.into_actor(self).map(|result, act, ctx| {
            if let Some(done) = act.done.take() {
                let _ = done.send(result);
            }
            ctx.stop();
        }));
    }
}

/// Transient or definite?
enum SessionError {
    Transient(String),
    Definite(ReaderError),
}

async fn read_forever(
    settings: ReaderSettings,
    mut position: Position,
    router: Recipient<CommitBatch>,
    status: watch::Sender<ReaderStatus>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ReaderError> {
    let mut backoff = Duration::from_millis(500);
    let mut gtid = settings.start_gtid.clone();
    loop {
        match session(&settings, &mut position, &mut gtid, &router, &status, &mut shutdown, &mut backoff).await {
            Ok(()) => return Ok(()),
            Err(SessionError::Definite(e)) => {
                settings.metrics.reader_connected.set(0);
                status.send_modify(|s| {
                    s.connected = false;
                    s.last_error = Some(e.to_string());
                });
                return Err(e);
            }
            Err(SessionError::Transient(_)) if *shutdown.borrow() => return Ok(()),
            Err(SessionError::Transient(message)) => {
                tracing::warn!(error = %message, retry_in = ?backoff, "binlog connection lost; reconnecting");
                settings.metrics.reader_connected.set(0);
                status.send_modify(|s| {
                    s.connected = false;
                    s.last_error = Some(message);
                });
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

fn transient(e: impl std::fmt::Display) -> SessionError {
    SessionError::Transient(e.to_string())
}

/// One connection's worth of reading. Returns Ok on shutdown.
#[allow(clippy::too_many_arguments)]
async fn session(
    settings: &ReaderSettings,
    position: &mut Position,
    gtid: &mut Option<String>,
    router: &Recipient<CommitBatch>,
    status: &watch::Sender<ReaderStatus>,
    shutdown: &mut watch::Receiver<bool>,
    backoff: &mut Duration,
) -> Result<(), SessionError> {
    let Opened { mut stream, mut info_conn, mut decoder, resume_gtid } = open(settings, position, gtid.as_deref()).await?;
    tracing::info!(position = %position, gtid = ?resume_gtid, "reading the binlog");
    let m = &settings.metrics;
    m.reader_connected.set(1);
    // Counters by raw event type, looked up once each rather than per event.
    let mut by_type: HashMap<u8, prometheus::IntCounter> = HashMap::new();
    let mut row_errors = 0;
    status.send_modify(|s| {
        s.connected = true;
        s.last_error = None;
        s.position = position.clone();
    });

    let read_timeout = settings.heartbeat * 3;
    let mut batch: Vec<Transaction> = Vec::new();
    let mut batch_rows = 0;
    loop {
        let next = if batch.is_empty() {
            tokio::select! {
                next = tokio::time::timeout(read_timeout, stream.next()) => match next {
                    Ok(next) => next,
                    Err(_) => return Err(transient(format!("no event or heartbeat for {read_timeout:?}"))),
                },
                _ = shutdown.changed() => return Ok(()),
            }
        } else {
            match stream.next().now_or_never() {
                Some(next) => next,
                None => {
                    flush(router, &mut batch, position, gtid, status, shutdown).await?;
                    record_checkpoint(m, position);
                    batch_rows = 0;
                    continue;
                }
            }
        };
        let event = match next {
            Some(Ok(event)) => event,
            Some(Err(e)) => return Err(classify(e, position)),
            None => return Err(transient("the server closed the binlog stream")),
        };
        let raw_type = event.header().event_type_raw();
        by_type
            .entry(raw_type)
            .or_insert_with(|| m.binlog_events.with_label_values(&[&event_type_name(raw_type)]))
            .inc();
        let decoded = decoder.feed(&event, |id| stream.get_tme(id)).map_err(|e| SessionError::Definite(e.into()))?;
        if decoder.row_errors != row_errors {
            m.mapping_errors.inc_by(decoder.row_errors - row_errors);
            row_errors = decoder.row_errors;
        }
        match decoded {
            Decoded::Commit(transaction) | Decoded::Partial(transaction) => {
                *backoff = Duration::from_millis(500);
                record_transaction(m, &transaction);
                batch_rows += transaction.events.len();
                batch.push(transaction);
                if batch.len() >= MAX_BATCH_TRANSACTIONS || batch_rows >= MAX_BATCH_ROWS {
                    flush(router, &mut batch, position, gtid, status, shutdown).await?;
                    record_checkpoint(m, position);
                    batch_rows = 0;
                }
            }
            Decoded::SchemaChanged(tables) => {
                tracing::info!(tables = ?tables, "schema change of mapped tables; reloading their columns");
                m.schema_reloads.inc();
                let names: Vec<String> = settings.mapper.tables();
                match schema::load_tables(&mut info_conn, &settings.database, &names, settings.is_mariadb).await {
                    Ok(tables) => decoder.set_tables(tables),
                    Err(SchemaError::Query(e)) => return Err(transient(e)),
                    Err(e) => return Err(transient(e)),
                }
                if let Some(own) = &settings.own_tables {
                    for table in [OwnTable::Webhooks, OwnTable::Watermarks].into_iter().filter(|t| tables.iter().any(|n| n == t.name())) {
                        let schema = own_table_schema(&mut info_conn, &own.database, table, settings.is_mariadb).await.map_err(transient)?;
                        decoder.set_own_schema(table, schema);
                    }
                }
            }
            Decoded::Heartbeat => m.replication_lag_seconds.set(0),
            Decoded::Nothing => {}
        }
    }
}

/// The columns of one of rowhook's own tables in `database`, for rows
/// logged without column names.
pub async fn own_table_schema(
    conn: &mut mysql_async::Conn,
    database: &str,
    table: OwnTable,
    is_mariadb: bool,
) -> Result<Option<TableSchema>, SchemaError> {
    let mut tables = schema::load_tables(conn, database, &[table.name().to_string()], is_mariadb).await?;
    Ok(tables.remove(table.name()))
}

/// Rowhook's own tables in the state database `database` (on the source server), with their columns.
pub async fn own_tables(conn: &mut mysql_async::Conn, database: &str, is_mariadb: bool) -> Result<OwnTables, SchemaError> {
    let mut schemas = std::collections::HashMap::new();
    for table in [OwnTable::Webhooks, OwnTable::Watermarks] {
        schemas.insert(table, own_table_schema(conn, database, table, is_mariadb).await?);
    }
    Ok(OwnTables { database: database.to_string(), schemas })
}

/// A replication connection positioned to resume, the decoder for its
/// stream, and a second connection for queries while the first streams.
struct Opened {
    stream: mysql_async::BinlogStream,
    info_conn: mysql_async::Conn,
    decoder: Decoder,
    /// The GTID state or set the stream resumes from (None: by file and position).
    resume_gtid: Option<String>,
}

/// Connects as a replica and asks for the binlog after `position`: by GTID
/// when the state is known (MariaDB: else learned at the file and position).
async fn open(settings: &ReaderSettings, position: &Position, gtid: Option<&str>) -> Result<Opened, SessionError> {
    let mut conn = mysql_async::Conn::new(settings.source.clone()).await.map_err(transient)?;
    if settings.is_mariadb {
        // Without it MariaDB rewrites GTID events into BEGIN queries.
        conn.query_drop("SET @mariadb_slave_capability = 4").await.map_err(transient)?;
    }
    let heartbeat_ns = settings.heartbeat.as_nanos() as u64;
    conn.query_drop(format!("SET @master_heartbeat_period = {heartbeat_ns}")).await.map_err(transient)?;
    let mut info_conn = mysql_async::Conn::new(settings.source.clone()).await.map_err(transient)?;

    // Resume by GTID when the state is known; MariaDB: else learn the state at the file/pos.
    let resume = resume_from(gtid, settings.is_mariadb);
    if let Resume::MariaDbGtid(state) = &resume {
        for sql in [
            format!("SET @slave_connect_state = '{state}'"),
            "SET @slave_gtid_strict_mode = 0".to_string(),
            "SET @slave_gtid_ignore_duplicates = 0".to_string(),
        ] {
            conn.query_drop(sql).await.map_err(transient)?;
        }
    }
    let request = stream_request(settings.server_id, position, &resume);
    let resume_gtid = match &resume {
        Resume::MariaDbGtid(state) => Some(state.clone()),
        Resume::MySqlGtid(set) => Some(set.to_string()),
        Resume::Position => None,
    };
    let known_state = match &resume_gtid {
        Some(state) => Some(state.clone()),
        None if settings.is_mariadb => info_conn
            .exec_first::<Option<String>, _, _>("SELECT BINLOG_GTID_POS(?, ?)", (&position.file, position.pos))
            .await
            .ok()
            .flatten()
            .flatten(),
        None => None,
    };
    let stream = conn.get_binlog_stream(request).await.map_err(|e| classify(e, position))?;
    // By GTID, the server names the file in its first ROTATE.
    let stream_start = if resume_gtid.is_some() { Position { file: String::new(), pos: 4 } } else { position.clone() };
    let mut decoder = Decoder::new(settings.mapper.clone(), &settings.database, settings.tables.clone(), stream_start);
    if let Some(state) = &known_state {
        decoder.set_gtid_state(state);
    }
    decoder.set_datetime_offset(settings.datetime_offset.as_deref());
    if let Some(own) = &settings.own_tables {
        decoder.watch_own_tables(own.clone());
    }
    decoder.watch_keys(settings.keys.clone());
    Ok(Opened { stream, info_conn, decoder, resume_gtid })
}

/// Hands the batch to the router and waits until it is stored; retries while
/// the state database is unreachable (reading no further meanwhile).
async fn flush(
    router: &Recipient<CommitBatch>,
    batch: &mut Vec<Transaction>,
    position: &mut Position,
    gtid: &mut Option<String>,
    status: &watch::Sender<ReaderStatus>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), SessionError> {
    if batch.is_empty() {
        return Ok(());
    }
    // Parts of a transaction still open do not move the position.
    let end = batch.iter().rev().find(|t| t.complete).map(|t| t.end.clone());
    let end_gtid = batch.iter().rev().find(|t| t.complete).and_then(|t| t.gtid.clone());
    let transactions = Arc::new(std::mem::take(batch));
    let mut wait = Duration::from_millis(200);
    loop {
        match router.send(CommitBatch { transactions: Arc::clone(&transactions) }).await {
            Ok(Ok(())) => break,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, retry_in = ?wait, "cannot store deliveries; holding the reader");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => return Err(transient("shutdown while the state database was unreachable")),
                }
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(transient(format!("router gone: {e}"))),
        }
    }
    if let Some(end) = end {
        *position = end;
        if end_gtid.is_some() {
            *gtid = end_gtid;
        }
        status.send_modify(|s| s.position = position.clone());
    }
    Ok(())
}

/// The position handed to the router (stored at once, or lazily when nothing mapped).
fn record_checkpoint(m: &Metrics, position: &Position) {
    m.checkpoint_file_number.set(metrics::file_number(&position.file));
    m.checkpoint_position.set(position.pos as i64);
}

/// Metrics of one committed transaction.
fn record_transaction(m: &Metrics, transaction: &Transaction) {
    for (table, operation, rows) in &transaction.rows_by_table {
        m.rows.with_label_values(&[table.as_ref(), operation.as_str()]).inc_by(*rows as u64);
    }
    if transaction.timestamp > 0 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        m.replication_lag_seconds.set(now.saturating_sub(u64::from(transaction.timestamp)) as i64);
    }
}

/// A readable, bounded label for a raw binlog event type.
fn event_type_name(raw: u8) -> String {
    match raw {
        160 => "MARIADB_ANNOTATE_ROWS".into(),
        161 => "MARIADB_BINLOG_CHECKPOINT".into(),
        162 => "MARIADB_GTID".into(),
        163 => "MARIADB_GTID_LIST".into(),
        _ => match mysql_common::binlog::consts::EventType::try_from(raw) {
            Ok(t) => format!("{t:?}"),
            Err(_) => format!("UNKNOWN_{raw}"),
        },
    }
}

/// `0-1-42,1-1-7`: only digits, dashes and commas (it goes into a SET statement).
fn is_gtid_state(state: &str) -> bool {
    !state.is_empty() && state.chars().all(|c| c.is_ascii_digit() || c == '-' || c == ',')
}

/// How a session asks the server for the binlog.
#[derive(Debug, PartialEq)]
enum Resume {
    /// MariaDB: `@slave_connect_state`, then a dump without file.
    MariaDbGtid(String),
    /// MySQL: COM_BINLOG_DUMP_GTID with this set.
    MySqlGtid(GtidSet),
    /// COM_BINLOG_DUMP at the checkpoint's file and position.
    Position,
}

/// By GTID when the stored state is one this server understands, else by file/pos.
fn resume_from(gtid: Option<&str>, is_mariadb: bool) -> Resume {
    match gtid {
        Some(state) if is_mariadb && is_gtid_state(state) => Resume::MariaDbGtid(state.to_string()),
        Some(set) if !is_mariadb => match GtidSet::parse(set) {
            Ok(set) if !set.is_empty() => Resume::MySqlGtid(set),
            _ => Resume::Position,
        },
        _ => Resume::Position,
    }
}

/// The binlog request for `resume` (by GTID, no file: the server picks it).
fn stream_request<'a>(server_id: u32, position: &'a Position, resume: &Resume) -> BinlogStreamRequest<'a> {
    match resume {
        Resume::MariaDbGtid(_) => BinlogStreamRequest::new(server_id),
        Resume::MySqlGtid(set) => BinlogStreamRequest::new(server_id).with_gtid().with_gtid_set(set.sids()),
        Resume::Position => BinlogStreamRequest::new(server_id).with_filename(position.file.as_bytes()).with_pos(position.pos),
    }
}

fn classify(e: mysql_async::Error, position: &Position) -> SessionError {
    if let mysql_async::Error::Server(server) = &e {
        match server.code {
            // ER_MASTER_FATAL_ERROR_READING_BINLOG: purged or unknown position.
            1236 => {
                return SessionError::Definite(ReaderError::PositionLost {
                    position: position.clone(),
                    message: server.message.clone(),
                })
            }
            1045 | 1227 => {
                return SessionError::Definite(ReaderError::Refused(format!(
                    "{} (the user needs REPLICATION SLAVE: GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ...; docs/source-database.md lists every grant)",
                    server.message
                )))
            }
            _ => {}
        }
    }
    transient(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_mysql_set_resumes_by_com_binlog_dump_gtid() {
        let stored = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7-9,e6e5ba2d-07e9-11ef-8b4a-0242ac110002:1-3";
        let Resume::MySqlGtid(set) = resume_from(Some(stored), false) else { panic!("by GTID") };
        assert_eq!(set.to_string(), stored);
        // The request's sids: every UUID with its intervals, as MySQL prints them.
        let sids: Vec<String> = set.sids().iter().map(|s| s.to_string()).collect();
        assert_eq!(sids, ["3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7-9", "e6e5ba2d-07e9-11ef-8b4a-0242ac110002:1-3"]);
        // Built without panicking (the request's fields are private to mysql_async).
        let position = Position { file: "mysql-bin.000042".into(), pos: 4 };
        let _ = stream_request(1, &position, &Resume::MySqlGtid(set));
    }

    #[test]
    fn resume_by_the_servers_own_kind_of_gtid_else_by_position() {
        assert_eq!(resume_from(Some("0-1-42,1-1-7"), true), Resume::MariaDbGtid("0-1-42,1-1-7".into()));
        assert_eq!(resume_from(None, true), Resume::Position);
        assert_eq!(resume_from(None, false), Resume::Position);
        assert_eq!(resume_from(Some(""), false), Resume::Position);
        // A state of the other flavour, or one that does not parse: file and position.
        assert_eq!(resume_from(Some("0-1-42"), false), Resume::Position);
        assert_eq!(resume_from(Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"), true), Resume::Position);
        assert_eq!(resume_from(Some("0-1-1'; DROP TABLE x; --"), true), Resume::Position);
    }
}
