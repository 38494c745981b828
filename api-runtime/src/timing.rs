//! `Server-Timing` (`observability.serverTiming`, off by default): where a
//! request's time went, in the database or in the runtime, so a user can
//! see which side to tune. `db` is the time its statements waited on the
//! database (pool waits included), `app` the rest until the response head.
//!
//! The database time travels with the request's task, as the PostgreSQL
//! session settings do ([`crate::db::session`]): the database layer adds
//! each statement's duration through [`measured`] when the request is being
//! timed, and costs one task-local lookup per statement when it is not.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::future::Either;

tokio::task_local! {
    /// Nanoseconds the request's statements spent on the database.
    static DATABASE_NANOS: Arc<AtomicU64>;
}

/// Runs `op` (a database exchange), adding its duration to the request's
/// database time when the request is being timed. Untimed, `op` itself: an
/// `async fn` would hold `op` twice (as its argument and as what it awaits),
/// and every read's future would carry the copy.
pub fn measured<'a, F>(op: F) -> Either<F, Pin<Box<dyn Future<Output = F::Output> + Send + 'a>>>
where
    F: Future + Send + 'a,
{
    let Ok(spent) = DATABASE_NANOS.try_with(Arc::clone) else { return Either::Left(op) };
    Either::Right(Box::pin(async move {
        let started = Instant::now();
        let out = op.await;
        spent.fetch_add(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        out
    }))
}

/// Times the request and adds `Server-Timing: db;dur=…, app;dur=…` (in
/// milliseconds) to its answer.
pub async fn server_timing(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let spent = Arc::new(AtomicU64::new(0));
    let mut response = DATABASE_NANOS.scope(spent.clone(), next.run(request)).await;
    let total = started.elapsed();
    let database = Duration::from_nanos(spent.load(Ordering::Relaxed)).min(total);
    if let Ok(value) = HeaderValue::from_str(&header_value(database, total)) {
        response.headers_mut().append("server-timing", value);
    }
    response
}

fn header_value(database: Duration, total: Duration) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "db;dur={:.3};desc=\"database\", app;dur={:.3};desc=\"dbapi\", total;dur={:.3}",
        ms(database),
        ms(total.saturating_sub(database)),
        ms(total)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_splits_the_total_between_database_and_runtime() {
        let value = header_value(Duration::from_micros(1500), Duration::from_micros(2250));
        assert_eq!(value, "db;dur=1.500;desc=\"database\", app;dur=0.750;desc=\"dbapi\", total;dur=2.250");
    }

    #[tokio::test]
    async fn only_a_timed_request_counts_its_database_time() {
        // Not timed: the exchange runs, nothing is counted anywhere.
        assert_eq!(measured(async { 7 }).await, 7);
        let spent = Arc::new(AtomicU64::new(0));
        DATABASE_NANOS
            .scope(spent.clone(), async {
                measured(tokio::time::sleep(Duration::from_millis(5))).await;
                measured(tokio::time::sleep(Duration::from_millis(5))).await;
            })
            .await;
        assert!(spent.load(Ordering::Relaxed) >= 10_000_000, "{}", spent.load(Ordering::Relaxed));
    }
}
