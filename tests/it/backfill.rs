//! Backfills against a real MariaDB and real receivers: a table copied to a
//! webhook while a writer inserts, updates and deletes its rows ends with
//! every row's final state at the receiver and no deleted row back; a
//! `kill -9` mid-backfill resumes without losing rows; cancel; filters and
//! their refusals.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use serde_json::{json, Value};

use crate::rowhook::{daemon_command, free_addr, server_id, test_config, InProcess, TestDb};
use crate::support::{Received, Receiver};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const THREAD_EVENTS: [&str; 3] = ["thread.created", "thread.updated", "thread.deleted"];

async fn api(base: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Inserts threads `1..=n` (subject `thread k`, status open), 500 a statement.
async fn seed_threads(conn: &mut mysql_async::Conn, n: u64) {
    for start in (1..=n).step_by(500) {
        let values: Vec<String> = (start..(start + 500).min(n + 1)).map(|k| format!("({k}, 'thread {k}', 'open')")).collect();
        conn.query_drop(format!("INSERT INTO threads (id, subject, status) VALUES {}", values.join(","))).await.unwrap();
    }
}

/// Waits until the backfill reaches one of `states`; returns it.
async fn wait_state(base: &str, webhook: u64, backfill: u64, states: &[&str], timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (_, answer) = api(base, reqwest::Method::GET, &format!("/api/webhooks/{webhook}/backfills/{backfill}"), None).await;
        let state = answer["data"]["state"].as_str().unwrap_or_default().to_string();
        if states.contains(&state.as_str()) || Instant::now() > deadline {
            return answer["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a subscriber knows of each thread after applying the events in
/// arrival order (each event id once): (subject, status), or None once deleted.
fn model(received: &[Received]) -> BTreeMap<u64, Option<(String, String)>> {
    let mut seen = HashSet::new();
    let mut threads: BTreeMap<u64, Option<(String, String)>> = BTreeMap::new();
    for r in received.iter().filter(|r| r.status == 200) {
        let body = r.json();
        if !seen.insert(body["id"].as_str().unwrap().to_string()) {
            continue;
        }
        let data = &body["data"];
        let id = data["thread_id"].as_u64().unwrap();
        match body["type"].as_str().unwrap() {
            "thread.created" => {
                // A backfill's copy after the row's delete would bring it back: the test's point.
                if body.get("backfill").is_some() && matches!(threads.get(&id), Some(None)) {
                    let history: Vec<String> = received
                        .iter()
                        .map(Received::json)
                        .filter(|b| b["data"]["thread_id"] == id)
                        .map(|b| format!("{} {} {}", b["type"], b["id"], b["transaction"]))
                        .collect();
                    panic!("thread {id} came back after its delete: {body}\nits events in arrival order: {history:#?}");
                }
                threads.insert(id, Some((data["subject"].as_str().unwrap().to_string(), data["status"].as_str().unwrap().to_string())));
            }
            "thread.updated" => {
                // (A change of a row the subscriber has no copy of yet: its copy comes later, newer.)
                let Some(Some((subject, status))) = threads.get_mut(&id) else { continue };
                if let Some(new) = data["changes"]["subject"]["new"].as_str() {
                    *subject = new.to_string();
                }
                if let Some(new) = data["changes"]["status"]["new"].as_str() {
                    *status = new.to_string();
                }
            }
            "thread.deleted" => {
                threads.insert(id, None);
            }
            other => panic!("unexpected {other}"),
        }
    }
    threads
}

/// Inserts, updates and deletes threads until `stop` (ids above `n` are new ones).
async fn write_while(url: String, n: u64, stop: tokio::sync::watch::Receiver<bool>) -> u64 {
    let mut conn = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    let mut k: u64 = 0;
    while !*stop.borrow() {
        k += 1;
        let id = (k * 7919) % n + 1;
        let sql = match k % 4 {
            0 => format!("UPDATE threads SET subject = 'thread {id} v{k}' WHERE id = {id}"),
            1 => format!("UPDATE threads SET status = IF(status = 'open', 'pending', 'closed') WHERE id = {id}"),
            2 => format!("DELETE FROM threads WHERE id = {id}"),
            _ => format!("INSERT INTO threads (id, subject, status) VALUES ({}, 'new {k}', 'open')", n + k),
        };
        conn.query_drop(sql).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    k
}

/// Every thread the database holds, as the model should end: (subject, status).
async fn final_state(conn: &mut mysql_async::Conn) -> BTreeMap<u64, (String, String)> {
    let rows: Vec<(u64, String, String)> = conn.query("SELECT id, subject, CAST(status AS CHAR) FROM threads").await.unwrap();
    rows.into_iter().map(|(id, subject, status)| (id, (subject, status))).collect()
}

#[actix_rt::test]
async fn a_backfill_during_writes_ends_with_every_rows_final_state_and_no_deleted_row_back() {
    let mut db = TestDb::new("backfill_live").await;
    let rows = 20_000;
    seed_threads(&mut db.conn, rows).await;
    let receiver = Receiver::start().await;
    let webhook = db.add_webhook(&receiver.url(), &THREAD_EVENTS, SECRET, true).await;
    let rowhook = InProcess::start(test_config(&db.url)).await;
    let base = rowhook.base_url.clone();

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let writer = actix_rt::spawn(write_while(db.url.clone(), rows, stopped));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, answer) = api(&base, reqwest::Method::POST, &format!("/api/webhooks/{webhook}/backfills"), Some(json!({"event_type": "thread.created"}))).await;
    assert_eq!(status, 202, "{answer}");
    let backfill = answer["data"]["id"].as_u64().unwrap();
    let done = wait_state(&base, webhook, backfill, &["done", "failed"], Duration::from_secs(240)).await;
    let _ = stop.send(true);
    let writes = writer.await.unwrap();
    assert_eq!(done["state"], "done", "{done}");
    assert!(done["rows_per_second"].as_f64().is_some_and(|r| r > 0.0), "{done}");

    // Everything queued has arrived (the receiver quiet for a while).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut count = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = receiver.received().len();
        let pending: u64 = db.conn.exec_first("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ? AND status = 'pending'", (webhook,)).await.unwrap().unwrap();
        if (now == count && pending == 0) || Instant::now() > deadline {
            break;
        }
        count = now;
    }
    let received = receiver.received();
    let got = model(&received);
    let want = final_state(&mut db.conn).await;
    let mut wrong = Vec::new();
    for (id, state) in &want {
        if got.get(id).cloned().flatten().as_ref() != Some(state) {
            wrong.push((id, got.get(id).cloned(), state.clone()));
        }
    }
    for (id, state) in &got {
        if state.is_some() && !want.contains_key(id) {
            wrong.push((id, Some(state.clone()), (String::from("deleted"), String::new())));
        }
    }
    let copied = received.iter().filter(|r| r.json().get("backfill").is_some()).count();
    eprintln!("backfill of {rows} rows while {writes} writes: {copied} rows copied, {} deliveries in all", received.len());
    assert!(wrong.is_empty(), "{} threads differ from the database, first: {:?}", wrong.len(), &wrong[..wrong.len().min(5)]);
    assert!(copied as u64 >= rows / 2, "the backfill copied the table: {copied} of {rows}");
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn kill_9_mid_backfill_resumes_without_losing_rows() {
    let mut db = TestDb::new("backfill_kill9").await;
    let rows = 8_000;
    seed_threads(&mut db.conn, rows).await;
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_millis(1));
    let webhook = db.add_webhook(&receiver.url(), &["thread.created"], SECRET, true).await;
    let server_id = server_id();
    let spawn = || {
        let listen = free_addr();
        (daemon_command(&db.url, server_id, listen).spawn().expect("start rowhook"), listen)
    };
    let ready = |listen: std::net::SocketAddr| async move {
        for _ in 0..300 {
            if let Ok(r) = reqwest::get(format!("http://{listen}/readyz")).await {
                if r.status().is_success() {
                    return format!("http://{listen}");
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("rowhook binary did not become ready");
    };
    let (mut child, listen) = spawn();
    let base = ready(listen).await;
    let (status, answer) = api(&base, reqwest::Method::POST, &format!("/api/webhooks/{webhook}/backfills"), Some(json!({"event_type": "thread.created"}))).await;
    assert_eq!(status, 202, "{answer}");
    let backfill = answer["data"]["id"].as_u64().unwrap();
    // Killed twice while it runs.
    for _ in 0..2 {
        let deadline = Instant::now() + Duration::from_secs(60);
        let before: u64 = db.conn.exec_first("SELECT rows_sent FROM rowhook_backfills WHERE id = ?", (backfill,)).await.unwrap().unwrap();
        while db.conn.exec_first::<u64, _, _>("SELECT rows_sent FROM rowhook_backfills WHERE id = ?", (backfill,)).await.unwrap().unwrap() <= before + 1000
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child.kill().expect("kill -9");
        child.wait().unwrap();
        let (next, listen) = spawn();
        child = next;
        ready(listen).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state: String = db.conn.exec_first("SELECT state FROM rowhook_backfills WHERE id = ?", (backfill,)).await.unwrap().unwrap();
        let pending: u64 = db.conn.exec_first("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ? AND status = 'pending'", (webhook,)).await.unwrap().unwrap();
        if (state == "done" && pending == 0) || Instant::now() > deadline {
            assert_eq!(state, "done");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().ok();
    child.wait().ok();
    let arrived: HashSet<u64> = receiver.received().iter().filter(|r| r.status == 200).map(|r| r.json()["data"]["thread_id"].as_u64().unwrap()).collect();
    let missing: Vec<u64> = (1..=rows).filter(|id| !arrived.contains(id)).collect();
    assert!(missing.is_empty(), "{} rows never arrived, first {:?}", missing.len(), &missing[..missing.len().min(10)]);
    let stored: u64 = db.conn.exec_first("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ? AND event_id LIKE 'bf\\_%'", (webhook,)).await.unwrap().unwrap();
    assert_eq!(stored, rows, "one delivery per row: a chunk read again is not queued twice");
}

#[actix_rt::test]
async fn filters_limits_cancel_and_refusals() {
    let mut db = TestDb::new("backfill_api").await;
    seed_threads(&mut db.conn, 3_000).await;
    db.exec("UPDATE threads SET status = 'closed' WHERE id % 3 = 0").await;
    let receiver = Receiver::start().await;
    let webhook = db.add_webhook(&receiver.url(), &["thread.created", "note.added"], SECRET, true).await;
    let rowhook = InProcess::start(test_config(&db.url)).await;
    let base = rowhook.base_url.clone();
    let path = format!("/api/webhooks/{webhook}/backfills");

    // Refusals name the field.
    for (body, field) in [
        (json!({}), "event_type"),
        (json!({"event_type": "no.such"}), "event_type"),
        (json!({"event_type": "thread.updated"}), "event_type"), // not subscribed
        (json!({"event_type": "thread.created", "limit": 0}), "limit"),
        (json!({"event_type": "thread.created", "filter": [{"column": "nope", "equals": 1}]}), "filter[0].column"),
        (json!({"event_type": "thread.created", "filter": [{"column": "id", "like": "1%"}]}), "filter[0].like"),
        (json!({"event_type": "thread.created", "filter": "id > 3"}), "filter"),
    ] {
        let (status, answer) = api(&base, reqwest::Method::POST, &path, Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(answer["details"].get(field).is_some(), "{body}: {answer}");
    }
    let (status, _) = api(&base, reqwest::Method::GET, &format!("{path}/999"), None).await;
    assert_eq!(status, 404);

    // A filter and a limit: closed threads with id >= 1500, at most 100.
    let filter = json!([{"column": "status", "equals": "closed"}, {"column": "id", ">=": 1500}]);
    let (status, answer) = api(&base, reqwest::Method::POST, &path, Some(json!({"event_type": "thread.created", "filter": filter, "limit": 100}))).await;
    assert_eq!(status, 202, "{answer}");
    let first = answer["data"]["id"].as_u64().unwrap();
    let done = wait_state(&base, webhook, first, &["done", "failed"], Duration::from_secs(60)).await;
    assert_eq!((done["state"].as_str(), done["rows_sent"].as_u64(), done["rows_estimate"].as_u64()), (Some("done"), Some(100), Some(100)), "{done}");
    let got = receiver.wait_for(100, Duration::from_secs(20)).await;
    let ids: Vec<u64> = got.iter().map(|r| r.json()["data"]["thread_id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 100);
    assert!(ids.iter().all(|id| *id >= 1500 && id % 3 == 0), "only closed threads from 1500: {:?}", &ids[..10]);
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..100).map(|k| 1500 + 3 * k).collect::<Vec<_>>(), "the first 100 in key order");

    // Cancelled while it runs (a slow receiver keeps it running): it stops.
    receiver.set_delay(Duration::from_millis(20));
    let (_, answer) = api(&base, reqwest::Method::POST, &path, Some(json!({"event_type": "thread.created"}))).await;
    let second = answer["data"]["id"].as_u64().unwrap();
    wait_state(&base, webhook, second, &["running"], Duration::from_secs(20)).await;
    let (status, answer) = api(&base, reqwest::Method::DELETE, &format!("{path}/{second}"), None).await;
    assert_eq!((status, &answer["data"]["state"]), (200, &json!("cancelled")), "{answer}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, after) = api(&base, reqwest::Method::GET, &format!("{path}/{second}"), None).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, later) = api(&base, reqwest::Method::GET, &format!("{path}/{second}"), None).await;
    assert_eq!(after["data"]["rows_read"], later["data"]["rows_read"], "no chunk after the cancel");
    assert!(later["data"]["rows_read"].as_u64().unwrap() < 3_000, "{later}");
    let (status, _) = api(&base, reqwest::Method::DELETE, &format!("{path}/{second}"), None).await;
    assert_eq!(status, 409, "cancelled already");
    let (_, list) = api(&base, reqwest::Method::GET, &path, None).await;
    let states: HashMap<u64, String> =
        list["data"].as_array().unwrap().iter().map(|b| (b["id"].as_u64().unwrap(), b["state"].as_str().unwrap().to_string())).collect();
    assert_eq!(states, HashMap::from([(first, "done".to_string()), (second, "cancelled".to_string())]));
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn the_backfill_and_replay_commands_talk_to_the_daemon_and_exit_non_zero_when_refused() {
    let mut db = TestDb::new("backfill_cli").await;
    seed_threads(&mut db.conn, 1_500).await;
    let receiver = Receiver::start().await;
    let webhook = db.add_webhook(&receiver.url(), &["thread.created"], SECRET, true).await;
    let rowhook = InProcess::start(test_config(&db.url)).await;
    let run = |args: Vec<String>| {
        let api = rowhook.base_url.clone();
        async move {
            let output = actix_rt::task::spawn_blocking(move || {
                std::process::Command::new(crate::support::rowhook_bin()).args(&args).args(["--api", &api]).output()
            })
            .await
            .unwrap()
            .expect("run rowhook");
            (output.status.success(), format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
        }
    };
    let (ok, out) = run(vec!["backfill".into(), "--webhook".into(), webhook.to_string(), "--event-type".into(), "thread.created".into()]).await;
    assert!(ok, "{out}");
    assert!(out.contains("done: 1500 rows sent"), "{out}");
    assert_eq!(receiver.wait_for(1_500, Duration::from_secs(30)).await.len(), 1_500);
    // Received is not yet recorded: the replay below counts what the history says was delivered.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let delivered: Option<u64> =
            db.conn.exec_first("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ? AND status = 'delivered'", (webhook,)).await.unwrap();
        if delivered == Some(1_500) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{delivered:?} of 1500 recorded delivered after 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (ok, out) = run(vec!["backfill".into(), "--webhook".into(), webhook.to_string(), "--event-type".into(), "no.such".into()]).await;
    assert!(!ok, "refused: exits non-zero");
    assert!(out.contains("rowhook refused (422)") && out.contains("no rule makes \"no.such\" events"), "{out}");
    let (ok, out) = run(vec!["backfill".into(), "--webhook".into(), webhook.to_string(), "--event-type".into(), "thread.created".into(), "--filter".into(), "status = 'open'".into()]).await;
    assert!(!ok && out.contains("--filter is not JSON"), "{out}");

    let (ok, out) = run(vec!["replay".into(), "--webhook".into(), webhook.to_string(), "--since".into(), "2000-01-01T00:00:00Z".into(), "--status".into(), "all".into()]).await;
    assert!(ok, "{out}");
    assert!(out.contains("1500 deliveries of webhook"), "{out}");
    let (ok, out) = run(vec!["replay".into(), "--webhook".into(), "999".into(), "--since".into(), "2000-01-01T00:00:00Z".into()]).await;
    assert!(!ok && out.contains("404"), "{out}");
    rowhook.stop().await.expect("clean stop");
}
