//! The operator against a real cluster: install the CRD, run the operator,
//! apply `examples/shop-api.yaml`, watch children and status appear, change
//! the spec and see the rollout, add and remove an API key, delete and see
//! garbage collection.
//!
//! Needs the cluster in `KUBECONFIG` (a kind or k3d cluster will do; see the
//! README). Without `KUBECONFIG` the test says it is skipped and passes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{eventually, repo_file};
use dbapi_crds::crd::DatabaseApi;
use dbapi_operator::controller;
use dbapi_operator::metrics::Metrics;
use dbapi_operator::reconcile::Context;
use dbapi_operator::resources::{FIELD_MANAGER, OperatorDefaults};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::Reporter;
use kube::{Api, Client};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_reconciles_a_database_api_end_to_end() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!(
            "SKIPPED operator end-to-end test: set KUBECONFIG to a cluster (e.g. `kind create cluster`) to run it"
        );
        return;
    }
    let client = Client::try_default().await.expect("a client from KUBECONFIG");

    // The CRD, exactly as the chart ships it.
    let crd: CustomResourceDefinition =
        serde_yaml::from_str(&repo_file("charts/dbapi-operator/crds/databaseapis.dbapi.dev.yaml")).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch("databaseapis.dbapi.dev", &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&crd))
        .await
        .unwrap();
    eventually("the CRD to be established", TIMEOUT, || {
        let crds = crds.clone();
        async move {
            let crd = crds.get("databaseapis.dbapi.dev").await.ok()?;
            let established = crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True");
            established.then_some(())
        }
    })
    .await;

    let ns_name = format!("dbapi-e2e-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": ns_name}})).unwrap())
        .await
        .unwrap();

    // The operator, in this process.
    let reporter = Reporter { controller: "dbapi-operator-e2e".into(), instance: None };
    let ctx =
        Arc::new(Context::new(client.clone(), OperatorDefaults::default(), reporter, Arc::new(Metrics::default())));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    // Scoped to the test's namespace, as `--watch-namespaces` runs it.
    let operator = tokio::spawn(controller::run(ctx, vec![ns_name.clone()], shutdown));

    // kubectl apply -f examples/shop-api.yaml
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns_name);
    let apis: Api<DatabaseApi> = Api::namespaced(client.clone(), &ns_name);
    for doc in serde_yaml::Deserializer::from_str(&repo_file("examples/shop-api.yaml")) {
        let value: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
        let name = value["metadata"]["name"].as_str().unwrap().to_string();
        let params = PatchParams::apply("e2e").force();
        match value["kind"].as_str() {
            Some("Secret") => drop(secrets.patch(&name, &params, &Patch::Apply(&value)).await.unwrap()),
            Some("DatabaseApi") => drop(apis.patch(&name, &params, &Patch::Apply(&value)).await.unwrap()),
            other => panic!("unexpected kind {other:?} in the example"),
        }
    }

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns_name);
    let checksum = |d: &Deployment| {
        d.spec.as_ref()?.template.metadata.as_ref()?.annotations.as_ref()?.get("dbapi.dev/config-checksum").cloned()
    };
    let first = eventually("the runtime Deployment", TIMEOUT, || {
        let deployments = deployments.clone();
        async move { deployments.get_opt("shop-api").await.ok().flatten() }
    })
    .await;
    assert!(first.spec.as_ref().unwrap().replicas.is_none(), "the HPA owns the replica count");
    let owner = &first.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("DatabaseApi", "shop"));
    let services: Api<Service> = Api::namespaced(client.clone(), &ns_name);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns_name);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns_name);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns_name);
    assert!(services.get_opt("shop-api").await.unwrap().is_some());
    assert!(hpas.get_opt("shop-api").await.unwrap().is_some());
    assert!(pdbs.get_opt("shop-api").await.unwrap().is_some());
    assert!(configmaps.get_opt("shop-api-config").await.unwrap().is_some());
    assert!(secrets.get_opt("shop-api-config").await.unwrap().is_some());

    let status = eventually("a status for the current generation", TIMEOUT, || {
        let apis = apis.clone();
        async move {
            let api = apis.get("shop").await.ok()?;
            let status = api.status?;
            (status.observed_generation == api.metadata.generation).then_some(status)
        }
    })
    .await;
    let condition = |type_: &str| status.conditions.iter().find(|c| c.type_ == type_).cloned().unwrap();
    assert_eq!(condition("DatabaseSecretReady").status, "True");
    assert_eq!(status.url.as_deref(), Some(format!("http://shop-api.{ns_name}.svc:8080").as_str()));
    assert_eq!(status.pool_per_replica, Some(2));

    // A spec change rolls the pods.
    let patch = json!({"spec": {"database": {"maxRows": 50}}});
    apis.patch("shop", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    let before = checksum(&first);
    eventually("the Deployment to roll with the new configuration", TIMEOUT, || {
        let deployments = deployments.clone();
        let before = before.clone();
        async move {
            let d = deployments.get("shop-api").await.ok()?;
            (checksum(&d) != before).then_some(())
        }
    })
    .await;

    // A key appears in a Secret and disappears with the spec entry.
    let patch = json!({"spec": {"roles": [{"name": "reader", "rules": [{"tables": ["*"], "verbs": ["GET"]}]}],
                                "apiKeys": [{"name": "e2e", "role": "reader"}]}});
    apis.patch("shop", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    let key = eventually("the API key Secret", TIMEOUT, || {
        let secrets = secrets.clone();
        async move { secrets.get_opt("shop-key-e2e").await.ok().flatten() }
    })
    .await;
    assert!(key.data.as_ref().unwrap()["key"].0.len() > 32);
    apis.patch("shop", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"apiKeys": []}}))).await.unwrap();
    eventually("the removed key's Secret to go", TIMEOUT, || {
        let secrets = secrets.clone();
        async move { secrets.get_opt("shop-key-e2e").await.ok()?.is_none().then_some(()) }
    })
    .await;

    // Deleting the DatabaseApi garbage-collects its children.
    apis.delete("shop", &DeleteParams::foreground()).await.unwrap();
    eventually("the children to be garbage-collected", TIMEOUT, || {
        let deployments = deployments.clone();
        let configmaps = configmaps.clone();
        async move {
            let gone = deployments.get_opt("shop-api").await.ok()?.is_none()
                && configmaps.get_opt("shop-api-config").await.ok()?.is_none();
            gone.then_some(())
        }
    })
    .await;

    let _ = stop.send(true);
    let _ = operator.await;
    namespaces.delete(&ns_name, &DeleteParams::default()).await.unwrap();
}
