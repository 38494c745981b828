//! The shape of a read statement, common to every engine.
//!
//! ```text
//! SELECT <json array of objects>, COUNT(*), <total or NULL>
//! FROM (SELECT t1.* FROM <table> AS t1 WHERE … ORDER BY … LIMIT …) AS t1
//! ```
//! The page is cut first, then each of its rows becomes a JSON object
//! (PostgreSQL turns whole records into objects; MySQL builds the objects
//! in a derived table of their own, see
//! [`Dialect::builds_objects_before_aggregating`]); embedded resources are correlated subqueries evaluated only for rows of
//! the page (never for skipped offset rows).

use crate::grammar::JsonStep;
use crate::plan::{Call, EmbedPlan, PlannedCondition, PlannedItem, ReadPlan, effective_kind};
use crate::schema::{Column, ComputedBy, Engine};

use super::aggregate::{aggregated_embed, group_by, grouped_columns, grouped_value};
use super::{Fragment, Member, Statement, Writer};

/// A JSON member whose value is built later, when the object is written.
type DeferredMember<'a> = (String, Box<Fragment<'a>>);

/// The statement for `GET /{table}`; `with_total` adds the exact count of
/// rows matching the filters (`Prefer: count=exact`).
pub fn render_read(plan: &ReadPlan, engine: Engine, with_total: bool) -> Statement {
    render(plan, Writer::new(engine), with_total)
}

/// [`render_read`] with zoned timestamps written in `zone` where the
/// engine does that in the statement (MySQL).
pub fn render_read_in_zone(plan: &ReadPlan, engine: Engine, with_total: bool, zone: &str) -> Statement {
    let mut w = Writer::new(engine);
    w.time_zone = Some(zone.to_string());
    render(plan, w, with_total)
}

fn render(plan: &ReadPlan, mut w: Writer, with_total: bool) -> Statement {
    let d = w.dialect;
    let as_records = d.aggregates_records() && keys_are_schema_names(plan);
    let objects_first = !as_records && d.builds_objects_before_aggregating();
    w.push("SELECT ");
    let order = |w: &mut Writer| order_by(w, plan);
    let ordered = !plan.order.is_empty();
    if as_records {
        d.json_array_result(&mut w, &|w| w.push(RECORD), None);
    } else if objects_first {
        let by_position = |w: &mut Writer| w.push("dbapi_rows.dbapi_position");
        d.json_array_result(&mut w, &|w| w.push("dbapi_rows.body"), Some(&by_position));
    } else {
        d.json_array_result(&mut w, &|w| object(w, plan), ordered.then_some(&order as _));
    }
    w.push(", COUNT(*), ");
    if with_total {
        w.push("(");
        count_query(&mut w, plan);
        w.push(")");
    } else {
        w.push("NULL");
    }
    w.push(" FROM (");
    if as_records {
        // Each row of the page as a record whose columns are named by the
        // JSON keys; the database turns whole records into JSON, cheaper
        // than an object built key by key.
        w.push("SELECT ");
        for (i, item) in visible(plan).enumerate() {
            if i > 0 {
                w.push(", ");
            }
            match item {
                PlannedItem::Column { label, .. } => {
                    column_value(&mut w, plan, item);
                    w.push(" AS ");
                    w.ident(label);
                }
                PlannedItem::Embed(e) => {
                    embed_value(&mut w, e, &plan.alias);
                    w.push(" AS ");
                    w.ident(&e.label);
                }
                // Not in the record form: its keys come from the request.
                PlannedItem::Aggregate(_) => {}
            }
        }
        from_page(&mut w, plan, true);
        w.push(") AS ");
        w.push(RECORD);
    } else if objects_first {
        numbered_objects(&mut w, plan);
    } else {
        page(&mut w, plan);
        w.push(") AS ");
        w.ident(&plan.alias);
    }
    w.finish()
}

/// The statement for a streamed read (NDJSON, CSV): one result row per row
/// of the page, its JSON object, in the requested order, so that the
/// runtime can pass each on as the database produces it instead of holding
/// the page's array. `zone` as in [`render_read_in_zone`].
///
/// ```text
/// SELECT <object> FROM <table> AS t1 WHERE … ORDER BY … LIMIT …
/// ```
/// The rows are read and turned into objects in one pass, which every
/// engine streams (MariaDB would first copy a derived table with a LIMIT,
/// the whole export, before sending a row). Only a page that skips rows or
/// is grouped is cut first, as for [`render_read`], so that embedded
/// resources are never built for skipped rows.
pub fn render_rows(plan: &ReadPlan, engine: Engine, zone: Option<&str>) -> Statement {
    let mut w = Writer::new(engine);
    w.time_zone = zone.map(str::to_string);
    if !plan.is_aggregated() && plan.offset == 0 {
        select_rows(&mut w, plan, &|w| object(w, plan));
        return w.finish();
    }
    w.push("SELECT ");
    object(&mut w, plan);
    from_page(&mut w, plan, true);
    w.finish()
}

/// `SELECT <object> AS body, <position> … ) AS dbapi_rows`: each row of the
/// page as its JSON object, numbered in the requested order for what reads
/// the derived table to keep. The numbering is there even without an
/// order: MariaDB merges a derived table without a window function into
/// the outer query, and a prepared statement so merged loses its
/// correlated subqueries' outer columns on its second run (error 1054,
/// "Unknown column 't1.x'").
fn numbered_objects(w: &mut Writer, plan: &ReadPlan) {
    w.push("SELECT ");
    object(w, plan);
    w.push(" AS body, ROW_NUMBER() OVER (");
    if !plan.order.is_empty() {
        w.push("ORDER BY ");
        order_by(w, plan);
    }
    w.push(") AS dbapi_position FROM (");
    page(w, plan);
    w.push(") AS ");
    w.ident(&plan.alias);
    w.push(") AS dbapi_rows");
}

/// Alias of the per-row record in the record form.
const RECORD: &str = "dbapi_row";

/// The record form names columns by the JSON keys, so it is used only when
/// every key is a name from the schema (no aliases, no JSON-path labels,
/// no spreads): identifiers never come from the request.
fn keys_are_schema_names(plan: &ReadPlan) -> bool {
    visible(plan).next().is_some()
        && visible(plan).all(|item| match item {
            PlannedItem::Column { column, json_path, label, .. } => json_path.is_empty() && *label == column.name,
            PlannedItem::Embed(e) => !e.spread && e.label == e.plan.table.name,
            PlannedItem::Aggregate(_) => false,
        })
}

/// The items that are output: all but the empty embeds, which only filter.
fn visible<'p, 's>(plan: &'p ReadPlan<'s>) -> impl Iterator<Item = &'p PlannedItem<'s>> {
    plan.items.iter().filter(|item| !matches!(item, PlannedItem::Embed(e) if e.hidden))
}

/// ` FROM (<page>) AS t1`, then ` ORDER BY …` when `ordered`: the page as
/// what the outer select reads (ordered again there: a derived table's
/// order is not the outer query's).
pub(super) fn from_page(w: &mut Writer, plan: &ReadPlan, ordered: bool) {
    w.push(" FROM (");
    page(w, plan);
    w.push(") AS ");
    w.ident(&plan.alias);
    if ordered && !plan.order.is_empty() {
        w.push(" ORDER BY ");
        order_by(w, plan);
    }
}

/// `SELECT t1.* FROM <table> AS t1 WHERE … ORDER BY … LIMIT …`: the page,
/// cut before any JSON is built.
pub(super) fn page(w: &mut Writer, plan: &ReadPlan) {
    let columns = |w: &mut Writer| {
        if plan.is_aggregated() {
            grouped_columns(w, plan);
        } else {
            w.ident(&plan.alias);
            w.push(".*");
        }
    };
    select_rows(w, plan, &columns);
}

/// `SELECT <what> FROM <table> AS t1 WHERE … [GROUP BY …] ORDER BY … LIMIT …`.
fn select_rows(w: &mut Writer, plan: &ReadPlan, what: &Fragment) {
    let d = w.dialect;
    w.push("SELECT ");
    what(w);
    w.push(" FROM ");
    source(w, plan);
    w.push(" AS ");
    w.ident(&plan.alias);
    where_clause(w, plan, None);
    if plan.is_aggregated() {
        group_by(w, plan);
    }
    if !plan.order.is_empty() {
        w.push(" ORDER BY ");
        order_by(w, plan);
    }
    d.limit_offset(w, plan.limit, plan.offset);
}

/// What the top level reads rows from: its table, or a function call. A
/// scalar function's values become a one-column derived table named after
/// the function (every engine can select a function call; only PostgreSQL
/// can call one in FROM).
fn source(w: &mut Writer, plan: &ReadPlan) {
    match &plan.call {
        None => w.table(&plan.table.schema, &plan.table.name),
        Some(call) if call.function.is_scalar() => {
            w.push("(SELECT ");
            call_expression(w, call);
            w.push(" AS ");
            w.ident(&call.function.name);
            w.push(")");
        }
        Some(call) => call_expression(w, call),
    }
}

/// `"schema"."fn"(arguments)`.
pub(super) fn call_expression(w: &mut Writer, call: &Call) {
    let d = w.dialect;
    let f = call.function;
    w.table(&f.schema, &f.name);
    w.push("(");
    for (i, (param, value)) in call.args.iter().enumerate() {
        if i > 0 {
            w.push(", ");
        }
        let variadic = f.variadic && std::ptr::eq(*param, f.params.last().expect("a variadic function has params"));
        d.call_argument(w, param, value, variadic);
    }
    w.push(")");
}

/// The statement for a function returning nothing.
pub fn render_void_call(call: &Call, engine: Engine) -> Statement {
    let mut w = Writer::new(engine);
    w.push("SELECT ");
    call_expression(&mut w, call);
    w.finish()
}

/// A column item's value (cast and JSON path applied), as JSON expects it.
fn column_value(w: &mut Writer, plan: &ReadPlan, item: &PlannedItem) {
    let PlannedItem::Column { column, json_path, cast, .. } = item else { return };
    let d = w.dialect;
    // A domain with a cast to json is presented through it.
    if let (Some((schema, function)), true, None) =
        (column.representation.as_ref().and_then(|r| r.output.as_ref()), json_path.is_empty(), cast)
    {
        w.table(schema, function);
        w.push("(");
        w.column(&plan.alias, &column.name);
        w.push(")");
        return;
    }
    let kind = effective_kind(column, json_path, *cast);
    d.json_value(w, &kind, &|w| {
        let col = |w: &mut Writer| column_at(w, &plan.alias, column, json_path);
        match cast {
            Some(c) => d.cast(w, *c, &col),
            None => col(w),
        }
    });
}

/// `SELECT COUNT(*)` of the rows the top level's filters match; with
/// `explain`, PostgreSQL's plan for `SELECT 1` of those rows (for
/// `count=planned`), whose top node estimates how many rows match. The
/// plan of the count itself would not do: its top node is the aggregate,
/// estimated at one row.
pub fn render_count(plan: &ReadPlan, engine: Engine, explain: bool) -> Statement {
    let mut w = Writer::new(engine);
    if explain {
        w.push("EXPLAIN (FORMAT JSON) ");
        matching_rows(&mut w, plan, "1");
    } else {
        count_query(&mut w, plan);
    }
    w.finish()
}

fn count_query(w: &mut Writer, plan: &ReadPlan) {
    matching_rows(w, plan, "COUNT(*)");
}

/// `SELECT <what> FROM <source> WHERE <the top level's filters>`.
fn matching_rows(w: &mut Writer, plan: &ReadPlan, what: &str) {
    w.push("SELECT ");
    w.push(what);
    w.push(" FROM ");
    source(w, plan);
    w.push(" AS ");
    w.ident(&plan.alias);
    where_clause(w, plan, None);
}

/// `alias.column`, followed along `json_path` when it has one (PostgreSQL
/// reads an array or composite column as JSON for that, as PostgREST:
/// `numbers->0`, `address->>city`).
pub(super) fn column_at(w: &mut Writer, alias: &str, column: &Column, json_path: &[JsonStep]) {
    if json_path.is_empty() {
        return stored_or_computed(w, alias, column);
    }
    let d = w.dialect;
    d.json_path(w, &|w| d.json_source(w, &column.kind, &|w| stored_or_computed(w, alias, column)), json_path);
}

/// `alias.column`, or for a computed field its function called on the
/// row. The row is rebuilt from its columns because `alias` may be a
/// derived table of the table's rows (the page), whose row type is
/// anonymous.
fn stored_or_computed(w: &mut Writer, alias: &str, column: &Column) {
    match &column.computed {
        Some(by) => call_on_row(w, by, alias, None),
        None => w.column(alias, &column.name),
    }
}

/// `"s"."fn"(ROW(alias.*)::"s"."table")`: a computed field's or computed
/// relationship's function (or a handler's aggregate) called on the row of
/// `alias`; an aggregate takes its rows in `order`
/// (`agg(ROW(…)::t ORDER BY …)`).
pub(super) fn call_on_row(w: &mut Writer, by: &ComputedBy, alias: &str, order: Option<&Fragment>) {
    w.table(&by.function_schema, &by.function);
    w.push("(ROW(");
    w.ident(alias);
    w.push(".*)::");
    w.table(&by.row_schema, &by.row_type);
    if let Some(order) = order {
        w.push(" ORDER BY ");
        order(w);
    }
    w.push(")");
}

/// The JSON object for one row of `plan` (its alias in scope).
pub(super) fn object(w: &mut Writer, plan: &ReadPlan) {
    let mut pairs: Vec<DeferredMember> = Vec::with_capacity(plan.items.len());
    collect_pairs(plan, &mut pairs, &[]);
    let refs: Vec<Member> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_ref())).collect();
    let d = w.dialect;
    d.json_object(w, &refs);
}

/// One spread on the way from an object's level to a spread column: the
/// embed spread, and the alias of the level it is spread into.
type SpreadStep<'a> = (&'a EmbedPlan<'a>, &'a str);

/// The (key, value) pairs of `plan`'s object. Inside spreads (`spread`
/// leads from the object's level down to `plan`), each value is looked up
/// through every spread in turn: a to-one spread gives its row's value, a
/// to-many spread the array of its rows' values, as PostgREST spreads them.
fn collect_pairs<'a>(plan: &'a ReadPlan<'a>, pairs: &mut Vec<DeferredMember<'a>>, spread: &[SpreadStep<'a>]) {
    for item in visible(plan) {
        let (key, value): DeferredMember<'a> = match item {
            PlannedItem::Embed(e) if e.spread => {
                let mut deeper = spread.to_vec();
                deeper.push((e, plan.alias.as_str()));
                collect_pairs(&e.plan, pairs, &deeper);
                continue;
            }
            PlannedItem::Column { label, .. } => {
                (label.clone(), Box::new(move |w: &mut Writer| column_value(w, plan, item)))
            }
            PlannedItem::Embed(e) => (e.label.clone(), Box::new(move |w: &mut Writer| embed_value(w, e, &plan.alias))),
            // The grouped page holds it (only a top level is grouped; an
            // embed's aggregates are built by `aggregated_embed`).
            PlannedItem::Aggregate(a) => (a.label.clone(), Box::new(move |w: &mut Writer| grouped_value(w, plan, a))),
        };
        let value = spread.iter().rev().fold(value, |inner, &(embed, parent_alias)| {
            Box::new(move |w: &mut Writer| related_values(w, embed, parent_alias, inner.as_ref()))
        });
        pairs.push((key, value));
    }
}

/// The embedded value: an object (or null) for to-one, an array for
/// to-many.
fn embed_value(w: &mut Writer, embed: &EmbedPlan, parent_alias: &str) {
    if embed.plan.is_aggregated() {
        return aggregated_embed(w, embed, parent_alias);
    }
    related_values(w, embed, parent_alias, &|w| object(w, &embed.plan));
}

/// `value` (in scope of the embedded level) for the rows `embed` relates to
/// the parent row: the first row's for to-one, a JSON array of all of them
/// (ordered, limited) for to-many.
fn related_values(w: &mut Writer, embed: &EmbedPlan, parent_alias: &str, value: &Fragment) {
    let d = w.dialect;
    let child = &embed.plan;
    if embed.is_to_one() {
        w.push("(SELECT ");
        value(w);
        from_related(w, embed, parent_alias);
        d.limit_offset(w, Some(child.limit.unwrap_or(1).min(1)), child.offset);
        w.push(")");
        return;
    }
    let order = |w: &mut Writer| order_by(w, child);
    let order = (!child.order.is_empty()).then_some(&order as &Fragment);
    if d.aggregate_limits() {
        w.push("(SELECT ");
        d.json_array_agg_limited(w, value, order, child.limit, child.offset);
        from_related(w, embed, parent_alias);
        w.push(")");
    } else {
        w.push("(SELECT ");
        d.json_array_agg(w, &|w| d.derived_json(w, &|w| w.push("dbapi_rows.body")), None);
        w.push(" FROM (SELECT ");
        d.json_text(w, value);
        w.push(" AS body");
        from_related(w, embed, parent_alias);
        if let Some(order) = order {
            w.push(" ORDER BY ");
            order(w);
        }
        d.limit_offset(w, child.limit, child.offset);
        w.push(") AS dbapi_rows)");
    }
}

/// `FROM target AS tN [JOIN junction] WHERE <join> AND <child filters>`.
pub(super) fn from_related(w: &mut Writer, embed: &EmbedPlan, parent_alias: &str) {
    let child = &embed.plan;
    w.push(" FROM ");
    match &embed.relationship.function {
        // A computed relationship: the function's rows for the parent row
        // (no join condition).
        Some(by) => call_on_row(w, by, parent_alias, None),
        None => w.table(&child.table.schema, &child.table.name),
    }
    w.push(" AS ");
    w.ident(&child.alias);
    where_clause(w, child, Some((embed, parent_alias)));
}

/// The WHERE clause of a level: the join to its parent, its own filters
/// and the existence checks of its `!inner` embeds.
pub(super) fn where_clause(w: &mut Writer, plan: &ReadPlan, join: Option<(&EmbedPlan, &str)>) {
    let mut first = true;
    let mut and = |w: &mut Writer| {
        w.push(if first { " WHERE " } else { " AND " });
        first = false;
    };
    if let Some((embed, parent_alias)) = join {
        // A junction is joined in before WHERE can start; emit it here so
        // the FROM clause stays in text order.
        if let (Some(j), Some((jt, jalias))) = (&embed.relationship.junction, &embed.junction) {
            w.push(" JOIN ");
            w.table(&jt.schema, &jt.name);
            w.push(" AS ");
            w.ident(jalias);
            w.push(" ON ");
            for (i, (jcol, tcol)) in j.target_columns.iter().enumerate() {
                if i > 0 {
                    w.push(" AND ");
                }
                w.column(jalias, jcol);
                w.push(" = ");
                w.column(&plan.alias, tcol);
            }
            for (jcol, scol) in &j.source_columns {
                and(w);
                w.column(jalias, jcol);
                w.push(" = ");
                w.column(parent_alias, scol);
            }
        } else {
            for (scol, tcol) in &embed.relationship.columns {
                and(w);
                w.column(&plan.alias, tcol);
                w.push(" = ");
                w.column(parent_alias, scol);
            }
        }
    }
    for c in &plan.conditions {
        and(w);
        condition(w, plan, c);
    }
    for item in &plan.items {
        if let PlannedItem::Embed(e) = item
            && e.inner
        {
            and(w);
            exists(w, e, &plan.alias);
        }
    }
}

/// `plan`'s conditions joined by AND (`TRUE` when it has none), as an
/// expression on its rows.
pub(super) fn conditions(w: &mut Writer, plan: &ReadPlan) {
    if plan.conditions.is_empty() {
        w.push("TRUE");
    }
    for (i, c) in plan.conditions.iter().enumerate() {
        if i > 0 {
            w.push(" AND ");
        }
        condition(w, plan, c);
    }
}

fn exists(w: &mut Writer, embed: &EmbedPlan, parent_alias: &str) {
    w.push("EXISTS (SELECT 1");
    from_related(w, embed, parent_alias);
    w.push(")");
}

fn condition(w: &mut Writer, plan: &ReadPlan, c: &PlannedCondition) {
    let d = w.dialect;
    match c {
        PlannedCondition::Filter { column, json_path, negated, operation } => {
            if *negated {
                w.push("NOT ");
            }
            w.push("(");
            let lhs = |w: &mut Writer| column_at(w, &plan.alias, column, json_path);
            d.condition(w, &lhs, column, json_path, operation);
            w.push(")");
        }
        PlannedCondition::Group { negated, op, children } => {
            if *negated {
                w.push("NOT ");
            }
            w.push("(");
            let sep = match op {
                crate::grammar::LogicOp::And => " AND ",
                crate::grammar::LogicOp::Or => " OR ",
            };
            for (i, child) in children.iter().enumerate() {
                if i > 0 {
                    w.push(sep);
                }
                condition(w, plan, child);
            }
            w.push(")");
        }
        PlannedCondition::Unknown => w.push("NULL"),
        PlannedCondition::EmbedExists { label, exists: want } => {
            let embed = plan.items.iter().find_map(|i| match i {
                PlannedItem::Embed(e) if &e.label == label => Some(e),
                _ => None,
            });
            let embed = embed.expect("planner checked the embed label");
            if !want {
                w.push("NOT ");
            }
            exists(w, embed, &plan.alias);
        }
    }
}

pub(super) fn order_by(w: &mut Writer, plan: &ReadPlan) {
    let d = w.dialect;
    for (i, term) in plan.order.iter().enumerate() {
        if i > 0 {
            w.push(", ");
        }
        // A column of this level, or of a to-one embed looked up per row.
        let embed = term.via.as_ref().and_then(|label| {
            plan.items.iter().find_map(|item| match item {
                PlannedItem::Embed(e) if &e.label == label => Some(e),
                _ => None,
            })
        });
        let alias = embed.map_or(plan.alias.as_str(), |e| e.plan.alias.as_str());
        let column = |w: &mut Writer| column_at(w, alias, term.column, &term.json_path);
        let expr = |w: &mut Writer| match embed {
            Some(e) => {
                w.push("(SELECT ");
                column(w);
                from_related(w, e, &plan.alias);
                w.push(" LIMIT 1)");
            }
            None => column(w),
        };
        d.order_term(w, &expr, term.direction, term.nulls);
    }
}
