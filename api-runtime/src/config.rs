//! Command line, environment and the YAML configuration document.
//!
//! Flags and `DBAPI_*` variables say where things are (URLs, ports, the
//! document's path); the document (DESIGN §5, types in `dbapi-crds`) says
//! how the API behaves.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use dbapi_crds::config::{RuntimeConfig, parse_runtime_config_parts, path_prefix_problem};

#[derive(Debug, Parser)]
#[command(
    name = "dbapi-runtime",
    version,
    about = "Serves a PostgreSQL, MySQL/MariaDB or SQLite database as a PostgREST-compatible REST API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format: `text` for people, `json` for containers.
    #[arg(long, env = "DBAPI_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a database.
    Serve(ServeArgs),
    /// Create (on first run) and serve the bundled SQLite sample database.
    Demo(DemoArgs),
    /// Print the OpenAPI document of a database and exit.
    Openapi(OpenapiArgs),
    /// Print a new API key and the `apiKeys` entry that accepts it.
    Keygen(KeygenArgs),
    /// Install the PostgreSQL change feed: triggers that NOTIFY `dbapi_changes`
    /// when a table of the schemas (`--schemas`, else the document's
    /// `database.schemas`, else `public`) is written. Run it again to cover
    /// tables created since.
    InstallChangeFeed(DatabaseArgs),
    /// Remove the change feed's triggers from the tables of the schemas, and
    /// its function once no table uses it.
    UninstallChangeFeed(DatabaseArgs),
}

#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// The key's name, as logs, metrics and the audit log show it.
    #[arg(long)]
    pub name: String,
    /// The role (from `roles`) the key is served as.
    #[arg(long)]
    pub role: String,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// postgres://, mysql:// (also MariaDB) or sqlite:// URL.
    #[arg(long, env = "DBAPI_DATABASE_URL")]
    pub database_url: String,
    /// The YAML configuration document (tables, schemas, pool, maxRows).
    /// Repeat it (or separate paths with commas) for a document split over
    /// several files; later files win on conflicting keys.
    #[arg(long, env = "DBAPI_CONFIG", value_delimiter = ',')]
    pub config: Vec<PathBuf>,
    /// Schemas to expose, comma-separated; overrides `database.schemas`.
    #[arg(long, env = "DBAPI_SCHEMAS", value_delimiter = ',')]
    pub schemas: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// Address of the API.
    #[arg(long, env = "DBAPI_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "DBAPI_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// A read replica of the database, on the same engine (a PostgreSQL
    /// streaming standby, a MariaDB replica with GTIDs): GET reads go there
    /// while it keeps up (`database.readReplica.maxLagSeconds`), writes and
    /// POST /rpc to the primary.
    #[arg(long, env = "DBAPI_READ_REPLICA_URL", hide_env_values = true)]
    pub read_replica_url: Option<String>,
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RedisArgs {
    /// redis:// URL (TLS is not built in) of the Redis that all replicas share the
    /// rate limits through; without it each process limits by itself.
    #[arg(long, env = "DBAPI_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key this runtime writes (several APIs can share
    /// one Redis under different prefixes).
    #[arg(long, env = "DBAPI_REDIS_KEY_PREFIX", default_value = "dbapi:")]
    pub redis_key_prefix: String,
}

impl RedisArgs {
    pub fn settings(&self) -> crate::redis_link::RedisSettings {
        crate::redis_link::RedisSettings { url: self.redis_url.clone(), key_prefix: self.redis_key_prefix.clone() }
    }
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub listen: ListenArgs,
    /// Where the sample database is created; default: the user's data
    /// directory (`$XDG_DATA_HOME/dbapi/demo.sqlite`).
    #[arg(long, env = "DBAPI_DEMO_PATH")]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct OpenapiArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The exposed schema to document; default: the first.
    #[arg(long)]
    pub profile: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read the configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The parser's message quotes a misplaced value: it is redacted, as it
    /// may be a key hash or a secret.
    #[error("invalid configuration in {path}: {}", redact_values(&source.to_string()))]
    Invalid { path: PathBuf, source: dbapi_crds::config::ConfigParseError },
    #[error("invalid configuration in {path}: {message}")]
    Value { path: PathBuf, message: String },
}

/// `message` with every double-quoted value replaced by `"…"` (serde
/// quotes the string it could not use: `invalid type: string "…",
/// expected …`), and any run of 16 or more hex digits elided. Key names,
/// which serde puts in backticks, stay.
pub fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…");
            }
            quoted = !quoted;
            if !quoted {
                out.push('"');
            }
        } else if !quoted {
            out.push(c);
        }
    }
    if quoted {
        out.push('"');
    }
    elide_hex_runs(&out)
}

fn elide_hex_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() >= 16 { "…" } else { &run });
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// Reads the document (or the defaults), applies `--schemas` and refuses
/// settings this version does not implement.
pub fn load(args: &DatabaseArgs) -> Result<RuntimeConfig, ConfigError> {
    let mut config = read_documents(&args.config)?;
    if !args.schemas.is_empty() {
        config.database.schemas = args.schemas.clone();
    }
    Ok(config)
}

fn read_documents(paths: &[PathBuf]) -> Result<RuntimeConfig, ConfigError> {
    let Some(first) = paths.first() else { return Ok(RuntimeConfig::default()) };
    let named = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    let mut texts = Vec::with_capacity(paths.len());
    for path in paths {
        texts.push(std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.clone(), source })?);
    }
    let parts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let config = parse_runtime_config_parts(&parts)
        .map_err(|source| ConfigError::Invalid { path: PathBuf::from(&named), source })?;
    let invalid = |message: String| ConfigError::Value { path: first.clone(), message };
    if config.api.max_rows == 0 {
        return Err(invalid("api.maxRows must be at least 1".into()));
    }
    if config.database.pool.max_connections == 0 {
        return Err(invalid("database.pool.maxConnections must be at least 1".into()));
    }
    if let Some(problem) = config.api.path_prefix.as_deref().and_then(path_prefix_problem) {
        return Err(invalid(format!("api.pathPrefix: {problem}")));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(config: Option<PathBuf>) -> DatabaseArgs {
        DatabaseArgs { database_url: "sqlite::memory:".into(), config: config.into_iter().collect(), schemas: vec![] }
    }

    #[test]
    fn config_errors_name_the_key() {
        let dir = std::env::temp_dir().join(format!("dbapi-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, "api:\n  maxRows: lots\n").unwrap();
        let err = load(&args(Some(bad.clone()))).unwrap_err().to_string();
        assert!(err.contains("api.maxRows"), "{err}");
        assert!(err.contains("bad.yaml"), "{err}");
        std::fs::write(&bad, "database:\n  pool:\n    readConnections: -1\n").unwrap();
        let err = load(&args(Some(bad.clone()))).unwrap_err().to_string();
        assert!(err.contains("readConnections"), "{err}");
        std::fs::write(&bad, "api:\n  maxRows: 0\n").unwrap();
        assert!(load(&args(Some(bad.clone()))).unwrap_err().to_string().contains("api.maxRows"));
        std::fs::write(&bad, "api:\n  pathPrefix: /rest/v1/\n").unwrap();
        let err = load(&args(Some(bad.clone()))).unwrap_err().to_string();
        assert!(err.contains("api.pathPrefix") && err.contains("must not end with"), "{err}");
        std::fs::write(&bad, "api:\n  pathPrefix: rest\n").unwrap();
        assert!(load(&args(Some(bad.clone()))).unwrap_err().to_string().contains("api.pathPrefix"));
        std::fs::write(&bad, "api:\n  pathPrefix: /rest/v1\n").unwrap();
        assert_eq!(load(&args(Some(bad.clone()))).unwrap().api.prefix(), "/rest/v1");
        let missing = load(&args(Some(dir.join("missing.yaml")))).unwrap_err().to_string();
        assert!(missing.contains("missing.yaml"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn split_documents_merge() {
        let dir = std::env::temp_dir().join(format!("dbapi-config-parts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.yaml"), dir.join("b.yaml"));
        std::fs::write(&a, "api: {maxRows: 7}\n").unwrap();
        std::fs::write(&b, "database: {pool: {maxConnections: 2}}\n").unwrap();
        let mut two = args(Some(a.clone()));
        two.config.push(b.clone());
        let c = load(&two).unwrap();
        assert_eq!((c.api.max_rows, c.database.pool.max_connections), (7, 2));
        std::fs::write(&b, "cache: {defaultTtlSeconds: 5, tables: {audit_*: {ttlSeconds: 0}}}\n").unwrap();
        let cache = load(&two).unwrap().cache.unwrap();
        assert_eq!((cache.default_ttl_seconds, cache.local_ttl_millis), (5, 500));
        assert_eq!(cache.tables["audit_*"].ttl_seconds, Some(0));
        // Roles are enforced, so a document with them loads.
        std::fs::write(&b, "roles: [{name: reader, rules: [{tables: ['*'], verbs: [GET]}]}]\n").unwrap();
        assert_eq!(load(&two).unwrap().roles.len(), 1);
        // Rate limits are implemented (per client IP).
        std::fs::write(&b, "rateLimit: {requestsPerMinute: 5, burst: 1}\n").unwrap();
        assert_eq!(load(&two).unwrap().rate_limit.map(|r| r.requests_per_minute), Some(5));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parse_errors_never_repeat_a_value() {
        let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let dir = std::env::temp_dir().join(format!("dbapi-config-redact-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("secret.yaml");
        // Hashes written as plain strings instead of `{sha256: …}`.
        std::fs::write(&bad, format!("apiKeys: [{{name: a, role: r, hashes: [\"{hash}\"]}}]\n")).unwrap();
        let err = load(&args(Some(bad.clone()))).unwrap_err().to_string();
        assert!(err.contains("apiKeys[0].hashes[0]") && !err.contains(&hash[..16]), "{err}");
        // The secret put where its section belongs.
        std::fs::write(&bad, "auth: {jwt: s3cr3t-value}\n").unwrap();
        let err = load(&args(Some(bad.clone()))).unwrap_err().to_string();
        assert!(err.contains("auth.jwt") && !err.contains("s3cr3t"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(redact_values("a `key` \"v\" and 0123456789abcdef0 b"), "a `key` \"…\" and … b");
    }

    #[test]
    fn schemas_flag_overrides_the_document() {
        let mut a = args(None);
        a.schemas = vec!["api".into(), "other".into()];
        assert_eq!(load(&a).unwrap().database.schemas, vec!["api", "other"]);
    }
}
