//! End to end: row changes on a real MariaDB become signed deliveries to a
//! real HTTP receiver, retried, recorded, and never lost across restarts.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use mysql_async::prelude::*;

use crate::rowhook::{test_config, InProcess, TestDb};
use crate::support::{Received, Receiver};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ALL: [&str; 6] = ["thread.created", "thread.updated", "thread.deleted", "email.received", "email.sent", "note.added"];

fn by_type(received: &[Received]) -> HashMap<String, serde_json::Value> {
    received.iter().map(|r| (r.header("x-webhook-event").unwrap_or("").to_string(), r.json())).collect()
}

fn assert_signed(r: &Received, secret: &str) {
    crate::support::assert_signed_with(r, secret);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("user-agent").unwrap_or("").starts_with("rowhook/"));
    let body = r.json();
    assert_eq!(body["id"].as_str(), r.header("webhook-id"), "body id is the webhook-id");
    assert_eq!(body["type"].as_str(), r.header("x-webhook-event"));
    assert!(!body["id"].as_str().unwrap().contains('.'));
}

#[actix_rt::test]
async fn the_six_events_arrive_signed_with_their_payloads() {
    let mut db = TestDb::new("six_events").await;
    let receiver = Receiver::start().await;
    let webhook = db.add_webhook(&receiver.url(), &ALL, SECRET, true).await;
    let rowhook = InProcess::start(test_config(&db.url)).await;

    db.exec("INSERT INTO threads (id, subject) VALUES (41, 'Printer on fire')").await;
    db.exec("UPDATE threads SET status = 'pending', assigned_to = 9 WHERE id = 41").await;
    db.exec(
        "INSERT INTO emails (id, thread_id, direction, subject, from_address, to_addresses, body_text, received_at) \
         VALUES (5, 41, 'incoming', 'Help', 'alice@example.com', '[\"support@example.com\"]', 'private body', '2026-11-28 10:00:00')",
    )
    .await;
    db.exec(
        "INSERT INTO emails (id, thread_id, direction, subject, from_address, to_addresses) \
         VALUES (6, 41, 'outgoing', 'Re: Help', 'support@example.com', '[\"alice@example.com\", \"bob@example.com\"]')",
    )
    .await;
    db.exec("UPDATE emails SET sent_at = '2026-11-28 10:05:00.000' WHERE id = 6").await;
    db.exec("INSERT INTO notes (id, thread_id, user_id, content) VALUES (3, 41, 7, 'internal only')").await;
    db.exec("DELETE FROM threads WHERE id = 41").await;

    let received = receiver.wait_for(6, Duration::from_secs(15)).await;
    assert_eq!(received.len(), 6, "six deliveries, got {:?}", received.iter().map(Received::text).collect::<Vec<_>>());
    for r in &received {
        assert_signed(r, SECRET);
    }
    let events = by_type(&received);
    let data = |t: &str| events.get(t).unwrap_or_else(|| panic!("{t} not delivered"))["data"].clone();

    let created = data("thread.created");
    assert_eq!(created["thread_id"], 41);
    assert_eq!(created["subject"], "Printer on fire");
    assert_eq!(created["status"], "open");
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));

    let updated = data("thread.updated");
    assert_eq!(updated["thread_id"], 41);
    assert_eq!(updated["changes"]["status"], serde_json::json!({"old": "open", "new": "pending"}));
    assert_eq!(updated["changes"]["assigned_to"], serde_json::json!({"old": null, "new": 9}));
    assert!(updated["changes"].get("updated_at").is_none());

    assert_eq!(data("thread.deleted"), serde_json::json!({"thread_id": 41, "subject": "Printer on fire"}));

    let email_received = data("email.received");
    assert_eq!(
        email_received,
        serde_json::json!({"email_id": 5, "thread_id": 41, "subject": "Help", "from": "alice@example.com", "received_at": "2026-11-28T10:00:00"})
    );

    let sent = data("email.sent");
    assert_eq!(sent["email_id"], 6);
    assert_eq!(sent["to"], serde_json::json!(["alice@example.com", "bob@example.com"]));
    assert_eq!(sent["sent_at"], "2026-11-28T10:05:00");

    let note = data("note.added");
    assert_eq!(note["note_id"], 3);
    assert_eq!(note["user_id"], 7);
    assert!(note.get("content").is_none(), "content is private by default");

    // Every attempt is recorded.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = db.deliveries(webhook).await;
    assert_eq!(rows.len(), 6);
    for (event_id, status, attempts, response) in &rows {
        assert_eq!((status.as_str(), *attempts, *response), ("delivered", 1, Some(200)), "{event_id}");
    }
    let triggered: Option<Option<String>> = db
        .conn
        .exec_first("SELECT CAST(last_triggered_at AS CHAR) FROM webhooks WHERE id = ?", (webhook,))
        .await
        .unwrap();
    assert!(triggered.flatten().is_some(), "last_triggered_at is set");
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn only_subscribed_and_active_webhooks_receive() {
    let mut db = TestDb::new("subscriptions").await;
    let notes_only = Receiver::start().await;
    let inactive = Receiver::start().await;
    let notes_hook = db.add_webhook(&notes_only.url(), &["note.added"], "a-plain-php-style-secret-0123456789", true).await;
    let inactive_hook = db.add_webhook(&inactive.url(), &["*"], SECRET, false).await;
    let rowhook = InProcess::start(test_config(&db.url)).await;

    db.exec("INSERT INTO threads (id, subject) VALUES (1, 'a')").await;
    db.exec("INSERT INTO notes (thread_id, user_id, content) VALUES (1, 2, 'x')").await;
    db.exec("UPDATE threads SET subject = 'b' WHERE id = 1").await;

    let got = notes_only.wait_for(1, Duration::from_secs(10)).await;
    // Give any wrong delivery time to show up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_after = notes_only.received();
    assert_eq!(got_after.len(), 1, "only note.added: {:?}", got_after.iter().map(Received::text).collect::<Vec<_>>());
    assert_eq!(got[0].header("x-webhook-event"), Some("note.added"));
    assert_signed(&got[0], "a-plain-php-style-secret-0123456789");
    assert!(inactive.received().is_empty(), "an inactive webhook gets nothing");
    assert_eq!(db.deliveries(notes_hook).await.len(), 1);
    assert!(db.deliveries(inactive_hook).await.is_empty());

    // Activating it by SQL takes effect through the binlog, without a restart.
    db.exec(&format!("UPDATE webhooks SET is_active = 1 WHERE id = {inactive_hook}")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    db.exec("INSERT INTO notes (thread_id, user_id, content) VALUES (1, 3, 'y')").await;
    let got = inactive.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "re-activated webhook receives the next event");
    assert_eq!(got[0].header("x-webhook-event"), Some("note.added"));
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn failing_receiver_gets_scheduled_retries_then_the_webhook_is_disabled() {
    let mut db = TestDb::new("retries").await;
    let receiver = Receiver::start().await;
    receiver.set_status(500);
    let webhook = db.add_webhook(&receiver.url(), &["thread.created"], SECRET, true).await;
    let mut config = test_config(&db.url);
    // 3 attempts per delivery (2 retries of 100 ms), disabled at 4 consecutive failures.
    config.delivery.auto_disable_after = 4;
    let rowhook = InProcess::start(config).await;

    db.exec("INSERT INTO threads (subject) VALUES ('first')").await;
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got_after = receiver.received();
    assert_eq!(got_after.len(), 3, "the schedule gives 3 attempts");
    let ids: HashSet<_> = got.iter().map(|r| r.header("webhook-id").unwrap().to_string()).collect();
    assert_eq!(ids.len(), 1, "every retry carries the same event id");
    for pair in got.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(75), "retries wait for the schedule (80-120 ms): {gap:?}");
    }
    let rows = db.deliveries(webhook).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].1.as_str(), rows[0].2, rows[0].3), ("failed", 3, Some(500)));
    let (active, failed): (bool, i64) =
        db.conn.exec_first("SELECT is_active, failed_attempts FROM webhooks WHERE id = ?", (webhook,)).await.unwrap().unwrap();
    assert!(active);
    assert_eq!(failed, 3);

    // The 4th consecutive failure disables it.
    db.exec("INSERT INTO threads (subject) VALUES ('second')").await;
    receiver.wait_for(4, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (active, failed): (bool, i64) =
        db.conn.exec_first("SELECT is_active, failed_attempts FROM webhooks WHERE id = ?", (webhook,)).await.unwrap().unwrap();
    assert!(!active, "auto-disabled at the limit");
    assert_eq!(failed, 4);
    assert_eq!(receiver.received().len(), 4, "no attempt after disabling");

    // A disabled webhook gets nothing new.
    db.exec("INSERT INTO threads (subject) VALUES ('third')").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(receiver.received().len(), 4);
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn recovering_receiver_gets_the_retry_and_resets_the_failure_count() {
    let mut db = TestDb::new("recover").await;
    let receiver = Receiver::start().await;
    receiver.set_status(503);
    let webhook = db.add_webhook(&receiver.url(), &["note.added"], SECRET, true).await;
    let mut config = test_config(&db.url);
    config.delivery.retry_schedule = vec![Duration::from_millis(400)];
    let rowhook = InProcess::start(config).await;
    db.exec("INSERT INTO notes (thread_id, user_id, content) VALUES (1, 1, 'x')").await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    receiver.set_status(200);
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = db.deliveries(webhook).await;
    assert_eq!((rows[0].1.as_str(), rows[0].2, rows[0].3), ("delivered", 2, Some(200)));
    let failed: Option<i64> = db.conn.exec_first("SELECT failed_attempts FROM webhooks WHERE id = ?", (webhook,)).await.unwrap();
    assert_eq!(failed, Some(0), "a success resets the count");
    rowhook.stop().await.expect("clean stop");
}

/// Inserts notes `from..to` (ids) in transactions of `per_tx` rows.
pub(crate) async fn write_notes(url: &str, from: u64, to: u64, per_tx: u64) {
    let mut conn = mysql_async::Conn::from_url(url).await.unwrap();
    let mut id = from;
    while id < to {
        let end = (id + per_tx).min(to);
        let values: Vec<String> = (id..end).map(|i| format!("({i}, 1, 1, 'n')")).collect();
        conn.query_drop(format!("INSERT INTO notes (id, thread_id, user_id, content) VALUES {}", values.join(",")))
            .await
            .unwrap();
        id = end;
    }
}

/// Every note id in `1..=n` arrived; duplicates only under the same event id.
pub(crate) fn assert_all_notes(received: &[Received], n: u64) {
    let mut by_id: HashMap<String, serde_json::Value> = HashMap::new();
    let mut notes = HashSet::new();
    for r in received {
        let body = r.json();
        let id = body["id"].as_str().unwrap().to_string();
        notes.insert(body["data"]["note_id"].as_u64().unwrap());
        if let Some(previous) = by_id.insert(id.clone(), body.clone()) {
            assert_eq!(previous, body, "a duplicate delivery carries the same event under the same id {id}");
        }
    }
    let missing: Vec<u64> = (1..=n).filter(|i| !notes.contains(i)).collect();
    assert!(missing.is_empty(), "{} notes never arrived, first: {:?}", missing.len(), &missing[..missing.len().min(10)]);
    assert_eq!(by_id.len() as u64, n, "one event id per note");
}

pub(crate) async fn wait_for_unique(receiver: &Receiver, n: usize, timeout: Duration) -> Vec<Received> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let got = receiver.received();
        let unique: HashSet<_> = got.iter().filter_map(|r| r.header("webhook-id").map(str::to_string)).collect();
        if unique.len() >= n || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn a_restart_in_process_loses_nothing() {
    let mut db = TestDb::new("restart").await;
    let receiver = Receiver::start().await;
    db.add_webhook(&receiver.url(), &["note.added"], SECRET, true).await;
    let config = test_config(&db.url);

    let rowhook = InProcess::start(config.clone()).await;
    let writer = actix_rt::spawn({
        let url = db.url.clone();
        async move { write_notes(&url, 1, 301, 5).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    rowhook.stop().await.expect("clean stop");
    writer.await.unwrap();
    // Written while rowhook is down.
    write_notes(&db.url, 301, 701, 10).await;
    let rowhook = InProcess::start(config).await;
    write_notes(&db.url, 701, 1001, 10).await;

    let got = wait_for_unique(&receiver, 1000, Duration::from_secs(60)).await;
    assert_all_notes(&got, 1000);
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn kill_9_of_the_binary_loses_nothing() {
    let mut db = TestDb::new("kill9").await;
    let receiver = Receiver::start().await;
    db.add_webhook(&receiver.url(), &["note.added"], SECRET, true).await;
    let server_id = crate::rowhook::server_id();
    let spawn = || {
        let listen = crate::rowhook::free_addr();
        let child = crate::rowhook::daemon_command(&db.url, server_id, listen).spawn().expect("start rowhook");
        (child, listen)
    };
    let wait_ready = |listen: std::net::SocketAddr| async move {
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = client.get(format!("http://{listen}/readyz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("rowhook binary did not become ready");
    };

    let (mut child, listen) = spawn();
    wait_ready(listen).await;
    let writer = actix_rt::spawn({
        let url = db.url.clone();
        async move { write_notes(&url, 1, 1001, 4).await }
    });
    // Kill it in the middle of the stream, twice.
    for pause in [300, 500] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        child.kill().expect("kill -9");
        child.wait().unwrap();
        let (next, listen) = spawn();
        child = next;
        wait_ready(listen).await;
    }
    writer.await.unwrap();
    let got = wait_for_unique(&receiver, 1000, Duration::from_secs(60)).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_all_notes(&got, 1000);
}

#[actix_rt::test]
async fn gone_disables_the_webhook_at_once() {
    let mut db = TestDb::new("gone").await;
    let gone = Receiver::start().await;
    gone.set_status(410);
    let webhook = db.add_webhook(&gone.url(), &["note.added"], SECRET, true).await;
    let rowhook = InProcess::start(test_config(&db.url)).await;

    db.exec("INSERT INTO notes (thread_id, user_id, content) VALUES (1, 1, 'x')").await;
    gone.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    db.exec("INSERT INTO notes (thread_id, user_id, content) VALUES (1, 1, 'y')").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(gone.received().len(), 1, "no retry and nothing more after 410 Gone");
    let active: Option<bool> = db.conn.exec_first("SELECT is_active FROM webhooks WHERE id = ?", (webhook,)).await.unwrap();
    assert_eq!(active, Some(false));
    let rows = db.deliveries(webhook).await;
    assert_eq!((rows[0].1.as_str(), rows[0].2, rows[0].3), ("failed", 1, Some(410)));
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn private_targets_are_refused_by_default_and_recorded() {
    let mut db = TestDb::new("ssrf").await;
    let receiver = Receiver::start().await;
    let by_ip = db.add_webhook(&receiver.url(), &["note.added"], SECRET, true).await;
    let by_name = db.add_webhook(&receiver.url().replace("127.0.0.1", "localhost"), &["note.added"], SECRET, true).await;
    let mut config = test_config(&db.url);
    config.delivery.allow_private_targets = false;
    config.delivery.auto_disable_after = 100;
    let rowhook = InProcess::start(config).await;

    db.exec("INSERT INTO notes (thread_id, user_id, content) VALUES (1, 1, 'x')").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(receiver.received().is_empty(), "nothing reaches a loopback address");
    for webhook in [by_ip, by_name] {
        let (attempts, error): (i64, Option<String>) = db
            .conn
            .exec_first("SELECT attempts, last_error FROM webhook_deliveries WHERE webhook_id = ?", (webhook,))
            .await
            .unwrap()
            .expect("a delivery row");
        assert!(attempts >= 1, "the refusal is a recorded attempt");
        let error = error.unwrap_or_default();
        assert!(error.contains("allow_private_targets"), "the error says how to allow it: {error}");
    }
    rowhook.stop().await.expect("clean stop");
}
