//! Who is calling: the API key or token a request carries, checked, and the
//! role it is served as.
//!
//! The [`authenticate`] layer runs before every route (and before rate
//! limiting, which counts per key and role) and leaves an [`Identity`] in the
//! request's extensions; handlers and the planner's role rules read it.
//! Without `apiKeys`, `roles` or `auth` in the document the API is open and
//! every request is [`Identity::open`].

pub mod jwt;
pub mod keys;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use tracing::Instrument;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dbapi_crds::config::RuntimeConfig;
use jiff::Timestamp;

use crate::error::ApiError;
use crate::limits::client_ip::ClientAddr;
use crate::limits::rate::{Caller, Quota, RateLimiter};
use jwt::{JwtVerifier, TokenError, looks_like_jwt};
use keys::{KeyError, KeyRing};

/// Who a request comes from and what it runs as.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The role whose rules apply; `None` on an open API (no rules at all).
    pub role: Option<Arc<str>>,
    pub principal: Principal,
    /// The verified token's claims (`${claims.x}` in row filters,
    /// `request.jwt.claims` on PostgreSQL); an empty object for keys and
    /// anonymous calls.
    pub claims: Arc<serde_json::Value>,
    /// The request rate this caller is held to: its key's `rateLimit`,
    /// else its role's, else the document's.
    pub quota: Option<Quota>,
}

/// How the caller identified itself. Logs and metrics name a key by its
/// `name` and a token by its subject, never by their text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No authentication configured.
    Open,
    /// Neither key nor token: served as `auth.anonymousRole`.
    Anonymous,
    Key {
        name: Arc<str>,
    },
    Token {
        subject: Option<Arc<str>>,
    },
}

impl Default for Identity {
    fn default() -> Identity {
        Identity::open()
    }
}

impl Identity {
    pub fn open() -> Identity {
        Identity { role: None, principal: Principal::Open, claims: empty_claims(), quota: None }
    }

    /// Who rate limits count this request against: a key by name, a token
    /// by subject, anyone else by address.
    pub fn rate_caller(&self, client: IpAddr) -> Caller {
        match &self.principal {
            Principal::Key { name } => Caller::Key(name.clone()),
            Principal::Token { subject: Some(subject) } => Caller::Subject(subject.clone()),
            _ => Caller::anonymous(client),
        }
    }

    /// The key's name or the token's subject, as logs show the caller.
    pub fn principal_name(&self) -> Option<&str> {
        match &self.principal {
            Principal::Key { name } => Some(name),
            Principal::Token { subject } => subject.as_deref(),
            Principal::Open | Principal::Anonymous => None,
        }
    }

    /// The claim at a dotted path (`app_metadata.role`), if present.
    pub fn claim(&self, path: &str) -> Option<&serde_json::Value> {
        path.trim_start_matches('.').split('.').try_fold(&*self.claims, |value, key| value.get(key))
    }
}

/// What the document says about callers, ready to check requests with.
#[derive(Debug, Default)]
pub struct Authenticator {
    /// False when the document has no `apiKeys`, `roles` or `auth`: the
    /// API is open.
    enabled: bool,
    keys: KeyRing,
    /// `auth.jwt`: how tokens are verified.
    jwt: Option<JwtVerifier>,
    /// Every request's identity while the API is open, and that of calls
    /// without credentials under `auth.anonymousRole`: built once, not per
    /// request.
    open: Arc<Identity>,
    anonymous: Option<Arc<Identity>>,
    /// The roles a token may name: `roles[].name` and the anonymous role.
    roles: Vec<Arc<str>>,
    /// `rateLimit`: anonymous callers, refused callers and callers whose
    /// key and role set none.
    default_quota: Option<Quota>,
    role_quotas: HashMap<Arc<str>, Quota>,
    /// `auth.postgresRoles`: a caller with a role runs in its database
    /// session.
    postgres_roles: bool,
}

/// Why a request was refused 401. The message is safe to show: it never
/// repeats the key or token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Anonymous access is disabled")]
    Missing,
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("Different API keys were sent in one request")]
    ConflictingKeys,
    #[error("JWTs are not accepted: auth.jwt is not configured")]
    TokensNotConfigured,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("The JWT names the role \"{0}\", which this API does not define")]
    UnknownRole(String),
}

impl Authenticator {
    /// `env_jwt_secret` is `DBAPI_JWT_SECRET`, which wins over
    /// `auth.jwt.secret`.
    pub async fn new(config: &RuntimeConfig, env_jwt_secret: Option<String>) -> Result<Authenticator, String> {
        let auth = config.auth.as_ref();
        let default_quota = config.rate_limit.as_ref().map(Quota::new).transpose()?;
        let mut role_quotas = HashMap::new();
        for (i, role) in config.roles.iter().enumerate() {
            if let Some(limit) = &role.rate_limit {
                let quota = Quota::new(limit).map_err(|e| format!("roles[{i}] ({}): {e}", role.name))?;
                role_quotas.insert(Arc::from(role.name.as_str()), quota);
            }
        }
        let jwt = match auth.and_then(|a| a.jwt.as_ref()) {
            Some(settings) => Some(JwtVerifier::new(settings, env_jwt_secret).await.map_err(|e| e.to_string())?),
            None => None,
        };
        let mut roles: Vec<Arc<str>> = config.roles.iter().map(|r| Arc::from(r.name.as_str())).collect();
        let anonymous_role: Option<Arc<str>> = auth.and_then(|a| a.anonymous_role.as_deref()).map(Arc::from);
        roles.extend(anonymous_role.clone());
        let mut authenticator = Authenticator {
            enabled: auth.is_some() || !config.roles.is_empty() || !config.api_keys.is_empty(),
            keys: KeyRing::new(&config.api_keys)?,
            jwt,
            open: Arc::new(Identity { quota: default_quota, ..Identity::open() }),
            anonymous: None,
            roles,
            default_quota,
            role_quotas,
            postgres_roles: auth.is_some_and(|a| a.postgres_roles),
        };
        authenticator.anonymous = anonymous_role.map(|role| {
            let quota = authenticator.role_quota(&role);
            Arc::new(Identity { role: Some(role), principal: Principal::Anonymous, quota, ..Identity::open() })
        });
        Ok(authenticator)
    }

    /// Whether requests are checked at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The caller of a request with these headers, at `now`. Every
    /// credential sent must be valid; a token decides the role over a key
    /// sent with it (Supabase clients send the project key beside the
    /// user's token).
    pub async fn identify(&self, headers: &HeaderMap, now: Timestamp) -> Result<Arc<Identity>, AuthError> {
        if !self.enabled {
            return Ok(self.open.clone());
        }
        let credentials = Credentials::from_headers(headers);
        let key_entry = self.check_keys(&credentials.keys, now)?;
        if let Some(token) = credentials.token {
            let jwt = self.jwt.as_ref().ok_or(AuthError::TokensNotConfigured)?;
            // Boxed: keys and anonymous calls need not carry its room.
            let claims = Box::pin(jwt.verify(token)).await?;
            let role = match jwt.role_of(&claims) {
                Some(named) => Some(
                    self.roles
                        .iter()
                        .find(|r| &***r == named)
                        .cloned()
                        .ok_or_else(|| AuthError::UnknownRole(named.to_string()))?,
                ),
                None => self.anonymous.as_ref().and_then(|a| a.role.clone()),
            };
            let role = role.ok_or(AuthError::Missing)?;
            let subject = claims.get("sub").and_then(|s| s.as_str()).map(Arc::<str>::from);
            let quota = key_entry.as_ref().and_then(|k| k.quota).or_else(|| self.role_quota(&role));
            return Ok(Arc::new(Identity { role: Some(role), principal: Principal::Token { subject }, claims, quota }));
        }
        match (key_entry, &self.anonymous) {
            (Some(entry), _) => Ok(Arc::new(Identity {
                role: Some(entry.role.clone()),
                principal: Principal::Key { name: entry.name.clone() },
                claims: self.open.claims.clone(),
                quota: entry.quota.or_else(|| self.role_quota(&entry.role)),
            })),
            (None, Some(anonymous)) => Ok(anonymous.clone()),
            (None, None) => Err(AuthError::Missing),
        }
    }

    /// The key all the key texts sent name, if any were sent.
    fn check_keys(&self, texts: &[&str], now: Timestamp) -> Result<Option<Arc<keys::KeyEntry>>, AuthError> {
        let mut key_entry: Option<Arc<keys::KeyEntry>> = None;
        for text in texts {
            let entry = self.keys.check(text, now)?;
            match &key_entry {
                Some(seen) if !Arc::ptr_eq(seen, &entry) => return Err(AuthError::ConflictingKeys),
                _ => key_entry = Some(entry),
            }
        }
        Ok(key_entry)
    }

    /// The role's `rateLimit`, else the document's.
    fn role_quota(&self, role: &str) -> Option<Quota> {
        self.role_quotas.get(role).copied().or(self.default_quota)
    }
}

fn empty_claims() -> Arc<serde_json::Value> {
    Arc::new(serde_json::Value::Object(Default::default()))
}

/// What an unreadable credential header counts as: no key's text.
const UNREADABLE: &str = "\u{fffd}";

/// The headers an API key may come in: `apikey` (Supabase's convention)
/// and `X-API-Key`. Names parsed once: a lookup by text parses it each time.
pub const KEY_HEADERS: [HeaderName; 2] = [HeaderName::from_static("apikey"), HeaderName::from_static("x-api-key")];

/// What a request presents: key texts from `apikey` (Supabase's
/// convention), `X-API-Key` and a bearer value that is not a JWT; the
/// bearer value when it is one.
struct Credentials<'a> {
    keys: Vec<&'a str>,
    token: Option<&'a str>,
}

impl<'a> Credentials<'a> {
    fn from_headers(headers: &'a HeaderMap) -> Credentials<'a> {
        // A value that is not text is still a credential sent: it becomes
        // one that matches no key, so the request is refused, not served
        // as anonymous.
        let text = |name: &HeaderName| headers.get(name).map(|v| v.to_str().map_or(UNREADABLE, str::trim));
        let mut keys: Vec<&str> = KEY_HEADERS.iter().filter_map(text).collect();
        // Another scheme (Basic, from a proxy) is not ours to judge.
        let bearer = text(&header::AUTHORIZATION).and_then(|v| {
            if v == UNREADABLE {
                return Some(v);
            }
            let (scheme, value) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| value.trim())
        });
        let token = match bearer {
            Some(value) if looks_like_jwt(value) => Some(value),
            Some(value) => {
                keys.push(value);
                None
            }
            None => None,
        };
        Credentials { keys, token }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let (code, hint, challenge) = match &self {
            AuthError::Missing => (
                "PGRST302",
                "Send an API key in the apikey or X-API-Key header, or a token in Authorization: Bearer.",
                "Bearer".to_string(),
            ),
            AuthError::Key(_) | AuthError::ConflictingKeys => (
                "DBAPI401",
                "Check the key: it must be a current key of this API, sent whole.",
                r#"Bearer error="invalid_token""#.to_string(),
            ),
            AuthError::TokensNotConfigured => (
                "PGRST301",
                "Send an API key instead, or configure auth.jwt.",
                r#"Bearer error="invalid_token""#.to_string(),
            ),
            AuthError::Token(e) => (
                e.code(),
                "Get a new token from the identity provider.",
                format!(r#"Bearer error="invalid_token", error_description="{e}""#),
            ),
            AuthError::UnknownRole(_) => (
                "PGRST303",
                "The token's role claim must name one of the API's roles.",
                r#"Bearer error="invalid_token""#.to_string(),
            ),
        };
        let mut response = ApiError::new(StatusCode::UNAUTHORIZED, code, self.to_string()).hint(hint).into_response();
        let challenge = HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer"));
        response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        response
    }
}

/// What `auth.postgresRoles` sets on PostgreSQL for this request, as
/// PostgREST sets it. The credentials are left out of `request.headers`:
/// a policy has the verified claims instead.
fn database_session(role: &str, identity: &Identity, request: &Request) -> crate::db::session::Session {
    crate::db::session::Session {
        role: role.to_string(),
        claims: identity.claims.to_string(),
        method: request.method().as_str().to_string(),
        path: request.uri().path().to_string(),
        headers: headers_for_database(request.headers()),
    }
}

/// A request's headers as the JSON object PostgREST sets in
/// `request.headers` (names lower-case), the credentials left out.
pub fn headers_for_database(headers: &axum::http::HeaderMap) -> String {
    const CREDENTIALS: [&str; 4] = ["authorization", "apikey", "x-api-key", "cookie"];
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .filter(|(name, _)| !CREDENTIALS.contains(&name.as_str()))
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.into())))
        .collect();
    serde_json::Value::Object(headers).to_string()
}

/// A new key and the document entry that accepts it, as `dbapi-runtime
/// keygen` prints them: the key goes to the client, the entry (its hash
/// only) into `apiKeys`.
pub fn keygen(name: &str, role: &str) -> Result<String, String> {
    let key = dbapi_crds::keys::generate_key().map_err(|e| format!("could not read random bytes from the OS: {e}"))?;
    let entry = dbapi_crds::config::ApiKey {
        name: name.into(),
        role: role.into(),
        hashes: vec![dbapi_crds::config::KeyHash { sha256: dbapi_crds::keys::sha256_hex(&key), not_after: None }],
        ..Default::default()
    };
    let yaml = serde_yaml::to_string(&serde_json::json!({ "apiKeys": [entry] }))
        .map_err(|e| format!("could not write the apiKeys entry: {e}"))?;
    Ok(format!(
        "# The key (give it to the client; it is not stored anywhere):\n# {key}\n# Add this to the configuration document:\n{yaml}"
    ))
}

/// Who is calling, as the request gate needs it: the identity and, with
/// `auth.postgresRoles`, the database session their role runs in.
pub struct Identified {
    pub identity: Arc<Identity>,
    pub session: Option<Arc<crate::db::session::Session>>,
}

/// Leaves the caller's [`Identity`] in the request's extensions, or gives
/// the 401 to answer. A refused attempt counts against the client's address
/// under the document's `rateLimit`, so keys cannot be guessed faster than
/// anonymous calls are allowed.
pub async fn identify(
    authenticator: &Authenticator,
    rate: &RateLimiter,
    request: &mut Request,
) -> Result<Identified, Response> {
    let identified =
        authenticator.identify(request.headers(), Timestamp::now()).instrument(tracing::debug_span!("auth")).await;
    match identified {
        Ok(identity) => {
            request.extensions_mut().insert(identity.clone());
            let session = identity
                .role
                .as_deref()
                .filter(|_| authenticator.postgres_roles)
                .map(|role| Arc::new(database_session(role, &identity, request)));
            Ok(Identified { identity, session })
        }
        Err(refused) => {
            if let Some(quota) = authenticator.default_quota {
                let client = ClientAddr::of(request.extensions());
                let decision = Box::pin(rate.check(&Caller::anonymous(client), quota)).await;
                if !decision.allowed {
                    return Err(crate::limits::rate::refusal(&decision, quota));
                }
            }
            Err(refused.into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_found_by_dotted_path() {
        let identity = Identity {
            claims: Arc::new(serde_json::json!({"sub": "u1", "app_metadata": {"role": "editor"}})),
            ..Identity::open()
        };
        assert_eq!(identity.claim("sub"), Some(&serde_json::json!("u1")));
        assert_eq!(identity.claim("app_metadata.role"), Some(&serde_json::json!("editor")));
        assert_eq!(identity.claim(".app_metadata.role"), Some(&serde_json::json!("editor")));
        assert_eq!(identity.claim("app_metadata.missing"), None);
    }

    #[test]
    fn the_quota_is_the_keys_else_the_roles_else_the_documents() {
        let doc = |yaml: &str| {
            let config = dbapi_crds::config::parse_runtime_config(yaml).unwrap();
            futures_util::FutureExt::now_or_never(Authenticator::new(&config, None)).unwrap().unwrap()
        };
        let keyed = format!(
            "rateLimit: {{requestsPerMinute: 60, burst: 0}}\n\
             auth: {{anonymousRole: web}}\n\
             roles: [{{name: app, rateLimit: {{requestsPerMinute: 60, burst: 1}}}}, {{name: web}}]\n\
             apiKeys:\n\
             - {{name: own, role: app, hashes: [{{sha256: {}}}], rateLimit: {{requestsPerMinute: 60, burst: 2}}}}\n\
             - {{name: roles, role: app, hashes: [{{sha256: {}}}]}}\n",
            dbapi_crds::keys::sha256_hex("k1"),
            dbapi_crds::keys::sha256_hex("k2"),
        );
        let auth = doc(&keyed);
        let capacity = |key: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(k) = key {
                headers.insert("apikey", HeaderValue::from_str(k).unwrap());
            }
            futures_util::FutureExt::now_or_never(auth.identify(&headers, Timestamp::now()))
                .unwrap()
                .unwrap()
                .quota
                .map(|q| q.capacity)
        };
        assert_eq!((capacity(Some("k1")), capacity(Some("k2")), capacity(None)), (Some(3), Some(2), Some(1)));
        let open = doc("{}");
        let identified = futures_util::FutureExt::now_or_never(open.identify(&HeaderMap::new(), Timestamp::now()));
        assert_eq!(identified.unwrap().unwrap().quota, None);
        let bad = keyed
            .replace("rateLimit: {requestsPerMinute: 60, burst: 1}", "rateLimit: {requestsPerMinute: 0, burst: 1}");
        let config = dbapi_crds::config::parse_runtime_config(&bad).unwrap();
        let refused = futures_util::FutureExt::now_or_never(Authenticator::new(&config, None)).unwrap();
        assert!(refused.unwrap_err().contains("roles[0] (app)"));
    }
}
