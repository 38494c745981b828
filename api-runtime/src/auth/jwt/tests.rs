//! Every way a token is refused or taken, with real signatures made by the
//! test-only keys under `tests/fixtures/jwt/`.

use jsonwebtoken::{EncodingKey, Header, encode, get_current_timestamp};
use serde_json::{Value, json};

use super::*;

pub(super) const SECRET: &str = "a test-only HMAC secret, 41 bytes long!!";

pub(super) fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub(super) fn pem(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

pub(super) fn now() -> u64 {
    get_current_timestamp()
}

pub(super) fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let header = Header { kid: kid.map(str::to_string), ..Header::new(alg) };
    encode(&header, claims, key).unwrap()
}

pub(super) fn rsa_private() -> EncodingKey {
    EncodingKey::from_rsa_pem(&pem("test-only-rsa-private.pem")).unwrap()
}

fn hs(alg: Algorithm, claims: &Value) -> String {
    sign(alg, &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(), None, claims)
}

pub(super) fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn hmac_settings() -> JwtSettings {
    JwtSettings { secret: Some(SECRET.into()), ..JwtSettings::default() }
}

fn with_key_file(file: &str, algorithms: &[&str]) -> JwtSettings {
    JwtSettings {
        public_key_file: Some(fixture(file)),
        algorithms: algorithms.iter().map(|a| a.to_string()).collect(),
        ..JwtSettings::default()
    }
}

async fn verifier(settings: &JwtSettings) -> JwtVerifier {
    JwtVerifier::new(settings, None).await.unwrap()
}

async fn refusal(settings: &JwtSettings) -> String {
    JwtVerifier::new(settings, None).await.unwrap_err().to_string()
}

#[tokio::test]
async fn hmac_tokens_are_accepted_with_each_allowed_hash() {
    let settings = JwtSettings { algorithms: vec!["HS256".into(), "HS384".into(), "HS512".into()], ..hmac_settings() };
    let verifier = verifier(&settings).await;
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let claims = json!({"sub": "u1", "role": "editor", "exp": now() + 600, "alg": format!("{alg:?}")});
        let verified = verifier.verify(&hs(alg, &claims)).await.unwrap();
        assert_eq!(*verified, claims, "{alg:?}");
    }
}

#[tokio::test]
async fn public_key_tokens_are_accepted_with_their_pem_file() {
    let cases = [
        ("test-only-rsa", "RS256", Algorithm::RS256),
        ("test-only-rsa", "RS384", Algorithm::RS384),
        ("test-only-rsa", "RS512", Algorithm::RS512),
        ("test-only-ec256", "ES256", Algorithm::ES256),
        ("test-only-ec384", "ES384", Algorithm::ES384),
        ("test-only-ed25519", "EdDSA", Algorithm::EdDSA),
    ];
    for (keys, name, alg) in cases {
        let verifier = verifier(&with_key_file(&format!("{keys}-public.pem"), &[name])).await;
        let private = pem(&format!("{keys}-private.pem"));
        let key = match alg.family() {
            AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(&private),
            AlgorithmFamily::Ec => EncodingKey::from_ec_pem(&private),
            _ => EncodingKey::from_ed_pem(&private),
        }
        .unwrap();
        // A kid is ignored when there is no JWKS to choose from.
        let claims = json!({"sub": name, "exp": now() + 600});
        assert_eq!(*verifier.verify(&sign(alg, &key, Some("any"), &claims)).await.unwrap(), claims, "{name}");
    }
}

#[tokio::test]
async fn expired_tokens_are_refused_after_the_leeway() {
    let verifier = verifier(&hmac_settings()).await;
    let expired = hs(Algorithm::HS256, &json!({"exp": now() - 3600}));
    let refused = verifier.verify(&expired).await.unwrap_err();
    assert_eq!(refused, TokenError::Expired);
    assert_eq!((refused.to_string().as_str(), refused.code()), ("JWT expired", "PGRST303"));
    // Default leeway 30 s: 10 s late passes, 60 s late does not.
    assert!(verifier.verify(&hs(Algorithm::HS256, &json!({"exp": now() - 10}))).await.is_ok());
    let late = verifier.verify(&hs(Algorithm::HS256, &json!({"exp": now() - 60}))).await;
    assert_eq!(late.unwrap_err(), TokenError::Expired);
    let strict = self::verifier(&JwtSettings { leeway_seconds: Some(0), ..hmac_settings() }).await;
    let late = strict.verify(&hs(Algorithm::HS256, &json!({"exp": now() - 10}))).await;
    assert_eq!(late.unwrap_err(), TokenError::Expired);
    // exp is not required, as in PostgREST.
    assert!(verifier.verify(&hs(Algorithm::HS256, &json!({"sub": "u1"}))).await.is_ok());
}

#[tokio::test]
async fn tokens_before_their_nbf_are_refused() {
    let verifier = verifier(&hmac_settings()).await;
    let early = verifier.verify(&hs(Algorithm::HS256, &json!({"nbf": now() + 3600}))).await;
    assert_eq!(early.unwrap_err().to_string(), "JWT is not valid yet");
    assert!(verifier.verify(&hs(Algorithm::HS256, &json!({"nbf": now() + 10}))).await.is_ok(), "within leeway");
}

#[tokio::test]
async fn audience_is_checked_only_when_configured() {
    let open = verifier(&hmac_settings()).await;
    assert!(open.verify(&hs(Algorithm::HS256, &json!({"aud": "someone-else"}))).await.is_ok());
    assert!(open.verify(&hs(Algorithm::HS256, &json!({"aud": ["a", "b"]}))).await.is_ok());

    let strict = verifier(&JwtSettings { audience: Some("dbapi".into()), ..hmac_settings() }).await;
    assert!(strict.verify(&hs(Algorithm::HS256, &json!({"aud": "dbapi"}))).await.is_ok());
    assert!(strict.verify(&hs(Algorithm::HS256, &json!({"aud": ["web", "dbapi"]}))).await.is_ok());
    for claims in [json!({"aud": "web"}), json!({"aud": ["web"]}), json!({"sub": "no aud"})] {
        let refused = strict.verify(&hs(Algorithm::HS256, &claims)).await.unwrap_err();
        assert_eq!(refused.to_string(), "JWT audience does not match", "{claims}");
    }
}

#[tokio::test]
async fn issuer_is_checked_when_configured() {
    let verifier = verifier(&JwtSettings { issuer: Some("https://idp.test".into()), ..hmac_settings() }).await;
    assert!(verifier.verify(&hs(Algorithm::HS256, &json!({"iss": "https://idp.test"}))).await.is_ok());
    for claims in [json!({"iss": "https://evil.test"}), json!({"sub": "no iss"})] {
        let refused = verifier.verify(&hs(Algorithm::HS256, &claims)).await.unwrap_err();
        assert_eq!(refused.to_string(), "JWT issuer does not match", "{claims}");
    }
}

#[tokio::test]
async fn tampered_tokens_are_refused() {
    let verifier = verifier(&hmac_settings()).await;
    let token = hs(Algorithm::HS256, &json!({"sub": "u1", "role": "reader"}));
    let parts: Vec<&str> = token.split('.').collect();
    assert!(verifier.verify(&token).await.is_ok());

    let forged_payload = format!("{}.{}.{}", parts[0], b64(&json!({"sub": "u1", "role": "admin"})), parts[2]);
    assert_eq!(verifier.verify(&forged_payload).await.unwrap_err(), TokenError::InvalidSignature);

    let flipped = if parts[2].starts_with('A') { "B" } else { "A" };
    let forged_signature = format!("{}.{}.{flipped}{}", parts[0], parts[1], &parts[2][1..]);
    let refused = verifier.verify(&forged_signature).await.unwrap_err();
    assert_eq!((refused.to_string().as_str(), refused.code()), ("JWT signature is invalid", "PGRST301"));
    assert!(!refused.to_string().contains(parts[2]), "messages never quote the token");
}

#[tokio::test]
async fn unsigned_tokens_are_refused() {
    let verifier = verifier(&hmac_settings()).await;
    let payload = b64(&json!({"sub": "u1", "role": "admin"}));
    for alg in ["none", "None", "NONE"] {
        let token = format!("{}.{payload}.", b64(&json!({"alg": alg, "typ": "JWT"})));
        assert!(looks_like_jwt(&token), "an unsigned token is still a JWT to refuse, not an API key");
        let refused = verifier.verify(&token).await.unwrap_err();
        assert_eq!(refused.to_string(), format!("algorithm {alg} is not allowed"));
    }
    // Even with a signature attached.
    let token = format!("{}.{payload}.c2lnbmF0dXJl", b64(&json!({"alg": "none"})));
    assert_eq!(verifier.verify(&token).await.unwrap_err(), TokenError::AlgorithmNotAllowed("none".into()));
    // What a message quotes from a token is cut short and header-safe.
    let odd = format!("{}.{payload}.c2ln", b64(&json!({"alg": format!("x\"\\\n\u{e9}{}", "y".repeat(100))})));
    assert_eq!(
        verifier.verify(&odd).await.unwrap_err().to_string(),
        format!("algorithm x{} is not allowed", "y".repeat(63))
    );
    let no_alg = format!("{}.{payload}.c2ln", b64(&json!({"typ": "JWT"})));
    assert!(matches!(verifier.verify(&no_alg).await.unwrap_err(), TokenError::Malformed(_)));
}

#[tokio::test]
async fn hmac_signed_with_the_public_key_is_refused() {
    // The classic confusion: the attacker knows the RSA public key and signs
    // HS256 with its PEM text as the HMAC secret.
    let public_pem = pem("test-only-rsa-public.pem");
    let forged =
        sign(Algorithm::HS256, &EncodingKey::from_secret(&public_pem).unwrap(), None, &json!({"role": "admin"}));
    let both =
        JwtSettings { secret: Some(SECRET.into()), ..with_key_file("test-only-rsa-public.pem", &["HS256", "RS256"]) };
    let verifier = verifier(&both).await;
    assert_eq!(verifier.verify(&forged).await.unwrap_err(), TokenError::InvalidSignature);
    let genuine = sign(Algorithm::RS256, &rsa_private(), None, &json!({"role": "admin"}));
    assert!(verifier.verify(&genuine).await.is_ok());

    let rsa_only = self::verifier(&with_key_file("test-only-rsa-public.pem", &["RS256"])).await;
    assert_eq!(rsa_only.verify(&forged).await.unwrap_err().to_string(), "algorithm HS256 is not allowed");
}

#[tokio::test]
async fn algorithms_not_allowed_are_refused() {
    let verifier = verifier(&hmac_settings()).await;
    let rs256 = sign(Algorithm::RS256, &rsa_private(), None, &json!({"role": "admin"}));
    assert_eq!(verifier.verify(&rs256).await.unwrap_err().to_string(), "algorithm RS256 is not allowed");
    let hs512 = hs(Algorithm::HS512, &json!({"role": "admin"}));
    assert_eq!(verifier.verify(&hs512).await.unwrap_err().to_string(), "algorithm HS512 is not allowed");
    // An EC key is never used for a token claiming another curve.
    let p256 = self::verifier(&with_key_file("test-only-ec256-public.pem", &["ES256"])).await;
    let es384 = sign(
        Algorithm::ES384,
        &EncodingKey::from_ec_pem(&pem("test-only-ec384-private.pem")).unwrap(),
        None,
        &json!({}),
    );
    assert_eq!(p256.verify(&es384).await.unwrap_err().to_string(), "algorithm ES384 is not allowed");
}

#[tokio::test]
async fn the_environment_secret_wins_over_the_document() {
    let from_env = "the secret the operator passes, 42 bytes!!";
    let verifier = JwtVerifier::new(&hmac_settings(), Some(from_env.into())).await.unwrap();
    let env_signed =
        sign(Algorithm::HS256, &EncodingKey::from_secret(from_env.as_bytes()).unwrap(), None, &json!({"sub": "u"}));
    assert!(verifier.verify(&env_signed).await.is_ok());
    let document_signed = hs(Algorithm::HS256, &json!({"sub": "u"}));
    assert_eq!(verifier.verify(&document_signed).await.unwrap_err(), TokenError::InvalidSignature);
    // An empty variable does not count.
    let verifier = JwtVerifier::new(&hmac_settings(), Some(String::new())).await.unwrap();
    assert!(verifier.verify(&document_signed).await.is_ok());
}

#[tokio::test]
async fn malformed_tokens_and_claims_are_refused() {
    let verifier = verifier(&hmac_settings()).await;
    for token in ["", "abc", "a.b", "a.b.c.d", "!!!.e30.e30", &"a".repeat(MAX_TOKEN_BYTES + 1)] {
        assert!(matches!(verifier.verify(token).await, Err(TokenError::Malformed(_))), "{token:.20}");
    }
    let array = hs(Algorithm::HS256, &json!(["not", "an", "object"]));
    assert!(matches!(verifier.verify(&array).await, Err(TokenError::Malformed(_))));
    let bad_exp = hs(Algorithm::HS256, &json!({"exp": "tomorrow"}));
    assert_eq!(verifier.verify(&bad_exp).await.unwrap_err().to_string(), "JWT claim exp is not valid");
}

#[tokio::test]
async fn role_claim_paths() {
    let claims = json!({
        "role": "top",
        "app_metadata": {"role": "nested", "level": 3},
        "https://example.com/role": "namespaced",
        "roles": ["first", "second"],
    });
    let cases = [
        ("", Some("top")),
        ("role", Some("top")),
        ("app_metadata.role", Some("nested")),
        (".app_metadata.role", Some("nested")),
        (r#"."https://example.com/role""#, Some("namespaced")),
        (".roles[1]", Some("second")),
        ("roles[5]", None),
        ("app_metadata.level", None),
        ("app_metadata.missing", None),
    ];
    for (path, role) in cases {
        let verifier = verifier(&JwtSettings { role_claim: path.into(), ..hmac_settings() }).await;
        assert_eq!(verifier.role_of(&claims), role, "{path}");
    }
    for path in ["a..b", ".", "a.", r#"."open"#, "roles[x]", "roles[1", "a b"] {
        let refused = refusal(&JwtSettings { role_claim: path.into(), ..hmac_settings() }).await;
        assert!(refused.starts_with(&format!("auth.jwt.roleClaim \"{path}\"")), "{path}: {refused}");
    }
}

#[tokio::test]
async fn start_up_refuses_configurations_that_cannot_work() {
    let algorithms = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let cases: Vec<(JwtSettings, &str)> = vec![
        (JwtSettings { algorithms: algorithms(&["HS257"]), ..hmac_settings() }, "auth.jwt.algorithms: \"HS257\""),
        (JwtSettings { algorithms: algorithms(&["HS256", "none"]), ..hmac_settings() }, "\"none\" is never allowed"),
        (JwtSettings::default(), "allows HS256 but no HMAC secret is set: set DBAPI_JWT_SECRET"),
        (JwtSettings { secret: Some("short".into()), ..JwtSettings::default() }, "has 5 bytes"),
        (
            JwtSettings { algorithms: algorithms(&["RS256"]), ..hmac_settings() },
            "allows RS256 but no key can verify it",
        ),
        (with_key_file("test-only-ec256-public.pem", &["ES256", "ES384"]), "allows ES384 but no key"),
        (
            JwtSettings { secret: Some(SECRET.into()), ..with_key_file("test-only-rsa-public.pem", &["HS256"]) },
            "holds an RSA key but auth.jwt.algorithms (HS256)",
        ),
        (with_key_file("test-only-rsa-private.pem", &["RS256"]), "holds a private key"),
        (with_key_file("missing.pem", &["RS256"]), "auth.jwt.publicKeyFile"),
        (
            JwtSettings {
                jwks_url: Some("ftp://idp.test/jwks".into()),
                algorithms: algorithms(&["RS256"]),
                ..JwtSettings::default()
            },
            "auth.jwt.jwksUrl ftp://idp.test/jwks: must start with http:// or https://",
        ),
        (
            JwtSettings { jwks_url: Some("http://127.0.0.1:9/jwks".into()), ..hmac_settings() },
            "auth.jwt.jwksUrl is set but auth.jwt.algorithms (HS256) allows only HMAC",
        ),
        (
            JwtSettings {
                jwks_url: Some("http://127.0.0.1:9/jwks".into()),
                jwks_file: Some("/jwks.json".into()),
                ..hmac_settings()
            },
            "both set",
        ),
        (JwtSettings { jwks_refresh_seconds: Some(0), ..hmac_settings() }, "jwksRefreshSeconds must be at least 1"),
    ];
    for (settings, expected) in cases {
        let refused = refusal(&settings).await;
        assert!(refused.contains(expected), "expected {expected:?} in {refused:?}");
        assert!(!refused.contains(SECRET), "a secret is never in a message");
    }
}

#[test]
fn bearer_values_shaped_like_jwts() {
    let token = hs(Algorithm::HS256, &json!({"sub": "u"}));
    assert!(looks_like_jwt(&token));
    assert!(looks_like_jwt("eyJhbGciOiJub25lIn0.e30."));
    for value in [&format!("dbapi_{}", "ab".repeat(32)), "a.b", "a.b.c.d", ".b.c", "a..c", "a b.c.d", "a.b.c=", ""] {
        assert!(!looks_like_jwt(value), "{value}");
    }
}

#[tokio::test]
async fn verified_tokens_are_cached_and_their_expiry_still_applies() {
    let verifier = verifier(&hmac_settings()).await;
    let token = hs(Algorithm::HS256, &json!({"sub": "u", "exp": now() + 100}));
    let first = verifier.verify(&token).await.unwrap();
    let second = verifier.verify(&token).await.unwrap();
    assert!(Arc::ptr_eq(&first, &second), "the second verify is a cache hit");
    assert_eq!(verifier.inner.cache.len(), 1);
    let refused = verifier.verify(&hs(Algorithm::HS256, &json!({"exp": now() - 3600}))).await;
    assert!(refused.is_err());
    assert_eq!(verifier.inner.cache.len(), 1, "refusals are not cached");

    // The cache's own clock: past exp + leeway a hit is refused, and an
    // entry made under another key generation is not used.
    let cache = TokenCache::default();
    let digest = cache::digest(&token);
    let claims = Arc::new(json!({"exp": now() + 100}));
    cache.insert(digest, claims.clone(), 7, now(), 30);
    assert_eq!(cache.get(&digest, 7, now() + 129, 30), Some(Ok(claims)));
    assert_eq!(cache.get(&digest, 8, now(), 30), None);
    cache.insert(digest, Arc::new(json!({"exp": now() + 100})), 7, now(), 30);
    assert_eq!(cache.get(&digest, 7, now() + 131, 30), Some(Err(TokenError::Expired)));
    assert_eq!(cache.get(&digest, 7, now(), 30), None, "an expired entry is dropped");
    cache.insert(digest, Arc::new(json!({"exp": now() - 31})), 7, now(), 30);
    assert_eq!(cache.len(), 0, "a token past its expiry is never kept");
}
