//! A private MariaDB server for the integration tests.
//!
//! * [`shared()`] starts one server per test binary on first use (row-based binlog, FULL row
//!   image and metadata) and keeps it until the test process exits.
//! * [`MariaDb::start_private`] starts a server of its own (own data dir, own port) that a test
//!   may stop and start again; it is killed and its data dir removed on `Drop`.
//!
//! Servers never outlive the test process: every `mariadbd` is spawned by one dedicated thread
//! that never exits, with `PR_SET_PDEATHSIG = SIGKILL` (the signal fires when the *thread* that
//! spawned the child exits, i.e. when the process dies, however it dies). Data dirs live under
//! `$TMPDIR/rowhook-test-<pid>`; leftovers of dead test processes are removed at start.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

const NOT_FOUND: &str = "mariadbd not found: install it with `apt-get install mariadb-server` \
                         (Debian/Ubuntu); the tests need a real MariaDB";

/// How long a server may take to answer a TCP connection after being spawned.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop()` waits after SIGTERM before it sends SIGKILL.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// A running (or, for private servers, possibly stopped) MariaDB server.
pub struct MariaDb {
    /// TCP port on 127.0.0.1. Stays the same across `stop()` / `start()`.
    pub port: u16,
    datadir: PathBuf,
    extra_args: Vec<String>,
    child: Mutex<Option<Child>>,
    /// Private servers remove their data dir and kill the server on drop.
    private: bool,
}

static SHARED: OnceLock<Result<MariaDb, String>> = OnceLock::new();
static DB_COUNTER: AtomicUsize = AtomicUsize::new(0);
static PRIVATE_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One private server per test binary, started on first use.
///
/// Panics (a test failure) with an explanation when `mariadbd` is not installed or the server
/// does not start; every test that calls it fails the same way without retrying the start.
pub fn shared() -> &'static MariaDb {
    let result = SHARED.get_or_init(|| {
        let bins = find_binaries()?;
        let datadir = test_root()?.join("shared");
        MariaDb::launch(&bins, datadir, Vec::new(), false)
    });
    match result {
        Ok(db) => db,
        Err(msg) => panic!("{msg}"),
    }
}

impl MariaDb {
    /// Starts a server of its own (not shared): own data dir, own free port, `extra_args`
    /// appended to the standard `mariadbd` arguments (later options win, so they can override
    /// the defaults, e.g. `--binlog-row-image=MINIMAL`). Killed and removed on drop.
    pub fn start_private(extra_args: &[&str]) -> MariaDb {
        let result = find_binaries().and_then(|bins| {
            let n = PRIVATE_COUNTER.fetch_add(1, Ordering::SeqCst);
            let datadir = test_root()?.join(format!("private-{n}"));
            MariaDb::launch(
                &bins,
                datadir,
                extra_args.iter().map(|s| s.to_string()).collect(),
                true,
            )
        });
        match result {
            Ok(db) => db,
            Err(msg) => panic!("{msg}"),
        }
    }

    /// `mysql://root@127.0.0.1:PORT`
    pub fn root_url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// `mysql://root@127.0.0.1:PORT/db`
    pub fn url(&self, db: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{db}", self.port)
    }

    /// The server's data directory (binlogs are `binlog.NNNNNN` in it, the log is `error.log`).
    pub fn datadir(&self) -> &Path {
        &self.datadir
    }

    /// The last `lines` lines of the server's error log (for diagnostics).
    pub fn error_log_tail(&self, lines: usize) -> String {
        tail(&self.datadir.join("error.log"), lines)
    }

    /// Creates a uniquely named database (`<prefix>_<counter>_<pid>`) and loads
    /// `schema/helpdesk.sql` into it. Returns the database name.
    pub async fn fresh_database(&self, prefix: &str) -> String {
        let n = DB_COUNTER.fetch_add(1, Ordering::SeqCst);
        let clean: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let name = format!("{clean}_{n}_{}", std::process::id());

        let schema_path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schema")
            .join("helpdesk.sql");
        let schema = fs::read_to_string(&schema_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", schema_path.display()));

        let mut conn = mysql_async::Conn::from_url(self.root_url())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.root_url()));
        conn.query_drop(format!("CREATE DATABASE `{name}`"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        conn.query_drop(format!("USE `{name}`"))
            .await
            .expect("USE new database");
        for stmt in split_sql(&schema) {
            conn.query_drop(stmt.as_str()).await.unwrap_or_else(|e| {
                panic!(
                    "loading {} into {name}: {e}\nstatement: {stmt}",
                    schema_path.display()
                )
            });
        }
        let _ = conn.disconnect().await;
        name
    }

    /// SIGTERM, then waits for the server to exit (SIGKILL after 30 s). No-op when stopped.
    pub fn stop(&mut self) {
        let child = self
            .child
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut child) = child {
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
    }

    /// Starts the server again: same data dir, same port. No-op when it is running.
    pub fn start(&mut self) {
        if self
            .child
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            return;
        }
        let bins = find_binaries().unwrap_or_else(|m| panic!("{m}"));
        let child = spawn_server(&bins, &self.datadir, self.port, &self.extra_args)
            .unwrap_or_else(|m| panic!("{m}"));
        *self.child.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(child);
    }

    /// Whether the server process is running (not stopped, not crashed).
    pub fn is_running(&self) -> bool {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn launch(
        bins: &Binaries,
        datadir: PathBuf,
        extra_args: Vec<String>,
        private: bool,
    ) -> Result<MariaDb, String> {
        if datadir.exists() {
            let _ = fs::remove_dir_all(&datadir);
        }
        fs::create_dir_all(&datadir)
            .map_err(|e| format!("cannot create {}: {e}", datadir.display()))?;
        install_db(bins, &datadir)?;

        // A port found free may be taken by someone else before mariadbd binds it: retry.
        let mut last_err = String::new();
        for _ in 0..3 {
            let port = free_port().map_err(|e| format!("cannot find a free port: {e}"))?;
            match spawn_server(bins, &datadir, port, &extra_args) {
                Ok(child) => {
                    return Ok(MariaDb {
                        port,
                        datadir,
                        extra_args,
                        child: Mutex::new(Some(child)),
                        private,
                    })
                }
                Err(e) => {
                    let log = fs::read_to_string(datadir.join("error.log")).unwrap_or_default();
                    last_err = e;
                    if !(log.contains("Address already in use")
                        || log.contains("Do you already have another"))
                    {
                        break;
                    }
                    let _ = fs::remove_file(datadir.join("error.log"));
                }
            }
        }
        if private {
            let _ = fs::remove_dir_all(&datadir);
        }
        Err(last_err)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        if !self.private {
            return;
        }
        if let Some(mut child) = self
            .child
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.datadir);
    }
}

struct Binaries {
    mariadbd: PathBuf,
    install_db: PathBuf,
}

fn find_in(name: &str, extra_dirs: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn find_binaries() -> Result<Binaries, String> {
    let sbin = ["/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin"];
    let mariadbd = find_in("mariadbd", &sbin).ok_or_else(|| NOT_FOUND.to_string())?;
    let bin = [
        "/usr/bin",
        "/usr/local/bin",
        "/usr/local/mysql/scripts",
        "/usr/local/mysql/bin",
    ];
    let install_db = find_in("mariadb-install-db", &bin)
        .or_else(|| find_in("mysql_install_db", &bin))
        .ok_or_else(|| {
            format!(
                "found {} but not mariadb-install-db: install it with \
                 `apt-get install mariadb-server` (Debian/Ubuntu); the tests need a real MariaDB",
                mariadbd.display()
            )
        })?;
    Ok(Binaries {
        mariadbd,
        install_db,
    })
}

/// `$TMPDIR/rowhook-test-<pid>`, after removing the dirs of test processes that are gone.
fn test_root() -> Result<PathBuf, String> {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let tmp = std::env::temp_dir();
        let me = std::process::id();
        if let Ok(entries) = fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("rowhook-test-")) else {
                    continue;
                };
                let Ok(pid) = pid.parse::<u32>() else {
                    continue;
                };
                if pid == me || !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        tmp.join(format!("rowhook-test-{me}"))
    });
    fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    Ok(root.clone())
}

fn free_port() -> io::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn install_db(bins: &Binaries, datadir: &Path) -> Result<(), String> {
    let tmp = tmp_dir(datadir)?;
    let out = Command::new(&bins.install_db)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", datadir.display()))
        .arg(format!("--tmpdir={}", tmp.display()))
        .args([
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
            "--innodb-log-file-size=8M",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bins.install_db.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}) for {}:\n{}\n{}",
            bins.install_db.display(),
            out.status,
            datadir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// A private tmpdir per server: servers bootstrapping at the same time in a shared /tmp can
/// remove each other's temporary tables (seen: "Could not remove temporary table").
fn tmp_dir(datadir: &Path) -> Result<PathBuf, String> {
    let tmp = datadir.join("tmp");
    fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    Ok(tmp)
}

/// The socket path must fit in `sun_path` (108 bytes); fall back to a short one in /tmp.
fn socket_path(datadir: &Path, port: u16) -> PathBuf {
    let p = datadir.join("mysql.sock");
    if p.as_os_str().len() < 100 {
        p
    } else {
        PathBuf::from(format!("/tmp/rowhook-{}-{port}.sock", std::process::id()))
    }
}

fn server_args(datadir: &Path, port: u16, extra: &[String]) -> Vec<String> {
    let d = datadir.display();
    let mut args = vec![
        "--no-defaults".to_string(),
        format!("--datadir={d}"),
        format!("--tmpdir={d}/tmp"),
        "--user=root".into(),
        format!("--socket={}", socket_path(datadir, port).display()),
        format!("--pid-file={d}/mysqld.pid"),
        format!("--log-error={d}/error.log"),
        format!("--port={port}"),
        "--bind-address=127.0.0.1".into(),
        "--skip-name-resolve".into(),
        "--server-id=1".into(),
        format!("--log-bin={d}/binlog"),
        "--binlog-format=ROW".into(),
        "--binlog-row-image=FULL".into(),
        "--binlog-row-metadata=FULL".into(),
        "--character-set-server=utf8mb4".into(),
        "--collation-server=utf8mb4_unicode_ci".into(),
        "--innodb-buffer-pool-size=64M".into(),
        "--innodb-flush-log-at-trx-commit=0".into(),
        "--sync-binlog=0".into(),
        "--skip-innodb-doublewrite".into(),
        "--innodb-log-file-size=8M".into(),
        "--max-connections=500".into(),
    ];
    args.extend(extra.iter().cloned());
    args
}

/// Spawns `mariadbd` (through the spawner thread) and waits until it accepts TCP connections.
fn spawn_server(
    bins: &Binaries,
    datadir: &Path,
    port: u16,
    extra: &[String],
) -> Result<Child, String> {
    tmp_dir(datadir)?;
    let mut cmd = Command::new(&bins.mariadbd);
    cmd.args(server_args(datadir, port, extra))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = spawn_orphan_proof(cmd)
        .map_err(|e| format!("cannot start {}: {e}", bins.mariadbd.display()))?;

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let log = datadir.join("error.log");
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "mariadbd exited ({status}) before accepting connections on port {port}; \
                 last lines of {}:\n{}",
                log.display(),
                tail(&log, 30)
            ));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "mariadbd did not accept connections on port {port} within {STARTUP_TIMEOUT:?}; \
                 last lines of {}:\n{}",
                log.display(),
                tail(&log, 30)
            ));
        }
        thread::sleep(Duration::from_millis(25));
    }
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `cmd` from a dedicated thread that never exits, with PDEATHSIG = SIGKILL, so the
/// child is killed when the test process dies (PDEATHSIG fires when the spawning thread exits).
fn spawn_orphan_proof(mut cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("mariadbd-spawner".into())
            .spawn(move || {
                // The sender lives in a static and is never dropped, so this loop never ends;
                // park anyway should it ever do.
                while let Ok((mut cmd, reply)) = rx.recv() {
                    let _ = reply.send(cmd.spawn());
                }
                loop {
                    thread::park();
                }
            })
            .expect("spawn the mariadbd spawner thread");
        Mutex::new(tx)
    });

    let parent = std::process::id() as libc::pid_t;
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("mariadbd spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("mariadbd spawner thread is gone"))?
}

fn tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Splits an SQL script on `;` at line ends, dropping `--` comment lines and empty statements.
fn split_sql(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in script.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("--") {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if trimmed.ends_with(';') {
            let stmt = cur.trim().trim_end_matches(';').trim().to_string();
            if !stmt.is_empty() {
                out.push(stmt);
            }
            cur.clear();
        }
    }
    let rest = cur.trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}
