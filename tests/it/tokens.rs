//! Tokens with scopes (issue 17, item 1), against the real daemon: every
//! route with a read token, an admin token, the single `[admin] token` of old,
//! a wrong token and none; the 401 and 403 answers; the audit line of every
//! admin change in the logs of the real binary, configured from the
//! environment, with no token or secret anywhere in them.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::ops::{free_port, Running};
use crate::rowhook::{server_id, test_config, InProcess, TestDb};
use crate::support::{self, Receiver};

const SINGLE: &str = "single-admin-token-0123456789";
const READ: &str = "read-token-abcdefghijklmnop";
const OPS: &str = "ops-admin-token-qrstuvwxyz";

/// (token, method, route, status, webhook_id, delivery_id) of an audit line.
type AuditLine = (String, String, String, u64, Option<u64>, Option<u64>);

fn hash(token: &str) -> String {
    rowhook::admin::auth::hash_token(token)
}

async fn call(base: &str, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

#[actix_rt::test]
async fn each_scope_on_each_kind_of_route() {
    let db = TestDb::new("scopes").await;
    let receiver = Receiver::start().await;
    let mut config = test_config(&db.url);
    config.admin.token = Some(SINGLE.into());
    for (name, scope, token) in [("dashboard", rowhook::config::TokenScope::Read, READ), ("ops", rowhook::config::TokenScope::Admin, OPS)] {
        config.admin.tokens.insert(name.into(), rowhook::config::TokenConfig { scope, hash: hash(token) });
    }
    let rowhook = InProcess::start(config).await;
    let base = rowhook.base_url.clone();

    // A webhook and a delivery to act on, made with the admin tokens.
    let (status, _, created) =
        call(&base, Method::POST, "/api/webhooks", Some(OPS), Some(json!({"url": receiver.url(), "events": ["*"]}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["data"]["id"].as_u64().unwrap();
    let (status, _, test) = call(&base, Method::POST, &format!("/api/webhooks/{id}/test"), Some(SINGLE), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "the single [admin] token is still an admin token: {test}");
    let delivery = test["data"]["delivery_id"].as_u64().unwrap();
    receiver.wait_for(1, Duration::from_secs(10)).await;

    // A backfill to read and cancel (the tables are empty: it ends at once).
    let (status, _, backfill) =
        call(&base, Method::POST, &format!("/api/webhooks/{id}/backfills"), Some(OPS), Some(json!({"event_type": "thread.created"}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{backfill}");
    let backfill = backfill["data"]["id"].as_u64().unwrap();

    let since = (time::OffsetDateTime::now_utc() - time::Duration::hours(1)).format(&time::format_description::well_known::Rfc3339).unwrap();
    let body_for = |method: &str, path: &str| -> Option<Value> {
        match (method, path) {
            ("POST", "/api/webhooks") => Some(json!({"url": receiver.url(), "events": ["note.added"]})),
            ("POST", "/api/webhooks/{id}/replay") => Some(json!({"since": since})),
            ("POST", "/api/webhooks/{id}/backfills") => Some(json!({"event_type": "thread.created"})),
            ("PUT", _) => Some(json!({"events": ["*"]})),
            _ => None,
        }
    };
    for (method, pattern) in rowhook::admin::http::ROUTES {
        let path = pattern
            .replace("deliveries/{id}", &format!("deliveries/{delivery}"))
            .replace("{backfill}", &backfill.to_string())
            .replace("{id}", &id.to_string());
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let changing = *method != "GET";
        let open = !path.starts_with("/api/");
        if *method == "DELETE" {
            continue; // below, last
        }

        // The read token: GETs answer, changes are refused with 403 naming the scope needed.
        let (status, _, answer) = call(&base, m.clone(), &path, Some(READ), body_for(method, pattern)).await;
        if changing {
            assert_eq!(status, StatusCode::FORBIDDEN, "read token, {method} {path}: {answer}");
            assert_eq!(answer["success"], false);
            assert_eq!(answer["error"], format!("token `dashboard` has scope read: {method} {path} needs scope admin"));
            assert_eq!(answer["details"], json!({"token": "dashboard", "scope": "read", "needed": "admin"}));
        } else {
            assert!(status.is_success(), "read token, {method} {path}: {status} {answer}");
        }

        // No token and a wrong one: 401 on /api, with WWW-Authenticate; the probes and /metrics stay open.
        for token in [None, Some("wrong-token"), Some(&hash(READ)[..])] {
            let (status, headers, answer) = call(&base, m.clone(), &path, token, body_for(method, pattern)).await;
            if open {
                assert!(status.is_success(), "{method} {path} needs no token: {status}");
                continue;
            }
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}, {method} {path}: {answer}");
            let reason = if token.is_none() { "missing bearer token" } else { "wrong bearer token" };
            assert_eq!(
                answer["error"],
                format!("{reason}: send Authorization: Bearer <token> (the [admin] token, or a token of [admin] tokens)")
            );
            assert_eq!(headers.get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Bearer realm=\"rowhook\""));
        }

        // Both admin tokens may do everything.
        for token in [OPS, SINGLE] {
            let (status, _, answer) = call(&base, m.clone(), &path, Some(token), body_for(method, pattern)).await;
            assert!(status.is_success(), "admin token, {method} {path}: {status} {answer}");
        }
    }

    // Cancelling a backfill: refused for read; an admin token gets past the
    // scope check (200, or 409 when the backfill of empty tables has ended).
    let path = format!("/api/webhooks/{id}/backfills/{backfill}");
    let (status, _, answer) = call(&base, Method::DELETE, &path, Some(READ), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["details"]["needed"], "admin");
    let (status, _, answer) = call(&base, Method::DELETE, &path, Some(OPS), None).await;
    assert!(status == StatusCode::OK || (status == StatusCode::CONFLICT && answer["error"].as_str().unwrap().contains("has ended")), "{status} {answer}");

    // Delete: refused for read, done with admin.
    let path = format!("/api/webhooks/{id}");
    let (status, _, answer) = call(&base, Method::DELETE, &path, Some(READ), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["details"]["needed"], "admin");
    let (status, _, _) = call(&base, Method::GET, &path, Some(READ), None).await;
    assert_eq!(status, StatusCode::OK, "still there after the refused delete");
    let (status, _, answer) = call(&base, Method::DELETE, &path, Some(SINGLE), None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // A read token sending another method gets the scope answer too, not a hint that the route exists.
    let (status, _, _) = call(&base, Method::PATCH, "/api/webhooks", Some(READ), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(&base, Method::PATCH, "/api/webhooks", Some(OPS), None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn protected_metrics_ask_for_a_token_of_either_scope() {
    let db = TestDb::new("metrics_token").await;
    let mut config = test_config(&db.url);
    config.admin.protect_metrics = true;
    config.admin.tokens.insert("prometheus".into(), rowhook::config::TokenConfig { scope: rowhook::config::TokenScope::Read, hash: hash(READ) });
    config.admin.tokens.insert("ops".into(), rowhook::config::TokenConfig { scope: rowhook::config::TokenScope::Admin, hash: hash(OPS) });
    let rowhook = InProcess::start(config).await;
    let base = rowhook.base_url.clone();
    for token in [None, Some("wrong-token")] {
        let (status, headers, answer) = call(&base, Method::GET, "/metrics", token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {answer}");
        assert_eq!(headers.get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Bearer realm=\"rowhook\""));
    }
    for token in [READ, OPS] {
        let (status, _, answer) = call(&base, Method::GET, "/metrics", Some(token), None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(answer.as_str().is_some_and(|text| text.contains("rowhook_active 1")), "{answer}");
    }
    // The probes stay open: an orchestrator has no token.
    for probe in ["/healthz", "/readyz"] {
        let (status, _, _) = call(&base, Method::GET, probe, None, None).await;
        assert!(status.is_success(), "{probe}: {status}");
    }
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn named_tokens_alone_let_rowhook_listen_beyond_loopback() {
    support::install_crypto_provider();
    // Named tokens alone count as tokens: rowhook may listen beyond loopback.
    let db = TestDb::new("named_only").await;
    let mut config = test_config(&db.url);
    config.admin.tokens.insert("dashboard".into(), rowhook::config::TokenConfig { scope: rowhook::config::TokenScope::Read, hash: hash(READ) });
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = actix_rt::spawn(rowhook::daemon::run(config, listener, async move { let _ = stopped.await; }, None));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("{base}/api/webhooks")).bearer_auth(READ).send().await {
            assert_eq!(r.status(), StatusCode::OK);
            break;
        }
        assert!(!run.is_finished(), "rowhook stopped: a named token is a token");
        assert!(Instant::now() < deadline, "not serving in 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    run.await.unwrap().expect("clean stop");
}

/// The binary, tokens from the environment, JSON logs: every admin change
/// has its audit line, and neither a token nor a secret shows anywhere.
#[actix_rt::test]
async fn every_admin_change_has_one_audit_line_without_secrets() {
    support::install_crypto_provider();
    let db = TestDb::new("audit").await;
    let receiver = Receiver::start().await;
    let port = free_port();
    let log_path = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(support::rowhook_bin())
        .args(["run", "--config", concat!(env!("CARGO_MANIFEST_DIR"), "/config/rowhook.toml")])
        .env_remove("RUST_LOG")
        .env("ROWHOOK__SOURCE__URL", &db.url)
        .env("ROWHOOK__SOURCE__SERVER_ID", server_id().to_string())
        .env("ROWHOOK__SOURCE__HEARTBEAT", "1s")
        .env("ROWHOOK__HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env("ROWHOOK__ADMIN__TOKEN", SINGLE)
        .env("ROWHOOK__ADMIN__TOKENS__OPS__SCOPE", "admin")
        .env("ROWHOOK__ADMIN__TOKENS__OPS__HASH", hash(OPS))
        .env("ROWHOOK__ADMIN__TOKENS__DASHBOARD__SCOPE", "read")
        .env("ROWHOOK__ADMIN__TOKENS__DASHBOARD__HASH", hash(READ))
        .env("ROWHOOK__DELIVERY__ALLOW_PRIVATE_TARGETS", "true")
        .env("ROWHOOK__DELIVERY__RETRY_SCHEDULE", "100ms,100ms")
        .env("ROWHOOK__LOG__FORMAT", "json")
        .env("ROWHOOK__LOG__LEVEL", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn rowhook run");
    let mut child = Running(child);
    let base = format!("http://127.0.0.1:{port}");
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await {
            if r.status().is_success() {
                break;
            }
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("rowhook run exited with {status}:\n{}", read_log());
        }
        assert!(started.elapsed() < Duration::from_secs(30), "not ready in 30 s:\n{}", read_log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The changes, each by a token: (token, method, path, body, expected status).
    let (status, _, created) = call(&base, Method::POST, "/api/webhooks", Some(OPS), Some(json!({"url": receiver.url(), "events": ["*"]}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["data"]["id"].as_u64().unwrap();
    let secret = created["data"]["secret"].as_str().unwrap().to_string();
    let (_, _, test) = call(&base, Method::POST, &format!("/api/webhooks/{id}/test"), Some(SINGLE), None).await;
    let delivery = test["data"]["delivery_id"].as_u64().unwrap();
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let (status, _, rotated) = call(&base, Method::POST, &format!("/api/webhooks/{id}/rotate-secret"), Some(OPS), None).await;
    assert_eq!(status, StatusCode::OK);
    let rotated_secret = rotated["data"]["secret"].as_str().unwrap().to_string();
    let (status, _, _) = call(&base, Method::PUT, &format!("/api/webhooks/{id}"), Some(OPS), Some(json!({"is_active": true}))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(&base, Method::POST, &format!("/api/webhooks/deliveries/{delivery}/retry"), Some(OPS), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, _) = call(&base, Method::PUT, &format!("/api/webhooks/{id}"), Some(READ), Some(json!({"is_active": false}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(&base, Method::GET, &format!("/api/webhooks/{id}"), Some(READ), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(&base, Method::POST, "/api/webhooks", Some("not-a-token-at-all"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, backfill) =
        call(&base, Method::POST, &format!("/api/webhooks/{id}/backfills"), Some(OPS), Some(json!({"event_type": "thread.created"}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{backfill}");
    let backfill = backfill["data"]["id"].as_u64().unwrap();
    let (status, _, _) =
        call(&base, Method::POST, &format!("/api/webhooks/{id}/replay"), Some(OPS), Some(json!({"since": "2000-01-01T00:00:00Z"}))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // The backfill of empty tables may have ended: cancelling it answers 200 or 409, audited either way.
    let (cancel_status, _, _) = call(&base, Method::DELETE, &format!("/api/webhooks/{id}/backfills/{backfill}"), Some(OPS), None).await;
    assert!(cancel_status == StatusCode::OK || cancel_status == StatusCode::CONFLICT, "{cancel_status}");
    let (status, _, _) = call(&base, Method::DELETE, &format!("/api/webhooks/{id}"), Some(SINGLE), None).await;
    assert_eq!(status, StatusCode::OK);

    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "rowhook did not stop within 20 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut output = String::new();
    std::fs::File::open(&log_path).unwrap().read_to_string(&mut output).unwrap();

    for (what, secret) in [
        ("single admin token", SINGLE.to_string()),
        ("read token", READ.to_string()),
        ("ops token", OPS.to_string()),
        ("wrong token", "not-a-token-at-all".to_string()),
        ("webhook secret", secret.clone()),
        ("webhook secret's key", secret.trim_start_matches("whsec_").to_string()),
        ("rotated secret", rotated_secret),
    ] {
        assert!(!output.contains(&secret), "the log shows the {what}:\n{output}");
    }
    let audit: Vec<Value> = output
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|l| l["target"] == "rowhook::audit")
        .map(|l| l["fields"].clone())
        .collect();
    let summary: Vec<AuditLine> = audit
        .iter()
        .map(|f| {
            assert_eq!(f["message"], "admin change", "{f}");
            (
                f["token"].as_str().unwrap().to_string(),
                f["method"].as_str().unwrap().to_string(),
                f["route"].as_str().unwrap().to_string(),
                f["status"].as_u64().unwrap(),
                f["webhook_id"].as_u64(),
                f["delivery_id"].as_u64(),
            )
        })
        .collect();
    let s = |t: &str| t.to_string();
    assert_eq!(
        summary,
        [
            (s("ops"), s("POST"), s("/api/webhooks"), 201, Some(id), None),
            (s("token"), s("POST"), s("/api/webhooks/{id}/test"), 202, Some(id), Some(delivery)),
            (s("ops"), s("POST"), s("/api/webhooks/{id}/rotate-secret"), 200, Some(id), None),
            (s("ops"), s("PUT"), s("/api/webhooks/{id}"), 200, Some(id), None),
            (s("ops"), s("POST"), s("/api/webhooks/deliveries/{id}/retry"), 202, Some(id), Some(delivery)),
            (s("dashboard"), s("PUT"), s("/api/webhooks/{id}"), 403, Some(id), None),
            (s("ops"), s("POST"), s("/api/webhooks/{id}/backfills"), 202, Some(id), None),
            (s("ops"), s("POST"), s("/api/webhooks/{id}/replay"), 202, Some(id), None),
            (s("ops"), s("DELETE"), s("/api/webhooks/{id}/backfills/{backfill}"), u64::from(cancel_status.as_u16()), Some(id), None),
            (s("token"), s("DELETE"), s("/api/webhooks/{id}"), 200, Some(id), None),
        ],
        "one audit line per change, none for reads or unknown tokens:\n{output}"
    );
    assert!(audit.iter().all(|f| f["via"] == "bearer"), "{audit:?}");
    assert_eq!(audit[5]["scope"], "read");
}

#[test]
fn hash_token_prints_what_sha256sum_prints() {
    use std::io::Write as _;
    let hash_of = |input: &str| {
        let mut child = Command::new(support::rowhook_bin())
            .arg("hash-token")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rowhook hash-token");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).trim().to_string(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let sha256sum = Command::new(crate::ops::tool("sha256sum", "coreutils"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"s3cret token")?;
            c.wait_with_output()
        })
        .unwrap();
    let expected = format!("sha256:{}", String::from_utf8_lossy(&sha256sum.stdout).split_whitespace().next().unwrap());
    for input in ["s3cret token", "s3cret token\n", "s3cret token\r\n"] {
        assert_eq!(hash_of(input), (true, expected.clone(), String::new()), "{input:?}: one line end is not part of the token");
    }
    let (ok, _, err) = hash_of("");
    assert!(!ok && err.contains("printf %s"), "{err}");

    let out = Command::new(support::rowhook_bin()).args(["hash-token", "--new"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let token = text.lines().find_map(|l| l.strip_prefix("token: ")).expect("token line").to_string();
    let hash = text.lines().find_map(|l| l.strip_prefix("hash:  ")).expect("hash line").to_string();
    assert!(token.starts_with("rht_") && token.len() > 40, "{text}");
    assert_eq!(hash, rowhook::admin::auth::hash_token(&token));
}
