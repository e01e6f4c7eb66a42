//! One delivery attempt: a signed POST, and what came back.
//!
//! [`Sender::attempt`] builds the headers of the wire format (the seed's
//! `X-Webhook-Event` / `X-Webhook-Signature` and Standard Webhooks'
//! `webhook-id` / `webhook-timestamp` / `webhook-signature`), sends the stored
//! body byte for byte, and reads at most `max_response_bytes` of the answer.
//! It never fails: every outcome, including a refused private address, an
//! `http://` URL under `[delivery] https_only`, a redirect (never followed)
//! or an oversized payload, becomes an [`Attempt`] to record.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::config::DeliveryConfig;
use crate::delivery::retry::{parse_retry_after, AttemptResult};
use crate::delivery::signing::{self, SigningKey};
use crate::delivery::ssrf;

pub const USER_AGENT: &str = concat!("rowhook/", env!("CARGO_PKG_VERSION"));

/// A webhook URL as the log shows it: its origin (scheme, host, port) only.
/// Subscribers put credentials in the user part, the path (Slack-style
/// `/services/T0/B0/XXXX`) or the query (`?token=`); none of that is logged.
pub fn url_for_log(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.has_host() => {
            let rest = if parsed.path() == "/" && parsed.query().is_none() { "" } else { "/…" };
            format!("{}{rest}", parsed.origin().ascii_serialization())
        }
        _ => "(not a URL)".to_string(),
    }
}

/// What happened on one attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub result: AttemptResult,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub duration: Duration,
    pub retry_after: Option<Duration>,
    /// The attempt was never made and never can be (payload too large, bad URL).
    pub permanent: bool,
}

impl Attempt {
    fn refused(error: String, permanent: bool) -> Attempt {
        Attempt {
            result: AttemptResult::Connect,
            response_status: None,
            response_body: None,
            error: Some(error),
            duration: Duration::ZERO,
            retry_after: None,
            permanent,
        }
    }
}

/// Where and how to send for one webhook.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    /// Current key first; during a secret rotation, older keys follow.
    pub keys: Vec<SigningKey>,
}

/// The shared HTTP client and the limits that apply to every attempt.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    targets: ssrf::TargetPolicy,
    max_payload_bytes: usize,
    max_response_bytes: usize,
}

impl Sender {
    pub fn new(config: &DeliveryConfig) -> Result<Sender, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            // Keep every connection the deliveries opened (reqwest's default: no cap per
            // host; idle ones close after 90 s). A cap below what is in flight to one host
            // (max_in_flight per webhook, several webhooks on one receiver) made every
            // request beyond it open and close a TCP connection of its own.
            .dns_resolver(Arc::new(ssrf::GuardedResolver { allow_private: config.allow_private_targets }))
            .build()?;
        Ok(Sender {
            client,
            targets: ssrf::TargetPolicy::of(config),
            max_payload_bytes: config.max_payload_bytes,
            max_response_bytes: config.max_response_bytes,
        })
    }

    /// Sends `body` for event `event_id` of `event_type` to `target`.
    pub async fn attempt(&self, target: &Target, event_id: &str, event_type: &str, body: &str) -> Attempt {
        if body.len() > self.max_payload_bytes {
            return Attempt::refused(
                format!(
                    "payload of {} bytes exceeds max_payload_bytes ({}); not sent",
                    body.len(),
                    self.max_payload_bytes
                ),
                true,
            );
        }
        let url = match url::Url::parse(&target.url) {
            Ok(url) => url,
            Err(e) => return Attempt::refused(format!("invalid webhook URL {:?}: {e}", target.url), true),
        };
        if let Err(e) = ssrf::check_url(&url, self.targets) {
            return Attempt::refused(e.to_string(), false);
        }
        let timestamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let mut request = self.client.post(url.clone());
        for (name, value) in attempt_headers(event_id, event_type, timestamp, body.as_bytes(), Some(&target.keys)) {
            request = request.header(name, value);
        }
        let started = Instant::now();
        let response = request.body(body.to_string()).send().await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => {
                // A refusal by the guard's resolver is the whole story: record it
                // alone, not inside reqwest's chain (which also repeats the full URL).
                if let Some(refusal) = target_error(&e) {
                    let mut attempt = Attempt::refused(refusal.to_string(), false);
                    attempt.duration = started.elapsed();
                    return attempt;
                }
                let result = if e.is_timeout() { AttemptResult::Timeout } else { AttemptResult::Connect };
                return Attempt {
                    result,
                    response_status: None,
                    response_body: None,
                    error: Some(describe(&e)),
                    duration: started.elapsed(),
                    retry_after: None,
                    permanent: false,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        // Read a bounded prefix of the answer; the rest is dropped with the connection.
        // A 2xx whose answer does not finish (cut off, or still arriving at
        // the timeout, which covers the whole attempt) is a failed attempt.
        let mut body = Vec::new();
        let mut error = redirect_error(&url, status, response.headers().get("location").and_then(|v| v.to_str().ok()));
        let mut result = AttemptResult::Status(status);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = self.max_response_bytes.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= self.max_response_bytes {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(format!("reading the response: {}", describe(&e)));
                    if crate::delivery::retry::is_success(status) {
                        result = if e.is_timeout() { AttemptResult::Timeout } else { AttemptResult::Connect };
                    }
                    break;
                }
            }
        }
        Attempt {
            result,
            response_status: Some(status),
            response_body: Some(String::from_utf8_lossy(&body).into_owned()),
            error,
            duration: started.elapsed(),
            retry_after,
            permanent: false,
        }
    }
}

/// The headers of an attempt, in the order they are sent (the client adds
/// `user-agent: `[`USER_AGENT`] and `content-length`). With `keys` None, a
/// description without the secrets' work (for the console): each signature
/// header says what it carries instead of a value.
pub fn attempt_headers(event_id: &str, event_type: &str, timestamp: i64, body: &[u8], keys: Option<&[SigningKey]>) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("x-webhook-event", event_type.to_string()),
        ("webhook-id", event_id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
    ];
    match keys {
        Some(keys) => {
            headers.push(("webhook-signature", signing::standard_signature_header(keys, event_id, timestamp, body)));
            if let Some(key) = keys.first() {
                headers.push(("x-webhook-signature", signing::seed_signature(key, body)));
            }
        }
        None => {
            headers.push((
                "webhook-signature",
                "v1,<base64 HMAC-SHA256 of \"{webhook-id}.{webhook-timestamp}.{body}\">, one per valid secret (not shown)".to_string(),
            ));
            headers.push(("x-webhook-signature", "<hex HMAC-SHA256 of the body> (not shown)".to_string()));
        }
    }
    headers
}

/// The error recorded for a redirect (3xx): redirects are not followed,
/// since their target would skip the private-address check, so the receiver
/// must be registered under its final URL. Names the target by its origin
/// only, like the log ([`url_for_log`]): a `Location` may carry a token.
fn redirect_error(url: &url::Url, status: u16, location: Option<&str>) -> Option<String> {
    if !(300..400).contains(&status) {
        return None;
    }
    let to = match location.map(|l| url.join(l)) {
        Some(Ok(target)) => format!("a redirect to {}", url_for_log(target.as_str())),
        Some(Err(_)) => "a redirect to an invalid Location".to_string(),
        None => "a redirect without a Location".to_string(),
    };
    Some(format!("the receiver answered {status}, {to}: rowhook does not follow redirects; register the final URL instead"))
}

/// The guard's refusal ([`ssrf::TargetError`]) among an error's causes.
fn target_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a ssrf::TargetError> {
    let mut cause = Some(e);
    while let Some(error) = cause {
        if let Some(refusal) = error.downcast_ref::<ssrf::TargetError>() {
            return Some(refusal);
        }
        cause = error.source();
    }
    None
}

/// An error and its causes on one line.
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_describes_the_headers_sent_without_the_signatures() {
        let key = SigningKey::from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sent = attempt_headers("evt_1", "thread.created", 1_700_000_000, b"{}", Some(std::slice::from_ref(&key)));
        let shown = attempt_headers("evt_1", "thread.created", 1_700_000_000, b"{}", None);
        let names = |h: &[(&'static str, String)]| h.iter().map(|(n, _)| *n).collect::<Vec<&'static str>>();
        assert_eq!(names(&sent), names(&shown), "the same headers, in the same order");
        assert_eq!(sent[..4], shown[..4], "everything but the signatures as sent");
        for (name, value) in &shown[4..] {
            assert!(value.ends_with("(not shown)"), "{name}: {value}");
            assert!(!sent.iter().any(|(_, v)| v == value), "{name}");
        }
        assert!(sent[4].1.starts_with("v1,") && sent[5].1.len() == 64);
    }

    #[test]
    fn a_redirect_is_a_failure_that_names_where_it_pointed() {
        let url = url::Url::parse("https://hooks.example.com/in?token=x").unwrap();
        assert_eq!(redirect_error(&url, 200, Some("http://127.0.0.1/")), None);
        assert_eq!(redirect_error(&url, 404, None), None);
        assert_eq!(
            redirect_error(&url, 302, Some("http://127.0.0.1:9/admin?key=s3cret")).as_deref(),
            Some("the receiver answered 302, a redirect to http://127.0.0.1:9/…: rowhook does not follow redirects; register the final URL instead")
        );
        assert_eq!(
            redirect_error(&url, 307, Some("/elsewhere")).as_deref(),
            Some("the receiver answered 307, a redirect to https://hooks.example.com/…: rowhook does not follow redirects; register the final URL instead")
        );
        assert!(redirect_error(&url, 301, None).unwrap().contains("without a Location"));
    }

    #[test]
    fn the_log_sees_a_webhook_url_s_origin_only() {
        assert_eq!(url_for_log("https://hooks.example.com/services/T0/B0/XXXX?token=s3cret"), "https://hooks.example.com/…");
        assert_eq!(url_for_log("https://user:pass@example.com:8443/"), "https://example.com:8443");
        assert_eq!(url_for_log("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(url_for_log("not a url ?token=s3cret"), "(not a URL)");
    }
}
