//! Typed configuration: `config/default.toml` compiled in as the defaults, an optional file over
//! it, then `LIVEHUB_SECTION__KEY` environment variables over that. Unknown keys and invalid values
//! fail at load with a message that names the key.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

/// The documented defaults, compiled into the binary so `livehub serve` runs from anywhere.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// The development secret shipped in `config/default.toml`. The hub warns when it runs with it.
pub const DEV_SECRET: &str = "livehub-dev-secret-change-me";

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "LIVEHUB_";

/// Largest `room.history`: events a room keeps for resume (in memory on every node that has the
/// room open, and in Redis), 100,000.
pub const MAX_HISTORY: usize = 100_000;

/// Smallest `redis.retention_ms`: a second (short enough for tests and demos that watch a show's
/// keys expire; 0 would drop a deal's orders the moment its last hold ends). A deal's keys (its
/// stock audit, its orders and its sales ledger) expire this long after its last hold could end.
pub const MIN_RETENTION_MS: u64 = 1_000;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub room: RoomConfig,
    pub limits: LimitsConfig,
    pub session: SessionConfig,
    pub inventory: InventoryConfig,
    pub redis: RedisConfig,
    pub pages: PagesConfig,
    pub funnel: FunnelConfig,
    pub orders: OrdersConfig,
    pub webhooks: WebhooksConfig,
}

/// `[server]`: listening and shutdown.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    /// 0: automatic, below the open-file limit the hub obtains (see [`Config::connection_cap`]).
    pub max_connections: usize,
    pub shutdown_grace_ms: u64,
    /// Lets the development conveniences run on a non-loopback bind (loudly).
    pub insecure_dev: bool,
    /// Origins allowed to open a WebSocket (`Origin` header); empty: any origin.
    pub allowed_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` names the client (IP addresses).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// A connection must send a request's complete headers within this long.
    pub header_timeout_ms: u64,
    /// A connection with no request in progress (before any upgrade) is closed after this long.
    pub idle_connection_ms: u64,
    /// A REST command's body must arrive within this long of its head (slow-body guard).
    pub body_timeout_ms: u64,
    /// The kernel send buffer asked for each accepted connection (`SO_SNDBUF`, bytes); 0 leaves
    /// it to the OS (auto-tuned, up to `net.ipv4.tcp_wmem`'s maximum). What sits in it is past
    /// the hub's ordering: a smaller buffer lets a reserve reply or the latest stock overtake
    /// more of a slow viewer's chat, and bounds kernel memory per viewer.
    pub socket_send_buffer: u32,
    /// Where rooms are saved on a graceful stop and restored at start (see
    /// [`crate::persist`]); `""` keeps rooms in memory only.
    #[serde(deserialize_with = "empty_is_none")]
    pub state_file: Option<std::path::PathBuf>,
}

/// `""` as `None`: TOML has no null.
fn empty_is_none<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::path::PathBuf>, D::Error> {
    let s = String::deserialize(d)?;
    Ok((!s.is_empty()).then(|| s.into()))
}

/// `[auth]`: tokens and anonymous access.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub secret: String,
    pub allow_anonymous: DevToggle,
    pub require_exp: DevToggle,
}

/// A setting whose development value holds only on a loopback bind: `true`, `false`, or
/// `"loopback"` (the default: the development value while `server.bind` is a loopback address,
/// the production value otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevToggle {
    On,
    Off,
    Loopback,
}

impl DevToggle {
    /// The value on a loopback bind (`loopback`) or another one; `dev` is the development value.
    pub fn resolve(self, loopback: bool, dev: bool) -> bool {
        match self {
            DevToggle::On => true,
            DevToggle::Off => false,
            DevToggle::Loopback if loopback => dev,
            DevToggle::Loopback => !dev,
        }
    }
}

impl<'de> Deserialize<'de> for DevToggle {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(DevToggle::On),
            Raw::Bool(false) => Ok(DevToggle::Off),
            Raw::Text(t) if t == "loopback" => Ok(DevToggle::Loopback),
            Raw::Text(t) => Err(serde::de::Error::custom(format!(
                "expected true, false or \"loopback\", found {t:?}"
            ))),
        }
    }
}

/// `[room]`: per-room state and ticks.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomConfig {
    pub history: usize,
    pub recent_comments: usize,
    pub tick_ms: u64,
    pub viewers_interval_ms: u64,
    pub viewers_ttl_ms: u64,
    /// How long a room stays open after its host was last seen (a host or admin connected, a
    /// host command, a deal open): then it closes, and on Redis every key of it expires.
    pub open_ttl_ms: u64,
    pub idle_ms: u64,
    pub max_rooms: usize,
}

/// `[limits]`: content and rate limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_frame_bytes: usize,
    /// The most frames one client message may be assembled from (its first frame and its
    /// continuation frames, empty ones included); more closes the connection with 1008.
    pub max_fragments: usize,
    pub comment_max_chars: usize,
    pub announce_max_chars: usize,
    pub comment_rate_per_sec: f64,
    pub comment_burst: f64,
    pub reserve_rate_per_sec: f64,
    pub reserve_burst: f64,
    /// Bids per user per auction: sustained rate and burst (more is `rejected` `rate_limited`).
    pub bid_rate_per_sec: f64,
    pub bid_burst: f64,
    pub viewer_frames_per_sec: f64,
    pub viewer_frames_burst: f64,
    pub host_frames_per_sec: f64,
    pub host_frames_burst: f64,
    pub flood_strikes: u32,
    pub flood_window_ms: u64,
    /// Open connections (including ones still sending their request) per client IP; 0: no cap.
    pub connections_per_ip: usize,
    /// Open WebSocket connections per token subject; 0: no cap.
    pub connections_per_user: usize,
    /// REST host commands per token, sustained and in a burst.
    pub rest_commands_per_sec: f64,
    pub rest_commands_burst: f64,
}

/// `[session]`: one connection's queue, buffers and heartbeats.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    pub queue_capacity: usize,
    pub write_batch: usize,
    pub min_flush_interval_ms: u64,
    /// The longest a connection's flush interval grows to while it has a backlog (fewer,
    /// fuller writes when the node is saturated); at least `min_flush_interval_ms`.
    pub max_flush_interval_ms: u64,
    /// Durable events queued for a connection from which other viewers' comments are thinned
    /// (folded into `skipped` markers) instead of the queue growing; 0 never thins.
    pub thin_chat_after: usize,
    /// ... once its writer has taken nothing for this long (a burst a healthy writer is about
    /// to take is left alone).
    pub thin_chat_wait_ms: u64,
    pub read_buffer_bytes: usize,
    pub write_buffer_bytes: usize,
    pub max_write_buffer_bytes: usize,
    pub ping_interval_ms: u64,
    pub idle_timeout_ms: u64,
    pub close_grace_ms: u64,
}

/// Which inventory backend holds flash-deal stock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InventoryBackend {
    Memory,
    Redis,
}

/// `[inventory]`: stock holds.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryConfig {
    pub backend: InventoryBackend,
    pub hold_ms: u64,
    pub sweep_interval_ms: u64,
    pub op_timeout_ms: u64,
    pub host_op_timeout_ms: u64,
}

/// `[pages]`: the viewer page, host console and landing page.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagesConfig {
    pub dev_tokens: DevToggle,
    pub stream_url: String,
    pub catalog_file: String,
}

/// How an order gets paid (`orders.payment`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMode {
    /// An order is paid when it is made.
    None,
    /// An order is pending until the shop's backend calls `POST /api/orders/{order}/paid` or
    /// `/failed`, and expires `payment_timeout_ms` after it was made.
    External,
}

/// Longest `orders.payment_timeout_ms`: a day.
pub const MAX_PAYMENT_TIMEOUT_MS: u64 = 24 * 3600 * 1000;

/// `[orders]`: payment and the order feed (issue 23).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdersConfig {
    pub payment: PaymentMode,
    /// How long a pending order waits for its payment before it expires (1 s to a day).
    pub payment_timeout_ms: u64,
}

/// `[webhooks]`: where the order feed is pushed (issue 23). No endpoint by default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// `[[webhooks.endpoints]]`: each gets every order event (or the kinds it names) once at
    /// least, each order's in order.
    pub endpoints: Vec<WebhookEndpoint>,
    /// How long one POST may take before it counts as failed and is retried (100 to 60000).
    pub timeout_ms: u64,
    /// How long after it happened an event is retried before it goes to the endpoint's dead
    /// letters (1 s to a week; a day by default; an older event, e.g. replayed, gets one try).
    pub retry_for_ms: u64,
    /// The first retry's delay; each next one doubles, up to `backoff_max_ms`, with jitter.
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    /// One node delivers an endpoint at a time; when it stops renewing its lease (a dead node),
    /// another takes over after this long (1000 to 600000).
    pub lease_ms: u64,
    /// Orders of one endpoint delivered at once (each order's events one after another).
    pub concurrency: usize,
}

/// One webhook receiver.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpoint {
    /// Names the endpoint in `livehub webhooks`, the metrics and the API (letters, digits, `-`,
    /// `_`; unique).
    pub name: String,
    /// `https://...` (or `http://...` for a receiver on a private network or this machine).
    pub url: String,
    /// The key of the `Livehub-Signature` HMAC (at least 16 characters).
    pub secret: String,
    /// The event kinds sent (`created`, `paid`, `failed`, `expired`); empty: all.
    #[serde(default)]
    pub events: Vec<crate::orders::OrderEventKind>,
    /// Events per POST (1 to 500; 1 by default: each event its own request, its id in the
    /// `Livehub-Event-Id` header). Above 1 the body is `{"events": [Event, ...]}` in feed order,
    /// signed as a whole, with no event id header: fewer requests when orders come fast, for a
    /// receiver that takes batches.
    #[serde(default = "one")]
    pub batch: usize,
}

fn one() -> usize {
    1
}

/// Most events in one webhook POST (`webhooks.endpoints[].batch`).
pub const MAX_WEBHOOK_BATCH: usize = 500;

/// Most `webhooks.retry_for_ms`: a week.
pub const MAX_WEBHOOK_RETRY_MS: u64 = 7 * 24 * 3600 * 1000;

impl WebhooksConfig {
    /// Every endpoint named, unique, with an http(s) URL that has a host and a secret long
    /// enough to sign with; timings within their bounds. The first failure names its key.
    fn check(&self) -> Result<(), ConfigError> {
        let bounds: [(&str, u64, u64, u64); 5] = [
            ("webhooks.timeout_ms", self.timeout_ms, 100, 60_000),
            (
                "webhooks.retry_for_ms",
                self.retry_for_ms,
                1_000,
                MAX_WEBHOOK_RETRY_MS,
            ),
            (
                "webhooks.backoff_min_ms",
                self.backoff_min_ms,
                10,
                3_600_000,
            ),
            (
                "webhooks.backoff_max_ms",
                self.backoff_max_ms,
                self.backoff_min_ms,
                3_600_000,
            ),
            ("webhooks.lease_ms", self.lease_ms, 1_000, 600_000),
        ];
        for (key, v, lo, hi) in bounds {
            if !(lo..=hi).contains(&v) {
                return Err(key_err(key, format!("must be {lo} to {hi}")));
            }
        }
        if !(1..=64).contains(&self.concurrency) {
            return Err(key_err("webhooks.concurrency", "must be 1 to 64"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, e) in self.endpoints.iter().enumerate() {
            let key = |k: &str| format!("webhooks.endpoints[{i}].{k}");
            let name_ok = !e.name.is_empty()
                && e.name.len() <= 64
                && e.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !name_ok {
                return Err(key_err(
                    &key("name"),
                    "must be 1 to 64 letters, digits, '-' or '_'",
                ));
            }
            if !names.insert(e.name.as_str()) {
                return Err(key_err(&key("name"), format!("{:?} is used twice", e.name)));
            }
            check_webhook_url(&e.url).map_err(|m| key_err(&key("url"), m))?;
            if e.secret.len() < 16 {
                return Err(key_err(&key("secret"), "must be at least 16 characters"));
            }
            if !(1..=MAX_WEBHOOK_BATCH).contains(&e.batch) {
                return Err(key_err(
                    &key("batch"),
                    format!("must be 1 to {MAX_WEBHOOK_BATCH}"),
                ));
            }
        }
        Ok(())
    }
}

/// Why `url` cannot receive webhooks: only `http://` and `https://` URLs with a host.
pub fn check_webhook_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("{url:?} must start with https:// (or http://)")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}

/// `[funnel]`: the show funnel (issue 14).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunnelConfig {
    /// A viewer connected this long in all (over every connection) counts as engaged.
    pub engaged_ms: u64,
    /// How often a node sends its funnel facts to the store (one batch per open room).
    pub flush_ms: u64,
    /// Rooms that get their own `room` label on the funnel's Prometheus counters; later rooms
    /// share `room="other"`, so the label's cardinality stays bounded.
    pub metrics_rooms: usize,
}

/// `[redis]`: the Redis backend (used when `inventory.backend = "redis"`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
    pub cluster: bool,
    pub key_prefix: String,
    pub idempotency_ttl_ms: u64,
    pub rejected_idempotency_ttl_ms: u64,
    pub retention_ms: u64,
}

/// Why configuration could not be loaded. Every variant names the file, variable or key; a bad
/// key also says where its value was set and shows the expected form.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("config key `{key}` ({origin}): {message}{}", for_example(example.as_deref()))]
    Key {
        key: String,
        /// Where the offending value was set.
        origin: Origin,
        message: String,
        /// The key written with its default value, in the form of its origin.
        example: Option<String>,
    },
}

fn for_example(example: Option<&str>) -> String {
    example.map_or_else(String::new, |e| format!("; for example {e}"))
}

/// Where a configuration value was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The compiled-in `config/default.toml`.
    Default,
    /// A `--config` file (its path as given).
    File(String),
    /// A `LIVEHUB_SECTION__KEY` environment variable (its name).
    Env(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("the built-in default"),
            Origin::File(path) => write!(f, "set in {path}"),
            Origin::Env(var) => write!(f, "set by the environment variable {var}"),
        }
    }
}

/// Where each key (`section.key`) got its value, the last writer winning.
#[derive(Default)]
struct Origins(Vec<(String, Origin)>);

impl Origins {
    fn set(&mut self, key: String, origin: Origin) {
        self.0.retain(|(k, _)| *k != key);
        self.0.push((key, origin));
    }

    fn set_table(&mut self, prefix: &str, table: &toml::Table, origin: &Origin) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => self.set_table(&key, t, origin),
                _ => self.set(key, origin.clone()),
            }
        }
    }

    /// The origin of `key`, or of what was set under it (an unknown section).
    fn of(&self, key: &str) -> Origin {
        let under = format!("{key}.");
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key || k.starts_with(&under))
            .map_or(Origin::Default, |(_, o)| o.clone())
    }
}

/// `key` with its default value, written the way `origin` sets it: `LIVEHUB_ROOM__HISTORY=1000`
/// (with the file form after it) for a variable, `room.history = 1000` otherwise. `None` for a
/// key the defaults do not have.
fn example(key: &str, origin: &Origin) -> Option<String> {
    let defaults: toml::Table = DEFAULT_TOML.parse().ok()?;
    let (section, name) = key.split_once('.')?;
    let value = defaults.get(section)?.as_table()?.get(name)?;
    if value.is_table() {
        return None;
    }
    let file_form = format!("{key} = {value}");
    Some(match origin {
        Origin::Env(_) => {
            let env_value = match value {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let var = format!(
                "{ENV_PREFIX}{}__{}",
                section.to_ascii_uppercase(),
                name.to_ascii_uppercase()
            );
            format!("{var}={env_value} (in a config file: {file_form})")
        }
        _ => file_form,
    })
}

/// serde's type names in words a person configuring a server uses.
fn plain_types(message: &str) -> String {
    [
        ("expected usize", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected f64", "expected a number"),
        (
            "expected socket address",
            "expected an address with a port, like 127.0.0.1:8080",
        ),
        ("expected IP address", "expected an IP address"),
    ]
    .iter()
    .fold(message.to_owned(), |m, (from, to)| m.replace(from, to))
}

fn key_err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        key: key.to_owned(),
        origin: Origin::Default,
        message: message.into(),
        example: None,
    }
}

impl ConfigError {
    /// A key error told where its value was set, with the expected form.
    fn located(self, origins: &Origins) -> Self {
        match self {
            ConfigError::Key { key, message, .. } => {
                // `server.trusted_proxies[0]` was set as `server.trusted_proxies`.
                let base = key.split('[').next().unwrap_or(&key).to_owned();
                let origin = origins.of(&base);
                let example = example(&base, &origin);
                ConfigError::Key {
                    key,
                    origin,
                    message,
                    example,
                }
            }
            other => other,
        }
    }
}

impl Config {
    /// The compiled-in defaults (identical to `config/default.toml`).
    pub fn defaults() -> Self {
        Self::load(None, std::iter::empty()).expect("config/default.toml is valid")
    }

    /// Loads defaults, then `file` over them, then the `LIVEHUB_SECTION__KEY` variables from
    /// `env`, and validates the result.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut root: toml::Table =
            DEFAULT_TOML
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: "<built-in defaults>".into(),
                    message: e.to_string(),
                })?;
        let mut origins = Origins::default();
        if let Some(path) = file {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: shown.clone(),
                source,
            })?;
            let overlay: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Syntax {
                        path: shown.clone(),
                        message: e.to_string(),
                    })?;
            origins.set_table("", &overlay, &Origin::File(shown));
            merge(&mut root, overlay);
        }
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                continue;
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            let table = root
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(table) = table.as_table_mut() else {
                return Err(ConfigError::Env {
                    var,
                    message: format!("`{section}` is not a section"),
                });
            };
            origins.set(format!("{section}.{key}"), Origin::Env(var));
            table.insert(key, parse_env_value(&value));
        }
        let value = toml::Value::Table(root);
        let config: Config = serde_path_to_error::deserialize(value)
            .map_err(|e| {
                let key = e.path().to_string();
                key_err(&key, plain_types(e.into_inner().message()))
            })
            .map_err(|e| e.located(&origins))?;
        config.validate().map_err(|e| e.located(&origins))?;
        Ok(config)
    }

    /// Loads with the process environment.
    pub fn from_env(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load(file, std::env::vars())
    }

    /// Every check of the configuration, the first failure named by its key.
    fn validate(&self) -> Result<(), ConfigError> {
        self.check_positive()?;
        self.check_rates()?;
        self.check_ranges()?;
        self.check_relations()?;
        self.webhooks.check()?;
        self.check_backends()
    }

    /// Durations, sizes and counts that must not be 0.
    fn check_positive(&self) -> Result<(), ConfigError> {
        let positive = [
            ("funnel.engaged_ms", self.funnel.engaged_ms),
            ("funnel.flush_ms", self.funnel.flush_ms),
            ("server.header_timeout_ms", self.server.header_timeout_ms),
            ("server.idle_connection_ms", self.server.idle_connection_ms),
            ("server.body_timeout_ms", self.server.body_timeout_ms),
            (
                "redis.rejected_idempotency_ttl_ms",
                self.redis.rejected_idempotency_ttl_ms,
            ),
            ("room.history", self.room.history as u64),
            ("room.tick_ms", self.room.tick_ms),
            ("room.viewers_interval_ms", self.room.viewers_interval_ms),
            ("room.max_rooms", self.room.max_rooms as u64),
            (
                "limits.comment_max_chars",
                self.limits.comment_max_chars as u64,
            ),
            (
                "limits.announce_max_chars",
                self.limits.announce_max_chars as u64,
            ),
            ("limits.flood_strikes", self.limits.flood_strikes as u64),
            ("limits.flood_window_ms", self.limits.flood_window_ms),
            ("session.queue_capacity", self.session.queue_capacity as u64),
            ("session.write_batch", self.session.write_batch as u64),
            ("session.ping_interval_ms", self.session.ping_interval_ms),
            ("session.idle_timeout_ms", self.session.idle_timeout_ms),
            ("inventory.hold_ms", self.inventory.hold_ms),
            (
                "inventory.sweep_interval_ms",
                self.inventory.sweep_interval_ms,
            ),
            ("inventory.op_timeout_ms", self.inventory.op_timeout_ms),
            ("room.viewers_ttl_ms", self.room.viewers_ttl_ms),
            ("room.open_ttl_ms", self.room.open_ttl_ms),
            ("redis.idempotency_ttl_ms", self.redis.idempotency_ttl_ms),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(key_err(key, "must be greater than 0"));
            }
        }
        Ok(())
    }

    /// Rates and bursts: finite and above 0.
    fn check_rates(&self) -> Result<(), ConfigError> {
        let rates = [
            (
                "limits.comment_rate_per_sec",
                self.limits.comment_rate_per_sec,
            ),
            ("limits.comment_burst", self.limits.comment_burst),
            (
                "limits.reserve_rate_per_sec",
                self.limits.reserve_rate_per_sec,
            ),
            ("limits.reserve_burst", self.limits.reserve_burst),
            ("limits.bid_rate_per_sec", self.limits.bid_rate_per_sec),
            ("limits.bid_burst", self.limits.bid_burst),
            (
                "limits.viewer_frames_per_sec",
                self.limits.viewer_frames_per_sec,
            ),
            (
                "limits.viewer_frames_burst",
                self.limits.viewer_frames_burst,
            ),
            (
                "limits.host_frames_per_sec",
                self.limits.host_frames_per_sec,
            ),
            ("limits.host_frames_burst", self.limits.host_frames_burst),
        ];
        for (key, v) in rates {
            if !(v.is_finite() && v > 0.0) {
                return Err(key_err(key, "must be a positive number"));
            }
        }
        Ok(())
    }

    /// Values with bounds of their own.
    fn check_ranges(&self) -> Result<(), ConfigError> {
        if self.limits.host_frames_per_sec < 2000.0 {
            return Err(key_err(
                "limits.host_frames_per_sec",
                "must be at least 2000 (the protocol lets a host script send 2,000 commands a second)",
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.limits.max_frame_bytes) {
            return Err(key_err(
                "limits.max_frame_bytes",
                "must be 1024 to 16777216",
            ));
        }
        if !(1..=65_536).contains(&self.limits.max_fragments) {
            return Err(key_err("limits.max_fragments", "must be 1 to 65536"));
        }
        let sndbuf = self.server.socket_send_buffer;
        if sndbuf != 0 && !(4096..=64 * 1024 * 1024).contains(&sndbuf) {
            return Err(key_err(
                "server.socket_send_buffer",
                "must be 0 (the OS decides) or 4096 to 67108864",
            ));
        }
        if !(1_000..=MAX_PAYMENT_TIMEOUT_MS).contains(&self.orders.payment_timeout_ms) {
            return Err(key_err(
                "orders.payment_timeout_ms",
                format!("must be 1000 to {MAX_PAYMENT_TIMEOUT_MS} (a day)"),
            ));
        }
        if self.room.history > MAX_HISTORY {
            return Err(key_err(
                "room.history",
                format!(
                    "must be at most {MAX_HISTORY} (events kept per room, in memory on every \
                     node and in Redis)"
                ),
            ));
        }
        Ok(())
    }

    /// Values bounded by other keys.
    fn check_relations(&self) -> Result<(), ConfigError> {
        if self.room.viewers_ttl_ms < self.room.tick_ms.saturating_mul(2) {
            return Err(key_err(
                "room.viewers_ttl_ms",
                format!(
                    "must be at least twice room.tick_ms ({} ms): nodes report their viewers \
                     every tick, and a report must outlive a late tick or the room's count \
                     flickers",
                    self.room.tick_ms.saturating_mul(2)
                ),
            ));
        }
        if self.session.max_flush_interval_ms < self.session.min_flush_interval_ms {
            return Err(key_err(
                "session.max_flush_interval_ms",
                format!(
                    "must be at least session.min_flush_interval_ms ({})",
                    self.session.min_flush_interval_ms
                ),
            ));
        }
        if self.session.thin_chat_after >= self.session.queue_capacity {
            return Err(key_err(
                "session.thin_chat_after",
                format!(
                    "must be below session.queue_capacity ({}), or 0 to never thin chat",
                    self.session.queue_capacity
                ),
            ));
        }
        Ok(())
    }

    /// Redis, the token secret and the write buffers.
    fn check_backends(&self) -> Result<(), ConfigError> {
        if self.redis.retention_ms < MIN_RETENTION_MS {
            return Err(key_err(
                "redis.retention_ms",
                format!(
                    "must be at least {MIN_RETENTION_MS} (a second): a deal's audit, orders and \
                     sales go with its keys"
                ),
            ));
        }
        if self.room.recent_comments > self.room.history.max(50) {
            return Err(key_err(
                "room.recent_comments",
                "must be at most 50 or room.history",
            ));
        }
        if !(self.redis.url.starts_with("redis://") || self.redis.url.starts_with("rediss://")) {
            return Err(key_err(
                "redis.url",
                "must start with redis:// or rediss://",
            ));
        }
        if !crate::protocol::is_valid_id(&self.redis.key_prefix) {
            return Err(key_err(
                "redis.key_prefix",
                "must be 1 to 64 of [A-Za-z0-9_-]",
            ));
        }
        if self.auth.secret.len() < 16 {
            return Err(key_err("auth.secret", "must be at least 16 bytes"));
        }
        if self.session.max_write_buffer_bytes <= self.session.write_buffer_bytes {
            return Err(key_err(
                "session.max_write_buffer_bytes",
                "must be greater than session.write_buffer_bytes",
            ));
        }
        Ok(())
    }

    /// True while `server.bind` is a loopback address (the development conveniences hold).
    pub fn is_loopback(&self) -> bool {
        self.server.bind.ip().is_loopback()
    }

    /// Whether connections without a token are read-only viewers.
    pub fn allow_anonymous(&self) -> bool {
        self.auth.allow_anonymous.resolve(self.is_loopback(), true)
    }

    /// Whether tokens must carry `exp`.
    pub fn require_exp(&self) -> bool {
        self.auth.require_exp.resolve(self.is_loopback(), false)
    }

    /// Whether `/api/dev/token` mints tokens.
    pub fn dev_tokens(&self) -> bool {
        self.pages.dev_tokens.resolve(self.is_loopback(), true)
    }

    /// The development settings still on while the hub is about to listen on a non-loopback
    /// address, each with what to set instead; empty on loopback or with `server.insecure_dev`.
    pub fn exposure_problems(&self) -> Vec<&'static str> {
        if self.is_loopback() || self.server.insecure_dev {
            return Vec::new();
        }
        let mut problems = Vec::new();
        if self.uses_dev_secret() {
            problems.push("LIVEHUB_AUTH__SECRET=<a random secret, e.g. openssl rand -hex 32>");
        }
        if self.dev_tokens() {
            problems.push("LIVEHUB_PAGES__DEV_TOKENS=false");
        }
        problems
    }

    /// The connection cap: `server.max_connections`, or with 0 the open-file limit `nofile`
    /// minus room for Redis, the listener and files (and never more than it).
    pub fn connection_cap(&self, nofile: u64) -> usize {
        let room = nofile.saturating_sub(nofile / 20 + 64) as usize;
        match self.server.max_connections {
            0 => room.max(1),
            n => n,
        }
    }

    /// True when the configuration still uses the development token secret.
    pub fn uses_dev_secret(&self) -> bool {
        self.auth.secret == DEV_SECRET
    }
}

/// An environment value is read as a TOML value when it parses as one (numbers, booleans,
/// quoted strings, arrays), else as a bare string.
fn parse_env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_and_match_the_protocol() {
        let c = Config::defaults();
        assert_eq!(c.inventory.hold_ms, 300_000);
        assert_eq!(c.room.history, 1000);
        assert_eq!(c.room.tick_ms, 100);
        assert_eq!(c.limits.max_frame_bytes, 64 * 1024);
        assert_eq!(c.limits.max_fragments, 64);
        assert!(c.allow_anonymous());
        assert!(!c.require_exp());
        assert!(c.dev_tokens());
        assert!(c.uses_dev_secret());
    }

    #[test]
    fn a_webhook_endpoint_that_cannot_receive_is_refused_with_its_key() {
        let dir = std::env::temp_dir().join(format!("livehub-hooks-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hooks.toml");
        let endpoint = |name: &str, url: &str, secret: &str| {
            format!(
                "[[webhooks.endpoints]]\nname = \"{name}\"\nurl = \"{url}\"\nsecret = \"{secret}\"\n"
            )
        };
        let ok = endpoint("shop", "https://shop.example/hook", "0123456789abcdef");
        let cases = [
            (
                endpoint("shop", "ftp://shop.example/hook", "0123456789abcdef"),
                "webhooks.endpoints[0].url",
            ),
            (
                endpoint("shop", "https:///hook", "0123456789abcdef"),
                "webhooks.endpoints[0].url",
            ),
            (
                endpoint("shop", "https://shop.example/hook", "short"),
                "webhooks.endpoints[0].secret",
            ),
            (
                endpoint("a shop", "https://shop.example/hook", "0123456789abcdef"),
                "webhooks.endpoints[0].name",
            ),
            (format!("{ok}{ok}"), "webhooks.endpoints[1].name"),
            (format!("{ok}batch = 0\n"), "webhooks.endpoints[0].batch"),
            (format!("{ok}batch = 501\n"), "webhooks.endpoints[0].batch"),
        ];
        for (toml, key) in cases {
            std::fs::write(&file, &toml).unwrap();
            let e = Config::load(Some(&file), env(&[])).unwrap_err().to_string();
            assert!(e.contains(key), "{toml}: {e}");
        }
        std::fs::write(&file, &ok).unwrap();
        let c = Config::load(Some(&file), env(&[])).unwrap();
        assert_eq!(c.webhooks.endpoints[0].name, "shop");
        assert!(
            c.webhooks.endpoints[0].events.is_empty(),
            "every kind by default"
        );
        assert_eq!(
            c.webhooks.endpoints[0].batch, 1,
            "one event per POST by default"
        );
        let e = Config::load(Some(&file), env(&[("LIVEHUB_WEBHOOKS__TIMEOUT_MS", "0")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("webhooks.timeout_ms"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn development_conveniences_hold_only_on_a_loopback_bind() {
        let public = env(&[("LIVEHUB_SERVER__BIND", "0.0.0.0:8080")]);
        let c = Config::load(None, public).unwrap();
        assert!(!c.allow_anonymous() && c.require_exp() && !c.dev_tokens());
        assert_eq!(c.exposure_problems().len(), 1, "the development secret");
        let c = Config::load(
            None,
            env(&[
                ("LIVEHUB_SERVER__BIND", "0.0.0.0:8080"),
                ("LIVEHUB_PAGES__DEV_TOKENS", "true"),
                ("LIVEHUB_AUTH__ALLOW_ANONYMOUS", "true"),
            ]),
        )
        .unwrap();
        assert!(c.allow_anonymous(), "an explicit true holds everywhere");
        assert_eq!(
            c.exposure_problems(),
            vec![
                "LIVEHUB_AUTH__SECRET=<a random secret, e.g. openssl rand -hex 32>",
                "LIVEHUB_PAGES__DEV_TOKENS=false"
            ]
        );
        let c = Config::load(
            None,
            env(&[
                ("LIVEHUB_SERVER__BIND", "0.0.0.0:8080"),
                ("LIVEHUB_SERVER__INSECURE_DEV", "true"),
            ]),
        )
        .unwrap();
        assert!(c.exposure_problems().is_empty());
        let e = Config::load(None, env(&[("LIVEHUB_AUTH__REQUIRE_EXP", "sometimes")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("auth.require_exp") && e.contains("loopback"),
            "{e}"
        );
    }

    #[test]
    fn an_automatic_connection_cap_stays_below_the_file_limit() {
        let c = Config::defaults();
        assert_eq!(c.server.max_connections, 0);
        let cap = c.connection_cap(20_000);
        assert!(cap < 20_000 && cap > 18_000, "{cap}");
        let mut c = c;
        c.server.max_connections = 100;
        assert_eq!(c.connection_cap(20_000), 100);
    }

    #[test]
    fn env_overrides_a_key() {
        let c = Config::load(None, env(&[("LIVEHUB_ROOM__HISTORY", "7")])).unwrap();
        assert_eq!(c.room.history, 7);
        let c = Config::load(None, env(&[("LIVEHUB_SERVER__BIND", "0.0.0.0:9")])).unwrap();
        assert_eq!(c.server.bind.port(), 9);
    }

    #[test]
    fn invalid_values_name_the_key() {
        let e = Config::load(None, env(&[("LIVEHUB_ROOM__HISTORY", "lots")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("room.history"), "{e}");
        let e = Config::load(None, env(&[("LIVEHUB_ROOM__TICK_MS", "0")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("room.tick_ms"), "{e}");
        let e = Config::load(None, env(&[("LIVEHUB_LIMITS__MAX_FRAGMENTS", "0")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("limits.max_fragments"), "{e}");
        let e = Config::load(None, env(&[("LIVEHUB_SERVER__SOCKET_SEND_BUFFER", "100")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.socket_send_buffer"), "{e}");
        let c = Config::load(
            None,
            env(&[("LIVEHUB_SERVER__SOCKET_SEND_BUFFER", "65536")]),
        );
        assert_eq!(c.map(|c| c.server.socket_send_buffer).ok(), Some(65536));
        let e = Config::load(None, env(&[("LIVEHUB_ROOM__NOPE", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn out_of_range_history_retention_and_viewer_ttl_are_refused_naming_the_key() {
        let refused = |vars: &[(&str, &str)]| {
            Config::load(None, env(vars))
                .expect_err("should be refused")
                .to_string()
        };
        let e = refused(&[("LIVEHUB_ROOM__HISTORY", "1000000000000")]);
        assert!(e.contains("room.history") && e.contains("100000"), "{e}");
        assert!(Config::load(None, env(&[("LIVEHUB_ROOM__HISTORY", "100000")])).is_ok());
        let e = refused(&[("LIVEHUB_REDIS__RETENTION_MS", "0")]);
        assert!(e.contains("redis.retention_ms"), "{e}");
        let e = refused(&[("LIVEHUB_REDIS__RETENTION_MS", "999")]);
        assert!(
            e.contains("redis.retention_ms") && e.contains("1000"),
            "{e}"
        );
        assert!(Config::load(None, env(&[("LIVEHUB_REDIS__RETENTION_MS", "1000")])).is_ok());
        let e = refused(&[("LIVEHUB_ROOM__VIEWERS_TTL_MS", "50")]);
        assert!(
            e.contains("room.viewers_ttl_ms") && e.contains("room.tick_ms"),
            "{e}"
        );
        let e = refused(&[
            ("LIVEHUB_ROOM__TICK_MS", "1000"),
            ("LIVEHUB_ROOM__VIEWERS_TTL_MS", "1500"),
        ]);
        assert!(
            e.contains("room.viewers_ttl_ms") && e.contains("2000 ms"),
            "{e}"
        );
        assert!(
            Config::load(
                None,
                env(&[
                    ("LIVEHUB_ROOM__TICK_MS", "1000"),
                    ("LIVEHUB_ROOM__VIEWERS_TTL_MS", "2000")
                ])
            )
            .is_ok()
        );
    }

    #[test]
    fn a_bad_value_from_a_variable_names_it_once_with_the_expected_form() {
        let e = Config::load(None, env(&[("LIVEHUB_ROOM__HISTORY", "lots")]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config key `room.history` (set by the environment variable LIVEHUB_ROOM__HISTORY): \
             invalid type: string \"lots\", expected a whole number; for example \
             LIVEHUB_ROOM__HISTORY=1000 (in a config file: room.history = 1000)"
        );
        let e = Config::load(None, env(&[("LIVEHUB_SERVER__BIND", "8080")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("LIVEHUB_SERVER__BIND=127.0.0.1:8080")
                && e.contains("server.bind = \"127.0.0.1:8080\""),
            "{e}"
        );
        // a failed check names the variable too
        let e = Config::load(None, env(&[("LIVEHUB_ROOM__TICK_MS", "0")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("config key `room.tick_ms` (set by the environment variable LIVEHUB_ROOM__TICK_MS): must be greater than 0"),
            "{e}"
        );
        // an unknown section is traced to the variable that made it
        let e = Config::load(None, env(&[("LIVEHUB_ROOMS__HISTORY", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("LIVEHUB_ROOMS__HISTORY"), "{e}");
    }

    #[test]
    fn a_bad_value_from_a_file_names_the_file_and_the_last_writer_wins() {
        let path = std::env::temp_dir().join(format!("livehub-config-{}.toml", std::process::id()));
        std::fs::write(&path, "[server]\nbind = 8080\n[room]\nhistory = 5\n").unwrap();
        let shown = path.display().to_string();
        let e = Config::load(Some(&path), env(&[])).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "config key `server.bind` (set in {shown}): invalid type: integer `8080`, \
                 expected an address with a port, like 127.0.0.1:8080; for example \
                 server.bind = \"127.0.0.1:8080\""
            )
        );
        std::fs::write(&path, "[room]\nhistory = 0\n").unwrap();
        let e = Config::load(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(e.contains(&format!("(set in {shown})")), "{e}");
        let e = Config::load(Some(&path), env(&[("LIVEHUB_ROOM__HISTORY", "0")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("LIVEHUB_ROOM__HISTORY") && !e.contains(&shown),
            "{e}"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
