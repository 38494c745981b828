//! The OpenAPI 3.1 document of one exposed schema (profile), generated from
//! the introspected schema: one `GET /{table}` per table and view, with
//! PostgREST's URL grammar documented as parameters, and one component
//! schema per table describing its rows.
//!
//! This file assembles the document and holds the names its parts share;
//! `tables.rs` writes the read operation of each table, `writes.rs` its
//! write operations, `functions.rs` the `/rpc/{name}` paths,
//! `parameters.rs` the shared parameters and headers, `rows.rs` the row
//! and error schemas, and `roles.rs` narrows the document to what a
//! caller's role may do (the role's view of the schema already leaves out
//! what it cannot see). Everything is built
//! from ordered maps and the schema's own (name-ordered) tables, so the
//! output is deterministic.

mod functions;
mod parameters;
mod roles;
mod rows;
mod tables;
#[cfg(test)]
mod tests;
mod writes;

pub use roles::only_granted;

use std::collections::{BTreeMap, BTreeSet};

use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::schema::{ObjectBuilder, Ref};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, PathsBuilder, Response,
    ResponseBuilder, Type,
};

use crate::schema::{Schema, Table};

use parameters::{
    accept_profile_parameter, content_range_header, filter_parameter, filterable, limit_parameter, offset_parameter,
    order_parameter, prefer_parameter, prefer_write_parameter, query_parameter, range_parameter,
};
use rows::{error_schema, row_schema, value_schema};

/// Query keys the grammar reserves: a column of that name cannot be filtered
/// with `name=op.value`.
const RESERVED_KEYS: &[&str] = &["select", "columns", "on_conflict", "order", "limit", "offset", "or", "and"];

/// Name of the shared error schema (and base of the shared responses).
const ERROR_SCHEMA: &str = "Error";

/// The OpenAPI document for one exposed schema (profile) of the database.
pub fn document(schema: &Schema, profile: &str, max_rows: u64) -> OpenApi {
    let tables: Vec<&Table> = schema.tables_in(profile).collect();
    let names = component_names(&tables);
    let multi_profile = schema.schemas.len() > 1;

    let mut paths = PathsBuilder::new();
    let mut components = ComponentsBuilder::new();
    for table in &tables {
        let component = &names[&table.name];
        let mut item = PathItem::new(
            HttpMethod::Get,
            tables::read_operation(schema, table, component, profile, multi_profile, max_rows),
        );
        if !table.is_view {
            writes::add_write_operations(&mut item, schema.engine, table, component);
        }
        paths = paths.path(format!("/{}", path_segment(&table.name)), item);
        components = components.schema(component.clone(), row_schema(table));
    }
    let mut overloads: BTreeMap<&str, Vec<&crate::schema::Function>> = BTreeMap::new();
    for f in schema.functions_in(profile) {
        overloads.entry(f.name.as_str()).or_default().push(f);
    }
    for functions in overloads.values() {
        let (path, item) = functions::function_path(schema, functions, &names);
        paths = paths.path(path, item);
    }

    components = components
        .schema(ERROR_SCHEMA, error_schema())
        .header("Content-Range", content_range_header())
        .parameter("order", order_parameter())
        .parameter("limit", limit_parameter(max_rows))
        .parameter("offset", offset_parameter())
        .parameter("range", range_parameter())
        .parameter("prefer", prefer_parameter())
        .parameter("preferWrite", prefer_write_parameter());
    if multi_profile {
        components = components.parameter("acceptProfile", accept_profile_parameter(schema, profile));
    }
    for (name, _, description) in ERROR_RESPONSES.iter().chain(WRITE_ERROR_RESPONSES) {
        components = components.response(*name, error_response(description));
    }

    let mut tags: Vec<_> =
        tables.iter().map(|t| TagBuilder::new().name(t.name.clone()).description(t.comment.clone()).build()).collect();
    if !overloads.is_empty() {
        tags.push(
            TagBuilder::new().name("rpc").description(Some("Database functions, called at `/rpc/{name}`.")).build(),
        );
    }

    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(format!("dbapi: {profile}"))
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(info_description(schema, profile, max_rows)))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .tags((!tags.is_empty()).then_some(tags))
        .build()
}

/// The document as served under `api.pathPrefix`: its paths stay relative
/// (`/orders`) and the prefix is the server they resolve against, so
/// Swagger UI and generated clients call `/rest/v1/orders`.
pub fn served_under(mut doc: OpenApi, prefix: &str) -> OpenApi {
    if !prefix.is_empty() {
        doc.servers = Some(vec![utoipa::openapi::Server::new(prefix)]);
    }
    doc
}

// ---------------------------------------------------------------------------
// Document-level text

fn info_description(schema: &Schema, profile: &str, max_rows: u64) -> String {
    let mut s = format!(
        "REST API over the `{profile}` schema of a {engine} database, following PostgREST's URL grammar. \
         Each table and view is a resource at `/{{table}}`: read with GET, write with POST, PATCH, PUT and \
         DELETE (writable views accept writes too); each database function is called at `/rpc/{{name}}`.\n\n\
         - **Filters**: `column=operator.value`, e.g. `total=gt.5`, `status=in.(new,paid)`, \
         `name=ilike.*smith*`, `deleted_at=is.null`. Prefix an operator with `not.` to negate it; \
         combine with `or=(a.eq.1,b.gt.2)` and `and=(...)`. Operators: `eq`, `neq`, `gt`, `gte`, `lt`, \
         `lte`, `like`, `ilike`, `match`, `imatch`, `in`, `is`, `isdistinct`, `cs`, `cd`, `ov`, `fts` and \
         variants (not every engine supports every operator).\n\
         - **`select`**: the columns to return, `select=id,total`; rename with `alias:column`, cast with \
         `column::text`, read into JSON with `data->>key`, and embed related tables through their \
         foreign keys with `select=*,customers(name)`.\n\
         - **`order`**: `order=created_at.desc,id.asc.nullslast`.\n\
         - **`limit` / `offset`**, or the `Range: 0-24` header, select a window of the rows. \
         At most {max_rows} rows are returned by one request whatever the limit; `Content-Range` \
         tells which rows came back.\n\
         - **`Prefer: count=exact`** adds the total row count to `Content-Range` (`0-24/3573`).\n\
         - **`Accept`**: `application/json` (an array), `application/vnd.pgrst.object+json` (exactly one \
         row, as an object), `text/csv`, or `application/x-ndjson` (one object per line). CSV and \
         NDJSON are streamed from the database row by row, without `Content-Range`; a role's \
         `maxRows` may let them return more rows than a JSON answer.\n\n",
        engine = schema.engine.name(),
    );
    if schema.schemas.len() > 1 {
        s.push_str(&format!(
            "The database exposes several schemas ({}); choose one with the `Accept-Profile` header \
             (default `{}`). This document describes `{profile}`.\n\n",
            schema.schemas.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", "),
            schema.default_schema(),
        ));
    }
    s.push_str("Errors are JSON objects with `code`, `message`, `details` and `hint`. Interactive documentation lives at `/_/docs/`.");
    s
}

/// Shared error responses: (component name, status, description).
const ERROR_RESPONSES: &[(&str, &str, &str)] = &[
    (
        "BadRequest",
        "400",
        "The URL or a header could not be parsed, or names an unknown column, relationship or operator.",
    ),
    ("NotFound", "404", "The table or view is not (or no longer) exposed."),
    (
        "NotAcceptable",
        "406",
        "The `Accept` type cannot be produced (e.g. `application/vnd.pgrst.object+json` when the result is not \
         exactly one row), or the `Accept-Profile` schema is not exposed.",
    ),
    ("ServiceUnavailable", "503", "The database is unreachable or busy; retry after the `Retry-After` delay."),
];

/// Further error responses of writes.
const WRITE_ERROR_RESPONSES: &[(&str, &str, &str)] = &[
    ("Conflict", "409", "A unique or foreign key constraint refused the write; `details` names the constraint."),
    ("PayloadTooLarge", "413", "The body is larger than `api.maxBodyBytes`."),
];

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name(ERROR_SCHEMA))).build())
        .build()
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

// ---------------------------------------------------------------------------
// Names

/// Component names for the tables: the table name restricted to the
/// characters OpenAPI allows in component keys, made unique (also against
/// the shared `Error` schema).
fn component_names(tables: &[&Table]) -> BTreeMap<String, String> {
    let valid = |ch: char| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '_');
    let mut used: BTreeSet<String> = BTreeSet::from([ERROR_SCHEMA.to_string()]);
    let mut out = BTreeMap::new();
    // Names that are already valid keep their name first, so that
    // `line items` cannot take `line_items` from the table of that name.
    for table in tables {
        if !table.name.is_empty() && table.name.chars().all(valid) && used.insert(table.name.clone()) {
            out.insert(table.name.clone(), table.name.clone());
        }
    }
    let rest: Vec<&&Table> = tables.iter().filter(|t| !out.contains_key(&t.name)).collect();
    for table in rest {
        let mut base: String = table.name.chars().map(|ch| if valid(ch) { ch } else { '_' }).collect();
        if base.is_empty() {
            base.push('_');
        }
        let mut name = base.clone();
        let mut n = 2;
        while used.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        used.insert(name.clone());
        out.insert(table.name.clone(), name);
    }
    out
}

/// A name usable as-is in the URL grammar.
fn is_simple(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A name in the grammar, double-quoted when it has special characters.
fn quote_name(name: &str) -> String {
    if is_simple(name) { name.to_string() } else { format!("\"{}\"", name.replace('"', "\\\"")) }
}

/// A value inside `in.(...)`: quoted when it has a separator.
fn list_item(value: &str) -> String {
    if value.contains([',', '(', ')', '"', ' ']) {
        format!("\"{}\"", value.replace('"', "\\\""))
    } else {
        value.to_string()
    }
}

/// Percent-encodes everything but unreserved characters and those the
/// grammar uses literally.
fn encode(value: &str, keep: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric() || "-._~".contains(c) || keep.contains(c) {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_value(value: &str) -> String {
    encode(value, "*,():")
}

/// The table name as a path segment (and OpenAPI path key: no braces).
fn path_segment(name: &str) -> String {
    encode(name, "")
}
