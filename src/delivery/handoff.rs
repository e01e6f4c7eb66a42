//! Fresh deliveries handed from the router to a delivery actor, so that a
//! delivery just enqueued does not wait for a claim query to find it again.
//!
//! The database stays the only queue of record: the router hands over a
//! delivery only after its row is committed, and the actor records every
//! attempt in that row as before. The hand-off only saves the round trip that
//! reads the rows back. Whenever the actor cannot be sure the hand-off showed
//! it everything due, in commit order, it falls back to claiming from the
//! database:
//!
//! - [`HandOff`] is the bounded box between the two: the router [`push`]es
//!   each batch's rows (or [`mark_incomplete`]s it when it has no row ids or
//!   too many rows), the actor [`take`]s them when it starts a wave. A full
//!   box drops its contents and says so; the rows are still in the database.
//! - [`Sequencer`] is the actor's side: it knows the highest delivery id the
//!   actor has attempted, and whether everything due up to there has been
//!   attempted ("in order"). Only then may handed-over rows be sent without a
//!   claim: after a failure, a full claim, a lost hand-off, an operator's
//!   retry or a restart, the next wave claims.
//!
//! [`push`]: HandOff::push
//! [`mark_incomplete`]: HandOff::mark_incomplete
//! [`take`]: HandOff::take

use std::sync::Mutex;

use crate::state::store::DueDelivery;

/// The most rows a [`HandOff`] holds; beyond it the actor claims instead.
pub const CAPACITY: usize = 256;
/// The most payload bytes a [`HandOff`] holds (large events are claimed:
/// the box must not double what a wave already holds in memory).
pub const CAPACITY_BYTES: usize = 1 << 20;

/// Whether `rows` rows of `bytes` payload bytes in all fit in a box.
pub fn fits(rows: usize, bytes: usize) -> bool {
    rows <= CAPACITY && bytes <= CAPACITY_BYTES
}

/// Rows enqueued for one webhook that its actor has not picked up yet.
#[derive(Debug, Default)]
pub struct HandOff {
    queue: Mutex<Boxed>,
}

/// The box's contents and their payload bytes (kept, not summed per push).
#[derive(Debug, Default)]
struct Boxed {
    taken: Taken,
    payload_bytes: usize,
}

/// What [`HandOff::take`] gives the actor.
#[derive(Debug, Default)]
pub struct Taken {
    /// Handed-over rows, in commit order.
    pub deliveries: Vec<DueDelivery>,
    /// Something was enqueued that is not in `deliveries` (dropped when the
    /// box was full, or never handed over): the actor must claim.
    pub incomplete: bool,
}

impl HandOff {
    /// Hands over freshly committed rows (in commit order).
    pub fn push(&self, deliveries: Vec<DueDelivery>) {
        let mut queue = self.lock();
        let bytes = queue.payload_bytes + deliveries.iter().map(|d| d.payload.len()).sum::<usize>();
        if queue.taken.incomplete || !fits(queue.taken.deliveries.len() + deliveries.len(), bytes) {
            // The actor claims anyway: holding rows for it would only cost memory.
            queue.taken.deliveries.clear();
            queue.taken.incomplete = true;
            queue.payload_bytes = 0;
        } else {
            queue.taken.deliveries.extend(deliveries);
            queue.payload_bytes = bytes;
        }
    }

    /// Rows were enqueued that the actor must find by claiming.
    pub fn mark_incomplete(&self) {
        let mut queue = self.lock();
        queue.taken.deliveries.clear();
        queue.taken.incomplete = true;
        queue.payload_bytes = 0;
    }

    /// Everything handed over since the last take.
    pub fn take(&self) -> Taken {
        std::mem::take(&mut *self.lock()).taken
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Boxed> {
        // Nothing that holds the lock can panic; a poisoned box is still consistent.
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Where the next wave's deliveries come from.
#[derive(Debug, PartialEq)]
pub enum WaveSource {
    /// Send these (handed over, in order, none attempted yet).
    Fresh(Vec<DueDelivery>),
    /// Claim due rows from the database.
    Claim,
    /// Nothing to do: what was handed over has been attempted already.
    Idle,
}

/// Why a wave is being considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The router handed rows over.
    HandedOver,
    /// The periodic tick, a retry falling due, a full wave's follow-up, an
    /// operator's request: look in the database.
    Look,
}

/// How a wave ended, for [`Sequencer::finished`].
#[derive(Debug, Clone, Copy)]
pub struct WaveEnd {
    /// The wave claimed from the database (rather than sending handed-over rows).
    pub claimed: bool,
    /// The highest delivery id among them.
    pub max_id: Option<u64>,
    /// It stopped at a failed attempt (the rest stay pending).
    pub stopped_on_failure: bool,
    /// The claim was full: more may be due.
    pub full: bool,
}

/// The actor's memory of what it has attempted.
#[derive(Debug, Default)]
pub struct Sequencer {
    /// The highest delivery id attempted by this actor.
    attempted_up_to: u64,
    /// Every row due up to `attempted_up_to` has been attempted, and no row
    /// enqueued since was missed by the hand-off.
    in_order: bool,
}

impl Sequencer {
    /// Chooses the next wave from what was handed over.
    pub fn plan(&mut self, taken: Taken, trigger: Trigger) -> WaveSource {
        if taken.incomplete {
            self.in_order = false;
        }
        // Ids rise in commit order; anything else was attempted already or is
        // handed over twice (a batch stored again after a failed checkpoint).
        let mut last = self.attempted_up_to;
        let fresh: Vec<DueDelivery> = taken
            .deliveries
            .into_iter()
            .filter(|d| {
                let new = d.id > last;
                last = last.max(d.id);
                new
            })
            .collect();
        match (self.in_order, fresh.is_empty(), trigger) {
            (true, false, _) => WaveSource::Fresh(fresh),
            (true, true, Trigger::HandedOver) => WaveSource::Idle,
            _ => WaveSource::Claim,
        }
    }

    /// Something outside the hand-off may be due (an operator's retry or
    /// test event, a changed webhook): the next wave claims.
    pub fn forget_order(&mut self) {
        self.in_order = false;
    }

    /// Updates the memory after a wave whose attempts were recorded.
    pub fn finished(&mut self, end: WaveEnd) {
        if let Some(max_id) = end.max_id {
            self.attempted_up_to = self.attempted_up_to.max(max_id);
        }
        if end.stopped_on_failure || end.full {
            self.in_order = false;
        } else if end.claimed {
            // A claim that was not full saw every due row committed before it.
            self.in_order = true;
        }
    }

    /// A wave failed to claim or to record: its rows stay pending, and the
    /// next wave claims them again.
    pub fn failed(&mut self) {
        self.in_order = false;
    }

    #[cfg(test)]
    fn in_order(&self) -> bool {
        self.in_order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64) -> DueDelivery {
        DueDelivery {
            id,
            event_id: format!("evt_{id}"),
            event_type: "note.added".into(),
            payload: "{}".into(),
            attempts: 0,
            group_key: None,
        }
    }

    fn ids(source: &WaveSource) -> Vec<u64> {
        match source {
            WaveSource::Fresh(rows) => rows.iter().map(|d| d.id).collect(),
            _ => panic!("expected a fresh wave, got {source:?}"),
        }
    }

    fn claim_end(ids: &[u64], full: bool) -> WaveEnd {
        WaveEnd { claimed: true, max_id: ids.iter().copied().max(), stopped_on_failure: false, full }
    }

    fn fresh_end(ids: &[u64]) -> WaveEnd {
        WaveEnd { claimed: false, max_id: ids.iter().copied().max(), stopped_on_failure: false, full: false }
    }

    /// An actor that has just claimed (not full) and is in order.
    fn in_order_after(claimed: &[u64]) -> Sequencer {
        let mut s = Sequencer::default();
        assert_eq!(s.plan(Taken::default(), Trigger::Look), WaveSource::Claim);
        s.finished(claim_end(claimed, false));
        assert!(s.in_order());
        s
    }

    #[test]
    fn a_new_actor_claims_first_even_with_rows_handed_over() {
        let mut s = Sequencer::default();
        let taken = Taken { deliveries: vec![row(5)], incomplete: false };
        assert_eq!(s.plan(taken, Trigger::HandedOver), WaveSource::Claim, "rows older than the hand-off may be pending");
    }

    #[test]
    fn after_a_claim_that_was_not_full_handed_over_rows_go_out_directly() {
        let mut s = in_order_after(&[1, 2, 3]);
        let taken = Taken { deliveries: vec![row(4), row(7)], incomplete: false };
        let wave = s.plan(taken, Trigger::HandedOver);
        assert_eq!(ids(&wave), vec![4, 7]);
        s.finished(fresh_end(&[4, 7]));
        let taken = Taken { deliveries: vec![row(9)], incomplete: false };
        assert_eq!(ids(&s.plan(taken, Trigger::HandedOver)), vec![9], "still in order after a fresh wave");
    }

    #[test]
    fn rows_a_claim_already_attempted_are_not_sent_again() {
        // The claim ran after the router's commit but before its hand-off arrived.
        let mut s = in_order_after(&[1, 2, 3, 4]);
        let taken = Taken { deliveries: vec![row(3), row(4), row(5)], incomplete: false };
        assert_eq!(ids(&s.plan(taken, Trigger::HandedOver)), vec![5]);
        let mut s = in_order_after(&[1, 2, 3, 4]);
        let taken = Taken { deliveries: vec![row(3), row(4)], incomplete: false };
        assert_eq!(s.plan(taken, Trigger::HandedOver), WaveSource::Idle);
    }

    #[test]
    fn a_row_handed_over_twice_goes_out_once() {
        let mut s = in_order_after(&[1]);
        let taken = Taken { deliveries: vec![row(2), row(3), row(2), row(3), row(4)], incomplete: false };
        assert_eq!(ids(&s.plan(taken, Trigger::HandedOver)), vec![2, 3, 4]);
    }

    #[test]
    fn a_full_claim_or_a_failure_means_claiming_again() {
        let mut s = Sequencer::default();
        s.plan(Taken::default(), Trigger::Look);
        s.finished(claim_end(&[1, 2], true));
        let taken = Taken { deliveries: vec![row(9)], incomplete: false };
        assert_eq!(s.plan(taken, Trigger::HandedOver), WaveSource::Claim, "rows between the full claim and 9 are pending");

        let mut s = in_order_after(&[1]);
        s.finished(WaveEnd { stopped_on_failure: true, ..fresh_end(&[2, 3]) });
        let taken = Taken { deliveries: vec![row(4)], incomplete: false };
        assert_eq!(s.plan(taken, Trigger::HandedOver), WaveSource::Claim, "2 or 3 waits for its retry before 4");

        let mut s = in_order_after(&[1]);
        s.failed();
        let taken = Taken { deliveries: vec![row(4)], incomplete: false };
        assert_eq!(s.plan(taken, Trigger::HandedOver), WaveSource::Claim, "an unrecorded wave stays pending");
    }

    #[test]
    fn a_lost_hand_off_means_claiming() {
        let mut s = in_order_after(&[1]);
        let taken = Taken { deliveries: vec![row(8)], incomplete: true };
        assert_eq!(s.plan(taken, Trigger::HandedOver), WaveSource::Claim);
    }

    #[test]
    fn an_operator_request_means_claiming() {
        let mut s = in_order_after(&[1]);
        s.forget_order();
        assert_eq!(s.plan(Taken::default(), Trigger::Look), WaveSource::Claim);
    }

    #[test]
    fn looking_claims_even_in_order() {
        // The periodic tick is the safety net for rows no hand-off announced.
        let mut s = in_order_after(&[1]);
        assert_eq!(s.plan(Taken::default(), Trigger::Look), WaveSource::Claim);
        // ...but handed-over rows go first.
        let taken = Taken { deliveries: vec![row(2)], incomplete: false };
        assert_eq!(ids(&s.plan(taken, Trigger::Look)), vec![2]);
    }

    #[test]
    fn the_box_keeps_order_and_drops_everything_when_full() {
        let handoff = HandOff::default();
        handoff.push(vec![row(1), row(2)]);
        handoff.push(vec![row(3)]);
        let taken = handoff.take();
        assert_eq!(taken.deliveries.iter().map(|d| d.id).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(!taken.incomplete);
        let empty = handoff.take();
        assert!(empty.deliveries.is_empty() && !empty.incomplete, "take empties the box");

        handoff.push((1..=CAPACITY as u64).map(row).collect());
        assert!(!handoff.take().incomplete, "exactly full is still complete");
        handoff.push((1..=CAPACITY as u64).map(row).collect());
        handoff.push(vec![row(CAPACITY as u64 + 1)]);
        let taken = handoff.take();
        assert!(taken.incomplete && taken.deliveries.is_empty(), "an overflow drops the rows and says so");

        let big = DueDelivery { payload: "x".repeat(CAPACITY_BYTES / 2 + 1), ..row(1) };
        handoff.push(vec![big.clone()]);
        assert!(!handoff.take().incomplete, "one large row fits");
        handoff.push(vec![DueDelivery { id: 3, ..big.clone() }]);
        handoff.push(vec![DueDelivery { id: 4, payload: "x".repeat(CAPACITY_BYTES / 2 - 1), ..big.clone() }]);
        let taken = handoff.take();
        assert!(!taken.incomplete && taken.deliveries.len() == 2, "a take empties the byte count too: exactly 1 MiB fits");
        handoff.push(vec![big.clone()]);
        handoff.push(vec![DueDelivery { id: 2, ..big }]);
        let taken = handoff.take();
        assert!(taken.incomplete && taken.deliveries.is_empty(), "payloads beyond the byte limit are claimed instead");

        handoff.mark_incomplete();
        handoff.push(vec![row(1)]);
        let taken = handoff.take();
        assert!(taken.incomplete && taken.deliveries.is_empty(), "rows after a gap would be out of order");
    }
}
