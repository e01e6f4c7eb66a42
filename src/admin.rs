//! The admin stage, on top: the HTTP server of the admin API, the console,
//! `/metrics`, `/healthz` and `/readyz`.
//!
//! - [`http`]: the server, the routes and their answers, the OpenAPI document.
//! - [`auth`]: tokens with scopes, console sessions, CSRF tokens.
//! - [`console`]: `/console`, the operators' pages (rendering in `console::render`).
//! - [`validation`]: what a request may contain, checked before anything changes.
//! - [`tls`]: HTTPS with `[http] tls_cert` / `tls_key`, the certificate reloaded on SIGHUP.

pub mod auth;
pub mod console;
pub mod http;
pub mod tls;
pub mod validation;
