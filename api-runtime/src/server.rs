//! Start-up and shutdown: connect, introspect, bind both ports, serve until
//! SIGTERM/SIGINT, then drain and close the pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dbapi_crds::config::RuntimeConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::audit::AuditLog;
use crate::cache::ResponseCache;
use crate::config::{ConfigError, ListenArgs};
use crate::db::replica::{Replica, ReplicaError};
use crate::db::{ConnectError, Db};
use crate::http::{AppState, Services, admin_router, api_router};
use crate::limits::client_ip::ClientIp;
use crate::limits::rate::RateLimiter;
use crate::redis_link::{RedisLink, RedisSettings};
use crate::schema::{IntrospectError, introspect};

/// Why the runtime could not start; each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error(transparent)]
    Introspect(#[from] IntrospectError),
    #[error("could not listen on {addr}: {source} (is another process using it? choose another address with {flag})")]
    Bind { addr: SocketAddr, flag: &'static str, source: std::io::Error },
    #[error("could not create the demo database at {path}: {reason}")]
    Demo { path: String, reason: String },
    #[error("invalid configuration: {0}")]
    Settings(String),
    #[error("the server stopped with an error: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    ChangeFeed(#[from] crate::cache::change_feed::ChangeFeedError),
}

/// Connects and reads the schema: everything but the listeners. A rate
/// limit is per process here; [`prepare_shared`] shares it through Redis.
pub async fn prepare(database_url: &str, config: RuntimeConfig) -> Result<Arc<AppState>, StartupError> {
    prepare_shared(database_url, None, config, &RedisSettings::default()).await
}

/// [`prepare`], with GET reads served by `read_replica_url` while it keeps
/// up, and the rate limit shared through `redis` when it has a URL.
pub async fn prepare_shared(
    database_url: &str,
    read_replica_url: Option<&str>,
    config: RuntimeConfig,
    redis: &RedisSettings,
) -> Result<Arc<AppState>, StartupError> {
    crate::limits::validate(&config).map_err(StartupError::Settings)?;
    let deadline = crate::limits::database_deadline(&config);
    let database = &config.database;
    let db = Db::connect_exposing(database_url, &database.pool, &database.schemas, deadline).await?;
    if config.auth.as_ref().is_some_and(|a| a.postgres_roles) && !matches!(db, Db::Postgres(..)) {
        return Err(StartupError::Settings(
            "auth.postgresRoles runs requests as PostgreSQL roles: remove it for MySQL/MariaDB and SQLite".into(),
        ));
    }
    let replica = match read_replica_url.filter(|url| !url.trim().is_empty()) {
        Some(url) => {
            let replica_db = Db::open(url, &database.pool, &database.schemas, deadline).map_err(ReplicaError::from)?;
            let max_lag = Duration::from_secs(database.read_replica.max_lag_seconds);
            Some(Replica::start(&db, replica_db, max_lag).await?)
        }
        None => None,
    };
    let schema = introspect(&db, &config.database.schemas, &config.database.tables).await?;
    tracing::info!(
        engine = schema.engine.name(),
        schemas = ?schema.schemas,
        tables = schema.tables.len(),
        "schema loaded"
    );
    let policy = crate::policy::Policy::new(config.clone()).await.map_err(StartupError::Settings)?;
    let clients = ClientIp::new(&config.api).map_err(StartupError::Settings)?;
    let limits_in_use = config.rate_limit.is_some()
        || config.roles.iter().any(|r| r.rate_limit.is_some())
        || config.api_keys.iter().any(|k| k.rate_limit.is_some());
    let redis = RedisLink::open(redis).map_err(StartupError::Settings)?;
    let rate = RateLimiter::new(redis.clone(), limits_in_use).await;
    let audit = AuditLog::open(config.audit.as_ref().and_then(|a| a.path.as_deref()), config.api.prefix())
        .map_err(StartupError::Settings)?;
    let cache = ResponseCache::new(config.cache.as_ref(), redis);
    if let Some(cache) = &cache
        && schema.engine == crate::schema::Engine::Postgres
    {
        follow_change_feed(database_url, cache.clone()).await?;
    }
    crate::metrics::global().config_loaded();
    Ok(AppState::new((db, replica), schema, config, policy, Services { rate, clients, audit, cache }))
}

/// Bumps the generations the PostgreSQL change feed announces (writes
/// that did not go through the API); the cache keeps the feed running.
async fn follow_change_feed(database_url: &str, cache: Arc<ResponseCache>) -> Result<(), StartupError> {
    let weak = Arc::downgrade(&cache);
    let feed = crate::cache::change_feed::listen(database_url, move |event| {
        if let Some(cache) = weak.upgrade() {
            tokio::spawn(async move { cache.apply_change(event).await });
        }
    })
    .await?;
    cache.keep_feed(feed);
    Ok(())
}

/// Binds the API and admin ports; `on_listening` gets the bound addresses
/// (useful with port 0).
pub async fn serve(
    state: Arc<AppState>,
    listen: &ListenArgs,
    on_listening: impl FnOnce(SocketAddr, SocketAddr),
) -> Result<(), StartupError> {
    let bind = |addr: SocketAddr, flag: &'static str| async move {
        TcpListener::bind(addr).await.map_err(|source| StartupError::Bind { addr, flag, source })
    };
    let api = bind(listen.listen, "--listen / DBAPI_LISTEN").await?;
    let admin = bind(listen.admin_listen, "--admin-listen / DBAPI_ADMIN_LISTEN").await?;
    let (api_addr, admin_addr) =
        (api.local_addr().map_err(StartupError::Serve)?, admin.local_addr().map_err(StartupError::Serve)?);
    on_listening(api_addr, admin_addr);
    spawn_schema_reloaders(state.clone());
    tracing::info!(%api_addr, %admin_addr, "listening");

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let api_server =
        crate::limits::connections::serve(api, api_router(state.clone()), &state.config.server, stop_rx.clone());
    let admin_server = axum::serve(admin, admin_router(state.clone())).with_graceful_shutdown(stopped(stop_rx));
    // SIGTERM: readiness false at once, still accepting for the drain delay
    // (load balancers stop routing here meanwhile), then no new
    // connections and in-flight requests get the grace period.
    let server = &state.config.server;
    let (drain_delay, grace) =
        (Duration::from_secs(server.drain_delay_seconds), Duration::from_secs(server.shutdown_grace_seconds));
    let signals = {
        let state = state.clone();
        async move {
            let signal = shutdown_signal().await;
            state.stop_accepting();
            // A person pressing Ctrl-C has no load balancer to wait for.
            if signal == Signal::Terminate {
                tracing::info!(?drain_delay, "SIGTERM: readiness is now false; still accepting for the drain delay");
                tokio::time::sleep(drain_delay).await;
            }
            tracing::info!(?grace, "no longer accepting; draining in-flight requests");
            let _ = stop_tx.send(true);
            tokio::time::sleep(grace).await;
        }
    };
    let servers = async { tokio::join!(api_server, admin_server.into_future()) };
    tokio::select! {
        (a, b) = servers => a.and(b).map_err(StartupError::Serve)?,
        () = signals => tracing::warn!(?grace, "requests still running after server.shutdownGraceSeconds; exiting"),
    }
    // Let the last responses flush before the pool goes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    state.close_databases().await;
    tracing::info!("stopped");
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Signal {
    Terminate,
    Interrupt,
}

async fn shutdown_signal() -> Signal {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => Signal::Interrupt, _ = term => Signal::Terminate }
}

/// Re-reads the schema beside the one in use and swaps it in atomically:
/// requests in flight finish on the old one. On failure the old schema
/// stays and the error is returned (and logged by the callers).
pub async fn reload_schema(state: &AppState) -> Result<(), IntrospectError> {
    let db = &state.config.database;
    let introspected = introspect(&state.db, &db.schemas, &db.tables).await;
    crate::metrics::global().schema_reloaded(introspected.is_ok());
    let schema = introspected?;
    let tables = schema.tables.len();
    state.replace_schema(schema);
    // Statements prepared for the old tables may no longer describe them.
    state.db.forget_statements();
    if let Some(replica) = &state.replica {
        replica.forget_statements();
    }
    tracing::info!(tables, "schema reloaded");
    Ok(())
}

async fn reload_and_log(state: &AppState, why: &str) {
    if let Err(e) = reload_schema(state).await {
        tracing::error!(error = %e, trigger = why, "schema reload failed; still serving the previous schema");
    }
}

/// Starts the schema reload triggers: SIGHUP, the PostgreSQL NOTIFY
/// channel, and the interval, as configured.
pub fn spawn_schema_reloaders(state: Arc<AppState>) {
    #[cfg(unix)]
    {
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
                tracing::warn!("cannot listen for SIGHUP; reload the schema by NOTIFY or interval");
                return;
            };
            while hangups.recv().await.is_some() {
                reload_and_log(&state, "SIGHUP").await;
            }
        });
    }
    let reload = state.config.database.reload.clone();
    if reload.interval_seconds > 0 {
        let state = state.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(reload.interval_seconds));
            ticks.tick().await;
            loop {
                ticks.tick().await;
                reload_and_log(&state, "interval").await;
            }
        });
    }
    if let (crate::db::Db::Postgres(pool, _), false) = (&state.db, reload.notify_channel.is_empty()) {
        // The listener has a connection of its own, outside the request pool.
        let listener_pool =
            sqlx::postgres::PgPoolOptions::new().max_connections(1).connect_lazy_with(pool.manager().options.clone());
        tokio::spawn(async move { listen_for_reloads(state, listener_pool, reload.notify_channel).await });
    }
}

/// `NOTIFY <channel>, 'reload schema'` (or an empty payload) reloads.
/// The listener reconnects by itself when the database goes away.
async fn listen_for_reloads(state: Arc<AppState>, pool: sqlx::PgPool, channel: String) {
    loop {
        let listener = async {
            let mut l = sqlx::postgres::PgListener::connect_with(&pool).await?;
            l.listen(&channel).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = match listener.await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, %channel, "cannot LISTEN for schema reloads; retrying in 5 s");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        tracing::info!(%channel, "listening for schema reload notifications");
        loop {
            match listener.recv().await {
                Ok(n) if matches!(n.payload(), "" | "reload schema") => reload_and_log(&state, "NOTIFY").await,
                Ok(n) => tracing::debug!(payload = n.payload(), "ignored notification"),
                Err(e) => {
                    tracing::warn!(error = %e, "schema reload listener lost its connection; reconnecting");
                    break;
                }
            }
        }
    }
}
