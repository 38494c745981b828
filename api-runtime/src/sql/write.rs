//! Write statements: INSERT (with the engine's upsert clause), the key
//! selection that locks the rows a PATCH or DELETE will change, UPDATE and
//! DELETE. Values are bound parameters encoded per column type by the
//! dialect; identifiers come from the plan.

use crate::plan::{Cast, DeletePlan, InsertPlan, Missing, ReadPlan, UpdatePlan};
use crate::schema::{Column, Engine, Table};

use super::read::{conditions, object, where_clause};
use super::{Fragment, Statement, Writer};

/// Parameters one statement may carry; SQLite allows 32766 and PostgreSQL
/// and MySQL 65535, so bulk inserts are split below the smallest.
pub const MAX_PARAMS: usize = 30_000;

/// What a write statement gives back of the rows it wrote.
#[derive(Clone, Copy)]
pub enum Returning<'p> {
    Nothing,
    /// Each row's key columns as text (see [`Table::key_columns`]), to read
    /// the rows back by.
    Keys,
    /// Each row as the JSON object (text) `plan` shapes, with its `select`
    /// and embeds: the representation of rows that nothing identifies
    /// afterwards (MySQL tables, views without a primary key). The
    /// statement names its table without an alias (MariaDB's INSERT and
    /// single-table DELETE take none), so `plan`'s alias is the name the
    /// statement uses: the table's, or [`SHADOW`].
    Rows(&'p ReadPlan<'p>),
    /// [`Returning::Keys`], on PostgreSQL only, with the statement failing
    /// ([`OUTSIDE_ROW_FILTER`]) on a written row that `filter`'s
    /// conditions do not hold for: a write that must stay inside a role's
    /// row filter stays one statement, with nothing kept when it fails.
    /// `filter`'s alias is the table's name, as with [`Returning::Rows`].
    CheckedKeys(&'p ReadPlan<'p>),
}

/// The text of the error a [`Returning::CheckedKeys`] statement fails with
/// (SQLSTATE 22P02: PostgreSQL raises no chosen error from plain SQL, but a
/// cast of text that is no number raises one naming the text).
pub const OUTSIDE_ROW_FILTER: &str = "dbapi: a written row falls outside the role's row filter";

/// One INSERT for `rows` (indices into `plan.rows`), setting `columns` (a
/// subset of the plan's when absent keys fall back to defaults).
pub fn render_insert(
    plan: &InsertPlan,
    engine: Engine,
    rows: &[usize],
    columns: &[usize],
    returning: Returning,
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
    returning_clause(&mut w, plan.table, returning);
    w.finish()
}

/// ` RETURNING …` as [`Returning`] says.
fn returning_clause(w: &mut Writer, table: &Table, returning: Returning) {
    match returning {
        Returning::Nothing => {}
        Returning::Keys => returning_keys(w, table),
        Returning::CheckedKeys(filter) => {
            debug_assert!(w.dialect.engine() == Engine::Postgres, "only PostgreSQL raises on the cast");
            returning_keys(w, table);
            // Cast at run time: the CASE depends on the row, so it is not
            // folded (and raised) while the statement is planned. The
            // column is text, as the keys before it.
            w.push(", CAST(CAST(CASE WHEN ");
            conditions(w, filter);
            w.push(" THEN NULL ELSE ");
            w.text(OUTSIDE_ROW_FILTER);
            w.push(" END AS integer) AS text)");
        }
        Returning::Rows(plan) => {
            w.push(" RETURNING ");
            let d = w.dialect;
            d.cast(w, Cast::Text, &|w| object(w, plan));
        }
    }
}

/// ` RETURNING <each key column as text>`
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

/// The UPDATE; [`Returning::Keys`] gives where the changed rows are now (a
/// row identity changes with the update).
pub fn render_update(plan: &UpdatePlan, engine: Engine, returning: Returning) -> Statement {
    let mut w = Writer::new(engine);
    let target = &plan.target;
    w.push("UPDATE ");
    w.table(&target.table.schema, &target.table.name);
    w.push(" AS ");
    w.ident(&target.alias);
    set_clause(&mut w, plan);
    where_clause(&mut w, target, None);
    returning_clause(&mut w, target.table, returning);
    w.finish()
}

/// ` SET column = value, …`
fn set_clause(w: &mut Writer, plan: &UpdatePlan) {
    let d = w.dialect;
    w.push(" SET ");
    for (i, (column, value)) in plan.set.iter().enumerate() {
        if i > 0 {
            w.push(", ");
        }
        w.ident(&column.name);
        w.push(" = ");
        match value {
            Some(value) => d.write_value(w, column, value),
            None => d.column_default(w, column),
        }
    }
}

/// The DELETE; with [`Returning::Rows`] in the single-table form, which
/// names the table without an alias.
pub fn render_delete(plan: &DeletePlan, engine: Engine, returning: Returning) -> Statement {
    let mut w = Writer::new(engine);
    let d = w.dialect;
    let target = &plan.target;
    if let Returning::Rows(_) = returning {
        w.push("DELETE FROM ");
        w.table(&target.table.schema, &target.table.name);
    } else {
        d.delete_from(&mut w, &target.table.schema, &target.table.name, &target.alias);
    }
    where_clause(&mut w, target, None);
    returning_clause(&mut w, target.table, returning);
    w.finish()
}

/// MariaDB's UPDATE has no RETURNING. A PATCH answering with the rows of a
/// MySQL table without a key copies the rows it changes into this
/// temporary table (locking them), applies the same SET to the copy, and
/// drains the copy with `DELETE … RETURNING`. Temporary tables outlive a
/// rollback, so each use starts by dropping a leftover.
pub const SHADOW: &str = "dbapi_written";

/// The statements that make the shadow copy of the rows `plan` will change:
/// drop a leftover, create it shaped like the table (a view's columns come
/// from its rows), copy and lock the rows.
pub fn render_shadow_copy(plan: &UpdatePlan, engine: Engine) -> Vec<Statement> {
    let target = &plan.target;
    let schema = &target.table.schema;
    let mut create = Writer::new(engine);
    create.push("CREATE TEMPORARY TABLE ");
    create.table(schema, SHADOW);
    let rows = |w: &mut Writer| {
        w.push("SELECT ");
        w.ident(&target.alias);
        w.push(".* FROM ");
        w.table(schema, &target.table.name);
        w.push(" AS ");
        w.ident(&target.alias);
        where_clause(w, target, None);
        w.dialect.lock_rows(w);
    };
    if target.table.is_view {
        create.push(" AS ");
        rows(&mut create);
        return vec![shadow_drop(schema, engine), one_off(create)];
    }
    create.push(" LIKE ");
    create.table(schema, &target.table.name);
    let mut copy = Writer::new(engine);
    copy.push("INSERT INTO ");
    copy.table(schema, SHADOW);
    copy.push(" ");
    rows(&mut copy);
    vec![shadow_drop(schema, engine), one_off(create), one_off(copy)]
}

/// The PATCH's SET applied to every row of the shadow copy.
pub fn render_shadow_update(plan: &UpdatePlan, engine: Engine) -> Statement {
    let mut w = Writer::new(engine);
    w.push("UPDATE ");
    w.table(&plan.target.table.schema, SHADOW);
    set_clause(&mut w, plan);
    one_off(w)
}

/// Empties the shadow copy, giving each row as `rows` shapes it (its alias
/// is [`SHADOW`]), then drops it.
pub fn render_shadow_drain(rows: &ReadPlan, engine: Engine) -> [Statement; 2] {
    let mut drain = Writer::new(engine);
    drain.push("DELETE FROM ");
    drain.table(&rows.table.schema, SHADOW);
    returning_clause(&mut drain, rows.table, Returning::Rows(rows));
    [one_off(drain), shadow_drop(&rows.table.schema, engine)]
}

/// Drops the shadow copy, or a leftover of one.
fn shadow_drop(schema: &str, engine: Engine) -> Statement {
    let mut drop = Writer::new(engine);
    drop.push("DROP TEMPORARY TABLE IF EXISTS ");
    drop.table(schema, SHADOW);
    one_off(drop)
}

/// The shadow's statements run unprepared: the table they name is made
/// anew each time.
fn one_off(w: Writer) -> Statement {
    Statement { one_off: true, ..w.finish() }
}
