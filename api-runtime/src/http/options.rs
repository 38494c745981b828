//! `OPTIONS`: the methods a resource takes, in `Allow`, as PostgREST
//! answers them. A table takes every method (`PUT` only with a primary
//! key); a view the writes the database says it can take; a function
//! `POST`, and `GET`/`HEAD` when it does not write. Unknown resources are
//! 404 like any other request for them.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::Identity;
use crate::plan::access::Verb;
use crate::plan::{find_functions, find_table};
use crate::schema::{Table, Volatility};

use super::AppState;
use super::extract::Path;
use super::negotiate::profile;
use crate::error::ApiError;

pub async fn table(
    State(state): State<Arc<AppState>>,
    Extension(identity): Extension<Arc<Identity>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scope = state.scope(&identity);
    let schema = &scope.schema;
    let table = find_table(schema, profile(schema, &headers)?, &name)?;
    // A role is answered with what it may do of what the relation takes
    // (the role's view narrows `writable`; the full table says what the
    // database allows).
    let mut methods = table_methods(scope.full_table(table).unwrap_or(table));
    if let Some(grants) = scope.grants(table) {
        let verbs = grants.verbs();
        methods.retain(|m| Verb::parse(m).is_none_or(|v| verbs.contains(v)));
    }
    Ok(allow(&methods.join(",")))
}

pub async fn function(
    State(state): State<Arc<AppState>>,
    Extension(identity): Extension<Arc<Identity>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scope = state.scope(&identity);
    let schema = &scope.schema;
    let overloads = find_functions(schema, profile(schema, &headers)?, &name, &[])?;
    let reads = overloads.iter().any(|f| f.volatility != Volatility::Volatile);
    let mut methods = if reads { vec!["OPTIONS", "GET", "HEAD", "POST"] } else { vec!["OPTIONS", "POST"] };
    if let Some(verbs) = scope.function_verbs(&overloads[0]) {
        methods.retain(|m| Verb::parse(m).is_none_or(|v| verbs.contains(v)));
    }
    Ok(allow(&methods.join(",")))
}

/// An `OPTIONS` that asks for no method is no CORS preflight: the routes
/// answer it (`Allow`), not the CORS layer.
pub fn is_plain_options(request: &Request) -> bool {
    request.method() == Method::OPTIONS && !request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

pub async fn root() -> Response {
    allow("OPTIONS,GET,HEAD")
}

/// PostgREST's order: `OPTIONS,GET,HEAD`, then the writes.
fn table_methods(table: &Table) -> Vec<&'static str> {
    let w = table.writable;
    let mut methods = vec!["OPTIONS", "GET", "HEAD"];
    if w.insert {
        methods.push("POST");
    }
    if w.insert && w.update && !table.primary_key.is_empty() {
        methods.push("PUT");
    }
    if w.update {
        methods.push("PATCH");
    }
    if w.delete {
        methods.push("DELETE");
    }
    methods
}

fn allow(methods: &str) -> Response {
    let mut response = StatusCode::OK.into_response();
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_str(methods).expect("method names are header text"));
    response
}
