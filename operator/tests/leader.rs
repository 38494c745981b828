//! Leader election against the in-memory API server: one replica takes the
//! Lease, the other follows until it expires, and a stale write loses.

#[allow(dead_code)] // the fake serves every test file; this one uses part of it
mod fake_api;

use std::time::Duration;

use dbapi_operator::leader::LeaseLock;
use fake_api::FakeApi;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/dbapi-system/leases";

fn lock(fake: &FakeApi, me: &str) -> LeaseLock {
    let api: Api<Lease> = Api::namespaced(fake.client(), "dbapi-system");
    LeaseLock::new(api, "dbapi-operator", me, Duration::from_secs(15))
}

#[tokio::test]
async fn one_replica_leads_and_another_takes_over_an_expired_lease() {
    let fake = FakeApi::default();
    let (a, b) = (lock(&fake, "operator-a"), lock(&fake, "operator-b"));
    assert!(a.try_lead().await.unwrap(), "a free Lease is taken");
    assert!(!b.try_lead().await.unwrap(), "a live Lease is followed");
    assert!(a.try_lead().await.unwrap(), "the holder renews");
    let lease = fake.get(LEASES, "dbapi-operator").unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "operator-a");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 15);

    // a stops renewing: its last renewal is older than the duration.
    let mut stale = lease.clone();
    stale["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z");
    fake.put(LEASES, stale);
    assert!(b.try_lead().await.unwrap(), "an expired Lease is taken over");
    let lease = fake.get(LEASES, "dbapi-operator").unwrap();
    assert_eq!(
        (lease["spec"]["holderIdentity"].as_str(), lease["spec"]["leaseTransitions"].as_i64()),
        (Some("operator-b"), Some(1))
    );
    assert!(!a.try_lead().await.unwrap(), "the old holder now follows");
}
