//! The response cache across processes, on the built binary: two runtimes
//! sharing one Redis see each other's entries and writes; a Redis that goes
//! away is bypassed without a failed request and used again when it is
//! back; and on PostgreSQL a write outside the API reaches the cache
//! through the change feed.

mod support;

use std::process::Command;
use std::time::Duration;

use support::process::{OwnRedis, Reply, Runtime, TempDir, free_port, send, wait_for};

const CACHE: &str = "cache: {defaultTtlSeconds: 300}\n";

fn start(root: &TempDir, name: &str, db_url: &str, redis: Option<&str>) -> Runtime {
    let dir = root.0.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(&config, CACHE).unwrap();
    let prefix = format!("{}:", root.0.file_name().unwrap().to_string_lossy());
    let mut args = vec!["--database-url", db_url, "--config", config.to_str().unwrap()];
    if let Some(url) = redis {
        args.extend(["--redis-url", url, "--redis-key-prefix", &prefix]);
    }
    Runtime::serve(&dir, &args)
}

fn status(r: &Reply) -> &str {
    r.header("cache-status").unwrap_or("none")
}

#[tokio::test]
async fn two_processes_share_entries_and_writes_through_redis() {
    let db = support::sqlite_database(
        "CREATE TABLE items (id integer PRIMARY KEY, label text); INSERT INTO items VALUES (1, 'one');",
    )
    .await;
    let (root, redis_dir) = (TempDir::new(), TempDir::new());
    let redis = OwnRedis::start(free_port(), &redis_dir.0);
    let a = start(&root, "a", &db.url, Some(&redis.url()));
    let b = start(&root, "b", &db.url, Some(&redis.url()));
    let first = a.get("/items", &[]);
    assert_eq!((first.status, status(&first)), (200, "dbapi; fwd=miss"));
    // B finds A's entry in Redis.
    let from_b = b.get("/items", &[]);
    assert_eq!((from_b.status, status(&from_b)), (200, "dbapi; hit"));
    assert_eq!(from_b.body, first.body);
    assert_eq!(from_b.header("etag"), first.header("etag"));
    assert!(!redis.keys("*resp:*").is_empty(), "the answer is in Redis");

    // A write through A: B's next read is fresh at once.
    assert_eq!(send(a.api, "PATCH", "/items?id=eq.1", &[], Some(r#"{"label": "uno"}"#)).unwrap().status, 204);
    let after = b.get("/items", &[]);
    assert_eq!((after.status, status(&after)), (200, "dbapi; fwd=miss"));
    assert!(after.body.contains("uno"), "{}", after.body);
    assert_eq!(b.metric("dbapi_cache_requests_total{result=\"hit\"}"), 1.0, "{}", b.metrics());
    assert_eq!(b.metric("dbapi_cache_requests_total{result=\"miss\"}"), 1.0);
}

#[tokio::test]
async fn a_redis_outage_bypasses_the_cache_and_no_request_fails() {
    let db =
        support::sqlite_database("CREATE TABLE items (id integer PRIMARY KEY); INSERT INTO items VALUES (1);").await;
    let (root, redis_dir) = (TempDir::new(), TempDir::new());
    let port = free_port();
    let redis = OwnRedis::start(port, &redis_dir.0);
    let runtime = start(&root, "a", &db.url, Some(&redis.url()));
    assert_eq!(status(&runtime.get("/items", &[])), "dbapi; fwd=miss");
    assert_eq!(status(&runtime.get("/items", &[])), "dbapi; hit");
    drop(redis);
    for _ in 0..5 {
        let r = runtime.get("/items", &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(matches!(status(&r), "dbapi; fwd=bypass" | "dbapi; hit"), "{:?}", r.headers);
    }
    let r = runtime.get("/items", &[]);
    assert_eq!((r.status, status(&r)), (200, "dbapi; fwd=bypass"));
    assert!(r.header("etag").is_some(), "validators without the cache too");
    assert!(runtime.metric("dbapi_cache_requests_total{result=\"bypass\"}") >= 1.0);

    // Back (empty): the cache is used again, by itself.
    let _redis = OwnRedis::start(port, &redis_dir.0);
    wait_for(
        Duration::from_secs(30),
        || format!("the cache to use Redis again: {}", runtime.log()),
        || (status(&runtime.get("/items", &[])) != "dbapi; fwd=bypass").then_some(()),
    );
    assert_eq!(status(&runtime.get("/items", &[])), "dbapi; hit");
}

/// A write that never went through the API (psql here) reaches the cache
/// through the change feed: the next read is fresh without waiting for the
/// TTL.
#[tokio::test]
async fn the_change_feed_refreshes_answers_after_outside_writes() {
    let db = support::pg_database(
        "CREATE TABLE items (id int PRIMARY KEY, label text); INSERT INTO items VALUES (1, 'one');",
    )
    .await;
    let install = Command::new(env!("CARGO_BIN_EXE_dbapi-runtime"))
        .args(["install-change-feed", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(install.status.success(), "{}", String::from_utf8_lossy(&install.stderr));
    let root = TempDir::new();
    let runtime = start(&root, "a", &db.url, None);
    assert_eq!(status(&runtime.get("/items", &[])), "dbapi; fwd=miss");
    assert_eq!(status(&runtime.get("/items", &[])), "dbapi; hit");
    db.execute("UPDATE items SET label = 'changed outside' WHERE id = 1").await;
    let fresh = wait_for(
        Duration::from_secs(10),
        || format!("the change to reach the cache: {}", runtime.log()),
        || Some(runtime.get("/items", &[])).filter(|r| r.body.contains("changed outside")),
    );
    assert_eq!(status(&fresh), "dbapi; fwd=miss");
}

/// Cache lookups under load that cannot use a mirrored copy (their Redis
/// user may not subscribe) share their reads of the generations (one
/// `MGET` for many), yet a read that starts after a bump has finished
/// sees it: a write answered on any replica makes every later read fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_generation_reads_see_every_bump_finished_before_them() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use dbapi_runtime::cache::generations::{Generations, VIEWS};
    use dbapi_runtime::redis_link::{RedisLink, RedisSettings};

    let redis_dir = TempDir::new();
    let redis = OwnRedis::start(free_port(), &redis_dir.0);
    let open = |url: String| {
        let settings = RedisSettings { url: Some(url), key_prefix: "s:".to_string() };
        RedisLink::open(&settings).unwrap().expect("a Redis URL")
    };
    let link = open(redis.url());
    let writer = Generations::new(Some(link.clone()));
    let reading = Arc::new(Generations::new(Some(open(redis.url_without_subscribe()))));
    let keys = vec!["public.items".to_string(), VIEWS.to_string()];
    let stop = Arc::new(AtomicBool::new(false));
    // Readers that keep a read in flight, so that later ones wait for the
    // next and share it; what each sees never goes back.
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let (reading, keys, stop) = (reading.clone(), keys.clone(), stop.clone());
            tokio::spawn(async move {
                let mut last = vec![0, 0];
                while !stop.load(Ordering::Relaxed) {
                    let seen = reading.current(&keys).await.expect("Redis answers");
                    assert!(seen[0] >= last[0] && seen[1] >= last[1], "{seen:?} after {last:?}");
                    last = seen;
                }
            })
        })
        .collect();
    let written: Vec<String> = keys.iter().map(|k| link.key(&format!("gen:{k}"))).collect();
    let mut last = vec![0, 0];
    for bump in 1..=300 {
        writer.bump(&keys[..1]).await;
        let stored: Vec<u64> = redis::cmd("MGET").arg(&written).query_async(&mut link.connection()).await.unwrap();
        assert!(stored[0] > last[0] && stored[1] > last[1], "bump {bump}: {stored:?} after {last:?}");
        assert_eq!(reading.current(&keys).await, Some(stored.clone()), "after bump {bump}");
        last = stored;
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    assert_eq!(reading.mirrored_since(), None, "the readers never had a copy");
}
