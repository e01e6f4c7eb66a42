//! Running rowhook for a test: in-process (the real daemon on port 0) or as
//! the built binary, against a fresh database of the shared private MariaDB.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mysql_async::prelude::*;
use rowhook::config::Config;
use tokio::sync::oneshot;

use crate::support::mariadb;

/// A database with the helpdesk schema and rowhook's tables, and a connection to it.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub conn: mysql_async::Conn,
}

impl TestDb {
    pub async fn new(prefix: &str) -> TestDb {
        TestDb::on(mariadb::shared(), prefix).await
    }

    /// The same on another (private) server.
    pub async fn on(server: &mariadb::MariaDb, prefix: &str) -> TestDb {
        let name = server.fresh_database(prefix).await;
        let url = server.url(&name);
        rowhook::state::store::Store::new(&url).unwrap().migrate().await.expect("migrate");
        let conn = mysql_async::Conn::from_url(url.as_str()).await.expect("connect");
        TestDb { name, url, conn }
    }

    /// Registers a webhook the way the PHP app (or an operator) would: with SQL.
    pub async fn add_webhook(&mut self, url: &str, events: &[&str], secret: &str, active: bool) -> u64 {
        let events = serde_json::to_string(events).unwrap();
        self.conn
            .exec_drop("INSERT INTO webhooks (url, events, secret, is_active) VALUES (?, ?, ?, ?)", (url, events, secret, active))
            .await
            .expect("insert webhook");
        self.conn.last_insert_id().expect("webhook id")
    }

    pub async fn exec(&mut self, sql: &str) {
        self.conn.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// (status, attempts, response_status) of every delivery of a webhook, by id.
    pub async fn deliveries(&mut self, webhook_id: u64) -> Vec<(String, String, i64, Option<i64>)> {
        self.conn
            .exec(
                "SELECT event_id, status, attempts, response_status FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id",
                (webhook_id,),
            )
            .await
            .expect("deliveries")
    }
}

static SERVER_IDS: AtomicU32 = AtomicU32::new(0);

/// A unique replica id: two replicas with one id evict each other.
pub fn server_id() -> u32 {
    1_000_000 + (std::process::id() % 10_000) * 100 + SERVER_IDS.fetch_add(1, Ordering::SeqCst)
}

/// The shipped config, pointed at `url`, with short retries for tests.
pub fn test_config(url: &str) -> Config {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rowhook.toml");
    let mut config = Config::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
    config.source.url = url.to_string();
    config.source.server_id = server_id();
    config.source.heartbeat = Duration::from_secs(1);
    config.delivery.allow_private_targets = true;
    config.delivery.retry_schedule = vec![Duration::from_millis(100), Duration::from_millis(100)];
    config.delivery.auto_disable_min_failing = Duration::ZERO;
    config.delivery.timeout = Duration::from_secs(3);
    config.delivery.shutdown_timeout = Duration::from_secs(2);
    config.validate().unwrap();
    config
}

/// rowhook running in this process.
pub struct InProcess {
    pub base_url: String,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<actix_rt::task::JoinHandle<Result<(), rowhook::daemon::RunError>>>,
}

impl InProcess {
    /// Starts rowhook and waits until its reader is connected (`/readyz`).
    pub async fn start(config: Config) -> InProcess {
        let running = InProcess::spawn(config);
        running.wait_ready().await;
        running
    }

    /// Starts rowhook without waiting for it (a standby instance is never ready).
    pub fn spawn(config: Config) -> InProcess {
        crate::support::install_crypto_provider();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = actix_rt::spawn(rowhook::daemon::run(
            config,
            listener,
            async move {
                let _ = stopped.await;
            },
            None,
        ));
        InProcess { base_url, stop: Some(stop), handle: Some(handle) }
    }

    pub async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = client.get(format!("{}/readyz", self.base_url)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("rowhook did not become ready at {}", self.base_url);
    }

    /// Waits (without a stop signal) until `run` returns by itself, and returns what it returned.
    pub async fn finished(mut self, timeout: Duration) -> Result<(), rowhook::daemon::RunError> {
        let handle = self.handle.take().expect("running");
        tokio::time::timeout(timeout, handle).await.expect("rowhook stops by itself in time").expect("run task")
    }

    /// Graceful stop; returns what `run` returned.
    pub async fn stop(mut self) -> Result<(), rowhook::daemon::RunError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let handle = self.handle.take().expect("running");
        tokio::time::timeout(Duration::from_secs(20), handle).await.expect("rowhook stops within 20s").expect("run task")
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `rowhook run` of the built binary against `db_url`, with the test
/// settings of [`test_config`] as environment (add more with `.env`; later
/// values win). The process is killed when the thread that started it ends,
/// so a failed or finished test leaves no daemon behind.
pub fn daemon_command(db_url: &str, server_id: u32, listen: std::net::SocketAddr) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(crate::support::rowhook_bin());
    command
        .args(["run", "--config", concat!(env!("CARGO_MANIFEST_DIR"), "/config/rowhook.toml")])
        .env("ROWHOOK__SOURCE__URL", db_url)
        .env("ROWHOOK__SOURCE__SERVER_ID", server_id.to_string())
        .env("ROWHOOK__SOURCE__HEARTBEAT", "1s")
        .env("ROWHOOK__HTTP__LISTEN", listen.to_string())
        .env("ROWHOOK__DELIVERY__ALLOW_PRIVATE_TARGETS", "true")
        .env("ROWHOOK__DELIVERY__RETRY_SCHEDULE", "100ms,100ms")
        .env("ROWHOOK__LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::null());
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command
}

/// A free loopback address for a daemon's HTTP server.
pub fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}
