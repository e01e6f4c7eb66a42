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
}
