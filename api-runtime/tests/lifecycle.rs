//! Stopping on SIGTERM as a pod must, on the built binary: readiness turns
//! false at once while the API still answers for `server.drainDelaySeconds`,
//! then no new connections, requests in flight finish within
//! `server.shutdownGraceSeconds`, and a request running past that does not
//! keep the process alive.

mod support;

use std::time::{Duration, Instant};

use support::process::{Reply, Runtime, TempDir, get};

const FIXTURE: &str = "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1);
    CREATE FUNCTION slow(seconds float) RETURNS int LANGUAGE sql STABLE AS 'SELECT 1 FROM pg_sleep(seconds)';";

/// Drain 2 s, grace 3 s, no request timeout in the way.
const CONFIG: &str = "server: {drainDelaySeconds: 2, shutdownGraceSeconds: 3, requestTimeoutSeconds: 120}\n";

/// With `workers` scheduler threads (`1`: the current-thread scheduler a
/// one-CPU pod gets).
fn start(db: &support::TestDb, dir: &TempDir, workers: &str) -> Runtime {
    let config = dir.0.join("config.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let args = ["--database-url", &db.url, "--config", config.to_str().unwrap()];
    Runtime::serve_with_env(&dir.0, &args, &[("DBAPI_WORKER_THREADS", workers)])
}

/// A GET on its own thread, started now.
fn in_flight(port: u16, path: &'static str) -> std::thread::JoinHandle<std::io::Result<Reply>> {
    std::thread::spawn(move || get(port, path, &[]))
}

fn wait_for_exit(runtime: &mut Runtime, within: Duration) -> (std::process::ExitStatus, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = runtime.child.try_wait().unwrap() {
            return (status, started.elapsed());
        }
        assert!(started.elapsed() < within, "still running {within:?} after SIGTERM: {}", runtime.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn sigterm_drains_then_finishes_what_is_in_flight() {
    drains_then_finishes_what_is_in_flight("2").await;
}

#[tokio::test]
async fn sigterm_drains_then_finishes_what_is_in_flight_on_one_thread() {
    drains_then_finishes_what_is_in_flight("1").await;
}

async fn drains_then_finishes_what_is_in_flight(workers: &str) {
    let (db, dir) = (support::pg_database(FIXTURE).await, TempDir::new());
    let mut runtime = start(&db, &dir, workers);
    let (api, admin) = (runtime.api, runtime.admin);
    let slow = in_flight(api, "/rpc/slow?seconds=3");
    std::thread::sleep(Duration::from_millis(300)); // the slow call is running
    runtime.signal("TERM");
    let signalled = Instant::now();
    std::thread::sleep(Duration::from_millis(200));

    // Draining: not ready, yet new connections are still served.
    assert_eq!(get(admin, "/readyz", &[]).unwrap().status, 503);
    assert_eq!(get(api, "/items", &[]).unwrap().status, 200, "new requests during the drain delay");
    // After the delay, no new connections.
    std::thread::sleep(Duration::from_secs(2));
    assert!(get(api, "/items", &[]).is_err(), "still accepting after the drain delay");

    let reply = slow.join().unwrap().expect("the request in flight gets its answer");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (status, _) = wait_for_exit(&mut runtime, Duration::from_secs(10));
    assert!(status.success(), "{status}: {}", runtime.log());
    assert!(signalled.elapsed() < Duration::from_secs(2 + 3 + 2), "it left when the work was done");
}

#[tokio::test]
async fn a_request_past_the_grace_period_does_not_hold_the_process() {
    past_the_grace_period("2").await;
}

#[tokio::test]
async fn a_request_past_the_grace_period_does_not_hold_the_process_on_one_thread() {
    past_the_grace_period("1").await;
}

async fn past_the_grace_period(workers: &str) {
    let (db, dir) = (support::pg_database(FIXTURE).await, TempDir::new());
    let mut runtime = start(&db, &dir, workers);
    let endless = in_flight(runtime.api, "/rpc/slow?seconds=60");
    std::thread::sleep(Duration::from_millis(300));
    runtime.signal("TERM");
    let (status, took) = wait_for_exit(&mut runtime, Duration::from_secs(15));
    assert!(status.success(), "{status}: {}", runtime.log());
    assert!(took >= Duration::from_secs(2 + 3), "it left before drain delay and grace were over: {took:?}");
    assert!(runtime.log().contains("shutdownGraceSeconds"), "{}", runtime.log());
    // The connection closes without an answer (the helper reads status 0).
    let cut = endless.join().unwrap();
    assert!(cut.as_ref().map_or(true, |r| r.status == 0), "{:?}", cut.map(|r| (r.status, r.body)));
}

/// Ctrl-C is a person at a terminal, not a load balancer: no drain delay.
#[tokio::test]
async fn sigint_skips_the_drain_delay() {
    let (db, dir) = (support::pg_database(FIXTURE).await, TempDir::new());
    let mut runtime = start(&db, &dir, "1");
    runtime.signal("INT");
    let (status, took) = wait_for_exit(&mut runtime, Duration::from_secs(10));
    assert!(status.success(), "{status}: {}", runtime.log());
    assert!(took < Duration::from_secs(2), "waited for the drain delay: {took:?}");
}

#[test]
fn a_worker_count_that_is_not_a_positive_number_stops_start_up() {
    for bad in ["many", "0", "-1"] {
        let out = std::process::Command::new(support::process::BIN)
            .args(["serve", "--database-url", "sqlite://never-opened.db"])
            .env("DBAPI_WORKER_THREADS", bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("DBAPI_WORKER_THREADS") && stderr.contains("1 or more"), "{bad}: {stderr}");
    }
}
