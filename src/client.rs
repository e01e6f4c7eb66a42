//! `rowhook backfill` and `rowhook replay`: the running daemon's admin API
//! from the command line, with a progress bar for a backfill.
//!
//! They talk to the daemon rather than to the database: the daemon owns the
//! backfill's watermarks and its delivery actors. A refusal (a 4xx, or a
//! backfill that fails) is printed with the daemon's reason and exits
//! non-zero.

use std::time::Duration;

use serde_json::{json, Value};

/// Why a command against the API did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach rowhook's admin API at {url}: {source} (is `rowhook run` running there? --api URL points elsewhere)")]
    Connect { url: String, source: reqwest::Error },
    #[error("rowhook refused ({status}): {error}{}", details_text(.details))]
    Refused { status: u16, error: String, details: Value },
    #[error("backfill {id} {state}: {error}")]
    Ended { id: u64, state: String, error: String },
}

fn details_text(details: &Value) -> String {
    match details.as_object().filter(|d| !d.is_empty()) {
        Some(d) => format!(" ({})", d.iter().map(|(k, v)| format!("{k}: {}", v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect::<Vec<_>>().join("; ")),
        None => String::new(),
    }
}

/// The admin API of a running rowhook.
pub struct Api {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl Api {
    /// `base`: `http://127.0.0.1:8080`; `token`: the admin token, if the API needs one.
    pub fn new(base: &str, token: Option<String>) -> Api {
        // reqwest is built without a default TLS provider (https:// admin APIs need one).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Api { base: base.trim_end_matches('/').to_string(), token: token.filter(|t| !t.is_empty()), client: reqwest::Client::new() }
    }

    /// One call; the answer's `data`, or the daemon's refusal.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.request(method, &url).timeout(Duration::from_secs(30));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|source| ClientError::Connect { url: url.clone(), source })?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(answer["data"].clone());
        }
        Err(ClientError::Refused {
            status,
            error: answer["error"].as_str().unwrap_or("no reason given").to_string(),
            details: answer["details"].clone(),
        })
    }
}

/// What `rowhook backfill` asks for.
pub struct BackfillArgs {
    pub webhook: u64,
    pub event_type: String,
    pub filter: Option<Value>,
    pub limit: Option<u64>,
    /// Follow its progress until it ends (else print its id and return).
    pub wait: bool,
}

/// Queues a backfill and (with `wait`) shows its progress until it ends.
pub async fn backfill(api: &Api, args: BackfillArgs) -> Result<(), ClientError> {
    let mut body = json!({"event_type": args.event_type});
    if let Some(filter) = args.filter {
        body["filter"] = filter;
    }
    if let Some(limit) = args.limit {
        body["limit"] = json!(limit);
    }
    let created = api.call(reqwest::Method::POST, &format!("/api/webhooks/{}/backfills", args.webhook), Some(body)).await?;
    let id = created["id"].as_u64().unwrap_or(0);
    if !args.wait {
        println!("backfill {id} queued for webhook {}", args.webhook);
        return Ok(());
    }
    let bar = indicatif::ProgressBar::new(created["rows_estimate"].as_u64().unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template("backfill {msg} [{bar:30}] {pos}/{len} rows, {per_sec}, {eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(id.to_string());
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = api.call(reqwest::Method::GET, &format!("/api/webhooks/{}/backfills/{id}", args.webhook), None).await?;
        if let Some(estimate) = now["rows_estimate"].as_u64() {
            bar.set_length(estimate.max(now["rows_read"].as_u64().unwrap_or(0)));
        }
        bar.set_position(now["rows_read"].as_u64().unwrap_or(0));
        match now["state"].as_str().unwrap_or_default() {
            "done" => {
                bar.finish_and_clear();
                // Also when the bar is hidden (not a terminal): the outcome on stdout.
                println!("backfill {id} done: {} rows sent", now["rows_sent"]);
                return Ok(());
            }
            state @ ("failed" | "cancelled") => {
                bar.abandon();
                return Err(ClientError::Ended { id, state: state.to_string(), error: now["error"].as_str().unwrap_or("cancelled").to_string() });
            }
            _ => {}
        }
    }
}

/// What `rowhook replay` asks for.
pub struct ReplayArgs {
    pub webhook: u64,
    pub since: String,
    pub until: Option<String>,
    /// `failed` or `all`.
    pub status: Option<String>,
    pub event_types: Vec<String>,
}

/// Sends a window of the webhook's stored deliveries again; returns how many.
pub async fn replay(api: &Api, args: ReplayArgs) -> Result<u64, ClientError> {
    let mut body = json!({"since": args.since});
    if let Some(until) = args.until {
        body["until"] = json!(until);
    }
    if let Some(status) = args.status {
        body["status"] = json!(status);
    }
    if !args.event_types.is_empty() {
        body["event_types"] = json!(args.event_types);
    }
    let answer = api.call(reqwest::Method::POST, &format!("/api/webhooks/{}/replay", args.webhook), Some(body)).await?;
    Ok(answer["replayed"].as_u64().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_the_reason_and_the_fields() {
        let e = ClientError::Refused { status: 422, error: "filter[0].column: no column".into(), details: json!({"filter[0].column": "no column `x`"}) };
        assert_eq!(e.to_string(), "rowhook refused (422): filter[0].column: no column (filter[0].column: no column `x`)");
        let e = ClientError::Refused { status: 404, error: "webhook \"9\" not found".into(), details: json!({}) };
        assert_eq!(e.to_string(), "rowhook refused (404): webhook \"9\" not found");
    }
}
