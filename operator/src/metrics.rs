//! Prometheus metrics of the operator and the small HTTP server that
//! exposes them beside `/healthz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

/// Reconciles by result, failures, how long reconciles take, and whether
/// this replica leads.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabel, Counter>,
    failures: Counter,
    duration: Family<ResultLabel, Histogram>,
    leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("dbapi_operator");
        let reconciles = Family::<ResultLabel, Counter>::default();
        let failures = Counter::default();
        let duration = Family::<ResultLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 12))
        });
        registry.register("reconciles", "Reconciles by result", reconciles.clone());
        registry.register("reconcile_errors", "Failed reconciles", failures.clone());
        registry.register("reconcile_duration_seconds", "Reconcile duration by result", duration.clone());
        let leader = Gauge::default();
        registry.register("leader", "1 while this replica leads and reconciles, 0 on standby", leader.clone());
        Metrics { registry, reconciles, failures, duration, leader }
    }
}

impl Metrics {
    pub fn observe(&self, ok: bool, took: Duration) {
        let label = ResultLabel { result: if ok { "success" } else { "error" } };
        self.reconciles.get_or_create(&label).inc();
        self.duration.get_or_create(&label).observe(took.as_secs_f64());
        if !ok {
            self.failures.inc();
        }
    }

    /// Records whether this replica leads (always, without leader election).
    pub fn set_leader(&self, leads: bool) {
        self.leader.set(i64::from(leads));
    }

    pub fn is_leader(&self) -> bool {
        self.leader.get() == 1
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// `/metrics` and `/healthz`. A standby is healthy too: `/healthz` says
/// which it is, and never fails for it.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|State(m): State<Arc<Metrics>>| async move {
                if m.is_leader() { "ok: leader\n" } else { "ok: standby\n" }
            }),
        )
        .route(
            "/metrics",
            get(|State(m): State<Arc<Metrics>>| async move {
                ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.render())
                    .into_response()
            }),
        )
        .with_state(metrics)
}

pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, router(metrics)).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_reconciles_by_result() {
        let m = Metrics::default();
        m.observe(true, Duration::from_millis(20));
        m.observe(false, Duration::from_millis(5));
        let text = m.render();
        assert!(text.contains(r#"dbapi_operator_reconciles_total{result="success"} 1"#), "{text}");
        assert!(text.contains(r#"dbapi_operator_reconciles_total{result="error"} 1"#), "{text}");
        assert!(text.contains("dbapi_operator_reconcile_errors_total 1"), "{text}");
        assert!(text.contains("dbapi_operator_reconcile_duration_seconds_bucket"), "{text}");
        assert!(text.contains("dbapi_operator_leader 0"), "{text}");
        m.set_leader(true);
        assert!(m.render().contains("dbapi_operator_leader 1"));
    }

    #[tokio::test]
    async fn healthz_says_whether_this_replica_leads() {
        use tower::ServiceExt;
        let m = Arc::new(Metrics::default());
        let body = |m: Arc<Metrics>| async move {
            let request = axum::http::Request::get("/healthz").body(axum::body::Body::empty()).unwrap();
            let response = router(m).oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200);
            let bytes = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
            String::from_utf8(bytes.to_vec()).unwrap()
        };
        assert_eq!(body(m.clone()).await, "ok: standby\n");
        m.set_leader(true);
        assert_eq!(body(m).await, "ok: leader\n");
    }
}
