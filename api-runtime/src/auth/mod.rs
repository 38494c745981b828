//! Who is calling: the API key or token a request carries, checked, and the
//! role it is served as.
//!
//! The [`authenticate`] layer runs before every route (and before rate
//! limiting, which counts per key and role) and leaves an [`Identity`] in the
//! request's extensions; handlers and the planner's role rules read it.
//! Without `apiKeys`, `roles` or `auth` in the document the API is open and
//! every request is [`Identity::open`].

pub mod keys;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dbapi_crds::config::RuntimeConfig;
use jiff::Timestamp;

use crate::http::AppState;
use crate::http::error::ApiError;
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

impl Identity {
    pub fn open() -> Identity {
        Identity { role: None, principal: Principal::Open, claims: Arc::new(serde_json::json!({})) }
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
    anonymous_role: Option<Arc<str>>,
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
}

impl Authenticator {
    pub fn new(config: &RuntimeConfig) -> Result<Authenticator, String> {
        let auth = config.auth.as_ref();
        Ok(Authenticator {
            enabled: auth.is_some() || !config.roles.is_empty() || !config.api_keys.is_empty(),
            keys: KeyRing::new(&config.api_keys)?,
            anonymous_role: auth.and_then(|a| a.anonymous_role.as_deref()).map(Into::into),
        })
    }

    /// Whether requests are checked at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The caller of a request with these headers, at `now`.
    pub fn identify(&self, headers: &HeaderMap, now: Timestamp) -> Result<Identity, AuthError> {
        if !self.enabled {
            return Ok(Identity::open());
        }
        let credentials = Credentials::from_headers(headers);
        if credentials.token.is_some() {
            return Err(AuthError::TokensNotConfigured);
        }
        let mut key_entry: Option<Arc<keys::KeyEntry>> = None;
        for text in credentials.keys {
            let entry = self.keys.check(text, now)?;
            match &key_entry {
                Some(seen) if !Arc::ptr_eq(seen, &entry) => return Err(AuthError::ConflictingKeys),
                _ => key_entry = Some(entry),
            }
        }
        match (key_entry, &self.anonymous_role) {
            (Some(entry), _) => Ok(Identity {
                role: Some(entry.role.clone()),
                principal: Principal::Key { name: entry.name.clone() },
                claims: empty_claims(),
            }),
            (None, Some(role)) => {
                Ok(Identity { role: Some(role.clone()), principal: Principal::Anonymous, claims: empty_claims() })
            }
            (None, None) => Err(AuthError::Missing),
        }
    }
}

fn empty_claims() -> Arc<serde_json::Value> {
    Arc::new(serde_json::Value::Object(Default::default()))
}

/// What a request presents: key texts from `apikey` (Supabase's
/// convention), `X-API-Key` and a bearer value that is not a JWT; the
/// bearer value when it is one.
struct Credentials<'a> {
    keys: Vec<&'a str>,
    token: Option<&'a str>,
}

impl<'a> Credentials<'a> {
    fn from_headers(headers: &'a HeaderMap) -> Credentials<'a> {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let mut keys: Vec<&str> = ["apikey", "x-api-key"].into_iter().filter_map(text).collect();
        let bearer = text("authorization").and_then(|v| {
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

/// Three dot-separated base64url segments, as every JWS compact token.
fn looks_like_jwt(value: &str) -> bool {
    let segments: Vec<&str> = value.split('.').collect();
    segments.len() == 3
        && segments[..2].iter().all(|s| !s.is_empty())
        && segments.iter().all(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
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
        };
        let mut response = ApiError::new(StatusCode::UNAUTHORIZED, code, self.to_string()).hint(hint).into_response();
        let challenge = HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer"));
        response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        response
    }
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

/// Leaves the caller's [`Identity`] in the request's extensions, or
/// answers 401.
pub async fn authenticate(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    let policy = state.policy();
    match policy.authenticator.identify(request.headers(), Timestamp::now()) {
        Ok(identity) => {
            request.extensions_mut().insert(Arc::new(identity));
            next.run(request).await
        }
        Err(refused) => refused.into_response(),
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
}
