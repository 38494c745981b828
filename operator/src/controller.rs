//! The controller: watches DatabaseApis, the children they own (only ours,
//! by label) and the Secrets they reference, and runs `reconcile`.

use std::sync::Arc;

use dbapi_crds::crd::DatabaseApi;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};

use crate::reconcile::{Context, error_policy, reconcile, references_secret};
use crate::resources::MANAGED_BY;

/// Runs until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let ours = watcher::Config::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
    let controller =
        Controller::new(Api::<DatabaseApi>::all(client.clone()), watcher::Config::default().any_semantic());
    let store = controller.store();
    controller
        .owns(Api::<Deployment>::all(client.clone()), ours.clone())
        .owns(Api::<Service>::all(client.clone()), ours.clone())
        .owns(Api::<HorizontalPodAutoscaler>::all(client.clone()), ours.clone())
        .owns(Api::<PodDisruptionBudget>::all(client.clone()), ours.clone())
        .owns(Api::<ConfigMap>::all(client.clone()), ours.clone())
        .owns(Api::<Secret>::all(client.clone()), ours)
        // Referenced Secrets are not ours and carry no label: watch only
        // their metadata, so no Secret data is cached.
        .watches(Api::<PartialObjectMeta<Secret>>::all(client.clone()), watcher::Config::default(), move |secret| {
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
