//! `DatabaseApi` objects shared by the builders' snapshot tests, written as
//! the manifests a user applies so that the CRD's field names are exercised
//! too.

use dbapi_crds::crd::DatabaseApi;

use super::config::KeyMaterial;

const METADATA: &str = r#"
apiVersion: dbapi.dev/v1alpha1
kind: DatabaseApi
metadata:
  name: shop
  namespace: shop
  uid: 0000-uid
  generation: 3
"#;

fn parse(yaml: &str) -> DatabaseApi {
    serde_yaml::from_str(yaml).expect("fixture is a valid DatabaseApi")
}

/// Only what the CRD requires: everything else takes its default.
pub(crate) fn minimal() -> DatabaseApi {
    parse(&format!(
        "{METADATA}
spec:
  database:
    urlSecretRef: {{name: shop-db, key: url}}
"
    ))
}

/// Every request and connection limit set.
pub(crate) fn with_limits() -> DatabaseApi {
    parse(&format!(
        "{METADATA}
spec:
  database:
    urlSecretRef: {{name: shop-db, key: url}}
    statementTimeoutMs: 2500
    maxUrlBytes: 4096
    maxFilters: 30
    maxEmbeds: 5
    trustedProxies: [10.0.0.0/8, fd00::/8]
    clientIpHeader: X-Real-IP
    cors:
      allowedOrigins: [https://shop.example.com]
      allowedMethods: [GET, POST]
      allowCredentials: true
      maxAgeSeconds: 600
  server:
    headerReadTimeoutSeconds: 5
    requestTimeoutSeconds: 30
"
    ))
}

/// The spec fields after `cache:`, shared by the managed and external
/// variants.
const FULL_REST: &str = r#"
  rateLimit: {requestsPerMinute: 600, burst: 100}
  auth:
    jwt:
      secretRef: {name: shop-jwt, key: hmac}
      roleClaim: app_metadata.role
      audience: shop-api
      algorithms: [HS256, RS256]
      jwksUrl: https://id.example.com/.well-known/jwks.json
      jwksRefreshSeconds: 600
      issuer: https://id.example.com/
      leewaySeconds: 10
    anonymousRole: reader
    postgresRoles: true
  roles:
    - name: reader
      rules:
        - {tables: ["*"], verbs: [GET], functions: [search_*]}
    - name: support
      rateLimit: {requestsPerMinute: 120, burst: 20}
      maxRows: 500000
      rules:
        - tables: [orders]
          verbs: [GET, PATCH]
          columns: [status, note]
          rowFilter: region=eq.eu
        - {tables: [customers, "customer_*"], verbs: [GET]}
  apiKeys:
    - name: storefront
      role: reader
      expiresAt: "2027-01-01T00:00:00Z"
      rotation: 2
      rotationGracePeriodSeconds: 3600
      rateLimit: {requestsPerMinute: 1200, burst: 200}
    - name: support-desk
      role: support
      expiresAt: "2026-06-30T12:00:00Z"
      rateLimit: {requestsPerMinute: 60, burst: 10}
"#;

fn full_with_cache(cache: &str) -> DatabaseApi {
    parse(&format!(
        r#"{METADATA}  annotations:
    dbapi.dev/rotate-key-storefront: "2025-05-01"
spec:
  database:
    urlSecretRef: {{name: shop-db, key: url}}
    readReplicaUrlSecretRef: {{name: shop-db, key: replica-url}}
    readReplicaMaxLagSeconds: 5
    schemas: [public, reporting]
    tables: {{include: ["*"], exclude: [audit_log, "tmp_*"]}}
    pool: {{maxConnections: 40, acquireTimeoutSeconds: 3}}
    maxRows: 500
    maxBodyBytes: 1048576
    allowUnfilteredWrites: [scratch_*]
    pathPrefix: /rest/v1
    reload: {{notifyChannel: schema_changed, intervalSeconds: 600}}
    circuitFailureThreshold: 3
    circuitOpenSeconds: 10
    aggregates: true
  runtime:
    image: registry.example.com/dbapi-runtime:1.2.3
    replicas: {{min: 3, max: 8}}
    targetCPUUtilizationPercentage: 60
    scaleDownStabilizationSeconds: 120
    resources:
      requests: {{cpu: 250m, memory: 128Mi}}
      limits: {{cpu: "1", memory: 512Mi}}
    podLabels: {{team: storefront, tier: api}}
    podAnnotations: {{example.com/scrape: "true", dbapi.dev/config-checksum: ignored}}
    imagePullSecrets: [{{name: registry-login}}]
    nodeSelector: {{kubernetes.io/arch: amd64}}
    tolerations: [{{key: dedicated, operator: Equal, value: api, effect: NoSchedule}}]
    affinity:
      nodeAffinity:
        preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 50
            preference:
              matchExpressions: [{{key: node.example.com/pool, operator: In, values: [fast]}}]
    priorityClassName: api-critical
    behavior:
      scaleUp:
        stabilizationWindowSeconds: 0
        policies: [{{type: Percent, value: 100, periodSeconds: 15}}]
  server: {{requestTimeoutSeconds: 20}}
  networkPolicy:
    apiFrom:
      - namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: ingress-nginx}}}}
      - podSelector: {{matchLabels: {{app: storefront}}}}
    monitoringNamespace: monitoring
  observability: {{otlpEndpoint: "http://otel-collector.monitoring:4318", serverTiming: true}}
{cache}{FULL_REST}"#
    ))
}

/// Every spec field set, with an operator-managed cache.
pub(crate) fn full() -> DatabaseApi {
    full_with_cache("  cache:\n    managed: {memory: 512Mi}\n    defaultTTLSeconds: 60\n")
}

/// `full()` with an external Redis instead of a managed one.
pub(crate) fn full_external_cache() -> DatabaseApi {
    full_with_cache(
        "  cache:\n    external:\n      urlSecretRef: {name: shop-redis, key: url}\n    defaultTTLSeconds: 15\n",
    )
}

/// A fixed number of replicas: no autoscaler, no disruption budget.
pub(crate) fn fixed_single_replica() -> DatabaseApi {
    parse(&format!(
        "{METADATA}
spec:
  database:
    urlSecretRef: {{name: shop-db, key: url}}
  runtime:
    replicas: {{min: 1, max: 1}}
"
    ))
}

/// The key hashes the reconcile would read from the Secrets of `full()`:
/// `storefront` is mid-rotation, `support-desk` is not.
pub(crate) fn full_keys() -> Vec<KeyMaterial> {
    vec![
        KeyMaterial {
            name: "storefront".into(),
            sha256: "a".repeat(64),
            previous: Some(("b".repeat(64), "2025-05-02T10:00:00Z".into())),
        },
        KeyMaterial { name: "support-desk".into(), sha256: "c".repeat(64), previous: None },
    ]
}

/// Operator defaults with fixed images, so that snapshots do not change with
/// the crate version.
pub(crate) fn defaults() -> super::OperatorDefaults {
    super::OperatorDefaults {
        runtime_image: "ghcr.io/dbapi/dbapi-runtime:0.0.0-test".into(),
        redis_image: "redis:7.2-alpine".into(),
    }
}
