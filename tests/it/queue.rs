//! The delivery queue and the hand-off: enqueueing reads back the ids of new
//! rows, the router hands those to the delivery actor, and deliveries go out
//! once each, in commit order, whether handed over or claimed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use rowhook::state::store::{NewDelivery, Store};

use crate::rowhook::{test_config, InProcess, TestDb};
use crate::support::{Received, Receiver};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn delivery(webhook_id: u64, event_id: &str) -> NewDelivery<'_> {
    NewDelivery { webhook_id, event_id, event_type: "note.added", payload: "{}", group_key: None }
}

async fn row_ids(db: &mut TestDb, webhook_id: u64) -> Vec<u64> {
    db.conn
        .exec("SELECT id FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id", (webhook_id,))
        .await
        .unwrap()
}

#[actix_rt::test]
async fn a_delivery_for_a_webhook_deleted_meanwhile_is_dropped_and_the_rest_stored() {
    let mut db = TestDb::new("enqueue_gone").await;
    let kept = db.add_webhook("http://127.0.0.1:9/", &["*"], SECRET, true).await;
    let gone = db.add_webhook("http://127.0.0.1:9/", &["*"], SECRET, true).await;
    db.exec(&format!("DELETE FROM webhooks WHERE id = {gone}")).await;
    let store = Store::connect(&db.url).await.unwrap();
    let stored = store
        .enqueue(&[delivery(kept, "evt_a"), delivery(gone, "evt_a"), delivery(kept, "evt_b")])
        .await
        .expect("a gone webhook does not fail the batch");
    let ids = row_ids(&mut db, kept).await;
    assert_eq!(stored, vec![Some(ids[0]), None, Some(ids[1])], "the kept webhook's rows, in order; nothing for the gone one");
    assert!(row_ids(&mut db, gone).await.is_empty());
}

#[actix_rt::test]
async fn enqueue_reads_back_the_ids_of_new_rows_only() {
    let mut db = TestDb::new("enqueue").await;
    let hook = db.add_webhook("http://127.0.0.1:9/", &["*"], SECRET, true).await;
    let store = Store::connect(&db.url).await.unwrap();

    let first = store.enqueue(&[delivery(hook, "evt_a"), delivery(hook, "evt_b")]).await.unwrap();
    let ids = row_ids(&mut db, hook).await;
    assert_eq!(first, ids.iter().copied().map(Some).collect::<Vec<_>>(), "the new rows' ids, in order");

    // Stored again (a batch re-read after a crash): a row already attempted
    // is not new; one still waiting for its first attempt is the same row.
    db.exec("UPDATE webhook_deliveries SET status = 'delivered', attempts = 1 WHERE event_id = 'evt_a'").await;
    let again = store
        .enqueue(&[delivery(hook, "evt_a"), delivery(hook, "evt_b"), delivery(hook, "evt_c")])
        .await
        .unwrap();
    let ids = row_ids(&mut db, hook).await;
    assert_eq!(ids.len(), 3, "no row twice");
    assert_eq!(again, vec![None, Some(ids[1]), Some(ids[2])]);
}

#[actix_rt::test]
async fn without_returning_enqueue_stores_once_and_reads_nothing_back() {
    // `Store::new` does not ask the server, as with MySQL (no INSERT ... RETURNING).
    let mut db = TestDb::new("enqueue_plain").await;
    let hook = db.add_webhook("http://127.0.0.1:9/", &["*"], SECRET, true).await;
    let store = Store::new(&db.url).unwrap();
    let batch = [delivery(hook, "evt_a"), delivery(hook, "evt_b")];
    assert_eq!(store.enqueue(&batch).await.unwrap(), vec![None, None]);
    assert_eq!(store.enqueue(&batch).await.unwrap(), vec![None, None]);
    assert_eq!(row_ids(&mut db, hook).await.len(), 2, "no row twice");
}

fn note_id(r: &Received) -> u64 {
    r.json()["data"]["note_id"].as_u64().expect("note_id")
}

/// `rowhook_delivery_waves_total{source}` from /metrics.
async fn waves(rowhook: &InProcess, source: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", rowhook.base_url)).await.unwrap().text().await.unwrap();
    let prefix = format!("rowhook_delivery_waves_total{{source=\"{source}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Waits until every delivery of the webhook is recorded as delivered; returns
/// (event id -> attempts).
async fn wait_all_delivered(db: &mut TestDb, webhook_id: u64, n: usize) -> HashMap<String, i64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = db.deliveries(webhook_id).await;
        if rows.len() == n && rows.iter().all(|(_, status, _, _)| status == "delivered") {
            return rows.into_iter().map(|(id, _, attempts, _)| (id, attempts)).collect();
        }
        assert!(Instant::now() < deadline, "not all {n} deliveries recorded as delivered within 30 s: {rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn a_steady_stream_is_handed_over_and_goes_out_once_each_in_commit_order() {
    let mut db = TestDb::new("handoff").await;
    let receiver = Receiver::start().await;
    let hook = db.add_webhook(&receiver.url(), &["note.added"], SECRET, true).await;
    let rowhook = InProcess::start(test_config(&db.url)).await;
    let mut writer = mysql_async::Conn::from_url(db.url.as_str()).await.unwrap();
    let insert = "INSERT INTO notes (id, thread_id, user_id, content) VALUES (?, 1, 1, 'n')";

    // One note per transaction, a little apart: the webhook keeps up.
    for id in 1..=60u64 {
        writer.exec_drop(insert, (id,)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let attempts = wait_all_delivered(&mut db, hook, 60).await;
    assert!(attempts.values().all(|a| *a == 1), "each delivered with one attempt, none sent twice: {attempts:?}");
    let handed_over = waves(&rowhook, "handed_over").await;
    assert!(handed_over > 0, "fresh deliveries were handed over, not claimed");

    // One failed attempt: the actor falls back to claiming, then hands over again.
    receiver.set_status(500);
    writer.exec_drop(insert, (61u64,)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !receiver.received().iter().any(|r| note_id(r) == 61) {
        assert!(Instant::now() < deadline, "note 61 was not attempted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    receiver.set_status(200);
    for id in 62..=120u64 {
        writer.exec_drop(insert, (id,)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let attempts = wait_all_delivered(&mut db, hook, 120).await;

    let received = receiver.received();
    let mut requests: HashMap<String, i64> = HashMap::new();
    for r in &received {
        *requests.entry(r.header("webhook-id").unwrap().to_string()).or_default() += 1;
    }
    assert_eq!(requests, attempts, "every request the receiver got is a recorded attempt");
    let retried: Vec<&String> = attempts.iter().filter(|(_, a)| **a > 1).map(|(id, _)| id).collect();
    assert_eq!(retried.len(), 1, "only the delivery that got the 500 was attempted twice: {retried:?}");

    // First attempts in commit order (max_in_flight 1).
    let mut seen = std::collections::HashSet::new();
    let firsts: Vec<u64> = received.iter().filter(|r| seen.insert(r.header("webhook-id").unwrap().to_string())).map(note_id).collect();
    assert_eq!(firsts, (1..=120).collect::<Vec<u64>>(), "first attempts in commit order");

    assert!(waves(&rowhook, "claimed").await > 0, "the retry was claimed from the queue");
    assert!(waves(&rowhook, "handed_over").await > handed_over, "handed over again after the retry");
    rowhook.stop().await.expect("clean stop");
}
