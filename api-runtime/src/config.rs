//! Command line, environment and the YAML configuration document.
//!
//! Flags and `DBAPI_*` variables say where things are (URLs, ports, the
//! document's path); the document (DESIGN §5, types in `dbapi-crds`) says
//! how the API behaves.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use dbapi_crds::config::{RuntimeConfig, parse_runtime_config};

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
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// postgres://, mysql:// (also MariaDB) or sqlite:// URL.
    #[arg(long, env = "DBAPI_DATABASE_URL")]
    pub database_url: String,
    /// The YAML configuration document (tables, schemas, pool, maxRows).
    #[arg(long, env = "DBAPI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Schemas to expose, comma-separated; overrides `database.schemas`.
    #[arg(long, env = "DBAPI_SCHEMAS", value_delimiter = ',')]
    pub schemas: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// Address of the API.
    #[arg(long, env = "DBAPI_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of /healthz and /readyz.
    #[arg(long, env = "DBAPI_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub listen: ListenArgs,
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
    #[error("invalid configuration in {path}: {source}")]
    Invalid { path: PathBuf, source: serde_yaml::Error },
    #[error("invalid configuration in {path}: {message}")]
    Value { path: PathBuf, message: String },
}

/// Reads the document (or the defaults) and applies `--schemas`.
pub fn load(args: &DatabaseArgs) -> Result<RuntimeConfig, ConfigError> {
    let mut config = match &args.config {
        Some(path) => read_document(path)?,
        None => RuntimeConfig::default(),
    };
    if !args.schemas.is_empty() {
        config.database.schemas = args.schemas.clone();
    }
    Ok(config)
}

fn read_document(path: &Path) -> Result<RuntimeConfig, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    let config =
        parse_runtime_config(&text).map_err(|source| ConfigError::Invalid { path: path.to_path_buf(), source })?;
    let invalid = |message: &str| ConfigError::Value { path: path.to_path_buf(), message: message.to_string() };
    if config.api.max_rows == 0 {
        return Err(invalid("api.maxRows must be at least 1"));
    }
    if config.database.pool.max_connections == 0 {
        return Err(invalid("database.pool.maxConnections must be at least 1"));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(config: Option<PathBuf>) -> DatabaseArgs {
        DatabaseArgs { database_url: "sqlite::memory:".into(), config, schemas: vec![] }
    }

    #[test]
    fn config_errors_name_the_key() {
        let dir = std::env::temp_dir().join(format!("dbapi-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, "api:\n  maxRows: lots\n").unwrap();
        let err = load(&args(Some(bad.clone()))).unwrap_err().to_string();
        assert!(err.contains("maxRows") || err.contains("api"), "{err}");
        assert!(err.contains("bad.yaml"), "{err}");
        std::fs::write(&bad, "api:\n  maxRows: 0\n").unwrap();
        assert!(load(&args(Some(bad.clone()))).unwrap_err().to_string().contains("api.maxRows"));
        let missing = load(&args(Some(dir.join("missing.yaml")))).unwrap_err().to_string();
        assert!(missing.contains("missing.yaml"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn schemas_flag_overrides_the_document() {
        let mut a = args(None);
        a.schemas = vec!["api".into(), "other".into()];
        assert_eq!(load(&a).unwrap().database.schemas, vec!["api", "other"]);
    }
}
