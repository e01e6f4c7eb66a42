//! The state database: webhooks, the delivery queue and history, the checkpoint.
//!
//! The database is the queue. The router inserts a `webhook_deliveries` row
//! per (event, subscribed webhook) ([`Store::enqueue`]), and only then moves
//! the checkpoint past them ([`Store::save_checkpoint`], at most once a
//! second), so a crash cannot lose an event; and it cannot enqueue one twice:
//! after a crash the reader reads the events after the checkpoint again, and
//! the unique key on `(webhook_id, event_id)` turns their second insert into
//! nothing (event ids are stable across re-reads). Delivery actors claim due rows in batches ([`Store::claim_due`])
//! and write each batch's attempts and the webhook's health back in one
//! statement ([`Store::record_attempts`]). Memory stays bounded whatever the backlog:
//! the backlog lives here. Times are the database's (`NOW(3)`), so clocks of
//! several hosts never disagree about what is due.

use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::Pool;

use crate::config::Ordering;

/// A binlog position as the state database stores it: file and offset.
/// (The source stage's `Position`; the state stage imports no other stage.)
pub type BinlogPosition = (String, u64);


mod embedded {
    refinery::embed_migrations!("migrations");
}

/// State database failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// [`Store::connect`] could not connect (callers that know which setting
    /// named the database say so: [`crate::dburl::ConnectError`]).
    #[error("cannot connect to the state database: {}", crate::dburl::cause_once(.0))]
    Connect(mysql_async::Error),
    #[error("state database: {}", crate::dburl::cause_once(.0))]
    Db(#[from] mysql_async::Error),
    #[error("state database URL: {0}")]
    Url(String),
    #[error("migrations: {0}")]
    Migrate(#[from] refinery::Error),
    #[error("the state database is not migrated ({applied} of {known} migrations applied): run `rowhook migrate`")]
    NotMigrated { applied: usize, known: usize },
}

/// A webhook as the `webhooks` table holds it.
#[derive(Clone, PartialEq)]
pub struct Webhook {
    pub id: u64,
    pub url: String,
    /// Subscribed event types; `"*"` means all.
    pub events: Vec<String>,
    /// The secret as the table holds it: plaintext, or sealed with
    /// `[admin] secrets_key` ([`crate::state::secrets`]); opened only where
    /// it signs (the delivery actor).
    pub secret: String,
    /// The secret before a rotation, while its overlap lasts (as stored, too).
    pub previous_secret: Option<String>,
    pub is_active: bool,
    pub failed_attempts: u32,
    /// Its own ordering (None: `[delivery] ordering`).
    pub ordering: Option<Ordering>,
}

// Hand-written so that no `{:?}` can print a secret.
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &"***")
            .field("is_active", &self.is_active)
            .field("failed_attempts", &self.failed_attempts)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    pub fn subscribes_to(&self, event_type: &str) -> bool {
        self.events.iter().any(|e| e == event_type || e == "*")
    }

    /// Whether anything its delivery actor acts on differs: everything but
    /// `failed_attempts`, which the actor keeps itself (the table's copy lags
    /// it; an operator resets it only by re-activating, which differs anyway).
    pub fn settings_differ(&self, other: &Webhook) -> bool {
        self.id != other.id
            || self.url != other.url
            || self.events != other.events
            || self.secret != other.secret
            || self.previous_secret != other.previous_secret
            || self.is_active != other.is_active
            || self.ordering != other.ordering
    }
}

/// A delivery to enqueue.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub webhook_id: u64,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub payload: &'a str,
    /// The event's group (None: a group of its own).
    pub group_key: Option<&'a str>,
}

/// A delivery due for an attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct DueDelivery {
    pub id: u64,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The event's group (None: a group of its own).
    pub group_key: Option<String>,
}

/// A pending delivery as [`Store::scan_pending`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDelivery {
    /// (Its payload empty when it is not due.)
    pub delivery: DueDelivery,
    /// Due for an attempt now.
    pub due: bool,
    /// How long until it is due.
    pub wait: Duration,
}

/// Delivery states in `webhook_deliveries.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its first or next attempt.
    Pending,
    Delivered,
    /// Gave up (schedule exhausted, payload too large, webhook gone).
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// The outcome of one attempt, as recorded.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: u64,
    pub status: DeliveryStatus,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub duration_ms: u32,
    /// When status is Pending: the delay before the next attempt.
    pub retry_in: Option<Duration>,
}

/// The webhook's health after a batch of attempts.
#[derive(Debug, Clone, Copy)]
pub struct WebhookHealth {
    pub webhook_id: u64,
    pub failed_attempts: u32,
    /// Start of the current failing streak (None after a success).
    pub failing: bool,
    pub disable: bool,
}

/// Connection pool to the state database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// The server answers `INSERT ... RETURNING` (MariaDB 10.5 and later),
    /// so [`Store::enqueue`] learns the new rows' ids in the same round trip.
    insert_returning: bool,
}

/// Whether a server of this `@@version` knows `INSERT ... RETURNING`
/// (MariaDB 10.5 and later; no MySQL release has it).
pub fn supports_insert_returning(version: &str) -> bool {
    if !version.to_ascii_lowercase().contains("mariadb") {
        return false;
    }
    let mut numbers = version.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u32>().unwrap_or(0));
    let major = numbers.next().unwrap_or(0);
    let minor = numbers.next().unwrap_or(0);
    (major, minor) >= (10, 5)
}

const CHECKPOINT_NAME: &str = "source";

impl Store {
    pub fn new(url: &str) -> Result<Store, StoreError> {
        let opts = crate::dburl::opts(url).map_err(|e| StoreError::Url(e.to_string()))?;
        let constraints = mysql_async::PoolConstraints::new(1, 16).unwrap_or_default();
        let opts = mysql_async::OptsBuilder::from_opts(opts)
            .pool_opts(mysql_async::PoolOpts::default().with_constraints(constraints))
            .init(vec!["SET time_zone = '+00:00'"]);
        Ok(Store { pool: Pool::new(opts), insert_returning: false })
    }

    /// A store that asks the server what it supports ([`supports_insert_returning`]).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let mut store = Store::new(url)?;
        let mut conn = store.pool.get_conn().await.map_err(StoreError::Connect)?;
        let version: Option<String> = conn.query_first("SELECT @@version").await?;
        store.insert_returning = version.as_deref().is_some_and(supports_insert_returning);
        Ok(store)
    }

    /// Applies the embedded migrations; harmless when they are applied already.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let mut pool = self.pool.clone();
        let report = embedded::migrations::runner().run_async(&mut pool).await?;
        Ok(report
            .applied_migrations()
            .iter()
            .map(|m| m.to_string())
            .collect())
    }

    /// Fails with advice when migrations are missing.
    pub async fn check_migrated(&self) -> Result<(), StoreError> {
        let mut pool = self.pool.clone();
        let runner = embedded::migrations::runner();
        let known = runner.get_migrations().len();
        let applied = match runner.get_applied_migrations_async(&mut pool).await {
            Ok(applied) => applied.len(),
            Err(_) => 0,
        };
        if applied < known {
            return Err(StoreError::NotMigrated { applied, known });
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.ping().await?;
        Ok(())
    }

    pub async fn load_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        select_webhooks(&mut conn).await
    }

    /// The webhooks table and the binlog position it is the state of: read in
    /// a consistent snapshot whose position the server names (MariaDB's
    /// `binlog_snapshot_file` and `_position`). Every change committed at or
    /// before that position is in the rows read, none after it. None as the
    /// position where the server does not say (MySQL): the caller must then
    /// assume nothing about which changes the rows hold.
    pub async fn load_webhooks_at(&self) -> Result<(Vec<Webhook>, Option<BinlogPosition>), StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let mut options = mysql_async::TxOpts::new();
        options.with_consistent_snapshot(true).with_isolation_level(mysql_async::IsolationLevel::RepeatableRead);
        let mut tx = conn.start_transaction(options).await?;
        let webhooks = select_webhooks(&mut tx).await?;
        let status: Vec<(String, String)> = tx.query("SHOW STATUS LIKE 'binlog_snapshot_%'").await?;
        tx.commit().await?;
        let value = |name: &str| status.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let position = match (value("binlog_snapshot_file"), value("binlog_snapshot_position").and_then(|p| p.parse().ok())) {
            (Some(file), Some(pos)) if !file.is_empty() => Some((file, pos)),
            _ => None,
        };
        Ok((webhooks, position))
    }

    /// Saves subscriptions read from the table (they carry their own position)
    /// beside the checkpoint there is, which is at or before that position.
    pub async fn save_subscriptions(&self, json: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop("UPDATE rowhook_checkpoints SET subscriptions = ? WHERE name = ?", (json, CHECKPOINT_NAME)).await?;
        Ok(())
    }

    /// The subscriptions saved with the checkpoint (the delivery stage's subscriptions), when there are.
    pub async fn load_checkpoint_subscriptions(&self) -> Result<Option<String>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<Option<String>> =
            conn.exec_first("SELECT subscriptions FROM rowhook_checkpoints WHERE name = ?", (CHECKPOINT_NAME,)).await?;
        Ok(row.flatten())
    }

    pub async fn load_checkpoint(&self) -> Result<Option<BinlogPosition>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<(String, u64)> = conn
            .exec_first(
                "SELECT binlog_file, binlog_pos FROM rowhook_checkpoints WHERE name = ?",
                (CHECKPOINT_NAME,),
            )
            .await?;
        Ok(row)
    }

    /// The GTID state saved with the checkpoint (MariaDB: `domain-server-sequence`
    /// per domain, comma-separated), when there is one.
    pub async fn load_checkpoint_gtid(&self) -> Result<Option<String>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<Option<String>> = conn
            .exec_first(
                "SELECT gtid FROM rowhook_checkpoints WHERE name = ?",
                (CHECKPOINT_NAME,),
            )
            .await?;
        Ok(row.flatten().filter(|g| !g.trim().is_empty()))
    }

    /// Saves the checkpoint, and with it the subscriptions in force at its
    /// position as `view` says.
    pub async fn save_checkpoint(
        &self,
        (file, pos): (&str, u64),
        gtid: Option<&str>,
        view: SavedView<'_>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.get_conn().await?;
        upsert_checkpoint(&mut conn, (file, pos), gtid, view).await
    }

    /// Enqueues deliveries (idempotent: a delivery already there stays as it
    /// is). Returns, for each, the id of its row when the row is new, i.e.
    /// pending and never attempted (`None` when it is not, or when the server
    /// cannot say in the same round trip: see [`Store::connect`]). One
    /// statement per 500 deliveries, each committed on its own.
    ///
    /// A delivery for a webhook that is gone (deleted after the event, in a
    /// transaction the reader has not reached yet) is dropped, with its
    /// history: the foreign key refuses it, and the rest of its chunk is
    /// stored without it.
    pub async fn enqueue(&self, deliveries: &[NewDelivery<'_>]) -> Result<Vec<Option<u64>>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let mut fresh = Vec::with_capacity(deliveries.len());
        for chunk in deliveries.chunks(500) {
            match self.insert_deliveries(&mut conn, chunk).await {
                Err(StoreError::Db(e)) if is_missing_parent(&e) => {
                    let existing = existing_webhooks(&mut conn, chunk).await?;
                    let kept: Vec<NewDelivery<'_>> = chunk.iter().filter(|d| existing.contains(&d.webhook_id)).cloned().collect();
                    let mut stored = self.insert_deliveries(&mut conn, &kept).await?.into_iter();
                    for d in chunk {
                        if existing.contains(&d.webhook_id) {
                            fresh.push(stored.next().flatten());
                        } else {
                            tracing::info!(webhook_id = d.webhook_id, event_id = d.event_id, "the webhook is gone; its delivery is not stored");
                            fresh.push(None);
                        }
                    }
                }
                result => fresh.extend(result?),
            }
        }
        Ok(fresh)
    }

    /// One INSERT of up to 500 deliveries; see [`Store::enqueue`].
    async fn insert_deliveries(&self, conn: &mut mysql_async::Conn, chunk: &[NewDelivery<'_>]) -> Result<Vec<Option<u64>>, StoreError> {
        if chunk.is_empty() {
            return Ok(Vec::new());
        }
        let rows = vec!["(?, ?, ?, ?, ?, 'pending', 0, NOW(3))"; chunk.len()].join(",");
        let returning = if self.insert_returning { " RETURNING id, webhook_id, event_id, status, attempts" } else { "" };
        let sql = format!(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, group_key, payload, status, attempts, next_attempt_at) \
             VALUES {rows} ON DUPLICATE KEY UPDATE id = id{returning}"
        );
        let mut params: Vec<mysql_async::Value> = Vec::with_capacity(chunk.len() * 5);
        for d in chunk {
            params.push(d.webhook_id.into());
            params.push(d.event_id.into());
            params.push(d.event_type.into());
            params.push(d.group_key.into());
            params.push(d.payload.into());
        }
        if !self.insert_returning {
            conn.exec_drop(sql, params).await?;
            return Ok(vec![None; chunk.len()]);
        }
        type Returned = (u64, u64, Option<String>, String, Option<i64>);
        let returned: Vec<Returned> = conn.exec(sql, params).await?;
        // One row back per row in, in order; anything else hands nothing over.
        let matches = returned.len() == chunk.len()
            && returned.iter().zip(chunk).all(|(r, d)| r.1 == d.webhook_id && r.2.as_deref() == Some(d.event_id));
        if !matches {
            return Ok(vec![None; chunk.len()]);
        }
        Ok(returned
            .into_iter()
            .map(|(id, _, _, status, attempts)| (status == DeliveryStatus::Pending.as_str() && attempts.unwrap_or(0) == 0).then_some(id))
            .collect())
    }

    /// Up to `limit` deliveries of one webhook that are due, oldest first.
    pub async fn claim_due(
        &self,
        webhook_id: u64,
        limit: usize,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        type Row = (u64, Option<String>, String, String, Option<i64>, Option<String>);
        let rows: Vec<Row> = conn
            .exec(
                "SELECT id, event_id, event_type, CAST(payload AS CHAR), attempts, group_key FROM webhook_deliveries \
                 FORCE INDEX (idx_pending_order) \
                 WHERE webhook_id = ? AND status = 'pending' AND next_attempt_at <= NOW(3) ORDER BY id LIMIT ?",
                (webhook_id, limit as u64),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, event_id, event_type, payload, attempts, group_key)| DueDelivery {
                id,
                event_id: event_id.unwrap_or_else(|| format!("delivery_{id}")),
                event_type,
                payload,
                attempts: u32::try_from(attempts.unwrap_or(0)).unwrap_or(0),
                group_key,
            })
            .collect())
    }

    /// A webhook's pending deliveries after `after_id`, oldest first, due
    /// or not (up to `limit`): the delivery stage's order keeper needs the
    /// ones that are not due to know which groups wait.
    /// The payload comes only with the due ones.
    pub async fn scan_pending(&self, webhook_id: u64, after_id: u64, limit: usize) -> Result<Vec<PendingDelivery>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        type Row = (u64, Option<String>, String, Option<String>, Option<i64>, Option<String>, Option<i64>);
        let rows: Vec<Row> = conn
            .exec(
                "SELECT id, event_id, event_type, IF(next_attempt_at <= NOW(3), CAST(payload AS CHAR), NULL), attempts, group_key, \
                 GREATEST(TIMESTAMPDIFF(MICROSECOND, NOW(3), next_attempt_at), 0) FROM webhook_deliveries \
                 FORCE INDEX (idx_pending_order) \
                 WHERE webhook_id = ? AND status = 'pending' AND id > ? ORDER BY id LIMIT ?",
                (webhook_id, after_id, limit as u64),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, event_id, event_type, payload, attempts, group_key, wait_us)| {
                let wait = Duration::from_micros(u64::try_from(wait_us.unwrap_or(0)).unwrap_or(0));
                let due = payload.is_some();
                PendingDelivery {
                    delivery: DueDelivery {
                        id,
                        event_id: event_id.unwrap_or_else(|| format!("delivery_{id}")),
                        event_type,
                        payload: payload.unwrap_or_default(),
                        attempts: u32::try_from(attempts.unwrap_or(0)).unwrap_or(0),
                        group_key,
                    },
                    due,
                    wait,
                }
            })
            .collect())
    }

    /// Gives up the deliveries of a webhook that wait for a retry (pending,
    /// attempted before): when a webhook is re-enabled, their groups move on.
    /// They stay in the history as failed, and can be retried. Returns how many.
    pub async fn give_up_retries(&self, webhook_id: u64) -> Result<u64, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, \
             last_error = CONCAT(COALESCE(last_error, ''), ' (given up when the webhook was re-enabled)') \
             WHERE webhook_id = ? AND status = 'pending' AND attempts > 0",
            (webhook_id,),
        )
        .await?;
        Ok(conn.affected_rows())
    }

    /// Writes a batch of attempts and (when given) the webhook's health: one
    /// statement, so one round trip and atomic without an explicit
    /// transaction. Without `health` the `webhooks` row is not touched: its
    /// lock is what the router's inserts wait for (the foreign key).
    pub async fn record_attempts(
        &self,
        records: &[AttemptRecord],
        health: Option<WebhookHealth>,
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(()); // a wave records at least the attempt it stopped on
        }
        let (sql, params) = record_attempts_statement(records, health);
        let mut conn = self.pool.get_conn().await?;
        // Failed attempts are kept one by one for the history (before the
        // row's attempt count moves on, which numbers them). Only the history
        // depends on it: a failure here is said and the recording goes on.
        if let Some((log_sql, log_params)) = failed_attempts_statement(records) {
            if let Err(e) = conn.exec_drop(&log_sql, log_params).await {
                tracing::warn!(error = %e, "could not keep failed attempts in webhook_delivery_attempts; the deliveries are recorded");
            }
        }
        // Unrecorded attempts would be sent again: a statement InnoDB rolled
        // back for a lock conflict (with the router's inserts) is run again.
        let mut retries = 0;
        loop {
            match conn.exec_drop(&sql, params.clone()).await {
                Err(e) if retries < LOCK_CONFLICT_RETRIES && rolled_back_by_lock_conflict(&e) => retries += 1,
                result => return Ok(result?),
            }
        }
    }

    /// How long the webhook has been failing, per the database.
    pub async fn failing_for(&self, webhook_id: u64) -> Result<Option<Duration>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let secs: Option<Option<i64>> = conn
            .exec_first(
                "SELECT TIMESTAMPDIFF(SECOND, failing_since, NOW()) FROM webhooks WHERE id = ?",
                (webhook_id,),
            )
            .await?;
        Ok(secs.flatten().map(|s| Duration::from_secs(s.max(0) as u64)))
    }

    pub async fn disconnect(self) {
        let _ = self.pool.disconnect().await;
    }
}

/// How often a statement rolled back by a lock conflict is run again.
const LOCK_CONFLICT_RETRIES: u32 = 3;

/// InnoDB chose the statement as a deadlock's victim (1213) or it waited too
/// long for a row lock (1205): the statement was rolled back whole, so
/// running it again is safe.
fn rolled_back_by_lock_conflict(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == 1213 || s.code == 1205)
}

/// Row counts the attempts statement is prepared for (see [`record_attempts_statement`]);
/// the last is the delivery actors' wave size.
pub const RECORD_SHAPES: [usize; 5] = [1, 4, 16, 64, 256];

/// One UPDATE for a whole wave of attempts and the webhook's health: the
/// values joined in as a derived table (`UNION ALL` of one-row SELECTs, which
/// MariaDB and MySQL 8 both accept) and the webhook's row joined by id (when
/// its health is given), so a wave costs one round trip instead of one per
/// delivery plus a transaction.
/// (A multi-table UPDATE changes each row once; no key column changes, so the
/// foreign key between the two tables is not involved.)
///
/// The statement has one of a few shapes ([`RECORD_SHAPES`] rows, the rest
/// padded with rows for id 0, which matches nothing): a prepared statement
/// per wave size would keep the server preparing statements and evict the
/// others from the connection's statement cache.
fn record_attempts_statement(records: &[AttemptRecord], health: Option<WebhookHealth>) -> (String, Vec<mysql_async::Value>) {
    let shape = RECORD_SHAPES.iter().copied().find(|&n| n >= records.len()).unwrap_or(records.len());
    let mut sql = String::with_capacity(640 + shape * 40);
    sql.push_str("UPDATE webhook_deliveries d JOIN (");
    let mut params: Vec<mysql_async::Value> = Vec::with_capacity(shape * 7 + 4);
    for i in 0..shape {
        sql.push_str(if i == 0 {
            "SELECT ? AS id, ? AS status, ? AS response_status, ? AS response_body, ? AS last_error, \
             ? AS duration_ms, ? AS retry_us"
        } else {
            " UNION ALL SELECT ?, ?, ?, ?, ?, ?, ?"
        });
        let Some(r) = records.get(i) else {
            params.extend([0u64.into(), "pending".into()]);
            params.extend(std::iter::repeat_n(mysql_async::Value::NULL, 5));
            continue;
        };
        let retry_us = r.retry_in.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        params.push(r.delivery_id.into());
        params.push(r.status.as_str().into());
        params.push(r.response_status.into());
        params.push(r.response_body.as_deref().into());
        params.push(r.error.as_deref().into());
        params.push(r.duration_ms.into());
        params.push(retry_us.into());
    }
    sql.push_str(") v ON d.id = v.id ");
    if health.is_some() {
        sql.push_str("JOIN webhooks w ON w.id = ? ");
    }
    sql.push_str(
        "SET d.status = v.status, d.attempts = d.attempts + 1, \
         d.response_status = v.response_status, d.response_body = v.response_body, d.last_error = v.last_error, \
         d.duration_ms = v.duration_ms, d.last_attempt_at = NOW(3), \
         d.next_attempt_at = IF(v.retry_us IS NULL, NULL, DATE_ADD(NOW(3), INTERVAL v.retry_us MICROSECOND)), \
         d.delivered_at = IF(v.status = 'delivered', NOW(), d.delivered_at)",
    );
    if let Some(health) = health {
        sql.push_str(
            ", w.failed_attempts = ?, w.last_triggered_at = NOW(), \
             w.failing_since = IF(?, COALESCE(w.failing_since, NOW()), NULL), w.is_active = IF(?, 0, w.is_active)",
        );
        params.push(health.webhook_id.into());
        params.push(health.failed_attempts.into());
        params.push(health.failing.into());
        params.push(health.disable.into());
    }
    (sql, params)
}

/// One INSERT of the failed attempts among `records` into
/// `webhook_delivery_attempts`, numbered after their delivery's attempts so
/// far; None when every attempt succeeded.
/// Keeps the successful attempt of the delivered rows a condition (appended)
/// names in the attempts table, before they go out again: a delivery's row
/// holds only its last attempt, and a retry or replay must not erase one.
const KEEP_DELIVERED_ATTEMPT: &str = "INSERT INTO webhook_delivery_attempts \
     (delivery_id, attempt, response_status, response_body, error, duration_ms, attempted_at) \
     SELECT id, attempts, response_status, response_body, NULL, duration_ms, COALESCE(last_attempt_at, delivered_at, NOW(3)) \
     FROM webhook_deliveries WHERE status = 'delivered' AND attempts > 0 AND";

fn failed_attempts_statement(records: &[AttemptRecord]) -> Option<(String, Vec<mysql_async::Value>)> {
    let failed: Vec<&AttemptRecord> = records.iter().filter(|r| r.status != DeliveryStatus::Delivered).collect();
    if failed.is_empty() {
        return None;
    }
    let mut sql = String::from(
        "INSERT INTO webhook_delivery_attempts (delivery_id, attempt, response_status, response_body, error, duration_ms, attempted_at) \
         SELECT d.id, d.attempts + 1, v.response_status, v.response_body, v.error, v.duration_ms, NOW(3) FROM webhook_deliveries d JOIN (",
    );
    let mut params: Vec<mysql_async::Value> = Vec::with_capacity(failed.len() * 5);
    for (i, r) in failed.iter().enumerate() {
        sql.push_str(if i == 0 {
            "SELECT ? AS id, ? AS response_status, ? AS response_body, ? AS error, ? AS duration_ms"
        } else {
            " UNION ALL SELECT ?, ?, ?, ?, ?"
        });
        params.push(r.delivery_id.into());
        params.push(r.response_status.into());
        params.push(r.response_body.as_deref().into());
        params.push(r.error.as_deref().into());
        params.push(r.duration_ms.into());
    }
    sql.push_str(") v ON d.id = v.id");
    Some((sql, params))
}

/// What [`Store::reseal_secrets`] did.
#[derive(Debug, Default)]
pub struct ResealReport {
    /// Secrets sealed with the current key now.
    pub resealed: usize,
    /// Sealed with the current key already.
    pub current: usize,
    /// Changed by someone else between the read and the update (left as they are now).
    pub changed_meanwhile: usize,
    /// (webhook id, column, why): secrets no configured key opens.
    pub failed: Vec<(u64, &'static str, crate::state::secrets::SecretsError)>,
}

/// A webhook as the admin API shows it (never its secret).
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct WebhookView {
    pub id: u64,
    pub url: String,
    pub events: Vec<String>,
    pub is_active: bool,
    pub failed_attempts: i64,
    pub last_triggered_at: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    /// Its own ordering (None: `[delivery] ordering`).
    pub ordering: Option<String>,
    /// Since when its attempts have been failing without a success in
    /// between (None: the last attempt succeeded, or none was made).
    pub failing_since: Option<String>,
}

/// One delivery as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryView {
    pub id: u64,
    pub webhook_id: u64,
    pub event_id: Option<String>,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub response_status: Option<i64>,
    pub response_body: Option<String>,
    pub last_error: Option<String>,
    pub duration_ms: Option<u64>,
    pub next_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: Option<String>,
    /// Its event's group (null: a group of its own).
    pub group_key: Option<String>,
    /// A pending delivery held back behind an earlier one of its group (of
    /// its webhook, for `webhook` ordering): that one's id. Its `status` then reads `waiting`.
    pub waiting_for: Option<u64>,
    pub payload: serde_json::Value,
}

/// A backfill as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct BackfillView {
    pub id: u64,
    pub webhook_id: u64,
    pub event_type: String,
    pub filter: Option<serde_json::Value>,
    pub limit: Option<u64>,
    /// `queued`, `running`, `done`, `cancelled` or `failed`.
    pub state: String,
    /// The key of the last row read (a JSON array of the key's values).
    #[serde(skip)]
    pub cursor: Option<Vec<serde_json::Value>>,
    pub rows_read: u64,
    pub rows_sent: u64,
    pub rows_estimate: Option<u64>,
    pub rows_left: Option<u64>,
    /// Rows sent per second since it started.
    pub rows_per_second: Option<f64>,
    pub error: Option<String>,
    pub created_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// A failed attempt kept in `webhook_delivery_attempts`.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct AttemptView {
    /// Counted from 1.
    pub attempt: i64,
    pub response_status: Option<i64>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub duration_ms: Option<u64>,
    pub attempted_at: Option<String>,
}

/// A webhook's deliveries by state ([`Store::delivery_counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryCounts {
    pub webhook_id: u64,
    /// Pending (waiting or not).
    pub pending: u64,
    pub failed: u64,
    /// Pending ones with an earlier pending one of their group: waiting, under `group` ordering.
    pub behind_in_group: u64,
}

impl DeliveryCounts {
    /// How many of the pending ones wait behind an earlier one, as the history counts `waiting` under `ordering`.
    pub fn waiting(&self, ordering: Ordering) -> u64 {
        match ordering {
            Ordering::Group => self.behind_in_group,
            Ordering::Webhook => self.pending.saturating_sub(1),
            Ordering::None => 0,
        }
    }
}

/// The latest failed attempt of a webhook ([`Store::last_failure`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastFailure {
    pub response_status: Option<i64>,
    pub error: Option<String>,
    pub at: Option<String>,
}

/// What `retry_delivery` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    NotFound,
    /// The delivery's webhook is inactive: nothing queued.
    Inactive {
        webhook_id: u64,
    },
    Queued {
        webhook_id: u64,
    },
}

/// Filters of the delivery history.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// `pending` (not waiting), `waiting`, `delivered` or `failed`.
    pub status: Option<String>,
    pub event_type: Option<String>,
    /// This delivery only.
    pub id: Option<u64>,
    /// Created at or after this UTC time (`YYYY-MM-DD HH:MM:SS`).
    pub since: Option<String>,
    /// Created before this UTC time (`YYYY-MM-DD HH:MM:SS`).
    pub until: Option<String>,
    /// The webhook's ordering, which says what a pending delivery waits for.
    pub ordering: Ordering,
}

const UTC: &str = "'%Y-%m-%dT%H:%i:%sZ'";
const UTC_MS: &str = "'%Y-%m-%dT%H:%i:%s.%fZ'";

fn webhook_columns() -> String {
    format!(
        "id, url, CAST(events AS CHAR), is_active, failed_attempts, DATE_FORMAT(last_triggered_at, {UTC}), \
         DATE_FORMAT(created_at, {UTC}), DATE_FORMAT(updated_at, {UTC}), ordering, DATE_FORMAT(failing_since, {UTC})"
    )
}

type WebhookRow = (
    u64,
    String,
    String,
    Option<bool>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn webhook_view(
    (id, url, events, is_active, failed, triggered, created, updated, ordering, failing_since): WebhookRow,
) -> WebhookView {
    WebhookView {
        id,
        url,
        events: serde_json::from_str(&events).unwrap_or_default(),
        is_active: is_active.unwrap_or(true),
        failed_attempts: failed.unwrap_or(0),
        last_triggered_at: triggered,
        created_at: created,
        updated_at: updated,
        ordering,
        failing_since,
    }
}

/// The admin API's queries.
impl Store {
    pub async fn create_webhook(
        &self,
        url: &str,
        events: &[String],
        secret: &str,
        is_active: bool,
        ordering: Option<Ordering>,
    ) -> Result<WebhookView, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let events = serde_json::to_string(events).unwrap_or_else(|_| "[]".into());
        conn.exec_drop(
            "INSERT INTO webhooks (url, events, secret, is_active, failed_attempts, ordering) VALUES (?, ?, ?, ?, 0, ?)",
            (url, events, secret, is_active, ordering.map(Ordering::as_str)),
        )
        .await?;
        let id = conn.last_insert_id().unwrap_or(0);
        drop(conn);
        self.get_webhook(id)
            .await?
            .ok_or(StoreError::Url("webhook vanished after insert".into()))
    }

    pub async fn list_webhooks(
        &self,
        page: u64,
        per_page: u64,
    ) -> Result<(Vec<WebhookView>, u64), StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let total: Option<u64> = conn.query_first("SELECT COUNT(*) FROM webhooks").await?;
        let rows: Vec<WebhookRow> = conn
            .exec(
                format!(
                    "SELECT {} FROM webhooks ORDER BY id LIMIT ? OFFSET ?",
                    webhook_columns()
                ),
                (per_page, (page - 1) * per_page),
            )
            .await?;
        Ok((
            rows.into_iter().map(webhook_view).collect(),
            total.unwrap_or(0),
        ))
    }

    pub async fn get_webhook(&self, id: u64) -> Result<Option<WebhookView>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<WebhookRow> = conn
            .exec_first(
                format!("SELECT {} FROM webhooks WHERE id = ?", webhook_columns()),
                (id,),
            )
            .await?;
        Ok(row.map(webhook_view))
    }

    /// Changes what is given; re-activating resets the failure count. False when unknown.
    pub async fn update_webhook(
        &self,
        id: u64,
        url: Option<&str>,
        events: Option<&[String]>,
        is_active: Option<bool>,
        ordering: Option<Option<Ordering>>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let events = events.map(|e| serde_json::to_string(e).unwrap_or_else(|_| "[]".into()));
        let (set_ordering, ordering) = (ordering.is_some(), ordering.flatten().map(Ordering::as_str));
        conn.exec_drop(
            "UPDATE webhooks SET url = COALESCE(?, url), events = COALESCE(?, events), \
             failed_attempts = IF(? = 1 AND NOT is_active, 0, failed_attempts), \
             failing_since = IF(? = 1 AND NOT is_active, NULL, failing_since), \
             ordering = IF(?, ?, ordering), \
             is_active = COALESCE(?, is_active) WHERE id = ?",
            (url, events, is_active, is_active, set_ordering, ordering, is_active, id),
        )
        .await?;
        let found: Option<u64> = conn
            .exec_first("SELECT id FROM webhooks WHERE id = ?", (id,))
            .await?;
        Ok(found.is_some())
    }

    /// Deletes a webhook and (by the foreign key) its deliveries. False when unknown.
    pub async fn delete_webhook(&self, id: u64) -> Result<bool, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop("DELETE FROM webhooks WHERE id = ?", (id,))
            .await?;
        Ok(conn.affected_rows() > 0)
    }

    /// Replaces the secret; the old one keeps signing for `overlap`. False when unknown.
    pub async fn rotate_secret(
        &self,
        id: u64,
        secret: &str,
        overlap: Duration,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            "UPDATE webhooks SET previous_secret = secret, \
             previous_secret_expires_at = DATE_ADD(NOW(), INTERVAL ? SECOND), secret = ? WHERE id = ?",
            (overlap.as_secs(), secret, id),
        )
        .await?;
        Ok(conn.affected_rows() > 0)
    }

    /// Replaces a stored secret (`previous`: the `previous_secret` column)
    /// with `new` if it is still `old`, byte for byte: sealing a plaintext
    /// secret, or re-sealing one with the current key. Nothing else of the
    /// row changes (`updated_at` neither). True when it was replaced.
    pub async fn replace_stored_secret(&self, id: u64, previous: bool, old: &str, new: &str) -> Result<bool, StoreError> {
        let column = if previous { "previous_secret" } else { "secret" };
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            format!("UPDATE webhooks SET {column} = ?, updated_at = updated_at WHERE id = ? AND BINARY {column} = BINARY ?"),
            (new, id, old),
        )
        .await?;
        Ok(conn.affected_rows() > 0)
    }

    /// Every webhook's stored `secret` and `previous_secret` (expired or
    /// not), for `rowhook rotate-secrets-key`.
    pub async fn stored_secrets(&self) -> Result<Vec<(u64, String, Option<String>)>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        Ok(conn.query("SELECT id, secret, previous_secret FROM webhooks ORDER BY id").await?)
    }

    /// Seals every stored secret that is not sealed with the keyring's
    /// current key (plaintext, or sealed with the previous key), each with a
    /// guarded [`Store::replace_stored_secret`]; a secret no key opens is
    /// left as it is and reported.
    pub async fn reseal_secrets(&self, keys: &crate::state::secrets::Keyring) -> Result<ResealReport, StoreError> {
        let mut report = ResealReport::default();
        for (id, secret, previous) in self.stored_secrets().await? {
            for (is_previous, stored) in [(false, Some(secret)), (true, previous)] {
                let Some(stored) = stored else { continue };
                match keys.reseal(&stored) {
                    Ok(None) => report.current += 1,
                    Ok(Some(sealed)) => {
                        if self.replace_stored_secret(id, is_previous, &stored, &sealed).await? {
                            report.resealed += 1;
                        } else {
                            report.changed_meanwhile += 1;
                        }
                    }
                    Err(e) => report.failed.push((id, if is_previous { "previous_secret" } else { "secret" }, e)),
                }
            }
        }
        Ok(report)
    }

    /// Newest first.
    pub async fn list_deliveries(
        &self,
        webhook_id: u64,
        filter: &DeliveryFilter,
        page: u64,
        per_page: u64,
    ) -> Result<(Vec<DeliveryView>, u64), StoreError> {
        let mut conn = self.pool.get_conn().await?;
        // The delivery a pending one waits for: the oldest pending one before it of its group
        // (of the webhook, for `webhook` ordering); none without order.
        let waiting_for = match filter.ordering {
            Ordering::Group => {
                "IF(d.status = 'pending', (SELECT MIN(e.id) FROM webhook_deliveries e FORCE INDEX (idx_group) \
                 WHERE e.webhook_id = d.webhook_id AND e.group_key = d.group_key AND e.id < d.id AND e.status = 'pending'), NULL)"
            }
            Ordering::Webhook => {
                "IF(d.status = 'pending', (SELECT MIN(e.id) FROM webhook_deliveries e FORCE INDEX (idx_pending_order) \
                 WHERE e.webhook_id = d.webhook_id AND e.status = 'pending' AND e.id < d.id), NULL)"
            }
            Ordering::None => "NULL",
        };
        let status = match filter.status.as_deref() {
            None => String::new(),
            Some("waiting") => format!(" AND d.status = 'pending' AND {waiting_for} IS NOT NULL"),
            Some("pending") => format!(" AND d.status = 'pending' AND {waiting_for} IS NULL"),
            Some(_) => " AND d.status = ?".to_string(),
        };
        let condition = format!(
            "d.webhook_id = ?{status} AND (? IS NULL OR d.event_type = ?) AND (? IS NULL OR d.created_at >= ?) AND (? IS NULL OR d.created_at < ?) \
             AND (? IS NULL OR d.id = ?)"
        );
        let mut params: Vec<mysql_async::Value> = vec![webhook_id.into()];
        if let Some(other) = filter.status.as_deref().filter(|s| !matches!(*s, "waiting" | "pending")) {
            params.push(other.into());
        }
        for value in [&filter.event_type, &filter.since, &filter.until] {
            params.push(value.as_deref().into());
            params.push(value.as_deref().into());
        }
        params.push(filter.id.into());
        params.push(filter.id.into());
        let total: Option<u64> = conn
            .exec_first(format!("SELECT COUNT(*) FROM webhook_deliveries d WHERE {condition}"), params.clone())
            .await?;
        params.push(per_page.into());
        params.push(((page - 1) * per_page).into());
        let raw: Vec<mysql_async::Row> = conn
            .exec(
                format!(
                    "SELECT d.id, d.webhook_id, d.event_id, d.event_type, d.status, d.attempts, d.response_status, d.response_body, \
                     d.last_error, d.duration_ms, DATE_FORMAT(d.next_attempt_at, {UTC_MS}), DATE_FORMAT(d.last_attempt_at, {UTC_MS}), \
                     DATE_FORMAT(d.delivered_at, {UTC}), DATE_FORMAT(d.created_at, {UTC}), CAST(d.payload AS CHAR), d.group_key, \
                     {waiting_for} FROM webhook_deliveries d WHERE {condition} ORDER BY d.id DESC LIMIT ? OFFSET ?"
                ),
                params,
            )
            .await?;
        let views = raw
            .into_iter()
            .map(|mut r| {
                let payload: String = r.take(14).unwrap_or_default();
                let waiting_for: Option<u64> = r.take(16).unwrap_or(None);
                let status: String = r.take(4).unwrap_or_default();
                DeliveryView {
                    id: r.take(0).unwrap_or(0),
                    webhook_id: r.take(1).unwrap_or(0),
                    event_id: r.take(2).unwrap_or(None),
                    event_type: r.take(3).unwrap_or_default(),
                    status: if waiting_for.is_some() { "waiting".to_string() } else { status },
                    attempts: r.take::<Option<i64>, _>(5).flatten().unwrap_or(0),
                    response_status: r.take(6).unwrap_or(None),
                    response_body: r.take(7).unwrap_or(None),
                    last_error: r.take(8).unwrap_or(None),
                    duration_ms: r.take(9).unwrap_or(None),
                    next_attempt_at: r.take(10).unwrap_or(None),
                    last_attempt_at: r.take(11).unwrap_or(None),
                    delivered_at: r.take(12).unwrap_or(None),
                    created_at: r.take(13).unwrap_or(None),
                    group_key: r.take(15).unwrap_or(None),
                    waiting_for,
                    payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload)),
                }
            })
            .collect();
        Ok((views, total.unwrap_or(0)))
    }

    /// One delivery of a webhook, as the history shows it (None: not this webhook's, or gone).
    pub async fn get_delivery(&self, webhook_id: u64, delivery_id: u64, ordering: Ordering) -> Result<Option<DeliveryView>, StoreError> {
        let filter = DeliveryFilter { id: Some(delivery_id), ordering, ..DeliveryFilter::default() };
        Ok(self.list_deliveries(webhook_id, &filter, 1, 1).await?.0.into_iter().next())
    }

    /// The failed attempts kept for a delivery, oldest first (its last
    /// attempt, failed or not, is also on its row).
    pub async fn failed_attempts(&self, delivery_id: u64) -> Result<Vec<AttemptView>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        type Row = (i64, Option<i64>, Option<String>, Option<String>, Option<u64>, Option<String>);
        let rows: Vec<Row> = conn
            .exec(
                format!(
                    "SELECT attempt, response_status, response_body, error, duration_ms, DATE_FORMAT(attempted_at, {UTC_MS}) \
                     FROM webhook_delivery_attempts WHERE delivery_id = ? ORDER BY id LIMIT 100"
                ),
                (delivery_id,),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(attempt, response_status, response_body, error, duration_ms, attempted_at)| AttemptView {
                attempt,
                response_status,
                response_body,
                error,
                duration_ms,
                attempted_at,
            })
            .collect())
    }

    /// Per webhook: deliveries pending, failed, and pending behind an
    /// earlier one of their group (each range read through `idx_pending_order`).
    pub async fn delivery_counts(&self) -> Result<Vec<DeliveryCounts>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        type Row = (u64, Option<u64>, Option<u64>, Option<i64>);
        let rows: Vec<Row> = conn
            .query(
                "SELECT w.id, \
                 (SELECT COUNT(*) FROM webhook_deliveries d FORCE INDEX (idx_pending_order) WHERE d.webhook_id = w.id AND d.status = 'pending'), \
                 (SELECT COUNT(*) FROM webhook_deliveries d FORCE INDEX (idx_pending_order) WHERE d.webhook_id = w.id AND d.status = 'failed'), \
                 (SELECT COUNT(d.group_key) - COUNT(DISTINCT d.group_key) FROM webhook_deliveries d FORCE INDEX (idx_pending_order) \
                  WHERE d.webhook_id = w.id AND d.status = 'pending') \
                 FROM webhooks w ORDER BY w.id",
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(webhook_id, pending, failed, behind_in_group)| DeliveryCounts {
                webhook_id,
                pending: pending.unwrap_or(0),
                failed: failed.unwrap_or(0),
                behind_in_group: u64::try_from(behind_in_group.unwrap_or(0)).unwrap_or(0),
            })
            .collect())
    }

    /// The latest failed attempt of a webhook's deliveries still pending or failed, if any.
    pub async fn last_failure(&self, webhook_id: u64) -> Result<Option<LastFailure>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<(Option<i64>, Option<String>, Option<String>)> = conn
            .exec_first(
                format!(
                    "SELECT response_status, last_error, DATE_FORMAT(last_attempt_at, {UTC_MS}) FROM webhook_deliveries \
                     FORCE INDEX (idx_pending_order) WHERE webhook_id = ? AND status IN ('pending', 'failed') AND attempts > 0 \
                     ORDER BY last_attempt_at DESC LIMIT 1"
                ),
                (webhook_id,),
            )
            .await?;
        Ok(row.map(|(response_status, error, at)| LastFailure { response_status, error, at }))
    }

    /// Queues a delivery for an attempt now, whatever its state.
    pub async fn retry_delivery(&self, delivery_id: u64) -> Result<RetryOutcome, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<(u64, Option<bool>)> = conn
            .exec_first(
                "SELECT d.webhook_id, w.is_active FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?",
                (delivery_id,),
            )
            .await?;
        let Some((webhook_id, active)) = row else {
            return Ok(RetryOutcome::NotFound);
        };
        if active == Some(false) {
            return Ok(RetryOutcome::Inactive { webhook_id });
        }
        let mut tx = conn.start_transaction(mysql_async::TxOpts::default()).await?;
        tx.exec_drop(format!("{KEEP_DELIVERED_ATTEMPT} id = ?"), (delivery_id,)).await?;
        tx.exec_drop("UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = NOW(3) WHERE id = ?", (delivery_id,)).await?;
        tx.commit().await?;
        Ok(RetryOutcome::Queued { webhook_id })
    }

    /// Sends a webhook's finished deliveries created in `[since, until)`
    /// (seconds since the epoch) again: failed ones, or delivered ones too;
    /// of these event types only, when given. They keep their event ids and
    /// their place in line (their ids); each new attempt is recorded as any.
    /// Returns how many.
    pub async fn replay_deliveries(
        &self,
        webhook_id: u64,
        since: i64,
        until: i64,
        failed_only: bool,
        event_types: Option<&[String]>,
    ) -> Result<u64, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let statuses = if failed_only { "'failed'" } else { "'failed', 'delivered'" };
        let mut sql = format!(
            "webhook_id = ? AND status IN ({statuses}) AND created_at >= FROM_UNIXTIME(?) AND created_at < FROM_UNIXTIME(?)"
        );
        let mut params: Vec<mysql_async::Value> = vec![webhook_id.into(), since.into(), until.into()];
        if let Some(types) = event_types {
            sql.push_str(&format!(" AND event_type IN ({})", vec!["?"; types.len()].join(",")));
            params.extend(types.iter().map(|t| mysql_async::Value::from(t.as_str())));
        }
        let mut tx = conn.start_transaction(mysql_async::TxOpts::default()).await?;
        tx.exec_drop(format!("{KEEP_DELIVERED_ATTEMPT} {sql}"), params.clone()).await?;
        tx.exec_drop(format!("UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = NOW(3) WHERE {sql}"), params).await?;
        let replayed = tx.affected_rows();
        tx.commit().await?;
        Ok(replayed)
    }

    /// Queues deliveries again: a new row for each the history does not
    /// hold, and those it does back to pending, in their place (a replay from
    /// the binlog). Returns how many.
    pub async fn requeue(&self, deliveries: &[NewDelivery<'_>]) -> Result<u64, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        for chunk in deliveries.chunks(500) {
            let mut tx = conn.start_transaction(mysql_async::TxOpts::default()).await?;
            let keys = vec!["(?, ?)"; chunk.len()].join(",");
            let key_params: Vec<mysql_async::Value> = chunk.iter().flat_map(|d| [d.webhook_id.into(), d.event_id.into()]).collect();
            tx.exec_drop(format!("{KEEP_DELIVERED_ATTEMPT} (webhook_id, event_id) IN ({keys})"), key_params).await?;
            let rows = vec!["(?, ?, ?, ?, ?, 'pending', 0, NOW(3))"; chunk.len()].join(",");
            let mut params: Vec<mysql_async::Value> = Vec::with_capacity(chunk.len() * 5);
            for d in chunk {
                params.extend([d.webhook_id.into(), d.event_id.into(), d.event_type.into(), d.group_key.into(), d.payload.into()]);
            }
            tx.exec_drop(
                format!(
                    "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, group_key, payload, status, attempts, next_attempt_at) \
                     VALUES {rows} ON DUPLICATE KEY UPDATE status = 'pending', next_attempt_at = NOW(3)"
                ),
                params,
            )
            .await?;
            tx.commit().await?;
        }
        Ok(deliveries.len() as u64)
    }

    /// Queues a backfill; returns its id.
    pub async fn create_backfill(&self, webhook_id: u64, event_type: &str, filter: Option<&str>, limit: Option<u64>) -> Result<u64, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            "INSERT INTO rowhook_backfills (webhook_id, event_type, filter, row_limit) VALUES (?, ?, ?, ?)",
            (webhook_id, event_type, filter, limit),
        )
        .await?;
        Ok(conn.last_insert_id().unwrap_or(0))
    }

    /// A backfill as the API shows it (None: unknown, or another webhook's).
    pub async fn backfill(&self, webhook_id: u64, id: u64) -> Result<Option<BackfillView>, StoreError> {
        Ok(self.backfills_where("webhook_id = ? AND id = ?", (webhook_id, id)).await?.pop())
    }

    /// A webhook's backfills, newest first.
    pub async fn list_backfills(&self, webhook_id: u64) -> Result<Vec<BackfillView>, StoreError> {
        self.backfills_where("webhook_id = ? ORDER BY id DESC LIMIT 100", (webhook_id,)).await
    }

    /// The backfill to run next (one running after a restart first, then the oldest queued).
    pub async fn next_backfill(&self) -> Result<Option<BackfillView>, StoreError> {
        Ok(self.backfills_where("state IN ('running', 'queued') ORDER BY state = 'running' DESC, id LIMIT 1", ()).await?.pop())
    }

    async fn backfills_where(&self, condition: &str, params: impl Into<mysql_async::Params> + Send) -> Result<Vec<BackfillView>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let rows: Vec<mysql_async::Row> = conn
            .exec(
                format!(
                    "SELECT id, webhook_id, event_type, filter, row_limit, state, cursor_key, rows_read, rows_sent, rows_estimate, error, \
                     DATE_FORMAT(created_at, {UTC}), DATE_FORMAT(started_at, {UTC}), DATE_FORMAT(finished_at, {UTC}), \
                     TIMESTAMPDIFF(MICROSECOND, started_at, COALESCE(finished_at, NOW(6))) FROM rowhook_backfills WHERE {condition}"
                ),
                params,
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|mut r| {
                let filter: Option<String> = r.take(3).unwrap_or(None);
                let rows_read: u64 = r.take(7).unwrap_or(0);
                let rows_sent: u64 = r.take(8).unwrap_or(0);
                let rows_estimate: Option<u64> = r.take(9).unwrap_or(None);
                let elapsed_us: Option<i64> = r.take(14).unwrap_or(None);
                let seconds = elapsed_us.map(|us| us.max(0) as f64 / 1e6).filter(|s| *s > 0.0);
                BackfillView {
                    id: r.take(0).unwrap_or(0),
                    webhook_id: r.take(1).unwrap_or(0),
                    event_type: r.take(2).unwrap_or_default(),
                    filter: filter.and_then(|f| serde_json::from_str(&f).ok()),
                    limit: r.take(4).unwrap_or(None),
                    state: r.take(5).unwrap_or_default(),
                    cursor: r.take::<Option<String>, _>(6).flatten().and_then(|c| serde_json::from_str(&c).ok()),
                    rows_read,
                    rows_sent,
                    rows_estimate,
                    rows_left: rows_estimate.map(|e| e.saturating_sub(rows_read)),
                    rows_per_second: seconds.map(|s| (rows_sent as f64 / s).round()),
                    error: r.take(10).unwrap_or(None),
                    created_at: r.take(11).unwrap_or(None),
                    started_at: r.take(12).unwrap_or(None),
                    finished_at: r.take(13).unwrap_or(None),
                }
            })
            .collect())
    }

    /// A backfill starts (again, after a restart): `running`, its estimate when it has none.
    pub async fn start_backfill(&self, id: u64, estimate: Option<u64>) -> Result<(), StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            "UPDATE rowhook_backfills SET state = 'running', started_at = COALESCE(started_at, NOW()), \
             rows_estimate = COALESCE(rows_estimate, ?) WHERE id = ? AND state IN ('queued', 'running')",
            (estimate, id),
        )
        .await?;
        Ok(())
    }

    /// A chunk is done: the key of the last row read (JSON array), and the rows read and sent with it.
    pub async fn backfill_progress(&self, id: u64, cursor: Option<&str>, read: u64, sent: u64) -> Result<(), StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            "UPDATE rowhook_backfills SET cursor_key = COALESCE(?, cursor_key), rows_read = rows_read + ?, rows_sent = rows_sent + ? WHERE id = ?",
            (cursor, read, sent, id),
        )
        .await?;
        Ok(())
    }

    /// A backfill ends: `done`, or `failed` with the reason (a cancelled one stays cancelled).
    pub async fn finish_backfill(&self, id: u64, error: Option<&str>) -> Result<(), StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            "UPDATE rowhook_backfills SET state = IF(? IS NULL, 'done', 'failed'), error = ?, finished_at = NOW() \
             WHERE id = ? AND state IN ('queued', 'running')",
            (error, error, id),
        )
        .await?;
        Ok(())
    }

    /// Cancels a queued or running backfill. False when there is none of that id and webhook, or it had ended.
    pub async fn cancel_backfill(&self, webhook_id: u64, id: u64) -> Result<bool, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            "UPDATE rowhook_backfills SET state = 'cancelled', finished_at = NOW() WHERE id = ? AND webhook_id = ? AND state IN ('queued', 'running')",
            (id, webhook_id),
        )
        .await?;
        Ok(conn.affected_rows() > 0)
    }

    /// Whether a backfill is still to run (not cancelled, nor its webhook gone).
    pub async fn backfill_wanted(&self, id: u64) -> Result<bool, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let state: Option<String> = conn.exec_first("SELECT state FROM rowhook_backfills WHERE id = ?", (id,)).await?;
        Ok(matches!(state.as_deref(), Some("queued" | "running")))
    }

    /// Writes a backfill's watermark (its own transaction, so it shows in the binlog).
    pub async fn write_watermark(&self, backfill: u64, chunk: u64, low: bool) -> Result<(), StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            "INSERT INTO rowhook_watermarks (backfill_id, chunk, mark) VALUES (?, ?, ?) \
             ON DUPLICATE KEY UPDATE chunk = VALUES(chunk), mark = VALUES(mark)",
            (backfill, chunk, if low { "low" } else { "high" }),
        )
        .await?;
        Ok(())
    }

    /// A backfill's deliveries still waiting to be sent.
    pub async fn backfill_pending(&self, webhook_id: u64, backfill: u64) -> Result<u64, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let n: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM webhook_deliveries FORCE INDEX (idx_pending_order) \
                 WHERE webhook_id = ? AND status = 'pending' AND event_id LIKE ?",
                (webhook_id, format!("bf\\_{backfill}\\_%")),
            )
            .await?;
        Ok(n.unwrap_or(0))
    }

    /// Queues one event for one webhook (the test event). Returns the delivery id.
    pub async fn enqueue_one(&self, delivery: &NewDelivery<'_>) -> Result<u64, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, group_key, payload, status, attempts, next_attempt_at) \
             VALUES (?, ?, ?, ?, ?, 'pending', 0, NOW(3))",
            (delivery.webhook_id, delivery.event_id, delivery.event_type, delivery.group_key, delivery.payload),
        )
        .await?;
        Ok(conn.last_insert_id().unwrap_or(0))
    }

    /// Deletes up to `limit` finished deliveries created more than `retention` ago.
    pub async fn prune_deliveries(
        &self,
        retention: Duration,
        limit: u64,
    ) -> Result<u64, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            "DELETE FROM webhook_deliveries WHERE status IN ('delivered', 'failed') \
             AND created_at < DATE_SUB(NOW(), INTERVAL ? SECOND) ORDER BY created_at LIMIT ?",
            (retention.as_secs(), limit),
        )
        .await?;
        Ok(conn.affected_rows())
    }

    /// Pending deliveries per webhook (for /metrics).
    pub async fn pending_by_webhook(&self) -> Result<Vec<(u64, u64)>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        Ok(conn.query("SELECT webhook_id, COUNT(*) FROM webhook_deliveries WHERE status = 'pending' GROUP BY webhook_id").await?)
    }
}

/// `SELECT`s every webhook.
async fn select_webhooks<Q: Queryable>(conn: &mut Q) -> Result<Vec<Webhook>, StoreError> {
    type Row = (u64, String, String, String, Option<String>, Option<bool>, Option<i64>, Option<String>);
    let rows: Vec<Row> = conn
        .query(
            "SELECT id, url, CAST(events AS CHAR), secret, \
             IF(previous_secret_expires_at > NOW(), previous_secret, NULL), is_active, failed_attempts, ordering FROM webhooks ORDER BY id",
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, url, events, secret, previous_secret, is_active, failed, ordering)| Webhook {
            ordering: ordering.as_deref().and_then(Ordering::parse),
            id,
            url,
            events: parse_events(id, &events),
            secret,
            previous_secret,
            is_active: is_active.unwrap_or(true),
            failed_attempts: u32::try_from(failed.unwrap_or(0)).unwrap_or(0),
        })
        .collect())
}

/// `webhooks.events`: a JSON array of event types. Anything else subscribes
/// to nothing (said in the log): a row the PHP app or an operator got wrong
/// must not stop rowhook, nor receive what it did not ask for.
pub fn parse_events(webhook_id: u64, events: &str) -> Vec<String> {
    serde_json::from_str::<Vec<String>>(events).unwrap_or_else(|_| {
        tracing::warn!(webhook_id, events = %events, "webhooks.events is not a JSON array of strings; the webhook gets no events");
        Vec::new()
    })
}

/// ER_NO_REFERENCED_ROW_2: the foreign key's parent row (the webhook) is not there.
fn is_missing_parent(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(server) if server.code == 1452)
}

/// Which of the chunk's webhooks exist. A locking read: it waits for a
/// transaction that is committing one (its binlog events may arrive before
/// its rows are visible to a plain read) instead of missing it.
async fn existing_webhooks(conn: &mut mysql_async::Conn, chunk: &[NewDelivery<'_>]) -> Result<std::collections::HashSet<u64>, StoreError> {
    let mut ids: Vec<u64> = chunk.iter().map(|d| d.webhook_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let found: Vec<u64> = conn.query(format!("SELECT id FROM webhooks WHERE id IN ({list}) LOCK IN SHARE MODE")).await?;
    Ok(found.into_iter().collect())
}

async fn upsert_checkpoint<Q: Queryable>(
    conn: &mut Q,
    (file, pos): (&str, u64),
    gtid: Option<&str>,
    view: SavedView<'_>,
) -> Result<(), StoreError> {
    let (keep, subscriptions) = match view {
        SavedView::Unchanged => (true, None),
        SavedView::Clear => (false, None),
        SavedView::Set(json) => (false, Some(json)),
    };
    conn.exec_drop(
        "INSERT INTO rowhook_checkpoints (name, binlog_file, binlog_pos, gtid, subscriptions) VALUES (?, ?, ?, ?, ?) \
         ON DUPLICATE KEY UPDATE binlog_file = VALUES(binlog_file), binlog_pos = VALUES(binlog_pos), gtid = VALUES(gtid), \
         subscriptions = IF(?, subscriptions, VALUES(subscriptions))",
        (CHECKPOINT_NAME, file, pos, gtid, subscriptions, keep),
    )
    .await?;
    Ok(())
}

/// What a checkpoint write does with the subscriptions saved beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavedView<'a> {
    /// They did not change since they were last saved: they belong to this position too.
    Unchanged,
    /// The position starts over (`--reset-position`, a first start): none belong to it.
    Clear,
    /// These (JSON, as the delivery stage's subscriptions write themselves).
    Set(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlocks_and_lock_wait_timeouts_are_run_again_other_errors_not() {
        let server = |code| {
            mysql_async::Error::Server(mysql_async::ServerError { code, message: String::new(), state: "40001".into() })
        };
        assert!(rolled_back_by_lock_conflict(&server(1213)));
        assert!(rolled_back_by_lock_conflict(&server(1205)));
        assert!(!rolled_back_by_lock_conflict(&server(1062)), "a duplicate key is not a lock conflict");
        assert!(!rolled_back_by_lock_conflict(&server(1146)));
    }

    #[test]
    fn insert_returning_is_mariadb_10_5_and_later() {
        assert!(supports_insert_returning("10.11.19-MariaDB-0+deb12u1-log"));
        assert!(supports_insert_returning("10.5.0-MariaDB"));
        assert!(supports_insert_returning("11.4.2-MariaDB"));
        assert!(!supports_insert_returning("10.4.31-MariaDB"));
        assert!(!supports_insert_returning("8.0.36"));
        assert!(!supports_insert_returning("8.4.0-commercial"));
        assert!(!supports_insert_returning(""));
    }

    const HEALTHY: WebhookHealth = WebhookHealth { webhook_id: 7, failed_attempts: 0, failing: false, disable: false };

    fn attempt(id: u64) -> AttemptRecord {
        AttemptRecord {
            delivery_id: id,
            status: DeliveryStatus::Delivered,
            response_status: Some(200),
            response_body: Some("ok".into()),
            error: None,
            duration_ms: 3,
            retry_in: None,
        }
    }

    #[test]
    fn attempts_statement_has_few_shapes_and_pads_with_id_zero() {
        for (n, shape) in [(1, 1), (3, 4), (4, 4), (5, 16), (64, 64), (65, 256), (256, 256), (300, 300)] {
            let records: Vec<AttemptRecord> = (1..=n as u64).map(attempt).collect();
            let (sql, params) = record_attempts_statement(&records, Some(HEALTHY));
            assert_eq!(sql.matches("UNION ALL SELECT").count() + 1, shape, "{n} records");
            assert_eq!(params.len(), shape * 7 + 4);
            assert_eq!(sql.matches('?').count(), params.len());
            let (bare, bare_params) = record_attempts_statement(&records, None);
            assert_eq!(bare_params.len(), shape * 7, "without health: the attempts only");
            assert_eq!(bare.matches('?').count(), bare_params.len());
            assert!(!bare.contains("webhooks"), "the webhook's row is not touched: {bare}");
            let ids: Vec<&mysql_async::Value> = params[..shape * 7].iter().step_by(7).collect();
            assert_eq!(ids[n - 1], &mysql_async::Value::from(n as u64));
            assert!(ids[n..].iter().all(|id| **id == mysql_async::Value::from(0u64)), "padding matches no row");
        }
        // Every wave size up to the largest shape reuses one of the shapes' statements.
        let texts: std::collections::HashSet<String> = (1..=*RECORD_SHAPES.last().unwrap())
            .map(|n| record_attempts_statement(&(1..=n as u64).map(attempt).collect::<Vec<_>>(), Some(HEALTHY)).0)
            .collect();
        assert_eq!(texts.len(), RECORD_SHAPES.len());
    }

    #[test]
    fn a_failure_count_alone_is_not_a_change_of_settings() {
        let hook = Webhook {
            id: 1,
            url: "https://example.com/".into(),
            events: vec!["*".into()],
            secret: "s".into(),
            previous_secret: None,
            is_active: true,
            failed_attempts: 0,
            ordering: None,
        };
        assert!(!hook.settings_differ(&Webhook { failed_attempts: 7, ..hook.clone() }));
        assert!(hook.settings_differ(&Webhook { is_active: false, ..hook.clone() }));
        assert!(hook.settings_differ(&Webhook { url: "https://example.org/".into(), ..hook.clone() }));
        assert!(hook.settings_differ(&Webhook { events: vec!["note.added".into()], ..hook.clone() }));
        assert!(hook.settings_differ(&Webhook { secret: "t".into(), ..hook.clone() }));
        assert!(hook.settings_differ(&Webhook { previous_secret: Some("s".into()), ..hook.clone() }));
        assert!(hook.settings_differ(&Webhook { ordering: Some(crate::config::Ordering::None), ..hook.clone() }));
    }

    #[test]
    fn wildcard_and_exact_subscriptions() {
        let mut w = Webhook {
            id: 1,
            url: "https://example.com".into(),
            events: vec!["thread.created".into()],
            secret: "s".into(),
            previous_secret: None,
            is_active: true,
            failed_attempts: 0,
            ordering: None,
        };
        assert!(w.subscribes_to("thread.created"));
        assert!(!w.subscribes_to("note.added"));
        w.events = vec!["*".into()];
        assert!(w.subscribes_to("note.added"));
    }
}
