use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use dbapi_operator::controller;
use dbapi_operator::leader::LeaseLock;
use dbapi_operator::metrics::{self, Metrics};
use dbapi_operator::reconcile::Context;
use dbapi_operator::resources::OperatorDefaults;
use kube::runtime::events::Reporter;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "dbapi-operator", version, about = "Reconciles DatabaseApi resources into autoscaled dbapi runtimes")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address of /metrics and /healthz.
    #[arg(long, env = "DBAPI_OPERATOR_METRICS_LISTEN", default_value = "0.0.0.0:8081", global = true)]
    metrics_listen: SocketAddr,
    /// Runtime image for DatabaseApis that name none.
    #[arg(long, env = "DBAPI_RUNTIME_IMAGE", global = true)]
    runtime_image: Option<String>,
    /// Redis image for managed caches.
    #[arg(long, env = "DBAPI_REDIS_IMAGE", global = true)]
    redis_image: Option<String>,
    #[arg(long, env = "DBAPI_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json, global = true)]
    log_format: LogFormat,
    /// Reconcile only while holding the Lease `dbapi-operator` in
    /// `POD_NAMESPACE` (for several replicas); `POD_NAME` names the holder.
    #[arg(long, env = "DBAPI_OPERATOR_LEADER_ELECTION", global = true)]
    leader_election: bool,
    /// Watch only these namespaces (comma-separated), with Roles there
    /// instead of a ClusterRole; empty: the whole cluster.
    #[arg(long, env = "DBAPI_OPERATOR_WATCH_NAMESPACES", value_delimiter = ',', global = true)]
    watch_namespaces: Vec<String>,
}

/// How long a leader's Lease lasts without renewal, and how often it renews.
const LEASE_DURATION: Duration = Duration::from_secs(15);
const LEASE_RENEW_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (the default): in-cluster config, else KUBECONFIG.
    Run,
    /// Print the DatabaseApi CustomResourceDefinition as YAML.
    Crd,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Crd) = cli.command {
        print!("{}", dbapi_crds::crd::crd_yaml());
        return ExitCode::SUCCESS;
    }
    let filter = EnvFilter::try_from_env("DBAPI_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a Tokio runtime starts");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("no Kubernetes configuration (in-cluster or KUBECONFIG): {e}"))?;
    let mut defaults = OperatorDefaults::default();
    if let Some(image) = cli.runtime_image {
        defaults.runtime_image = image;
    }
    if let Some(image) = cli.redis_image {
        defaults.redis_image = image;
    }
    let reporter = Reporter { controller: "dbapi-operator".into(), instance: std::env::var("POD_NAME").ok() };
    let metrics = Arc::new(Metrics::default());
    let ctx = Arc::new(Context::new(client, defaults, reporter, metrics.clone()));

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let server = tokio::spawn(metrics::serve(cli.metrics_listen, metrics, stopped()));
    tracing::info!(metrics = %cli.metrics_listen, "dbapi-operator started");
    if cli.leader_election {
        let lock = lease_lock(ctx.client.clone())?;
        tokio::select! {
            led = lead(&lock) => led?,
            _ = stopped() => return Ok(()),
        }
        tokio::spawn(keep_leading(lock));
    }
    ctx.metrics.set_leader(true);
    controller::run(ctx, cli.watch_namespaces, stopped).await;
    server.await.map_err(|e| e.to_string())?.map_err(|e| format!("metrics server on {}: {e}", cli.metrics_listen))
}

fn lease_lock(client: kube::Client) -> Result<LeaseLock, String> {
    let namespace = std::env::var("POD_NAMESPACE")
        .map_err(|_| "leader election needs POD_NAMESPACE (the downward API's metadata.namespace)".to_string())?;
    let me = std::env::var("POD_NAME")
        .map_err(|_| "leader election needs POD_NAME (the downward API's metadata.name)".to_string())?;
    Ok(LeaseLock::new(kube::Api::namespaced(client, &namespace), "dbapi-operator", &me, LEASE_DURATION))
}

/// Waits until this replica holds the Lease.
async fn lead(lock: &LeaseLock) -> Result<(), String> {
    tracing::info!("waiting for the leader Lease");
    loop {
        match lock.try_lead().await {
            Ok(true) => {
                tracing::info!("leading: reconciling DatabaseApis");
                return Ok(());
            }
            Ok(false) => {}
            Err(e) => tracing::warn!("{e}"),
        }
        tokio::time::sleep(LEASE_RENEW_EVERY).await;
    }
}

/// Renews the Lease; a replica that cannot renew before it would expire
/// exits, so that two replicas never reconcile at once (the Deployment
/// starts it again as a follower).
async fn keep_leading(lock: LeaseLock) {
    let mut renewed = std::time::Instant::now();
    loop {
        tokio::time::sleep(LEASE_RENEW_EVERY).await;
        match lock.try_lead().await {
            Ok(true) => renewed = std::time::Instant::now(),
            Ok(false) => {
                tracing::error!("another replica took the leader Lease; exiting");
                std::process::exit(1);
            }
            Err(e) if renewed.elapsed() + LEASE_RENEW_EVERY >= LEASE_DURATION => {
                tracing::error!("could not renew the leader Lease in time ({e}); exiting");
                std::process::exit(1);
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term => {} }
}
