//! A read's answer as the cache keeps it, and the HTTP validators every
//! GET answer gets: a strong `ETag`, `304 Not Modified` for a matching
//! `If-None-Match`, `Cache-Control`, `Vary` and RFC 9211 `Cache-Status`.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Served;

/// `Vary`: the headers in `key::ANSWER_HEADERS`, and the credentials. The
/// compression layer adds `accept-encoding` to a body it may compress
/// unless the value already names it, which it learns by a scan of the
/// whole value; named first, the scan ends at once, and a body that grows
/// past the compression threshold later varies as it did.
const VARY: &str =
    "accept-encoding, accept, accept-profile, prefer, range, range-unit, authorization, apikey, x-api-key";

/// RFC 9211's header: what the cache did.
const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// Headers a read's answer usually carries when it leaves.
const ANSWER_HEADER_ROOM: usize = 16;

/// The headers of an answer that are kept with it.
const KEPT_HEADERS: [HeaderName; 3] =
    [header::CONTENT_TYPE, header::CONTENT_RANGE, HeaderName::from_static("preference-applied")];

/// A successful read's answer, as stored in Redis (JSON) and in memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// UTF-8 JSON or CSV; shared by every response served from it (a hit
    /// copies no body).
    #[serde(with = "text")]
    pub body: Bytes,
    /// When it was read from the database (Unix milliseconds), for `Age`.
    pub stored_at: u64,
    /// `headers` parsed once, with the body's `Content-Length`, for every
    /// response built from the answer (not stored: it is made again from
    /// `headers`). A value cloned from here is shared, not copied.
    #[serde(skip)]
    parsed: OnceLock<Vec<(HeaderName, HeaderValue)>>,
}

impl CachedAnswer {
    /// The answer of `response` (whose body is already in memory), or the
    /// response itself when it is not kept: anything but 200 and 206.
    pub async fn of(response: Response) -> Result<CachedAnswer, Response> {
        if !matches!(response.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT) {
            return Err(response);
        }
        let (parts, body) = response.into_parts();
        let body = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(body) if std::str::from_utf8(&body).is_ok() => body,
            _ => return Err(Response::from_parts(parts, Body::empty())),
        };
        let headers = KEPT_HEADERS
            .iter()
            .filter_map(|name| Some((name.to_string(), parts.headers.get(name)?.to_str().ok()?.to_string())))
            .collect();
        Ok(CachedAnswer {
            status: parts.status.as_u16(),
            headers,
            body,
            stored_at: now_millis(),
            parsed: OnceLock::new(),
        })
    }

    pub fn response(&self) -> Response {
        let mut response = Response::new(Body::from(self.body.clone()));
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        // Room for the validators, CORS and request id added on the way
        // out, so that the map does not grow (and rehash) twice.
        *response.headers_mut() = HeaderMap::with_capacity(ANSWER_HEADER_ROOM);
        let parsed = self.parsed.get_or_init(|| {
            let valid = |(name, value): &(String, String)| {
                Some((HeaderName::try_from(name.as_str()).ok()?, HeaderValue::from_str(value).ok()?))
            };
            let length = (header::CONTENT_LENGTH, HeaderValue::from(self.body.len()));
            self.headers.iter().filter_map(valid).chain([length]).collect()
        });
        for (name, value) in parsed {
            response.headers_mut().insert(name.clone(), value.clone());
        }
        response
    }

    /// The answer served from the cache: with `Age`, the whole seconds
    /// since it was read from the database.
    pub fn hit(&self) -> Response {
        let mut response = self.response();
        let age = now_millis().saturating_sub(self.stored_at) / 1000;
        response.headers_mut().insert(header::AGE, age_value(age));
        response
    }
}

/// `Age` of `seconds`: for the first ten minutes (a TTL's usual span) a
/// value made once and shared, not written and allocated for each hit.
fn age_value(seconds: u64) -> HeaderValue {
    const SHARED: usize = 600;
    static VALUES: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    match usize::try_from(seconds) {
        Ok(i) if i < SHARED => VALUES.get_or_init(|| (0..SHARED).map(HeaderValue::from).collect())[i].clone(),
        _ => HeaderValue::from(seconds),
    }
}

/// The body as a JSON string in Redis (the answers are UTF-8 text).
mod text {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(body: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
        let text = std::str::from_utf8(body).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        String::deserialize(deserializer).map(Bytes::from)
    }
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// What the cache did for a request, as RFC 9211's `Cache-Status` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Answered from the cache.
    Hit,
    /// The database answered; the answer is kept.
    Miss,
    /// The database answered and Redis was unreachable.
    Bypass,
    /// The database could not be asked (the circuit is open): the last
    /// answer the cache kept, past its TTL or generations.
    Stale,
}

impl CacheOutcome {
    /// Says in `headers` what the cache did (`Cache-Status`).
    pub fn label(self, headers: &mut HeaderMap) {
        headers.insert(CACHE_STATUS, HeaderValue::from_static(self.header()));
    }

    fn header(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "dbapi; hit",
            CacheOutcome::Miss => "dbapi; fwd=miss",
            CacheOutcome::Bypass => "dbapi; fwd=bypass",
            CacheOutcome::Stale => "dbapi; hit; detail=stale",
        }
    }

    pub fn metric_label(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Bypass => "bypass",
            CacheOutcome::Stale => "stale",
        }
    }
}

/// A strong entity tag for `id` (a hex digest).
pub fn etag(id: &str) -> HeaderValue {
    let id = &id[..id.len().min(32)];
    let mut tag = String::with_capacity(id.len() + 2);
    tag.push('"');
    tag.push_str(id);
    tag.push('"');
    // From the `String` itself, not a copy of it.
    HeaderValue::try_from(tag).expect("hex digits in quotes are a valid header value")
}

/// Whether `If-None-Match` names `etag` (or is `*`), by the weak
/// comparison RFC 9110 prescribes for it.
pub fn matches_if_none_match(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    fn opaque(tag: &str) -> &str {
        tag.trim().trim_start_matches("W/")
    }
    let mut sent = headers.get_all(header::IF_NONE_MATCH).iter().peekable();
    if sent.peek().is_none() {
        return false;
    }
    let wanted = opaque(etag.to_str().unwrap_or_default());
    sent.filter_map(|v| v.to_str().ok()).any(|list| {
        list.split(',').any(|tag| {
            let tag = tag.trim();
            tag == "*" || opaque(tag) == wanted
        })
    })
}

/// How clients and CDNs may keep an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCaching {
    pub max_age_seconds: u32,
    pub stale_while_revalidate_seconds: Option<u32>,
    /// The answer depends on the caller's credentials.
    pub private: bool,
}

impl ClientCaching {
    /// Written by hand: every answer through the cache carries it. The
    /// default's two values (no per-table rule) are static.
    fn header(&self) -> HeaderValue {
        if self.max_age_seconds == 0 && self.stale_while_revalidate_seconds.is_none() {
            return HeaderValue::from_static(if self.private { "private, max-age=0" } else { "public, max-age=0" });
        }
        let mut value = String::with_capacity(64);
        value.push_str(if self.private { "private, max-age=" } else { "public, max-age=" });
        value.push_str(itoa::Buffer::new().format(self.max_age_seconds));
        if let Some(swr) = self.stale_while_revalidate_seconds {
            value.push_str(", stale-while-revalidate=");
            value.push_str(itoa::Buffer::new().format(swr));
        }
        HeaderValue::try_from(value).expect("words and digits are a valid header value")
    }
}

/// A read's answer from the cache's [`Served`], with its validators and
/// `Cache-Status` (counted in `dbapi_cache_requests_total`).
pub async fn finish(served: Served, request: &HeaderMap, caching: ClientCaching) -> Response {
    crate::metrics::global().cache_request(served.outcome.metric_label());
    let Served { response, etag, outcome } = served;
    if !matches!(response.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT) {
        return response;
    }
    let (response, etag) = match etag {
        Some(etag) => (response, etag),
        None => with_body_digest(response).await,
    };
    validated(response, etag, request, Some(caching), Some(outcome))
}

/// A read's answer without a cache: its `ETag` is its body's digest, so a
/// matching `If-None-Match` still saves the transfer (not the query).
pub async fn validated_by_body(response: Response, request: &HeaderMap) -> Response {
    if !matches!(response.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT) {
        return response;
    }
    let (response, etag) = with_body_digest(response).await;
    // Without a cache nothing says how long an answer may be kept.
    validated(response, etag, request, None, None)
}

/// The body with its `ETag`: the body's 128-bit xxh3 digest. It tells one
/// version of an answer from the next, which is all a validator must do;
/// SHA-256 (the cache entries' digest, where one role's key must never
/// find another's answer) cost 3 % of the runtime's CPU on W2.
async fn with_body_digest(response: Response) -> (Response, HeaderValue) {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let digest = dbapi_crds::keys::hex(&xxhash_rust::xxh3::xxh3_128(&bytes).to_be_bytes());
    (Response::from_parts(parts, Body::from(bytes)), etag(&digest))
}

/// `response` with its validators (and `Cache-Control` when `caching`
/// says how it may be kept), or `304 Not Modified` (no body) when the
/// client already holds it.
pub fn validated(
    mut response: Response,
    etag: HeaderValue,
    request: &HeaderMap,
    caching: Option<ClientCaching>,
    outcome: Option<CacheOutcome>,
) -> Response {
    if matches_if_none_match(request, &etag) {
        let mut not_modified = Response::new(Body::empty());
        *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
        for name in [header::CONTENT_RANGE, HeaderName::from_static("preference-applied"), header::AGE] {
            if let Some(value) = response.headers().get(&name) {
                not_modified.headers_mut().insert(name, value.clone());
            }
        }
        response = not_modified;
    }
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag);
    if let Some(caching) = caching {
        headers.insert(header::CACHE_CONTROL, caching.header());
    }
    headers.insert(header::VARY, HeaderValue::from_static(VARY));
    if let Some(outcome) = outcome {
        outcome.label(headers);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_stars() {
        let tag_value = etag("0123456789abcdef0123456789abcdef0123");
        assert_eq!(tag_value, "\"0123456789abcdef0123456789abcdef\"");
        let tag = tag_value.to_str().unwrap();
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, value.parse().unwrap());
            matches_if_none_match(&h, &tag_value)
        };
        assert!(with(tag));
        assert!(with(&format!("W/{tag}")));
        assert!(with(&format!("\"other\", {tag}")));
        assert!(with("*"));
        assert!(!with("\"other\""));
        assert!(!matches_if_none_match(&HeaderMap::new(), &tag_value));
    }

    #[test]
    fn vary_names_every_header_that_changes_an_answer() {
        for name in super::super::key::ANSWER_HEADERS {
            assert!(VARY.split(", ").any(|v| v == name), "{name}");
        }
    }

    #[test]
    fn cache_control_says_who_may_keep_it() {
        let c = ClientCaching { max_age_seconds: 0, stale_while_revalidate_seconds: None, private: false };
        assert_eq!(c.header(), "public, max-age=0");
        let c = ClientCaching { max_age_seconds: 60, stale_while_revalidate_seconds: Some(30), private: true };
        assert_eq!(c.header(), "private, max-age=60, stale-while-revalidate=30");
    }
}
