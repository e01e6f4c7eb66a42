//! Deliveries over https://: the receiver's certificate is checked against the
//! system's trust store (the platform verifier; `SSL_CERT_FILE` points it at
//! a test CA here), and a certificate nobody vouches for fails the attempt
//! with the reason recorded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::prelude::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::pipeline::write_notes;
use crate::rowhook::TestDb;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// An https receiver: answers 200 to every POST (keep-alive) and keeps the
/// `webhook-id` of each.
pub(crate) struct HttpsReceiver {
    pub(crate) port: u16,
    ids: Arc<Mutex<Vec<String>>>,
}

pub(crate) async fn https_receiver(cert: &std::path::Path, key: &std::path::Path) -> HttpsReceiver {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let ids = Arc::new(Mutex::new(Vec::new()));
    let seen = ids.clone();
    actix_rt::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            actix_rt::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buffer = Vec::new();
                loop {
                    // One request: headers, then Content-Length bytes of body.
                    let head_end = loop {
                        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break end + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match tls.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
                    let header = |name: &str| {
                        head.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(|v| v.trim().to_string()))
                    };
                    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                    while buffer.len() < head_end + length {
                        let mut chunk = [0u8; 4096];
                        match tls.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    if let Some(id) = header("webhook-id") {
                        seen.lock().unwrap().push(id);
                    }
                    buffer.drain(..head_end + length);
                    if tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    HttpsReceiver { port, ids }
}

impl HttpsReceiver {
    pub(crate) fn unique(&self) -> usize {
        self.ids.lock().unwrap().iter().collect::<std::collections::HashSet<_>>().len()
    }
}

/// `rowhook run` (the binary: `SSL_CERT_FILE` is per process) with `ca` as
/// its trust store and `env` added, once it is ready; and its HTTP address.
pub(crate) async fn spawn(
    db_url: &str,
    ca: &std::path::Path,
    log: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, std::net::SocketAddr) {
    let listen = crate::rowhook::free_addr();
    let child = crate::rowhook::daemon_command(db_url, crate::rowhook::server_id(), listen)
        .envs(env.iter().copied())
        .env("SSL_CERT_FILE", ca)
        .env("ROWHOOK__LOG__LEVEL", "info")
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start rowhook");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !reqwest::get(format!("http://{listen}/readyz")).await.is_ok_and(|r| r.status().is_success()) {
        assert!(std::time::Instant::now() < deadline, "rowhook not ready:\n{}", std::fs::read_to_string(log).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, listen)
}

#[actix_rt::test]
async fn deliveries_go_over_https_to_a_receiver_whose_certificate_the_trust_store_vouches_for() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::tls::certificates(dir.path(), "rowhook-https-ca");
    let receiver = https_receiver(&cert, &key).await;
    let mut db = TestDb::new("https").await;
    db.add_webhook(&format!("https://127.0.0.1:{}/hook", receiver.port), &["note.added"], SECRET, true).await;
    let (mut child, _) = spawn(&db.url, &ca, &dir.path().join("rowhook.log"), &[]).await;

    write_notes(&db.url, 1, 51, 10).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while receiver.unique() < 50 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(receiver.unique(), 50, "every note over https:\n{}", std::fs::read_to_string(dir.path().join("rowhook.log")).unwrap());
}

#[actix_rt::test]
async fn a_receiver_certificate_nobody_vouches_for_fails_the_attempt_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = crate::tls::certificates(dir.path(), "rowhook-https-ca");
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = crate::tls::certificates(other.path(), "another-ca");
    let receiver = https_receiver(&cert, &key).await;
    let mut db = TestDb::new("httpsbad").await;
    let hook = db.add_webhook(&format!("https://127.0.0.1:{}/hook", receiver.port), &["note.added"], SECRET, true).await;
    let (mut child, _) = spawn(&db.url, &other_ca, &dir.path().join("rowhook.log"), &[]).await;

    write_notes(&db.url, 1, 2, 1).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut error = None;
    while error.is_none() && std::time::Instant::now() < deadline {
        error = db
            .conn
            .exec_first::<Option<String>, _, _>("SELECT last_error FROM webhook_deliveries WHERE webhook_id = ? AND attempts > 0", (hook,))
            .await
            .unwrap()
            .flatten();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(receiver.unique(), 0, "nothing reached the receiver");
    let error = error.expect("the failed attempt is recorded");
    assert!(error.to_lowercase().contains("certificate"), "the recorded error says why: {error}");
}
