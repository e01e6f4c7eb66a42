//! HTTPS on the admin server (issue 17, item 3), with the built binary:
//! `[http] tls_cert` and `tls_key` from the environment, a client that checks
//! the certificate against the test's CA, the console's cookies `Secure`,
//! plain HTTP refused, and after the files are replaced and SIGHUP is sent,
//! new connections get the new certificate without a restart.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::rowhook::{daemon_command, free_addr, server_id, TestDb};
use crate::tls::certificates;

const TOKEN: &str = "tls-admin-token-0123456789";

/// A client that trusts only the CA in `ca` (no system roots) and opens a new connection per request.
fn client_trusting(ca: &Path) -> reqwest::Client {
    crate::support::install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Waits until `client` gets 200 from `url` (else panics with the last error).
async fn wait_for_200(client: &reqwest::Client, url: &str, daemon: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(Some(status)) = daemon.try_wait() {
            panic!("rowhook exited: {status}");
        }
        match client.get(url).send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = format!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never answered 200: {last}");
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[actix_rt::test]
async fn https_with_a_checked_certificate_reloaded_on_sighup() {
    let db = TestDb::new("admin_tls").await;
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&two).unwrap();
    let (ca_one, cert_one, key_one) = certificates(&one, "rowhook-admin-ca-one");
    let (ca_two, cert_two, key_two) = certificates(&two, "rowhook-admin-ca-two");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::copy(&cert_one, &cert).unwrap();
    std::fs::copy(&key_one, &key).unwrap();

    let addr = free_addr();
    let mut daemon = Killed(
        daemon_command(&db.url, server_id(), addr)
            .env("ROWHOOK__HTTP__TLS_CERT", &cert)
            .env("ROWHOOK__HTTP__TLS_KEY", &key)
            .env("ROWHOOK__ADMIN__TOKEN", TOKEN)
            .spawn()
            .expect("start rowhook"),
    );
    let (trusts_one, trusts_two) = (client_trusting(&ca_one), client_trusting(&ca_two));
    let health = format!("https://{addr}/healthz");
    wait_for_200(&trusts_one, &health, &mut daemon.0).await;
    assert!(
        trusts_two.get(&health).send().await.is_err(),
        "a certificate of another CA is refused by the client"
    );
    let ready = trusts_one
        .get(format!("https://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    // Plain HTTP to the HTTPS port gets no answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let answer = plain.get(format!("http://{addr}/healthz")).send().await;
    assert!(
        answer.as_ref().map_or(true, |r| !r.status().is_success()),
        "plain HTTP is refused: {answer:?}"
    );

    // The API over HTTPS, with the token.
    let list = trusts_one
        .get(format!("https://{addr}/api/webhooks"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);

    // The console's cookies are Secure over HTTPS: the sign-in form's and the session's.
    let form = trusts_one
        .get(format!("https://{addr}/console/login"))
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let login = cookies
        .iter()
        .find(|c| c.starts_with("rowhook_login="))
        .expect("the sign-in form's cookie");
    assert!(login.contains("; Secure"), "{login}");
    let html = form.text().await.unwrap();
    let csrf_at = html
        .find("name=\"csrf\" value=\"")
        .expect("the form's CSRF field")
        + "name=\"csrf\" value=\"".len();
    let csrf = &html[csrf_at..csrf_at + html[csrf_at..].find('"').unwrap()];
    let signed_in = trusts_one
        .post(format!("https://{addr}/console/login"))
        .header("cookie", login.split(';').next().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303, "signed in");
    let session: Vec<String> = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = session
        .iter()
        .find(|c| c.starts_with("rowhook_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.ends_with("; Secure"),
        "{session}"
    );

    // New files and SIGHUP: new connections get the new certificate, no restart.
    std::fs::copy(&cert_two, &cert).unwrap();
    std::fs::copy(&key_two, &key).unwrap();
    // SAFETY: a signal to the child this test started.
    assert_eq!(
        unsafe { libc::kill(daemon.0.id() as libc::pid_t, libc::SIGHUP) },
        0
    );
    wait_for_200(&trusts_two, &health, &mut daemon.0).await;
    assert!(
        trusts_one.get(&health).send().await.is_err(),
        "the old certificate is no longer served"
    );

    // A reload that fails (a key that is not the certificate's) keeps the certificate in use.
    std::fs::copy(&key_one, &key).unwrap();
    assert_eq!(
        unsafe { libc::kill(daemon.0.id() as libc::pid_t, libc::SIGHUP) },
        0
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let still = trusts_two
        .get(&health)
        .send()
        .await
        .expect("the certificate in use stays after a failed reload");
    assert_eq!(still.status(), 200);
    assert!(
        daemon.0.try_wait().unwrap().is_none(),
        "a failed reload does not stop rowhook"
    );

    // check-config says the same of a key that is not the certificate's, and passes the right pair.
    let check = |key: &Path| {
        std::process::Command::new(crate::support::rowhook_bin())
            .args([
                "check-config",
                "--config",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config/rowhook.toml"),
            ])
            .env("ROWHOOK__SOURCE__URL", &db.url)
            .env("ROWHOOK__HTTP__TLS_CERT", &cert)
            .env("ROWHOOK__HTTP__TLS_KEY", key)
            .output()
            .unwrap()
    };
    let wrong = check(&key_one);
    let said = String::from_utf8_lossy(&wrong.stdout);
    assert!(
        !wrong.status.success()
            && said.contains("error: http.tls_key: the key does not belong to the certificate"),
        "{said}"
    );
    let right = check(&key_two);
    let said = String::from_utf8_lossy(&right.stdout);
    assert!(
        right.status.success()
            && said.contains("https: the certificate of [http] tls_cert and its key load"),
        "{said}"
    );
}

#[test]
fn check_config_names_a_missing_or_unreadable_tls_file() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let run = |env: &[(&str, &str)]| {
        let out = std::process::Command::new(crate::support::rowhook_bin())
            .args([
                "check-config",
                "--config",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config/rowhook.toml"),
            ])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let cert = cert.to_str().unwrap();
    let err = run(&[("ROWHOOK__HTTP__TLS_CERT", cert)]);
    assert!(
        err.contains("http.tls_key: is missing: tls_cert needs its key (both or neither)"),
        "{err}"
    );
    let err = run(&[
        ("ROWHOOK__HTTP__TLS_CERT", cert),
        ("ROWHOOK__HTTP__TLS_KEY", "/nonexistent/key.pem"),
    ]);
    assert!(
        err.contains("http.tls_key: cannot read /nonexistent/key.pem")
            && err.contains("ROWHOOK__HTTP__TLS_KEY"),
        "{err}"
    );
}
