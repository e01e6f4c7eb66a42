//! The console (issue 16): in a real browser (Debian's chromium driven by
//! playwright-core, `tests/console/console.test.mjs`) against the real daemon,
//! MariaDB and receivers; and over plain HTTP what a browser test cannot see
//! well: cookie flags, CSRF, expiry, the open console, standbys, the history's
//! filters and kept attempts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::rowhook::{test_config, InProcess, TestDb};
use crate::support::{self, mariadb, Receiver};
use rowhook::config::{TokenConfig, TokenScope};

const ADMIN: &str = "console-admin-token-0123456789";
const READ: &str = "console-read-token-abcdefghijk";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn with_tokens(mut config: rowhook::config::Config) -> rowhook::config::Config {
    let hash = rowhook::admin::auth::hash_token;
    config.admin.tokens.insert("ops".into(), TokenConfig { scope: TokenScope::Admin, hash: hash(ADMIN) });
    config.admin.tokens.insert("dashboard".into(), TokenConfig { scope: TokenScope::Read, hash: hash(READ) });
    config
}

/// A client that keeps no cookies of its own: each test passes them.
fn client() -> reqwest::Client {
    support::install_crypto_provider();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// `Set-Cookie` values of a response.
fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect()
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// Signs in through the form as a browser does: GET the form (its CSRF field and cookie), POST it.
/// Returns the session cookie (`rowhook_session=...`) and the page's CSRF token.
async fn sign_in(base: &str, token: &str, headers: &[(&str, &str)]) -> (String, String, Vec<String>) {
    let http = client();
    let form = http.get(format!("{base}/console/login")).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let login_cookie = cookie_value(set_cookies(&form).iter().find(|c| c.starts_with("rowhook_login=")).expect("the form's cookie"));
    let html = form.text().await.unwrap();
    let csrf = between(&html, "name=\"csrf\" value=\"", "\"");
    let mut request = http
        .post(format!("{base}/console/login"))
        .header("cookie", &login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&token={token}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "signed in");
    let cookies = set_cookies(&response);
    let session = cookie_value(cookies.iter().find(|c| c.starts_with("rowhook_session=")).expect("a session cookie"));
    let page = http.get(format!("{base}/console")).header("cookie", &session).send().await.unwrap().text().await.unwrap();
    let page_csrf = between(&page, "<meta name=\"csrf-token\" content=\"", "\"");
    (session, page_csrf, cookies)
}

fn between(text: &str, start: &str, end: &str) -> String {
    let from = text.find(start).unwrap_or_else(|| panic!("{start} not in:\n{text}")) + start.len();
    let to = text[from..].find(end).unwrap() + from;
    text[from..to].to_string()
}

#[actix_rt::test]
async fn console_in_a_real_browser() {
    let node = crate::ops::tool("node", "nodejs");
    let chromium = std::env::var("CHROMIUM").map(PathBuf::from).unwrap_or_else(|_| crate::ops::tool("chromium", "chromium"));
    let script_dir = repo("tests/console");
    assert!(
        script_dir.join("node_modules/playwright-core/package.json").is_file(),
        "tests/console/node_modules is missing: run `bash scripts/test-deps.sh` (it runs npm ci there; make test does it)"
    );

    let mut db = TestDb::new("console").await;
    let ok = Receiver::start().await;
    let flaky = Receiver::start().await;
    flaky.fail_matching("Printer on fire", 3);
    let hostile = Receiver::start().await;
    hostile.set_status(500);
    hostile.set_body("<script>window.__pwned=1</script>");
    // A webhook the PHP app could have written, with markup in its URL (inactive: never sent).
    let hostile_url = "http://127.0.0.1:9/\"><img src=x onerror=alert(2)>";
    db.add_webhook(hostile_url, &["note.added"], "0123456789abcdef0123", false).await;
    let rowhook = InProcess::start(with_tokens(test_config(&db.url))).await;

    let shots = repo("target/console-screenshots");
    let docs = std::env::var("ROWHOOK_DOCS_SCREENSHOTS").ok().filter(|v| v == "1").map(|_| repo("docs"));
    let sql = json!([
        crate::ops::tool("mariadb", "mariadb-client").to_string_lossy(),
        "--protocol=tcp",
        "-h127.0.0.1",
        format!("-P{}", mariadb::shared().port),
        "-uroot",
        db.name,
        "-e"
    ]);
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(node)
        .arg("console.test.mjs")
        .current_dir(&script_dir)
        .env("ROWHOOK_URL", &rowhook.base_url)
        .env("ADMIN_TOKEN", ADMIN)
        .env("READ_TOKEN", READ)
        .env("RECEIVER_OK", ok.url())
        .env("RECEIVER_FLAKY", flaky.url())
        .env("RECEIVER_HOSTILE", hostile.url())
        .env("HOSTILE_URL", hostile_url)
        .env("SQL", sql.to_string())
        .env("SCREENSHOTS", &shots)
        .env("DOCS_SCREENSHOTS", docs.as_deref().unwrap_or(Path::new("")))
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("node");
    // The daemon and the receivers run on this thread: wait without blocking it.
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let output = std::fs::read_to_string(log.path()).unwrap_or_default();
    println!("{output}");
    assert!(status.success(), "the browser test failed ({status}):\n{output}");
    assert!(output.contains(" passed, 0 failed"), "{output}");
    for page in ["login", "overview", "webhooks", "webhook", "delivery", "event-types", "overview-390", "delivery-390"] {
        assert!(shots.join(format!("{page}.png")).is_file(), "screenshot of {page}");
    }
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn sessions_have_safe_cookies_csrf_and_an_end() {
    let db = TestDb::new("console_sessions").await;
    let mut config = with_tokens(test_config(&db.url));
    config.admin.session_lifetime = Duration::from_secs(3);
    let rowhook = InProcess::start(config).await;
    let base = rowhook.base_url.clone();
    let http = client();

    // Signed out: pages send to the sign-in page, live parts answer 401, /api 401.
    let page = http.get(format!("{base}/console/webhooks")).send().await.unwrap();
    assert_eq!((page.status(), page.headers()["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, "/console/login"));
    let live = http.get(format!("{base}/console/live/overview")).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::UNAUTHORIZED);

    // The sign-in form refuses a post without its cookie (from another site), and a wrong token.
    let forged = http
        .post(format!("{base}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf=x&token={ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::OK, "the form again, not a session");
    assert!(set_cookies(&forged).iter().all(|c| !c.starts_with("rowhook_session=")));
    assert!(forged.text().await.unwrap().contains("expired or came from elsewhere"));

    // Cookie flags: HttpOnly, SameSite=Strict, the lifetime; Secure behind https.
    let (session, csrf, cookies) = sign_in(&base, ADMIN, &[]).await;
    let set = cookies.iter().find(|c| c.starts_with("rowhook_session=")).unwrap();
    assert!(set.contains("; HttpOnly") && set.contains("; SameSite=Strict") && set.contains("; Path=/") && set.contains("; Max-Age=3"), "{set}");
    assert!(!set.contains("Secure"), "plain http: {set}");
    let (_, _, https_cookies) = sign_in(&base, ADMIN, &[("x-forwarded-proto", "https")]).await;
    assert!(https_cookies.iter().find(|c| c.starts_with("rowhook_session=")).unwrap().ends_with("; Secure"));
    assert!(csrf.len() >= 43);

    // Pages carry the security headers.
    let page = http.get(format!("{base}/console/webhooks")).header("cookie", &session).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'") && !csp.contains("unsafe"), "{csp}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["cache-control"], "no-store");

    // The API with the cookie: reads yes; changes only with the CSRF token.
    let call = |method: Method, token: Option<&str>| {
        let mut request = http.request(method, format!("{base}/api/webhooks")).header("cookie", &session).json(&json!({"url": "http://127.0.0.1:1/h", "events": ["*"]}));
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        request.send()
    };
    assert_eq!(call(Method::GET, None).await.unwrap().status(), StatusCode::OK);
    let refused = call(Method::POST, None).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("CSRF"));
    assert_eq!(call(Method::POST, Some("wrong")).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(call(Method::POST, Some(&csrf)).await.unwrap().status(), StatusCode::CREATED);

    // Sign-out needs the CSRF token too, then the session is gone.
    let (other, other_csrf, _) = sign_in(&base, READ, &[]).await;
    let bad = http.post(format!("{base}/console/logout")).header("cookie", &other).body("csrf=nope").send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::FORBIDDEN);
    let out = http
        .post(format!("{base}/console/logout"))
        .header("cookie", &other)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={other_csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(set_cookies(&out).iter().any(|c| c.starts_with("rowhook_session=;") && c.contains("Max-Age=0")));
    assert_eq!(http.get(format!("{base}/api/webhooks")).header("cookie", &other).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    // Expiry: after session_lifetime the cookie opens nothing.
    tokio::time::sleep(Duration::from_millis(3300)).await;
    let expired = http.get(format!("{base}/console")).header("cookie", &session).send().await.unwrap();
    assert_eq!(expired.status(), StatusCode::SEE_OTHER);
    let api = http.get(format!("{base}/api/webhooks")).header("cookie", &session).send().await.unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert!(api.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("session expired"));
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn without_tokens_the_console_is_open_and_other_sites_change_nothing() {
    let db = TestDb::new("console_open").await;
    let rowhook = InProcess::start(test_config(&db.url)).await;
    let base = rowhook.base_url.clone();
    let http = client();
    let page = http.get(format!("{base}/console")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("no token configured"));
    let login = http.get(format!("{base}/console/login")).send().await.unwrap();
    assert_eq!((login.status(), login.headers()["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, "/console"), "nothing to sign in to");
    let body = json!({"url": "http://127.0.0.1:1/h", "events": ["*"]});
    let host = base.trim_start_matches("http://").to_string();
    for (headers, expected) in [
        (vec![("sec-fetch-site", "cross-site")], StatusCode::FORBIDDEN),
        (vec![("origin", "http://evil.example")], StatusCode::FORBIDDEN),
        (vec![("sec-fetch-site", "same-origin"), ("origin", base.as_str())], StatusCode::CREATED),
        (vec![("origin", base.as_str()), ("host", host.as_str())], StatusCode::CREATED),
        (vec![], StatusCode::CREATED),
    ] {
        let mut request = http.post(format!("{base}/api/webhooks")).json(&body);
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), expected, "{headers:?}");
    }
    // Reading is never refused.
    let response = http.get(format!("{base}/api/webhooks")).header("sec-fetch-site", "cross-site").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn the_history_keeps_every_failed_attempt_and_filters_by_time() {
    let mut db = TestDb::new("console_history").await;
    let receiver = Receiver::start().await;
    receiver.fail_matching("flaky", 2);
    receiver.set_body("<b>nope</b>");
    let id = db.add_webhook(&receiver.url(), &["thread.created"], "0123456789abcdef0123", true).await;
    let rowhook = InProcess::start(with_tokens(test_config(&db.url))).await;
    let base = rowhook.base_url.clone();
    db.exec("INSERT INTO threads (subject) VALUES ('flaky')").await;
    assert_eq!(receiver.wait_for(3, Duration::from_secs(15)).await.len(), 3, "two failures, then a success");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (session, _, _) = sign_in(&base, READ, &[]).await;
    let http = client();
    let (status, list) = get_json(&http, &format!("{base}/api/webhooks/{id}/deliveries"), &session).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let delivery = list["data"][0]["id"].as_u64().unwrap();
    assert_eq!(list["data"][0]["status"], "delivered");
    let page = http.get(format!("{base}/console/webhooks/{id}/deliveries/{delivery}")).header("cookie", &session).send().await.unwrap().text().await.unwrap();
    for attempt in ["Attempt 1", "Attempt 2", "Attempt 3"] {
        assert!(page.contains(attempt), "{attempt}:\n{page}");
    }
    assert_eq!(page.matches("HTTP 500").count(), 2, "two failed answers");
    assert!(page.contains("&lt;b&gt;nope&lt;/b&gt;"), "the stored response, as text");
    assert!(!page.contains("data-api"), "a read token gets no retry button");

    // since / until, as the API and the console take them.
    for (query, expected) in [
        ("since=2000-01-01T00:00:00Z", 1),
        ("since=2999-01-01T00:00", 0),
        ("until=2000-01-01T00:00:00%2B02:00", 0),
        ("until=2999-01-01T00:00:00Z&since=2000-01-01T00:00:00Z", 1),
    ] {
        let (status, answer) = get_json(&http, &format!("{base}/api/webhooks/{id}/deliveries?{query}"), &session).await;
        assert_eq!((status, answer["meta"]["total"].as_u64()), (StatusCode::OK, Some(expected)), "{query}: {answer}");
    }
    let (status, answer) = get_json(&http, &format!("{base}/api/webhooks/{id}/deliveries?since=yesterday"), &session).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"].as_str().unwrap().starts_with("since: must be a time"), "{answer}");
    let page = http.get(format!("{base}/console/webhooks/{id}?since=yesterday")).header("cookie", &session).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Filter not applied: since: must be a time"), "the console says why");
    let (_, webhook) = get_json(&http, &format!("{base}/api/webhooks/{id}"), &session).await;
    assert!(webhook["data"]["failing_since"].is_null(), "healthy again: {webhook}");

    // Sent again (a retry, then a replay of the window): the earlier successes stay in the history.
    let retried = http.post(format!("{base}/api/webhooks/deliveries/{delivery}/retry")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(retried.status(), StatusCode::ACCEPTED);
    assert_eq!(receiver.wait_for(4, Duration::from_secs(15)).await.len(), 4, "the retry");
    let replayed = http
        .post(format!("{base}/api/webhooks/{id}/replay"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"since": "2000-01-01T00:00:00Z", "status": "all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), StatusCode::ACCEPTED);
    assert_eq!(replayed.json::<Value>().await.unwrap()["data"]["replayed"], 1);
    assert_eq!(receiver.wait_for(5, Duration::from_secs(15)).await.len(), 5, "the replay");
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = http.get(format!("{base}/console/webhooks/{id}/deliveries/{delivery}")).header("cookie", &session).send().await.unwrap().text().await.unwrap();
        if page.contains("Attempt 5") || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for attempt in ["Attempt 1", "Attempt 2", "Attempt 3", "Attempt 4", "Attempt 5"] {
        assert!(page.contains(attempt), "{attempt}: every attempt kept across a retry and a replay:\n{page}");
    }
    assert_eq!(page.matches("HTTP 500").count(), 2, "two failed answers, three successes");
    rowhook.stop().await.expect("clean stop");
}

async fn get_json(http: &reqwest::Client, url: &str, session: &str) -> (StatusCode, Value) {
    let response = http.get(url).header("cookie", session).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

#[actix_rt::test]
async fn the_overview_names_the_standing_by_instance_and_the_standby_says_why() {
    let db = TestDb::new("console_standby").await;
    let active = InProcess::start(with_tokens(test_config(&db.url))).await;
    let standby = InProcess::spawn(with_tokens(test_config(&db.url)));
    let http = client();
    // The standby serves its reason at /console.
    let deadline = Instant::now() + Duration::from_secs(20);
    let reason = loop {
        if let Ok(r) = http.get(format!("{}/console", standby.base_url)).send().await {
            if r.status() == StatusCode::SERVICE_UNAVAILABLE {
                break r.text().await.unwrap();
            }
        }
        assert!(Instant::now() < deadline, "the standby never answered /console");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(reason.contains("standing by") && reason.contains("another rowhook instance is active"), "{reason}");

    let (session, _, _) = sign_in(&active.base_url, READ, &[]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let html = http.get(format!("{}/console/live/overview", active.base_url)).header("cookie", &session).send().await.unwrap().text().await.unwrap();
        if html.contains("1 standing by, waiting for the lock") {
            assert!(html.contains("this instance holds the lock"), "{html}");
            break;
        }
        assert!(Instant::now() < deadline, "the standby is never listed:\n{html}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    standby.stop().await.expect("the standby stops");
    active.stop().await.expect("clean stop");
}
