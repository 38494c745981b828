//! A JWKS document (`auth.jwt.jwksUrl` or `auth.jwt.jwksFile`) and its
//! refreshes: every `jwksRefreshSeconds`, and when a token names a `kid`
//! the current keys do not have, at most once per [`Tuning::forced_refetch_interval`]
//! so that a flood of made-up `kid`s cannot hammer the identity provider. A
//! failed refresh keeps the keys it had and logs why.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};

use super::keys::KeySet;

/// How long one fetch of `jwksUrl` may take, connection included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest JWKS document read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// The timings of refreshes; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    /// How often the document is read again.
    pub refresh_every: Duration,
    /// The least time between two refreshes caused by unknown `kid`s.
    pub forced_refetch_interval: Duration,
}

/// Where the document comes from.
pub(crate) enum Source {
    File(PathBuf),
    Url { uri: Uri, client: Box<HttpClient> },
}

impl Source {
    /// For messages: the file or the URL.
    pub fn describe(&self) -> String {
        match self {
            Source::File(path) => format!("auth.jwt.jwksFile {}", path.display()),
            Source::Url { uri, .. } => format!("auth.jwt.jwksUrl {uri}"),
        }
    }

    async fn read(&self) -> Result<KeySet, String> {
        let document = match self {
            Source::File(path) => tokio::fs::read(path).await.map_err(|e| format!("cannot be read: {e}"))?,
            Source::Url { uri, client } => fetch(client, uri).await?,
        };
        KeySet::parse(&document)
    }
}

/// The client that fetches `jwksUrl`.
pub(crate) type HttpClient = crate::outbound::HttpClient<Empty<Bytes>>;

/// Reads the JWKS document at `uri`.
async fn fetch(client: &HttpClient, uri: &Uri) -> Result<Vec<u8>, String> {
    let request = Request::get(uri.clone())
        .header(header::ACCEPT, "application/json, application/jwk-set+json")
        .header(header::USER_AGENT, concat!("dbapi-runtime/", env!("CARGO_PKG_VERSION")))
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let response = client.send(request).await?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let body = Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
            .collect()
            .await
            .map_err(|e| format!("its body could not be read: {e}"))?;
        Ok(body.to_bytes().to_vec())
    };
    tokio::time::timeout(FETCH_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("did not answer within {} s", FETCH_TIMEOUT.as_secs()))?
}

/// The current keys of a JWKS document.
pub(crate) struct Jwks {
    source: Source,
    keys: ArcSwap<KeySet>,
    /// Bumped whenever the keys change; tokens cached under an older
    /// generation are checked again.
    generation: AtomicU64,
    /// When the last refresh caused by an unknown `kid` started. Held while
    /// that refresh runs, so concurrent unknown `kid`s wait for one fetch.
    last_forced: tokio::sync::Mutex<Option<Instant>>,
    tuning: Tuning,
}

impl Jwks {
    /// Reads the document once. A file that cannot be read is an error;
    /// a URL that cannot be fetched is logged and retried later (the
    /// identity provider may start after this runtime), with no keys
    /// meanwhile.
    pub async fn load(source: Source, tuning: Tuning) -> Result<Jwks, String> {
        let keys = match source.read().await {
            Ok(keys) => keys,
            Err(why) => match &source {
                Source::File(_) => return Err(why),
                Source::Url { .. } => {
                    tracing::error!(
                        source = %source.describe(),
                        "JWKS fetch failed: {why}; tokens signed with its keys are refused until a fetch succeeds \
                         (retried every {} s and when a token arrives)",
                        tuning.refresh_every.as_secs_f64()
                    );
                    KeySet::default()
                }
            },
        };
        Ok(Jwks {
            source,
            keys: ArcSwap::from_pointee(keys),
            generation: AtomicU64::new(0),
            last_forced: tokio::sync::Mutex::new(None),
            tuning,
        })
    }

    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn refresh_every(&self) -> Duration {
        self.tuning.refresh_every
    }

    /// Reads the document again and takes its keys; on failure keeps the
    /// keys it has and logs why.
    pub async fn refresh(&self, why: &str) {
        match self.source.read().await {
            Ok(keys) => {
                let count = keys.keys.len();
                if keys.digest == self.keys.load().digest {
                    tracing::debug!(source = %self.source.describe(), keys = count, "JWKS unchanged ({why})");
                    return;
                }
                self.keys.store(Arc::new(keys));
                self.generation.fetch_add(1, Ordering::AcqRel);
                tracing::info!(source = %self.source.describe(), keys = count, "JWKS keys changed ({why})");
            }
            Err(error) => {
                tracing::warn!(source = %self.source.describe(), "JWKS refresh ({why}) failed, the previous keys stay: {error}")
            }
        }
    }

    /// A refresh because a token named a key the document lacks, unless
    /// one already ran within the forced-refetch interval. Returns when the
    /// keys are as fresh as they will get.
    pub async fn refresh_forced(&self) {
        let mut last = self.last_forced.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.tuning.forced_refetch_interval) {
            return;
        }
        *last = Some(Instant::now());
        self.refresh("a token named a key it does not hold").await;
    }

    /// Makes the last forced refresh look `by` older, as if that much time
    /// had passed.
    #[cfg(test)]
    pub async fn age_forced_refetch(&self, by: Duration) {
        let mut last = self.last_forced.lock().await;
        *last = last.and_then(|at| at.checked_sub(by));
    }
}
