//! The admin API and /metrics over real HTTP, against the running daemon and
//! a private MariaDB: every endpoint, every validation error, auth, the
//! effect of each change on deliveries, the OpenAPI document, the metrics.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::rowhook::{test_config, InProcess, TestDb};
use crate::support::{Received, Receiver};

pub(crate) const TOKEN: &str = "test-admin-token-0123456789";

pub(crate) struct Api {
    pub(crate) base: String,
    client: reqwest::Client,
}

impl Api {
    pub(crate) fn new(rowhook: &InProcess) -> Api {
        Api { base: rowhook.base_url.clone(), client: reqwest::Client::new() }
    }

    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"));
        (status, body)
    }

    async fn raw(&self, method: Method, path: &str, content_type: Option<&str>, body: Vec<u8>, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}")))
    }
}

async fn start() -> (TestDb, InProcess, Api) {
    let db = TestDb::new("api").await;
    let mut config = test_config(&db.url);
    config.admin.token = Some(TOKEN.into());
    let rowhook = InProcess::start(config).await;
    let api = Api::new(&rowhook);
    (db, rowhook, api)
}

fn types(received: &[Received]) -> Vec<String> {
    received.iter().map(|r| r.header("x-webhook-event").unwrap_or("").to_string()).collect()
}

#[actix_rt::test]
async fn webhooks_are_managed_over_the_api_and_changes_apply_at_once() {
    let (mut db, rowhook, api) = start().await;
    let receiver = Receiver::start().await;

    // Register: 201, the secret shown once, a whsec_ secret by default.
    let (status, created) = api.call(Method::POST, "/api/webhooks", Some(json!({"url": receiver.url(), "events": ["note.added"]}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["success"], true);
    let id = created["data"]["id"].as_u64().unwrap();
    let secret = created["data"]["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(created["data"]["is_active"], true);

    // A new webhook gets the next event.
    db.exec("INSERT INTO notes (thread_id, user_id, content) VALUES (1, 1, 'a')").await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(types(&got), ["note.added"]);

    // Details and list never show the secret.
    let (status, details) = api.call(Method::GET, &format!("/api/webhooks/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(details["data"].get("secret").is_none());
    assert_eq!(details["data"]["events"], json!(["note.added"]));
    let (_, list) = api.call(Method::GET, "/api/webhooks?page=1&per_page=1000", None).await;
    assert_eq!(list["meta"], json!({"page": 1, "per_page": 100, "total": 1}));
    assert!(list["data"][0].get("secret").is_none());

    // A changed event list applies to the next event.
    let (status, updated) = api.call(Method::PUT, &format!("/api/webhooks/{id}"), Some(json!({"events": ["thread.created"]}))).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["data"]["events"], json!(["thread.created"]));
    db.exec("INSERT INTO notes (thread_id, user_id, content) VALUES (1, 1, 'b')").await;
    db.exec("INSERT INTO threads (subject) VALUES ('t')").await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(types(&got), ["note.added", "thread.created"]);

    // Deactivated: nothing more, and queued deliveries stop.
    receiver.set_status(500);
    let (status, _) = api.call(Method::PUT, &format!("/api/webhooks/{id}"), Some(json!({"is_active": false}))).await;
    assert_eq!(status, StatusCode::OK);
    db.exec("INSERT INTO threads (subject) VALUES ('u')").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(receiver.received().len(), 2, "an inactive webhook gets nothing");

    // History: newest first, filters, pagination.
    let (status, history) = api.call(Method::GET, &format!("/api/webhooks/{id}/deliveries?status=delivered"), None).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["meta"]["total"], 2);
    assert_eq!(history["data"][0]["event_type"], "thread.created");
    assert_eq!(history["data"][0]["attempts"], 1);
    assert_eq!(history["data"][0]["response_status"], 200);
    assert_eq!(history["data"][0]["payload"]["type"], "thread.created");
    let (_, filtered) = api.call(Method::GET, &format!("/api/webhooks/{id}/deliveries?event_type=note.added&per_page=1"), None).await;
    assert_eq!(filtered["meta"]["total"], 1);
    assert_eq!(filtered["data"].as_array().unwrap().len(), 1);
    let delivered_id = history["data"][0]["id"].as_u64().unwrap();

    // Retry: 409 while inactive; re-activating resets failed_attempts; then delivered again as a new attempt.
    let (status, body) = api.call(Method::POST, &format!("/api/webhooks/deliveries/{delivered_id}/retry"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    db.exec(&format!("UPDATE webhooks SET failed_attempts = 7 WHERE id = {id}")).await;
    receiver.set_status(200);
    let (_, reactivated) = api.call(Method::PUT, &format!("/api/webhooks/{id}"), Some(json!({"is_active": true}))).await;
    assert_eq!(reactivated["data"]["failed_attempts"], 0);
    let (status, body) = api.call(Method::POST, &format!("/api/webhooks/deliveries/{delivered_id}/retry"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].header("webhook-id"), got[1].header("webhook-id"), "a retry carries the same event id");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, history) = api.call(Method::GET, &format!("/api/webhooks/{id}/deliveries?event_type=thread.created&status=delivered"), None).await;
    assert!(history["data"].as_array().unwrap().iter().any(|d| d["id"] == delivered_id && d["attempts"] == 2));

    // Test event: signed webhook.test through the normal path, recorded.
    let (status, test) = api.call(Method::POST, &format!("/api/webhooks/{id}/test"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{test}");
    let got = receiver.wait_for(4, Duration::from_secs(10)).await;
    let last = got.last().unwrap();
    assert_eq!(last.header("x-webhook-event"), Some("webhook.test"));
    assert_eq!(last.header("webhook-id"), test["data"]["event_id"].as_str());
    let key = rowhook::delivery::signing::SigningKey::from_secret(&secret).unwrap();
    rowhook::delivery::signing::verify_seed(&key, last.header("x-webhook-signature").unwrap(), &last.body).expect("test event signed");

    // Rotation: the new secret once; during the overlap both signatures travel.
    let (status, rotated) = api.call(Method::POST, &format!("/api/webhooks/{id}/rotate-secret"), None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["data"]["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    db.exec("INSERT INTO threads (subject) VALUES ('after rotation')").await;
    let got = receiver.wait_for(5, Duration::from_secs(10)).await;
    let last = got.last().unwrap();
    let signatures = last.header("webhook-signature").unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "both signatures: {signatures}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    for s in [&secret, &new_secret] {
        let key = rowhook::delivery::signing::SigningKey::from_secret(s).unwrap();
        rowhook::delivery::signing::verify_standard(
            &key,
            signatures,
            last.header("webhook-id").unwrap(),
            last.header("webhook-timestamp").unwrap(),
            &last.body,
            now,
            Duration::from_secs(300),
        )
        .expect("old and new secret both verify");
    }
    let new_key = rowhook::delivery::signing::SigningKey::from_secret(&new_secret).unwrap();
    rowhook::delivery::signing::verify_seed(&new_key, last.header("x-webhook-signature").unwrap(), &last.body).expect("seed header uses the new secret");

    // Delete: its deliveries go with it, nothing more is delivered.
    let (status, _) = api.call(Method::DELETE, &format!("/api/webhooks/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(db.deliveries(id).await.is_empty());
    let (status, _) = api.call(Method::GET, &format!("/api/webhooks/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    db.exec("INSERT INTO threads (subject) VALUES ('after delete')").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(receiver.received().len(), 5);

    let (status, types) = api.call(Method::GET, "/api/event-types", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(types["data"], json!(["thread.created", "thread.updated", "thread.deleted", "email.received", "email.sent", "note.added"]));
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn bad_input_gets_a_json_error_naming_the_field() {
    let (_db, rowhook, api) = start().await;
    let good = json!({"url": "https://example.com/hook", "events": ["*"]});
    let (_, created) = api.call(Method::POST, "/api/webhooks", Some(good.clone())).await;
    let id = created["data"]["id"].as_u64().unwrap();

    let cases: Vec<(Value, &str)> = vec![
        (json!({"url": "ftp://example.com", "events": ["*"]}), "url"),
        (json!({"url": "no url", "events": ["*"]}), "url"),
        (json!({"url": format!("https://example.com/{}", "x".repeat(500)), "events": ["*"]}), "url"),
        (json!({"events": ["*"]}), "url"),
        (json!({"url": "https://example.com", "events": []}), "events"),
        (json!({"url": "https://example.com", "events": ["ticket.exploded"]}), "events"),
        (json!({"url": "https://example.com", "events": ["*"], "secret": "too-short"}), "secret"),
        (json!({"url": "https://example.com", "events": ["*"], "is_active": "yes"}), "is_active"),
        (json!({"url": "https://example.com", "events": ["*"], "owner": "me"}), "owner"),
    ];
    for (body, field) in cases {
        let (status, answer) = api.call(Method::POST, "/api/webhooks", Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {answer}");
        assert_eq!(answer["success"], false);
        assert!(answer["details"].get(field).is_some(), "{body}: details name {field}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(field));
    }
    let (status, answer) = api.call(Method::PUT, &format!("/api/webhooks/{id}"), Some(json!({"is_active": 1}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");

    // Malformed JSON, wrong content type, oversized body.
    let (status, answer) = api.raw(Method::POST, "/api/webhooks", Some("application/json"), b"{\"url\": ".to_vec(), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("malformed JSON"));
    let (status, answer) = api.raw(Method::POST, "/api/webhooks", Some("text/plain"), serde_json::to_vec(&good).unwrap(), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("Content-Type"));
    let huge = json!({"url": "https://example.com", "events": ["*"], "secret": "s".repeat(70 * 1024)});
    let (status, answer) = api.raw(Method::POST, "/api/webhooks", Some("application/json"), serde_json::to_vec(&huge).unwrap(), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");

    // Ids: non-numeric and unknown are 404, as JSON.
    for path in ["/api/webhooks/abc", "/api/webhooks/999999", "/api/webhooks/0", "/api/webhooks/999999/deliveries"] {
        let (status, answer) = api.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
        assert_eq!(answer["success"], false);
    }
    let (status, _) = api.call(Method::POST, "/api/webhooks/deliveries/999999/retry", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.call(Method::POST, "/api/webhooks/999999/rotate-secret", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.call(Method::GET, "/api/webhooks?page=0", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api.call(Method::GET, &format!("/api/webhooks/{id}/deliveries?status=lost"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, answer) = api.call(Method::PATCH, "/api/webhooks", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{answer}");
    let (status, _) = api.call(Method::GET, "/api/nothing-here", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn the_api_needs_the_token_and_the_probes_do_not() {
    let (_db, rowhook, api) = start().await;
    for token in [None, Some("wrong-token"), Some("test-admin-token-012345678")] {
        let (status, answer) = api.raw(Method::GET, "/api/webhooks", None, Vec::new(), token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(answer["success"], false);
        assert!(answer["error"].as_str().unwrap().contains("Bearer"));
    }
    let (status, _) = api.raw(Method::GET, "/api/webhooks", None, Vec::new(), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/healthz", "/readyz"] {
        let (status, answer) = api.raw(Method::GET, path, None, Vec::new(), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
    }
    let metrics = reqwest::get(format!("{}/metrics", api.base)).await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn without_a_token_rowhook_refuses_a_non_loopback_address() {
    let db = TestDb::new("notoken").await;
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let config = test_config(&db.url);
    let err = rowhook::daemon::run(config, listener, std::future::pending(), None).await.unwrap_err();
    assert!(err.to_string().contains("ROWHOOK__ADMIN__TOKEN"), "{err}");
}

#[actix_rt::test]
async fn every_route_is_served_and_described() {
    let (_db, rowhook, api) = start().await;
    let (status, doc) = api.call(Method::GET, "/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    let mut described = HashSet::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            described.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    let served: HashSet<(String, String)> =
        rowhook::admin::http::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(described, served, "openapi.json and the server's routes differ");
    // Each route answers (a 404 here would mean an unknown route, with id 1 absent it is "not found" JSON too,
    // so check the method is routed: never 405).
    for (method, path) in rowhook::admin::http::ROUTES {
        let path = path.replace("{id}", "1");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let response = api.client.request(method.clone(), format!("{}{path}", api.base)).bearer_auth(TOKEN).json(&json!({})).send().await.unwrap();
        assert_ne!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if response.status() == StatusCode::NOT_FOUND {
            let body: Value = response.json().await.unwrap();
            assert_ne!(body["error"], "no such route", "{method} {path} is not routed");
        }
    }
    // Any other method: 405 naming the route's methods in Allow (RFC 9110), the probes too
    // (schemathesis found 404s there and 405s without Allow).
    for (_, pattern) in rowhook::admin::http::ROUTES {
        let expected: Vec<&str> = rowhook::admin::http::ROUTES.iter().filter(|(_, p)| p == pattern).map(|(m, _)| *m).collect();
        let path = pattern.replace("{id}", "1").replace("{backfill}", "1");
        let response = api.client.request(Method::TRACE, format!("{}{path}", api.base)).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "TRACE {path}");
        let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_string());
        assert_eq!(allow, Some(expected.join(", ")), "TRACE {path}");
    }
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn metrics_parse_and_move_after_a_delivery() {
    let (mut db, rowhook, api) = start().await;
    let receiver = Receiver::start().await;
    let (_, created) = api.call(Method::POST, "/api/webhooks", Some(json!({"url": receiver.url(), "events": ["*"]}))).await;
    let id = created["data"]["id"].as_u64().unwrap().to_string();
    db.exec("INSERT INTO threads (subject) VALUES ('m')").await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let text = reqwest::get(format!("{}/metrics", api.base)).await.unwrap().text().await.unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text format");
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    assert_eq!(value("rowhook_delivery_attempts_total", &[("webhook_id", &id), ("outcome", "delivered")]), 1.0);
    assert_eq!(value("rowhook_events_total", &[("type", "thread.created")]), 1.0);
    assert_eq!(value("rowhook_rows_total", &[("table", "threads"), ("operation", "insert")]), 1.0);
    assert!(value("rowhook_binlog_events_total", &[]) >= 3.0);
    assert_eq!(value("rowhook_reader_connected", &[]), 1.0);
    assert_eq!(value("rowhook_webhooks", &[("state", "active")]), 1.0);
    assert!(value("rowhook_checkpoint_position", &[]) > 0.0);
    assert!(value("rowhook_admin_requests_total", &[("route", "/api/webhooks"), ("status", "201")]) >= 1.0);
    assert!(scrape.samples.iter().any(|s| s.metric == "rowhook_delivery_duration_seconds_count"));
    assert!(scrape.samples.iter().any(|s| s.metric.starts_with("process_")), "process metrics");
    assert!(!text.contains(&receiver.url()), "no URL in any label");

    // Pending deliveries per webhook, read at scrape time.
    receiver.set_status(500);
    db.exec("INSERT INTO threads (subject) VALUES ('n')").await;
    receiver.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let text = reqwest::get(format!("{}/metrics", api.base)).await.unwrap().text().await.unwrap();
    assert!(text.contains(&format!("rowhook_deliveries_pending{{webhook_id=\"{id}\"}} 1")), "{text}");
    rowhook.stop().await.expect("clean stop");
}
