//! What a configuration reload may change, swapped as one: the document
//! and everything built from it that checks requests (keys, tokens,
//! roles, rate limits). Settings that need new sockets or connections
//! (`database`, `server`, `api.pathPrefix`) are read once at start-up from
//! `AppState::config`.

use std::sync::Arc;

use dbapi_crds::config::RuntimeConfig;

use crate::auth::{Authenticator, Identity};
use crate::plan::access::{Access, Scope};
use crate::schema::Schema;

#[derive(Debug, Default)]
pub struct Policy {
    /// The document this policy was built from.
    pub config: Arc<RuntimeConfig>,
    pub authenticator: Authenticator,
    /// The compiled `roles` and each role's view of the schema.
    pub access: Access,
}

impl Policy {
    /// Builds everything the document asks for, or says what is wrong
    /// with it (the old policy stays in force on a reload).
    pub async fn new(config: RuntimeConfig) -> Result<Policy, String> {
        Policy::with_jwt_secret(config, std::env::var("DBAPI_JWT_SECRET").ok()).await
    }

    /// [`Policy::new`] with the JWT secret the pod gets as
    /// `DBAPI_JWT_SECRET` given here (it wins over `auth.jwt.secret`).
    pub async fn with_jwt_secret(config: RuntimeConfig, jwt_secret: Option<String>) -> Result<Policy, String> {
        let authenticator = Authenticator::new(&config, jwt_secret).await?;
        let access = Access::new(&config)?;
        if !authenticator.enabled() {
            tracing::warn!(
                "no apiKeys, roles or auth in the configuration: the API is open to every caller, with full access to every exposed table"
            );
        }
        Ok(Policy { config: Arc::new(config), authenticator, access })
    }

    /// What a request of `identity` may see and do on `schema`.
    pub fn scope(&self, identity: &Identity, schema: Arc<Schema>) -> Scope {
        self.access.scope(identity, schema, self.config.clone())
    }
}
