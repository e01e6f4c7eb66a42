//! One active rowhook per state database: a named lock on the state server.
//!
//! Two instances reading the same binlog into the same state database would
//! each send every delivery. So the pipeline runs only in the instance that
//! holds `GET_LOCK(lock_name(database))` on the state server; any other
//! instance stands by and takes over when the lock is released: when the
//! active instance stops, or when its session ends (a crash, `kill -9`, a lost
//! host: the server releases a session's locks with it). No home-made
//! consensus: the database that already holds the queue decides.
//!
//! The lock lives on a connection of its own, checked every
//! [`CHECK_EVERY`]. When that connection breaks (the state server restarted,
//! the network blinked), [`keep`] takes the lock again on a new connection,
//! ending a session of its own that the server still keeps (the session's
//! short `wait_timeout` ends one of a lost host within seconds); if another
//! instance holds it by then, it reports the lock lost and the daemon stops,
//! so two instances never deliver side by side for longer than the check.

use std::time::Duration;

use mysql_async::prelude::*;
use sha2::{Digest, Sha256};
use tokio::sync::{oneshot, watch};

/// How often the active instance checks that it still holds the lock.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// How long the check may take before the connection counts as broken.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one standby attempt waits on the server for the lock.
pub const STANDBY_WAIT: Duration = Duration::from_secs(2);

/// The lock session's `wait_timeout`: the server ends a session idle that
/// long, and its lock with it, so a lost host (no FIN, no RST) holds the lock
/// for seconds rather than the default 8 hours. The active instance asks
/// every [`CHECK_EVERY`], so its own session is never idle that long.
const SESSION_IDLE_LIMIT_SECS: u32 = 10;

/// The longest lock name MySQL accepts (MariaDB has no limit).
const MAX_NAME: usize = 64;

/// The lock's name for a state database: lock names are server-wide, so it
/// names the database; a name too long for MySQL ends in a hash instead.
pub fn lock_name(state_database: &str) -> String {
    let name = format!("rowhook:{state_database}");
    if name.len() <= MAX_NAME {
        return name;
    }
    let digest = Sha256::digest(state_database.as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let mut cut = MAX_NAME - hash.len() - 1;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{hash}", &name[..cut])
}

/// The lock, held by the session of `conn`.
pub struct InstanceLock {
    conn: mysql_async::Conn,
    name: String,
}

impl std::fmt::Debug for InstanceLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceLock").field("name", &self.name).field("session", &self.conn.id()).finish()
    }
}

/// What an attempt to take the lock found.
#[derive(Debug)]
pub enum Attempt {
    Taken(InstanceLock),
    /// Another session holds it: its connection id on the state server (0
    /// when it was released between the two questions).
    HeldBy(u64),
}

/// Takes the lock on a new connection, waiting up to `wait` on the server.
pub async fn try_acquire(opts: &mysql_async::Opts, name: &str, wait: Duration) -> Result<Attempt, mysql_async::Error> {
    let mut conn = mysql_async::Conn::new(opts.clone()).await?;
    conn.query_drop(format!("SET SESSION wait_timeout = {SESSION_IDLE_LIMIT_SECS}")).await?;
    let got: Option<Option<i64>> = conn.exec_first("SELECT GET_LOCK(?, ?)", (name, wait.as_secs_f64())).await?;
    if got.flatten() == Some(1) {
        return Ok(Attempt::Taken(InstanceLock { conn, name: name.to_string() }));
    }
    let holder: Option<Option<u64>> = conn.exec_first("SELECT IS_USED_LOCK(?)", (name,)).await?;
    let _ = conn.disconnect().await;
    Ok(Attempt::HeldBy(holder.flatten().unwrap_or(0)))
}

/// Who holds the lock: the connection id of its session on the state
/// server, None when it is free (for `rowhook check-config`).
pub async fn holder(opts: &mysql_async::Opts, name: &str) -> Result<Option<u64>, mysql_async::Error> {
    let mut conn = mysql_async::Conn::new(opts.clone()).await?;
    let holder: Option<Option<u64>> = conn.exec_first("SELECT IS_USED_LOCK(?)", (name,)).await?;
    let _ = conn.disconnect().await;
    Ok(holder.flatten())
}

/// The sessions other than this one waiting in `GET_LOCK` on the state
/// database (standby instances, which stand by in it): their connection id
/// and client address. The server lists the sessions of the same user only,
/// unless the user has the PROCESS privilege.
pub async fn standbys(opts: &mysql_async::Opts) -> Result<Vec<(u64, String)>, mysql_async::Error> {
    let mut conn = mysql_async::Conn::new(opts.clone()).await?;
    let waiting: Vec<(u64, String)> = conn
        .query(
            "SELECT ID, HOST FROM information_schema.PROCESSLIST \
             WHERE ID <> CONNECTION_ID() AND DB <=> DATABASE() AND INFO LIKE 'SELECT GET_LOCK(%' ORDER BY ID",
        )
        .await?;
    let _ = conn.disconnect().await;
    Ok(waiting)
}

impl InstanceLock {
    /// The lock holder's connection id on the state server.
    pub fn session(&self) -> u32 {
        self.conn.id()
    }

    /// Whether this session still holds the lock (an error: the connection broke).
    async fn still_held(&mut self) -> Result<bool, mysql_async::Error> {
        let holder: Option<Option<u64>> = self.conn.exec_first("SELECT IS_USED_LOCK(?)", (self.name.as_str(),)).await?;
        Ok(holder.flatten() == Some(u64::from(self.conn.id())))
    }

    /// Releases the lock at once, so a standby takes over without waiting
    /// for the server to notice a closed connection.
    pub async fn release(mut self) {
        let _ = self.conn.exec_drop("DO RELEASE_LOCK(?)", (self.name.as_str(),)).await;
        let _ = self.conn.disconnect().await;
    }
}

/// Why the active instance has to stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "another rowhook instance took the instance lock `{name}` (connection {holder} on the state database) \
     while this one's connection was broken; stopping so that only one delivers (restarted, this one stands by)"
)]
pub struct LockLost {
    pub name: String,
    pub holder: u64,
}

/// Keeps the lock until `stop` turns true, then releases it. Sends on `lost`
/// (and returns) if another instance holds it after this one's connection broke.
/// `active` is 1 while the lock is known to be held, 0 while it is taken again.
pub async fn keep(
    mut lock: InstanceLock,
    opts: mysql_async::Opts,
    mut stop: watch::Receiver<bool>,
    lost: oneshot::Sender<LockLost>,
    active: prometheus::IntGauge,
) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => {
                lock.release().await;
                return;
            }
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        // A check that hangs (a network that drops packets) counts as a broken connection.
        match tokio::time::timeout(CHECK_TIMEOUT, lock.still_held()).await {
            Ok(Ok(true)) => continue,
            Ok(Ok(false)) => tracing::warn!(lock = %lock.name, "the instance lock's session no longer holds it; taking it again"),
            Ok(Err(e)) => tracing::warn!(lock = %lock.name, error = %e, "the instance lock's connection broke; taking the lock again"),
            Err(_) => tracing::warn!(lock = %lock.name, "the instance lock's check got no answer in 5 s; taking the lock again"),
        }
        active.set(0);
        let name = lock.name.clone();
        let old_session = u64::from(lock.session());
        drop(lock);
        lock = loop {
            let attempt = tokio::time::timeout(CHECK_TIMEOUT, try_acquire(&opts, &name, Duration::ZERO)).await;
            match attempt {
                Ok(Ok(Attempt::Taken(again))) => {
                    tracing::info!(lock = %name, "instance lock taken again");
                    active.set(1);
                    break again;
                }
                // The server still keeps the broken session (it has not noticed
                // yet that it is gone): end it, and its lock with it.
                Ok(Ok(Attempt::HeldBy(holder))) if holder == old_session || holder == 0 => {
                    if holder != 0 {
                        let _ = tokio::time::timeout(CHECK_TIMEOUT, end_session(&opts, holder)).await;
                    }
                }
                Ok(Ok(Attempt::HeldBy(holder))) => {
                    let _ = lost.send(LockLost { name, holder });
                    return;
                }
                Ok(Err(_)) | Err(_) => {} // the state server is still away: try again below
            }
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => return,
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
        };
    }
}

/// Ends a session of this instance's own that the server still keeps.
async fn end_session(opts: &mysql_async::Opts, session: u64) {
    if let Ok(mut conn) = mysql_async::Conn::new(opts.clone()).await {
        if let Err(e) = conn.query_drop(format!("KILL CONNECTION {session}")).await {
            tracing::warn!(session, error = %e, "could not end the instance lock's old session");
        }
        let _ = conn.disconnect().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_named_after_the_state_database() {
        assert_eq!(lock_name("helpdesk"), "rowhook:helpdesk");
    }

    #[test]
    fn a_long_database_name_gives_a_lock_name_mysql_accepts_and_still_tells_databases_apart() {
        let a = lock_name(&"a".repeat(64));
        let b = lock_name(&format!("{}b", "a".repeat(63)));
        assert!(a.len() <= MAX_NAME && b.len() <= MAX_NAME, "{a} / {b}");
        assert_ne!(a, b);
        assert!(a.starts_with("rowhook:aaaa"));
        // Multi-byte names are cut on a character boundary.
        let c = lock_name(&"é".repeat(40));
        assert!(c.len() <= MAX_NAME, "{c}");
    }
}
