//! JSON Web Tokens (`auth.jwt`): which tokens are believed, and the role a
//! token names.
//!
//! A [`JwtVerifier`] is built once per configuration document. It checks a
//! token's signature with the HMAC secret (`DBAPI_JWT_SECRET`, else
//! `auth.jwt.secret`), a PEM public key (`publicKeyFile`) or the keys of a
//! JWKS document (`jwksFile`, `jwksUrl`), then its `exp` and `nbf` (with
//! `leewaySeconds`), `iss` (when `issuer` is set) and `aud` (when `audience`
//! is set; a token's `aud` is not looked at otherwise). Only the algorithms
//! in `algorithms` are taken, never `none`, and a key is only used with
//! algorithms of its own kind, so an HS256 token "signed" with a public key
//! as its secret is refused. Verified tokens are kept briefly (see `cache`).
//!
//! Neither a token nor a secret is ever logged or put in a message.

mod cache;
mod jwks;
#[cfg(test)]
mod jwks_tests;
mod keys;
#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dbapi_crds::config::{DEFAULT_JWKS_REFRESH_SECONDS, DEFAULT_JWT_LEEWAY_SECONDS, JwtSettings};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};

use cache::TokenCache;
use jwks::{HttpClient, Jwks, Source, Tuning};
use keys::PublicKey;

/// HMAC secrets shorter than this are refused at start-up, as PostgREST
/// refuses them: they can be guessed offline from any one token.
pub const MIN_SECRET_BYTES: usize = 32;
/// Longer bearer values are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The least time between two JWKS refreshes caused by unknown `kid`s.
const FORCED_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// The algorithm names `auth.jwt.algorithms` takes.
const ALGORITHM_NAMES: &str = "HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA";

/// Why a token was refused. The message is safe to show the client: it never
/// holds the token, and what it quotes from the token is cut short.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("JWT is malformed: {0}")]
    Malformed(&'static str),
    #[error("algorithm {0} is not allowed")]
    AlgorithmNotAllowed(String),
    #[error("no key with kid \"{kid}\" for {alg}")]
    UnknownKid { kid: String, alg: String },
    #[error("no key for {0}")]
    NoKey(String),
    #[error("JWT signature is invalid")]
    InvalidSignature,
    #[error("JWT expired")]
    Expired,
    #[error("JWT is not valid yet")]
    NotYetValid,
    #[error("JWT audience does not match")]
    Audience,
    #[error("JWT issuer does not match")]
    Issuer,
    #[error("JWT claim {0} is not valid")]
    InvalidClaim(String),
}

impl TokenError {
    /// PostgREST's error code: `PGRST303` when the token is genuine but its
    /// claims refuse it (expired, not yet valid, other audience or issuer),
    /// `PGRST301` when it cannot be believed at all.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Expired
            | TokenError::NotYetValid
            | TokenError::Audience
            | TokenError::Issuer
            | TokenError::InvalidClaim(_) => "PGRST303",
            _ => "PGRST301",
        }
    }
}

/// A configuration the verifier cannot work with; the message names the key
/// and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum JwtConfigError {
    #[error("auth.jwt.algorithms: \"{name}\" is not an algorithm this runtime verifies; use {ALGORITHM_NAMES}")]
    UnknownAlgorithm { name: String },
    #[error("auth.jwt.algorithms: \"none\" is never allowed: an unsigned token proves nothing")]
    NoneAlgorithm,
    #[error(
        "auth.jwt.algorithms allows {alg} but no HMAC secret is set: set DBAPI_JWT_SECRET (or auth.jwt.secret), \
         or allow only public-key algorithms"
    )]
    NoSecret { alg: String },
    #[error(
        "the JWT secret (DBAPI_JWT_SECRET or auth.jwt.secret) has {len} bytes; an HMAC secret needs at least \
         {MIN_SECRET_BYTES}: make a new one, e.g. with `openssl rand -base64 48`"
    )]
    ShortSecret { len: usize },
    #[error(
        "auth.jwt.algorithms allows {alg} but no key can verify it ({have}): set auth.jwt.publicKeyFile, \
         auth.jwt.jwksFile or auth.jwt.jwksUrl to a key for it, or remove {alg}"
    )]
    NoKeyFor { alg: String, have: String },
    #[error(
        "auth.jwt.publicKeyFile holds {kind} but auth.jwt.algorithms ({algorithms}) allows no algorithm that \
         uses it: add {suggest} to auth.jwt.algorithms"
    )]
    UnusedPublicKey { kind: &'static str, algorithms: String, suggest: &'static str },
    #[error(
        "auth.jwt.{key} is set but auth.jwt.algorithms ({algorithms}) allows only HMAC algorithms: add the \
         algorithms its keys sign with (e.g. RS256) to auth.jwt.algorithms"
    )]
    UnusedJwks { key: &'static str, algorithms: String },
    #[error("auth.jwt.publicKeyFile {path}: {why}")]
    PublicKeyFile { path: String, why: String },
    #[error("auth.jwt.jwksFile {path}: {why}")]
    JwksFile { path: String, why: String },
    #[error("auth.jwt.jwksUrl {url}: {why}")]
    JwksUrl { url: String, why: String },
    #[error("auth.jwt.jwksUrl and auth.jwt.jwksFile are both set: keep one")]
    TwoJwks,
    #[error("auth.jwt.jwksRefreshSeconds must be at least 1")]
    ZeroRefresh,
    #[error(
        "auth.jwt.roleClaim \"{path}\": {why}; write a dotted path such as app_metadata.role (PostgREST's \
         leading dot, quoted keys and [n] indexes are accepted too)"
    )]
    RoleClaim { path: String, why: &'static str },
}

/// Checks tokens against one configuration's keys and rules.
pub struct JwtVerifier {
    inner: Arc<Inner>,
    /// Re-reads the JWKS document on its interval; stopped when the
    /// verifier is dropped (a reloaded configuration builds a new one).
    refresher: Option<tokio::task::JoinHandle<()>>,
}

struct Inner {
    /// Each allowed algorithm, by its name in a token's header, with the
    /// checks a token of that algorithm gets.
    allowed: Vec<(&'static str, Algorithm, Validation)>,
    secret: Option<DecodingKey>,
    file_key: Option<PublicKey>,
    jwks: Option<Jwks>,
    role_claim: Vec<Step>,
    leeway: u64,
    cache: TokenCache,
}

/// One step of the `roleClaim` path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = &self.inner;
        f.debug_struct("JwtVerifier")
            .field("algorithms", &inner.allowed.iter().map(|(name, ..)| *name).collect::<Vec<_>>())
            .field("secret", &inner.secret.as_ref().map(|_| "[redacted]"))
            .field("public_key_file", &inner.file_key)
            .field("jwks", &inner.jwks.as_ref().map(|jwks| jwks.keys().keys.len()))
            .field("role_claim", &inner.role_claim)
            .field("leeway", &inner.leeway)
            .finish()
    }
}

impl Drop for JwtVerifier {
    fn drop(&mut self) {
        if let Some(refresher) = &self.refresher {
            refresher.abort();
        }
    }
}

impl JwtVerifier {
    /// Built once per configuration document. `env_secret` is
    /// `DBAPI_JWT_SECRET`, which wins over `settings.secret`. Reads
    /// `publicKeyFile` and `jwksFile`, and fetches `jwksUrl` once (a failed
    /// fetch is logged and retried, not an error: the identity provider may
    /// come up after this runtime).
    pub async fn new(settings: &JwtSettings, env_secret: Option<String>) -> Result<JwtVerifier, JwtConfigError> {
        let refresh = settings.jwks_refresh_seconds.unwrap_or(DEFAULT_JWKS_REFRESH_SECONDS);
        if refresh == 0 {
            return Err(JwtConfigError::ZeroRefresh);
        }
        let tuning =
            Tuning { refresh_every: Duration::from_secs(refresh), forced_refetch_interval: FORCED_REFETCH_INTERVAL };
        Self::with_tuning(settings, env_secret, tuning).await
    }

    pub(crate) async fn with_tuning(
        settings: &JwtSettings,
        env_secret: Option<String>,
        tuning: Tuning,
    ) -> Result<JwtVerifier, JwtConfigError> {
        let algorithms = allowed_algorithms(&settings.algorithms)?;
        let listed = algorithms.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ");
        let role_claim = settings.role_claim.trim();
        let role_claim = if role_claim.is_empty() { "role" } else { role_claim };
        let role_claim = parse_role_claim(role_claim)
            .map_err(|why| JwtConfigError::RoleClaim { path: settings.role_claim.clone(), why })?;

        let secret = match algorithms.iter().find(|(_, alg)| alg.family() == AlgorithmFamily::Hmac) {
            None => None,
            Some((name, _)) => {
                let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
                let secret = nonempty(&env_secret)
                    .or_else(|| nonempty(&settings.secret))
                    .ok_or_else(|| JwtConfigError::NoSecret { alg: (*name).to_string() })?;
                if secret.len() < MIN_SECRET_BYTES {
                    return Err(JwtConfigError::ShortSecret { len: secret.len() });
                }
                Some(DecodingKey::from_secret(secret.as_bytes()).map_err(|_| JwtConfigError::ShortSecret { len: 0 })?)
            }
        };

        let file_key = match nonempty_str(&settings.public_key_file) {
            None => None,
            Some(path) => {
                let error = |why: String| JwtConfigError::PublicKeyFile { path: path.to_string(), why };
                let pem = tokio::fs::read(path).await.map_err(|e| error(format!("cannot be read: {e}")))?;
                let key = PublicKey::from_pem(&pem).map_err(error)?;
                if !algorithms.iter().any(|(_, alg)| key.fits(*alg)) {
                    return Err(JwtConfigError::UnusedPublicKey {
                        kind: key.kind(),
                        algorithms: listed,
                        suggest: suggested_algorithm(&key),
                    });
                }
                Some(key)
            }
        };

        let (jwks_file, jwks_url) = (nonempty_str(&settings.jwks_file), nonempty_str(&settings.jwks_url));
        let source = match (jwks_file, jwks_url) {
            (Some(_), Some(_)) => return Err(JwtConfigError::TwoJwks),
            (Some(path), None) => Some(Source::File(path.into())),
            (None, Some(url)) => {
                let (uri, client) =
                    HttpClient::for_url(url).map_err(|why| JwtConfigError::JwksUrl { url: url.to_string(), why })?;
                Some(Source::Url { uri, client: Box::new(client) })
            }
            (None, None) => None,
        };
        if source.is_some() && algorithms.iter().all(|(_, alg)| alg.family() == AlgorithmFamily::Hmac) {
            let key = if jwks_file.is_some() { "jwksFile" } else { "jwksUrl" };
            return Err(JwtConfigError::UnusedJwks { key, algorithms: listed });
        }
        if source.is_none()
            && let Some((name, _)) = algorithms.iter().find(|(_, alg)| {
                alg.family() != AlgorithmFamily::Hmac && !file_key.as_ref().is_some_and(|k| k.fits(*alg))
            })
        {
            let have = match &file_key {
                Some(key) => format!("publicKeyFile holds {}", key.kind()),
                None => "no publicKeyFile, jwksFile or jwksUrl is set".to_string(),
            };
            return Err(JwtConfigError::NoKeyFor { alg: (*name).to_string(), have });
        }
        let jwks = match source {
            None => None,
            Some(source) => Some(
                Jwks::load(source, tuning)
                    .await
                    .map_err(|why| JwtConfigError::JwksFile { path: jwks_file.unwrap_or_default().to_string(), why })?,
            ),
        };

        let leeway = settings.leeway_seconds.unwrap_or(DEFAULT_JWT_LEEWAY_SECONDS);
        let allowed =
            algorithms.into_iter().map(|(name, alg)| (name, alg, validation(alg, settings, leeway))).collect();
        let inner =
            Arc::new(Inner { allowed, secret, file_key, jwks, role_claim, leeway, cache: TokenCache::default() });
        let refresher = spawn_refresher(&inner);
        Ok(JwtVerifier { inner, refresher })
    }

    /// Verifies a token and returns its claims (a JSON object).
    pub async fn verify(&self, token: &str) -> Result<Arc<serde_json::Value>, TokenError> {
        let inner = &self.inner;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed("it is longer than 16 KiB"));
        }
        let digest = cache::digest(token);
        let generation = inner.jwks.as_ref().map_or(0, Jwks::generation);
        if let Some(verdict) = inner.cache.get(&digest, generation, now_unix(), inner.leeway) {
            return verdict;
        }
        let header = read_header(token)?;
        let (_, alg, validation) = inner
            .allowed
            .iter()
            .find(|(name, ..)| *name == header.alg)
            .ok_or_else(|| TokenError::AlgorithmNotAllowed(shown(&header.alg)))?;
        let claims = Arc::new(inner.check(token, *alg, header.kid.as_deref(), validation).await?);
        inner.cache.insert(digest, claims.clone(), generation, now_unix(), inner.leeway);
        Ok(claims)
    }

    /// The role named by `roleClaim` (a dotted path, `app_metadata.role`;
    /// PostgREST's `.app_metadata.role` too), if present and a string.
    pub fn role_of<'a>(&self, claims: &'a serde_json::Value) -> Option<&'a str> {
        self.inner
            .role_claim
            .iter()
            .try_fold(claims, |value, step| match step {
                Step::Key(key) => value.get(key.as_str()),
                Step::Index(index) => value.get(*index),
            })?
            .as_str()
    }
}

impl Inner {
    /// The signature and claims of a token whose algorithm is allowed.
    async fn check(
        &self,
        token: &str,
        alg: Algorithm,
        kid: Option<&str>,
        validation: &Validation,
    ) -> Result<serde_json::Value, TokenError> {
        if alg.family() == AlgorithmFamily::Hmac {
            let secret = self.secret.as_ref().ok_or_else(|| TokenError::NoKey(format!("{alg:?}")))?;
            return decode(token, secret, validation);
        }
        for attempt in 0..2 {
            let set = self.jwks.as_ref().map(Jwks::keys);
            let candidates = keys::candidates(self.file_key.as_ref(), set.as_deref(), alg, kid);
            if !candidates.is_empty() {
                let mut verdict = Err(TokenError::InvalidSignature);
                for key in candidates {
                    verdict = decode(token, &key.key, validation);
                    if verdict != Err(TokenError::InvalidSignature) {
                        break;
                    }
                }
                return verdict;
            }
            match &self.jwks {
                Some(jwks) if attempt == 0 => jwks.refresh_forced().await,
                _ => break,
            }
        }
        Err(match kid {
            Some(kid) => TokenError::UnknownKid { kid: shown(kid), alg: format!("{alg:?}") },
            None => TokenError::NoKey(format!("{alg:?}")),
        })
    }
}

/// `auth.jwt.algorithms`, parsed; `[HS256]` when empty.
fn allowed_algorithms(names: &[String]) -> Result<Vec<(&'static str, Algorithm)>, JwtConfigError> {
    const ALL: [(&str, Algorithm); 12] = [
        ("HS256", Algorithm::HS256),
        ("HS384", Algorithm::HS384),
        ("HS512", Algorithm::HS512),
        ("RS256", Algorithm::RS256),
        ("RS384", Algorithm::RS384),
        ("RS512", Algorithm::RS512),
        ("PS256", Algorithm::PS256),
        ("PS384", Algorithm::PS384),
        ("PS512", Algorithm::PS512),
        ("ES256", Algorithm::ES256),
        ("ES384", Algorithm::ES384),
        ("EdDSA", Algorithm::EdDSA),
    ];
    if names.is_empty() {
        return Ok(vec![ALL[0]]);
    }
    let mut allowed: Vec<(&'static str, Algorithm)> = Vec::new();
    for name in names {
        let name = name.trim();
        if name.eq_ignore_ascii_case("none") {
            return Err(JwtConfigError::NoneAlgorithm);
        }
        let alg = Algorithm::from_str(name).map_err(|_| JwtConfigError::UnknownAlgorithm { name: name.to_string() })?;
        let entry = ALL
            .into_iter()
            .find(|(_, a)| *a == alg)
            .ok_or(JwtConfigError::UnknownAlgorithm { name: name.to_string() })?;
        if !allowed.contains(&entry) {
            allowed.push(entry);
        }
    }
    Ok(allowed)
}

/// The checks a token of `alg` gets: `exp` and `nbf` when present (with
/// leeway; neither is required, as in PostgREST), `iss` and `aud` required
/// and matched when configured, `aud` not looked at otherwise.
fn validation(alg: Algorithm, settings: &JwtSettings, leeway: u64) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = leeway;
    validation.required_spec_claims.clear();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    match nonempty_str(&settings.audience) {
        Some(audience) => {
            validation.set_audience(&[audience]);
            validation.required_spec_claims.insert("aud".into());
        }
        None => validation.validate_aud = false,
    }
    if let Some(issuer) = nonempty_str(&settings.issuer) {
        validation.set_issuer(&[issuer]);
        validation.required_spec_claims.insert("iss".into());
    }
    validation
}

fn decode(token: &str, key: &DecodingKey, validation: &Validation) -> Result<serde_json::Value, TokenError> {
    let data = jsonwebtoken::decode::<serde_json::Value>(token, key, validation).map_err(|e| match e.into_kind() {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => TokenError::InvalidSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::Audience,
        ErrorKind::InvalidIssuer => TokenError::Issuer,
        ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => TokenError::Audience,
        ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => TokenError::Issuer,
        ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
            TokenError::InvalidClaim(claim)
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            TokenError::Malformed("its algorithm does not fit the key")
        }
        _ => TokenError::Malformed("its header or payload is not base64url-encoded JSON"),
    })?;
    if !data.claims.is_object() {
        return Err(TokenError::Malformed("its payload is not a JSON object"));
    }
    Ok(data.claims)
}

/// What the header says, read before anything is verified: only to pick the
/// algorithm's rules and the key.
struct TokenHeader {
    alg: String,
    kid: Option<String>,
}

fn read_header(token: &str) -> Result<TokenHeader, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed("it does not have three dot-separated parts"));
    };
    #[derive(serde::Deserialize)]
    struct Raw {
        alg: String,
        #[serde(default)]
        kid: Option<String>,
    }
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| TokenError::Malformed("its header is not base64url"))?;
    let raw: Raw = serde_json::from_slice(&bytes)
        .map_err(|_| TokenError::Malformed("its header is not a JSON object with a string alg"))?;
    Ok(TokenHeader { alg: raw.alg, kid: raw.kid })
}

/// Is this bearer value shaped like a JWT (three base64url segments, the
/// last one possibly empty as in an unsigned token)? A bearer value that is
/// not is tried as an API key.
pub fn looks_like_jwt(value: &str) -> bool {
    let base64url = |part: &str| part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let mut parts = value.split('.');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(header), Some(payload), Some(signature), None)
            if !header.is_empty() && !payload.is_empty() && base64url(header) && base64url(payload) && base64url(signature)
    )
}

/// `roleClaim`: `role`, `app_metadata.role`, `.app_metadata.role`,
/// `."https://example.com/role"`, `.roles[0]`.
fn parse_role_claim(path: &str) -> Result<Vec<Step>, &'static str> {
    let mut rest = path.strip_prefix('.').unwrap_or(path);
    let mut steps = Vec::new();
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').ok_or("a quoted key is not closed")?;
            steps.push(Step::Key(quoted[..end].to_string()));
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let key = &rest[..end];
            if key.is_empty() {
                return Err("it has an empty key");
            }
            if key.contains('"') || key.contains(']') || key.contains(char::is_whitespace) {
                return Err("a key with quotes, brackets or spaces must be quoted whole");
            }
            steps.push(Step::Key(key.to_string()));
            rest = &rest[end..];
        }
        while let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').ok_or("an index is not closed")?;
            steps.push(Step::Index(after[..end].parse().map_err(|_| "an index is not a number")?));
            rest = &after[end + 1..];
        }
        if rest.is_empty() {
            return Ok(steps);
        }
        rest = rest.strip_prefix('.').ok_or("keys must be separated by dots")?;
    }
}

/// Re-reads the JWKS document every `jwksRefreshSeconds` while the
/// verifier lives.
fn spawn_refresher(inner: &Arc<Inner>) -> Option<tokio::task::JoinHandle<()>> {
    let every = inner.jwks.as_ref()?.refresh_every();
    let weak = Arc::downgrade(inner);
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            if let Some(jwks) = &inner.jwks {
                jwks.refresh("jwksRefreshSeconds passed").await;
            }
        }
    }))
}

/// The algorithm to suggest for a key no allowed algorithm uses.
fn suggested_algorithm(key: &PublicKey) -> &'static str {
    [Algorithm::RS256, Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA]
        .into_iter()
        .find(|alg| key.fits(*alg))
        .map_or("RS256", |alg| match alg {
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
            _ => "RS256",
        })
}

/// A value taken from a token, fit to quote in a message and in a
/// `WWW-Authenticate` header: printable ASCII without quotes or
/// backslashes, at most 64 characters.
fn shown(text: &str) -> String {
    text.chars().filter(|c| (c.is_ascii_graphic() || *c == ' ') && !matches!(c, '"' | '\\')).take(64).collect()
}

fn nonempty_str(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn now_unix() -> u64 {
    jsonwebtoken::get_current_timestamp()
}
