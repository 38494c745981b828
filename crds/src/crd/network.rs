//! `spec.networkPolicy`: who may reach the runtime pods and the managed
//! Redis.

use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// NetworkPolicies for the runtime pods and the managed Redis: Redis takes
/// connections from this API's runtime pods alone, the API port from
/// `apiFrom`, the admin port (metrics) from `monitoringNamespace`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Whether the operator creates the policies. Turn off on a cluster
    /// without a policy engine (they would do nothing) or that manages its
    /// own.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Who may call the API port, as NetworkPolicy peers (pod and namespace
    /// selectors, IP blocks). Empty: every pod of the DatabaseApi's
    /// namespace. An Ingress controller in another namespace needs a
    /// namespaceSelector here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub api_from: Vec<NetworkPolicyPeer>,
    /// The namespace whose pods may scrape the admin port (`/metrics`).
    /// Unset: no pod may reach it (kubelet probes are not subject to
    /// NetworkPolicies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", length(max = 63))]
    pub monitoring_namespace: Option<String>,
}

fn enabled() -> bool {
    true
}

impl Default for NetworkPolicySpec {
    /// The same as an absent `networkPolicy`: on, from the namespace.
    fn default() -> Self {
        NetworkPolicySpec { enabled: true, api_from: Vec::new(), monitoring_namespace: None }
    }
}
