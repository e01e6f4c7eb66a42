//! The admin stage, on top: the HTTP server of the admin API, `/metrics`,
//! `/healthz` and `/readyz`.
//!
//! - [`http`]: the server, the routes and their answers, the OpenAPI document.
//! - [`validation`]: what a request may contain, checked before anything changes.

pub mod http;
pub mod validation;
