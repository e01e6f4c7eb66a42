//! Checks that the test harness itself works: the private MariaDB and the recording receiver.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use crate::support::{self, mariadb, Receiver};

async fn query_strings(url: &str, sql: &str) -> Vec<String> {
    let mut conn = mysql_async::Conn::from_url(url).await.expect("connect");
    let rows: Vec<String> = conn.query(sql).await.expect(sql);
    conn.disconnect().await.expect("disconnect");
    rows
}

#[actix_rt::test]
async fn shared_mariadb_writes_a_full_row_based_binlog() {
    let db = mariadb::shared();
    let mut conn = mysql_async::Conn::from_url(db.root_url())
        .await
        .expect("connect as root");
    let row: (String, String, String, String) = conn
        .query_first(
            "SELECT IF(@@log_bin, 'ON', 'OFF'), @@binlog_format, @@binlog_row_image, \
             @@binlog_row_metadata",
        )
        .await
        .expect("read binlog settings")
        .expect("one row");
    assert_eq!(
        row,
        (
            "ON".to_string(),
            "ROW".to_string(),
            "FULL".to_string(),
            "FULL".to_string()
        )
    );
    let version: String = conn.query_first("SELECT VERSION()").await.unwrap().unwrap();
    assert!(
        version.contains("MariaDB"),
        "unexpected server version {version}"
    );
    conn.disconnect().await.unwrap();
    // Same server for every caller in this binary.
    assert_eq!(mariadb::shared().port, db.port);
}

#[actix_rt::test]
async fn fresh_database_loads_the_helpdesk_schema() {
    let db = mariadb::shared();
    let a = db.fresh_database("selftest").await;
    let b = db.fresh_database("selftest").await;
    assert_ne!(a, b, "fresh databases must be distinct");

    let tables = query_strings(&db.url(&a), "SHOW TABLES").await;
    let mut tables = tables;
    tables.sort();
    assert_eq!(tables, ["emails", "notes", "threads"]);

    let mut conn = mysql_async::Conn::from_url(db.url(&b)).await.unwrap();
    conn.query_drop("INSERT INTO threads (subject) VALUES ('Printer on fire')")
        .await
        .unwrap();
    let (subject, status): (String, String) = conn
        .query_first("SELECT subject, status FROM threads")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (subject.as_str(), status.as_str()),
        ("Printer on fire", "open")
    );
    conn.disconnect().await.unwrap();
    // The other database is untouched.
    assert!(query_strings(&db.url(&a), "SELECT subject FROM threads")
        .await
        .is_empty());
}

#[actix_rt::test]
async fn receiver_records_requests_and_answers_as_configured() {
    let receiver = Receiver::start().await;
    assert!(receiver.url().starts_with("http://127.0.0.1:") && receiver.url().ends_with("/hook"));
    support::install_crypto_provider();
    let client = reqwest::Client::builder().build().expect("http client");

    let resp = client
        .post(receiver.url())
        .header("Content-Type", "application/json")
        .header("X-Rowhook-Signature", "v1,abc")
        .body(r#"{"event":"thread.created","data":{"id":1}}"#)
        .send()
        .await
        .expect("POST to receiver");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().await.unwrap(), "ok");

    receiver.set_status(503);
    let resp = client
        .post(receiver.url())
        .body("second")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);

    receiver.set_status(200);
    receiver.set_delay(Duration::from_millis(300));
    let started = Instant::now();
    let resp = client
        .post(receiver.url())
        .body("third")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "delay not applied"
    );

    let got = receiver.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 3);
    let first = &got[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/hook");
    assert_eq!(first.header("x-rowhook-signature"), Some("v1,abc"));
    assert_eq!(first.header("Content-Type"), Some("application/json"));
    assert_eq!(first.json()["event"], "thread.created");
    assert_eq!(first.json()["data"]["id"], 1);
    assert_eq!(got[1].body, b"second");
    assert!(got[0].at <= got[1].at && got[1].at <= got[2].at);

    // wait_for returns what it has when the timeout passes, without panicking.
    let started = Instant::now();
    assert_eq!(
        receiver
            .wait_for(10, Duration::from_millis(100))
            .await
            .len(),
        3
    );
    assert!(started.elapsed() >= Duration::from_millis(100));

    let url = receiver.url();
    receiver.stop().await;
    assert!(
        client.post(url).body("late").send().await.is_err(),
        "stopped receiver still answers"
    );
}

#[actix_rt::test]
async fn private_server_keeps_its_data_and_port_across_stop_and_start() {
    let mut db = mariadb::MariaDb::start_private(&["--binlog-row-image=MINIMAL"]);
    assert_ne!(db.port, mariadb::shared().port);
    let name = db.fresh_database("private").await;
    let mut conn = mysql_async::Conn::from_url(db.url(&name)).await.unwrap();
    let image: String = conn
        .query_first("SELECT @@binlog_row_image")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(image, "MINIMAL", "extra args must override the defaults");
    conn.query_drop("INSERT INTO notes (thread_id, user_id, content) VALUES (1, 2, 'kept')")
        .await
        .unwrap();
    conn.disconnect().await.unwrap();

    let port = db.port;
    db.stop();
    assert!(!db.is_running());
    assert!(
        mysql_async::Conn::from_url(db.url(&name)).await.is_err(),
        "server still answers"
    );

    db.start();
    assert_eq!(db.port, port);
    assert_eq!(
        query_strings(&db.url(&name), "SELECT content FROM notes").await,
        ["kept"]
    );
    let datadir = db.datadir().to_path_buf();
    drop(db);
    assert!(!datadir.exists(), "private data dir not removed on drop");
}
