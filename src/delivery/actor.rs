//! The delivery actor: one per webhook.
//!
//! It works in waves: take the deliveries the router has just enqueued and
//! handed over, or, when the actor cannot be sure those are all that is due
//! ([`Sequencer`]), claim the webhook's pending deliveries (oldest first);
//! arrange them into one chain per key ([`groups`]: per group, per webhook or
//! per delivery, as the webhook's ordering says), leaving out the keys held
//! back behind a delivery that waits for its retry; send the chains in
//! parallel (at most `max_in_flight` requests at once, one per key; one in
//! all for `webhook` ordering), each in commit order and stopped at its
//! first failure; decide each outcome with the [`RetryPolicy`], and write the
//! whole wave back in one statement. A wave whose deliveries all succeeded
//! is recorded while the next wave is sent ([`Recording`]): records still go
//! to the database one wave after the other, and a claim waits for them.
//! A wave in which nothing succeeds starts no further attempts once one has
//! failed, and the webhook rests until the first retry is due (at most
//! [`MAX_REST`]): a dead endpoint is probed, not flooded. Waves start when
//! the router enqueues something ([`Wake`]), when a retry falls due, and on a
//! one-second tick. Nothing is kept only in memory: every delivery is a row
//! before it is sent, and a pending retry is a row with a `next_attempt_at`.
//!
//! [`groups`]: super::groups

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::StreamExt;

use super::groups::{Chain, Holds, Offered, WavePlan};
use crate::config::Ordering as DeliveryOrder;
use crate::delivery::handoff::{HandOff, Sequencer, Trigger, WaveEnd, WaveSource};
use crate::metrics::{self, Metrics};
use crate::delivery::retry::{RetryPolicy, Verdict};
use crate::delivery::sender::{Attempt, Sender, Target};
use crate::delivery::signing::SigningKey;
use crate::state::secrets::Keyring;
use crate::state::store::{AttemptRecord, DeliveryStatus, DueDelivery, Store, StoreError, Webhook, WebhookHealth};

/// Rows a claim reads per query, due or not ([`Store::scan_pending`]) ...
const SCAN_PAGE: usize = 1024;
/// ... and queries per claim at most: a claim that reads this many without
/// filling its wave (rows held back behind retries) leaves the rest for the next.
const SCAN_PAGES: usize = 4;

/// Deliveries claimed per wave. Each wave costs a claim and a recording
/// transaction whatever its size: 64 measured 4,900 deliveries/s to one fast
/// receiver, 256 measured 7,200 (docs/benchmarks.md). The recording statement
/// is prepared for this size ([`crate::state::store::RECORD_SHAPES`]).
const WAVE_SIZE: usize = 256;
const _: () = assert!(WAVE_SIZE == crate::state::store::RECORD_SHAPES[crate::state::store::RECORD_SHAPES.len() - 1]);
/// A wave that changes nothing of the webhook's health still writes its row
/// (`last_triggered_at`) when the last write is this old. Not every wave:
/// the router's inserts of new deliveries wait for that row's lock.
const LAST_TRIGGERED_EVERY: Duration = Duration::from_secs(1);
/// How often an idle actor looks for due retries.
const TICK: Duration = Duration::from_secs(1);
/// After a failed attempt the webhook rests until that delivery's retry is
/// due, but never longer than this: a failing endpoint is probed with one
/// delivery at a time instead of starting a retry schedule for every queued
/// delivery, and after it recovers the backlog drains in commit order.
const MAX_REST: Duration = Duration::from_secs(30);

/// What every delivery actor shares.
#[derive(Clone)]
pub struct DeliveryContext {
    pub store: Store,
    pub sender: Sender,
    pub policy: Arc<RetryPolicy>,
    pub auto_disable_after: u32,
    pub auto_disable_min_failing: Duration,
    pub max_in_flight: usize,
    /// `[delivery] ordering`: for webhooks that do not choose their own.
    pub ordering: DeliveryOrder,
    /// Set at shutdown: start no new waves.
    pub stopping: Arc<AtomicBool>,
    /// Waves in flight, across all actors (shutdown waits for 0).
    pub in_flight: Arc<AtomicUsize>,
    pub metrics: Metrics,
    /// How many waves may claim or record at once, across all actors.
    pub state_writes: Arc<tokio::sync::Semaphore>,
    /// Opens the webhooks' secrets (sealed in the table with `[admin] secrets_key`, or plaintext).
    pub secrets: Arc<Keyring>,
}

/// Something was enqueued for this webhook: by the router, which handed the
/// rows over ([`HandOff`]); or, with `now`, by an operator (retry, test
/// event), so the actor claims and a failing endpoint's rest is cut short.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Wake {
    pub now: bool,
}

/// The webhook's row changed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UpdateWebhook(pub Webhook);

/// The recording of a wave that goes on while the next wave is sent.
#[derive(Default)]
struct Recording {
    /// Held from the end of a wave's sending until its attempts are recorded:
    /// records are written in wave order, and a claim waits for them (it
    /// would find the unrecorded deliveries still pending).
    lock: Arc<tokio::sync::Mutex<()>>,
    /// A recording in the background failed: its deliveries stay pending and
    /// the next wave must claim them.
    failed: AtomicBool,
}

pub struct DeliveryActor {
    webhook: Webhook,
    target: Option<Target>,
    shared: DeliveryContext,
    /// Rows the router has enqueued and handed over.
    handoff: Arc<HandOff>,
    /// Whether handed-over rows may go out without a claim.
    order: Sequencer,
    recording: Arc<Recording>,
    /// When a wave last wrote the webhook's row ([`LAST_TRIGGERED_EVERY`]).
    webhook_row_written: Option<std::time::Instant>,
    busy: bool,
    /// A wave was asked for while one ran: what to do when it ends.
    again: Option<Trigger>,
    /// No waves before this instant (the endpoint failed; see [`MAX_REST`]).
    resting_until: Option<std::time::Instant>,
    /// Keys held back behind a delivery waiting for its retry (moved into a wave while it runs).
    holds: Holds,
}

impl DeliveryActor {
    pub fn new(webhook: Webhook, shared: DeliveryContext, handoff: Arc<HandOff>) -> DeliveryActor {
        let target = make_target(&webhook, &shared.secrets);
        DeliveryActor {
            webhook,
            target,
            shared,
            handoff,
            order: Sequencer::default(),
            recording: Arc::default(),
            webhook_row_written: None,
            busy: false,
            again: None,
            resting_until: None,
            holds: Holds::default(),
        }
    }

    /// The order this webhook's deliveries keep.
    fn ordering(&self) -> DeliveryOrder {
        self.webhook.ordering.unwrap_or(self.shared.ordering)
    }

    fn wake(&mut self, ctx: &mut Context<Self>, trigger: Trigger) {
        if self.shared.stopping.load(Ordering::SeqCst) {
            if !self.busy {
                ctx.stop();
            }
            return;
        }
        if !self.webhook.is_active {
            return;
        }
        if self.resting_until.is_some_and(|t| std::time::Instant::now() < t) {
            return;
        }
        let Some(target) = self.target.clone() else { return };
        if self.busy {
            self.again = match (self.again, trigger) {
                (Some(Trigger::Look), _) | (_, Trigger::Look) => Some(Trigger::Look),
                _ => Some(Trigger::HandedOver),
            };
            return;
        }
        if self.recording.failed.swap(false, Ordering::SeqCst) {
            self.order.failed();
        }
        let taken = self.handoff.take();
        if self.holds.any_due(std::time::Instant::now()) {
            // A held key's retry is due: only a claim sends it.
            self.order.forget_order();
        }
        let handed_over = match self.order.plan(taken, trigger) {
            WaveSource::Idle => return,
            WaveSource::Fresh(rows) => Some(rows),
            WaveSource::Claim => None,
        };
        self.busy = true;
        self.again = None;
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        let wave = run_wave(
            Wave {
                shared: self.shared.clone(),
                recording: self.recording.clone(),
                webhook_id: self.webhook.id,
                failed_attempts: self.webhook.failed_attempts,
                touch_webhook_row: self.webhook_row_written.is_none_or(|at| at.elapsed() >= LAST_TRIGGERED_EVERY),
                target,
                ordering: self.ordering(),
            },
            handed_over,
            std::mem::take(&mut self.holds),
        );
        ctx.spawn(wave.into_actor(self).map(|outcome, act, ctx| {
            act.busy = false;
            act.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            match outcome {
                Ok((outcome, holds)) => {
                    act.holds = holds;
                    if outcome.wrote_webhook_row {
                        act.webhook_row_written = Some(std::time::Instant::now());
                    }
                    let full = outcome.more;
                    act.order.finished(WaveEnd {
                        claimed: outcome.claimed_from_db,
                        max_id: outcome.max_id,
                        stopped_on_failure: outcome.stopped_on_failure,
                        full,
                    });
                    act.webhook.failed_attempts = outcome.failed_attempts;
                    if outcome.disabled {
                        act.webhook.is_active = false;
                    }
                    // Nothing got through, more than once (or with one key for all): the
                    // endpoint looks down; rest until a retry is due. One group's failure
                    // alone holds back only that group.
                    let down = !outcome.any_delivered
                        && (outcome.failures >= DOWN_AFTER || (outcome.failures > 0 && act.ordering() == DeliveryOrder::Webhook));
                    act.resting_until = match (down, outcome.next_retry) {
                        (true, Some(delay)) => Some(std::time::Instant::now() + delay.min(MAX_REST)),
                        _ => None,
                    };
                    let next_due = act.holds.next_due().map(|at| at.saturating_duration_since(std::time::Instant::now()));
                    if let Some(delay) = outcome.next_retry.into_iter().chain(next_due).min().filter(|d| *d < TICK) {
                        ctx.run_later(delay, |act, ctx| act.wake(ctx, Trigger::Look));
                    }
                    if full && (outcome.any_delivered || !outcome.stopped_on_failure) {
                        act.again = Some(Trigger::Look);
                    }
                    if let Some(trigger) = act.again.take() {
                        act.wake(ctx, trigger);
                    }
                }
                Err(e) => {
                    act.order.failed();
                    tracing::warn!(webhook_id = act.webhook.id, error = %e, "delivery wave failed; retrying on the next tick");
                }
            }
        }));
    }
}

impl Actor for DeliveryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(TICK, |act, ctx| act.wake(ctx, Trigger::Look));
        self.wake(ctx, Trigger::Look);
    }
}

impl Handler<Wake> for DeliveryActor {
    type Result = ();
    fn handle(&mut self, wake: Wake, ctx: &mut Context<Self>) {
        if wake.now {
            self.resting_until = None;
            self.order.forget_order();
            self.wake(ctx, Trigger::Look);
        } else {
            self.wake(ctx, Trigger::HandedOver);
        }
    }
}

impl Handler<UpdateWebhook> for DeliveryActor {
    type Result = ();
    fn handle(&mut self, UpdateWebhook(webhook): UpdateWebhook, ctx: &mut Context<Self>) {
        let reactivated = webhook.is_active && !self.webhook.is_active;
        self.target = make_target(&webhook, &self.shared.secrets);
        self.webhook = webhook;
        self.order.forget_order();
        self.holds.clear();
        if !reactivated {
            self.wake(ctx, Trigger::Look);
            return;
        }
        // Re-activated: try at once; what waited for a retry is given up, so its groups move on.
        self.resting_until = None;
        let (store, id) = (self.shared.store.clone(), self.webhook.id);
        ctx.wait(
            async move {
                match store.give_up_retries(id).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(webhook_id = id, deliveries = n, "webhook re-enabled: deliveries waiting for a retry are given up (they stay in the history and can be retried)"),
                    Err(e) => tracing::warn!(webhook_id = id, error = %e, "webhook re-enabled, but its waiting retries could not be given up; they go out when due"),
                }
            }
            .into_actor(self)
            .map(|(), act, ctx| act.wake(ctx, Trigger::Look)),
        );
    }
}

/// The webhook's URL and signing keys: its secrets opened (when sealed) and
/// made keys. None when the current secret cannot be used: its deliveries
/// wait, pending, until it is fixed (said in the log, naming the key id of a
/// secret no configured key opens); other webhooks are not affected.
fn make_target(webhook: &Webhook, secrets: &Keyring) -> Option<Target> {
    let key = match secrets.open(&webhook.secret) {
        Ok(secret) => SigningKey::from_secret(&secret).map_err(|e| e.to_string()),
        Err(e) => {
            tracing::error!(
                webhook_id = webhook.id,
                key_id = e.key_id().unwrap_or("-"),
                error = %e,
                "webhook secret cannot be opened; its deliveries stay pending until it can"
            );
            return None;
        }
    };
    match key {
        Ok(key) => {
            // During a rotation's overlap, the previous secret signs too.
            let previous = webhook.previous_secret.as_deref().and_then(|stored| match secrets.open(stored) {
                Ok(secret) => SigningKey::from_secret(&secret).ok(),
                Err(e) => {
                    tracing::warn!(webhook_id = webhook.id, key_id = e.key_id().unwrap_or("-"), error = %e, "the previous secret cannot be opened; only the current one signs");
                    None
                }
            });
            Some(Target { url: webhook.url.clone(), keys: std::iter::once(key).chain(previous).collect() })
        }
        Err(e) => {
            tracing::error!(webhook_id = webhook.id, error = %e, "webhook secret is unusable; its deliveries wait until the secret is fixed");
            None
        }
    }
}

struct WaveOutcome {
    /// The rows came from a claim (not from the router's hand-over).
    claimed_from_db: bool,
    /// The highest delivery id the wave considered (sent or held back).
    max_id: Option<u64>,
    /// A claim that did not see every pending row: more may be due.
    more: bool,
    /// The recording wrote the webhook's row too.
    wrote_webhook_row: bool,
    failed_attempts: u32,
    disabled: bool,
    /// An attempt failed (its key is held, or its delivery given up).
    stopped_on_failure: bool,
    /// An attempt succeeded.
    any_delivered: bool,
    /// Attempts that failed.
    failures: usize,
    next_retry: Option<Duration>,
}

/// What a wave needs, fixed when it starts.
struct Wave {
    shared: DeliveryContext,
    recording: Arc<Recording>,
    webhook_id: u64,
    failed_attempts: u32,
    touch_webhook_row: bool,
    target: Target,
    ordering: DeliveryOrder,
}

/// One wave: the handed-over rows, or (`None`) the pending rows claimed from
/// the database; sent as chains, recorded. Returns the holds as they stand.
async fn run_wave(wave: Wave, handed_over: Option<Vec<DueDelivery>>, mut holds: Holds) -> Result<(WaveOutcome, Holds), StoreError> {
    let Wave { shared, recording, webhook_id, failed_attempts, touch_webhook_row, target, ordering } = wave;
    let claimed_from_db = handed_over.is_none();
    let now = std::time::Instant::now();
    let (plan, more) = match handed_over {
        Some(rows) => {
            let mut plan = WavePlan::new(ordering, usize::MAX);
            for delivery in rows {
                plan.offer(Offered { delivery, due: true, wait: Duration::ZERO }, &mut holds, now);
            }
            (plan, false)
        }
        None => {
            let _recorded = recording.lock.lock().await;
            let _slot = shared.state_writes.acquire().await;
            claim(&shared.store, webhook_id, ordering, &mut holds).await?
        }
    };
    let mut outcome = WaveOutcome {
        claimed_from_db,
        max_id: plan.max_id(),
        more,
        wrote_webhook_row: false,
        failed_attempts,
        disabled: false,
        stopped_on_failure: false,
        any_delivered: false,
        failures: 0,
        next_retry: None,
    };
    if plan.is_empty() {
        return Ok((outcome, holds));
    }
    let source = if claimed_from_db { metrics::CLAIMED } else { metrics::HANDED_OVER };
    shared.metrics.delivery_waves.with_label_values(&[source]).inc();
    // Backfill rows beyond the wave's share stay pending: the next wave claims them.
    outcome.more |= plan.left_out();
    let concurrency = if ordering == DeliveryOrder::Webhook { 1 } else { shared.max_in_flight };
    let (results, left) = send_chains(&shared, &target, plan.into_chains(), concurrency).await;
    outcome.more |= left;
    let mut records = Vec::with_capacity(results.len());
    let mut failing = failed_attempts > 0;
    for (key, delivery, attempt, verdict) in results {
        log_attempt(webhook_id, &delivery, &attempt, verdict);
        record_metrics(&shared.metrics, webhook_id, &attempt, verdict);
        records.push(record(&delivery, &attempt, verdict));
        match verdict {
            Verdict::Delivered => {
                outcome.failed_attempts = 0;
                outcome.any_delivered = true;
                failing = false;
            }
            Verdict::DisableWebhook => {
                outcome.failed_attempts += 1;
                outcome.disabled = true;
                failing = true;
            }
            Verdict::RetryAfter(delay) => {
                outcome.failed_attempts += 1;
                outcome.next_retry = Some(outcome.next_retry.map_or(delay, |d| d.min(delay)));
                holds.hold(&key, now + delay);
                failing = true;
            }
            Verdict::GiveUp => {
                outcome.failed_attempts += 1;
                failing = true;
            }
        }
        outcome.stopped_on_failure |= verdict != Verdict::Delivered;
        outcome.failures += usize::from(verdict != Verdict::Delivered);
    }
    if !outcome.disabled && outcome.failed_attempts >= shared.auto_disable_after {
        let failing_for = if shared.auto_disable_min_failing.is_zero() {
            Duration::MAX
        } else {
            shared.store.failing_for(webhook_id).await?.unwrap_or(Duration::ZERO)
        };
        outcome.disabled = failing_for >= shared.auto_disable_min_failing;
    }
    if outcome.disabled {
        shared.metrics.webhooks_auto_disabled.with_label_values(&[&webhook_id.to_string()]).inc();
        tracing::warn!(
            webhook_id,
            failed_attempts = outcome.failed_attempts,
            "webhook deactivated: too many consecutive failed attempts (or 410 Gone); re-activate it once the endpoint works"
        );
    }
    outcome.wrote_webhook_row = touch_webhook_row || outcome.failed_attempts != failed_attempts || outcome.disabled;
    let health = outcome.wrote_webhook_row.then_some(WebhookHealth {
        webhook_id,
        failed_attempts: outcome.failed_attempts,
        failing,
        disable: outcome.disabled,
    });
    record_wave(&shared, recording, webhook_id, records, health, outcome.stopped_on_failure).await?;
    Ok((outcome, holds))
}

/// The pending rows of a webhook, oldest first, into a wave: every held key
/// found anew from the database (a row that is not due holds its key). The
/// bool: the claim did not see every pending row, so more may be due.
async fn claim(store: &Store, webhook_id: u64, ordering: DeliveryOrder, holds: &mut Holds) -> Result<(WavePlan, bool), StoreError> {
    holds.clear();
    let now = std::time::Instant::now();
    let mut plan = WavePlan::new(ordering, WAVE_SIZE);
    let mut after = 0;
    for _ in 0..SCAN_PAGES {
        let page = store.scan_pending(webhook_id, after, SCAN_PAGE).await?;
        let last_page = page.len() < SCAN_PAGE;
        for pending in page {
            if !plan.has_room() {
                return Ok((plan, true));
            }
            after = pending.delivery.id;
            plan.offer(Offered { delivery: pending.delivery, due: pending.due, wait: pending.wait }, holds, now);
        }
        if last_page {
            return Ok((plan, false));
        }
    }
    Ok((plan, true))
}

/// What one attempt came to, with the key of its chain.
type Sent = (String, DueDelivery, Attempt, Verdict);

/// Failed attempts, with none succeeded, after which a wave starts no more
/// and the webhook rests: the endpoint, not one group's event, looks broken.
const DOWN_AFTER: usize = 2;

/// Sends the chains, `concurrency` at a time, each in order; returns every
/// attempt in the order they finished, and whether some deliveries were
/// left unattempted (they stay pending). A chain stops at a failure it will
/// retry (its key waits) and goes on after one given up (its group moves
/// on). No attempt starts after a 410 Gone, nor once [`DOWN_AFTER`]
/// attempts have failed and none succeeded.
async fn send_chains(shared: &DeliveryContext, target: &Target, chains: Vec<Chain>, concurrency: usize) -> (Vec<Sent>, bool) {
    let (delivered, failed, gone, left) = (Cell::new(false), Cell::new(0usize), Cell::new(false), Cell::new(false));
    let (delivered, failed, gone, left) = (&delivered, &failed, &gone, &left);
    let policy = &shared.policy;
    let sender = &shared.sender;
    let sends = futures_util::stream::iter(chains).map(|chain| async move {
        let mut sent = Vec::new();
        for delivery in chain.deliveries {
            if gone.get() || (failed.get() >= DOWN_AFTER && !delivered.get()) {
                left.set(true);
                break;
            }
            let attempt = sender.attempt(target, &delivery.event_id, &delivery.event_type, &delivery.payload).await;
            let verdict = decide(policy, &delivery, &attempt);
            match verdict {
                Verdict::Delivered => delivered.set(true),
                Verdict::DisableWebhook => gone.set(true),
                Verdict::RetryAfter(_) | Verdict::GiveUp => failed.set(failed.get() + 1),
            }
            sent.push((chain.key.clone(), delivery, attempt, verdict));
            if matches!(verdict, Verdict::RetryAfter(_) | Verdict::DisableWebhook) {
                break;
            }
        }
        sent
    });
    let mut sends = sends.buffer_unordered(concurrency.max(1));
    let mut results = Vec::new();
    while let Some(sent) = sends.next().await {
        results.extend(sent);
    }
    (results, left.get())
}

/// Writes a wave's attempts and the webhook's health: at once when a
/// failure makes what follows depend on it, else while the next wave is sent.
async fn record_wave(
    shared: &DeliveryContext,
    recording: Arc<Recording>,
    webhook_id: u64,
    records: Vec<AttemptRecord>,
    health: Option<WebhookHealth>,
    failed: bool,
) -> Result<(), StoreError> {
    // The previous wave's attempts are recorded before this wave's.
    let in_order = recording.lock.clone().lock_owned().await;
    if failed {
        // What follows a failure (the rest, a retry's claim) needs it recorded.
        let _slot = shared.state_writes.acquire().await;
        shared.store.record_attempts(&records, health).await?;
        return Ok(());
    }
    // Recorded while the next wave is sent; shutdown waits for it (`in_flight`).
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    let shared = shared.clone();
    actix_rt::spawn(async move {
        let recorded = {
            let _slot = shared.state_writes.acquire().await;
            shared.store.record_attempts(&records, health).await
        };
        if let Err(e) = recorded {
            recording.failed.store(true, Ordering::SeqCst);
            tracing::warn!(webhook_id, error = %e, "recording a delivery wave failed; its deliveries stay pending and are sent again");
        }
        drop(in_order);
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    });
    Ok(())
}

fn record_metrics(m: &Metrics, webhook_id: u64, attempt: &Attempt, verdict: Verdict) {
    let outcome = match verdict {
        Verdict::Delivered => metrics::DELIVERED,
        Verdict::RetryAfter(_) => metrics::FAILED,
        Verdict::GiveUp | Verdict::DisableWebhook => metrics::GIVEN_UP,
    };
    m.delivery_attempts.with_label_values(&[&webhook_id.to_string(), outcome]).inc();
    if !attempt.duration.is_zero() {
        m.delivery_duration.observe(attempt.duration.as_secs_f64());
    }
}

fn decide(policy: &RetryPolicy, delivery: &DueDelivery, attempt: &Attempt) -> Verdict {
    if attempt.permanent {
        return Verdict::GiveUp;
    }
    policy.decide(&attempt.result, delivery.attempts + 1, attempt.retry_after, &mut rand::rng())
}

fn record(delivery: &DueDelivery, attempt: &Attempt, verdict: Verdict) -> AttemptRecord {
    let (status, retry_in) = match verdict {
        Verdict::Delivered => (DeliveryStatus::Delivered, None),
        Verdict::RetryAfter(delay) => (DeliveryStatus::Pending, Some(delay)),
        Verdict::GiveUp | Verdict::DisableWebhook => (DeliveryStatus::Failed, None),
    };
    AttemptRecord {
        delivery_id: delivery.id,
        status,
        response_status: attempt.response_status,
        response_body: attempt.response_body.clone(),
        error: attempt.error.clone(),
        duration_ms: u32::try_from(attempt.duration.as_millis()).unwrap_or(u32::MAX),
        retry_in,
    }
}

/// One log line per attempt: webhook id, event id and type, attempt number,
/// HTTP status (0 when no answer came back: see `error`), duration, and an
/// outcome named as in `rowhook_delivery_attempts_total`. Never the secret,
/// the signature headers or the payload.
fn log_attempt(webhook_id: u64, delivery: &DueDelivery, attempt: &Attempt, verdict: Verdict) {
    let event_id = delivery.event_id.as_str();
    let event_type = delivery.event_type.as_str();
    let attempt_number = delivery.attempts + 1;
    let status = attempt.response_status.unwrap_or(0);
    let duration_ms = u64::try_from(attempt.duration.as_millis()).unwrap_or(u64::MAX);
    let error = attempt.error.as_deref(); // absent when the receiver answered
    match verdict {
        Verdict::Delivered => tracing::info!(
            webhook_id, event_id = %event_id, event_type = %event_type, attempt = attempt_number, status, duration_ms,
            outcome = %"delivered", "delivery attempt"
        ),
        Verdict::RetryAfter(delay) => tracing::warn!(
            webhook_id, event_id = %event_id, event_type = %event_type, attempt = attempt_number, status, duration_ms,
            outcome = %"failed", retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), error,
            "delivery attempt failed; retrying"
        ),
        Verdict::GiveUp => tracing::warn!(
            webhook_id, event_id = %event_id, event_type = %event_type, attempt = attempt_number, status, duration_ms,
            outcome = %"given_up", error, "delivery attempt failed; no retries left"
        ),
        Verdict::DisableWebhook => tracing::warn!(
            webhook_id, event_id = %event_id, event_type = %event_type, attempt = attempt_number, status, duration_ms,
            outcome = %"given_up", error, "delivery attempt answered 410 Gone; disabling the webhook"
        ),
    }
}
