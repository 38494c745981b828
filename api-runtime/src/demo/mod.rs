//! `dbapi-runtime demo`: a bundled SQLite bookshop, created on first run,
//! so a newcomer sees the API work with one command and no network.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use crate::server::StartupError;

/// The schema and rows of the sample database.
pub const DEMO_SQL: &str = include_str!("demo.sql");

/// `$XDG_DATA_HOME/dbapi/demo.sqlite`, else `~/.local/share/...`, else the
/// current directory.
pub fn default_path() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("dbapi").join("demo.sqlite")
}

/// Creates the database at `path` unless it exists. It is built in a
/// temporary file and renamed, so an interrupted first run leaves nothing
/// half-made behind.
pub async fn ensure_database(path: &Path) -> Result<bool, StartupError> {
    if path.exists() {
        return Ok(false);
    }
    let fail = |reason: String| StartupError::Demo { path: path.display().to_string(), reason };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", tmp.display()))
        .map_err(|e| fail(e.to_string()))?
        .create_if_missing(true)
        .foreign_keys(true);
    let mut conn = opts.connect().await.map_err(|e| fail(e.to_string()))?;
    let created = async {
        sqlx::raw_sql("BEGIN").execute(&mut conn).await?;
        sqlx::raw_sql(DEMO_SQL).execute(&mut conn).await?;
        sqlx::raw_sql("COMMIT").execute(&mut conn).await?;
        Ok::<_, sqlx::Error>(())
    }
    .await;
    drop(conn);
    if let Err(e) = created {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e.to_string()));
    }
    std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string()))?;
    Ok(true)
}

/// What `demo` prints once it listens.
pub fn banner(path: &Path, created: bool, api: SocketAddr, admin: SocketAddr) -> String {
    let base = format!("http://{api}");
    format!(
        "dbapi demo: {verb} the sample bookshop database at {path}\n\
         \n  API       {base}/            (OpenAPI 3.1 document)\n  Docs      {base}/_/docs/\n  Health    http://{admin}/readyz\n\
         \nTry:\n  curl '{base}/books?select=title,price,publishers(name)&limit=3'\n  \
         curl '{base}/books?select=title,authors(name)&price=lt.15&order=price.desc'\n  \
         curl '{base}/customers?select=first_name,orders(id,total)&orders.order=total.desc&orders.limit=2&limit=2'\n  \
         curl -H 'Prefer: count=exact' -I '{base}/orders?status=eq.shipped&limit=5'\n  \
         curl -H 'Accept: text/csv' '{base}/book_sales?order=revenue.desc&limit=5'\n\
         \nPress Ctrl-C to stop.\n",
        verb = if created { "created and serving" } else { "serving" },
        path = path.display(),
    )
}
