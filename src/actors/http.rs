//! The HTTP server (actix-web): `/healthz` and `/readyz` for now; the admin
//! API and `/metrics` join it here.
//!
//! It is started on a listener the caller has bound, so tests run the whole
//! daemon on port 0.

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;
use tokio::sync::watch;

use super::reader::ReaderStatus;
use crate::store::Store;

/// Shared with the handlers through `app_data`.
#[derive(Clone)]
pub struct HttpState {
    pub reader: watch::Receiver<ReaderStatus>,
    pub store: Store,
}

/// Starts serving on `listener`; stop it through the returned handle.
pub fn serve(listener: std::net::TcpListener, state: HttpState) -> std::io::Result<actix_web::dev::Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(2)
    .listen(listener)?
    .run();
    Ok(server)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"success": true, "data": {"status": "alive", "version": env!("CARGO_PKG_VERSION")}}))
}

/// 200 when the reader is connected and the state database answers.
async fn readyz(state: web::Data<HttpState>) -> HttpResponse {
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
    if reasons.is_empty() {
        HttpResponse::Ok().json(json!({"success": true, "data": {"status": "ready", "position": reader.position.to_string()}}))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({"success": false, "error": reasons.join("; "), "details": {"position": reader.position.to_string()}}))
    }
}
