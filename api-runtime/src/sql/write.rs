//! Write statements: INSERT (with the engine's upsert clause), the key
//! selection that locks the rows a PATCH or DELETE will change, UPDATE and
//! DELETE. Values are bound parameters encoded per column type by the
//! dialect; identifiers come from the plan.

use crate::plan::{Cast, DeletePlan, InsertPlan, Missing, ReadPlan, UpdatePlan};
use crate::schema::{Column, Engine, Table};

use super::read::where_clause;
use super::{Fragment, Statement, Writer};

/// Parameters one statement may carry; SQLite allows 32766 and PostgreSQL
/// and MySQL 65535, so bulk inserts are split below the smallest.
pub const MAX_PARAMS: usize = 30_000;

/// One INSERT for `rows` (indices into `plan.rows`), setting `columns` (a
/// subset of the plan's when absent keys fall back to defaults). With
/// `returning`, the primary key of each written row comes back as text.
pub fn render_insert(
    plan: &InsertPlan,
    engine: Engine,
    rows: &[usize],
    columns: &[usize],
    returning: bool,
) -> Statement {
    let mut w = Writer::new(engine);
    let d = w.dialect;
    w.push("INSERT INTO ");
    w.table(&plan.table.schema, &plan.table.name);
    if columns.is_empty() {
        d.default_values(&mut w);
    } else {
        w.push(" (");
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                w.push(", ");
            }
            w.ident(&plan.columns[*c].name);
        }
        w.push(") VALUES ");
        for (r, row) in rows.iter().enumerate() {
            w.push(if r == 0 { "(" } else { ", (" });
            for (i, c) in columns.iter().enumerate() {
                if i > 0 {
                    w.push(", ");
                }
                let column = plan.columns[*c];
                match &plan.rows[*row][*c] {
                    Some(value) => d.write_value(&mut w, column, value),
                    None if plan.missing == Missing::Default => w.push("DEFAULT"),
                    None => d.write_value(&mut w, column, &serde_json::Value::Null),
                }
            }
            w.push(")");
        }
    }
    if let Some(conflict) = &plan.conflict {
        let updates: Vec<&Column> = columns.iter().map(|c| plan.columns[*c]).collect();
        d.on_conflict(&mut w, &conflict.columns, &updates, conflict.merge);
    }
    if returning {
        returning_keys(&mut w, plan.table);
    }
    w.finish()
}

/// ` RETURNING <key as text>, …`: the keys of the written rows (see
/// [`Table::key_columns`]).
fn returning_keys(w: &mut Writer, table: &Table) {
    w.push(" RETURNING ");
    for (i, key) in table.key_columns(w.dialect.engine()).into_iter().enumerate() {
        if i > 0 {
            w.push(", ");
        }
        key_as_text(w, Some(key), &|w| w.ident(&key.name));
    }
}

/// A key column as text, in the form a filter takes back: PostgreSQL
/// domains whose filter values are read through a cast from text give
/// their presented form (the text of their cast to json), everything else
/// its plain text.
fn key_as_text(w: &mut Writer, column: Option<&Column>, expr: &Fragment) {
    let presented =
        column.and_then(|c| c.representation.as_deref()).filter(|r| r.filter.is_some()).and_then(|r| r.output.as_ref());
    match presented {
        Some((schema, function)) => {
            w.push("(");
            w.table(schema, function);
            w.push("(");
            expr(w);
            w.push(") #>> '{}')");
        }
        None => {
            let d = w.dialect;
            d.cast(w, Cast::Text, expr)
        }
    }
}

/// `SELECT <primary key as text> FROM table WHERE <filters> [FOR UPDATE]`:
/// the rows a PATCH or DELETE is about to change, locked until commit.
pub fn render_keys(target: &ReadPlan, engine: Engine) -> Statement {
    let mut w = Writer::new(engine);
    let d = w.dialect;
    w.push("SELECT ");
    for (i, key) in target.table.key_columns(engine).into_iter().enumerate() {
        if i > 0 {
            w.push(", ");
        }
        key_as_text(&mut w, Some(key), &|w| w.column(&target.alias, &key.name));
    }
    w.push(" FROM ");
    w.table(&target.table.schema, &target.table.name);
    w.push(" AS ");
    w.ident(&target.alias);
    where_clause(&mut w, target, None);
    d.lock_rows(&mut w);
    w.finish()
}

/// The UPDATE; with `returning`, the keys of the changed rows come back as
/// text (a row identity changes with the update).
pub fn render_update(plan: &UpdatePlan, engine: Engine, returning: bool) -> Statement {
    let mut w = Writer::new(engine);
    let d = w.dialect;
    let target = &plan.target;
    w.push("UPDATE ");
    w.table(&target.table.schema, &target.table.name);
    w.push(" AS ");
    w.ident(&target.alias);
    w.push(" SET ");
    for (i, (column, value)) in plan.set.iter().enumerate() {
        if i > 0 {
            w.push(", ");
        }
        w.ident(&column.name);
        w.push(" = ");
        match value {
            Some(value) => d.write_value(&mut w, column, value),
            None => d.column_default(&mut w, column),
        }
    }
    where_clause(&mut w, target, None);
    if returning {
        returning_keys(&mut w, target.table);
    }
    w.finish()
}

pub fn render_delete(plan: &DeletePlan, engine: Engine) -> Statement {
    let mut w = Writer::new(engine);
    let d = w.dialect;
    let target = &plan.target;
    d.delete_from(&mut w, &target.table.schema, &target.table.name, &target.alias);
    where_clause(&mut w, target, None);
    w.finish()
}
