//! The circuit breaker around the database (issue 19, item 4).
//!
//! Requests that find the database unavailable (503 `PGRST003`) or time
//! out (504) are counted; after `database.circuit.failureThreshold` of them
//! in a row the circuit opens: for `openSeconds` no request goes to the
//! database (no piling up on a dead pool). GETs are answered from the
//! response cache when it holds an answer, however old (`Cache-Status:
//! dbapi; hit; detail=stale`); everything else gets 503 `PGRST003` with
//! `Retry-After` at once. Then one probe (`SELECT 1`) runs per period:
//! when the database answers, the circuit closes.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use dbapi_crds::config::CircuitSettings;

use super::Db;
use crate::error::{ApiError, DatabaseTrouble};

/// Left on a request while the circuit is open: its reader may answer
/// from the cache, stale, instead of the database.
#[derive(Debug, Clone, Copy)]
pub struct CircuitOpen {
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Instant },
}

pub struct Circuit {
    settings: CircuitSettings,
    state: Mutex<Phase>,
}

impl Circuit {
    pub fn new(settings: CircuitSettings) -> Arc<Circuit> {
        Arc::new(Circuit { settings, state: Mutex::new(Phase::Closed { failures: 0 }) })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `Some(time left)` while the circuit is open.
    pub fn open_for(&self) -> Option<Duration> {
        match *self.state() {
            Phase::Open { until } => Some(until.saturating_duration_since(Instant::now())),
            Phase::Closed { .. } => None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.open_for().is_some()
    }

    /// A request's outcome: the database was in trouble, or it answered.
    /// Returns true when this failure opened the circuit.
    fn record(&self, trouble: bool) -> bool {
        let mut state = self.state();
        match (*state, trouble) {
            (Phase::Closed { .. }, false) => {
                *state = Phase::Closed { failures: 0 };
                false
            }
            (Phase::Closed { failures }, true) if failures + 1 >= self.settings.failure_threshold.max(1) => {
                *state = Phase::Open { until: Instant::now() + self.open_seconds() };
                true
            }
            (Phase::Closed { failures }, true) => {
                *state = Phase::Closed { failures: failures + 1 };
                false
            }
            // Requests that were in flight when it opened change nothing.
            (Phase::Open { .. }, _) => false,
        }
    }

    fn open_seconds(&self) -> Duration {
        Duration::from_secs(self.settings.open_seconds.max(1))
    }

    fn close(&self) {
        *self.state() = Phase::Closed { failures: 0 };
    }

    /// Probes the database once per `openSeconds` while the circuit is
    /// open, and closes it when the database answers.
    fn spawn_probe(self: &Arc<Self>, db: Db) {
        let circuit = self.clone();
        tokio::spawn(async move {
            loop {
                let wait = circuit.open_for().unwrap_or_default();
                tokio::time::sleep(wait).await;
                let answered = matches!(tokio::time::timeout(Duration::from_secs(2), db.ping()).await, Ok(Ok(())));
                if answered {
                    circuit.close();
                    crate::metrics::global().circuit_state(false);
                    tracing::info!("the database answers again: circuit closed");
                    return;
                }
                *circuit.state() = Phase::Open { until: Instant::now() + circuit.open_seconds() };
            }
        });
    }
}

/// How a request the circuit let through goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// The circuit is closed: what the database does counts.
    Counted,
    /// The circuit is open and the request a read: its reader may answer
    /// from the cache; nothing is counted.
    WhileOpen,
}

impl Circuit {
    /// Before a request: refused at once while the circuit is open, but
    /// reads go on to their readers, which may answer from the cache.
    pub fn admit(&self, request: &mut Request) -> Result<Admitted, ApiError> {
        let Some(retry_after) = self.open_for() else { return Ok(Admitted::Counted) };
        if matches!(*request.method(), Method::GET | Method::HEAD) {
            request.extensions_mut().insert(CircuitOpen { retry_after });
            return Ok(Admitted::WhileOpen);
        }
        Err(refusal(retry_after))
    }

    /// After a [`Admitted::Counted`] request: counts what the database did,
    /// and opens the circuit (with a probe on `db` to close it) when it
    /// keeps failing.
    pub fn observe(self: &Arc<Self>, response: &Response, db: &Db) {
        let trouble = response.extensions().get::<DatabaseTrouble>().is_some()
            || response.status() == StatusCode::GATEWAY_TIMEOUT;
        if self.record(trouble) {
            tracing::warn!(
                failures = self.settings.failure_threshold,
                "the database keeps failing: circuit open, requests stop going to it"
            );
            crate::metrics::global().circuit_state(true);
            self.spawn_probe(db.clone());
        }
    }
}

/// The 503 of a request the open circuit keeps from the database.
pub fn refusal(retry_after: Duration) -> ApiError {
    let mut error =
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "PGRST003", "The database is not available right now")
            .details("The database failed repeatedly; requests are not sent to it until it answers again.")
            .hint("Retry after the number of seconds in Retry-After.");
    error.retry_after = Some(retry_after.as_secs().max(1));
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_in_a_row_and_a_success_resets_the_count() {
        let circuit = Circuit::new(CircuitSettings { failure_threshold: 3, open_seconds: 5 });
        assert!(!circuit.record(true) && !circuit.record(true));
        assert!(!circuit.record(false), "an answer resets the count");
        assert!(!circuit.record(true) && !circuit.record(true));
        assert!(!circuit.is_open());
        assert!(circuit.record(true), "the third in a row opens it");
        let left = circuit.open_for().unwrap();
        assert!(left > Duration::from_secs(4) && left <= Duration::from_secs(5), "{left:?}");
        assert!(!circuit.record(true), "already open");
        circuit.close();
        assert!(!circuit.is_open());
    }
}
