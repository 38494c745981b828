//! PostgreSQL request settings (`auth.postgresRoles`): each statement of a
//! request runs as the database role of the caller's role, with
//! `request.jwt.claims`, `request.method`, `request.path` and
//! `request.headers` set as PostgREST sets them, so grants and Row Level
//! Security policies written for PostgREST or Supabase work unchanged.
//!
//! The settings are transaction-local (`set_config(..., true)`), so every
//! statement that carries them runs in a transaction that sets them first:
//! writes in theirs, reads in `BEGIN; set; read; COMMIT` sent back to back
//! (on a pipelined connection, with nothing of another request between).
//! The settings travel with the request's task ([`scope`]), so the
//! handlers do not carry them: [`super::Db`] asks for [`current`].

use std::future::Future;
use std::sync::Arc;

use super::{Param, Statement};

/// What one request sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The database role (`SET LOCAL ROLE`).
    pub role: String,
    /// The token's claims as JSON (`{}` for keys and anonymous calls).
    pub claims: String,
    pub method: String,
    pub path: String,
    /// The request's headers as a JSON object of lower-case names, without
    /// the credentials (`authorization`, `apikey`, `x-api-key`, `cookie`).
    pub headers: String,
}

tokio::task_local! {
    static SESSION: Arc<Session>;
}

/// Runs `request` with `session` in force for every statement it runs. A
/// plain function, not an `async` one, which would hold `request` twice.
pub fn scope<F: Future>(session: Arc<Session>, request: F) -> tokio::task::futures::TaskLocalFuture<Arc<Session>, F> {
    SESSION.scope(session, request)
}

/// The settings of the request this task serves, if any.
pub fn current() -> Option<Arc<Session>> {
    SESSION.try_with(Arc::clone).ok()
}

impl Session {
    /// The one statement that sets everything; every value is bound, the
    /// role name too (`set_config('role', ...)` is `SET LOCAL ROLE`).
    pub fn statement(&self) -> Statement {
        let sql = "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), \
                   set_config('request.method', $3, true), set_config('request.path', $4, true), \
                   set_config('request.headers', $5, true)";
        Statement {
            sql: sql.to_string(),
            params: [&self.role, &self.claims, &self.method, &self.path, &self.headers]
                .into_iter()
                .map(|v| Param::Text(v.clone()))
                .collect(),
            one_off: false,
        }
    }
}
