//! NetworkPolicies around the runtime pods and the operator-run Redis
//! (`spec.networkPolicy`): Redis answers this API's runtime pods alone, the
//! API port answers `apiFrom` (default: the namespace), and the admin port
//! answers the monitoring namespace, if one is named.

use std::collections::BTreeMap;

use dbapi_crds::crd::DatabaseApi;
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{ADMIN_PORT, API_PORT, REDIS_PORT, cache, child_meta, names, selector_labels};

/// The label every namespace carries with its own name (Kubernetes 1.21+).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The runtime pods' policy, or `None` when `networkPolicy.enabled` is off.
pub fn api_policy(api: &DatabaseApi) -> Option<NetworkPolicy> {
    let spec = &api.spec.network_policy;
    if !spec.enabled {
        return None;
    }
    let callers = if spec.api_from.is_empty() {
        // Every pod of this namespace (an empty pod selector).
        vec![NetworkPolicyPeer { pod_selector: Some(LabelSelector::default()), ..NetworkPolicyPeer::default() }]
    } else {
        spec.api_from.clone()
    };
    let mut ingress = vec![rule(callers, API_PORT)];
    if let Some(monitoring) = &spec.monitoring_namespace {
        let namespace = LabelSelector {
            match_labels: Some(BTreeMap::from([(NAMESPACE_NAME_LABEL.to_string(), monitoring.clone())])),
            ..LabelSelector::default()
        };
        let scrapers = NetworkPolicyPeer { namespace_selector: Some(namespace), ..NetworkPolicyPeer::default() };
        ingress.push(rule(vec![scrapers], ADMIN_PORT));
    }
    Some(policy(api, names::api(api), "api", ingress))
}

/// The policy of the operator-run Redis, or `None` when there is none or
/// policies are off.
pub fn cache_policy(api: &DatabaseApi) -> Option<NetworkPolicy> {
    if !api.spec.network_policy.enabled || !cache::runs_redis(api) {
        return None;
    }
    let runtime_pods = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: Some(selector_labels(api, "api")),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    Some(policy(api, names::cache(api), "cache", vec![rule(vec![runtime_pods], REDIS_PORT)]))
}

/// Ingress to the pods of `component` only as `ingress` allows; egress is
/// left alone (the database may be anywhere).
fn policy(api: &DatabaseApi, name: String, component: &str, ingress: Vec<NetworkPolicyIngressRule>) -> NetworkPolicy {
    NetworkPolicy {
        metadata: child_meta(api, name, component),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(api, component)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(ingress),
            ..NetworkPolicySpec::default()
        }),
    }
}

fn rule(from: Vec<NetworkPolicyPeer>, port: i32) -> NetworkPolicyIngressRule {
    NetworkPolicyIngressRule {
        from: Some(from),
        ports: Some(vec![NetworkPolicyPort {
            port: Some(IntOrString::Int(port)),
            protocol: Some("TCP".into()),
            ..NetworkPolicyPort::default()
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::test_fixtures::{full, full_external_cache, minimal};

    #[test]
    fn minimal_policies() {
        // The API port open to the namespace, the admin port to nobody, no
        // Redis and so no policy for it.
        insta::assert_yaml_snapshot!("minimal_api_policy", api_policy(&minimal()).unwrap());
        assert!(cache_policy(&minimal()).is_none());
    }

    #[test]
    fn full_policies() {
        insta::assert_yaml_snapshot!("full_api_policy", api_policy(&full()).unwrap());
        insta::assert_yaml_snapshot!("full_cache_policy", cache_policy(&full()).unwrap());
    }

    #[test]
    fn an_external_redis_gets_no_policy_from_us() {
        assert!(cache_policy(&full_external_cache()).is_none());
        assert!(api_policy(&full_external_cache()).is_some());
    }

    #[test]
    fn policies_can_be_turned_off() {
        let mut api = full();
        api.spec.network_policy.enabled = false;
        assert!(api_policy(&api).is_none() && cache_policy(&api).is_none());
    }

    #[test]
    fn the_cache_admits_exactly_the_runtime_pods() {
        let api = full();
        let policy = cache_policy(&api).unwrap().spec.unwrap();
        let from = &policy.ingress.unwrap()[0].from.clone().unwrap()[0];
        let runtime_pods =
            crate::resources::deployment::deployment(&api, &crate::resources::test_fixtures::defaults(), "x")
                .spec
                .unwrap()
                .template
                .metadata
                .unwrap()
                .labels
                .unwrap();
        for (k, v) in from.pod_selector.as_ref().unwrap().match_labels.as_ref().unwrap() {
            assert_eq!(runtime_pods.get(k), Some(v), "{k}");
        }
        assert!(from.namespace_selector.is_none(), "only pods of this namespace");
    }
}
