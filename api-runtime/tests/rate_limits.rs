//! Request rate limits per client IP, as processes on real sockets: the
//! 429 and its headers, one limit shared by two processes through Redis,
//! the in-process fallback while Redis is down, and the trusted proxy
//! header.
//!
//! Needs `DBAPI_TEST_REDIS_URL` (the shared Redis; each test writes under a
//! key prefix of its own and never stops it). The outage test starts a
//! throwaway `redis-server` of its own.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_dbapi-runtime");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn redis_url() -> String {
    match std::env::var("DBAPI_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("set DBAPI_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) or run ./scripts/test.sh"),
    }
}

/// A key prefix no other test (or run) shares.
fn key_prefix() -> String {
    format!("{}:", support::unique_name())
}

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    fn number(&self, name: &str) -> u64 {
        self.header(name).unwrap_or_else(|| panic!("no {name} header: {:?}", self.headers)).parse().unwrap()
    }
}

/// One HTTP/1.1 request over a plain socket.
fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Reply> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n")?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Reply { status, headers, body: body.to_string() })
}

/// A runtime process on free ports, killed on drop.
struct Server {
    child: Child,
    api: u16,
    stderr: PathBuf,
}

impl Server {
    fn start(db_url: &str, config: &str, redis: Option<(&str, &str)>) -> Server {
        let dir = std::env::temp_dir().join(support::unique_name());
        std::fs::create_dir_all(&dir).unwrap();
        let config_path = dir.join("config.yaml");
        std::fs::write(&config_path, config).unwrap();
        let stderr = dir.join("stderr.log");
        let (api, admin) = (free_port(), free_port());
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--database-url", db_url, "--config", config_path.to_str().unwrap()])
            .args(["--listen", &format!("127.0.0.1:{api}"), "--admin-listen", &format!("127.0.0.1:{admin}")])
            .env_remove("DBAPI_REDIS_URL")
            .env_remove("DBAPI_REDIS_KEY_PREFIX")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap());
        if let Some((url, prefix)) = redis {
            command.args(["--redis-url", url, "--redis-key-prefix", prefix]);
        }
        let child = command.spawn().expect("the binary starts");
        let server = Server { child, api, stderr };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            // The admin port is never limited, however often it is asked.
            if let Ok(Reply { status: 200, .. }) = get(admin, "/readyz", &[]) {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the server did not become ready: {}", server.log());
    }

    fn get(&self, path: &str) -> Reply {
        get(self.api, path, &[]).expect("the server answers")
    }

    fn get_from(&self, path: &str, forwarded_for: &str) -> Reply {
        get(self.api, path, &[("X-Forwarded-For", forwarded_for)]).expect("the server answers")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.stderr.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
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

/// A throwaway Redis on a free port, stopped on drop (its directory
/// stays, for a restart on the same port).
struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    fn start(port: u16, dir: &Path) -> OwnRedis {
        let binary = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]
            .iter()
            .map(|d| Path::new(d).join("redis-server"))
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("redis-server"));
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (apt-get install redis-server)");
        let redis = OwnRedis { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if redis.connection().is_ok() {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the throwaway redis-server does not answer on port {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        let mut c = redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(1))?;
        redis::cmd("PING").query::<()>(&mut c)?;
        Ok(c)
    }

    fn keys(&self, pattern: &str) -> Vec<String> {
        redis::cmd("KEYS").arg(pattern).query(&mut self.connection().unwrap()).unwrap()
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn rate_limit_falls_back_in_process_while_redis_is_down() {
    let db = database().await;
    let dir = std::env::temp_dir().join(support::unique_name());
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let own = OwnRedis::start(port, &dir);
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
    let own = OwnRedis::start(port, &dir);
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
    let _ = std::fs::remove_dir_all(&dir);
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
