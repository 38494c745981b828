//! `PATCH` and `DELETE` of the rows a filter selects.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

use crate::auth::Identity;
use crate::db::Tx;
use crate::grammar::{Preferences, ReturnPreference};
use crate::plan::access::Verb;
use crate::plan::{DeletePlan, Missing, ReadPlan, UpdatePlan, find_table, key_condition, plan_delete, plan_update};
use crate::schema::{Engine, Table};
use crate::sql::{
    Returning, SHADOW, render_count, render_delete, render_keys, render_shadow_copy, render_shadow_drain,
    render_shadow_update, render_update,
};

use super::{
    KEYS_PER_READ, WriteRequest, Written, checked_write_error, checks_in_statement, finish, is_plain_write,
    json_as_key, name_target, prepare, read_payload, refuse_rows_outside, represent, represent_returned,
    returned_rows_plan, row_filter, row_filter_plan,
};
use crate::error::ApiError;
use crate::http::AppState;
use crate::http::extract::Path;

pub async fn update(
    State(state): State<Arc<AppState>>,
    Extension(identity): Extension<Arc<Identity>>,
    Path(table): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req = prepare(&state, &identity, &uri, &headers).await?;
    req.scope.check_verb(find_table(&req.schema, &req.profile, &table)?, Verb::Patch)?;
    let payload = read_payload(&req, &headers, body).await?;
    let missing = if req.prefs.missing_default == Some(true) { Missing::Default } else { Missing::Null };
    let mut plan = plan_update(&req.schema, &req.profile, &table, &req.query, &payload, missing)?;
    req.scope.check_columns(plan.target.table, Verb::Patch, plan.set.iter().map(|(c, _)| c.name.as_str()))?;
    refuse_unfiltered(&req, &plan.target, "PATCH")?;
    if plan.set.is_empty() {
        // `{}` changes nothing, so no row is touched: 204, or `[]` for
        // return=representation, as PostgREST answers it.
        let tx = state.db.begin().await?;
        let body = (req.prefs.return_ == Some(ReturnPreference::Representation)).then(|| "[]".to_string());
        return finish(tx, &req, Ok(Written::changed(0, body)), Method::PATCH).await;
    }
    // Only rows the role's filter lets it touch change, and they must
    // still match it afterwards.
    req.scope.restrict(&mut plan.target, Some(Verb::Patch))?;
    let filter = row_filter(&req, plan.target.table, Verb::Patch)?;
    let checked = filter.is_some();
    if is_plain_write(&req) && (!checked || checks_in_statement(&req, plan.target.table)) {
        let table = plan.target.table;
        let filter = filter.map(|f| row_filter_plan(&req, table, f, &plan.target.alias)).transpose()?;
        let returning = filter.as_ref().map_or(Returning::Nothing, Returning::CheckedKeys);
        let statement = render_update(&plan, req.schema.engine, returning);
        let checked = filter.is_some().then_some((table, Verb::Patch));
        return run_plain(&state, &req, &statement, Method::PATCH, checked).await;
    }
    let mut tx = state.db.begin().await?;
    let outcome = async {
        let engine = req.schema.engine;
        let Some(keys) = locked_keys(&mut tx, &plan.target, &req.prefs, engine).await? else {
            return update_unkeyed(&req, &table, &mut plan, &mut tx).await;
        };
        // A row identity changes with the update (PostgreSQL's ctid): the
        // UPDATE itself says where the rows are now.
        let keys = if plan.target.table.primary_key.is_empty() {
            tx.fetch_text_rows(&render_update(&plan, engine, Returning::Keys)).await?
        } else {
            tx.execute(&render_update(&plan, engine, Returning::Nothing)).await?;
            keys
        };
        let count = keys.len() as u64;
        // Keys the update itself changed are read back under their new value.
        let pk = &plan.target.table.primary_key;
        let keys: Vec<_> = keys
            .into_iter()
            .map(|mut key| {
                for (i, name) in pk.iter().enumerate() {
                    if let Some((_, Some(v))) = plan.set.iter().find(|(c, _)| &c.name == name) {
                        key[i] = json_as_key(v);
                    }
                }
                key
            })
            .collect();
        if checked {
            for chunk in keys.chunks(KEYS_PER_READ) {
                let keyed = |full| key_condition(full, engine, chunk);
                refuse_rows_outside(&req, plan.target.table, Verb::Patch, keyed, &mut tx).await?;
            }
        }
        let body = represent(&req, &table, plan.target.table, &keys, &mut tx).await?;
        Ok(Written::changed(count, body))
    }
    .await;
    finish(tx, &req, outcome, Method::PATCH).await
}

/// A PATCH of rows that no key identifies (MySQL tables, views without a
/// primary key): its representation comes from the write itself, on
/// MySQL through the shadow copy (see [`SHADOW`]).
async fn update_unkeyed(
    req: &WriteRequest,
    table_name: &str,
    plan: &mut UpdatePlan<'_>,
    tx: &mut Tx,
) -> Result<Written, ApiError> {
    let engine = req.schema.engine;
    let table = plan.target.table;
    let alias = if engine == Engine::MySql { SHADOW } else { table.name.as_str() };
    let Some(rows) = returned_rows_plan(req, table_name, table, alias)? else {
        let affected = tx.execute(&render_update(plan, engine, Returning::Nothing)).await?;
        return Ok(Written::changed(affected, None));
    };
    let returned = if engine == Engine::MySql {
        for statement in render_shadow_copy(plan, engine) {
            tx.execute(&statement).await?;
        }
        tx.execute(&render_update(plan, engine, Returning::Nothing)).await?;
        tx.execute(&render_shadow_update(plan, engine)).await?;
        let [drain, drop] = render_shadow_drain(&rows, engine);
        let returned = tx.fetch_text_rows(&drain).await?;
        tx.execute(&drop).await?;
        returned
    } else {
        name_target(&mut plan.target, &table.name)?;
        tx.fetch_text_rows(&render_update(plan, engine, Returning::Rows(&rows))).await?
    };
    changed_rows(req, returned)
}

/// What a PATCH or DELETE answers with the rows its statement gave back.
fn changed_rows(req: &WriteRequest, returned: Vec<Vec<Option<String>>>) -> Result<Written, ApiError> {
    Ok(Written::changed(returned.len() as u64, Some(represent_returned(req, returned)?)))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Extension(identity): Extension<Arc<Identity>>,
    Path(table): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let req = prepare(&state, &identity, &uri, &headers).await?;
    req.scope.check_verb(find_table(&req.schema, &req.profile, &table)?, Verb::Delete)?;
    let mut plan = plan_delete(&req.schema, &req.profile, &table, &req.query)?;
    refuse_unfiltered(&req, &plan.target, "DELETE")?;
    req.scope.restrict(&mut plan.target, Some(Verb::Delete))?;
    if is_plain_write(&req) {
        return run_plain(
            &state,
            &req,
            &render_delete(&plan, req.schema.engine, Returning::Nothing),
            Method::DELETE,
            None,
        )
        .await;
    }
    let mut tx = state.db.begin().await?;
    let outcome = async {
        let engine = req.schema.engine;
        let Some(keys) = locked_keys(&mut tx, &plan.target, &req.prefs, engine).await? else {
            return delete_unkeyed(&req, &table, &mut plan, &mut tx).await;
        };
        // The representation of deleted rows is read before they go.
        let body = represent(&req, &table, plan.target.table, &keys, &mut tx).await?;
        tx.execute(&render_delete(&plan, engine, Returning::Nothing)).await?;
        Ok(Written::changed(keys.len() as u64, body))
    }
    .await;
    finish(tx, &req, outcome, Method::DELETE).await
}

/// A DELETE of rows that no key identifies: its representation comes from
/// the DELETE's own `RETURNING`.
async fn delete_unkeyed(
    req: &WriteRequest,
    table_name: &str,
    plan: &mut DeletePlan<'_>,
    tx: &mut Tx,
) -> Result<Written, ApiError> {
    let engine = req.schema.engine;
    let table = plan.target.table;
    let Some(rows) = returned_rows_plan(req, table_name, table, &table.name)? else {
        let affected = tx.execute(&render_delete(plan, engine, Returning::Nothing)).await?;
        return Ok(Written::changed(affected, None));
    };
    name_target(&mut plan.target, &table.name)?;
    let returned = tx.fetch_text_rows(&render_delete(plan, engine, Returning::Rows(&rows))).await?;
    changed_rows(req, returned)
}

/// A PATCH or DELETE that is its one statement ([`is_plain_write`]), in
/// autocommit; the answer is the number of matched rows. A PATCH under a
/// row filter on PostgreSQL (`checked`) checks the rows it changed in the
/// statement ([`crate::sql::Returning::CheckedKeys`]).
async fn run_plain(
    state: &AppState,
    req: &WriteRequest,
    statement: &crate::sql::Statement,
    method: Method,
    checked: Option<(&Table, Verb)>,
) -> Result<Response, ApiError> {
    let mut tx = state.db.autocommit().await?;
    let outcome = match checked {
        // A statement that checks its rows gives back their keys.
        Some((table, verb)) => tx
            .fetch_text_rows(statement)
            .await
            .map(|rows| Written::changed(rows.len() as u64, None))
            .map_err(|e| checked_write_error(e, table, verb)),
        None => tx.execute(statement).await.map(|rows| Written::changed(rows, None)).map_err(ApiError::from),
    };
    finish(tx, req, outcome, method).await
}

/// The primary keys of the rows a PATCH or DELETE will change, locked;
/// `None` for a table with no key columns (see [`Table::key_columns`]).
/// Enforces `max-affected`.
async fn locked_keys(
    tx: &mut Tx,
    target: &ReadPlan<'_>,
    prefs: &Preferences,
    engine: crate::schema::Engine,
) -> Result<Option<Vec<Vec<Option<String>>>>, ApiError> {
    let (keys, count) = if !target.table.has_key_columns(engine) {
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

fn refuse_unfiltered(req: &WriteRequest, target: &ReadPlan, verb: &str) -> Result<(), ApiError> {
    if target.conditions.is_empty() && !req.scope.config.api.allows_unfiltered_write(&target.table.name) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "DBAPI104",
            format!("{verb} without filters would change every row of {}", target.table.name),
        )
        .hint("Add a filter such as ?id=eq.1, or list the table in api.allowUnfilteredWrites."));
    }
    Ok(())
}
