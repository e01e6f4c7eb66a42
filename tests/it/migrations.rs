//! `rowhook migrate` on a database where the PHP application already created
//! the seed's tables: nothing is lost, old history stays history, and the
//! existing webhook starts receiving.

use std::time::Duration;

use mysql_async::prelude::*;

use crate::rowhook::{test_config, InProcess};
use crate::support::{mariadb, Receiver};

#[actix_rt::test]
async fn migrating_the_php_apps_tables_keeps_their_data() {
    let server = mariadb::shared();
    let name = server.fresh_database("php_app").await;
    let url = server.url(&name);
    let receiver = Receiver::start().await;
    let mut conn = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    // The seed's migration 009 as the PHP app ran it (MariaDB needs a prefix for the JSON index).
    conn.query_drop(
        "CREATE TABLE webhooks (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, url VARCHAR(500) NOT NULL, events JSON NOT NULL, \
         secret VARCHAR(255) NOT NULL, is_active BOOLEAN DEFAULT TRUE, last_triggered_at TIMESTAMP NULL, failed_attempts INT DEFAULT 0, \
         created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, \
         INDEX idx_active (is_active), INDEX idx_events (events(255))) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
    )
    .await
    .unwrap();
    conn.query_drop(
        "CREATE TABLE webhook_deliveries (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, webhook_id BIGINT UNSIGNED NOT NULL, \
         event_type VARCHAR(100) NOT NULL, payload JSON NOT NULL, response_status INT NULL, response_body TEXT NULL, attempts INT DEFAULT 1, \
         delivered_at TIMESTAMP NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, \
         FOREIGN KEY (webhook_id) REFERENCES webhooks(id) ON DELETE CASCADE, INDEX idx_webhook (webhook_id), INDEX idx_event (event_type), \
         INDEX idx_created (created_at)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
    )
    .await
    .unwrap();
    // A PHP-generated secret: 64 hex characters, used as UTF-8 bytes.
    let secret = "275670f9a4d4c02741e23b2c29dd6674f1197a051345278cc58d110c301418cb";
    conn.exec_drop(
        "INSERT INTO webhooks (url, events, secret) VALUES (?, '[\"thread.created\"]', ?)",
        (receiver.url(), secret),
    )
    .await
    .unwrap();
    conn.query_drop(
        "INSERT INTO webhook_deliveries (webhook_id, event_type, payload, response_status, attempts, delivered_at) VALUES \
         (1, 'thread.created', '{\"thread_id\": 47}', 200, 1, NOW()), (1, 'thread.created', '{\"thread_id\": 48}', 404, 3, NULL)",
    )
    .await
    .unwrap();

    let store = rowhook::state::store::Store::new(&url).unwrap();
    let known = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")).unwrap().count();
    assert_eq!(store.migrate().await.unwrap().len(), known, "every migration applies over the PHP app's tables");
    assert!(store.migrate().await.unwrap().is_empty(), "a second run is harmless");

    let old: Vec<(String, i64, String)> = conn
        .query("SELECT CAST(payload AS CHAR), attempts, status FROM webhook_deliveries ORDER BY id")
        .await
        .unwrap();
    assert_eq!(old.len(), 2);
    assert_eq!((old[0].1, old[0].2.as_str()), (1, "delivered"));
    assert_eq!((old[1].1, old[1].2.as_str()), (3, "failed"), "old failures are history, not new work");

    let rowhook = InProcess::start(test_config(&url)).await;
    conn.query_drop("INSERT INTO threads (subject) VALUES ('after migration')").await.unwrap();
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received().len(), 1, "the old history is not re-sent");
    let key = rowhook::delivery::signing::SigningKey::from_secret(secret).unwrap();
    rowhook::delivery::signing::verify_seed(&key, got[0].header("x-webhook-signature").unwrap(), &got[0].body)
        .expect("signed like PHP's hash_hmac with the old secret");
    rowhook.stop().await.expect("clean stop");
}
