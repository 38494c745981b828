//! The runtime configuration document (DESIGN §5).
//!
//! YAML, camelCase keys. Every struct denies unknown fields: a typo or a
//! setting this runtime version does not implement fails at start-up with the
//! key's path instead of being ignored.

mod api;
mod cache;
mod parse;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use api::{ApiSettings, CorsSettings, DEFAULT_CLIENT_IP_HEADER, path_prefix_problem};
pub use cache::{CacheSettings, TableCacheRule};
pub use parse::{ConfigParseError, parse_runtime_config, parse_runtime_config_parts};

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
    /// Where traces go (read at start-up).
    #[serde(skip_serializing_if = "ObservabilitySettings::is_default")]
    pub observability: ObservabilitySettings,
}

/// Traces of each request and its pipeline steps, sent over OTLP/HTTP.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ObservabilitySettings {
    /// The OTLP/HTTP collector, as `OTEL_EXPORTER_OTLP_ENDPOINT` names it
    /// (`http://otel-collector:4318`; traces go to its `/v1/traces`).
    /// Unset: no traces are exported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// A `Server-Timing` header on every API answer: milliseconds in the
    /// database (`db`) and in the runtime (`app`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub server_timing: bool,
}

impl ObservabilitySettings {
    pub fn is_default(&self) -> bool {
        self == &ObservabilitySettings::default()
    }
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
    /// The most rows one read by this role answers, in place of
    /// `api.maxRows`: lower caps every answer; higher lifts the cap only
    /// for NDJSON and CSV table reads, which are streamed and never held
    /// in memory (a role allowed to export whole tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
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
