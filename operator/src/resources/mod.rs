//! The desired child objects of a `DatabaseApi`, built by pure functions:
//! same input, same objects, no API calls. Snapshot tests pin them.

pub mod autoscaling;
pub mod cache;
pub mod config;
pub mod deployment;
pub mod keys;
pub mod network;
pub mod pod;
#[cfg(test)]
mod runtime_accepts;
pub mod service;
#[cfg(test)]
pub(crate) mod test_fixtures;

use std::collections::BTreeMap;

use dbapi_crds::crd::DatabaseApi;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "dbapi-operator";
/// Label on every child, so watches see only our objects.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "dbapi-operator");
/// Port of the REST API in the pod and the Service.
pub const API_PORT: i32 = 8080;
/// Port of /healthz and /readyz.
pub const ADMIN_PORT: i32 = 9090;
/// Port of a managed Redis.
pub const REDIS_PORT: i32 = 6379;

/// What the operator decides when the spec does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorDefaults {
    /// Runtime image used when `spec.runtime.image` is empty.
    pub runtime_image: String,
    /// Redis image for a managed cache.
    pub redis_image: String,
}

impl Default for OperatorDefaults {
    fn default() -> Self {
        OperatorDefaults {
            runtime_image: format!("ghcr.io/dbapi/dbapi-runtime:{}", env!("CARGO_PKG_VERSION")),
            redis_image: "redis:7.2-alpine".into(),
        }
    }
}

/// The app part of the recommended labels, shared by children and selectors.
pub fn selector_labels(api: &DatabaseApi, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "dbapi".to_string()),
        ("app.kubernetes.io/instance".to_string(), api.name_any()),
        ("app.kubernetes.io/component".to_string(), component.to_string()),
    ])
}

/// All recommended labels of a child.
pub fn labels(api: &DatabaseApi, component: &str) -> BTreeMap<String, String> {
    let mut l = selector_labels(api, component);
    l.insert(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string());
    l.insert("app.kubernetes.io/part-of".to_string(), "dbapi".to_string());
    l
}

/// The owner reference that makes a child garbage-collected with its
/// `DatabaseApi`.
pub fn owner_reference(api: &DatabaseApi) -> OwnerReference {
    api.controller_owner_ref(&()).expect("a DatabaseApi read from the API has a name and uid")
}

/// Metadata of a child: name, namespace, labels, owner.
pub fn child_meta(api: &DatabaseApi, name: String, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: api.namespace(),
        labels: Some(labels(api, component)),
        owner_references: Some(vec![owner_reference(api)]),
        ..ObjectMeta::default()
    }
}

/// Names of the children.
pub mod names {
    use dbapi_crds::crd::DatabaseApi;
    use kube::ResourceExt;

    /// Deployment, Service, HPA and PDB of the runtime.
    pub fn api(api: &DatabaseApi) -> String {
        format!("{}-api", api.name_any())
    }
    /// ConfigMap (public part) and Secret (secret part) of the runtime
    /// configuration document.
    pub fn config(api: &DatabaseApi) -> String {
        format!("{}-api-config", api.name_any())
    }
    /// The Secret holding one API key.
    pub fn key_secret(api: &DatabaseApi, key: &str) -> String {
        format!("{}-key-{}", api.name_any(), key)
    }
    /// Deployment and Service of a managed Redis.
    pub fn cache(api: &DatabaseApi) -> String {
        format!("{}-cache", api.name_any())
    }
}

/// Database connections one runtime pod may open: the budget divided by
/// the most replicas the autoscaler can reach, at least one.
pub fn pool_per_replica(api: &DatabaseApi) -> u32 {
    let max = api.spec.runtime.replicas.max.max(1) as u32;
    (api.spec.database.pool.max_connections / max).max(1)
}

/// The in-cluster URL of the API.
pub fn service_url(api: &DatabaseApi) -> Option<String> {
    Some(format!("http://{}.{}.svc:{API_PORT}", names::api(api), api.namespace()?))
}

/// The type meta of a kube resource, for server-side apply bodies.
pub fn kind_of<K: Resource<DynamicType = ()>>() -> (String, String) {
    (K::api_version(&()).into_owned(), K::kind(&()).into_owned())
}
