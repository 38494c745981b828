//! Each replica's copy of the cache generations, on a Redis of the test's
//! own (its command counts are the test's): hits read no generation from
//! Redis yet see every write answered before them, a write waits until
//! every subscriber has applied it, and a replica without a live
//! subscription reads Redis instead of its copy.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use dbapi_runtime::cache::generations::{Generations, VIEWS};
use dbapi_runtime::redis_link::{RedisLink, RedisSettings};
use support::process::{OwnRedis, TempDir, free_port};

/// A `redis-server` of the test's own, in a directory of its own. Bound
/// as `let (_dir, redis)`, the server (declared last) stops first.
fn own_redis() -> (TempDir, OwnRedis) {
    let dir = TempDir::new();
    let redis = OwnRedis::start(free_port(), &dir.0);
    (dir, redis)
}

fn replica(url: &str, prefix: &str) -> Generations {
    let settings = RedisSettings { url: Some(url.to_string()), key_prefix: prefix.to_string() };
    Generations::new(Some(RedisLink::open(&settings).unwrap().expect("a Redis URL")))
}

async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many `MGET`s the server has run.
fn mget_calls(redis: &OwnRedis) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut redis.connection().unwrap()).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_mget:calls="))
        .map(|rest| rest.split(',').next().unwrap().parse().unwrap())
        .unwrap_or(0)
}

/// The generations of `names` as Redis holds them (read with `GET`, which
/// the tests do not count).
fn stored(redis: &OwnRedis, prefix: &str, names: &[String]) -> Vec<u64> {
    let mut connection = redis.connection().unwrap();
    names
        .iter()
        .map(|name| {
            let value: Option<u64> =
                redis::cmd("GET").arg(format!("{prefix}gen:{name}")).query(&mut connection).unwrap();
            value.unwrap_or(0)
        })
        .collect()
}

fn keys() -> Vec<String> {
    vec!["public.items".to_string(), VIEWS.to_string()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_read_the_copy_and_see_every_write_answered_before_them() {
    let (_dir, redis) = own_redis();
    let (a, b) = (replica(&redis.url(), "m:"), replica(&redis.url(), "m:"));
    eventually("both replicas to mirror", || a.mirrored_since().and(b.mirrored_since())).await;
    let keys = keys();
    // What a copy lacks is read from Redis once, then kept.
    assert_eq!(b.current(&keys).await, Some(vec![0, 0]));
    let mgets = mget_calls(&redis);
    assert!(mgets >= 1, "the first read asked Redis");
    let mut last = vec![0, 0];
    for bump in 1..=100 {
        a.bump(&keys[..1]).await;
        let now = stored(&redis, "m:", &keys);
        assert!(now[0] > last[0] && now[1] > last[1], "bump {bump} raised both: {now:?} after {last:?}");
        assert_eq!(b.current(&keys).await, Some(now.clone()), "the other replica, after bump {bump}");
        assert_eq!(a.current(&keys).await, Some(now.clone()), "the writer, after bump {bump}");
        last = now;
    }
    assert_eq!(mget_calls(&redis), mgets, "no read after the first asked Redis");
}

/// A subscriber that has not acknowledged a bump holds the write back:
/// the write is answered only once it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waits_for_every_subscriber_to_acknowledge_it() {
    let (_dir, redis) = own_redis();
    let writer = Arc::new(replica(&redis.url(), "w:"));
    eventually("the writer to mirror", || writer.mirrored_since()).await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut other = client.get_async_pubsub().await.unwrap();
    other.subscribe("w:gen-bumps").await.unwrap();

    let bumping = writer.clone();
    let write = tokio::spawn(async move { bumping.bump(&keys()[..1]).await });
    let message = tokio::time::timeout(Duration::from_secs(20), other.on_message().next()).await.unwrap().unwrap();
    let bump: serde_json::Value = serde_json::from_str(&message.get_payload::<String>().unwrap()).unwrap();
    let published: Vec<u64> = [&bump["gens"]["public.items"], &bump["gens"][VIEWS]]
        .map(|value| value.as_str().unwrap_or_else(|| panic!("{bump}")).parse().unwrap())
        .to_vec();
    assert_eq!(published, stored(&redis, "w:", &keys()), "{bump}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!write.is_finished(), "the write is not answered before the other subscriber acknowledged it");

    let from = bump["from"].as_str().unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("PUBLISH")
        .arg(format!("w:gen-acks:{from}"))
        .arg(bump["seq"].as_str().unwrap())
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), write).await.expect("answered once acknowledged").unwrap();
}

/// A lost subscription clears the copy (bumps may have been missed); the
/// replica subscribes again and reads Redis for what it lacks. A bump the
/// copy never heard of (an `INCR` of the key, published to no one) stands
/// for one missed while the subscription was down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_subscription_is_taken_again_and_nothing_missed_is_served() {
    let (_dir, redis) = own_redis();
    let (a, b) = (replica(&redis.url(), "l:"), replica(&redis.url(), "l:"));
    let keys = vec!["public.items".to_string(), VIEWS.to_string(), "public.other".to_string()];
    let (ea, eb) = eventually("both replicas to mirror", || Some((a.mirrored_since()?, b.mirrored_since()?))).await;
    a.bump(&keys[..1]).await;
    let before = stored(&redis, "l:", &keys);
    assert_eq!(before[2], 0);
    assert_eq!(b.current(&keys).await, Some(before.clone()));
    redis::cmd("INCR").arg("l:gen:public.other").query::<()>(&mut redis.connection().unwrap()).unwrap();
    let mgets = mget_calls(&redis);
    assert_eq!(b.current(&keys).await, Some(before), "the copy, which did not hear of it");
    assert_eq!(mget_calls(&redis), mgets);

    let killed: u64 =
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query(&mut redis.connection().unwrap()).unwrap();
    assert_eq!(killed, 2, "both subscriptions were cut");
    eventually("both replicas to subscribe again", || {
        (a.mirrored_since()? != ea && b.mirrored_since()? != eb).then_some(())
    })
    .await;
    let missed = stored(&redis, "l:", &keys);
    assert_eq!(missed[2], 1);
    assert_eq!(b.current(&keys).await, Some(missed), "read again from Redis");
    assert_eq!(mget_calls(&redis), mgets + 1);
    a.bump(&keys[..1]).await;
    assert_eq!(b.current(&keys).await, Some(stored(&redis, "l:", &keys)));
    assert_eq!(mget_calls(&redis), mgets + 1, "mirrored again");
}

/// A replica that cannot subscribe (here its Redis user may not) never
/// uses a copy: every lookup reads Redis, and sees every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_subscription_every_lookup_reads_redis() {
    let (_dir, redis) = own_redis();
    let writer = replica(&redis.url(), "n:");
    let reader = replica(&redis.url_without_subscribe(), "n:");
    eventually("the writer to mirror", || writer.mirrored_since()).await;
    let keys = keys();
    for _ in 0..20 {
        writer.bump(&keys[..1]).await;
        let mgets = mget_calls(&redis);
        assert_eq!(reader.current(&keys).await, Some(stored(&redis, "n:", &keys)));
        assert_eq!(mget_calls(&redis), mgets + 1, "the reader asked Redis");
        assert_eq!(reader.mirrored_since(), None);
    }
}

/// A generation key Redis evicted (the operator's Redis evicts least
/// recently used keys under memory pressure) starts again above the value
/// it had, so no answer filed under an old value is found again; every
/// replica's copy follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_generation_starts_again_above_its_old_value() {
    let (_dir, redis) = own_redis();
    let (a, b) = (replica(&redis.url(), "e:"), replica(&redis.url(), "e:"));
    eventually("both replicas to mirror", || a.mirrored_since().and(b.mirrored_since())).await;
    let keys = keys();
    a.bump(&keys[..1]).await;
    a.bump(&keys[..1]).await;
    let before = b.current(&keys).await.expect("Redis answers");
    assert_eq!(before, stored(&redis, "e:", &keys));
    redis::cmd("DEL").arg("e:gen:public.items").query::<()>(&mut redis.connection().unwrap()).unwrap();
    a.bump(&keys[..1]).await;
    let after = b.current(&keys).await.expect("Redis answers");
    assert_eq!(after, stored(&redis, "e:", &keys));
    assert!(after[0] > before[0], "{after:?} after {before:?}");
}

/// A subscriber that never acknowledges holds a write back only for the
/// wait: the write is then answered, and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_answered_after_the_wait_and_counted_when_a_subscriber_never_acknowledges() {
    let (_dir, redis) = own_redis();
    let writer = replica(&redis.url(), "u:");
    eventually("the writer to mirror", || writer.mirrored_since()).await;
    let metrics = dbapi_runtime::metrics::global();
    assert!(metrics.render().contains("dbapi_cache_generations_mirrored 1"), "{}", metrics.render());
    let client = redis::Client::open(redis.url()).unwrap();
    let mut silent = client.get_async_pubsub().await.unwrap();
    silent.subscribe("u:gen-bumps").await.unwrap();
    let unacknowledged = || {
        let text = metrics.render();
        let line = text.lines().find(|l| l.starts_with("dbapi_cache_invalidations_unacknowledged_total ")).unwrap();
        line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
    };
    let before = unacknowledged();
    tokio::time::timeout(Duration::from_secs(20), writer.bump(&keys()[..1])).await.expect("answered after the wait");
    assert_eq!(unacknowledged(), before + 1);
    // The writer's own copy has the bump all the same.
    assert_eq!(writer.current(&keys()).await, Some(stored(&redis, "u:", &keys())));
}
