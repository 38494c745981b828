//! Configuration reload without restart (issue 18, item 8).
//!
//! The document is read again when one of its files changes and on SIGHUP.
//! Kubelet updates a mounted ConfigMap or Secret by writing a new
//! timestamped directory and renaming a `..data` symlink over the old one,
//! so the *directory* of each `--config` file is watched (inotify, through
//! `notify`), never the file: a watch on the file would follow the inode
//! that the swap leaves behind. Events are debounced ([`DEBOUNCE`]).
//!
//! A reload reads and checks the whole document and builds a new
//! [`Policy`]; if either fails the policy in force stays, the reason is
//! logged (never a key hash or a secret: see `ConfigError`) and
//! `dbapi_config_reloads_total{result="error"}` counts it. What reloads is
//! [`RELOADABLE`]: API keys, roles and `auth` (JWT settings, the anonymous
//! role). Everything else was captured at start-up by the listeners, the
//! pools, the router or the rate limiter; a change there is logged as
//! "restart to apply" and not applied, and the reload still succeeds.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dbapi_crds::config::{ApiSettings, RuntimeConfig};
use notify::Watcher;
use serde_json::Value;
use tokio::sync::Notify;

use crate::config::{ConfigError, DatabaseArgs};
use crate::http::AppState;
use crate::policy::Policy;

/// Top-level keys that a reload puts in force (their serialized names).
pub const RELOADABLE: [&str; 4] = ["apiKeys", "roles", "auth", "rateLimit"];

/// The `api` settings a reload cannot apply: the router, the URL-length
/// layer, CORS and the client-address resolver are built with them at
/// start-up. The other `api` limits are read per request from the policy.
pub const API_RESTART_ONLY: [&str; 5] =
    ["api.pathPrefix", "api.maxUrlBytes", "api.cors", "api.trustedProxies", "api.clientIpHeader"];

/// How long the files must stay quiet before a change is read: one
/// kubelet swap is several events.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Why a reload was refused; the policy in force stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Load(#[from] ConfigError),
    #[error("the new configuration cannot be put in force: {0}")]
    Policy(String),
}

/// What a successful reload did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Reloadable top-level keys whose value changed (now in force).
    pub applied: Vec<String>,
    /// Restart-only keys whose value differs from the running one (not
    /// applied).
    pub restart_needed: Vec<String>,
}

/// Reads the document again and puts what may change in force. Logs and
/// counts the outcome; `trigger` says what asked for it (for the log).
pub async fn reload_config(state: &AppState, args: &DatabaseArgs, trigger: &str) -> Result<Reloaded, ReloadError> {
    let outcome = try_reload(state, args).await;
    let metrics = crate::metrics::global();
    match &outcome {
        Ok(done) => {
            metrics.config_reloaded(true);
            for key in &done.restart_needed {
                tracing::warn!(key = %key, trigger, "{key} changed; restart to apply");
            }
            if done.applied.is_empty() {
                tracing::info!(trigger, "configuration reloaded: nothing that reloads changed");
            } else {
                tracing::info!(trigger, changed = ?done.applied, "configuration reloaded");
            }
        }
        Err(e) => {
            metrics.config_reloaded(false);
            tracing::error!(trigger, error = %e, "configuration reload failed; the previous configuration stays in force");
        }
    }
    outcome
}

async fn try_reload(state: &AppState, args: &DatabaseArgs) -> Result<Reloaded, ReloadError> {
    // File reads off the async workers (a slow volume must not stall requests).
    let reading = args.clone();
    let new = tokio::task::spawn_blocking(move || crate::config::load(&reading))
        .await
        .map_err(|e| ReloadError::Policy(format!("the configuration reader stopped: {e}")))??;
    let restart_needed: Vec<String> = changed_keys(&state.config, &new, |top| !RELOADABLE.contains(&top))
        .into_iter()
        .filter(|key| !key.starts_with("api.") || API_RESTART_ONLY.contains(&key.as_str()))
        .collect();
    let in_force = keep_restart_only(new, &state.config);
    let current = state.policy();
    let applied = changed_keys(&current.config, &in_force, |top| RELOADABLE.contains(&top) || top == "api");
    if *current.config != in_force {
        state.replace_policy(Policy::new(in_force).await.map_err(ReloadError::Policy)?);
    }
    Ok(Reloaded { applied, restart_needed })
}

/// `new` with every restart-only setting taken from `running`, so that the
/// policy's document is the one in force. Destructured whole: a new
/// top-level key does not compile until it is sorted into one kind.
fn keep_restart_only(new: RuntimeConfig, running: &RuntimeConfig) -> RuntimeConfig {
    let RuntimeConfig {
        database: _,
        api,
        auth,
        roles,
        api_keys,
        cache: _,
        rate_limit,
        server: _,
        audit: _,
        observability: _,
    } = new;
    let api = ApiSettings {
        path_prefix: running.api.path_prefix.clone(),
        max_url_bytes: running.api.max_url_bytes,
        cors: running.api.cors.clone(),
        trusted_proxies: running.api.trusted_proxies.clone(),
        client_ip_header: running.api.client_ip_header.clone(),
        ..api
    };
    RuntimeConfig {
        database: running.database.clone(),
        api,
        auth,
        roles,
        api_keys,
        cache: running.cache.clone(),
        rate_limit,
        server: running.server.clone(),
        audit: running.audit.clone(),
        observability: running.observability.clone(),
    }
}

/// The keys (top-level, or `section.key` inside the `database`, `api` and
/// `server` sections) that differ between `old` and `new`, among the
/// top-level keys `pick` selects. Names only, never values.
pub fn changed_keys(old: &RuntimeConfig, new: &RuntimeConfig, pick: impl Fn(&str) -> bool) -> Vec<String> {
    let (old, new) = (to_object(old), to_object(new));
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).filter(|k| pick(k)).collect();
    let mut out = Vec::new();
    for name in names {
        let (a, b) = (old.get(name).unwrap_or(&Value::Null), new.get(name).unwrap_or(&Value::Null));
        if a == b {
            continue;
        }
        match (a, b, name.as_str()) {
            (Value::Object(a), Value::Object(b), "database" | "api" | "server") => {
                let inner: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                out.extend(inner.into_iter().filter(|k| a.get(*k) != b.get(*k)).map(|k| format!("{name}.{k}")));
            }
            _ => out.push(name.clone()),
        }
    }
    out
}

fn to_object(config: &RuntimeConfig) -> serde_json::Map<String, Value> {
    let mut map = match serde_json::to_value(config) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    // A section at its defaults is left out of the document's serialized
    // form; compare it field by field all the same.
    if let Ok(server) = serde_json::to_value(&config.server) {
        map.insert("server".into(), server);
    }
    map
}

/// Starts the reload triggers: a watch on the directory of every `--config`
/// file, and SIGHUP. Without `--config` there is nothing to re-read.
pub fn spawn_config_reloaders(state: Arc<AppState>, args: DatabaseArgs) {
    if args.config.is_empty() {
        return;
    }
    let wake = Arc::new(Notify::new());
    let watcher = match watch_directories(&args.config, wake.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the configuration files; reload them with SIGHUP");
            None
        }
    };
    {
        let (state, args) = (state.clone(), args.clone());
        tokio::spawn(async move {
            // Owned here: dropping the watcher stops the watch.
            let _watcher = watcher;
            loop {
                wake.notified().await;
                // Debounce: wait until the directory has been quiet a while.
                while tokio::time::timeout(DEBOUNCE, wake.notified()).await.is_ok() {}
                reload_in_background(&state, &args, "file change").await;
            }
        });
    }
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; the configuration reloads on file changes only");
            return;
        };
        while hangups.recv().await.is_some() {
            reload_in_background(&state, &args, "SIGHUP").await;
        }
    });
}

async fn reload_in_background(state: &Arc<AppState>, args: &DatabaseArgs, trigger: &'static str) {
    let _ = reload_config(state, args, trigger).await;
}

/// Watches each distinct directory holding a config file and wakes `wake`
/// on an event about one of those files or about kubelet's `..`-prefixed
/// entries (`..data`, `..2026_12_06_…`).
fn watch_directories(files: &[PathBuf], wake: Arc<Notify>) -> notify::Result<notify::RecommendedWatcher> {
    let names: BTreeSet<std::ffi::OsString> = files.iter().filter_map(|f| f.file_name()).map(Into::into).collect();
    let dirs: BTreeSet<PathBuf> = files
        .iter()
        .map(|f| match f.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        })
        .collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            Ok(event) => event
                .paths
                .iter()
                .filter_map(|p| p.file_name())
                .any(|name| names.contains(name) || name.to_str().is_some_and(|n| n.starts_with(".."))),
            // A lost event (queue overflow) may have been ours.
            Err(_) => true,
        };
        if relevant {
            wake.notify_one();
        }
    })?;
    for dir in &dirs {
        watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
        tracing::info!(dir = %dir.display(), "watching the configuration for changes");
    }
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbapi_crds::config::parse_runtime_config;

    #[test]
    fn changed_keys_name_sections_and_keys_never_values() {
        let old = parse_runtime_config("api: {maxRows: 5}\napiKeys: [{name: a, role: r, hashes: []}]\n").unwrap();
        let new = parse_runtime_config(
            "api: {maxRows: 6, pathPrefix: /v1}\nserver: {maxConnections: 5}\nrateLimit: {requestsPerMinute: 1}\n\
             apiKeys: [{name: b, role: r, hashes: []}]\nroles: [{name: r}]\n",
        )
        .unwrap();
        let restart = changed_keys(&old, &new, |k| !RELOADABLE.contains(&k));
        assert_eq!(restart, ["api.maxRows", "api.pathPrefix", "server.maxConnections"], "before the api filter");
        assert_eq!(changed_keys(&old, &new, |k| RELOADABLE.contains(&k)), ["apiKeys", "rateLimit", "roles"]);
        assert!(changed_keys(&old, &old, |_| true).is_empty());
    }

    #[test]
    fn restart_only_settings_keep_their_running_values() {
        let running = parse_runtime_config("api: {maxRows: 5, pathPrefix: /v1}\naudit: {path: /a}\n").unwrap();
        let new = parse_runtime_config("api: {maxRows: 6, pathPrefix: /v2}\nroles: [{name: r}]\n").unwrap();
        let kept = keep_restart_only(new, &running);
        assert_eq!(kept.api.max_rows, 6, "maxRows is read per request");
        assert_eq!(kept.audit, running.audit);
        assert_eq!(kept.api.path_prefix.as_deref(), Some("/v1"));
        assert_eq!(kept.roles.len(), 1);
    }
}
