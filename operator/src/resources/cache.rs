//! The operator-managed Redis (`spec.cache.managed`, or the limiter's own
//! when rate limits are set without a cache): a single-replica, memory-only
//! store. Losing it loses cached responses and rate-limit counters, never
//! data, so it keeps no snapshot and no append-only file.

use std::collections::BTreeMap;

use dbapi_crds::crd::{DatabaseApi, SecretKeyRef};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, KeyToPath, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, Secret,
    SecretVolumeSource, Service, ServicePort, ServiceSpec, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::{container_security_context, empty_dir, none_if_empty, pod_security_context};
use super::{OperatorDefaults, REDIS_PORT, child_meta, labels, names, selector_labels};

/// The `redis` user of the official image.
pub const REDIS_UID: i64 = 999;

/// `cache.managed.memory` is not a memory quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cache.managed.memory {0:?} is not a memory quantity such as 256Mi, 1Gi or 500M")]
pub struct InvalidQuantity(pub String);

/// The memory of the Redis a rate limiter needs when no cache is set: its
/// keys are one small counter per caller.
pub const LIMITER_MEMORY: &str = "64Mi";

/// Whether any rate limit is set: the document's, a role's or a key's.
pub fn rate_limited(api: &DatabaseApi) -> bool {
    let spec = &api.spec;
    spec.rate_limit.is_some()
        || spec.roles.iter().any(|r| r.rate_limit.is_some())
        || spec.api_keys.iter().any(|k| k.rate_limit.is_some())
}

/// The memory of the Redis the operator runs, if it runs one: the managed
/// cache's, or when rate limits are set without any cache, a small one of
/// its own, so that every replica counts against one shared budget instead
/// of each pod limiting by itself.
fn managed_memory(api: &DatabaseApi) -> Option<&str> {
    match &api.spec.cache {
        Some(cache) => cache.managed.as_ref().map(|m| m.memory.as_str()),
        None if rate_limited(api) => Some(LIMITER_MEMORY),
        None => None,
    }
}

/// Whether the operator runs a Redis for this API.
pub fn runs_redis(api: &DatabaseApi) -> bool {
    managed_memory(api).is_some()
}

/// The data key of the Redis password in the cache Secret.
pub const PASSWORD_DATA: &str = "password";
/// The data key of the runtime's `DBAPI_REDIS_URL` (password included).
pub const URL_DATA: &str = "url";
/// The data key of the Redis configuration file holding `requirepass`, so
/// the password is in no process's arguments.
const CONF_DATA: &str = "redis.conf";
/// Where the Redis container reads [`CONF_DATA`].
const CONF_DIR: &str = "/etc/dbapi-redis";

/// Where the runtime finds the URL of the operator-run Redis: the cache
/// Secret, or `None` when the Redis is external or there is none.
pub fn managed_redis_url(api: &DatabaseApi) -> Option<SecretKeyRef> {
    runs_redis(api).then(|| SecretKeyRef { name: names::cache(api), key: URL_DATA.into() })
}

/// The password of an existing cache Secret, if it holds one: it is
/// generated once and kept, like API keys.
pub fn existing_password(secret: &Secret) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(PASSWORD_DATA)?;
    String::from_utf8(bytes.0.clone()).ok().filter(|p| !p.is_empty())
}

/// The cache Secret: the Redis password, the URL the runtime connects
/// with, and the Redis configuration that requires the password. Only the
/// operator-run Redis has one.
pub fn cache_secret(api: &DatabaseApi, password: &str) -> Secret {
    let url = format!("redis://:{password}@{}:{REDIS_PORT}", names::cache(api));
    let data =
        [(PASSWORD_DATA, password.to_string()), (URL_DATA, url), (CONF_DATA, format!("requirepass {password}\n"))];
    Secret {
        metadata: child_meta(api, names::cache(api), "cache"),
        type_: Some("Opaque".into()),
        data: Some(data.into_iter().map(|(k, v)| (k.to_string(), ByteString(v.into_bytes()))).collect()),
        ..Secret::default()
    }
}

/// The Redis Deployment the operator runs (see `managed_memory`); `Ok(None)`
/// when the Redis is external or there is none, an error when `cache.managed.memory` is not a
/// quantity (the reconcile reports it rather than guessing a size).
///
/// Redis gets `--maxmemory` of exactly the quantity, which is also the
/// container's memory request and limit, and evicts least recently used
/// keys when full.
pub fn cache_deployment(api: &DatabaseApi, defaults: &OperatorDefaults) -> Result<Option<Deployment>, InvalidQuantity> {
    let Some(memory) = managed_memory(api) else { return Ok(None) };
    let maxmemory = quantity_bytes(memory)?;
    let memory = Quantity(memory.trim().to_string());
    let selector = selector_labels(api, "cache");
    let runtime = &api.spec.runtime;

    let probe = |period: i32, failures: i32| Probe {
        tcp_socket: Some(TCPSocketAction { port: IntOrString::String("redis".into()), ..TCPSocketAction::default() }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    };
    let container = Container {
        name: "redis".into(),
        image: Some(defaults.redis_image.clone()),
        command: Some(vec!["redis-server".into()]),
        args: Some(
            [
                &format!("{CONF_DIR}/{CONF_DATA}"),
                "--maxmemory",
                &maxmemory.to_string(),
                "--maxmemory-policy",
                "allkeys-lru",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                "/data",
                // Reachable only through its Service; the official image
                // turns protected mode off too, other images may not.
                "--protected-mode",
                "no",
            ]
            .map(String::from)
            .to_vec(),
        ),
        ports: Some(vec![ContainerPort {
            name: Some("redis".into()),
            container_port: REDIS_PORT,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("50m".into())),
                ("memory".to_string(), memory.clone()),
            ])),
            limits: Some(BTreeMap::from([("memory".to_string(), memory)])),
            ..ResourceRequirements::default()
        }),
        readiness_probe: Some(probe(5, 2)),
        liveness_probe: Some(Probe { initial_delay_seconds: Some(5), ..probe(10, 3) }),
        volume_mounts: Some(vec![
            VolumeMount { name: "data".into(), mount_path: "/data".into(), ..Default::default() },
            VolumeMount {
                name: "auth".into(),
                mount_path: CONF_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            },
        ]),
        security_context: Some(container_security_context()),
        ..Container::default()
    };

    Ok(Some(Deployment {
        metadata: child_meta(api, names::cache(api), "cache"),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector { match_labels: Some(selector), ..LabelSelector::default() },
            // Never two caches at once: the memory is budgeted for one.
            strategy: Some(DeploymentStrategy { type_: Some("Recreate".into()), ..DeploymentStrategy::default() }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels(api, "cache")), ..ObjectMeta::default() }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(vec![
                        empty_dir("data"),
                        Volume {
                            name: "auth".into(),
                            secret: Some(SecretVolumeSource {
                                secret_name: Some(names::cache(api)),
                                items: Some(vec![KeyToPath {
                                    key: CONF_DATA.into(),
                                    path: CONF_DATA.into(),
                                    mode: None,
                                }]),
                                // Owner and the pod's fsGroup only.
                                default_mode: Some(0o440),
                                ..SecretVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                    ]),
                    security_context: Some(pod_security_context(REDIS_UID)),
                    // Where the runtime pods may run, so may their Redis.
                    image_pull_secrets: none_if_empty(runtime.image_pull_secrets.clone()),
                    node_selector: none_if_empty(runtime.node_selector.clone()),
                    tolerations: none_if_empty(runtime.tolerations.clone()),
                    termination_grace_period_seconds: Some(30),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }))
}

/// The Service of an operator-run Redis (`redis://<name>:6379`), or `None`
/// when the Redis is external or there is none.
pub fn cache_service(api: &DatabaseApi) -> Option<Service> {
    managed_memory(api)?;
    Some(Service {
        metadata: child_meta(api, names::cache(api), "cache"),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(api, "cache")),
            ports: Some(vec![ServicePort {
                name: Some("redis".into()),
                port: REDIS_PORT,
                target_port: Some(IntOrString::String("redis".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

/// Bytes of a Kubernetes memory quantity: a decimal number with a binary
/// (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`) or decimal (`k`, `M`, `G`, `T`, `P`,
/// `E`) suffix, a decimal exponent (`1e9`) or none. Fractions of a byte are
/// rounded up, as Kubernetes does; zero, negative and malformed quantities
/// are refused.
pub fn quantity_bytes(quantity: &str) -> Result<u64, InvalidQuantity> {
    let invalid = || InvalidQuantity(quantity.to_string());
    let q = quantity.trim();
    let q = q.strip_prefix('+').unwrap_or(q);
    let split = q.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(invalid());
    }
    // number = digits / 10^decimals, exactly.
    let digits: u128 = format!("{whole}{fraction}").parse().map_err(|_| invalid())?;
    let decimals = u32::try_from(fraction.len()).map_err(|_| invalid())?;
    let (mut numerator, mut denominator) = (digits, 10u128.checked_pow(decimals).ok_or_else(invalid)?);
    let power = |base: u128, exp: u32| base.checked_pow(exp).ok_or_else(invalid);
    match suffix {
        "" => {}
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let exp = 1 + "KMGTPE".find(&suffix[..1]).expect("matched above") as u32;
            numerator = numerator.checked_mul(power(1024, exp)?).ok_or_else(invalid)?;
        }
        "k" | "M" | "G" | "T" | "P" | "E" => {
            let exp = 1 + "kMGTPE".find(suffix).expect("matched above") as u32;
            numerator = numerator.checked_mul(power(1000, exp)?).ok_or_else(invalid)?;
        }
        "m" => denominator = denominator.checked_mul(1000).ok_or_else(invalid)?,
        s if s.starts_with(['e', 'E']) && s.len() > 1 => {
            let exp: i32 = s[1..].parse().map_err(|_| invalid())?;
            let scale = power(10, exp.unsigned_abs())?;
            if exp >= 0 {
                numerator = numerator.checked_mul(scale).ok_or_else(invalid)?;
            } else {
                denominator = denominator.checked_mul(scale).ok_or_else(invalid)?;
            }
        }
        _ => return Err(invalid()),
    }
    let bytes = numerator.div_ceil(denominator);
    match u64::try_from(bytes) {
        Ok(0) | Err(_) => Err(invalid()),
        Ok(bytes) => Ok(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::test_fixtures::{defaults, full, full_external_cache, minimal};

    #[test]
    fn quantities_in_bytes() {
        let cases = [
            ("256Mi", 268_435_456),
            ("1Gi", 1_073_741_824),
            ("1.5Gi", 1_610_612_736),
            ("64Ki", 65_536),
            ("500M", 500_000_000),
            ("2G", 2_000_000_000),
            ("100k", 100_000),
            ("1048576", 1_048_576),
            ("1e9", 1_000_000_000),
            ("+1Ti", 1_099_511_627_776),
            (" 512Mi ", 536_870_912),
            (".5Ki", 512),
            ("1500m", 2),
        ];
        for (q, bytes) in cases {
            assert_eq!(quantity_bytes(q), Ok(bytes), "{q}");
        }
        for bad in ["", "Mi", "-1Gi", "0", "0Mi", "1.2.3Gi", "256MB", "256mi", "1Zi", "abc", "1e", "99999999Ei"] {
            assert!(quantity_bytes(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn full_cache() {
        let api = full();
        insta::assert_yaml_snapshot!("full_cache_deployment", cache_deployment(&api, &defaults()).unwrap().unwrap());
        insta::assert_yaml_snapshot!("full_cache_service", cache_service(&api).unwrap());
    }

    #[test]
    fn no_managed_cache_no_objects() {
        for api in [minimal(), full_external_cache()] {
            assert_eq!(cache_deployment(&api, &defaults()), Ok(None));
            assert!(cache_service(&api).is_none());
        }
    }

    /// `full()` without its cache: its document, keys and roles still set
    /// rate limits.
    fn rate_limited_without_cache() -> DatabaseApi {
        let mut api = full();
        api.spec.cache = None;
        api
    }

    #[test]
    fn rate_limits_without_a_cache_get_a_small_redis_of_their_own() {
        let api = rate_limited_without_cache();
        let deployment = cache_deployment(&api, &defaults()).unwrap().expect("a Redis for the limiter");
        let container = &deployment.spec.unwrap().template.spec.unwrap().containers[0];
        let limits = container.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits["memory"], Quantity(LIMITER_MEMORY.into()));
        let args = container.args.as_ref().unwrap();
        let maxmemory = args.iter().position(|a| a == "--maxmemory").unwrap() + 1;
        assert_eq!(args[maxmemory], quantity_bytes(LIMITER_MEMORY).unwrap().to_string());
        assert!(cache_service(&api).is_some());
        let url = managed_redis_url(&api).expect("the runtime gets the Redis URL");
        assert_eq!((url.name.as_str(), url.key.as_str()), ("shop-cache", URL_DATA));
    }

    #[test]
    fn each_kind_of_rate_limit_asks_for_the_shared_redis() {
        let mut api = rate_limited_without_cache();
        api.spec.rate_limit = None;
        api.spec.roles.iter_mut().for_each(|r| r.rate_limit = None);
        api.spec.api_keys.iter_mut().for_each(|k| k.rate_limit = None);
        assert!(!rate_limited(&api));
        assert_eq!(cache_deployment(&api, &defaults()), Ok(None));
        assert_eq!(managed_redis_url(&api), None);

        let mut keyed = api.clone();
        keyed.spec.api_keys[0].rate_limit = full().spec.rate_limit;
        let mut roled = api.clone();
        roled.spec.roles[0].rate_limit = full().spec.rate_limit;
        let mut document = api.clone();
        document.spec.rate_limit = full().spec.rate_limit;
        for limited in [keyed, roled, document] {
            assert!(rate_limited(&limited));
            assert!(cache_service(&limited).is_some());
        }
    }

    #[test]
    fn an_external_cache_is_the_limiters_redis_too() {
        let api = full_external_cache();
        assert!(rate_limited(&api));
        assert_eq!(cache_deployment(&api, &defaults()), Ok(None));
        assert_eq!(managed_redis_url(&api), None);
    }

    #[test]
    fn the_secret_holds_the_password_the_url_and_the_redis_config() {
        let secret = cache_secret(&full(), "dbapi_pw");
        insta::assert_yaml_snapshot!("full_cache_secret", secret);
        assert_eq!(existing_password(&secret).as_deref(), Some("dbapi_pw"));
        // The password is never in the Deployment, only a reference to
        // the Secret's configuration file.
        let deployment = serde_json::to_string(&cache_deployment(&full(), &defaults()).unwrap()).unwrap();
        assert!(!deployment.contains("dbapi_pw") && deployment.contains("redis.conf"), "{deployment}");
        let empty = Secret { data: Some([(PASSWORD_DATA.to_string(), ByteString(vec![]))].into()), ..secret };
        assert_eq!(existing_password(&empty), None, "an empty password is replaced");
    }

    #[test]
    fn a_bad_memory_quantity_is_an_error() {
        let mut api = full();
        api.spec.cache.as_mut().unwrap().managed.as_mut().unwrap().memory = "lots".into();
        let err = cache_deployment(&api, &defaults()).unwrap_err();
        assert!(err.to_string().contains("\"lots\""), "{err}");
    }
}
