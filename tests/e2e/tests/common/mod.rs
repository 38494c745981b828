//! What the end-to-end tests share: waiting for the cluster, and the
//! repository's files.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Polls `check` every second until it returns `Some`, or fails after
/// `within` saying what it waited for.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A path in the repository.
pub fn repo_path(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

/// A file of the repository, as text.
#[allow(dead_code)]
pub fn repo_file(path: &str) -> String {
    let full = repo_path(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}
