//! Prometheus metrics of the runtime, served as text on the admin port's
//! `GET /metrics` (never on the API port).
//!
//! One registry per process ([`global`]), as Prometheus expects of one
//! scrape target. Every name is in [`names`]. A request's series are found
//! under a read lock and counted with relaxed atomic increments (the
//! duration histogram is kept in atomics, never under a write lock); its
//! `table` label comes from the schema, so callers cannot mint label values.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::Method;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Metric, Registry};

/// The metric names as scraped (counters get `_total` from the encoder).
pub mod names {
    /// Configuration reloads by `result` (`ok` | `error`).
    pub const CONFIG_RELOADS: &str = "dbapi_config_reloads";
    /// When the configuration was last loaded successfully (start-up or
    /// reload), in Unix seconds.
    pub const CONFIG_LAST_RELOAD_SUCCESS: &str = "dbapi_config_last_reload_success_timestamp_seconds";
    /// 1 while Redis is unreachable and rate limits are per replica.
    pub const REDIS_FALLBACK_ACTIVE: &str = "dbapi_rate_limit_redis_fallback_active";
    /// Redis outages seen by this replica's rate limiter.
    pub const REDIS_OUTAGES: &str = "dbapi_rate_limit_redis_outages";
    /// API responses by `table` (the table, `rpc/<function>`, or empty
    /// when the path names neither), `method` and `status`.
    pub const HTTP_REQUESTS: &str = "dbapi_http_requests";
    /// Time from a request's arrival to its response head, in seconds, by
    /// `table`, `method` and status `class` (`1xx` … `5xx`).
    pub const HTTP_REQUEST_DURATION: &str = "dbapi_http_request_duration_seconds";
    /// GET answers by what the response cache did: `result` is `hit`,
    /// `miss` or `bypass` (Redis unreachable, or an answer streamed row by
    /// row, which is never kept).
    pub const CACHE_REQUESTS: &str = "dbapi_cache_requests";
    /// 1 while this replica reads the cache's generations from its own
    /// copy (its Redis subscription lives), 0 while it reads them from
    /// Redis.
    pub const CACHE_GENERATIONS_MIRRORED: &str = "dbapi_cache_generations_mirrored";
    /// Writes answered before every replica acknowledged their cache
    /// invalidation (a replica stalled past the wait).
    pub const CACHE_INVALIDATIONS_UNACKNOWLEDGED: &str = "dbapi_cache_invalidations_unacknowledged";
    /// 1 while the circuit breaker keeps requests from the database.
    pub const CIRCUIT_STATE: &str = "dbapi_circuit_state";
    /// Requests refused by a rate limit (429).
    pub const RATE_LIMITED: &str = "dbapi_rate_limited";
    /// Schema reloads by `result` (`ok` | `error`).
    pub const SCHEMA_RELOADS: &str = "dbapi_schema_reloads";
    /// The pool's open connections by `state` (`idle` | `busy`), read at
    /// scrape time.
    pub const DB_POOL_CONNECTIONS: &str = "dbapi_db_pool_connections";
    /// Requests waiting for a pooled connection, read at scrape time.
    pub const DB_POOL_WAITING: &str = "dbapi_db_pool_waiting";
    /// 1 while GET reads go to the read replica, 0 while they go to the
    /// primary (no replica, or it is down or lags).
    pub const READ_REPLICA_IN_USE: &str = "dbapi_read_replica_in_use";
}

/// What the connection pool holds at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    pub idle: usize,
    pub busy: usize,
    pub waiting: usize,
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Request duration buckets: 0.5 ms to 10 s.
const DURATION_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    table: String,
    method: &'static str,
    status: u16,
}

/// A request's `table`, `method` and `status` labels.
type SeriesKey = (String, &'static str, u16);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    table: String,
    method: &'static str,
    class: &'static str,
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const CACHE_RESULTS: [&str; 4] = ["hit", "miss", "bypass", "stale"];

pub struct Metrics {
    registry: Registry,
    reloads_ok: Counter,
    reloads_error: Counter,
    last_reload_success: Gauge<f64, AtomicU64>,
    redis_fallback_active: Gauge,
    redis_outages: Counter,
    requests: Family<RequestLabels, Counter>,
    duration: Family<DurationLabels, DurationHistogram>,
    /// Each answer's two series by table, method and status, found once in
    /// the families (which hash their labels with SipHash, under a lock of
    /// their own, for every lookup) and then by one fast hash.
    series: RwLock<HashMap<SeriesKey, (Counter, DurationHistogram), foldhash::fast::RandomState>>,
    rate_limited: Counter,
    schema_reloads_ok: Counter,
    schema_reloads_error: Counter,
    pool_idle: Gauge,
    pool_busy: Gauge,
    pool_waiting: Gauge,
    /// `hit`, `miss`, `bypass`, `stale`.
    cache: [Counter; 4],
    generations_mirrored: Gauge,
    invalidations_unacknowledged: Counter,
    circuit: Gauge,
    read_replica_in_use: Gauge,
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let r = &mut registry;
        let [reloads_ok, reloads_error] =
            by_result(r, names::CONFIG_RELOADS, "Configuration reloads by result", ["ok", "error"]);
        let last_reload_success: Gauge<f64, AtomicU64> = registered(
            r,
            names::CONFIG_LAST_RELOAD_SUCCESS,
            "When the configuration was last loaded successfully, in Unix seconds",
        );
        let redis_fallback_active =
            registered(r, names::REDIS_FALLBACK_ACTIVE, "1 while Redis is unreachable and rate limits are per replica");
        let redis_outages = registered(r, names::REDIS_OUTAGES, "Redis outages seen by the rate limiter");
        let requests = registered(r, names::HTTP_REQUESTS, "API responses by table, method and status");
        let duration =
            registered(r, names::HTTP_REQUEST_DURATION, "Time from a request's arrival to its response head");
        let rate_limited = registered(r, names::RATE_LIMITED, "Requests refused by a rate limit");
        let [schema_reloads_ok, schema_reloads_error] =
            by_result(r, names::SCHEMA_RELOADS, "Schema reloads by result", ["ok", "error"]);
        let pool: Family<StateLabel, Gauge> =
            registered(r, names::DB_POOL_CONNECTIONS, "Open pooled database connections by state");
        let pool_idle = pool.get_or_create(&StateLabel { state: "idle" }).clone();
        let pool_busy = pool.get_or_create(&StateLabel { state: "busy" }).clone();
        let pool_waiting = registered(r, names::DB_POOL_WAITING, "Requests waiting for a pooled connection");
        let cache = by_result(r, names::CACHE_REQUESTS, "GET answers by what the response cache did", CACHE_RESULTS);
        let generations_mirrored = registered(
            r,
            names::CACHE_GENERATIONS_MIRRORED,
            "1 while the cache's generations are read from this replica's copy, 0 while from Redis",
        );
        let invalidations_unacknowledged = registered(
            r,
            names::CACHE_INVALIDATIONS_UNACKNOWLEDGED,
            "Writes answered before every replica acknowledged their cache invalidation",
        );
        let read_replica_in_use = registered(
            r,
            names::READ_REPLICA_IN_USE,
            "1 while GET reads go to the read replica, 0 while they go to the primary",
        );
        let circuit =
            registered(r, names::CIRCUIT_STATE, "1 while the circuit breaker keeps requests from the database, else 0");
        Metrics {
            cache,
            generations_mirrored,
            invalidations_unacknowledged,
            circuit,
            registry,
            reloads_ok,
            reloads_error,
            last_reload_success,
            redis_fallback_active,
            redis_outages,
            requests,
            duration,
            series: RwLock::default(),
            rate_limited,
            schema_reloads_ok,
            schema_reloads_error,
            pool_idle,
            pool_busy,
            pool_waiting,
            read_replica_in_use,
        }
    }

    /// A configuration was loaded and put in force (at start-up too).
    pub fn config_loaded(&self) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        self.last_reload_success.set(now.as_secs_f64());
    }

    /// Counts one reload attempt.
    pub fn config_reloaded(&self, ok: bool) {
        if ok {
            self.reloads_ok.inc();
            self.config_loaded();
        } else {
            self.reloads_error.inc();
        }
    }

    /// Whether the cache's generations are read from this replica's copy.
    pub fn generations_mirrored(&self, mirrored: bool) {
        self.generations_mirrored.set(i64::from(mirrored));
    }

    /// A write was answered before every replica acknowledged its bump.
    pub fn invalidation_unacknowledged(&self) {
        self.invalidations_unacknowledged.inc();
    }

    /// Redis became unreachable: rate limits are per replica from now on.
    pub fn redis_outage_started(&self) {
        self.redis_outages.inc();
        self.redis_fallback_active.set(1);
    }

    /// Redis answers again.
    pub fn redis_outage_ended(&self) {
        self.redis_fallback_active.set(0);
    }

    /// One API response for `table` (see [`names::HTTP_REQUESTS`]).
    pub fn observe_request(&self, table: String, method: &Method, status: u16, took: Duration) {
        let key = (table, method_label(method), status);
        if let Some((requests, duration)) = self.series.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
            requests.inc();
            duration.observe(took);
            return;
        }
        let (table, method, status) = key;
        let class = CLASSES[usize::from(status / 100).clamp(1, 5) - 1];
        let duration = self.duration.get_or_create(&DurationLabels { table: table.clone(), method, class }).clone();
        let requests = self.requests.get_or_create(&RequestLabels { table: table.clone(), method, status }).clone();
        requests.inc();
        duration.observe(took);
        // Bounded: tables and functions come from the schema, methods and
        // statuses from short lists.
        self.series.write().unwrap_or_else(|p| p.into_inner()).insert((table, method, status), (requests, duration));
    }

    /// Whether the circuit breaker is open.
    pub fn circuit_state(&self, open: bool) {
        self.circuit.set(i64::from(open));
    }

    /// What the response cache did for one read (`hit`, `miss`, `bypass`,
    /// `stale`).
    pub fn cache_request(&self, result: &str) {
        if let Some(i) = CACHE_RESULTS.iter().position(|r| *r == result) {
            self.cache[i].inc();
        }
    }

    /// One request refused by a rate limit.
    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// Counts one schema reload attempt.
    pub fn schema_reloaded(&self, ok: bool) {
        if ok { &self.schema_reloads_ok } else { &self.schema_reloads_error }.inc();
    }

    /// The pool as it is now; called at scrape time, so requests pay
    /// nothing for these gauges.
    pub fn observe_pool(&self, status: PoolStatus) {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.pool_idle.set(gauge(status.idle));
        self.pool_busy.set(gauge(status.busy));
        self.pool_waiting.set(gauge(status.waiting));
    }

    /// Reads go to the read replica (`true`) or back to the primary.
    pub fn read_replica_in_use(&self, in_use: bool) {
        self.read_replica_in_use.set(i64::from(in_use));
    }

    /// The Prometheus (OpenMetrics) text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// A counter family by `result`, registered, and its counters in `results`'
/// order (created now, so each is counted without a lookup).
/// A metric registered under `name`, and a handle on it (a clone shares
/// the value).
fn registered<M: Metric + Default + Clone>(registry: &mut Registry, name: &str, help: &str) -> M {
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

fn by_result<const N: usize>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    results: [&'static str; N],
) -> [Counter; N] {
    let family = Family::<ResultLabel, Counter>::default();
    // `get_or_create` holds the family's lock until the end of its statement.
    let counters = results.map(|result| family.get_or_create(&ResultLabel { result }).clone());
    registry.register(name, help, family);
    counters
}

/// The methods the API serves by name; any other is `OTHER`, so a
/// caller's made-up method cannot add series.
fn method_label(method: &Method) -> &'static str {
    const SERVED: [(Method, &str); 7] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PATCH, "PATCH"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::OPTIONS, "OPTIONS"),
    ];
    SERVED.iter().find(|(m, _)| m == method).map_or("OTHER", |(_, name)| name)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// A histogram of durations kept in atomics: an observation is two relaxed
/// increments, never a lock (prometheus-client's `Histogram` takes a write
/// lock for each). The count is the sum of the buckets, so a scrape never
/// shows them disagree.
#[derive(Debug, Clone, Default)]
struct DurationHistogram(Arc<DurationBuckets>);

#[derive(Debug, Default)]
struct DurationBuckets {
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    counts: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl DurationHistogram {
    fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        // The first bucket whose upper bound holds it (`le` is inclusive).
        let bucket = DURATION_BUCKETS.partition_point(|&bound| bound < seconds);
        self.0.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.0.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl EncodeMetric for DurationHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // prometheus-client writes `f64::MAX` as `+Inf` and accumulates.
        let bounds = DURATION_BUCKETS.iter().copied().chain(std::iter::once(f64::MAX));
        let buckets: Vec<(f64, u64)> = bounds.zip(self.0.counts.iter().map(|c| c.load(Ordering::Relaxed))).collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.0.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

impl TypedMetric for DurationHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn every_metric_is_exposed_under_its_name() {
        let m = Metrics::new();
        m.config_reloaded(true);
        m.config_reloaded(false);
        m.config_reloaded(false);
        m.redis_outage_started();
        m.observe_request("items".into(), &Method::DELETE, 204, Duration::from_millis(3));
        m.observe_request(String::new(), &Method::GET, 404, Duration::from_millis(30));
        m.observe_request("rpc/f".into(), &Method::from_bytes(b"BREW").unwrap(), 599, Duration::from_secs(30));
        let text = m.render();
        assert_eq!(sample(&text, "dbapi_config_reloads_total{result=\"ok\"}"), Some(1.0), "{text}");
        assert_eq!(sample(&text, "dbapi_config_reloads_total{result=\"error\"}"), Some(2.0), "{text}");
        let when = sample(&text, names::CONFIG_LAST_RELOAD_SUCCESS).unwrap();
        assert!(when > 1.7e9, "{text}");
        assert_eq!(sample(&text, "dbapi_rate_limit_redis_fallback_active"), Some(1.0), "{text}");
        assert_eq!(sample(&text, "dbapi_rate_limit_redis_outages_total"), Some(1.0), "{text}");
        let requests = |labels: &str| sample(&text, &format!("dbapi_http_requests_total{{{labels}}}"));
        assert_eq!(requests("table=\"items\",method=\"DELETE\",status=\"204\""), Some(1.0), "{text}");
        assert_eq!(requests("table=\"\",method=\"GET\",status=\"404\""), Some(1.0), "{text}");
        assert_eq!(requests("table=\"rpc/f\",method=\"OTHER\",status=\"599\""), Some(1.0), "{text}");
        // prometheus-client writes a bucket's `le` before the family's labels.
        let histogram = |part: &str, le: Option<&str>, labels: &str| {
            let le = le.map(|le| format!("le=\"{le}\",")).unwrap_or_default();
            sample(&text, &format!("dbapi_http_request_duration_seconds_{part}{{{le}{labels}}}"))
        };
        let fast = "table=\"items\",method=\"DELETE\",class=\"2xx\"";
        assert_eq!(histogram("count", None, fast), Some(1.0), "{text}");
        assert_eq!(histogram("sum", None, fast), Some(0.003), "{text}");
        assert_eq!(histogram("bucket", Some("0.0025"), fast), Some(0.0), "{text}");
        assert_eq!(histogram("bucket", Some("0.005"), fast), Some(1.0), "{text}");
        assert_eq!(histogram("bucket", Some("+Inf"), fast), Some(1.0), "{text}");
        let slow = "table=\"rpc/f\",method=\"OTHER\",class=\"5xx\"";
        assert_eq!(histogram("bucket", Some("10.0"), slow), Some(0.0), "{text}");
        assert_eq!(histogram("bucket", Some("+Inf"), slow), Some(1.0), "{text}");
        assert_eq!(histogram("sum", None, slow), Some(30.0), "{text}");
        m.redis_outage_ended();
        assert_eq!(sample(&m.render(), "dbapi_rate_limit_redis_fallback_active"), Some(0.0));
        assert_eq!(sample(&m.render(), "dbapi_read_replica_in_use"), Some(0.0));
        m.read_replica_in_use(true);
        assert_eq!(sample(&m.render(), "dbapi_read_replica_in_use"), Some(1.0));
    }
}
