//! Status conditions, following the Kubernetes API conventions: one per
//! aspect, `lastTransitionTime` moved only when the status flips (else the
//! controller would wake itself forever), `observedGeneration` on each.

use dbapi_crds::crd::{ApiKeyStatus, DatabaseApiStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const DATABASE_SECRET_READY: &str = "DatabaseSecretReady";
pub const CACHE_READY: &str = "CacheReady";

/// What one reconcile saw, reduced to what status reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// `None` when every referenced Secret key exists; else what is missing.
    pub missing_secret: Option<String>,
    /// An error that stopped this reconcile, if any.
    pub error: Option<String>,
    /// Ready replicas of the runtime Deployment, if it exists.
    pub ready_replicas: Option<i32>,
    /// Whether the Deployment is still rolling out this generation.
    pub rolling_out: bool,
    pub cache: CacheState,
    pub url: Option<String>,
    pub pool_per_replica: Option<u32>,
    pub api_keys: Vec<ApiKeyStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CacheState {
    #[default]
    NotConfigured,
    External,
    Managed {
        available: bool,
    },
}

/// A condition to set: type, status, reason, message.
struct Wanted(&'static str, bool, &'static str, String);

/// The new status: conditions derived from `observed`, transition times kept
/// from `old` where the status did not change.
pub fn compute(
    old: Option<&DatabaseApiStatus>,
    generation: Option<i64>,
    observed: &Observed,
    now: Timestamp,
) -> DatabaseApiStatus {
    let secret_ok = observed.missing_secret.is_none();
    let available = observed.ready_replicas.unwrap_or(0) > 0;
    let cache_ok = !matches!(observed.cache, CacheState::Managed { available: false });
    let mut wanted = vec![match &observed.missing_secret {
        None => Wanted(DATABASE_SECRET_READY, true, "SecretsFound", "Every referenced Secret key exists.".into()),
        Some(what) => Wanted(DATABASE_SECRET_READY, false, "SecretNotFound", what.clone()),
    }];
    wanted.push(match observed.cache {
        CacheState::NotConfigured => Wanted(CACHE_READY, true, "NotConfigured", "No cache is configured.".into()),
        CacheState::External => Wanted(CACHE_READY, true, "External", "An external Redis is used.".into()),
        CacheState::Managed { available: true } => {
            Wanted(CACHE_READY, true, "Available", "The managed Redis is available.".into())
        }
        CacheState::Managed { available: false } => {
            Wanted(CACHE_READY, false, "Starting", "The managed Redis has no available replica yet.".into())
        }
    });
    wanted.push(if observed.rolling_out {
        Wanted(PROGRESSING, true, "RollingOut", "The runtime Deployment is rolling out.".into())
    } else {
        Wanted(PROGRESSING, false, "RolloutComplete", "The runtime Deployment is up to date.".into())
    });
    wanted.push(match (&observed.error, &observed.missing_secret) {
        (Some(e), _) => Wanted(DEGRADED, true, "ReconcileFailed", e.clone()),
        (None, Some(what)) => Wanted(DEGRADED, true, "SecretNotFound", what.clone()),
        (None, None) => Wanted(DEGRADED, false, "AsExpected", "Reconciled without errors.".into()),
    });
    wanted.push(if !secret_ok {
        Wanted(READY, false, "SecretNotFound", "A referenced Secret is missing; see DatabaseSecretReady.".into())
    } else if observed.error.is_some() {
        Wanted(READY, false, "ReconcileFailed", "The last reconcile failed; see Degraded.".into())
    } else if !available {
        Wanted(READY, false, "NoAvailableReplicas", "No runtime replica is ready yet.".into())
    } else if !cache_ok {
        Wanted(READY, false, "CacheNotReady", "The cache is not available; see CacheReady.".into())
    } else {
        Wanted(READY, true, "Available", "The API is serving.".into())
    });

    let old_conditions = old.map(|s| s.conditions.as_slice()).unwrap_or(&[]);
    let conditions = wanted
        .into_iter()
        .map(|Wanted(type_, ok, reason, message)| {
            let status = if ok { "True" } else { "False" };
            let last_transition_time = old_conditions
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: reason.to_string(),
                message,
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect();
    DatabaseApiStatus {
        observed_generation: generation,
        conditions,
        url: observed.url.clone(),
        replicas: observed.ready_replicas,
        pool_per_replica: observed.pool_per_replica,
        api_keys: observed.api_keys.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn ready() -> Observed {
        Observed { ready_replicas: Some(2), ..Observed::default() }
    }

    fn condition<'a>(s: &'a DatabaseApiStatus, type_: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn transition_times_move_only_when_status_flips() {
        let first = compute(None, Some(1), &ready(), t("2026-01-01T00:00:00Z"));
        assert_eq!(condition(&first, READY).status, "True");
        let again = compute(Some(&first), Some(2), &ready(), t("2026-01-01T01:00:00Z"));
        assert_eq!(condition(&again, READY).last_transition_time, Time(t("2026-01-01T00:00:00Z")));
        assert_eq!(condition(&again, READY).observed_generation, Some(2));
        let broken = Observed { missing_secret: Some("Secret shop/db has no key url".into()), ..ready() };
        let flipped = compute(Some(&again), Some(2), &broken, t("2026-01-01T02:00:00Z"));
        assert_eq!(condition(&flipped, READY).status, "False");
        assert_eq!(condition(&flipped, READY).last_transition_time, Time(t("2026-01-01T02:00:00Z")));
        assert_eq!(condition(&flipped, DATABASE_SECRET_READY).reason, "SecretNotFound");
        assert_eq!(condition(&flipped, DEGRADED).status, "True");
    }

    #[test]
    fn same_observation_gives_the_same_status() {
        let a = compute(None, Some(1), &ready(), t("2026-01-01T00:00:00Z"));
        let b = compute(Some(&a), Some(1), &ready(), t("2026-01-02T00:00:00Z"));
        assert_eq!(a, b, "nothing changed, so nothing to write");
    }

    #[test]
    fn readiness_waits_for_replicas_and_cache() {
        let none = compute(None, Some(1), &Observed::default(), t("2026-01-01T00:00:00Z"));
        assert_eq!(condition(&none, READY).reason, "NoAvailableReplicas");
        let cache = Observed { cache: CacheState::Managed { available: false }, ..ready() };
        let s = compute(None, Some(1), &cache, t("2026-01-01T00:00:00Z"));
        assert_eq!(condition(&s, READY).reason, "CacheNotReady");
        assert_eq!(condition(&s, CACHE_READY).status, "False");
    }
}
