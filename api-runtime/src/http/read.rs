//! `GET /{table}`: the read pipeline from request to response.

use std::future::Future;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use dbapi_crds::config::ApiSettings;

use crate::auth::Identity;
use crate::cache::answer::CacheOutcome;
use crate::db::ReadOutput;
use crate::db::Statement;
use crate::db::circuit::CircuitOpen;
use crate::db::replica::Reads;
use crate::grammar::{
    ApiQuery, CountPreference, Preferences, RangeHeader, parse_prefer, parse_query, parse_range_header,
};
use crate::plan::access::Verb;
use crate::plan::{Page, ReadPlan, find_table, plan_read};
use crate::schema::Engine;
use crate::sql::{render_count, render_read, render_read_in_zone};

use super::AppState;
use super::extract::Path;
use super::formats::RowWriter;
use super::negotiate::{Negotiated, Representation, negotiate, profile, strip_nulls};
use super::zone::{Zoned, in_zone};
use crate::error::ApiError;

pub async fn read(
    State(state): State<Arc<AppState>>,
    Extension(identity): Extension<Arc<Identity>>,
    Path(table): Path<String>,
    // The request itself, not its parts one by one: the `HeaderMap` and
    // `Uri` extractors clone them.
    request: Request,
) -> Result<Response, ApiError> {
    let (method, uri, headers) = (request.method(), request.uri(), request.headers());
    let circuit_open = request.extensions().get::<CircuitOpen>().copied();
    let scope = state.scope(&identity);
    let request_text = crate::cache::key::request_text(&identity, uri.path(), uri.query().unwrap_or(""), headers);
    let answer = Answer { state: &state, identity: &identity, headers, request_text: &request_text };
    // A GET planned before does not come here: the gate answers it
    // (`PlannedGet`).
    let verb = if method == Method::HEAD { Verb::Head } else { Verb::Get };
    let schema = &scope.schema;
    let profile = profile(schema, headers)?;
    let found = find_table(schema, profile, &table)?;
    scope.check_verb(found, verb)?;
    let handlers = schema.handlers_of(found);
    // A role's `maxRows` may lift the cap only of an answer streamed row by
    // row, which is never held whole.
    let max_rows = |r: Representation| {
        crate::limits::max_rows(&scope.config, identity.role.as_deref(), verb == Verb::Get && r.is_row_by_row())
    };
    let offered = handlers.iter().map(|h| h.media_type.as_str());
    let ReadRequest { query, prefs, negotiated, page, handler } =
        ReadRequest::parse(&scope.config.api, max_rows, headers, uri.query().unwrap_or(""), offered)?;
    let mut plan = plan_read(schema, profile, &table, &query, page)?;
    scope.restrict(&mut plan, Some(verb))?;
    plan.cap_embeds(scope.config.api.max_rows);
    let reads = state.reads(headers)?;
    // The branches off the plain read are boxed where they are awaited: a
    // handler's future is as large as its largest branch, and copied whole
    // each time it is moved or boxed (bench/README.md).
    if let Some(CircuitOpen { retry_after }) = circuit_open {
        return Box::pin(answer.stale(retry_after)).await;
    }
    if let Some(handler) = handler.and_then(|m| handlers.iter().find(|h| h.media_type == m)) {
        // Not cached: the handler may depend on the request (its headers).
        let asked = super::media::Asked { method, path: uri.path(), headers };
        return Box::pin(async {
            let tx = reads.begin_read_only().await?;
            let statement = crate::sql::render_handler(&plan, schema.engine, handler);
            super::media::answer(tx, &statement, &handler.media_type, asked).await
        })
        .await;
    }
    if verb == Verb::Get && negotiated.representation.is_row_by_row() {
        let (engine, zone) = (schema.engine, prefs.timezone.as_deref());
        let mut response = Box::pin(super::stream::streamed_read(reads, engine, &plan, zone, negotiated)).await?;
        let applied = Preferences { timezone: prefs.timezone.clone(), ..Default::default() };
        if let Some(applied) = applied.applied() {
            let value = applied.parse().expect("preference tokens are valid header text");
            response.headers_mut().insert("preference-applied", value);
        }
        if state.cache.is_some() {
            crate::metrics::global().cache_request(CacheOutcome::Bypass.metric_label());
            CacheOutcome::Bypass.label(response.headers_mut());
        }
        return Ok(response);
    }
    let cached = state.cache.is_some();
    if let Some(planned) = PlannedRead::of(&plan, schema.engine, &prefs, negotiated, page, cached) {
        let planned = match verb {
            Verb::Get => state.planned_reads.insert(&scope, request_text.clone(), planned),
            _ => Arc::new(planned),
        };
        // The reads' route and the circuit were settled above.
        let load = |reads| run_planned(reads, &planned);
        return Box::pin(answer.of(reads, &planned.dependencies, &planned.table, load)).await;
    }
    let dependencies = crate::cache::key::dependencies(&plan);
    let read = |reads| run_read(&state, reads, &scope.config.api, &plan, prefs, negotiated, page);
    Box::pin(answer.of(reads, &dependencies, &plan.table.name, read)).await
}

/// A GET whose exact request (`cache::key::request_text`) was planned
/// before, found by the gate before the router: the router's matching,
/// its path parameters and the handler's extractors are a sixth of a cache
/// hit's instructions (bench/README.md, "2026-12-07, seventh"), and the
/// request text names the table already. Only the read handler files
/// plans, and only GETs (HEAD may be granted apart, and is rare), so a
/// request found here is one the router sends to it.
pub(super) struct PlannedGet {
    identity: Arc<Identity>,
    request_text: String,
    planned: Arc<PlannedRead>,
}

impl PlannedGet {
    /// The plan kept for `request`, if it is a GET seen before under the
    /// schema and document in force.
    pub(super) fn find(state: &AppState, request: &Request) -> Option<PlannedGet> {
        if request.method() != Method::GET {
            return None;
        }
        let identity = request.extensions().get::<Arc<Identity>>()?.clone();
        let uri = request.uri();
        let request_text =
            crate::cache::key::request_text(&identity, uri.path(), uri.query().unwrap_or(""), request.headers());
        let planned = state.planned_reads.get(&state.scope(&identity), &request_text)?;
        Some(PlannedGet { identity, request_text, planned })
    }

    /// The answer, as the read handler would give it.
    pub(super) async fn answer(self, state: &AppState, request: Request) -> Response {
        let circuit_open = request.extensions().get::<CircuitOpen>().copied();
        let answer =
            Answer { state, identity: &self.identity, headers: request.headers(), request_text: &self.request_text };
        let mut response =
            answer.planned(&self.planned, circuit_open).await.unwrap_or_else(IntoResponse::into_response);
        // As the router does for what it answers (hyper would write it too,
        // but the layers outside see the header).
        if let Some(size) = axum::body::HttpBody::size_hint(response.body()).exact()
            && !response.headers().contains_key(header::CONTENT_LENGTH)
        {
            response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        }
        response
    }
}

/// How a read is answered once planned: from the cache, or by the
/// database through `load` (with the cache's headers, or validated by the
/// body's digest without a cache).
struct Answer<'a> {
    state: &'a AppState,
    identity: &'a Identity,
    headers: &'a HeaderMap,
    /// `cache::key::request_text` of the request.
    request_text: &'a str,
}

impl Answer<'_> {
    /// The answer to a read planned before: `circuit_open` when the
    /// database is not to be asked.
    async fn planned(&self, planned: &PlannedRead, circuit_open: Option<CircuitOpen>) -> Result<Response, ApiError> {
        let reads = self.state.reads(self.headers)?;
        if let Some(CircuitOpen { retry_after }) = circuit_open {
            return self.stale(retry_after).await;
        }
        self.of(reads, &planned.dependencies, &planned.table, |reads| run_planned(reads, planned)).await
    }

    async fn of<'r, F, Fut>(
        &self,
        reads: Reads<'r>,
        dependencies: &[String],
        table: &str,
        load: F,
    ) -> Result<Response, ApiError>
    where
        F: FnOnce(Reads<'r>) -> Fut,
        Fut: Future<Output = Result<Response, ApiError>>,
    {
        let Some(cache) = &self.state.cache else {
            let response = load(reads).await?;
            return Ok(crate::cache::answer::validated_by_body(response, self.headers).await);
        };
        // What the cache keeps is read on the primary: a read on a replica
        // that has not replayed the latest write yet would be kept, stale,
        // for the whole TTL.
        let tables = dependencies.iter().filter_map(|d| d.split_once('.').map(|(_, table)| table));
        let ttl = cache.ttl_seconds(tables);
        let served = cache.serve(self.request_text, dependencies, ttl, || load(reads.primary_only())).await?;
        let personal = crate::cache::key::is_personal(self.identity, self.headers);
        Ok(crate::cache::answer::finish(served, self.headers, cache.client_caching(table, personal)).await)
    }

    /// The database is not to be asked: the last answer the cache kept,
    /// however old, else 503 at once.
    async fn stale(&self, retry_after: std::time::Duration) -> Result<Response, ApiError> {
        let stale = match &self.state.cache {
            Some(cache) => cache.stale(&crate::cache::key::request_key(self.request_text)).await,
            None => None,
        };
        let Some(answer) = stale else { return Err(crate::db::circuit::refusal(retry_after)) };
        crate::metrics::global().cache_request(CacheOutcome::Stale.metric_label());
        let mut response = answer.hit();
        CacheOutcome::Stale.label(response.headers_mut());
        Ok(response)
    }
}

/// A read whose statement and answer's shape were computed once and are
/// kept in `AppState::planned_reads` for the next identical request: a
/// JSON answer (array or single object) without `Prefer: timezone` and
/// without a planner's count, which need the plan itself.
pub struct PlannedRead {
    statement: Statement,
    /// `Prefer: count=exact` (as asked, or where the engine has no
    /// estimates).
    exact_count: bool,
    negotiated: Negotiated,
    offset: u64,
    /// The preferences the answer honours (`count`).
    applied: Preferences,
    /// The cache's generation keys of the tables read.
    dependencies: Vec<String>,
    /// The top-level table, whose `cache.tables` rule clients follow.
    table: String,
}

impl PlannedRead {
    /// What to keep of `plan`, or `None` when its answer needs the plan;
    /// the tables it reads only for the cache (`cached`).
    fn of(
        plan: &ReadPlan,
        engine: Engine,
        prefs: &Preferences,
        negotiated: Negotiated,
        page: Page,
        cached: bool,
    ) -> Option<Self> {
        let count = prefs.count.map(|c| if engine == Engine::Postgres { c } else { CountPreference::Exact });
        let keeps = matches!(negotiated.representation, Representation::Json | Representation::SingleObject)
            && prefs.timezone.is_none()
            && matches!(count, None | Some(CountPreference::Exact));
        let exact_count = count.is_some();
        keeps.then(|| PlannedRead {
            statement: render_read(plan, engine, exact_count),
            exact_count,
            negotiated,
            offset: page.offset,
            applied: Preferences { count: prefs.count, ..Default::default() },
            dependencies: if cached { crate::cache::key::dependencies(plan) } else { Vec::new() },
            table: plan.table.name.clone(),
        })
    }
}

/// A planned read on the database, and its answer.
async fn run_planned(reads: Reads<'_>, planned: &PlannedRead) -> Result<Response, ApiError> {
    let output = reads.fetch_read(&planned.statement).await?;
    let total = if planned.exact_count { output.total } else { None };
    let rows = output.page_rows.max(0) as u64;
    json_response(output.body, rows, total, planned.offset, planned.negotiated, &planned.applied)
}

/// The read itself: the query (and the count it asks for) on the
/// database, and the answer built from the rows.
async fn run_read(
    state: &AppState,
    reads: Reads<'_>,
    api: &ApiSettings,
    plan: &ReadPlan<'_>,
    prefs: Preferences,
    negotiated: Negotiated,
    page: Page,
) -> Result<Response, ApiError> {
    let engine = state.schema().engine;
    // Only PostgreSQL has planner estimates; elsewhere planned and
    // estimated counts are exact.
    let count = prefs.count.map(|c| if engine == Engine::Postgres { c } else { CountPreference::Exact });
    let with_total = count == Some(CountPreference::Exact);
    let output = match prefs.timezone.as_deref() {
        None => reads.fetch_read(&render_read(plan, engine, with_total)).await?,
        Some(zone) => Box::pin(fetch_in_zone(&reads, engine, plan, with_total, zone)).await?,
    };
    let total = match count {
        Some(CountPreference::Exact) => output.total,
        Some(CountPreference::Planned) => Box::pin(planned_count(&reads, plan)).await?,
        Some(CountPreference::Estimated) => Box::pin(estimated_count(&reads, plan, engine, api.max_rows)).await?,
        None => None,
    };

    let rows = output.page_rows.max(0) as u64;
    let applied = Preferences { count: prefs.count, timezone: prefs.timezone, ..Default::default() };
    read_response(output.body, rows, total, page.offset, negotiated, plan, &applied)
}

/// The read with `Prefer: timezone` applied (see [`in_zone`]).
async fn fetch_in_zone(
    reads: &Reads<'_>,
    engine: Engine,
    plan: &ReadPlan<'_>,
    with_total: bool,
    zone: &str,
) -> Result<ReadOutput, ApiError> {
    match in_zone(reads, engine, zone).await? {
        Zoned::Transaction(mut tx) => {
            let output = tx.fetch_read(&render_read(plan, engine, with_total)).await?;
            tx.commit().await?;
            Ok(output)
        }
        Zoned::Statement => Ok(reads.fetch_read(&render_read_in_zone(plan, engine, with_total, zone)).await?),
    }
}

/// A page of rows as the response: 416 past the end, 206 when the total
/// shows more rows, the body in the negotiated representation,
/// `Content-Range` and the preferences it honoured (`applied`).
pub(super) fn read_response(
    body: String,
    rows: u64,
    total: Option<i64>,
    offset: u64,
    negotiated: Negotiated,
    plan: &ReadPlan,
    applied: &Preferences,
) -> Result<Response, ApiError> {
    let other = match negotiated.representation {
        Representation::Json | Representation::SingleObject => {
            return json_response(body, rows, total, offset, negotiated, applied);
        }
        other => other,
    };
    if let Some(refusal) = past_the_end(offset, total) {
        return Ok(refusal);
    }
    let writer = RowWriter::new(other, plan).expect("the other representations are row by row");
    let mut response = (page_status(rows, total), writer.convert(&body)?).into_response();
    finish_read_response(&mut response, offset, rows, total, negotiated, applied);
    Ok(response)
}

/// [`read_response`] for a JSON array or single object, which needs no
/// plan.
fn json_response(
    body: String,
    rows: u64,
    total: Option<i64>,
    offset: u64,
    negotiated: Negotiated,
    applied: &Preferences,
) -> Result<Response, ApiError> {
    if let Some(refusal) = past_the_end(offset, total) {
        return Ok(refusal);
    }
    let body = match negotiated.representation {
        Representation::SingleObject => single_object(body, rows)?,
        _ => body,
    };
    let body = if negotiated.strip_nulls { without_nulls(&body)? } else { body };
    let mut response = (page_status(rows, total), body).into_response();
    finish_read_response(&mut response, offset, rows, total, negotiated, applied);
    Ok(response)
}

/// As PostgREST: only an offset beyond the total is refused (an offset
/// equal to it is an empty page), and the refusal names the total.
fn past_the_end(offset: u64, total: Option<i64>) -> Option<Response> {
    let t = total.filter(|t| offset > (*t).max(0) as u64)?;
    let mut refusal = ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "PGRST103", "Requested range not satisfiable")
        .details(format!("An offset of {offset} was requested, but there are only {t} rows."))
        .into_response();
    let range = content_range(offset, 0, total).parse().expect("digits are a valid header");
    refusal.headers_mut().insert(header::CONTENT_RANGE, range);
    Some(refusal)
}

/// 206 when the total shows more rows than the page, else 200.
fn page_status(rows: u64, total: Option<i64>) -> StatusCode {
    match total {
        Some(t) if rows < t as u64 => StatusCode::PARTIAL_CONTENT,
        _ => StatusCode::OK,
    }
}

/// Headers a read's answer usually carries by the time it is sent.
const RESPONSE_HEADERS: usize = 16;

/// A read's headers: its type, `Content-Range` and `Preference-Applied`.
fn finish_read_response(
    response: &mut Response,
    offset: u64,
    rows: u64,
    total: Option<i64>,
    negotiated: Negotiated,
    applied: &Preferences,
) {
    let h = response.headers_mut();
    // Room for what the layers add on the way out (validators, request id,
    // rate limit, CORS): the map would otherwise grow twice.
    h.reserve(RESPONSE_HEADERS);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(negotiated.content_type()));
    h.insert(header::CONTENT_RANGE, content_range(offset, rows, total).parse().expect("digits are a valid header"));
    if let Some(applied) = applied.applied() {
        h.insert("preference-applied", applied.parse().expect("preference tokens are valid header text"));
    }
}

/// What a read (of a table or of a function's result) takes from the
/// request besides the path.
pub(super) struct ReadRequest {
    pub query: ApiQuery,
    pub prefs: crate::grammar::Preferences,
    pub negotiated: Negotiated,
    /// The top level's rows: `limit`/`offset` and `Range`, capped.
    pub page: Page,
    /// The media type of the handler that answers instead of the
    /// built-in representations (see `http::media`).
    pub handler: Option<String>,
}

impl ReadRequest {
    /// `max_rows` is the cap on the rows of an answer in a representation;
    /// `handlers` the media types the resource's handlers answer.
    pub fn parse<'h>(
        api: &ApiSettings,
        max_rows: impl FnOnce(Representation) -> u64,
        headers: &HeaderMap,
        query: &str,
        handlers: impl IntoIterator<Item = &'h str>,
    ) -> Result<ReadRequest, ApiError> {
        let accept = header_str(headers, header::ACCEPT);
        let handler = super::media::pick(accept, handlers);
        let negotiated = match handler {
            Some(_) => Negotiated { representation: Representation::Json, strip_nulls: false },
            None => negotiate(accept)?,
        };
        let query = parse_query(query)?;
        crate::limits::check_query(&query, api)?;
        let prefs = parse_prefer(headers.get_all("prefer").iter().filter_map(|v| v.to_str().ok()))?;
        let range = match header_str(headers, header::RANGE) {
            Some(v) => parse_range_header(v).map_err(|e| {
                ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "PGRST103", e.message).details(e.details)
            })?,
            None => None,
        };
        let page = root_page(&query, range, max_rows(negotiated.representation));
        Ok(ReadRequest { query, prefs, negotiated, page, handler })
    }
}

pub(super) fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The top level's rows: `limit`/`offset` intersected with the `Range`
/// header, capped at the configured maximum.
pub(super) fn root_page(query: &ApiQuery, range: Option<RangeHeader>, max_rows: u64) -> Page {
    let root = |v: &[(Vec<String>, u64)]| v.iter().rev().find(|(p, _)| p.is_empty()).map(|(_, n)| *n);
    let q_offset = root(&query.offsets).unwrap_or(0);
    let q_end = root(&query.limits).map(|l| q_offset.saturating_add(l)); // exclusive
    let (h_first, h_end) = match range {
        Some(r) => (r.first, r.last.map(|l| l.saturating_add(1))),
        None => (0, None),
    };
    let offset = q_offset.max(h_first);
    let end = match (q_end, h_end) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let limit = end.map(|e| e.saturating_sub(offset)).unwrap_or(max_rows).min(max_rows);
    Page { offset, limit: Some(limit) }
}

/// `first-last/total`, `*/total` when empty; `*` for an unknown total.
pub(super) fn content_range(offset: u64, rows: u64, total: Option<i64>) -> String {
    // Written number by number: `format!` costs a read ~1k instructions.
    let mut numbers = itoa::Buffer::new();
    let mut range = String::with_capacity(48);
    if rows == 0 {
        range.push('*');
    } else {
        range.push_str(numbers.format(offset));
        range.push('-');
        range.push_str(numbers.format(offset + rows - 1));
    }
    range.push('/');
    match total {
        Some(total) => range.push_str(numbers.format(total)),
        None => range.push('*'),
    }
    range
}

async fn planned_count(reads: &Reads<'_>, plan: &ReadPlan<'_>) -> Result<Option<i64>, ApiError> {
    let explained = reads.fetch_text(&render_count(plan, Engine::Postgres, true)).await?;
    Ok(explained.as_deref().and_then(plan_rows))
}

/// The planner's estimate, or the exact count where the estimate is
/// within `max_rows`.
async fn estimated_count(
    reads: &Reads<'_>,
    plan: &ReadPlan<'_>,
    engine: Engine,
    max_rows: u64,
) -> Result<Option<i64>, ApiError> {
    match planned_count(reads, plan).await? {
        Some(p) if p as u64 > max_rows => Ok(Some(p)),
        _ => Ok(reads.fetch_i64(&render_count(plan, engine, false)).await?),
    }
}

/// `Plan Rows` of the top node of `EXPLAIN (FORMAT JSON)`.
fn plan_rows(explain: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(explain).ok()?;
    v.get(0)?.get("Plan")?.get("Plan Rows")?.as_f64().map(|r| r as i64)
}

pub(super) fn single_object(body: String, rows: u64) -> Result<String, ApiError> {
    if rows != 1 {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST116",
            "Cannot coerce the result to a single JSON object",
        )
        .details(format!("The result contains {rows} rows")));
    }
    let trimmed = body.trim();
    Ok(trimmed[1..trimmed.len() - 1].trim().to_string())
}

pub(super) fn without_nulls(body: &str) -> Result<String, ApiError> {
    let mut value: serde_json::Value = serde_json::from_str(body).map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "DBAPI500", "Could not strip nulls").details(e.to_string())
    })?;
    strip_nulls(&mut value);
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(s: &str) -> ApiQuery {
        parse_query(s).unwrap()
    }

    #[test]
    fn pages_combine_limit_range_and_maximum() {
        assert_eq!(root_page(&query(""), None, 1000), Page { offset: 0, limit: Some(1000) });
        assert_eq!(root_page(&query("limit=10&offset=5"), None, 1000), Page { offset: 5, limit: Some(10) });
        assert_eq!(root_page(&query("limit=5000"), None, 1000), Page { offset: 0, limit: Some(1000) });
        let r = Some(RangeHeader { first: 10, last: Some(19) });
        assert_eq!(root_page(&query(""), r, 1000), Page { offset: 10, limit: Some(10) });
        assert_eq!(root_page(&query("limit=5"), r, 1000), Page { offset: 10, limit: Some(0) });
        assert_eq!(root_page(&query("offset=12"), r, 1000), Page { offset: 12, limit: Some(8) });
        // An embed's limit is not the top level's.
        assert_eq!(root_page(&query("items.limit=1"), None, 50), Page { offset: 0, limit: Some(50) });
    }

    #[test]
    fn content_ranges() {
        assert_eq!(content_range(0, 25, None), "0-24/*");
        assert_eq!(content_range(10, 5, Some(100)), "10-14/100");
        assert_eq!(content_range(0, 0, Some(0)), "*/0");
        assert_eq!(content_range(0, 0, None), "*/*");
    }

    #[test]
    fn singular_bodies() {
        assert_eq!(single_object("[{\"id\": 1}]".into(), 1).unwrap(), "{\"id\": 1}");
        let e = single_object("[]".into(), 0).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(e.details.as_ref().and_then(|d| d.as_str()), Some("The result contains 0 rows"));
    }

    #[test]
    fn explain_output_gives_plan_rows() {
        assert_eq!(plan_rows(r#"[{"Plan": {"Node Type": "Aggregate", "Plan Rows": 1234}}]"#), Some(1234));
        assert_eq!(plan_rows("nonsense"), None);
    }
}
