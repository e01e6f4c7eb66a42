//! A real HTTP server that records every request it gets and answers as told.
//!
//! It is driven by the current tokio runtime (`#[actix_rt::test]` or `#[tokio::test]`), with one
//! worker, on a port chosen by the OS. Every path and method is accepted and recorded; the answer
//! is `200 ok` unless [`Receiver::set_status`] / [`Receiver::set_delay`] / [`Receiver::set_header`]
//! say otherwise. [`Receiver::start_on`] binds another address (`[::]:0` catches connections to
//! every local address, IPv4 and IPv6).

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// The path without the query string, e.g. `/hook`.
    pub path: String,
    /// Header names are lowercase; repeated headers appear once per value, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the request (head and body) had arrived, before any configured delay.
    pub at: Instant,
    /// The status the receiver answered with.
    pub status: u16,
}

impl Received {
    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON. Panics with the body text when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "request body to {} is not JSON ({e}): {}",
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Behaviour {
    status: u16,
    delay: Duration,
    /// Bodies containing the text get 500, this many more times.
    failing: Vec<(String, usize)>,
    headers: Vec<(String, String)>,
    /// The body of every answer (None: `ok`, or `status N` for other statuses).
    body: Option<String>,
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    received: Mutex<Vec<Received>>,
}

/// A recording HTTP server. Stopped by [`Receiver::stop`] or, less gracefully, on drop.
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

async fn record(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Arc<Shared>>,
) -> HttpResponse {
    let at = Instant::now();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let (status, delay, extra, body_text) = {
        let mut b = shared.behaviour.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(&body);
        let fail = b.failing.iter_mut().find(|(needle, left)| *left > 0 && text.contains(needle.as_str()));
        let status = match fail {
            Some((_, left)) => {
                *left -= 1;
                500
            }
            None => b.status,
        };
        (status, b.delay, b.headers.clone(), b.body.clone())
    };
    shared
        .received
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Received {
            method: req.method().to_string(),
            path: req.path().to_string(),
            headers,
            body: body.to_vec(),
            at,
            status,
        });
    if !delay.is_zero() {
        actix_rt::time::sleep(delay).await;
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let text = body_text.unwrap_or_else(|| if status.is_success() { "ok".to_string() } else { format!("status {status}") });
    let mut response = HttpResponse::build(status);
    for (name, value) in extra {
        response.insert_header((name, value));
    }
    response.content_type("text/plain").body(text)
}

impl Receiver {
    /// Starts a receiver on 127.0.0.1 (free port) answering `200 ok` to everything.
    pub async fn start() -> Receiver {
        Receiver::start_on("127.0.0.1:0".parse().expect("address")).await
    }

    /// The same on `addr` (port 0: a free one). [`Receiver::url`] still names
    /// 127.0.0.1: build other URLs from [`Receiver::port`].
    pub async fn start_on(addr: SocketAddr) -> Receiver {
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind receiver to {addr}: {e}"));
        let addr = listener.local_addr().expect("receiver local address");
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(Behaviour {
                status: 200,
                delay: Duration::ZERO,
                failing: Vec::new(),
                headers: Vec::new(),
                body: None,
            }),
            received: Mutex::new(Vec::new()),
        });
        let data = web::Data::new(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .default_service(web::to(record))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)
        .expect("receiver listen")
        .run();
        let handle = server.handle();
        // tokio::spawn (not actix_rt::spawn) so it also works under #[tokio::test].
        tokio::spawn(async move {
            if let Err(e) = server.await {
                eprintln!("test receiver stopped with an error: {e}");
            }
        });
        Receiver {
            addr,
            shared,
            handle,
        }
    }

    /// `http://127.0.0.1:PORT/hook`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.addr.port())
    }

    /// `http://127.0.0.1:PORT` (no path), for tests that need other paths.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Adds this header to every later answer (`set_status(302)` with `Location`: a redirect).
    pub fn set_header(&self, name: &str, value: &str) {
        self.shared
            .behaviour
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .headers
            .push((name.to_string(), value.to_string()));
    }

    /// Answers every later request with this body (as `text/plain`).
    pub fn set_body(&self, body: &str) {
        self.shared.behaviour.lock().unwrap_or_else(|e| e.into_inner()).body = Some(body.to_string());
    }

    /// Answers every later request with this status.
    pub fn set_status(&self, status: u16) {
        self.shared
            .behaviour
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .status = status;
    }

    /// Answers 500 to the next `times` requests whose body contains `needle`.
    pub fn fail_matching(&self, needle: &str, times: usize) {
        self.shared
            .behaviour
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failing
            .push((needle.to_string(), times));
    }

    /// Waits this long before answering every later request (zero: answer at once).
    pub fn set_delay(&self, d: Duration) {
        self.shared
            .behaviour
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .delay = d;
    }

    /// All requests recorded so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forgets the requests recorded so far.
    pub fn clear(&self) {
        self.shared
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Waits (polling every 20 ms) until at least `n` requests arrived or `timeout` passed;
    /// returns everything received. Does not panic: the caller asserts on the result.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server (in-flight requests are dropped) and frees its port.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Sends the stop command right away; completion is not awaited.
        drop(self.handle.stop(false));
    }
}
