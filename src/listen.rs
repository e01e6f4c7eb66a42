//! `rowhook listen`: a small receiver that verifies and prints deliveries.
//!
//! For subscribers checking their setup and for `make demo`: it verifies the
//! Standard Webhooks signature (`webhook-signature`, timestamp within five
//! minutes) and the seed's `X-Webhook-Signature`, prints each event as
//! readable JSON with its verdict, and answers 200, or 401 when a signature
//! does not verify.

use std::time::{Duration, SystemTime};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

use crate::delivery::signing::{self, SigningKey};

/// Serves on `listen` until Ctrl-C or SIGTERM. The first line printed names
/// the address actually bound (useful with port 0).
pub async fn listen(secret: &str, listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let key = SigningKey::from_secret(secret).map_err(|e| anyhow::anyhow!("--secret: {e}"))?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(key.clone()))
            .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
            .default_service(web::post().to(receive))
    })
    .workers(1)
    .bind(listen)
    .map_err(|e| anyhow::anyhow!("cannot listen on {listen} (--listen): {e}"))?;
    let bound = server.addrs().first().copied().unwrap_or(listen);
    println!("rowhook listen: receiving on http://{bound}/ (any path), verifying signatures");
    server.run().await?;
    Ok(())
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> &'a str {
    req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The signature headers of one delivery, as received (absent: empty).
#[derive(Debug, Clone, Copy, Default)]
pub struct Signed<'a> {
    /// `webhook-signature`: space-separated `v1,<base64>` entries.
    pub signature: &'a str,
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp`: Unix seconds.
    pub timestamp: &'a str,
    /// `X-Webhook-Signature`: the seed's hex HMAC of the body.
    pub seed_signature: &'a str,
}

/// Whether both signatures of a delivery verify at `now` (Unix seconds,
/// five minutes' tolerance): the verdict line `rowhook listen` prints, as
/// `Ok` when both do. Pure, so that it is fuzzed (`fuzz/`) as it runs here.
pub fn verdict(key: &SigningKey, signed: &Signed<'_>, body: &[u8], now: i64) -> Result<String, String> {
    let standard = signing::verify_standard(key, signed.signature, signed.id, signed.timestamp, body, now, Duration::from_secs(300));
    let seed = match signed.seed_signature {
        "" => Err("missing header".to_string()),
        given => signing::verify_seed(key, given, body).map_err(|e| e.to_string()),
    };
    match (standard, seed) {
        (Ok(()), Ok(())) => Ok("signatures OK (webhook-signature, X-Webhook-Signature)".to_string()),
        (Err(e), _) => Err(format!("BAD webhook-signature: {e}")),
        (_, Err(e)) => Err(format!("BAD X-Webhook-Signature: {e}")),
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, key: web::Data<SigningKey>) -> HttpResponse {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let signed = Signed {
        signature: header(&req, "webhook-signature"),
        id: header(&req, "webhook-id"),
        timestamp: header(&req, "webhook-timestamp"),
        seed_signature: header(&req, "x-webhook-signature"),
    };
    let verdict = verdict(&key, &signed, &body, now);
    let pretty = serde_json::from_slice::<serde_json::Value>(&body)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
    let line = match &verdict {
        Ok(line) | Err(line) => line,
    };
    println!("--- {} {} -> {line}\n{pretty}", header(&req, "x-webhook-event"), header(&req, "webhook-id"));
    match verdict {
        Ok(_) => HttpResponse::Ok().body("ok"),
        Err(line) => HttpResponse::Unauthorized().body(line),
    }
}
