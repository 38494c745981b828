use std::process::ExitCode;

use clap::Parser;
use dbapi_crds::config::RuntimeConfig;
use dbapi_runtime::cache::change_feed;
use dbapi_runtime::config::{self, Cli, Command, LogFormat};
use dbapi_runtime::server::{self, StartupError};
use dbapi_runtime::telemetry::{self, Telemetry};
use dbapi_runtime::{demo, openapi};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match async_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut telemetry = None;
    let outcome = runtime.block_on(run(cli.command, cli.log_format, &mut telemetry));
    // Sends the last traces: dropped on a blocking thread while the runtime
    // runs the export (a current-thread runtime runs nothing outside
    // `block_on`).
    if let Some(telemetry) = telemetry.take() {
        let _ = runtime.block_on(runtime.spawn_blocking(move || drop(telemetry)));
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The async runtime, sized to the CPUs the process may use (a pod's CPU
/// limit, or its affinity): on one, the current-thread scheduler, which
/// runs a task woken by another after the tasks already ready instead of at
/// once, so that the statements of requests arriving together leave for
/// the database in one write and their rows come back in one read
/// (bench/README.md: a quarter more requests a second on one CPU); on more,
/// one worker per CPU. `DBAPI_WORKER_THREADS` overrides the count.
fn async_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let workers = match std::env::var("DBAPI_WORKER_THREADS") {
        Ok(text) => text.trim().parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
            std::io::Error::other(format!("DBAPI_WORKER_THREADS is {text:?}; set a whole number of threads, 1 or more"))
        })?,
        Err(_) => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
    };
    if workers == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()
    }
}

async fn run(command: Command, format: LogFormat, telemetry: &mut Option<Telemetry>) -> Result<(), StartupError> {
    // Logging starts before anything logs; for `serve`, once its document
    // has said where traces go.
    let serve_config = match &command {
        Command::Serve(args) => Some(config::load(&args.database)?),
        _ => None,
    };
    let otlp = serve_config.as_ref().and_then(|c| c.observability.otlp_endpoint.as_deref());
    *telemetry = Some(telemetry::init(format, otlp).map_err(|e| StartupError::Settings(e.to_string()))?);
    match command {
        Command::Serve(args) => {
            let config = serve_config.expect("loaded above for serve");
            let state = server::prepare_shared(
                &args.database.database_url,
                args.read_replica_url.as_deref(),
                config,
                &args.redis.settings(),
            )
            .await?;
            dbapi_runtime::reload::spawn_config_reloaders(state.clone(), args.database.clone());
            server::serve(state, &args.listen, |_, _| {}).await
        }
        Command::Demo(args) => {
            let path = args.path.clone().unwrap_or_else(demo::default_path);
            let created = demo::ensure_database(&path).await?;
            let url = format!("sqlite://{}?mode=ro", path.display());
            let state = server::prepare(&url, RuntimeConfig::default()).await?;
            server::serve(state, &args.listen, |api, admin| print!("{}", demo::banner(&path, created, api, admin)))
                .await
        }
        Command::Keygen(args) => {
            print!("{}", dbapi_runtime::auth::keygen(&args.name, &args.role).map_err(StartupError::Settings)?);
            Ok(())
        }
        Command::InstallChangeFeed(args) => {
            let config = config::load(&args)?;
            print!("{}", change_feed::install(&args.database_url, &config.database.schemas).await?);
            Ok(())
        }
        Command::UninstallChangeFeed(args) => {
            let config = config::load(&args)?;
            print!("{}", change_feed::uninstall(&args.database_url, &config.database.schemas).await?);
            Ok(())
        }
        Command::Openapi(args) => {
            let config = config::load(&args.database)?;
            let state = server::prepare(&args.database.database_url, config).await?;
            let schema = state.schema();
            let profile = args.profile.as_deref().unwrap_or(schema.default_schema());
            if !schema.schemas.iter().any(|s| s == profile) {
                return Err(StartupError::Config(config::ConfigError::Value {
                    path: "--profile".into(),
                    message: format!("{profile:?} is not an exposed schema; use one of {}", schema.schemas.join(", ")),
                }));
            }
            let doc = openapi::served_under(
                openapi::document(&schema, profile, state.config.api.max_rows),
                state.config.api.prefix(),
            );
            println!("{}", serde_json::to_string_pretty(&doc).expect("the OpenAPI document serializes"));
            state.db.close().await;
            Ok(())
        }
    }
}
