//! Request rate limits per key and client IP, as processes on real sockets: the
//! 429 and its headers, one limit shared by two processes through Redis,
//! the in-process fallback while Redis is down, and the trusted proxy
//! header.
//!
//! Needs `DBAPI_TEST_REDIS_URL` (the shared Redis; each test writes under a
//! key prefix of its own and never stops it). The outage test starts a
//! throwaway `redis-server` of its own.

mod support;

use std::time::{Duration, Instant};

use support::process::{OwnRedis, Reply, Runtime, TempDir, free_port, get};

fn redis_url() -> String {
    support::server_url(support::REDIS_URL_VAR)
}

/// A key prefix no other test (or run) shares.
fn key_prefix() -> String {
    format!("{}:", support::unique_name())
}

/// A runtime process on free ports with `config`, sharing its limits
/// through `redis` (URL, key prefix) when given.
struct Server {
    runtime: Runtime,
    api: u16,
    _dir: TempDir,
}

impl Server {
    fn start(db_url: &str, config: &str, redis: Option<(&str, &str)>) -> Server {
        let dir = TempDir::new();
        let config_path = dir.0.join("config.yaml");
        std::fs::write(&config_path, config).unwrap();
        let mut args = vec!["--database-url", db_url, "--config", config_path.to_str().unwrap()];
        if let Some((url, prefix)) = redis {
            args.extend(["--redis-url", url, "--redis-key-prefix", prefix]);
        }
        let runtime = Runtime::serve(&dir.0, &args);
        Server { api: runtime.api, runtime, _dir: dir }
    }

    fn get(&self, path: &str) -> Reply {
        self.runtime.get(path, &[])
    }

    fn get_from(&self, path: &str, forwarded_for: &str) -> Reply {
        self.runtime.get(path, &[("X-Forwarded-For", forwarded_for)])
    }

    fn log(&self) -> String {
        self.runtime.log()
    }
}

async fn database() -> support::TestDb {
    support::sqlite_database("CREATE TABLE items (id integer PRIMARY KEY); INSERT INTO items VALUES (1);").await
}

/// One request every minute, three at once.
const THREE_AT_ONCE: &str = "rateLimit: {requestsPerMinute: 1, burst: 2}\n";

fn assert_refused(r: &Reply) {
    assert_eq!(r.status, 429, "{}", r.body);
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["code"], "DBAPI429", "{body}");
    assert!(body["message"].as_str().unwrap().contains("Too many requests"), "{body}");
    // The next request is allowed one interval (60 s) after the third, less
    // the time the test took since (leeway for a slow machine).
    assert!((50..=60).contains(&r.number("Retry-After")), "{:?}", r.headers);
    assert_eq!((r.number("RateLimit-Limit"), r.number("RateLimit-Remaining")), (3, 0));
    assert!((170..=180).contains(&r.number("RateLimit-Reset")), "{:?}", r.headers);
}

#[tokio::test]
async fn rate_limit_refuses_past_the_burst_with_429_and_headers() {
    let db = database().await;
    let redis = redis_url();
    let server = Server::start(&db.url, THREE_AT_ONCE, Some((&redis, &key_prefix())));
    for (n, remaining) in [(1, 2), (2, 1), (3, 0)] {
        let r = server.get("/items");
        assert_eq!(r.status, 200, "request {n}: {}", r.body);
        assert_eq!((r.number("RateLimit-Limit"), r.number("RateLimit-Remaining")), (3, remaining), "request {n}");
        // Seconds until the bucket is full again: one interval per request used.
        assert!((n * 60 - 10..=n * 60).contains(&r.number("RateLimit-Reset")), "request {n}: {:?}", r.headers);
        assert!(r.header("Retry-After").is_none());
    }
    assert_refused(&server.get("/items"));
    // Any path counts, and stays refused.
    assert_refused(&server.get("/"));
    assert!(!server.log().contains("Redis is unreachable"), "{}", server.log());
}

#[tokio::test]
async fn rate_limit_is_shared_by_two_processes_through_redis() {
    let db = database().await;
    let (redis, prefix) = (redis_url(), key_prefix());
    let a = Server::start(&db.url, THREE_AT_ONCE, Some((&redis, &prefix)));
    let b = Server::start(&db.url, THREE_AT_ONCE, Some((&redis, &prefix)));
    for _ in 0..3 {
        assert_eq!(a.get("/items").status, 200);
    }
    // The second process knows what the first one allowed.
    assert_refused(&b.get("/items"));
    assert_refused(&a.get("/items"));
    // A process on another prefix (another API) has its own limit.
    let c = Server::start(&db.url, THREE_AT_ONCE, Some((&redis, &key_prefix())));
    assert_eq!(c.get("/items").number("RateLimit-Remaining"), 2);
}

#[tokio::test]
async fn rate_limit_falls_back_in_process_while_redis_is_down() {
    let db = database().await;
    let dir = TempDir::new();
    let port = free_port();
    let own = OwnRedis::start(port, &dir.0);
    let prefix = key_prefix();
    let server = Server::start(&db.url, THREE_AT_ONCE, Some((&own.url(), &prefix)));
    let r = server.get("/items");
    assert_eq!((r.status, r.number("RateLimit-Remaining")), (200, 2));
    let key = format!("{prefix}rate:ip:127.0.0.1");
    assert_eq!(own.keys(&format!("{prefix}*")), std::slice::from_ref(&key));
    // The key goes when the bucket is full again: one interval from now.
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut own.connection().unwrap()).unwrap();
    assert!((1..=60_000).contains(&ttl), "{ttl}");

    drop(own);
    // No request fails because Redis is gone, and this replica still limits
    // by itself: a fresh bucket of three, then 429.
    let statuses: Vec<u16> = (0..4).map(|_| server.get("/items").status).collect();
    assert_eq!(statuses, [200, 200, 200, 429], "{}", server.log());
    assert_refused(&server.get("/items"));
    let log = server.log();
    assert_eq!(log.matches("Redis is unreachable").count(), 1, "one warning per outage: {log}");

    // Redis comes back (empty) on the same port: the limiter returns to it
    // by itself, and the bucket there is the shared one again.
    let own = OwnRedis::start(port, &dir.0);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = server.get("/items");
        assert!(r.status == 200 || r.status == 429, "{}", r.body);
        if !own.keys(&format!("{prefix}*")).is_empty() {
            assert_eq!(r.status, 200, "a fresh shared bucket allows the request");
            break;
        }
        assert!(Instant::now() < deadline, "the limiter did not return to Redis: {}", server.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(server.log().contains("Redis is back"), "{}", server.log());
    drop(own);
}

#[tokio::test]
async fn rate_limit_believes_the_forwarded_for_header_only_from_trusted_proxies() {
    let db = database().await;
    let redis = redis_url();
    // One request per client; the test's own address is a trusted proxy.
    let trusted = "rateLimit: {requestsPerMinute: 1, burst: 0}\napi: {trustedProxies: [127.0.0.0/8]}\n";
    let server = Server::start(&db.url, trusted, Some((&redis, &key_prefix())));
    assert_eq!(server.get_from("/items", "203.0.113.1").status, 200);
    assert_eq!(server.get_from("/items", "203.0.113.2, 127.0.0.5").status, 200, "another client");
    assert_eq!(server.get_from("/items", "198.51.100.7, 203.0.113.1").status, 429, "the first client again");
    assert_eq!(server.get("/items").status, 200, "the proxy itself is a client too");

    // From a peer that is not a trusted proxy the header is ignored: every
    // request is the peer's.
    let untrusted = "rateLimit: {requestsPerMinute: 1, burst: 0}\napi: {trustedProxies: [10.0.0.0/8]}\n";
    let server = Server::start(&db.url, untrusted, Some((&redis, &key_prefix())));
    assert_eq!(server.get_from("/items", "203.0.113.1").status, 200);
    assert_eq!(server.get_from("/items", "203.0.113.2").status, 429);
}

/// Key `fast` has its own limit (two at once); other keys and refused
/// attempts fall under the document's (three at once).
const KEYED: &str = "rateLimit: {requestsPerMinute: 1, burst: 2}
apiKeys:
- {name: fast, role: app, hashes: [{sha256: 3ea1ddd10e1ff8f9e4b1a5a3f1d8b0d0e5c4b0d7f2f5a1c9e8d7c6b5a4f3e2d1}], rateLimit: {requestsPerMinute: 1, burst: 1}}
- {name: plain, role: app, hashes: [{sha256: PLAIN}]}
";

#[tokio::test]
async fn rate_limits_count_keys_by_name_and_refused_attempts_by_address() {
    use dbapi_crds::keys::sha256_hex;
    let db = database().await;
    let (redis, prefix) = (redis_url(), key_prefix());
    let config = KEYED
        .replace("3ea1ddd10e1ff8f9e4b1a5a3f1d8b0d0e5c4b0d7f2f5a1c9e8d7c6b5a4f3e2d1", &sha256_hex("dbapi_fast"))
        .replace("PLAIN", &sha256_hex("dbapi_plain"));
    let a = Server::start(&db.url, &config, Some((&redis, &prefix)));
    let b = Server::start(&db.url, &config, Some((&redis, &prefix)));
    let with_key = |server: &Server, key: &str| get(server.api, "/items", &[("apikey", key)]).unwrap();
    // The key's own bucket, shared by both processes.
    let first = with_key(&a, "dbapi_fast");
    assert_eq!((first.status, first.number("RateLimit-Limit"), first.number("RateLimit-Remaining")), (200, 2, 1));
    assert_eq!(with_key(&b, "dbapi_fast").status, 200);
    let refused = with_key(&a, "dbapi_fast");
    assert_eq!((refused.status, refused.number("RateLimit-Limit")), (429, 2), "{}", refused.body);
    // Another key is another caller, under the document's limit.
    let plain = with_key(&b, "dbapi_plain");
    assert_eq!((plain.status, plain.number("RateLimit-Limit"), plain.number("RateLimit-Remaining")), (200, 3, 2));
    // Wrong keys count against the client's address: three 401s, then 429,
    // and the address's bucket is not the keys'.
    for _ in 0..3 {
        assert_eq!(with_key(&a, "dbapi_guess").status, 401);
    }
    assert_refused(&with_key(&b, "dbapi_guess"));
    assert_eq!(with_key(&a, "dbapi_plain").status, 200);
}

/// Role `slow` has its own limit (one at a time), applied to each caller
/// acting as it: each of its keys by name, the anonymous role by address.
/// Role `app` has none, so its key falls under the document's.
const ROLE_LIMITED: &str = "rateLimit: {requestsPerMinute: 1, burst: 2}
auth: {anonymousRole: slow}
roles:
- {name: slow, rateLimit: {requestsPerMinute: 1, burst: 0}, rules: [{tables: [items], verbs: [GET]}]}
- {name: app, rules: [{tables: [items], verbs: [GET]}]}
apiKeys:
- {name: one, role: slow, hashes: [{sha256: ONE}]}
- {name: two, role: slow, hashes: [{sha256: TWO}]}
- {name: app, role: app, hashes: [{sha256: APP}]}
";

#[tokio::test]
async fn a_roles_rate_limit_applies_to_each_caller_acting_as_it() {
    use dbapi_crds::keys::sha256_hex;
    let db = database().await;
    let config = ROLE_LIMITED
        .replace("ONE", &sha256_hex("dbapi_one"))
        .replace("TWO", &sha256_hex("dbapi_two"))
        .replace("APP", &sha256_hex("dbapi_app"));
    let server = Server::start(&db.url, &config, Some((&redis_url(), &key_prefix())));
    let with_key = |key: &str| get(server.api, "/items", &[("apikey", key)]).unwrap();
    let limit_and_status = |r: &Reply| (r.status, r.number("RateLimit-Limit"));
    // The role's limit, not the document's, for its keys...
    assert_eq!(limit_and_status(&with_key("dbapi_one")), (200, 1));
    assert_eq!(limit_and_status(&with_key("dbapi_one")), (429, 1));
    // ...each in its own bucket...
    assert_eq!(limit_and_status(&with_key("dbapi_two")), (200, 1));
    // ...and for anonymous calls, by address.
    assert_eq!(limit_and_status(&server.get("/items")), (200, 1));
    assert_eq!(limit_and_status(&server.get("/items")), (429, 1));
    // A role without a limit of its own takes the document's.
    for _ in 0..3 {
        assert_eq!(limit_and_status(&with_key("dbapi_app")), (200, 3));
    }
    assert_eq!(limit_and_status(&with_key("dbapi_app")), (429, 3));
}

/// `rediss://`: two processes share one limit through a Redis that they
/// reach over TLS only, trusting its CA through `SSL_CERT_FILE`.
#[tokio::test]
async fn rate_limit_is_shared_through_a_tls_redis() {
    let db = database().await;
    let dir = TempDir::new();
    let (plain_port, tls_port) = (free_port(), free_port());
    let (redis, tls) = OwnRedis::start_tls(plain_port, tls_port, &dir.0);
    let url = format!("rediss://localhost:{tls_port}");
    let start = |name: &str| {
        let home = dir.0.join(name);
        std::fs::create_dir_all(&home).unwrap();
        let config = home.join("config.yaml");
        std::fs::write(&config, THREE_AT_ONCE).unwrap();
        let args = ["--database-url", &db.url, "--config", config.to_str().unwrap(), "--redis-url", &url];
        Runtime::serve_with_env(&home, &args, &[("SSL_CERT_FILE", tls.ca_cert.to_str().unwrap())])
    };
    let (a, b) = (start("a"), start("b"));
    assert_eq!(a.get("/items", &[]).status, 200);
    assert_eq!(b.get("/items", &[]).status, 200);
    assert_eq!(a.get("/items", &[]).status, 200);
    assert_refused(&b.get("/items", &[]));
    assert_eq!(redis.keys("dbapi:rate:*").len(), 1, "one shared bucket, written over TLS");
    assert!(a.log().contains("shared by all replicas through Redis"), "{}", a.log());
}
