//! The two steps a request passes, each calling the concerns in their
//! order: [`Edge`] just inside the request's span (URL length, deadline,
//! which `OPTIONS` are preflights), [`Gate`] just outside the routes (who
//! calls, from where, how often, which schema, the cache, the circuit, the
//! audit line).
//!
//! One step calling each concern's before and after parts, not one layer
//! per concern, and neither a `from_fn` middleware: `from_fn` clones and
//! boxes the service inside it for every request, and boxes its future
//! again (bench/README.md, "2026-12-07, third"). The edge waits on nothing
//! before the routes and boxes nothing; the gate boxes its one future and
//! runs the router's inside it. The concerns stay in their own modules
//! (`auth`, `limits`, `cache`, `db::circuit`, `audit`);
//! this file only says in which order they run. Steps only some requests
//! wait on (a quota's check, a write's invalidation) are boxed where they
//! are awaited: axum copies a middleware's whole future into a box, its
//! largest step's room included, for every request.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{Extensions, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use tokio::time::Timeout;
use tower::util::Oneshot;
use tower::{Service, ServiceExt};

use super::{AppState, HttpService, negotiate, options};
use crate::audit::Pending;
use crate::auth::Identity;
use crate::cache::Invalidation;
use crate::db::circuit::Admitted;
use crate::limits::client_ip::ClientAddr;
use crate::limits::rate::{Decision, RateLimiter};
use crate::limits::request::Deadline;

/// Refuses a URL too long before anything parses it, stops a request
/// running past its deadline, and sends plain `OPTIONS` to the routes.
///
/// A service of its own rather than a `from_fn` middleware: the service
/// inside it is called in place, not cloned and boxed with the request's
/// future for every request as `from_fn` does (bench/README.md, "Where a
/// request's instructions go").
#[derive(Clone)]
pub struct Edge<S> {
    pub max_url_bytes: u64,
    pub request_timeout: Duration,
    /// Where an `OPTIONS` that is no preflight goes, past the CORS layer
    /// (which would answer it as one): the routes, so the path is matched
    /// once. Boxed: only those requests pay for it.
    pub routes: HttpService,
    /// The rest of the way: CORS, compression, the routes.
    pub inner: S,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Err(too_long) = crate::limits::request::check_url_length(&request, self.max_url_bytes) {
            return EdgeFuture::Refused { response: Some(too_long.into_response()) };
        }
        let deadline = Deadline::of(&request, self.request_timeout);
        let answer = if options::is_plain_options(&request) {
            Either::Left(self.routes.clone().oneshot(request))
        } else {
            Either::Right(self.inner.call(request))
        };
        EdgeFuture::Timed { answer: tokio::time::timeout(self.request_timeout, answer), deadline: Some(deadline) }
    }
}

pin_project_lite::pin_project! {
    /// An [`Edge`]'s answer: a refusal, or the routes' answer within the
    /// deadline.
    #[project = EdgeProjection]
    pub enum EdgeFuture<F> {
        Refused { response: Option<Response> },
        Timed {
            #[pin]
            answer: Timeout<Either<Oneshot<HttpService, Request>, F>>,
            deadline: Option<Deadline>,
        },
    }
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            EdgeProjection::Refused { response } => {
                Poll::Ready(Ok(response.take().expect("an edge future is not polled after it answered")))
            }
            EdgeProjection::Timed { answer, deadline } => Poll::Ready(match std::task::ready!(answer.poll(cx)) {
                Ok(answered) => answered,
                Err(_elapsed) => Ok(deadline.take().expect("an edge future is not polled after it answered").passed()),
            }),
        }
    }
}

/// Every route's way in: the client's address is found, the request
/// identified (401), counted against its caller's quota (429), refused
/// while the database's circuit is open (503), sent to the routes (or, a
/// GET planned before, straight to its answer: `read::PlannedGet`), and
/// after it the cache forgets what a write changed before the answer
/// leaves; writes and refusals are audited.
///
/// A service rather than a `from_fn` middleware: the routes' future runs
/// inside the gate's one boxed future, where `from_fn` would box the
/// routes again (as its `Next`) and their future too, for every request.
#[derive(Clone)]
pub struct Gate {
    pub state: Arc<AppState>,
    /// Whether answers name their schema (`Content-Profile`): only when the
    /// API exposes several, which changes only with a restart.
    pub several_schemas: bool,
    pub routes: Router,
}

impl Service<Request> for Gate {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // A router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let gate = self.clone();
        Box::pin(async move { Ok(gate.pass(request).await) })
    }
}

impl Gate {
    async fn pass(self, mut request: Request) -> Response {
        let state = &self.state;
        state.clients.attach(&mut request);
        let pending = Pending::of(&request);
        let (response, identity) = identified(&self, request).await;
        state.audit.finish(pending, identity.as_deref(), &response);
        response
    }
}

/// Identifies the caller and runs the rest in their database session; the
/// identity comes back beside the answer for the audit line (none when
/// the request was refused before it had one).
async fn identified(gate: &Gate, mut request: Request) -> (Response, Option<Arc<Identity>>) {
    let policy = gate.state.policy();
    let identified = match crate::auth::identify(&policy.authenticator, &gate.state.rate, &mut request).await {
        Ok(identified) => identified,
        Err(refused) => return (refused, None),
    };
    let admitted = admitted(gate, request);
    let response = match identified.session {
        Some(session) => crate::db::session::scope(session, admitted).await,
        None => admitted.await,
    };
    (response, Some(identified.identity))
}

/// The caller's quota, then the route behind the circuit breaker; on the
/// way out, the schema's name, the cache's invalidation and the quota's
/// headers (a refusal by the circuit carries them too).
async fn admitted(gate: &Gate, mut request: Request) -> Response {
    let state = &gate.state;
    let decision = match rate_limited(&state.rate, request.extensions()).await {
        Ok(decision) => decision,
        Err(refused) => return refused,
    };
    let profile: Option<HeaderValue> =
        if gate.several_schemas { negotiate::answered_profile(&state.schema(), &request) } else { None };
    let invalidation =
        state.cache.as_deref().and_then(|cache| Some((cache, Invalidation::of(state.config.api.prefix(), &request)?)));
    let mut response = match state.circuit.admit(&mut request) {
        Err(refused) => refused.into_response(),
        Ok(admitted) => {
            let response = match super::read::PlannedGet::find(state, &request) {
                Some(planned) => Box::pin(planned.answer(state, request)).await,
                None => {
                    let Ok(response) = gate.routes.clone().call(request).await;
                    response
                }
            };
            if admitted == Admitted::Counted {
                state.circuit.observe(&response, &state.db);
            }
            response
        }
    };
    if let Some(profile) = profile {
        negotiate::label_profile(&mut response, profile);
    }
    if let Some((cache, invalidation)) = invalidation.filter(|_| response.status().is_success()) {
        Box::pin(invalidation.apply(cache, &state.schema())).await;
    }
    if let Some(decision) = decision {
        decision.write_headers(response.headers_mut());
    }
    response
}

/// Counts the request against its caller's quota: the decision, whose
/// `RateLimit-*` headers go on the answer, or the 429 to answer. Callers
/// without a quota are not counted. Takes the request's extensions (where
/// `auth` left the identity), not the request, whose body is not `Sync`.
async fn rate_limited(limiter: &RateLimiter, extensions: &Extensions) -> Result<Option<Decision>, Response> {
    let Some(identity) = extensions.get::<Arc<Identity>>() else { return Ok(None) };
    let Some(quota) = identity.quota else { return Ok(None) };
    let client = ClientAddr::of(extensions);
    // Boxed: only callers with a quota wait on it (the Redis script's
    // future is large).
    let decision = Box::pin(limiter.check(&identity.rate_caller(client), quota)).await;
    if !decision.allowed {
        return Err(crate::limits::rate::refusal(&decision, quota));
    }
    Ok(Some(decision))
}
