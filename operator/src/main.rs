use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use dbapi_operator::controller;
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
}

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
    controller::run(ctx, stopped()).await;
    server.await.map_err(|e| e.to_string())?.map_err(|e| format!("metrics server on {}: {e}", cli.metrics_listen))
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
