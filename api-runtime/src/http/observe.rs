//! The step every request passes first and every answer last: the
//! request's id (`request_id`), its span (so every log line of the request
//! and its trace carry the id), a panic turned into a 500, and the answer
//! counted and timed (`metrics`).
//!
//! One service calling each concern's before and after parts, as
//! [`super::gate`] does, in place of tower-http's request-id (two layers),
//! catch-panic and trace layers and a metrics layer: each of those wrapped
//! the request's future in a future of its own, the trace and catch-panic
//! layers wrapped the body too, and the answer was boxed again on the way
//! out. Together they were about a quarter of a cached answer's time
//! (bench/README.md, "2026-12-07, fourth").

use std::convert::Infallible;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::Service;
use tracing::Span;

use crate::error::ApiError;

/// Names the resource a request path is for (the metrics' `table` label):
/// a name the schema has, or empty. Given by the HTTP surface, which knows
/// the schema.
pub type ResourceOf = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Gives each request its id and span, turns a panic into a 500, and
/// counts and times every answer in [`crate::metrics::global`] (to the
/// response head: a body still streaming is not waited for).
#[derive(Clone)]
pub struct Observe<S> {
    pub resource_of: ResourceOf,
    pub inner: S,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Observed<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Observed<S::Future> {
        let started = Instant::now();
        let id = crate::request_id::assign(&mut request);
        let resource = (self.resource_of)(request.uri().path());
        let method = request.method().clone();
        let span = crate::request_id::span(&request);
        let answer = {
            let _entered = span.enter();
            tracing::debug!("started processing request");
            catch_unwind(AssertUnwindSafe(|| self.inner.call(request))).ok()
        };
        Observed { answer, span, id, started, resource, method }
    }
}

pin_project_lite::pin_project! {
    /// A request's answer on its way out of [`Observe`].
    pub struct Observed<F> {
        // `None`: calling the service panicked.
        #[pin]
        answer: Option<F>,
        span: Span,
        id: HeaderValue,
        started: Instant,
        resource: String,
        method: Method,
    }
}

impl<F> Future for Observed<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let answered = match this.answer.as_pin_mut() {
            Some(answer) => match catch_unwind(AssertUnwindSafe(|| answer.poll(cx))) {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(Ok(response))) => Some(response),
                Err(_panic) => None,
            },
            None => None,
        };
        let mut response = answered.unwrap_or_else(panicked);
        // An answer that names an id (none does today) keeps it.
        response.headers_mut().entry(&crate::request_id::HEADER).or_insert_with(|| this.id.clone());
        let took = this.started.elapsed();
        finished(&response, took);
        let resource = std::mem::take(this.resource);
        crate::metrics::global().observe_request(resource, this.method, response.status().as_u16(), took);
        Poll::Ready(Ok(response))
    }
}

/// The answer to a request whose handler panicked; the panic's message and
/// place went to the log through the panic hook.
fn panicked() -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "DBAPI500", "Internal error")
        .hint("The server log has the details.")
        .into_response()
}

/// The request's last log line: at DEBUG, or at ERROR for a server error.
fn finished(response: &Response, took: Duration) {
    let status = response.status().as_u16();
    let latency_ms = took.as_secs_f64() * 1000.0;
    if response.status().is_server_error() {
        tracing::error!(status, latency_ms, "response failed");
    } else {
        tracing::debug!(status, latency_ms, "finished processing request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    fn observed<S>(inner: S) -> Observe<S> {
        Observe { resource_of: Arc::new(|path: &str| path.trim_start_matches('/').to_string()), inner }
    }

    fn request(id: Option<&str>) -> Request {
        let mut request = Request::builder().uri("/observed_panics");
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        request.body(axum::body::Body::empty()).unwrap()
    }

    fn requests_counted(status: u16) -> f64 {
        let series =
            format!("dbapi_http_requests_total{{table=\"observed_panics\",method=\"GET\",status=\"{status}\"}} ");
        let text = crate::metrics::global().render();
        text.lines().find_map(|l| l.strip_prefix(&series)?.parse().ok()).unwrap_or(0.0)
    }

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_panic_is_a_counted_500_in_the_error_shape_with_the_request_id() {
        let before = requests_counted(500);
        // Panicking while answering, and while being called.
        let in_future = tower::service_fn(|_: Request| async { panic!("boom") });
        let response = observed(in_future).oneshot(request(Some("mine-1"))).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["x-request-id"], "mine-1");
        let body = body_of(response).await;
        assert_eq!(body["code"], "DBAPI500");
        assert_eq!(body["message"], "Internal error");
        assert!(!body.to_string().contains("boom"), "the panic's message stays in the log: {body}");

        let in_call =
            tower::service_fn(|_: Request| -> std::future::Ready<Result<Response, Infallible>> { panic!("boom") });
        let response = observed(in_call).oneshot(request(None)).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let id = response.headers()["x-request-id"].to_str().unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "a new id: {id}");
        assert_eq!(requests_counted(500), before + 2.0);
    }

    #[tokio::test]
    async fn the_answer_carries_the_id_the_handler_saw() {
        let echo = tower::service_fn(|request: Request| async move {
            let seen = crate::request_id::of(&request).to_string();
            Ok::<_, Infallible>((StatusCode::OK, seen).into_response())
        });
        // Kept when acceptable, replaced when not: the handler and the
        // answer agree either way.
        for sent in [Some("trace-7"), Some("not acceptable"), None] {
            let response = observed(echo).oneshot(request(sent)).await.unwrap();
            let answered = response.headers()["x-request-id"].to_str().unwrap().to_string();
            let seen = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
            assert_eq!(answered.as_bytes(), &seen[..], "{sent:?}");
            if sent == Some("trace-7") {
                assert_eq!(answered, "trace-7");
            } else {
                assert!(uuid::Uuid::parse_str(&answered).is_ok(), "{sent:?}: {answered}");
            }
        }
    }
}
