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
