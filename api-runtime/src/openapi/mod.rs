//! The OpenAPI 3.1 document of one exposed schema (profile), generated from
//! the introspected schema: one `GET /{table}` per table and view, with
//! PostgREST's URL grammar documented as parameters, and one component
//! schema per table describing its rows.
//!
//! This file assembles the document and holds what its parts share
//! (parameters, value and row schemas, names); `tables.rs` writes the read
//! operation of each table, `writes.rs` its write operations and
//! `functions.rs` the `/rpc/{name}` paths. Everything is built
//! from ordered maps and the schema's own (name-ordered) tables, so the
//! output is deterministic.

mod functions;
mod roles;
mod tables;
mod writes;

pub use roles::only_granted;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{HttpMethod, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Ref, SchemaType};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, KnownFormat, OpenApi, OpenApiBuilder, PathItem, PathsBuilder,
    RefOr, Required, Response, ResponseBuilder, SchemaFormat, Type,
};

use crate::schema::{Column, Engine, Schema, Table, ValueKind};

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
         row, as an object) or `text/csv`.\n\n",
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

// ---------------------------------------------------------------------------
// Parameters

fn query_parameter(name: &str, description: String, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

fn header_parameter(name: &str, required: bool, description: String, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(if required { Required::True } else { Required::False })
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn order_parameter() -> Parameter {
    query_parameter(
        "order",
        "Sort order, comma-separated: `order=created_at.desc,id`, each `column[.asc|.desc][.nullsfirst|.nullslast]`. \
         Embedded rows are ordered with `relation.order=...`."
            .into(),
        string(),
    )
}

fn limit_parameter(max_rows: u64) -> Parameter {
    query_parameter(
        "limit",
        format!(
            "Most rows to return. At most {max_rows} are returned whatever the limit. `relation.limit=n` limits embedded rows."
        ),
        ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)),
    )
}

fn offset_parameter() -> Parameter {
    query_parameter(
        "offset",
        "Rows to skip before the first one returned.".into(),
        ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)),
    )
}

fn range_parameter() -> Parameter {
    header_parameter(
        "Range",
        false,
        "Window of rows, both ends inclusive and counted from 0: `0-24` (or `items=0-24`); `25-` skips 25 rows. \
         An alternative to `limit`/`offset`."
            .into(),
        string().pattern(Some("^(items=)?[0-9]+-[0-9]*$")),
    )
}

fn prefer_parameter() -> Parameter {
    header_parameter(
        "Prefer",
        false,
        "Comma-separated preferences. `count=exact` adds the total row count to `Content-Range` (`0-24/3573`); \
         `count=planned` and `count=estimated` are accepted too. `handling=strict` refuses unknown preferences."
            .into(),
        string(),
    )
}

fn prefer_write_parameter() -> Parameter {
    header_parameter(
        "Prefer",
        false,
        "Comma-separated preferences of a write: `return=minimal|headers-only|representation`, \
         `resolution=merge-duplicates|ignore-duplicates` (POST), `missing=default` (POST), `tx=rollback` \
         (run, answer, keep nothing), `max-affected=N` with `handling=strict` (PATCH, DELETE)."
            .into(),
        string(),
    )
}

fn accept_profile_parameter(schema: &Schema, profile: &str) -> Parameter {
    let default = schema.default_schema();
    let required = profile != default;
    let mut d = format!("Schema to read from (default `{default}`). This document describes `{profile}`");
    d.push_str(if required { ", so the header is required." } else { "." });
    header_parameter(
        "Accept-Profile",
        required,
        d,
        string().enum_values(Some(schema.schemas.iter().cloned())).default(Some(Value::from(profile))),
    )
}

/// Whether a column can be filtered with a top-level `column=op.value`.
fn filterable(name: &str) -> bool {
    !name.is_empty() && !name.contains('.') && !RESERVED_KEYS.contains(&name)
}

fn filter_parameter(engine: Engine, column: &Column) -> Parameter {
    let c = &column.name;
    let mut examples: Vec<String> = filter_examples(engine, &column.kind)
        .into_iter()
        .map(|e| if e.starts_with("->") { format!("`{c}{e}`") } else { format!("`{c}={e}`") })
        .collect();
    if column.nullable {
        let null = format!("`{c}=is.null`");
        if !examples.contains(&null) {
            examples.push(null);
        }
    }
    let description = format!("Filter on `{c}` ({}): {}", column.db_type, examples.join(", "));
    query_parameter(c, description, string())
}

/// Example filters for a kind: `op.value`, or `->>key=op.value` for paths.
fn filter_examples(engine: Engine, kind: &ValueKind) -> Vec<String> {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match kind {
        ValueKind::Integer | ValueKind::Float | ValueKind::Numeric => v(&["eq.10", "gt.5", "in.(1,2)"]),
        ValueKind::Boolean => v(&["is.true", "eq.false"]),
        ValueKind::Text | ValueKind::Other => v(&["eq.abc", "ilike.*abc*", "in.(abc,def)"]),
        ValueKind::Enum(labels) => match labels.as_slice() {
            [] => v(&["eq.value"]),
            [one] => vec![format!("eq.{}", encode_value(one))],
            [a, b, ..] => vec![
                format!("eq.{}", encode_value(a)),
                format!("in.({},{})", encode_value(&list_item(a)), encode_value(&list_item(b))),
            ],
        },
        ValueKind::Uuid => v(&["eq.123e4567-e89b-12d3-a456-426614174000"]),
        ValueKind::Date => v(&["eq.2024-01-31", "gte.2024-01-01"]),
        ValueKind::Time => v(&["gte.09:00:00", "lt.17:00"]),
        ValueKind::Timestamp => v(&["gte.2024-01-01T00:00:00", "lt.2024-02-01"]),
        ValueKind::TimestampTz => v(&["gte.2024-01-01T00:00:00Z", "lt.2024-02-01"]),
        ValueKind::Json => {
            let mut out = v(&["->>key=eq.value"]);
            if engine != Engine::Sqlite {
                out.push(r#"cs.{"key":"value"}"#.into());
            }
            out
        }
        ValueKind::Array(inner) => {
            let values = match inner.as_ref() {
                ValueKind::Integer | ValueKind::Float | ValueKind::Numeric => "{1,2}",
                _ => "{a,b}",
            };
            vec![format!("cs.{values}"), format!("ov.{values}")]
        }
        ValueKind::Bytes => v(&["is.not_null"]),
    }
}

// ---------------------------------------------------------------------------
// Component schemas

fn row_schema(table: &Table) -> utoipa::openapi::Schema {
    let kind = if table.is_view { "view" } else { "table" };
    let description = match table.comment.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(comment) => comment.to_string(),
        None => format!("A row of the {kind} `{}`.", table.name),
    };
    let mut object = ObjectBuilder::new().schema_type(Type::Object).description(Some(description));
    for column in &table.columns {
        object = object.property(
            column.name.clone(),
            value_schema(&column.kind, column.nullable, Some(column_description(table, column))),
        );
        if !column.nullable && column.default.is_none() {
            object = object.required(column.name.clone());
        }
    }
    object.build().into()
}

/// The column's comment, then its database type and key/default notes:
/// "Order total. `numeric(10,2)`, default `0`".
fn column_description(table: &Table, column: &Column) -> String {
    let mut notes = vec![format!("`{}`", column.db_type)];
    if table.primary_key.contains(&column.name) {
        notes.push(if table.primary_key.len() == 1 { "primary key".into() } else { "part of the primary key".into() });
    }
    for fk in table.foreign_keys.iter().filter(|fk| fk.columns.contains(&column.name)) {
        let target = if fk.referenced_schema == table.schema {
            fk.referenced_table.clone()
        } else {
            format!("{}.{}", fk.referenced_schema, fk.referenced_table)
        };
        if fk.columns.len() == 1 {
            let col = fk.referenced_columns.first().map(String::as_str).unwrap_or("?");
            notes.push(format!("foreign key to `{target}.{col}`"));
        } else {
            notes.push(format!("part of a foreign key to `{target}({})`", fk.referenced_columns.join(", ")));
        }
    }
    if let Some(default) = &column.default {
        notes.push(format!("default `{default}`"));
    }
    let notes = notes.join(", ");
    match column.comment.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(comment) => format!("{comment}\n\n{notes}"),
        None => notes,
    }
}

/// JSON Schema of one value; nullable the 3.1 way (`["integer","null"]`).
fn value_schema(kind: &ValueKind, nullable: bool, description: Option<String>) -> utoipa::openapi::Schema {
    let ty =
        |t: Type| -> SchemaType { if nullable { SchemaType::from_iter([t, Type::Null]) } else { SchemaType::new(t) } };
    let format = |f: KnownFormat| Some(SchemaFormat::KnownFormat(f));
    let object = ObjectBuilder::new().description(description.clone());
    let object = match kind {
        ValueKind::Integer => object.schema_type(ty(Type::Integer)),
        ValueKind::Float | ValueKind::Numeric => object.schema_type(ty(Type::Number)),
        ValueKind::Boolean => object.schema_type(ty(Type::Boolean)),
        ValueKind::Uuid => object.schema_type(ty(Type::String)).format(Some(SchemaFormat::Custom("uuid".into()))),
        ValueKind::Date => object.schema_type(ty(Type::String)).format(format(KnownFormat::Date)),
        ValueKind::TimestampTz => object.schema_type(ty(Type::String)).format(format(KnownFormat::DateTime)),
        // Without a zone these are not RFC 3339 `time` / `date-time` values:
        // plain strings, the database type says the rest.
        ValueKind::Time | ValueKind::Timestamp => object.schema_type(ty(Type::String)),
        ValueKind::Text | ValueKind::Bytes | ValueKind::Other => object.schema_type(ty(Type::String)),
        ValueKind::Enum(labels) => {
            let mut values: Vec<Value> = labels.iter().cloned().map(Value::from).collect();
            if nullable {
                values.push(Value::Null);
            }
            object.schema_type(ty(Type::String)).enum_values(Some(values))
        }
        ValueKind::Json => object.schema_type(SchemaType::AnyValue),
        ValueKind::Array(inner) => {
            return ArrayBuilder::new()
                .schema_type(ty(Type::Array))
                .items(RefOr::T(value_schema(inner, false, None)))
                .description(description)
                .build()
                .into();
        }
    };
    object.build().into()
}

fn error_schema() -> utoipa::openapi::Schema {
    let nullable_string = || ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null]));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("An error, in PostgREST's format."))
        .property("code", string().description(Some("Error code, e.g. `PGRST100` or a SQLSTATE.")))
        .property("message", string().description(Some("What went wrong.")))
        .property("details", nullable_string().description(Some("More about the cause, when known.")))
        .property("hint", nullable_string().description(Some("How to fix the request, when known.")))
        .required("code")
        .required("message")
        .build()
        .into()
}

fn content_range_header() -> Header {
    HeaderBuilder::new()
        .schema(Some(string()))
        .description(Some(
            "The rows returned and, with `Prefer: count=exact`, the total: `0-24/3573`, `0-24/*` when not \
             counted, `*/0` when empty.",
        ))
        .build()
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

#[cfg(test)]
mod tests {
    use dbapi_crds::config::TableFilter;
    use serde_json::Value;

    use super::*;
    use crate::schema::{ForeignKey, Function, Returns, Routines, Volatility};

    fn col(name: &str, db_type: &str, kind: ValueKind, nullable: bool) -> Column {
        Column {
            name: name.into(),
            db_type: db_type.into(),
            kind,
            nullable,
            default: None,
            comment: None,
            representation: None,
        }
    }

    fn sample() -> Schema {
        let customers = Table {
            schema: "public".into(),
            name: "customers".into(),
            is_view: false,
            writable: crate::schema::Writable::ALL,
            columns: vec![
                Column {
                    default: Some("nextval('customers_id_seq'::regclass)".into()),
                    ..col("id", "integer", ValueKind::Integer, false)
                },
                col("name", "text", ValueKind::Text, false),
                col("email", "character varying(200)", ValueKind::Text, true),
                col("profile", "jsonb", ValueKind::Json, true),
                col("tags", "text[]", ValueKind::Array(Box::new(ValueKind::Text)), true),
                col("id_ext", "uuid", ValueKind::Uuid, false),
            ],
            primary_key: vec!["id".into()],
            unique: vec![],
            foreign_keys: vec![],
            comment: Some("People who place orders.".into()),
        };
        let statuses: Vec<String> = ["pending", "shipped", "cancelled"].iter().map(|s| s.to_string()).collect();
        let orders = Table {
            schema: "public".into(),
            name: "orders".into(),
            is_view: false,
            writable: crate::schema::Writable::ALL,
            columns: vec![
                Column {
                    default: Some("nextval('orders_id_seq'::regclass)".into()),
                    ..col("id", "integer", ValueKind::Integer, false)
                },
                Column {
                    comment: Some("Amount due.".into()),
                    ..col("total", "numeric(10,2)", ValueKind::Numeric, false)
                },
                col("customer_id", "integer", ValueKind::Integer, false),
                Column {
                    default: Some("'pending'::order_status".into()),
                    ..col("status", "order_status", ValueKind::Enum(statuses), false)
                },
                col("shipped_at", "timestamp with time zone", ValueKind::TimestampTz, true),
                col("limit", "integer", ValueKind::Integer, true),
            ],
            primary_key: vec!["id".into()],
            unique: vec![],
            foreign_keys: vec![ForeignKey {
                name: "orders_customer_id_fkey".into(),
                columns: vec!["customer_id".into()],
                referenced_schema: "public".into(),
                referenced_table: "customers".into(),
                referenced_columns: vec!["id".into()],
            }],
            comment: None,
        };
        let view = Table {
            schema: "public".into(),
            name: "order_totals".into(),
            is_view: true,
            writable: crate::schema::Writable::ALL,
            columns: vec![
                col("customer_id", "integer", ValueKind::Integer, true),
                col("sum", "numeric", ValueKind::Numeric, true),
                col("day", "date", ValueKind::Date, true),
            ],
            primary_key: vec![],
            unique: vec![],
            foreign_keys: vec![],
            comment: Some("Totals per customer.".into()),
        };
        let add = Function {
            schema: "public".into(),
            name: "add_them".into(),
            params: vec![
                col("a", "integer", ValueKind::Integer, true),
                Column { default: Some("DEFAULT".into()), ..col("b", "integer", ValueKind::Integer, true) },
            ],
            variadic: false,
            returns: Returns::Scalar(crate::schema::scalar_result(
                "public",
                "add_them",
                col("", "integer", ValueKind::Integer, true),
            )),
            set_returning: false,
            volatility: Volatility::Immutable,
            comment: Some("Adds two integers.".into()),
        };
        let orders_of = Function {
            name: "orders_of".into(),
            params: vec![col("customer", "integer", ValueKind::Integer, true)],
            returns: Returns::Rows(orders.clone()),
            set_returning: true,
            volatility: Volatility::Volatile,
            comment: None,
            ..add.clone()
        };
        let routines = Routines { functions: vec![add, orders_of], uncallable: vec![] };
        Schema::new(Engine::Postgres, vec!["public".into()], vec![customers, orders, view], &TableFilter::default())
            .with_routines(routines, &TableFilter::default())
    }

    fn json() -> Value {
        serde_json::to_value(document(&sample(), "public", 1000)).unwrap()
    }

    fn params(doc: &Value, path: &str) -> Vec<Value> {
        doc["paths"][path]["get"]["parameters"].as_array().unwrap().clone()
    }

    #[test]
    fn declares_openapi_3_1() {
        let text = document(&sample(), "public", 1000).to_json().unwrap();
        assert!(text.starts_with(r#"{"openapi":"3.1.0""#), "{}", &text[..40]);
        let doc = json();
        assert_eq!(doc["info"]["title"], "dbapi: public");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(doc["info"]["description"].as_str().unwrap().contains("/_/docs/"));
    }

    #[test]
    fn tables_are_read_and_written_views_read_functions_called() {
        let doc = json();
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(
            paths.keys().collect::<Vec<_>>(),
            ["/customers", "/order_totals", "/orders", "/rpc/add_them", "/rpc/orders_of"]
        );
        let methods = |path: &str| doc["paths"][path].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(methods("/orders"), ["get", "put", "post", "delete", "patch"]);
        assert_eq!(methods("/order_totals"), ["get"]);
        // A function that may write has no GET.
        assert_eq!(methods("/rpc/add_them"), ["get", "post"]);
        assert_eq!(methods("/rpc/orders_of"), ["post"]);
        let insert = &doc["paths"]["/orders"]["post"];
        assert_eq!(insert["responses"]["409"]["$ref"], "#/components/responses/Conflict");
        let body = &insert["requestBody"]["content"]["application/json"]["schema"]["oneOf"];
        assert_eq!(body[0]["$ref"], "#/components/schemas/orders");
        assert_eq!(body[1]["items"]["$ref"], "#/components/schemas/orders");
        let rows = &doc["paths"]["/rpc/orders_of"]["post"]["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(rows["items"]["$ref"], "#/components/schemas/orders", "a table's rows reuse its schema");
        assert!(doc["paths"]["/order_totals"]["get"]["summary"].as_str().unwrap().contains("view"));
        assert!(doc["paths"]["/orders"]["get"]["summary"].as_str().unwrap().contains("table"));
        let responses = doc["paths"]["/orders"]["get"]["responses"].as_object().unwrap();
        assert_eq!(responses.keys().collect::<Vec<_>>(), ["200", "206", "400", "404", "406", "503"]);
        let ok = &responses["200"]["content"];
        assert_eq!(ok["application/json"]["schema"]["items"]["$ref"], "#/components/schemas/orders");
        assert_eq!(ok["application/vnd.pgrst.object+json"]["schema"]["$ref"], "#/components/schemas/orders");
        assert!(ok["text/csv"].is_object());
        assert_eq!(responses["400"]["$ref"], "#/components/responses/BadRequest");
        assert_eq!(
            doc["components"]["responses"]["BadRequest"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error"
        );
    }

    #[test]
    fn columns_become_filter_parameters() {
        let doc = json();
        let orders = params(&doc, "/orders");
        let total = orders.iter().find(|p| p["name"] == "total").expect("total filter");
        assert_eq!(total["in"], "query");
        assert_eq!(total["required"], false);
        assert_eq!(
            total["description"],
            "Filter on `total` (numeric(10,2)): `total=eq.10`, `total=gt.5`, `total=in.(1,2)`"
        );
        assert!(orders.iter().any(|p| p["name"] == "status"));
        // A column named like a reserved key is not a second `limit` parameter.
        assert_eq!(
            orders.iter().filter(|p| p["name"] == "limit" || p["$ref"] == "#/components/parameters/limit").count(),
            1
        );
        assert!(doc["paths"]["/orders"]["get"]["description"].as_str().unwrap().contains("and=(limit.eq.1)"));
        let shipped = orders.iter().find(|p| p["name"] == "shipped_at").unwrap();
        assert!(shipped["description"].as_str().unwrap().contains("`shipped_at=is.null`"));
        for p in ["order", "offset", "range", "prefer"] {
            let r = format!("#/components/parameters/{p}");
            assert!(orders.iter().any(|x| x["$ref"] == r.as_str()), "{p}");
        }
        // One profile: no Accept-Profile.
        assert!(doc["components"]["parameters"].get("acceptProfile").is_none());
        let view = params(&doc, "/order_totals");
        assert!(view.iter().any(|p| p["name"] == "day"));
    }

    #[test]
    fn row_schemas_map_kinds_and_nullability() {
        let doc = json();
        let schemas = &doc["components"]["schemas"];
        let orders = &schemas["orders"];
        assert_eq!(orders["type"], "object");
        assert_eq!(orders["properties"]["total"]["type"], "number");
        assert_eq!(orders["properties"]["id"]["type"], "integer");
        assert_eq!(orders["properties"]["shipped_at"]["type"], serde_json::json!(["string", "null"]));
        assert_eq!(orders["properties"]["shipped_at"]["format"], "date-time");
        assert_eq!(orders["properties"]["status"]["enum"], serde_json::json!(["pending", "shipped", "cancelled"]));
        assert_eq!(orders["required"], serde_json::json!(["total", "customer_id"]));
        let desc = |t: &str, c: &str| schemas[t]["properties"][c]["description"].as_str().unwrap().to_string();
        assert_eq!(desc("orders", "total"), "Amount due.\n\n`numeric(10,2)`");
        assert_eq!(desc("orders", "customer_id"), "`integer`, foreign key to `customers.id`");
        assert!(desc("orders", "id").starts_with("`integer`, primary key, default `nextval("));
        let customers = &schemas["customers"];
        assert!(customers["properties"]["profile"].get("type").is_none(), "json is any value");
        assert_eq!(customers["properties"]["tags"]["type"], serde_json::json!(["array", "null"]));
        assert_eq!(customers["properties"]["tags"]["items"]["type"], "string");
        assert_eq!(customers["properties"]["id_ext"]["format"], "uuid");
        assert_eq!(schemas["order_totals"]["properties"]["day"]["format"], "date");
        assert_eq!(schemas["Error"]["properties"]["hint"]["type"], serde_json::json!(["string", "null"]));
    }

    #[test]
    fn the_example_uses_real_columns_and_an_embed() {
        let doc = json();
        let example = doc["paths"]["/orders"]["get"]["description"].as_str().unwrap();
        assert!(
            example.contains("GET /orders?select=id,total,customers(name)&status=eq.pending&order=id.desc&limit=10"),
            "{example}"
        );
        let select = params(&doc, "/customers").into_iter().find(|p| p["name"] == "select").unwrap();
        assert!(select["description"].as_str().unwrap().contains("`orders` (many)"));
        let view = doc["paths"]["/order_totals"]["get"]["description"].as_str().unwrap();
        assert!(view.starts_with("Totals per customer."), "{view}");
    }

    #[test]
    fn several_profiles_document_accept_profile() {
        let mut schema = sample();
        schema.schemas = vec!["public".into(), "audit".into()];
        let doc = serde_json::to_value(document(&schema, "public", 50)).unwrap();
        let p = &doc["components"]["parameters"]["acceptProfile"];
        assert_eq!(p["name"], "Accept-Profile");
        assert_eq!(p["in"], "header");
        assert_eq!(p["required"], false);
        assert!(params(&doc, "/orders").iter().any(|x| x["$ref"] == "#/components/parameters/acceptProfile"));
        // A profile with no tables yields an empty but valid document that requires the header.
        let audit = serde_json::to_value(document(&schema, "audit", 50)).unwrap();
        assert!(audit["paths"].as_object().unwrap().is_empty());
        assert_eq!(audit["components"]["parameters"]["acceptProfile"]["required"], true);
    }

    #[test]
    fn names_are_made_safe() {
        let t = |name: &str| Table {
            schema: "public".into(),
            name: name.into(),
            is_view: false,
            writable: crate::schema::Writable::ALL,
            columns: vec![col("id", "integer", ValueKind::Integer, false)],
            primary_key: vec![],
            unique: vec![],
            foreign_keys: vec![],
            comment: None,
        };
        let schema = Schema::new(
            Engine::Sqlite,
            vec!["public".into()],
            vec![t("Error"), t("line items"), t("line_items"), t("{x}")],
            &TableFilter::default(),
        );
        let doc = serde_json::to_value(document(&schema, "public", 10)).unwrap();
        let names: Vec<_> = doc["components"]["schemas"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(names, ["Error", "Error_2", "_x_", "line_items", "line_items_2"]);
        assert_eq!(
            doc["paths"]["/line_items"]["get"]["responses"]["200"]["content"]["application/vnd.pgrst.object+json"]["schema"]
                ["$ref"],
            "#/components/schemas/line_items"
        );
        let paths: Vec<_> = doc["paths"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(paths, ["/%7Bx%7D", "/Error", "/line%20items", "/line_items"]);
    }

    #[test]
    fn snapshot() {
        let mut doc = document(&sample(), "public", 1000);
        doc.info.version = "[version]".into(); // the snapshot survives version bumps
        insta::assert_json_snapshot!("openapi_document", doc);
    }
}
