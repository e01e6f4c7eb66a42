//! The delivery stage: events to every subscribed webhook, signed, retried.
//!
//! In: batches of committed transactions from the source stage. Out: signed
//! HTTP POSTs, and in the state database a delivery row per (event,
//! webhook) with every attempt recorded.
//! Guarantees: a batch's deliveries are stored before the checkpoint moves
//! past it (at least once, nothing lost); each webhook gets its deliveries in
//! commit order; an event goes to the webhooks subscribed at its commit;
//! nothing is sent to a private address unless allowed.
//!
//! - [`router`]: the actor that maps, routes and stores a batch, and owns the
//!   delivery actors; [`subscriptions`]: who receives what, as of a position.
//! - [`actor`]: one per webhook: waves of sends, outcomes, health;
//!   [`groups`]: which due deliveries a wave may send (per group, per
//!   webhook or per delivery), so the webhook's order holds;
//!   [`handoff`]: fresh rows from the router without reading them back.
//! - [`sender`]: one signed POST and what came back; [`signing`]: HMAC-SHA256
//!   (the seed's and Standard Webhooks'); [`retry`]: what follows a failed
//!   attempt; [`ssrf`]: the address guard.

pub mod actor;
pub mod groups;
pub mod handoff;
pub mod retry;
pub mod router;
pub mod sender;
pub mod signing;
pub mod ssrf;
pub mod subscriptions;
