//! Logs and traces. Logs go to stderr (text or JSON, filtered by
//! `DBAPI_LOG`, default `info`). With `observability.otlpEndpoint` set,
//! each request's span and its pipeline steps' spans (`auth`, `plan`,
//! `cache`, `db.query`, at DEBUG, so they cost nothing otherwise) are also
//! exported as OTLP/HTTP traces, filtered by `DBAPI_TRACE` (default
//! `dbapi_runtime=debug`), joining the caller's trace when the request
//! carries a W3C `traceparent`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::{Format, JsonFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;
use crate::outbound::HttpClient;
use clock::LogClock;
use span_fields::WrittenFields;
use text_fields::LogFields;

mod clock;
pub mod span_fields;
mod text_fields;

/// How long one export may take; a collector that does not answer loses
/// that batch, never a request.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a collector's answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Set when traces are exported: only then is `traceparent` read.
static PROPAGATOR: OnceLock<TraceContextPropagator> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("observability.otlpEndpoint {endpoint:?} {why}")]
    Endpoint { endpoint: String, why: String },
    #[error("DBAPI_TRACE is not a valid filter: {0}")]
    Filter(String),
}

/// Keeps the trace exporter running; dropping it sends what is left. Drop
/// it outside the async runtime's tasks, while the runtime still runs: the
/// last batch is sent on it.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown_with_timeout(EXPORT_TIMEOUT)
        {
            eprintln!("warning: the last traces could not be sent: {e}");
        }
    }
}

/// Installs the process's log (and, with an endpoint, trace) subscriber.
/// With an endpoint it must be called inside the Tokio runtime, which
/// carries the exports.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> Result<Telemetry, TelemetryError> {
    let directives = std::env::var("DBAPI_LOG").unwrap_or_else(|_| "info".to_string());
    // Colours only for a terminal: a pod's log (a pipe) gets plain text, and
    // the escapes are not built for every request's span.
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let Some(endpoint) = otlp_endpoint else {
        // The only layer: its filter is the subscriber's. A per-layer
        // filter would be asked about every span each time a request's
        // future is entered and left (bench/README.md, "2026-12-07, later").
        let (targets, env) = log_filter(&directives);
        let subscriber = tracing_subscriber::registry().with(targets).with(env);
        match format {
            LogFormat::Json => subscriber.with(request_fields::<JsonFields>()).with(log_layer(colours).json()).init(),
            LogFormat::Text => subscriber.with(request_fields::<LogFields>()).with(log_layer(colours)).init(),
        }
        return Ok(Telemetry { provider: None });
    };
    let (targets, env) = log_filter(&directives);
    let filter = tracing_subscriber::filter::FilterExt::and(targets, env);
    let (fields, logs) = match format {
        LogFormat::Json => {
            (request_fields::<JsonFields>().boxed(), log_layer(colours).json().with_filter(filter).boxed())
        }
        LogFormat::Text => (request_fields::<LogFields>().boxed(), log_layer(colours).with_filter(filter).boxed()),
    };
    let provider = tracer_provider(endpoint)?;
    let traces_filter = match std::env::var("DBAPI_TRACE") {
        Ok(filter) => EnvFilter::try_new(filter).map_err(|e| TelemetryError::Filter(e.to_string()))?,
        Err(_) => EnvFilter::new("dbapi_runtime=debug"),
    };
    let traces =
        tracing_opentelemetry::layer().with_tracer(provider.tracer("dbapi-runtime")).with_filter(traces_filter);
    tracing_subscriber::registry().with(fields).with(logs).with(traces).init();
    PROPAGATOR.get_or_init(TraceContextPropagator::new);
    tracing::info!(endpoint, "traces are exported over OTLP");
    Ok(Telemetry { provider: Some(provider) })
}

/// Text log lines on stderr, with [`LogClock`]'s time and [`LogFields`]'
/// fields.
type LogLayer<S> = tracing_subscriber::fmt::Layer<
    S,
    LogFields,
    Format<tracing_subscriber::fmt::format::Full, LogClock>,
    fn() -> std::io::Stderr,
>;

/// The log lines' layer, on stderr; for whichever subscriber it goes on.
fn log_layer<S>(colours: bool) -> LogLayer<S> {
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr as fn() -> std::io::Stderr)
        .with_ansi(colours)
        .with_timer(LogClock)
        .fmt_fields(LogFields)
}

/// Writes each request span's fields for the log layer above it, whose
/// field formatter is `N`.
fn request_fields<N: span_fields::TextFields>() -> WrittenFields<N> {
    WrittenFields::new(crate::request_id::is_request_span)
}

/// The `DBAPI_LOG` filter. Targets and levels alone (the usual `info`,
/// `dbapi_runtime=debug,warn`) are a static filter; an `EnvFilter` would
/// also follow every span in and out of scope in case a directive names
/// one. Directives that name spans or fields (`[...]`) get the
/// `EnvFilter`; ones that do not parse, `info`. One of the two is given,
/// as a layer or a filter (`None` lets everything through).
fn log_filter(directives: &str) -> (Option<Targets>, Option<EnvFilter>) {
    if !directives.contains('[')
        && let Ok(targets) = directives.parse::<Targets>()
    {
        return (Some(targets), None);
    }
    (None, Some(EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"))))
}

fn tracer_provider(endpoint: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let invalid = |why: String| TelemetryError::Endpoint { endpoint: endpoint.to_string(), why };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(invalid("must start with http:// or https:// (for example http://otel-collector:4318)".into()));
    }
    let traces_url = traces_url(endpoint);
    let (_, client) = HttpClient::for_url(&traces_url).map_err(invalid)?;
    let client = OtlpClient { client, runtime: tokio::runtime::Handle::current(), failing: AtomicBool::new(false) };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url)
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(client)
        .build()
        .map_err(|e| invalid(e.to_string()))?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name("dbapi-runtime").build();
    Ok(SdkTracerProvider::builder().with_resource(resource).with_batch_exporter(exporter).build())
}

/// The collector's traces URL: `/v1/traces` under the endpoint, as the
/// OTLP specification builds it from `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") { base.to_string() } else { format!("{base}/v1/traces") }
}

/// Makes `span` a child of the trace the request's `traceparent` names,
/// when traces are exported.
pub fn join_callers_trace(span: &Span, headers: &HeaderMap) {
    if let Some(propagator) = PROPAGATOR.get() {
        let _ = span.set_parent(propagator.extract(&HeaderExtractor(headers)));
    }
}

struct HeaderExtractor<'h>(&'h HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The exporter's HTTP client. The exporter runs on a thread of its own;
/// each send runs on the Tokio runtime, whose reactor the connection needs.
struct OtlpClient {
    client: HttpClient<Full<Bytes>>,
    runtime: tokio::runtime::Handle,
    /// Set after a failed export, so an outage is logged once.
    failing: AtomicBool,
}

impl std::fmt::Debug for OtlpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpClient").field("client", &self.client).finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let exchange = self.runtime.spawn(async move {
            let answer = tokio::time::timeout(EXPORT_TIMEOUT, async {
                let response = client.send(request.map(Full::new)).await?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_ANSWER_BYTES).collect().await.map_err(|e| e.to_string())?;
                Ok::<_, String>(Response::from_parts(parts, body.to_bytes()))
            });
            answer.await.unwrap_or_else(|_| Err(format!("no answer within {} s", EXPORT_TIMEOUT.as_secs())))
        });
        let outcome = exchange.await.unwrap_or_else(|e| Err(e.to_string()));
        let failed = match &outcome {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("answered {}", response.status())),
            Err(why) => Some(why.clone()),
        };
        match failed {
            Some(why) if !self.failing.swap(true, Ordering::Relaxed) => {
                tracing::warn!(%why, "traces could not be sent to the OTLP collector; retrying with the next batch");
            }
            None if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!("traces reach the OTLP collector again");
            }
            _ => {}
        }
        outcome.map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use tracing_subscriber::Registry;

    use super::{Layer, log_filter, traces_url};

    /// The events that reach the log layer, as "target LEVEL".
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> Layer<S> for Seen {
        fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            let meta = event.metadata();
            self.0.lock().unwrap().push(format!("{} {}", meta.target(), meta.level()));
        }
    }

    fn emit() {
        tracing::debug!(target: "dbapi_runtime::db", "a");
        tracing::debug!(target: "sqlx", "b");
        tracing::warn!(target: "sqlx", "c");
        tracing::info_span!("request").in_scope(|| tracing::debug!(target: "hyper", "d"));
    }

    /// What the log layer sees under `directives`, as the only layer (the
    /// filter is the subscriber's) and beside the traces' layer (its own).
    fn seen_with(directives: &str) -> Vec<String> {
        let alone = Seen::default();
        let (targets, env) = log_filter(directives);
        let subscriber = tracing_subscriber::registry().with(targets).with(env).with(alone.clone());
        tracing::subscriber::with_default(subscriber, emit);
        let beside = Seen::default();
        let (targets, env) = log_filter(directives);
        let filter = tracing_subscriber::filter::FilterExt::and(targets, env);
        let subscriber = Registry::default().with(beside.clone().with_filter(filter));
        tracing::subscriber::with_default(subscriber, emit);
        let (alone, beside) = (alone.0.lock().unwrap().clone(), beside.0.lock().unwrap().clone());
        assert_eq!(alone, beside, "{directives}");
        alone
    }

    #[test]
    fn log_directives_name_targets_levels_and_spans() {
        assert_eq!(seen_with("info"), ["sqlx WARN"]);
        assert_eq!(seen_with("dbapi_runtime=debug,warn"), ["dbapi_runtime::db DEBUG", "sqlx WARN"]);
        // A directive naming a span is honoured (by an `EnvFilter`).
        assert_eq!(seen_with("warn,[request]=debug"), ["sqlx WARN", "hyper DEBUG"]);
        assert_eq!(seen_with("not a directive ]["), ["sqlx WARN"], "a broken value logs at info");
    }

    #[test]
    fn traces_go_to_v1_traces_under_the_endpoint() {
        assert_eq!(traces_url("http://collector:4318"), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("http://collector:4318/"), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("https://c.example/otlp"), "https://c.example/otlp/v1/traces");
        assert_eq!(traces_url("http://collector:4318/v1/traces"), "http://collector:4318/v1/traces");
    }
}
