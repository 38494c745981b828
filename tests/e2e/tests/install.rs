//! The install a platform team and an app team would do, on a real cluster:
//! `helm install` the chart, `kubectl apply -f examples/shop/`, wait for
//! Ready, call the API through a port-forward with the generated key, kill
//! the leading operator pod and see the standby take over, then uninstall
//! and find nothing of ours left.
//!
//! Needs `KUBECONFIG`, `helm` and `kubectl` (on `PATH`, or `HELM` and
//! `KUBECTL`), and the two images loaded into the cluster at the chart's
//! tags (README: Container images; `scripts/images.sh` builds them). Without
//! `KUBECONFIG` it says it is skipped and passes. It uses the namespace
//! `shop` (the example's) and `dbapi-e2e-install`, and removes both.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{eventually, repo_path};
use dbapi_crds::crd::DatabaseApi;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

const RELEASE: &str = "dbapi-e2e";
const OPERATOR_NS: &str = "dbapi-e2e-install";
const TIMEOUT: Duration = Duration::from_secs(300);
const IMAGES_HINT: &str = "are the images loaded? (README: Container images; scripts/images.sh, then \
                           `kind load image-archive`)";

fn tool(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

/// Runs a command to completion; panics with its output when it fails.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} could not start ({e}); put it on PATH or set its variable"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

/// A `kubectl port-forward` to the shop's Service, killed on drop.
struct PortForward(Child, u16);

impl PortForward {
    fn start(kubectl: &str) -> PortForward {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(kubectl)
            .args(["port-forward", "-n", "shop", "svc/shop-api", &format!("{port}:8080")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl port-forward starts");
        PortForward(child, port)
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` with an API key, over a plain socket: (status, body).
fn get(port: u16, path: &str, key: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: shop\r\napikey: {key}\r\nConnection: close\r\n\r\n").ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    Some((status, answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_serves_the_shop_example_and_uninstalls_cleanly() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("SKIPPED install end-to-end test: set KUBECONFIG to a cluster with the images loaded to run it");
        return;
    }
    let (helm, kubectl) = (tool("HELM", "helm"), tool("KUBECTL", "kubectl"));
    let client = Client::try_default().await.expect("a client from KUBECONFIG");
    let chart = repo_path("charts/dbapi-operator").to_string_lossy().into_owned();
    run(&helm, &["install", RELEASE, &chart, "-n", OPERATOR_NS, "--create-namespace", "--wait", "--timeout", "5m"]);
    run(&helm, &["test", RELEASE, "-n", OPERATOR_NS]);

    // The app team's part.
    run(&kubectl, &["apply", "-f", &repo_path("examples/shop").to_string_lossy()]);
    let apis: Api<DatabaseApi> = Api::namespaced(client.clone(), "shop");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    eventually(&format!("DatabaseApi shop/shop to be Ready; {IMAGES_HINT}"), TIMEOUT, || {
        let (apis, pods) = (apis.clone(), pods.clone());
        async move {
            let api = apis.get("shop").await.ok()?;
            let ready = api.status?.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
            if !ready {
                let phases: Vec<String> = pods
                    .list(&ListParams::default())
                    .await
                    .ok()?
                    .items
                    .iter()
                    .map(|p| format!("{:?}={:?}", p.metadata.name, p.status.as_ref().and_then(|s| s.phase.clone())))
                    .collect();
                eprintln!("waiting for Ready; pods: {phases:?}");
            }
            ready.then_some(())
        }
    })
    .await;

    // The key, from its Secret, opens the API through a port-forward.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "shop");
    let secret = secrets.get("shop-key-storefront").await.expect("the storefront key's Secret");
    let key = String::from_utf8(secret.data.unwrap()["key"].0.clone()).unwrap();
    let forward = PortForward::start(&kubectl);
    let (status, body) = eventually("the API through the port-forward", TIMEOUT, || {
        let key = key.clone();
        async move { get(forward.1, "/products?select=*&limit=1", &key) }
    })
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.trim_start().starts_with('['), "{body}");
    assert_eq!(get(forward.1, "/products", "dbapi_wrong").map(|r| r.0), Some(401));
    drop(forward);

    // Kill the leader: the standby takes the Lease and reconciles.
    let leases: Api<Lease> = Api::namespaced(client.clone(), OPERATOR_NS);
    let holder = |lease: Lease| lease.spec.and_then(|s| s.holder_identity);
    let leader = eventually("a leader", TIMEOUT, || {
        let leases = leases.clone();
        async move { leases.get("dbapi-operator").await.ok().and_then(holder) }
    })
    .await;
    let operator_pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NS);
    operator_pods.delete(&leader, &DeleteParams::default()).await.expect("the leader's pod is deleted");
    let started = Instant::now();
    let successor = eventually("another replica to lead", TIMEOUT, || {
        let (leases, leader) = (leases.clone(), leader.clone());
        async move { leases.get("dbapi-operator").await.ok().and_then(holder).filter(|h| *h != leader) }
    })
    .await;
    eprintln!("{successor} leads {:?} after the leader's pod was deleted", started.elapsed());
    apis.patch(
        "shop",
        &PatchParams::apply("e2e").force(),
        &Patch::Merge(&json!({"spec": {"runtime": {"replicas": {"min": 3, "max": 5}}}})),
    )
    .await
    .expect("the DatabaseApi takes a change");
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "shop");
    eventually("the new leader to carry the change to the HPA", TIMEOUT, || {
        let hpas = hpas.clone();
        async move { (hpas.get("shop-api").await.ok()?.spec?.min_replicas == Some(3)).then_some(()) }
    })
    .await;

    // Uninstall: the example, then the release; nothing of ours stays but
    // the CRD, which Helm never deletes.
    run(&kubectl, &["delete", "-f", &repo_path("examples/shop").to_string_lossy(), "--wait=true", "--timeout=5m"]);
    run(&helm, &["uninstall", RELEASE, "-n", OPERATOR_NS, "--wait"]);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.delete(OPERATOR_NS, &DeleteParams::default()).await.expect("the release namespace is deleted");
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let ours = ListParams::default().labels(&format!("app.kubernetes.io/instance={RELEASE}"));
    assert!(roles.list(&ours).await.unwrap().items.is_empty(), "a ClusterRole of the release is left");
    eventually("the namespaces to be gone", TIMEOUT, || {
        let namespaces = namespaces.clone();
        async move {
            let left = namespaces.get_opt("shop").await.ok()?.is_some()
                || namespaces.get_opt(OPERATOR_NS).await.ok()?.is_some();
            (!left).then_some(())
        }
    })
    .await;
}
