//! Order per group, parallel across groups: a failing event holds back only
//! its own thread (ordering = "group"), everything (ordering = "webhook"),
//! or nothing (ordering = "none"); across retries, a re-enabled webhook and
//! `kill -9`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use serde_json::{json, Value};

use crate::rowhook::{daemon_command, free_addr, server_id, test_config, InProcess, TestDb};
use crate::support::{Received, Receiver};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A thread's events, in the order [`write_threads`] commits them.
const THREAD_EVENTS: [&str; 4] = ["thread.created", "email.received", "note.added", "thread.updated"];

/// For each thread `1..=threads`, in rounds (every thread's first event, then
/// every thread's second, ...): its creation, an incoming email, a note and
/// an update of its subject; each statement its own transaction.
async fn write_threads(url: &str, threads: u64) {
    let mut conn = mysql_async::Conn::from_url(url).await.unwrap();
    for t in 1..=threads {
        conn.exec_drop("INSERT INTO threads (id, subject) VALUES (?, ?)", (t, format!("thread {t}"))).await.unwrap();
    }
    for t in 1..=threads {
        conn.exec_drop(
            "INSERT INTO emails (thread_id, direction, subject, from_address, to_addresses, received_at) \
             VALUES (?, 'incoming', ?, 'ada@example.com', '[]', NOW())",
            (t, format!("mail of {t}")),
        )
        .await
        .unwrap();
    }
    for t in 1..=threads {
        conn.exec_drop("INSERT INTO notes (thread_id, user_id, content) VALUES (?, 1, 'n')", (t,)).await.unwrap();
    }
    for t in 1..=threads {
        conn.exec_drop("UPDATE threads SET subject = ? WHERE id = ?", (format!("thread {t} (edited)"), t)).await.unwrap();
    }
}

/// What a thread's email body contains, to fail it at the receiver.
fn email_of(thread: u64) -> String {
    format!("\"subject\":\"mail of {thread}\"")
}

/// Successful arrivals, first per event id, in arrival order: (group, type, body).
fn first_successes(received: &[Received]) -> Vec<(String, String, Value)> {
    let mut seen = HashSet::new();
    received
        .iter()
        .filter(|r| r.status == 200)
        .map(Received::json)
        .filter(|b| seen.insert(b["id"].as_str().unwrap().to_string()))
        .map(|b| (b["group"].as_str().unwrap_or_default().to_string(), b["type"].as_str().unwrap().to_string(), b))
        .collect()
}

/// Every thread's events arrived once each, in commit order.
fn assert_in_order_per_thread(received: &[Received], threads: u64) {
    let mut by_group: HashMap<String, Vec<String>> = HashMap::new();
    for (group, event_type, _) in first_successes(received) {
        by_group.entry(group).or_default().push(event_type);
    }
    for t in 1..=threads {
        assert_eq!(by_group.get(&t.to_string()).map(Vec::as_slice), Some(&THREAD_EVENTS.map(String::from)[..]), "thread {t}");
    }
}

/// Waits until `n` distinct events were delivered (200).
async fn wait_delivered(receiver: &Receiver, n: usize, timeout: Duration) -> Vec<Received> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = receiver.received();
        if first_successes(&got).len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The config of these tests: retries a second apart, enough of them.
fn config(url: &str) -> rowhook::config::Config {
    let mut config = test_config(url);
    config.delivery.retry_schedule = vec![Duration::from_secs(1); 5];
    config.delivery.retry_jitter = 0.0;
    config
}

async fn api(base: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[actix_rt::test]
async fn a_failing_event_holds_back_only_its_own_thread() {
    let mut db = TestDb::new("order_group").await;
    let receiver = Receiver::start().await;
    let webhook = db.add_webhook(&receiver.url(), &["*"], SECRET, true).await;
    receiver.fail_matching(&email_of(7), 3);
    let rowhook = InProcess::start(config(&db.url)).await;
    write_threads(&db.url, 50).await;

    // While thread 7's email waits for its retry, its later events wait behind it, in the history too.
    let deadline = Instant::now() + Duration::from_secs(10);
    let waiting = loop {
        let (_, page) = api(&rowhook.base_url, reqwest::Method::GET, &format!("/api/webhooks/{webhook}/deliveries?status=waiting&per_page=100"), None).await;
        let rows = page["data"].as_array().cloned().unwrap_or_default();
        // Until the other threads are through and thread 7's later events wait alone.
        if (rows.len() == 2 && rows.iter().all(|d| d["group_key"] == "7")) || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let email: Vec<(u64, String)> = db
        .conn
        .exec("SELECT id, event_type FROM webhook_deliveries WHERE webhook_id = ? AND group_key = '7' ORDER BY id", (webhook,))
        .await
        .unwrap();
    assert_eq!(email.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(), THREAD_EVENTS, "thread 7's deliveries, one group");
    let waiting_of_7: Vec<&Value> = waiting.iter().filter(|d| d["group_key"] == "7").collect();
    assert_eq!(waiting_of_7.len(), 2, "the note and the update wait: {waiting:#?}");
    for d in &waiting_of_7 {
        assert_eq!(d["status"], "waiting");
        assert_eq!(d["waiting_for"], email[1].0, "they wait for the email's delivery");
    }
    let email_row: Vec<(String, i64)> =
        db.conn.exec("SELECT status, attempts FROM webhook_deliveries WHERE id = ?", (email[1].0,)).await.unwrap();
    assert_eq!(email_row[0].0, "pending", "seen while the email still waited for its retry (attempts {})", email_row[0].1);

    let got = wait_delivered(&receiver, 200, Duration::from_secs(30)).await;
    assert_in_order_per_thread(&got, 50);
    let failures = got.iter().filter(|r| r.status != 200).count();
    assert_eq!(failures, 3, "thread 7's email failed three times, nothing else failed");
    // The other threads were not held back: all of them were through before thread 7's email.
    let firsts = first_successes(&got);
    let email_7 = firsts.iter().position(|(g, t, _)| g == "7" && t == "email.received").unwrap();
    let last_other = firsts.iter().rposition(|(g, _, _)| g != "7").unwrap();
    assert!(last_other < email_7, "every other thread finished before thread 7's email got through");
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn webhook_ordering_holds_everything_behind_a_retry_and_none_holds_nothing() {
    let db = TestDb::new("order_modes").await;
    let strict = Receiver::start().await;
    let loose = Receiver::start().await;
    strict.fail_matching(&email_of(3), 2);
    loose.fail_matching(&email_of(3), 2);
    let rowhook = InProcess::start(config(&db.url)).await;
    let base = rowhook.base_url.clone();
    // Through the API: one webhook in strict order, one without order.
    let (status, created) =
        api(&base, reqwest::Method::POST, "/api/webhooks", Some(json!({"url": strict.url(), "events": ["*"], "ordering": "webhook"}))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["data"]["ordering"], "webhook");
    assert_eq!(created["data"]["ordering_is_default"], false);
    let (_, created) = api(&base, reqwest::Method::POST, "/api/webhooks", Some(json!({"url": loose.url(), "events": ["*"]}))).await;
    let loose_id = created["data"]["id"].as_u64().unwrap();
    assert_eq!(created["data"]["ordering"], "group");
    assert_eq!(created["data"]["ordering_is_default"], true);
    let (status, changed) = api(&base, reqwest::Method::PUT, &format!("/api/webhooks/{loose_id}"), Some(json!({"ordering": "none"}))).await;
    assert_eq!((status, &changed["data"]["ordering"]), (200, &json!("none")));
    let (status, refused) = api(&base, reqwest::Method::PUT, &format!("/api/webhooks/{loose_id}"), Some(json!({"ordering": "fifo"}))).await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused["details"]["ordering"].as_str().is_some_and(|m| m.contains("\"group\"")), "{refused}");
    tokio::time::sleep(Duration::from_millis(300)).await; // the change reaches the delivery actor

    write_threads(&db.url, 5).await;
    let strict_got = wait_delivered(&strict, 20, Duration::from_secs(30)).await;
    let loose_got = wait_delivered(&loose, 20, Duration::from_secs(30)).await;

    // Strict: the successful arrivals are exactly the commit order, and nothing
    // committed after thread 3's email arrived before it got through.
    let strict_order: Vec<(String, String)> = first_successes(&strict_got).into_iter().map(|(g, t, _)| (g, t)).collect();
    let mut committed = Vec::new();
    for event in THREAD_EVENTS {
        for t in 1..=5 {
            committed.push((t.to_string(), event.to_string()));
        }
    }
    assert_eq!(strict_order, committed, "webhook ordering: commit order, across the retries");
    let first_failure = strict_got.iter().position(|r| r.status != 200).unwrap();
    let email_3_ok = strict_got.iter().position(|r| r.status == 200 && r.text().contains(&email_of(3))).unwrap();
    assert!(
        strict_got[first_failure..email_3_ok].iter().all(|r| r.text().contains(&email_of(3))),
        "while thread 3's email waited, nothing else was sent"
    );

    // None: thread 3's later events did not wait for its email.
    let loose_order = first_successes(&loose_got);
    assert_eq!(loose_order.len(), 20);
    let email_3 = loose_order.iter().position(|(g, t, _)| g == "3" && t == "email.received").unwrap();
    let note_3 = loose_order.iter().position(|(g, t, _)| g == "3" && t == "note.added").unwrap();
    assert!(note_3 < email_3, "ordering none: the note of thread 3 went ahead of its failing email");
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn a_webhook_disabled_and_re_enabled_lets_a_stuck_group_move_on() {
    let mut db = TestDb::new("order_reenable").await;
    let receiver = Receiver::start().await;
    let webhook = db.add_webhook(&receiver.url(), &["*"], SECRET, true).await;
    receiver.fail_matching(&email_of(2), usize::MAX);
    let mut config = config(&db.url);
    config.delivery.retry_schedule = vec![Duration::from_secs(3600)];
    let rowhook = InProcess::start(config).await;
    let base = rowhook.base_url.clone();
    write_threads(&db.url, 3).await;
    // Everything but thread 2's email and what follows it in thread 2.
    let got = wait_delivered(&receiver, 9, Duration::from_secs(20)).await;
    assert_eq!(first_successes(&got).len(), 9, "all but thread 2's email, note and update");
    assert!(first_successes(&got).iter().all(|(g, t, _)| g != "2" || t == "thread.created"));

    let (status, _) = api(&base, reqwest::Method::PUT, &format!("/api/webhooks/{webhook}"), Some(json!({"is_active": false}))).await;
    assert_eq!(status, 200);
    let (status, _) = api(&base, reqwest::Method::PUT, &format!("/api/webhooks/{webhook}"), Some(json!({"is_active": true}))).await;
    assert_eq!(status, 200);
    let got = wait_delivered(&receiver, 11, Duration::from_secs(20)).await;
    let thread_2: Vec<String> = first_successes(&got).into_iter().filter(|(g, _, _)| g == "2").map(|(_, t, _)| t).collect();
    assert_eq!(thread_2, ["thread.created", "note.added", "thread.updated"], "the group moved on past its failed email");
    let (status, failed) = api(&base, reqwest::Method::GET, &format!("/api/webhooks/{webhook}/deliveries?status=failed"), None).await;
    assert_eq!(status, 200);
    let failed = failed["data"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "the email stays visible as failed: {failed:#?}");
    assert_eq!(failed[0]["event_type"], "email.received");
    assert!(failed[0]["last_error"].as_str().unwrap_or_default().contains("re-enabled"), "{:#?}", failed[0]);
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn kill_9_repeats_deliveries_but_never_reorders_a_group() {
    let mut db = TestDb::new("order_kill9").await;
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_millis(3));
    db.add_webhook(&receiver.url(), &["*"], SECRET, true).await;
    // Thread 5's email fails twice: its group waits across the kills too.
    receiver.fail_matching(&email_of(5), 2);
    let server_id = server_id();
    let spawn = || {
        let listen = free_addr();
        let mut command = daemon_command(&db.url, server_id, listen);
        command.env("ROWHOOK__DELIVERY__RETRY_SCHEDULE", "300ms,300ms,300ms");
        (command.spawn().expect("start rowhook"), listen)
    };
    let ready = |listen: std::net::SocketAddr| async move {
        for _ in 0..300 {
            if let Ok(r) = reqwest::get(format!("http://{listen}/readyz")).await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("rowhook binary did not become ready");
    };
    let (mut child, listen) = spawn();
    ready(listen).await; // its first start reads from the position it finds
    let writer = actix_rt::spawn({
        let url = db.url.clone();
        async move { write_threads(&url, 60).await }
    });
    for pause in [300, 400, 500] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        child.kill().expect("kill -9");
        child.wait().unwrap();
        let (next, listen) = spawn();
        child = next;
        ready(listen).await;
    }
    writer.await.unwrap();
    let got = wait_delivered(&receiver, 240, Duration::from_secs(60)).await;
    child.kill().ok();
    child.wait().ok();
    assert_in_order_per_thread(&got, 60);
    let repeats = got.iter().filter(|r| r.status == 200).count() - first_successes(&got).len();
    eprintln!("kill -9 three times: {} deliveries, {repeats} repeated", first_successes(&got).len());
}

