//! Metric names in one place, described once at start, exported in Prometheus text format.
//!
//! Hot paths record in batches (one increment per event or per flushed batch), never per
//! recipient.

use std::sync::OnceLock;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Open WebSocket connections (gauge).
pub const CONNECTIONS: &str = "livehub_connections";
/// WebSocket connections accepted since start.
pub const CONNECTIONS_TOTAL: &str = "livehub_connections_total";
/// Connections refused before the upgrade, by `reason`.
pub const CONNECTIONS_REFUSED: &str = "livehub_connections_refused_total";
/// Rooms in memory (gauge).
pub const ROOMS: &str = "livehub_rooms";
/// Other viewers' comments thinned from connections that fell behind, by room (bounded labels).
pub const CHAT_THINNED: &str = "livehub_chat_thinned_total";
/// How long the oldest frame of a write had waited in its connection's lane, by `kind`
/// (`reply`, `event`, `counter`); sampled, one write in [`WRITE_SAMPLE`].
pub const WRITE_DELAY_SECONDS: &str = "livehub_write_delay_seconds";
/// Frames per socket write; sampled like the delay.
pub const WRITE_BATCH_FRAMES: &str = "livehub_write_batch_frames";
/// The flush interval a connection's writer was keeping when it wrote (its [`crate::session::Pace`]:
/// the least interval while the connection keeps up, longer while it has a backlog); sampled like the
/// delay.
pub const WRITE_INTERVAL_SECONDS: &str = "livehub_write_interval_seconds";
/// One write in this many per connection is sampled into the write histograms.
pub const WRITE_SAMPLE: u64 = 16;
/// What this node adds to its own clock to read Redis's (gauge, ms; 0 on memory).
pub const CLOCK_OFFSET_MS: &str = "livehub_clock_offset_ms";
/// Durable events published (each serialized once), by `type`.
pub const EVENTS: &str = "livehub_events_total";
/// Frames queued to viewers by fan-out (events x recipients).
pub const FANOUT_DELIVERIES: &str = "livehub_fanout_deliveries_total";
/// WebSocket frames written to sockets.
pub const FRAMES_SENT: &str = "livehub_frames_sent_total";
/// Socket flushes (one per batch of frames).
pub const FLUSHES: &str = "livehub_flushes_total";
/// Coalesced updates (stock, likes, viewers) sent.
pub const COALESCED_SENT: &str = "livehub_coalesced_sent_total";
/// Viewers closed with 1013 because their queue overflowed.
pub const SLOW_CONSUMER_CLOSES: &str = "livehub_slow_consumer_closes_total";
/// Connections closed, by close `code`.
pub const CLOSES: &str = "livehub_closes_total";
/// Client commands handled, by `type`.
pub const COMMANDS: &str = "livehub_commands_total";
/// Error answers sent, by `code`.
pub const ERRORS: &str = "livehub_errors_total";
/// Reserve outcomes, by `outcome` (reserved or a reject reason).
pub const RESERVES: &str = "livehub_reserves_total";
/// Seconds from receiving a reserve to having its answer.
pub const RESERVE_SECONDS: &str = "livehub_reserve_seconds";
/// Bid outcomes, by `outcome` (accepted or a reject reason).
pub const BIDS: &str = "livehub_bids_total";
/// Checkout and cancel outcomes, by `op` and `outcome`.
pub const HOLD_OPS: &str = "livehub_hold_ops_total";
/// Merchant settlements of orders, by `to` (`paid`, `failed`) and `outcome` (`changed`,
/// `repeat`, `final`, `not_found`).
pub const ORDERS_SETTLED: &str = "livehub_orders_settled_total";
/// Order status changes told to buyers' connections on this node (`order_status` frames).
pub const ORDER_STATUS_TOLD: &str = "livehub_order_status_told_total";
/// Webhook events answered with a 2xx, by endpoint.
pub const WEBHOOKS_DELIVERED: &str = "livehub_webhooks_delivered_total";
/// Webhook attempts that failed (a status other than 2xx, a timeout, a refused connection).
pub const WEBHOOKS_FAILED: &str = "livehub_webhooks_failed_total";
/// Webhook events given up after `webhooks.retry_for_ms` (dead letters).
pub const WEBHOOKS_DEAD: &str = "livehub_webhooks_dead_total";
/// Webhook events waiting for a retry on this node now.
pub const WEBHOOKS_RETRYING: &str = "livehub_webhooks_retrying";
/// Age in seconds of the oldest event not yet delivered to the endpoint (0: caught up).
pub const WEBHOOKS_LAG: &str = "livehub_webhooks_lag_seconds";
/// Deals whose stock changed in a hold sweep (expired holds returned), counted once per sweep.
pub const SWEEP_CHANGES: &str = "livehub_sweep_deal_changes_total";

/// Room events received from the Redis subscription (events and stock readings).
pub const BUS_MESSAGES: &str = "livehub_bus_messages_total";
/// Seconds from a comment's publish (its `ts`) to its arrival from the Redis subscription.
pub const BUS_LAG_SECONDS: &str = "livehub_bus_lag_seconds";
/// Gap repairs: reads of a room's history to fill a hole or to catch up after a resubscribe.
pub const BUS_REPAIRS: &str = "livehub_bus_gap_repairs_total";
/// Events received again after delivery, dropped.
pub const BUS_DUPLICATES: &str = "livehub_bus_duplicates_total";
/// Rooms whose history could not be followed (lost or trimmed past a hole): viewers reconnect.
pub const BUS_LOST: &str = "livehub_bus_rooms_lost_total";
/// Redis subscriptions that dropped and were re-established.
pub const BUS_RESUBSCRIBES: &str = "livehub_bus_resubscribes_total";
/// Redis calls of the bus that failed (publish, counters, repairs, stock).
pub const BUS_ERRORS: &str = "livehub_bus_errors_total";
/// Redis calls (of any part of the hub) that Redis answered with an error that is a bug, not an
/// outage: a Lua script that raised an error, a command on a key of the wrong type, a reply the
/// hub could not read (see `redis_io::failure`). Each is also logged as an error.
pub const REDIS_SCRIPT_ERRORS: &str = "livehub_redis_script_errors_total";

/// Faults that were warned about (each counted, even when its log line was summarised), by
/// `kind`.
pub const FAULTS: &str = "livehub_faults_total";

/// Orders checked out through this node, by room (bounded, see `funnel.metrics_rooms`) and the
/// buyer's channel.
pub const FUNNEL_ORDERS: &str = "livehub_funnel_orders_total";
/// Units of those orders.
pub const FUNNEL_UNITS: &str = "livehub_funnel_units_total";
/// GMV of those orders, in minor units of the deal's currency.
pub const FUNNEL_GMV_CENTS: &str = "livehub_funnel_gmv_cents_total";
/// Funnel facts sent to the store.
pub const FUNNEL_OPS: &str = "livehub_funnel_ops_total";
/// Funnel facts dropped because the store stayed unreachable and the backlog was full.
pub const FUNNEL_OPS_DROPPED: &str = "livehub_funnel_ops_dropped_total";
/// Resident memory of the hub process in bytes (gauge, read from `/proc` at each scrape).
pub const PROCESS_RESIDENT_BYTES: &str = "livehub_process_resident_bytes";
/// Open file descriptors of the hub process (gauge, read from `/proc` at each scrape).
pub const PROCESS_OPEN_FDS: &str = "livehub_process_open_fds";
/// Tasks alive on the hub's runtime (gauge, read at each scrape).
pub const RUNTIME_TASKS: &str = "livehub_runtime_alive_tasks";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process (later calls reuse it) and describes every
/// metric. Returns the handle that renders `/metrics`.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                ])
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(WRITE_DELAY_SECONDS.into()),
                        &[
                            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                            10.0,
                        ],
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(WRITE_INTERVAL_SECONDS.into()),
                        &[0.0, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28],
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(WRITE_BATCH_FRAMES.into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
                    )
                })
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Fails only when another recorder was installed first (an embedding program's);
            // then that one receives our metrics and /metrics shows what ours saw (nothing).
            let _ = metrics::set_global_recorder(recorder);
            describe();
            register_at_zero();
            handle
        })
        .clone()
}

/// How often recorded histogram samples are folded into their buckets when nobody scrapes.
pub const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds the histograms' recorded samples into their buckets every [`UPKEEP_INTERVAL`] until
/// `stop`. The exporter keeps every sample until a render or an upkeep drains it, so a hub
/// whose `/metrics` nobody scrapes would otherwise grow by one sample per reserve and comment.
pub async fn upkeep(handle: PrometheusHandle, stop: tokio_util::sync::CancellationToken) {
    let mut every = tokio::time::interval(UPKEEP_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => handle.run_upkeep(),
        }
    }
}

/// Reads the process gauges (resident memory, open descriptors, live tasks) so the next render
/// shows current values. Called by `/metrics` before it renders; where `/proc` is missing (not
/// Linux) the two process gauges are left unset.
pub fn sample_process() {
    if let Some(bytes) = resident_bytes() {
        metrics::gauge!(PROCESS_RESIDENT_BYTES).set(bytes as f64);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!(PROCESS_OPEN_FDS).set(fds.count() as f64);
    }
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        metrics::gauge!(RUNTIME_TASKS).set(rt.metrics().num_alive_tasks() as f64);
    }
}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Gauges and unlabelled counters dashboards and alerts read, shown from the start (at 0) rather
/// than absent until their first change: `livehub_rooms 0` on a hub with no room yet. Adding 0
/// registers a metric without changing it (the recorder is shared by every hub in a process).
fn register_at_zero() {
    for gauge in [CONNECTIONS, ROOMS] {
        metrics::gauge!(gauge).increment(0.0);
    }
    for counter in [
        CONNECTIONS_TOTAL,
        FANOUT_DELIVERIES,
        FRAMES_SENT,
        FLUSHES,
        COALESCED_SENT,
        SLOW_CONSUMER_CLOSES,
        REDIS_SCRIPT_ERRORS,
    ] {
        metrics::counter!(counter).increment(0);
    }
}

fn describe() {
    describe_funnel();
    describe_connections();
    describe_fanout();
    describe_backends();
}

/// The show funnel's metrics.
fn describe_funnel() {
    describe_counter!(
        FUNNEL_ORDERS,
        "Orders checked out here, by room and channel"
    );
    describe_counter!(FUNNEL_UNITS, "Units of those orders, by room and channel");
    describe_counter!(
        FUNNEL_GMV_CENTS,
        "GMV of those orders in minor units, by room and channel"
    );
    describe_counter!(FUNNEL_OPS, "Funnel facts sent to the funnel store");
    describe_counter!(
        FUNNEL_OPS_DROPPED,
        "Funnel facts dropped while the store was unreachable (backlog full)"
    );
}

/// The process, its connections, rooms, commands and errors.
fn describe_connections() {
    describe_gauge!(
        PROCESS_RESIDENT_BYTES,
        Unit::Bytes,
        "Resident memory of the hub process"
    );
    describe_gauge!(PROCESS_OPEN_FDS, "Open file descriptors of the hub process");
    describe_gauge!(RUNTIME_TASKS, "Tasks alive on the hub's runtime");
    describe_gauge!(CONNECTIONS, "Open WebSocket connections");
    describe_counter!(CONNECTIONS_TOTAL, "WebSocket connections accepted");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections refused before upgrade, by reason"
    );
    describe_gauge!(ROOMS, "Rooms in memory");
    describe_gauge!(
        CLOCK_OFFSET_MS,
        "Milliseconds this node adds to its clock to keep Redis's time"
    );
    describe_counter!(CLOSES, "Connections closed, by close code");
    describe_counter!(COMMANDS, "Client commands handled, by type");
    describe_counter!(ERRORS, "Error answers, by code");
    describe_counter!(
        FAULTS,
        "Faults warned about (log lines are summarised), by kind"
    );
}

/// Fan-out and the sockets' writes.
fn describe_fanout() {
    describe_counter!(
        CHAT_THINNED,
        "Comments thinned from viewers that fell behind, by room"
    );
    describe_histogram!(
        WRITE_DELAY_SECONDS,
        Unit::Seconds,
        "Wait of the oldest frame of a socket write in its lane, by kind (reply, event, counter); one write in 16"
    );
    describe_histogram!(
        WRITE_INTERVAL_SECONDS,
        Unit::Seconds,
        "Flush interval a socket writer kept when it wrote (longer while its connection has a backlog); one write in 16"
    );
    describe_histogram!(
        WRITE_BATCH_FRAMES,
        "Frames per socket write; one write in 16"
    );
    describe_counter!(EVENTS, "Durable events published, by type");
    describe_counter!(FANOUT_DELIVERIES, "Frames queued to viewers by fan-out");
    describe_counter!(FRAMES_SENT, "WebSocket frames written");
    describe_counter!(FLUSHES, "Socket flushes");
    describe_counter!(COALESCED_SENT, "Coalesced stock/likes/viewers updates sent");
    describe_counter!(
        SLOW_CONSUMER_CLOSES,
        "Viewers closed with 1013 (queue overflow)"
    );
}

/// Stock, holds and the bus.
fn describe_backends() {
    describe_counter!(RESERVES, "Reserve outcomes");
    describe_counter!(BIDS, "Bid outcomes");
    describe_counter!(BUS_MESSAGES, "Room messages received from Redis");
    describe_histogram!(
        BUS_LAG_SECONDS,
        Unit::Seconds,
        "Comment publish to arrival from Redis"
    );
    describe_counter!(BUS_REPAIRS, "Room history reads to repair a gap");
    describe_counter!(BUS_DUPLICATES, "Room events received twice, dropped");
    describe_counter!(BUS_LOST, "Rooms whose history could not be followed");
    describe_counter!(BUS_RESUBSCRIBES, "Redis subscriptions re-established");
    describe_counter!(BUS_ERRORS, "Failed Redis calls of the bus");
    describe_counter!(
        REDIS_SCRIPT_ERRORS,
        "Redis calls answered with a script or command error (a bug, not an outage)"
    );
    describe_histogram!(
        RESERVE_SECONDS,
        Unit::Seconds,
        "Reserve latency inside the hub"
    );
    describe_counter!(HOLD_OPS, "Checkout and cancel outcomes");
    describe_counter!(
        ORDERS_SETTLED,
        "Merchant settlements of orders, by requested status and outcome"
    );
    describe_counter!(
        ORDER_STATUS_TOLD,
        "order_status frames queued to buyers' connections on this node"
    );
    describe_counter!(WEBHOOKS_DELIVERED, "Webhook events answered with a 2xx, by endpoint");
    describe_counter!(
        WEBHOOKS_FAILED,
        "Webhook attempts that failed (non-2xx, timeout, refused), by endpoint"
    );
    describe_counter!(
        WEBHOOKS_DEAD,
        "Webhook events given up after webhooks.retry_for_ms, by endpoint"
    );
    describe_gauge!(
        WEBHOOKS_RETRYING,
        "Webhook events waiting for a retry on this node, by endpoint"
    );
    describe_gauge!(
        WEBHOOKS_LAG,
        Unit::Seconds,
        "Age of the oldest webhook event not delivered yet, by endpoint"
    );
    describe_counter!(SWEEP_CHANGES, "Deals whose stock changed in a hold sweep");
}
