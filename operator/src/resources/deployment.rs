//! The runtime Deployment: hardened pods that read the database URL and other
//! secrets from environment variables and the configuration document from
//! the mounted ConfigMap and Secret.

use std::collections::BTreeMap;

use dbapi_crds::config::ServerSettings;
use dbapi_crds::crd::{DatabaseApi, SecretKeyRef};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, PodSpec, PodTemplateSpec,
    Probe, ResourceRequirements, SecretKeySelector, SecretVolumeSource, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::autoscaling::autoscaled;
use super::config::CONFIG_FILE;
use super::pod::{container_security_context, empty_dir, none_if_empty, pod_security_context};
use super::{ADMIN_PORT, API_PORT, OperatorDefaults, cache, child_meta, labels, names, selector_labels};

/// Pod template annotation holding [`super::config::config_checksum`].
pub const CONFIG_CHECKSUM_ANNOTATION: &str = "dbapi.dev/config-checksum";
/// The name of the runtime container.
pub const CONTAINER: &str = "runtime";
/// Where the ConfigMap (public part of the document) is mounted.
pub const CONFIG_DIR: &str = "/etc/dbapi/config";
/// Where the config Secret (API key hashes) is mounted.
pub const SECRET_DIR: &str = "/etc/dbapi/secret";
/// The user and group of the runtime image (distroless `nonroot`).
pub const RUNTIME_UID: i64 = 65532;

/// The runtime Deployment. `config_checksum` is the checksum of the public
/// configuration part; a change of it rolls the pods. The Secret part (API
/// keys) is reloaded by the runtime in place: both are mounted as whole
/// directories (never `subPath`, which kubelet does not update).
///
/// `spec.replicas` is left out when an autoscaler owns it (replicas.min <
/// replicas.max), so that applying the Deployment never fights the HPA;
/// otherwise it is the fixed count.
pub fn deployment(api: &DatabaseApi, defaults: &OperatorDefaults, config_checksum: &str) -> Deployment {
    let runtime = &api.spec.runtime;
    let selector = selector_labels(api, "api");

    // The operator's labels win over spec.runtime.podLabels: the selector
    // must keep matching.
    let mut pod_labels = runtime.pod_labels.clone();
    pod_labels.extend(labels(api, "api"));

    let mut pod_annotations = runtime.pod_annotations.clone();
    pod_annotations.insert(CONFIG_CHECKSUM_ANNOTATION.to_string(), config_checksum.to_string());

    let image = runtime.image.clone().filter(|i| !i.is_empty()).unwrap_or_else(|| defaults.runtime_image.clone());

    let container = Container {
        name: CONTAINER.into(),
        image: Some(image),
        args: Some(vec!["serve".into()]),
        ports: Some(vec![container_port("http", API_PORT), container_port("admin", ADMIN_PORT)]),
        env: Some(env(api)),
        volume_mounts: Some(vec![
            mount("config", CONFIG_DIR),
            mount("secret", SECRET_DIR),
            VolumeMount { name: "tmp".into(), mount_path: "/tmp".into(), ..VolumeMount::default() },
        ]),
        resources: Some(resources(api)),
        // /healthz answers once the schema is loaded and both ports are
        // bound; a large schema may take a while, and until then liveness
        // must not kill the pod.
        startup_probe: Some(Probe { period_seconds: Some(2), failure_threshold: Some(60), ..http_probe("/healthz") }),
        readiness_probe: Some(Probe { period_seconds: Some(5), failure_threshold: Some(2), ..http_probe("/readyz") }),
        liveness_probe: Some(Probe { period_seconds: Some(10), failure_threshold: Some(3), ..http_probe("/healthz") }),
        // No preStop pause: on SIGTERM the runtime itself turns unready and
        // keeps accepting for server.drainDelaySeconds.
        security_context: Some(container_security_context()),
        ..Container::default()
    };

    Deployment {
        metadata: child_meta(api, names::api(api), "api"),
        spec: Some(DeploymentSpec {
            replicas: (!autoscaled(api)).then_some(runtime.replicas.min),
            selector: LabelSelector { match_labels: Some(selector.clone()), ..LabelSelector::default() },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::String("25%".into())),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(vec![
                        Volume {
                            name: "config".into(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: names::config(api),
                                ..ConfigMapVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        Volume {
                            name: "secret".into(),
                            secret: Some(SecretVolumeSource {
                                secret_name: Some(names::config(api)),
                                // Owner and the pod's fsGroup only.
                                default_mode: Some(0o440),
                                ..SecretVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        empty_dir("tmp"),
                    ]),
                    security_context: Some(pod_security_context(RUNTIME_UID)),
                    topology_spread_constraints: Some(vec![TopologySpreadConstraint {
                        max_skew: 1,
                        topology_key: "kubernetes.io/hostname".into(),
                        when_unsatisfiable: "ScheduleAnyway".into(),
                        label_selector: Some(LabelSelector {
                            match_labels: Some(selector),
                            ..LabelSelector::default()
                        }),
                        // Spread each revision on its own during a rollout.
                        match_label_keys: Some(vec!["pod-template-hash".into()]),
                        ..TopologySpreadConstraint::default()
                    }]),
                    termination_grace_period_seconds: Some(termination_grace_seconds(api)),
                    image_pull_secrets: none_if_empty(runtime.image_pull_secrets.clone()),
                    node_selector: none_if_empty(runtime.node_selector.clone()),
                    tolerations: none_if_empty(runtime.tolerations.clone()),
                    affinity: runtime.affinity.clone(),
                    priority_class_name: runtime.priority_class_name.clone().filter(|p| !p.is_empty()),
                    automount_service_account_token: Some(false),
                    // No `<SERVICE>_PORT` variables: a Service named `dbapi`
                    // would otherwise inject `DBAPI_*` names.
                    enable_service_links: Some(false),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// Seconds Kubernetes waits after SIGTERM before killing a pod: the
/// runtime's drain delay (still accepting, readiness false), then its
/// shutdown grace for in-flight requests, then a little for the pool to
/// close.
fn termination_grace_seconds(api: &DatabaseApi) -> i64 {
    let d = ServerSettings::default();
    let server = api.spec.server.clone().unwrap_or_default();
    let drain = server.drain_delay_seconds.unwrap_or(d.drain_delay_seconds);
    let grace = server.shutdown_grace_seconds.unwrap_or(d.shutdown_grace_seconds);
    i64::try_from(drain.saturating_add(grace)).unwrap_or(i64::MAX / 2) + 5
}

/// The container's environment. Secrets are referenced, never copied.
fn env(api: &DatabaseApi) -> Vec<EnvVar> {
    let spec = &api.spec;
    let mut env = vec![from_secret("DBAPI_DATABASE_URL", &spec.database.url_secret_ref)];
    if let Some(replica) = &spec.database.read_replica_url_secret_ref {
        env.push(from_secret("DBAPI_READ_REPLICA_URL", replica));
    }
    if let Some(url) = cache::managed_redis_url(api) {
        env.push(from_secret("DBAPI_REDIS_URL", &url));
    } else if let Some(external) = spec.cache.as_ref().and_then(|c| c.external.as_ref()) {
        env.push(from_secret("DBAPI_REDIS_URL", &external.url_secret_ref));
    }
    if let Some(secret) = spec.auth.as_ref().and_then(|a| a.jwt.as_ref()).and_then(|j| j.secret_ref.as_ref()) {
        env.push(from_secret("DBAPI_JWT_SECRET", secret));
    }
    env.extend([
        value("DBAPI_LISTEN", &format!("0.0.0.0:{API_PORT}")),
        value("DBAPI_ADMIN_LISTEN", &format!("0.0.0.0:{ADMIN_PORT}")),
        value("DBAPI_CONFIG", &format!("{CONFIG_DIR}/{CONFIG_FILE},{SECRET_DIR}/{CONFIG_FILE}")),
        value("DBAPI_LOG_FORMAT", "json"),
    ]);
    env
}

/// `spec.runtime.resources`, or requests of 100m CPU and 64Mi memory with a
/// 256Mi memory limit. When an autoscaler scales on CPU utilization and the
/// spec sets no CPU at all, a 100m CPU request is added: without one the
/// HPA cannot compute utilization and never scales.
fn resources(api: &DatabaseApi) -> ResourceRequirements {
    let quantity = |q: &str| Quantity(q.into());
    let Some(mut resources) = api.spec.runtime.resources.clone() else {
        return ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), quantity("100m")),
                ("memory".to_string(), quantity("64Mi")),
            ])),
            limits: Some(BTreeMap::from([("memory".to_string(), quantity("256Mi"))])),
            ..ResourceRequirements::default()
        };
    };
    let has_cpu = |m: &Option<BTreeMap<String, Quantity>>| m.as_ref().is_some_and(|m| m.contains_key("cpu"));
    if autoscaled(api) && !has_cpu(&resources.requests) && !has_cpu(&resources.limits) {
        resources.requests.get_or_insert_with(BTreeMap::new).insert("cpu".into(), quantity("100m"));
    }
    resources
}

fn from_secret(name: &str, secret: &SecretKeyRef) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.name.clone(),
                key: secret.key.clone(),
                ..SecretKeySelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn value(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), ..EnvVar::default() }
}

fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

fn mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount { name: volume.into(), mount_path: path.into(), read_only: Some(true), ..VolumeMount::default() }
}

fn http_probe(path: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("admin".into()),
            ..HTTPGetAction::default()
        }),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::test_fixtures::{defaults, fixed_single_replica, full, full_external_cache, minimal};

    const CHECKSUM: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn env_of(d: &Deployment) -> Vec<EnvVar> {
        d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0].env.clone().unwrap()
    }

    #[test]
    fn minimal_deployment() {
        insta::assert_yaml_snapshot!("minimal_deployment", deployment(&minimal(), &defaults(), CHECKSUM));
    }

    #[test]
    fn full_deployment() {
        insta::assert_yaml_snapshot!("full_deployment", deployment(&full(), &defaults(), CHECKSUM));
    }

    #[test]
    fn external_cache_url_comes_from_its_secret() {
        let d = deployment(&full_external_cache(), &defaults(), CHECKSUM);
        let redis = env_of(&d).into_iter().find(|e| e.name == "DBAPI_REDIS_URL").unwrap();
        insta::assert_yaml_snapshot!("full_external_cache_redis_env", redis);
    }

    #[test]
    fn replicas_are_left_to_the_autoscaler() {
        assert_eq!(deployment(&full(), &defaults(), CHECKSUM).spec.unwrap().replicas, None);
        assert_eq!(deployment(&minimal(), &defaults(), CHECKSUM).spec.unwrap().replicas, None);
        assert_eq!(deployment(&fixed_single_replica(), &defaults(), CHECKSUM).spec.unwrap().replicas, Some(1));
    }

    #[test]
    fn pod_labels_cannot_break_the_selector() {
        let mut api = full();
        api.spec.runtime.pod_labels.insert("app.kubernetes.io/component".into(), "hijack".into());
        let d = deployment(&api, &defaults(), CHECKSUM).spec.unwrap();
        let pod_labels = d.template.metadata.unwrap().labels.unwrap();
        for (k, v) in d.selector.match_labels.unwrap() {
            assert_eq!(pod_labels.get(&k), Some(&v), "{k}");
        }
        assert_eq!(pod_labels.get("team").map(String::as_str), Some("storefront"));
    }

    #[test]
    fn an_empty_image_means_the_default() {
        let mut api = full();
        api.spec.runtime.image = Some(String::new());
        let custom = OperatorDefaults { runtime_image: "example/runtime:9".into(), ..defaults() };
        let d = deployment(&api, &custom, CHECKSUM).spec.unwrap();
        assert_eq!(d.template.spec.unwrap().containers[0].image.as_deref(), Some("example/runtime:9"));
    }

    #[test]
    fn an_autoscaled_runtime_always_requests_cpu() {
        let mut api = full();
        api.spec.runtime.resources = Some(ResourceRequirements {
            limits: Some(BTreeMap::from([("memory".to_string(), Quantity("1Gi".into()))])),
            ..ResourceRequirements::default()
        });
        let r = resources(&api);
        assert_eq!(r.requests.unwrap().get("cpu"), Some(&Quantity("100m".into())));
        assert_eq!(r.limits.unwrap().len(), 1);
    }

    #[test]
    fn a_jwks_url_alone_needs_no_jwt_secret() {
        let has_secret = |api: &DatabaseApi| {
            env_of(&deployment(api, &defaults(), CHECKSUM)).iter().any(|e| e.name == "DBAPI_JWT_SECRET")
        };
        let mut api = full();
        assert!(has_secret(&api));
        api.spec.auth.as_mut().unwrap().jwt.as_mut().unwrap().secret_ref = None;
        assert!(!has_secret(&api));
    }

    #[test]
    fn the_config_is_mounted_as_directories_kubelet_updates() {
        let d = deployment(&full(), &defaults(), CHECKSUM);
        let container = &d.spec.unwrap().template.spec.unwrap().containers[0];
        for dir in [CONFIG_DIR, SECRET_DIR] {
            let mount = container.volume_mounts.iter().flatten().find(|m| m.mount_path == dir).unwrap();
            assert_eq!(mount.sub_path, None, "a subPath mount is never updated: {dir}");
        }
    }

    #[test]
    fn the_minimal_runtime_gets_no_optional_secrets() {
        let names: Vec<_> =
            env_of(&deployment(&minimal(), &defaults(), CHECKSUM)).into_iter().map(|e| e.name).collect();
        assert_eq!(
            names,
            ["DBAPI_DATABASE_URL", "DBAPI_LISTEN", "DBAPI_ADMIN_LISTEN", "DBAPI_CONFIG", "DBAPI_LOG_FORMAT"]
        );
    }
}
