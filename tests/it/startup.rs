//! Startup checks: a source rowhook cannot use is refused with a message
//! that says what to do.

use mysql_async::prelude::*;
use rowhook::daemon::{check, RunError};
use rowhook::source::schema::SchemaError;

use crate::rowhook::{test_config, TestDb};
use crate::support::mariadb::{self, MariaDb};

#[actix_rt::test]
async fn a_statement_based_binlog_is_refused() {
    let server = MariaDb::start_private(&["--binlog-format=STATEMENT"]);
    let mut conn = mysql_async::Conn::from_url(server.root_url()).await.unwrap();
    conn.query_drop("CREATE DATABASE helpdesk").await.unwrap();
    conn.query_drop("CREATE TABLE helpdesk.threads (id INT PRIMARY KEY, subject TEXT, status TEXT, created_at TEXT, updated_at TEXT)")
        .await
        .unwrap();
    let mut config = test_config(&server.url("helpdesk"));
    config.events.retain(|r| r.table == "threads");
    let err = check(&config).await.err().expect("refused");
    assert!(matches!(err, RunError::Schema(SchemaError::NotRowFormat(_))), "{err}");
    assert!(err.to_string().contains("binlog_format=ROW"), "{err}");
}

#[actix_rt::test]
async fn a_user_without_replication_grant_is_told_what_to_grant() {
    let db = TestDb::new("grants").await;
    let mut root = mysql_async::Conn::from_url(mariadb::shared().root_url()).await.unwrap();
    let user = format!("nogrant_{}", std::process::id());
    root.query_drop(format!("CREATE USER IF NOT EXISTS '{user}'@'%'")).await.unwrap();
    root.query_drop(format!("GRANT SELECT ON `{}`.* TO '{user}'@'%'", db.name)).await.unwrap();
    let url = format!("mysql://{user}@127.0.0.1:{}/{}", mariadb::shared().port, db.name);
    let err = check(&test_config(&url)).await.err().expect("refused");
    assert!(matches!(err, RunError::Schema(SchemaError::MissingGrant { .. })), "{err}");
    assert!(err.to_string().contains("GRANT REPLICATION SLAVE"), "{err}");
}

#[actix_rt::test]
async fn rules_are_checked_against_the_live_schema() {
    let db = TestDb::new("rules").await;
    let mut config = test_config(&db.url);
    config.events[0].fields.insert("mood".into(), "no_such_column".into());
    let err = check(&config).await.err().expect("refused");
    assert!(err.to_string().contains("no column `no_such_column`"), "{err}");

    let mut config = test_config(&db.url);
    config.events[0].table = "tickets".into();
    let err = check(&config).await.err().expect("refused");
    assert!(err.to_string().contains("table `tickets` does not exist"), "{err}");

    check(&test_config(&db.url)).await.expect("the shipped rules fit the reference schema");
}

#[actix_rt::test]
async fn an_unreachable_database_is_named() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = check(&test_config(&format!("mysql://root@127.0.0.1:{port}/helpdesk"))).await.err().expect("refused");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
}

#[actix_rt::test]
async fn binlog_off_and_partial_row_images_are_refused() {
    let server = MariaDb::start_private(&["--skip-log-bin"]);
    let mut conn = mysql_async::Conn::from_url(server.root_url()).await.unwrap();
    conn.query_drop("CREATE DATABASE helpdesk").await.unwrap();
    let err = check(&test_config(&server.url("helpdesk"))).await.err().expect("refused");
    assert!(matches!(err, RunError::Schema(SchemaError::BinlogOff)), "{err}");
    assert!(err.to_string().contains("log_bin"), "{err}");
    drop(server);

    let server = MariaDb::start_private(&["--binlog-row-image=MINIMAL"]);
    let mut conn = mysql_async::Conn::from_url(server.root_url()).await.unwrap();
    conn.query_drop("CREATE DATABASE helpdesk").await.unwrap();
    let err = check(&test_config(&server.url("helpdesk"))).await.err().expect("refused");
    assert!(matches!(err, RunError::Schema(SchemaError::NotFullImage(_))), "{err}");
    assert!(err.to_string().contains("binlog_row_image=FULL"), "{err}");
}
