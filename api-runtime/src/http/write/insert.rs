//! `POST` (inserts, bulk inserts, upserts) and `PUT` (one row by key).

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

use crate::auth::Identity;
use crate::db::Tx;
use crate::grammar::{ApiQuery, Resolution, ReturnPreference};
use crate::plan::access::Verb;
use crate::plan::{
    InsertPlan, Missing, Page, PlannedCondition, check_put, key_condition, plan_insert, plan_read, values_condition,
};
use crate::schema::{Column, Table};
use crate::sql::{MAX_PARAMS, Returning, render_count, render_insert, render_read};

use super::{
    KEYS_PER_READ, WriteRequest, Written, checked_write_error, checks_in_statement, finish, is_plain_write,
    json_as_key, outside_row_filter, prepare, read_payload, refuse_rows_outside, represent, represent_returned,
    respond, returned_rows_plan, row_filter, row_filter_plan,
};
use crate::error::ApiError;
use crate::http::AppState;
use crate::http::extract::Path;

pub async fn insert(
    State(state): State<Arc<AppState>>,
    Extension(identity): Extension<Arc<Identity>>,
    Path(table): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req = prepare(&state, &identity, &uri, &headers).await?;
    req.scope.check_verb(crate::plan::find_table(&req.schema, &req.profile, &table)?, Verb::Post)?;
    let payload = read_payload(&req, &headers, body).await?;
    let missing = if req.prefs.missing_default == Some(true) { Missing::Default } else { Missing::Null };
    let resolution = req.prefs.resolution.map(|r| r == Resolution::MergeDuplicates);
    let plan = plan_insert(&req.schema, &req.profile, &table, &req.query, &payload, missing, resolution)?;
    check_insert_columns(&req, &plan, Verb::Post)?;
    let filter = row_filter(&req, plan.table, Verb::Post)?;
    let checked = filter.is_some();
    let one_statement = is_one_statement(&req, &plan);
    let checks_itself = !checked || checks_in_statement(&req, plan.table);
    if one_statement && checks_itself && !req.gives_token && plan.table.has_key_columns(req.schema.engine) {
        let written = insert_alone(&state, &req, &plan, payload.is_array, filter).await?;
        return respond(&req, written, None, Method::POST);
    }
    let mut tx = if one_statement && !checked { state.db.autocommit().await? } else { state.db.begin().await? };
    // PostgREST answers a merge that inserted nothing (every row updated)
    // with 200, any other insert with 201.
    let merge = plan.conflict.as_ref().is_some_and(|c| c.merge);
    let outcome = async {
        let new_rows = if merge { Some(count_new_rows(&req, &plan, &mut tx).await?) } else { None };
        let mut written = run_insert(&req, &plan, &mut tx, payload.is_array, Verb::Post, checked).await?;
        if new_rows == Some(0) {
            written.status = StatusCode::OK;
        }
        Ok(written)
    }
    .await;
    finish(tx, &req, outcome, Method::POST).await
}

/// Whether an insert runs as exactly one statement whose effect is kept
/// whatever the outcome: then it needs no transaction around it. Not so
/// beyond [`is_plain_write`], with MySQL's upsert pre-check or rows that
/// take several statements.
fn is_one_statement(req: &WriteRequest, plan: &InsertPlan) -> bool {
    let per_statement = MAX_PARAMS / plan.columns.len().max(1);
    is_plain_write(req)
        && !(req.schema.engine == crate::schema::Engine::MySql && plan.conflict.is_some())
        && !plan.conflict.as_ref().is_some_and(|c| c.merge)
        && plan.rows.len() <= per_statement
        && insert_groups(plan).len() == 1
}

pub async fn upsert_one(
    State(state): State<Arc<AppState>>,
    Extension(identity): Extension<Arc<Identity>>,
    Path(table): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req = prepare(&state, &identity, &uri, &headers).await?;
    let target = crate::plan::find_table(&req.schema, &req.profile, &table)?;
    req.scope.check_verb(target, Verb::Put)?;
    let payload = read_payload(&req, &headers, body).await?;
    check_put(target, &req.query, &payload)?;
    let plan = plan_insert(&req.schema, &req.profile, &table, &req.query, &payload, Missing::Null, Some(true))?;
    check_insert_columns(&req, &plan, Verb::Put)?;
    let checked = row_filter(&req, plan.table, Verb::Put)?.is_some();
    let mut tx = state.db.begin().await?;
    // As in PostgREST: with the representation, 201 when the row is new and
    // 200 when it replaced one; otherwise 204 either way.
    let outcome = async {
        let wants_body = req.prefs.return_ == Some(ReturnPreference::Representation);
        let new_rows = if wants_body { count_new_rows(&req, &plan, &mut tx).await? } else { 0 };
        let mut written = run_insert(&req, &plan, &mut tx, false, Verb::Put, checked).await?;
        written.status = match (written.body.is_some(), new_rows) {
            (false, _) => StatusCode::NO_CONTENT,
            (true, 0) => StatusCode::OK,
            (true, _) => StatusCode::CREATED,
        };
        written.location = None;
        Ok(written)
    }
    .await;
    finish(tx, &req, outcome, Method::PUT).await
}

/// A body key, `columns=` or `on_conflict=` column the role may not write
/// with `verb` answers as an unknown one.
fn check_insert_columns(req: &WriteRequest, plan: &InsertPlan, verb: Verb) -> Result<(), ApiError> {
    let conflict = plan.conflict.iter().flat_map(|c| c.columns.iter());
    let names = plan.columns.iter().chain(conflict).map(|c| c.name.as_str());
    Ok(req.scope.check_columns(plan.table, verb, names)?)
}

/// The insert in `tx`; `checked`: the role's row filter for `verb` applies
/// ([`row_filter`]), so the rows are checked against it.
async fn run_insert(
    req: &WriteRequest,
    plan: &InsertPlan<'_>,
    tx: &mut Tx,
    is_array: bool,
    verb: Verb,
    checked: bool,
) -> Result<Written, ApiError> {
    let table = plan.table;
    if req.schema.engine == crate::schema::Engine::MySql {
        refuse_conflicts_off_target(req, plan, tx).await?;
    }
    // An upsert may replace only rows the role's filter lets it touch.
    if checked && let Some(conflict) = plan.conflict.as_ref().filter(|c| c.merge) {
        let names: Vec<&str> = conflict.columns.iter().map(|c| c.name.as_str()).collect();
        let (keys, _) = conflict_keys(plan);
        for chunk in keys.chunks(KEYS_PER_READ) {
            refuse_rows_outside(req, table, verb, |full| conflict_condition(full, &names, chunk), tx).await?;
        }
    }
    let has_key = table.has_key_columns(req.schema.engine);
    // Rows that nothing identifies afterwards come back from the INSERT.
    let returned_plan = if has_key { None } else { returned_rows_plan(req, &table.name, table, &table.name)? };
    let returning = match &returned_plan {
        Some(rows) => Returning::Rows(rows),
        None if has_key => Returning::Keys,
        None => Returning::Nothing,
    };
    let mut keys: Vec<Vec<Option<String>>> = Vec::with_capacity(plan.rows.len());
    let mut rows_written = 0u64;
    for (columns, rows) in insert_groups(plan) {
        let per_statement = (MAX_PARAMS / columns.len().max(1)).max(1);
        for chunk in rows.chunks(per_statement) {
            let statement = render_insert(plan, req.schema.engine, chunk, &columns, returning);
            if let Returning::Nothing = returning {
                rows_written += tx.execute(&statement).await?;
            } else {
                let returned = tx.fetch_text_rows(&statement).await?;
                rows_written += returned.len() as u64;
                keys.extend(returned);
            }
        }
    }
    if checked {
        refuse_unreturned_rows(table, plan, keys.len(), verb)?;
        for chunk in keys.chunks(KEYS_PER_READ) {
            refuse_rows_outside(req, table, verb, |full| key_condition(full, req.schema.engine, chunk), tx).await?;
        }
    }
    let body = match returning {
        Returning::Rows(_) => Some(represent_returned(req, std::mem::take(&mut keys))?),
        Returning::Keys | Returning::CheckedKeys(_) => represent(req, &table.name, table, &keys, tx).await?,
        Returning::Nothing => None,
    };
    let location = location_for(req, table, &keys, is_array);
    Ok(Written { status: StatusCode::CREATED, rows: rows_written, body, location })
}

/// Refuses (403, the transaction is rolled back) an insert into a view
/// under a row filter that gave back fewer rows than it was sent with no
/// conflict clause to skip any: an INSTEAD OF trigger that returns NULL
/// writes rows it does not give back, so they cannot be checked. (A
/// table's BEFORE trigger that skips a row writes nothing to check.)
fn refuse_unreturned_rows(table: &Table, plan: &InsertPlan, returned: usize, verb: Verb) -> Result<(), ApiError> {
    if !table.is_view || plan.conflict.is_some() || returned >= plan.rows.len() {
        return Ok(());
    }
    Err(outside_row_filter(table, verb, "rows").details(format!(
        "{} of the {} rows this {} wrote came back from the database, so the others cannot be checked against the caller's row filter; nothing was written",
        returned,
        plan.rows.len(),
        verb.name()
    ))
    .hint("A view's INSTEAD OF trigger must RETURN NEW for writes under a row filter."))
}

/// An insert that is one statement in autocommit ([`is_one_statement`])
/// into a table with a key, sent on its own like a read: on PostgreSQL it
/// shares the pipelined connections' batches (bench/README.md, W5). A
/// role's row `filter` ([`row_filter`]) is checked by the statement itself.
async fn insert_alone<'s>(
    state: &AppState,
    req: &'s WriteRequest,
    plan: &InsertPlan<'_>,
    is_array: bool,
    filter: Option<PlannedCondition<'s>>,
) -> Result<Written, ApiError> {
    // `[]` writes nothing (and runs nothing: no rows is not DEFAULT VALUES).
    let Some((columns, rows)) = insert_groups(plan).pop().filter(|(_, rows)| !rows.is_empty()) else {
        return Ok(Written { status: StatusCode::CREATED, rows: 0, body: None, location: None });
    };
    let filter = filter.map(|f| row_filter_plan(req, plan.table, f, &plan.table.name)).transpose()?;
    let returning = filter.as_ref().map_or(Returning::Keys, Returning::CheckedKeys);
    let statement = render_insert(plan, req.schema.engine, &rows, &columns, returning);
    let mut keys =
        state.db.write_alone(&statement).await.map_err(|e| checked_write_error(e, plan.table, Verb::Post))?;
    if filter.is_some() {
        // The check's column, NULL on every row that was kept.
        keys.iter_mut().for_each(|key| drop(key.pop()));
    }
    let location = location_for(req, plan.table, &keys, is_array);
    Ok(Written { status: StatusCode::CREATED, rows: keys.len() as u64, body: None, location })
}

/// The key of the new row, as PostgREST gives it: asked for with
/// `return=headers-only` (the other answers have a body or nothing),
/// unless the role may not read it. A row identity (`ctid`, `rowid`) is no
/// address to give out.
fn location_for(req: &WriteRequest, table: &Table, keys: &[Vec<Option<String>>], is_array: bool) -> Option<String> {
    let headers_only = req.prefs.return_ == Some(ReturnPreference::HeadersOnly);
    let key_readable = || req.scope.may_read_columns(table, table.primary_key.iter().map(String::as_str));
    match keys {
        [key] if !is_array && headers_only && !table.primary_key.is_empty() && key_readable() => {
            Some(location(table, key))
        }
        _ => None,
    }
}

/// How many of an upsert's rows will be inserted rather than update an
/// existing row: rows whose conflict key is incomplete (NULL, or left to a
/// default) are new, and of the others, each distinct key not yet in the
/// table. Read in the write's transaction, before it.
async fn count_new_rows(req: &WriteRequest, plan: &InsertPlan<'_>, tx: &mut Tx) -> Result<u64, ApiError> {
    let Some(conflict) = &plan.conflict else { return Ok(plan.rows.len() as u64) };
    let (keys, keyless) = conflict_keys(plan);
    let mut existing = 0u64;
    for chunk in keys.chunks(KEYS_PER_READ) {
        let all = Page { offset: 0, limit: None };
        let mut target = plan_read(&req.schema, &req.profile, &plan.table.name, &ApiQuery::default(), all)?;
        target.conditions.push(values_condition(&conflict.columns, chunk));
        existing += tx.fetch_read_count(&render_count(&target, req.schema.engine, false)).await?;
    }
    Ok(keyless + (keys.len() as u64).saturating_sub(existing))
}

/// The rows of the full table holding one of these conflict keys.
fn conflict_condition<'s>(full: &'s Table, names: &[&str], keys: &[Vec<Option<String>>]) -> PlannedCondition<'s> {
    let columns: Vec<&'s Column> = names.iter().filter_map(|n| full.column(n)).collect();
    values_condition(&columns, keys)
}

/// The distinct complete conflict keys of an upsert's rows, and how many
/// rows have an incomplete one (NULL, or left to a default).
fn conflict_keys(plan: &InsertPlan<'_>) -> (Vec<Vec<Option<String>>>, u64) {
    let Some(conflict) = &plan.conflict else { return (Vec::new(), plan.rows.len() as u64) };
    let index: Vec<Option<usize>> =
        conflict.columns.iter().map(|k| plan.columns.iter().position(|c| c.name == k.name)).collect();
    let mut seen = std::collections::HashSet::new();
    let mut keys: Vec<Vec<Option<String>>> = Vec::new();
    let mut keyless = 0u64;
    for row in &plan.rows {
        let key: Option<Vec<String>> =
            index.iter().map(|i| i.and_then(|i| row[i].as_ref()).and_then(json_as_key)).collect();
        match key {
            Some(key) if seen.insert(key.clone()) => keys.push(key.into_iter().map(Some).collect()),
            Some(_) => {}
            None => keyless += 1,
        }
    }
    (keys, keyless)
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
