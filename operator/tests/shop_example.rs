//! `examples/shop/` works as its README says, short of a cluster:
//!
//! - its Secrets agree: the database URL names the example's user,
//!   password, Service and database;
//! - the operator renders its `DatabaseApi` into a configuration the runtime
//!   loads as it is (nothing the runtime does not implement yet, such as
//!   `cache`), whose keys authenticate as their roles;
//! - the operator reconciles it, against the in-memory API server, into
//!   the objects the README names, and every pod it would run meets the
//!   `restricted` Pod Security Standard that the example's Namespace
//!   enforces;
//! - the init SQL of its ConfigMap loads into a fresh PostgreSQL database,
//!   and the runtime, started in-process on it with that configuration,
//!   serves every rule of every role: each table a rule names answers its
//!   role's key with rows, exactly the columns the rules let it see, and a
//!   row filter that keeps some rows and not others; the columns of write
//!   rules exist; and the answers the README shows (404, 403, 400, 401, the
//!   EU orders only) are what the runtime gives.
//!
//! The test on PostgreSQL needs `DBAPI_TEST_PG_URL` (a superuser URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`; `scripts/test.sh` sets
//! it): it creates a database of its own and drops it afterwards.

#[allow(dead_code)] // the fake serves every test file; this one uses part of it
mod fake_api;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::Body;
use dbapi_crds::crd::{DatabaseApi, RuleSpec};
use dbapi_crds::keys::{generate_key, sha256_hex};
use dbapi_operator::resources::config::{CONFIG_FILE, KeyMaterial, config_map, config_secret, runtime_config};
use dbapi_runtime::config::{DatabaseArgs, load};
use dbapi_runtime::http::api_router;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection, Row};
use tower::ServiceExt;

const PG_URL_VAR: &str = "DBAPI_TEST_PG_URL";

fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/shop")
}

/// Every object of `examples/shop/*.yaml`, in the order `kubectl apply -f`
/// reads them (file name, then position in the file).
fn objects() -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(example_dir())
        .expect("examples/shop exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut objects = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value =
                serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{} is not YAML: {e}", file.display()));
            if !value.is_null() {
                objects.push(value);
            }
        }
    }
    objects
}

fn object<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("examples/shop has no {kind} {name}"))
}

/// The example's DatabaseApi, with the uid the API server would give it
/// (the rendered objects name their owner by it).
fn database_api(objects: &[Value]) -> DatabaseApi {
    let apis: Vec<&Value> = objects.iter().filter(|o| o["kind"] == "DatabaseApi").collect();
    assert_eq!(apis.len(), 1, "examples/shop holds one DatabaseApi");
    let mut api: DatabaseApi = serde_json::from_value(apis[0].clone()).expect("a DatabaseApi as the CRD reads it");
    api.metadata.uid = Some("uid-shop".into());
    api
}

/// The init SQL files of the ConfigMap mounted at
/// /docker-entrypoint-initdb.d, in the order the postgres image runs them.
fn init_sql(objects: &[Value]) -> String {
    let deployment = object(objects, "Deployment", "shop-db");
    let pod = &deployment["spec"]["template"]["spec"];
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/docker-entrypoint-initdb.d")
        .expect("the init scripts are mounted");
    let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == mount["name"]).unwrap();
    let map = object(objects, "ConfigMap", volume["configMap"]["name"].as_str().unwrap());
    let files: BTreeMap<String, String> = serde_json::from_value(map["data"].clone()).unwrap();
    assert!(files.keys().all(|f| f.ends_with(".sql")), "only .sql files (no shell scripts): {:?}", files.keys());
    files.into_values().collect::<Vec<_>>().join("\n")
}

fn secret_value(objects: &[Value], name: &str, key: &str) -> String {
    object(objects, "Secret", name)["stringData"][key]
        .as_str()
        .unwrap_or_else(|| panic!("Secret {name} has no stringData.{key}"))
        .to_string()
}

#[test]
fn the_database_url_names_the_example_user_password_service_and_database() {
    let objects = objects();
    let api = database_api(&objects);
    let url_ref = &api.spec.database.url_secret_ref;
    let url = secret_value(&objects, &url_ref.name, &url_ref.key);

    let container = &object(&objects, "Deployment", "shop-db")["spec"]["template"]["spec"]["containers"][0];
    let env = |name: &str| {
        container["env"].as_array().unwrap().iter().find(|e| e["name"] == name).cloned().unwrap_or_else(|| {
            panic!("the postgres container has no {name}");
        })
    };
    let password_ref = &env("POSTGRES_PASSWORD")["valueFrom"]["secretKeyRef"];
    let password =
        secret_value(&objects, password_ref["name"].as_str().unwrap(), password_ref["key"].as_str().unwrap());
    let (user, database) = (env("POSTGRES_USER")["value"].clone(), env("POSTGRES_DB")["value"].clone());
    let service = object(&objects, "Service", "shop-db");
    let port = service["spec"]["ports"][0]["port"].as_i64().unwrap();
    let expected = format!(
        "postgres://{}:{password}@{}.{}.svc:{port}/{}",
        user.as_str().unwrap(),
        service["metadata"]["name"].as_str().unwrap(),
        service["metadata"]["namespace"].as_str().unwrap(),
        database.as_str().unwrap()
    );
    assert_eq!(url, expected, "the URL Secret and the PostgreSQL Deployment disagree");
}

/// Whether a pod template meets the `restricted` Pod Security Standard, in
/// what the manifest decides; the reasons it does not.
fn restricted_violations(what: &str, template: &Value) -> Vec<String> {
    let pod = &template["spec"];
    let mut wrong = Vec::new();
    let pod_context = &pod["securityContext"];
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[key] == true {
            wrong.push(format!("{what}: {key}"));
        }
    }
    let allowed =
        ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        if volume.as_object().unwrap().keys().any(|k| k != "name" && !allowed.contains(&k.as_str())) {
            wrong.push(format!("{what}: volume {volume}"));
        }
    }
    let containers =
        pod["initContainers"].as_array().into_iter().flatten().chain(pod["containers"].as_array().unwrap());
    for container in containers {
        let context = &container["securityContext"];
        let either = |key: &str| if context[key].is_null() { pod_context[key].clone() } else { context[key].clone() };
        let name = format!("{what}: container {}", container["name"]);
        if context["allowPrivilegeEscalation"] != false {
            wrong.push(format!("{name} may escalate privileges"));
        }
        if context["capabilities"]["drop"] != serde_json::json!(["ALL"]) || !context["capabilities"]["add"].is_null() {
            wrong.push(format!("{name} keeps capabilities"));
        }
        if either("runAsNonRoot") != true || either("runAsUser") == 0 {
            wrong.push(format!("{name} may run as root"));
        }
        if !matches!(either("seccompProfile")["type"].as_str(), Some("RuntimeDefault" | "Localhost")) {
            wrong.push(format!("{name} has no seccomp profile"));
        }
    }
    wrong
}

#[tokio::test]
async fn the_operator_reconciles_it_into_what_the_readme_names_and_the_namespace_admits() {
    use dbapi_operator::metrics::Metrics;
    use dbapi_operator::reconcile::{Context, reconcile};
    use dbapi_operator::resources::OperatorDefaults;
    use kube::runtime::events::Reporter;

    const NS: &str = "/namespaces/shop/";
    let objects = objects();
    let fake = fake_api::FakeApi::default();
    let namespace = &objects[0];
    assert_eq!((&namespace["kind"], &namespace["metadata"]["name"]), (&Value::from("Namespace"), &Value::from("shop")));
    assert_eq!(namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted");
    for secret in objects.iter().filter(|o| o["kind"] == "Secret") {
        fake.put(&format!("/api/v1{NS}secrets"), secret.clone());
    }
    let api = database_api(&objects);
    let apis = format!("/apis/dbapi.dev/v1alpha1{NS}databaseapis");
    fake.put(&apis, serde_json::to_value(&api).unwrap());
    let reporter = Reporter { controller: "dbapi-operator".into(), instance: None };
    let ctx = Context::new(fake.client(), OperatorDefaults::default(), reporter, Arc::new(Metrics::default()));
    reconcile(Arc::new(api), Arc::new(ctx)).await.unwrap_or_else(|e| panic!("the reconcile fails: {e}"));

    let get = |collection: &str, name: &str| {
        fake.get(collection, name).unwrap_or_else(|| panic!("the operator made no {collection}/{name}"))
    };
    let status = &get(&apis, "shop")["status"];
    let keys: Vec<&Value> = status["apiKeys"].as_array().unwrap().iter().map(|k| &k["secretName"]).collect();
    assert_eq!(keys, ["shop-key-storefront", "shop-key-support-desk"]);
    assert_eq!(status["url"], "http://shop-api.shop.svc:8080");
    let service = get(&format!("/api/v1{NS}services"), "shop-api");
    assert!(service["spec"]["ports"].as_array().unwrap().iter().any(|p| p["port"] == 8080), "{service}");
    let hpa = get(&format!("/apis/autoscaling/v2{NS}horizontalpodautoscalers"), "shop-api");
    assert_eq!((&hpa["spec"]["minReplicas"], &hpa["spec"]["maxReplicas"]), (&Value::from(2), &Value::from(5)));
    for key in ["storefront", "support-desk"] {
        let secret = get(&format!("/api/v1{NS}secrets"), &format!("shop-key-{key}"));
        assert!(secret["data"]["key"].is_string(), "{secret}");
    }
    let deployments = format!("/apis/apps/v1{NS}deployments");
    assert_eq!(fake.names(&deployments), ["shop-api", "shop-cache"], "the API and the rate limits' Redis");
    let mut wrong = Vec::new();
    for name in fake.names(&deployments) {
        wrong.extend(restricted_violations(&name, &get(&deployments, &name)["spec"]["template"]));
    }
    for o in &objects {
        if let Some(template) = o["spec"].get("template") {
            wrong.extend(restricted_violations(o["metadata"]["name"].as_str().unwrap(), template));
        }
    }
    assert!(wrong.is_empty(), "the namespace's restricted Pod Security Standard would refuse: {wrong:#?}");
}

/// One generated key per `spec.apiKeys` entry: (role, plaintext).
fn keys(api: &DatabaseApi) -> (Vec<KeyMaterial>, BTreeMap<String, String>) {
    let mut materials = Vec::new();
    let mut by_role = BTreeMap::new();
    for key in &api.spec.api_keys {
        let plaintext = generate_key().unwrap();
        materials.push(KeyMaterial { name: key.name.clone(), sha256: sha256_hex(&plaintext), previous: None });
        by_role.insert(key.role.clone(), plaintext);
    }
    (materials, by_role)
}

/// The ConfigMap's and the Secret's `config.yaml` as the pod mounts them.
struct Mounted {
    dir: PathBuf,
}

impl Mounted {
    fn write(api: &DatabaseApi, keys: &[KeyMaterial]) -> (Mounted, Vec<PathBuf>) {
        static N: AtomicU32 = AtomicU32::new(0);
        let (public, secret) = runtime_config(api, keys);
        let dir = std::env::temp_dir().join(format!(
            "dbapi-shop-example-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let (config_dir, secret_dir) = (dir.join("config"), dir.join("secret"));
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::create_dir_all(&secret_dir).unwrap();
        let map = config_map(api, &public).unwrap().data.unwrap();
        let secret = config_secret(api, &secret).unwrap().data.unwrap();
        std::fs::write(config_dir.join(CONFIG_FILE), &map[CONFIG_FILE]).unwrap();
        std::fs::write(secret_dir.join(CONFIG_FILE), &secret[CONFIG_FILE].0).unwrap();
        let files = vec![config_dir.join(CONFIG_FILE), secret_dir.join(CONFIG_FILE)];
        (Mounted { dir }, files)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn the_runtime_loads_the_rendered_configuration_and_its_keys_are_their_roles() {
    let api = database_api(&objects());
    let (materials, by_role) = keys(&api);
    let (_mounted, files) = Mounted::write(&api, &materials);
    let args = DatabaseArgs { database_url: "sqlite::memory:".into(), config: files, schemas: vec![] };
    let config = load(&args).unwrap_or_else(|e| panic!("the runtime refuses the example's configuration: {e}"));
    assert_eq!(config.api_keys.len(), api.spec.api_keys.len());
    assert_eq!(config.roles.len(), api.spec.roles.len());
    let policy = dbapi_runtime::policy::Policy::new(config)
        .await
        .unwrap_or_else(|e| panic!("the runtime refuses the example's configuration: {e}"));
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    for (role, key) in &by_role {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("apikey", key.parse().unwrap());
        let who = policy.authenticator.identify(&headers, now).await.unwrap();
        assert_eq!(who.role.as_deref(), Some(role.as_str()));
    }
    let anonymous = policy.authenticator.identify(&axum::http::HeaderMap::new(), now).await;
    assert!(anonymous.is_err(), "the example has no anonymous role");
}

/// A PostgreSQL database of this test's own, dropped with this value.
struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    async fn create() -> TestDatabase {
        let admin_url = match std::env::var(PG_URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ => panic!("set {PG_URL_VAR} (e.g. postgres://postgres@127.0.0.1:5432/postgres) or run ./scripts/test.sh"),
        };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("dbapi_shop_example_{}_{nanos}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {admin_url}: {e}"));
        let create = format!("CREATE DATABASE \"{name}\"");
        sqlx::raw_sql(AssertSqlSafe(create)).execute(&mut admin).await.unwrap();
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        TestDatabase { admin_url, name, url }
    }

    async fn connect(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url).await.unwrap()
    }
}

/// `url` with its database (the path) replaced; the query string is kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, String::new()), |(b, q)| (b, format!("?{q}")));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..].find('/').map_or(base.len(), |i| authority + i);
    format!("{}/{database}{query}", &base[..path])
}

impl Drop for TestDatabase {
    /// On a thread of its own: `Drop` runs inside the test's runtime, which
    /// cannot be blocked on. FORCE ends the runtime's own connections.
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut admin).await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop the test database {}: {dropped:?}", self.name);
        }
    }
}

/// The runtime's router on the example database, called with a role's key.
struct Served {
    router: dbapi_runtime::http::HttpService,
    keys: BTreeMap<String, String>,
}

struct Answer {
    status: StatusCode,
    body: Value,
}

impl Served {
    async fn call(&self, role: Option<&str>, method: &str, uri: &str, body: Option<&str>) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(role) = role {
            request = request.header("apikey", &self.keys[role]);
        }
        if body.is_some() {
            request = request.header("content-type", "application/json").header("prefer", "return=representation");
        }
        let request = request.body(Body::from(body.unwrap_or("").to_string())).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Answer { status, body }
    }

    /// GET as `role`, expecting 200 and an array of rows.
    async fn rows(&self, role: &str, uri: &str) -> Vec<serde_json::Map<String, Value>> {
        let answer = self.call(Some(role), "GET", uri, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{role}: GET {uri}: {}", answer.body);
        serde_json::from_value(answer.body).unwrap()
    }
}

/// `*` and `?` as in `tables` globs.
fn glob(pattern: &str, name: &str) -> bool {
    fn at(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => at(&p[1..], n) || (!n.is_empty() && at(p, &n[1..])),
            (Some(b'?'), Some(_)) => at(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => at(&p[1..], &n[1..]),
            _ => false,
        }
    }
    at(pattern.as_bytes(), name.as_bytes())
}

#[tokio::test]
async fn the_init_sql_loads_and_the_runtime_serves_every_rule_of_every_role() {
    let objects = objects();
    let api = database_api(&objects);
    let db = TestDatabase::create().await;
    let mut conn = db.connect().await;
    sqlx::raw_sql(AssertSqlSafe(init_sql(&objects)))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL refuses the example's init SQL: {e}"));

    // The tables and their columns, as the database has them.
    let mut columns: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let rows = sqlx::raw_sql(AssertSqlSafe(
        "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = 'public'",
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for row in rows {
        columns.entry(row.get::<String, _>(0)).or_default().insert(row.get::<String, _>(1));
    }
    assert!(columns.len() >= 4, "the example has its tables: {columns:?}");

    let (materials, keys) = keys(&api);
    let (_mounted, files) = Mounted::write(&api, &materials);
    let args = DatabaseArgs { database_url: db.url.clone(), config: files, schemas: vec![] };
    let config = load(&args).unwrap_or_else(|e| panic!("the runtime refuses the example's configuration: {e}"));
    let state = dbapi_runtime::server::prepare(&db.url, config)
        .await
        .unwrap_or_else(|e| panic!("the runtime does not start on the example database: {e}"));
    let served = Served { router: api_router(state), keys };

    for role in &api.spec.roles {
        assert!(served.keys.contains_key(&role.name), "no API key acts as {}: the README shows each role", role.name);
        let mut granted: BTreeMap<&str, Vec<&RuleSpec>> = BTreeMap::new();
        for rule in &role.rules {
            let tables: Vec<&str> =
                columns.keys().map(String::as_str).filter(|t| rule.tables.iter().any(|g| glob(g, t))).collect();
            for pattern in &rule.tables {
                assert!(tables.iter().any(|t| glob(pattern, t)), "{}: no table is {pattern}", role.name);
            }
            for table in tables {
                for column in &rule.columns {
                    assert!(columns[table].contains(column), "{}: {table} has no column {column}", role.name);
                }
                if rule.verbs.iter().any(|v| v == "GET") {
                    granted.entry(table).or_default().push(rule);
                }
            }
        }
        for (table, rules) in granted {
            // select=*: exactly the columns the GET rules show.
            let visible: BTreeSet<String> = if rules.iter().any(|r| r.columns.is_empty()) {
                columns[table].clone()
            } else {
                rules.iter().flat_map(|r| r.columns.iter().cloned()).collect()
            };
            let rows = served.rows(&role.name, &format!("/{table}?select=*")).await;
            assert!(!rows.is_empty(), "{}: {table} shows no row (a row filter on a wrong column?)", role.name);
            for row in &rows {
                let shown: BTreeSet<String> = row.keys().cloned().collect();
                assert_eq!(shown, visible, "{}: the columns of {table}", role.name);
            }
            // A row filter keeps some rows and not all of them.
            let total: i64 = sqlx::raw_sql(AssertSqlSafe(format!("SELECT count(*) FROM \"{table}\"")))
                .fetch_one(&mut conn)
                .await
                .unwrap()
                .get(0);
            if rules.iter().all(|r| r.row_filter.is_some()) {
                assert!((rows.len() as i64) < total, "{}: the row filter on {table} keeps every row", role.name);
            } else {
                assert_eq!(rows.len() as i64, total, "{}: {table} unfiltered", role.name);
            }
        }
    }

    // What examples/shop/README.md shows.
    let no_key = served.call(None, "GET", "/products", None).await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED, "{}", no_key.body);
    let products = served.rows("reader", "/products?select=name,price&order=price.desc").await;
    assert_eq!(products[0]["name"], "Brass pen");
    let customers = served.call(Some("reader"), "GET", "/customers", None).await;
    assert_eq!((customers.status, &customers.body["code"]), (StatusCode::NOT_FOUND, &Value::from("PGRST205")));
    let post = served.call(Some("reader"), "POST", "/products", Some(r#"{"sku":"X","name":"x","price":1}"#)).await;
    assert_eq!((post.status, &post.body["code"]), (StatusCode::FORBIDDEN, &Value::from("42501")));
    let email = served.call(Some("staff"), "GET", "/customers?select=name,email", None).await;
    assert_eq!((email.status, &email.body["code"]), (StatusCode::BAD_REQUEST, &Value::from("42703")));
    let orders = served
        .rows("staff", "/orders?select=id,status,region,customers(name),order_items(quantity,products(name))")
        .await;
    assert!(orders.iter().all(|o| o["region"] == "eu" && o["customers"]["name"].is_string()), "{orders:?}");
    assert_eq!(orders.len(), 4);
    let shipped = served.call(Some("staff"), "PATCH", "/orders?id=eq.3", Some(r#"{"status":"shipped"}"#)).await;
    assert_eq!(shipped.status, StatusCode::OK, "{}", shipped.body);
    assert_eq!(shipped.body[0]["status"], "shipped");
    let us_order = served.call(Some("staff"), "PATCH", "/orders?id=eq.5", Some(r#"{"status":"cancelled"}"#)).await;
    assert_eq!(
        (us_order.status, &us_order.body),
        (StatusCode::OK, &Value::Array(vec![])),
        "a US order is not the desk's"
    );
    let region = served.call(Some("staff"), "PATCH", "/orders?id=eq.2", Some(r#"{"region":"us"}"#)).await;
    assert_eq!((region.status, &region.body["code"]), (StatusCode::BAD_REQUEST, &Value::from("PGRST204")));
}
