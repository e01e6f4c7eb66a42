//! The admin API fuzzed against its own OpenAPI document (issue 17, item 5):
//! schemathesis (`st run`, PyPI, pinned and installed into
//! `target/schemathesis-venv` by `scripts/test-deps.sh`) reads
//! `/api/openapi.json` from the running daemon and sends what it generates
//! from it, valid and invalid, with the admin token. Every answer must be
//! documented there (status code, content type, body schema), none may be a
//! 5xx, and the daemon must still be running, without a panic in its log.
//!
//! The daemon is the built binary, so a crash shows as an exited process. It
//! runs in a network namespace of the test's own ([`crate::support::netns`],
//! with its own MariaDB): schemathesis registers webhooks at whatever URLs it
//! makes up and sends them test events, and from there nothing can leave the
//! machine. SSRF protection is on, as in production (`allow_private_targets`
//! false): loopback targets are refused with the documented 422, names do not
//! resolve (registered with a warning).
//!
//! The run is bounded (`ROWHOOK_SCHEMATHESIS_SECONDS`, 60 by default) and
//! seeded (`ROWHOOK_SCHEMATHESIS_SEED` explores others), so a failure repeats
//! as far as timing allows; schemathesis prints the `curl` that reproduces
//! each failure.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::rowhook::{daemon_command, free_addr, server_id, TestDb};
use crate::support::netns;

const TOKEN: &str = "schemathesis-admin-token-0123456789";

/// What `scripts/test-deps.sh` installs.
const VERSION: &str = "4.32.5";

fn st() -> PathBuf {
    let st = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis-venv/bin/st");
    let version = Command::new(&st).arg("--version").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match version {
        Ok(v) if v == format!("st, version {VERSION}") => st,
        found => panic!(
            "schemathesis {VERSION} is needed at {} (found: {found:?}): run `bash scripts/test-deps.sh` \
             (make test does; it installs it with pip from PyPI into a venv)",
            st.display()
        ),
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[actix_rt::test]
async fn the_admin_api_answers_as_its_openapi_document_says() {
    // Outside the namespace too: a missing schemathesis fails here, not in the child.
    let st = st();
    if !netns::enter("schemathesis::the_admin_api_answers_as_its_openapi_document_says", "") {
        return;
    }
    let mut db = TestDb::new("schemathesis").await;
    // Something to read, update, test, back fill and delete from the first request on.
    db.add_webhook("http://hooks.rowhook.test/a", &["thread.created"], "0123456789abcdef0123", true).await;
    db.add_webhook("https://hooks.rowhook.test/b", &["*"], "0123456789abcdef0123", false).await;
    db.exec("INSERT INTO threads (subject) VALUES ('fuzzed')").await;

    let addr = free_addr();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut daemon = daemon_command(&db.url, server_id(), addr)
        .env("ROWHOOK__ADMIN__TOKEN", TOKEN)
        .env("ROWHOOK__DELIVERY__ALLOW_PRIVATE_TARGETS", "false")
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("rowhook run");
    let base = format!("http://{addr}");
    crate::support::install_crypto_provider();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(daemon.try_wait().unwrap().is_none(), "rowhook exited:\n{}", read(log.path()));
        assert!(Instant::now() < deadline, "rowhook not ready in 30 s:\n{}", read(log.path()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let seconds = env_or("ROWHOOK_SCHEMATHESIS_SECONDS", 60);
    let seed = env_or("ROWHOOK_SCHEMATHESIS_SEED", 17);
    let output = tempfile::NamedTempFile::new().unwrap();
    // Its working directory keeps a cache (.schemathesis/): a temporary one, not the checkout.
    let workdir = tempfile::tempdir().unwrap();
    let mut run = Command::new(&st);
    run.current_dir(workdir.path());
    run.arg("run")
        .arg(format!("{base}/api/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--checks", "all"])
        // Left out, and why: positive_data_acceptance wants every request the schema allows
        // accepted, but what is valid here also depends on what the schema cannot say: the
        // config's event types (events, event_type), the mapped tables' columns (a backfill's
        // filter), the SSRF guard (a URL whose host is loopback: 422), which of since, position
        // and gtid a replay needs, the times since and until may be. Those answers are
        // documented (422, 400, 409) and the other checks hold them to the document.
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args(["--max-time", &seconds.to_string()])
        .args(["--seed", &seed.to_string()])
        // One worker: Python 3.11's parser is not thread-safe where hypothesis describes its
        // strategies ("AST constructor recursion depth mismatch" with two).
        .args(["--workers", "1"])
        .args(["--request-timeout", "10"])
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .stdin(Stdio::null())
        .stdout(output.reopen().unwrap())
        .stderr(output.reopen().unwrap());
    let started = Instant::now();
    let mut child = run.spawn().expect("st run");
    // The test's runtime is idle meanwhile: wait without blocking it.
    let limit = Duration::from_secs(seconds + 120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("st run did not finish in {limit:?}:\n{}", read(output.path()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let out = read(output.path());
    println!("st run: {status} after {:.0?}\n{out}", started.elapsed());
    // Whole, for reading after a failure (the namespace's parent shows only the end).
    let saved = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis.log");
    let _ = std::fs::write(&saved, format!("{out}\n--- rowhook's log\n{}", read(log.path())));

    let exited = daemon.try_wait().unwrap();
    let daemon_log = read(log.path());
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(exited.is_none(), "rowhook exited during the run ({exited:?}):\n{}", tail(&daemon_log, 60));
    assert!(!daemon_log.contains("panicked"), "rowhook panicked:\n{}", tail(&daemon_log, 60));
    assert!(
        status.success(),
        "schemathesis found answers the OpenAPI document does not allow ({status}; all of it in {}):\n{out}",
        saved.display()
    );
    // It did test: operations were generated and answered (not a schema that failed to load).
    // It did test every operation of the document (its summary: "Selected: 18/18", "Tested: 18").
    let word = |label: &str| out.split(label).nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap_or("").to_string();
    let (selected, tested) = (word("Selected: "), word("Tested: "));
    let n: u32 = tested.parse().unwrap_or(0);
    assert!(n >= 15 && selected == format!("{n}/{n}") && out.contains(" generated, "), "selected {selected}, tested {tested}:\n{out}");
}

fn read(path: &Path) -> String {
    let mut text = String::new();
    let _ = std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    text
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
