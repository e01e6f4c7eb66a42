//! Starting and stopping the whole daemon.
//!
//! [`run`] checks everything it can before it reads a single event (state
//! database migrated, source reachable, binlog settings, grants, rules against
//! the live schema), takes the instance lock (standing by while another
//! instance holds it: [`crate::state::instance`]), then starts the actors and the HTTP
//! server, and waits for the shutdown signal, a definite reader error or the
//! loss of the lock. Shutdown stops the reader first, flushes the checkpoint,
//! gives deliveries in flight a deadline, releases the lock, then stops the
//! HTTP server. [`check`] runs the same checks and reports.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use mysql_async::prelude::*;
use tokio::sync::{oneshot, watch};

use crate::delivery::actor::DeliveryContext;
use crate::admin::http::{self, HttpState};
use crate::source::reader::{Reader, ReaderError, ReaderSettings, ReaderStatus};
use crate::delivery::router::{FlushCheckpoint, LoadWebhooks, Router};
use crate::config::{Config, StartAt};
use crate::dburl::{self, ConnectError, Target};
use crate::backfill::runner::Runner;
use crate::backfill::windows::ChunkBox;
use crate::source::decoder::{KeyWatch, OwnTables, Position};
use crate::source::gtid::GtidSet;
use crate::state::instance::{self, Attempt, InstanceLock, LockLost};
use crate::events::mapping::Mapper;
use crate::metrics::Metrics;
use crate::delivery::retry::RetryPolicy;
use crate::source::schema::{self, Problem, Problems, SchemaError, ServerInfo, TableSchema};
use crate::delivery::sender::Sender;
use crate::state::secrets::Keyring;
use crate::state::store::{SavedView, Store, StoreError};

/// Why rowhook could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("source URL: {0}")]
    SourceUrl(String),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Reader(#[from] ReaderError),
    #[error("HTTP server: {0}")]
    Http(#[from] std::io::Error),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(
        "the checkpoint {position} is in a binlog the server no longer has (purged? its oldest is {oldest}); \
         events in between cannot be delivered. Choose a new start explicitly: \
         `rowhook run --reset-position earliest` (from {oldest}) or `rowhook run --reset-position current`"
    )]
    PositionPurged { position: Position, oldest: String },
    #[error("the source has no binary logs: is log_bin on?")]
    NoBinlog,
    #[error(transparent)]
    LockLost(#[from] LockLost),
    #[error(
        "no token is set ([admin] token or [admin.tokens.NAME]), so rowhook listens on loopback addresses only, not {0}: \
         set ROWHOOK__ADMIN__TOKEN, or a named token, or [http] listen = \"127.0.0.1:8080\""
    )]
    NoToken(std::net::SocketAddr),
    #[error("config: {0}")]
    Tokens(#[from] crate::admin::auth::TokenError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Tls(#[from] crate::admin::tls::TlsError),
}

/// The keys webhook secrets are sealed and opened with (`[admin] secrets_key`, `secrets_key_previous`).
pub fn keyring(config: &Config) -> Result<Keyring, RunError> {
    let (current, previous) = config.admin.secrets_keys()?;
    Ok(Keyring::new(current, previous))
}

/// Where reading starts when there is no checkpoint, or when the operator says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetPosition {
    Current,
    Earliest,
}

/// What the startup checks found.
pub struct Checked {
    pub server: ServerInfo,
    pub database: String,
    pub tables: std::collections::HashMap<String, TableSchema>,
    pub source_opts: mysql_async::Opts,
    /// The source, as messages name it.
    pub source_target: Target,
    /// What works, but less well (no column names in the binlog).
    pub warnings: Vec<Problem>,
}

/// The checks `run` and `rowhook check-config` share. Every check runs; when
/// any finds an error, every problem found is in the error
/// ([`SchemaError::Refused`]).
pub async fn check(config: &Config) -> Result<Checked, RunError> {
    let source_opts = crate::dburl::opts(&config.source.url).map_err(|e| RunError::SourceUrl(e.to_string()))?;
    let source_target = config.source_target(&source_opts);
    let database = source_opts.db_name().unwrap_or_default().to_string();
    let mut conn = dburl::connect(&source_opts, &source_target).await?;
    let (server, mut problems) = schema::inspect_server(&mut conn).await?;
    let names: Vec<String> = config.events.iter().map(|r| r.table.clone()).collect();
    let (unreadable, denied) = schema::check_select(&mut conn, &database, &names, &server.user).await?;
    problems.extend(unreadable);
    let tables = schema::load_tables(&mut conn, &database, &names, server.is_mariadb).await?;
    let all_known = names.iter().all(|n| tables.contains_key(n) || denied.contains(n));
    let all_tables = if all_known { Vec::new() } else { schema::table_names(&mut conn, &database).await? };
    problems.extend(schema::check_rules(&config.events, &database, &tables, &denied, &all_tables));
    let _ = conn.disconnect().await;
    if problems.iter().any(|p| !p.is_warning()) {
        return Err(SchemaError::Refused(Problems(problems)).into());
    }
    Ok(Checked { server, database, tables, source_opts, source_target, warnings: problems })
}

/// What works, but less safely, in the config: `rowhook run` logs these and
/// `rowhook check-config` lists them.
pub fn config_warnings(config: &Config) -> Vec<Problem> {
    let mut warnings = Vec::new();
    if config.admin.secrets_key.is_none() && config.admin.secrets_key_file.is_none() {
        warnings.push(Problem::SecretsInPlaintext);
    }
    warnings
}

/// The source's position now (current) or its oldest binlog (earliest).
/// The position to start from and, for `current` on a MySQL server with
/// GTIDs, its executed GTID set at that position (SHOW MASTER STATUS gives both
/// at once), so the checkpoint can resume by GTID from the start.
async fn server_position(checked: &Checked, at: ResetPosition) -> Result<(Position, Option<String>), RunError> {
    let mut conn = dburl::connect(&checked.source_opts, &checked.source_target).await?;
    let position = match at {
        ResetPosition::Current => {
            // MySQL 8.4 renamed SHOW MASTER STATUS; MariaDB and older MySQL know only the old name.
            let row: Option<mysql_async::Row> = match conn.query_first("SHOW BINARY LOG STATUS").await {
                Ok(row) => row,
                Err(_) => conn.query_first("SHOW MASTER STATUS").await.map_err(StoreError::from)?,
            };
            row.and_then(|r| {
                // MySQL's fifth column, Executed_Gtid_Set (`uuid:1-5,\nuuid2:1-3`; empty without GTIDs).
                let gtids = r
                    .get_opt::<String, _>(4)
                    .and_then(Result::ok)
                    .and_then(|text| GtidSet::parse(&text).ok())
                    .filter(|set| !set.is_empty())
                    .map(|set| set.to_string());
                Some((Position { file: r.get(0)?, pos: r.get(1)? }, gtids))
            })
        }
        ResetPosition::Earliest => {
            let row: Option<mysql_async::Row> = conn.query_first("SHOW BINARY LOGS").await.map_err(StoreError::from)?;
            // The file's PREVIOUS_GTIDS event gives the decoder its GTID set.
            row.and_then(|r| Some((Position { file: r.get(0)?, pos: 4 }, None)))
        }
    };
    let _ = conn.disconnect().await;
    position.ok_or(RunError::NoBinlog)
}

/// Refuses to start from a checkpoint whose binlog the server no longer has:
/// reading on from elsewhere would skip events without a word.
async fn ensure_on_server(checked: &Checked, position: &Position) -> Result<(), RunError> {
    let mut conn = dburl::connect(&checked.source_opts, &checked.source_target).await?;
    let logs: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await.map_err(StoreError::from)?;
    let _ = conn.disconnect().await;
    let files: Vec<String> = logs.iter().filter_map(|r| r.get::<String, _>(0)).collect();
    if files.contains(&position.file) {
        return Ok(());
    }
    Err(RunError::PositionPurged {
        position: position.clone(),
        oldest: files.first().cloned().unwrap_or_else(|| "none".into()),
    })
}

/// Runs rowhook until `shutdown` resolves or the reader stops for good.
/// Must be called inside an actix system (actors need its runtime).
pub async fn run(
    config: Config,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()>,
    reset: Option<ResetPosition>,
) -> Result<(), RunError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listen = listener.local_addr()?;
    if !listen.ip().is_loopback() && !config.admin.has_tokens() {
        return Err(RunError::NoToken(listen));
    }
    let auth = Arc::new(crate::admin::auth::Auth::from_config(&config.admin)?);
    let secrets = Arc::new(keyring(&config)?);
    // HTTPS: the certificate reloaded on SIGHUP for as long as this runs.
    let cert = crate::admin::tls::CertResolver::load(&config.http)?;
    let tls = cert.as_ref().map(|c| c.server_config()).transpose()?;
    let _reload_certificate = AbortOnDrop(actix_rt::spawn(crate::admin::tls::reload_on_sighup(cert)));
    if let Some(id) = secrets.current_id() {
        tracing::info!(key_id = id, "webhook secrets are sealed in the table ([admin] secrets_key)");
    }
    let mut shutdown = std::pin::pin!(shutdown);
    let metrics = Metrics::new();
    let Some(Active { store, checked, lock, state_opts, lock_name }) = become_active(&config, &listener, tls.as_ref(), &metrics, shutdown.as_mut()).await? else {
        return Ok(());
    };

    let Start { position: start, gtid: start_gtid, is_new: start_is_new } = start_position(&config, &store, &checked, reset).await?;

    // The webhooks table's changes come through this binlog when the state
    // database lives on the source server; otherwise the router polls it.
    // The tables whose changed rows' keys a running backfill needs (the decoder reports them).
    let keys: Arc<KeyWatch> = Arc::default();
    let followed = webhooks_followed(&state_opts, &checked).await?;
    // Routing resumes with the subscriptions saved with the checkpoint (none after a new start).
    let saved_view = if start_is_new { None } else { store.load_checkpoint_subscriptions().await? };

    // Kept from here on; an early return drops it (and its connection), which releases it.
    let (stop_lock, stop_lock_rx) = watch::channel(false);
    let (lost_tx, mut lost_rx) = oneshot::channel();
    let lock_session = lock.session();
    let mut lock_keeper = AbortOnDrop(actix_rt::spawn(instance::keep(lock, state_opts.clone(), stop_lock_rx, lost_tx, metrics.active.clone())));

    let stopping = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let delivery = delivery_context(&config, &store, &metrics, &stopping, &in_flight, &secrets)?;
    // Rules without `group_by` group by their table's primary key.
    // Key columns are read too: a backfill follows the rows it copies by their keys.
    let rules = crate::events::mapping::with_default_groups(&config.events, &checked.tables);
    let mut mapper = Mapper::new(&rules);
    mapper.read_keys(&checked.tables);
    let mapper = Arc::new(mapper);
    let chunks: Arc<ChunkBox> = Arc::default();
    let router = Router::new(delivery, chunks.clone(), followed.poll).start();
    router.send(LoadWebhooks { saved: saved_view }).await.map_err(|_| StoreError::Url("router stopped".into()))??;

    let (status_tx, status_rx) = watch::channel(ReaderStatus { position: start.clone(), ..Default::default() });
    let (stop_reader, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = oneshot::channel();
    let settings = ReaderSettings {
        source: checked.source_opts.clone(),
        database: checked.database.clone(),
        server_id: config.source.server_id,
        heartbeat: config.source.heartbeat,
        is_mariadb: checked.server.is_mariadb,
        mapper: mapper.clone(),
        tables: checked.tables.clone(),
        own_tables: followed.own.clone(),
        keys: keys.clone(),
        metrics: metrics.clone(),
        start_gtid,
        datetime_offset: config.source.time_zone.clone(),
    };
    Reader::new(settings, start, router.clone().recipient(), status_tx, stop_rx, done_tx).start();

    // Backfills need their watermarks in the source's binlog: the state database on the source server.
    let backfills = followed.own.is_some().then(|| Arc::new(tokio::sync::Notify::new()));
    let runner = backfills.as_ref().map(|wake| {
        let runner = Runner {
            store: store.clone(),
            source: checked.source_opts.clone(),
            mapper: mapper.clone(),
            tables: Arc::new(checked.tables.clone()),
            datetime_offset: config.source.time_zone.as_deref().map(Arc::from),
            chunks: chunks.clone(),
            keys: keys.clone(),
            metrics: metrics.clone(),
            wake: wake.clone(),
            stopping: stopping.clone(),
        };
        AbortOnDrop(actix_rt::spawn(runner.run()))
    });

    let metrics_for_pruner = metrics.clone();
    let console = Arc::new(crate::admin::console::ConsoleState::new(
        rules,
        Some(checked.source_opts.clone()),
        Some(state_opts.clone()),
        lock_name,
        Some(lock_session),
    ));
    let sampler = AbortOnDrop(actix_rt::spawn(crate::admin::console::sample_throughput(console.clone(), metrics.clone())));
    let state = HttpState {
        reader: status_rx,
        store: store.clone(),
        router: router.clone(),
        metrics: metrics.clone(),
        auth,
        console,
        event_types: Arc::new(event_types(&config)),
        secret_rotation_overlap: config.admin.secret_rotation_overlap,
        secrets: secrets.clone(),
        default_ordering: config.delivery.ordering,
        targets: crate::delivery::ssrf::TargetPolicy::of(&config.delivery),
        // Bounds the lookup as a delivery's connect_timeout bounds lookup and connect.
        resolve_timeout: config.delivery.connect_timeout,
        backfills,
        mapper: mapper.clone(),
        tables: Arc::new(checked.tables.clone()),
        protect_metrics: config.admin.protect_metrics,
        replayer: crate::backfill::replay::Replayer {
            store: store.clone(),
            source: checked.source_opts.clone(),
            database: checked.database.clone(),
            server_id: config.source.server_id,
            is_mariadb: checked.server.is_mariadb,
            mapper: mapper.clone(),
            tables: Arc::new(checked.tables.clone()),
            datetime_offset: config.source.time_zone.clone(),
            running: Arc::default(),
            progress: Arc::default(),
        },
    };
    let server_handle = serve_admin(listener, state, &config, tls)?;

    let pruner = actix_rt::spawn(prune_history(store.clone(), config.delivery.retention, metrics_for_pruner, stopping.clone()));

    let mut done_rx = done_rx;
    let stop = tokio::select! {
        _ = &mut shutdown => Stop::Signal,
        // A reader that is gone without a result panicked: an error, so that the service manager restarts rowhook.
        result = &mut done_rx => Stop::Reader(result.unwrap_or(Err(ReaderError::Vanished))),
        Ok(lost) = &mut lost_rx => Stop::LockLost(lost),
    };

    // Stop: the reader first, then the checkpoint, then deliveries, then the lock, then HTTP.
    tracing::info!("stopping");
    let _ = stop_reader.send(true);
    let lock_lost = match &stop {
        Stop::LockLost(lost) => Some(lost.clone()),
        _ => None,
    };
    let reader_result = match stop {
        Stop::Reader(result) => result,
        _ => tokio::time::timeout(Duration::from_secs(5), done_rx).await.ok().and_then(Result::ok).unwrap_or(Ok(())),
    };
    if let Ok(Err(e)) = router.send(FlushCheckpoint).await {
        tracing::warn!(error = %e, "could not save the last checkpoint; the next start re-reads a little");
    }
    stopping.store(true, Ordering::SeqCst);
    wait_for_deliveries(&in_flight, config.delivery.shutdown_timeout).await;
    pruner.abort();
    drop(runner); // a backfill resumes from its cursor at the next start
    drop(sampler);
    let _ = stop_lock.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), &mut lock_keeper.0).await;
    metrics.active.set(0);
    server_handle.stop(true).await;
    drop(router);
    let _ = tokio::time::timeout(Duration::from_secs(2), store.disconnect()).await;
    if let Some(lost) = lock_lost {
        return Err(lost.into());
    }
    reader_result.map_err(RunError::from)
}

/// This instance, holding the instance lock, with the source checked.
struct Active {
    store: Store,
    checked: Checked,
    lock: InstanceLock,
    state_opts: mysql_async::Opts,
    lock_name: String,
}

/// Checks the state database and the source, then takes the instance lock
/// (standing by while another instance holds it). None: the shutdown signal
/// came first.
async fn become_active(
    config: &Config,
    listener: &std::net::TcpListener,
    tls: Option<&rustls::ServerConfig>,
    metrics: &Metrics,
    shutdown: Pin<&mut impl Future<Output = ()>>,
) -> Result<Option<Active>, RunError> {
    let mut store = state_store(config).await?;
    store.check_migrated().await?;
    let mut checked = check(config).await?;
    tracing::info!(
        server = %checked.server.version,
        database = %checked.database,
        rules = config.events.len(),
        full_row_metadata = checked.server.full_row_metadata,
        "source checked"
    );
    for warning in checked.warnings.iter().chain(config_warnings(config).iter()) {
        tracing::warn!(fix = %warning.fix(), "{warning}");
    }
    // Only the instance holding the lock reads and delivers; the checkpoint is read after.
    let state_opts = crate::dburl::opts(config.state_url()).map_err(|e| StoreError::Url(e.to_string()))?;
    let lock_name = instance::lock_name(state_opts.db_name().unwrap_or_default());
    let Some((lock, waited)) = take_instance_lock(&state_opts, &lock_name, listener, tls, metrics, shutdown).await? else {
        store.disconnect().await;
        return Ok(None);
    };
    if waited {
        // Hours may have passed: the mapped tables' columns as they are now (the
        // checkpoint may be past a schema change), and fresh state connections.
        checked = check(config).await?;
        store.disconnect().await;
        store = state_store(config).await?;
    }
    metrics.active.set(1);
    tracing::info!(lock = %lock_name, session = lock.session(), "this instance is the active one");
    Ok(Some(Active { store, checked, lock, state_opts, lock_name }))
}

/// The state database, connected; a failure names it as [`Config::state_target`] does.
pub async fn state_store(config: &Config) -> Result<Store, RunError> {
    Store::connect(config.state_url()).await.map_err(|e| match e {
        StoreError::Connect(e) => match dburl::opts(config.state_url()) {
            Ok(opts) => RunError::Connect(ConnectError::new(&config.state_target(&opts), &e)),
            Err(_) => StoreError::Connect(e).into(),
        },
        other => other.into(),
    })
}

/// Where reading starts.
struct Start {
    position: Position,
    /// The GTID state or set to resume from, when known.
    gtid: Option<String>,
    /// A new position (no checkpoint, or `--reset-position`): nothing saved with an older one applies.
    is_new: bool,
}

/// The checkpoint, or a new position (saved at once) when there is none or
/// the operator says so. A checkpoint's GTID state (MariaDB's, or MySQL's
/// GTID set) wins over its file/pos (see the reader): the file need not exist
/// on this server (after a failover).
async fn start_position(config: &Config, store: &Store, checked: &Checked, reset: Option<ResetPosition>) -> Result<Start, RunError> {
    if let (None, Some(position)) = (reset, store.load_checkpoint().await?.map(Position::from)) {
        let gtid = store.load_checkpoint_gtid().await?;
        if gtid.is_none() {
            ensure_on_server(checked, &position).await?;
        }
        return Ok(Start { position, gtid, is_new: false });
    }
    let at = reset.unwrap_or(match config.source.start {
        StartAt::Current => ResetPosition::Current,
        StartAt::Earliest => ResetPosition::Earliest,
    });
    let (position, gtids) = server_position(checked, at).await?;
    let gtid = gtids.filter(|_| !checked.server.is_mariadb);
    // Saved at once: a restart before the first event must not skip what happened meanwhile.
    // Subscriptions saved with an earlier checkpoint do not belong to this position.
    store.save_checkpoint(position.stored(), gtid.as_deref(), SavedView::Clear).await?;
    tracing::info!(position = %position, "starting from a new position");
    Ok(Start { position, gtid, is_new: true })
}

/// How rowhook learns of changes to its webhooks table (and sees a
/// backfill's watermarks): through the source's binlog when the state
/// database lives on the source server (`own`: its tables there), else by
/// polling (and without backfills).
struct WebhooksFollowed {
    own: Option<OwnTables>,
    poll: Option<Duration>,
}

async fn webhooks_followed(state_opts: &mysql_async::Opts, checked: &Checked) -> Result<WebhooksFollowed, RunError> {
    let source = &checked.source_opts;
    let same_server = state_opts.ip_or_hostname() == source.ip_or_hostname() && state_opts.tcp_port() == source.tcp_port();
    if !same_server {
        return Ok(WebhooksFollowed { own: None, poll: Some(Duration::from_secs(1)) });
    }
    let db = state_opts.db_name().unwrap_or_default().to_string();
    let mut conn = dburl::connect(source, &checked.source_target).await?;
    let own = crate::source::reader::own_tables(&mut conn, &db, checked.server.is_mariadb).await?;
    let _ = conn.disconnect().await;
    Ok(WebhooksFollowed { own: Some(own), poll: None })
}

/// What every delivery actor shares, from `[delivery]`.
fn delivery_context(
    config: &Config,
    store: &Store,
    metrics: &Metrics,
    stopping: &Arc<AtomicBool>,
    in_flight: &Arc<AtomicUsize>,
    secrets: &Arc<Keyring>,
) -> Result<DeliveryContext, RunError> {
    let d = &config.delivery;
    Ok(DeliveryContext {
        store: store.clone(),
        sender: Sender::new(d)?,
        policy: Arc::new(RetryPolicy {
            schedule: d.retry_schedule.clone(),
            jitter: d.retry_jitter,
            ..RetryPolicy::default()
        }),
        auto_disable_after: d.auto_disable_after,
        auto_disable_min_failing: d.auto_disable_min_failing,
        max_in_flight: d.max_in_flight,
        ordering: d.ordering,
        stopping: stopping.clone(),
        in_flight: in_flight.clone(),
        metrics: metrics.clone(),
        state_writes: Arc::new(tokio::sync::Semaphore::new(STATE_WRITES)),
        secrets: secrets.clone(),
    })
}

/// The configured event types, each once, in rule order.
fn event_types(config: &Config) -> Vec<String> {
    let mut types: Vec<String> = Vec::new();
    for rule in &config.events {
        if !types.contains(&rule.event_type) {
            types.push(rule.event_type.clone());
        }
    }
    types
}

/// Starts the admin HTTP server on `listener`; its handle stops it.
fn serve_admin(
    listener: std::net::TcpListener,
    state: HttpState,
    config: &Config,
    tls: Option<rustls::ServerConfig>,
) -> Result<actix_web::dev::ServerHandle, RunError> {
    let https = tls.is_some();
    let server = http::serve(listener, state, tls)?;
    let handle = server.handle();
    actix_rt::spawn(server);
    tracing::info!(listen = ?config.http.listen, https, "rowhook running");
    Ok(handle)
}

/// Waits until no delivery wave is in flight, or the deadline.
async fn wait_for_deliveries(in_flight: &AtomicUsize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = in_flight.load(Ordering::SeqCst);
    if left > 0 {
        tracing::warn!(waves = left, "deliveries still in flight at the deadline stay pending and are sent after the next start");
    }
}

/// A task that ends when its handle is dropped.
struct AbortOnDrop(actix_rt::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What ended the pipeline.
enum Stop {
    Signal,
    Reader(Result<(), ReaderError>),
    LockLost(LockLost),
}

/// Takes the instance lock; while another instance holds it, stands by:
/// serves [`http::serve_standby`] on (a clone of) `listener` and waits for the
/// lock. None: the shutdown signal came first; else the lock, and whether
/// this instance stood by first.
async fn take_instance_lock(
    opts: &mysql_async::Opts,
    name: &str,
    listener: &std::net::TcpListener,
    tls: Option<&rustls::ServerConfig>,
    metrics: &Metrics,
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
) -> Result<Option<(InstanceLock, bool)>, RunError> {
    let holder = match instance::try_acquire(opts, name, Duration::ZERO).await.map_err(StoreError::from)? {
        Attempt::Taken(lock) => return Ok(Some((lock, false))),
        Attempt::HeldBy(holder) => holder,
    };
    metrics.active.set(0);
    let reason = format!(
        "standing by: another rowhook instance is active on this state database (it holds the lock `{name}`, \
         connection {holder} on the state server); this one takes over when that one stops"
    );
    tracing::warn!("{reason}");
    let standby = http::serve_standby(listener.try_clone()?, metrics.clone(), reason, tls.cloned())?;
    let standby_handle = standby.handle();
    actix_rt::spawn(standby);
    let mut unreachable = false;
    let lock = loop {
        tokio::select! {
            _ = shutdown.as_mut() => break None,
            attempt = tokio::time::timeout(
                instance::STANDBY_WAIT + instance::CHECK_TIMEOUT,
                instance::try_acquire(opts, name, instance::STANDBY_WAIT),
            ) => {
                let failure = match attempt {
                    Ok(Ok(Attempt::Taken(lock))) => break Some(lock),
                    Ok(Ok(Attempt::HeldBy(_))) => {
                        unreachable = false;
                        continue;
                    }
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "no answer".to_string(),
                };
                if !unreachable {
                    tracing::warn!(error = %failure, "standing by: the state database is unreachable; trying again every second");
                }
                unreachable = true;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    standby_handle.stop(true).await;
    if lock.is_some() {
        tracing::info!(lock = %name, "the active instance let go of the lock: taking over");
    }
    Ok(lock.map(|lock| (lock, true)))
}

/// Deletes finished deliveries older than `retention`, in small batches with
/// pauses, so the history never grows forever and the pipeline never waits.
async fn prune_history(store: Store, retention: Duration, metrics: Metrics, stopping: Arc<AtomicBool>) {
    let every = (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(300));
    loop {
        tokio::time::sleep(every).await;
        loop {
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            match store.prune_deliveries(retention, PRUNE_BATCH).await {
                Ok(deleted) => {
                    metrics.deliveries_pruned.inc_by(deleted);
                    if deleted < PRUNE_BATCH {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pruning the delivery history failed; trying again later");
                    break;
                }
            }
        }
    }
}

/// Rows deleted per pruning statement.
/// Delivery waves that may claim or record in the state database at once, across all
/// webhooks. Ten webhooks' waves writing neighbouring rows at once cost the server more
/// CPU per delivery than the same writes in turn: ten webhooks on one receiver went from
/// 9,200 to 10,600 deliveries/s with two at a time (docs/benchmarks.md). HTTP requests
/// are not limited by this, only the claim and the recording statement.
const STATE_WRITES: usize = 2;

const PRUNE_BATCH: u64 = 1000;
