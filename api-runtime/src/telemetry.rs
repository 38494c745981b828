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
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;
use crate::outbound::HttpClient;

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
    let logs_filter = EnvFilter::try_from_env("DBAPI_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal: a pod's log (a pipe) gets plain text, and
    // the escapes are not built for every request's span.
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(colours);
    let logs = match format {
        LogFormat::Json => logs.json().with_filter(logs_filter).boxed(),
        LogFormat::Text => logs.with_filter(logs_filter).boxed(),
    };
    let Some(endpoint) = otlp_endpoint else {
        tracing_subscriber::registry().with(logs).init();
        return Ok(Telemetry { provider: None });
    };
    let provider = tracer_provider(endpoint)?;
    let traces_filter = match std::env::var("DBAPI_TRACE") {
        Ok(filter) => EnvFilter::try_new(filter).map_err(|e| TelemetryError::Filter(e.to_string()))?,
        Err(_) => EnvFilter::new("dbapi_runtime=debug"),
    };
    let traces =
        tracing_opentelemetry::layer().with_tracer(provider.tracer("dbapi-runtime")).with_filter(traces_filter);
    tracing_subscriber::registry().with(logs).with(traces).init();
    PROPAGATOR.get_or_init(TraceContextPropagator::new);
    tracing::info!(endpoint, "traces are exported over OTLP");
    Ok(Telemetry { provider: Some(provider) })
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
    use super::traces_url;

    #[test]
    fn traces_go_to_v1_traces_under_the_endpoint() {
        assert_eq!(traces_url("http://collector:4318"), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("http://collector:4318/"), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("https://c.example/otlp"), "https://c.example/otlp/v1/traces");
        assert_eq!(traces_url("http://collector:4318/v1/traces"), "http://collector:4318/v1/traces");
    }
}
