//! The response cache (issue 19): GET answers of tables and views, shared
//! by every replica through Redis, with a short in-process cache in front,
//! invalidated by writes through per-table generations
//! ([`generations`]), and the HTTP validators of every read ([`answer`]).
//!
//! An answer is filed under its entry text: its request text (the request,
//! the caller's role and claims, the headers that change it: [`key`]) and
//! the current generations of every table it reads; in Redis under that
//! text's SHA-256 digest. A write bumps its table's generation before its
//! answer leaves, so the next read anywhere files under a new entry and
//! misses. The digest is the answer's `ETag`: a client that sends it back
//! in `If-None-Match` while the entry lives gets 304 without the database
//! being asked. The in-process cache is keyed by the entry text itself
//! and keeps the `ETag` beside the answer, so a hit digests nothing.
//!
//! Identical misses arriving together run one query (moka's entry API
//! loads once and hands the result to every waiter). While Redis is
//! unreachable the cache is bypassed and no request fails.

pub mod answer;
pub mod change_feed;
pub mod generations;
pub mod key;
mod mirror;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderValue;
use axum::response::Response;

use dbapi_crds::config::{CacheSettings, TableCacheRule, glob_match};

use crate::error::ApiError;
use crate::redis_link::RedisLink;
use answer::{CacheOutcome, CachedAnswer, ClientCaching};

fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
}

/// Puts what the loader produced where the request that ran it finds it;
/// the entry is not filled (the error only tells the waiters so).
fn keep(slot: &Mutex<Option<Result<Response, ApiError>>>, passed: Result<Response, ApiError>) -> NotKept {
    *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(passed);
    NotKept
}

/// The loader's answer was an error or not one to keep.
#[derive(Debug)]
struct NotKept;
use generations::Generations;

/// A cached answer in memory, its `ETag`, and how long this process keeps
/// it.
#[derive(Clone)]
struct Local {
    answer: Arc<CachedAnswer>,
    /// Shared by the answers built from it, not copied.
    etag: HeaderValue,
    keep_for: Duration,
}

struct KeepFor;

impl moka::Expiry<String, Local> for KeepFor {
    fn expire_after_create(&self, _: &String, value: &Local, _: std::time::Instant) -> Option<Duration> {
        Some(value.keep_for)
    }
}

pub struct ResponseCache {
    settings: CacheSettings,
    generations: Generations,
    redis: Option<Arc<RedisLink>>,
    /// Keyed by entry text ([`entry_text`]), hashed with foldhash: the
    /// texts are a few hundred bytes, and compared whole on a match.
    local: moka::future::Cache<String, Local, foldhash::fast::RandomState>,
    /// The last answer kept per request key, whatever its generations: what
    /// is served while the database cannot be asked.
    latest: moka::future::Cache<String, Arc<CachedAnswer>>,
    /// The PostgreSQL change feed, while the cache lives.
    feed: std::sync::OnceLock<change_feed::ChangeFeed>,
}

/// What the cache gives a read.
pub struct Served {
    pub response: Response,
    /// The answer's entity tag: its entry's digest (`None` when the cache
    /// was bypassed; the body's digest is used then).
    pub etag: Option<HeaderValue>,
    pub outcome: CacheOutcome,
}

/// Most answers one process keeps in memory.
const LOCAL_CAPACITY: u64 = 10_000;
/// How long the last answer to a request is kept for when the database
/// cannot be asked (the circuit breaker is open).
const KEEP_STALE: Duration = Duration::from_secs(3600);

impl ResponseCache {
    /// The cache `settings` ask for, or `None` without a `cache` section.
    pub fn new(settings: Option<&CacheSettings>, redis: Option<Arc<RedisLink>>) -> Option<Arc<ResponseCache>> {
        let settings = settings?.clone();
        let local = moka::future::Cache::builder()
            .max_capacity(LOCAL_CAPACITY)
            .expire_after(KeepFor)
            .build_with_hasher(foldhash::fast::RandomState::default());
        match &redis {
            Some(_) => tracing::info!("response cache on: shared by all replicas through Redis"),
            None => tracing::info!(
                "response cache on, in this process only: no DBAPI_REDIS_URL, so writes through other \
                 replicas show here only when the TTL ends"
            ),
        }
        let generations = Generations::new(redis.clone());
        let latest = moka::future::Cache::builder().max_capacity(LOCAL_CAPACITY).time_to_live(KEEP_STALE).build();
        let feed = std::sync::OnceLock::new();
        Some(Arc::new(ResponseCache { settings, generations, redis, local, latest, feed }))
    }

    /// The rule for a table: an exact name wins over globs, a longer glob
    /// over a shorter one.
    fn rule(&self, table: &str) -> Option<&TableCacheRule> {
        if let Some(rule) = self.settings.tables.get(table) {
            return Some(rule);
        }
        self.settings
            .tables
            .iter()
            .filter(|(glob, _)| glob_match(glob, table))
            .max_by_key(|(glob, _)| glob.len())
            .map(|(_, rule)| rule)
    }

    /// Seconds answers reading `tables` are kept: the shortest of their
    /// TTLs.
    pub fn ttl_seconds<'t>(&self, tables: impl IntoIterator<Item = &'t str>) -> u32 {
        let default = self.settings.default_ttl_seconds;
        tables.into_iter().map(|t| self.rule(t).and_then(|r| r.ttl_seconds).unwrap_or(default)).min().unwrap_or(default)
    }

    /// How clients may keep an answer whose top-level table is `table`.
    pub fn client_caching(&self, table: &str, private: bool) -> ClientCaching {
        let rule = self.rule(table);
        ClientCaching {
            max_age_seconds: rule.and_then(|r| r.max_age_seconds).unwrap_or(0),
            stale_while_revalidate_seconds: rule.and_then(|r| r.stale_while_revalidate_seconds),
            private,
        }
    }

    /// The answer to a read: from memory, from Redis, or from `load` (the
    /// database), whose 200 and 206 answers are then kept for `ttl`
    /// seconds (0: never). Identical misses at once run `load` once.
    /// `request_text` is [`key::request_text`]: a hit digests nothing; a
    /// miss digests it with the generations (the Redis key and `ETag`),
    /// and alone (the request key) to keep the answer.
    #[tracing::instrument(level = "debug", name = "cache", skip_all)]
    pub async fn serve<F, Fut>(
        &self,
        request_text: &str,
        dependencies: &[String],
        ttl: u32,
        load: F,
    ) -> Result<Served, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Response, ApiError>>,
    {
        let Some(generations) = self.generations.current(dependencies).await else {
            return Ok(Served { response: load().await?, etag: None, outcome: CacheOutcome::Bypass });
        };
        let text = entry_text(request_text, &generations);
        if ttl > 0
            && let Some(local) = self.local.get(&text).await
        {
            let etag = Some(local.etag.clone());
            return Ok(Served { response: local.answer.hit(), etag, outcome: CacheOutcome::Hit });
        }
        let id = dbapi_crds::keys::sha256_hex(&text);
        let etag = answer::etag(&id);
        if ttl == 0 {
            return Ok(Served { response: load().await?, etag: Some(etag), outcome: CacheOutcome::Miss });
        }
        // The miss is a future of its own, boxed: a hit's future would
        // otherwise carry the room of the whole fill (bench/README.md).
        Box::pin(self.fill(Entry { text, id, etag }, request_text, ttl, load)).await
    }

    /// A miss: the entry filled from Redis or by `load`, once for all the
    /// identical requests waiting on it.
    async fn fill<F, Fut>(
        &self,
        Entry { text, id, etag }: Entry,
        request_text: &str,
        ttl: u32,
        load: F,
    ) -> Result<Served, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Response, ApiError>>,
    {
        // `load` runs in this task, inside the entry's loader when this
        // request is the one that fills the entry, else (the filling one
        // failed or was not kept) after it.
        let load = Mutex::new(Some(load));
        let passed: Mutex<Option<Result<Response, ApiError>>> = Mutex::new(None);
        let loaded_here = AtomicBool::new(false);
        let entry = self
            .local
            .entry(text)
            .or_try_insert_with(async {
                if let Some(stored) = self.fetch(&id).await {
                    return Ok(self.local_entry(stored, &etag, ttl));
                }
                loaded_here.store(true, Ordering::Relaxed);
                let load = take(&load).expect("the loader runs once");
                let response = match load().await {
                    Ok(response) => response,
                    Err(e) => return Err(keep(&passed, Err(e))),
                };
                match CachedAnswer::of(response).await {
                    Ok(answer) => {
                        let request_key = key::request_key(request_text);
                        self.store(&id, &request_key, &answer, ttl).await;
                        let entry = self.local_entry(answer, &etag, ttl);
                        self.latest.insert(request_key, entry.answer.clone()).await;
                        Ok(entry)
                    }
                    Err(response) => Err(keep(&passed, Ok(response))),
                }
            })
            .await;
        match entry {
            Ok(entry) => {
                let outcome = if loaded_here.into_inner() { CacheOutcome::Miss } else { CacheOutcome::Hit };
                let answer = entry.into_value().answer;
                let response = if outcome == CacheOutcome::Hit { answer.hit() } else { answer.response() };
                Ok(Served { response, etag: Some(etag), outcome })
            }
            Err(_) => {
                let response = match take(&passed) {
                    Some(passed) => passed?,
                    // Another request's load of this entry failed: ours.
                    None => (take(&load).expect("a waiter keeps its loader"))().await?,
                };
                Ok(Served { response, etag: Some(etag), outcome: CacheOutcome::Miss })
            }
        }
    }

    fn local_entry(&self, answer: CachedAnswer, etag: &HeaderValue, ttl: u32) -> Local {
        let ttl = Duration::from_secs(u64::from(ttl));
        let keep_for = match self.redis {
            Some(_) => ttl.min(Duration::from_millis(self.settings.local_ttl_millis)),
            None => ttl,
        };
        Local { answer: Arc::new(answer), etag: etag.clone(), keep_for }
    }

    async fn fetch(&self, id: &str) -> Option<CachedAnswer> {
        let link = self.redis.as_ref()?;
        let mut command = redis::cmd("GET");
        command.arg(link.key(&format!("resp:{id}")));
        let text: Option<String> = link.run(command.query_async(&mut link.connection())).await?;
        serde_json::from_str(&text?).ok()
    }

    /// The answer under its digest for `ttl`, and as the request key's
    /// last answer for [`KEEP_STALE`].
    async fn store(&self, id: &str, request_key: &str, answer: &CachedAnswer, ttl: u32) {
        let Some(link) = &self.redis else { return };
        let text = serde_json::to_string(answer).expect("an answer serializes");
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg(link.key(&format!("resp:{id}"))).arg(&text).arg("EX").arg(ttl).ignore();
        pipe.cmd("SET").arg(link.key(&format!("last:{request_key}"))).arg(&text).arg("EX").arg(KEEP_STALE.as_secs());
        let _: Option<()> = link.run(pipe.ignore().query_async(&mut link.connection())).await;
    }

    /// The last answer kept for a request, however old: served while the
    /// database cannot be asked.
    pub async fn stale(&self, request_key: &str) -> Option<Arc<CachedAnswer>> {
        if let Some(answer) = self.latest.get(request_key).await {
            return Some(answer);
        }
        let link = self.redis.as_ref()?;
        let mut command = redis::cmd("GET");
        command.arg(link.key(&format!("last:{request_key}")));
        let text: Option<String> = link.run(command.query_async(&mut link.connection())).await?;
        serde_json::from_str(&text?).ok().map(Arc::new)
    }

    /// A write changed `tables` (generation keys).
    pub async fn invalidate(&self, tables: &[String]) {
        self.generations.bump(tables).await;
    }

    /// What the change feed announced: a table written outside the API,
    /// or (after the feed lost its connection) possibly anything.
    pub async fn apply_change(&self, event: change_feed::ChangeEvent) {
        let key = match event {
            change_feed::ChangeEvent::Table { schema, table } => format!("{schema}.{table}"),
            change_feed::ChangeEvent::Everything => generations::EVERYTHING.to_string(),
        };
        self.invalidate(&[key]).await;
    }

    pub fn keep_feed(&self, feed: change_feed::ChangeFeed) {
        let _ = self.feed.set(feed);
    }

    /// The generation keys a call of `function` by POST changes: its
    /// `rpcInvalidates` entry's tables matched against `tables`, or
    /// everything.
    pub fn rpc_invalidates(&self, function: &str) -> Option<&[String]> {
        self.settings
            .rpc_invalidates
            .iter()
            .filter(|(glob, _)| glob_match(glob, function))
            .max_by_key(|(glob, _)| glob.len())
            .map(|(_, tables)| tables.as_slice())
    }
}

/// What an answer is filed under: its request text and the generations
/// it was read at.
fn entry_text(request_text: &str, generations: &[u64]) -> String {
    let mut text = String::with_capacity(request_text.len() + generations.len() * 4);
    text.push_str(request_text);
    let mut digits = itoa::Buffer::new();
    for g in generations {
        text.push(':');
        text.push_str(digits.format(*g));
    }
    text
}

/// A missed entry: its text (the in-process key), digest (the Redis key)
/// and `ETag`.
struct Entry {
    text: String,
    id: String,
    etag: HeaderValue,
}

/// What a write (POST, PATCH, PUT, DELETE) may have changed, noted before
/// it runs: after it succeeds the table's generation is bumped, and after a
/// call by POST those `rpcInvalidates` names (or everything), before the
/// answer leaves. Failed writes changed nothing.
pub struct Invalidation {
    /// The path under the API's prefix: a table, or `rpc/<function>`.
    path: String,
    profile: Option<String>,
}

impl Invalidation {
    /// The invalidation a request may cause (none for reads); `prefix` is
    /// `api.pathPrefix` (or empty).
    pub fn of(prefix: &str, request: &axum::extract::Request) -> Option<Invalidation> {
        use axum::http::Method;
        if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            return None;
        }
        let path = request.uri().path().strip_prefix(prefix).unwrap_or("").trim_start_matches('/').to_string();
        let profile = request.headers().get("content-profile").and_then(|v| v.to_str().ok()).map(str::to_string);
        Some(Invalidation { path, profile })
    }

    /// Forgets in `cache` what the write changed, once it succeeded.
    pub async fn apply(self, cache: &ResponseCache, schema: &crate::schema::Schema) {
        let profile = self.profile.as_deref().filter(|p| schema.schemas.iter().any(|s| s == p));
        let profile = profile.unwrap_or(schema.default_schema());
        let changed: Vec<String> = match self.path.split_once('/') {
            Some(("rpc", function)) => match cache.rpc_invalidates(function) {
                Some(globs) => schema
                    .tables
                    .values()
                    .filter(|t| t.schema == profile && globs.iter().any(|g| glob_match(g, &t.name)))
                    .map(key::table_key)
                    .collect(),
                None => vec![generations::EVERYTHING.to_string()],
            },
            Some(_) => return,
            None => match schema.table(profile, &self.path) {
                // A write through a view changes tables under it that the
                // API cannot name.
                Some(table) if table.is_view => vec![generations::EVERYTHING.to_string()],
                Some(table) => vec![key::table_key(table)],
                None => return,
            },
        };
        cache.invalidate(&changed).await;
    }
}
