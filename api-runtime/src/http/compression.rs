//! Response compression with tower-http: brotli or gzip as the client's
//! `Accept-Encoding` prefers, for bodies of 1 KiB and up.
//!
//! tower-http never compresses an answer carrying `Content-Range` (an HTTP
//! byte range must not be). PostgREST's `Content-Range` counts rows, not
//! bytes, and is on nearly every answer, so it steps aside while the
//! compression layer looks: [`hide_item_range`] inside it, and
//! [`restore_item_range`] outside.

use axum::http::{HeaderName, Response, header};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate, SizeAbove};

/// Smallest body worth compressing: below it the saving does not pay for
/// the CPU.
const MIN_COMPRESSED_BYTES: u64 = 1024;

/// Where `Content-Range` waits while the compression layer decides.
const ASIDE: HeaderName = HeaderName::from_static("x-dbapi-item-range");

/// The compression layer; never images or event streams (tower-http's
/// default exclusions, which scan the content type: asked only about
/// bodies big enough).
pub fn layer() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new().compress_when(SizeAbove::new(MIN_COMPRESSED_BYTES).and(DefaultPredicate::new()))
}

/// Inside the compression layer: a row range (`0-24/*`, never `bytes …`)
/// is moved aside.
pub fn hide_item_range<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    if let Some(range) = headers.get(header::CONTENT_RANGE)
        && !range.as_bytes().starts_with(b"bytes")
        && let Some(range) = headers.remove(header::CONTENT_RANGE)
    {
        headers.insert(ASIDE, range);
    }
    response
}

/// Outside it: the row range is put back.
pub fn restore_item_range<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    if let Some(range) = headers.remove(ASIDE) {
        headers.insert(header::CONTENT_RANGE, range);
    }
    response
}
