//! Webhook secrets sealed at rest (issue 17, item 2), against the real daemon
//! and the built binary: with `[admin] secrets_key` the table holds no secret
//! (neither registered through the API nor inserted with SQL, once rowhook
//! has seen it), deliveries still verify with the plaintext secret,
//! `rowhook rotate-secrets-key` re-seals every row with a new key, a secret
//! no configured key opens holds back only its own webhook, and without a key
//! `rowhook check-config` warns.

use std::time::{Duration, Instant};

use base64::Engine as _;
use mysql_async::prelude::*;
use serde_json::{json, Value};

use crate::rowhook::{server_id, test_config, InProcess, TestDb};
use crate::support::{assert_signed_with, Received, Receiver};
use rowhook::delivery::signing::{self, SigningKey};
use rowhook::state::secrets::{key_id, Keyring};

const KEY_A: [u8; 32] = [0xa1; 32];
const KEY_B: [u8; 32] = [0xb2; 32];
/// A secret as the PHP app generated them: 64 hex characters, used as UTF-8 bytes.
const PHP_SECRET: &str = "9d0c4a5f6e7b8a9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c";

fn b64(key: [u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

fn keyed(url: &str, current: [u8; 32], previous: Option<[u8; 32]>) -> rowhook::config::Config {
    let mut config = test_config(url);
    config.admin.secrets_key = Some(b64(current));
    config.admin.secrets_key_previous = previous.map(b64);
    config.validate().unwrap();
    config
}

async fn register(base: &str, url: &str) -> (u64, String) {
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}/api/webhooks"))
        .json(&json!({"url": url, "events": ["thread.created"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = answer["data"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("the secret is shown at creation: {answer}"))
        .to_string();
    (answer["data"]["id"].as_u64().unwrap(), secret)
}

/// Rotates webhook `id`'s secret through the API; the new secret, shown once.
async fn rotate_secret(base: &str, id: u64) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}/api/webhooks/{id}/rotate-secret"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["data"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("the new secret is shown once: {answer}"))
        .to_string()
}

/// (secret, previous_secret) of every webhook, as the table holds them.
async fn stored(db: &mut TestDb) -> Vec<(u64, String, Option<String>)> {
    db.conn
        .query("SELECT id, secret, previous_secret FROM webhooks ORDER BY id")
        .await
        .unwrap()
}

/// Nothing of the secret in what the table holds: not the secret, not its key part, sealed with `key`.
fn assert_sealed(stored: &str, secret: &str, key: [u8; 32]) {
    let prefix = format!("enc:v1:{}:", key_id(&key));
    assert!(
        stored.starts_with(&prefix),
        "sealed with key {}: {stored}",
        key_id(&key)
    );
    let core = secret.strip_prefix("whsec_").unwrap_or(secret);
    assert!(
        !stored.contains(core) && !stored.contains(secret),
        "the secret is not in the table: {stored}"
    );
}

async fn wait_until_sealed(db: &mut TestDb, id: u64, key: [u8; 32]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let secret: Option<String> = db
            .conn
            .exec_first("SELECT secret FROM webhooks WHERE id = ?", (id,))
            .await
            .unwrap();
        let secret = secret.expect("the webhook exists");
        if secret.starts_with(&format!("enc:v1:{}:", key_id(&key))) {
            return secret;
        }
        assert!(
            Instant::now() < deadline,
            "webhook {id} still not sealed: {secret}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_rt::test]
async fn api_secrets_are_sealed_in_the_table_and_deliveries_verify() {
    let mut db = TestDb::new("sealed_api").await;
    let receiver = Receiver::start().await;
    let rowhook = InProcess::start(keyed(&db.url, KEY_A, None)).await;
    let (id, secret) = register(&rowhook.base_url, &receiver.url()).await;
    assert!(secret.starts_with("whsec_"), "{secret}");

    let rows = stored(&mut db).await;
    assert_eq!(rows.len(), 1);
    assert_sealed(&rows[0].1, &secret, KEY_A);
    // A GET never shows it, sealed or not.
    let view = reqwest::get(format!("{}/api/webhooks/{id}", rowhook.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !view.contains("secret\"") && !view.contains(&rows[0].1) && !view.contains(&secret),
        "{view}"
    );

    db.exec("INSERT INTO threads (subject) VALUES ('sealed')")
        .await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_signed_with(&got[0], &secret);

    // Rotated: both columns sealed, the new secret shown once, both sign meanwhile.
    let rotated = rotate_secret(&rowhook.base_url, id).await;
    let rows = stored(&mut db).await;
    assert_sealed(&rows[0].1, &rotated, KEY_A);
    assert_sealed(rows[0].2.as_deref().unwrap(), &secret, KEY_A);
    receiver.clear();
    db.exec("INSERT INTO threads (subject) VALUES ('rotated')")
        .await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_signed_with(&got[0], &rotated);
    // The previous secret's signature is among the Standard Webhooks ones during the overlap.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    signing::verify_standard(
        &SigningKey::from_secret(&secret).unwrap(),
        got[0].header("webhook-signature").unwrap(),
        got[0].header("webhook-id").unwrap(),
        got[0].header("webhook-timestamp").unwrap(),
        &got[0].body,
        now,
        Duration::from_secs(300),
    )
    .expect("the previous secret signs too, during the overlap");
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn plaintext_rows_from_sql_are_delivered_and_then_sealed() {
    let mut db = TestDb::new("sealed_sql").await;
    let receiver = Receiver::start().await;
    // One row from before the start (sealed at start), one inserted while rowhook runs (sealed
    // when its binlog image passes by).
    let before = db
        .add_webhook(&receiver.url(), &["thread.created"], PHP_SECRET, true)
        .await;
    let rowhook = InProcess::start(keyed(&db.url, KEY_A, None)).await;
    let during_secret = "a-secret-the-operator-typed-into-sql";
    let during = db
        .add_webhook(
            &format!("{}?during", receiver.url()),
            &["thread.created"],
            during_secret,
            true,
        )
        .await;
    assert_sealed(
        &wait_until_sealed(&mut db, before, KEY_A).await,
        PHP_SECRET,
        KEY_A,
    );
    assert_sealed(
        &wait_until_sealed(&mut db, during, KEY_A).await,
        during_secret,
        KEY_A,
    );

    db.exec("INSERT INTO threads (subject) VALUES ('from sql')")
        .await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    // Which request went where: tell them apart by their signatures.
    let verifies = |r: &Received, secret: &str| {
        let key = SigningKey::from_secret(secret).unwrap();
        signing::verify_seed(&key, r.header("x-webhook-signature").unwrap(), &r.body).is_ok()
    };
    assert_eq!(
        got.iter().filter(|r| verifies(r, PHP_SECRET)).count(),
        1,
        "the row from before the start signs with its plaintext"
    );
    assert_eq!(
        got.iter().filter(|r| verifies(r, during_secret)).count(),
        1,
        "the row inserted meanwhile signs with its plaintext"
    );
    for r in &got {
        assert_signed_with(
            r,
            if verifies(r, PHP_SECRET) {
                PHP_SECRET
            } else {
                during_secret
            },
        );
    }
    // Sealed once: the sealing's own row image does not seal again.
    let sealed = stored(&mut db).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stored(&mut db).await,
        sealed,
        "nothing seals a sealed secret again"
    );
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn a_secret_no_key_opens_holds_back_only_its_webhook() {
    let mut db = TestDb::new("sealed_unknown").await;
    let receiver = Receiver::start().await;
    let other = Receiver::start().await;
    // Sealed with a key rowhook is not given.
    let foreign = Keyring::new(Some(KEY_B), None)
        .seal("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .unwrap();
    let lost = db
        .add_webhook(&other.url(), &["thread.created"], &foreign, true)
        .await;
    let fine = db
        .add_webhook(&receiver.url(), &["thread.created"], PHP_SECRET, true)
        .await;
    let rowhook = InProcess::start(keyed(&db.url, KEY_A, None)).await;
    db.exec("INSERT INTO threads (subject) VALUES ('one webhook cannot sign')")
        .await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_signed_with(&got[0], PHP_SECRET);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        other.received().is_empty(),
        "nothing is sent unsigned or signed wrongly"
    );
    let pending = db.deliveries(lost).await;
    assert_eq!(pending.len(), 1);
    assert_eq!(
        pending[0].1, "pending",
        "its delivery waits, not lost: {pending:?}"
    );
    assert_eq!(db.deliveries(fine).await[0].1, "delivered");
    let secret: Option<String> = db
        .conn
        .exec_first("SELECT secret FROM webhooks WHERE id = ?", (lost,))
        .await
        .unwrap();
    assert_eq!(secret.as_deref(), Some(foreign.as_str()), "left as it is");
    rowhook.stop().await.expect("clean stop");
}

/// `rowhook rotate-secrets-key` of the built binary with these keys.
fn rotate(url: &str, current: [u8; 32], previous: Option<[u8; 32]>) -> std::process::Output {
    let mut command = std::process::Command::new(crate::support::rowhook_bin());
    command
        .args([
            "rotate-secrets-key",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/rowhook.toml"),
        ])
        .env("ROWHOOK__SOURCE__URL", url)
        .env("ROWHOOK__ADMIN__SECRETS_KEY", b64(current))
        .env("ROWHOOK__LOG__LEVEL", "warn");
    if let Some(previous) = previous {
        command.env("ROWHOOK__ADMIN__SECRETS_KEY_PREVIOUS", b64(previous));
    }
    command.output().expect("run rowhook rotate-secrets-key")
}

#[actix_rt::test]
async fn rotate_secrets_key_reseals_every_row_and_deliveries_still_verify() {
    let mut db = TestDb::new("sealed_rotate").await;
    let receiver = Receiver::start().await;
    let rowhook = InProcess::start(keyed(&db.url, KEY_A, None)).await;
    let (first, _) = register(&rowhook.base_url, &receiver.url()).await;
    let (_, second_secret) =
        register(&rowhook.base_url, &format!("{}?second", receiver.url())).await;
    // Rotated: its previous secret is sealed too, and re-sealed with the rest.
    let first_secret = rotate_secret(&rowhook.base_url, first).await;
    rowhook.stop().await.expect("clean stop");
    // And one the PHP app inserted while rowhook was stopped.
    db.add_webhook(
        &format!("{}?php", receiver.url()),
        &["thread.created"],
        PHP_SECRET,
        true,
    )
    .await;

    let out = rotate(&db.url, KEY_B, Some(KEY_A));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "sealed with key id {}: 4 secrets now, 0 already",
            key_id(&KEY_B)
        )),
        "{stdout}"
    );
    for (_, secret, previous) in stored(&mut db).await {
        assert!(
            secret.starts_with(&format!("enc:v1:{}:", key_id(&KEY_B))),
            "{secret}"
        );
        if let Some(previous) = previous {
            assert!(
                previous.starts_with(&format!("enc:v1:{}:", key_id(&KEY_B))),
                "{previous}"
            );
        }
        assert!(!secret.contains(PHP_SECRET) && !secret.contains(&second_secret[6..]));
    }
    // Again: nothing left to do.
    let again = rotate(&db.url, KEY_B, Some(KEY_A));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("0 secrets now, 4 already"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    // Without the key that sealed them, a rotation names the key id and changes nothing.
    let wrong = rotate(&db.url, KEY_A, None);
    assert!(!wrong.status.success());
    let said = String::from_utf8_lossy(&wrong.stdout);
    assert!(
        said.contains(&format!("key id {}", key_id(&KEY_B))) && said.contains("webhook 1, secret"),
        "{said}"
    );

    // The old key gone: deliveries verify with the plaintext secrets.
    let rowhook = InProcess::start(keyed(&db.url, KEY_B, None)).await;
    db.exec("INSERT INTO threads (subject) VALUES ('after the rotation')")
        .await;
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    let verifies = |r: &Received, secret: &str| {
        let key = SigningKey::from_secret(secret).unwrap();
        signing::verify_seed(&key, r.header("x-webhook-signature").unwrap(), &r.body).is_ok()
    };
    for secret in [first_secret.as_str(), second_secret.as_str(), PHP_SECRET] {
        let matching: Vec<&Received> = got.iter().filter(|r| verifies(r, secret)).collect();
        assert!(
            !matching.is_empty(),
            "a delivery signed with each webhook's secret"
        );
        assert_signed_with(matching[0], secret);
    }
    rowhook.stop().await.expect("clean stop");
}

#[actix_rt::test]
async fn check_config_warns_without_a_key() {
    let db = TestDb::new("sealed_check").await;
    let check = |key: Option<[u8; 32]>| {
        let mut command = std::process::Command::new(crate::support::rowhook_bin());
        command
            .args([
                "check-config",
                "--config",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config/rowhook.toml"),
            ])
            .env("ROWHOOK__SOURCE__URL", &db.url)
            .env("ROWHOOK__SOURCE__SERVER_ID", server_id().to_string())
            .env("ROWHOOK__LOG__LEVEL", "warn");
        if let Some(key) = key {
            command.env("ROWHOOK__ADMIN__SECRETS_KEY", b64(key));
        }
        let out = command.output().expect("run rowhook check-config");
        assert!(
            out.status.success(),
            "a warning is not an error: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let without = check(None);
    assert!(
        without.contains("warning: no [admin] secrets_key: webhook secrets are stored in plaintext in the webhooks table"),
        "{without}"
    );
    assert!(without.contains("openssl rand -base64 32"), "{without}");
    let with = check(Some(KEY_A));
    assert!(!with.contains("secrets_key"), "{with}");
    // A bad key is refused, by its name.
    let out = std::process::Command::new(crate::support::rowhook_bin())
        .args([
            "check-config",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/rowhook.toml"),
        ])
        .env("ROWHOOK__SOURCE__URL", &db.url)
        .env("ROWHOOK__ADMIN__SECRETS_KEY", "dG9vIHNob3J0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("admin.secrets_key")
            && stderr.contains("ROWHOOK__ADMIN__SECRETS_KEY"),
        "{stderr}"
    );
}
