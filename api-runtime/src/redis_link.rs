//! The one Redis connection of a runtime process (`DBAPI_REDIS_URL`),
//! shared by the rate limiter and the response cache: one multiplexed
//! connection, and one view of whether Redis is up.
//!
//! A request never waits on a Redis that is down: the first failure marks
//! it down (one log line and `dbapi_rate_limit_redis_outages_total`), every
//! user then falls back at once (per-replica limits, cache bypassed), and
//! a probe retries every second until Redis answers again (one more line).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long a request waits for Redis before going on without it (and
/// Redis is taken as down until the probe reaches it).
pub const REDIS_WAIT: Duration = Duration::from_millis(500);
/// How often the probe tries a Redis that is down.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Where Redis is: `DBAPI_REDIS_URL` and the prefix of every key written.
#[derive(Debug, Clone, Default)]
pub struct RedisSettings {
    pub url: Option<String>,
    pub key_prefix: String,
}

pub struct RedisLink {
    /// For connections of their own (the generation mirror's subscription).
    client: redis::Client,
    connection: ConnectionManager,
    key_prefix: String,
    /// False from the first failure until the probe reaches Redis again.
    up: AtomicBool,
}

impl RedisLink {
    /// The link, or `None` without a URL. Connects lazily: Redis need not
    /// be up at start-up.
    pub fn open(settings: &RedisSettings) -> Result<Option<Arc<RedisLink>>, String> {
        let Some(url) = settings.url.as_deref().filter(|u| !u.is_empty()) else { return Ok(None) };
        let client =
            redis::Client::open(url).map_err(|e| format!("DBAPI_REDIS_URL is not a Redis URL ({})", e.category()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_WAIT))
            .set_response_timeout(Some(REDIS_WAIT))
            .set_number_of_retries(1)
            .set_max_delay(PROBE_EVERY);
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("cannot use DBAPI_REDIS_URL: {}", e.category()))?;
        let key_prefix = settings.key_prefix.clone();
        Ok(Some(Arc::new(RedisLink { client, connection, key_prefix, up: AtomicBool::new(true) })))
    }

    /// `prefix` + `key`: every key the runtime writes.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.key_prefix)
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// A handle for one command or pipeline (a clone of the multiplexed
    /// connection).
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Runs `call` against Redis if it is up, within [`REDIS_WAIT`];
    /// `None` (and Redis marked down) on any failure.
    pub async fn run<T, F>(self: &Arc<Self>, call: F) -> Option<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        if !self.is_up() {
            return None;
        }
        match tokio::time::timeout(REDIS_WAIT, call).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                self.went_down(&e.to_string());
                None
            }
            Err(_) => {
                self.went_down("no answer in time");
                None
            }
        }
    }

    /// A connection of its own in subscriber mode, within [`REDIS_WAIT`].
    pub async fn subscriber(&self) -> redis::RedisResult<redis::aio::PubSub> {
        within_wait(self.client.get_async_pubsub()).await
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        redis::cmd("PING").query_async::<()>(&mut self.connection()).await
    }

    /// Checks Redis at start-up; a Redis that does not answer is marked
    /// down (and probed) at once rather than by the first request.
    pub async fn check_at_start_up(self: &Arc<Self>) -> bool {
        match tokio::time::timeout(REDIS_WAIT * 2, self.ping()).await {
            Ok(Ok(())) => true,
            _ => {
                self.went_down("Redis does not answer at start-up");
                false
            }
        }
    }

    /// Marks Redis down (logging once per outage) and starts the probe
    /// that brings it back.
    pub fn went_down(self: &Arc<Self>, why: &str) {
        if !self.up.swap(false, Ordering::SeqCst) {
            return;
        }
        tracing::warn!(
            reason = why,
            "Redis is unreachable: rate limits are per replica and the response cache is bypassed until it is back"
        );
        crate::metrics::global().redis_outage_started();
        let link = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                if let Ok(Ok(())) = tokio::time::timeout(REDIS_WAIT * 2, link.ping()).await {
                    link.up.store(true, Ordering::SeqCst);
                    crate::metrics::global().redis_outage_ended();
                    tracing::info!("Redis is back: rate limits and the response cache are shared again");
                    return;
                }
            }
        });
    }
}

/// `call` within [`REDIS_WAIT`], a timeout being an I/O error like any
/// other, for connections that are not the shared one (which [`RedisLink::run`]
/// guards, and marks down).
pub async fn within_wait<T>(call: impl Future<Output = redis::RedisResult<T>>) -> redis::RedisResult<T> {
    match tokio::time::timeout(REDIS_WAIT, call).await {
        Ok(answered) => answered,
        Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
    }
}
