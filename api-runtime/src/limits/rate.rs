//! Request rate limits (issue 18, item 5): how often one caller may call.
//!
//! A GCRA per caller (the "generic cell rate algorithm", a token bucket
//! kept as one number): a caller may make one request every
//! `T = 60 s / requestsPerMinute`, and one that has been idle may make
//! `burst + 1` at once. Its state is the *theoretical arrival time* (TAT):
//! when the caller's bucket would be full again.
//!
//! - Across replicas the TAT lives in Redis, one key per caller, read and
//!   written by one Lua script ([`GCRA_SCRIPT`], sent with `EVALSHA`, and
//!   with `EVAL` when the server answers `NOSCRIPT`), with Redis's own
//!   clock so replicas' clocks do not matter. The key expires when the
//!   bucket is full again, so idle callers leave nothing behind. One round
//!   trip per request.
//! - Without Redis (no `DBAPI_REDIS_URL`, or Redis unreachable) each
//!   replica limits by itself with `governor`, keyed the same way. An
//!   outage is logged once when it starts and once when Redis is back (and
//!   counted: `dbapi_rate_limit_redis_outages_total`, with
//!   `dbapi_rate_limit_redis_fallback_active` 1 meanwhile); a
//!   probe retries Redis every second meanwhile, so requests never wait on
//!   a Redis that is down.
//!
//! Who the caller is ([`Caller`]): an API key by its name, a token by its
//! subject, anything else by its client address. Its quota is the key's
//! own `rateLimit`, else its role's, else the document's (chosen by
//! `auth`, which knows the caller).
//!
//! Headers of every response to a limited caller (IETF draft
//! `RateLimit-*` headers): `RateLimit-Limit` the caller's bucket size
//! (`burst + 1`), `RateLimit-Remaining` the requests it may still send at
//! once, `RateLimit-Reset` the seconds (rounded up) until its bucket is full
//! again. A refused request is 429 `DBAPI429` with `Retry-After`: the
//! seconds (rounded up) until the next request is allowed.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dbapi_crds::config::RateLimit;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;

use crate::error::ApiError;
use crate::redis_link::RedisLink;

/// The GCRA in one atomic step. KEYS[1]: the caller's key. ARGV[1]: the
/// emission interval T (µs); ARGV[2]: the bucket size (`burst + 1`).
/// Returns `{allowed (0|1), remaining, reset (µs until the bucket is full),
/// retry (µs until the next request is allowed; 0 when allowed)}`. (Redis
/// before 5 needs `replicate_commands` to write after reading `TIME`.)
pub const GCRA_SCRIPT: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local capacity = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local after = tat + interval - now
if after > capacity then
  return {0, 0, tat - now, after - capacity}
end
redis.call('SET', KEYS[1], now + after, 'PX', math.ceil(after / 1000))
return {1, math.floor((capacity - after) / interval), after, 0}
";

/// A rate as the limiter applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// One request per this many microseconds, sustained.
    pub interval_us: u64,
    /// Requests a rested caller may send at once (`burst + 1`).
    pub capacity: u32,
}

impl Quota {
    pub fn new(limit: &RateLimit) -> Result<Quota, String> {
        if limit.requests_per_minute == 0 {
            return Err("rateLimit.requestsPerMinute must be at least 1".into());
        }
        let capacity = limit.burst.checked_add(1).ok_or("rateLimit.burst is too large")?;
        Ok(Quota { interval_us: 60_000_000 / u64::from(limit.requests_per_minute), capacity })
    }

    fn governor(self) -> governor::Quota {
        let period = Duration::from_micros(self.interval_us.max(1));
        governor::Quota::with_period(period)
            .expect("the period is at least 1 µs")
            .allow_burst(NonZeroU32::new(self.capacity).unwrap_or(NonZeroU32::MIN))
    }
}

/// What the limiter said about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Until the caller's bucket is full again.
    pub reset: Duration,
    /// Until the next request is allowed (refused requests only).
    pub retry_after: Duration,
}

impl Decision {
    /// From the script's reply `{allowed, remaining, reset_us, retry_us}`.
    fn from_script(quota: Quota, reply: [i64; 4]) -> Decision {
        let micros = |v: i64| Duration::from_micros(v.max(0) as u64);
        Decision {
            allowed: reply[0] == 1,
            limit: quota.capacity,
            remaining: reply[1].clamp(0, i64::from(quota.capacity)) as u32,
            reset: micros(reply[2]),
            retry_after: micros(reply[3]),
        }
    }

    /// The `RateLimit-*` headers.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert(RATELIMIT_LIMIT, HeaderValue::from(self.limit));
        headers.insert(RATELIMIT_REMAINING, HeaderValue::from(self.remaining));
        headers.insert(RATELIMIT_RESET, HeaderValue::from(ceil_seconds(self.reset)));
    }
}

pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Whole seconds, rounded up: a client that waits that long is in time.
pub fn ceil_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Who a request is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// A call without key or token subject, by client address (an IPv6
    /// client by its /64, which one host usually holds whole).
    Ip(IpAddr),
    /// An API key, by its name.
    Key(Arc<str>),
    /// A token, by its `sub` claim.
    Subject(Arc<str>),
}

impl Caller {
    pub fn anonymous(ip: IpAddr) -> Caller {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                Caller::Ip(IpAddr::V6(Ipv6Addr::from(network)))
            }
            v4 => Caller::Ip(v4),
        }
    }

    fn redis_key(&self, prefix: &str) -> String {
        match self {
            Caller::Ip(ip) => format!("{prefix}rate:ip:{ip}"),
            Caller::Key(name) => format!("{prefix}rate:key:{name}"),
            Caller::Subject(sub) => format!("{prefix}rate:sub:{sub}"),
        }
    }
}

type LocalLimiter =
    governor::RateLimiter<Caller, DefaultKeyedStateStore<Caller>, DefaultClock, StateInformationMiddleware>;

/// The limiter of one runtime process. Quotas come with each check (they
/// depend on the caller and are reloaded with the document).
pub struct RateLimiter {
    redis: Option<Arc<SharedLimit>>,
    /// The in-process buckets, one keyed limiter per quota in use.
    local: RwLock<HashMap<Quota, Arc<LocalLimiter>>>,
}

/// The limit shared by all replicas through Redis.
struct SharedLimit {
    link: Arc<RedisLink>,
    script: redis::Script,
}

impl RateLimiter {
    /// The limiter, shared through Redis when a URL is given. Redis need
    /// not be up: until it is, limits are per process. `in_use` says
    /// whether the document sets any limit now (then Redis is tried at
    /// once, and the log says how limits are shared).
    pub async fn new(redis: Option<Arc<RedisLink>>, in_use: bool) -> Arc<RateLimiter> {
        if redis.is_none() && in_use {
            tracing::info!("rate limits are per replica: no DBAPI_REDIS_URL");
        }
        let redis = redis.map(|link| Arc::new(SharedLimit { link, script: redis::Script::new(GCRA_SCRIPT) }));
        let limiter = Arc::new(RateLimiter { redis, local: RwLock::default() });
        if let Some(shared) = limiter.redis.as_ref().filter(|_| in_use)
            && shared.link.check_at_start_up().await
        {
            tracing::info!("rate limits are shared by all replicas through Redis");
        }
        limiter.spawn_local_cleanup();
        limiter
    }

    /// Counts one request of `caller` against `quota` and says whether it
    /// may go on.
    pub async fn check(&self, caller: &Caller, quota: Quota) -> Decision {
        if let Some(shared) = &self.redis
            && let Some(decision) = shared.link.run(shared.check(caller, quota)).await
        {
            return decision;
        }
        self.check_locally(caller, quota)
    }

    fn check_locally(&self, caller: &Caller, quota: Quota) -> Decision {
        let interval = Duration::from_micros(quota.interval_us);
        match self.local_limiter(quota).check_key(caller) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity().min(quota.capacity);
                Decision {
                    allowed: true,
                    limit: quota.capacity,
                    remaining,
                    reset: interval * (quota.capacity - remaining),
                    retry_after: Duration::ZERO,
                }
            }
            Err(not_until) => {
                let retry_after = not_until.wait_time_from(DefaultClock::default().now());
                Decision {
                    allowed: false,
                    limit: quota.capacity,
                    remaining: 0,
                    reset: retry_after + interval * (quota.capacity - 1),
                    retry_after,
                }
            }
        }
    }

    fn local_limiter(&self, quota: Quota) -> Arc<LocalLimiter> {
        if let Some(limiter) = self.local.read().expect("the limiter map is never poisoned").get(&quota) {
            return limiter.clone();
        }
        let mut map = self.local.write().expect("the limiter map is never poisoned");
        map.entry(quota)
            .or_insert_with(|| {
                Arc::new(governor::RateLimiter::keyed(quota.governor()).with_middleware::<StateInformationMiddleware>())
            })
            .clone()
    }

    /// Forgets callers whose bucket is full again, so the in-process map
    /// stays as small as the set of recent callers.
    fn spawn_local_cleanup(self: &Arc<Self>) {
        let limiter = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(60));
            loop {
                ticks.tick().await;
                let Some(limiter) = limiter.upgrade() else { return };
                let map = limiter.local.read().expect("the limiter map is never poisoned");
                for local in map.values() {
                    local.retain_recent();
                    local.shrink_to_fit();
                }
            }
        });
    }
}

impl SharedLimit {
    /// One round trip: `EVALSHA`, or `EVAL` (which also caches the script)
    /// when this Redis has not seen it yet.
    async fn check(&self, caller: &Caller, quota: Quota) -> redis::RedisResult<Decision> {
        let key = caller.redis_key(&self.link.key(""));
        let mut connection = self.link.connection();
        let call = |command: &str, script: &str| {
            let mut cmd = redis::cmd(command);
            cmd.arg(script).arg(1).arg(&key).arg(quota.interval_us).arg(quota.capacity);
            cmd
        };
        let reply: [i64; 4] = match call("EVALSHA", self.script.get_hash()).query_async(&mut connection).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                call("EVAL", GCRA_SCRIPT).query_async(&mut connection).await?
            }
            other => other?,
        };
        Ok(Decision::from_script(quota, reply))
    }
}

/// The 429 of a refused request, with `Retry-After` and the
/// `RateLimit-*` headers.
pub fn refusal(decision: &Decision, quota: Quota) -> Response {
    crate::metrics::global().rate_limited();
    let retry = ceil_seconds(decision.retry_after).max(1);
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "DBAPI429",
        format!("Too many requests: at most {} at once, then one every {}", decision.limit, pace(quota)),
    )
    .hint(format!("Retry in {retry} s."));
    error.retry_after = Some(retry);
    let mut response = error.into_response();
    decision.write_headers(response.headers_mut());
    response
}

fn pace(quota: Quota) -> String {
    let ms = quota.interval_us / 1000;
    if ms >= 1000 && ms.is_multiple_of(1000) { format!("{} s", ms / 1000) } else { format!("{ms} ms") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn zero_rates_are_refused() {
        let zero = RateLimit { requests_per_minute: 0, burst: 1 };
        assert!(Quota::new(&zero).unwrap_err().contains("requestsPerMinute"));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(Caller::anonymous(ip("2001:db8:1:2:aaaa::1")), Caller::Ip(ip("2001:db8:1:2::")));
        assert_eq!(Caller::anonymous(ip("::ffff:203.0.113.9")), Caller::Ip(ip("203.0.113.9")));
        assert_eq!(Caller::Ip(ip("203.0.113.9")).redis_key("p:"), "p:rate:ip:203.0.113.9");
        assert_eq!(Caller::Key("ci".into()).redis_key("p:"), "p:rate:key:ci");
    }

    #[test]
    fn quota_and_headers_arithmetic() {
        let q = Quota::new(&RateLimit { requests_per_minute: 120, burst: 4 }).unwrap();
        assert_eq!(q, Quota { interval_us: 500_000, capacity: 5 });
        assert_eq!(Quota::new(&RateLimit { requests_per_minute: 1, burst: 0 }).unwrap().capacity, 1);
        assert_eq!(ceil_seconds(Duration::from_micros(1)), 1);
        assert_eq!(ceil_seconds(Duration::from_secs(2)), 2);
        assert_eq!(ceil_seconds(Duration::from_millis(2001)), 3);
        let d = Decision::from_script(q, [0, 0, 2_400_000, 400_001]);
        assert!(!d.allowed);
        let mut h = HeaderMap::new();
        d.write_headers(&mut h);
        let value = |name| h[name].to_str().unwrap();
        assert_eq!((value(RATELIMIT_LIMIT), value(RATELIMIT_REMAINING), value(RATELIMIT_RESET)), ("5", "0", "3"));
        assert_eq!(ceil_seconds(d.retry_after), 1);
        // A negative or oversized reply is clamped, never wraps.
        let d = Decision::from_script(q, [1, 99, -5, 0]);
        assert_eq!((d.allowed, d.remaining, d.reset), (true, 5, Duration::ZERO));
    }

    #[tokio::test]
    async fn the_local_limiter_refuses_past_the_bucket() {
        let quota = Quota::new(&RateLimit { requests_per_minute: 1, burst: 2 }).unwrap();
        let limiter = RateLimiter::new(None, true).await;
        let a = Caller::Ip(ip("203.0.113.1"));
        let remaining: Vec<_> =
            [0; 3].iter().map(|_| limiter.check_locally(&a, quota)).map(|d| (d.allowed, d.remaining)).collect();
        assert_eq!(remaining, [(true, 2), (true, 1), (true, 0)]);
        let refused = limiter.check_locally(&a, quota);
        assert!(!refused.allowed);
        assert!((59..=60).contains(&ceil_seconds(refused.retry_after)), "{refused:?}");
        // Another caller has its own bucket, and a key named like an
        // address is another caller.
        assert!(limiter.check_locally(&Caller::Ip(ip("203.0.113.2")), quota).allowed);
        assert!(limiter.check_locally(&Caller::Key("203.0.113.1".into()), quota).allowed);
        // Another quota is counted apart.
        let wide = Quota::new(&RateLimit { requests_per_minute: 600, burst: 9 }).unwrap();
        assert_eq!(limiter.check_locally(&a, wide).remaining, 9);
    }
}
