//! Every Prometheus metric rowhook exports, defined in one place.
//!
//! One [`Metrics`] per daemon (tests run several in one process), served at
//! `/metrics` in the text exposition format. Labels have bounded cardinality:
//! a webhook id, a table, an event type or an outcome; never a URL or an
//! event id. `docs/metrics.md` explains each.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The daemon's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub binlog_events: IntCounterVec,
    pub rows: IntCounterVec,
    pub events: IntCounterVec,
    pub mapping_errors: IntCounter,
    pub schema_reloads: IntCounter,
    pub replication_lag_seconds: IntGauge,
    pub checkpoint_file_number: IntGauge,
    pub checkpoint_position: IntGauge,
    pub reader_connected: IntGauge,
    pub active: IntGauge,
    pub delivery_attempts: IntCounterVec,
    pub delivery_duration: Histogram,
    pub delivery_waves: IntCounterVec,
    pub deliveries_pending: IntGaugeVec,
    pub webhooks: IntGaugeVec,
    pub webhooks_auto_disabled: IntCounterVec,
    pub admin_requests: IntCounterVec,
    pub deliveries_pruned: IntCounter,
    pub backfill_rows: IntCounter,
    pub backfills_running: IntGauge,
}

/// Outcomes of a delivery attempt, as labelled.
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";
pub const GIVEN_UP: &str = "given_up";

/// Where a delivery wave's deliveries came from, as labelled.
pub const HANDED_OVER: &str = "handed_over";
pub const CLAIMED: &str = "claimed";

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition");
    registry.register(Box::new(metric.clone())).expect("metric registered once");
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect("static metric definition");
    registry.register(Box::new(metric.clone())).expect("metric registered once");
    metric
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric definition");
    registry.register(Box::new(metric.clone())).expect("metric registered once");
    metric
}

impl Metrics {
    // The `expect`s above only fire on a malformed static definition or a
    // duplicate name, both programming errors caught by every test run.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let mapping_errors = IntCounter::new("rowhook_mapping_errors_total", "Rows that could not be decoded or mapped (logged with their binlog position).")
            .expect("static metric definition");
        registry.register(Box::new(mapping_errors.clone())).expect("metric registered once");
        let delivery_duration = Histogram::with_opts(
            HistogramOpts::new("rowhook_delivery_duration_seconds", "Duration of delivery attempts, from request to the end of the (truncated) response.")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
        )
        .expect("static metric definition");
        registry.register(Box::new(delivery_duration.clone())).expect("metric registered once");
        let schema_reloads = IntCounter::new(
            "rowhook_schema_reloads_total",
            "Column lists of mapped tables reloaded after a schema change passed in the binlog.",
        )
        .expect("static metric definition");
        registry.register(Box::new(schema_reloads.clone())).expect("metric registered once");
        let backfill_rows = IntCounter::new("rowhook_backfill_rows_total", "Rows queued by backfills (one delivery each).")
            .expect("static metric definition");
        registry.register(Box::new(backfill_rows.clone())).expect("metric registered once");
        let deliveries_pruned = IntCounter::new("rowhook_deliveries_pruned_total", "Finished deliveries deleted from the history after [delivery] retention.")
            .expect("static metric definition");
        registry.register(Box::new(deliveries_pruned.clone())).expect("metric registered once");
        #[cfg(target_os = "linux")]
        {
            let _ = registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()));
        }
        Metrics {
            binlog_events: counter_vec(&registry, "rowhook_binlog_events_total", "Binlog events read, by event type.", &["type"]),
            rows: counter_vec(&registry, "rowhook_rows_total", "Rows of mapped tables decoded, by table and operation.", &["table", "operation"]),
            events: counter_vec(&registry, "rowhook_events_total", "Events produced by the rules, by event type.", &["type"]),
            mapping_errors,
            schema_reloads,
            replication_lag_seconds: gauge(&registry, "rowhook_replication_lag_seconds", "Seconds between now and the commit time of the last transaction read; 0 when caught up (heartbeat)."),
            checkpoint_file_number: gauge(&registry, "rowhook_checkpoint_file_number", "Numeric extension of the binlog file of the stored checkpoint."),
            checkpoint_position: gauge(&registry, "rowhook_checkpoint_position", "Byte position of the stored checkpoint within its binlog file."),
            reader_connected: gauge(&registry, "rowhook_reader_connected", "1 while the binlog reader is connected, else 0."),
            active: gauge(&registry, "rowhook_active", "1 while this instance holds the state database's instance lock and runs the pipeline, 0 while it stands by."),
            delivery_attempts: counter_vec(&registry, "rowhook_delivery_attempts_total", "Delivery attempts by webhook and outcome (delivered, failed = will retry, given_up).", &["webhook_id", "outcome"]),
            delivery_duration,
            delivery_waves: counter_vec(&registry, "rowhook_delivery_waves_total", "Delivery waves by where their deliveries came from (handed_over by the router, or claimed from the queue).", &["source"]),
            deliveries_pending: gauge_vec(&registry, "rowhook_deliveries_pending", "Deliveries waiting for their first or next attempt, by webhook (read at scrape time).", &["webhook_id"]),
            webhooks: gauge_vec(&registry, "rowhook_webhooks", "Webhooks by state (active, inactive).", &["state"]),
            webhooks_auto_disabled: counter_vec(&registry, "rowhook_webhooks_auto_disabled_total", "Webhooks deactivated by rowhook (too many failures, or 410 Gone).", &["webhook_id"]),
            admin_requests: counter_vec(&registry, "rowhook_admin_requests_total", "HTTP requests by route pattern and status code.", &["route", "status"]),
            deliveries_pruned,
            backfill_rows,
            backfills_running: gauge(&registry, "rowhook_backfills_running", "1 while a backfill runs (they run one at a time), else 0."),
            registry,
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Counter totals at one moment, as [`Throughput`] takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Events the rules produced.
    pub events: u64,
    /// Per webhook: attempts delivered, and attempts failed (retried or given up).
    pub attempts: std::collections::BTreeMap<u64, (u64, u64)>,
}

impl Metrics {
    /// The totals of `rowhook_events_total` and `rowhook_delivery_attempts_total` now.
    pub fn totals(&self) -> Totals {
        use prometheus::core::Collector as _;
        let mut totals = Totals::default();
        for family in self.events.collect() {
            totals.events += family.get_metric().iter().map(|m| m.get_counter().get_value() as u64).sum::<u64>();
        }
        for family in self.delivery_attempts.collect() {
            for metric in family.get_metric() {
                let label = |name: &str| metric.get_label().iter().find(|l| l.name() == name).map(|l| l.value().to_string());
                let Some(webhook_id) = label("webhook_id").and_then(|id| id.parse::<u64>().ok()) else { continue };
                let count = metric.get_counter().get_value() as u64;
                let entry = totals.attempts.entry(webhook_id).or_default();
                if label("outcome").as_deref() == Some(DELIVERED) {
                    entry.0 += count;
                } else {
                    entry.1 += count;
                }
            }
        }
        totals
    }
}

/// One minute of the last hour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Minute {
    /// Unix time of its start, in minutes.
    pub minute: u64,
    pub events: u64,
    /// Attempts delivered and failed, all webhooks.
    pub delivered: u64,
    pub failed: u64,
    /// The same per webhook, for the webhooks with attempts in this minute.
    pub webhooks: std::collections::BTreeMap<u64, (u64, u64)>,
}

/// Events and delivery attempts per minute over the last hour, for the
/// console's chart and success rates: the counters' increase between
/// samples ([`Throughput::record`]), added to the minute of the sample.
/// At most [`Throughput::MINUTES`] minutes are kept, so memory stays bounded
/// (by the webhooks active in the hour). Empty after a restart.
#[derive(Debug, Default)]
pub struct Throughput {
    minutes: std::collections::VecDeque<Minute>,
    last: Option<Totals>,
}

impl Throughput {
    pub const MINUTES: u64 = 60;

    /// Adds what the counters gained since the last sample to the minute of
    /// `now` (Unix seconds). The first sample only sets the baseline.
    pub fn record(&mut self, now: u64, totals: Totals) {
        let Some(last) = self.last.replace(totals.clone()) else { return };
        let minute = now / 60;
        if self.minutes.back().is_none_or(|m| m.minute < minute) {
            self.minutes.push_back(Minute { minute, ..Minute::default() });
        }
        while self.minutes.front().is_some_and(|m| m.minute + Self::MINUTES <= minute) {
            self.minutes.pop_front();
        }
        let Some(current) = self.minutes.back_mut() else { return };
        // A counter that went down was reset (it never is, but never underflow).
        current.events += totals.events.saturating_sub(last.events);
        for (webhook_id, (delivered, failed)) in &totals.attempts {
            let (was_delivered, was_failed) = last.attempts.get(webhook_id).copied().unwrap_or_default();
            let gained = (delivered.saturating_sub(was_delivered), failed.saturating_sub(was_failed));
            if gained != (0, 0) {
                current.delivered += gained.0;
                current.failed += gained.1;
                let entry = current.webhooks.entry(*webhook_id).or_default();
                entry.0 += gained.0;
                entry.1 += gained.1;
            }
        }
    }

    /// The last hour up to the minute of `now`, oldest first: always
    /// [`Throughput::MINUTES`] minutes, those without samples empty.
    pub fn last_hour(&self, now: u64) -> Vec<Minute> {
        let end = now / 60;
        (end + 1 - Self::MINUTES..=end)
            .map(|minute| {
                self.minutes.iter().find(|m| m.minute == minute).cloned().unwrap_or(Minute { minute, ..Minute::default() })
            })
            .collect()
    }

    /// A webhook's attempts in the last hour: (delivered, failed).
    pub fn webhook_hour(&self, webhook_id: u64, now: u64) -> (u64, u64) {
        let end = now / 60;
        self.minutes
            .iter()
            .filter(|m| m.minute + Self::MINUTES > end)
            .filter_map(|m| m.webhooks.get(&webhook_id))
            .fold((0, 0), |(d, f), (dd, ff)| (d + dd, f + ff))
    }
}

/// The numeric extension of a binlog file name (`binlog.000042` -> 42).
pub fn file_number(file: &str) -> i64 {
    file.rsplit_once('.').and_then(|(_, n)| n.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prefixed_metrics() {
        let m = Metrics::new();
        m.delivery_attempts.with_label_values(&["7", DELIVERED]).inc();
        let text = m.render();
        assert!(text.contains("rowhook_delivery_attempts_total{outcome=\"delivered\",webhook_id=\"7\"} 1"), "{text}");
        assert!(text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).all(|l| l.starts_with("rowhook_") || l.starts_with("process_")));
        assert_eq!(file_number("binlog.000042"), 42);
    }

    fn totals(events: u64, attempts: &[(u64, u64, u64)]) -> Totals {
        Totals { events, attempts: attempts.iter().map(|(id, d, f)| (*id, (*d, *f))).collect() }
    }

    #[test]
    fn totals_come_from_the_counters() {
        let m = Metrics::new();
        m.events.with_label_values(&["thread.created"]).inc_by(3);
        m.events.with_label_values(&["note.added"]).inc();
        m.delivery_attempts.with_label_values(&["7", DELIVERED]).inc_by(5);
        m.delivery_attempts.with_label_values(&["7", FAILED]).inc_by(2);
        m.delivery_attempts.with_label_values(&["7", GIVEN_UP]).inc();
        m.delivery_attempts.with_label_values(&["9", FAILED]).inc();
        assert_eq!(m.totals(), totals(4, &[(7, 5, 3), (9, 0, 1)]));
    }

    #[test]
    fn the_hour_holds_each_minutes_increase_and_no_more() {
        let mut t = Throughput::default();
        let base = 1_000 * 60; // a minute's start
        t.record(base, totals(10, &[(1, 5, 0)]));
        assert!(t.last_hour(base).iter().all(|m| m.events == 0), "the first sample is the baseline");
        t.record(base + 10, totals(16, &[(1, 8, 1)]));
        t.record(base + 50, totals(20, &[(1, 8, 1), (2, 1, 0)]));
        t.record(base + 70, totals(21, &[(1, 9, 1), (2, 1, 0)]));
        let hour = t.last_hour(base + 70);
        assert_eq!(hour.len(), 60);
        assert_eq!((hour[58].events, hour[58].delivered, hour[58].failed), (10, 4, 1));
        assert_eq!((hour[59].events, hour[59].delivered), (1, 1));
        assert_eq!(hour[59].minute, base / 60 + 1);
        assert_eq!(t.webhook_hour(1, base + 70), (4, 1));
        assert_eq!(t.webhook_hour(2, base + 70), (1, 0));
        assert_eq!(t.webhook_hour(3, base + 70), (0, 0));
        // An hour later the old minutes are gone, and memory with them.
        t.record(base + 3_700, totals(30, &[(1, 9, 1), (2, 1, 0)]));
        assert_eq!(t.webhook_hour(1, base + 3_700), (0, 0));
        assert_eq!(t.last_hour(base + 3_700).iter().map(|m| m.events).sum::<u64>(), 9);
        for minute in 0..500 {
            t.record(base + 3_700 + minute * 60, totals(30 + minute, &[(minute, minute, 0)]));
        }
        assert!(t.minutes.len() <= Throughput::MINUTES as usize);
        // A counter that went down is no negative rate.
        t.record(base + 40_000, totals(0, &[]));
        assert_eq!(t.last_hour(base + 40_000).last().map(|m| m.events), Some(0));
    }
}
