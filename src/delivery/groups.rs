//! Which of a webhook's due deliveries a wave may send, so that they keep
//! the order the webhook's [`Ordering`] promises.
//!
//! Every delivery has a key: its event's group (`group`), the same key for
//! all (`webhook`), or its own id (`none`). Per key, deliveries go out one at
//! a time, in commit order (delivery id order), and a delivery waiting for
//! its retry holds back the later ones of its key: the key is *held*.
//! Different keys go out in parallel. A wave is a set of [`Chain`]s, one per
//! key, each sent in order and stopped at its first failure.
//!
//! Backfill rows (a table's existing rows, queued by a backfill) share the
//! webhook with its live events but must not bury them: a wave takes at most
//! [`BACKFILL_PER_WAVE`] of them (a backfill row beyond that closes its key
//! for this wave, so no later live row of its group overtakes it, and stays
//! pending for the next wave), and the wave starts its live chains first.
//! A live event arriving while a backfill streams waits for at most one such
//! wave, not for every backfill row queued before it.
//!
//! [`WavePlan`] builds a wave from rows offered oldest first: a claim from
//! the database (pending rows due or not: one that is not due holds its key)
//! or the rows the router handed over (all due, none attempted). [`Holds`]
//! is the actor's memory of the held keys between waves: rebuilt by every
//! claim from what the database says, so what it remembers is never more
//! than the rows a claim scanned (bounded), and never needed for
//! correctness across a restart: the database holds every pending row with
//! its `next_attempt_at`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::config::Ordering;
use crate::events::envelope::is_backfill_event;
use crate::state::store::DueDelivery;

/// The most backfill rows one wave sends (8 rounds of `max_in_flight` 16 at
/// most): the longest a live event waits behind a backfill is about one wave.
/// Measured (`make bench`, backfill scenario, one quiet run each): 64 gave
/// 6,238 rows/s with live p99 35.7 ms, 128 gave 9,079 rows/s with 36.8 ms.
pub const BACKFILL_PER_WAVE: usize = 128;

/// The key a delivery is ordered by under `ordering`.
pub fn key_of(ordering: Ordering, delivery: &DueDelivery) -> Cow<'_, str> {
    match (ordering, &delivery.group_key) {
        (Ordering::Webhook, _) => Cow::Borrowed(""),
        (Ordering::Group, Some(group)) => Cow::Borrowed(group.as_str()),
        // No group (a rule grouped by nothing, a test event), or no order: its own key.
        (Ordering::Group | Ordering::None, _) => Cow::Owned(format!("#{}", delivery.id)),
    }
}

/// The keys held back until their oldest pending delivery's retry is due.
#[derive(Debug, Default)]
pub struct Holds {
    until: HashMap<String, Instant>,
}

impl Holds {
    /// `key` waits until `until` (the later time, if held already).
    pub fn hold(&mut self, key: &str, until: Instant) {
        let at = self.until.entry(key.to_string()).or_insert(until);
        *at = (*at).max(until);
    }

    pub fn is_held(&self, key: &str) -> bool {
        self.until.contains_key(key)
    }

    /// When the first held key's retry falls due.
    pub fn next_due(&self) -> Option<Instant> {
        self.until.values().min().copied()
    }

    /// Whether a held key's retry is due (a claim must look at it).
    pub fn any_due(&self, now: Instant) -> bool {
        self.next_due().is_some_and(|at| at <= now)
    }

    pub fn clear(&mut self) {
        self.until.clear();
    }

    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

/// A key's deliveries in one wave, oldest first: sent one after the other.
#[derive(Debug, PartialEq)]
pub struct Chain {
    pub key: String,
    pub deliveries: Vec<DueDelivery>,
}

/// A wave being put together; see the module docs.
#[derive(Debug)]
pub struct WavePlan {
    ordering: Ordering,
    limit: usize,
    chains: Vec<Chain>,
    /// Key -> index in `chains`, or None once the chain is closed (a later
    /// delivery of the key is not due: nothing after it may go).
    open: HashMap<String, Option<usize>>,
    rows: usize,
    /// Backfill rows in the wave (at most [`BACKFILL_PER_WAVE`]).
    backfill_rows: usize,
    /// A due row was left for a later wave (the backfill share was full).
    left_out: bool,
    /// The highest id offered (attempted or held back).
    max_id: Option<u64>,
}

/// A row offered to a [`WavePlan`].
#[derive(Debug)]
pub struct Offered {
    pub delivery: DueDelivery,
    /// Due for an attempt now (handed-over rows always are).
    pub due: bool,
    /// How long until it is due.
    pub wait: Duration,
}

impl WavePlan {
    /// A wave of at most `limit` deliveries.
    pub fn new(ordering: Ordering, limit: usize) -> WavePlan {
        WavePlan { ordering, limit, chains: Vec::new(), open: HashMap::new(), rows: 0, backfill_rows: 0, left_out: false, max_id: None }
    }

    /// Whether the wave has room for more.
    pub fn has_room(&self) -> bool {
        self.rows < self.limit
    }

    /// Offers the next row (rows come oldest first). A row of a held key is
    /// left where it is; one that is not due holds its key from here on.
    pub fn offer(&mut self, row: Offered, holds: &mut Holds, now: Instant) {
        self.max_id = self.max_id.max(Some(row.delivery.id));
        let key = key_of(self.ordering, &row.delivery).into_owned();
        if !row.due {
            holds.hold(&key, now + row.wait);
            self.open.insert(key, None);
            return;
        }
        if holds.is_held(&key) || !self.has_room() {
            return;
        }
        let backfill = is_backfill_event(&row.delivery.event_id);
        match self.open.get(&key) {
            Some(None) => {} // closed: an earlier row of the key waits
            Some(Some(_)) | None if backfill && self.backfill_rows >= BACKFILL_PER_WAVE => {
                // The wave's backfill share is full: this row and every later one of its key wait.
                self.open.insert(key, None);
                self.left_out = true;
            }
            Some(Some(index)) => {
                self.chains[*index].deliveries.push(row.delivery);
                self.rows += 1;
                self.backfill_rows += usize::from(backfill);
            }
            None => {
                self.open.insert(key.clone(), Some(self.chains.len()));
                self.chains.push(Chain { key, deliveries: vec![row.delivery] });
                self.rows += 1;
                self.backfill_rows += usize::from(backfill);
            }
        }
    }

    /// Deliveries in the wave.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The highest delivery id offered.
    pub fn max_id(&self) -> Option<u64> {
        self.max_id
    }

    /// Whether a due row was left for a later wave (the next one must claim).
    pub fn left_out(&self) -> bool {
        self.left_out
    }

    /// The wave's chains: those that start with a live event first, then the
    /// backfill's, each in the order their first deliveries were offered.
    pub fn into_chains(mut self) -> Vec<Chain> {
        self.chains.sort_by_key(|chain| chain.deliveries.first().is_some_and(|d| is_backfill_event(&d.event_id)));
        self.chains
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64, group: &str) -> DueDelivery {
        DueDelivery {
            id,
            event_id: format!("evt_{id}"),
            event_type: "note.added".into(),
            payload: "{}".into(),
            attempts: 0,
            group_key: Some(group.into()),
        }
    }

    fn due(id: u64, group: &str) -> Offered {
        Offered { delivery: row(id, group), due: true, wait: Duration::ZERO }
    }

    fn waiting(id: u64, group: &str, secs: u64) -> Offered {
        Offered { delivery: row(id, group), due: false, wait: Duration::from_secs(secs) }
    }

    fn backfill(id: u64, group: &str) -> Offered {
        let mut row = due(id, group);
        row.delivery.event_id = format!("bf_1_{id:032x}");
        row
    }

    #[test]
    fn a_wave_takes_a_share_of_backfill_rows_and_starts_live_chains_first() {
        let mut holds = Holds::default();
        let now = Instant::now();
        let mut plan = WavePlan::new(Ordering::Group, 256);
        // More backfill rows than a wave's share, each its own group, then
        // live rows: one of a group whose backfill row was left out, one of a
        // group whose backfill row is in, one of a group with no backfill row.
        let share = BACKFILL_PER_WAVE as u64;
        for id in 1..=share + 10 {
            plan.offer(backfill(id, &format!("t{id}")), &mut holds, now);
        }
        plan.offer(due(1000, &format!("t{}", share + 5)), &mut holds, now);
        plan.offer(due(1001, "t1"), &mut holds, now);
        plan.offer(due(1002, "live"), &mut holds, now);
        assert!(plan.left_out(), "backfill rows were left for the next wave");
        assert_eq!(plan.len(), BACKFILL_PER_WAVE + 2);
        let chains = plan.into_chains();
        assert_eq!(ids(&chains[..2]), [("live".to_string(), vec![1002]), ("t1".to_string(), vec![1, 1001])], "live chains first");
        assert!(
            chains.iter().all(|c| !c.deliveries.iter().any(|d| d.id == 1000 || d.id == share + 5)),
            "the live row of a left-out backfill row's group waits behind it"
        );
        assert_eq!(chains.iter().map(|c| c.deliveries.len()).sum::<usize>(), BACKFILL_PER_WAVE + 2);

        // Webhook order: the share closes the one key; nothing after it goes.
        let mut plan = WavePlan::new(Ordering::Webhook, 256);
        for id in 1..=share + 1 {
            plan.offer(backfill(id, "x"), &mut holds, now);
        }
        plan.offer(due(1000, "x"), &mut holds, now);
        assert_eq!((plan.len(), plan.left_out()), (BACKFILL_PER_WAVE, true));

        // Live rows alone are never left out.
        let mut plan = WavePlan::new(Ordering::Group, 256);
        for id in 1..=share + 10 {
            plan.offer(due(id, &format!("t{id}")), &mut holds, now);
        }
        assert_eq!((plan.len(), plan.left_out()), (BACKFILL_PER_WAVE + 10, false));
    }

    fn ids(chains: &[Chain]) -> Vec<(String, Vec<u64>)> {
        chains.iter().map(|c| (c.key.clone(), c.deliveries.iter().map(|d| d.id).collect())).collect()
    }

    #[test]
    fn groups_become_chains_in_order_and_a_waiting_head_holds_its_group() {
        let now = Instant::now();
        let mut holds = Holds::default();
        let mut plan = WavePlan::new(Ordering::Group, 100);
        for offered in [due(1, "7"), due(2, "8"), waiting(3, "9", 5), due(4, "7"), due(5, "9"), due(6, "8")] {
            plan.offer(offered, &mut holds, now);
        }
        assert_eq!(plan.max_id(), Some(6));
        assert_eq!(ids(&plan.into_chains()), [("7".to_string(), vec![1, 4]), ("8".to_string(), vec![2, 6])]);
        assert!(holds.is_held("9"), "the group whose oldest delivery waits is held");
        assert_eq!(holds.next_due(), Some(now + Duration::from_secs(5)));
        assert!(!holds.any_due(now) && holds.any_due(now + Duration::from_secs(5)));
    }

    #[test]
    fn a_waiting_delivery_behind_a_due_one_closes_the_chain_there() {
        let now = Instant::now();
        let mut holds = Holds::default();
        let mut plan = WavePlan::new(Ordering::Group, 100);
        for offered in [due(1, "7"), waiting(2, "7", 1), due(3, "7")] {
            plan.offer(offered, &mut holds, now);
        }
        assert_eq!(ids(&plan.into_chains()), [("7".to_string(), vec![1])]);
        assert!(holds.is_held("7"));
    }

    #[test]
    fn held_keys_are_skipped_and_the_limit_is_kept() {
        let now = Instant::now();
        let mut holds = Holds::default();
        holds.hold("7", now + Duration::from_secs(30));
        let mut plan = WavePlan::new(Ordering::Group, 2);
        for offered in [due(1, "7"), due(2, "8"), due(3, "9"), due(4, "8")] {
            plan.offer(offered, &mut holds, now);
        }
        assert!(!plan.has_room());
        assert_eq!(ids(&plan.into_chains()), [("8".to_string(), vec![2]), ("9".to_string(), vec![3])]);
    }

    #[test]
    fn webhook_order_is_one_chain_and_none_is_one_chain_per_delivery() {
        let now = Instant::now();
        let mut plan = WavePlan::new(Ordering::Webhook, 10);
        for offered in [due(1, "7"), due(2, "8"), due(3, "7")] {
            plan.offer(offered, &mut Holds::default(), now);
        }
        assert_eq!(ids(&plan.into_chains()), [(String::new(), vec![1, 2, 3])]);

        let mut holds = Holds::default();
        let mut plan = WavePlan::new(Ordering::Webhook, 10);
        for offered in [waiting(1, "7", 3), due(2, "8")] {
            plan.offer(offered, &mut holds, now);
        }
        assert!(plan.is_empty(), "strict order: everything waits behind a retry");

        let mut plan = WavePlan::new(Ordering::None, 10);
        for offered in [waiting(1, "7", 3), due(2, "7"), due(3, "7")] {
            plan.offer(offered, &mut Holds::default(), now);
        }
        assert_eq!(ids(&plan.into_chains()), [("#2".to_string(), vec![2]), ("#3".to_string(), vec![3])]);
    }

    #[test]
    fn deliveries_without_a_group_are_groups_of_their_own() {
        let mut d = row(9, "x");
        d.group_key = None;
        assert_eq!(key_of(Ordering::Group, &d), "#9");
        assert_eq!(key_of(Ordering::Webhook, &d), "");
        assert_eq!(key_of(Ordering::Group, &row(9, "x")), "x");
    }
}
