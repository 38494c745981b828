//! The reconcile loop against a mocked API server (see `fake_api`): what it
//! applies, deletes and writes to status, and what it leaves alone.

mod fake_api;

use std::sync::Arc;

use dbapi_crds::crd::DatabaseApi;
use dbapi_operator::metrics::Metrics;
use dbapi_operator::reconcile::{Context, error_policy, reconcile};
use dbapi_operator::resources::OperatorDefaults;
use fake_api::FakeApi;
use http::Method;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::Reporter;
use serde_json::{Value, json};

const NS: &str = "shop";
const APIS: &str = "/apis/dbapi.dev/v1alpha1/namespaces/shop/databaseapis";
const SECRETS: &str = "/api/v1/namespaces/shop/secrets";
const CONFIGMAPS: &str = "/api/v1/namespaces/shop/configmaps";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/shop/deployments";
const SERVICES: &str = "/api/v1/namespaces/shop/services";
const HPAS: &str = "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers";
const PDBS: &str = "/apis/policy/v1/namespaces/shop/poddisruptionbudgets";

fn now() -> Timestamp {
    "2026-11-28T12:00:00Z".parse().unwrap()
}

fn later() -> Timestamp {
    "2026-11-30T12:00:00Z".parse().unwrap()
}

/// A DatabaseApi as the API server would hold it, with `spec` merged in.
fn database_api(spec: Value) -> Value {
    let mut base = json!({
        "apiVersion": "dbapi.dev/v1alpha1",
        "kind": "DatabaseApi",
        "metadata": {"name": "shop", "namespace": NS, "uid": "uid-shop", "generation": 3},
        "spec": {
            "database": {"urlSecretRef": {"name": "shop-db", "key": "url"}},
            "runtime": {"replicas": {"min": 2, "max": 10}},
            "roles": [{"name": "reader", "rules": [{"tables": ["*"], "verbs": ["GET"]}]}],
            "apiKeys": [{"name": "storefront", "role": "reader"}]
        }
    });
    for (k, v) in spec.as_object().unwrap() {
        base["spec"][k] = v.clone();
    }
    base
}

fn database_secret() -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shop-db", "namespace": NS},
           "data": {"url": "cG9zdGdyZXM6Ly9kYi9zaG9w"}})
}

/// Stores `object` as the DatabaseApi and reconciles it once, as the
/// controller would after a watch event.
async fn reconcile_stored(fake: &FakeApi, clock: fn() -> Timestamp) -> Result<(), String> {
    let current: DatabaseApi = serde_json::from_value(fake.get(APIS, "shop").unwrap()).unwrap();
    let reporter = Reporter { controller: "dbapi-operator".into(), instance: None };
    let ctx = Context::new(fake.client(), OperatorDefaults::default(), reporter, Arc::new(Metrics::default()))
        .with_clock(clock);
    reconcile(Arc::new(current), Arc::new(ctx)).await.map(drop).map_err(|e| e.to_string())
}

fn status_of(fake: &FakeApi) -> Value {
    fake.get(APIS, "shop").unwrap()["status"].clone()
}

fn condition(status: &Value, type_: &str) -> Value {
    status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == type_).cloned().unwrap()
}

fn key_of(fake: &FakeApi, key: &str) -> String {
    let secret = fake.get(SECRETS, &format!("shop-key-{key}")).expect("the key Secret exists");
    secret["data"]["key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn first_reconcile_applies_every_child_and_writes_status() {
    let fake = FakeApi::default();
    fake.put(SECRETS, database_secret());
    fake.put(APIS, database_api(json!({})));
    reconcile_stored(&fake, now).await.unwrap();

    for (collection, name) in [
        (CONFIGMAPS, "shop-api-config"),
        (SECRETS, "shop-api-config"),
        (SECRETS, "shop-key-storefront"),
        (DEPLOYMENTS, "shop-api"),
        (SERVICES, "shop-api"),
        (HPAS, "shop-api"),
        (PDBS, "shop-api"),
    ] {
        let child = fake.get(collection, name).unwrap_or_else(|| panic!("{collection}/{name} was not created"));
        let owner = &child["metadata"]["ownerReferences"][0];
        assert_eq!(owner["uid"], "uid-shop", "{name} is owned by the DatabaseApi");
        assert_eq!(owner["controller"], true);
        assert_eq!(child["metadata"]["labels"]["app.kubernetes.io/managed-by"], "dbapi-operator");
    }
    // Applied with server-side apply, the key created once.
    assert_eq!(fake.count(Method::PATCH, "/deployments/shop-api"), 1);
    assert_eq!(fake.count(Method::POST, "/secrets"), 1);
    let deployment = fake.get(DEPLOYMENTS, "shop-api").unwrap();
    assert!(deployment["spec"]["replicas"].is_null(), "the HPA owns replicas");
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].as_array().unwrap().clone();
    let url = env.iter().find(|e| e["name"] == "DBAPI_DATABASE_URL").unwrap();
    assert_eq!(url["valueFrom"]["secretKeyRef"], json!({"name": "shop-db", "key": "url"}));
    // The config holds the key's hash, never the key.
    let key = key_of(&fake, "storefront");
    let config = fake.get(SECRETS, "shop-api-config").unwrap().to_string();
    assert!(!config.contains(&key));
    let configmap = fake.get(CONFIGMAPS, "shop-api-config").unwrap().to_string();
    assert!(configmap.contains("maxConnections: 2"), "the budget of 20 over 10 replicas: {configmap}");

    let status = status_of(&fake);
    assert_eq!(status["observedGeneration"], 3);
    assert_eq!(status["url"], "http://shop-api.shop.svc:8080");
    assert_eq!(status["poolPerReplica"], 2);
    assert_eq!(status["apiKeys"], json!([{"name": "storefront", "secretName": "shop-key-storefront"}]));
    assert_eq!(condition(&status, "DatabaseSecretReady")["status"], "True");
    let ready = condition(&status, "Ready");
    assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("False"), Some("NoAvailableReplicas")));
    assert_eq!(ready["lastTransitionTime"], "2026-11-28T12:00:00Z");
    assert_eq!(fake.count(Method::PATCH, "/status"), 1);
    assert!(fake.count(Method::POST, "/events") >= 1, "creating the key is an event");
}

#[tokio::test]
async fn an_unchanged_second_reconcile_writes_no_status_and_keeps_the_key() {
    let fake = FakeApi::default();
    fake.put(SECRETS, database_secret());
    fake.put(APIS, database_api(json!({})));
    reconcile_stored(&fake, now).await.unwrap();
    let key = key_of(&fake, "storefront");
    let status = status_of(&fake);
    fake.clear_calls();

    reconcile_stored(&fake, later).await.unwrap();
    assert_eq!(fake.count(Method::PATCH, "/status"), 0, "nothing changed, nothing written");
    assert_eq!(fake.count(Method::POST, "/secrets"), 0);
    assert_eq!(fake.count(Method::PUT, "/secrets"), 0);
    assert_eq!(key_of(&fake, "storefront"), key, "a key is never regenerated");
    assert_eq!(status_of(&fake), status);

    // Readiness follows the Deployment, and the transition time moves.
    let mut deployment = fake.get(DEPLOYMENTS, "shop-api").unwrap();
    deployment["status"] = json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2});
    fake.put(DEPLOYMENTS, deployment);
    reconcile_stored(&fake, later).await.unwrap();
    let status = status_of(&fake);
    let ready = condition(&status, "Ready");
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["lastTransitionTime"], "2026-11-30T12:00:00Z");
    assert_eq!(status["replicas"], 2);
    assert_eq!(condition(&status, "DatabaseSecretReady")["lastTransitionTime"], "2026-11-28T12:00:00Z");
}

#[tokio::test]
async fn a_removed_key_deletes_its_secret() {
    let fake = FakeApi::default();
    fake.put(SECRETS, database_secret());
    fake.put(
        APIS,
        database_api(
            json!({"apiKeys": [{"name": "storefront", "role": "reader"}, {"name": "backoffice", "role": "reader"}]}),
        ),
    );
    reconcile_stored(&fake, now).await.unwrap();
    assert!(fake.get(SECRETS, "shop-key-backoffice").is_some());
    let storefront = key_of(&fake, "storefront");

    let mut api = fake.get(APIS, "shop").unwrap();
    api["spec"]["apiKeys"] = json!([{"name": "storefront", "role": "reader"}]);
    api["metadata"]["generation"] = json!(4);
    fake.put(APIS, api);
    reconcile_stored(&fake, now).await.unwrap();
    assert!(fake.get(SECRETS, "shop-key-backoffice").is_none(), "the removed key's Secret is gone");
    assert_eq!(fake.count(Method::DELETE, "/secrets/shop-key-backoffice"), 1);
    assert_eq!(key_of(&fake, "storefront"), storefront, "the remaining key is untouched");
    assert_eq!(status_of(&fake)["apiKeys"], json!([{"name": "storefront", "secretName": "shop-key-storefront"}]));
    // A Secret that only looks like a key Secret of ours is not deleted.
    let mut foreign = fake.get(SECRETS, "shop-key-storefront").unwrap();
    foreign["metadata"]["name"] = json!("shop-key-foreign");
    foreign["metadata"]["ownerReferences"] = json!([]);
    fake.put(SECRETS, foreign);
    reconcile_stored(&fake, now).await.unwrap();
    assert!(fake.get(SECRETS, "shop-key-foreign").is_some());
}

#[tokio::test]
async fn a_missing_database_secret_is_a_condition_and_creates_nothing() {
    let fake = FakeApi::default();
    fake.put(APIS, database_api(json!({})));
    reconcile_stored(&fake, now).await.unwrap();
    let status = status_of(&fake);
    let ready = condition(&status, "Ready");
    assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("False"), Some("SecretNotFound")));
    let secret = condition(&status, "DatabaseSecretReady");
    assert_eq!(secret["status"], "False");
    assert!(secret["message"].as_str().unwrap().contains("shop/shop-db"), "{secret}");
    assert_eq!(condition(&status, "Degraded")["status"], "True");
    assert!(fake.names(DEPLOYMENTS).is_empty() && fake.names(CONFIGMAPS).is_empty());
    assert!(fake.names(SECRETS).is_empty(), "no key is generated before the database is known");
    assert!(fake.count(Method::POST, "/events") >= 1);

    // A Secret without the key is named as such; fixing it recovers.
    let mut no_key = database_secret();
    no_key["data"] = json!({"other": "eA=="});
    fake.put(SECRETS, no_key);
    reconcile_stored(&fake, now).await.unwrap();
    let message = condition(&status_of(&fake), "DatabaseSecretReady")["message"].as_str().unwrap().to_string();
    assert!(message.contains("no key \"url\""), "{message}");
    fake.put(SECRETS, database_secret());
    reconcile_stored(&fake, now).await.unwrap();
    assert_eq!(condition(&status_of(&fake), "DatabaseSecretReady")["status"], "True");
    assert!(fake.get(DEPLOYMENTS, "shop-api").is_some());
}

#[tokio::test]
async fn keys_survive_restarts_and_rotate_on_request_with_a_grace_period() {
    let fake = FakeApi::default();
    fake.put(SECRETS, database_secret());
    fake.put(APIS, database_api(json!({})));
    reconcile_stored(&fake, now).await.unwrap();
    let first = key_of(&fake, "storefront");
    // Each reconcile_stored builds a new Context: an operator restart.
    reconcile_stored(&fake, now).await.unwrap();
    assert_eq!(key_of(&fake, "storefront"), first);

    let mut api = fake.get(APIS, "shop").unwrap();
    api["spec"]["apiKeys"][0]["rotation"] = json!(1);
    api["spec"]["apiKeys"][0]["rotationGracePeriodSeconds"] = json!(3600);
    fake.put(APIS, api);
    reconcile_stored(&fake, now).await.unwrap();
    let second = key_of(&fake, "storefront");
    assert_ne!(second, first, "a rotation makes a new key");
    let secret = fake.get(SECRETS, "shop-key-storefront").unwrap();
    assert_eq!(secret["metadata"]["annotations"]["dbapi.dev/previous-key-not-after"], "2026-11-28T13:00:00Z");
    let config = fake.get(SECRETS, "shop-api-config").unwrap();
    let yaml = String::from_utf8(decode(config["data"]["config.yaml"].as_str().unwrap())).unwrap();
    assert_eq!(yaml.matches("sha256:").count(), 2, "old and new key both valid: {yaml}");
    assert!(yaml.contains("notAfter"), "{yaml}");
    // The same rotation request does not rotate again.
    reconcile_stored(&fake, now).await.unwrap();
    assert_eq!(key_of(&fake, "storefront"), second);
    // After the grace period the old hash goes.
    reconcile_stored(&fake, later).await.unwrap();
    let yaml = String::from_utf8(decode(
        fake.get(SECRETS, "shop-api-config").unwrap()["data"]["config.yaml"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(yaml.matches("sha256:").count(), 1, "{yaml}");
    assert_eq!(key_of(&fake, "storefront"), second);
    // The annotation asks for a rotation too.
    let mut api = fake.get(APIS, "shop").unwrap();
    api["metadata"]["annotations"] = json!({"dbapi.dev/rotate-key-storefront": "2026-12-01"});
    fake.put(APIS, api);
    reconcile_stored(&fake, later).await.unwrap();
    assert_ne!(key_of(&fake, "storefront"), second);
}

#[tokio::test]
async fn fixed_replicas_remove_the_autoscaler_and_disruption_budget() {
    let fake = FakeApi::default();
    fake.put(SECRETS, database_secret());
    fake.put(APIS, database_api(json!({})));
    reconcile_stored(&fake, now).await.unwrap();
    assert!(fake.get(HPAS, "shop-api").is_some() && fake.get(PDBS, "shop-api").is_some());

    let mut api = fake.get(APIS, "shop").unwrap();
    api["spec"]["runtime"]["replicas"] = json!({"min": 1, "max": 1});
    fake.put(APIS, api);
    reconcile_stored(&fake, now).await.unwrap();
    assert!(fake.get(HPAS, "shop-api").is_none(), "no HPA for a fixed replica count");
    assert!(fake.get(PDBS, "shop-api").is_none(), "no PDB for a single replica");
    assert_eq!(fake.get(DEPLOYMENTS, "shop-api").unwrap()["spec"]["replicas"], 1);
    assert_eq!(status_of(&fake)["poolPerReplica"], 20);
}

#[tokio::test]
async fn a_changed_spec_rolls_the_pods_through_the_checksum() {
    let fake = FakeApi::default();
    fake.put(SECRETS, database_secret());
    fake.put(APIS, database_api(json!({})));
    reconcile_stored(&fake, now).await.unwrap();
    let checksum = |fake: &FakeApi| {
        fake.get(DEPLOYMENTS, "shop-api").unwrap()["spec"]["template"]["metadata"]["annotations"]["dbapi.dev/config-checksum"]
            .clone()
    };
    let before = checksum(&fake);
    let mut api = fake.get(APIS, "shop").unwrap();
    api["spec"]["database"]["maxRows"] = json!(50);
    fake.put(APIS, api);
    reconcile_stored(&fake, now).await.unwrap();
    assert_ne!(checksum(&fake), before);
    assert!(fake.get(CONFIGMAPS, "shop-api-config").unwrap().to_string().contains("maxRows: 50"));
}

fn decode(b64: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in b64.bytes().filter(|c| *c != b'=') {
        buf = (buf << 6) | ALPHABET.iter().position(|a| *a == c).expect("base64") as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

#[tokio::test]
async fn a_failing_api_call_is_a_degraded_condition_an_event_and_a_backoff() {
    let fake = FakeApi::default();
    fake.put(SECRETS, database_secret());
    fake.put(APIS, database_api(json!({})));
    fake.fail(Method::PATCH, "/deployments/");
    let current: DatabaseApi = serde_json::from_value(fake.get(APIS, "shop").unwrap()).unwrap();
    let reporter = Reporter { controller: "dbapi-operator".into(), instance: None };
    let metrics = Arc::new(Metrics::default());
    let ctx =
        Arc::new(Context::new(fake.client(), OperatorDefaults::default(), reporter, metrics.clone()).with_clock(now));
    let api = Arc::new(current);
    let error = reconcile(api.clone(), ctx.clone()).await.unwrap_err();
    assert!(error.to_string().contains("applying Deployment shop/shop-api"), "{error}");
    let degraded = condition(&status_of(&fake), "Degraded");
    assert_eq!(degraded["status"], "True");
    assert!(degraded["message"].as_str().unwrap().contains("Deployment"), "{degraded}");
    assert_eq!(condition(&status_of(&fake), "Ready")["reason"], "ReconcileFailed");
    assert!(fake.count(Method::POST, "/events") >= 1);
    assert!(metrics.render().contains(r#"reconciles_total{result="error"} 1"#));
    // Backoff grows with each failure, capped, instead of a hot loop.
    let waits: Vec<_> = (0..8).map(|_| error_policy(api.clone(), &error, ctx.clone())).collect();
    assert_eq!(waits[0], kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(5)));
    assert_eq!(waits[1], kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(10)));
    assert_eq!(waits[7], kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(160)));
    // Once the API answers again, the next reconcile recovers.
    fake.heal();
    let fresh: DatabaseApi = serde_json::from_value(fake.get(APIS, "shop").unwrap()).unwrap();
    reconcile(Arc::new(fresh), ctx.clone()).await.unwrap();
    assert_eq!(condition(&status_of(&fake), "Degraded")["status"], "False");
}

#[tokio::test]
async fn a_rate_limit_without_a_cache_runs_a_shared_redis_and_removing_it_deletes_it() {
    let fake = FakeApi::default();
    fake.put(SECRETS, database_secret());
    fake.put(APIS, database_api(json!({})));
    reconcile_stored(&fake, now).await.unwrap();
    assert!(fake.get(DEPLOYMENTS, "shop-cache").is_none(), "no limit, no Redis");
    let redis_url = |fake: &FakeApi| {
        let runtime = fake.get(DEPLOYMENTS, "shop-api").unwrap();
        let env = runtime["spec"]["template"]["spec"]["containers"][0]["env"].as_array().unwrap().clone();
        env.into_iter().find(|e| e["name"] == "DBAPI_REDIS_URL").map(|e| e["valueFrom"]["secretKeyRef"].clone())
    };
    assert_eq!(redis_url(&fake), None);

    let mut api = fake.get(APIS, "shop").unwrap();
    api["spec"]["roles"][0]["rateLimit"] = json!({"requestsPerMinute": 60, "burst": 10});
    fake.put(APIS, api);
    reconcile_stored(&fake, now).await.unwrap();
    assert!(fake.get(DEPLOYMENTS, "shop-cache").is_some(), "every replica counts in one Redis");
    assert!(fake.get(SERVICES, "shop-cache").is_some());
    assert_eq!(redis_url(&fake), Some(json!({"name": "shop-cache", "key": "url"})));
    assert!(fake.get(SECRETS, "shop-cache").is_some(), "with its password");
    assert_eq!(condition(&status_of(&fake), "CacheReady")["reason"], "Starting");

    let mut api = fake.get(APIS, "shop").unwrap();
    api["spec"]["roles"][0].as_object_mut().unwrap().remove("rateLimit");
    fake.put(APIS, api);
    reconcile_stored(&fake, now).await.unwrap();
    for collection in [DEPLOYMENTS, SERVICES, SECRETS] {
        assert!(fake.get(collection, "shop-cache").is_none(), "{collection}/shop-cache is gone");
    }
    assert_eq!(redis_url(&fake), None);
}

const NETWORK_POLICIES: &str = "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies";

#[tokio::test]
async fn the_redis_password_is_made_once_and_kept_and_leaves_with_the_redis() {
    let fake = FakeApi::default();
    fake.put(SECRETS, database_secret());
    fake.put(APIS, database_api(json!({"cache": {"managed": {"memory": "128Mi"}}})));
    reconcile_stored(&fake, now).await.unwrap();
    let secret = fake.get(SECRETS, "shop-cache").expect("the cache Secret");
    let password = String::from_utf8(decode(secret["data"]["password"].as_str().unwrap())).unwrap();
    assert!(password.len() >= 32, "a long random password: {password}");
    let url = String::from_utf8(decode(secret["data"]["url"].as_str().unwrap())).unwrap();
    assert_eq!(url, format!("redis://:{password}@shop-cache:6379"));
    let runtime = fake.get(DEPLOYMENTS, "shop-api").unwrap();
    let env = runtime["spec"]["template"]["spec"]["containers"][0]["env"].as_array().unwrap().clone();
    let redis = env.iter().find(|e| e["name"] == "DBAPI_REDIS_URL").unwrap();
    assert_eq!(redis["valueFrom"]["secretKeyRef"], json!({"name": "shop-cache", "key": "url"}));
    assert!(!fake.get(DEPLOYMENTS, "shop-cache").unwrap().to_string().contains(&password));

    // Kept across reconciles (a restarted operator reads it back).
    reconcile_stored(&fake, now).await.unwrap();
    let again = fake.get(SECRETS, "shop-cache").unwrap();
    assert_eq!(again["data"]["password"], secret["data"]["password"]);

    // An external Redis needs no password of ours.
    let redis_url = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shop-redis", "namespace": NS},
                           "data": {"url": "cmVkaXM6Ly9yZWRpcy5leGFtcGxlOjYzNzk="}});
    fake.put(SECRETS, redis_url);
    let mut api = fake.get(APIS, "shop").unwrap();
    api["spec"]["cache"] = json!({"external": {"urlSecretRef": {"name": "shop-redis", "key": "url"}}});
    fake.put(APIS, api);
    reconcile_stored(&fake, now).await.unwrap();
    for collection in [SECRETS, DEPLOYMENTS, SERVICES, NETWORK_POLICIES] {
        assert!(fake.get(collection, "shop-cache").is_none(), "{collection}/shop-cache is gone");
    }
    assert_eq!(condition(&status_of(&fake), "CacheReady")["reason"], "External");
}

#[tokio::test]
async fn network_policies_follow_the_spec() {
    let fake = FakeApi::default();
    fake.put(SECRETS, database_secret());
    fake.put(APIS, database_api(json!({"rateLimit": {"requestsPerMinute": 60}})));
    reconcile_stored(&fake, now).await.unwrap();
    let api_policy = fake.get(NETWORK_POLICIES, "shop-api").expect("the runtime's policy");
    assert_eq!(api_policy["spec"]["ingress"][0]["from"], json!([{"podSelector": {}}]), "the namespace by default");
    let cache_policy = fake.get(NETWORK_POLICIES, "shop-cache").expect("the limiter Redis's policy");
    assert_eq!(
        cache_policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "api"
    );

    let mut api = fake.get(APIS, "shop").unwrap();
    api["spec"]["networkPolicy"] = json!({"enabled": false});
    fake.put(APIS, api);
    reconcile_stored(&fake, now).await.unwrap();
    assert!(fake.names(NETWORK_POLICIES).is_empty(), "{:?}", fake.names(NETWORK_POLICIES));
}
