//! SSRF, proven against the tricks (issue 17): each trick URL is refused at
//! delivery, after DNS resolution where there is a name, and recorded as a
//! failed attempt in the delivery history; and refused at registration with
//! a 422 naming the field, the host and the address (issue 18).
//!
//! The webhooks of the delivery tests are inserted with SQL, as the PHP
//! application does, so only the delivery-time check stands between them and
//! the target. Every target is a real listener that a broken guard would
//! reach (each test first shows that a plain client does reach it), and
//! every test checks that it received nothing.
//!
//! Addresses this machine does not have (10.0.0.5, 169.254.169.254, fd00::5)
//! and names that resolve to them are tested in a network namespace of the
//! test's own ([`crate::support::netns`]): there the addresses are local, so
//! nothing can leave the machine even if the guard broke; names resolve from
//! that namespace's `/etc/hosts` through the system resolver, the way
//! rowhook resolves in production, with no test hook inside rowhook.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use mysql_async::prelude::*;

use crate::api::{Api, TOKEN};
use crate::https::{https_receiver, spawn};
use crate::rowhook::{test_config, InProcess, TestDb};
use crate::support::netns::{self, METADATA_V4, PRIVATE_V4, ULA_V6};
use crate::support::Receiver;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A trick: a URL host, and the address the refusal must name.
struct Trick {
    host: &'static str,
    addr: &'static str,
}

/// The tricks of issue 17 that name this machine: a listener on `[::]` gets
/// a connection to any of them.
const LOOPBACK_TRICKS: &[Trick] = &[
    Trick { host: "127.1", addr: "127.0.0.1" },
    Trick { host: "2130706433", addr: "127.0.0.1" },
    Trick { host: "0x7f000001", addr: "127.0.0.1" },
    Trick { host: "0177.0.0.1", addr: "127.0.0.1" },
    Trick { host: "0.0.0.0", addr: "0.0.0.0" },
    Trick { host: "[::]", addr: "::" },
    Trick { host: "[::1]", addr: "::1" },
    Trick { host: "[::ffff:127.0.0.1]", addr: "::ffff:127.0.0.1" },
];

/// The rest, in the network namespace: addresses this machine does not have,
/// and names that resolve to them through the namespace's `/etc/hosts`.
const NAMESPACE_TRICKS: &[Trick] = &[
    Trick { host: "[::ffff:169.254.169.254]", addr: "::ffff:169.254.169.254" },
    Trick { host: "169.254.169.254", addr: METADATA_V4 },
    Trick { host: "10.0.0.5", addr: PRIVATE_V4 },
    Trick { host: "private.rowhook.test", addr: PRIVATE_V4 },
    Trick { host: "ula.rowhook.test", addr: ULA_V6 },
    Trick { host: "metadata.rowhook.test", addr: METADATA_V4 },
];

const NAMESPACE_HOSTS: &str = "10.0.0.5 private.rowhook.test\nfd00::5 ula.rowhook.test\n169.254.169.254 metadata.rowhook.test";

impl Trick {
    /// A hostname (resolved), not an address in some notation.
    fn is_name(&self) -> bool {
        matches!(url::Url::parse(&trick_url(self, 1)).unwrap().host(), Some(url::Host::Domain(_)))
    }
}

fn trick_url(trick: &Trick, port: u16) -> String {
    format!("http://{}:{port}/hook", trick.host)
}

/// A listener on every local address, IPv4 and IPv6, that a broken guard
/// would deliver to; shown reachable through each trick by a plain client.
async fn trap_reachable_through(tricks: &[Trick]) -> Receiver {
    crate::support::install_crypto_provider();
    let trap = Receiver::start_on("[::]:0".parse().unwrap()).await;
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().unwrap();
    for trick in tricks {
        let url = trick_url(trick, trap.port());
        let response = client.post(&url).body("probe").send().await.unwrap_or_else(|e| panic!("{url} does not reach the trap: {e}"));
        assert_eq!(response.status(), StatusCode::OK, "{url}");
    }
    assert_eq!(trap.received().len(), tricks.len(), "every trick reaches the trap without the guard");
    trap.clear();
    trap
}

async fn start_guarded(db: &TestDb, configure: impl FnOnce(&mut rowhook::config::Config)) -> (InProcess, Api) {
    let mut config = test_config(&db.url);
    config.admin.token = Some(TOKEN.into());
    config.delivery.allow_private_targets = false;
    config.delivery.auto_disable_after = 100;
    configure(&mut config);
    let rowhook = InProcess::start(config).await;
    let api = Api::new(&rowhook);
    (rowhook, api)
}

/// The newest delivery of each webhook as the history shows it, once every
/// one of them has failed for good (3 attempts with the test schedule).
async fn failed_deliveries(api: &Api, webhooks: &[u64]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut rows = Vec::new();
        for id in webhooks {
            let (status, history) = api.call(Method::GET, &format!("/api/webhooks/{id}/deliveries"), None).await;
            assert_eq!(status, StatusCode::OK, "{history}");
            rows.push(history["data"][0].clone());
        }
        if let Some(delivered) = rows.iter().find(|d| d["status"] == "delivered") {
            panic!("delivered, when every attempt should fail: {delivered}");
        }
        if rows.iter().all(|d| d["status"] == "failed") {
            return rows;
        }
        assert!(Instant::now() < deadline, "not every delivery failed in 30 s: {rows:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every trick, inserted with SQL, is refused at each attempt and recorded:
/// failed, 3 attempts, no response, an error naming the address and the way out.
async fn refused_at_delivery(db: &mut TestDb, tricks: &[Trick], trap: &Receiver) -> (InProcess, Api, Vec<u64>) {
    let mut webhooks = Vec::new();
    for trick in tricks {
        webhooks.push(db.add_webhook(&trick_url(trick, trap.port()), &["note.added"], SECRET, true).await);
    }
    let (rowhook, api) = start_guarded(db, |_| {}).await;
    db.exec("INSERT INTO notes (thread_id, user_id, content) VALUES (1, 1, 'x')").await;
    let rows = failed_deliveries(&api, &webhooks).await;
    for (trick, row) in tricks.iter().zip(&rows) {
        let error = row["last_error"].as_str().unwrap_or_default();
        assert_eq!(row["attempts"], 3, "{}: {row}", trick.host);
        assert_eq!(row["response_status"], Value::Null, "{}: nothing answered: {row}", trick.host);
        assert!(error.starts_with("refusing to deliver to "), "{}: {error}", trick.host);
        let names_address = if trick.is_name() {
            error.contains(&format!("refusing to deliver to {}: it resolves to {},", trick.host, trick.addr))
        } else {
            error.contains(&format!(": {} is ", trick.addr))
        };
        assert!(names_address, "{}: the error names the address {}: {error}", trick.host, trick.addr);
        assert!(error.ends_with("set [delivery] allow_private_targets = true to allow"), "{}: {error}", trick.host);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(trap.received().is_empty(), "the trap received {:?}", trap.received().iter().map(|r| &r.path).collect::<Vec<_>>());
    (rowhook, api, webhooks)
}

/// Every trick is refused at registration: 422, the field, host and address named.
async fn refused_at_registration(api: &Api, tricks: &[Trick], port: u16) {
    for trick in tricks {
        let url = trick_url(trick, port);
        let (status, answer) = api.call(Method::POST, "/api/webhooks", Some(json!({"url": url, "events": ["*"]}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {answer}");
        assert_eq!(answer["success"], false);
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("url: refusing to deliver to "), "{url}: {error}");
        assert!(error.contains("allow_private_targets = true"), "{url}: says how to allow it: {error}");
        assert!(answer["details"]["url"].as_str().is_some_and(|m| error.ends_with(m)), "{url}: {answer}");
        assert_eq!(answer["details"]["address"], trick.addr, "{url}: {answer}");
        assert!(answer["details"]["host"].as_str().is_some_and(|h| !h.is_empty()), "{url}: {answer}");
    }
}

#[actix_rt::test]
async fn loopback_tricks_inserted_with_sql_are_refused_at_delivery_and_recorded() {
    let trap = trap_reachable_through(LOOPBACK_TRICKS).await;
    let mut db = TestDb::new("ssrf_loop").await;
    let (rowhook, api, webhooks) = refused_at_delivery(&mut db, LOOPBACK_TRICKS, &trap).await;

    // An update that leaves such a URL in place is answered with a warning.
    let (status, answer) = api.call(Method::PUT, &format!("/api/webhooks/{}", webhooks[0]), Some(json!({"events": ["*"]}))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let warning = answer["meta"]["warnings"][0].as_str().unwrap_or_default();
    assert!(warning.starts_with("url: the webhook's URL will be refused at every delivery: refusing to deliver to 127.0.0.1"), "{answer}");
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn loopback_tricks_are_refused_at_registration() {
    let db = TestDb::new("ssrf_reg").await;
    let (rowhook, api) = start_guarded(&db, |_| {}).await;
    refused_at_registration(&api, LOOPBACK_TRICKS, 8080).await;

    // A name: refused after resolution (localhost is 127.0.0.1 or ::1, from /etc/hosts).
    let (status, answer) = api.call(Method::POST, "/api/webhooks", Some(json!({"url": "http://localhost:8080/hook", "events": ["*"]}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer["error"].as_str().unwrap().starts_with("url: refusing to deliver to localhost: it resolves to "), "{answer}");
    assert_eq!(answer["details"]["host"], "localhost");

    // A public address is accepted without warnings (inactive: nothing is ever sent to it);
    // changing its URL to a private one is refused and leaves it as it was.
    let (status, created) =
        api.call(Method::POST, "/api/webhooks", Some(json!({"url": "https://93.184.215.14/hook", "events": ["*"], "is_active": false}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["meta"], json!({"warnings": []}));
    let id = created["data"]["id"].as_u64().unwrap();
    for url in ["http://127.1:8080/", "http://localhost/"] {
        let (status, answer) = api.call(Method::PUT, &format!("/api/webhooks/{id}"), Some(json!({"url": url}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {answer}");
        assert!(answer["details"]["url"].as_str().unwrap().contains("allow_private_targets = true"), "{answer}");
    }
    let (_, kept) = api.call(Method::GET, &format!("/api/webhooks/{id}"), None).await;
    assert_eq!(kept["data"]["url"], "https://93.184.215.14/hook");
    rowhook.stop().await.expect("clean stop");

    // With allow_private_targets the same URL registers.
    let (rowhook, api) = start_guarded(&db, |c| c.delivery.allow_private_targets = true).await;
    let (status, answer) = api.call(Method::POST, "/api/webhooks", Some(json!({"url": "http://127.1:8080/hook", "events": ["*"], "is_active": false}))).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn private_addresses_and_names_are_refused_in_a_network_namespace() {
    if !netns::enter("ssrf::private_addresses_and_names_are_refused_in_a_network_namespace", NAMESPACE_HOSTS) {
        return;
    }
    let trap = trap_reachable_through(NAMESPACE_TRICKS).await;
    let mut db = TestDb::new("ssrf_ns").await;
    let (rowhook, api, _) = refused_at_delivery(&mut db, NAMESPACE_TRICKS, &trap).await;
    refused_at_registration(&api, NAMESPACE_TRICKS, trap.port()).await;

    // A name that does not resolve registers, with the reason in meta.warnings;
    // changing it to a name of a private address is refused.
    let (status, created) =
        api.call(Method::POST, "/api/webhooks", Some(json!({"url": "http://unknown.rowhook.test/hook", "events": ["thread.created"]}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let warning = created["meta"]["warnings"][0].as_str().unwrap_or_default();
    assert!(warning.starts_with("url: could not resolve unknown.rowhook.test"), "{created}");
    assert!(warning.contains("Accepted anyway"), "{created}");
    let id = created["data"]["id"].as_u64().unwrap();
    let (status, answer) = api.call(Method::PUT, &format!("/api/webhooks/{id}"), Some(json!({"url": "https://private.rowhook.test/"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["details"]["host"], "private.rowhook.test");
    assert_eq!(answer["details"]["address"], PRIVATE_V4);
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn a_redirect_to_a_private_address_is_not_followed() {
    // allow_private_targets on: the guard would let the redirect's target
    // through, so only not following redirects keeps it from being reached.
    let private = Receiver::start().await;
    let redirector = Receiver::start().await;
    redirector.set_status(302);
    redirector.set_header("location", &private.url());
    let mut db = TestDb::new("ssrf_redirect").await;
    let webhook = db.add_webhook(&redirector.url(), &["note.added"], SECRET, true).await;
    let (rowhook, api) = start_guarded(&db, |c| c.delivery.allow_private_targets = true).await;

    db.exec("INSERT INTO notes (thread_id, user_id, content) VALUES (1, 1, 'x')").await;
    let row = failed_deliveries(&api, &[webhook]).await.remove(0);
    assert_eq!(row["attempts"], 3, "{row}");
    assert_eq!(row["response_status"], 302, "{row}");
    let error = row["last_error"].as_str().unwrap_or_default();
    assert_eq!(
        error,
        format!(
            "the receiver answered 302, a redirect to http://127.0.0.1:{}/…: rowhook does not follow redirects; register the final URL instead",
            private.port()
        )
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(redirector.received().len(), 3, "each attempt reached the redirecting receiver");
    assert!(private.received().is_empty(), "the redirect's target received nothing");
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn https_only_refuses_plain_http_at_registration_and_at_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::tls::certificates(dir.path(), "rowhook-https-ca");
    let secure = https_receiver(&cert, &key).await;
    let plain = Receiver::start().await;
    let mut db = TestDb::new("https_only").await;
    db.add_webhook(&format!("https://127.0.0.1:{}/hook", secure.port), &["note.added"], SECRET, true).await;
    let http_hook = db.add_webhook(&plain.url(), &["note.added"], SECRET, true).await;
    let log = dir.path().join("rowhook.log");
    // The binary, with the setting from the environment (and the test CA as its trust store).
    let (mut child, listen) = spawn(&db.url, &ca, &log, &[("ROWHOOK__DELIVERY__HTTPS_ONLY", "true")]).await;
    let client = reqwest::Client::new();
    let register = |url: String| {
        let client = client.clone();
        async move {
            let response = client
                .post(format!("http://{listen}/api/webhooks"))
                .json(&json!({"url": url, "events": ["note.added"], "is_active": false}))
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };

    let (status, answer) = register(plain.url()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("url: refusing http://127.0.0.1: [delivery] https_only = true allows only https:// URLs"), "{error}");
    assert!(answer["details"]["url"].is_string(), "{answer}");
    let (status, answer) = register(format!("https://127.0.0.1:{}/other", secure.port)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");

    // At delivery: the https webhook gets the event, the http one (inserted with SQL) a refusal.
    db.exec("INSERT INTO notes (thread_id, user_id, content) VALUES (1, 1, 'x')").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let (status, attempts, error) = loop {
        let row: Option<(String, i64, Option<String>)> = db
            .conn
            .exec_first("SELECT status, attempts, last_error FROM webhook_deliveries WHERE webhook_id = ?", (http_hook,))
            .await
            .unwrap();
        if let Some(row) = row.filter(|(status, _, _)| status == "failed" && secure.unique() == 1) {
            break row;
        }
        assert!(Instant::now() < deadline, "no verdict in 30 s:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!((status.as_str(), attempts), ("failed", 3));
    let error = error.unwrap_or_default();
    assert!(error.starts_with("refusing http://127.0.0.1: [delivery] https_only = true allows only https:// URLs"), "{error}");
    assert!(error.contains("set https_only = false"), "says how to allow it: {error}");
    assert!(plain.received().is_empty(), "nothing went over plain http");
    assert_eq!(secure.unique(), 1, "the https webhook got its event");
}
