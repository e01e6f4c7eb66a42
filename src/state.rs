//! The state stage, below the others: what rowhook keeps in a database.
//!
//! - [`store`]: the webhooks, the delivery queue and history, the checkpoint
//!   (and the subscriptions saved with it), the embedded migrations.
//! - [`instance`]: one active instance per state database (a named lock).
//! - [`secrets`]: webhook secrets sealed at rest with `[admin] secrets_key`.
//!
//! It imports no other stage: the source, events and delivery stages use it.

pub mod instance;
pub mod secrets;
pub mod store;
