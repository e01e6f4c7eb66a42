//! The router actor: events to deliveries.
//!
//! For each batch of committed transactions from the reader it gives each
//! event its id and body (the events stage) and picks, per event, the
//! active webhooks subscribed to its type, stores those
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
//! Which webhooks an event goes to is decided by [`Subscriptions`]: the
//! subscriptions in force at the event's commit, moved forward by the
//! `webhooks` table's changed rows that come through the binlog in the same
//! batches, in commit order; saved with the checkpoint. The router also owns
//! one [`DeliveryActor`] per webhook and keeps each in step with its webhook
//! as it is now: from the same changed rows, and from reading the table
//! ([`LoadWebhooks`], [`ReloadWebhooks`]) where a read says which changes it
//! holds. With a state database on another server no change comes through
//! the binlog, and the table is polled instead.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::actor::{DeliveryActor, DeliveryContext, UpdateWebhook, Wake};
use crate::backfill::windows::{self, ChunkBox, Closed, Windows};
use crate::events::envelope::{self, OutgoingEvent};
use crate::source::decoder::{Position, Transaction};
use crate::source::reader::CommitBatch;
use crate::delivery::handoff::{self, HandOff};
use crate::state::store::{DueDelivery, NewDelivery, SavedView, StoreError, Webhook};
use crate::delivery::subscriptions::{self, Subscriptions, WebhookChange};

/// The checkpoint is written at most this often (and at shutdown); in
/// between the router only remembers it.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// At start: read the `webhooks` table for the delivery actors; route by
/// the subscriptions saved with the checkpoint (`saved`, JSON), or, without
/// them, by the table as read.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct LoadWebhooks {
    pub saved: Option<String>,
}

/// Re-read the `webhooks` table and update the delivery actors (after a
/// change through the admin API, whose commit has returned; and the poll of
/// a state database on another server, where it updates the routing too).
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
    /// Events of the parts of an open (large) transaction routed so far.
    open_events: usize,
    /// Backfills' watermark windows open in the stream, and their chunks.
    windows: Windows,
    chunks: Arc<ChunkBox>,
    /// Every webhook as it is now, with its delivery actor.
    webhooks: HashMap<u64, Subscriber>,
    /// The actors' view was read from the table as of this position: changed
    /// rows at or before it are in it already (None: apply every change).
    webhooks_as_of: Option<Position>,
    /// Who receives what, as of the reader's position.
    subscriptions: Subscriptions,
    /// A checkpoint whose batch is stored, not yet written ([`CHECKPOINT_EVERY`]).
    unsaved_checkpoint: Option<Checkpoint>,
    /// The subscriptions at the latest checkpoint, when not yet written with one.
    unsaved_view: Option<String>,
    last_checkpoint_write: Instant,
    /// Poll the webhooks table when its changes do not come through the binlog.
    poll_webhooks: Option<Duration>,
}

impl Router {
    pub fn new(delivery: DeliveryContext, chunks: Arc<ChunkBox>, poll_webhooks: Option<Duration>) -> Router {
        Router {
            delivery,
            windows: Windows::default(),
            chunks,
            open_events: 0,
            webhooks: HashMap::new(),
            webhooks_as_of: None,
            subscriptions: Subscriptions::default(),
            unsaved_checkpoint: None,
            unsaved_view: None,
            last_checkpoint_write: Instant::now(),
            poll_webhooks,
        }
    }

    /// Changes of the webhooks table come through the binlog (else: polled).
    fn follows_binlog(&self) -> bool {
        self.poll_webhooks.is_none()
    }

    /// Makes the actors' view the table as read (as of `as_of`).
    fn apply_webhooks(&mut self, list: Vec<Webhook>, as_of: Option<Position>) {
        let seen: std::collections::HashSet<u64> = list.iter().map(|w| w.id).collect();
        for webhook in list {
            self.upsert_webhook(webhook);
        }
        let gone: Vec<u64> = self.webhooks.keys().filter(|id| !seen.contains(id)).copied().collect();
        for id in gone {
            self.remove_webhook(id);
        }
        self.webhooks_as_of = as_of;
        self.count_webhooks();
    }

    /// A webhook as it is now: a new actor, or its actor told of the change.
    fn upsert_webhook(&mut self, webhook: Webhook) {
        self.seal_plaintext(&webhook);
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
                tracing::info!(webhook_id = webhook.id, url = %crate::delivery::sender::url_for_log(&webhook.url), active = webhook.is_active, "webhook loaded");
                let handoff = Arc::new(HandOff::default());
                let actor = DeliveryActor::new(webhook.clone(), self.delivery.clone(), handoff.clone()).start();
                self.webhooks.insert(webhook.id, Subscriber { webhook, actor, handoff });
            }
        }
    }

    /// With `[admin] secrets_key`, a plaintext secret seen (at start, in a
    /// binlog row image of a row the PHP app or SQL wrote, in a poll) is
    /// sealed in the table: an `UPDATE` guarded by the plaintext, so it does
    /// nothing when the row changed meanwhile, and whose own row image holds
    /// the sealed secret, so it is not sealed again (no loop). In the
    /// background: the webhook's deliveries use the plaintext meanwhile.
    fn seal_plaintext(&self, webhook: &Webhook) {
        let keys = &self.delivery.secrets;
        if !keys.seals() {
            return;
        }
        let plain = |stored: &str| !crate::state::secrets::is_sealed(stored);
        let columns = [(false, Some(&webhook.secret)), (true, webhook.previous_secret.as_ref())];
        let work: Vec<(bool, String, String)> = columns
            .into_iter()
            .filter_map(|(previous, stored)| {
                let stored = stored.filter(|s| plain(s))?;
                match keys.seal(stored) {
                    Ok(sealed) => Some((previous, stored.clone(), sealed)),
                    Err(e) => {
                        tracing::warn!(webhook_id = webhook.id, error = %e, "a plaintext secret could not be sealed; it stays plaintext");
                        None
                    }
                }
            })
            .collect();
        if work.is_empty() {
            return;
        }
        let (store, id) = (self.delivery.store.clone(), webhook.id);
        actix_rt::spawn(async move {
            for (previous, plain, sealed) in work {
                let column = if previous { "previous_secret" } else { "secret" };
                match store.replace_stored_secret(id, previous, &plain, &sealed).await {
                    Ok(true) => tracing::info!(webhook_id = id, column, "a plaintext webhook secret is sealed in the table now"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(webhook_id = id, column, error = %e, "could not seal a plaintext webhook secret; tried again when the row is seen next"),
                }
            }
        });
    }

    fn remove_webhook(&mut self, id: u64) {
        // Dropping the last Addr stops the actor.
        if self.webhooks.remove(&id).is_some() {
            tracing::info!(webhook_id = id, "webhook removed");
        }
    }

    fn count_webhooks(&self) {
        let active = self.webhooks.values().filter(|s| s.webhook.is_active).count();
        let metrics = &self.delivery.metrics;
        metrics.webhooks.with_label_values(&["active"]).set(active as i64);
        metrics.webhooks.with_label_values(&["inactive"]).set((self.webhooks.len() - active) as i64);
    }

    /// The changed rows of the webhooks table in a transaction that ends at
    /// `at`: the routing moves forward, and the actors follow when the
    /// change is newer than their table read.
    fn apply_webhook_rows(&mut self, transaction: &Transaction) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let at = &transaction.end;
        let newer = self.webhooks_as_of.as_ref().is_none_or(|as_of| !subscriptions::at_or_before(at, as_of));
        for row in &transaction.webhook_rows {
            let changes = match subscriptions::changes_of(row, now) {
                Ok(changes) => changes,
                Err(e) => {
                    tracing::error!(position = %at, error = %e, "a changed row of the webhooks table cannot be read; ignored");
                    continue;
                }
            };
            for change in changes {
                if self.subscriptions.apply(&change, at) {
                    tracing::info!(webhook_id = change_id(&change), position = %at, "subscription changed");
                }
                if newer {
                    match change {
                        WebhookChange::Upsert(webhook) => self.upsert_webhook(webhook),
                        WebhookChange::Remove(id) => self.remove_webhook(id),
                    }
                }
            }
        }
        if newer {
            self.count_webhooks();
        }
    }
}

fn change_id(change: &WebhookChange) -> u64 {
    match change {
        WebhookChange::Upsert(webhook) => webhook.id,
        WebhookChange::Remove(id) => *id,
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

/// The webhooks table, with the binlog position it was read at when routing follows the binlog.
async fn read_webhooks(store: crate::state::store::Store, binlog: bool) -> Result<(Vec<Webhook>, Option<crate::state::store::BinlogPosition>), StoreError> {
    if binlog {
        store.load_webhooks_at().await
    } else {
        store.load_webhooks().await.map(|list| (list, None))
    }
}

impl Handler<LoadWebhooks> for Router {
    type Result = AtomicResponse<Self, Result<(), StoreError>>;

    fn handle(&mut self, LoadWebhooks { saved }: LoadWebhooks, _: &mut Context<Self>) -> Self::Result {
        let store = self.delivery.store.clone();
        let binlog = self.follows_binlog();
        let save = store.clone();
        AtomicResponse::new(Box::pin(
            read_webhooks(store, binlog)
                .into_actor(self)
                .map(move |loaded, act, _| {
                    let (list, as_of) = loaded?;
                    let as_of = as_of.map(Position::from);
                    let saved = saved.filter(|_| binlog).and_then(|json| match Subscriptions::from_json(&json) {
                        Ok(view) => Some(view),
                        Err(e) => {
                            tracing::warn!(error = %e, "the subscriptions saved with the checkpoint do not parse; routing by the webhooks table as it is now");
                            None
                        }
                    });
                    act.subscriptions = match saved {
                        Some(view) => view,
                        None if binlog => {
                            tracing::info!("no subscriptions saved with the checkpoint (first start, or a new position): events already in the binlog are routed by the webhooks table as it is now");
                            Subscriptions::from_table(&list, as_of.clone())
                        }
                        None => Subscriptions::polled(&list),
                    };
                    act.apply_webhooks(list, as_of);
                    // A view read from the table is saved at once: it holds
                    // its position, so it is right for the checkpoint there is.
                    Ok(act.subscriptions.changed().then(|| act.subscriptions.to_json()))
                })
                .then(move |view: Result<Option<String>, StoreError>, act, _| {
                    async move {
                        if let Some(json) = view? {
                            save.save_subscriptions(&json).await?;
                        }
                        Ok(())
                    }
                    .into_actor(act)
                }),
        ))
    }
}

impl Handler<ReloadWebhooks> for Router {
    type Result = AtomicResponse<Self, Result<(), StoreError>>;

    fn handle(&mut self, _: ReloadWebhooks, _: &mut Context<Self>) -> Self::Result {
        let store = self.delivery.store.clone();
        let binlog = self.follows_binlog();
        AtomicResponse::new(Box::pin(
            read_webhooks(store, binlog)
                .into_actor(self)
                .map(move |loaded, act, _| {
                    let (list, as_of) = loaded?;
                    let as_of = as_of.map(Position::from);
                    if binlog {
                        // A read without a position cannot tell which binlog
                        // changes it holds: the actors keep following those.
                        if as_of.is_some() {
                            act.apply_webhooks(list, as_of);
                        }
                    } else {
                        // Nothing comes through the binlog: the table as polled is all there is.
                        act.subscriptions = Subscriptions::polled(&list);
                        act.apply_webhooks(list, None);
                    }
                    Ok(())
                }),
        ))
    }
}

impl Handler<CommitBatch> for Router {
    type Result = AtomicResponse<Self, Result<(), StoreError>>;

    fn handle(&mut self, batch: CommitBatch, _: &mut Context<Self>) -> Self::Result {
        // A batch that fails to store is sent again: route it again from the same view.
        let view_before = batch.transactions.iter().any(|t| !t.webhook_rows.is_empty()).then(|| (self.subscriptions.clone(), self.unsaved_view.clone()));
        let open_events = self.open_events;
        let windows_before = batch.transactions.iter().any(|t| !t.watermark_rows.is_empty()).then(|| self.windows.clone());
        let (prepared, closed) = self.fan_out(batch);
        if let Plan::Nothing = prepared {
            // A chunk whose rows all changed meanwhile (or mapped to nothing): nothing to store.
            for chunk in closed {
                let _ = chunk.reply.send(chunk.report);
            }
            return AtomicResponse::new(Box::pin(async { Ok(()) }.into_actor(self)));
        }
        let store = self.delivery.store.clone();
        // The webhooks this batch reaches, each once (not per delivery).
        let mut subscribers: HashMap<u64, (Arc<HandOff>, Addr<DeliveryActor>)> = HashMap::new();
        if let Plan::Store { targets, .. } = &prepared {
            for &(_, _, id) in targets {
                if let (std::collections::hash_map::Entry::Vacant(slot), Some(s)) = (subscribers.entry(id), self.webhooks.get(&id)) {
                    slot.insert((s.handoff.clone(), s.actor.clone()));
                }
            }
        }
        let view = match &prepared {
            Plan::Store { save_now: true, .. } => self.unsaved_view.take(),
            _ => None,
        };
        let view_taken = view.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let Plan::Store { events, targets, checkpoint, save_now } = prepared else { return Ok(None) };
                if !targets.is_empty() {
                    let deliveries: Vec<NewDelivery<'_>> = targets
                        .iter()
                        .map(|&(t, e, webhook_id)| {
                            let event = &events[t][e];
                            NewDelivery {
                                webhook_id,
                                event_id: &event.id,
                                event_type: &event.event_type,
                                payload: &event.body,
                                group_key: event.group.as_deref(),
                            }
                        })
                        .collect();
                    let ids = store.enqueue(&deliveries).await?;
                    hand_over(&deliveries, &ids, &subscribers);
                }
                if let (Some((position, gtid)), true) = (&checkpoint, save_now) {
                    let saved = view.as_deref().map_or(SavedView::Unchanged, SavedView::Set);
                    store.save_checkpoint(position.stored(), gtid.as_deref(), saved).await?;
                }
                Ok(checkpoint.map(|c| (c, save_now)))
            }
            .into_actor(self)
            .map(move |stored: Result<Option<(Checkpoint, bool)>, StoreError>, act, _| {
                // Only now, with the batch's deliveries stored, may its end become the checkpoint.
                match stored {
                    Ok(Some((_, true))) => {
                        act.unsaved_checkpoint = None;
                        act.last_checkpoint_write = Instant::now();
                    }
                    Ok(Some((checkpoint, false))) => act.unsaved_checkpoint = Some(checkpoint),
                    Ok(None) => {}
                    Err(e) => {
                        act.open_events = open_events;
                        // The chunks closed in this batch are read again (their replies dropped).
                        if let Some(windows) = windows_before {
                            act.windows = windows;
                        }
                        match view_before {
                            Some((subscriptions, unsaved_view)) => {
                                act.subscriptions = subscriptions;
                                act.unsaved_view = unsaved_view;
                            }
                            // Not written after all: still to be written with the next checkpoint.
                            None => act.unsaved_view = act.unsaved_view.take().or(view_taken),
                        }
                        return Err(e);
                    }
                }
                for chunk in closed {
                    let _ = chunk.reply.send(chunk.report);
                }
                Ok(())
            }),
        ))
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
                    group_key: delivery.group_key.map(str::to_string),
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
        /// The events of each transaction of the batch.
        events: Vec<Vec<OutgoingEvent>>,
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
    /// Routes a batch: per transaction, its changes to the webhooks table
    /// first (the subscriptions in force at its commit), then its events.
    fn fan_out(&mut self, batch: CommitBatch) -> (Plan, Vec<Closed>) {
        // The checkpoint moves to the end of the last complete transaction; the
        // parts of a transaction still open leave it where it is.
        let last_complete = batch.transactions.iter().rposition(|t| t.complete);
        let checkpoint = last_complete.map(|i| (batch.transactions[i].end.clone(), batch.transactions[i].gtid.clone()));
        let mut targets = Vec::new();
        let mut closed = Vec::new();
        let mut events = Vec::with_capacity(batch.transactions.len());
        for (t, transaction) in batch.transactions.iter().enumerate() {
            if !transaction.webhook_rows.is_empty() {
                self.apply_webhook_rows(transaction);
            }
            // A large transaction's parts number their events on from the parts before.
            let mut mapped = envelope::events_of(transaction, self.open_events);
            self.open_events = if transaction.complete { 0 } else { self.open_events + mapped.len() };
            for (e, event) in mapped.iter().enumerate() {
                self.delivery.metrics.events.with_label_values(&[event.event_type.as_ref()]).inc();
                targets.extend(self.subscriptions.receivers(&event.event_type).map(|id| (t, e, id)));
            }
            // Backfills: keys changed inside a window; a chunk queued where its high watermark passes.
            if !self.windows.is_empty() && !transaction.changed_keys.is_empty() {
                self.windows.changed(&transaction.changed_keys);
            }
            for mark in transaction.watermark_rows.iter().filter_map(windows::watermark_of) {
                let Some(mut chunk) = self.windows.watermark(mark, &self.chunks) else { continue };
                let first = mapped.len();
                mapped.append(&mut chunk.events);
                targets.extend((first..mapped.len()).map(|e| (t, e, chunk.webhook_id)));
                closed.push(chunk);
            }
            events.push(mapped);
            if Some(t) == last_complete && self.subscriptions.changed() {
                // The view at the checkpoint, written with it.
                self.unsaved_view = Some(self.subscriptions.to_json());
            }
        }
        // A webhook deleted since has no history to add to (its deliveries went with it).
        targets.retain(|&(_, _, id)| self.webhooks.contains_key(&id));
        // Commit order per webhook follows the delivery ids: insert in binlog order.
        targets.sort_by_key(|&(t, e, w)| (t, e, w));
        let save_now = checkpoint.is_some() && self.last_checkpoint_write.elapsed() >= CHECKPOINT_EVERY;
        if targets.is_empty() && !save_now {
            // Nothing to store: the position may be remembered at once.
            if checkpoint.is_some() {
                self.unsaved_checkpoint = checkpoint;
            }
            return (Plan::Nothing, closed);
        }
        (Plan::Store { events, targets, checkpoint, save_now }, closed)
    }
}

impl Handler<FlushCheckpoint> for Router {
    type Result = AtomicResponse<Self, Result<(), StoreError>>;

    fn handle(&mut self, _: FlushCheckpoint, _: &mut Context<Self>) -> Self::Result {
        let store = self.delivery.store.clone();
        let unsaved = self.unsaved_checkpoint.take();
        let view = self.unsaved_view.take();
        AtomicResponse::new(Box::pin(
            async move {
                if let Some((position, gtid)) = unsaved {
                    let saved = view.as_deref().map_or(SavedView::Unchanged, SavedView::Set);
                    store.save_checkpoint(position.stored(), gtid.as_deref(), saved).await?;
                }
                Ok(())
            }
            .into_actor(self),
        ))
    }
}
