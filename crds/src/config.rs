//! The runtime configuration document (DESIGN §5).
//!
//! YAML, camelCase keys. Every struct denies unknown fields: a typo or a
//! setting this runtime version does not implement fails at start-up with the
//! key's path instead of being ignored.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The whole document, as mounted from the operator's ConfigMap/Secret or
/// passed with `--config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Which parts of the database are exposed and how the runtime connects.
    pub database: DatabaseSettings,
    /// Limits and behaviour of the REST API itself.
    pub api: ApiSettings,
    /// How callers prove who they are (JWT) and the role of anonymous calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSettings>,
    /// Named sets of table/column/row rules that keys and tokens map to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
    /// API keys, stored as hashes only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_keys: Vec<ApiKey>,
    /// Response cache (the Redis URL comes from `DBAPI_REDIS_URL`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSettings>,
    /// Request rate limit per caller: per client IP for anonymous calls,
    /// enforced across replicas through Redis (`DBAPI_REDIS_URL`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Connection and request limits of the HTTP server.
    #[serde(skip_serializing_if = "ServerSettings::is_default")]
    pub server: ServerSettings,
    /// Where the audit log (writes and denied requests) goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditSettings>,
}

/// The audit log: one JSON line per write and per denied request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AuditSettings {
    /// A file the lines are appended to; without it they go to stdout
    /// with the logs (`target: audit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// What one client may hold of the server: how long it may take to send a
/// request head, keep an idle connection, or keep a request running, and how
/// many connections the process serves at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ServerSettings {
    /// A connection that has not sent a whole request head (request line
    /// and headers) this many seconds after it started sending one is closed.
    pub header_read_timeout_seconds: u64,
    /// A keep-alive connection with no request for this many seconds is
    /// closed.
    pub idle_timeout_seconds: u64,
    /// A request still running after this many seconds is answered 504 and
    /// its database work is cancelled.
    pub request_timeout_seconds: u64,
    /// Most client connections served at once; further ones wait to be
    /// accepted until one closes.
    pub max_connections: u32,
    /// After SIGTERM: seconds readiness is already false while the server
    /// still accepts, so that load balancers stop routing here first.
    pub drain_delay_seconds: u64,
    /// Then: seconds in-flight requests have to finish before the process
    /// exits anyway.
    pub shutdown_grace_seconds: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            request_timeout_seconds: 60,
            max_connections: 10_000,
            drain_delay_seconds: 5,
            shutdown_grace_seconds: 25,
        }
    }
}

impl ServerSettings {
    pub fn is_default(&self) -> bool {
        *self == ServerSettings::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AuthSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtSettings>,
    /// The role of requests that carry neither a key nor a token; none
    /// means they are refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous_role: Option<String>,
    /// PostgreSQL: also run each request as the database role of the same
    /// name (`SET LOCAL ROLE`) with PostgREST's `request.*` settings, so
    /// grants and Row Level Security policies apply.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub postgres_roles: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct JwtSettings {
    /// HMAC secret; the runtime takes `DBAPI_JWT_SECRET` instead when set
    /// (the operator passes it that way, from the referenced Secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The claim holding the role name: a dotted path
    /// (`app_metadata.role`; PostgREST's `.app_metadata.role` too).
    pub role_claim: String,
    /// When set, the token's `aud` must contain it; when not, `aud` is not
    /// required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Signature algorithms accepted (`HS256`, `RS256`, `ES256`, `EdDSA`,
    /// ...); default `[HS256]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub algorithms: Vec<String>,
    /// A PEM file with the public key (RSA, EC or Ed25519) tokens are
    /// verified with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key_file: Option<String>,
    /// A JWKS document to fetch keys from, chosen by `kid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// A JWKS document on disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<String>,
    /// How often `jwksUrl` is fetched again [300].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_refresh_seconds: Option<u64>,
    /// When set, the token's `iss` must equal it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Clock skew allowed on `exp` and `nbf` [30].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leeway_seconds: Option<u64>,
}

/// `auth.jwt.jwksRefreshSeconds` when unset.
pub const DEFAULT_JWKS_REFRESH_SECONDS: u64 = 300;
/// `auth.jwt.leewaySeconds` when unset.
pub const DEFAULT_JWT_LEEWAY_SECONDS: u64 = 30;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Role {
    pub name: String,
    pub rules: Vec<RoleRule>,
    /// Request rate limit shared by every caller with this role (keys
    /// with their own `rateLimit` use that instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RoleRule {
    /// Table names or globs; `*` is every table.
    pub tables: Vec<String>,
    /// HTTP methods allowed: GET, POST, PATCH, PUT, DELETE.
    pub verbs: Vec<String>,
    /// Columns visible and writable; empty means all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// A filter in the URL grammar (`region=eq.eu`) added to every request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_filter: Option<String>,
    /// Function names or globs the role may call under `/rpc/` (with a
    /// verb from `verbs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ApiKey {
    pub name: String,
    pub role: String,
    /// SHA-256 hashes (hex) of the valid keys: the current one, and during
    /// a rotation the previous one until its `notAfter`.
    pub hashes: Vec<KeyHash>,
    /// RFC 3339 time after which the key is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KeyHash {
    pub sha256: String,
    /// RFC 3339 time after which this hash is no longer accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
}

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

/// A GCRA (token bucket) per caller: one request every
/// `60 / requestsPerMinute` seconds, and a caller that has been idle may
/// send `burst + 1` requests at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RateLimit {
    /// Sustained requests per minute (at least 1).
    pub requests_per_minute: u32,
    /// Requests allowed at once above the sustained rate.
    pub burst: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// Schemas to expose (PostgreSQL schemas, MySQL databases). The first is
    /// the default; the others are chosen with the `Accept-Profile` header.
    /// Empty means `public` on PostgreSQL, the URL's database on MySQL and
    /// `main` on SQLite.
    pub schemas: Vec<String>,
    /// Which tables and views become endpoints.
    pub tables: TableFilter,
    /// Connection pool of one runtime process.
    pub pool: PoolSettings,
    /// How the schema is re-read without a restart.
    pub reload: ReloadSettings,
    /// The database cancels a statement that runs longer than this
    /// (milliseconds; PostgreSQL `statement_timeout`, MariaDB
    /// `max_statement_time`, SQLite a progress-handler deadline); the
    /// request is answered 504 `57014`. None: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement_timeout_ms: Option<u64>,
    /// How far a read replica (`DBAPI_READ_REPLICA_URL`) may fall behind
    /// before reads go back to the primary.
    #[serde(skip_serializing_if = "ReadReplicaSettings::is_default")]
    pub read_replica: ReadReplicaSettings,
    /// When the runtime stops sending requests to a database that keeps
    /// failing, and for how long.
    #[serde(skip_serializing_if = "CircuitSettings::is_default")]
    pub circuit: CircuitSettings,
}

/// The circuit breaker around the database: after `failureThreshold`
/// requests in a row found it unavailable (or timed out), requests stop
/// going to it for `openSeconds`: GETs are answered from the cache when it
/// holds an answer (stale), everything else 503 at once. A probe then
/// checks the database and closes the circuit when it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CircuitSettings {
    pub failure_threshold: u32,
    pub open_seconds: u64,
}

impl Default for CircuitSettings {
    fn default() -> Self {
        CircuitSettings { failure_threshold: 5, open_seconds: 5 }
    }
}

impl CircuitSettings {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The read replica whose URL the runtime is given (`--read-replica-url` /
/// `DBAPI_READ_REPLICA_URL`): GET reads go there while it keeps up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ReadReplicaSettings {
    /// Reads go back to the primary while the replica is this many seconds
    /// or more behind it (or unreachable), and return once it catches up.
    pub max_lag_seconds: u64,
}

impl Default for ReadReplicaSettings {
    fn default() -> Self {
        ReadReplicaSettings { max_lag_seconds: 10 }
    }
}

impl ReadReplicaSettings {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The runtime re-reads the schema on SIGHUP always, on a PostgreSQL
/// `NOTIFY <channel>, 'reload schema'`, and optionally on an interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ReloadSettings {
    /// PostgreSQL LISTEN channel; empty turns listening off.
    pub notify_channel: String,
    /// Re-read the schema this often (seconds); 0 means never.
    pub interval_seconds: u64,
}

impl Default for ReloadSettings {
    fn default() -> Self {
        ReloadSettings { notify_channel: "dbapi".into(), interval_seconds: 0 }
    }
}

/// Glob patterns (`*` and `?`) matched against table names. A table is
/// exposed when it matches `include` (empty means all) and not `exclude`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TableFilter {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl TableFilter {
    /// Whether a table of this name is exposed.
    pub fn allows(&self, table: &str) -> bool {
        let included = self.include.is_empty() || self.include.iter().any(|p| glob_match(p, table));
        included && !self.exclude.iter().any(|p| glob_match(p, table))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PoolSettings {
    /// Upper bound of open connections of this process.
    pub max_connections: u32,
    /// How long a request waits for a free connection before it is answered
    /// 503 with `Retry-After`.
    pub acquire_timeout_seconds: u64,
    /// PostgreSQL only: how many of `maxConnections` carry reads (GET),
    /// each shared by many requests at once (pipelined); the others carry
    /// writes and transactions, one request at a time. At most
    /// `maxConnections - 1`; 0 sends reads through the pool.
    pub read_connections: u32,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { max_connections: 10, acquire_timeout_seconds: 5, read_connections: 2 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ApiSettings {
    /// Most rows one response carries, applied even when the client asks for
    /// no limit; the cut is visible in `Content-Range`.
    pub max_rows: u64,
    /// Largest request body accepted; larger ones are answered 413.
    pub max_body_bytes: u64,
    /// Tables (globs) on which PATCH and DELETE without any filter are
    /// allowed; elsewhere they are refused so that one missing `?id=` cannot
    /// change every row.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_unfiltered_writes: Vec<String>,
    /// A path every API route lives under (`/rest/v1`, as Supabase serves
    /// PostgREST, so `createClient(url, key)` works unchanged); none means
    /// the API is at `/`. Starts with `/`, has no trailing slash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Longest request target (path and query string, in bytes); longer
    /// ones are answered 414.
    #[serde(skip_serializing_if = "is_default_max_url_bytes")]
    pub max_url_bytes: u64,
    /// Most filter conditions in one request, counting those inside logic
    /// trees and on embedded resources; more are answered 400.
    #[serde(skip_serializing_if = "is_default_max_filters")]
    pub max_filters: u32,
    /// Most embedded resources in one `select`, nested ones included; more
    /// are answered 400.
    #[serde(skip_serializing_if = "is_default_max_embeds")]
    pub max_embeds: u32,
    /// Cross-origin requests from browsers.
    #[serde(skip_serializing_if = "CorsSettings::is_default")]
    pub cors: CorsSettings,
    /// Proxies and load balancers (CIDRs such as `10.0.0.0/8`, or single
    /// addresses) whose `clientIpHeader` is believed. A request from any
    /// other peer is limited by its socket address, whatever it sends.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    /// The header a trusted proxy puts the client's address in. In a list
    /// (`X-Forwarded-For: client, proxy1, proxy2`) the right-most address
    /// that is not itself a trusted proxy is the client.
    #[serde(skip_serializing_if = "is_default_client_ip_header")]
    pub client_ip_header: String,
}

const DEFAULT_MAX_URL_BYTES: u64 = 8192;
const DEFAULT_MAX_FILTERS: u32 = 100;
const DEFAULT_MAX_EMBEDS: u32 = 20;
pub const DEFAULT_CLIENT_IP_HEADER: &str = "X-Forwarded-For";

fn is_default_client_ip_header(v: &str) -> bool {
    v == DEFAULT_CLIENT_IP_HEADER
}

fn is_default_max_url_bytes(v: &u64) -> bool {
    *v == DEFAULT_MAX_URL_BYTES
}

fn is_default_max_filters(v: &u32) -> bool {
    *v == DEFAULT_MAX_FILTERS
}

fn is_default_max_embeds(v: &u32) -> bool {
    *v == DEFAULT_MAX_EMBEDS
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            max_rows: 1000,
            max_body_bytes: 16 * 1024 * 1024,
            allow_unfiltered_writes: vec![],
            path_prefix: None,
            max_url_bytes: DEFAULT_MAX_URL_BYTES,
            max_filters: DEFAULT_MAX_FILTERS,
            max_embeds: DEFAULT_MAX_EMBEDS,
            cors: CorsSettings::default(),
            trusted_proxies: vec![],
            client_ip_header: DEFAULT_CLIENT_IP_HEADER.into(),
        }
    }
}

/// CORS, as browsers ask for it. The default is PostgREST's: any origin,
/// every method the API takes, any request header, no credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CorsSettings {
    /// Origins allowed (`https://app.example.com`), or `*` for any.
    pub allowed_origins: Vec<String>,
    /// Methods allowed; empty means every method the API takes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_methods: Vec<String>,
    /// Request headers allowed; empty means any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_headers: Vec<String>,
    /// Whether browsers may send cookies and credentials (not with `*`
    /// origins).
    pub allow_credentials: bool,
    /// How long browsers may cache a preflight answer (seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u64>,
}

impl Default for CorsSettings {
    fn default() -> Self {
        CorsSettings {
            allowed_origins: vec!["*".into()],
            allowed_methods: vec![],
            allowed_headers: vec![],
            allow_credentials: false,
            max_age_seconds: None,
        }
    }
}

impl CorsSettings {
    pub fn is_default(&self) -> bool {
        *self == CorsSettings::default()
    }
}

impl ApiSettings {
    pub fn allows_unfiltered_write(&self, table: &str) -> bool {
        self.allow_unfiltered_writes.iter().any(|p| glob_match(p, table))
    }

    /// The path prefix as routes are built from it: empty when none is set.
    pub fn prefix(&self) -> &str {
        self.path_prefix.as_deref().unwrap_or("")
    }
}

/// Why a `pathPrefix` value cannot be served, or `None` when it can: it
/// must start with `/`, end without one, and have only non-empty segments
/// of URL-safe characters (letters, digits, `-`, `.`, `_`, `~`), none of
/// them `.` or `..`.
pub fn path_prefix_problem(prefix: &str) -> Option<String> {
    let Some(rest) = prefix.strip_prefix('/') else {
        return Some(format!("{prefix:?} must start with \"/\" (for example \"/rest/v1\")"));
    };
    if rest.is_empty() || rest.ends_with('/') {
        return Some(format!("{prefix:?} must not end with \"/\" (leave the key out to serve the API at \"/\")"));
    }
    for segment in rest.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Some(format!("{prefix:?} has an empty, \".\" or \"..\" segment"));
        }
        if let Some(c) = segment.chars().find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c))) {
            return Some(format!(
                "{prefix:?} has {c:?}; use only letters, digits, \"-\", \".\", \"_\", \"~\" and \"/\""
            ));
        }
    }
    None
}

/// Parses the YAML document, naming the offending key on error.
pub fn parse_runtime_config(yaml: &str) -> Result<RuntimeConfig, ConfigParseError> {
    parse_runtime_config_parts(&[yaml])
}

/// A document that is not YAML, or a value that does not fit its key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigParseError {
    #[error("{0}")]
    Yaml(#[from] serde_yaml::Error),
    /// `key` is the dotted path of the offending setting
    /// (`database.pool.readConnections`).
    #[error("{key}: {source}")]
    Value { key: String, source: serde_yaml::Error },
}

/// Parses a document split over several files (the operator mounts the
/// non-secret part from a ConfigMap and the secret part from a Secret):
/// mappings are merged key by key, later parts winning on conflicts.
pub fn parse_runtime_config_parts(parts: &[&str]) -> Result<RuntimeConfig, ConfigParseError> {
    let mut merged = serde_yaml::Value::Mapping(Default::default());
    for part in parts.iter().filter(|p| !p.trim().is_empty()) {
        let value: serde_yaml::Value = serde_yaml::from_str(part)?;
        merge_yaml(&mut merged, value);
    }
    // The merged value has no line numbers left: name the key instead.
    serde_path_to_error::deserialize(merged)
        .map_err(|e| ConfigParseError::Value { key: e.path().to_string(), source: e.into_inner() })
}

fn merge_yaml(into: &mut serde_yaml::Value, from: serde_yaml::Value) {
    match (into, from) {
        (serde_yaml::Value::Mapping(a), serde_yaml::Value::Mapping(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) => merge_yaml(existing, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

/// Shell-style glob with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob_match("*", "orders"));
        assert!(glob_match("ord*", "orders"));
        assert!(glob_match("*_log", "audit_log"));
        assert!(glob_match("o?ders", "orders"));
        assert!(!glob_match("ord", "orders"));
        assert!(!glob_match("*_log", "logs"));
    }

    #[test]
    fn table_filter_excludes_win_over_includes() {
        let f = TableFilter { include: vec!["*".into()], exclude: vec!["audit_*".into()] };
        assert!(f.allows("orders"));
        assert!(!f.allows("audit_log"));
        let only = TableFilter { include: vec!["orders".into()], exclude: vec![] };
        assert!(!only.allows("customers"));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let err = parse_runtime_config("database:\n  pool:\n    maxConections: 3\n").unwrap_err();
        assert!(err.to_string().contains("maxConections"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_their_key() {
        let err = parse_runtime_config("database:\n  pool:\n    readConnections: -1\n").unwrap_err();
        assert!(err.to_string().starts_with("database.pool.readConnections: "), "{err}");
        let err = parse_runtime_config("api: {maxRows: lots}").unwrap_err();
        assert!(err.to_string().starts_with("api.maxRows: "), "{err}");
    }

    #[test]
    fn parts_merge_key_by_key() {
        let c = parse_runtime_config_parts(&[
            "api: {maxRows: 50}\ndatabase: {schemas: [public]}\n",
            "apiKeys: [{name: k, role: r, hashes: [{sha256: abc}]}]\ndatabase: {pool: {maxConnections: 3}}\n",
        ])
        .unwrap();
        assert_eq!(c.api.max_rows, 50);
        assert_eq!(c.database.schemas, vec!["public"]);
        assert_eq!(c.database.pool.max_connections, 3);
        assert_eq!(c.api_keys[0].hashes[0].sha256, "abc");
    }

    #[test]
    fn path_prefixes_are_absolute_paths_of_url_safe_segments() {
        let c = parse_runtime_config("api: {pathPrefix: /rest/v1}").unwrap();
        assert_eq!(c.api.path_prefix.as_deref(), Some("/rest/v1"));
        assert_eq!(c.api.prefix(), "/rest/v1");
        assert_eq!(ApiSettings::default().prefix(), "");
        for good in ["/rest/v1", "/api", "/a-b_c.d~e/v2"] {
            assert_eq!(path_prefix_problem(good), None, "{good}");
        }
        for bad in ["", "/", "rest/v1", "/rest/v1/", "/rest//v1", "/rest/../v1", "/rest/{table}", "/a b", "/a?b", "/é"]
        {
            assert!(path_prefix_problem(bad).is_some(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn empty_document_is_the_default() {
        assert_eq!(parse_runtime_config("").unwrap(), RuntimeConfig::default());
        let c = parse_runtime_config("api: {maxRows: 50}").unwrap();
        assert_eq!(c.api.max_rows, 50);
        assert_eq!(c.database.pool, PoolSettings::default());
    }

    #[test]
    fn limits_have_their_defaults_and_round_trip() {
        let c = RuntimeConfig::default();
        assert_eq!((c.api.max_url_bytes, c.api.max_filters, c.api.max_embeds), (8192, 100, 20));
        assert_eq!(c.api.cors.allowed_origins, vec!["*"]);
        assert!(!c.api.cors.allow_credentials);
        assert_eq!(c.database.statement_timeout_ms, None);
        assert_eq!(c.server.header_read_timeout_seconds, 10);
        assert_eq!(c.server.max_connections, 10_000);
        assert!(c.api.trusted_proxies.is_empty());
        assert_eq!(c.api.client_ip_header, "X-Forwarded-For");
        // Defaults are left out of a rendered document.
        let rendered = serde_yaml::to_string(&c).unwrap();
        for key in [
            "maxUrlBytes",
            "maxFilters",
            "maxEmbeds",
            "cors",
            "statementTimeoutMs",
            "server",
            "trustedProxies",
            "clientIpHeader",
        ] {
            assert!(!rendered.contains(key), "{rendered}");
        }
        let yaml = "api: {maxUrlBytes: 100, maxFilters: 3, maxEmbeds: 2, cors: {allowedOrigins: [https://a.example], \
                    allowCredentials: true, maxAgeSeconds: 60}}\ndatabase: {statementTimeoutMs: 250}\n\
                    server: {headerReadTimeoutSeconds: 1, idleTimeoutSeconds: 2, requestTimeoutSeconds: 3, maxConnections: 4}\n";
        let c = parse_runtime_config(yaml).unwrap();
        assert_eq!(c.server.max_connections, 4);
        assert_eq!(c.database.statement_timeout_ms, Some(250));
        assert_eq!(parse_runtime_config(&serde_yaml::to_string(&c).unwrap()).unwrap(), c);
        let c = parse_runtime_config("api: {trustedProxies: [10.0.0.0/8], clientIpHeader: X-Real-IP}").unwrap();
        assert_eq!(
            (c.api.trusted_proxies.as_slice(), c.api.client_ip_header.as_str()),
            (&["10.0.0.0/8".to_string()][..], "X-Real-IP")
        );
        assert_eq!(parse_runtime_config(&serde_yaml::to_string(&c).unwrap()).unwrap(), c);
        let err = parse_runtime_config("server: {maxConnection: 3}").unwrap_err();
        assert!(err.to_string().contains("maxConnection"), "{err}");
    }

    #[test]
    fn the_read_replica_lag_bound_defaults_to_ten_seconds() {
        let c = RuntimeConfig::default();
        assert_eq!(c.database.read_replica.max_lag_seconds, 10);
        assert!(!serde_yaml::to_string(&c).unwrap().contains("readReplica"));
        let c = parse_runtime_config("database: {readReplica: {maxLagSeconds: 1}}").unwrap();
        assert_eq!(c.database.read_replica.max_lag_seconds, 1);
        assert_eq!(parse_runtime_config(&serde_yaml::to_string(&c).unwrap()).unwrap(), c);
        let err = parse_runtime_config("database: {readReplica: {maxLag: 1}}").unwrap_err();
        assert!(err.to_string().contains("maxLag"), "{err}");
    }
}
