//! The audit log (issue 18, item 6): one JSON line per write and per
//! refused request (401, 403, 429): when, which request, who (key name or
//! token subject, and role), from where, what (method, table or function),
//! the status and the rows affected.
//!
//! Never a secret, a token, a key, a query string or a row's values: the
//! line is built only from the [`Identity`] `auth` left, the route's path
//! and what the write handler reports ([`RowsAffected`]). Lines go to the
//! logs (target `audit`) or, with `audit.path`, to that file.

use std::fs::File;
use std::io::{LineWriter, Write};
use std::net::IpAddr;
use std::sync::Mutex;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;

use crate::auth::Identity;
use crate::limits::client_ip::ClientAddr;

/// Rows a write touched; the write handlers leave it on their response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowsAffected(pub u64);

/// Where audit lines go.
pub struct AuditLog {
    file: Option<Mutex<LineWriter<File>>>,
    /// The API's path prefix, left out of the resource named.
    prefix: String,
}

/// One line.
#[derive(Serialize)]
struct Line<'a> {
    /// Only in the file: a log line has the subscriber's own time.
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    client_ip: Option<IpAddr>,
    method: &'a str,
    resource: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    rows: Option<u64>,
}

impl AuditLog {
    /// To the logs, or appended to `path`.
    pub fn open(path: Option<&str>, prefix: &str) -> Result<AuditLog, String> {
        let file = match path {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("audit.path: cannot open {path} for appending: {e}"))?;
                Some(Mutex::new(LineWriter::new(file)))
            }
            None => None,
        };
        Ok(AuditLog { file, prefix: prefix.to_string() })
    }

    fn write(&self, line: &Line) {
        match &self.file {
            Some(file) => {
                let mut text = serde_json::to_vec(line).expect("an audit line serializes");
                text.push(b'\n');
                let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Err(e) = file.write_all(&text) {
                    tracing::error!(error = %e, "could not write the audit log");
                }
            }
            // The id, method and path are plain tokens, written as they
            // are (`%`); names that come from a key or a token are quoted
            // and escaped.
            None => tracing::info!(
                target: "audit",
                request_id = %line.request_id,
                principal = line.principal,
                role = line.role,
                client_ip = line.client_ip.map(tracing::field::display),
                method = %line.method,
                resource = %line.resource,
                status = line.status,
                rows = line.rows,
                "audit"
            ),
        }
    }
}

/// Whether a request is audited: writes (and calls by POST, which may
/// write), and every refusal of who is calling or how often.
fn audited(method: &Method, status: StatusCode) -> bool {
    matches!(*method, Method::POST | Method::PATCH | Method::PUT | Method::DELETE)
        || matches!(status.as_u16(), 401 | 403 | 429)
}

/// What the line of a request will need, taken before it runs: shared
/// handles, not copies, since most requests are not audited.
pub struct Pending {
    method: Method,
    uri: Uri,
    client: Option<IpAddr>,
    request_id: Option<HeaderValue>,
}

impl Pending {
    /// Before a request runs.
    pub fn of(request: &Request) -> Pending {
        Pending {
            method: request.method().clone(),
            uri: request.uri().clone(),
            client: request.extensions().get::<ClientAddr>().map(|c| c.0),
            request_id: request.headers().get(&crate::request_id::HEADER).cloned(),
        }
    }
}

impl AuditLog {
    /// After it: the line, if the request is audited. `identity` is who
    /// the request was identified as (none when that failed).
    pub fn finish(&self, pending: Pending, identity: Option<&Identity>, response: &Response) {
        if !audited(&pending.method, response.status()) {
            return;
        }
        let path = pending.uri.path();
        self.write(&Line {
            time: self.file.is_some().then(|| jiff::Timestamp::now().to_string()),
            request_id: pending.request_id.as_ref().and_then(|id| id.to_str().ok()).unwrap_or(""),
            principal: identity.and_then(|i| i.principal_name()),
            role: identity.and_then(|i| i.role.as_deref()),
            client_ip: pending.client,
            method: pending.method.as_str(),
            resource: path.strip_prefix(self.prefix.as_str()).unwrap_or(path).trim_start_matches('/'),
            status: response.status().as_u16(),
            rows: response.extensions().get::<RowsAffected>().map(|r| r.0),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_refusals_are_audited() {
        assert!(audited(&Method::POST, StatusCode::CREATED));
        assert!(audited(&Method::DELETE, StatusCode::BAD_REQUEST));
        assert!(audited(&Method::GET, StatusCode::UNAUTHORIZED));
        assert!(audited(&Method::GET, StatusCode::FORBIDDEN));
        assert!(audited(&Method::HEAD, StatusCode::TOO_MANY_REQUESTS));
        assert!(!audited(&Method::GET, StatusCode::OK));
        assert!(!audited(&Method::GET, StatusCode::NOT_FOUND));
        assert!(!audited(&Method::OPTIONS, StatusCode::OK));
    }
}
