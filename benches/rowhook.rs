//! `make bench`: rowhook's speed, measured beside references in the same run.
//!
//! Run through `scripts/bench.sh` (which starts a private MariaDB and the
//! Python peer's venv), not by hand:
//!
//! ```text
//! cargo bench --bench rowhook -- --port PORT [--python VENV/bin/python] [--runs 5] [--out docs/benchmarks.md]
//! ```
//!
//! 1. Generates the workloads: 200,000 rows of the reference schema in 2,000
//!    transactions (one binlog file), then 200,000 rows of an unmapped table
//!    (the next file).
//! 2. Catch-up decode: rowhook's [`Decoder`] fed from a mysql_async binlog
//!    stream exactly as the reader actor does, every event body built, no
//!    state writes; reference: `mariadb-binlog --read-from-remote-server --raw`
//!    of the same file.
//! 3. Peer: python-mysql-replication decoding (and skipping) the same files.
//! 4. Durable enqueue: the decoded events through [`Store::enqueue`] and
//!    [`Store::save_checkpoint`] in the router's batches (1,000 events).
//! 5. End-to-end (`e2e`): the released binary delivering to a local receiver:
//!    throughput with one and ten webhooks, commit-to-receipt latency at a
//!    steady rate, memory idle and with 100,000 deliveries pending
//!    (`--only latency` runs the latency part alone, `--only fanout` the
//!    ten-webhook throughput case).
//!
//! Every figure is the median of several runs; the table goes to stdout and
//! between the markers of `docs/benchmarks.md`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mysql_async::prelude::*;
use mysql_async::BinlogStreamRequest;

use rowhook::config::Config;
use rowhook::events::envelope::{events_of, OutgoingEvent};
use rowhook::source::decoder::{Decoded, Decoder, Position};
use rowhook::events::mapping::Mapper;
use rowhook::source::schema::{self, TableSchema};
use rowhook::state::store::{NewDelivery, Store};

mod e2e;
mod machine;

type BoxError = Box<dyn std::error::Error>;

const DB: &str = "bench_helpdesk";
const STATE_DB: &str = "bench_state";
const ROWS_PER_TRANSACTION: usize = 100;
const BEGIN_MARK: &str = "<!-- bench:begin (written by `make bench`; edit outside the markers) -->";
const END_MARK: &str = "<!-- bench:end -->";

struct Args {
    port: u16,
    python: Option<PathBuf>,
    runs: usize,
    rows: usize,
    out: Option<PathBuf>,
    work: PathBuf,
    /// Scenarios to run (all when empty): decode, skip, peer, enqueue, e2e.
    only: Vec<String>,
    /// Reuse the workload of the previous run (same server) instead of generating it.
    reuse: bool,
    /// The release binary the end-to-end scenarios run.
    rowhook: PathBuf,
    /// `delivery.max_in_flight` for the end-to-end throughput runs.
    max_in_flight: usize,
}

impl Args {
    fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == scenario)
    }
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        port: 0,
        python: None,
        runs: 5,
        rows: 200_000,
        out: None,
        work: PathBuf::from("target/bench/work"),
        only: Vec::new(),
        reuse: false,
        rowhook: e2e::default_binary(),
        max_in_flight: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--port" => args.port = value()?.parse()?,
            "--python" => args.python = Some(PathBuf::from(value()?)),
            "--runs" => args.runs = value()?.parse()?,
            "--rows" => args.rows = value()?.parse()?,
            "--out" => args.out = Some(PathBuf::from(value()?)),
            "--work" => args.work = PathBuf::from(value()?),
            "--only" => args.only = value()?.split(',').map(str::to_string).collect(),
            "--reuse" => args.reuse = true,
            "--rowhook" => args.rowhook = PathBuf::from(value()?),
            "--max-in-flight" => args.max_in_flight = value()?.parse()?,
            "--bench" => {} // added by `cargo bench`
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rowhook bench: {e}");
            std::process::exit(2);
        }
    };
    if args.port == 0 {
        // `cargo test --all-targets` runs bench targets too: nothing to do without a server.
        eprintln!("rowhook bench: run it with `make bench` (it needs --port PORT of a MariaDB started by scripts/bench.sh)");
        return;
    }
    // The reader actor runs on actix's single-threaded runtime: so does this.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("rowhook bench failed: {e}");
        std::process::exit(1);
    }
}

/// One line of the result table.
struct Row {
    scenario: String,
    figure: String,
    reference: String,
    ratio: String,
    target: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// 1234567.0 -> "1,234,567".
fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn say(text: &str) {
    eprintln!("[bench] {text}");
}

struct Workload {
    mapped_file: String,
    mapped_size: u64,
    unmapped_file: String,
    unmapped_size: u64,
    rows: usize,
}

impl Workload {
    fn to_text(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.mapped_file, self.mapped_size, self.unmapped_file, self.unmapped_size, self.rows
        )
    }

    fn parse(text: &str) -> Option<Workload> {
        let mut it = text.split_whitespace();
        Some(Workload {
            mapped_file: it.next()?.to_string(),
            mapped_size: it.next()?.parse().ok()?,
            unmapped_file: it.next()?.to_string(),
            unmapped_size: it.next()?.parse().ok()?,
            rows: it.next()?.parse().ok()?,
        })
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    let root = format!("mysql://root@127.0.0.1:{}", args.port);
    let total_start = Instant::now();
    let server = e2e::server_pid(args.port);
    let probe_start = machine::speed_probe();
    let load_start = machine::Snapshot::take(server);
    let mut conn = mysql_async::Conn::from_url(format!("{root}/")).await?;
    let version: String = conn.query_first("SELECT @@version").await?.unwrap_or_default();

    say(&format!(
        "generating {} rows of the reference schema and {} of an unmapped table",
        args.rows, args.rows
    ));
    let t = Instant::now();
    std::fs::create_dir_all(&args.work)?;
    let saved = args.work.join("workload.txt");
    let workload = match std::fs::read_to_string(&saved)
        .ok()
        .filter(|_| args.reuse)
        .and_then(|s| Workload::parse(&s))
    {
        Some(w) => w,
        None => {
            let w = generate(&mut conn, args.rows).await?;
            std::fs::write(&saved, w.to_text())?;
            w
        }
    };
    say(&format!(
        "workload ready in {:.1} s: {} ({:.1} MB), {} ({:.1} MB)",
        t.elapsed().as_secs_f64(),
        workload.mapped_file,
        workload.mapped_size as f64 / 1e6,
        workload.unmapped_file,
        workload.unmapped_size as f64 / 1e6
    ));

    let config_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rowhook.toml");
    let config = Config::from_toml(&std::fs::read_to_string(&config_path)?)?;
    let mapper = Arc::new(Mapper::new(&config.events));
    let names: Vec<String> = rowhook::source::decoder::RowMapper::tables(&*mapper);
    let mut info = mysql_async::Conn::from_url(format!("{root}/{DB}")).await?;
    let tables = schema::load_tables(&mut info, DB, &names, true).await?;
    let source = Source {
        url: format!("{root}/{DB}"),
        mapper: mapper.clone(),
        tables,
    };

    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let runs = args.runs.max(1);

    // --- Catch-up decode -------------------------------------------------------------
    say("catch-up decode: rowhook vs mariadb-binlog --raw (same file)");
    let mut decode_rates = Vec::new();
    let mut events_per_run = 0;
    let mut body_bytes = 0;
    // One read at least: the peer's comparison and the enqueue need its figure and events.
    let decode_runs = if args.wants("decode") { runs } else { 1 };
    // An untimed first read keeps the events (for the enqueue) and warms the server's caches.
    let events_kept: Vec<OutgoingEvent> = source.read(&workload.mapped_file, workload.mapped_size, 99, true).await?.kept;
    for i in 0..decode_runs {
        let r = source
            .read(&workload.mapped_file, workload.mapped_size, 100 + i as u32, false)
            .await?;
        if r.rows != workload.rows {
            return Err(format!("rowhook saw {} mapped rows, the workload has {}", r.rows, workload.rows).into());
        }
        decode_rates.push(rate(r.rows, r.elapsed));
        events_per_run = r.events;
        body_bytes = r.body_bytes;
    }
    let decode = median(decode_rates.clone());
    say(&format!("rowhook decode median {} rows/s", thousands(decode)));
    if args.wants("decode") {
        let raw_mapped = median(repeat(runs, || {
            mariadb_binlog(args.port, &workload.mapped_file, &args.work, "--raw")
        })?)
        .recip()
            * workload.rows as f64;
        let plain_mapped = median(repeat(runs.min(3), || {
            mariadb_binlog(args.port, &workload.mapped_file, &args.work, "plain")
        })?)
        .recip()
            * workload.rows as f64;
        let vv_mapped = median(repeat(runs.min(3), || {
            mariadb_binlog(args.port, &workload.mapped_file, &args.work, "-vv")
        })?)
        .recip()
            * workload.rows as f64;
        rows.push(Row {
            scenario: format!(
                "Catch-up decode: {} helpdesk rows, every event body built ({} events)",
                thousands(workload.rows as f64),
                thousands(events_per_run as f64)
            ),
            figure: format!("{} rows/s", thousands(decode)),
            reference: format!("`mariadb-binlog --raw` {} rows/s", thousands(raw_mapped)),
            ratio: format!("{:.2}", decode / raw_mapped),
            target: format!("≥ 200,000 rows/s: {}", met(decode >= 200_000.0)),
        });
        rows.push(Row {
            scenario: "  context: `mariadb-binlog` text dump / `-vv` row decoding, same file".into(),
            figure: format!("{} / {} rows/s", thousands(plain_mapped), thousands(vv_mapped)),
            reference: "(information)".into(),
            ratio: format!("rowhook {:.2}× `-vv`", decode / vv_mapped),
            target: String::new(),
        });
        notes.push(format!(
            "catch-up decode per run (rows/s): {}; event bodies {:.1} MB per run",
            decode_rates.iter().map(|r| thousands(*r)).collect::<Vec<_>>().join(", "),
            body_bytes as f64 / 1e6
        ));
    }

    let mut skip = 0.0;
    if args.wants("skip") {
        say("skipping rows of an unmapped table: rowhook vs mariadb-binlog --raw");
        let mut skip_rates = Vec::new();
        for i in 0..runs {
            let r = source
                .read(&workload.unmapped_file, workload.unmapped_size, 200 + i as u32, false)
                .await?;
            skip_rates.push(rate(workload.rows, r.elapsed));
        }
        let raw_unmapped = median(repeat(runs, || {
            mariadb_binlog(args.port, &workload.unmapped_file, &args.work, "--raw")
        })?)
        .recip()
            * workload.rows as f64;
        skip = median(skip_rates.clone());
        rows.push(Row {
            scenario: format!("Catch-up skip: {} rows of an unmapped table", thousands(workload.rows as f64)),
            figure: format!("{} rows/s", thousands(skip)),
            reference: format!("`mariadb-binlog --raw` {} rows/s", thousands(raw_unmapped)),
            ratio: format!("{:.2}", skip / raw_unmapped),
            target: format!("≥ 0.70 of raw: {}", met(skip >= 0.7 * raw_unmapped)),
        });
        notes.push(format!(
            "skip per run (rows/s): {}",
            skip_rates.iter().map(|r| thousands(*r)).collect::<Vec<_>>().join(", ")
        ));
    }

    // --- Peer ---------------------------------------------------------------------------
    let mut peer_version = String::from("not run");
    if let Some(python) = args.python.as_ref().filter(|_| args.wants("peer")) {
        peer_version = python_package_version(python);
        let peer_runs = runs.min(3);
        say(&format!(
            "peer: python-mysql-replication {peer_version}, {peer_runs} runs (about 15 s each)"
        ));
        let mut peer_rates = Vec::new();
        for _ in 0..peer_runs {
            let (n, secs) = python_peer(python, args.port, &workload.mapped_file, "decode")?;
            if n != workload.rows {
                return Err(format!("python-mysql-replication saw {n} rows, the workload has {}", workload.rows).into());
            }
            peer_rates.push(n as f64 / secs);
        }
        let peer = median(peer_rates.clone());
        rows.push(Row {
            scenario: "Peer: python-mysql-replication decoding the same helpdesk file (rows only, no event bodies)".into(),
            figure: format!("{} rows/s", thousands(peer)),
            reference: format!("rowhook {} rows/s", thousands(decode)),
            ratio: format!("rowhook {:.1}× faster", decode / peer),
            target: format!("rowhook ≥ 20×: {}", met(decode >= 20.0 * peer)),
        });
        let mut peer_skip = Vec::new();
        for _ in 0..peer_runs {
            let (_, secs) = python_peer(python, args.port, &workload.unmapped_file, "skip")?;
            peer_skip.push(workload.rows as f64 / secs);
        }
        let peer_skip = median(peer_skip);
        let skip = if skip > 0.0 {
            skip
        } else {
            rate(
                workload.rows,
                source
                    .read(&workload.unmapped_file, workload.unmapped_size, 299, false)
                    .await?
                    .elapsed,
            )
        };
        rows.push(Row {
            scenario: "Peer: python-mysql-replication skipping the unmapped table (`only_tables`)".into(),
            figure: format!("{} rows/s", thousands(peer_skip)),
            reference: format!("rowhook {} rows/s", thousands(skip)),
            ratio: format!("rowhook {:.1}× faster", skip / peer_skip),
            target: String::new(),
        });
        notes.push(format!(
            "peer decode per run (rows/s): {}",
            peer_rates.iter().map(|r| thousands(*r)).collect::<Vec<_>>().join(", ")
        ));
    }

    // --- Durable enqueue ---------------------------------------------------------------
    if args.wants("enqueue") {
        say("durable enqueue: Store::enqueue and Store::save_checkpoint in the router's batches");
        let store = Store::connect(&format!("{root}/{STATE_DB}")).await?;
        store.migrate().await?;
        let webhooks: Vec<u64> = {
            let mut ids = Vec::new();
            for k in 0..10 {
                let view = store
                    .create_webhook(
                        &format!("http://127.0.0.1:9/{k}"),
                        &["*".to_string()],
                        "whsec_benchbenchbenchbench",
                        true,
                        None,
                    )
                    .await?;
                ids.push(view.id);
            }
            ids
        };
        // 50,000 deliveries per run, whatever the fan-out.
        const DELIVERIES: usize = 50_000;
        let mut state = mysql_async::Conn::from_url(format!("{root}/{STATE_DB}")).await?;
        for (label, fsync) in [
            ("server fsync per commit (innodb_flush_log_at_trx_commit=1, sync_binlog=1)", true),
            ("test recipe: no fsync per commit (=0, =0)", false),
        ] {
            let setting = if fsync { 1 } else { 0 };
            state
                .query_drop(format!(
                    "SET GLOBAL innodb_flush_log_at_trx_commit = {setting}, GLOBAL sync_binlog = {setting}"
                ))
                .await?;
            for fan_out in [1usize, 10] {
                let enqueue_events = &events_kept[..events_kept.len().min(DELIVERIES / fan_out)];
                let mut rates = Vec::new();
                for _ in 0..runs.min(3) {
                    state.query_drop(e2e::CLEAR_DELIVERIES).await?;
                    let (n, elapsed) = enqueue(&store, enqueue_events, &webhooks[..fan_out], &workload.mapped_file).await?;
                    rates.push(rate(n, elapsed));
                }
                let figure = median(rates.clone());
                rows.push(Row {
                    scenario: format!(
                        "Durable enqueue: {} events × {} webhook{}, {label}",
                        thousands(enqueue_events.len() as f64),
                        fan_out,
                        if fan_out == 1 { "" } else { "s" }
                    ),
                    figure: format!("{} deliveries/s", thousands(figure)),
                    reference: "target".into(),
                    ratio: format!("{:.2}", figure / 20_000.0),
                    target: format!("≥ 20,000/s: {}", met(figure >= 20_000.0)),
                });
                notes.push(format!(
                    "enqueue ({fan_out} webhooks, fsync {}) per run (deliveries/s): {}",
                    if fsync { "on" } else { "off" },
                    rates.iter().map(|r| thousands(*r)).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        state
            .query_drop("SET GLOBAL innodb_flush_log_at_trx_commit = 0, GLOBAL sync_binlog = 0")
            .await?;
        state.query_drop(e2e::CLEAR_DELIVERIES).await?;
        drop(state);
        store.disconnect().await;
    }

    // --- End-to-end: delivery throughput, latency, memory ----------------------------------
    if args.wants("e2e") || args.wants("latency") || args.wants("fanout") || args.wants("ordering") || args.wants("backfill") {
        let options = e2e::Options {
            root: &root,
            port: args.port,
            rowhook: &args.rowhook,
            work: &args.work,
            runs,
            max_in_flight: args.max_in_flight,
            part: if args.wants("e2e") {
                e2e::Part::All
            } else if args.wants("latency") {
                e2e::Part::Latency
            } else if args.wants("ordering") {
                e2e::Part::Ordering
            } else if args.wants("backfill") {
                e2e::Part::Backfill
            } else {
                e2e::Part::FanOut
            },
        };
        e2e::run(options, &mut rows, &mut notes).await?;
    }

    let load_end = machine::Snapshot::take(server);
    let load = machine::describe(load_start, load_end, probe_start, machine::speed_probe());
    let elapsed = total_start.elapsed();
    let report = render(&rows, &notes, &version, &peer_version, runs, elapsed, &load);
    println!("{report}");
    if let Some(out) = &args.out {
        write_report(out, &report)?;
        say(&format!("written to {}", out.display()));
    }
    Ok(())
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn repeat(n: usize, mut f: impl FnMut() -> Result<Duration, BoxError>) -> Result<Vec<f64>, BoxError> {
    (0..n).map(|_| f().map(|d| d.as_secs_f64())).collect()
}

/// The mapped tables' source, for [`Source::read`].
struct Source {
    url: String,
    mapper: Arc<Mapper>,
    tables: HashMap<String, TableSchema>,
}

struct ReadResult {
    elapsed: Duration,
    rows: usize,
    events: usize,
    body_bytes: usize,
    kept: Vec<OutgoingEvent>,
}

impl Source {
    /// Reads `file` from its start to `end` as the reader actor does (connect,
    /// MariaDB capability, binlog dump, every event through the Decoder).
    /// Timed from before the connection to the last event of the file.
    async fn read(&self, file: &str, end: u64, server_id: u32, keep: bool) -> Result<ReadResult, BoxError> {
        let started = Instant::now();
        let mut conn = mysql_async::Conn::from_url(&self.url).await?;
        conn.query_drop("SET @mariadb_slave_capability = 4").await?;
        conn.query_drop(format!("SET @master_heartbeat_period = {}", 5_000_000_000u64))
            .await?;
        let request = BinlogStreamRequest::new(server_id).with_filename(file.as_bytes()).with_pos(4u64);
        let mut stream = conn.get_binlog_stream(request).await?;
        let mut decoder = Decoder::new(
            self.mapper.clone(),
            DB,
            self.tables.clone(),
            Position {
                file: file.to_string(),
                pos: 4,
            },
        );
        let (mut rows, mut events, mut body_bytes, mut kept) = (0, 0, 0, Vec::new());
        while let Some(event) = stream.next().await {
            let event = event?;
            let decoded = decoder.feed(&event, |id| stream.get_tme(id))?;
            if let Decoded::Commit(t) | Decoded::Partial(t) = decoded {
                // Decoding and the events stage, as the reader and the router run them.
                let mapped = events_of(&t, 0);
                rows += t.rows_by_table.iter().map(|(_, _, n)| n).sum::<usize>();
                events += mapped.len();
                body_bytes += mapped.iter().map(|e| e.body.len()).sum::<usize>();
                if keep {
                    kept.extend(mapped);
                }
            }
            let at = decoder.position();
            if at.file != file || at.pos >= end {
                break;
            }
        }
        let elapsed = started.elapsed();
        drop(stream);
        Ok(ReadResult {
            elapsed,
            rows,
            events,
            body_bytes,
            kept,
        })
    }
}

/// The router's way: batches of 1,000 events, each stored (new rows' ids read back) and then the checkpoint.
async fn enqueue(store: &Store, events: &[OutgoingEvent], webhooks: &[u64], file: &str) -> Result<(usize, Duration), BoxError> {
    let started = Instant::now();
    let mut n = 0;
    for (k, chunk) in events.chunks(1000).enumerate() {
        let deliveries: Vec<NewDelivery<'_>> = chunk
            .iter()
            .flat_map(|e| {
                webhooks.iter().map(move |&webhook_id| NewDelivery {
                    webhook_id,
                    event_id: &e.id,
                    event_type: &e.event_type,
                    payload: &e.body,
                    group_key: e.group.as_deref(),
                })
            })
            .collect();
        n += deliveries.len();
        let checkpoint = Position {
            file: file.to_string(),
            pos: 4 + k as u64,
        };
        let ids = store.enqueue(&deliveries).await?;
        assert_eq!(ids.len(), deliveries.len());
        store.save_checkpoint(checkpoint.stored(), Some("0-1-1"), rowhook::state::store::SavedView::Unchanged).await?;
    }
    Ok((n, started.elapsed()))
}

/// One `mariadb-binlog --read-from-remote-server` of `file`: `--raw` to files,
/// `plain` (text, rows as base64) or `-vv` (rows decoded) to /dev/null.
fn mariadb_binlog(port: u16, file: &str, work: &Path, mode: &str) -> Result<Duration, BoxError> {
    let raw_dir = work.join("raw");
    std::fs::create_dir_all(&raw_dir)?;
    let mut cmd = Command::new("mariadb-binlog");
    cmd.args([
        "--read-from-remote-server",
        "--host=127.0.0.1",
        &format!("--port={port}"),
        "--user=root",
    ]);
    match mode {
        "--raw" => {
            cmd.arg("--raw").arg(format!("--result-file={}/", raw_dir.display()));
        }
        "-vv" => {
            cmd.arg("-vv");
        }
        _ => {}
    }
    cmd.arg(file).stdout(std::process::Stdio::null());
    let started = Instant::now();
    let status = cmd.status()?;
    let elapsed = started.elapsed();
    if !status.success() {
        return Err(format!("mariadb-binlog {mode} {file} failed: {status}").into());
    }
    Ok(elapsed)
}

fn python_peer(python: &Path, port: u16, file: &str, mode: &str) -> Result<(usize, f64), BoxError> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peer.py");
    let out = Command::new(python)
        .arg(script)
        .args(["127.0.0.1", &port.to_string(), file, mode])
        .output()?;
    if !out.status.success() {
        return Err(format!("python-mysql-replication failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let rows = parts.next().ok_or("peer printed nothing")?.parse()?;
    let secs = parts.next().ok_or("peer printed no time")?.parse()?;
    Ok((rows, secs))
}

fn python_package_version(python: &Path) -> String {
    Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m, sys; print(m.version('mysql-replication'), 'on Python', sys.version.split()[0])",
        ])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

// --- Workload --------------------------------------------------------------------------

/// 500 bytes of plausible email text, different per email.
fn body(n: usize) -> String {
    const WORDS: [&str; 16] = [
        "printer", "invoice", "refund", "the", "order", "shipping", "please", "thanks", "account", "password", "reset", "urgent",
        "delivery", "customer", "support", "ticket",
    ];
    let mut s = format!("Hello, ticket {n}: ");
    let mut k = n;
    while s.len() < 500 {
        k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        s.push_str(WORDS[k >> 60]);
        s.push(' ');
    }
    s.truncate(500);
    s
}

async fn current_file(conn: &mut mysql_async::Conn) -> Result<String, BoxError> {
    let row: Option<mysql_async::Row> = conn.query_first("SHOW MASTER STATUS").await?;
    let row = row.ok_or("the binlog is off")?;
    Ok(row.get::<String, _>(0).ok_or("no binlog file")?)
}

async fn file_size(conn: &mut mysql_async::Conn, file: &str) -> Result<u64, BoxError> {
    let logs: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await?;
    for row in logs {
        let name: String = row.get(0).unwrap_or_default();
        if name == file {
            return Ok(row.get::<u64, _>(1).unwrap_or(0));
        }
    }
    Err(format!("binlog {file} not found").into())
}

/// Creates the reference schema's tables (`schema/helpdesk.sql`) in the current database.
async fn load_schema(conn: &mut mysql_async::Conn) -> Result<(), BoxError> {
    let schema = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/helpdesk.sql"))?;
    let schema: String = schema
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    for statement in schema.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        conn.query_drop(statement).await?;
    }
    Ok(())
}

/// The helpdesk mix in one binlog file, the unmapped table's rows in the next.
///
/// Per transaction of 100 rows: 20 thread inserts, 20 thread updates (status
/// and assignee), 30 email inserts (15 incoming, 15 outgoing drafts; 500-byte
/// bodies), 15 updates sending the drafts, 15 notes: 85 events.
async fn generate(conn: &mut mysql_async::Conn, rows: usize) -> Result<Workload, BoxError> {
    conn.query_drop(format!("DROP DATABASE IF EXISTS {DB}")).await?;
    conn.query_drop(format!("DROP DATABASE IF EXISTS {STATE_DB}")).await?;
    conn.query_drop(format!("CREATE DATABASE {DB}")).await?;
    conn.query_drop(format!("CREATE DATABASE {STATE_DB}")).await?;
    conn.query_drop(format!("USE {DB}")).await?;
    load_schema(conn).await?;
    conn.query_drop(
        "CREATE TABLE audit_log (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, thread_id BIGINT UNSIGNED NOT NULL, \
         actor VARCHAR(100) NOT NULL, action VARCHAR(32) NOT NULL, detail VARCHAR(255) NOT NULL, \
         created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    )
    .await?;

    conn.query_drop("FLUSH BINARY LOGS").await?;
    let mapped_file = current_file(conn).await?;
    let transactions = rows / ROWS_PER_TRANSACTION;
    for t in 0..transactions {
        let mut sql = String::from("START TRANSACTION;");
        let thread0 = t * 20;
        let values: Vec<String> = (1..=20)
            .map(|k| format!("({}, 'Ticket {} about the printer', 'open', NULL)", thread0 + k, thread0 + k))
            .collect();
        sql.push_str(&format!(
            "INSERT INTO threads (id, subject, status, assigned_to) VALUES {};",
            values.join(",")
        ));
        let previous = t.saturating_sub(1) * 20;
        sql.push_str(&format!(
            "UPDATE threads SET status = IF(status = 'open', 'pending', 'closed'), assigned_to = {} WHERE id BETWEEN {} AND {};",
            t % 7 + 1,
            previous + 1,
            previous + 20
        ));
        let email0 = t * 30;
        let values: Vec<String> = (1..=30)
            .map(|k| {
                let id = email0 + k;
                let thread = thread0 + (k % 20) + 1;
                if k <= 15 {
                    format!(
                        "({id}, {thread}, 'incoming', '<m{id}@example.com>', 'Re: Ticket {thread}', 'customer{id}@example.com', \
                         '[\"support@example.com\"]', '{}', NULL, NOW())",
                        body(id)
                    )
                } else {
                    format!(
                        "({id}, {thread}, 'outgoing', NULL, 'Re: Ticket {thread}', 'support@example.com', \
                         '[\"customer{id}@example.com\", \"cc{id}@example.com\"]', '{}', NULL, NULL)",
                        body(id)
                    )
                }
            })
            .collect();
        sql.push_str(&format!(
            "INSERT INTO emails (id, thread_id, direction, message_id, subject, from_address, to_addresses, body_text, sent_at, received_at) VALUES {};",
            values.join(",")
        ));
        sql.push_str(&format!(
            "UPDATE emails SET sent_at = NOW() WHERE id BETWEEN {} AND {};",
            email0 + 16,
            email0 + 30
        ));
        let note0 = t * 15;
        let values: Vec<String> = (1..=15)
            .map(|k| {
                format!(
                    "({}, {}, {}, 'Called the customer back, note {}')",
                    note0 + k,
                    thread0 + k,
                    k % 5 + 1,
                    note0 + k
                )
            })
            .collect();
        sql.push_str(&format!(
            "INSERT INTO notes (id, thread_id, user_id, content) VALUES {};",
            values.join(",")
        ));
        sql.push_str("COMMIT");
        conn.query_drop(sql).await?;
    }
    conn.query_drop("FLUSH BINARY LOGS").await?;
    let unmapped_file = current_file(conn).await?;
    for t in 0..transactions {
        let values: Vec<String> = (0..ROWS_PER_TRANSACTION)
            .map(|k| {
                let n = t * ROWS_PER_TRANSACTION + k;
                format!(
                    "({}, 'agent{}@example.com', 'viewed', 'Opened the thread from the list view, page {}, filter open, sorted by date')",
                    n % 4000 + 1,
                    k % 9,
                    n % 50
                )
            })
            .collect();
        conn.query_drop(format!(
            "START TRANSACTION; INSERT INTO audit_log (thread_id, actor, action, detail) VALUES {}; COMMIT",
            values.join(",")
        ))
        .await?;
    }
    conn.query_drop("FLUSH BINARY LOGS").await?;
    let mapped_size = file_size(conn, &mapped_file).await?;
    let unmapped_size = file_size(conn, &unmapped_file).await?;
    Ok(Workload {
        mapped_file,
        mapped_size,
        unmapped_file,
        unmapped_size,
        rows: transactions * ROWS_PER_TRANSACTION,
    })
}

// --- Report ----------------------------------------------------------------------------

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn machine() -> Vec<(String, String)> {
    let mut cpuinfo = String::new();
    let _ = std::fs::File::open("/proc/cpuinfo").and_then(|mut f| f.read_to_string(&mut cpuinfo));
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".to_string(), |(_, m)| m.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or("unknown".to_string(), |kb| format!("{:.1} GB", kb as f64 / 1024.0 / 1024.0));
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("PRETTY_NAME="))
                .map(|l| l[12..].trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    vec![
        ("CPU".into(), format!("{model}, {cores} cores available")),
        ("memory".into(), mem),
        ("OS".into(), format!("{os}, kernel {}", command_line("uname", &["-r"]))),
        ("rustc".into(), command_line("rustc", &["--version"])),
    ]
}

fn render(
    rows: &[Row],
    notes: &[String],
    version: &str,
    peer: &str,
    runs: usize,
    elapsed: Duration,
    load: &[(String, String)],
) -> String {
    let mut s = String::new();
    let now = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    s.push_str(&format!(
        "Run of {now}, {:.0} s in all. Figures are medians of {runs} runs (the peer and enqueue: {}).\n\n",
        elapsed.as_secs_f64(),
        runs.min(3)
    ));
    s.push_str("| machine | |\n|---|---|\n");
    for (k, v) in machine().iter().chain(load) {
        s.push_str(&format!("| {k} | {v} |\n"));
    }
    s.push_str(&format!("| MariaDB | {version} (scripts/mariadb.sh recipe, same machine) |\n"));
    s.push_str(&format!("| peer | python-mysql-replication {peer} |\n\n"));
    s.push_str("| scenario | rowhook | reference (same run) | ratio | target |\n|---|---|---|---|---|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.scenario, r.figure, r.reference, r.ratio, r.target
        ));
    }
    s.push_str("\nEvery run:\n\n");
    for n in notes {
        s.push_str(&format!("- {n}\n"));
    }
    s
}

/// Replaces what lies between the markers of `out` (the rest of the file is hand-written).
fn write_report(out: &Path, report: &str) -> Result<(), BoxError> {
    let existing = std::fs::read_to_string(out).unwrap_or_default();
    let block = format!("{BEGIN_MARK}\n{report}{END_MARK}");
    let text = match (existing.find(BEGIN_MARK), existing.find(END_MARK)) {
        (Some(a), Some(b)) if a < b => format!("{}{block}{}", &existing[..a], &existing[b + END_MARK.len()..]),
        _ => format!("# Benchmarks\n\n{block}\n"),
    };
    let mut f = std::fs::File::create(out)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
