//! The router actor: events to deliveries.
//!
//! For each batch of committed transactions from the reader it picks, per
//! event, the active webhooks subscribed to its type, stores those
//! deliveries, hands the new rows to the delivery actors concerned
//! ([`HandOff`]: they need not read them back) and wakes them, then moves the
//! checkpoint past the batch: lazily, at most every [`CHECKPOINT_EVERY`].
//! That keeps a statement per batch off the path of every event, and a batch
//! that maps to nothing (rowhook's own writes come back through the binlog
//! this way) from writing a checkpoint that comes back, forever. A checkpoint
//! that lags costs nothing but reading again: after a crash the reader reads
//! those events a second time, and storing their deliveries again is a no-op
//! (the unique key on `(webhook_id, event_id)`; event ids are stable).
//!
//! The router owns one [`DeliveryActor`] per webhook and keeps them in step
//! with the `webhooks` table ([`ReloadWebhooks`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::delivery::{DeliveryActor, DeliveryContext, UpdateWebhook, Wake};
use crate::decoder::{Position, Transaction};
use crate::handoff::{self, HandOff};
use crate::store::{DueDelivery, NewDelivery, StoreError, Webhook};

/// The checkpoint is written at most this often (and at shutdown); in
/// between the router only remembers it.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Committed transactions, in binlog order. Answered once stored.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct CommitBatch {
    pub transactions: Arc<Vec<Transaction>>,
}

/// Re-read the `webhooks` table and update the delivery actors.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct ReloadWebhooks;

/// Something was queued for this webhook outside the binlog (admin retry, test event).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WakeWebhook(pub u64);

impl Handler<WakeWebhook> for Router {
    type Result = ();
    fn handle(&mut self, WakeWebhook(id): WakeWebhook, _: &mut Context<Self>) {
        if let Some(subscriber) = self.webhooks.get(&id) {
            subscriber.actor.do_send(Wake { now: true });
        }
    }
}

/// Write a checkpoint held back by laziness (at shutdown).
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct FlushCheckpoint;

/// A webhook, its delivery actor and the box the router hands its new rows over in.
struct Subscriber {
    webhook: Webhook,
    actor: Addr<DeliveryActor>,
    handoff: Arc<HandOff>,
}

pub struct Router {
    delivery: DeliveryContext,
    webhooks: HashMap<u64, Subscriber>,
    /// A checkpoint whose batch is stored, not yet written ([`CHECKPOINT_EVERY`]).
    unsaved_checkpoint: Option<Checkpoint>,
    last_checkpoint_write: Instant,
    /// Poll the webhooks table when its changes do not come through the binlog.
    poll_webhooks: Option<Duration>,
}

impl Router {
    pub fn new(delivery: DeliveryContext, poll_webhooks: Option<Duration>) -> Router {
        Router {
            delivery,
            webhooks: HashMap::new(),
            unsaved_checkpoint: None,
            last_checkpoint_write: Instant::now(),
            poll_webhooks,
        }
    }

    fn apply_webhooks(&mut self, list: Vec<Webhook>) {
        let mut seen = std::collections::HashSet::new();
        for webhook in list {
            seen.insert(webhook.id);
            match self.webhooks.get_mut(&webhook.id) {
                Some(known) => {
                    // The actor's own health writes come back here too: only
                    // a change of its settings makes it start over (and claim).
                    if known.webhook.settings_differ(&webhook) {
                        known.actor.do_send(UpdateWebhook(webhook.clone()));
                    }
                    known.webhook = webhook;
                }
                None => {
                    tracing::info!(webhook_id = webhook.id, url = %crate::sender::url_for_log(&webhook.url), active = webhook.is_active, "webhook loaded");
                    let handoff = Arc::new(HandOff::default());
                    let actor = DeliveryActor::new(webhook.clone(), self.delivery.clone(), handoff.clone()).start();
                    self.webhooks.insert(webhook.id, Subscriber { webhook, actor, handoff });
                }
            }
        }
        self.webhooks.retain(|id, _| {
            let keep = seen.contains(id);
            if !keep {
                tracing::info!(webhook_id = id, "webhook removed");
            }
            keep // dropping the last Addr stops the actor
        });
        let active = self.webhooks.values().filter(|s| s.webhook.is_active).count();
        let metrics = &self.delivery.metrics;
        metrics.webhooks.with_label_values(&["active"]).set(active as i64);
        metrics.webhooks.with_label_values(&["inactive"]).set((self.webhooks.len() - active) as i64);
    }
}

impl Actor for Router {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(every) = self.poll_webhooks {
            ctx.run_interval(every, |_, ctx| ctx.notify(ReloadWebhooks));
        }
    }
}

impl Handler<ReloadWebhooks> for Router {
    type Result = AtomicResponse<Self, Result<(), StoreError>>;

    fn handle(&mut self, _: ReloadWebhooks, _: &mut Context<Self>) -> Self::Result {
        let store = self.delivery.store.clone();
        AtomicResponse::new(Box::pin(async move { store.load_webhooks().await }.into_actor(self).map(
            |loaded, act, _| {
                act.apply_webhooks(loaded?);
                Ok(())
            },
        )))
    }
}

impl Handler<CommitBatch> for Router {
    type Result = AtomicResponse<Self, Result<(), StoreError>>;

    fn handle(&mut self, batch: CommitBatch, _: &mut Context<Self>) -> Self::Result {
        let store = self.delivery.store.clone();
        let reload = batch.transactions.iter().any(|t| t.webhooks_changed);
        let load = async move { if reload { store.load_webhooks().await.map(Some) } else { Ok(None) } };
        AtomicResponse::new(Box::pin(load.into_actor(self).then(move |loaded, act, _| {
            let prepared = loaded.map(|loaded| {
                if let Some(list) = loaded {
                    act.apply_webhooks(list);
                }
                act.fan_out(batch)
            });
            let store = act.delivery.store.clone();
            // The webhooks this batch reaches, each once (not per delivery).
            let mut subscribers: HashMap<u64, (Arc<HandOff>, Addr<DeliveryActor>)> = HashMap::new();
            if let Ok(Plan::Store { targets, .. }) = &prepared {
                for &(_, _, id) in targets {
                    if let (std::collections::hash_map::Entry::Vacant(slot), Some(s)) = (subscribers.entry(id), act.webhooks.get(&id)) {
                        slot.insert((s.handoff.clone(), s.actor.clone()));
                    }
                }
            }
            async move {
                let Plan::Store { transactions, targets, checkpoint, save_now } = prepared? else { return Ok(None) };
                if !targets.is_empty() {
                    let deliveries: Vec<NewDelivery<'_>> = targets
                        .iter()
                        .map(|&(t, e, webhook_id)| {
                            let event = &transactions[t].events[e];
                            NewDelivery { webhook_id, event_id: &event.id, event_type: &event.event_type, payload: &event.body }
                        })
                        .collect();
                    let ids = store.enqueue(&deliveries).await?;
                    hand_over(&deliveries, &ids, &subscribers);
                }
                if let (Some((position, gtid)), true) = (&checkpoint, save_now) {
                    store.save_checkpoint(position, gtid.as_deref()).await?;
                }
                Ok(checkpoint.map(|c| (c, save_now)))
            }
            .into_actor(act)
            .map(|stored: Result<Option<(Checkpoint, bool)>, StoreError>, act, _| {
                // Only now, with the batch's deliveries stored, may its end become the checkpoint.
                match stored? {
                    Some((_, true)) => {
                        act.unsaved_checkpoint = None;
                        act.last_checkpoint_write = Instant::now();
                    }
                    Some((checkpoint, false)) => act.unsaved_checkpoint = Some(checkpoint),
                    None => {}
                }
                Ok(())
            })
        })))
    }
}

/// Gives each webhook's actor its new rows (or tells it to claim them) and
/// wakes it.
fn hand_over(
    deliveries: &[NewDelivery<'_>],
    ids: &[Option<u64>],
    subscribers: &HashMap<u64, (Arc<HandOff>, Addr<DeliveryActor>)>,
) {
    // Per webhook: the rows and their payload bytes, or None when the actor must claim.
    let mut per_webhook: HashMap<u64, Option<(Vec<DueDelivery>, usize)>> = HashMap::new();
    for (delivery, id) in deliveries.iter().zip(ids) {
        let rows = per_webhook.entry(delivery.webhook_id).or_insert_with(|| Some((Vec::new(), 0)));
        match (id, rows.as_mut()) {
            (Some(id), Some((list, bytes))) if handoff::fits(list.len() + 1, *bytes + delivery.payload.len()) => {
                *bytes += delivery.payload.len();
                list.push(DueDelivery {
                    id: *id,
                    event_id: delivery.event_id.to_string(),
                    event_type: delivery.event_type.to_string(),
                    payload: delivery.payload.to_string(),
                    attempts: 0,
                });
            }
            // Not new (stored before), unknown, or more than the actor would hold.
            _ => *rows = None,
        }
    }
    for (webhook_id, rows) in per_webhook {
        let Some((handoff, actor)) = subscribers.get(&webhook_id) else { continue };
        match rows {
            Some((rows, _)) => handoff.push(rows),
            None => handoff.mark_incomplete(),
        }
        // A full mailbox already holds a Wake, which takes what the box holds.
        let _ = actor.try_send(Wake { now: false });
    }
}

/// A binlog position and the GTID state there.
type Checkpoint = (Position, Option<String>);

/// What a batch needs stored.
enum Plan {
    Nothing,
    Store {
        transactions: Arc<Vec<Transaction>>,
        /// (transaction index, event index, webhook id)
        targets: Vec<(usize, usize, u64)>,
        /// The end of the batch's last complete transaction (None when the
        /// batch ends inside a large transaction).
        checkpoint: Option<Checkpoint>,
        /// Write the checkpoint now, or only remember it ([`CHECKPOINT_EVERY`]).
        save_now: bool,
    },
}

impl Router {
    fn fan_out(&mut self, batch: CommitBatch) -> Plan {
        // The checkpoint moves to the end of the last complete transaction; the
        // parts of a transaction still open leave it where it is.
        let last_complete = batch.transactions.iter().rev().find(|t| t.complete);
        let checkpoint = last_complete.map(|t| (t.end.clone(), t.gtid.clone()));
        let mut targets = Vec::new();
        for (t, transaction) in batch.transactions.iter().enumerate() {
            for (e, event) in transaction.events.iter().enumerate() {
                for Subscriber { webhook, .. } in self.webhooks.values() {
                    if webhook.is_active && webhook.subscribes_to(&event.event_type) {
                        targets.push((t, e, webhook.id));
                    }
                }
            }
        }
        // Commit order per webhook follows the delivery ids: insert in binlog order.
        targets.sort_by_key(|&(t, e, w)| (t, e, w));
        let save_now = checkpoint.is_some() && self.last_checkpoint_write.elapsed() >= CHECKPOINT_EVERY;
        if targets.is_empty() && !save_now {
            // Nothing to store: the position may be remembered at once.
            if checkpoint.is_some() {
                self.unsaved_checkpoint = checkpoint;
            }
            return Plan::Nothing;
        }
        Plan::Store { transactions: batch.transactions, targets, checkpoint, save_now }
    }
}

impl Handler<FlushCheckpoint> for Router {
    type Result = AtomicResponse<Self, Result<(), StoreError>>;

    fn handle(&mut self, _: FlushCheckpoint, _: &mut Context<Self>) -> Self::Result {
        let store = self.delivery.store.clone();
        let unsaved = self.unsaved_checkpoint.take();
        AtomicResponse::new(Box::pin(
            async move {
                if let Some((position, gtid)) = unsaved {
                    store.save_checkpoint(&position, gtid.as_deref()).await?;
                }
                Ok(())
            }
            .into_actor(self),
        ))
    }
}
