//! Replay from the history: a webhook's stored deliveries of a time window
//! go out again, with their event ids, each new attempt recorded.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use serde_json::{json, Value};

use crate::rowhook::{test_config, InProcess, TestDb};
use crate::support::Receiver;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new().post(format!("{base}{path}")).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// (status, attempts) per event id of a webhook's deliveries.
async fn deliveries(db: &mut TestDb, webhook: u64) -> Vec<(String, String, i64)> {
    db.conn
        .exec("SELECT event_id, status, attempts FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id", (webhook,))
        .await
        .unwrap()
}

async fn wait_until(db: &mut TestDb, webhook: u64, done: impl Fn(&[(String, String, i64)]) -> bool) -> Vec<(String, String, i64)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = deliveries(db, webhook).await;
        if done(&rows) || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rfc3339(offset_secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_secs);
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

#[actix_rt::test]
async fn a_failed_window_is_sent_again_with_its_event_ids() {
    let mut db = TestDb::new("replay").await;
    let receiver = Receiver::start().await;
    receiver.set_status(500);
    let webhook = db.add_webhook(&receiver.url(), &["*"], SECRET, true).await;
    let rowhook = InProcess::start(test_config(&db.url)).await;
    let base = rowhook.base_url.clone();
    db.exec("INSERT INTO threads (id, subject) VALUES (1, 'one'), (2, 'two')").await;
    db.exec("INSERT INTO notes (thread_id, user_id, content) VALUES (1, 1, 'n')").await;
    // Three attempts each (the test schedule), then given up.
    let failed = wait_until(&mut db, webhook, |rows| rows.len() == 3 && rows.iter().all(|r| r.1 == "failed")).await;
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(failed.iter().all(|(_, status, attempts)| status == "failed" && *attempts == 3), "{failed:?}");

    receiver.set_status(200);
    receiver.clear();
    // Only notes first: one delivery.
    let (status, answer) =
        post(&base, &format!("/api/webhooks/{webhook}/replay"), json!({"since": rfc3339(-3600), "event_types": ["note.added"]})).await;
    assert_eq!((status, &answer["data"]["replayed"]), (202, &json!(1)), "{answer}");
    // Then the rest of the window.
    let (status, answer) = post(&base, &format!("/api/webhooks/{webhook}/replay"), json!({"since": rfc3339(-3600), "until": rfc3339(60)})).await;
    assert_eq!(status, 202, "{answer}");
    let rows = wait_until(&mut db, webhook, |rows| rows.iter().all(|r| r.1 == "delivered")).await;
    assert!(rows.iter().all(|(_, status, attempts)| status == "delivered" && *attempts == 4), "a new attempt recorded: {rows:?}");
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    let sent: BTreeSet<String> = got.iter().map(|r| r.header("webhook-id").unwrap().to_string()).collect();
    let stored: BTreeSet<String> = rows.iter().map(|r| r.0.clone()).collect();
    assert_eq!(sent, stored, "the same event ids as the first time");

    // Delivered ones go again only with status "all"; a window before them replays nothing.
    let (_, answer) = post(&base, &format!("/api/webhooks/{webhook}/replay"), json!({"since": rfc3339(-3600)})).await;
    assert_eq!(answer["data"]["replayed"], 0, "nothing failed any more");
    let (_, answer) = post(&base, &format!("/api/webhooks/{webhook}/replay"), json!({"since": rfc3339(-7200), "until": rfc3339(-3600), "status": "all"})).await;
    assert_eq!(answer["data"]["replayed"], 0, "nothing in that window");
    let (_, answer) = post(&base, &format!("/api/webhooks/{webhook}/replay"), json!({"since": rfc3339(-3600), "status": "all"})).await;
    assert_eq!(answer["data"]["replayed"], 3);
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn replay_refuses_what_it_cannot_do_with_the_reason() {
    let mut db = TestDb::new("replay_refused").await;
    let active = db.add_webhook("http://127.0.0.1:9/", &["*"], SECRET, true).await;
    let inactive = db.add_webhook("http://127.0.0.1:9/", &["*"], SECRET, false).await;
    let rowhook = InProcess::start(test_config(&db.url)).await;
    let base = rowhook.base_url.clone();
    for (body, field) in [
        (json!({}), "since"),
        (json!({"since": "last week"}), "since"),
        (json!({"since": rfc3339(0), "until": rfc3339(-10)}), "until"),
        (json!({"since": rfc3339(-10), "status": "pending"}), "status"),
        (json!({"since": rfc3339(-10), "event_types": ["no.such"]}), "event_types"),
    ] {
        let (status, answer) = post(&base, &format!("/api/webhooks/{active}/replay"), body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(answer["details"].get(field).is_some(), "{body}: {answer}");
    }
    let (status, _) = post(&base, "/api/webhooks/999999/replay", json!({"since": rfc3339(-10)})).await;
    assert_eq!(status, 404);
    let (status, answer) = post(&base, &format!("/api/webhooks/{inactive}/replay"), json!({"since": rfc3339(-10)})).await;
    assert_eq!(status, 409, "{answer}");
    rowhook.stop().await.expect("clean stop");
}

/// Where the source's binlog stands now: `file:position`.
async fn binlog_now(db: &mut TestDb) -> String {
    let row: mysql_async::Row = db.conn.query_first("SHOW MASTER STATUS").await.unwrap().unwrap();
    format!("{}:{}", row.get::<String, _>(0).unwrap(), row.get::<u64, _>(1).unwrap())
}

#[actix_rt::test]
async fn replay_from_the_binlog_brings_back_pruned_history_and_reaches_a_webhook_that_did_not_exist() {
    let mut db = TestDb::new("replay_binlog").await;
    let receiver = Receiver::start().await;
    let early = db.add_webhook(&format!("{}/early", receiver.base_url()), &["note.added"], SECRET, true).await;
    let rowhook = InProcess::start(test_config(&db.url)).await;
    let base = rowhook.base_url.clone();
    let start = binlog_now(&mut db).await;
    let since = rfc3339(-1);
    for k in 1..=40 {
        db.exec(&format!("INSERT INTO notes (thread_id, user_id, content) VALUES ({}, 1, 'n')", k % 4)).await;
    }
    let first = receiver.wait_for(40, Duration::from_secs(20)).await;
    let ids: BTreeSet<String> = first.iter().map(|r| r.header("webhook-id").unwrap().to_string()).collect();
    assert_eq!(ids.len(), 40);
    // The history is pruned; a webhook registered afterwards.
    db.exec("DELETE FROM webhook_deliveries").await;
    let late = db.add_webhook(&format!("{}/late", receiver.base_url()), &["note.added", "thread.created"], SECRET, true).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    receiver.clear();

    let (status, answer) = post(&base, &format!("/api/webhooks/{early}/replay"), json!({"from": "binlog", "position": start})).await;
    assert_eq!(status, 202, "{answer}");
    let again = receiver.wait_for(40, Duration::from_secs(30)).await;
    let again_ids: BTreeSet<String> = again.iter().filter(|r| r.path == "/early").map(|r| r.header("webhook-id").unwrap().to_string()).collect();
    assert_eq!(again_ids, ids, "the same events, with their ids, once more");
    receiver.clear();
    // A busy replayer is said so; wait for the first to end.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, answer) = post(&base, &format!("/api/webhooks/{late}/replay"), json!({"from": "binlog", "since": since, "event_types": ["note.added"]})).await;
    assert_eq!(status, 202, "{answer}");
    let late_got = receiver.wait_for(40, Duration::from_secs(60)).await;
    let late_ids: BTreeSet<String> = late_got.iter().filter(|r| r.path == "/late").map(|r| r.header("webhook-id").unwrap().to_string()).collect();
    assert_eq!(late_ids, ids, "a webhook that did not exist then gets them too");
    assert!(late_got.iter().all(|r| r.path == "/late"), "only the webhook replayed for");
    let stored: Vec<(u64, i64)> = db.conn.query("SELECT webhook_id, COUNT(*) FROM webhook_deliveries GROUP BY webhook_id ORDER BY webhook_id").await.unwrap();
    assert_eq!(stored, vec![(early, 40), (late, 40)]);
    // The console shows the replay's outcome on its webhook's page (no token configured: open on loopback).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let progress = loop {
        let html = reqwest::get(format!("{base}/console/live/webhooks/{late}/backfills")).await.unwrap().text().await.unwrap();
        if html.contains("data-state=\"done\"") || std::time::Instant::now() > deadline {
            break html;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(progress.contains("data-state=\"done\"") && progress.contains("40 deliveries queued"), "{progress}");
    let other = reqwest::get(format!("{base}/console/live/webhooks/{early}/backfills")).await.unwrap().text().await.unwrap();
    assert!(!other.contains("binlog-replay"), "another webhook's page does not show an ended replay: {other}");
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn a_replay_from_before_the_oldest_binlog_is_refused_with_the_oldest() {
    let mut db = TestDb::new("replay_purged").await;
    let webhook = db.add_webhook("http://127.0.0.1:9/", &["*"], SECRET, true).await;
    let rowhook = InProcess::start(test_config(&db.url)).await;
    let base = rowhook.base_url.clone();
    let row: mysql_async::Row = db.conn.query_first("SHOW BINARY LOGS").await.unwrap().unwrap();
    let oldest: String = row.get(0).unwrap();
    for body in [json!({"from": "binlog", "position": "binlog.000000:4"}), json!({"from": "binlog", "since": "2000-01-01T00:00:00Z"})] {
        let (status, answer) = post(&base, &format!("/api/webhooks/{webhook}/replay"), body.clone()).await;
        assert_eq!(status, 409, "{body}: {answer}");
        assert!(answer["details"]["oldest"].as_str().unwrap_or_default().contains(&oldest), "{body}: {answer}");
    }
    for (body, field) in [
        (json!({"from": "binlog"}), "from"),
        (json!({"from": "binlog", "since": rfc3339(-5), "gtid": "0-1-1"}), "from"),
        (json!({"from": "binlog", "position": "binlog"}), "position"),
        (json!({"from": "binlog", "gtid": "0-1-1'; --"}), "gtid"),
        (json!({"from": "binlog", "since": rfc3339(-5), "until": rfc3339(0)}), "until"),
        (json!({"from": "tape", "since": rfc3339(-5)}), "from"),
    ] {
        let (status, answer) = post(&base, &format!("/api/webhooks/{webhook}/replay"), body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(answer["details"].get(field).is_some(), "{body}: {answer}");
    }
    rowhook.stop().await.expect("clean stop");
}
