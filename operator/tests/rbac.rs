//! The RBAC the operator needs, derived from the requests its code makes.
//!
//! How it works: the operator's code runs against the in-memory API server
//! (`fake_api`, which records every request) along every path that talks
//! to Kubernetes:
//!
//! - the controller itself (`controller::run`), until each collection it
//!   lists it also watches: `Controller::new`, every `.owns()` and
//!   `.watches()`;
//! - reconciles of a `DatabaseApi` with every optional part set (read
//!   replica, JWT secret, managed cache, rate limits, autoscaling, two keys)
//!   and then with each part taken away again: a missing Secret, key
//!   creation, rotation and the end of its grace period, a removed key, fixed
//!   replicas, no cache, and a failing API call twice (an event created,
//!   then patched);
//! - leader election on its Lease (taken, renewed, taken over).
//!
//! Each request becomes the RBAC permission it needs, (API group,
//! resource or `resource/subresource`, verb), by the API server's own rules:
//! GET of one object is `get`, of a collection `list`, with `watch=true`
//! `watch`; POST `create`, PUT `update`, PATCH `patch`, DELETE `delete`.
//! A write that sets `metadata.ownerReferences` also needs `delete` on what
//! it writes: clusters with the OwnerReferencesPermissionEnforcement
//! admission plugin (OpenShift, for one) refuse it otherwise, and every
//! child the operator applies names its DatabaseApi as owner. The Lease's
//! permissions are needed in the operator's own namespace, all others where
//! DatabaseApis live (every namespace, or the watched ones).
//!
//! The result must equal `operator/permissions.yaml` (rewrite it with
//! `DBAPI_UPDATE_RBAC=1 cargo test -p dbapi-operator --test rbac`), and
//! `scripts/chart-check.sh` checks that the chart's rendered ClusterRole,
//! Roles and leader-election Role grant exactly what that file lists:
//! nothing missing, nothing more. A new API call thus fails here until the
//! file has it, and then in chart-check until the chart grants it, as long
//! as one of the paths above makes it: code that calls the API under a
//! condition none of them meets needs that condition added here.

#[allow(dead_code)] // the fake serves every test file; this one uses part of it
mod fake_api;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbapi_crds::crd::DatabaseApi;
use dbapi_operator::leader::LeaseLock;
use dbapi_operator::metrics::Metrics;
use dbapi_operator::reconcile::{Context, reconcile};
use dbapi_operator::resources::OperatorDefaults;
use fake_api::{Call, FakeApi};
use http::Method;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::runtime::events::Reporter;
use serde_json::{Value, json};
use tokio::sync::watch;

const PERMISSIONS_FILE: &str = "permissions.yaml";
const APIS: &str = "/apis/dbapi.dev/v1alpha1/namespaces/shop/databaseapis";
const SECRETS: &str = "/api/v1/namespaces/shop/secrets";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/dbapi-system/leases";

/// One RBAC permission: API group (`""` for the core group), resource (or
/// `resource/subresource`) and verb.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Permission {
    group: String,
    resource: String,
    verb: &'static str,
}

/// The permissions the API server checks for `call`: its verb's, and
/// `delete` too for a write that sets owner references.
fn needed(call: &Call) -> Vec<Permission> {
    let permission = permission(call);
    let mut needed = vec![permission.clone()];
    if call.sets_owner && ["create", "update", "patch"].contains(&permission.verb) {
        needed.push(Permission { verb: "delete", ..permission });
    }
    needed
}

/// The permission of `call`'s verb.
fn permission(call: &Call) -> Permission {
    let segments: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => panic!("not a Kubernetes API path: {}", call.path),
    };
    // `namespaces/<ns>/<resource>...`; `namespaces/<name>` alone would be a
    // Namespace itself.
    let rest = match rest {
        ["namespaces", _ns, rest @ ..] if !rest.is_empty() => rest,
        rest => rest,
    };
    let (resource, name, subresource) = match rest {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, subresource] => (*resource, Some(*name), Some(*subresource)),
        _ => panic!("not a resource path: {}", call.path),
    };
    let watching = call.query.split('&').any(|p| p == "watch=true" || p == "watch=1");
    let verb = match (call.method.as_str(), name) {
        ("GET", Some(_)) => "get",
        ("GET", None) if watching => "watch",
        ("GET", None) => "list",
        ("POST", None) => "create",
        ("PUT", Some(_)) => "update",
        ("PATCH", Some(_)) => "patch",
        ("DELETE", Some(_)) => "delete",
        ("DELETE", None) => "deletecollection",
        _ => panic!("no RBAC verb for {} {}", call.method, call.path),
    };
    let resource = match subresource {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_string(),
    };
    Permission { group: group.to_string(), resource, verb }
}

fn permissions(calls: &[Call]) -> BTreeSet<Permission> {
    calls.iter().flat_map(needed).collect()
}

fn context(fake: &FakeApi, clock: fn() -> Timestamp) -> Arc<Context> {
    let reporter = Reporter { controller: "dbapi-operator".into(), instance: None };
    Arc::new(
        Context::new(fake.client(), OperatorDefaults::default(), reporter, Arc::new(Metrics::default()))
            .with_clock(clock),
    )
}

/// The controller, run until every collection it lists it also watches and
/// nothing new has been asked for a while.
async fn controller_calls() -> Vec<Call> {
    let fake = FakeApi::default();
    let (stop, stopped) = watch::channel(false);
    let shutdown = move || {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let ctx = context(&fake, Timestamp::now);
    let controller = tokio::spawn(async move { dbapi_operator::controller::run(ctx, vec![], shutdown).await });
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut seen, mut since) = (BTreeSet::new(), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = permissions(&fake.calls());
        let collections = |verb: &str| -> BTreeSet<(String, String)> {
            now.iter().filter(|p| p.verb == verb).map(|p| (p.group.clone(), p.resource.clone())).collect()
        };
        let listed = collections("list");
        let settled = !listed.is_empty() && listed == collections("watch");
        if now != seen {
            (seen, since) = (now, Instant::now());
        }
        if settled && since.elapsed() > Duration::from_millis(500) {
            break;
        }
        assert!(Instant::now() < deadline, "the controller did not watch what it listed: {seen:?}");
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(20), controller).await.expect("the controller stops").unwrap();
    fake.calls()
}

fn now() -> Timestamp {
    "2026-11-28T12:00:00Z".parse().unwrap()
}

fn two_days_later() -> Timestamp {
    "2026-11-30T12:00:00Z".parse().unwrap()
}

/// A DatabaseApi with every part that makes the operator call the API.
fn everything() -> Value {
    json!({
        "apiVersion": "dbapi.dev/v1alpha1",
        "kind": "DatabaseApi",
        "metadata": {"name": "shop", "namespace": "shop", "uid": "uid-shop", "generation": 1},
        "spec": {
            "database": {
                "urlSecretRef": {"name": "shop-db", "key": "url"},
                "readReplicaUrlSecretRef": {"name": "shop-db", "key": "replica-url"}
            },
            "runtime": {"replicas": {"min": 2, "max": 10}},
            "cache": {"managed": {"memory": "64Mi"}},
            "rateLimit": {"requestsPerMinute": 600, "burst": 100},
            "auth": {"jwt": {"secretRef": {"name": "shop-jwt", "key": "hmac"}}},
            "roles": [{"name": "reader", "rules": [{"tables": ["*"], "verbs": ["GET"]}],
                       "rateLimit": {"requestsPerMinute": 60}}],
            "apiKeys": [{"name": "storefront", "role": "reader"},
                        {"name": "desk", "role": "reader", "rateLimit": {"requestsPerMinute": 60}}]
        }
    })
}

/// Reconciles the stored DatabaseApi once with `ctx`.
async fn reconcile_with(fake: &FakeApi, ctx: &Arc<Context>) -> Result<(), String> {
    let current: DatabaseApi = serde_json::from_value(fake.get(APIS, "shop").unwrap()).unwrap();
    reconcile(Arc::new(current), ctx.clone()).await.map(drop).map_err(|e| e.to_string())
}

/// Changes the stored DatabaseApi's spec and reconciles it, as after a
/// watch event (with a fresh context: an operator restart changes nothing).
async fn change(fake: &FakeApi, clock: fn() -> Timestamp, edit: impl FnOnce(&mut Value)) {
    let mut api = fake.get(APIS, "shop").unwrap();
    edit(&mut api["spec"]);
    api["metadata"]["generation"] = json!(api["metadata"]["generation"].as_i64().unwrap() + 1);
    fake.put(APIS, api);
    reconcile_with(fake, &context(fake, clock)).await.unwrap();
}

async fn reconcile_calls() -> Vec<Call> {
    let fake = FakeApi::default();
    fake.put(APIS, everything());
    // The database Secret is missing: a condition and an event.
    reconcile_with(&fake, &context(&fake, now)).await.unwrap();
    fake.put(
        SECRETS,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shop-db", "namespace": "shop"},
               "data": {"url": "eA==", "replica-url": "eA=="}}),
    );
    fake.put(
        SECRETS,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shop-jwt", "namespace": "shop"},
               "data": {"hmac": "eA=="}}),
    );
    // Everything applied, the keys created.
    reconcile_with(&fake, &context(&fake, now)).await.unwrap();
    assert!(fake.get(SECRETS, "shop-key-desk").is_some());
    // A rotation, then the end of its grace period.
    change(&fake, now, |spec| spec["apiKeys"][0]["rotation"] = json!(1)).await;
    change(&fake, two_days_later, |_| {}).await;
    // A key, the autoscaler and the cache taken away.
    change(&fake, now, |spec| {
        spec["apiKeys"].as_array_mut().unwrap().pop();
        spec["runtime"]["replicas"] = json!({"min": 1, "max": 1});
        let spec = spec.as_object_mut().unwrap();
        spec.remove("cache");
        spec.remove("rateLimit");
        spec["roles"][0].as_object_mut().unwrap().remove("rateLimit");
    })
    .await;
    assert!(fake.get(SECRETS, "shop-key-desk").is_none());
    // A failing call, twice with one recorder: the second event is a patch.
    fake.fail(Method::PATCH, "/deployments/");
    let ctx = context(&fake, now);
    assert!(reconcile_with(&fake, &ctx).await.is_err());
    assert!(reconcile_with(&fake, &ctx).await.is_err());
    fake.heal();
    assert!(fake.count(Method::PATCH, "/events/") >= 1, "a repeated event is patched");
    fake.calls()
}

async fn leader_calls() -> Vec<Call> {
    let fake = FakeApi::default();
    let lock = |me: &str| {
        let api: Api<Lease> = Api::namespaced(fake.client(), "dbapi-system");
        LeaseLock::new(api, "dbapi-operator", me, Duration::from_secs(15))
    };
    let (a, b) = (lock("operator-a"), lock("operator-b"));
    assert!(a.try_lead().await.unwrap());
    assert!(a.try_lead().await.unwrap());
    assert!(!b.try_lead().await.unwrap());
    let mut lease = fake.get(LEASES, "dbapi-operator").unwrap();
    lease["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z");
    fake.put(LEASES, lease);
    assert!(b.try_lead().await.unwrap());
    fake.calls()
}

/// `permissions.yaml`'s text for these permissions, one rule per resource.
fn document(scopes: &[(&str, &str, BTreeSet<Permission>)]) -> String {
    let mut out = String::from(
        "# The Kubernetes API permissions the operator's code uses, found by\n\
         # operator/tests/rbac.rs from the requests it makes (see there how);\n\
         # do not edit: DBAPI_UPDATE_RBAC=1 cargo test -p dbapi-operator --test rbac\n\
         # rewrites it. scripts/chart-check.sh checks that the chart grants\n\
         # exactly these, nothing missing and nothing more.\n",
    );
    for (key, comment, permissions) in scopes {
        let mut rules: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for p in permissions {
            rules.entry((&p.group, &p.resource)).or_default().push(p.verb);
        }
        out.push_str(&format!("# {comment}\n{key}:\n"));
        for ((group, resource), mut verbs) in rules {
            verbs.sort_unstable();
            out.push_str(&format!(
                "  - {{apiGroup: \"{group}\", resource: {resource}, verbs: [{}]}}\n",
                verbs.join(", ")
            ));
        }
    }
    out
}

#[tokio::test]
async fn the_operator_needs_exactly_the_permissions_in_permissions_yaml() {
    let mut watched = permissions(&controller_calls().await);
    watched.extend(permissions(&reconcile_calls().await));
    let leader = permissions(&leader_calls().await);
    for needs in [&watched, &leader] {
        assert!(needs.iter().all(|p| p.verb != "deletecollection"), "{needs:?}");
    }
    let generated = document(&[
        ("watchedNamespaces", "Where DatabaseApis are: the whole cluster, or each watched namespace.", watched),
        ("operatorNamespace", "The operator's own namespace, for leader election.", leader),
    ]);

    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(PERMISSIONS_FILE);
    if std::env::var("DBAPI_UPDATE_RBAC").as_deref() == Ok("1") {
        let temporary = path.with_extension("yaml.tmp");
        std::fs::write(&temporary, &generated).unwrap();
        std::fs::rename(&temporary, &path).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != generated {
        let old: BTreeSet<&str> = checked_in.lines().collect();
        let new: BTreeSet<&str> = generated.lines().collect();
        panic!(
            "operator/{PERMISSIONS_FILE} is not what the operator's code uses.\n\
             Now needed and not listed:\n  {}\nListed and no longer needed:\n  {}\n\
             Rewrite it with\n  DBAPI_UPDATE_RBAC=1 cargo test -p dbapi-operator --test rbac\n\
             and make the chart's RBAC (charts/dbapi-operator/templates/_helpers.tpl, rbac.yaml) grant exactly \
             that: scripts/chart-check.sh compares them.",
            new.difference(&old).copied().collect::<Vec<_>>().join("\n  "),
            old.difference(&new).copied().collect::<Vec<_>>().join("\n  "),
        );
    }
}

#[test]
fn requests_map_to_the_verbs_the_api_server_checks() {
    let call = |method: Method, path: &str, query: &str| {
        let p = permission(&Call { method, path: path.into(), query: query.into(), sets_owner: false });
        (p.group, p.resource, p.verb)
    };
    let p = |g: &str, r: &str, v: &'static str| (g.to_string(), r.to_string(), v);
    assert_eq!(call(Method::GET, "/api/v1/namespaces/shop/secrets/db", ""), p("", "secrets", "get"));
    assert_eq!(call(Method::GET, "/api/v1/secrets", "limit=500"), p("", "secrets", "list"));
    assert_eq!(
        call(Method::GET, "/apis/apps/v1/namespaces/shop/deployments", "&watch=true&timeoutSeconds=290"),
        p("apps", "deployments", "watch")
    );
    assert_eq!(
        call(Method::PATCH, "/apis/dbapi.dev/v1alpha1/namespaces/shop/databaseapis/shop/status", ""),
        p("dbapi.dev", "databaseapis/status", "patch")
    );
    assert_eq!(
        call(Method::POST, "/apis/events.k8s.io/v1/namespaces/shop/events", ""),
        p("events.k8s.io", "events", "create")
    );
    assert_eq!(
        call(Method::PUT, "/apis/coordination.k8s.io/v1/namespaces/x/leases/l", ""),
        p("coordination.k8s.io", "leases", "update")
    );
    assert_eq!(call(Method::DELETE, "/api/v1/namespaces/shop/configmaps/c", ""), p("", "configmaps", "delete"));
    assert_eq!(call(Method::GET, "/api/v1/namespaces/shop", ""), p("", "namespaces", "get"));

    let owned = |method: Method| {
        let call =
            Call { method, path: "/api/v1/namespaces/shop/configmaps/c".into(), query: "".into(), sets_owner: true };
        needed(&call).into_iter().map(|p| p.verb).collect::<Vec<_>>()
    };
    assert_eq!(owned(Method::PATCH), ["patch", "delete"], "setting an owner needs delete");
    assert_eq!(owned(Method::GET), ["get"]);
}
