//! Several rowhook instances on one state database: one is active (it holds
//! the instance lock), the others stand by and take over when it stops or
//! dies. Every event is sent once, whichever instance sends it.

use std::time::Duration;

use mysql_async::prelude::*;
use reqwest::StatusCode;

use crate::pipeline::{assert_all_notes, wait_for_unique, write_notes};
use crate::rowhook::{test_config, InProcess, TestDb};
use crate::support::Receiver;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn get(url: &str) -> Option<(StatusCode, String)> {
    crate::support::install_crypto_provider();
    let response = reqwest::get(url).await.ok()?;
    Some((response.status(), response.text().await.ok()?))
}

/// Waits until `GET url` answers `status` with a body containing `needle`.
async fn wait_for_answer(url: &str, status: StatusCode, needle: &str, timeout: Duration) -> String {
    let deadline = std::time::Instant::now() + timeout;
    let mut last = None;
    while std::time::Instant::now() < deadline {
        last = get(url).await;
        if let Some((got, body)) = &last {
            if *got == status && body.contains(needle) {
                return body.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not answer {status} with {needle:?} within {timeout:?}; last answer: {last:?}");
}

/// Distinct webhook-ids among the requests, and the requests in all.
fn counts(receiver: &Receiver) -> (usize, usize) {
    let got = receiver.received();
    let unique: std::collections::HashSet<_> = got.iter().filter_map(|r| r.header("webhook-id").map(str::to_string)).collect();
    (unique.len(), got.len())
}

#[actix_rt::test]
async fn a_second_instance_stands_by_and_takes_over_when_the_first_stops() {
    let mut db = TestDb::new("instances").await;
    let receiver = Receiver::start().await;
    db.add_webhook(&receiver.url(), &["note.added"], SECRET, true).await;
    let first = InProcess::start(test_config(&db.url)).await;
    let second = InProcess::spawn(test_config(&db.url));

    // The second says what it is doing, on every route but liveness and metrics.
    let ready = wait_for_answer(&format!("{}/readyz", second.base_url), StatusCode::SERVICE_UNAVAILABLE, "standing by", Duration::from_secs(15)).await;
    assert!(ready.contains("rowhook:"), "the reason names the lock: {ready}");
    wait_for_answer(&format!("{}/healthz", second.base_url), StatusCode::OK, "standby", Duration::from_secs(1)).await;
    wait_for_answer(&format!("{}/api/webhooks", second.base_url), StatusCode::SERVICE_UNAVAILABLE, "standing by", Duration::from_secs(1)).await;
    wait_for_answer(&format!("{}/metrics", second.base_url), StatusCode::OK, "rowhook_active 0", Duration::from_secs(1)).await;
    wait_for_answer(&format!("{}/metrics", first.base_url), StatusCode::OK, "rowhook_active 1", Duration::from_secs(1)).await;

    write_notes(&db.url, 1, 101, 10).await;
    let got = wait_for_unique(&receiver, 100, Duration::from_secs(30)).await;
    assert_all_notes(&got, 100);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(counts(&receiver), (100, 100), "each event sent once: the standby sent nothing");

    first.stop().await.expect("clean stop");
    second.wait_ready().await;
    wait_for_answer(&format!("{}/metrics", second.base_url), StatusCode::OK, "rowhook_active 1", Duration::from_secs(1)).await;
    write_notes(&db.url, 101, 201, 10).await;
    let got = wait_for_unique(&receiver, 200, Duration::from_secs(30)).await;
    assert_all_notes(&got, 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(counts(&receiver), (200, 200), "the new active instance went on from the checkpoint: nothing twice");
    second.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn a_standby_takes_over_from_an_instance_killed_with_sigkill() {
    let mut db = TestDb::new("takeover").await;
    let receiver = Receiver::start().await;
    db.add_webhook(&receiver.url(), &["note.added"], SECRET, true).await;
    let dir = tempfile::tempdir().unwrap();
    let server_id = crate::rowhook::server_id();
    let (first_listen, second_listen) = (crate::rowhook::free_addr(), crate::rowhook::free_addr());
    let mut first = crate::outages::spawn_binary(&db.url, server_id, first_listen, &dir.path().join("first.log"));
    wait_for_answer(&format!("http://{first_listen}/readyz"), StatusCode::OK, "ready", Duration::from_secs(15)).await;
    // The same config, replica id included: a standby never connects as a replica.
    let second_log = dir.path().join("second.log");
    let mut second = crate::outages::spawn_binary(&db.url, server_id, second_listen, &second_log);
    wait_for_answer(&format!("http://{second_listen}/readyz"), StatusCode::SERVICE_UNAVAILABLE, "standing by", Duration::from_secs(15)).await;

    write_notes(&db.url, 1, 101, 10).await;
    wait_for_unique(&receiver, 100, Duration::from_secs(30)).await;
    first.kill().unwrap(); // SIGKILL: no release; the server ends its session
    let _ = first.wait();
    write_notes(&db.url, 101, 201, 10).await;
    let got = wait_for_unique(&receiver, 200, Duration::from_secs(30)).await;
    let _ = second.kill();
    let _ = second.wait();
    let log = std::fs::read_to_string(&second_log).unwrap();
    assert_all_notes(&got, 200);
    assert!(log.contains("taking over"), "the standby says it took over: {log}");
}

#[actix_rt::test]
async fn a_standby_stops_at_once_when_told() {
    let db = TestDb::new("standbystop").await;
    let first = InProcess::start(test_config(&db.url)).await;
    let second = InProcess::spawn(test_config(&db.url));
    wait_for_answer(&format!("{}/readyz", second.base_url), StatusCode::SERVICE_UNAVAILABLE, "standing by", Duration::from_secs(15)).await;
    let started = std::time::Instant::now();
    second.stop().await.expect("a standby stops cleanly");
    assert!(started.elapsed() < Duration::from_secs(5), "stopped in {:?}", started.elapsed());
    wait_for_answer(&format!("{}/metrics", first.base_url), StatusCode::OK, "rowhook_active 1", Duration::from_secs(1)).await;
    first.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn an_instance_whose_lock_was_taken_while_its_session_was_gone_stops_and_the_other_delivers() {
    let mut db = TestDb::new("locklost").await;
    let receiver = Receiver::start().await;
    db.add_webhook(&receiver.url(), &["note.added"], SECRET, true).await;
    let first = InProcess::start(test_config(&db.url)).await;
    let second = InProcess::spawn(test_config(&db.url));
    wait_for_answer(&format!("{}/readyz", second.base_url), StatusCode::SERVICE_UNAVAILABLE, "standing by", Duration::from_secs(15)).await;
    write_notes(&db.url, 1, 51, 10).await;
    wait_for_unique(&receiver, 50, Duration::from_secs(30)).await;

    // The first instance's lock session ends (as when a network blink outlasts the
    // server's patience); the standby, waiting in GET_LOCK, gets the lock at once.
    let lock = rowhook::state::instance::lock_name(&db.name);
    let holder: Option<u64> = db.conn.exec_first("SELECT IS_USED_LOCK(?)", (lock.as_str(),)).await.unwrap();
    db.exec(&format!("KILL CONNECTION {}", holder.expect("the active instance holds the lock"))).await;
    second.wait_ready().await;
    let stopped = first.finished(Duration::from_secs(15)).await;
    assert!(
        matches!(&stopped, Err(rowhook::daemon::RunError::LockLost(lost)) if lost.name == lock),
        "the first instance stops and says why: {stopped:?}"
    );

    write_notes(&db.url, 51, 101, 10).await;
    let got = wait_for_unique(&receiver, 100, Duration::from_secs(30)).await;
    assert_all_notes(&got, 100);
    second.stop().await.expect("clean stop");
}

/// `rowhook check-config` of the built binary against `db_url`: its stdout.
fn check_config(db_url: &str) -> String {
    let output = std::process::Command::new(crate::support::rowhook_bin())
        .args(["check-config", "--config", concat!(env!("CARGO_MANIFEST_DIR"), "/config/rowhook.toml")])
        .env("ROWHOOK__SOURCE__URL", db_url)
        .env("ROWHOOK__LOG__LEVEL", "warn")
        .output()
        .expect("run rowhook check-config");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "check-config failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

#[actix_rt::test]
async fn check_config_says_whether_another_instance_is_active() {
    let db = TestDb::new("lockcheck").await;
    let free = check_config(&db.url);
    assert!(free.contains(&format!("instance lock `rowhook:{}`: free", db.name)), "{free}");
    let rowhook = InProcess::start(test_config(&db.url)).await;
    let held = check_config(&db.url);
    assert!(held.contains("held by connection") && held.contains("stands by"), "{held}");
    rowhook.stop().await.expect("clean stop");
}
