//! What subscribers run: `rowhook listen`, and the signature samples of
//! docs/verify/ (Python, Node, PHP) checked against real rowhook deliveries.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rowhook::delivery::signing::{self, SigningKey};

use crate::ops::{free_port, tool, Running};
use crate::rowhook::{test_config, InProcess, TestDb};
use crate::support::{self, Received, Receiver};

fn now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The headers rowhook sends, signed with `secret` at `timestamp`.
fn signed_headers(secret: &str, id: &str, timestamp: i64, body: &str) -> Vec<(String, String)> {
    let key = SigningKey::from_secret(secret).unwrap();
    vec![
        ("content-type".into(), "application/json".into()),
        ("x-webhook-event".into(), "thread.created".into()),
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), timestamp.to_string()),
        ("webhook-signature".into(), signing::standard_signature_header(std::slice::from_ref(&key), id, timestamp, body.as_bytes())),
        ("x-webhook-signature".into(), signing::seed_signature(&key, body.as_bytes())),
    ]
}

fn with_header(headers: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    headers.iter().map(|(k, v)| (k.clone(), if k == name { value.to_string() } else { v.clone() })).collect()
}

/// POSTs `body` with `headers`; returns the status and the answer's text.
async fn post(url: &str, headers: &[(String, String)], body: &[u8]) -> (u16, String) {
    support::install_crypto_provider();
    let mut request = reqwest::Client::new().post(url).body(body.to_vec());
    for (k, v) in headers {
        if !["host", "content-length", "connection"].contains(&k.as_str()) {
            request = request.header(k, v);
        }
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

async fn wait_listening(port: u16, child: &mut Running, what: &str) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("{what} exited with {status} before listening on {port}");
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{what} does not listen on {port} after 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// rowhook listen

#[actix_rt::test]
async fn rowhook_listen_answers_200_to_good_signatures_and_401_to_bad_ones() {
    let secret = signing::generate_secret();
    let child = Command::new(support::rowhook_bin())
        .args(["listen", "--listen", "127.0.0.1:0"])
        .env("ROWHOOK_LISTEN_SECRET", &secret) // the flag's environment form keeps it out of `ps`
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rowhook listen");
    let mut child = Running(child);
    let printed = Arc::new(Mutex::new(Vec::<String>::new()));
    for stream in [Box::new(child.0.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>, Box::new(child.0.stderr.take().unwrap())] {
        let printed = printed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                printed.lock().unwrap().push(line);
            }
        });
    }
    let output = || printed.lock().unwrap().join("\n");
    let started = Instant::now();
    let base = loop {
        let first = output().lines().find_map(|l| l.split("receiving on ").nth(1).map(|r| r.split_whitespace().next().unwrap().to_string()));
        if let Some(url) = first {
            break url;
        }
        assert!(child.0.try_wait().unwrap().is_none(), "rowhook listen exited:\n{}", output());
        assert!(started.elapsed() < Duration::from_secs(10), "rowhook listen printed no address:\n{}", output());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let url = format!("{base}hooks/helpdesk");
    let body = r#"{"id":"evt_000001_8155_0_0","type":"thread.created","timestamp":"2026-11-28T10:04:59Z","data":{"subject":"Printer on fire","thread_id":1}}"#;
    let good = signed_headers(&secret, "evt_000001_8155_0_0", now(), body);

    assert_eq!(post(&url, &good, body.as_bytes()).await.0, 200, "{}", output());
    let other_secret = signed_headers(&signing::generate_secret(), "evt_000001_8155_0_1", now(), body);
    let (status, answer) = post(&url, &other_secret, body.as_bytes()).await;
    assert_eq!(status, 401, "another secret's signature: {answer}");
    let tampered = body.replace("Printer on fire", "Printer is fine");
    assert_eq!(post(&url, &good, tampered.as_bytes()).await.0, 401, "a body changed after signing");
    let stale = signed_headers(&secret, "evt_000001_8155_0_2", now() - 600, body);
    let (status, answer) = post(&url, &stale, body.as_bytes()).await;
    assert_eq!(status, 401, "a timestamp 10 minutes old");
    assert!(answer.contains("too old"), "{answer}");
    let bad_seed = with_header(&signed_headers(&secret, "evt_000001_8155_0_3", now(), body), "x-webhook-signature", &"0".repeat(64));
    let (status, answer) = post(&url, &bad_seed, body.as_bytes()).await;
    assert_eq!(status, 401, "a wrong X-Webhook-Signature");
    assert!(answer.contains("X-Webhook-Signature"), "{answer}");

    // What a subscriber sees: each event, readable, with its verdict.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let out = output();
    let verdicts: Vec<&str> = out.lines().filter(|l| l.starts_with("--- ")).collect();
    assert_eq!(verdicts.len(), 5, "{out}");
    assert!(verdicts[0].contains("evt_000001_8155_0_0") && verdicts[0].contains("signatures OK"), "{}", verdicts[0]);
    assert!(verdicts[0].contains("thread.created"), "{}", verdicts[0]);
    for line in &verdicts[1..4] {
        assert!(line.contains("BAD webhook-signature"), "{line}");
    }
    assert!(verdicts[2].contains("no matching signature"), "{}", verdicts[2]);
    assert!(verdicts[3].contains("too old"), "{}", verdicts[3]);
    assert!(verdicts[4].contains("BAD X-Webhook-Signature"), "{}", verdicts[4]);
    assert!(out.contains("\n  \"type\": \"thread.created\""), "the event printed as indented JSON:\n{out}");
    assert!(!out.contains(&secret), "the secret is never printed");
}

// ---------------------------------------------------------------------------------------------
// docs/verify samples

struct Sample {
    language: &'static str,
    file: &'static str,
    /// The interpreter, or why it is missing.
    interpreter: Result<PathBuf, String>,
    args: fn(&Path, u16) -> Vec<String>,
}

fn samples() -> Vec<Sample> {
    let find = |name: &str| -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]).map(|d| d.join(name)).find(|p| p.is_file())
    };
    let required = |name: &str, package: &str| -> Result<PathBuf, String> {
        Ok(find(name).unwrap_or_else(|| tool(name, package)))
    };
    vec![
        Sample {
            language: "Python",
            file: "docs/verify/verify.py",
            interpreter: required("python3", "python3"),
            args: |file, _| vec![file.display().to_string()],
        },
        Sample {
            language: "Node",
            file: "docs/verify/verify.js",
            interpreter: required("node", "nodejs"),
            args: |file, _| vec![file.display().to_string()],
        },
        Sample {
            language: "PHP",
            file: "docs/verify/verify.php",
            // The one language allowed to be missing: CI installs php-cli (.ci/run), a developer
            // machine may not have it.
            interpreter: find("php").ok_or_else(|| "php not found (apt-get install -y --no-install-recommends php-cli)".to_string()),
            args: |file, port| vec!["-S".into(), format!("127.0.0.1:{port}"), file.display().to_string()],
        },
    ]
}

/// Captures real deliveries: one webhook with a Standard Webhooks secret, one with the kind of
/// secret the PHP app generated (64 hex characters, used as UTF-8 bytes).
async fn real_deliveries() -> Vec<(String, Received)> {
    let mut db = TestDb::new("verify_samples").await;
    let receiver = Receiver::start().await;
    let standard = signing::generate_secret();
    let seed: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    db.add_webhook(&format!("{}/standard", receiver.base_url()), &["thread.created"], &standard, true).await;
    db.add_webhook(&format!("{}/seed", receiver.base_url()), &["thread.created"], &seed, true).await;
    let rowhook = InProcess::start(test_config(&db.url)).await;
    db.exec("INSERT INTO threads (subject) VALUES ('Ünïcode “quotes” and emoji 🖨️🔥')").await;
    let got = receiver.wait_for(2, Duration::from_secs(15)).await;
    rowhook.stop().await.expect("rowhook stops");
    assert_eq!(got.len(), 2, "two real deliveries");
    got.into_iter().map(|r| (if r.path == "/standard" { standard.clone() } else { seed.clone() }, r)).collect()
}

#[actix_rt::test]
async fn signature_samples_verify_real_deliveries() {
    let deliveries = real_deliveries().await;
    let mut skipped = Vec::new();
    for sample in samples() {
        let interpreter = match &sample.interpreter {
            Ok(path) => path.clone(),
            Err(why) => {
                eprintln!("\n*** SKIPPED: the {} sample ({}) was NOT checked: {why} ***\n", sample.language, sample.file);
                skipped.push(sample.language);
                continue;
            }
        };
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(sample.file);
        for (secret, delivery) in &deliveries {
            let port = free_port();
            let child = Command::new(&interpreter)
                .args((sample.args)(&file, port))
                .env("WEBHOOK_SECRET", secret)
                .env("PORT", port.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{}: {e}", sample.language));
            let mut child = Running(child);
            wait_listening(port, &mut child, sample.file).await;
            let url = format!("http://127.0.0.1:{port}/webhook");
            let kind = if secret.starts_with("whsec_") { "whsec_ secret" } else { "hex secret" };
            let what = format!("{} sample, {kind}", sample.language);

            let (status, answer) = post(&url, &delivery.headers, &delivery.body).await;
            assert_eq!(status, 200, "{what}: the real delivery verifies: {answer}");

            let mut tampered = delivery.body.clone();
            let last = tampered.len() - 2;
            tampered[last] ^= 1;
            let (status, answer) = post(&url, &delivery.headers, &tampered).await;
            assert_eq!(status, 401, "{what}: a changed body is refused: {answer}");
            assert!(answer.contains("webhook-signature does not match"), "{what}: {answer}");

            let other = signing::generate_secret();
            let body = delivery.text();
            let id = delivery.header("webhook-id").unwrap();
            let (status, answer) = post(&url, &signed_headers(&other, id, now(), &body), &delivery.body).await;
            assert_eq!(status, 401, "{what}: another secret's signature is refused: {answer}");

            let (status, answer) = post(&url, &signed_headers(secret, id, now() - 600, &body), &delivery.body).await;
            assert_eq!(status, 401, "{what}: a 10-minute-old timestamp is refused: {answer}");
            assert!(answer.contains("5 minutes"), "{what}: {answer}");

            // During a secret rotation the header carries two signatures; either may match.
            let ts = now();
            let rotated = format!(
                "{} {}",
                signing::standard_signature_header(&[SigningKey::from_secret(&other).unwrap()], id, ts, body.as_bytes()),
                signing::standard_signature_header(&[SigningKey::from_secret(secret).unwrap()], id, ts, body.as_bytes())
            );
            let headers = with_header(&signed_headers(secret, id, ts, &body), "webhook-signature", &rotated);
            let (status, answer) = post(&url, &headers, &delivery.body).await;
            assert_eq!(status, 200, "{what}: a rotation's second signature verifies: {answer}");

            let headers = with_header(&delivery.headers, "x-webhook-signature", &"0".repeat(64));
            let (status, answer) = post(&url, &headers, &delivery.body).await;
            assert_eq!(status, 401, "{what}: a wrong X-Webhook-Signature is refused: {answer}");
            assert!(answer.contains("X-Webhook-Signature does not match"), "{what}: {answer}");
        }
    }
    if !skipped.is_empty() {
        eprintln!("*** signature samples NOT checked (interpreter missing): {skipped:?}; .ci/run installs them ***");
    }
}
