//! Component schemas: one per table or view describing its rows (each
//! column's JSON type, nullability, key and default), and the error
//! object every failure answers with.

use serde_json::Value;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat, Type};

use crate::schema::{Column, Table, ValueKind};

use super::string;

pub(super) fn row_schema(table: &Table) -> utoipa::openapi::Schema {
    let kind = if table.is_view { "view" } else { "table" };
    let description = match table.comment.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(comment) => comment.to_string(),
        None => format!("A row of the {kind} `{}`.", table.name),
    };
    let mut object = ObjectBuilder::new().schema_type(Type::Object).description(Some(description));
    for column in table.columns.iter().chain(&table.computed) {
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
pub(super) fn column_description(table: &Table, column: &Column) -> String {
    let mut notes = vec![format!("`{}`", column.db_type)];
    if let Some(by) = &column.computed {
        notes.push(format!(
            "computed by the function `{}({})`: read-only, returned when `select` names it (not part of `*`)",
            by.function, by.row_type
        ));
    }
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
pub(super) fn value_schema(kind: &ValueKind, nullable: bool, description: Option<String>) -> utoipa::openapi::Schema {
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

pub(super) fn error_schema() -> utoipa::openapi::Schema {
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
