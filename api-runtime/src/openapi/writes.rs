//! Write operations on a table in the OpenAPI document: POST (insert and
//! upsert), PATCH, PUT (tables with a primary key) and DELETE.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, OperationBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder, Ref};
use utoipa::openapi::{ContentBuilder, PathItem, RefOr, Required, ResponseBuilder};

use crate::schema::{Engine, Table};

use super::{ERROR_RESPONSES, WRITE_ERROR_RESPONSES, filter_parameter, filterable, query_parameter, string};

/// Adds the write operations of `table` to its path item.
pub(super) fn add_write_operations(item: &mut PathItem, engine: Engine, table: &Table, component: &str) {
    let row = || RefOr::Ref(Ref::from_schema_name(component));
    let rows = || RefOr::T(ArrayBuilder::new().items(Ref::from_schema_name(component)).build().into());
    let one_or_many = OneOfBuilder::new().item(row()).item(rows()).build();
    let name = &table.name;

    let insert = operation(table, component, "post", "Insert rows (or upsert them)")
        .description(Some(format!(
            "One object or an array of objects (inserted in one statement, all or nothing). `Prefer: \
             return=representation` returns the rows (with `select=`); `resolution=merge-duplicates` or \
             `ignore-duplicates` with `on_conflict=` upserts; `missing=default` fills absent keys with \
             defaults. A single inserted row's URL is in `Location`.\n\nExample:\n\n    POST /{name}\n    \
             Prefer: return=representation"
        )))
        .parameter(query_parameter("columns", "Only these body keys are written: `columns=a,b`.".into(), string()))
        .parameter(query_parameter(
            "on_conflict",
            "The unique columns an upsert matches on (default: the primary key).".into(),
            string(),
        ))
        .parameter(query_parameter("select", "The columns of the returned representation.".into(), string()))
        .request_body(Some(body(RefOr::T(one_or_many.into()))))
        .response("201", created_response(rows()))
        .response(
            "200",
            rows_response(
                "An upsert (`resolution=merge-duplicates`) that only updated existing rows. The body holds the \
                 rows only with `Prefer: return=representation`; otherwise it is empty.",
                rows(),
            ),
        );
    item.post = Some(finish(insert));

    let update = filtered(engine, table, operation(table, component, "patch", "Update rows"))
        .description(Some(
            "Sets the body's keys on every row the filters match. Without filters the request is refused \
             unless the table is listed in `api.allowUnfilteredWrites`. `Prefer: max-affected=N` with \
             `handling=strict` refuses (and rolls back) a change of more rows."
                .to_string(),
        ))
        .request_body(Some(body(row())))
        .response("200", rows_response("The changed rows (`return=representation`).", rows()))
        .response("204", ResponseBuilder::new().description("Changed.").build());
    item.patch = Some(finish(update));

    if !table.primary_key.is_empty() {
        let key: Vec<String> = table.primary_key.iter().map(|k| format!("{k}=eq.…")).collect();
        let put = filtered(engine, table, operation(table, component, "put", "Insert or replace one row"))
            .description(Some(format!(
                "Upserts the row the primary key filter names (`{}`); the body must carry the same key.",
                key.join("&")
            )))
            .request_body(Some(body(row())))
            .response("201", put_response("The new row (`return=representation`).", rows()))
            .response("200", put_response("The replaced row (`return=representation`).", rows()))
            .response("204", ResponseBuilder::new().description("Written.").build());
        item.put = Some(finish(put));
    }

    let delete = filtered(engine, table, operation(table, component, "delete", "Delete rows"))
        .description(Some(
            "Deletes every row the filters match; unfiltered deletes are refused unless allowed by \
             `api.allowUnfilteredWrites`."
                .to_string(),
        ))
        .response("200", rows_response("The deleted rows (`return=representation`).", rows()))
        .response("204", ResponseBuilder::new().description("Deleted.").build());
    item.delete = Some(finish(delete));
}

fn operation(table: &Table, component: &str, verb: &str, summary: &str) -> OperationBuilder {
    OperationBuilder::new()
        .tag(table.name.clone())
        .operation_id(Some(format!("{verb}_{component}")))
        .summary(Some(format!("{summary} of `{}`", table.name)))
        .parameter_ref(Ref::new("#/components/parameters/preferWrite"))
}

fn filtered(engine: Engine, table: &Table, mut op: OperationBuilder) -> OperationBuilder {
    for column in table.columns.iter().filter(|c| filterable(&c.name)) {
        op = op.parameter(filter_parameter(engine, column));
    }
    op
}

fn body(schema: RefOr<utoipa::openapi::Schema>) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
        .required(Some(Required::True))
        .build()
}

fn rows_response(description: &str, rows: RefOr<utoipa::openapi::Schema>) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .header_ref("Content-Range", Ref::new("#/components/headers/Content-Range"))
        .content("application/json", ContentBuilder::new().schema(Some(rows)).build())
        .build()
}

/// POST's 201: a body only with `return=representation`, and `Location`
/// for a single inserted row.
fn created_response(rows: RefOr<utoipa::openapi::Schema>) -> utoipa::openapi::Response {
    let location = HeaderBuilder::new()
        .schema(Some(string()))
        .description(Some("The URL of a single inserted row (`/{table}?id=eq.1`), on a table with a primary key."))
        .build();
    ResponseBuilder::new()
        .description(
            "Created. The body holds the rows only with `Prefer: return=representation`; otherwise \
             (`return=minimal`, the default, or `return=headers-only`) it is empty.",
        )
        .header_ref("Content-Range", Ref::new("#/components/headers/Content-Range"))
        .header("Location", location)
        .content("application/json", ContentBuilder::new().schema(Some(rows)).build())
        .build()
}

/// PUT answers without `Content-Range`, as PostgREST does.
fn put_response(description: &str, rows: RefOr<utoipa::openapi::Schema>) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(rows)).build())
        .build()
}

fn finish(mut op: OperationBuilder) -> Operation {
    for (name, status, _) in ERROR_RESPONSES.iter().chain(WRITE_ERROR_RESPONSES) {
        op = op.response(*status, RefOr::Ref(Ref::from_response_name(*name)));
    }
    op.build()
}
