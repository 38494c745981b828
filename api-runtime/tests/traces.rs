//! Traces over OTLP/HTTP (`observability.otlpEndpoint`), on the built
//! binary: each request's span and its pipeline steps reach a collector
//! (an HTTP server in the test that decodes what it receives with the
//! OTLP protobuf messages), joined to the caller's `traceparent`; a
//! collector that is down costs no request.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use support::process::{Runtime, TempDir, free_port, wait_for};

type Received = Arc<Mutex<Vec<Span>>>;

/// A collector on a free port; every span it receives lands in the list.
async fn collector() -> (String, Received) {
    let received = Received::default();
    async fn traces(State(received): State<Received>, body: Bytes) -> &'static str {
        let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
        let spans = request.resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
        received.lock().unwrap().extend(spans);
        ""
    }
    let app = axum::Router::new().route("/v1/traces", axum::routing::post(traces)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span.attributes.iter().find(|a| a.key == key)?.value.as_ref()?.value.as_ref()?;
    match value {
        Value::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    }
}

async fn items_database() -> support::TestDb {
    support::sqlite_database(
        "CREATE TABLE items (id integer PRIMARY KEY, label text); INSERT INTO items VALUES (1, 'one');",
    )
    .await
}

async fn serve(root: &TempDir, endpoint: &str) -> (Runtime, support::TestDb) {
    // Batches leave every 100 ms instead of 5 s.
    serve_with_env(root, endpoint, &[("OTEL_BSP_SCHEDULE_DELAY", "100")]).await
}

async fn serve_with_env(root: &TempDir, endpoint: &str, env: &[(&str, &str)]) -> (Runtime, support::TestDb) {
    let db = items_database().await;
    let config = root.0.join("config.yaml");
    std::fs::write(&config, format!("observability: {{otlpEndpoint: \"{endpoint}\"}}\n")).unwrap();
    let args = ["--database-url", &db.url, "--config", &config.to_string_lossy()];
    (Runtime::serve_with_env(&root.0, &args, env), db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_and_its_steps_are_one_trace_under_the_callers() {
    let root = TempDir::new();
    let (endpoint, received) = collector().await;
    let (runtime, _db) = serve(&root, &endpoint).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{parent}-01");
    let reply = runtime.get("/items?id=eq.1", &[("X-Request-Id", "trace-me-1"), ("traceparent", &traceparent)]);
    assert_eq!(reply.status, 200, "{}", reply.body);

    let spans = wait_for(
        Duration::from_secs(20),
        || format!("spans received: {:?}\nlog: {}", received.lock().unwrap(), runtime.log()),
        || {
            let spans = received.lock().unwrap().clone();
            let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
            ["request", "auth", "plan", "db.query"].iter().all(|n| names.contains(n)).then_some(spans)
        },
    );
    let request = spans.iter().find(|s| s.name == "request").unwrap();
    assert_eq!(attribute(request, "id").as_deref(), Some("trace-me-1"));
    assert_eq!(attribute(request, "path").as_deref(), Some("/items"));
    assert_eq!(hex(&request.trace_id), trace_id, "the caller's trace is joined");
    assert_eq!(hex(&request.parent_span_id), parent, "under the caller's span");
    for step in ["auth", "plan", "db.query"] {
        let span = spans.iter().find(|s| s.name == step).unwrap();
        assert_eq!(hex(&span.trace_id), trace_id, "{step}");
        assert_eq!(span.parent_span_id, request.span_id, "{step} is a step of the request");
    }
    let query = spans.iter().find(|s| s.name == "db.query").unwrap();
    let sql = attribute(query, "db.query.text").unwrap_or_default();
    assert!(sql.contains("items") && !sql.contains("'one'"), "the statement, never a value: {sql}");

    // Without a traceparent, a request starts a trace of its own.
    assert_eq!(runtime.get("/items", &[("X-Request-Id", "trace-me-2")]).status, 200);
    let second = wait_for(
        Duration::from_secs(20),
        || format!("spans received: {:?}", received.lock().unwrap()),
        || {
            let spans = received.lock().unwrap();
            spans.iter().find(|s| s.name == "request" && attribute(s, "id").as_deref() == Some("trace-me-2")).cloned()
        },
    );
    assert_ne!(hex(&second.trace_id), trace_id);
    assert!(second.parent_span_id.is_empty(), "a root span");
}

/// The batch not yet sent when the process stops leaves on the way out, on
/// the single-threaded scheduler too (one CPU), which runs nothing once its
/// main task is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_traces_leave_when_the_process_stops_on_one_thread() {
    let root = TempDir::new();
    let (endpoint, received) = collector().await;
    // No scheduled export within the test: only the one at exit.
    let env = [("OTEL_BSP_SCHEDULE_DELAY", "600000"), ("DBAPI_WORKER_THREADS", "1")];
    let (mut runtime, _db) = serve_with_env(&root, &endpoint, &env).await;
    assert_eq!(runtime.get("/items", &[("X-Request-Id", "last-one")]).status, 200);
    assert!(received.lock().unwrap().is_empty(), "exported before the exit");
    runtime.signal("INT");
    let log_path = runtime.log_path.clone();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let stopped = wait_for(Duration::from_secs(20), log, || runtime.child.try_wait().unwrap());
    assert!(stopped.success(), "{stopped}: {}", runtime.log());
    let spans = received.lock().unwrap().clone();
    assert!(
        spans.iter().any(|s| s.name == "request" && attribute(s, "id").as_deref() == Some("last-one")),
        "spans received: {spans:?}\nlog: {}",
        runtime.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_no_request_and_is_logged_once() {
    let root = TempDir::new();
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let (runtime, _db) = serve(&root, &endpoint).await;
    for _ in 0..5 {
        assert_eq!(runtime.get("/items", &[]).status, 200);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let log = wait_for(
        Duration::from_secs(20),
        || runtime.log(),
        || Some(runtime.log()).filter(|log| log.contains("traces could not be sent")),
    );
    assert_eq!(log.matches("traces could not be sent").count(), 1, "{log}");
    assert!(log.contains("traces are exported over OTLP"), "{log}");
}

#[tokio::test]
async fn an_endpoint_that_is_not_a_url_stops_start_up() {
    let root = TempDir::new();
    let db = items_database().await;
    let config = root.0.join("config.yaml");
    std::fs::write(&config, "observability: {otlpEndpoint: \"collector:4318\"}\n").unwrap();
    let out = std::process::Command::new(support::process::BIN)
        .args(["serve", "--database-url", &db.url, "--config", &config.to_string_lossy()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("observability.otlpEndpoint") && stderr.contains("http://"), "{stderr}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
