//! Who is calling: the API key or token a request carries, checked, and the
//! role it is served as.
//!
//! The [`authenticate`] layer runs before every route (and before rate
//! limiting, which counts per key and role) and leaves an [`Identity`] in the
//! request's extensions; handlers and the planner's role rules read it.
//! Without `apiKeys`, `roles` or `auth` in the document the API is open and
//! every request is [`Identity::open`].

pub mod jwt;

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

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
    Key { name: Arc<str> },
    Token { subject: Option<Arc<str>> },
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

/// Leaves the caller's [`Identity`] in the request's extensions.
pub async fn authenticate(mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(Arc::new(Identity::open()));
    next.run(request).await
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
