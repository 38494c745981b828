//! The parameters and headers the document's operations share: the read
//! grammar's query keys (`order`, `limit`, `offset`, one filter per
//! column), `Range`, `Prefer` and `Accept-Profile`, and `Content-Range`.

use serde_json::Value;
use utoipa::openapi::Required;
use utoipa::openapi::Type;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::ObjectBuilder;

use crate::schema::{Column, Engine, Schema, ValueKind};

use super::{RESERVED_KEYS, encode_value, list_item, string};

pub(super) fn query_parameter(name: &str, description: String, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

pub(super) fn header_parameter(name: &str, required: bool, description: String, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(if required { Required::True } else { Required::False })
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

pub(super) fn order_parameter() -> Parameter {
    query_parameter(
        "order",
        "Sort order, comma-separated: `order=created_at.desc,id`, each `column[.asc|.desc][.nullsfirst|.nullslast]`. \
         Embedded rows are ordered with `relation.order=...`."
            .into(),
        string(),
    )
}

pub(super) fn limit_parameter(max_rows: u64) -> Parameter {
    query_parameter(
        "limit",
        format!(
            "Most rows to return. At most {max_rows} are returned whatever the limit. `relation.limit=n` limits embedded rows."
        ),
        ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)),
    )
}

pub(super) fn offset_parameter() -> Parameter {
    query_parameter(
        "offset",
        "Rows to skip before the first one returned.".into(),
        ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)),
    )
}

pub(super) fn range_parameter() -> Parameter {
    header_parameter(
        "Range",
        false,
        "Window of rows, both ends inclusive and counted from 0: `0-24` (or `items=0-24`); `25-` skips 25 rows. \
         An alternative to `limit`/`offset`."
            .into(),
        string().pattern(Some("^(items=)?[0-9]+-[0-9]*$")),
    )
}

pub(super) fn prefer_parameter() -> Parameter {
    header_parameter(
        "Prefer",
        false,
        "Comma-separated preferences. `count=exact` adds the total row count to `Content-Range` (`0-24/3573`); \
         `count=planned` and `count=estimated` are accepted too. `handling=strict` refuses unknown preferences."
            .into(),
        string(),
    )
}

pub(super) fn prefer_write_parameter() -> Parameter {
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

pub(super) fn accept_profile_parameter(schema: &Schema, profile: &str) -> Parameter {
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
pub(super) fn filterable(name: &str) -> bool {
    !name.is_empty() && !name.contains('.') && !RESERVED_KEYS.contains(&name)
}

pub(super) fn filter_parameter(engine: Engine, column: &Column) -> Parameter {
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
pub(super) fn filter_examples(engine: Engine, kind: &ValueKind) -> Vec<String> {
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

pub(super) fn content_range_header() -> Header {
    HeaderBuilder::new()
        .schema(Some(string()))
        .description(Some(
            "The rows returned and, with `Prefer: count=exact`, the total: `0-24/3573`, `0-24/*` when not \
             counted, `*/0` when empty.",
        ))
        .build()
}
