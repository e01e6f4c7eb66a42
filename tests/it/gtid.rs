//! GTID resume on MariaDB: the checkpoint records the last GTID of every
//! replication domain, and a restart resumes from that state rather than from
//! the file and position, so a checkpoint whose file/pos is meaningless on the
//! server (a failover to a server numbering its binlogs differently) still
//! resumes exactly where it stopped.

use std::time::Duration;

use mysql_async::prelude::*;

use crate::rowhook::{test_config, InProcess};
use crate::support::mariadb::MariaDb;
use crate::support::{Received, Receiver};

/// The thread ids of `thread.created` deliveries, in arrival order.
fn threads(received: &[Received]) -> Vec<i64> {
    received
        .iter()
        .filter(|r| r.header("x-webhook-event") == Some("thread.created"))
        .map(|r| r.json()["data"]["thread_id"].as_i64().unwrap())
        .collect()
}

async fn checkpoint(conn: &mut mysql_async::Conn) -> (String, u64, Option<String>) {
    conn.query_first("SELECT binlog_file, binlog_pos, gtid FROM rowhook_checkpoints WHERE name = 'source'")
        .await
        .unwrap()
        .expect("a checkpoint")
}

/// Gives the checkpoint a file/pos that means nothing on this server, as after
/// a failover to a server whose binlogs are numbered differently: only the
/// GTID state can say where to resume.
async fn forget_file_position(conn: &mut mysql_async::Conn) {
    conn.query_drop("UPDATE rowhook_checkpoints SET binlog_file = 'elsewhere-bin.000042', binlog_pos = 123456 WHERE name = 'source'")
        .await
        .unwrap();
}

/// A private MariaDB with migrated state, a receiver subscribed to
/// `thread.created`, the application's connection and rowhook running.
struct Setup {
    _server: MariaDb,
    /// rowhook's state (same database).
    conn: mysql_async::Conn,
    /// The application's writes.
    app: mysql_async::Conn,
    receiver: Receiver,
    config: rowhook::config::Config,
    rowhook: InProcess,
}

impl Setup {
    async fn start(database: &str) -> Setup {
        let server = MariaDb::start_private(&[]);
        let name = server.fresh_database(database).await;
        let url = server.url(&name);
        rowhook::state::store::Store::new(&url).unwrap().migrate().await.expect("migrate");
        let mut conn = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
        let receiver = Receiver::start().await;
        conn.exec_drop(
            "INSERT INTO webhooks (url, events, secret) VALUES (?, '[\"thread.created\"]', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')",
            (receiver.url(),),
        )
        .await
        .unwrap();
        let app = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
        let config = test_config(&url);
        let rowhook = InProcess::start(config.clone()).await;
        Setup { _server: server, conn, app, receiver, config, rowhook }
    }
}

#[actix_rt::test]
async fn the_checkpoint_holds_every_domain_and_a_restart_resumes_by_gtid() {
    let Setup { _server, mut conn, mut app, receiver, config, rowhook } = Setup::start("gtid").await;
    app.query_drop("INSERT INTO threads (id, subject) VALUES (1, 'domain 0')").await.unwrap();
    app.query_drop("SET SESSION gtid_domain_id = 1").await.unwrap();
    app.query_drop("INSERT INTO threads (id, subject) VALUES (2, 'domain 1')").await.unwrap();
    let got = receiver.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(threads(&got), [1, 2]);
    let first_ids: Vec<String> = got.iter().map(|r| r.header("webhook-id").unwrap().to_string()).collect();
    rowhook.stop().await.expect("clean stop");

    // The checkpoint has one GTID per domain, the server's own notation.
    let (_, _, gtid) = checkpoint(&mut conn).await;
    let gtid = gtid.expect("the checkpoint records the GTID state");
    let domains: Vec<&str> = gtid.split(',').map(|g| g.split('-').next().unwrap()).collect();
    assert_eq!(domains, ["0", "1"], "{gtid}");
    let domain1: String = conn.query_first("SELECT @@gtid_binlog_pos").await.unwrap().unwrap();
    let server_domain1 = domain1.split(',').find(|g| g.starts_with("1-")).unwrap().to_string();
    assert!(gtid.split(',').any(|g| g == server_domain1), "domain 1 is at the server's last GTID: {gtid} vs {domain1}");

    // While stopped: writes in both domains.
    app.query_drop("INSERT INTO threads (id, subject) VALUES (3, 'domain 1, while stopped')").await.unwrap();
    app.query_drop("SET SESSION gtid_domain_id = 0").await.unwrap();
    app.query_drop("INSERT INTO threads (id, subject) VALUES (4, 'domain 0, while stopped')").await.unwrap();

    forget_file_position(&mut conn).await;
    let rowhook = InProcess::start(config.clone()).await;
    let got = receiver.wait_for(4, Duration::from_secs(15)).await;
    assert_eq!(threads(&got), [1, 2, 3, 4], "each thread exactly once, in order");
    app.query_drop("INSERT INTO threads (id, subject) VALUES (5, 'after the restart')").await.unwrap();
    let got = receiver.wait_for(5, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(threads(&receiver.received()), [1, 2, 3, 4, 5]);
    rowhook.stop().await.expect("clean stop");

    // Event ids still come from the server's real file and position.
    let binlog: String = conn.query_first("SELECT SUBSTRING_INDEX(@@log_bin_basename, '/', -1)").await.unwrap().unwrap();
    assert_eq!(binlog, "binlog");
    for r in &got {
        let id = r.header("webhook-id").unwrap();
        assert!(id.starts_with("evt_000001_"), "{id}");
    }
    assert_eq!(got[..2].iter().map(|r| r.header("webhook-id").unwrap().to_string()).collect::<Vec<_>>(), first_ids);
    // And the checkpoint is the server's file again.
    let (file, pos, gtid) = checkpoint(&mut conn).await;
    assert_eq!(file, "binlog.000001");
    assert!(pos > 4);
    assert!(gtid.unwrap().contains(&server_domain1.split('-').take(2).collect::<Vec<_>>().join("-")));
}

#[actix_rt::test]
async fn a_purged_gtid_position_stops_with_advice() {
    let server = MariaDb::start_private(&[]);
    let name = server.fresh_database("gtid_purged").await;
    let url = server.url(&name);
    rowhook::state::store::Store::new(&url).unwrap().migrate().await.expect("migrate");
    let mut conn = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    // A checkpoint at a GTID this server never had in its binlogs (they start later).
    conn.query_drop("INSERT INTO threads (id, subject) VALUES (1, 'x')").await.unwrap();
    conn.query_drop("FLUSH BINARY LOGS").await.unwrap();
    // MariaDB keeps a file until its binlog checkpoint is written: retry.
    for _ in 0..100 {
        conn.query_drop("PURGE BINARY LOGS TO 'binlog.000002'").await.unwrap();
        let files: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await.unwrap();
        if files.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let files: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await.unwrap();
    assert_eq!(files.len(), 1, "binlog.000001 purged");
    conn.query_drop(
        "INSERT INTO rowhook_checkpoints (name, binlog_file, binlog_pos, gtid) VALUES ('source', 'binlog.000001', 4, '0-1-1') \
         ON DUPLICATE KEY UPDATE binlog_file = VALUES(binlog_file), binlog_pos = VALUES(binlog_pos), gtid = VALUES(gtid)",
    )
    .await
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        rowhook::daemon::run(test_config(&url), listener, std::future::pending(), None),
    )
    .await
    .expect("rowhook stops by itself");
    let err = result.expect_err("a purged GTID position is definite");
    assert!(err.to_string().contains("--reset-position"), "{err}");
}

#[actix_rt::test]
async fn a_gtid_state_of_many_domains_is_stored_whole_and_resumed_from() {
    // Twelve domains with 19-digit sequence numbers: a state of ~290
    // characters, beyond the VARCHAR(255) the checkpoint had before V5.
    let Setup { _server, mut conn, mut app, receiver, config, rowhook } = Setup::start("gtid_many").await;
    for domain in 0..12u64 {
        app.query_drop(format!("SET SESSION gtid_domain_id = {domain}, gtid_seq_no = {}", 1_000_000_000_000_000_000 + domain))
            .await
            .unwrap();
        app.query_drop(format!("INSERT INTO threads (id, subject) VALUES ({}, 'domain {domain}')", domain + 1)).await.unwrap();
    }
    let got = receiver.wait_for(12, Duration::from_secs(20)).await;
    assert_eq!(threads(&got), (1..=12).collect::<Vec<i64>>());
    rowhook.stop().await.expect("clean stop");

    let (_, _, gtid) = checkpoint(&mut conn).await;
    let gtid = gtid.expect("a state this long is stored, not dropped for file/pos");
    assert!(gtid.len() > 255, "{} characters: {gtid}", gtid.len());
    assert_eq!(gtid.split(',').count(), 12, "{gtid}");
    // Domains 1-11 hold only the application's writes: exactly the server's
    // position. (Domain 0 also has rowhook's own bookkeeping, written after the checkpoint.)
    let server_state: String = conn.query_first("SELECT @@gtid_binlog_pos").await.unwrap().unwrap();
    for domain in 1..12 {
        let prefix = format!("{domain}-");
        let ours = gtid.split(',').find(|g| g.starts_with(&prefix));
        let theirs = server_state.split(',').find(|g| g.starts_with(&prefix));
        assert_eq!(ours, theirs, "domain {domain}: {gtid} vs {server_state}");
    }
    assert!(gtid.starts_with("0-1-"), "{gtid}");
    // While stopped: writes in two domains; then a file/pos that means nothing here.
    app.query_drop("SET SESSION gtid_domain_id = 7").await.unwrap();
    app.query_drop("INSERT INTO threads (id, subject) VALUES (13, 'domain 7, while stopped')").await.unwrap();
    app.query_drop("SET SESSION gtid_domain_id = 11").await.unwrap();
    app.query_drop("INSERT INTO threads (id, subject) VALUES (14, 'domain 11, while stopped')").await.unwrap();
    forget_file_position(&mut conn).await;
    let rowhook = InProcess::start(config).await;
    receiver.wait_for(14, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(threads(&receiver.received()), (1..=14).collect::<Vec<i64>>(), "each thread exactly once, in order");
    rowhook.stop().await.expect("clean stop");
}
