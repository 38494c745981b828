//! The error every request step answers with, as PostgREST shapes it:
//! `{"code","message","details","hint"}` with PostgREST's status codes and
//! `code` values. Our own conditions use `DBAPI` codes (listed in the
//! README). Nothing internal (stack traces, SQL text, connection strings)
//! reaches a response. A leaf of the pipeline: each step builds its own
//! errors here; `http::error` turns the steps' error types into these.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Left on a response whose request found the database in trouble
/// (unavailable or too slow), for the circuit breaker to count.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseTrouble;

/// Seconds a client is asked to wait when the database is unavailable.
pub(crate) const RETRY_AFTER_SECONDS: u64 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    /// Text, except where PostgREST sends structured details (the
    /// candidates of an ambiguous embed).
    pub details: Option<Box<serde_json::Value>>,
    pub hint: Option<String>,
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    details: Option<&'a serde_json::Value>,
    hint: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        ApiError { status, code: code.into(), message: message.into(), details: None, hint: None, retry_after: None }
    }

    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(Box::new(serde_json::Value::String(details.into())));
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// A path no route takes; `prefix` is `api.pathPrefix` (or empty).
    pub fn not_found(path: &str, prefix: &str) -> Self {
        let root = if prefix.is_empty() { "/" } else { prefix };
        ApiError::new(StatusCode::NOT_FOUND, "PGRST125", format!("Invalid path specified in request URL: {path}")).hint(
            format!(
                "Tables are served at {prefix}/{{table}}; the OpenAPI document is at {root} and the docs page at \
                 {prefix}/_/docs/."
            ),
        )
    }

    pub fn method_not_allowed(method: &str) -> Self {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "PGRST117", format!("Unsupported HTTP method: {method}"))
            .hint("Tables take GET, HEAD, POST, PATCH, PUT, DELETE and OPTIONS.")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            code: &self.code,
            message: &self.message,
            details: self.details.as_deref(),
            hint: self.hint.as_deref(),
        };
        let json = serde_json::to_vec(&body).expect("error bodies serialize");
        let mut response = (self.status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        // An error is about this one request: never to be sniffed as
        // another type, nor kept by a cache.
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // RFC 9209, as PostgREST names its errors there: the code without
        // parsing the body.
        if let Ok(status) = HeaderValue::from_str(&format!("dbapi; error={}", self.code)) {
            headers.insert("proxy-status", status);
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.code == "PGRST003" {
            response.extensions_mut().insert(DatabaseTrouble);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_neither_sniffed_nor_cached() {
        let r = ApiError::not_found("/x", "").into_response();
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    }
}
