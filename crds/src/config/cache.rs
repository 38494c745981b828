//! `cache`: the response cache's settings.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The response cache: GET answers kept per request, role and claims, and
/// invalidated by writes (per-table generations), in Redis when
/// `DBAPI_REDIS_URL` is set, with a short in-process cache in front.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Seconds a cached answer is served when no `tables` entry matches.
    pub default_ttl_seconds: u32,
    /// Per table name or glob (`audit_*`): the cache's TTL and the
    /// `Cache-Control` clients and CDNs get. An exact name wins over globs,
    /// a longer glob over a shorter one.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tables: BTreeMap<String, TableCacheRule>,
    /// Milliseconds an answer stays in the in-process cache in front of
    /// Redis (still checked against the generations).
    pub local_ttl_millis: u64,
    /// Per function name or glob: the tables (names or globs) a call of it
    /// by POST invalidates (empty: none). A call matching no entry
    /// invalidates every table.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rpc_invalidates: BTreeMap<String, Vec<String>>,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            default_ttl_seconds: 30,
            tables: BTreeMap::new(),
            local_ttl_millis: 500,
            rpc_invalidates: BTreeMap::new(),
        }
    }
}

/// How answers reading a table are cached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TableCacheRule {
    /// Seconds the cache serves an answer (0: never cached). Unset: the
    /// default TTL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u32>,
    /// `Cache-Control: max-age` for clients and CDNs. Unset: 0 (they
    /// revalidate every time, cheaply, with the ETag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u32>,
    /// `Cache-Control: stale-while-revalidate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_while_revalidate_seconds: Option<u32>,
}
