//! What the controller watches: every namespace by default, or only the
//! listed ones (`--watch-namespaces`), where Roles are enough. Checked on
//! the paths the in-memory API server is asked for.

#[allow(dead_code)] // the fake serves every test file; this one uses part of it
mod fake_api;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dbapi_operator::metrics::Metrics;
use dbapi_operator::reconcile::Context;
use dbapi_operator::resources::OperatorDefaults;
use fake_api::FakeApi;
use http::Method;
use kube::runtime::events::Reporter;
use tokio::sync::watch;

/// Runs the controller until it has asked for each watched collection in
/// each scope (`paths`), then stops it; returns every path it asked for.
async fn watched_paths(namespaces: &[String], expected: &[String]) -> Vec<String> {
    let fake = FakeApi::default();
    let reporter = Reporter { controller: "dbapi-operator".into(), instance: None };
    let ctx =
        Arc::new(Context::new(fake.client(), OperatorDefaults::default(), reporter, Arc::new(Metrics::default())));
    let (stop, stopped) = watch::channel(false);
    let shutdown = move || {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let namespaces = namespaces.to_vec();
    let controller = tokio::spawn(async move { dbapi_operator::controller::run(ctx, namespaces, shutdown).await });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen: Vec<String> = fake.calls().into_iter().filter(|c| c.method == Method::GET).map(|c| c.path).collect();
        if expected.iter().all(|p| seen.contains(p)) {
            break;
        }
        assert!(Instant::now() < deadline, "the controller did not ask for {expected:?}; it asked for {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(20), controller).await.expect("the controller stops").unwrap();
    fake.calls().into_iter().map(|c| c.path).collect()
}

fn collections(prefix: &str) -> Vec<String> {
    let at = |group: &str, resource: &str| format!("{group}{prefix}{resource}");
    vec![
        at("/apis/dbapi.dev/v1alpha1/", "databaseapis"),
        at("/apis/apps/v1/", "deployments"),
        at("/api/v1/", "services"),
        at("/apis/autoscaling/v2/", "horizontalpodautoscalers"),
        at("/apis/policy/v1/", "poddisruptionbudgets"),
        at("/api/v1/", "configmaps"),
        at("/api/v1/", "secrets"),
    ]
}

#[tokio::test]
async fn listed_namespaces_are_watched_and_nothing_else() {
    let namespaces = vec!["shop".to_string(), "billing".to_string()];
    let expected: Vec<String> = namespaces.iter().flat_map(|ns| collections(&format!("namespaces/{ns}/"))).collect();
    let paths = watched_paths(&namespaces, &expected).await;
    for path in &paths {
        assert!(
            path.contains("/namespaces/shop/") || path.contains("/namespaces/billing/"),
            "a request outside the watched namespaces: {path}"
        );
    }
}

#[tokio::test]
async fn without_a_list_the_whole_cluster_is_watched() {
    let expected = collections("");
    let paths = watched_paths(&[], &expected).await;
    assert!(paths.iter().all(|p| !p.contains("/namespaces/")), "{paths:?}");
}
