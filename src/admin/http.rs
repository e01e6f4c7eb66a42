//! The HTTP server (actix-web): the webhook admin API, `/metrics`,
//! `/healthz`, `/readyz`.
//!
//! Handlers are thin: they validate with [`crate::admin::validation`], check a
//! webhook URL as deliveries will ([`crate::delivery::ssrf::vet`]), query with
//! [`crate::state::store`], and tell the router (so every change takes effect at
//! once, without a restart). Every answer is JSON of the seed's shape,
//! `{"success": true, "data": ..., "meta": ...}` or
//! `{"success": false, "error": "...", "details": {...}}`, including 404s,
//! 405s, oversized and malformed bodies. `/api/*` needs a token
//! ([`crate::admin::auth`]: a bearer token, or the console's session cookie
//! with its CSRF token); a `read` token may only GET. Every changing request
//! that passes authentication writes one audit line (target
//! `rowhook::audit`): the token's name, the method, the route, the status and
//! the webhook (and delivery) it acted on; never a token or a secret. The
//! console ([`crate::admin::console`]) is served beside the API. The server is
//! started on a listener the caller has bound, so tests run the whole daemon
//! on port 0.

// Input helpers return the finished error response as their `Err`: handlers
// answer it as is, which is clearer than an error type converted back.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpMessage as _, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::admin::auth::{self, Auth, Caller, Scope};
use crate::admin::console::{self, ConsoleState};

use crate::source::reader::ReaderStatus;
use crate::delivery::router::{ReloadWebhooks, Router, WakeWebhook};
use crate::metrics::Metrics;
use crate::config::Ordering;
use crate::events::mapping::Mapper;
use crate::state::store::{DeliveryFilter, NewDelivery, RetryOutcome, Store, StoreError, WebhookView};
use crate::admin::validation;
use crate::delivery::signing;
use crate::delivery::ssrf::{self, TargetError, TargetPolicy, Vetted};

/// The largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route, as (method, path): `GET /api/openapi.json` must describe each.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/webhooks"),
    ("GET", "/api/webhooks"),
    ("GET", "/api/webhooks/{id}"),
    ("PUT", "/api/webhooks/{id}"),
    ("DELETE", "/api/webhooks/{id}"),
    ("GET", "/api/webhooks/{id}/deliveries"),
    ("POST", "/api/webhooks/deliveries/{id}/retry"),
    ("POST", "/api/webhooks/{id}/test"),
    ("POST", "/api/webhooks/{id}/rotate-secret"),
    ("POST", "/api/webhooks/{id}/replay"),
    ("POST", "/api/webhooks/{id}/backfills"),
    ("GET", "/api/webhooks/{id}/backfills"),
    ("GET", "/api/webhooks/{id}/backfills/{backfill}"),
    ("DELETE", "/api/webhooks/{id}/backfills/{backfill}"),
    ("GET", "/api/event-types"),
    ("GET", "/api/openapi.json"),
    ("GET", "/metrics"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
];

/// The OpenAPI 3 document of the API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Shared with the handlers through `app_data`.
#[derive(Clone)]
pub struct HttpState {
    pub reader: watch::Receiver<ReaderStatus>,
    pub store: Store,
    pub router: Addr<Router>,
    pub metrics: Metrics,
    /// The tokens and the console's sessions. No token: the API is open,
    /// which `run` allows on loopback addresses only.
    pub auth: Arc<Auth>,
    /// What the console shows beyond the API: rules, throughput, the source's binlog, the instance lock.
    pub console: Arc<ConsoleState>,
    /// The event types the config defines.
    pub event_types: Arc<Vec<String>>,
    pub secret_rotation_overlap: Duration,
    /// Seals a new secret before it is stored (`[admin] secrets_key`; without one, stored as given).
    pub secrets: Arc<crate::state::secrets::Keyring>,
    /// `[delivery] ordering`: for webhooks without their own.
    pub default_ordering: Ordering,
    /// The `[delivery]` settings a webhook URL must satisfy to be registered.
    pub targets: TargetPolicy,
    /// How long registration waits for a webhook host's DNS answer.
    pub resolve_timeout: Duration,
    /// Wakes the backfill runner (None: no backfills, the state database is on another server).
    pub backfills: Option<Arc<tokio::sync::Notify>>,
    /// The rules (a backfill names one by its event type).
    pub mapper: Arc<Mapper>,
    /// Replays from the binlog.
    pub replayer: crate::backfill::replay::Replayer,
    /// `[admin] protect_metrics`: `/metrics` asks for a token.
    pub protect_metrics: bool,
    /// The mapped tables' columns (a backfill's filter names some).
    pub tables: Arc<std::collections::HashMap<String, crate::source::schema::TableSchema>>,
}

type State = web::Data<HttpState>;

/// Starts serving on `listener` (HTTPS with `tls`); stop it through the returned handle.
pub fn serve(listener: std::net::TcpListener, state: HttpState, tls: Option<rustls::ServerConfig>) -> std::io::Result<actix_web::dev::Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .wrap(from_fn(count_requests))
            .service(web::resource("/healthz").get(healthz).default_service(web::to(method_not_allowed)))
            .service(web::resource("/readyz").get(readyz).default_service(web::to(method_not_allowed)))
            .service(web::resource("/metrics").get(metrics).default_service(web::to(method_not_allowed)))
            .service(console::scope())
            .service(
                web::scope("/api")
                    .wrap(from_fn(authorize))
                    .service(
                        web::resource("/webhooks")
                            .post(create_webhook)
                            .get(list_webhooks)
                            .default_service(web::to(method_not_allowed)),
                    )
                    .service(
                        web::resource("/webhooks/deliveries/{id}/retry")
                            .post(retry_delivery)
                            .default_service(web::to(method_not_allowed)),
                    )
                    .service(
                        web::resource("/webhooks/{id}")
                            .get(get_webhook)
                            .put(update_webhook)
                            .delete(delete_webhook)
                            .default_service(web::to(method_not_allowed)),
                    )
                    .service(
                        web::resource("/webhooks/{id}/deliveries")
                            .get(list_deliveries)
                            .default_service(web::to(method_not_allowed)),
                    )
                    .service(web::resource("/webhooks/{id}/test").post(test_event).default_service(web::to(method_not_allowed)))
                    .service(
                        web::resource("/webhooks/{id}/rotate-secret")
                            .post(rotate_secret)
                            .default_service(web::to(method_not_allowed)),
                    )
                    .service(
                        web::resource("/webhooks/{id}/backfills")
                            .post(create_backfill)
                            .get(list_backfills)
                            .default_service(web::to(method_not_allowed)),
                    )
                    .service(
                        web::resource("/webhooks/{id}/backfills/{backfill}")
                            .get(get_backfill)
                            .delete(cancel_backfill)
                            .default_service(web::to(method_not_allowed)),
                    )
                    .service(web::resource("/webhooks/{id}/replay").post(replay).default_service(web::to(method_not_allowed)))
                    .service(web::resource("/event-types").get(event_types).default_service(web::to(method_not_allowed)))
                    .service(web::resource("/openapi.json").get(openapi).default_service(web::to(method_not_allowed))),
            )
            .default_service(web::to(not_found))
    })
    .workers(2)
    .disable_signals()
    .shutdown_timeout(2);
    // Plain HTTP, or only HTTPS (a plain request then fails its handshake).
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}

/// What a standby instance serves while another instance is active: alive at
/// `/healthz`, not ready at `/readyz` (with the reason), its metrics at
/// `/metrics` (`rowhook_active 0`), and 503 with the reason everywhere else.
pub fn serve_standby(
    listener: std::net::TcpListener,
    metrics: Metrics,
    reason: String,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<actix_web::dev::Server> {
    let reason = Arc::new(reason);
    let server = HttpServer::new(move || {
        let reason = reason.clone();
        let metrics = metrics.clone();
        App::new()
            .route(
                "/healthz",
                web::get().to(|| async { ok(StatusCode::OK, json!({"status": "standby", "version": env!("CARGO_PKG_VERSION")})) }),
            )
            .route(
                "/metrics",
                web::get().to(move || {
                    let text = metrics.render();
                    async move { prometheus_text(text) }
                }),
            )
            .service(web::resource(["/console", "/console/{tail:.*}"]).to({
                let reason = reason.clone();
                move || {
                    let reason = reason.clone();
                    async move { console::standby_page(&reason) }
                }
            }))
            .default_service(web::to(move || {
                let reason = reason.clone();
                async move { fail(StatusCode::SERVICE_UNAVAILABLE, reason.as_str(), json!({"status": "standby"})) }
            }))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1);
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}

// ---------------------------------------------------------------- responses

fn ok(status: StatusCode, data: Value) -> HttpResponse {
    HttpResponse::build(status).json(json!({"success": true, "data": data}))
}

fn ok_with_meta(status: StatusCode, data: Value, meta: Value) -> HttpResponse {
    HttpResponse::build(status).json(json!({"success": true, "data": data, "meta": meta}))
}

fn ok_paged(data: Value, page: u64, per_page: u64, total: u64) -> HttpResponse {
    HttpResponse::Ok().json(json!({"success": true, "data": data, "meta": {"page": page, "per_page": per_page, "total": total}}))
}

fn fail(status: StatusCode, error: impl Into<String>, details: Value) -> HttpResponse {
    HttpResponse::build(status).json(json!({"success": false, "error": error.into(), "details": details}))
}

fn invalid(e: validation::FieldError) -> HttpResponse {
    fail(StatusCode::UNPROCESSABLE_ENTITY, e.to_string(), json!({ e.field.clone(): e.message }))
}

fn bad_query(e: validation::FieldError) -> HttpResponse {
    fail(StatusCode::BAD_REQUEST, e.to_string(), json!({ e.field.clone(): e.message }))
}

/// 422 for a URL that can never be delivered, naming the field, the host and
/// the refused address where there is one.
fn refused_url(e: TargetError) -> HttpResponse {
    let message = e.to_string();
    let mut details = json!({ "url": message });
    if let TargetError::Forbidden { host, addr } = &e {
        details["host"] = json!(host);
        details["address"] = json!(addr.to_string());
    }
    fail(StatusCode::UNPROCESSABLE_ENTITY, format!("url: {message}"), details)
}

/// The registration-time check of a webhook URL ([`ssrf::vet`], the code
/// deliveries check with): `Err` is the refusal, `Ok` the warning for `meta`
/// if any (a name that does not resolve now is accepted, see [`Vetted::Unresolved`]).
async fn vet_url(state: &HttpState, text: &str) -> Result<Option<String>, TargetError> {
    let Ok(url) = url::Url::parse(text) else {
        // validation parsed it already; a stored URL written with SQL may be anything.
        return Ok(Some(format!("url: {text:?} is not a valid URL: no delivery can be made")));
    };
    match ssrf::vet(&url, state.targets, state.resolve_timeout).await? {
        Vetted::Permitted => Ok(None),
        Vetted::Unresolved(e) => Ok(Some(format!(
            "url: {e}. Accepted anyway (its DNS may not be set up yet): every delivery resolves the name again, \
             fails while it does not resolve, and refuses it if it resolves to a private address"
        ))),
    }
}

fn unavailable(e: StoreError) -> HttpResponse {
    tracing::warn!(error = %e, "admin request failed on the state database");
    fail(StatusCode::SERVICE_UNAVAILABLE, "state database unavailable; try again", json!({"reason": e.to_string()}))
}

/// A secret that cannot be sealed (longer than any the validation lets through).
fn unsealable(e: crate::state::secrets::SecretsError) -> HttpResponse {
    fail(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot seal the secret: {e}"), json!({}))
}

async fn not_found() -> HttpResponse {
    fail(StatusCode::NOT_FOUND, "no such route", json!({}))
}

/// 405 with the `Allow` header RFC 9110 asks for: the methods [`ROUTES`] lists for the route.
async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let mut response = fail(StatusCode::METHOD_NOT_ALLOWED, format!("{} is not allowed here", req.method()), json!({}));
    if let Some(allow) = req.match_pattern().as_deref().and_then(allowed_methods) {
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
            response.headers_mut().insert(actix_web::http::header::ALLOW, value);
        }
    }
    response
}

/// The methods of a route pattern (`/api/webhooks/{id}`), as an `Allow` header's value.
fn allowed_methods(pattern: &str) -> Option<String> {
    let methods: Vec<&str> = ROUTES.iter().filter(|(_, path)| *path == pattern).map(|(method, _)| *method).collect();
    (!methods.is_empty()).then(|| methods.join(", "))
}

fn no_webhook(id: &str) -> HttpResponse {
    fail(StatusCode::NOT_FOUND, format!("webhook {id} not found"), json!({}))
}

// ---------------------------------------------------------------- middleware

/// What an admin change acted on, for its audit line: a handler that knows
/// puts it in its response's extensions ([`audited`]); otherwise the `{id}`
/// of a `/api/webhooks/{id}...` route is the webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditTarget {
    pub webhook_id: Option<u64>,
    pub delivery_id: Option<u64>,
}

/// `response`, marked with what it acted on.
pub fn audited(mut response: HttpResponse, webhook_id: Option<u64>, delivery_id: Option<u64>) -> HttpResponse {
    response.extensions_mut().insert(AuditTarget { webhook_id, delivery_id });
    response
}

/// The caller of `/api/*` ([`identify`]), allowed by its scope; writes the
/// audit line of every changing request.
async fn authorize<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<State>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let method = req.method().as_str().to_string();
    let caller = match identify(req.request(), &state.auth) {
        Ok(caller) => caller,
        Err(response) => return Ok(req.into_response(response)),
    };
    let needed = auth::needs(&method);
    let changing = needed == Scope::Admin;
    if changing && !caller.can_change() {
        let path = req.path().to_string();
        let response = fail(
            StatusCode::FORBIDDEN,
            format!("token `{}` has scope read: {method} {path} needs scope admin", caller.name),
            json!({"token": caller.name.as_ref(), "scope": caller.scope.as_str(), "needed": needed.as_str()}),
        );
        let route = req.request().resource_map().match_pattern(&path).unwrap_or_else(|| path.clone());
        let target = AuditTarget { webhook_id: webhook_in_path(&route, &path), delivery_id: None };
        audit(&caller, &method, &route, StatusCode::FORBIDDEN, target);
        return Ok(req.into_response(response));
    }
    req.extensions_mut().insert(caller.clone());
    let response = next.call(req).await?.map_into_boxed_body();
    if changing {
        let route = response.request().match_pattern().unwrap_or_else(|| response.request().path().to_string());
        let mut target = response.response().extensions().get::<AuditTarget>().copied().unwrap_or_default();
        if target.webhook_id.is_none() {
            target.webhook_id = webhook_in_path(&route, response.request().path());
        }
        audit(&caller, &method, &route, response.status(), target);
    }
    Ok(response)
}

/// The webhook a `/api/webhooks/{id}...` route names.
fn webhook_in_path(route: &str, path: &str) -> Option<u64> {
    if !route.starts_with("/api/webhooks/{id}") {
        return None;
    }
    path.split('/').nth(3)?.parse().ok()
}

/// One line per admin change: who (the token's name, never the token),
/// how, what, with which result.
fn audit(caller: &Caller, method: &str, route: &str, status: StatusCode, target: AuditTarget) {
    tracing::info!(
        target: "rowhook::audit",
        token = %caller.name,
        scope = caller.scope.as_str(),
        via = caller.via.as_str(),
        method,
        route,
        status = status.as_u16(),
        webhook_id = target.webhook_id,
        delivery_id = target.delivery_id,
        "admin change"
    );
}

/// Who calls, by the `Authorization: Bearer` header, else the console's
/// session cookie (whose changing requests must carry its CSRF token);
/// everyone when no token is configured (but a browser's cross-site request
/// may change nothing even then). `Err`: the 401 or 403 to answer.
pub fn identify(req: &HttpRequest, auth: &Auth) -> Result<Caller, HttpResponse> {
    let changing = !auth::is_safe(req.method().as_str());
    if auth.tokens.is_open() {
        if changing && cross_site(req) {
            return Err(fail(
                StatusCode::FORBIDDEN,
                "cross-site request refused: no token is configured, so only requests from this origin may change anything",
                json!({}),
            ));
        }
        return Ok(Caller::open());
    }
    if let Some(header) = req.headers().get("authorization") {
        let given = header.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
        return match auth.tokens.check(given) {
            Some(caller) => Ok(caller),
            None => Err(unauthorized(if given.is_empty() { "missing bearer token" } else { "wrong bearer token" })),
        };
    }
    let cookie = req.headers().get("cookie").and_then(|v| v.to_str().ok()).and_then(|c| auth::cookie(c, auth::SESSION_COOKIE));
    if let Some(id) = cookie.filter(|id| !id.is_empty()) {
        let Some(session) = auth.sessions.find(id) else {
            return Err(unauthorized("console session expired or unknown (sign in again at /console/login)"));
        };
        if changing {
            let sent = req.headers().get(auth::CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !auth::same_secret(sent, &session.csrf) {
                return Err(fail(
                    StatusCode::FORBIDDEN,
                    format!("missing or wrong CSRF token: a change made with the console's session cookie must send its token in {}", auth::CSRF_HEADER),
                    json!({}),
                ));
            }
        }
        return Ok(session.caller);
    }
    Err(unauthorized("missing bearer token"))
}

fn unauthorized(reason: &str) -> HttpResponse {
    let mut response = fail(
        StatusCode::UNAUTHORIZED,
        format!("{reason}: send Authorization: Bearer <token> (the [admin] token, or a token of [admin] tokens)"),
        json!({}),
    );
    response.headers_mut().insert(
        actix_web::http::header::WWW_AUTHENTICATE,
        actix_web::http::header::HeaderValue::from_static("Bearer realm=\"rowhook\""),
    );
    response
}

/// A browser's request from another site: `Sec-Fetch-Site` says so, or an
/// `Origin` that is not this server's. (Clients other than browsers send neither.)
pub fn cross_site(req: &HttpRequest) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            origin_host != host
        }
        (Some(_), None) => true,
        _ => false,
    }
}

/// Counts every request by route pattern and status.
async fn count_requests<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let metrics = req.app_data::<State>().map(|s| s.metrics.clone());
    let response = next.call(req).await?.map_into_boxed_body();
    if let Some(metrics) = metrics {
        let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_string());
        metrics.admin_requests.with_label_values(&[&route, response.status().as_str()]).inc();
    }
    Ok(response)
}

// ---------------------------------------------------------------- input

/// Reads a JSON body: the right content type, at most [`MAX_BODY_BYTES`], well-formed.
async fn json_body(req: &HttpRequest, mut payload: web::Payload) -> Result<Value, HttpResponse> {
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.trim_start().to_ascii_lowercase().starts_with("application/json") {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "Content-Type must be application/json",
            json!({"content-type": content_type}),
        ));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| fail(StatusCode::BAD_REQUEST, format!("cannot read the body: {e}"), json!({})))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {MAX_BODY_BYTES} bytes"),
                json!({"limit": MAX_BODY_BYTES}),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| fail(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}"), json!({"body": e.to_string()})))
}

/// The `{id}` path segment: a positive number, else 404 (no such resource).
fn path_id(req: &HttpRequest, what: &str) -> Result<u64, HttpResponse> {
    let raw = req.match_info().get(if what == "backfill" { "backfill" } else { "id" }).unwrap_or("");
    raw.parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("{what} {raw:?} not found"), json!({})))
}

fn query(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect()
}

fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Makes the router re-read the webhooks table, so a change applies to the next event.
async fn reload(state: &HttpState) -> Result<(), HttpResponse> {
    match state.router.send(ReloadWebhooks).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(fail(StatusCode::SERVICE_UNAVAILABLE, "rowhook is stopping", json!({}))),
    }
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(response) => return response,
        }
    };
}

// ---------------------------------------------------------------- handlers

async fn create_webhook(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let body = tri!(json_body(&req, payload).await);
    let new = tri!(validation::new_webhook(&body, &state.event_types).map_err(invalid));
    let warnings: Vec<String> = tri!(vet_url(&state, &new.url).await.map_err(refused_url)).into_iter().collect();
    let secret = new.secret.unwrap_or_else(signing::generate_secret);
    let stored = tri!(state.secrets.seal(&secret).map_err(unsealable));
    let view = tri!(state.store.create_webhook(&new.url, &new.events, &stored, new.is_active, new.ordering).await.map_err(unavailable));
    tri!(reload(&state).await);
    let mut data = webhook_json(&view, &state);
    data["secret"] = Value::String(secret);
    audited(ok_with_meta(StatusCode::CREATED, data, json!({ "warnings": warnings })), Some(view.id), None)
}

async fn list_webhooks(req: HttpRequest, state: State) -> HttpResponse {
    let q = query(&req);
    let (page, per_page) = tri!(validation::page(query_value(&q, "page"), query_value(&q, "per_page")).map_err(bad_query));
    let (list, total) = tri!(state.store.list_webhooks(page, per_page).await.map_err(unavailable));
    ok_paged(Value::Array(list.iter().map(|view| webhook_json(view, &state)).collect()), page, per_page, total)
}

async fn get_webhook(req: HttpRequest, state: State) -> HttpResponse {
    let id = tri!(path_id(&req, "webhook"));
    match tri!(state.store.get_webhook(id).await.map_err(unavailable)) {
        Some(view) => ok(StatusCode::OK, webhook_json(&view, &state)),
        None => no_webhook(&id.to_string()),
    }
}

/// A webhook as the API shows it: `ordering` is the one in force, and
/// `ordering_is_default` says whether it is `[delivery] ordering`'s.
fn webhook_json(view: &WebhookView, state: &HttpState) -> Value {
    let mut data = serde_json::to_value(view).unwrap_or_default();
    let own = view.ordering.as_deref().and_then(Ordering::parse);
    data["ordering"] = Value::String(own.unwrap_or(state.default_ordering).as_str().to_string());
    data["ordering_is_default"] = Value::Bool(own.is_none());
    data
}

async fn update_webhook(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let id = tri!(path_id(&req, "webhook"));
    let body = tri!(json_body(&req, payload).await);
    let changes = tri!(validation::webhook_changes(&body, &state.event_types).map_err(invalid));
    let mut warnings: Vec<String> = match &changes.url {
        Some(url) => tri!(vet_url(&state, url).await.map_err(refused_url)).into_iter().collect(),
        None => Vec::new(),
    };
    let found = tri!(state
        .store
        .update_webhook(id, changes.url.as_deref(), changes.events.as_deref(), changes.is_active, changes.ordering)
        .await
        .map_err(unavailable));
    if !found {
        return no_webhook(&id.to_string());
    }
    tri!(reload(&state).await);
    let Some(view) = tri!(state.store.get_webhook(id).await.map_err(unavailable)) else {
        return no_webhook(&id.to_string());
    };
    // The URL was not given: say so if the one kept (perhaps written with
    // SQL, or before the settings changed) would be refused at delivery.
    if changes.url.is_none() && view.is_active {
        match vet_url(&state, &view.url).await {
            Ok(warning) => warnings.extend(warning),
            Err(e) => warnings.push(format!("url: the webhook's URL will be refused at every delivery: {e}; give it another with PUT {{\"url\": ...}}")),
        }
    }
    ok_with_meta(StatusCode::OK, webhook_json(&view, &state), json!({ "warnings": warnings }))
}

async fn delete_webhook(req: HttpRequest, state: State) -> HttpResponse {
    let id = tri!(path_id(&req, "webhook"));
    if !tri!(state.store.delete_webhook(id).await.map_err(unavailable)) {
        return no_webhook(&id.to_string());
    }
    tri!(reload(&state).await);
    ok(StatusCode::OK, json!({"id": id, "deleted": true}))
}

async fn list_deliveries(req: HttpRequest, state: State) -> HttpResponse {
    let id = tri!(path_id(&req, "webhook"));
    let q = query(&req);
    let (page, per_page) = tri!(validation::page(query_value(&q, "page"), query_value(&q, "per_page")).map_err(bad_query));
    let status = tri!(query_value(&q, "status").map(validation::status).transpose().map_err(bad_query));
    let Some(webhook) = tri!(state.store.get_webhook(id).await.map_err(unavailable)) else {
        return no_webhook(&id.to_string());
    };
    let ordering = webhook.ordering.as_deref().and_then(Ordering::parse).unwrap_or(state.default_ordering);
    let since = tri!(query_value(&q, "since").map(|v| validation::time_filter("since", v)).transpose().map_err(bad_query));
    let until = tri!(query_value(&q, "until").map(|v| validation::time_filter("until", v)).transpose().map_err(bad_query));
    let filter = DeliveryFilter {
        status,
        event_type: query_value(&q, "event_type").map(str::to_string),
        since,
        until,
        ordering,
        ..DeliveryFilter::default()
    };
    let (list, total) = tri!(state.store.list_deliveries(id, &filter, page, per_page).await.map_err(unavailable));
    ok_paged(serde_json::to_value(list).unwrap_or_default(), page, per_page, total)
}

async fn retry_delivery(req: HttpRequest, state: State) -> HttpResponse {
    let id = tri!(path_id(&req, "delivery"));
    match tri!(state.store.retry_delivery(id).await.map_err(unavailable)) {
        RetryOutcome::NotFound => audited(fail(StatusCode::NOT_FOUND, format!("delivery {id} not found"), json!({})), None, Some(id)),
        RetryOutcome::Inactive { webhook_id } => audited(
            fail(
                StatusCode::CONFLICT,
                format!("webhook {webhook_id} is inactive: activate it (PUT /api/webhooks/{webhook_id} with is_active true) first"),
                json!({"webhook_id": webhook_id}),
            ),
            Some(webhook_id),
            Some(id),
        ),
        RetryOutcome::Queued { webhook_id } => {
            state.router.do_send(WakeWebhook(webhook_id));
            audited(ok(StatusCode::ACCEPTED, json!({"delivery_id": id, "webhook_id": webhook_id, "status": "pending"})), Some(webhook_id), Some(id))
        }
    }
}

async fn replay(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let id = tri!(path_id(&req, "webhook"));
    let body = tri!(json_body(&req, payload).await);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let request = tri!(validation::replay_request(&body, &state.event_types, now).map_err(invalid));
    let Some(webhook) = tri!(state.store.get_webhook(id).await.map_err(unavailable)) else {
        return no_webhook(&id.to_string());
    };
    if !webhook.is_active {
        return fail(
            StatusCode::CONFLICT,
            format!("webhook {id} is inactive: activate it (PUT /api/webhooks/{id} with is_active true) first"),
            json!({"webhook_id": id}),
        );
    }
    let spec = match request {
        validation::ReplayRequest::History(spec) => spec,
        validation::ReplayRequest::Binlog(spec) => return replay_binlog(id, &webhook.events, spec, &state).await,
    };
    let replayed = tri!(state
        .store
        .replay_deliveries(id, spec.since, spec.until, spec.failed_only, spec.event_types.as_deref())
        .await
        .map_err(unavailable));
    tracing::info!(webhook_id = id, replayed, since = spec.since, until = spec.until, failed_only = spec.failed_only, "admin: deliveries replayed from the history");
    state.router.do_send(WakeWebhook(id));
    ok(StatusCode::ACCEPTED, json!({"webhook_id": id, "replayed": replayed}))
}

/// `POST /api/webhooks/{id}/backfills`: `event_type` (a rule's, the webhook
/// subscribed to it), optional `filter` and `limit`.
async fn create_backfill(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let id = tri!(path_id(&req, "webhook"));
    let body = tri!(json_body(&req, payload).await);
    let Some(wake) = state.backfills.clone() else {
        return fail(
            StatusCode::CONFLICT,
            "backfills need the state database on the source server (their watermarks must pass through the source's binlog): unset [state] url",
            json!({}),
        );
    };
    let Some(webhook) = tri!(state.store.get_webhook(id).await.map_err(unavailable)) else {
        return no_webhook(&id.to_string());
    };
    let request = tri!(validation::backfill(&body, &state.mapper, &webhook.events, &state.tables).map_err(invalid));
    if !webhook.is_active {
        return fail(
            StatusCode::CONFLICT,
            format!("webhook {id} is inactive: activate it (PUT /api/webhooks/{id} with is_active true) first"),
            json!({"webhook_id": id}),
        );
    }
    let filter = request.filter.as_ref().map(|f| f.to_string());
    let backfill = tri!(state.store.create_backfill(id, &request.event_type, filter.as_deref(), request.limit).await.map_err(unavailable));
    tracing::info!(webhook_id = id, backfill, event_type = %request.event_type, "admin: backfill queued");
    wake.notify_one();
    match tri!(state.store.backfill(id, backfill).await.map_err(unavailable)) {
        Some(view) => ok(StatusCode::ACCEPTED, serde_json::to_value(view).unwrap_or_default()),
        None => no_webhook(&id.to_string()),
    }
}

async fn list_backfills(req: HttpRequest, state: State) -> HttpResponse {
    let id = tri!(path_id(&req, "webhook"));
    if tri!(state.store.get_webhook(id).await.map_err(unavailable)).is_none() {
        return no_webhook(&id.to_string());
    }
    let list = tri!(state.store.list_backfills(id).await.map_err(unavailable));
    ok(StatusCode::OK, serde_json::to_value(list).unwrap_or_default())
}

async fn get_backfill(req: HttpRequest, state: State) -> HttpResponse {
    let id = tri!(path_id(&req, "webhook"));
    let backfill = tri!(path_id(&req, "backfill"));
    match tri!(state.store.backfill(id, backfill).await.map_err(unavailable)) {
        Some(view) => ok(StatusCode::OK, serde_json::to_value(view).unwrap_or_default()),
        None => fail(StatusCode::NOT_FOUND, format!("webhook {id} has no backfill {backfill}"), json!({})),
    }
}

async fn cancel_backfill(req: HttpRequest, state: State) -> HttpResponse {
    let id = tri!(path_id(&req, "webhook"));
    let backfill = tri!(path_id(&req, "backfill"));
    let Some(view) = tri!(state.store.backfill(id, backfill).await.map_err(unavailable)) else {
        return fail(StatusCode::NOT_FOUND, format!("webhook {id} has no backfill {backfill}"), json!({}));
    };
    if !tri!(state.store.cancel_backfill(id, backfill).await.map_err(unavailable)) {
        return fail(StatusCode::CONFLICT, format!("backfill {backfill} has ended ({})", view.state), json!({"state": view.state}));
    }
    tracing::info!(webhook_id = id, backfill, "admin: backfill cancelled");
    if let Some(wake) = &state.backfills {
        wake.notify_one();
    }
    ok(StatusCode::OK, json!({"id": backfill, "state": "cancelled"}))
}

/// Starts a replay from the binlog for webhook `id` (answers at once; the log says when it ends).
async fn replay_binlog(id: u64, subscribed: &[String], spec: validation::BinlogReplay, state: &HttpState) -> HttpResponse {
    use crate::backfill::replay::{ReplayError, Start};
    let replayer = state.replayer.clone();
    if replayer.running.load(std::sync::atomic::Ordering::SeqCst) {
        return fail(StatusCode::CONFLICT, ReplayError::Busy.to_string(), json!({}));
    }
    let (from, gtid) = match replayer.resolve(&spec.start).await {
        Ok(resolved) => resolved,
        Err(ReplayError::Purged { oldest }) => {
            return fail(StatusCode::CONFLICT, format!("the start is older than the server's oldest binlog: {oldest}"), json!({"oldest": oldest}))
        }
        Err(e) => return fail(StatusCode::SERVICE_UNAVAILABLE, e.to_string(), json!({})),
    };
    // What the webhook subscribes to, and of that what was asked for.
    let types: Vec<String> = match &spec.event_types {
        Some(asked) => asked.iter().filter(|t| subscribed.iter().any(|s| s == *t || s == "*")).cloned().collect(),
        None => subscribed.to_vec(),
    };
    let since = match spec.start {
        Start::Since(since) => Some(since),
        _ => None,
    };
    let router = state.router.clone();
    tracing::info!(webhook_id = id, from = %from, gtid = ?gtid, "admin: replay from the binlog started");
    actix_rt::spawn(async move {
        match replayer.replay(id, &types, from, gtid, since).await {
            Ok(queued) => {
                tracing::info!(webhook_id = id, queued, "replay from the binlog done");
                router.do_send(WakeWebhook(id));
            }
            Err(e) => tracing::error!(webhook_id = id, error = %e, "replay from the binlog failed"),
        }
    });
    ok(StatusCode::ACCEPTED, json!({"webhook_id": id, "from": "binlog", "state": "running"}))
}

async fn test_event(req: HttpRequest, state: State) -> HttpResponse {
    let id = tri!(path_id(&req, "webhook"));
    let Some(webhook) = tri!(state.store.get_webhook(id).await.map_err(unavailable)) else {
        return no_webhook(&id.to_string());
    };
    if !webhook.is_active {
        return fail(StatusCode::CONFLICT, format!("webhook {id} is inactive: activate it first"), json!({"webhook_id": id}));
    }
    let event_id = format!("test_{:016x}", rand::random::<u64>());
    let timestamp = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    let body = json!({
        "id": event_id,
        "type": "webhook.test",
        "timestamp": timestamp,
        "data": {"webhook_id": id, "message": "A test event from rowhook: if its signatures verify, your endpoint is ready."}
    })
    .to_string();
    let delivery = NewDelivery { webhook_id: id, event_id: &event_id, event_type: "webhook.test", payload: &body, group_key: None };
    let delivery_id = tri!(state.store.enqueue_one(&delivery).await.map_err(unavailable));
    state.router.do_send(WakeWebhook(id));
    audited(
        ok(StatusCode::ACCEPTED, json!({"delivery_id": delivery_id, "event_id": event_id, "status": "pending"})),
        Some(id),
        Some(delivery_id),
    )
}

async fn rotate_secret(req: HttpRequest, state: State) -> HttpResponse {
    let id = tri!(path_id(&req, "webhook"));
    let secret = signing::generate_secret();
    let stored = tri!(state.secrets.seal(&secret).map_err(unsealable));
    if !tri!(state.store.rotate_secret(id, &stored, state.secret_rotation_overlap).await.map_err(unavailable)) {
        return no_webhook(&id.to_string());
    }
    tri!(reload(&state).await);
    ok(
        StatusCode::OK,
        json!({"id": id, "secret": secret, "previous_secret_valid_for_seconds": state.secret_rotation_overlap.as_secs()}),
    )
}

async fn event_types(state: State) -> HttpResponse {
    ok(StatusCode::OK, json!(state.event_types.as_ref()))
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(OPENAPI)
}

async fn metrics(req: HttpRequest, state: State) -> HttpResponse {
    if state.protect_metrics {
        // A token of either scope (or a console session): GET changes nothing.
        if let Err(refused) = identify(&req, &state.auth) {
            return refused;
        }
    }
    // Pending deliveries are counted where they live, at scrape time.
    if let Ok(pending) = state.store.pending_by_webhook().await {
        state.metrics.deliveries_pending.reset();
        for (webhook_id, count) in pending {
            state.metrics.deliveries_pending.with_label_values(&[&webhook_id.to_string()]).set(count as i64);
        }
    }
    prometheus_text(state.metrics.render())
}

/// A `/metrics` answer in Prometheus's text format.
fn prometheus_text(body: String) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(body)
}

async fn healthz() -> HttpResponse {
    ok(StatusCode::OK, json!({"status": "alive", "version": env!("CARGO_PKG_VERSION")}))
}

/// 200 when the reader is connected, the state database answers and this
/// instance knows it holds the instance lock.
async fn readyz(state: State) -> HttpResponse {
    let reader = state.reader.borrow().clone();
    let store = state.store.ping().await;
    let mut reasons = Vec::new();
    if !reader.connected {
        reasons.push(format!(
            "binlog reader not connected{}",
            reader.last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
        ));
    }
    if let Err(e) = store {
        reasons.push(e.to_string());
    }
    if state.metrics.active.get() != 1 {
        reasons.push("the instance lock's connection broke; taking the lock again".to_string());
    }
    if reasons.is_empty() {
        ok(StatusCode::OK, json!({"status": "ready", "position": reader.position.to_string()}))
    } else {
        fail(StatusCode::SERVICE_UNAVAILABLE, reasons.join("; "), json!({"position": reader.position.to_string()}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_the_methods_of_a_route() {
        assert_eq!(allowed_methods("/api/webhooks/{id}").as_deref(), Some("GET, PUT, DELETE"));
        assert_eq!(allowed_methods("/healthz").as_deref(), Some("GET"));
        assert_eq!(allowed_methods("/api/nothing"), None);
    }

    #[test]
    fn the_openapi_document_describes_every_route() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3."));
        let paths = doc["paths"].as_object().expect("paths");
        for (method, path) in ROUTES {
            let item = paths.get(*path).unwrap_or_else(|| panic!("{path} missing from openapi.json"));
            assert!(item.get(method.to_ascii_lowercase()).is_some(), "{method} {path} missing from openapi.json");
        }
        let described: usize = paths.values().map(|p| p.as_object().map_or(0, |o| o.keys().filter(|k| *k != "parameters").count())).sum();
        assert_eq!(described, ROUTES.len(), "openapi.json describes a route the server does not have");
    }
}
