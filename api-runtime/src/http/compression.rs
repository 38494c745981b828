//! Response compression with tower-http: brotli or gzip as the client's
//! `Accept-Encoding` prefers, for bodies of 1 KiB and up.
//!
//! A request without `Accept-Encoding` never gets a compressed answer, so
//! [`WhenAsked`] sends it past the compression layer (whose body wrapper
//! every frame of the answer would otherwise cross) and only adds the
//! `Vary` the layer would have added.
//!
//! tower-http never compresses an answer carrying `Content-Range` (an HTTP
//! byte range must not be). PostgREST's `Content-Range` counts rows, not
//! bytes, and is on nearly every answer, so it steps aside while the
//! compression layer looks: [`hide_item_range`] inside it, and
//! [`restore_item_range`] outside.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Response, header};
use tower::util::MapResponse;
use tower::{Layer, Service};
use tower_http::compression::predicate::{And, DefaultPredicate, Predicate, SizeAbove};
use tower_http::compression::{Compression, CompressionBody, CompressionLayer};

/// Smallest body worth compressing: below it the saving does not pay for
/// the CPU.
const MIN_COMPRESSED_BYTES: u64 = 1024;

/// Where `Content-Range` waits while the compression layer decides.
const ASIDE: HeaderName = HeaderName::from_static("x-dbapi-item-range");

/// Which answers are compressed: big enough, and never images or event
/// streams (tower-http's default exclusions, which scan the content type:
/// asked only about bodies big enough).
type Compressible = And<SizeAbove, DefaultPredicate>;

fn compressible() -> Compressible {
    SizeAbove::new(MIN_COMPRESSED_BYTES).and(DefaultPredicate::new())
}

/// `inner` with compression for the requests that ask for it.
pub fn when_asked<S: Clone>(inner: S) -> WhenAsked<S> {
    let hiding: HideItemRange<S> = MapResponse::new(inner.clone(), hide_item_range::<Body>);
    WhenAsked { plain: inner, compressing: CompressionLayer::new().compress_when(compressible()).layer(hiding) }
}

type HideItemRange<S> = MapResponse<S, fn(axum::response::Response) -> axum::response::Response>;

/// Compression by tower-http for a request with `Accept-Encoding`; the
/// others go straight to `plain`.
#[derive(Clone)]
pub struct WhenAsked<S> {
    plain: S,
    compressing: Compression<HideItemRange<S>, Compressible>,
}

impl<S> Service<Request> for WhenAsked<S>
where
    S: Service<Request, Response = axum::response::Response, Error = Infallible>,
{
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = WhenAskedFuture<S::Future, <Compression<HideItemRange<S>, Compressible> as Service<Request>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        ready!(self.plain.poll_ready(cx))?;
        self.compressing.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.headers().contains_key(header::ACCEPT_ENCODING) {
            WhenAskedFuture::Compressing { future: self.compressing.call(request) }
        } else {
            WhenAskedFuture::Plain { future: self.plain.call(request) }
        }
    }
}

pin_project_lite::pin_project! {
    #[project = WhenAskedProjection]
    pub enum WhenAskedFuture<Plain, Compressing> {
        Plain { #[pin] future: Plain },
        Compressing { #[pin] future: Compressing },
    }
}

impl<Plain, Compressing> Future for WhenAskedFuture<Plain, Compressing>
where
    Plain: Future<Output = Result<axum::response::Response, Infallible>>,
    Compressing: Future<Output = Result<Response<CompressionBody<Body>>, Infallible>>,
{
    type Output = Result<axum::response::Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(Ok(match self.project() {
            WhenAskedProjection::Plain { future } => varies_as_compressed(ready!(future.poll(cx))?),
            WhenAskedProjection::Compressing { future } => restore_item_range(ready!(future.poll(cx))?.map(Body::new)),
        }))
    }
}

/// An answer the compression layer would have compressed for a client
/// that asked says it varies with `Accept-Encoding`, as the layer makes it
/// say.
fn varies_as_compressed(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers();
    let names_it = |value: &HeaderValue| {
        value.as_bytes().split(|b| *b == b',').any(|name| name.trim_ascii().eq_ignore_ascii_case(b"accept-encoding"))
    };
    if headers.get_all(header::VARY).iter().any(names_it)
        || headers.contains_key(header::CONTENT_ENCODING)
        || headers.get(header::CONTENT_RANGE).is_some_and(|range| range.as_bytes().starts_with(b"bytes"))
        || !compressible().should_compress(&response)
    {
        return response;
    }
    response.headers_mut().append(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// Inside the compression layer: a row range (`0-24/*`, never `bytes …`)
/// is moved aside.
fn hide_item_range<B>(mut response: Response<B>) -> Response<B> {
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
fn restore_item_range<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    if let Some(range) = headers.remove(ASIDE) {
        headers.insert(header::CONTENT_RANGE, range);
    }
    response
}
