//! `POST`, `PATCH`, `PUT` and `DELETE` on `/{table}`: each request's
//! writes run in one transaction, so a failing row keeps nothing. What
//! every write shares is here (the request, the body, representations,
//! commit and the response); inserts and upserts are in `insert`, PATCH
//! and DELETE in `change`.

mod change;
mod insert;

pub use change::{delete, update};
pub use insert::{insert, upsert_one};

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use dbapi_crds::config::ApiSettings;

use crate::auth::Identity;
use crate::db::Tx;
use crate::db::position::Position;
use crate::db::replica::CONSISTENCY_HEADER;
use crate::grammar::{
    ApiQuery, CountPreference, Payload, Preferences, ReturnPreference, parse_payload, parse_prefer, parse_query,
};
use crate::plan::access::{Scope, Verb};
use crate::plan::{Page, PlannedCondition, ReadPlan, key_condition, plan_read};
use crate::schema::{Schema, Table};
use crate::sql::{render_count, render_read};

use super::AppState;
use super::negotiate::profile_from;
use super::negotiate::{Negotiated, Representation, negotiate};
use super::read::{content_range, header_str, single_object, without_nulls};
use crate::error::ApiError;

/// What every write handler starts from.
struct WriteRequest {
    /// The caller's role's view and rules ([`Scope::schema`] is what the
    /// write is planned against).
    scope: Scope,
    schema: Arc<Schema>,
    profile: String,
    query: ApiQuery,
    prefs: Preferences,
    representation: Representation,
    /// The representation and whether null members are stripped.
    negotiated: Negotiated,
    /// `api.pathPrefix` (or empty), which `Location` starts with.
    path_prefix: String,
    /// Whether the answer carries a `Dbapi-Consistency-Token`.
    gives_token: bool,
}

async fn prepare(
    state: &AppState,
    identity: &Identity,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<WriteRequest, ApiError> {
    let scope = state.scope(identity);
    let schema = scope.schema.clone();
    let profile = profile_from(&schema, headers, "content-profile")?.to_string();
    let negotiated = negotiate(header_str(headers, header::ACCEPT))?;
    let representation = negotiated.representation;
    let query = parse_query(uri.query().unwrap_or(""))?;
    crate::limits::check_query(&query, &scope.config.api)?;
    let prefs = parse_prefer(headers.get_all("prefer").iter().filter_map(|v| v.to_str().ok()))?;
    let path_prefix = state.config.api.prefix().to_string();
    let gives_token = state.gives_tokens();
    Ok(WriteRequest { scope, schema, profile, query, prefs, representation, negotiated, path_prefix, gives_token })
}

/// The body as JSON rows, within the configured size. An HTML form body
/// (`application/x-www-form-urlencoded`) is one row of strings, as in
/// PostgREST.
async fn read_payload(req: &WriteRequest, headers: &HeaderMap, body: Body) -> Result<Payload, ApiError> {
    let (bytes, form) = body_bytes(&req.scope.config.api, headers, body).await?;
    if let Some(row) = form {
        return Ok(Payload { rows: vec![row], is_array: false });
    }
    parse_payload(&bytes).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "PGRST102", e.message).details(e.details))
}

/// The raw body within `api.maxBodyBytes`, after checking its media type
/// (JSON, or an HTML form, which comes back decoded as strings).
pub(super) async fn body_bytes(
    api: &ApiSettings,
    headers: &HeaderMap,
    body: Body,
) -> Result<(axum::body::Bytes, Option<serde_json::Map<String, serde_json::Value>>), ApiError> {
    let mut form = false;
    if let Some(ct) = header_str(headers, header::CONTENT_TYPE) {
        let media = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        form = media == "application/x-www-form-urlencoded";
        if !form && media != "application/json" && !media.ends_with("+json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "PGRST107",
                format!("The Content-Type '{ct}' is not supported"),
            )
            .hint("Send the body as application/json."));
        }
    }
    let limit = api.max_body_bytes as usize;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "DBAPI413", "The request body is too large")
            .details(format!("at most {limit} bytes are accepted (api.maxBodyBytes)"))
            .hint("Split a bulk insert into several requests.")
    })?;
    let form = form.then(|| {
        form_urlencoded::parse(&bytes)
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect()
    });
    Ok((bytes, form))
}

/// A write whose statement's effect is kept and whose answer needs only
/// the number of rows: no representation to read back, no `tx=rollback`,
/// no singular response (undone unless one row), no strict
/// `max-affected` (checked before changing anything). A PATCH or DELETE
/// like that is its one UPDATE or DELETE, in autocommit; the drivers count
/// matched rows (MySQL with CLIENT_FOUND_ROWS, as sqlx connects).
fn is_plain_write(req: &WriteRequest) -> bool {
    req.prefs.return_ != Some(ReturnPreference::Representation)
        && req.prefs.tx_rollback != Some(true)
        && req.representation != Representation::SingleObject
        && !(req.prefs.max_affected.is_some() && req.prefs.strict == Some(true))
}

/// What a write produced, before commit or rollback.
struct Written {
    status: StatusCode,
    rows: u64,
    body: Option<String>,
    location: Option<String>,
}

impl Written {
    fn changed(rows: u64, body: Option<String>) -> Written {
        let status = if body.is_some() { StatusCode::OK } else { StatusCode::NO_CONTENT };
        Written { status, rows, body, location: None }
    }
}

/// The written rows as the response body (`return=representation`), read
/// back by their keys with the request's `select=`.
async fn represent(
    req: &WriteRequest,
    table_name: &str,
    table: &Table,
    keys: &[Vec<Option<String>>],
    tx: &mut Tx,
) -> Result<Option<String>, ApiError> {
    if req.prefs.return_ != Some(ReturnPreference::Representation) {
        return Ok(None);
    }
    let keyed = req.scope.full_table(table).unwrap_or(table);
    // Read back in chunks: a key list must stay below every engine's limit
    // of bound parameters.
    let mut parts: Vec<String> = Vec::new();
    let mut rows = 0u64;
    for chunk in keys.chunks(KEYS_PER_READ) {
        let mut plan = representation_plan(req, table_name, table)?;
        plan.conditions.push(key_condition(keyed, req.schema.engine, chunk));
        let mut statement = render_read(&plan, req.schema.engine, false);
        statement.one_off = true;
        let output = tx.fetch_read(&statement).await?;
        rows += output.page_rows.max(0) as u64;
        let inner = output.body.trim().trim_start_matches('[').trim_end_matches(']').trim();
        if !inner.is_empty() {
            parts.push(inner.to_string());
        }
    }
    as_answer(req, format!("[{}]", parts.join(",")), rows).map(Some)
}

/// The representation of written rows is shaped like a read: `select=` and
/// `order=` apply to it, and the filters, limits and offsets of its
/// embedded resources (`items.qty=gt.1`); the top level is the written
/// rows, as the role reads them (GET's columns and rows).
fn representation_plan<'r>(req: &'r WriteRequest, table_name: &str, table: &Table) -> Result<ReadPlan<'r>, ApiError> {
    let embedded = |path: &Vec<String>| !path.is_empty();
    let select_only = ApiQuery {
        select: req.query.select.clone(),
        order: req.query.order.clone(),
        conditions: req.query.conditions.iter().filter(|(p, _)| embedded(p)).cloned().collect(),
        limits: req.query.limits.iter().filter(|(p, _)| embedded(p)).cloned().collect(),
        offsets: req.query.offsets.iter().filter(|(p, _)| embedded(p)).cloned().collect(),
        ..ApiQuery::default()
    };
    req.scope.check_verb(table, Verb::Get)?;
    let mut plan = plan_read(&req.schema, &req.profile, table_name, &select_only, Page { offset: 0, limit: None })?;
    req.scope.restrict(&mut plan, Some(Verb::Get))?;
    Ok(plan)
}

/// For a table that no key identifies (see [`Table::key_columns`]): the
/// plan of its representation for the write's own `RETURNING`
/// ([`Returning::Rows`](crate::sql::Returning)), its top level named
/// `alias` (the statement names the table so); `None` when no
/// representation is asked for. Such rows come back in the order written
/// (`order=` cannot sort them), and the role must read the table whole:
/// its read filter could not be checked on them.
fn returned_rows_plan<'r>(
    req: &'r WriteRequest,
    table_name: &str,
    table: &Table,
    alias: &str,
) -> Result<Option<ReadPlan<'r>>, ApiError> {
    if req.prefs.return_ != Some(ReturnPreference::Representation) {
        return Ok(None);
    }
    let mut plan = representation_plan(req, table_name, table)?;
    if !plan.conditions.is_empty() {
        return Err(unreturnable(
            table,
            format!(
                "the caller's role reads {} through a row filter, which rows without a primary key cannot be checked against",
                table.name
            ),
        ));
    }
    name_target(&mut plan, alias)?;
    Ok(Some(plan))
}

/// Names the top level of `plan` `alias`, which no embedded level may have.
fn name_target(plan: &mut ReadPlan, alias: &str) -> Result<(), ApiError> {
    if plan.embeds_alias(alias) {
        return Err(unreturnable(
            plan.table,
            format!("the statement names {alias} as the table and as one of its embedded resources"),
        ));
    }
    plan.alias = alias.to_string();
    Ok(())
}

fn unreturnable(table: &Table, why: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "DBAPI103",
        format!("return=representation is not available on {}", table.name),
    )
    .details(why)
    .hint("Use return=minimal and read the rows with GET, or add a primary key.")
}

/// The representation of rows a write's `RETURNING` gave as JSON objects.
fn represent_returned(req: &WriteRequest, rows: Vec<Vec<Option<String>>>) -> Result<String, ApiError> {
    let count = rows.len() as u64;
    let objects: Vec<String> = rows.into_iter().filter_map(|row| row.into_iter().next().flatten()).collect();
    as_answer(req, format!("[{}]", objects.join(",")), count)
}

/// The rows' array as the client asked for it (one object, singular).
fn as_answer(req: &WriteRequest, body: String, rows: u64) -> Result<String, ApiError> {
    Ok(match req.representation {
        Representation::SingleObject => single_object(body, rows)?,
        _ => body,
    })
}

/// Keys read back per statement (composite keys take one parameter per
/// column).
const KEYS_PER_READ: usize = 5_000;

/// Whether a plain write to `table` can check its own rows against a row
/// filter, in its statement ([`crate::sql::Returning::CheckedKeys`]): on
/// PostgreSQL, into a table. Elsewhere the check is a read after the
/// write, in its transaction (a view's INSTEAD OF trigger may give back no
/// rows to check).
fn checks_in_statement(req: &WriteRequest, table: &Table) -> bool {
    req.schema.engine == crate::schema::Engine::Postgres && !table.is_view
}

/// The role's row filter for `verb` on `table`, when one applies: then
/// the write's rows are checked against it before they are kept. Planned
/// once a write, and handed to [`row_filter_plan`].
fn row_filter<'s>(req: &'s WriteRequest, table: &Table, verb: Verb) -> Result<Option<PlannedCondition<'s>>, ApiError> {
    let filter = req.scope.row_condition(table, verb)?;
    if filter.is_some() && !table.has_key_columns(req.schema.engine) {
        return Err(ApiError::from(crate::plan::PlanError::PermissionDenied {
            kind: if table.is_view { "view" } else { "table" },
            name: table.name.clone(),
            details: format!(
                "a row filter applies to {verb} on {}, and without a primary key (or a row identity, which MySQL tables and views lack) the written rows cannot be checked",
                table.name,
                verb = verb.name()
            ),
        }));
    }
    Ok(filter)
}

/// Refuses (403 `42501`, the transaction is rolled back) when one of the
/// rows `which` selects on the full table falls outside the role's row
/// filter for `verb`: after a write, the rows it wrote; before an upsert,
/// the existing rows it would replace.
async fn refuse_rows_outside<'s>(
    req: &'s WriteRequest,
    table: &Table,
    verb: Verb,
    which: impl Fn(&'s Table) -> PlannedCondition<'s>,
    tx: &mut Tx,
) -> Result<(), ApiError> {
    let Some(filter) = req.scope.row_condition(table, verb)? else { return Ok(()) };
    let mut rows = row_filter_plan(req, table, filter, &table.name)?;
    let filter = rows.conditions.pop().expect("the plan ends with the filter");
    rows.conditions.push(which(req.scope.full_table(table).expect("checked tables are in the schema")));
    let engine = req.schema.engine;
    let total = tx.fetch_read_count(&render_count(&rows, engine, false)).await?;
    rows.conditions.push(filter);
    let inside = tx.fetch_read_count(&render_count(&rows, engine, false)).await?;
    if inside < total {
        return Err(outside_row_filter(table, verb, &format!("{} of the rows", total - inside)));
    }
    Ok(())
}

/// The rows of the full table a write's row check reads, with the role's
/// `filter` ([`row_filter`]) on them, named `alias` (as the write statement
/// names its table): what [`crate::sql::Returning::CheckedKeys`] checks.
fn row_filter_plan<'s>(
    req: &'s WriteRequest,
    table: &Table,
    filter: PlannedCondition<'s>,
    alias: &str,
) -> Result<ReadPlan<'s>, ApiError> {
    let full = req.scope.full_table(table).unwrap_or(table);
    let all = Page { offset: 0, limit: None };
    let mut rows = plan_read(req.scope.full(), &full.schema, &full.name, &ApiQuery::default(), all)?;
    name_target(&mut rows, alias)?;
    rows.conditions.push(filter);
    Ok(rows)
}

/// A failed statement as the client is told: a row that a
/// [`crate::sql::Returning::CheckedKeys`] statement found outside the
/// filter is 403, like one found by [`refuse_rows_outside`].
fn checked_write_error(e: crate::db::DbError, table: &Table, verb: Verb) -> ApiError {
    match e {
        crate::db::DbError::Rejected { code, message, .. }
            if code == "22P02" && message.contains(crate::sql::OUTSIDE_ROW_FILTER) =>
        {
            outside_row_filter(table, verb, "a row")
        }
        other => other.into(),
    }
}

/// A write refused because `which` of its rows would leave the role's row
/// filter (PostgREST's answer when Row Level Security refuses a row).
fn outside_row_filter(table: &Table, verb: Verb, which: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "42501",
        format!("new row violates row-level security policy for table \"{}\"", table.name),
    )
    .details(format!(
        "{which} this {} writes would fall outside the caller's row filter; nothing was written",
        verb.name()
    ))
}

/// A JSON value as the text a key column returns.
fn json_as_key(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Commits (or, with `Prefer: tx=rollback` or on error, rolls back) and
/// shapes the response.
async fn finish(
    tx: Tx,
    req: &WriteRequest,
    outcome: Result<Written, ApiError>,
    method: Method,
) -> Result<Response, ApiError> {
    let prefs = &req.prefs;
    // A singular response promises exactly one row: anything else is
    // refused and undone, as in PostgREST.
    let outcome = outcome.and_then(|w| {
        if req.representation == Representation::SingleObject && w.rows != 1 {
            return Err(ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "PGRST116",
                "Cannot coerce the result to a single JSON object",
            )
            .details(format!("The result contains {} rows", w.rows)));
        }
        Ok(w)
    });
    let written = match outcome {
        Ok(w) => w,
        Err(e) => {
            let _ = tx.rollback().await;
            return Err(e);
        }
    };
    let token = tx.finish_with_token(prefs.tx_rollback != Some(true), req.gives_token).await?;
    respond(req, written, token, method)
}

/// The answer to a write that is done (committed, or rolled back as
/// `tx=rollback` asked): its status, body and PostgREST's headers.
fn respond(
    req: &WriteRequest,
    written: Written,
    token: Option<Position>,
    method: Method,
) -> Result<Response, ApiError> {
    let prefs = &req.prefs;
    let body = match written.body {
        Some(body) if req.negotiated.strip_nulls => Some(without_nulls(&body)?),
        other => other,
    };
    let has_body = body.is_some();
    let mut response = match body {
        Some(body) => (written.status, body).into_response(),
        None => written.status.into_response(),
    };
    response.extensions_mut().insert(crate::audit::RowsAffected(written.rows));
    let h = response.headers_mut();
    if has_body {
        // A write has no CSV or NDJSON form: its rows come back as JSON.
        let negotiated = match req.negotiated.representation {
            r if r.is_row_by_row() => Negotiated { representation: Representation::Json, strip_nulls: false },
            _ => req.negotiated,
        };
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(negotiated.content_type()));
    }
    if let Some(range) = write_content_range(&method, written.rows, prefs.count) {
        h.insert(header::CONTENT_RANGE, range.parse().expect("digits are a valid header"));
    }
    if let Some(location) = written.location
        && let Ok(v) = format!("{}{location}", req.path_prefix).parse()
    {
        h.insert(header::LOCATION, v);
    }
    let applied = Preferences {
        count: prefs.count,
        return_: prefs.return_,
        resolution: prefs.resolution,
        missing_default: prefs.missing_default,
        tx_rollback: prefs.tx_rollback,
        max_affected: prefs.max_affected.filter(|_| prefs.strict == Some(true)),
        strict: prefs.strict,
        ..Preferences::default()
    };
    if let Some(v) = applied.applied() {
        h.insert("preference-applied", v.parse().expect("preference tokens are valid header text"));
    }
    with_token(&mut response, token);
    Ok(response)
}

/// Adds a committed write's consistency token (the primary's position) to
/// its answer: a read sending it back sees the write (read-your-writes).
pub(super) fn with_token(response: &mut Response, token: Option<Position>) {
    if let Some(value) = token.and_then(|t| HeaderValue::try_from(t.to_string()).ok()) {
        response.headers_mut().insert(CONSISTENCY_HEADER, value);
    }
}

/// `Content-Range` of a write, as PostgREST sends it: the total only with
/// `count=exact` (or `estimated`, which is exact here), else `*`; PATCH
/// names the range of changed rows (`0-1/*`), POST and DELETE do not
/// (`*/*`), and PUT has none.
fn write_content_range(method: &Method, rows: u64, count: Option<CountPreference>) -> Option<String> {
    let counted = matches!(count, Some(CountPreference::Exact | CountPreference::Estimated));
    let total = counted.then_some(rows as i64);
    if *method == Method::PUT {
        None
    } else if *method == Method::PATCH {
        Some(content_range(0, rows, total))
    } else {
        Some(format!("*/{}", total.map_or_else(|| "*".to_string(), |t| t.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_of_writes() {
        let exact = Some(CountPreference::Exact);
        assert_eq!(write_content_range(&Method::POST, 3, None).as_deref(), Some("*/*"));
        assert_eq!(write_content_range(&Method::POST, 3, exact).as_deref(), Some("*/3"));
        assert_eq!(write_content_range(&Method::POST, 3, Some(CountPreference::Planned)).as_deref(), Some("*/*"));
        assert_eq!(write_content_range(&Method::DELETE, 2, exact).as_deref(), Some("*/2"));
        assert_eq!(write_content_range(&Method::PATCH, 2, None).as_deref(), Some("0-1/*"));
        assert_eq!(write_content_range(&Method::PATCH, 2, exact).as_deref(), Some("0-1/2"));
        assert_eq!(write_content_range(&Method::PATCH, 0, None).as_deref(), Some("*/*"));
        assert_eq!(write_content_range(&Method::PATCH, 0, exact).as_deref(), Some("*/0"));
        assert_eq!(write_content_range(&Method::PUT, 1, exact), None);
    }
}
