//! TLS to the database: every connection rowhook makes (the binlog reader, the
//! state database, the instance lock) to a server whose rowhook user must use
//! TLS, with the server's certificate checked against a private CA given in
//! the URL (`ssl_ca`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mysql_async::prelude::*;

use crate::pipeline::{assert_all_notes, wait_for_unique, write_notes};
use crate::rowhook::{test_config, InProcess, TestDb};
use crate::support::mariadb::MariaDb;
use crate::support::Receiver;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn openssl(dir: &Path, args: &[&str]) {
    let openssl = crate::ops::tool("openssl", "openssl");
    let out = Command::new(openssl).current_dir(dir).args(args).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA and a server certificate it signed for 127.0.0.1: (ca.pem, cert, key).
pub(crate) fn certificates(dir: &Path, ca_name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let subject = format!("/CN={ca_name}");
    openssl(dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &subject, "-keyout", "ca-key.pem", "-out", "ca.pem"]);
    openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server-key.pem", "-out", "server.csr"]);
    std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", "server-cert.pem"],
    );
    (dir.join("ca.pem"), dir.join("server-cert.pem"), dir.join("server-key.pem"))
}

/// A server with TLS, a database, and a rowhook user that must use TLS.
async fn tls_server(dir: &Path) -> (MariaDb, TestDb, PathBuf) {
    let (ca, cert, key) = certificates(dir, "rowhook-test-ca");
    let args = [format!("--ssl-ca={}", ca.display()), format!("--ssl-cert={}", cert.display()), format!("--ssl-key={}", key.display())];
    let server = MariaDb::start_private(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut db = TestDb::on(&server, "tls").await;
    db.exec("CREATE USER 'rowhook_tls'@'%' IDENTIFIED BY 'tls-pw' REQUIRE SSL").await;
    db.exec("GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'rowhook_tls'@'%'").await;
    db.exec(&format!("GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, REFERENCES ON {}.* TO 'rowhook_tls'@'%'", db.name)).await;
    (server, db, ca)
}

fn user_url(server: &MariaDb, db: &str, query: &str) -> String {
    server.url(db).replacen("root@", "rowhook_tls:tls-pw@", 1) + query
}

#[actix_rt::test]
async fn every_connection_uses_tls_with_the_private_ca_of_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut db, ca) = tls_server(dir.path()).await;
    let receiver = Receiver::start().await;
    db.add_webhook(&receiver.url(), &["note.added"], SECRET, true).await;
    let url = user_url(&server, &db.name, &format!("?ssl_ca={}", ca.display()));
    let rowhook = InProcess::start(test_config(&url)).await;

    write_notes(&db.url, 1, 51, 10).await;
    let got = wait_for_unique(&receiver, 50, Duration::from_secs(30)).await;
    assert_all_notes(&got, 50);
    // The user may not connect without TLS, so each of these sessions is a TLS one.
    let commands: Vec<String> = db.conn.query("SELECT COMMAND FROM information_schema.PROCESSLIST WHERE USER = 'rowhook_tls'").await.unwrap();
    assert!(commands.iter().any(|c| c == "Binlog Dump"), "the binlog reader connected: {commands:?}");
    assert!(commands.len() >= 2, "the reader and the state database / lock connections: {commands:?}");
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn without_tls_or_with_another_ca_rowhook_stops_with_the_server_s_or_the_certificate_s_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (server, db, _) = tls_server(dir.path()).await;

    let plain = InProcess::spawn(test_config(&user_url(&server, &db.name, "")));
    let err = plain.finished(Duration::from_secs(20)).await.expect_err("refused without TLS").to_string();
    assert!(err.contains("Access denied"), "{err}");
    assert!(err.contains("a user that must use TLS (REQUIRE SSL) is refused the same way without it"), "{err}");

    let other = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = certificates(other.path(), "another-ca");
    let wrong = InProcess::spawn(test_config(&user_url(&server, &db.name, &format!("?ssl_ca={}", other_ca.display()))));
    let err = wrong.finished(Duration::from_secs(20)).await.expect_err("refused with another CA").to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert!(err.contains("Check TLS in that URL: ssl_ca= must name the CA"), "{err}");
}
