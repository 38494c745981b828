//! Leader election on a `coordination.k8s.io/v1` Lease, so that several
//! operator replicas can run and exactly one reconciles.
//!
//! The Lease names its holder and when the holder last renewed it. A
//! replica takes a Lease that is free or expired (renewed longer ago than
//! its duration), renews its own, and otherwise follows. Every write is a
//! replace carrying the `resourceVersion` read, so two replicas racing for
//! an expired Lease cannot both win: the API server refuses the second
//! with 409 and that replica reads again. [`decide`] is the pure rule;
//! [`LeaseLock`] talks to the API.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;

use crate::error::{Error, Result};

/// What a replica should do with the Lease it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds it, or the holder let it expire: take it.
    Acquire,
    /// It is ours: renew it.
    Renew,
    /// Another replica holds it until `until`.
    Follow { holder: String, until: Timestamp },
}

/// The rule, on the Lease as read (`None`: there is none yet).
pub fn decide(lease: Option<&Lease>, me: &str, now: Timestamp) -> Decision {
    let Some(spec) = lease.and_then(|l| l.spec.as_ref()) else { return Decision::Acquire };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder == me {
        return Decision::Renew;
    }
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()).map(|t| t.0);
    let duration = SignedDuration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0).into());
    match renewed {
        Some(renewed) if !holder.is_empty() && renewed + duration > now => {
            Decision::Follow { holder: holder.to_string(), until: renewed + duration }
        }
        _ => Decision::Acquire,
    }
}

/// The Lease `lease` of this replica (`me`, its pod name) in its namespace.
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    me: String,
    duration: Duration,
}

impl LeaseLock {
    pub fn new(api: Api<Lease>, name: &str, me: &str, duration: Duration) -> LeaseLock {
        LeaseLock { api, name: name.to_string(), me: me.to_string(), duration }
    }

    /// Reads the Lease and takes or renews it when [`decide`] says so.
    /// `Ok(true)`: this replica leads until at least `duration` from now.
    pub async fn try_lead(&self) -> Result<bool> {
        let now = Timestamp::now();
        let current = self.api.get_opt(&self.name).await.map_err(Error::kube("reading the leader Lease"))?;
        let decision = decide(current.as_ref(), &self.me, now);
        let transitions = current.as_ref().and_then(|l| l.spec.as_ref()).and_then(|s| s.lease_transitions);
        let acquired = match (&decision, current.as_ref()) {
            (Decision::Follow { .. }, _) => return Ok(false),
            (Decision::Renew, Some(lease)) => lease.spec.as_ref().and_then(|s| s.acquire_time.clone()),
            _ => Some(MicroTime(now)),
        };
        let transitions = match decision {
            Decision::Acquire if current.is_some() => transitions.unwrap_or(0) + 1,
            _ => transitions.unwrap_or(0),
        };
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                resource_version: current.as_ref().and_then(|l| l.metadata.resource_version.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.me.clone()),
                lease_duration_seconds: Some(self.duration.as_secs().try_into().unwrap_or(i32::MAX)),
                acquire_time: acquired,
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(transitions),
                ..LeaseSpec::default()
            }),
        };
        let written = match current {
            None => self.api.create(&PostParams::default(), &lease).await,
            Some(_) => self.api.replace(&self.name, &PostParams::default(), &lease).await,
        };
        match written {
            Ok(_) => Ok(true),
            // Another replica wrote it first (409 on replace, or it created it).
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(Error::kube("writing the leader Lease")(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed: &str, seconds: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(renewed.parse().unwrap())),
                lease_duration_seconds: Some(seconds),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn a_free_expired_or_own_lease_is_taken_and_a_live_one_followed() {
        let now: Timestamp = "2026-12-06T10:00:00Z".parse().unwrap();
        assert_eq!(decide(None, "a", now), Decision::Acquire);
        assert_eq!(decide(Some(&Lease::default()), "a", now), Decision::Acquire);
        assert_eq!(decide(Some(&lease("a", "2026-12-06T09:00:00Z", 15)), "a", now), Decision::Renew);
        assert_eq!(
            decide(Some(&lease("b", "2026-12-06T09:59:50Z", 15)), "a", now),
            Decision::Follow { holder: "b".into(), until: "2026-12-06T10:00:05Z".parse().unwrap() }
        );
        assert_eq!(decide(Some(&lease("b", "2026-12-06T09:59:44Z", 15)), "a", now), Decision::Acquire);
        assert_eq!(decide(Some(&lease("", "2026-12-06T09:59:59Z", 15)), "a", now), Decision::Acquire);
    }
}
