//! SQLite's statement timeout. SQLite has no setting for it: a progress
//! handler, called every few hundred virtual machine steps of a running
//! statement, interrupts it (`SQLITE_INTERRUPT`) once the deadline of the
//! operation in progress has passed. The pool arms the deadline before each
//! operation and disarms it when the operation finishes; an operation whose
//! request was dropped midway stays armed, so SQLite's worker thread stops
//! it at the deadline instead of running it to the end.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteConnection;

/// Steps between two looks at the clock: a few microseconds of work.
const STEPS_PER_CHECK: i32 = 1000;

/// When the running operation is to be interrupted.
pub struct Deadline {
    epoch: Instant,
    /// Milliseconds after `epoch`; 0: no operation armed.
    at_ms: AtomicU64,
}

impl Deadline {
    fn new() -> Self {
        Deadline { epoch: Instant::now(), at_ms: AtomicU64::new(0) }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Arms the deadline `limit` from now, until the guard is disarmed.
    pub fn arm(&self, limit: Duration) -> Armed<'_> {
        let at = self.now_ms().saturating_add(limit.as_millis() as u64).max(1);
        self.at_ms.store(at, Ordering::Release);
        Armed(self)
    }

    fn passed(&self) -> bool {
        let at = self.at_ms.load(Ordering::Acquire);
        at != 0 && self.now_ms() >= at
    }
}

/// An armed deadline; [`Armed::disarm`] once the operation has finished.
/// Dropped without that (the operation's future was dropped), it stays
/// armed.
pub struct Armed<'a>(&'a Deadline);

impl Armed<'_> {
    pub fn disarm(self) {
        self.0.at_ms.store(0, Ordering::Release);
    }
}

/// Installs the progress handler on a SQLite connection; other engines'
/// connections get a deadline that nothing reads (they have the database's
/// own statement timeout).
pub async fn install<C: Any>(conn: &mut C) -> Result<Arc<Deadline>, sqlx::Error> {
    let deadline = Arc::new(Deadline::new());
    if let Some(sqlite) = (conn as &mut dyn Any).downcast_mut::<SqliteConnection>() {
        let watched = deadline.clone();
        // Returning false interrupts the statement.
        sqlite.lock_handle().await?.set_progress_handler(STEPS_PER_CHECK, move || !watched.passed());
    }
    Ok(deadline)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Executor};

    use super::*;

    const SLOW: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

    #[tokio::test]
    async fn a_statement_past_its_deadline_is_interrupted_and_the_connection_stays_usable() {
        let mut conn = SqliteConnectOptions::from_str("sqlite::memory:").unwrap().connect().await.unwrap();
        let deadline = install(&mut conn).await.unwrap();
        let armed = deadline.arm(Duration::from_millis(100));
        let started = Instant::now();
        let err = conn.execute(SLOW).await.unwrap_err();
        armed.disarm();
        assert!(started.elapsed() < Duration::from_secs(5));
        let code = err.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("9"), "{err}");
        let one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await.unwrap();
        assert_eq!(one, 1);
    }
}
