//! The runtime configuration document (DESIGN §5), split in two: the public
//! part goes into a ConfigMap, the API key hashes into a Secret. The runtime
//! reads both files (`DBAPI_CONFIG=<configmap file>,<secret file>`) and
//! merges them key by key.
//!
//! Every field of the `DatabaseApi` spec that changes how the runtime
//! behaves has its home here or in the Deployment:
//!
//! | spec                                   | where                                             |
//! |----------------------------------------|---------------------------------------------------|
//! | database.urlSecretRef                  | env `DBAPI_DATABASE_URL` (Deployment)             |
//! | database.readReplicaUrlSecretRef       | env `DBAPI_READ_REPLICA_URL` (Deployment)         |
//! | database.readReplicaMaxLagSeconds      | `database.readReplica.maxLagSeconds`              |
//! | database.schemas / tables              | `database.schemas` / `database.tables`            |
//! | database.pool.maxConnections           | `database.pool.maxConnections` (per replica)      |
//! | database.pool.acquireTimeoutSeconds    | `database.pool.acquireTimeoutSeconds`             |
//! | database.maxRows                       | `api.maxRows`                                     |
//! | database.maxUrlBytes / maxFilters      | `api.maxUrlBytes` / `api.maxFilters`              |
//! | database.maxEmbeds / cors              | `api.maxEmbeds` / `api.cors`                      |
//! | database.aggregates                    | `api.aggregates`                                  |
//! | database.statementTimeoutMs            | `database.statementTimeoutMs`                     |
//! | database.circuitFailureThreshold / circuitOpenSeconds | `database.circuit.*`               |
//! | database.trustedProxies                | `api.trustedProxies`                              |
//! | database.clientIpHeader                | `api.clientIpHeader`                              |
//! | server.*                               | `server.*` (each unset field: the default)        |
//! | runtime.*                              | Deployment, HorizontalPodAutoscaler               |
//! | cache.managed / external               | env `DBAPI_REDIS_URL`, the cache Deployment       |
//! | cache.defaultTTLSeconds                | `cache.defaultTtlSeconds`                         |
//! | cache.tables / localTtlMillis          | `cache.tables` / `cache.localTtlMillis`           |
//! | cache.rpcInvalidates                   | `cache.rpcInvalidates`                            |
//! | rateLimit (any: spec, role or key)     | `rateLimit`; without cache, a Redis for the limiter |
//! | auth.jwt.secretRef                     | env `DBAPI_JWT_SECRET` (Deployment)               |
//! | auth.jwt.roleClaim / audience          | `auth.jwt.roleClaim` / `auth.jwt.audience`        |
//! | auth.jwt.algorithms / issuer           | `auth.jwt.algorithms` / `auth.jwt.issuer`         |
//! | auth.jwt.jwksUrl / jwksRefreshSeconds  | `auth.jwt.jwksUrl` / `auth.jwt.jwksRefreshSeconds`|
//! | auth.jwt.leewaySeconds                 | `auth.jwt.leewaySeconds`                          |
//! | auth.anonymousRole / postgresRoles     | `auth.anonymousRole` / `auth.postgresRoles`       |
//! | roles (rules[].functions, rateLimit, maxRows) | `roles`                                    |
//! | observability.otlpEndpoint / serverTiming | `observability.*`                              |
//! | (not in the CRD)                       | `auth.jwt.publicKeyFile` / `jwksFile`, `audit.path`: keys come from jwksUrl, audit lines go to stdout |
//! | apiKeys[].name / role / expiresAt      | `apiKeys[]` (Secret part)                         |
//! | apiKeys[].rateLimit                    | `apiKeys[].rateLimit` (Secret part)               |
//! | apiKeys[].rotation / grace period      | the operator: `apiKeys[].hashes[]` and `notAfter` |

use std::collections::BTreeMap;

use dbapi_crds::config::{
    ApiKey, ApiSettings, AuthSettings, CacheSettings, CircuitSettings, CorsSettings, DatabaseSettings, JwtSettings,
    KeyHash, ObservabilitySettings, PoolSettings, RateLimit, ReadReplicaSettings, ReloadSettings, Role, RoleRule,
    RuntimeConfig, ServerSettings,
};
use dbapi_crds::crd::{CorsSpec, DatabaseApi, RateLimitSpec, RoleSpec, RuleSpec, ServerSpec};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use sha2::{Digest, Sha256};

use super::{child_meta, names, pool_per_replica};

/// The file name of both parts, in the ConfigMap and in the Secret.
pub const CONFIG_FILE: &str = "config.yaml";

/// The hashes of one API key, as the reconcile read them from the key's
/// Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMaterial {
    /// `spec.apiKeys[].name`.
    pub name: String,
    /// SHA-256 (hex) of the current key.
    pub sha256: String,
    /// During a rotation: SHA-256 (hex) of the previous key and the RFC 3339
    /// time after which it is refused.
    pub previous: Option<(String, String)>,
}

/// The (public, secret) parts of the runtime configuration document.
///
/// The public part carries everything but the API keys; the secret part
/// carries only `apiKeys`. A key of the spec without an entry in `keys`
/// (its Secret is not written yet) is left out, so it is refused until its
/// hash is known; keys are matched by name and kept in spec order.
pub fn runtime_config(api: &DatabaseApi, keys: &[KeyMaterial]) -> (RuntimeConfig, RuntimeConfig) {
    let spec = &api.spec;
    let public = RuntimeConfig {
        database: DatabaseSettings {
            schemas: spec.database.schemas.clone(),
            tables: spec.database.tables.clone(),
            pool: PoolSettings {
                max_connections: pool_per_replica(api),
                acquire_timeout_seconds: spec.database.pool.acquire_timeout_seconds,
                ..PoolSettings::default()
            },
            reload: ReloadSettings {
                notify_channel: spec.database.reload.notify_channel.clone(),
                interval_seconds: spec.database.reload.interval_seconds,
            },
            statement_timeout_ms: spec.database.statement_timeout_ms,
            read_replica: ReadReplicaSettings {
                max_lag_seconds: spec
                    .database
                    .read_replica_max_lag_seconds
                    .unwrap_or(ReadReplicaSettings::default().max_lag_seconds),
            },
            circuit: {
                let d = CircuitSettings::default();
                CircuitSettings {
                    failure_threshold: spec.database.circuit_failure_threshold.unwrap_or(d.failure_threshold),
                    open_seconds: spec.database.circuit_open_seconds.unwrap_or(d.open_seconds),
                }
            },
        },
        api: api_settings(&spec.database),
        auth: spec.auth.as_ref().map(|auth| AuthSettings {
            // The HMAC secret reaches the pods as DBAPI_JWT_SECRET, never
            // through the ConfigMap.
            jwt: auth.jwt.as_ref().map(|jwt| JwtSettings {
                secret: None,
                role_claim: jwt.role_claim.clone(),
                audience: jwt.audience.clone(),
                algorithms: jwt.algorithms.clone(),
                // Files would need volumes; on Kubernetes keys come from a
                // JWKS URL.
                public_key_file: None,
                jwks_url: jwt.jwks_url.clone(),
                jwks_file: None,
                jwks_refresh_seconds: jwt.jwks_refresh_seconds,
                issuer: jwt.issuer.clone(),
                leeway_seconds: jwt.leeway_seconds,
            }),
            anonymous_role: auth.anonymous_role.clone(),
            postgres_roles: auth.postgres_roles,
        }),
        roles: spec.roles.iter().map(role).collect(),
        api_keys: Vec::new(),
        cache: spec.cache.as_ref().map(|cache| CacheSettings {
            default_ttl_seconds: cache.default_ttl_seconds,
            tables: cache.tables.clone(),
            local_ttl_millis: cache.local_ttl_millis.unwrap_or(CacheSettings::default().local_ttl_millis),
            rpc_invalidates: cache.rpc_invalidates.clone(),
        }),
        rate_limit: spec.rate_limit.as_ref().map(rate_limit),
        server: spec.server.as_ref().map(server).unwrap_or_default(),
        // Audit lines go to stdout with the logs, where the cluster collects
        // them; `audit.path` is not offered by the CRD.
        audit: None,
        observability: ObservabilitySettings {
            otlp_endpoint: spec.observability.as_ref().and_then(|o| o.otlp_endpoint.clone()),
            server_timing: spec.observability.as_ref().is_some_and(|o| o.server_timing),
        },
    };

    let by_name: BTreeMap<&str, &KeyMaterial> = keys.iter().map(|k| (k.name.as_str(), k)).collect();
    let api_keys = spec
        .api_keys
        .iter()
        .filter_map(|key| {
            let material = by_name.get(key.name.as_str())?;
            let mut hashes = vec![KeyHash { sha256: material.sha256.clone(), not_after: None }];
            if let Some((sha256, not_after)) = &material.previous {
                hashes.push(KeyHash { sha256: sha256.clone(), not_after: Some(not_after.clone()) });
            }
            Some(ApiKey {
                name: key.name.clone(),
                role: key.role.clone(),
                hashes,
                expires_at: key.expires_at.clone(),
                rate_limit: key.rate_limit.as_ref().map(rate_limit),
            })
        })
        .collect();
    let secret = RuntimeConfig { api_keys, ..RuntimeConfig::default() };
    (public, secret)
}

/// The API settings, which the spec keeps under `spec.database`; an unset
/// limit keeps the runtime's default.
fn api_settings(spec: &dbapi_crds::crd::DatabaseSpec) -> ApiSettings {
    let defaults = ApiSettings::default();
    ApiSettings {
        max_rows: spec.max_rows,
        max_body_bytes: spec.max_body_bytes,
        allow_unfiltered_writes: spec.allow_unfiltered_writes.clone(),
        path_prefix: spec.path_prefix.clone(),
        max_url_bytes: spec.max_url_bytes.unwrap_or(defaults.max_url_bytes),
        max_filters: spec.max_filters.unwrap_or(defaults.max_filters),
        max_embeds: spec.max_embeds.unwrap_or(defaults.max_embeds),
        cors: spec.cors.as_ref().map(cors).unwrap_or_default(),
        trusted_proxies: spec.trusted_proxies.clone(),
        client_ip_header: spec.client_ip_header.clone().unwrap_or(defaults.client_ip_header),
        aggregates: spec.aggregates,
    }
}

fn cors(spec: &CorsSpec) -> CorsSettings {
    let defaults = CorsSettings::default();
    CorsSettings {
        allowed_origins: if spec.allowed_origins.is_empty() {
            defaults.allowed_origins
        } else {
            spec.allowed_origins.clone()
        },
        allowed_methods: spec.allowed_methods.clone(),
        allowed_headers: spec.allowed_headers.clone(),
        allow_credentials: spec.allow_credentials,
        max_age_seconds: spec.max_age_seconds,
    }
}

fn server(spec: &ServerSpec) -> ServerSettings {
    let d = ServerSettings::default();
    ServerSettings {
        header_read_timeout_seconds: spec.header_read_timeout_seconds.unwrap_or(d.header_read_timeout_seconds),
        idle_timeout_seconds: spec.idle_timeout_seconds.unwrap_or(d.idle_timeout_seconds),
        request_timeout_seconds: spec.request_timeout_seconds.unwrap_or(d.request_timeout_seconds),
        max_connections: spec.max_connections.unwrap_or(d.max_connections),
        drain_delay_seconds: spec.drain_delay_seconds.unwrap_or(d.drain_delay_seconds),
        shutdown_grace_seconds: spec.shutdown_grace_seconds.unwrap_or(d.shutdown_grace_seconds),
    }
}

fn role(spec: &RoleSpec) -> Role {
    Role {
        name: spec.name.clone(),
        rules: spec.rules.iter().map(rule).collect(),
        rate_limit: spec.rate_limit.as_ref().map(rate_limit),
        max_rows: spec.max_rows,
    }
}

fn rule(spec: &RuleSpec) -> RoleRule {
    RoleRule {
        tables: spec.tables.clone(),
        verbs: spec.verbs.clone(),
        columns: spec.columns.clone(),
        row_filter: spec.row_filter.clone(),
        functions: spec.functions.clone(),
    }
}

fn rate_limit(spec: &RateLimitSpec) -> RateLimit {
    RateLimit { requests_per_minute: spec.requests_per_minute, burst: spec.burst }
}

/// The public part as YAML: the ConfigMap's `config.yaml` and the input of
/// [`config_checksum`].
pub fn public_yaml(public: &RuntimeConfig) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(public)
}

/// The secret part as YAML, with only the top-level keys that differ from
/// the defaults.
///
/// The runtime merges the two files key by key and the Secret's file comes
/// last, so a full serialization would put default `database` and `api`
/// sections over the ConfigMap's real ones (a pool of 10 instead of the
/// budget, for one).
pub fn secret_yaml(secret: &RuntimeConfig) -> Result<String, serde_yaml::Error> {
    let defaults = serde_yaml::to_value(RuntimeConfig::default())?;
    let mut value = serde_yaml::to_value(secret)?;
    if let (serde_yaml::Value::Mapping(map), serde_yaml::Value::Mapping(defaults)) = (&mut value, &defaults) {
        map.retain(|key, v| defaults.get(key) != Some(v));
    }
    serde_yaml::to_string(&value)
}

/// The ConfigMap holding the public part.
pub fn config_map(api: &DatabaseApi, public: &RuntimeConfig) -> Result<ConfigMap, serde_yaml::Error> {
    Ok(ConfigMap {
        metadata: child_meta(api, names::config(api), "config"),
        data: Some(BTreeMap::from([(CONFIG_FILE.to_string(), public_yaml(public)?)])),
        ..ConfigMap::default()
    })
}

/// The Secret holding the secret part (the API key hashes). Same name as the
/// ConfigMap.
pub fn config_secret(api: &DatabaseApi, secret: &RuntimeConfig) -> Result<Secret, serde_yaml::Error> {
    Ok(Secret {
        metadata: child_meta(api, names::config(api), "config"),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(CONFIG_FILE.to_string(), ByteString(secret_yaml(secret)?.into_bytes()))])),
        ..Secret::default()
    })
}

/// SHA-256 (hex) of the public part of the document, for the pod template
/// annotation `dbapi.dev/config-checksum`: a change of it rolls the pods.
///
/// The secret part (`apiKeys`: hashes, roles, expiry and rate limits of the
/// keys) is left out: the runtime watches its mounted Secret and reloads
/// keys in place, so creating, rotating or revoking a key restarts no pod.
/// The public part stays in: most of it (database, api, server, rateLimit)
/// is read once at start-up. Its reloadable keys (`roles`, `auth`) roll
/// the pods too, which is harmless and keeps this one rule simple.
pub fn config_checksum(public: &RuntimeConfig) -> String {
    let public = public_yaml(public).expect("the runtime configuration document always serializes to YAML");
    hex(&Sha256::digest(public.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use dbapi_crds::config::parse_runtime_config_parts;

    use super::*;
    use crate::resources::test_fixtures::{full, full_external_cache, full_keys, minimal, with_limits};

    fn parts(api: &DatabaseApi, keys: &[KeyMaterial]) -> (String, String) {
        let (public, secret) = runtime_config(api, keys);
        (public_yaml(&public).unwrap(), secret_yaml(&secret).unwrap())
    }

    // The parts are pinned as the files the runtime reads.
    #[test]
    fn minimal_runtime_config() {
        let (public, secret) = parts(&minimal(), &[]);
        insta::assert_snapshot!("minimal_public", public);
        insta::assert_snapshot!("minimal_secret", secret);
    }

    #[test]
    fn full_runtime_config() {
        let (public, secret) = parts(&full(), &full_keys());
        insta::assert_snapshot!("full_public", public);
        insta::assert_snapshot!("full_secret", secret);
    }

    #[test]
    fn full_config_objects() {
        let api = full();
        let (public, secret) = runtime_config(&api, &full_keys());
        let config_map = config_map(&api, &public).unwrap();
        let config_secret = config_secret(&api, &secret).unwrap();
        let (public_file, secret_file) = parts(&api, &full_keys());
        assert_eq!(config_map.data.as_ref().unwrap()[CONFIG_FILE], public_file);
        assert_eq!(config_secret.data.as_ref().unwrap()[CONFIG_FILE].0, secret_file.as_bytes());
        insta::assert_yaml_snapshot!("full_config_map", config_map);
        insta::assert_yaml_snapshot!("full_config_secret", config_secret);
    }

    #[test]
    fn the_replica_lag_bound_reaches_the_document() {
        let (public, _) = runtime_config(&full(), &[]);
        assert_eq!(public.database.read_replica.max_lag_seconds, 5);
        let (public, _) = runtime_config(&minimal(), &[]);
        assert_eq!(public.database.read_replica, ReadReplicaSettings::default());
    }

    #[test]
    fn limits_reach_the_document_and_unset_ones_keep_their_defaults() {
        let (public, _) = runtime_config(&with_limits(), &[]);
        assert_eq!(public.database.statement_timeout_ms, Some(2500));
        assert_eq!((public.api.max_url_bytes, public.api.max_filters, public.api.max_embeds), (4096, 30, 5));
        assert_eq!(public.api.cors.allowed_origins, ["https://shop.example.com"]);
        assert_eq!(public.api.cors.allowed_methods, ["GET", "POST"]);
        assert!(public.api.cors.allowed_headers.is_empty());
        assert!(public.api.cors.allow_credentials);
        assert_eq!(public.api.cors.max_age_seconds, Some(600));
        assert_eq!(public.api.trusted_proxies, ["10.0.0.0/8", "fd00::/8"]);
        assert_eq!(public.api.client_ip_header, "X-Real-IP");
        let defaults = ServerSettings::default();
        assert_eq!(
            public.server,
            ServerSettings { header_read_timeout_seconds: 5, request_timeout_seconds: 30, ..defaults }
        );
        let (a, b) = parts(&with_limits(), &[]);
        assert_eq!(parse_runtime_config_parts(&[&a, &b]).unwrap(), public);
        // Unset, they stay out of the document (and out of its checksum).
        let (minimal_public, _) = parts(&minimal(), &[]);
        assert!(!minimal_public.contains("server") && !minimal_public.contains("cors"), "{minimal_public}");
        assert!(!minimal_public.contains("trustedProxies") && !minimal_public.contains("clientIpHeader"));
        assert!(!minimal_public.contains("readReplica"), "{minimal_public}");
    }

    #[test]
    fn external_cache_config_is_the_same_document() {
        let (public, _) = runtime_config(&full_external_cache(), &[]);
        assert_eq!(public.cache, Some(CacheSettings { default_ttl_seconds: 15, ..CacheSettings::default() }));
    }

    #[test]
    fn the_runtime_reads_back_exactly_the_document() {
        for (api, keys) in [(minimal(), vec![]), (full(), full_keys())] {
            let (public, secret) = runtime_config(&api, &keys);
            let (a, b) = parts(&api, &keys);
            let merged = parse_runtime_config_parts(&[&a, &b]).unwrap();
            assert_eq!(merged, RuntimeConfig { api_keys: secret.api_keys, ..public });
        }
    }

    #[test]
    fn the_secret_part_never_overrides_the_public_one() {
        let (_, secret) = parts(&full(), &full_keys());
        let value: serde_yaml::Value = serde_yaml::from_str(&secret).unwrap();
        let keys: Vec<_> = value.as_mapping().unwrap().keys().filter_map(|k| k.as_str()).collect();
        assert_eq!(keys, ["apiKeys"]);
        let (_, none) = parts(&minimal(), &[]);
        assert_eq!(none.trim(), "{}");
    }

    #[test]
    fn the_public_part_holds_no_secret() {
        let (public, _) = parts(&full(), &full_keys());
        assert!(!public.contains("secret"), "{public}");
        assert!(!public.contains(&"a".repeat(64)), "{public}");
        assert!(!public.contains("apiKeys"), "{public}");
    }

    #[test]
    fn keys_are_matched_by_name_and_missing_ones_left_out() {
        let mut keys = full_keys();
        keys.reverse();
        let (_, secret) = runtime_config(&full(), &keys);
        let names: Vec<_> = secret.api_keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["storefront", "support-desk"]);
        let (_, secret) = runtime_config(&full(), &keys[..1]);
        let names: Vec<_> = secret.api_keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["support-desk"]);
    }

    fn checksum(api: &DatabaseApi, keys: &[KeyMaterial]) -> String {
        config_checksum(&runtime_config(api, keys).0)
    }

    #[test]
    fn key_material_does_not_roll_the_pods() {
        let api = full();
        let with_keys = checksum(&api, &full_keys());
        assert_eq!(with_keys.len(), 64);
        // No key written yet, a rotation, another hash: the same checksum.
        assert_eq!(with_keys, checksum(&api, &[]));
        let mut rotated = full_keys();
        rotated[1].previous = Some((rotated[1].sha256.clone(), "2030-01-01T00:00:00Z".into()));
        rotated[1].sha256 = "d".repeat(64);
        assert_eq!(with_keys, checksum(&api, &rotated));
        // Nor does a key's own setting: the runtime reloads `apiKeys` whole.
        let mut revoked = api.clone();
        revoked.spec.api_keys.pop();
        revoked.spec.api_keys[0].expires_at = Some("2026-12-31T00:00:00Z".into());
        assert_ne!(runtime_config(&api, &full_keys()).1, runtime_config(&revoked, &full_keys()).1);
        assert_eq!(with_keys, checksum(&revoked, &full_keys()));
    }

    #[test]
    fn the_public_part_rolls_the_pods() {
        let api = full();
        let before = checksum(&api, &full_keys());
        let mut role = api.clone();
        role.spec.roles[1].rules[0].verbs.push("DELETE".into());
        assert_ne!(before, checksum(&role, &full_keys()), "a role change");
        let mut max_rows = api.clone();
        max_rows.spec.database.max_rows += 1;
        assert_ne!(before, checksum(&max_rows, &full_keys()), "a restart-only setting");
        insta::assert_snapshot!("full_checksum", before);
    }

    #[test]
    fn the_pool_is_divided_by_the_most_replicas() {
        let (public, _) = runtime_config(&full(), &[]);
        assert_eq!(public.database.pool.max_connections, 40 / 8);
        let (public, _) = runtime_config(&minimal(), &[]);
        assert_eq!(public.database.pool.max_connections, 20 / 10);
    }
}
