//! The console: `/console` on the admin server, for operators in a browser.
//!
//! Server-rendered pages ([`render`]) and one small script, every asset
//! embedded in the binary (`assets/`), no request leaves the server. Pages
//! read through [`crate::state::store`] as the API does; every change goes
//! through the API itself (`console.js` calls `/api/...` with the session
//! cookie and its CSRF token), so validation, scope checks and the audit line
//! are the API's.
//!
//! - Sign-in trades a token for a session ([`crate::admin::auth::Sessions`]):
//!   an `HttpOnly`, `SameSite=Strict` cookie (`Secure` over TLS), ending at
//!   sign-out or after `[admin] session_lifetime`. The sign-in form carries
//!   a token of its own, matched with a cookie (no cross-site sign-in). A
//!   read token sees no controls, and the API refuses its changes anyway.
//!   Without any configured token the console is open, as the API is (and
//!   rowhook then listens on loopback addresses only).
//! - Live: the overview, a webhook's deliveries and a delivery poll
//!   `/console/live/...` for their HTML and replace it when it changed.
//! - Every response carries a Content-Security-Policy that allows this
//!   server's own script and style only: no inline script, no inline
//!   handler, nothing from elsewhere; escaping ([`render::esc`]) is what keeps
//!   hostile data text, the policy is what a slip would meet next.

pub mod render;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, Scope};

use crate::admin::auth::{self, Caller};
use crate::admin::http::HttpState;
use crate::admin::validation;
use crate::config::{EventRule, Ordering};
use crate::metrics::{Metrics, Throughput};
use crate::state::store::{DeliveryCounts, DeliveryFilter, StoreError, WebhookView};

use render::{Backfills, Deliveries, Nav, Page, WebhookRow};

const CSS: &str = include_str!("console/assets/console.css");
const JS: &str = include_str!("console/assets/console.js");
const FAVICON: &str = include_str!("console/assets/favicon.svg");

/// The sign-in form's own cookie (its CSRF token).
const LOGIN_COOKIE: &str = "rowhook_login";
/// Deliveries per page.
const PER_PAGE: u64 = 25;
/// Webhooks listed at most.
const MAX_WEBHOOKS: u64 = 1000;
/// How long the source's binlog size and the standby list are reused.
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// How often the throughput is sampled from the metrics.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// The content security policy of every console response.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the console shows beyond the API: the rules, the throughput of the
/// last hour, the source's binlog (for the lag in bytes), the instance lock.
pub struct ConsoleState {
    /// The `[[events]]` rules, `group_by` filled in.
    pub rules: Vec<EventRule>,
    pub throughput: Mutex<Throughput>,
    /// The source database, asked for its binlog's size.
    pub source: Option<mysql_async::Opts>,
    /// The instance lock: its name, this instance's session, the state database (asked for standbys).
    pub lock_name: String,
    pub lock_session: Option<u32>,
    pub state: Option<mysql_async::Opts>,
    probes: Mutex<Probes>,
}

/// The source's binlog files and sizes (None: it did not say).
type Binlogs = Option<Vec<(String, u64)>>;
/// Standby instances (connection id, client), or why they could not be listed.
type Standbys = Result<Vec<(u64, String)>, String>;

/// Answers of the databases, reused for [`PROBE_EVERY`], with when they came.
#[derive(Default)]
struct Probes {
    binlogs: Option<(Instant, Binlogs)>,
    standbys: Option<(Instant, Standbys)>,
}

impl ConsoleState {
    pub fn new(
        rules: Vec<EventRule>,
        source: Option<mysql_async::Opts>,
        state: Option<mysql_async::Opts>,
        lock_name: String,
        lock_session: Option<u32>,
    ) -> ConsoleState {
        ConsoleState { rules, throughput: Mutex::new(Throughput::default()), source, lock_name, lock_session, state, probes: Mutex::new(Probes::default()) }
    }

    /// The source's binlog files and sizes, asked at most every [`PROBE_EVERY`].
    async fn binlogs(&self) -> Binlogs {
        if let Some((at, logs)) = &lock(&self.probes).binlogs {
            if at.elapsed() < PROBE_EVERY {
                return logs.clone();
            }
        }
        let opts = self.source.clone()?;
        let logs = tokio::time::timeout(Duration::from_secs(3), async move {
            let mut conn = mysql_async::Conn::new(opts).await.ok()?;
            let logs = crate::source::schema::binary_logs(&mut conn).await.ok();
            let _ = conn.disconnect().await;
            logs
        })
        .await
        .ok()
        .flatten();
        lock(&self.probes).binlogs = Some((Instant::now(), logs.clone()));
        logs
    }

    /// Standby instances, asked at most every [`PROBE_EVERY`].
    async fn standbys(&self) -> Standbys {
        if let Some((at, list)) = &lock(&self.probes).standbys {
            if at.elapsed() < PROBE_EVERY {
                return list.clone();
            }
        }
        let Some(opts) = self.state.clone() else { return Ok(Vec::new()) };
        let list = match tokio::time::timeout(Duration::from_secs(3), crate::state::instance::standbys(&opts)).await {
            Ok(Ok(list)) => Ok(list),
            Ok(Err(e)) => Err(crate::dburl::cause_once(&e)),
            Err(_) => Err("the state database did not answer in 3 s".to_string()),
        };
        lock(&self.probes).standbys = Some((Instant::now(), list.clone()));
        list
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Feeds the throughput of the last hour from the metrics, every [`SAMPLE_EVERY`], until aborted.
pub async fn sample_throughput(console: Arc<ConsoleState>, metrics: Metrics) {
    loop {
        let totals = metrics.totals();
        lock(&console.throughput).record(unix_now(), totals);
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

/// The `/console` routes.
pub fn scope() -> Scope {
    web::scope("/console")
        .route("", web::get().to(overview))
        .route("/", web::get().to(overview))
        .route("/login", web::get().to(login_page))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/webhooks", web::get().to(webhooks))
        .route("/webhooks/{id}", web::get().to(webhook))
        .route("/webhooks/{id}/deliveries/{delivery}", web::get().to(delivery))
        .route("/event-types", web::get().to(event_types))
        .route("/live/overview", web::get().to(live_overview))
        .route("/live/webhooks/{id}/deliveries", web::get().to(live_deliveries))
        .route("/live/webhooks/{id}/backfills", web::get().to(live_backfills))
        .route("/live/webhooks/{id}/deliveries/{delivery}", web::get().to(live_delivery))
        .route("/assets/{name}", web::get().to(asset))
        .default_service(web::to(not_found))
}

type State = web::Data<HttpState>;

// ---------------------------------------------------------------- responses

/// An HTML answer with the console's security headers.
fn html(status: StatusCode, body: String) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    secure_headers(&mut response);
    response.content_type("text/html; charset=utf-8").body(body)
}

fn secure_headers(response: &mut actix_web::HttpResponseBuilder) {
    response
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
}

fn see_other(location: &str) -> HttpResponse {
    let mut response = HttpResponse::SeeOther();
    secure_headers(&mut response);
    response.insert_header((header::LOCATION, location)).finish()
}

/// A whole page for `viewer`.
fn page(viewer: &Viewer, title: &str, nav: Nav, main: String) -> HttpResponse {
    html(StatusCode::OK, render::page(&Page { title, nav, caller: &viewer.caller, csrf: viewer.csrf.as_deref(), main }))
}

fn problem(viewer: &Viewer, status: StatusCode, title: &str, text: &str) -> HttpResponse {
    let mut response = page(viewer, title, Nav::Overview, render::message(title, text));
    *response.status_mut() = status;
    response
}

fn unavailable(viewer: &Viewer, e: StoreError) -> HttpResponse {
    tracing::warn!(error = %e, "console request failed on the state database");
    problem(viewer, StatusCode::SERVICE_UNAVAILABLE, "State database unavailable", &format!("{e}. Try again in a moment."))
}

fn live_unavailable(e: StoreError) -> HttpResponse {
    html(StatusCode::SERVICE_UNAVAILABLE, format!("<p class=\"error\">The state database does not answer: {}</p>", render::esc(&e.to_string())))
}

async fn not_found(req: HttpRequest, state: State) -> HttpResponse {
    match viewer(&req, &state) {
        Some(viewer) => problem(&viewer, StatusCode::NOT_FOUND, "Not found", "There is no such page in the console."),
        None => see_other("/console/login"),
    }
}

fn secure(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

// ---------------------------------------------------------------- who is looking

/// A signed-in user (or anyone, when no token is configured).
struct Viewer {
    caller: Caller,
    /// The session's CSRF token; None when open.
    csrf: Option<String>,
}

impl Viewer {
    fn can_change(&self) -> bool {
        self.caller.can_change()
    }
}

/// Who is looking: the session of the cookie, or anyone when open. None: sign in first.
fn viewer(req: &HttpRequest, state: &HttpState) -> Option<Viewer> {
    if state.auth.tokens.is_open() {
        return Some(Viewer { caller: Caller::open(), csrf: None });
    }
    let id = session_id(req)?;
    let session = state.auth.sessions.find(id)?;
    Some(Viewer { caller: session.caller, csrf: Some(session.csrf) })
}

fn session_id(req: &HttpRequest) -> Option<&str> {
    let cookies = req.headers().get(header::COOKIE)?.to_str().ok()?;
    auth::cookie(cookies, auth::SESSION_COOKIE).filter(|id| !id.is_empty())
}

macro_rules! signed_in {
    ($req:expr, $state:expr) => {
        match viewer(&$req, &$state) {
            Some(viewer) => viewer,
            None => return see_other("/console/login"),
        }
    };
}

/// For the live fragments: 401, which `console.js` shows as "signed out".
macro_rules! signed_in_live {
    ($req:expr, $state:expr) => {
        match viewer(&$req, &$state) {
            Some(viewer) => viewer,
            None => return html(StatusCode::UNAUTHORIZED, "<p>Signed out: <a href=\"/console/login\">sign in again</a>.</p>".into()),
        }
    };
}

// ---------------------------------------------------------------- sign-in

async fn login_page(req: HttpRequest, state: State) -> HttpResponse {
    if viewer(&req, &state).is_some() {
        return see_other("/console");
    }
    login_form(&req, &state, None)
}

/// The sign-in form with a fresh CSRF token in it and in its cookie.
fn login_form(req: &HttpRequest, state: &HttpState, error: Option<&str>) -> HttpResponse {
    let token = auth::generate_token();
    let mut response = html(StatusCode::OK, render::login(error, &token, state.auth.sessions.lifetime()));
    let cookie = auth::session_cookie(LOGIN_COOKIE, &token, Duration::from_secs(3600), secure(req)).replace("Path=/", "Path=/console/login");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

async fn login(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    if state.auth.tokens.is_open() {
        return see_other("/console");
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("");
    let expected = req
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| auth::cookie(c, LOGIN_COOKIE))
        .unwrap_or("");
    if expected.is_empty() || !auth::same_secret(field("csrf"), expected) {
        return login_form(&req, &state, Some("The sign-in form expired or came from elsewhere: try again."));
    }
    let Some(caller) = state.auth.tokens.check(field("token")) else {
        tracing::warn!(target: "rowhook::audit", "console sign-in refused: unknown token");
        // Slows down guessing; a real token is long enough that guessing is hopeless anyway.
        tokio::time::sleep(Duration::from_millis(500)).await;
        return login_form(&req, &state, Some("That token is not one of [admin] tokens."));
    };
    let (id, session) = state.auth.sessions.start(&caller);
    tracing::info!(target: "rowhook::audit", token = %caller.name, scope = caller.scope.as_str(), via = "console", "console sign-in");
    let mut response = see_other("/console");
    let secure = secure(&req);
    for cookie in [
        auth::session_cookie(auth::SESSION_COOKIE, &id, state.auth.sessions.lifetime(), secure),
        auth::cleared_cookie(LOGIN_COOKIE, secure).replace("Path=/", "Path=/console/login"),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    drop(session);
    response
}

async fn logout(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let csrf = form.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or("");
    if let Some(id) = session_id(&req) {
        if let Some(session) = state.auth.sessions.find(id) {
            if !auth::same_secret(csrf, &session.csrf) {
                return html(StatusCode::FORBIDDEN, render::message("Not signed out", "The sign-out form came from elsewhere."));
            }
            state.auth.sessions.end(id);
            tracing::info!(target: "rowhook::audit", token = %session.caller.name, via = "console", "console sign-out");
        }
    }
    let mut response = see_other("/console/login");
    if let Ok(value) = HeaderValue::from_str(&auth::cleared_cookie(auth::SESSION_COOKIE, secure(&req))) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

// ---------------------------------------------------------------- assets

async fn asset(req: HttpRequest) -> HttpResponse {
    let (content_type, body) = match req.match_info().get("name").unwrap_or("") {
        "console.css" => ("text/css; charset=utf-8", CSS),
        "console.js" => ("text/javascript; charset=utf-8", JS),
        "favicon.svg" => ("image/svg+xml", FAVICON),
        _ => return HttpResponse::NotFound().content_type("text/plain").body("no such asset"),
    };
    let mut response = HttpResponse::Ok();
    secure_headers(&mut response);
    // Versioned URLs (`?v=`): a new release is a new URL.
    response.insert_header((header::CACHE_CONTROL, "public, max-age=3600")).content_type(content_type).body(body)
}

// ---------------------------------------------------------------- overview

async fn overview(req: HttpRequest, state: State) -> HttpResponse {
    let viewer = signed_in!(req, state);
    match overview_data(&state).await {
        Ok(o) => page(&viewer, "Overview", Nav::Overview, render::overview(&o)),
        Err(e) => unavailable(&viewer, e),
    }
}

async fn live_overview(req: HttpRequest, state: State) -> HttpResponse {
    let _viewer = signed_in_live!(req, state);
    match overview_data(&state).await {
        Ok(o) => html(StatusCode::OK, render::overview_live(&o)),
        Err(e) => live_unavailable(e),
    }
}

async fn overview_data(state: &HttpState) -> Result<render::Overview, StoreError> {
    let reader = state.reader.borrow().clone();
    let (webhooks, _) = state.store.list_webhooks(1, MAX_WEBHOOKS).await?;
    let counts = state.store.delivery_counts().await?;
    let (mut pending, mut waiting, mut failed) = (0, 0, 0);
    for c in &counts {
        let w = webhooks.iter().find(|w| w.id == c.webhook_id).map(|w| ordering_of(w, state.default_ordering)).unwrap_or(state.default_ordering);
        let held = c.waiting(w);
        pending += c.pending - held.min(c.pending);
        waiting += held;
        failed += c.failed;
    }
    let active = webhooks.iter().filter(|w| w.is_active).count() as u64;
    let console = &state.console;
    let lag_bytes = console.binlogs().await.and_then(|logs| crate::source::schema::bytes_behind(&logs, &reader.position));
    let standbys = console.standbys().await;
    let minutes = lock(&console.throughput).last_hour(unix_now());
    Ok(render::Overview {
        reader_connected: reader.connected,
        reader_error: reader.last_error.clone(),
        position: reader.position.to_string(),
        lag_seconds: state.metrics.replication_lag_seconds.get(),
        lag_bytes,
        minutes,
        pending,
        waiting,
        failed,
        webhooks_active: active,
        webhooks_inactive: webhooks.len() as u64 - active,
        active: state.metrics.active.get() == 1,
        lock_name: console.lock_name.clone(),
        lock_session: console.lock_session,
        standbys_error: standbys.as_ref().err().cloned(),
        standbys: standbys.unwrap_or_default(),
    })
}

fn ordering_of(view: &WebhookView, default: Ordering) -> Ordering {
    view.ordering.as_deref().and_then(Ordering::parse).unwrap_or(default)
}

// ---------------------------------------------------------------- webhooks

/// A webhook with its counts, its hour and (when it fails) its latest failure.
async fn webhook_row(state: &HttpState, view: WebhookView, counts: &[DeliveryCounts]) -> Result<WebhookRow, StoreError> {
    let ordering = ordering_of(&view, state.default_ordering);
    let c = counts.iter().find(|c| c.webhook_id == view.id).copied().unwrap_or_default();
    let last_failure = if view.failing_since.is_some() { state.store.last_failure(view.id).await? } else { None };
    let hour = lock(&state.console.throughput).webhook_hour(view.id, unix_now());
    Ok(WebhookRow {
        ordering,
        ordering_is_default: view.ordering.as_deref().and_then(Ordering::parse).is_none(),
        hour,
        pending: c.pending,
        waiting: c.waiting(ordering),
        failed: c.failed,
        last_failure,
        view,
    })
}

async fn webhooks(req: HttpRequest, state: State) -> HttpResponse {
    let viewer = signed_in!(req, state);
    let result: Result<Vec<WebhookRow>, StoreError> = async {
        let (list, _) = state.store.list_webhooks(1, MAX_WEBHOOKS).await?;
        let counts = state.store.delivery_counts().await?;
        let mut rows = Vec::with_capacity(list.len());
        for view in list {
            rows.push(webhook_row(&state, view, &counts).await?);
        }
        Ok(rows)
    }
    .await;
    match result {
        Ok(rows) => page(&viewer, "Webhooks", Nav::Webhooks, render::webhooks(&rows, &state.event_types, state.default_ordering, viewer.can_change())),
        Err(e) => unavailable(&viewer, e),
    }
}

fn id_in(req: &HttpRequest, name: &str) -> Option<u64> {
    req.match_info().get(name)?.parse().ok().filter(|id| *id > 0)
}

/// The deliveries a page shows: the filters of the query, checked as the API checks them.
async fn deliveries_data(req: &HttpRequest, state: &HttpState, view: &WebhookView, can_change: bool) -> Result<Deliveries, StoreError> {
    let q: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    let value = |key: &str| q.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let mut d = Deliveries {
        webhook_id: view.id,
        page: value("page").parse::<u64>().ok().filter(|p| *p >= 1 && *p <= 1_000_000).unwrap_or(1),
        per_page: PER_PAGE,
        status: value("status"),
        event_type: value("event_type"),
        since: value("since"),
        until: value("until"),
        can_change,
        ..Deliveries::default()
    };
    let mut filter = DeliveryFilter { ordering: ordering_of(view, state.default_ordering), ..DeliveryFilter::default() };
    let checked = (|| -> Result<(), validation::FieldError> {
        if !d.status.is_empty() {
            filter.status = Some(validation::status(&d.status)?);
        }
        if !d.event_type.is_empty() {
            filter.event_type = Some(d.event_type.clone());
        }
        if !d.since.is_empty() {
            filter.since = Some(validation::time_filter("since", &d.since)?);
        }
        if !d.until.is_empty() {
            filter.until = Some(validation::time_filter("until", &d.until)?);
        }
        Ok(())
    })();
    if let Err(e) = checked {
        d.filter_error = Some(format!("Filter not applied: {e}"));
        filter = DeliveryFilter { ordering: filter.ordering, ..DeliveryFilter::default() };
    }
    let (list, total) = state.store.list_deliveries(view.id, &filter, d.page, d.per_page).await?;
    d.list = list;
    d.total = total;
    Ok(d)
}

async fn webhook(req: HttpRequest, state: State) -> HttpResponse {
    let viewer = signed_in!(req, state);
    let Some(id) = id_in(&req, "id") else {
        return problem(&viewer, StatusCode::NOT_FOUND, "Not found", "No such webhook.");
    };
    let result: Result<Option<(WebhookRow, Deliveries, Backfills)>, StoreError> = async {
        let Some(view) = state.store.get_webhook(id).await? else { return Ok(None) };
        let deliveries = deliveries_data(&req, &state, &view, viewer.can_change()).await?;
        let backfills = backfills_data(&state, &view, viewer.can_change()).await?;
        let counts = state.store.delivery_counts().await?;
        Ok(Some((webhook_row(&state, view, &counts).await?, deliveries, backfills)))
    }
    .await;
    match result {
        Ok(Some((row, deliveries, backfills))) => {
            let title = format!("Webhook #{id}");
            page(&viewer, &title, Nav::Webhooks, render::webhook(&row, &deliveries, &backfills, &state.event_types, state.default_ordering))
        }
        Ok(None) => problem(&viewer, StatusCode::NOT_FOUND, "Not found", &format!("Webhook #{id} does not exist (any more).")),
        Err(e) => unavailable(&viewer, e),
    }
}

/// The webhook a live region's URL names; Err: the answer when there is none.
async fn live_webhook(req: &HttpRequest, state: &HttpState) -> Result<WebhookView, HttpResponse> {
    let Some(id) = id_in(req, "id") else {
        return Err(html(StatusCode::NOT_FOUND, "<p>No such webhook.</p>".into()));
    };
    match state.store.get_webhook(id).await {
        Ok(Some(view)) => Ok(view),
        Ok(None) => Err(html(StatusCode::NOT_FOUND, "<p>This webhook was deleted.</p>".into())),
        Err(e) => Err(live_unavailable(e)),
    }
}

async fn live_deliveries(req: HttpRequest, state: State) -> HttpResponse {
    let viewer = signed_in_live!(req, state);
    let view = match live_webhook(&req, &state).await {
        Ok(view) => view,
        Err(answer) => return answer,
    };
    match deliveries_data(&req, &state, &view, viewer.can_change()).await {
        Ok(d) => html(StatusCode::OK, render::deliveries_live(&d)),
        Err(e) => live_unavailable(e),
    }
}

/// A webhook's backfills, what it may backfill, and whether a replay from the binlog runs.
async fn backfills_data(state: &HttpState, view: &WebhookView, can_change: bool) -> Result<Backfills, StoreError> {
    let subscribed = |t: &String| view.events.iter().any(|e| e == "*" || e == t);
    Ok(Backfills {
        webhook_id: view.id,
        list: state.store.list_backfills(view.id).await?,
        event_types: state.event_types.iter().filter(|t| subscribed(t) && state.mapper.rule_of(t).is_some()).cloned().collect(),
        unavailable: state
            .backfills
            .is_none()
            .then(|| "needs the state database on the source server (its watermarks pass through the source's binlog)".to_string()),
        binlog_replay: state.replayer.progress(),
        is_active: view.is_active,
        can_change,
    })
}

async fn live_backfills(req: HttpRequest, state: State) -> HttpResponse {
    let viewer = signed_in_live!(req, state);
    let view = match live_webhook(&req, &state).await {
        Ok(view) => view,
        Err(answer) => return answer,
    };
    match backfills_data(&state, &view, viewer.can_change()).await {
        Ok(b) => html(StatusCode::OK, render::backfills_live(&b)),
        Err(e) => live_unavailable(e),
    }
}

/// A delivery with what its page shows; None: no such delivery of this webhook.
async fn delivery_data(
    req: &HttpRequest,
    state: &HttpState,
) -> Result<Option<(WebhookView, crate::state::store::DeliveryView, Vec<crate::state::store::AttemptView>)>, StoreError> {
    let (Some(webhook_id), Some(delivery_id)) = (id_in(req, "id"), id_in(req, "delivery")) else { return Ok(None) };
    let Some(view) = state.store.get_webhook(webhook_id).await? else { return Ok(None) };
    let Some(delivery) = state.store.get_delivery(webhook_id, delivery_id, ordering_of(&view, state.default_ordering)).await? else {
        return Ok(None);
    };
    let attempts = state.store.failed_attempts(delivery_id).await?;
    Ok(Some((view, delivery, attempts)))
}

/// The headers of the delivery's last attempt, without signatures.
fn headers_of(d: &crate::state::store::DeliveryView) -> Vec<(&'static str, String)> {
    let timestamp = d
        .last_attempt_at
        .as_deref()
        .and_then(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
        .map_or(0, |t| t.unix_timestamp());
    let event_id = d.event_id.clone().unwrap_or_else(|| format!("delivery_{}", d.id));
    crate::delivery::sender::attempt_headers(&event_id, &d.event_type, timestamp, b"", None)
}

async fn delivery(req: HttpRequest, state: State) -> HttpResponse {
    let viewer = signed_in!(req, state);
    match delivery_data(&req, &state).await {
        Ok(Some((view, d, attempts))) => {
            let title = format!("Delivery #{}", d.id);
            page(&viewer, &title, Nav::Webhooks, render::delivery(&view, &d, &attempts, &headers_of(&d), viewer.can_change()))
        }
        Ok(None) => problem(&viewer, StatusCode::NOT_FOUND, "Not found", "No such delivery of this webhook (it may have been pruned)."),
        Err(e) => unavailable(&viewer, e),
    }
}

async fn live_delivery(req: HttpRequest, state: State) -> HttpResponse {
    let viewer = signed_in_live!(req, state);
    match delivery_data(&req, &state).await {
        Ok(Some((view, d, attempts))) => html(StatusCode::OK, render::delivery_live(&view, &d, &attempts, &headers_of(&d), viewer.can_change())),
        Ok(None) => html(StatusCode::NOT_FOUND, "<p>This delivery is gone.</p>".into()),
        Err(e) => live_unavailable(e),
    }
}

// ---------------------------------------------------------------- event types

async fn event_types(req: HttpRequest, state: State) -> HttpResponse {
    let viewer = signed_in!(req, state);
    page(&viewer, "Event types", Nav::EventTypes, render::event_types(&state.console.rules))
}

/// What a standby instance answers at `/console`: why it stands by, and where to look instead.
pub fn standby_page(reason: &str) -> HttpResponse {
    html(StatusCode::SERVICE_UNAVAILABLE, render::standby(reason))
}
