//! `/rpc/{fn}`: database functions as endpoints. POST passes a JSON object
//! of named arguments and runs in a transaction (`Prefer: tx=rollback`
//! undoes it); GET passes the arguments in the query string and runs any
//! function read-only (a write there fails with 25006, 405). A result is read like a table, so
//! select, filters, order, limit and count apply to it.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::auth::Identity;
use crate::db::{ReadOutput, Tx};
use crate::grammar::{CountPreference, Preferences};
use crate::plan::access::{Scope, Verb};
use crate::plan::{CallArgs, CallPlan, ReadPlan, find_functions, plan_call};
use crate::schema::{Function, Returns, Schema, ValueKind, Volatility};
use crate::sql::{render_handler, render_read, render_void_call};

use super::AppState;
use super::extract::Path;
use super::negotiate::Representation;
use super::negotiate::{profile, profile_from};
use super::read::{ReadRequest, read_response, without_nulls};
use super::write::body_bytes;
use crate::error::ApiError;

pub async fn call_get(
    State(state): State<Arc<AppState>>,
    Extension(identity): Extension<Arc<Identity>>,
    method: Method,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    circuit_open: Option<Extension<crate::db::circuit::CircuitOpen>>,
) -> Result<Response, ApiError> {
    // Function results are not cached: with the circuit open there is
    // nothing to answer from.
    if let Some(Extension(open)) = circuit_open {
        return Err(crate::db::circuit::refusal(open.retry_after));
    }
    let scope = state.scope(&identity);
    let schema = &scope.schema;
    let profile = profile(schema, &headers)?;
    let verb = if method == Method::HEAD { Verb::Head } else { Verb::Get };
    check_granted(&scope, profile, &name, verb)?;
    let (named, rest) = split_arguments(schema, profile, &name, uri.query().unwrap_or(""));
    // A function's result is held whole, whatever its representation.
    let max_rows = |_| crate::limits::max_rows(&scope.config, identity.role.as_deref(), false);
    let request =
        ReadRequest::parse(&scope.config.api, max_rows, &headers, &rest, media_types(schema, profile, &name))?;
    let args = CallArgs { named, ..CallArgs::default() };
    let mut plan = plan_call(schema, profile, &name, &args, &request.query, request.page)?;
    restrict_embeds(&scope, &mut plan)?;
    plan.cap_embeds(scope.config.api.max_rows);
    let function = plan.function();
    // As PostgREST: every GET runs read-only, so a function that writes
    // fails there with the database's own 25006 (405). One declared not to
    // write takes the read path (pipelined, no transaction).
    let reads = state.reads(&headers)?;
    if let Some((statement, media_type)) = handled_by(&request, schema, &plan)? {
        let tx = reads.begin_read_only().await?;
        let asked = super::media::Asked { method: &method, path: uri.path(), headers: &headers };
        return super::media::answer(tx, &statement, &media_type, asked).await;
    }
    match &plan {
        CallPlan::Read(read) => {
            let statement = render_read(read, schema.engine, request.prefs.count.is_some());
            let output = if function.volatility == Volatility::Volatile {
                let mut tx = reads.begin_read_only().await?;
                let output = tx.fetch_read(&statement).await?;
                tx.commit().await?;
                output
            } else {
                reads.fetch_read(&statement).await?
            };
            respond(output, read, function, &request)
        }
        CallPlan::Void(call) => {
            let mut tx = reads.begin_read_only().await?;
            tx.execute(&render_void_call(call, schema.engine)).await?;
            tx.commit().await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}

pub async fn call_post(
    State(state): State<Arc<AppState>>,
    Extension(identity): Extension<Arc<Identity>>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let scope = state.scope(&identity);
    let schema = &scope.schema;
    let profile = profile_from(schema, &headers, "content-profile")?;
    check_granted(&scope, profile, &name, Verb::Post)?;
    let max_rows = |_| crate::limits::max_rows(&scope.config, identity.role.as_deref(), false);
    let offered = media_types(schema, profile, &name);
    let request = ReadRequest::parse(&scope.config.api, max_rows, &headers, uri.query().unwrap_or(""), offered)?;
    let (bytes, form) = body_bytes(&scope.config.api, &headers, body).await?;
    let body = match form {
        Some(fields) => Value::Object(fields),
        None if bytes.iter().all(u8::is_ascii_whitespace) => Value::Object(Map::new()),
        None => serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "PGRST102", "Empty or invalid json").details(e.to_string())
        })?,
    };
    let named = match &body {
        Value::Object(members) => members.clone(),
        _ => Map::new(),
    };
    let args = CallArgs { named, body: Some(body), single_object: request.prefs.single_object_params == Some(true) };
    let mut plan = plan_call(schema, profile, &name, &args, &request.query, request.page)?;
    restrict_embeds(&scope, &mut plan)?;
    plan.cap_embeds(scope.config.api.max_rows);
    if let Some((statement, media_type)) = handled_by(&request, schema, &plan)? {
        let tx = state.db.begin().await?;
        let asked = super::media::Asked { method: &Method::POST, path: uri.path(), headers: &headers };
        return super::media::answer(tx, &statement, &media_type, asked).await;
    }
    let mut tx = state.db.begin().await?;
    let outcome = run_in(&mut tx, schema, &plan, &request).await;
    match outcome {
        Ok(mut response) => {
            let token = tx.finish_with_token(request.prefs.tx_rollback != Some(true), state.gives_tokens()).await?;
            super::write::with_token(&mut response, token);
            Ok(response)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// The media types the overloads of `name` answer in: their own result's
/// (a handler function), or a handler's of the table whose rows they
/// return.
fn media_types<'s>(schema: &'s Schema, profile: &str, name: &str) -> impl Iterator<Item = &'s str> {
    schema.functions_named(profile, name).iter().flat_map(move |f| {
        let rows_handlers = match &f.returns {
            Returns::Table(_) => f.result_table(schema).map_or(&[][..], |t| schema.handlers_of(t)),
            _ => &[],
        };
        f.media_type.as_deref().into_iter().chain(rows_handlers.iter().map(|h| h.media_type.as_str()))
    })
}

/// The statement and media type answering a call whose request picked a
/// handler: the function's own value, or a handler of its result table
/// aggregating its rows; 406 when the overload called serves neither.
fn handled_by(
    request: &ReadRequest,
    schema: &Schema,
    plan: &CallPlan<'_>,
) -> Result<Option<(crate::db::Statement, String)>, ApiError> {
    let Some(wanted) = &request.handler else { return Ok(None) };
    let function = plan.function();
    if function.media_type.as_deref() == Some(wanted.as_str()) {
        return Ok(Some((render_void_call(plan.call(), schema.engine), wanted.clone())));
    }
    let rows_handler = match plan {
        CallPlan::Read(read) if matches!(function.returns, Returns::Table(_)) => {
            schema.handlers_of(read.table).iter().find(|h| &h.media_type == wanted).map(|h| (read, h))
        }
        _ => None,
    };
    match rows_handler {
        Some((read, handler)) => Ok(Some((render_handler(read, schema.engine, handler), wanted.clone()))),
        None => Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST107",
            format!("None of these media types are available: {wanted}"),
        )),
    }
}

/// 404 for a function the role has no rule naming (it is not in its
/// view), 403 `42501` when no rule naming it grants `verb`.
fn check_granted(scope: &Scope, profile: &str, name: &str, verb: Verb) -> Result<(), ApiError> {
    if scope.is_restricted() {
        let overloads = find_functions(&scope.schema, profile, name, &[])?;
        scope.check_function(&overloads[0], verb)?;
    }
    Ok(())
}

/// A function's result rows are its own (the function is trusted), but
/// what is embedded from them follows the embedded tables' GET rules.
fn restrict_embeds<'s>(scope: &'s Scope, plan: &mut CallPlan<'s>) -> Result<(), ApiError> {
    if let CallPlan::Read(read) = plan {
        scope.restrict(read, None)?;
    }
    Ok(())
}

async fn run_in(
    tx: &mut Tx,
    schema: &Schema,
    plan: &CallPlan<'_>,
    request: &ReadRequest,
) -> Result<Response, ApiError> {
    let function = plan.function();
    let mut response = match plan {
        CallPlan::Read(read) => {
            let statement = render_read(read, schema.engine, request.prefs.count.is_some());
            let output = tx.fetch_read(&statement).await?;
            respond(output, read, function, request)?
        }
        CallPlan::Void(call) => {
            tx.execute(&render_void_call(call, schema.engine)).await?;
            StatusCode::NO_CONTENT.into_response()
        }
    };
    let applied = Preferences {
        tx_rollback: request.prefs.tx_rollback,
        count: request.prefs.count.map(|_| CountPreference::Exact),
        single_object_params: request.prefs.single_object_params,
        ..Preferences::default()
    };
    if let Some(v) = applied.applied() {
        response
            .headers_mut()
            .insert("preference-applied", v.parse().expect("preference tokens are valid header text"));
    }
    Ok(response)
}

/// The result as PostgREST answers it: a set-returning function's rows as
/// an array (scalars as bare values), any other function's single value or
/// object as is.
fn respond(
    output: ReadOutput,
    plan: &ReadPlan,
    function: &Function,
    request: &ReadRequest,
) -> Result<Response, ApiError> {
    let rows = output.page_rows.max(0) as u64;
    // Counts of a function's rows are always exact.
    let total = request.prefs.count.and(output.total);
    let negotiated = request.negotiated;
    // CSV is written from the rows as objects: a scalar's column is
    // named after the function.
    let as_values = function.is_scalar() && !negotiated.representation.is_row_by_row();
    let body = if as_values { scalar_values(&output.body)? } else { output.body };
    if function.set_returning || negotiated.representation != Representation::Json {
        let applied = crate::grammar::Preferences { count: request.prefs.count, ..Default::default() };
        return read_response(body, rows, total, request.page.offset, negotiated, plan, &applied);
    }
    let single = match serde_json::from_str::<Value>(&body) {
        Ok(Value::Array(mut items)) if !items.is_empty() => items.swap_remove(0).to_string(),
        Ok(_) => "null".to_string(),
        Err(e) => return Err(internal(e)),
    };
    let single = if negotiated.strip_nulls { without_nulls(&single)? } else { single };
    let mut response = (StatusCode::OK, single).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(negotiated.content_type()));
    h.insert(header::CONTENT_RANGE, HeaderValue::from_static(if rows == 0 { "*/*" } else { "0-0/*" }));
    Ok(response)
}

/// `[{"fn": 1}, {"fn": 2}]` → `[1, 2]`: a scalar function's rows are one
/// value each.
fn scalar_values(body: &str) -> Result<String, ApiError> {
    let rows: Vec<Map<String, Value>> = serde_json::from_str(body).map_err(internal)?;
    let values: Vec<Value> = rows.into_iter().map(|r| r.into_iter().next().map_or(Value::Null, |(_, v)| v)).collect();
    Ok(Value::Array(values).to_string())
}

fn internal(e: serde_json::Error) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "DBAPI500", "Could not read the function's result")
        .details(e.to_string())
}

/// Query keys of the read grammar, never arguments of an unknown function.
const RESERVED: &[&str] = &["select", "order", "limit", "offset", "or", "and", "columns", "on_conflict"];

/// Splits a GET query into the function's arguments and the rest, which is
/// the read grammar, as PostgREST splits them: a key that is not reserved
/// and has no embed path, with a value not written as a filter, is an
/// argument (so `?a=1&c=3` calls `f(a, c)`, 404 `PGRST202` when there is
/// none, and `?total=gt.5` filters the result). A parameter given twice is
/// an array (`?ids=1&ids=2`); a json parameter's text is parsed as JSON
/// when it is JSON.
fn split_arguments(schema: &Schema, profile: &str, name: &str, query: &str) -> (Map<String, Value>, String) {
    let params: Vec<(&str, &ValueKind)> = schema
        .functions_named(profile, name)
        .iter()
        .flat_map(|f| f.params.iter().map(|p| (p.name.as_str(), &p.kind)))
        .filter(|(n, _)| !n.is_empty())
        .collect();
    let is_argument =
        |key: &str, value: &str| !key.contains('.') && !RESERVED.contains(&key) && !crate::grammar::has_operator(value);
    let mut named = Map::new();
    let mut rest: Vec<&str> = Vec::new();
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = form_urlencoded::parse(piece.as_bytes()).next().unwrap_or_default();
        if !is_argument(&key, &value) {
            rest.push(piece);
            continue;
        }
        let kind = params.iter().find(|(n, _)| *n == key).map(|(_, k)| *k);
        let is_array = matches!(kind, Some(ValueKind::Array(_)));
        let value = match kind {
            Some(ValueKind::Json) => serde_json::from_str(&value).unwrap_or(Value::String(value.into_owned())),
            // `{1,2}` is an array literal; other text is one element.
            _ if is_array && !value.starts_with('{') => Value::Array(vec![Value::String(value.into_owned())]),
            _ => Value::String(value.into_owned()),
        };
        match (named.get_mut(key.as_ref()), value) {
            (Some(Value::Array(items)), Value::Array(more)) if is_array => items.extend(more),
            // A scalar parameter given twice: the second wins, as in a
            // query string read into a map.
            (Some(first), value) => *first = value,
            (None, value) => {
                named.insert(key.into_owned(), value);
            }
        }
    }
    (named, rest.join("&"))
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "PGRST101", "For functions, only GET and POST verbs are allowed")
        .hint("Call the function with POST (any function) or GET (functions that do not write).")
}
