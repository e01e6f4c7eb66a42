//! What operators run: the systemd unit, the container image, the Prometheus
//! alert rules, and the logs of the real binary.
//!
//! The tools these tests need (`systemd-analyze`, `promtool`) come from
//! Debian's packages; `.ci/run` installs them, and a test without them fails
//! with the command to run.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use crate::rowhook::{server_id, TestDb};
use crate::support::{self, mariadb, Receiver};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The path of an installed tool, or a test failure that says how to install it.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{name} not found: install it with `apt-get install -y --no-install-recommends {package}` (Debian/Ubuntu; .ci/run does this)");
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The value of `Key=` in the unit (the last one wins, as in systemd).
fn unit_value<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines().filter_map(|l| l.strip_prefix(key)?.strip_prefix('=')).next_back().map(str::trim)
}

// ---------------------------------------------------------------------------------------------
// systemd

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let analyze = tool("systemd-analyze", "systemd");
    let unit = read("systemd/rowhook.service");
    // `verify` checks that ExecStart exists, so it runs against a scratch root holding the unit,
    // the binary where ExecStart expects it, and the system's own units (the targets it names).
    let root = tempfile::tempdir().unwrap();
    let units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .find(|d| Path::new(d).join("multi-user.target").exists())
        .expect("systemd's units (multi-user.target) not found: apt-get install systemd");
    std::fs::create_dir_all(root.path().join("usr/lib/systemd")).unwrap();
    let copied = run(Command::new("cp").arg("-a").arg(units).arg(root.path().join("usr/lib/systemd/system")));
    assert!(copied.status.success(), "copying {units}: {}", text(&copied));
    let etc = root.path().join("etc/systemd/system");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("rowhook.service"), &unit).unwrap();
    let exec = unit_value(&unit, "ExecStart").expect("ExecStart=");
    let binary = exec.split_whitespace().next().unwrap().trim_start_matches(['-', '@', ':', '+', '!']);
    let target = root.path().join(binary.trim_start_matches('/'));
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(support::rowhook_bin(), &target).unwrap();

    let out = run(Command::new(&analyze).arg("verify").arg(format!("--root={}", root.path().display())).arg("rowhook.service"));
    // verify exits 0 on unknown keys and bad values, only printing them: any output is a finding.
    assert!(out.status.success() && text(&out).trim().is_empty(), "systemd-analyze verify systemd/rowhook.service:\n{}", text(&out));

    // What the issue asks of the unit, beyond what verify checks.
    assert_eq!(unit_value(&unit, "Restart"), Some("on-failure"));
    assert!(unit_value(&unit, "DynamicUser") == Some("yes") || unit_value(&unit, "User").is_some(), "a dedicated or dynamic user");
    assert!(unit_value(&unit, "EnvironmentFile").is_some(), "secrets come from an EnvironmentFile=");
    let stop = humantime::parse_duration(unit_value(&unit, "TimeoutStopSec").expect("TimeoutStopSec=")).unwrap();
    let shutdown = rowhook::config::DeliveryConfig::default().shutdown_timeout;
    assert!(stop >= shutdown * 2, "TimeoutStopSec ({stop:?}) must leave room beyond [delivery] shutdown_timeout ({shutdown:?})");
    assert_eq!(unit_value(&unit, "CapabilityBoundingSet"), Some(""), "an empty capability set");
}

#[test]
fn systemd_unit_exposure_is_at_most_2() {
    let analyze = tool("systemd-analyze", "systemd");
    // --offline reviews the unit file itself; no running systemd needed.
    let out = run(Command::new(&analyze).args(["security", "--offline=true", "--no-pager"]).arg(repo("systemd/rowhook.service")));
    let report = text(&out);
    assert!(out.status.success(), "systemd-analyze security --offline=true:\n{report}");
    let exposure: f64 = report
        .lines()
        .find_map(|l| l.split("Overall exposure level for rowhook.service:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure in:\n{report}"));
    assert!(exposure <= 2.0, "exposure {exposure} > 2.0:\n{report}");
}

// ---------------------------------------------------------------------------------------------
// Container image

#[test]
fn dockerfile_builds_like_make_build_and_runs_as_a_non_root_user() {
    let dockerfile = read("Dockerfile");
    let makefile = read("Makefile");
    let make_build = makefile
        .split("\nbuild:\n")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .expect("a `build:` target in the Makefile")
        .trim()
        .replace("$(CARGO)", "cargo");
    let runs: Vec<&str> = dockerfile.lines().filter_map(|l| l.strip_prefix("RUN ")).map(str::trim).collect();
    assert!(runs.contains(&make_build.as_str()), "the build stage runs `{make_build}` (make build); RUN lines: {runs:?}");

    let stages: Vec<&str> = dockerfile.split("\nFROM ").collect();
    assert!(stages.len() >= 2, "multi-stage: build, then a small runtime image");
    let runtime = stages.last().unwrap();
    assert!(runtime.contains("COPY --from="), "the runtime stage copies only the binary from the build stage");
    let user = runtime.lines().filter_map(|l| l.strip_prefix("USER ")).next_back().expect("USER in the runtime stage").trim();
    assert!(!["root", "0", "0:0"].contains(&user), "runs as a non-root user, not {user}");
    assert!(runtime.contains("EXPOSE 8080"));
    assert!(runtime.contains("HEALTHCHECK") && runtime.contains("/healthz"));
    assert!(runtime.contains("ROWHOOK__HTTP__LISTEN=0.0.0.0:8080"), "listens beyond the container's loopback");

    let dockerignore = read(".dockerignore");
    let ignored: BTreeSet<&str> = dockerignore.lines().map(|l| l.trim().trim_start_matches('/')).collect();
    for path in ["target", ".git", ".demo"] {
        assert!(ignored.contains(path), ".dockerignore leaves out {path}");
    }
    assert!(!ignored.contains("Cargo.lock"), "the build is --locked");
}

// ---------------------------------------------------------------------------------------------
// Prometheus

/// `rowhook_*` metric names mentioned in a text (suffixes of histograms included as written).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("rowhook_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let preceded_by_word = rest[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '.');
        if !preceded_by_word && !tail[..end].ends_with('_') {
            names.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    names
}

#[test]
fn alert_rules_pass_promtool_and_use_documented_metrics() {
    let promtool = tool("promtool", "prometheus");
    let out = run(Command::new(&promtool).args(["check", "rules"]).arg(repo("config/prometheus-alerts.yml")));
    assert!(out.status.success(), "promtool check rules config/prometheus-alerts.yml:\n{}", text(&out));
    let out = run(Command::new(&promtool).args(["test", "rules"]).arg(repo("config/prometheus-alerts.test.yml")));
    assert!(out.status.success(), "promtool test rules config/prometheus-alerts.test.yml:\n{}", text(&out));

    let exported = metric_names(&read("src/metrics.rs"));
    assert!(exported.len() >= 14, "src/metrics.rs defines the metrics: {exported:?}");
    let documented = metric_names(&read("docs/metrics.md"));
    let undocumented: Vec<_> = exported.difference(&documented).collect();
    assert!(undocumented.is_empty(), "metrics of src/metrics.rs missing from docs/metrics.md: {undocumented:?}");
    let gone: Vec<_> = documented.iter().filter(|m| !exported.iter().any(|e| m.starts_with(e.as_str()))).collect();
    assert!(gone.is_empty(), "docs/metrics.md documents metrics src/metrics.rs does not define: {gone:?}");
    let alerts = read("config/prometheus-alerts.yml");
    let unknown: Vec<_> = metric_names(&alerts).into_iter().filter(|m| !exported.contains(m)).collect();
    assert!(unknown.is_empty(), "alert rules use metrics rowhook does not export: {unknown:?}");
}

/// Every PromQL expression of the Grafana dashboard (panels' targets and template queries).
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<String> {
    let mut found = Vec::new();
    fn walk(value: &serde_json::Value, found: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, inner) in map {
                    match (key.as_str(), inner) {
                        ("expr" | "definition", serde_json::Value::String(expr)) => found.push(expr.clone()),
                        _ => walk(inner, found),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, found)),
            _ => {}
        }
    }
    walk(dashboard, &mut found);
    found
}

#[test]
fn grafana_dashboard_is_importable_and_uses_only_exported_metrics() {
    let dashboard: serde_json::Value = serde_json::from_str(&read("docs/grafana/rowhook.json")).expect("docs/grafana/rowhook.json is JSON");
    // Importable as it is: a data source input the import asks for, and panels that use it.
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(dashboard["__inputs"][0]["pluginId"], "prometheus");
    assert_eq!(dashboard["uid"], "rowhook");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for panel in panels {
        assert!(ids.insert(panel["id"].as_u64().expect("a panel id")), "panel ids are unique: {}", panel["id"]);
        assert!(panel["gridPos"]["w"].as_u64().is_some_and(|w| (1..=24).contains(&w)), "{}", panel["title"]);
        if panel["type"] != "row" {
            assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", panel["title"]);
            assert!(!panel["targets"].as_array().unwrap().is_empty(), "{}", panel["title"]);
        }
    }
    let titles: Vec<String> = panels.iter().map(|p| p["title"].as_str().unwrap().to_ascii_lowercase()).collect();
    for needed in ["replication lag", "deliveries by outcome", "delivery latency", "queue depth", "failures by webhook"] {
        assert!(titles.iter().any(|t| t.contains(needed)), "a panel for {needed}: {titles:?}");
    }

    // Every metric it queries exists (a histogram by its _bucket, _sum or _count).
    let exported = metric_names(&read("src/metrics.rs"));
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 15, "{queries:?}");
    let used: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(q)).collect();
    let unknown: Vec<&String> = used
        .iter()
        .filter(|m| !exported.contains(*m) && !["_bucket", "_sum", "_count"].iter().any(|s| m.strip_suffix(s).is_some_and(|b| exported.contains(b))))
        .collect();
    assert!(unknown.is_empty(), "the dashboard queries metrics rowhook does not export: {unknown:?}");
    for metric in ["rowhook_replication_lag_seconds", "rowhook_delivery_attempts_total", "rowhook_delivery_duration_seconds_bucket", "rowhook_deliveries_pending"] {
        assert!(used.contains(metric), "the dashboard shows {metric}");
    }

    // Every query is PromQL Prometheus accepts: promtool checks them as recording rules, with
    // Grafana's variables replaced as Grafana replaces them.
    let rules: Vec<String> = queries
        .iter()
        .filter(|q| !q.starts_with("label_values("))
        .enumerate()
        .map(|(i, q)| {
            let expr = q.replace("$__rate_interval", "5m").replace("$job", ".*");
            format!("      - record: dashboard:query_{i}\n        expr: {}\n", serde_json::to_string(&expr).unwrap())
        })
        .collect();
    let file = tempfile::Builder::new().suffix(".yml").tempfile().unwrap();
    std::fs::write(file.path(), format!("groups:\n  - name: dashboard\n    rules:\n{}", rules.concat())).unwrap();
    let out = run(Command::new(tool("promtool", "prometheus")).args(["check", "rules"]).arg(file.path()));
    assert!(out.status.success(), "promtool refuses a dashboard query:\n{}", text(&out));
    assert!(read("docs/metrics.md").contains("docs/grafana/rowhook.json") || read("docs/metrics.md").contains("grafana/rowhook.json"), "docs/metrics.md says how to import it");
}

// ---------------------------------------------------------------------------------------------
// Logs

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed on drop.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

/// Runs `rowhook run` (the binary, shipped config, overrides from the environment) in `format`,
/// makes it deliver, fail, and answer admin requests, stops it with SIGTERM, and returns its
/// whole output with the secrets it was given.
async fn run_and_capture_logs(format: &str) -> (String, Vec<(&'static str, String)>, u64, u64) {
    let mut db = TestDb::new(&format!("logs_{format}")).await;
    // A database user with a password, so the source URL carries a secret too.
    let user = format!("logs_{format}_{}", std::process::id());
    let password = format!("pw-{}", random_hex(12));
    let mut root = mysql_async::Conn::from_url(mariadb::shared().root_url()).await.unwrap();
    root.query_drop(format!("CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{password}'")).await.unwrap();
    root.query_drop(format!("ALTER USER '{user}'@'%' IDENTIFIED BY '{password}'")).await.unwrap();
    root.query_drop(format!("GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%'")).await.unwrap();
    let source_url = format!("mysql://{user}:{password}@127.0.0.1:{}/{}", mariadb::shared().port, db.name);

    let ok = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.set_status(500);
    let standard_secret = rowhook::delivery::signing::generate_secret();
    let seed_secret = random_hex(32); // the PHP app's kind of secret
    let ok_id = db.add_webhook(&ok.url(), &["*"], &standard_secret, true).await;
    let failing_id = db.add_webhook(&failing.url(), &["thread.created"], &seed_secret, true).await;
    let token = format!("tok-{}", random_hex(16));
    let wrong_token = format!("wrong-{}", random_hex(16));
    let api_secret = rowhook::delivery::signing::generate_secret();
    let url_token = format!("t0k{}", &rowhook::delivery::signing::generate_secret()[6..22]);

    let port = free_port();
    let log_path = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(support::rowhook_bin())
        .args(["run", "--config"])
        .arg(repo("config/rowhook.toml"))
        .env_remove("RUST_LOG")
        .env("ROWHOOK__SOURCE__URL", &source_url)
        .env("ROWHOOK__SOURCE__SERVER_ID", server_id().to_string())
        .env("ROWHOOK__SOURCE__HEARTBEAT", "1s")
        .env("ROWHOOK__HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env("ROWHOOK__ADMIN__TOKEN", &token)
        .env("ROWHOOK__DELIVERY__ALLOW_PRIVATE_TARGETS", "true")
        .env("ROWHOOK__DELIVERY__RETRY_SCHEDULE", "100ms,100ms")
        .env("ROWHOOK__LOG__FORMAT", format)
        .env("ROWHOOK__LOG__LEVEL", "debug")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn rowhook run");
    let mut child = Running(child);
    let base = format!("http://127.0.0.1:{port}");
    support::install_crypto_provider();
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("rowhook run exited with {status}:\n{}", std::fs::read_to_string(&log_path).unwrap_or_default());
        }
        assert!(started.elapsed() < Duration::from_secs(30), "not ready in 30 s:\n{}", std::fs::read_to_string(&log_path).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    db.exec("INSERT INTO threads (subject) VALUES ('Printer on fire')").await;
    assert_eq!(ok.wait_for(1, Duration::from_secs(15)).await.len(), 1, "delivered to the working endpoint");
    // The failing endpoint: the first attempt and two retries, then the delivery has failed.
    let tried = failing.wait_for(3, Duration::from_secs(15)).await;
    assert_eq!(tried.len(), 3, "three attempts on the failing endpoint");

    // Admin requests with the token, a wrong token, and a secret in a body.
    let _ = http.get(format!("{base}/api/webhooks")).bearer_auth(&token).send().await.unwrap();
    let _ = http.get(format!("{base}/api/webhooks")).bearer_auth(&wrong_token).send().await.unwrap();
    let _ = http
        .post(format!("{base}/api/webhooks"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"url": format!("{}/second?token={url_token}", ok.base_url()), "events": ["*"], "secret": api_secret}))
        .send()
        .await
        .unwrap();
    let _ = http.get(format!("{base}/metrics")).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await; // the failed delivery's record and the log lines

    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "rowhook did not stop within 20 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut output = String::new();
    std::fs::File::open(&log_path).unwrap().read_to_string(&mut output).unwrap();
    let standard_key = standard_secret.trim_start_matches("whsec_").to_string();
    let secrets = vec![
        ("webhook secret (whsec_)", standard_secret),
        ("webhook key (base64 part of the whsec_ secret)", standard_key),
        ("webhook secret (hex, the PHP app's kind)", seed_secret),
        ("admin token", token),
        ("wrong bearer token a client sent", wrong_token),
        ("secret in a POST /api/webhooks body", api_secret),
        ("database password", password),
        ("credential in a webhook URL's query", url_token),
    ];
    (output, secrets, ok_id, failing_id)
}

fn assert_no_secrets(format: &str, output: &str, secrets: &[(&str, String)]) {
    assert!(output.lines().count() > 10, "{format}: rowhook logged next to nothing:\n{output}");
    for (what, secret) in secrets {
        if let Some(line) = output.lines().find(|l| l.contains(secret.as_str())) {
            panic!("{format} log shows the {what}:\n{line}");
        }
    }
    let lower = output.to_ascii_lowercase();
    for header in ["authorization:", "\"authorization\"", "authorization=", "bearer "] {
        if let Some(line) = lower.lines().find(|l| l.contains(header)) {
            panic!("{format} log shows an Authorization header ({header}):\n{line}");
        }
    }
    assert!(!output.contains('\u{1b}'), "{format}: no terminal colour codes in a log that is not a terminal");
}

#[actix_rt::test]
async fn text_logs_have_a_line_per_attempt_and_no_secrets() {
    let (output, secrets, ok_id, failing_id) = run_and_capture_logs("text").await;
    assert_no_secrets("text", &output, &secrets);
    let attempts = |webhook: u64| -> Vec<&str> {
        output.lines().filter(|l| l.contains("delivery attempt") && l.contains(&format!("webhook_id={webhook} "))).collect()
    };
    let ok_lines = attempts(ok_id);
    assert_eq!(ok_lines.len(), 1, "one line for the one attempt:\n{output}");
    for field in ["event_id=evt_", "event_type=thread.created", "status=200", "duration_ms=", "outcome=delivered"] {
        assert!(ok_lines[0].contains(field), "{field} in {}", ok_lines[0]);
    }
    let failed = attempts(failing_id);
    assert_eq!(failed.len(), 3, "three attempts, three lines:\n{output}");
    for (line, outcome) in failed.iter().zip(["failed", "failed", "given_up"]) {
        for field in ["event_id=evt_", "status=500", "duration_ms=", &format!("outcome={outcome}")] {
            assert!(line.contains(field), "{field} in {line}");
        }
    }
}

#[actix_rt::test]
async fn json_logs_have_a_line_per_attempt_and_no_secrets() {
    let (output, secrets, ok_id, failing_id) = run_and_capture_logs("json").await;
    assert_no_secrets("json", &output, &secrets);
    let lines: Vec<serde_json::Value> = output
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {l}")))
        .collect();
    let attempts = |webhook: u64| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .map(|l| &l["fields"])
            .filter(|f| f["message"].as_str().is_some_and(|m| m.starts_with("delivery attempt")) && f["webhook_id"] == webhook)
            .collect()
    };
    let ok_lines = attempts(ok_id);
    assert_eq!(ok_lines.len(), 1, "one line for the one attempt:\n{output}");
    let line = ok_lines[0];
    assert!(line["event_id"].as_str().is_some_and(|id| id.starts_with("evt_")), "{line}");
    assert_eq!((line["status"].as_u64(), line["outcome"].as_str()), (Some(200), Some("delivered")), "{line}");
    assert!(line["duration_ms"].is_u64(), "{line}");
    let failed = attempts(failing_id);
    let outcomes: Vec<_> = failed.iter().map(|f| (f["attempt"].as_u64().unwrap(), f["status"].as_u64().unwrap(), f["outcome"].as_str().unwrap())).collect();
    assert_eq!(outcomes, [(1, 500, "failed"), (2, 500, "failed"), (3, 500, "given_up")], "{output}");
    assert!(failed.iter().all(|f| f["event_id"] == ok_lines[0]["event_id"] && f["duration_ms"].is_u64()));
}

// ---------------------------------------------------------------------------------------------
// docs/events.md

#[actix_rt::test]
async fn worked_example_of_docs_events_md() {
    let mut db = TestDb::new("shop").await;
    let sql: String = read("docs/examples/shop.sql").lines().filter(|l| !l.starts_with("--")).collect::<Vec<_>>().join("\n");
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        db.exec(statement).await;
    }
    let mut config = crate::rowhook::test_config(&db.url);
    let rules = format!("[source]\nurl = \"{}\"\n{}", db.url, read("docs/examples/shop-events.toml"));
    config.events = rowhook::config::Config::from_toml(&rules).expect("docs/examples/shop-events.toml").events;
    rowhook::daemon::check(&config).await.expect("the example rules fit the example schema");
    // The error docs/events.md shows is the one rowhook gives.
    let mut misspelt = config.clone();
    let misspelt_rules = rules.replace("shipped_at = \"shipped_at\"", "shipped_at = \"shiped_at\"");
    misspelt.events = rowhook::config::Config::from_toml(&misspelt_rules).unwrap().events;
    match rowhook::daemon::check(&misspelt).await {
        Err(rowhook::daemon::RunError::Schema(rowhook::source::schema::SchemaError::Refused(problems))) => {
            assert_eq!(problems.0.len(), 1, "{problems}");
            let doc = read("docs/events.md").replace('\n', " ");
            let said = problems.0[0].to_string();
            // Markdown code that ends in a backtick closes after a space.
            assert!(doc.contains(&format!("``{said} ``")), "docs/events.md shows `{said}`");
            assert!(problems.0[0].fix().starts_with("did you mean `shipped_at`?") && doc.contains("did you mean `shipped_at`?"));
        }
        other => panic!("refused with the misspelt column: {:?}", other.err()),
    }
    let receiver = Receiver::start().await;
    db.add_webhook(&receiver.url(), &["*"], &rowhook::delivery::signing::generate_secret(), true).await;
    let rowhook = crate::rowhook::InProcess::start(config).await;

    db.exec("INSERT INTO customers (email, password_hash) VALUES ('ada@example.com', '$2y$10$abcdefghijklmnopqrstuv')").await;
    db.exec("INSERT INTO orders (customer_id) VALUES (1)").await;
    db.exec("UPDATE orders SET state = 'placed', total = 42.50 WHERE id = 1").await;
    db.exec("UPDATE orders SET internal_notes = 'fragile' WHERE id = 1").await;
    db.exec("UPDATE orders SET state = 'shipped', tracking_code = 'TRK1', shipped_at = '2026-11-28 12:00:00' WHERE id = 1").await;
    db.exec("DELETE FROM orders WHERE id = 1").await;
    receiver.wait_for(6, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // nothing more may come
    let got: Vec<(String, serde_json::Value)> = receiver
        .received()
        .iter()
        .map(|r| {
            let body = r.json();
            (body["type"].as_str().unwrap().to_string(), body["data"].clone())
        })
        .collect();
    rowhook.stop().await.unwrap();
    let types: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["customer.created", "order.placed", "order.updated", "order.shipped", "order.updated", "order.deleted"],
        "{got:#?}"
    );
    let customer = &got[0].1;
    assert_eq!((customer["customer_id"].clone(), customer["email"].clone()), (serde_json::json!(1), serde_json::json!("ada@example.com")));
    assert!(customer.get("password_hash").is_none() && !customer.to_string().contains("$2y$"), "{customer}");
    assert_eq!(got[1].1, serde_json::json!({"order_id": 1, "customer_id": 1, "total": "42.50", "currency": "EUR"}));
    assert_eq!(
        got[2].1,
        serde_json::json!({"order_id": 1, "changes": {"state": {"old": "cart", "new": "placed"}, "total": {"old": "0.00", "new": "42.50"}}})
    );
    assert_eq!(got[3].1, serde_json::json!({"order_id": 1, "tracking_code": "TRK1", "shipped_at": "2026-11-28T12:00:00"}));
    assert_eq!(
        got[4].1,
        serde_json::json!({"order_id": 1, "changes": {"state": {"old": "placed", "new": "shipped"}, "tracking_code": {"old": null, "new": "TRK1"}}})
    );
    assert_eq!(got[5].1, serde_json::json!({"order_id": 1, "state": "shipped"}));
    assert!(!got.iter().any(|(_, d)| d.to_string().contains("fragile")), "internal notes never leave");
}
