//! JWKS from a file and from a real HTTP server on 127.0.0.1 (the identity
//! provider), which counts how often it is asked.

use std::convert::Infallible;
use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::Jwk;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::tests::{b64, now, pem, rsa_private, sign};
use super::*;

/// An identity provider serving a JWKS document (503 while it has none).
struct Idp {
    url: String,
    document: Arc<Mutex<Option<String>>>,
    /// How many requests it has answered.
    fetches: watch::Receiver<usize>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Idp {
    async fn start(document: Option<String>) -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
        let document = Arc::new(Mutex::new(document));
        let (counter, fetches) = watch::channel(0usize);
        let counter = Arc::new(counter);
        let served = document.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (served, counter) = (served.clone(), counter.clone());
                let service = hyper::service::service_fn(move |_request| {
                    // Read under the lock that `set` takes: a count seen
                    // after `set` returned is of a request that got the new document.
                    let document = served.lock().unwrap().clone();
                    counter.send_modify(|count| *count += 1);
                    let response = match document {
                        Some(body) => http::Response::new(Full::new(Bytes::from(body))),
                        None => http::Response::builder().status(503).body(Full::new(Bytes::new())).unwrap(),
                    };
                    async move { Ok::<_, Infallible>(response) }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Idp { url, document, fetches, server }
    }

    fn set(&self, document: Option<String>) -> usize {
        let mut served = self.document.lock().unwrap();
        *served = document;
        self.fetches()
    }

    fn fetches(&self) -> usize {
        *self.fetches.borrow()
    }

    /// Waits (bounded) until the server has answered `count` requests.
    async fn wait_for_fetches(&mut self, count: usize) {
        tokio::time::timeout(Duration::from_secs(10), self.fetches.wait_for(|n| *n >= count))
            .await
            .expect("the JWKS was not fetched again within 10 s")
            .unwrap();
    }
}

/// The JWK of a test-only public key, with a `kid` (or none).
fn jwk(public_pem: &str, alg: Algorithm, kid: Option<&str>) -> Value {
    let public = pem(public_pem);
    let key = match alg.family() {
        AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(&public),
        AlgorithmFamily::Ec => DecodingKey::from_ec_pem(&public),
        _ => DecodingKey::from_ed_pem(&public),
    }
    .unwrap();
    let mut jwk = Jwk::from_decoding_key(&key, Some(alg)).unwrap();
    jwk.common.key_id = kid.map(str::to_string);
    serde_json::to_value(jwk).unwrap()
}

fn rsa1(kid: Option<&str>) -> Value {
    jwk("test-only-rsa-public.pem", Algorithm::RS256, kid)
}

fn rsa2(kid: Option<&str>) -> Value {
    jwk("test-only-rsa2-public.pem", Algorithm::RS256, kid)
}

fn document(keys: &[Value]) -> Option<String> {
    Some(json!({"keys": keys}).to_string())
}

fn token(key: &EncodingKey, kid: Option<&str>) -> String {
    sign(Algorithm::RS256, key, kid, &json!({"sub": kid, "exp": now() + 600, "n": rand_nonce()}))
}

/// Makes each token distinct, so no test passes on a cached verdict.
fn rand_nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn rsa2_private() -> EncodingKey {
    EncodingKey::from_rsa_pem(&pem("test-only-rsa2-private.pem")).unwrap()
}

fn url_settings(url: &str) -> JwtSettings {
    JwtSettings { jwks_url: Some(url.into()), algorithms: vec!["RS256".into()], ..JwtSettings::default() }
}

const HOUR: Duration = Duration::from_secs(3600);

async fn url_verifier(idp: &Idp, refresh_every: Duration) -> JwtVerifier {
    let tuning = Tuning { refresh_every, forced_refetch_interval: HOUR };
    JwtVerifier::with_tuning(&url_settings(&idp.url), None, tuning).await.unwrap()
}

fn jwks_of(verifier: &JwtVerifier) -> &Jwks {
    verifier.inner.jwks.as_ref().unwrap()
}

#[tokio::test]
async fn a_rotated_key_is_fetched_when_its_kid_first_arrives() {
    let idp = Idp::start(document(&[rsa1(Some("k1"))])).await;
    let verifier = url_verifier(&idp, HOUR).await;
    assert_eq!(idp.fetches(), 1, "fetched once at start");
    assert!(verifier.verify(&token(&rsa_private(), Some("k1"))).await.is_ok());
    assert_eq!(idp.fetches(), 1, "a known kid fetches nothing");

    idp.set(document(&[rsa1(Some("k1")), rsa2(Some("k2"))]));
    let claims = verifier.verify(&token(&rsa2_private(), Some("k2"))).await.unwrap();
    assert_eq!(claims["sub"], "k2");
    assert_eq!(idp.fetches(), 2, "one forced fetch for the new kid");

    // The next unknown kid within the interval does not reach the IdP...
    let refused = verifier.verify(&token(&rsa2_private(), Some("k3"))).await.unwrap_err();
    assert_eq!(refused.to_string(), "no key with kid \"k3\" for RS256");
    assert_eq!(idp.fetches(), 2);
    // ...and once the interval has passed, one does.
    jwks_of(&verifier).age_forced_refetch(HOUR).await;
    assert!(verifier.verify(&token(&rsa2_private(), Some("k3"))).await.is_err());
    assert_eq!(idp.fetches(), 3);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_once_per_interval() {
    let idp = Idp::start(document(&[rsa1(Some("k1"))])).await;
    let verifier = Arc::new(url_verifier(&idp, HOUR).await);
    let mut flood = tokio::task::JoinSet::new();
    for n in 0..200 {
        let verifier = verifier.clone();
        // No key to check a signature with is ever found, so none is made.
        let header = b64(&json!({"alg": "RS256", "kid": format!("bogus-{n}")}));
        let token = format!("{header}.{}.c2lnbmF0dXJl", b64(&json!({"sub": n})));
        flood.spawn(async move { verifier.verify(&token).await });
    }
    let verdicts = flood.join_all().await;
    assert_eq!(verdicts.len(), 200);
    assert!(verdicts.iter().all(|v| matches!(v, Err(TokenError::UnknownKid { .. }))));
    assert_eq!(idp.fetches(), 2, "the start-up fetch and one forced fetch");
    assert!(verifier.verify(&token(&rsa_private(), Some("k1"))).await.is_ok(), "known keys still work");
}

#[tokio::test]
async fn a_token_without_kid_uses_the_only_key() {
    let idp = Idp::start(document(&[rsa1(None)])).await;
    let verifier = url_verifier(&idp, HOUR).await;
    assert!(verifier.verify(&token(&rsa_private(), None)).await.is_ok());

    // With two RSA keys, a token must say which.
    let idp = Idp::start(document(&[rsa1(Some("k1")), rsa2(Some("k2"))])).await;
    let verifier = url_verifier(&idp, HOUR).await;
    let refused = verifier.verify(&token(&rsa_private(), None)).await.unwrap_err();
    assert_eq!(refused.to_string(), "no key for RS256");
    assert!(verifier.verify(&token(&rsa_private(), Some("k1"))).await.is_ok());
    // A kid naming the other key does not verify a token signed with this one.
    assert_eq!(verifier.verify(&token(&rsa_private(), Some("k2"))).await.unwrap_err(), TokenError::InvalidSignature);
}

#[tokio::test]
async fn periodic_refresh_drops_a_removed_key_even_for_cached_tokens() {
    let mut idp = Idp::start(document(&[rsa1(Some("k1"))])).await;
    let verifier = url_verifier(&idp, Duration::from_millis(20)).await;
    let old = token(&rsa_private(), Some("k1"));
    assert!(verifier.verify(&old).await.is_ok());

    let seen = idp.set(document(&[rsa2(Some("k2"))]));
    // Two more fetches: the second one started after the first (which got
    // the new document) was applied.
    idp.wait_for_fetches(seen + 2).await;
    assert!(matches!(verifier.verify(&old).await, Err(TokenError::UnknownKid { .. })));
    assert!(verifier.verify(&token(&rsa2_private(), Some("k2"))).await.is_ok());
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_keys() {
    let idp = Idp::start(document(&[rsa1(Some("k1"))])).await;
    let verifier = url_verifier(&idp, HOUR).await;
    idp.set(None);
    assert!(verifier.verify(&token(&rsa_private(), Some("unknown"))).await.is_err());
    assert_eq!(idp.fetches(), 2, "the forced fetch was tried and got 503");
    assert!(verifier.verify(&token(&rsa_private(), Some("k1"))).await.is_ok(), "k1 is still known");

    idp.set(Some("{\"not\": \"a jwks\"}".into()));
    jwks_of(&verifier).age_forced_refetch(HOUR).await;
    assert!(verifier.verify(&token(&rsa_private(), Some("unknown"))).await.is_err());
    assert_eq!(idp.fetches(), 3);
    assert!(verifier.verify(&token(&rsa_private(), Some("k1"))).await.is_ok(), "a bad document changes nothing");
}

#[tokio::test]
async fn an_identity_provider_down_at_start_is_retried() {
    let idp = Idp::start(None).await;
    let verifier = url_verifier(&idp, HOUR).await;
    assert_eq!(idp.fetches(), 1);
    assert!(verifier.verify(&token(&rsa_private(), Some("k1"))).await.is_err());
    idp.set(document(&[rsa1(Some("k1"))]));
    jwks_of(&verifier).age_forced_refetch(HOUR).await;
    assert!(verifier.verify(&token(&rsa_private(), Some("k1"))).await.is_ok());
}

#[tokio::test]
async fn keys_of_other_kinds_are_chosen_by_kid_and_algorithm() {
    let idp = Idp::start(document(&[
        rsa1(Some("rsa")),
        jwk("test-only-ec256-public.pem", Algorithm::ES256, Some("ec")),
        jwk("test-only-ed25519-public.pem", Algorithm::EdDSA, Some("ed")),
        json!({"kty": "oct", "kid": "oct", "k": "c2VjcmV0"}),
        json!({"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}),
    ]))
    .await;
    let settings =
        JwtSettings { algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()], ..url_settings(&idp.url) };
    let verifier = JwtVerifier::new(&settings, None).await.unwrap();
    assert_eq!(jwks_of(&verifier).keys().keys.len(), 3, "the oct and enc keys are skipped");
    let ec = EncodingKey::from_ec_pem(&pem("test-only-ec256-private.pem")).unwrap();
    let ed = EncodingKey::from_ed_pem(&pem("test-only-ed25519-private.pem")).unwrap();
    assert!(verifier.verify(&sign(Algorithm::ES256, &ec, Some("ec"), &json!({}))).await.is_ok());
    assert!(verifier.verify(&sign(Algorithm::EdDSA, &ed, Some("ed"), &json!({}))).await.is_ok());
    // The EC key's kid on an RS256 token: the key does not fit RS256.
    let misfit = verifier.verify(&sign(Algorithm::RS256, &rsa_private(), Some("ec"), &json!({}))).await;
    assert_eq!(misfit.unwrap_err().to_string(), "no key with kid \"ec\" for RS256");
}

#[tokio::test]
async fn a_jwks_file_is_read_and_read_again_for_an_unknown_kid() {
    let path = std::env::temp_dir().join(format!("dbapi-jwt-test-{}-jwks.json", std::process::id()));
    std::fs::write(&path, document(&[rsa1(Some("k1"))]).unwrap()).unwrap();
    let settings = JwtSettings {
        jwks_file: Some(path.display().to_string()),
        algorithms: vec!["RS256".into()],
        ..JwtSettings::default()
    };
    let verifier = JwtVerifier::new(&settings, None).await.unwrap();
    assert!(verifier.verify(&token(&rsa_private(), Some("k1"))).await.is_ok());
    assert!(verifier.verify(&token(&rsa_private(), None)).await.is_ok(), "the only key, without kid");

    std::fs::write(&path, document(&[rsa1(Some("k1")), rsa2(Some("k2"))]).unwrap()).unwrap();
    assert!(verifier.verify(&token(&rsa2_private(), Some("k2"))).await.is_ok());

    std::fs::write(&path, "not json").unwrap();
    let refused = JwtVerifier::new(&settings, None).await.unwrap_err().to_string();
    assert!(
        refused.starts_with(&format!("auth.jwt.jwksFile {}: it is not a JWKS document", path.display())),
        "{refused}"
    );
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn an_https_url_is_fetched_over_tls_only() {
    // This IdP speaks plain HTTP: a TLS hello is not a request it answers,
    // so a client that fell back to http would be counted.
    let idp = Idp::start(document(&[rsa1(Some("k1"))])).await;
    let url = idp.url.replace("http://", "https://");
    let tuning = Tuning { refresh_every: HOUR, forced_refetch_interval: HOUR };
    let verifier = JwtVerifier::with_tuning(&url_settings(&url), None, tuning).await.unwrap();
    assert!(matches!(verifier.verify(&token(&rsa_private(), Some("k1"))).await, Err(TokenError::UnknownKid { .. })));
    assert_eq!(idp.fetches(), 0);
}
