//! One id per request: the caller's `X-Request-Id` when it is a sane token,
//! else a new UUID. It is echoed in the response, carried by the request's
//! span (so every log line of the request shows it, and its trace) and by
//! its audit line.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::Span;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest id taken from a caller; longer ones are replaced.
const MAX_LEN: usize = 128;

/// Whether a caller's id is kept: 1 to 128 letters, digits and `-_.:`, so
/// that nothing odd reaches the logs.
fn acceptable(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// Drops an id the caller sent that is not [`acceptable`] (or sent twice),
/// so that tower-http's `SetRequestId` gives the request a new one.
pub fn drop_unacceptable(mut request: Request) -> Request {
    let headers = request.headers();
    let mut sent = headers.get_all(&HEADER).iter();
    let keep = match (sent.next(), sent.next()) {
        (None, _) => true,
        (Some(id), None) => acceptable(id.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !keep {
        request.headers_mut().remove(&HEADER);
    }
    request
}

/// Makes the id of a request that brought none acceptable: a UUID v4,
/// written straight into its header value (tower-http's `MakeRequestUuid`
/// formats it through `Display` and parses the text back).
#[derive(Debug, Clone, Copy, Default)]
pub struct NewId;

impl MakeRequestId for NewId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
        HeaderValue::from_str(text).ok().map(RequestId::new)
    }
}

/// The id of a request that went through `SetRequestId` (empty otherwise).
pub fn of(request: &Request) -> &str {
    request.headers().get(&HEADER).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The span of one request, at INFO so that its fields show on every log
/// line of the request. Written as they are (`%`), not quoted and escaped:
/// the id is [`acceptable`] and a parsed path has no spaces or control
/// characters, and the fields are formatted for every request.
pub fn span(request: &Request) -> Span {
    let span =
        tracing::info_span!("request", id = %of(request), method = %request.method(), path = %request.uri().path());
    crate::telemetry::join_callers_trace(&span, request.headers());
    span
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
        let request = axum::http::Request::new(());
        let make = || NewId.make_request_id(&request).expect("an id").into_header_value();
        let (a, b) = (make(), make());
        assert_ne!(a, b);
        let text = a.to_str().unwrap();
        let parsed = uuid::Uuid::parse_str(text).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(text, parsed.hyphenated().to_string());
        assert!(acceptable(a.as_bytes()));
    }
}
