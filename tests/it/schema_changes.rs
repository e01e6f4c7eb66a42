//! `ALTER TABLE` on a mapped table while the application writes: events
//! before and after carry the right names and values.
//!
//! With `binlog_row_metadata=FULL` the names travel with every row, so the
//! changes can come in the middle of a write stream. Without it (NO_LOG) the
//! names come from information_schema, reloaded when the DDL passes in the
//! stream; that is exact for a reader that keeps up, so the NO_LOG run lets
//! rowhook read past each DDL (`rowhook_schema_reloads_total`) before the
//! next statement (docs/types.md states the limit).

use std::time::Duration;

use crate::rowhook::{test_config, InProcess, TestDb};
use crate::support::mariadb::MariaDb;
use crate::support::Receiver;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// (statement, expected data of the event it makes, or None for DDL). The
/// rule reads id, name, price; colour and label show what the row held.
fn script() -> Vec<(&'static str, Option<serde_json::Value>)> {
    use serde_json::json;
    vec![
        ("INSERT INTO items (id, name, price) VALUES (1, 'one', 1.50)", Some(json!({"id": 1, "name": "one", "price": "1.50", "colour": null, "label": null}))),
        ("ALTER TABLE items ADD COLUMN colour VARCHAR(20) NULL", None),
        ("INSERT INTO items (id, name, price, colour) VALUES (2, 'two', 2.50, 'red')", Some(json!({"id": 2, "name": "two", "price": "2.50", "colour": "red", "label": null}))),
        ("ALTER TABLE items MODIFY COLUMN colour VARCHAR(20) NULL FIRST", None),
        ("INSERT INTO items (id, name, price, colour) VALUES (3, 'three', 3.50, 'blue')", Some(json!({"id": 3, "name": "three", "price": "3.50", "colour": "blue", "label": null}))),
        ("ALTER TABLE items RENAME COLUMN name TO label", None),
        ("INSERT INTO items (id, label, price, colour) VALUES (4, 'four', 4.50, 'green')", Some(json!({"id": 4, "name": null, "price": "4.50", "colour": "green", "label": "four"}))),
        ("ALTER TABLE items DROP COLUMN price", None),
        ("INSERT INTO items (id, label, colour) VALUES (5, 'five', 'grey')", Some(json!({"id": 5, "name": null, "price": null, "colour": "grey", "label": "five"}))),
    ]
}

async fn run_script(server: Option<&MariaDb>, catch_up_after_ddl: bool) {
    let mut db = match server {
        Some(server) => TestDb::on(server, "ddl").await,
        None => TestDb::new("ddl").await,
    };
    db.exec("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50), price DECIMAL(10,2))").await;
    let receiver = Receiver::start().await;
    db.add_webhook(&receiver.url(), &["item.created"], SECRET, true).await;
    let mut config = test_config(&db.url);
    // The rule reads the columns of the table's first shape: after the RENAME
    // and the DROP their values are null, never another column's value.
    config.events = vec![rowhook::config::EventRule {
        event_type: "item.created".into(),
        table: "items".into(),
        operations: vec![rowhook::config::Operation::Insert],
        conditions: vec![],
        fields: [("id", "id"), ("name", "name"), ("price", "price")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        changes: None,
        group_by: None,
    }];
    let rowhook = InProcess::start(config).await;
    let mut expected = Vec::new();
    let mut ddl = 0;
    for (sql, event) in script() {
        db.exec(sql).await;
        if let Some(event) = event {
            expected.push(event);
        } else {
            ddl += 1;
            if catch_up_after_ddl {
                wait_for_schema_reloads(&rowhook, ddl).await;
            }
        }
    }
    let got = receiver.wait_for(expected.len(), Duration::from_secs(20)).await;
    assert_eq!(got.len(), expected.len(), "one event per insert");
    for (received, want) in got.iter().zip(&expected) {
        let data = &received.json()["data"];
        for key in ["id", "name", "price"] {
            assert_eq!(data[key], want[key], "{key} of item {}: got {data}", want["id"]);
        }
    }
    rowhook.stop().await.expect("clean stop: no schema change stopped the reader");
}

/// Waits until the reader has passed `count` schema changes.
async fn wait_for_schema_reloads(rowhook: &InProcess, count: u64) {
    let mut seen = 0;
    for _ in 0..200 {
        let text = reqwest::get(format!("{}/metrics", rowhook.base_url)).await.unwrap().text().await.unwrap();
        seen = text
            .lines()
            .find_map(|l| l.strip_prefix("rowhook_schema_reloads_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if seen >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the reader passed {seen} of {count} schema changes within 10 s");
}

#[actix_rt::test]
async fn schema_changes_mid_stream_with_full_row_metadata() {
    run_script(None, false).await;
}

#[actix_rt::test]
async fn schema_changes_without_row_metadata_names_from_information_schema() {
    let server = MariaDb::start_private(&["--binlog-row-metadata=NO_LOG"]);
    run_script(Some(&server), true).await;
}
