//! The HorizontalPodAutoscaler and PodDisruptionBudget of the runtime.

use dbapi_crds::crd::DatabaseApi;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec,
    MetricSpec, MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{child_meta, kind_of, names, selector_labels};

/// Whether an autoscaler owns the Deployment's replica count: only when the
/// spec leaves it room (`replicas.min < replicas.max`).
pub fn autoscaled(api: &DatabaseApi) -> bool {
    let r = &api.spec.runtime.replicas;
    r.min < r.max
}

/// An `autoscaling/v2` autoscaler on average CPU utilization, or `None` when
/// the replica count is fixed (`replicas.min == replicas.max`).
pub fn hpa(api: &DatabaseApi) -> Option<HorizontalPodAutoscaler> {
    if !autoscaled(api) {
        return None;
    }
    let runtime = &api.spec.runtime;
    let (api_version, kind) = kind_of::<Deployment>();
    Some(HorizontalPodAutoscaler {
        metadata: child_meta(api, names::api(api), "api"),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some(api_version),
                kind,
                name: names::api(api),
            },
            min_replicas: Some(runtime.replicas.min),
            max_replicas: runtime.replicas.max,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(runtime.target_cpu_utilization_percentage),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            behavior: behavior(api),
        }),
        ..HorizontalPodAutoscaler::default()
    })
}

/// `spec.runtime.behavior`, with `scaleDownStabilizationSeconds` as the
/// scale-down window when the behavior sets none; `None` when neither is
/// set (the cluster's defaults).
fn behavior(api: &DatabaseApi) -> Option<HorizontalPodAutoscalerBehavior> {
    let runtime = &api.spec.runtime;
    let mut behavior = runtime.behavior.clone();
    if let Some(seconds) = runtime.scale_down_stabilization_seconds {
        let scale_down = behavior.get_or_insert_with(Default::default).scale_down.get_or_insert_with(Default::default);
        scale_down.stabilization_window_seconds.get_or_insert(seconds);
    }
    behavior
}

/// A `policy/v1` budget keeping one runtime pod up through voluntary
/// disruptions (node drains), or `None` when `replicas.min` is 1: a budget
/// on a single pod would block every drain.
///
/// Pods that are not ready may always be evicted, so a crash-looping
/// runtime never blocks a drain either.
pub fn pdb(api: &DatabaseApi) -> Option<PodDisruptionBudget> {
    if api.spec.runtime.replicas.min <= 1 {
        return None;
    }
    Some(PodDisruptionBudget {
        metadata: child_meta(api, names::api(api), "api"),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(api, "api")),
                ..LabelSelector::default()
            }),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".into()),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::test_fixtures::{fixed_single_replica, full, minimal};

    #[test]
    fn minimal_hpa_and_pdb() {
        let api = minimal();
        insta::assert_yaml_snapshot!("minimal_hpa", hpa(&api).expect("2..10 replicas are autoscaled"));
        insta::assert_yaml_snapshot!("minimal_pdb", pdb(&api).expect("min 2 gets a budget"));
    }

    #[test]
    fn full_hpa_and_pdb() {
        let api = full();
        insta::assert_yaml_snapshot!("full_hpa", hpa(&api).unwrap());
        insta::assert_yaml_snapshot!("full_pdb", pdb(&api).unwrap());
    }

    #[test]
    fn fixed_replicas_have_neither() {
        let api = fixed_single_replica();
        assert!(!autoscaled(&api));
        assert!(hpa(&api).is_none());
        assert!(pdb(&api).is_none());
        let mut three = api.clone();
        three.spec.runtime.replicas.min = 3;
        three.spec.runtime.replicas.max = 3;
        assert!(hpa(&three).is_none(), "min == max: no autoscaler");
        assert!(pdb(&three).is_some(), "three fixed replicas still get a budget");
    }
}
