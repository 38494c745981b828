//! `GET /{table}` in the OpenAPI document: the read operation with the URL
//! grammar as parameters, and a realistic example request built from the
//! table's real columns and relations.

use std::collections::{BTreeMap, BTreeSet};

use utoipa::openapi::path::{OperationBuilder, Parameter};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Ref};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder, Type};

use crate::schema::{Cardinality, Column, Schema, Table, ValueKind};

use super::{
    ERROR_RESPONSES, encode_value, filter_parameter, filterable, is_simple, path_segment, query_parameter, quote_name,
    string,
};

pub(super) fn read_operation(
    schema: &Schema,
    table: &Table,
    component: &str,
    profile: &str,
    multi_profile: bool,
    max_rows: u64,
) -> utoipa::openapi::path::Operation {
    let kind = if table.is_view { "view" } else { "table" };
    let mut description = String::new();
    if let Some(comment) = table.comment.as_deref().filter(|c| !c.trim().is_empty()) {
        description.push_str(comment.trim());
        description.push_str("\n\n");
    }
    description.push_str("Example:\n\n    ");
    description.push_str(&example_request(schema, table));
    if profile != schema.default_schema() {
        description.push_str(&format!("\n    Accept-Profile: {profile}"));
    }
    let reserved: Vec<&Column> = table.columns.iter().filter(|c| !filterable(&c.name)).collect();
    if !reserved.is_empty() {
        let list: Vec<String> = reserved.iter().map(|c| format!("`{}`", c.name)).collect();
        description.push_str(&format!(
            "\n\nNo filter parameter for {}: the name is reserved or contains a dot; filter inside a logic tree \
             instead, e.g. `and=({}.eq.1)`.",
            list.join(", "),
            quote_name(&reserved[0].name),
        ));
    }

    let mut op = OperationBuilder::new()
        .tag(table.name.clone())
        .operation_id(Some(format!("get_{component}")))
        .summary(Some(format!("Read rows of the {kind} `{}`", table.name)))
        .description(Some(description))
        .parameter(select_parameter(schema, table))
        .parameter_ref(Ref::new("#/components/parameters/order"))
        .parameter_ref(Ref::new("#/components/parameters/limit"))
        .parameter_ref(Ref::new("#/components/parameters/offset"))
        .parameter_ref(Ref::new("#/components/parameters/range"))
        .parameter_ref(Ref::new("#/components/parameters/prefer"));
    if multi_profile {
        op = op.parameter_ref(Ref::new("#/components/parameters/acceptProfile"));
    }
    for column in table.columns.iter().chain(&table.computed).filter(|c| filterable(&c.name)) {
        op = op.parameter(filter_parameter(schema.engine, column));
    }

    let rows = ArrayBuilder::new().items(Ref::from_schema_name(component)).build();
    let csv = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("CSV with a header line, streamed row by row"))
        .build();
    let ndjson = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("One JSON object per line (NDJSON), streamed row by row"))
        .build();
    let mut ok = ResponseBuilder::new()
        .description(format!("The rows of `{}` (at most {max_rows}).", table.name))
        .header_ref("Content-Range", Ref::new("#/components/headers/Content-Range"))
        .content("application/json", ContentBuilder::new().schema(Some(rows.clone())).build())
        .content(
            "application/vnd.pgrst.object+json",
            ContentBuilder::new().schema(Some(Ref::from_schema_name(component))).build(),
        )
        .content("text/csv", ContentBuilder::new().schema(Some(csv)).build())
        .content("application/x-ndjson", ContentBuilder::new().schema(Some(ndjson)).build());
    // Media type handlers (PostgreSQL): the rows as their aggregate makes
    // them (one named `text/csv` replaces the entry above).
    for handler in schema.handlers_of(table) {
        let made = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(format!("The rows as the aggregate `{}` makes them", handler.aggregate)))
            .build();
        ok = ok.content(handler.media_type.clone(), ContentBuilder::new().schema(Some(made)).build());
    }
    let ok = ok.build();
    let partial = ResponseBuilder::new()
        .description("Partial content: a window (`limit`/`offset`, `Range`) of a larger result; see `Content-Range`.")
        .header_ref("Content-Range", Ref::new("#/components/headers/Content-Range"))
        .content("application/json", ContentBuilder::new().schema(Some(rows)).build())
        .build();

    let mut op = op.response("200", ok).response("206", partial);
    for (name, status, _) in ERROR_RESPONSES {
        op = op.response(*status, RefOr::Ref(Ref::from_response_name(*name)));
    }
    op.build()
}

fn select_parameter(schema: &Schema, table: &Table) -> Parameter {
    let mut d = String::from(
        "Columns to return, comma-separated (default `*`): `select=id,total`. Rename with `alias:column`, \
         cast with `column::text`, embed related rows with `relation(columns)` and count them with \
         `relation(count)`. Aggregate functions, when the API allows them (`api.aggregates`): `count()`, \
         `column.sum()`, `column.avg()`, `column.min()`, `column.max()`, with `alias:` and casts of the input \
         (`column::int.sum()`) and result (`column.sum()::text`); the other selected columns group the rows.",
    );
    let embeds = embeddable(schema, table);
    if !embeds.is_empty() {
        d.push_str(" Embeddable here: ");
        d.push_str(&embeds.join(", "));
        d.push('.');
    }
    query_parameter("select", d, string())
}

/// The relations `table` can embed, as `name` (one|many) with a `!hint`
/// where the target alone is ambiguous.
fn embeddable(schema: &Schema, table: &Table) -> Vec<String> {
    let rels = schema.relationships_from(table);
    let mut per_target: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rels.iter().filter(|r| r.function.is_none()) {
        *per_target.entry(r.target.1.as_str()).or_default() += 1;
    }
    let mut out = BTreeSet::new();
    for r in rels {
        let arity = if r.cardinality.is_to_one() { "one" } else { "many" };
        // A computed relationship is embedded by its function's name.
        if let Some(by) = &r.function {
            out.insert(format!("`{}` ({arity}, computed: `{}`)", quote_name(&by.function), r.target.1));
            continue;
        }
        let target = quote_name(&r.target.1);
        let name = if per_target[r.target.1.as_str()] > 1 {
            let hint = match &r.junction {
                Some(j) => &j.table.1,
                None => &r.constraint,
            };
            format!("{target}!{}", quote_name(hint))
        } else {
            target
        };
        out.insert(format!("`{name}` ({arity})"));
    }
    out.into_iter().collect()
}

/// A realistic `GET` for the table, from its real columns and relations.
fn example_request(schema: &Schema, table: &Table) -> String {
    let simple_cols: Vec<&Column> = table.columns.iter().filter(|c| is_simple(&c.name)).collect();
    let mut select: Vec<String> = simple_cols.iter().take(2).map(|c| c.name.clone()).collect();
    if let Some(embed) = example_embed(schema, table) {
        if select.is_empty() {
            select.push("*".into());
        }
        select.push(embed);
    }

    let mut params = Vec::new();
    if !select.is_empty() {
        params.push(format!("select={}", select.join(",")));
    }
    if let Some(filter) = example_filter(table, &simple_cols) {
        params.push(filter);
    }
    let order = table
        .primary_key
        .iter()
        .find(|k| is_simple(k))
        .map(|k| format!("{k}.desc"))
        .or_else(|| simple_cols.first().map(|c| format!("{}.asc", c.name)));
    if let Some(order) = order {
        params.push(format!("order={order}"));
    }
    params.push("limit=10".into());
    format!("GET /{}?{}", path_segment(&table.name), params.join("&"))
}

/// `target(column)` for an unambiguous relation of the table, preferring a
/// to-one relation and a descriptive (text, non-key) column of the target.
fn example_embed(schema: &Schema, table: &Table) -> Option<String> {
    let rels = schema.relationships_from(table);
    let unambiguous = |name: &str| rels.iter().filter(|r| r.target.1 == name).count() == 1;
    let candidates =
        rels.iter().filter(|r| r.target.0 == table.schema && is_simple(&r.target.1) && unambiguous(&r.target.1));
    let rel =
        candidates.clone().find(|r| r.cardinality == Cardinality::ManyToOne).or_else(|| candidates.clone().next())?;
    let target = schema.table(&rel.target.0, &rel.target.1)?;
    let column = target
        .columns
        .iter()
        .filter(|c| is_simple(&c.name))
        .find(|c| matches!(c.kind, ValueKind::Text) && !target.primary_key.contains(&c.name))
        .or_else(|| target.columns.iter().find(|c| is_simple(&c.name)))
        .map(|c| c.name.as_str())
        .unwrap_or("*");
    Some(format!("{}({column})", target.name))
}

/// One filter on a column that makes a plausible condition, or none.
fn example_filter(table: &Table, columns: &[&Column]) -> Option<String> {
    let is_key = |c: &Column| {
        table.primary_key.contains(&c.name) || table.foreign_keys.iter().any(|fk| fk.columns.contains(&c.name))
    };
    let candidates = || columns.iter().copied().filter(|c| filterable(&c.name) && !is_key(c));
    let pick = |p: fn(&ValueKind) -> bool| candidates().find(|c| p(&c.kind));
    if let Some(c) = pick(|k| matches!(k, ValueKind::Enum(l) if !l.is_empty())) {
        let ValueKind::Enum(labels) = &c.kind else { unreachable!() };
        return Some(format!("{}=eq.{}", c.name, encode_value(&labels[0])));
    }
    if let Some(c) = pick(|k| matches!(k, ValueKind::Boolean)) {
        return Some(format!("{}=is.true", c.name));
    }
    if let Some(c) = pick(|k| matches!(k, ValueKind::Date | ValueKind::Timestamp | ValueKind::TimestampTz)) {
        return Some(format!("{}=gte.2024-01-01", c.name));
    }
    if let Some(c) = pick(|k| matches!(k, ValueKind::Integer | ValueKind::Float | ValueKind::Numeric)) {
        return Some(format!("{}=gt.10", c.name));
    }
    if let Some(c) = pick(|k| matches!(k, ValueKind::Text)) {
        return Some(format!("{}=ilike.*a*", c.name));
    }
    None
}
