//! The controller: watches DatabaseApis, the children they own (only ours,
//! by label) and the Secrets they reference, and runs `reconcile`.

use std::sync::Arc;

use dbapi_crds::crd::DatabaseApi;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::NamespaceResourceScope;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Resource, ResourceExt};

use crate::reconcile::{Context, error_policy, reconcile, references_secret};
use crate::resources::MANAGED_BY;

/// Runs until the futures `shutdown` makes resolve: over the whole cluster
/// when `namespaces` is empty, else one controller per listed namespace,
/// each watching only its own (the operator then needs only Roles there).
pub async fn run<F>(ctx: Arc<Context>, namespaces: Vec<String>, shutdown: impl Fn() -> F)
where
    F: Future<Output = ()> + Send + Sync + 'static,
{
    if namespaces.is_empty() {
        run_in(ctx, None, shutdown()).await;
    } else {
        let each = namespaces.iter().map(|ns| run_in(ctx.clone(), Some(ns.as_str()), shutdown()));
        futures::future::join_all(each).await;
    }
}

/// Every namespace (`None`), or one.
fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        None => Api::all(client.clone()),
        Some(ns) => Api::namespaced(client.clone(), ns),
    }
}

async fn run_in(
    ctx: Arc<Context>,
    namespace: Option<&str>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = &ctx.client.clone();
    let ours = watcher::Config::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
    let controller = Controller::new(api::<DatabaseApi>(client, namespace), watcher::Config::default().any_semantic());
    let store = controller.store();
    controller
        .owns(api::<Deployment>(client, namespace), ours.clone())
        .owns(api::<Service>(client, namespace), ours.clone())
        .owns(api::<HorizontalPodAutoscaler>(client, namespace), ours.clone())
        .owns(api::<PodDisruptionBudget>(client, namespace), ours.clone())
        .owns(api::<ConfigMap>(client, namespace), ours.clone())
        .owns(api::<NetworkPolicy>(client, namespace), ours.clone())
        .owns(api::<Secret>(client, namespace), ours)
        // Referenced Secrets are not ours and carry no label: watch only
        // their metadata, so no Secret data is cached.
        .watches(api::<PartialObjectMeta<Secret>>(client, namespace), watcher::Config::default(), move |secret| {
            referencing(&store, &secret.namespace().unwrap_or_default(), &secret.name_any())
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(%object, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile did not complete"),
            }
        })
        .await;
}

/// The DatabaseApis in `namespace` that reference the Secret `name`.
fn referencing(store: &Store<DatabaseApi>, namespace: &str, name: &str) -> Vec<ObjectRef<DatabaseApi>> {
    store
        .state()
        .iter()
        .filter(|api| api.namespace().as_deref() == Some(namespace) && references_secret(api, name))
        .map(|api| ObjectRef::from_obj(api.as_ref()))
        .collect()
}
