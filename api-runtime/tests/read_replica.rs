//! Read replicas (issue 19, item 5): a PostgreSQL streaming standby started
//! by the test takes GET reads; writes and POST /rpc go to the primary; a
//! write's `Dbapi-Consistency-Token` makes a read wait for the standby to
//! replay it (else the primary answers); a standby that lags past
//! `database.readReplica.maxLagSeconds` or stops sends reads back to the
//! primary, and it takes them again once it is well.
//!
//! Which server answered is visible through `server_port()`, a STABLE
//! function returning `inet_server_port()`.

#[path = "read_replica/cluster.rs"]
mod cluster;
#[path = "read_replica/mariadb_pair.rs"]
mod mariadb_pair;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Request};
use cluster::PgCluster;
use dbapi_crds::config::RuntimeConfig;
use dbapi_runtime::http::HttpService;
use dbapi_runtime::http::api_router;
use dbapi_runtime::redis_link::RedisSettings;
use http_body_util::BodyExt;
use tower::ServiceExt;

const FIXTURE: &str = "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
INSERT INTO items (name) VALUES ('first');
CREATE FUNCTION server_port() RETURNS int AS 'SELECT inet_server_port()' LANGUAGE sql STABLE;";

const TOKEN: &str = "dbapi-consistency-token";

struct App {
    router: HttpService,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn token(&self) -> String {
        let token = self.headers.get(TOKEN).unwrap_or_else(|| panic!("no {TOKEN}: {:?}", self.headers));
        token.to_str().unwrap().to_string()
    }
}

impl App {
    /// The runtime on the cluster's primary, with its standby as the read
    /// replica.
    async fn on(cluster: &PgCluster, max_lag_seconds: u64) -> App {
        App::serving(&cluster.primary_url(), &cluster.standby_url(), max_lag_seconds).await
    }

    async fn serving(primary: &str, replica: &str, max_lag_seconds: u64) -> App {
        let mut config = RuntimeConfig::default();
        config.database.read_replica.max_lag_seconds = max_lag_seconds;
        let state = dbapi_runtime::server::prepare_shared(primary, Some(replica), config, &RedisSettings::default())
            .await
            .unwrap_or_else(|e| panic!("the runtime did not start: {e}"));
        App { router: api_router(state) }
    }

    async fn send(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut request = Request::builder().method(method).uri(uri).header("content-type", "application/json");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = self.router.clone().oneshot(request.body(Body::from(body.to_string())).unwrap()).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        Answer { status: parts.status.as_u16(), headers: parts.headers, body: String::from_utf8_lossy(&bytes).into() }
    }

    async fn get(&self, uri: &str, headers: &[(&str, &str)]) -> Answer {
        let answer = self.send("GET", uri, headers, "").await;
        assert_eq!(answer.status, 200, "GET {uri}: {}", answer.body);
        answer
    }

    /// The port of the server that answered a GET of `server_port()`.
    async fn read_port(&self, headers: &[(&str, &str)]) -> u16 {
        self.get("/rpc/server_port", headers).await.json().as_u64().expect("a port") as u16
    }

    /// Waits until GET reads (with `headers`) are answered by `port`.
    async fn wait_for_reads_on(&self, port: u16, headers: &[(&str, &str)], what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.read_port(headers).await == port {
                return;
            }
            assert!(Instant::now() < deadline, "reads never went to {what} (port {port})");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The names of the items read with `headers`.
    async fn names(&self, filter: &str, headers: &[(&str, &str)]) -> Vec<String> {
        let rows = self.get(&format!("/items?select=name&{filter}"), headers).await.json();
        rows.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
    }
}

/// The standby with its fixture replayed.
async fn cluster() -> PgCluster {
    let cluster = tokio::task::spawn_blocking(PgCluster::start).await.unwrap();
    cluster.execute(false, FIXTURE).await;
    cluster.wait_for_standby().await;
    cluster
}

fn in_use_gauge() -> f64 {
    let text = dbapi_runtime::metrics::global().render();
    support::process::sample(&text, "dbapi_read_replica_in_use").expect("the gauge is exposed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_the_standby_and_a_token_reads_its_own_writes() {
    let cluster = cluster().await;
    let app = App::on(&cluster, 10).await;
    let (primary, standby) = (cluster.primary_port, cluster.standby_port);

    assert_eq!(app.read_port(&[]).await, standby, "GET /rpc reads on the standby");
    assert_eq!(app.names("", &[]).await, ["first"]);
    assert_eq!(in_use_gauge(), 1.0);
    let posted = app.send("POST", "/rpc/server_port", &[], "{}").await;
    assert_eq!((posted.status, posted.json()), (200, serde_json::json!(primary)), "POST /rpc runs on the primary");
    assert!(posted.token().contains('/'), "a committed call gives a token: {}", posted.token());

    // Replay paused: the standby stays at what it had.
    cluster.execute(true, "SELECT pg_wal_replay_pause()").await;
    let written = app.send("POST", "/items", &[("prefer", "return=representation")], r#"{"name": "second"}"#).await;
    assert_eq!(written.status, 201, "{}", written.body);
    let token = written.token();
    let with_token = [(TOKEN, token.as_str())];
    assert_eq!(app.names("name=eq.second", &with_token).await, ["second"], "the token's read sees the write");
    assert_eq!(app.read_port(&with_token).await, primary, "...on the primary, the standby being behind it");
    assert!(app.names("name=eq.second", &[]).await.is_empty(), "a read without it is the standby's, stale");
    assert_eq!(app.read_port(&[]).await, standby);
    let head = app.send("HEAD", "/items", &with_token, "").await;
    assert_eq!(head.status, 200);

    // Once replayed, the token's reads go to the standby too.
    cluster.execute(true, "SELECT pg_wal_replay_resume()").await;
    app.wait_for_reads_on(standby, &with_token, "the standby for a replayed token").await;
    assert_eq!(app.names("name=eq.second", &with_token).await, ["second"]);

    // A rolled back write changes nothing and gives no token.
    let undone = app.send("POST", "/items", &[("prefer", "tx=rollback")], r#"{"name": "never"}"#).await;
    assert_eq!(undone.status, 201, "{}", undone.body);
    assert!(undone.headers.get(TOKEN).is_none());
    let patched = app.send("PATCH", "/items?name=eq.first", &[], r#"{"name": "premier"}"#).await;
    assert_eq!(patched.status, 204, "{}", patched.body);
    assert!(patched.token().contains('/'), "a write in autocommit gives one too");

    for bad in ["yesterday", "0/", "1-1-1", ""] {
        let refused = app.send("GET", "/items", &[(TOKEN, bad)], "").await;
        assert_eq!(refused.status, 400, "{bad:?}: {}", refused.body);
        assert_eq!(refused.json()["code"], "DBAPI107", "{}", refused.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_lagging_past_the_bound_sends_reads_to_the_primary_until_it_catches_up() {
    let cluster = cluster().await;
    let app = App::on(&cluster, 1).await;
    let (primary, standby) = (cluster.primary_port, cluster.standby_port);
    app.wait_for_reads_on(standby, &[], "the standby").await;

    cluster.execute(true, "SELECT pg_wal_replay_pause()").await;
    let written = app.send("POST", "/items", &[], r#"{"name": "late"}"#).await;
    assert_eq!(written.status, 201, "{}", written.body);
    app.wait_for_reads_on(primary, &[], "the primary once the standby lags").await;
    assert_eq!(app.names("name=eq.late", &[]).await, ["late"], "the primary has it");
    assert_eq!(in_use_gauge(), 0.0);

    cluster.execute(true, "SELECT pg_wal_replay_resume()").await;
    app.wait_for_reads_on(standby, &[], "the standby once it caught up").await;
    assert_eq!(app.names("name=eq.late", &[]).await, ["late"]);
    assert_eq!(in_use_gauge(), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_standby_fails_no_read_and_takes_reads_again_once_restarted() {
    let cluster = cluster().await;
    let app = Arc::new(App::on(&cluster, 10).await);
    let (primary, standby) = (cluster.primary_port, cluster.standby_port);
    app.wait_for_reads_on(standby, &[], "the standby").await;

    // Reads all along, while the standby goes away.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                statuses.push(app.send("GET", "/items", &[], "").await.status);
                statuses.push(app.send("GET", "/rpc/server_port", &[], "").await.status);
            }
            statuses
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await; // some reads on the standby first
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop_standby();
        cluster
    })
    .await
    .unwrap();
    app.wait_for_reads_on(primary, &[], "the primary once the standby stopped").await;
    tokio::time::sleep(Duration::from_millis(200)).await; // and some after
    stop.store(true, Ordering::Relaxed);
    let statuses = reader.await.unwrap();
    assert!(statuses.len() > 10, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200), "every read was answered: {statuses:?}");
    assert_eq!(in_use_gauge(), 0.0);

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart_standby();
        cluster
    })
    .await
    .unwrap();
    app.wait_for_reads_on(standby, &[], "the standby once restarted").await;
    assert_eq!(app.names("", &[]).await, ["first"]);
    assert_eq!(in_use_gauge(), 1.0);
    drop(cluster);
}

/// MariaDB: a replica following by GTID three seconds behind takes reads;
/// a token (a GTID position) waits for it; a stopped SQL thread sends reads
/// to the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_replica_takes_reads_and_a_gtid_token_waits_for_it() {
    let pair = mariadb_pair::MariaDbPair::start(3).await;
    pair.execute(
        false,
        "CREATE DATABASE app; CREATE TABLE app.items (id int AUTO_INCREMENT PRIMARY KEY, name varchar(100) NOT NULL); \
         INSERT INTO app.items (name) VALUES ('first'); \
         CREATE FUNCTION app.server_port() RETURNS int READS SQL DATA RETURN @@port",
    )
    .await;
    pair.wait_on_replica("SELECT COUNT(*) FROM app.items", 1).await;
    let app = App::serving(&pair.url(false, "app"), &pair.url(true, "app"), 30).await;
    let (primary, replica) = (pair.primary_port, pair.replica_port);
    app.wait_for_reads_on(replica, &[], "the replica").await;
    assert_eq!(in_use_gauge(), 1.0);

    let written = app.send("POST", "/items", &[], r#"{"name": "second"}"#).await;
    assert_eq!(written.status, 201, "{}", written.body);
    let token = written.token();
    assert!(token.starts_with("0-1-"), "a GTID position: {token}");
    let with_token = [(TOKEN, token.as_str())];
    assert_eq!(app.read_port(&with_token).await, primary, "the replica is 3 s behind the token");
    assert_eq!(app.names("name=eq.second", &with_token).await, ["second"]);
    assert!(app.names("name=eq.second", &[]).await.is_empty(), "without it: the replica, stale");
    app.wait_for_reads_on(replica, &with_token, "the replica once it applied the write").await;
    assert_eq!(app.names("name=eq.second", &with_token).await, ["second"]);

    pair.execute(true, "STOP SLAVE SQL_THREAD").await;
    app.wait_for_reads_on(primary, &[], "the primary while the replica does not replicate").await;
    assert_eq!(in_use_gauge(), 0.0);
    pair.execute(true, "START SLAVE SQL_THREAD").await;
    app.wait_for_reads_on(replica, &[], "the replica replicating again").await;
}

/// The shared test server is no standby: reads stay on the primary, and a
/// token is still checked and honoured.
#[tokio::test]
async fn a_server_that_is_not_a_standby_is_never_used() {
    let db = support::pg_database(FIXTURE).await;
    let state = dbapi_runtime::server::prepare_shared(
        &db.url,
        Some(&db.url),
        RuntimeConfig::default(),
        &RedisSettings::default(),
    )
    .await
    .unwrap();
    let app = App { router: api_router(state) };
    let written = app.send("POST", "/items", &[], r#"{"name": "second"}"#).await;
    assert_eq!(written.status, 201, "{}", written.body);
    let token = written.token();
    assert_eq!(app.names("order=id", &[(TOKEN, &token)]).await, ["first", "second"]);
    let refused = app.send("GET", "/rpc/server_port", &[(TOKEN, "0-1-2")], "").await;
    assert_eq!(refused.status, 400, "{}", refused.body);
}

/// Without a replica, no token is given and the header is not looked at.
#[tokio::test]
async fn without_a_replica_writes_give_no_token() {
    let db = support::pg_database(FIXTURE).await;
    let state = dbapi_runtime::server::prepare(&db.url, RuntimeConfig::default()).await.unwrap();
    let app = App { router: api_router(state) };
    let written = app.send("POST", "/items", &[], r#"{"name": "second"}"#).await;
    assert_eq!(written.status, 201, "{}", written.body);
    assert!(written.headers.get(TOKEN).is_none());
    assert_eq!(app.names("name=eq.second", &[(TOKEN, "not a token")]).await, ["second"]);
}

#[tokio::test]
async fn replicas_of_another_engine_or_of_sqlite_are_refused_at_start_up() {
    let refusal = |url: String, replica: &'static str| async move {
        let started = dbapi_runtime::server::prepare_shared(
            &url,
            Some(replica),
            RuntimeConfig::default(),
            &RedisSettings::default(),
        )
        .await;
        started.err().expect("refused").to_string()
    };
    let sqlite = support::sqlite_database("CREATE TABLE t (id integer PRIMARY KEY);").await;
    let message = refusal(sqlite.url.clone(), "sqlite:///tmp/replica.db").await;
    assert!(message.contains("SQLite has no replicas") && message.contains("DBAPI_READ_REPLICA_URL"), "{message}");
    let pg = support::pg_database("CREATE TABLE t (id int PRIMARY KEY);").await;
    let message = refusal(pg.url.clone(), "mysql://root@127.0.0.1:1/x").await;
    assert!(message.contains("same engine") && message.contains("PostgreSQL"), "{message}");
    let message = refusal(pg.url.clone(), "oracle://db").await;
    assert!(message.contains("DBAPI_READ_REPLICA_URL") && message.contains("oracle"), "{message}");
}
