//! The interactive docs page: static and public, so it is answered before
//! the gate (no key, no quota), by the Swagger UI's own router.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use futures_util::future::Either;
use tower::Service;

/// Sends the docs page's paths to its router and every other request to
/// `api`, by a look at the path: a router in front of every request would
/// match each path twice (bench/README.md, "Where a request's instructions
/// go"). Generic over `api`, not boxed: each box is an allocation, and a
/// copy of the future inside it, for every request.
#[derive(Clone)]
pub struct DocsOr<S> {
    /// `{api.pathPrefix}/_/docs`.
    path: Arc<str>,
    docs: Router,
    api: S,
}

impl<S> DocsOr<S> {
    pub fn new(prefix: &str, api: S) -> Self {
        let path = format!("{prefix}{}", super::DOCS_PATH);
        let docs = utoipa_swagger_ui::SwaggerUi::new(path.clone())
            .config(utoipa_swagger_ui::Config::new([format!("{prefix}{}", super::OPENAPI_PATH)]));
        DocsOr { path: path.into(), docs: Router::from(docs), api }
    }

    fn is_docs(&self, path: &str) -> bool {
        path.strip_prefix(&*self.path).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

impl<S> Service<Request> for DocsOr<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<<Router as Service<Request>>::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // A router is always ready.
        self.api.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if self.is_docs(request.uri().path()) {
            Either::Left(self.docs.call(request))
        } else {
            Either::Right(self.api.call(request))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_docs_paths_go_to_the_docs() {
        let never = tower::service_fn(|_: Request| async { Ok::<Response, Infallible>(Response::default()) });
        let docs = DocsOr::new("/rest/v1", never);
        assert!(docs.is_docs("/rest/v1/_/docs"));
        assert!(docs.is_docs("/rest/v1/_/docs/"));
        assert!(docs.is_docs("/rest/v1/_/docs/swagger-ui.css"));
        assert!(!docs.is_docs("/rest/v1/_/docsy"));
        assert!(!docs.is_docs("/rest/v1/orders"));
        assert!(!docs.is_docs("/_/docs"));
    }
}
