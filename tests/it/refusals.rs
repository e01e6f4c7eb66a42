//! What cannot be read correctly is refused, with the setting to change:
//! `binlog_row_image=NOBLOB` at start, and partial row images that appear in
//! the stream after start (a session that sets its own row image).

use std::time::Duration;

use mysql_async::prelude::*;
use rowhook::daemon::{check, RunError};
use rowhook::source::schema::{Problem, SchemaError};

use crate::rowhook::test_config;
use crate::support::mariadb::MariaDb;

#[actix_rt::test]
async fn a_noblob_row_image_is_refused_at_start() {
    let server = MariaDb::start_private(&["--binlog-row-image=NOBLOB"]);
    let app = server.fresh_database("noblob").await;
    let err = check(&test_config(&server.url(&app))).await.err().expect("refused");
    let RunError::Schema(SchemaError::Refused(problems)) = &err else { panic!("{err}") };
    assert_eq!(problems.0, [Problem::NotFullImage("NOBLOB".into())], "{err}");
    assert!(err.to_string().contains("SET GLOBAL binlog_row_image = 'FULL'"), "{err}");
}

#[actix_rt::test]
async fn a_partial_row_image_in_the_stream_stops_rowhook_with_advice() {
    let server = MariaDb::start_private(&[]);
    let name = server.fresh_database("noblob_stream").await;
    let url = server.url(&name);
    rowhook::state::store::Store::new(&url).unwrap().migrate().await.expect("migrate");
    crate::support::install_crypto_provider();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let run = actix_rt::spawn(rowhook::daemon::run(test_config(&url), listener, std::future::pending(), None));
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if client.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "rowhook ready");

    // The server is FULL, but one session logs NOBLOB images: an update of
    // `emails` then lacks its MEDIUMTEXT body.
    let mut app = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    app.query_drop(
        "INSERT INTO emails (id, thread_id, direction, subject, from_address, to_addresses, body_text) \
         VALUES (1, 1, 'outgoing', 'full image', 'a@example.com', '[]', 'body')",
    )
    .await
    .unwrap();
    app.query_drop("SET SESSION binlog_row_image = 'NOBLOB'").await.unwrap();
    app.query_drop("UPDATE emails SET subject = 'noblob image' WHERE id = 1").await.unwrap();

    let result = tokio::time::timeout(Duration::from_secs(20), run).await.expect("rowhook stops by itself").expect("run task");
    let err = result.expect_err("a partial image is definite");
    let message = err.to_string();
    assert!(message.contains("`emails`"), "{message}");
    assert!(message.contains("binlog_row_image = 'FULL'"), "{message}");
}
