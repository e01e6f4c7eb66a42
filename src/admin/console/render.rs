//! The console's HTML: plain functions from view data to text, no template
//! engine. Every value that comes from outside (webhook URLs, payloads,
//! response bodies, errors, event types, rule columns) passes through [`esc`]
//! on its way in; nothing else builds markup from data. Pages carry no inline
//! script or style (the console's Content-Security-Policy forbids both):
//! behaviour comes from `console.js` through `data-*` attributes, and the
//! chart is SVG with classes styled by `console.css`.

use std::fmt::Write as _;

use crate::admin::auth::Caller;
use crate::config::{EventRule, Ordering};
use crate::metrics::Minute;
use crate::backfill::replay::ReplayProgress;
use crate::state::store::{AttemptView, BackfillView, DeliveryView, LastFailure, WebhookView};

/// Text made safe for HTML element content and double- or single-quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A query string component (for links the console builds from filter values).
pub fn query_escape(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A database time (`2026-11-28T10:04:59Z`, with or without milliseconds) as shown: `2026-11-28 10:04:59 UTC`.
pub fn time(text: &str) -> String {
    let trimmed = text.trim_end_matches('Z');
    let seconds = trimmed.split('.').next().unwrap_or(trimmed);
    format!(r#"<time datetime="{}">{} UTC</time>"#, esc(text), esc(&seconds.replacen('T', " ", 1)))
}

fn opt_time(text: Option<&str>, none: &str) -> String {
    text.map_or_else(|| esc(none), time)
}

/// Which page the navigation marks as the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Webhooks,
    EventTypes,
}

/// A whole page around its `main` content.
pub struct Page<'a> {
    pub title: &'a str,
    pub nav: Nav,
    /// Who is signed in (None: no token is configured, the console is open).
    pub caller: &'a Caller,
    /// The session's CSRF token (None when open).
    pub csrf: Option<&'a str>,
    /// The `main` element's content, already HTML.
    pub main: String,
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn head(title: &str, csrf: Option<&str>) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"csrf-token\" content=\"{}\">\n<title>{} · rowhook</title>\n\
         <link rel=\"icon\" href=\"/console/assets/favicon.svg\" type=\"image/svg+xml\">\n\
         <link rel=\"stylesheet\" href=\"/console/assets/console.css?v={VERSION}\">\n\
         <script src=\"/console/assets/console.js?v={VERSION}\" defer></script>\n</head>\n",
        esc(csrf.unwrap_or("")),
        esc(title)
    )
}

/// A page of the signed-in console: navigation, who is signed in, sign-out, the content.
pub fn page(p: &Page<'_>) -> String {
    let mut out = head(p.title, p.csrf);
    let link = |nav: Nav, href: &str, label: &str| {
        let current = if nav == p.nav { " aria-current=\"page\"" } else { "" };
        format!("<li><a href=\"{href}\"{current}>{label}</a></li>")
    };
    let who = match p.csrf {
        Some(csrf) => format!(
            "<span class=\"who\">{} <span class=\"scope scope-{}\">{}</span></span>\
             <form method=\"post\" action=\"/console/logout\" class=\"signout\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Sign out</button></form>",
            esc(&p.caller.name),
            p.caller.scope.as_str(),
            p.caller.scope.as_str(),
            esc(csrf)
        ),
        None => "<span class=\"who\">no token configured: open on loopback</span>".to_string(),
    };
    let _ = write!(
        out,
        "<body>\n<a class=\"skip\" href=\"#main\">Skip to content</a>\n<header class=\"top\">\n\
         <a class=\"brand\" href=\"/console\">rowhook</a>\n<nav aria-label=\"Console\"><ul>{}{}{}</ul></nav>\n\
         <div class=\"account\">{who}</div>\n</header>\n\
         <p id=\"status\" class=\"status\" role=\"status\" aria-live=\"polite\"></p>\n\
         <main id=\"main\" tabindex=\"-1\">\n{}\n</main>\n{}\n<footer>rowhook {VERSION}</footer>\n</body>\n</html>\n",
        link(Nav::Overview, "/console", "Overview"),
        link(Nav::Webhooks, "/console/webhooks", "Webhooks"),
        link(Nav::EventTypes, "/console/event-types", "Event types"),
        p.main,
        dialogs(),
    );
    out
}

/// The confirmation and secret dialogs `console.js` opens.
fn dialogs() -> &'static str {
    "<dialog id=\"confirm-dialog\" aria-labelledby=\"confirm-text\">\n<form method=\"dialog\">\n\
     <p id=\"confirm-text\"></p>\n<div class=\"actions\"><button value=\"cancel\" type=\"submit\">Cancel</button>\
     <button value=\"confirm\" type=\"submit\" class=\"danger\" id=\"confirm-ok\">Confirm</button></div>\n</form>\n</dialog>\n\
     <dialog id=\"secret-dialog\" aria-labelledby=\"secret-title\">\n<form method=\"dialog\">\n\
     <h2 id=\"secret-title\">Signing secret</h2>\n\
     <p>Copy it now: it is shown this once. Receivers verify signatures with it.</p>\n\
     <label for=\"secret-value\">Secret</label>\n<input id=\"secret-value\" readonly autocomplete=\"off\" spellcheck=\"false\">\n\
     <div class=\"actions\"><button type=\"submit\" value=\"close\" id=\"secret-close\">Done</button></div>\n</form>\n</dialog>"
}

/// The sign-in page. `error`: why the last attempt failed.
pub fn login(error: Option<&str>, login_csrf: &str, lifetime: std::time::Duration) -> String {
    let mut out = head("Sign in", None);
    let error = error.map(|e| format!("<p class=\"form-error\" role=\"alert\">{}</p>", esc(e))).unwrap_or_default();
    let hours = lifetime.as_secs() / 3600;
    let lasts = if hours >= 1 { format!("{hours} h") } else { format!("{} min", lifetime.as_secs().div_ceil(60)) };
    let _ = write!(
        out,
        "<body class=\"login\">\n<main id=\"main\">\n<h1>rowhook</h1>\n{error}\
         <form method=\"post\" action=\"/console/login\" class=\"card\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
         <label for=\"token\">Token</label>\n\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\n\
         <p class=\"hint\">An admin or read token of <code>[admin] tokens</code>, or the <code>[admin] token</code>. \
         A read token sees everything and changes nothing. Signed in for {lasts}.</p>\n\
         <button type=\"submit\">Sign in</button>\n</form>\n</main>\n</body>\n</html>\n",
        esc(login_csrf)
    );
    out
}

/// What a standby instance shows at `/console`.
pub fn standby(reason: &str) -> String {
    let mut out = head("Standing by", None);
    let _ = write!(
        out,
        "<body class=\"login\">\n<main id=\"main\">\n<h1>rowhook is standing by</h1>\n<p>{}</p>\n\
         <p>The console is served by the active instance.</p>\n</main>\n</body>\n</html>\n",
        esc(reason)
    );
    out
}

/// A page that says what went wrong (404, a state database that does not answer).
pub fn message(title: &str, text: &str) -> String {
    format!("<h1>{}</h1>\n<p>{}</p>\n<p><a href=\"/console\">Back to the overview</a></p>", esc(title), esc(text))
}

// ------------------------------------------------------------------ overview

/// What the overview shows.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    pub reader_connected: bool,
    pub reader_error: Option<String>,
    /// The reader's binlog position.
    pub position: String,
    pub lag_seconds: i64,
    /// Bytes of binlog the source has written past the reader's position (None: the source did not say).
    pub lag_bytes: Option<u64>,
    /// The last hour, a minute each, oldest first.
    pub minutes: Vec<Minute>,
    pub pending: u64,
    pub waiting: u64,
    pub failed: u64,
    pub webhooks_active: u64,
    pub webhooks_inactive: u64,
    /// This instance holds the lock (it is the one serving this page while active).
    pub active: bool,
    pub lock_name: String,
    pub lock_session: Option<u32>,
    /// Other instances waiting for the lock: their client host and connection id on the state server.
    pub standbys: Vec<(u64, String)>,
    /// Why the standbys could not be listed, if they could not.
    pub standbys_error: Option<String>,
}

/// The overview page's content: a live region around [`overview_live`].
pub fn overview(o: &Overview) -> String {
    format!(
        "<h1>Overview</h1>\n<div id=\"overview-live\" data-live=\"/console/live/overview\" data-every=\"3000\">\n{}</div>\n",
        overview_live(o)
    )
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 10 << 20 => format!("{} MiB", thousands(n >> 20)),
        n if n >= 10 << 10 => format!("{} KiB", thousands(n >> 10)),
        n => format!("{} bytes", thousands(n)),
    }
}

fn per_second(per_minute: u64) -> String {
    format!("{:.1}", per_minute as f64 / 60.0)
}

/// The overview's live part (what `/console/live/overview` answers).
pub fn overview_live(o: &Overview) -> String {
    let mut out = String::new();
    let reader = if o.reader_connected {
        "<span class=\"pill ok\">connected</span>".to_string()
    } else {
        format!(
            "<span class=\"pill bad\">not connected</span>{}",
            o.reader_error.as_deref().map(|e| format!(" <span class=\"error\">{}</span>", esc(e))).unwrap_or_default()
        )
    };
    let lag_bytes = match o.lag_bytes {
        Some(b) => bytes(b),
        None => "unknown".to_string(),
    };
    let _ = write!(
        out,
        "<section class=\"cards\" aria-label=\"State\">\n\
         <div class=\"card\"><h2>Binlog reader</h2><p>{reader}</p><p class=\"small\">at <code>{}</code></p></div>\n\
         <div class=\"card\"><h2>Behind the source</h2><p class=\"big\"><span id=\"lag-seconds\">{}</span> s</p><p class=\"small\"><span id=\"lag-bytes\">{}</span> of binlog</p></div>\n\
         <div class=\"card\"><h2>Deliveries</h2><dl class=\"counts\">\
         <dt>pending</dt><dd id=\"count-pending\">{}</dd><dt>waiting</dt><dd id=\"count-waiting\">{}</dd><dt>failed</dt><dd id=\"count-failed\">{}</dd></dl></div>\n\
         <div class=\"card\"><h2>Webhooks</h2><dl class=\"counts\"><dt>active</dt><dd>{}</dd><dt>inactive</dt><dd>{}</dd></dl>\
         <p class=\"small\"><a href=\"/console/webhooks\">All webhooks</a></p></div>\n</section>\n",
        esc(&o.position),
        o.lag_seconds,
        esc(&lag_bytes),
        thousands(o.pending),
        thousands(o.waiting),
        thousands(o.failed),
        thousands(o.webhooks_active),
        thousands(o.webhooks_inactive),
    );
    out.push_str(&chart(&o.minutes));
    out.push_str(&instances(o));
    out
}

/// Events and deliveries per second over the last hour: SVG bars and a line, with the figures in text.
fn chart(minutes: &[Minute]) -> String {
    const W: f64 = 600.0;
    const H: f64 = 120.0;
    let peak = minutes.iter().map(|m| m.events.max(m.delivered + m.failed)).max().unwrap_or(0).max(1);
    let step = W / minutes.len().max(1) as f64;
    let y = |v: u64| H - (v as f64 / peak as f64) * (H - 4.0);
    let mut bars = String::new();
    let mut line = String::new();
    for (i, m) in minutes.iter().enumerate() {
        let x = i as f64 * step;
        if m.delivered > 0 {
            let _ = write!(bars, "<rect class=\"bar-ok\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>", x + 1.0, y(m.delivered), step - 2.0, H - y(m.delivered));
        }
        if m.failed > 0 {
            let top = y(m.delivered + m.failed);
            let _ = write!(bars, "<rect class=\"bar-bad\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>", x + 1.0, top, step - 2.0, y(m.delivered) - top);
        }
        let _ = write!(line, "{}{:.1},{:.1}", if i == 0 { "" } else { " " }, x + step / 2.0, y(m.events));
    }
    let last = minutes.last().cloned().unwrap_or_default();
    let events: u64 = minutes.iter().map(|m| m.events).sum();
    let delivered: u64 = minutes.iter().map(|m| m.delivered).sum();
    let failed: u64 = minutes.iter().map(|m| m.failed).sum();
    let summary = format!(
        "This minute: {} events/s, {} deliveries/s. Last hour: {} events, {} attempts delivered, {} failed.",
        per_second(last.events),
        per_second(last.delivered),
        thousands(events),
        thousands(delivered),
        thousands(failed)
    );
    format!(
        "<section class=\"card chart\" aria-labelledby=\"chart-title\">\n<h2 id=\"chart-title\">Events and deliveries per second, last hour</h2>\n\
         <svg viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\" role=\"img\" aria-labelledby=\"chart-title chart-summary\">\
         <line class=\"axis\" x1=\"0\" y1=\"{H}\" x2=\"{W}\" y2=\"{H}\"/>{bars}<polyline class=\"line-events\" points=\"{line}\"/></svg>\n\
         <p class=\"legend\"><span class=\"key key-events\"></span> events <span class=\"key key-ok\"></span> delivered \
         <span class=\"key key-bad\"></span> failed; top of the chart: {}/s</p>\n<p id=\"chart-summary\" class=\"small\">{summary}</p>\n</section>\n",
        per_second(peak)
    )
}

fn instances(o: &Overview) -> String {
    let this = if o.active {
        format!(
            "<p><span class=\"pill ok\">active</span> this instance holds the lock <code>{}</code>{}.</p>",
            esc(&o.lock_name),
            o.lock_session.map(|s| format!(" (connection {s} on the state server)")).unwrap_or_default()
        )
    } else {
        "<p><span class=\"pill bad\">not active</span> this instance is taking the lock again after its connection broke.</p>".to_string()
    };
    let standbys = match (&o.standbys_error, o.standbys.as_slice()) {
        (Some(e), _) => format!("<p class=\"small\">Standing-by instances could not be listed: {}</p>", esc(e)),
        (None, []) => "<p>No other instance is standing by.</p>".to_string(),
        (None, list) => {
            let items: String = list
                .iter()
                .map(|(id, host)| format!("<li>from <code>{}</code>, connection {id}</li>", esc(host)))
                .collect();
            format!("<p>{} standing by, waiting for the lock:</p><ul>{items}</ul>", list.len())
        }
    };
    format!("<section class=\"card\" aria-labelledby=\"instances-title\">\n<h2 id=\"instances-title\">Instances</h2>\n{this}\n{standbys}\n</section>\n")
}

// ------------------------------------------------------------------ webhooks

/// How a webhook is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Its last attempt succeeded.
    Healthy,
    /// No attempt yet.
    Unused,
    /// Failing since then, without a success in between.
    Failing { since: String },
    /// Inactive: `failing_since` when it was failing as it was disabled.
    Disabled { failing_since: Option<String> },
}

impl Health {
    pub fn of(view: &WebhookView) -> Health {
        match (view.is_active, &view.failing_since) {
            (false, since) => Health::Disabled { failing_since: since.clone() },
            (true, Some(since)) => Health::Failing { since: since.clone() },
            (true, None) if view.last_triggered_at.is_none() => Health::Unused,
            (true, None) => Health::Healthy,
        }
    }
}

/// A webhook with what the console shows beside it.
#[derive(Debug, Clone)]
pub struct WebhookRow {
    pub view: WebhookView,
    /// The ordering in force, and whether it is `[delivery] ordering`'s.
    pub ordering: Ordering,
    pub ordering_is_default: bool,
    /// Attempts in the last hour: (delivered, failed).
    pub hour: (u64, u64),
    pub pending: u64,
    pub waiting: u64,
    pub failed: u64,
    /// Its latest failed attempt, when it is failing or disabled.
    pub last_failure: Option<LastFailure>,
}

fn health_html(row: &WebhookRow, long: bool) -> String {
    let failure = || {
        row.last_failure
            .as_ref()
            .map(|f| {
                let status = f.response_status.map(|s| format!("HTTP {s}")).unwrap_or_else(|| "no answer".into());
                let error = f.error.as_deref().map(|e| format!(": {}", esc(e))).unwrap_or_default();
                format!("<span class=\"error\">last error ({}){error}</span>", esc(&status))
            })
            .unwrap_or_default()
    };
    match Health::of(&row.view) {
        Health::Healthy => "<span class=\"pill ok\">healthy</span>".to_string(),
        Health::Unused => "<span class=\"pill\">no delivery yet</span>".to_string(),
        Health::Failing { since } => format!(
            "<span class=\"pill bad\">failing</span> since {} ({} failed in a row){}",
            time(&since),
            row.view.failed_attempts,
            if long { format!("<br>{}", failure()) } else { format!(" {}", failure()) }
        ),
        Health::Disabled { failing_since: Some(since) } => format!(
            "<span class=\"pill off\">disabled</span> while failing since {} ({} failed attempts in a row: rowhook disables a webhook \
             after <code>[delivery] auto_disable_after</code> of them, or at a 410 Gone){}",
            time(&since),
            row.view.failed_attempts,
            if long { format!("<br>{}", failure()) } else { format!(" {}", failure()) }
        ),
        Health::Disabled { failing_since: None } => {
            "<span class=\"pill off\">disabled</span> by an operator (the API, the console or SQL)".to_string()
        }
    }
}

fn success_rate((delivered, failed): (u64, u64)) -> String {
    let all = delivered + failed;
    if all == 0 {
        return "no attempts in the last hour".to_string();
    }
    format!("{}% of {} attempts in the last hour", delivered * 100 / all, thousands(all))
}

/// The webhook list, and the registration form for admins.
pub fn webhooks(rows: &[WebhookRow], event_types: &[String], default_ordering: Ordering, can_change: bool) -> String {
    let mut out = String::from("<h1>Webhooks</h1>\n");
    if rows.is_empty() {
        out.push_str("<p>No webhook is registered yet.</p>\n");
    } else {
        out.push_str(
            "<div class=\"table-wrap\"><table class=\"webhooks\">\n<caption class=\"visually-hidden\">Webhooks</caption>\n\
             <thead><tr><th scope=\"col\">Webhook</th><th scope=\"col\">Health</th><th scope=\"col\">Last delivery</th>\
             <th scope=\"col\">Success</th><th scope=\"col\">Queue</th></tr></thead>\n<tbody>\n",
        );
        for row in rows {
            let v = &row.view;
            let _ = writeln!(
                out,
                "<tr id=\"webhook-{id}\"><td><a href=\"/console/webhooks/{id}\">#{id}</a> <span class=\"url\">{url}</span>\
                 <div class=\"small\">{events}</div></td><td>{health}</td><td>{last}</td><td>{rate}</td>\
                 <td>{pending} pending, {waiting} waiting, {failed} failed</td></tr>",
                id = v.id,
                url = esc(&v.url),
                events = esc(&v.events.join(", ")),
                health = health_html(row, false),
                last = opt_time(v.last_triggered_at.as_deref(), "never"),
                rate = success_rate(row.hour),
                pending = thousands(row.pending.saturating_sub(row.waiting)),
                waiting = thousands(row.waiting),
                failed = thousands(row.failed),
            );
        }
        out.push_str("</tbody></table></div>\n");
    }
    if can_change {
        out.push_str(&webhook_form(None, event_types, default_ordering));
    }
    out
}

/// The form that registers a webhook (`existing` None) or edits one.
fn webhook_form(existing: Option<&WebhookRow>, event_types: &[String], default_ordering: Ordering) -> String {
    let (method, path, done, title, submit, prefix) = match existing {
        None => ("POST", "/api/webhooks".to_string(), "created", "Register a webhook", "Register", "new"),
        Some(row) => ("PUT", format!("/api/webhooks/{}", row.view.id), "reload", "Edit", "Save", "edit"),
    };
    let subscribed = |t: &str| existing.is_some_and(|row| row.view.events.iter().any(|e| e == t));
    let mut boxes = String::new();
    for (i, t) in event_types.iter().map(String::as_str).chain(std::iter::once("*")).enumerate() {
        let label = if t == "*" { "every event type (*)".to_string() } else { esc(t) };
        let _ = write!(
            boxes,
            "<label class=\"check\" for=\"{prefix}-event-{i}\"><input type=\"checkbox\" id=\"{prefix}-event-{i}\" name=\"events\" value=\"{}\"{}> {label}</label>",
            esc(t),
            if subscribed(t) { " checked" } else { "" }
        );
    }
    let own = existing.and_then(|row| if row.ordering_is_default { None } else { Some(row.ordering) });
    let option = |value: &str, label: String, selected: bool| {
        format!("<option value=\"{value}\"{}>{label}</option>", if selected { " selected" } else { "" })
    };
    let mut orderings = option("", format!("the default ({})", default_ordering.as_str()), own.is_none());
    for o in [Ordering::Group, Ordering::Webhook, Ordering::None] {
        orderings.push_str(&option(o.as_str(), o.as_str().to_string(), own == Some(o)));
    }
    let url = existing.map(|row| esc(&row.view.url)).unwrap_or_default();
    let secret = if existing.is_none() {
        format!(
            "<label for=\"{prefix}-secret\">Secret (optional)</label>\
             <input id=\"{prefix}-secret\" name=\"secret\" type=\"text\" minlength=\"16\" autocomplete=\"off\" spellcheck=\"false\" \
             aria-describedby=\"{prefix}-secret-hint\"><p class=\"hint\" id=\"{prefix}-secret-hint\">At least 16 characters; \
             empty: rowhook makes a whsec_ secret and shows it once.</p>\
             <label class=\"check\" for=\"{prefix}-active\"><input type=\"checkbox\" id=\"{prefix}-active\" name=\"is_active\" checked> active</label>"
        )
    } else {
        String::new()
    };
    format!(
        "<section class=\"card form\" aria-labelledby=\"{prefix}-title\">\n<h2 id=\"{prefix}-title\">{title}</h2>\n\
         <form data-api-form data-api=\"{method}\" data-path=\"{path}\" data-done=\"{done}\" id=\"{prefix}-form\">\n\
         <label for=\"{prefix}-url\">URL</label><input id=\"{prefix}-url\" name=\"url\" type=\"url\" required maxlength=\"500\" value=\"{url}\" \
         placeholder=\"https://example.com/hooks\" spellcheck=\"false\">\n\
         <fieldset><legend>Events</legend>{boxes}</fieldset>\n\
         <label for=\"{prefix}-ordering\">Ordering</label><select id=\"{prefix}-ordering\" name=\"ordering\">{orderings}</select>\n\
         {secret}\n<p class=\"form-error\" role=\"alert\"></p>\n<button type=\"submit\">{submit}</button>\n</form>\n</section>\n"
    )
}

/// What the deliveries list shows: a page of a webhook's history under its filters.
#[derive(Debug, Clone, Default)]
pub struct Deliveries {
    pub webhook_id: u64,
    pub list: Vec<DeliveryView>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
    /// The filters as given (shown back in the form and kept in links).
    pub status: String,
    pub event_type: String,
    pub since: String,
    pub until: String,
    /// Why a filter was refused, if one was.
    pub filter_error: Option<String>,
    pub can_change: bool,
}

impl Deliveries {
    /// The query string of these filters at `page`.
    pub fn query(&self, page: u64) -> String {
        let mut q = format!("page={page}");
        for (key, value) in [("status", &self.status), ("event_type", &self.event_type), ("since", &self.since), ("until", &self.until)] {
            if !value.is_empty() {
                let _ = write!(q, "&{key}={}", query_escape(value));
            }
        }
        q
    }
}

/// One webhook: its state, actions, settings, and its deliveries (live).
pub fn webhook(row: &WebhookRow, deliveries: &Deliveries, backfills: &Backfills, event_types: &[String], default_ordering: Ordering) -> String {
    let v = &row.view;
    let can_change = deliveries.can_change;
    let mut out = format!(
        "<p class=\"crumbs\"><a href=\"/console/webhooks\">Webhooks</a> / #{}</p>\n<h1>Webhook #{} <span class=\"url\">{}</span></h1>\n",
        v.id,
        v.id,
        esc(&v.url)
    );
    let _ = write!(
        out,
        "<section class=\"card\" aria-label=\"State\">\n<dl class=\"facts\">\
         <dt>Health</dt><dd id=\"health\">{}</dd><dt>Events</dt><dd>{}</dd>\
         <dt>Ordering</dt><dd>{}{}</dd><dt>Last delivery</dt><dd>{}</dd><dt>Success</dt><dd>{}</dd>\
         <dt>Registered</dt><dd>{}</dd></dl>\n",
        health_html(row, true),
        esc(&v.events.join(", ")),
        row.ordering.as_str(),
        if row.ordering_is_default { " (the default)" } else { "" },
        opt_time(v.last_triggered_at.as_deref(), "never"),
        success_rate(row.hour),
        opt_time(v.created_at.as_deref(), "unknown"),
    );
    if can_change {
        let id = v.id;
        let toggle = if v.is_active {
            format!("<button type=\"button\" id=\"disable\" data-api=\"PUT\" data-path=\"/api/webhooks/{id}\" data-body='{{\"is_active\":false}}' data-done=\"reload\">Disable</button>")
        } else {
            format!("<button type=\"button\" id=\"enable\" data-api=\"PUT\" data-path=\"/api/webhooks/{id}\" data-body='{{\"is_active\":true}}' data-done=\"reload\">Enable</button>")
        };
        let _ = writeln!(
            out,
            "<div class=\"actions\" role=\"group\" aria-label=\"Actions\">{toggle}\
             <button type=\"button\" id=\"send-test\" data-api=\"POST\" data-path=\"/api/webhooks/{id}/test\" data-done=\"reload-live\"{}>Send a test event</button>\
             <button type=\"button\" id=\"rotate\" data-api=\"POST\" data-path=\"/api/webhooks/{id}/rotate-secret\" data-done=\"secret\" \
             data-confirm=\"Rotate the signing secret of webhook #{id}? The old one keeps signing for the rotation overlap.\">Rotate the secret</button>\
             <button type=\"button\" id=\"delete\" class=\"danger\" data-api=\"DELETE\" data-path=\"/api/webhooks/{id}\" data-done=\"goto:/console/webhooks\" \
             data-confirm=\"Delete webhook #{id} and its whole delivery history? This cannot be undone.\">Delete</button></div>",
            if v.is_active { "" } else { " disabled title=\"activate it first\"" },
        );
    }
    out.push_str("</section>\n");
    out.push_str(&deliveries_section(deliveries, event_types));
    out.push_str(&replay_backfill_section(backfills));
    if can_change {
        out.push_str(&webhook_form(Some(row), event_types, default_ordering));
    }
    out
}

/// What the replay and backfill section shows of a webhook.
#[derive(Debug, Clone, Default)]
pub struct Backfills {
    pub webhook_id: u64,
    /// Its backfills, newest first.
    pub list: Vec<BackfillView>,
    /// The event types it may backfill: the rules' types it subscribes to.
    pub event_types: Vec<String>,
    /// Backfills need the state database on the source server (None: why not).
    pub unavailable: Option<String>,
    /// The replay from the binlog running (one at a time, for any webhook), or the last one.
    pub binlog_replay: Option<ReplayProgress>,
    pub is_active: bool,
    pub can_change: bool,
}

/// Replay (from the history or the binlog) and backfill: the forms, and the
/// backfills with their progress (live).
fn replay_backfill_section(b: &Backfills) -> String {
    let id = b.webhook_id;
    let mut out = format!(
        "<section class=\"card\" id=\"replay-backfill\" aria-labelledby=\"replay-title\">\n<h2 id=\"replay-title\">Replay and backfill</h2>\n\
         <div id=\"backfills-live\" data-live=\"/console/live/webhooks/{id}/backfills\" data-every=\"2000\">\n{}</div>\n",
        backfills_live(b)
    );
    if !b.can_change {
        out.push_str("</section>\n");
        return out;
    }
    if !b.is_active {
        out.push_str(
            "<p class=\"small\">Enable the webhook to replay or backfill.</p>\n</section>\n",
        );
        return out;
    }
    match &b.unavailable {
        Some(why) => {
            let _ = writeln!(out, "<p class=\"small\">Backfill: {}</p>", esc(why));
        }
        None if b.event_types.is_empty() => out.push_str("<p class=\"small\">Backfill: the webhook subscribes to no event type a rule makes.</p>\n"),
        None => {
            let types: String = b.event_types.iter().map(|t| format!("<option value=\"{0}\">{0}</option>", esc(t))).collect();
            let _ = writeln!(
                out,
                "<form id=\"backfill-form\" class=\"filters\" data-api-form data-fields data-api=\"POST\" data-path=\"/api/webhooks/{id}/backfills\" \
                 data-done=\"reload-live\" data-saying=\"Backfill queued\">\n<h3 class=\"form-title\">Backfill: send the rows that exist now</h3>\n\
                 <div class=\"filter\"><label for=\"bf-type\">Event type</label><select id=\"bf-type\" name=\"event_type\">{types}</select></div>\n\
                 <div class=\"filter\"><label for=\"bf-limit\">At most (rows, optional)</label><input id=\"bf-limit\" name=\"limit\" type=\"number\" min=\"1\" step=\"1\"></div>\n\
                 <div class=\"filter wide\"><label for=\"bf-filter\">Filter (JSON, optional)</label><input id=\"bf-filter\" name=\"filter\" data-json \
                 placeholder='[{{\"column\": \"status\", \"equals\": \"open\"}}]' aria-describedby=\"bf-filter-help\"></div>\n\
                 <button type=\"submit\">Start the backfill</button>\n\
                 <p id=\"bf-filter-help\" class=\"small\">Rows in key order, each as if it had just been inserted, with its usual event id; \
                 live events keep flowing. A filter is a list of conditions on the table's columns (docs/backfill.md).</p>\n\
                 <p class=\"form-error\" role=\"alert\"></p>\n</form>"
            );
        }
    }
    let _ = writeln!(
        out,
        "<form id=\"replay-history-form\" class=\"filters\" data-api-form data-fields data-api=\"POST\" data-path=\"/api/webhooks/{id}/replay\" \
         data-done=\"reload-live\" data-saying=\"Replay queued\">\n<h3 class=\"form-title\">Replay from the history: send stored deliveries again</h3>\n\
         <div class=\"filter\"><label for=\"rh-since\">From (UTC)</label><input id=\"rh-since\" name=\"since\" type=\"datetime-local\" required></div>\n\
         <div class=\"filter\"><label for=\"rh-until\">Until (UTC, optional)</label><input id=\"rh-until\" name=\"until\" type=\"datetime-local\"></div>\n\
         <div class=\"filter\"><label for=\"rh-status\">Which</label><select id=\"rh-status\" name=\"status\">\
         <option value=\"failed\">failed only</option><option value=\"all\">delivered and failed</option></select></div>\n\
         <button type=\"submit\">Replay</button>\n<p class=\"form-error\" role=\"alert\"></p>\n</form>"
    );
    let busy = if b.binlog_replay.as_ref().is_some_and(|r| r.state == "running") {
        " disabled title=\"a replay from the binlog is running\""
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "<form id=\"replay-binlog-form\" class=\"filters\" data-api-form data-fields data-api=\"POST\" data-path=\"/api/webhooks/{id}/replay\" \
         data-done=\"reload-live\" data-saying=\"Replay from the binlog started\">\n\
         <h3 class=\"form-title\">Replay from the binlog: events the history no longer holds</h3>\n\
         <input type=\"hidden\" name=\"from\" value=\"binlog\">\n\
         <div class=\"filter\"><label for=\"rb-since\">From (UTC)</label><input id=\"rb-since\" name=\"since\" type=\"datetime-local\" required></div>\n\
         <button type=\"submit\"{busy}>Replay from the binlog</button>\n\
         <p class=\"small\">Reads what the server still has from that time on and sends this webhook's events again; 409 when that binlog is gone.</p>\n\
         <p class=\"form-error\" role=\"alert\"></p>\n</form>\n</section>"
    );
    out
}

/// The replay from the binlog: this webhook's with its progress, another's only while it runs.
fn binlog_replay(r: &ReplayProgress, webhook_id: u64) -> String {
    let running = r.state == "running";
    if r.webhook_id != webhook_id {
        return if running {
            format!("<p id=\"binlog-replay\" class=\"small\">A replay from the binlog for webhook #{} is running; one runs at a time.</p>\n", r.webhook_id)
        } else {
            String::new()
        };
    }
    let class = match r.state {
        "done" => "ok",
        "failed" => "bad",
        _ => "",
    };
    let when = |at: i64| time(&crate::events::envelope::rfc3339(at.clamp(0, i64::from(u32::MAX)) as u32));
    let ended = r.finished_at.map(|at| format!(", ended {}", when(at))).unwrap_or_default();
    let error = r.error.as_deref().map(|e| format!(" <span class=\"error\">{}</span>", esc(&truncate(e, 200)))).unwrap_or_default();
    format!(
        "<p id=\"binlog-replay\" data-state=\"{state}\">Replay from the binlog <span class=\"pill {class}\">{state}</span>{error}: \
         {queued} deliveries queued, at <code>{position}</code>{end}; started {started}{ended}.</p>\n",
        state = esc(r.state),
        queued = thousands(r.queued),
        position = esc(&r.position),
        end = if r.end.is_empty() { String::new() } else { format!(" of <code>{}</code>", esc(&r.end)) },
        started = when(r.started_at),
    )
}

/// The backfills and their progress (what the live region polls).
pub fn backfills_live(b: &Backfills) -> String {
    let mut out = String::new();
    if let Some(replay) = &b.binlog_replay {
        out.push_str(&binlog_replay(replay, b.webhook_id));
    }
    if b.list.is_empty() {
        out.push_str("<p class=\"empty\">No backfill yet.</p>\n");
        return out;
    }
    out.push_str(
        "<div class=\"table-wrap\"><table class=\"backfills\">\n<caption class=\"visually-hidden\">Backfills, newest first</caption>\n\
         <thead><tr><th scope=\"col\">Backfill</th><th scope=\"col\">Event type</th><th scope=\"col\">State</th>\
         <th scope=\"col\">Progress</th><th scope=\"col\">Started</th><th scope=\"col\">Ended</th>",
    );
    out.push_str(if b.can_change { "<th scope=\"col\"><span class=\"visually-hidden\">Action</span></th></tr></thead>\n<tbody>\n" } else { "</tr></thead>\n<tbody>\n" });
    for bf in &b.list {
        let state_class = match bf.state.as_str() {
            "done" => "ok",
            "failed" => "bad",
            "cancelled" => "off",
            _ => "",
        };
        let progress = match bf.rows_estimate {
            Some(estimate) if estimate > 0 => format!(
                "<progress max=\"{estimate}\" value=\"{read}\" aria-label=\"Backfill #{id}: {read} of {estimate} rows read\"></progress> \
                 {read_text} of {estimate_text} read",
                id = bf.id,
                read = bf.rows_read.min(estimate),
                read_text = thousands(bf.rows_read),
                estimate_text = thousands(estimate),
            ),
            _ => format!("{} read", thousands(bf.rows_read)),
        };
        let rate = bf
            .rows_per_second
            .filter(|r| *r > 0.0)
            .map(|r| format!(", {} rows/s", thousands(r.round() as u64)))
            .unwrap_or_default();
        let filter = bf
            .filter
            .as_ref()
            .map(|f| format!("<div class=\"small\">filter {}</div>", esc(&f.to_string())))
            .unwrap_or_default();
        let limit = bf
            .limit
            .map(|l| format!("<div class=\"small\">at most {}</div>", thousands(l)))
            .unwrap_or_default();
        let error = bf
            .error
            .as_deref()
            .map(|e| format!("<div class=\"error\">{}</div>", esc(&truncate(e, 200))))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr id=\"backfill-{id}\" data-state=\"{state}\"><td>#{id}</td><td>{etype}{filter}{limit}</td>\
             <td><span class=\"pill {state_class}\">{state}</span>{error}</td>\
             <td>{progress}<div class=\"small\">{sent} sent{rate}</div></td><td>{started}</td><td>{ended}</td>",
            id = bf.id,
            state = esc(&bf.state),
            etype = esc(&bf.event_type),
            sent = thousands(bf.rows_sent),
            started = opt_time(bf.started_at.as_deref(), "not yet"),
            ended = opt_time(bf.finished_at.as_deref(), ""),
        );
        if b.can_change {
            if matches!(bf.state.as_str(), "queued" | "running") {
                let _ = write!(
                    out,
                    "<td><button type=\"button\" id=\"cancel-backfill-{id}\" data-api=\"DELETE\" data-path=\"/api/webhooks/{wid}/backfills/{id}\" \
                     data-done=\"reload-live\" data-confirm=\"Cancel backfill #{id}? What it has queued is still delivered.\" \
                     aria-label=\"Cancel backfill #{id}\">Cancel</button></td>",
                    id = bf.id,
                    wid = b.webhook_id,
                );
            } else {
                out.push_str("<td></td>");
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    out
}

fn deliveries_section(d: &Deliveries, event_types: &[String]) -> String {
    let status_option = |value: &str, label: &str| {
        format!("<option value=\"{value}\"{}>{label}</option>", if d.status == value { " selected" } else { "" })
    };
    let statuses: String = [("", "any"), ("pending", "pending"), ("waiting", "waiting"), ("delivered", "delivered"), ("failed", "failed")]
        .iter()
        .map(|(v, l)| status_option(v, l))
        .collect();
    let mut types = format!("<option value=\"\"{}>any</option>", if d.event_type.is_empty() { " selected" } else { "" });
    for t in event_types.iter().map(String::as_str).chain(std::iter::once("webhook.test")) {
        let _ = write!(types, "<option value=\"{}\"{}>{}</option>", esc(t), if d.event_type == t { " selected" } else { "" }, esc(t));
    }
    let error = d.filter_error.as_deref().map(|e| format!("<p class=\"form-error\" role=\"alert\">{}</p>", esc(e))).unwrap_or_default();
    format!(
        "<section class=\"card\" aria-labelledby=\"deliveries-title\">\n<h2 id=\"deliveries-title\">Deliveries</h2>\n\
         <form method=\"get\" class=\"filters\" action=\"/console/webhooks/{id}\">\n\
         <div class=\"filter\"><label for=\"f-status\">Status</label><select id=\"f-status\" name=\"status\">{statuses}</select></div>\n\
         <div class=\"filter\"><label for=\"f-type\">Event type</label><select id=\"f-type\" name=\"event_type\">{types}</select></div>\n\
         <div class=\"filter\"><label for=\"f-since\">From (UTC)</label><input id=\"f-since\" name=\"since\" type=\"datetime-local\" value=\"{since}\"></div>\n\
         <div class=\"filter\"><label for=\"f-until\">Until (UTC)</label><input id=\"f-until\" name=\"until\" type=\"datetime-local\" value=\"{until}\"></div>\n\
         <button type=\"submit\">Filter</button>\n</form>\n{error}\
         <div id=\"deliveries-live\" data-live=\"/console/live/webhooks/{id}/deliveries?{query}\" data-every=\"2000\">\n{live}</div>\n</section>\n",
        id = d.webhook_id,
        since = esc(&d.since),
        until = esc(&d.until),
        query = esc(&d.query(d.page)),
        live = deliveries_live(d),
    )
}

/// The deliveries table and its pages (what the live region polls).
pub fn deliveries_live(d: &Deliveries) -> String {
    if d.list.is_empty() {
        return "<p class=\"empty\">No delivery matches.</p>\n".to_string();
    }
    let mut out = String::from(
        "<div class=\"table-wrap\"><table class=\"deliveries\">\n<caption class=\"visually-hidden\">Deliveries, newest first</caption>\n\
         <thead><tr><th scope=\"col\">Delivery</th><th scope=\"col\">Event</th><th scope=\"col\">Status</th><th scope=\"col\">Attempts</th>\
         <th scope=\"col\">Last answer</th><th scope=\"col\">Created</th>",
    );
    out.push_str(if d.can_change { "<th scope=\"col\"><span class=\"visually-hidden\">Action</span></th></tr></thead>\n<tbody>\n" } else { "</tr></thead>\n<tbody>\n" });
    for delivery in &d.list {
        let answer = match (delivery.response_status, delivery.last_error.as_deref()) {
            (Some(s), Some(e)) => format!("HTTP {s}: <span class=\"error\">{}</span>", esc(&truncate(e, 160))),
            (Some(s), None) => format!("HTTP {s}"),
            (None, Some(e)) => format!("<span class=\"error\">{}</span>", esc(&truncate(e, 160))),
            (None, None) => "none yet".to_string(),
        };
        let waiting = delivery.waiting_for.map(|w| format!(" <span class=\"small\">behind #{w}</span>")).unwrap_or_default();
        let _ = write!(
            out,
            "<tr id=\"delivery-{id}\" data-status=\"{status}\"><td><a href=\"/console/webhooks/{wid}/deliveries/{id}\">#{id}</a></td>\
             <td>{etype}<div class=\"small\">{eid}</div></td><td><span class=\"pill status-{status}\">{status}</span>{waiting}</td>\
             <td>{attempts}</td><td>{answer}</td><td>{created}</td>",
            id = delivery.id,
            wid = d.webhook_id,
            status = esc(&delivery.status),
            etype = esc(&delivery.event_type),
            eid = esc(delivery.event_id.as_deref().unwrap_or("")),
            attempts = delivery.attempts,
            created = opt_time(delivery.created_at.as_deref(), ""),
        );
        if d.can_change {
            let _ = write!(
                out,
                "<td><button type=\"button\" id=\"retry-{id}\" data-api=\"POST\" data-path=\"/api/webhooks/deliveries/{id}/retry\" data-done=\"reload-live\" \
                 aria-label=\"Retry delivery #{id}\">Retry</button></td>",
                id = delivery.id
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    let pages = d.total.div_ceil(d.per_page.max(1)).max(1);
    let _ = write!(out, "<nav class=\"pages\" aria-label=\"Pages\"><span>{} deliveries, page {} of {pages}</span>", thousands(d.total), d.page);
    if d.page > 1 {
        let _ = write!(out, " <a href=\"/console/webhooks/{}?{}\" rel=\"prev\">Newer</a>", d.webhook_id, esc(&d.query(d.page - 1)));
    }
    if d.page < pages {
        let _ = write!(out, " <a href=\"/console/webhooks/{}?{}\" rel=\"next\">Older</a>", d.webhook_id, esc(&d.query(d.page + 1)));
    }
    out.push_str("</nav>\n");
    out
}

fn truncate(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// One delivery: what was sent (body, headers) and every attempt with its answer.
pub fn delivery(
    webhook: &WebhookView,
    d: &DeliveryView,
    attempts: &[AttemptView],
    headers: &[(&'static str, String)],
    can_change: bool,
) -> String {
    let out = format!(
        "<p class=\"crumbs\"><a href=\"/console/webhooks\">Webhooks</a> / <a href=\"/console/webhooks/{wid}\">#{wid}</a> / delivery #{id}</p>\n\
         <h1>Delivery #{id} <span class=\"pill status-{status}\">{status}</span></h1>\n\
         <div id=\"delivery-live\" data-live=\"/console/live/webhooks/{wid}/deliveries/{id}\" data-every=\"2000\">\n{live}</div>\n",
        wid = webhook.id,
        id = d.id,
        status = esc(&d.status),
        live = delivery_live(webhook, d, attempts, headers, can_change),
    );
    out
}

/// An attempt as listed: number, status, duration, error, response body, time.
type AttemptRow<'a> = (String, Option<i64>, Option<u64>, Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// The live part of a delivery's page.
pub fn delivery_live(
    webhook: &WebhookView,
    d: &DeliveryView,
    attempts: &[AttemptView],
    headers: &[(&'static str, String)],
    can_change: bool,
) -> String {
    let mut out = String::new();
    let waiting = d.waiting_for.map(|w| format!("<dt>Waiting for</dt><dd>delivery #{w} of its group</dd>")).unwrap_or_default();
    let _ = write!(
        out,
        "<section class=\"card\" aria-label=\"Summary\"><dl class=\"facts\"><dt>Status</dt><dd id=\"delivery-status\"><span class=\"pill status-{status}\">{status}</span></dd>\
         {waiting}<dt>Event</dt><dd>{etype} <code>{eid}</code></dd><dt>Group</dt><dd>{group}</dd><dt>Attempts</dt><dd>{attempts}</dd>\
         <dt>Created</dt><dd>{created}</dd><dt>Next attempt</dt><dd>{next}</dd><dt>Delivered</dt><dd>{delivered}</dd></dl>",
        status = esc(&d.status),
        etype = esc(&d.event_type),
        eid = esc(d.event_id.as_deref().unwrap_or("")),
        group = d.group_key.as_deref().map(|g| format!("<code>{}</code>", esc(g))).unwrap_or_else(|| "none (on its own)".into()),
        attempts = d.attempts,
        created = opt_time(d.created_at.as_deref(), ""),
        next = opt_time(d.next_attempt_at.as_deref(), "none"),
        delivered = opt_time(d.delivered_at.as_deref(), "not yet"),
    );
    if can_change {
        let _ = write!(
            out,
            "<div class=\"actions\"><button type=\"button\" id=\"retry\" data-api=\"POST\" data-path=\"/api/webhooks/deliveries/{}/retry\" data-done=\"reload-live\"{}>Retry now</button></div>",
            d.id,
            if webhook.is_active { "" } else { " disabled title=\"the webhook is disabled: enable it first\"" }
        );
    }
    out.push_str("</section>\n");

    // Attempts: the failed ones kept one by one, and the last one from the delivery's row.
    out.push_str("<section class=\"card\" aria-labelledby=\"attempts-title\"><h2 id=\"attempts-title\">Attempts</h2>\n");
    let mut rows: Vec<AttemptRow<'_>> = attempts
        .iter()
        .map(|a| (a.attempt.to_string(), a.response_status, a.duration_ms, a.error.as_deref(), a.response_body.as_deref(), a.attempted_at.as_deref()))
        .collect();
    let last_kept = attempts.last().map(|a| a.attempt).unwrap_or(0);
    if d.attempts > last_kept && d.last_attempt_at.is_some() {
        rows.push((
            d.attempts.to_string(),
            d.response_status,
            d.duration_ms,
            d.last_error.as_deref(),
            d.response_body.as_deref(),
            d.last_attempt_at.as_deref(),
        ));
    }
    if rows.is_empty() {
        out.push_str("<p class=\"empty\">No attempt yet.</p>\n");
    }
    for (number, status, duration, error, body, at) in rows {
        let _ = writeln!(
            out,
            "<article class=\"attempt\"><h3>Attempt {number}</h3><dl class=\"facts\"><dt>At</dt><dd>{}</dd><dt>Answer</dt><dd>{}</dd>\
             <dt>Duration</dt><dd>{}</dd>{}</dl>{}</article>",
            opt_time(at, "unknown"),
            status.map(|s| format!("HTTP {s}")).unwrap_or_else(|| "none".into()),
            duration.map(|ms| format!("{ms} ms")).unwrap_or_else(|| "unknown".into()),
            error.map(|e| format!("<dt>Error</dt><dd class=\"error\">{}</dd>", esc(e))).unwrap_or_default(),
            body.filter(|b| !b.is_empty())
                .map(|b| format!("<p class=\"label\">Response body (as stored, at most <code>max_response_bytes</code>)</p><pre class=\"response\">{}</pre>", esc(b)))
                .unwrap_or_default(),
        );
    }
    out.push_str("</section>\n");

    // What was sent.
    let body = serde_json::to_string_pretty(&d.payload).unwrap_or_default();
    let header_rows: String = std::iter::once(("user-agent", crate::delivery::sender::USER_AGENT.to_string()))
        .chain(headers.iter().cloned())
        .map(|(n, v)| format!("<tr><th scope=\"row\"><code>{}</code></th><td><code>{}</code></td></tr>", esc(n), esc(&v)))
        .collect();
    let _ = write!(
        out,
        "<section class=\"card\" aria-labelledby=\"sent-title\"><h2 id=\"sent-title\">Request</h2>\n\
         <p class=\"small\">POST to <span class=\"url\">{}</span>, signed with the webhook's secret (never shown here); \
         <code>webhook-timestamp</code> is that of the last attempt.</p>\n\
         <div class=\"table-wrap\"><table class=\"headers\"><caption>Headers</caption><tbody>{header_rows}</tbody></table></div>\n\
         <p class=\"label\">Body (as JSON, indented here)</p><pre class=\"body\" id=\"delivery-body\">{}</pre>\n</section>\n",
        esc(&webhook.url),
        esc(&body),
    );
    out
}

// ------------------------------------------------------------------ event types

/// The `[[events]]` rules, as the config has them (with `group_by` filled in from primary keys).
pub fn event_types(rules: &[EventRule]) -> String {
    let mut out = String::from(
        "<h1>Event types</h1>\n<p>The <code>[[events]]</code> rules of the config: which row changes become which events. \
         Changing them means changing the config and restarting.</p>\n",
    );
    for (i, rule) in rules.iter().enumerate() {
        let ops: Vec<&str> = rule.operations.iter().map(|o| o.as_str()).collect();
        let conditions: Vec<String> = rule.conditions.iter().map(condition).collect();
        let fields: String = rule
            .fields
            .iter()
            .map(|(name, column)| {
                if name == column {
                    format!("<li><code>{}</code></li>", esc(name))
                } else {
                    format!("<li><code>{}</code> from column <code>{}</code></li>", esc(name), esc(column))
                }
            })
            .collect();
        let group = match rule.group_by.as_deref() {
            None => "the primary key".to_string(),
            Some([]) => "none: each event on its own".to_string(),
            Some(columns) => columns.iter().map(|c| format!("<code>{}</code>", esc(c))).collect::<Vec<_>>().join(", "),
        };
        let changes = match &rule.changes {
            None => String::new(),
            Some(spec) => {
                let columns = spec.columns.as_ref().map(|c| format!("columns {}", esc(&c.join(", ")))).unwrap_or_else(|| "every changed column".into());
                let ignore = if spec.ignore.is_empty() { String::new() } else { format!(", ignoring {}", esc(&spec.ignore.join(", "))) };
                format!("<dt>Changes</dt><dd>{columns}{ignore}</dd>")
            }
        };
        let _ = writeln!(
            out,
            "<section class=\"card rule\" aria-labelledby=\"rule-{n}\"><h2 id=\"rule-{n}\"><code>{etype}</code> <span class=\"small\">rule {n}</span></h2>\
             <dl class=\"facts\"><dt>Table</dt><dd><code>{table}</code></dd><dt>Operations</dt><dd>{ops}</dd>\
             <dt>Conditions</dt><dd>{conditions}</dd><dt>Fields</dt><dd>{fields}</dd>{changes}<dt>Group by</dt><dd>{group}</dd></dl></section>",
            n = i + 1,
            etype = esc(&rule.event_type),
            table = esc(&rule.table),
            ops = esc(&ops.join(", ")),
            conditions = if conditions.is_empty() { "none".to_string() } else { format!("<ul>{}</ul>", conditions.concat()) },
            fields = if fields.is_empty() { "none: <code>data</code> is empty".to_string() } else { format!("<ul>{fields}</ul>") },
        );
    }
    if rules.is_empty() {
        out.push_str("<p>No rule is configured: no event is produced.</p>\n");
    }
    out
}

fn condition(c: &crate::config::Condition) -> String {
    let column = format!("<code>{}</code>", esc(&c.column));
    let value = |v: &serde_json::Value| format!("<code>{}</code>", esc(&v.to_string()));
    let test = if let Some(v) = &c.equals {
        format!("equals {}", value(v))
    } else if let Some(v) = &c.not_equals {
        format!("does not equal {}", value(v))
    } else if let Some(null) = c.is_null {
        if null { "is NULL".to_string() } else { "is not NULL".to_string() }
    } else if let Some(became) = c.became {
        match became {
            crate::config::Became::NotNull => "became non-NULL".to_string(),
            crate::config::Became::Null => "became NULL".to_string(),
        }
    } else if let Some(changed) = c.changed {
        if changed { "changed".to_string() } else { "did not change".to_string() }
    } else {
        "(no test)".to_string()
    };
    format!("<li>{column} {test}</li>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const HOSTILE: &str = "<img src=x onerror=alert(1)>\"'&</textarea><script>alert(2)</script>";

    /// No tag or attribute of the hostile text survives: every `<` of it is escaped.
    fn assert_inert(html: &str) {
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("</textarea>"), "{html}");
        assert!(!html.contains("onerror=alert(1)>"), "an attribute could close: {html}");
    }

    fn view(url: &str) -> WebhookView {
        WebhookView {
            id: 7,
            url: url.to_string(),
            events: vec![HOSTILE.to_string()],
            is_active: true,
            failed_attempts: 3,
            last_triggered_at: Some("2026-11-28T10:04:59Z".into()),
            created_at: Some("2026-11-28T10:00:00Z".into()),
            updated_at: None,
            ordering: None,
            failing_since: Some("2026-11-28T10:01:00Z".into()),
        }
    }

    fn row(url: &str) -> WebhookRow {
        WebhookRow {
            view: view(url),
            ordering: Ordering::Group,
            ordering_is_default: true,
            hour: (3, 1),
            pending: 5,
            waiting: 2,
            failed: 1,
            last_failure: Some(LastFailure { response_status: Some(500), error: Some(HOSTILE.into()), at: None }),
        }
    }

    fn hostile_delivery() -> DeliveryView {
        DeliveryView {
            id: 11,
            webhook_id: 7,
            event_id: Some(HOSTILE.into()),
            event_type: HOSTILE.into(),
            status: HOSTILE.into(),
            attempts: 2,
            response_status: Some(500),
            response_body: Some(format!("<script>window.__pwned=1</script>{HOSTILE}")),
            last_error: Some(HOSTILE.into()),
            duration_ms: Some(12),
            next_attempt_at: None,
            last_attempt_at: Some("2026-11-28T10:05:00.123Z".into()),
            delivered_at: None,
            created_at: Some(HOSTILE.into()),
            group_key: Some(HOSTILE.into()),
            waiting_for: None,
            payload: serde_json::json!({"type": "thread.created", "data": {"subject": HOSTILE}}),
        }
    }

    fn hostile_backfill(state: &str) -> BackfillView {
        BackfillView {
            id: if state == "running" { 3 } else { 2 },
            webhook_id: 7,
            event_type: HOSTILE.into(),
            filter: Some(serde_json::json!([{"column": HOSTILE, "equals": HOSTILE}])),
            limit: Some(1000),
            state: state.into(),
            cursor: None,
            rows_read: 512,
            rows_sent: 500,
            rows_estimate: Some(1000),
            rows_left: Some(488),
            rows_per_second: Some(1234.4),
            error: Some(HOSTILE.into()),
            created_at: None,
            started_at: Some("2026-11-28T10:00:00Z".into()),
            finished_at: None,
        }
    }

    fn replay(webhook_id: u64, state: &'static str) -> ReplayProgress {
        ReplayProgress {
            webhook_id,
            state,
            started_at: 1_796_083_200,
            finished_at: None,
            position: "binlog.000002:1234".into(),
            end: "binlog.000003:4".into(),
            queued: 1500,
            error: None,
        }
    }

    #[test]
    fn backfill_progress_reads_as_rows_of_the_estimate() {
        let b = Backfills { webhook_id: 7, list: vec![hostile_backfill("running")], ..Backfills::default() };
        let html = backfills_live(&b);
        assert!(html.contains("<progress max=\"1000\" value=\"512\""), "{html}");
        assert!(html.contains("512 of 1,000 read") && html.contains("500 sent, 1,234 rows/s"), "{html}");
        let mut b = Backfills { webhook_id: 7, binlog_replay: Some(replay(7, "running")), ..Backfills::default() };
        let html = backfills_live(&b);
        assert!(html.contains("No backfill yet"), "{html}");
        assert!(html.contains("1,500 deliveries queued, at <code>binlog.000002:1234</code> of <code>binlog.000003:4</code>"), "{html}");
        assert!(html.contains("data-state=\"running\"") && !html.contains("ended"), "{html}");
        b.can_change = true;
        b.is_active = true;
        assert!(webhook(&row("https://example.com/h"), &Deliveries::default(), &b, &[], Ordering::Group).contains("title=\"a replay from the binlog is running\""));
        b.binlog_replay = Some(ReplayProgress { state: "failed", finished_at: Some(1_796_083_260), error: Some("the binlog is gone".into()), ..replay(7, "") });
        let html = backfills_live(&b);
        assert!(html.contains("pill bad\">failed</span> <span class=\"error\">the binlog is gone</span>") && html.contains("ended"), "{html}");
        b.binlog_replay = Some(replay(8, "running"));
        assert!(backfills_live(&b).contains("A replay from the binlog for webhook #8 is running"), "another webhook's, while it runs");
        b.binlog_replay = Some(replay(8, "done"));
        assert!(!backfills_live(&b).contains("binlog-replay"), "another webhook's, once ended: not shown");
    }

    #[test]
    fn escaping_covers_every_character_that_ends_text_or_an_attribute() {
        assert_eq!(esc("<a href=\"x\" title='y'>&amp;</a>"), "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;");
        assert_eq!(esc("plain text, ünïcödé"), "plain text, ünïcödé");
        assert_eq!(query_escape("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(time("2026-11-28T10:04:59.123Z"), "<time datetime=\"2026-11-28T10:04:59.123Z\">2026-11-28 10:04:59 UTC</time>");
        assert_inert(&time(HOSTILE));
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("äöü", 3), "äöü");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(bytes(12 << 20), "12 MiB");
    }

    #[test]
    fn hostile_data_stays_text_on_every_page() {
        let caller = Caller { name: Arc::from(HOSTILE), scope: crate::admin::auth::Scope::Admin, via: crate::admin::auth::Via::Console };
        let hostile_url = format!("http://x/{HOSTILE}");
        let rows = vec![row(&hostile_url)];
        let types = vec![HOSTILE.to_string()];
        let deliveries = Deliveries {
            webhook_id: 7,
            list: vec![hostile_delivery()],
            total: 1,
            page: 1,
            per_page: 25,
            status: HOSTILE.into(),
            event_type: HOSTILE.into(),
            since: HOSTILE.into(),
            until: HOSTILE.into(),
            filter_error: Some(HOSTILE.into()),
            can_change: true,
        };
        let attempts = vec![AttemptView {
            attempt: 1,
            response_status: Some(500),
            response_body: Some(HOSTILE.into()),
            error: Some(HOSTILE.into()),
            duration_ms: Some(3),
            attempted_at: Some(HOSTILE.into()),
        }];
        let headers = crate::delivery::sender::attempt_headers(HOSTILE, HOSTILE, 1, b"", None);
        let backfills = Backfills {
            webhook_id: 7,
            list: vec![hostile_backfill("running")],
            event_types: vec![HOSTILE.into()],
            unavailable: None,
            binlog_replay: Some(ReplayProgress { position: HOSTILE.into(), end: HOSTILE.into(), error: Some(HOSTILE.into()), ..replay(7, "failed") }),
            is_active: true,
            can_change: true,
        };
        let o = Overview {
            reader_error: Some(HOSTILE.into()),
            position: HOSTILE.into(),
            lock_name: HOSTILE.into(),
            standbys: vec![(3, HOSTILE.into())],
            minutes: vec![Minute::default(); 60],
            ..Overview::default()
        };
        let hostile_toml = HOSTILE.replace('\\', "\\\\").replace('"', "\\\"");
        let config = crate::config::Config::from_toml(&format!(
            "[source]\nurl = \"mysql://r@h:1/db\"\n[[events]]\ntype = \"a.b\"\ntable = \"{0}\"\noperations = [\"insert\"]\n\
             conditions = [{{ column = \"{0}\", equals = \"{0}\" }}]\nfields = {{ a = \"{0}\" }}\ngroup_by = [\"{0}\"]\n",
            hostile_toml
        ))
        .unwrap();
        let rule = config.events[0].clone();
        for (what, html) in [
            ("webhooks", webhooks(&rows, &types, Ordering::Group, true)),
            ("webhook", webhook(&rows[0], &deliveries, &backfills, &types, Ordering::Group)),
            ("backfills", backfills_live(&backfills)),
            ("delivery", delivery(&rows[0].view, &hostile_delivery(), &attempts, &headers, true)),
            ("overview", overview(&o)),
            ("event types", event_types(&[rule])),
            ("page", page(&Page { title: HOSTILE, nav: Nav::Overview, caller: &caller, csrf: Some(HOSTILE), main: String::new() })),
            ("login", login(Some(HOSTILE), HOSTILE, std::time::Duration::from_secs(60))),
            ("message", message(HOSTILE, HOSTILE)),
            ("standby", standby(HOSTILE)),
        ] {
            assert_inert(&html);
            assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"), "{what}: the text is shown, escaped:\n{html}");
        }
        let d = delivery(&rows[0].view, &hostile_delivery(), &attempts, &headers, true);
        assert!(d.contains("&lt;script&gt;window.__pwned=1&lt;/script&gt;"), "the response body, as text");
    }

    #[test]
    fn a_read_only_caller_gets_no_controls() {
        let r = row("https://example.com/h");
        let mut deliveries = Deliveries { webhook_id: 7, list: vec![hostile_delivery()], total: 1, page: 1, per_page: 25, ..Deliveries::default() };
        let mut backfills = Backfills {
            webhook_id: 7,
            list: vec![hostile_backfill("running"), hostile_backfill("done")],
            event_types: vec!["thread.created".into()],
            is_active: true,
            ..Backfills::default()
        };
        let read_only = [
            webhooks(std::slice::from_ref(&r), &[], Ordering::Group, false),
            webhook(&r, &deliveries, &backfills, &[], Ordering::Group),
            delivery(&r.view, &hostile_delivery(), &[], &[], false),
        ];
        for html in &read_only {
            assert!(!html.contains("data-api"), "{html}");
        }
        assert!(read_only[1].contains("id=\"backfills-live\""), "a read token sees the backfills");
        deliveries.can_change = true;
        backfills.can_change = true;
        let admin = webhook(&r, &deliveries, &backfills, &[], Ordering::Group);
        for control in [
            "id=\"disable\"",
            "id=\"send-test\"",
            "id=\"rotate\"",
            "id=\"delete\"",
            "id=\"retry-11\"",
            "id=\"edit-form\"",
            "id=\"backfill-form\"",
            "id=\"replay-history-form\"",
            "id=\"replay-binlog-form\"",
            "id=\"cancel-backfill-3\"",
        ] {
            assert!(admin.contains(control), "{control}");
        }
        assert_eq!(admin.matches("id=\"cancel-backfill-").count(), 1, "only a running or queued backfill can be cancelled");
        backfills.unavailable = Some("needs the state database on the source server".into());
        let no_backfill = webhook(&r, &deliveries, &backfills, &[], Ordering::Group);
        assert!(!no_backfill.contains("id=\"backfill-form\"") && no_backfill.contains("needs the state database"), "{no_backfill}");
        backfills.is_active = false;
        let inactive = webhook(&r, &deliveries, &backfills, &[], Ordering::Group);
        assert!(!inactive.contains("id=\"replay-history-form\"") && inactive.contains("Enable the webhook to replay or backfill"));
        assert!(webhooks(&[], &[], Ordering::Group, true).contains("id=\"new-form\""));
    }

    #[test]
    fn health_reads_the_webhook() {
        let mut v = view("https://example.com/h");
        assert_eq!(Health::of(&v), Health::Failing { since: "2026-11-28T10:01:00Z".into() });
        v.failing_since = None;
        assert_eq!(Health::of(&v), Health::Healthy);
        v.last_triggered_at = None;
        assert_eq!(Health::of(&v), Health::Unused);
        v.is_active = false;
        assert_eq!(Health::of(&v), Health::Disabled { failing_since: None });
        assert_eq!(success_rate((3, 1)), "75% of 4 attempts in the last hour");
        assert_eq!(success_rate((0, 0)), "no attempts in the last hour");
    }

    #[test]
    fn the_chart_draws_the_hour_and_says_it_in_words() {
        let mut minutes = vec![Minute::default(); 60];
        minutes[59] = Minute { minute: 1, events: 120, delivered: 60, failed: 30, webhooks: Default::default() };
        let html = chart(&minutes);
        assert_eq!(html.matches("<rect class=\"bar-ok\"").count(), 1);
        assert_eq!(html.matches("<rect class=\"bar-bad\"").count(), 1);
        assert!(html.contains("This minute: 2.0 events/s, 1.0 deliveries/s. Last hour: 120 events, 60 attempts delivered, 30 failed."), "{html}");
        let empty = chart(&[]);
        assert!(empty.contains("Last hour: 0 events"), "no panic without minutes");
    }

    #[test]
    fn filter_links_keep_the_filters() {
        let d = Deliveries { webhook_id: 7, status: "failed".into(), event_type: "a b".into(), since: "2026-11-28T10:04".into(), ..Deliveries::default() };
        assert_eq!(d.query(2), "page=2&status=failed&event_type=a+b&since=2026-11-28T10%3A04");
    }
}
