//! Request and resource limits (issue 18, item 7): what one client may ask
//! of the server and of the database.
//!
//! - `request`: the URL's length (414), the number of filter conditions
//!   and of embedded resources (400), the time a request may run (504);
//! - `cors`: which browser origins may call the API (tower-http's
//!   `CorsLayer`, from `api.cors`);
//! - `rate`: how often one caller (key, token subject or client address)
//!   may call, shared by all replicas through Redis;
//! - `client_ip`: the client's address, behind trusted proxies too;
//! - `connections`: the API listener itself: how long a client may take
//!   to send a request head, how long an idle connection stays, and how
//!   many connections are served at once.
//!
//! The database's own statement timeout lives with the connections it is
//! set on (`db`); [`database_deadline`] says what it is.

pub mod client_ip;
pub mod connections;
pub mod cors;
pub mod rate;
pub mod request;

use std::time::Duration;

use dbapi_crds::config::RuntimeConfig;

pub use request::check_query;

/// How long the database lets a statement run: `database.statementTimeoutMs`,
/// and in any case a second past `server.requestTimeoutSeconds`, so that the
/// database also stops the work of a request that was answered 504 (a
/// dropped query keeps running on the server otherwise).
pub fn database_deadline(config: &RuntimeConfig) -> Option<Duration> {
    let request = (config.server.request_timeout_seconds > 0)
        .then(|| Duration::from_secs(config.server.request_timeout_seconds) + Duration::from_secs(1));
    let statement = config.database.statement_timeout_ms.map(Duration::from_millis);
    match (statement, request) {
        (Some(s), Some(r)) => Some(s.min(r)),
        (s, r) => s.or(r),
    }
}

/// The most rows one read answers: `api.maxRows`, or the caller's role's
/// `maxRows` where it is lower; for an answer `streamed` row by row (NDJSON
/// and CSV table reads, which the runtime never holds whole), the role's
/// `maxRows` even where it is higher, so that a role can be let export a
/// whole table.
pub fn max_rows(config: &RuntimeConfig, role: Option<&str>, streamed: bool) -> u64 {
    let api = config.api.max_rows;
    let role_cap = role.and_then(|name| config.roles.iter().find(|r| r.name == name)).and_then(|r| r.max_rows);
    match role_cap {
        Some(cap) if streamed => cap,
        Some(cap) => cap.min(api),
        None => api,
    }
}

/// Settings that cannot work, with the key to change.
pub fn validate(config: &RuntimeConfig) -> Result<(), String> {
    let server = &config.server;
    for (key, value) in [
        ("server.headerReadTimeoutSeconds", server.header_read_timeout_seconds),
        ("server.idleTimeoutSeconds", server.idle_timeout_seconds),
        ("server.requestTimeoutSeconds", server.request_timeout_seconds),
        ("server.maxConnections", server.max_connections.into()),
        ("api.maxUrlBytes", config.api.max_url_bytes),
    ] {
        if value == 0 {
            return Err(format!("{key} must be at least 1"));
        }
    }
    if config.database.statement_timeout_ms == Some(0) {
        return Err("database.statementTimeoutMs must be at least 1 (leave it out for no limit)".into());
    }
    if let Some(role) = config.roles.iter().find(|r| r.max_rows == Some(0)) {
        return Err(format!("roles[{}].maxRows must be at least 1 (leave it out for api.maxRows)", role.name));
    }
    client_ip::ClientIp::new(&config.api)?;
    cors::validate(&config.api.cors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roles_max_rows_lifts_the_cap_only_of_streamed_answers() {
        let mut c = RuntimeConfig::default();
        c.api.max_rows = 100;
        let role =
            |name: &str, max_rows| dbapi_crds::config::Role { name: name.into(), max_rows, ..Default::default() };
        c.roles = vec![role("exporter", Some(1_000_000)), role("narrow", Some(10)), role("plain", None)];
        assert_eq!(max_rows(&c, Some("exporter"), true), 1_000_000);
        assert_eq!(max_rows(&c, Some("exporter"), false), 100);
        assert_eq!(max_rows(&c, Some("narrow"), true), 10);
        assert_eq!(max_rows(&c, Some("narrow"), false), 10);
        assert_eq!(max_rows(&c, Some("plain"), true), 100);
        assert_eq!(max_rows(&c, Some("unknown"), true), 100);
        assert_eq!(max_rows(&c, None, true), 100);
        c.roles.push(role("none", Some(0)));
        assert!(validate(&c).unwrap_err().contains("roles[none].maxRows"));
    }

    #[test]
    fn the_database_stops_a_statement_soon_after_its_request_timed_out() {
        let mut c = RuntimeConfig::default();
        assert_eq!(database_deadline(&c), Some(Duration::from_secs(61)));
        c.database.statement_timeout_ms = Some(250);
        assert_eq!(database_deadline(&c), Some(Duration::from_millis(250)));
        c.database.statement_timeout_ms = Some(600_000);
        assert_eq!(database_deadline(&c), Some(Duration::from_secs(61)));
    }

    #[test]
    fn zero_limits_are_refused_with_their_key() {
        let mut c = RuntimeConfig::default();
        c.server.max_connections = 0;
        assert!(validate(&c).unwrap_err().contains("server.maxConnections"));
        let mut c = RuntimeConfig::default();
        c.database.statement_timeout_ms = Some(0);
        assert!(validate(&c).unwrap_err().contains("statementTimeoutMs"));
        assert_eq!(validate(&RuntimeConfig::default()), Ok(()));
    }
}
