//! Webhooks registered, changed and removed with SQL (the PHP app's way)
//! take effect for exactly the events committed after them: in quick
//! succession, right after start, and in a backlog read after downtime
//! (the subscriptions in force at each event's commit, not at its reading).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use crate::rowhook::{test_config, InProcess, TestDb};
use crate::support::mariadb::MariaDb;
use crate::support::Receiver;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Notes per round, ids `round * 10 + 1 ..= round * 10 + 4`.
fn note(round: u64, n: u64) -> u64 {
    round * 10 + n
}

async fn add_note(conn: &mut mysql_async::Conn, id: u64) {
    conn.exec_drop("INSERT INTO notes (id, thread_id, user_id, content) VALUES (?, 1, 1, 'n')", (id,)).await.unwrap();
}

async fn add_webhook(conn: &mut mysql_async::Conn, url: &str, events: &str) -> u64 {
    conn.exec_drop("INSERT INTO webhooks (url, events, secret) VALUES (?, ?, ?)", (url, events, SECRET)).await.unwrap();
    conn.last_insert_id().unwrap()
}

/// Webhooks one round creates: `changing` (expects notes 1 and 3 of its round) and `deleted`.
struct Round {
    changing: u64,
    deleted: u64,
}

/// One round of changes by SQL, each statement its own transaction, no pause:
/// a webhook is inserted, deactivated, reactivated, resubscribed to other
/// events, and touched by a bookkeeping update; another is deleted; a note
/// is committed between every two changes.
async fn round(conn: &mut mysql_async::Conn, base: &str, k: u64) -> Round {
    let deleted = add_webhook(conn, &format!("{base}/d{k}"), r#"["note.added"]"#).await;
    let changing = add_webhook(conn, &format!("{base}/w{k}"), r#"["note.added"]"#).await;
    add_note(conn, note(k, 1)).await; // to both
    conn.exec_drop("UPDATE webhooks SET is_active = 0 WHERE id = ?", (changing,)).await.unwrap();
    add_note(conn, note(k, 2)).await; // not to `changing`
    conn.exec_drop("UPDATE webhooks SET is_active = 1 WHERE id = ?", (changing,)).await.unwrap();
    add_note(conn, note(k, 3)).await; // to both
    conn.exec_drop(r#"UPDATE webhooks SET events = '["thread.created"]' WHERE id = ?"#, (changing,)).await.unwrap();
    conn.exec_drop("DELETE FROM webhooks WHERE id = ?", (deleted,)).await.unwrap();
    add_note(conn, note(k, 4)).await; // to neither
    conn.exec_drop("UPDATE webhooks SET updated_at = NOW() + INTERVAL 1 SECOND WHERE id = ?", (changing,)).await.unwrap();
    Round { changing, deleted }
}

/// The note ids of a webhook's stored deliveries.
async fn stored_notes(conn: &mut mysql_async::Conn, webhook_id: u64) -> BTreeSet<u64> {
    let payloads: Vec<String> = conn
        .exec("SELECT CAST(payload AS CHAR) FROM webhook_deliveries WHERE webhook_id = ?", (webhook_id,))
        .await
        .unwrap();
    payloads.iter().map(|p| serde_json::from_str::<serde_json::Value>(p).unwrap()["data"]["note_id"].as_u64().unwrap()).collect()
}

/// The note ids that arrived, per path.
fn arrived(receiver: &Receiver) -> HashMap<String, BTreeSet<u64>> {
    let mut by_path: HashMap<String, BTreeSet<u64>> = HashMap::new();
    for r in receiver.received() {
        if let Some(id) = r.json()["data"]["note_id"].as_u64() {
            by_path.entry(r.path.clone()).or_default().insert(id);
        }
    }
    by_path
}

/// Waits until the receiver holds `want` distinct (path, note) pairs.
async fn wait_arrived(receiver: &Receiver, want: usize) -> HashMap<String, BTreeSet<u64>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = arrived(receiver);
        if got.values().map(BTreeSet::len).sum::<usize>() >= want || Instant::now() > deadline {
            // A little longer: anything that should not come would come now.
            tokio::time::sleep(Duration::from_millis(500)).await;
            return arrived(receiver);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `rowhook_webhooks{state="active"}` and `{state="inactive"}` from /metrics.
async fn webhook_gauges(base_url: &str) -> (i64, i64) {
    let text = reqwest::get(format!("{base_url}/metrics")).await.unwrap().text().await.unwrap();
    let gauge = |state: &str| {
        text.lines()
            .find(|l| l.starts_with("rowhook_webhooks{") && l.contains(&format!("\"{state}\"")))
            .and_then(|l| l.rsplit(' ').next()?.parse::<i64>().ok())
            .unwrap_or(-1)
    };
    (gauge("active"), gauge("inactive"))
}

#[actix_rt::test]
async fn webhook_rows_written_by_sql_apply_to_the_events_committed_after_them() {
    sql_changes_apply_in_commit_order(None).await;
}

#[actix_rt::test]
async fn webhook_rows_without_row_metadata_are_read_by_the_columns_of_information_schema() {
    let server = MariaDb::start_private(&["--binlog-row-metadata=NO_LOG"]);
    sql_changes_apply_in_commit_order(Some(&server)).await;
}

/// Rounds right after start, while rowhook is down, and while it catches up.
async fn sql_changes_apply_in_commit_order(server: Option<&MariaDb>) {
    let mut db = match server {
        Some(server) => TestDb::on(server, "subs_sql").await,
        None => TestDb::new("subs_sql").await,
    };
    let receiver = Receiver::start().await;
    let base = receiver.base_url();
    let config = test_config(&db.url);
    let mut conn = mysql_async::Conn::from_url(db.url.as_str()).await.unwrap();
    // Subscribed from the start; deactivated while rowhook is down.
    let early = add_webhook(&mut conn, &format!("{base}/early"), r#"["note.added"]"#).await;

    // Right after start, in quick succession.
    let rowhook = InProcess::start(config.clone()).await;
    let mut rounds = Vec::new();
    for k in 0..30 {
        rounds.push(round(&mut conn, &base, k).await);
    }
    rowhook.stop().await.expect("clean stop");

    // While rowhook is down: read later as a backlog.
    for k in 30..45 {
        rounds.push(round(&mut conn, &base, k).await);
    }
    conn.exec_drop("UPDATE webhooks SET is_active = 0 WHERE id = ?", (early,)).await.unwrap();
    let late = add_webhook(&mut conn, &format!("{base}/late"), r#"["note.added"]"#).await;
    for k in 45..60 {
        rounds.push(round(&mut conn, &base, k).await);
    }
    let rowhook = InProcess::start(config.clone()).await;
    // And while it catches up.
    for k in 60..70 {
        rounds.push(round(&mut conn, &base, k).await);
    }

    // Stored: exactly the notes committed while each was subscribed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let late_expected: BTreeSet<u64> = (45..70).flat_map(|k| (1..=4).map(move |n| note(k, n))).collect();
    while stored_notes(&mut db.conn, late).await.len() < late_expected.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (k, r) in rounds.iter().enumerate() {
        let k = k as u64;
        let expected: BTreeSet<u64> = [note(k, 1), note(k, 3)].into();
        assert_eq!(stored_notes(&mut db.conn, r.changing).await, expected, "webhook of round {k} (id {})", r.changing);
    }
    assert_eq!(
        stored_notes(&mut db.conn, late).await,
        late_expected,
        "a webhook created during the downtime gets what was committed after it, nothing before"
    );
    let early_expected: BTreeSet<u64> = (0..45).flat_map(|k| (1..=4).map(move |n| note(k, n))).collect();
    assert_eq!(
        stored_notes(&mut db.conn, early).await,
        early_expected,
        "a webhook deactivated during the downtime keeps what was committed while it was active"
    );

    // /metrics counts the webhooks the table holds.
    let (active, inactive): (i64, i64) =
        db.conn.query_first("SELECT SUM(is_active = 1), SUM(is_active = 0) FROM webhooks").await.unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while webhook_gauges(&rowhook.base_url).await != (active, inactive) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(webhook_gauges(&rowhook.base_url).await, (active, inactive), "rowhook_webhooks by state");

    // Reactivated, the early webhook gets what waited for it.
    conn.exec_drop("UPDATE webhooks SET is_active = 1 WHERE id = ?", (early,)).await.unwrap();
    let want = rounds.len() * 2 + late_expected.len() + early_expected.len();
    let got = wait_arrived(&receiver, want).await;
    for (k, r) in rounds.iter().enumerate() {
        let k = k as u64;
        let expected: BTreeSet<u64> = [note(k, 1), note(k, 3)].into();
        assert_eq!(got.get(&format!("/w{k}")), Some(&expected), "arrived for the webhook of round {k} (id {})", r.changing);
        // A deleted webhook's queue goes with it; nothing committed after its delete is sent.
        let to_deleted = got.get(&format!("/d{k}")).cloned().unwrap_or_default();
        assert!(to_deleted.is_subset(&[note(k, 1), note(k, 2), note(k, 3)].into()), "after its delete, round {k}: {to_deleted:?}");
        let _ = r.deleted;
    }
    assert_eq!(got.get("/late"), Some(&late_expected));
    assert_eq!(got.get("/early"), Some(&early_expected));
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn a_webhook_inserted_right_after_an_update_is_never_missed() {
    // The report: an UPDATE of one webhook and an INSERT of another 8 ms apart
    // left the second unknown until an unrelated change, about once in 80.
    let mut db = TestDb::new("subs_race").await;
    let receiver = Receiver::start().await;
    let base = receiver.base_url();
    let mut conn = mysql_async::Conn::from_url(db.url.as_str()).await.unwrap();
    let rowhook = InProcess::start(test_config(&db.url)).await;
    let tries = 200;
    let mut ids = Vec::new();
    for k in 0..tries {
        if let Some(&id) = ids.last() {
            conn.exec_drop("UPDATE webhooks SET is_active = 0 WHERE id = ?", (id,)).await.unwrap();
        }
        ids.push(add_webhook(&mut conn, &format!("{base}/t{k}"), r#"["note.added"]"#).await);
        add_note(&mut conn, k + 1).await;
    }
    // Each got exactly the note committed while it was the active one (stored: a
    // webhook deactivated before its delivery went out keeps it pending).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut missed = Vec::new();
    for (k, &id) in ids.iter().enumerate() {
        let expected: BTreeSet<u64> = [k as u64 + 1].into();
        let mut stored = stored_notes(&mut db.conn, id).await;
        while stored != expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            stored = stored_notes(&mut db.conn, id).await;
        }
        if stored != expected {
            missed.push((k, stored));
        }
    }
    assert!(missed.is_empty(), "{} of {tries} webhooks did not get exactly the note after them: {:?}", missed.len(), &missed[..missed.len().min(10)]);
    rowhook.stop().await.expect("clean stop");
}
