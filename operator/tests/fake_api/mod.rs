//! A small in-memory Kubernetes API server behind kube's `Client`, on the
//! kube-rs `tower-test` pattern: the client's requests arrive on a mock
//! handle and are answered from a store. It understands exactly what the
//! operator does (get, list by label, create, replace, server-side apply,
//! merge patch of status, delete, events) and records every request, so
//! tests can assert what a reconcile wrote.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: Method,
    pub path: String,
    /// The query string (`watch=true&...`), empty when there is none.
    pub query: String,
    /// Whether the body sets `metadata.ownerReferences`.
    pub sets_owner: bool,
}

#[derive(Default)]
struct State {
    /// Requests (method, path fragment) answered with a 500, to test failures.
    failing: Vec<(Method, String)>,
    /// (collection path, name) → object, e.g. ("/api/v1/namespaces/shop/secrets", "db").
    objects: BTreeMap<(String, String), Value>,
    calls: Vec<Call>,
    next_version: u64,
}

#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

impl FakeApi {
    /// A client whose requests this fake answers, until the client drops.
    pub fn client(&self) -> Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = self.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let response = fake.answer(request).await;
                respond.send_response(response);
            }
        });
        Client::new(service, "default")
    }

    /// Stores an object as if a user had created it.
    pub fn put(&self, collection: &str, mut object: Value) {
        let mut s = self.state.lock().unwrap();
        s.next_version += 1;
        object["metadata"]["resourceVersion"] = json!(s.next_version.to_string());
        let name = object["metadata"]["name"].as_str().expect("objects have names").to_string();
        s.objects.insert((collection.to_string(), name), object);
    }

    pub fn get(&self, collection: &str, name: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(&(collection.to_string(), name.to_string())).cloned()
    }

    /// Names of the objects in a collection.
    pub fn names(&self, collection: &str) -> Vec<String> {
        self.state.lock().unwrap().objects.keys().filter(|(c, _)| c == collection).map(|(_, n)| n.clone()).collect()
    }

    /// Makes every `method` request whose path contains `fragment` fail
    /// with a 500 until `heal` is called.
    pub fn fail(&self, method: Method, fragment: &str) {
        self.state.lock().unwrap().failing.push((method, fragment.to_string()));
    }

    pub fn heal(&self) {
        self.state.lock().unwrap().failing.clear();
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.state.lock().unwrap().calls.clear();
    }

    /// Calls with this method whose path contains `fragment`.
    pub fn count(&self, method: Method, fragment: &str) -> usize {
        self.calls().iter().filter(|c| c.method == method && c.path.contains(fragment)).count()
    }

    async fn answer(&self, request: Request<Body>) -> Response<Body> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let path = uri.path().to_string();
        let query = uri.query().unwrap_or("").to_string();
        let body = request.into_body().collect_bytes().await.expect("request bodies read");
        let body: Value =
            if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).expect("JSON bodies") };
        let sets_owner = body["metadata"]["ownerReferences"].as_array().is_some_and(|o| !o.is_empty());
        let call = Call { method: method.clone(), path: path.clone(), query: query.clone(), sets_owner };
        self.state.lock().unwrap().calls.push(call);
        let (collection, name, subresource) = split_path(&path);
        let key = (collection.clone(), name.clone().unwrap_or_default());
        let mut s = self.state.lock().unwrap();
        if s.failing.iter().any(|(m, f)| *m == method && path.contains(f.as_str())) {
            return status(500, "InternalError", "the API server is having a bad day");
        }
        s.next_version += 1;
        let version = s.next_version.to_string();
        match (method.as_str(), name, subresource.as_deref()) {
            ("GET", Some(_), None) => match s.objects.get(&key) {
                Some(o) => ok(StatusCode::OK, o.clone()),
                None => status(404, "NotFound", &format!("{} not found", key.1)),
            },
            ("GET", None, None) => {
                let selector = label_selector(&query);
                let items: Vec<Value> = s
                    .objects
                    .iter()
                    .filter(|((c, _), o)| *c == collection && matches_labels(o, &selector))
                    .map(|(_, o)| o.clone())
                    .collect();
                ok(
                    StatusCode::OK,
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": version}, "items": items}),
                )
            }
            ("POST", None, None) => {
                let mut object = body;
                if collection.ends_with("/events") && object["metadata"]["name"].is_null() {
                    object["metadata"]["name"] = json!(format!("event-{version}"));
                }
                let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
                if s.objects.contains_key(&(collection.clone(), name.clone())) {
                    return status(409, "AlreadyExists", &format!("{name} already exists"));
                }
                object["metadata"]["resourceVersion"] = json!(version);
                object["metadata"]["uid"] = json!(format!("uid-{name}"));
                s.objects.insert((collection, name), object.clone());
                ok(StatusCode::CREATED, object)
            }
            ("PUT", Some(_), None) => {
                let Some(current) = s.objects.get(&key) else { return status(404, "NotFound", "not found") };
                if body["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                    return status(409, "Conflict", "the object has been modified");
                }
                let mut object = body;
                object["metadata"]["resourceVersion"] = json!(version);
                s.objects.insert(key, object.clone());
                ok(StatusCode::OK, object)
            }
            ("PATCH", Some(_), None) => {
                // Server-side apply: the applied fields replace ours; a
                // status written by the cluster (e.g. a Deployment's) stays.
                let mut object = body;
                if let Some(current) = s.objects.get(&key) {
                    if let Some(st) = current.get("status") {
                        object["status"] = st.clone();
                    }
                    object["metadata"]["uid"] = current["metadata"]["uid"].clone();
                    let changed = strip_volatile(current) != strip_volatile(&object);
                    object["metadata"]["generation"] =
                        json!(current["metadata"]["generation"].as_i64().unwrap_or(1) + i64::from(changed));
                } else {
                    object["metadata"]["uid"] = json!(format!("uid-{}", key.1));
                    object["metadata"]["generation"] = json!(1);
                }
                object["metadata"]["resourceVersion"] = json!(version);
                s.objects.insert(key, object.clone());
                ok(StatusCode::OK, object)
            }
            ("PATCH", Some(_), Some("status")) => {
                let Some(current) = s.objects.get_mut(&key) else { return status(404, "NotFound", "not found") };
                current["status"] = body["status"].clone();
                current["metadata"]["resourceVersion"] = json!(version);
                ok(StatusCode::OK, current.clone())
            }
            ("DELETE", Some(_), None) => match s.objects.remove(&key) {
                Some(_) => ok(StatusCode::OK, json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})),
                None => status(404, "NotFound", "not found"),
            },
            _ => status(405, "MethodNotAllowed", &format!("the fake API does not do {method} {path}")),
        }
    }
}

fn strip_volatile(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("generation");
        m.remove("uid");
    }
    if let Some(obj) = o.as_object_mut() {
        obj.remove("status");
    }
    o
}

/// `/apis/apps/v1/namespaces/ns/deployments/name/status` →
/// (`/apis/apps/v1/namespaces/ns/deployments`, Some(name), Some(status)).
fn split_path(path: &str) -> (String, Option<String>, Option<String>) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ns = parts.iter().position(|p| *p == "namespaces");
    let collection_end = match ns {
        Some(i) if parts.len() > i + 2 => i + 3,
        _ => parts.len().min(if parts[0] == "api" { 3 } else { 4 }),
    };
    let collection = format!("/{}", parts[..collection_end].join("/"));
    let name = parts.get(collection_end).map(|s| s.to_string());
    let sub = parts.get(collection_end + 1).map(|s| s.to_string());
    (collection, name, sub)
}

fn label_selector(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("labelSelector="))
        .flat_map(|sel| {
            let sel = sel.replace("%3D", "=").replace("%2C", ",").replace("%2F", "/");
            sel.split(',')
                .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn matches_labels(o: &Value, selector: &[(String, String)]) -> bool {
    selector.iter().all(|(k, v)| o["metadata"]["labels"][k].as_str() == Some(v))
}

fn ok(code: StatusCode, body: Value) -> Response<Body> {
    Response::builder().status(code).body(Body::from(serde_json::to_vec(&body).unwrap())).unwrap()
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message, "code": code});
    Response::builder().status(code).body(Body::from(serde_json::to_vec(&body).unwrap())).unwrap()
}

#[test]
fn paths_split_into_collection_name_and_subresource() {
    assert_eq!(
        split_path("/apis/apps/v1/namespaces/shop/deployments/shop-api/status"),
        ("/apis/apps/v1/namespaces/shop/deployments".into(), Some("shop-api".into()), Some("status".into()))
    );
    assert_eq!(split_path("/api/v1/namespaces/shop/secrets"), ("/api/v1/namespaces/shop/secrets".into(), None, None));
}
