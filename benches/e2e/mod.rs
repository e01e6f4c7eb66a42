//! End-to-end scenarios of `make bench`: the released `rowhook` binary, a
//! private MariaDB and a fast local receiver, all on this machine.
//!
//! - **Throughput**: notes of 1,000 threads (so 1,000 groups) inserted as fast
//!   as one writer can (transactions of 100 rows) while rowhook runs; timed
//!   from the first insert until the receiver has every delivery *and* the
//!   state database records every one as delivered. One webhook, then ten
//!   subscribed to everything (with `--max-in-flight`, 16 by default, and the
//!   shipped `ordering = "group"`), then one webhook with `ordering =
//!   "webhook"` (strict commit order, one request at a time) for information.
//!   CPU time of rowhook, MariaDB and this process per 1,000 deliveries and
//!   server counters go to the notes.
//! - **Ordering**: one webhook with `ordering = "group"` beside one with
//!   `"webhook"`, to the fast receiver and to one that answers after 5 ms (a
//!   realistic remote endpoint, where one request at a time costs most).
//! - **Latency**: one note per transaction at a steady rate (the shipped
//!   settings); for each, the time from the writer's commit
//!   returning to the receiver reading the request (one clock: both run in
//!   this process). Reference, same run: the floor under it on this machine
//!   ([`floor_task`]: a bare replica client that, per note, receives the
//!   binlog event, makes one INSERT round trip and POSTs to the receiver).
//! - **Memory**: the rowhook process's resident set when idle, and its peak
//!   while 100,000 deliveries wait for a receiver that refuses connections.
//!
//! The receiver is actix-web on one worker thread: it answers 200 with an
//! empty body at once, keeps connections alive, and counts what arrives per
//! webhook (the request path is the webhook's number).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use crate::{median, met, rate, say, thousands, BoxError, Row};

const DB: &str = "bench_e2e";
/// Empties the delivery history between measurements: TRUNCATE, not DELETE
/// (purging deleted rows would load the next measurement); the attempts'
/// foreign key refuses a TRUNCATE of the deliveries, so it is off meanwhile.
pub const CLEAR_DELIVERIES: &str = "SET FOREIGN_KEY_CHECKS = 0; TRUNCATE TABLE webhook_delivery_attempts; TRUNCATE TABLE webhook_deliveries; SET FOREIGN_KEY_CHECKS = 1";
/// Webhooks a receiver can tell apart (paths `/0` .. `/15`).
const MAX_WEBHOOKS: usize = 16;

pub struct Options<'a> {
    pub root: &'a str,
    pub port: u16,
    pub rowhook: &'a Path,
    pub work: &'a Path,
    pub runs: usize,
    /// The `delivery.max_in_flight` the throughput runs use.
    pub max_in_flight: usize,
    /// Which part runs (`--only latency` / `--only fanout`: for working on one).
    pub part: Part,
}

/// The parts of the end-to-end scenario.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Memory, throughput, latency.
    All,
    /// The latency runs alone.
    Latency,
    /// The ordering cases alone.
    Ordering,
    /// The ten-webhook throughput case alone.
    FanOut,
    /// The backfill case alone.
    Backfill,
}

/// What the receiver saw.
struct Received {
    per_webhook: Vec<AtomicU64>,
    /// Latency runs: (note id, when its request arrived).
    record_arrivals: AtomicBool,
    arrivals: Mutex<Vec<(u64, Instant)>>,
}

impl Received {
    fn total(&self) -> u64 {
        self.per_webhook.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
    fn reset(&self) {
        for c in &self.per_webhook {
            c.store(0, Ordering::Relaxed);
        }
        self.arrivals.lock().unwrap().clear();
    }
}

async fn receive(
    path: actix_web::web::Path<usize>,
    body: actix_web::web::Bytes,
    received: actix_web::web::Data<Received>,
) -> actix_web::HttpResponse {
    if let Some(counter) = received.per_webhook.get(path.into_inner()) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    if received.record_arrivals.load(Ordering::Relaxed) {
        let at = Instant::now();
        #[derive(serde::Deserialize)]
        struct Body {
            data: Data,
        }
        #[derive(serde::Deserialize)]
        struct Data {
            note_id: u64,
        }
        if let Ok(b) = serde_json::from_slice::<Body>(&body) {
            received.arrivals.lock().unwrap().push((b.data.note_id, at));
        }
    }
    actix_web::HttpResponse::Ok().finish()
}

/// How long the slow receiver (paths `/slow/N`) takes to answer: a remote endpoint.
const SLOW_ANSWER: Duration = Duration::from_millis(5);

async fn receive_slowly(
    path: actix_web::web::Path<usize>,
    body: actix_web::web::Bytes,
    received: actix_web::web::Data<Received>,
) -> actix_web::HttpResponse {
    actix_web::rt::time::sleep(SLOW_ANSWER).await;
    receive(path, body, received).await
}

/// Starts the receiver on its own thread; returns its address.
fn start_receiver(received: Arc<Received>) -> Result<std::net::SocketAddr, BoxError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let data = actix_web::web::Data::from(received);
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .app_data(data.clone())
                    .route("/{webhook}", actix_web::web::post().to(receive))
                    .route("/slow/{webhook}", actix_web::web::post().to(receive_slowly))
            })
            .workers(1)
            .listen(listener)
            .expect("receiver listens")
            .run();
            let _ = server.await;
        })
    });
    Ok(addr)
}

/// `rowhook <subcommand>` with the shipped config pointed at the benchmark's database.
fn rowhook_command(opts: &Options<'_>, subcommand: &str) -> Command {
    let mut command = Command::new(opts.rowhook);
    command
        .args([subcommand, "--config", concat!(env!("CARGO_MANIFEST_DIR"), "/config/rowhook.toml")])
        .env("ROWHOOK__SOURCE__URL", format!("{}/{DB}", opts.root))
        .env("ROWHOOK__SOURCE__SERVER_ID", (1_900_000 + std::process::id() % 1000).to_string());
    command
}

/// The rowhook process under test.
struct Daemon {
    child: Child,
    api: String,
    client: reqwest::Client,
}

impl Daemon {
    async fn start(opts: &Options<'_>, max_in_flight: usize, ordering: &str, label: &str) -> Result<Daemon, BoxError> {
        let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let log = std::fs::File::create(opts.work.join(format!("rowhook-{label}.log")))?;
        let child = rowhook_command(opts, "run")
            .env("ROWHOOK__HTTP__LISTEN", listen.to_string())
            .env("ROWHOOK__DELIVERY__ALLOW_PRIVATE_TARGETS", "true")
            .env("ROWHOOK__DELIVERY__MAX_IN_FLIGHT", max_in_flight.to_string())
            .env("ROWHOOK__DELIVERY__ORDERING", ordering)
            // The shipped log level (one line per attempt), written to a file.
            .env("ROWHOOK__LOG__LEVEL", "info")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let daemon = Daemon {
            child,
            api: format!("http://{listen}"),
            client: reqwest::Client::new(),
        };
        for _ in 0..300 {
            if let Ok(r) = daemon.client.get(format!("{}/readyz", daemon.api)).send().await {
                if r.status().is_success() {
                    return Ok(daemon);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("rowhook did not become ready; see {}", opts.work.join(format!("rowhook-{label}.log")).display()).into())
    }

    async fn add_webhook(&self, url: &str, events: &[&str]) -> Result<u64, BoxError> {
        let answer = self
            .client
            .post(format!("{}/api/webhooks", self.api))
            .json(&serde_json::json!({ "url": url, "events": events }))
            .send()
            .await?;
        if !answer.status().is_success() {
            return Err(format!("creating a webhook: {} {}", answer.status(), answer.text().await?).into());
        }
        let body: serde_json::Value = answer.json().await?;
        body["id"]
            .as_u64()
            .or_else(|| body["data"]["id"].as_u64())
            .ok_or_else(|| format!("no id in {body}").into())
    }

    async fn delete_webhook(&self, id: u64) -> Result<(), BoxError> {
        self.client.delete(format!("{}/api/webhooks/{id}", self.api)).send().await?;
        Ok(())
    }

    /// Resident set now and at its peak, in bytes (/proc/PID/status).
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .map_or(0, |kb| kb * 1024)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn stop(mut self) {
        // SIGTERM: a graceful stop, as systemd does.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Fresh source database with the reference schema.
async fn create_database(conn: &mut mysql_async::Conn) -> Result<(), BoxError> {
    conn.query_drop(format!("DROP DATABASE IF EXISTS {DB}")).await?;
    conn.query_drop(format!("CREATE DATABASE {DB}")).await?;
    conn.query_drop(format!("USE {DB}")).await?;
    crate::load_schema(conn).await?;
    // A thread for the notes to belong to.
    conn.query_drop("INSERT INTO threads (id, subject, status) VALUES (1, 'Benchmark', 'open')").await?;
    Ok(())
}

/// Threads the throughput notes belong to: each a group of its own.
const THREADS: u64 = 1_000;

/// Inserts `n` notes of [`THREADS`] threads in transactions of 100, starting at id `first`.
async fn write_notes(conn: &mut mysql_async::Conn, first: u64, n: u64) -> Result<(), BoxError> {
    let mut id = first;
    while id < first + n {
        let end = (id + 100).min(first + n);
        let values: Vec<String> = (id..end)
            .map(|k| format!("({k}, {}, {}, 'Called the customer back, note {k}')", k % THREADS + 1, k % 5 + 1))
            .collect();
        conn.query_drop(format!(
            "INSERT INTO notes (id, thread_id, user_id, content) VALUES {}",
            values.join(",")
        ))
        .await?;
        id = end;
    }
    Ok(())
}

async fn count_delivered(conn: &mut mysql_async::Conn) -> Result<u64, BoxError> {
    Ok(conn
        .query_first("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'delivered'")
        .await?
        .unwrap_or(0))
}

/// Waits until the receiver has `expected` requests and the database records
/// `expected` delivered rows (beyond `delivered_before`); `None` after `limit`.
async fn wait_all(
    conn: &mut mysql_async::Conn,
    received: &Received,
    expected: u64,
    delivered_before: u64,
    limit: Duration,
) -> Result<Option<Instant>, BoxError> {
    let deadline = Instant::now() + limit;
    // The receiver's counter first: counting rows in the database is a scan, and
    // polling it all along would load the server the benchmark measures.
    while received.total() < expected {
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while Instant::now() < deadline {
        if count_delivered(conn).await? - delivered_before >= expected {
            return Ok(Some(Instant::now()));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(None)
}

/// CPU time (user + system) a process has used so far, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ") ".
    let fields: Vec<&str> = stat.rsplit_once(") ").map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let hz = 100; // USER_HZ on Linux
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / hz)
}

/// Server counters the throughput notes report per delivery.
const SERVER_COUNTERS: [&str; 6] = ["Com_select", "Com_insert", "Com_update", "Com_update_multi", "Com_commit", "Binlog_bytes_written"];

async fn server_counters(conn: &mut mysql_async::Conn) -> Result<Vec<f64>, BoxError> {
    let rows: Vec<(String, String)> = conn
        .query(format!(
            "SHOW GLOBAL STATUS WHERE Variable_name IN ({})",
            SERVER_COUNTERS.map(|c| format!("'{c}'")).join(",")
        ))
        .await?;
    Ok(SERVER_COUNTERS
        .iter()
        .map(|c| rows.iter().find(|(k, _)| k.eq_ignore_ascii_case(c)).and_then(|(_, v)| v.parse().ok()).unwrap_or(0.0))
        .collect())
}

/// The mariadbd serving `port` (its command line names the port).
pub fn server_pid(port: u16) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline);
        (cmdline.contains("mariadbd") && cmdline.contains(&format!("--port={port}"))).then_some(pid)
    })
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub async fn run(opts: Options<'_>, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> Result<(), BoxError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut conn = mysql_async::Conn::from_url(format!("{}/", opts.root)).await?;
    create_database(&mut conn).await?;
    let migrated = rowhook_command(&opts, "migrate").output()?;
    if !migrated.status.success() {
        return Err(format!("rowhook migrate failed: {}", String::from_utf8_lossy(&migrated.stderr)).into());
    }
    let mut state = mysql_async::Conn::from_url(format!("{}/{DB}", opts.root)).await?;
    let received = Arc::new(Received {
        per_webhook: (0..MAX_WEBHOOKS).map(|_| AtomicU64::new(0)).collect(),
        record_arrivals: AtomicBool::new(false),
        arrivals: Mutex::new(Vec::new()),
    });
    let receiver = start_receiver(received.clone())?;
    let mut next_note: u64 = 1;

    if opts.part == Part::Latency {
        return latency(&opts, &mut conn, &received, receiver, next_note, rows, notes).await;
    }

    // --- Memory: idle, then 100,000 deliveries for a dead receiver ----------------------
    if opts.part == Part::All {
        say("end-to-end memory: idle, then 100,000 deliveries waiting for a dead receiver");
        let daemon = Daemon::start(&opts, opts.max_in_flight, "group", "memory").await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (idle, _) = daemon.memory();
        // A port nobody listens on: every attempt is refused at once.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let hook = daemon.add_webhook(&format!("http://{dead}/"), &["note.added"]).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        const BACKLOG: u64 = 100_000;
        write_notes(&mut conn, next_note, BACKLOG).await?;
        next_note += BACKLOG;
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut pending = 0u64;
        while Instant::now() < deadline {
            pending = state
                .exec_first(
                    "SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ? AND status = 'pending'",
                    (hook,),
                )
                .await?
                .unwrap_or(0);
            if pending >= BACKLOG {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Let it try (and fail) for a while with the backlog in place.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (now, peak) = daemon.memory();
        daemon.delete_webhook(hook).await?;
        daemon.stop();
        // TRUNCATE, not DELETE: purging deleted rows would load the next measurement.
        state.query_drop(CLEAR_DELIVERIES).await?;
        rows.push(Row {
            scenario: "Memory: rowhook idle (resident set)".into(),
            figure: mb(idle),
            reference: "target".into(),
            ratio: format!("{:.2}", idle as f64 / 30e6),
            target: format!("≤ 30 MB: {}", met(idle <= 30_000_000)),
        });
        rows.push(Row {
            scenario: format!("Memory: {} deliveries pending for a dead receiver (peak resident set)", thousands(pending as f64)),
            figure: mb(peak),
            reference: "target".into(),
            ratio: format!("{:.2}", peak as f64 / 150e6),
            target: format!("≤ 150 MB: {}", met(peak <= 150_000_000 && pending >= BACKLOG)),
        });
        notes.push(format!(
            "memory: idle {}, with the backlog {} now and {} at peak; {} of {} deliveries were pending",
            mb(idle),
            mb(now),
            mb(peak),
            thousands(pending as f64),
            thousands(BACKLOG as f64)
        ));
    }

    // --- Throughput ---------------------------------------------------------------------
    let server = server_pid(opts.port).ok_or("cannot find the mariadbd process (for its CPU time)")?;
    if opts.part == Part::Ordering {
        return ordering(&opts, &mut conn, &mut state, &received, receiver, next_note, rows, notes).await;
    }
    if opts.part == Part::Backfill {
        return backfill(&opts, &mut conn, &mut state, &received, receiver, next_note, rows, notes).await;
    }
    // The targets' cases with the benchmark's max_in_flight and the shipped ordering
    // (group), and for information strict commit order (one request at a time).
    let cases = [(1usize, 20_000u64, "group", true), (10, 5_000, "group", true), (1, 20_000, "webhook", false)];
    for (fan_out, events, ordering, has_target) in cases {
        if opts.part == Part::FanOut && fan_out == 1 {
            continue;
        }
        let max_in_flight = opts.max_in_flight;
        say(&format!(
            "end-to-end throughput: {} events to {fan_out} webhook(s), max_in_flight {max_in_flight}, ordering {ordering}",
            thousands(events as f64),
        ));
        let daemon = Daemon::start(&opts, max_in_flight, ordering, &format!("throughput-{fan_out}-{ordering}")).await?;
        let mut hooks = Vec::new();
        for k in 0..fan_out {
            hooks.push(daemon.add_webhook(&format!("http://{receiver}/{k}"), &["*"]).await?);
        }
        // The router learns of new webhooks through the binlog.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let expected = events * fan_out as u64;
        let mut rates = Vec::new();
        for _ in 0..opts.runs.min(3) {
            received.reset();
            let before = count_delivered(&mut state).await?;
            let cpu = [daemon.child.id(), server, std::process::id()].map(cpu_time);
            let counters = server_counters(&mut state).await?;
            let started = Instant::now();
            write_notes(&mut conn, next_note, events).await?;
            next_note += events;
            let written = started.elapsed();
            let Some(done) = wait_all(&mut state, &received, expected, before, Duration::from_secs(300)).await? else {
                return Err(format!(
                    "end-to-end: {} of {expected} deliveries arrived within 300 s",
                    received.total()
                )
                .into());
            };
            let elapsed = done - started;
            let cpu_after = [daemon.child.id(), server, std::process::id()].map(cpu_time);
            let per_thousand = |k: usize| (cpu_after[k] - cpu[k]).as_secs_f64() * 1e3 / (expected as f64 / 1e3);
            let counters_after = server_counters(&mut state).await?;
            let per_delivery: Vec<String> = SERVER_COUNTERS
                .iter()
                .zip(counters.iter().zip(&counters_after))
                .map(|(name, (a, b))| format!("{name} {:.0}", (b - a) * 1e3 / expected as f64))
                .collect();
            rates.push(rate(expected as usize, elapsed));
            notes.push(format!(
                "throughput {fan_out} webhook(s), max_in_flight {max_in_flight}, ordering {ordering}: {} deliveries in {:.2} s (writer done after {:.2} s); \
                 CPU per 1,000 deliveries: rowhook {:.0} ms, MariaDB {:.0} ms, writer + receiver {:.0} ms; \
                 server counters per 1,000 deliveries: {}",
                thousands(expected as f64),
                elapsed.as_secs_f64(),
                written.as_secs_f64(),
                per_thousand(0),
                per_thousand(1),
                per_thousand(2),
                per_delivery.join(", ")
            ));
        }
        let figure = median(rates.clone());
        let target = if fan_out == 1 { 5_000.0 } else { 10_000.0 };
        rows.push(Row {
            scenario: format!(
                "End-to-end: {} events of {THREADS} threads to {fan_out} webhook{} (all recorded delivered), max_in_flight {max_in_flight}, ordering {ordering}{}",
                thousands(events as f64),
                if fan_out == 1 { "" } else { "s" },
                if has_target { "" } else { " (strict commit order, one request at a time)" }
            ),
            figure: format!("{} deliveries/s", thousands(figure)),
            reference: if has_target { "target".into() } else { "(information)".into() },
            ratio: if has_target { format!("{:.2}", figure / target) } else { String::new() },
            target: if has_target { format!("≥ {}/s: {}", thousands(target), met(figure >= target)) } else { String::new() },
        });
        for hook in hooks {
            daemon.delete_webhook(hook).await?;
        }
        daemon.stop();
        // TRUNCATE, not DELETE: purging deleted rows would load the next measurement.
        state.query_drop(CLEAR_DELIVERIES).await?;
    }
    if opts.part == Part::FanOut {
        return Ok(());
    }
    ordering(&opts, &mut conn, &mut state, &received, receiver, next_note, rows, notes).await?;
    next_note += ORDERING_NOTES;
    backfill(&opts, &mut conn, &mut state, &received, receiver, next_note, rows, notes).await?;
    next_note += BACKFILL_PROBES;

    latency(&opts, &mut conn, &received, receiver, next_note, rows, notes).await
}

/// Notes the ordering scenario writes in all.
const ORDERING_NOTES: u64 = 2 * (20_000 + 2_000);

/// One webhook with `ordering = "group"` and one with `"webhook"`, each alone,
/// to the fast receiver (20,000 notes) and to the 5 ms one (2,000 notes);
/// the same notes of [`THREADS`] threads. Group order is per thread, strict
/// order one request at a time.
#[allow(clippy::too_many_arguments)]
async fn ordering(
    opts: &Options<'_>,
    conn: &mut mysql_async::Conn,
    state: &mut mysql_async::Conn,
    received: &Received,
    receiver: std::net::SocketAddr,
    first: u64,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> Result<(), BoxError> {
    let mut next = first;
    let mut figures: HashMap<(&str, &str), f64> = HashMap::new();
    for (answer, path, events) in [("fast", "", 20_000u64), ("5 ms", "slow/", 2_000)] {
        for ordering in ["group", "webhook"] {
            say(&format!("ordering: {} events to one webhook, ordering {ordering}, {answer} receiver", thousands(events as f64)));
            let daemon = Daemon::start(opts, opts.max_in_flight, ordering, &format!("ordering-{ordering}-{}", path.trim_end_matches('/'))).await?;
            let hook = daemon.add_webhook(&format!("http://{receiver}/{path}0"), &["note.added"]).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            received.reset();
            let before = count_delivered(state).await?;
            let started = Instant::now();
            write_notes(conn, next, events).await?;
            next += events;
            let Some(done) = wait_all(state, received, events, before, Duration::from_secs(300)).await? else {
                return Err(format!("ordering {ordering}: {} of {events} deliveries arrived within 300 s", received.total()).into());
            };
            let figure = rate(events as usize, done - started);
            notes.push(format!(
                "ordering {ordering}, {answer} receiver: {} deliveries in {:.2} s",
                thousands(events as f64),
                (done - started).as_secs_f64()
            ));
            figures.insert((ordering, answer), figure);
            daemon.delete_webhook(hook).await?;
            daemon.stop();
            state.query_drop(CLEAR_DELIVERIES).await?;
        }
    }
    for answer in ["fast", "5 ms"] {
        let (group, strict) = (figures[&("group", answer)], figures[&("webhook", answer)]);
        let (wanted, target) = if answer == "fast" { (1.0, "≥ 1x strict") } else { (3.0, "≥ 3x strict") };
        rows.push(Row {
            scenario: format!(
                "Ordering: one webhook, notes of {THREADS} threads, {answer} receiver: ordering \"group\" (max_in_flight {}) beside \"webhook\"",
                opts.max_in_flight
            ),
            figure: format!("{} deliveries/s", thousands(group)),
            reference: format!("strict {}/s", thousands(strict)),
            ratio: format!("{:.2}", group / strict),
            target: format!("{target}: {}", met(group >= wanted * strict)),
        });
    }
    Ok(())
}

/// Threads a backfill copies.
const BACKFILL_ROWS: u64 = 100_000;
/// Live notes written while it runs (one per transaction), at most.
const BACKFILL_PROBES: u64 = 60_000;
/// ... at this rate.
const PROBE_RATE: u64 = 100;

/// A backfill of [`BACKFILL_ROWS`] threads to one webhook (the fast
/// receiver), while live notes go to the same webhook at [`PROBE_RATE`]/s:
/// the backfill's rows per second (until every row is recorded delivered)
/// and the live notes' commit-to-receipt latency meanwhile.
#[allow(clippy::too_many_arguments)]
async fn backfill(
    opts: &Options<'_>,
    conn: &mut mysql_async::Conn,
    state: &mut mysql_async::Conn,
    received: &Received,
    receiver: std::net::SocketAddr,
    first: u64,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> Result<(), BoxError> {
    say(&format!("backfill: {} threads to one webhook while live notes arrive at {PROBE_RATE}/s", thousands(BACKFILL_ROWS as f64)));
    let daemon = Daemon::start(opts, opts.max_in_flight, "group", "backfill").await?;
    // The threads exist before the webhook does: they reach it only by the backfill.
    let base: u64 = 1_000_000;
    for start in (0..BACKFILL_ROWS).step_by(1000) {
        let values: Vec<String> = (start..(start + 1000).min(BACKFILL_ROWS))
            .map(|k| format!("({}, 'Backfilled thread {k}', 'open')", base + k))
            .collect();
        conn.query_drop(format!("INSERT INTO threads (id, subject, status) VALUES {}", values.join(","))).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // the reader passes them (nobody subscribed yet)
    let hook = daemon.add_webhook(&format!("http://{receiver}/0"), &["thread.created", "note.added"]).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    received.reset();
    received.record_arrivals.store(true, Ordering::Relaxed);
    let before = count_delivered(state).await?;
    let started = Instant::now();
    let answer: serde_json::Value = daemon
        .client
        .post(format!("{}/api/webhooks/{hook}/backfills", daemon.api))
        .json(&serde_json::json!({"event_type": "thread.created"}))
        .send()
        .await?
        .json()
        .await?;
    let id = answer["data"]["id"].as_u64().ok_or_else(|| format!("backfill refused: {answer}"))?;
    // Live notes, one per transaction, until the backfill's rows are all delivered.
    let mut committed: HashMap<u64, Instant> = HashMap::new();
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / PROBE_RATE));
    let mut done_at = None;
    for note in first..first + BACKFILL_PROBES {
        ticker.tick().await;
        conn.exec_drop("INSERT INTO notes (id, thread_id, user_id, content) VALUES (?, 1, 1, 'live during a backfill')", (note,)).await?;
        committed.insert(note, Instant::now());
        if note % PROBE_RATE == 0 {
            let state_now: serde_json::Value =
                daemon.client.get(format!("{}/api/webhooks/{hook}/backfills/{id}", daemon.api)).send().await?.json().await?;
            let done = state_now["data"]["state"] == "done";
            if done && count_delivered(state).await? - before >= BACKFILL_ROWS {
                done_at = Some(Instant::now());
                break;
            }
            if state_now["data"]["state"] == "failed" {
                return Err(format!("backfill failed: {state_now}").into());
            }
        }
    }
    let Some(done_at) = done_at else {
        return Err(format!("backfill of {BACKFILL_ROWS} rows not done within {} s", BACKFILL_PROBES / PROBE_RATE).into());
    };
    // The last probes' deliveries.
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.arrivals.lock().unwrap().len() < committed.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    received.record_arrivals.store(false, Ordering::Relaxed);
    let latencies: Vec<f64> = received
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(note, at)| committed.get(note).map(|c| if at >= c { at.duration_since(*c).as_secs_f64() * 1e3 } else { 0.0 }))
        .collect();
    let elapsed = done_at - started;
    let rate_figure = rate(BACKFILL_ROWS as usize, elapsed);
    let p = Percentiles::of(latencies.clone());
    notes.push(format!(
        "backfill of {} threads: {:.2} s until every row was recorded delivered; {} live notes meanwhile, latency p50 / p90 / p99 / max {:.2} / {:.2} / {:.2} / {:.2} ms",
        thousands(BACKFILL_ROWS as f64),
        elapsed.as_secs_f64(),
        latencies.len(),
        p.p50,
        p.p90,
        p.p99,
        p.max
    ));
    rows.push(Row {
        scenario: format!("Backfill: {} threads to one webhook (fast receiver), rows recorded delivered", thousands(BACKFILL_ROWS as f64)),
        figure: format!("{} rows/s", thousands(rate_figure)),
        reference: "target".into(),
        ratio: format!("{:.2}", rate_figure / 20_000.0),
        target: format!("≥ 20,000 rows/s: {}", met(rate_figure >= 20_000.0)),
    });
    rows.push(Row {
        scenario: format!("Backfill: live notes to the same webhook meanwhile ({PROBE_RATE}/s), p99"),
        figure: format!("{:.2} ms", p.p99),
        reference: format!("p50 {:.2} ms", p.p50),
        ratio: String::new(),
        target: format!("≤ 50 ms: {}", met(p.p99 <= 50.0)),
    });
    daemon.delete_webhook(hook).await?;
    daemon.stop();
    state.query_drop(CLEAR_DELIVERIES).await?;
    Ok(())
}

/// Commit-to-receipt latency at a steady rate, with the shipped settings:
/// several runs of [`LATENCY_SECONDS`] each; the table has the medians of their percentiles.
async fn latency(
    opts: &Options<'_>,
    conn: &mut mysql_async::Conn,
    received: &Received,
    receiver: std::net::SocketAddr,
    first: u64,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> Result<(), BoxError> {
    const RATE: u64 = 500;
    let runs = opts.runs.clamp(1, 3);
    say(&format!("end-to-end latency: one note per transaction at {RATE}/s, {runs} runs of {LATENCY_SECONDS} s, then the floor"));
    let mut next = first;
    // The shipped settings (ordering group, max_in_flight 16).
    let daemon = Daemon::start(opts, 16, "group", "latency").await?;
    let hook = daemon.add_webhook(&format!("http://{receiver}/0"), &["note.added"]).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut per_run: Vec<Percentiles> = Vec::new();
    for _ in 0..runs {
        let latencies = latency_run(conn, received, next, RATE).await?;
        next += RATE * LATENCY_SECONDS;
        per_run.push(Percentiles::of(latencies));
    }
    daemon.delete_webhook(hook).await?;
    let (_, peak) = daemon.memory();
    daemon.stop();
    // Then the floor, with rowhook stopped and its webhook gone (a later rowhook would
    // deliver these notes from its checkpoint, and the ones written before it started).
    let mut floor: Vec<Percentiles> = Vec::new();
    for run in 0..runs {
        let probe = floor_task(opts.root.to_string(), receiver, next, RATE * LATENCY_SECONDS, run as u32);
        let probe = tokio::spawn(async move { probe.await.map_err(|e| e.to_string()) });
        tokio::time::sleep(Duration::from_millis(300)).await; // connected and waiting
        let latencies = latency_run(conn, received, next, RATE).await;
        if probe.is_finished() {
            if let Ok(Err(e)) = probe.await {
                return Err(format!("latency floor probe: {e}").into());
            }
        } else {
            probe.abort();
        }
        floor.push(Percentiles::of(latencies?));
        next += RATE * LATENCY_SECONDS;
    }
    let p50 = median(per_run.iter().map(|p| p.p50).collect());
    let p99 = median(per_run.iter().map(|p| p.p99).collect());
    let floor_p50 = median(floor.iter().map(|p| p.p50).collect());
    let floor_p99 = median(floor.iter().map(|p| p.p99).collect());
    rows.push(Row {
        scenario: format!(
            "Latency: commit to receipt at a steady {RATE} events/s ({runs} runs of {} events, the shipped ordering and max_in_flight), p50",
            thousands((RATE * LATENCY_SECONDS) as f64)
        ),
        figure: format!("{p50:.2} ms"),
        reference: format!("floor {floor_p50:.2} ms"),
        ratio: format!("{:.2}", p50 / floor_p50),
        target: format!("≤ 5 ms: {}", met(p50 <= 5.0)),
    });
    rows.push(Row {
        scenario: "Latency: same runs, p99".into(),
        figure: format!("{p99:.2} ms"),
        reference: format!("floor {floor_p99:.2} ms"),
        ratio: format!("{:.2}", p99 / floor_p99),
        target: format!("≤ 50 ms: {}", met(p99 <= 50.0)),
    });
    let list = |runs: &[Percentiles]| {
        runs.iter().map(|p| format!("{:.2} / {:.2} / {:.2} / {:.2}", p.p50, p.p90, p.p99, p.max)).collect::<Vec<_>>().join("; ")
    };
    notes.push(format!(
        "latency per run (p50 / p90 / p99 / max, ms): rowhook {}; floor (binlog event, one INSERT, POST; no rowhook) {}; \
         rowhook's peak resident set over the throughput and latency runs {}",
        list(&per_run),
        list(&floor),
        mb(peak)
    ));
    Ok(())
}

/// How long one latency run writes.
const LATENCY_SECONDS: u64 = 10;

/// One latency run: `rate` notes per second (one per transaction) from id `first`;
/// returns each note's commit-to-receipt time in ms.
async fn latency_run(conn: &mut mysql_async::Conn, received: &Received, first: u64, rate: u64) -> Result<Vec<f64>, BoxError> {
    received.reset();
    received.record_arrivals.store(true, Ordering::Relaxed);
    let mut committed: HashMap<u64, Instant> = HashMap::new();
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let expected = rate * LATENCY_SECONDS;
    for id in first..first + expected {
        ticker.tick().await;
        conn.exec_drop("INSERT INTO notes (id, thread_id, user_id, content) VALUES (?, 1, 1, 'latency probe')", (id,))
            .await?;
        committed.insert(id, Instant::now());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.total() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    received.record_arrivals.store(false, Ordering::Relaxed);
    let latencies: Vec<f64> = received
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(id, at)| {
            committed.get(id).map(|c| {
                // The receiver can read a request before the writer's COMMIT returns.
                if *at >= *c {
                    at.duration_since(*c).as_secs_f64() * 1e3
                } else {
                    -(c.duration_since(*at).as_secs_f64() * 1e3)
                }
            })
        })
        .collect();
    if (latencies.len() as u64) < expected {
        return Err(format!("latency: {} of {expected} probes arrived within 60 s", latencies.len()).into());
    }
    Ok(latencies)
}

/// The floor under the latency on this machine: what the hops rowhook cannot
/// avoid cost here, measured like rowhook. A bare replica client in this
/// process that, for each transaction with a `notes` row (the `n`-th is note
/// `first + n`), receives the binlog events, makes one INSERT round trip (as
/// rowhook stores the delivery before sending it) and POSTs the note id to
/// the receiver over a kept-alive connection. Decoding, mapping, signing, the
/// actors and the recording are what rowhook adds on top.
async fn floor_task(root: String, receiver: std::net::SocketAddr, first: u64, count: u64, run: u32) -> Result<(), BoxError> {
    let mut scratch = mysql_async::Conn::from_url(format!("{root}/{DB}")).await?;
    scratch
        .query_drop("CREATE TABLE IF NOT EXISTS floor_probe (id BIGINT AUTO_INCREMENT PRIMARY KEY, body JSON NOT NULL)")
        .await?;
    let status: mysql_async::Row = scratch.query_first("SHOW MASTER STATUS").await?.ok_or("binary log off")?;
    let (file, pos): (String, u64) = (status.get(0).ok_or("file")?, status.get(1).ok_or("position")?);
    let replica = mysql_async::Conn::from_url(format!("{root}/")).await?;
    let request = mysql_async::BinlogStreamRequest::new(1_950_000 + run).with_filename(file.as_bytes()).with_pos(pos);
    let mut stream = replica.get_binlog_stream(request).await?;
    let client = reqwest::Client::new();
    let url = format!("http://{receiver}/0");
    const TABLE_MAP_EVENT: u8 = 19;
    const XID_EVENT: u8 = 16;
    let (mut seen, mut has_note) = (0, false);
    while let Some(event) = futures_util::StreamExt::next(&mut stream).await {
        let event = event?;
        match event.header().event_type_raw() {
            TABLE_MAP_EVENT => {
                let map: mysql_async::binlog::events::TableMapEvent<'_> = event.read_event()?;
                has_note |= map.table_name() == "notes";
            }
            XID_EVENT if has_note => {
                has_note = false;
                let body = format!(r#"{{"data":{{"note_id":{}}}}}"#, first + seen);
                scratch.exec_drop("INSERT INTO floor_probe (body) VALUES (?)", (&body,)).await?;
                client.post(&url).body(body).send().await?;
                seen += 1;
                if seen == count {
                    break;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Percentiles of one latency run, in ms.
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Percentiles {
    fn of(mut latencies: Vec<f64>) -> Percentiles {
        latencies.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
        Percentiles { p50: at(0.50), p90: at(0.90), p99: at(0.99), max: at(1.0) }
    }
}

/// Where `cargo build --release` puts the binary.
pub fn default_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("release/rowhook")
}
