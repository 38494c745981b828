//! `spec.runtime`: the runtime Deployment, where its pods may run, and its
//! HorizontalPodAutoscaler.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use k8s_openapi::api::core::v1::{Affinity, LocalObjectReference, ResourceRequirements, Toleration};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The runtime Deployment and its HorizontalPodAutoscaler.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeSpec {
    /// Runtime image. Unset: the runtime of the operator's own version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub image: Option<String>,
    /// Autoscaling bounds.
    #[serde(default)]
    pub replicas: ReplicaRange,
    /// Average CPU utilization (percent of the CPU request) the
    /// HorizontalPodAutoscaler aims for.
    #[serde(default = "default_cpu_target")]
    #[serde(rename = "targetCPUUtilizationPercentage")]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: i32,
    /// Seconds the autoscaler waits before scaling down. Unset: the
    /// cluster's default, 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "i32", range(min = 0, max = 3600))]
    pub scale_down_stabilization_seconds: Option<i32>,
    /// CPU and memory requests and limits of each runtime container. The
    /// autoscaler needs a CPU request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "ResourceRequirements")]
    pub resources: Option<ResourceRequirements>,
    /// Extra labels for the runtime pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,
    /// Extra annotations for the runtime pods (a service mesh's, a log
    /// shipper's). The operator's own `dbapi.dev/config-checksum` wins.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,
    /// Secrets for pulling the runtime image (and the managed Redis's)
    /// from a private registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Node labels the runtime pods (and the managed Redis) must run on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the runtime pods (and the managed Redis) tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Affinity of the runtime pods. The operator already spreads them
    /// across nodes and zones (topology spread constraints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Affinity")]
    pub affinity: Option<Affinity>,
    /// PriorityClass of the runtime pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", length(max = 253))]
    pub priority_class_name: Option<String>,
    /// The autoscaler's scale-up and scale-down policies and stabilization
    /// windows, as in a HorizontalPodAutoscaler's `spec.behavior`.
    /// scaleDownStabilizationSeconds fills `scaleDown.stabilizationWindowSeconds`
    /// when this leaves it unset. Unset: the cluster's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "HorizontalPodAutoscalerBehavior")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
}

fn default_cpu_target() -> i32 {
    70
}

impl Default for RuntimeSpec {
    /// The same values as an absent `runtime` gets from the schema.
    fn default() -> Self {
        RuntimeSpec {
            image: None,
            replicas: ReplicaRange::default(),
            target_cpu_utilization_percentage: default_cpu_target(),
            scale_down_stabilization_seconds: None,
            resources: None,
            pod_labels: BTreeMap::new(),
            pod_annotations: BTreeMap::new(),
            image_pull_secrets: Vec::new(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            affinity: None,
            priority_class_name: None,
            behavior: None,
        }
    }
}

/// Bounds of the HorizontalPodAutoscaler: min must not exceed max.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.min <= self.max").message("replicas.min must not exceed replicas.max"))]
pub struct ReplicaRange {
    /// Fewest replicas (the HPA's minReplicas).
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1))]
    pub min: i32,
    /// Most replicas (the HPA's maxReplicas). It also divides
    /// database.pool.maxConnections among the pods.
    #[serde(default = "default_max_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub max: i32,
}

fn default_min_replicas() -> i32 {
    2
}

fn default_max_replicas() -> i32 {
    10
}

impl Default for ReplicaRange {
    fn default() -> Self {
        ReplicaRange { min: default_min_replicas(), max: default_max_replicas() }
    }
}

/// Traces of each request, exported by every runtime pod.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ObservabilitySpec {
    /// The OTLP/HTTP collector (`http://otel-collector.monitoring:4318`);
    /// traces go to its `/v1/traces`. Unset: no traces are exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub otlp_endpoint: Option<String>,
    /// A Server-Timing header on every answer: milliseconds spent in the
    /// database and in the runtime. Unset: off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub server_timing: bool,
}
