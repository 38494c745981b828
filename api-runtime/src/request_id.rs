//! One id per request: the caller's `X-Request-Id` when it is a sane token,
//! else a new UUID. It is echoed in the response, carried by the request's
//! span (so every log line of the request shows it, and its trace) and by
//! its audit line.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use tracing::Span;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest id taken from a caller; longer ones are replaced.
const MAX_LEN: usize = 128;

/// Whether a caller's id is kept: 1 to 128 letters, digits and `-_.:`, so
/// that nothing odd reaches the logs.
fn acceptable(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// The request's id, in its header from now on: the one the caller sent
/// when it is [`acceptable`] (and sent once), else a new one.
pub fn assign(request: &mut Request) -> HeaderValue {
    let headers = request.headers_mut();
    let mut sent = headers.get_all(&HEADER).iter();
    if let (Some(id), None) = (sent.next(), sent.next())
        && acceptable(id.as_bytes())
    {
        return id.clone();
    }
    let id = new_id();
    headers.insert(HEADER, id.clone());
    id
}

/// A new id: a UUID v4, written straight into a header value (formatting
/// it through `Display` and parsing the text back would cost twice).
fn new_id() -> HeaderValue {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).expect("a UUID is a valid header value")
}

/// The id of a request that went through [`assign`] (empty otherwise).
pub fn of(request: &Request) -> &str {
    request.headers().get(&HEADER).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The span of one request, at INFO so that its fields show on every log
/// line of the request. Its fields are text (the id is [`acceptable`], a
/// parsed path has no spaces or control characters), which the log writes
/// as they are (`telemetry::span_fields`), neither quoted nor escaped.
pub fn span(request: &Request) -> Span {
    let span = tracing::info_span!(
        target: SPAN_TARGET,
        "request",
        id = of(request),
        method = request.method().as_str(),
        path = request.uri().path()
    );
    crate::telemetry::join_callers_trace(&span, request.headers());
    span
}

const SPAN_TARGET: &str = module_path!();

/// Whether `meta` is a request's [`span`].
pub fn is_request_span(meta: &tracing::Metadata<'_>) -> bool {
    meta.name() == "request" && meta.target() == SPAN_TARGET
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_tokens_are_taken_from_callers() {
        for ok in ["abc", "0f8fad5b-d9cb-469f-a165-70867728950e", "trace:span.1_2", &"a".repeat(MAX_LEN)] {
            assert!(acceptable(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "a b", "x\"y", "é", "a\u{7f}", &"a".repeat(MAX_LEN + 1), "{\"json\":1}"] {
            assert!(!acceptable(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn new_ids_are_fresh_lower_case_uuids() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        let text = a.to_str().unwrap();
        let parsed = uuid::Uuid::parse_str(text).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(text, parsed.hyphenated().to_string());
        assert!(acceptable(a.as_bytes()));
    }
}
