//! `POST`, `PATCH`, `PUT` and `DELETE` on `/{table}`: each request's
//! writes run in one transaction, so a failing row keeps nothing.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::db::Tx;
use crate::grammar::{
    ApiQuery, Payload, Preferences, Resolution, ReturnPreference, parse_payload, parse_prefer, parse_query,
};
use crate::plan::{
    InsertPlan, Missing, Page, ReadPlan, check_put, key_condition, plan_delete, plan_insert, plan_read, plan_update,
};
use crate::schema::{Schema, Table};
use crate::sql::{MAX_PARAMS, render_count, render_delete, render_insert, render_keys, render_read, render_update};

use super::AppState;
use super::error::ApiError;
use super::negotiate::{Representation, negotiate};
use super::read::{header_str, profile_from, single_object};

/// What every write handler starts from.
struct WriteRequest {
    schema: Arc<Schema>,
    profile: String,
    query: ApiQuery,
    prefs: Preferences,
    representation: Representation,
}

async fn prepare(state: &AppState, uri: &Uri, headers: &HeaderMap) -> Result<WriteRequest, ApiError> {
    let schema = state.schema();
    let profile = profile_from(&schema, headers, "content-profile")?.to_string();
    let representation = negotiate(header_str(headers, header::ACCEPT))?.representation;
    let query = parse_query(uri.query().unwrap_or(""))?;
    let prefs = parse_prefer(headers.get_all("prefer").iter().filter_map(|v| v.to_str().ok()))?;
    Ok(WriteRequest { schema, profile, query, prefs, representation })
}

/// The body as JSON rows, within the configured size. An HTML form body
/// (`application/x-www-form-urlencoded`) is one row of strings, as in
/// PostgREST.
async fn read_payload(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Payload, ApiError> {
    let (bytes, form) = body_bytes(state, headers, body).await?;
    if let Some(row) = form {
        return Ok(Payload { rows: vec![row], is_array: false });
    }
    parse_payload(&bytes).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "PGRST102", e.message).details(e.details))
}

/// The raw body within `api.maxBodyBytes`, after checking its media type
/// (JSON, or an HTML form, which comes back decoded as strings).
pub(super) async fn body_bytes(
    state: &AppState,
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
    let limit = state.config.api.max_body_bytes as usize;
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

pub async fn insert(
    State(state): State<Arc<AppState>>,
    Path(table): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req = prepare(&state, &uri, &headers).await?;
    let payload = read_payload(&state, &headers, body).await?;
    let missing = if req.prefs.missing_default == Some(true) { Missing::Default } else { Missing::Null };
    let resolution = req.prefs.resolution.map(|r| r == Resolution::MergeDuplicates);
    let plan = plan_insert(&req.schema, &req.profile, &table, &req.query, &payload, missing, resolution)?;
    let mut tx = if is_one_statement(&req, &plan) { state.db.autocommit().await? } else { state.db.begin().await? };
    let outcome = run_insert(&req, &plan, &mut tx, payload.is_array).await;
    finish(tx, &req, outcome, Method::POST, &table).await
}

/// Whether an insert runs as exactly one statement whose effect is kept
/// whatever the outcome: then it needs no transaction around it. Not so
/// beyond [`is_plain_write`], with MySQL's upsert pre-check or rows that
/// take several statements.
fn is_one_statement(req: &WriteRequest, plan: &InsertPlan) -> bool {
    let per_statement = MAX_PARAMS / plan.columns.len().max(1);
    is_plain_write(req)
        && !(req.schema.engine == crate::schema::Engine::MySql && plan.conflict.is_some())
        && plan.rows.len() <= per_statement
        && insert_groups(plan).len() == 1
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

pub async fn upsert_one(
    State(state): State<Arc<AppState>>,
    Path(table): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req = prepare(&state, &uri, &headers).await?;
    let payload = read_payload(&state, &headers, body).await?;
    let target = crate::plan::find_table(&req.schema, &req.profile, &table)?;
    check_put(target, &req.query, &payload)?;
    let plan = plan_insert(&req.schema, &req.profile, &table, &req.query, &payload, Missing::Null, Some(true))?;
    let mut tx = state.db.begin().await?;
    let outcome = run_insert(&req, &plan, &mut tx, false).await.map(|mut w| {
        // PUT answers like an update: 200 with the row, else 204.
        w.status = if w.body.is_some() { StatusCode::OK } else { StatusCode::NO_CONTENT };
        w.location = None;
        w
    });
    finish(tx, &req, outcome, Method::PUT, &table).await
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Path(table): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req = prepare(&state, &uri, &headers).await?;
    let payload = read_payload(&state, &headers, body).await?;
    let plan = plan_update(&req.schema, &req.profile, &table, &req.query, &payload)?;
    refuse_unfiltered(&state, &plan.target, "PATCH")?;
    if is_plain_write(&req) {
        return run_plain(&state, &req, &render_update(&plan, req.schema.engine), Method::PATCH, &table).await;
    }
    let mut tx = state.db.begin().await?;
    let outcome = async {
        let engine = req.schema.engine;
        let keys = locked_keys(&mut tx, &plan.target, &req.prefs, engine).await?;
        let affected = tx.execute(&render_update(&plan, engine)).await?;
        let count = keys.as_ref().map_or(affected, |k| k.len() as u64);
        // Keys the update itself changed are read back under their new value.
        let keys = keys.map(|keys| {
            let pk = &plan.target.table.primary_key;
            keys.into_iter()
                .map(|mut key| {
                    for (i, name) in pk.iter().enumerate() {
                        if let Some((_, v)) = plan.set.iter().find(|(c, _)| &c.name == name) {
                            key[i] = json_as_key(v);
                        }
                    }
                    key
                })
                .collect::<Vec<_>>()
        });
        let body = represent(&req, &table, plan.target.table, keys.as_deref(), &mut tx).await?;
        Ok(Written::changed(count, body))
    }
    .await;
    finish(tx, &req, outcome, Method::PATCH, &table).await
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(table): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let req = prepare(&state, &uri, &headers).await?;
    let plan = plan_delete(&req.schema, &req.profile, &table, &req.query)?;
    refuse_unfiltered(&state, &plan.target, "DELETE")?;
    if is_plain_write(&req) {
        return run_plain(&state, &req, &render_delete(&plan, req.schema.engine), Method::DELETE, &table).await;
    }
    let mut tx = state.db.begin().await?;
    let outcome = async {
        let engine = req.schema.engine;
        let keys = locked_keys(&mut tx, &plan.target, &req.prefs, engine).await?;
        // The representation of deleted rows is read before they go.
        let body = represent(&req, &table, plan.target.table, keys.as_deref(), &mut tx).await?;
        let affected = tx.execute(&render_delete(&plan, engine)).await?;
        Ok(Written::changed(keys.as_ref().map_or(affected, |k| k.len() as u64), body))
    }
    .await;
    finish(tx, &req, outcome, Method::DELETE, &table).await
}

/// A PATCH or DELETE that is its one statement ([`is_plain_write`]), in
/// autocommit; the answer is the number of matched rows.
async fn run_plain(
    state: &AppState,
    req: &WriteRequest,
    statement: &crate::sql::Statement,
    method: Method,
    table: &str,
) -> Result<Response, ApiError> {
    let mut tx = state.db.autocommit().await?;
    let outcome = tx.execute(statement).await.map(|rows| Written::changed(rows, None)).map_err(ApiError::from);
    finish(tx, req, outcome, method, table).await
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

async fn run_insert(
    req: &WriteRequest,
    plan: &InsertPlan<'_>,
    tx: &mut Tx,
    is_array: bool,
) -> Result<Written, ApiError> {
    let table = plan.table;
    if req.schema.engine == crate::schema::Engine::MySql {
        refuse_conflicts_off_target(req, plan, tx).await?;
    }
    let has_key = !table.primary_key.is_empty();
    let mut keys: Vec<Vec<Option<String>>> = Vec::with_capacity(plan.rows.len());
    let mut rows_written = 0u64;
    for (columns, rows) in insert_groups(plan) {
        let per_statement = (MAX_PARAMS / columns.len().max(1)).max(1);
        for chunk in rows.chunks(per_statement) {
            let statement = render_insert(plan, req.schema.engine, chunk, &columns, has_key);
            if has_key {
                let returned = tx.fetch_text_rows(&statement).await?;
                rows_written += returned.len() as u64;
                keys.extend(returned);
            } else {
                rows_written += tx.execute(&statement).await?;
            }
        }
    }
    let wants_body = req.prefs.return_ == Some(ReturnPreference::Representation);
    let body = if wants_body {
        represent(req, &table.name, table, has_key.then_some(keys.as_slice()), tx).await?
    } else {
        None
    };
    let location = match (&keys[..], is_array, has_key) {
        ([key], false, true) => Some(location(table, key)),
        _ => None,
    };
    Ok(Written { status: StatusCode::CREATED, rows: rows_written, body, location })
}

/// MySQL's upsert acts on whichever unique key conflicts, not the one
/// named: a row that would collide with another row on a different unique
/// key would update (or silently skip) that row. Such rows are refused with
/// 409, as PostgreSQL and SQLite refuse them.
async fn refuse_conflicts_off_target(req: &WriteRequest, plan: &InsertPlan<'_>, tx: &mut Tx) -> Result<(), ApiError> {
    use crate::grammar::{Condition, Field, Filter, Operation, Operator, SelectItem};
    let Some(conflict) = &plan.conflict else { return Ok(()) };
    let table = plan.table;
    let target: Vec<String> = conflict.columns.iter().map(|c| c.name.clone()).collect();
    let mut others: Vec<&Vec<String>> = table.unique.iter().filter(|u| **u != target).collect();
    if !table.primary_key.is_empty() && table.primary_key != target {
        others.push(&table.primary_key);
    }
    let index_of = |name: &str| plan.columns.iter().position(|c| c.name == name);
    for row in &plan.rows {
        for key in &others {
            let values: Option<Vec<(String, String)>> = key
                .iter()
                .map(|k| {
                    let v = row[index_of(k)?].as_ref()?;
                    json_as_key(v).map(|s| (k.clone(), s))
                })
                .collect();
            let Some(values) = values else { continue };
            let query = ApiQuery {
                select: Some(
                    target
                        .iter()
                        .map(|t| SelectItem::Column { field: Field::plain(t), alias: None, cast: None })
                        .collect(),
                ),
                conditions: values
                    .iter()
                    .map(|(k, v)| {
                        let operation = Operation::Compare { op: Operator::Eq, value: v.clone() };
                        (vec![], Condition::Filter(Filter { field: Field::plain(k), negated: false, operation }))
                    })
                    .collect(),
                ..ApiQuery::default()
            };
            let found = plan_read(&req.schema, &req.profile, &table.name, &query, Page { offset: 0, limit: Some(1) })?;
            let existing = tx.fetch_read(&render_read(&found, req.schema.engine, false)).await?;
            let Ok(serde_json::Value::Array(rows)) = serde_json::from_str::<serde_json::Value>(&existing.body) else {
                continue;
            };
            let Some(existing) = rows.first() else { continue };
            let same_target = target.iter().all(|t| {
                let ours = index_of(t).and_then(|i| row[i].as_ref()).and_then(json_as_key);
                ours == json_as_key(&existing[t])
            });
            if !same_target {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "23505",
                    "duplicate key value violates a unique constraint",
                )
                .details(format!(
                    "({}) already belongs to another row than the one on_conflict=({}) names",
                    key.join(", "),
                    target.join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// Rows grouped by which columns they set: with `missing=default`, absent
/// keys must be left out of the INSERT so the database applies defaults
/// (SQLite has no DEFAULT inside VALUES); otherwise one group of all.
fn insert_groups(plan: &InsertPlan) -> Vec<(Vec<usize>, Vec<usize>)> {
    let all: Vec<usize> = (0..plan.columns.len()).collect();
    if plan.missing == Missing::Null {
        return vec![(all, (0..plan.rows.len()).collect())];
    }
    let mut groups: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for (r, row) in plan.rows.iter().enumerate() {
        let present: Vec<usize> = all.iter().copied().filter(|c| row[*c].is_some()).collect();
        match groups.iter_mut().find(|(cols, _)| *cols == present) {
            Some((_, rows)) => rows.push(r),
            None => groups.push((present, vec![r])),
        }
    }
    groups
}

/// The primary keys of the rows a PATCH or DELETE will change, locked;
/// `None` for a table without a primary key. Enforces `max-affected`.
async fn locked_keys(
    tx: &mut Tx,
    target: &ReadPlan<'_>,
    prefs: &Preferences,
    engine: crate::schema::Engine,
) -> Result<Option<Vec<Vec<Option<String>>>>, ApiError> {
    let (keys, count) = if target.table.primary_key.is_empty() {
        let count = match prefs.max_affected {
            Some(_) => tx.fetch_read_count(&render_count(target, engine, false)).await?,
            None => 0,
        };
        (None, count)
    } else {
        let keys = tx.fetch_text_rows(&render_keys(target, engine)).await?;
        let count = keys.len() as u64;
        (Some(keys), count)
    };
    if let Some(max) = prefs.max_affected
        && prefs.strict == Some(true)
        && count > max
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "PGRST124",
            "Query result exceeds max-affected preference constraint",
        )
        .details(format!("The query would affect {count} rows, more than max-affected={max}")));
    }
    Ok(keys)
}

/// The written rows as the response body (`return=representation`), read
/// back by primary key with the request's `select=`.
async fn represent(
    req: &WriteRequest,
    table_name: &str,
    table: &Table,
    keys: Option<&[Vec<Option<String>>]>,
    tx: &mut Tx,
) -> Result<Option<String>, ApiError> {
    if req.prefs.return_ != Some(ReturnPreference::Representation) {
        return Ok(None);
    }
    let Some(keys) = keys else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "DBAPI103",
            format!("return=representation needs a primary key on {}", table.name),
        )
        .hint("Use return=minimal, or add a primary key to the table."));
    };
    let select_only = ApiQuery { select: req.query.select.clone(), ..ApiQuery::default() };
    // Read back in chunks: a key list must stay below every engine's limit
    // of bound parameters.
    let mut parts: Vec<String> = Vec::new();
    let mut rows = 0u64;
    for chunk in keys.chunks(KEYS_PER_READ) {
        let mut plan = plan_read(&req.schema, &req.profile, table_name, &select_only, Page { offset: 0, limit: None })?;
        plan.conditions.push(key_condition(table, chunk));
        let mut statement = render_read(&plan, req.schema.engine, false);
        statement.one_off = true;
        let output = tx.fetch_read(&statement).await?;
        rows += output.page_rows.max(0) as u64;
        let inner = output.body.trim().trim_start_matches('[').trim_end_matches(']').trim();
        if !inner.is_empty() {
            parts.push(inner.to_string());
        }
    }
    let body = format!("[{}]", parts.join(","));
    Ok(Some(match req.representation {
        Representation::SingleObject => single_object(body, rows)?,
        _ => body,
    }))
}

/// Keys read back per statement (composite keys take one parameter per
/// column).
const KEYS_PER_READ: usize = 5_000;

fn refuse_unfiltered(state: &AppState, target: &ReadPlan, verb: &str) -> Result<(), ApiError> {
    if target.conditions.is_empty() && !state.config.api.allows_unfiltered_write(&target.table.name) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "DBAPI104",
            format!("{verb} without filters would change every row of {}", target.table.name),
        )
        .hint("Add a filter such as ?id=eq.1, or list the table in api.allowUnfilteredWrites."));
    }
    Ok(())
}

/// `Location: /table?pk=eq.value` for a single inserted row.
fn location(table: &Table, key: &[Option<String>]) -> String {
    let filters: Vec<String> = table
        .primary_key
        .iter()
        .zip(key)
        .map(|(name, value)| {
            let value = value.as_deref().unwrap_or("");
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            format!("{}=eq.{}", enc(name), enc(value))
        })
        .collect();
    format!("/{}?{}", form_urlencoded::byte_serialize(table.name.as_bytes()).collect::<String>(), filters.join("&"))
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
    table: &str,
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
            tracing::info!(target: "audit", %method, table, status = e.status.as_u16(), code = %e.code, "write refused");
            return Err(e);
        }
    };
    if prefs.tx_rollback == Some(true) {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    tracing::info!(target: "audit", %method, table, status = written.status.as_u16(), rows = written.rows, "write");
    let has_body = written.body.is_some();
    let mut response = match written.body {
        Some(body) => (written.status, body).into_response(),
        None => written.status.into_response(),
    };
    let h = response.headers_mut();
    if has_body {
        let content_type = match req.representation {
            Representation::SingleObject => "application/vnd.pgrst.object+json; charset=utf-8",
            _ => "application/json; charset=utf-8",
        };
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    h.insert(header::CONTENT_RANGE, format!("*/{}", written.rows).parse().expect("digits are a valid header"));
    if let Some(location) = written.location
        && let Ok(v) = location.parse()
    {
        h.insert(header::LOCATION, v);
    }
    let applied = Preferences {
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
    Ok(response)
}
