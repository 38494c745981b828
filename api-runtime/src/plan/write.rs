//! Write plans: inserts (and upserts), updates and deletes, with every
//! column and value checked against the schema before any SQL exists.

use serde_json::{Map, Value};

use crate::grammar::{ApiQuery, Condition, EmbedPath, Filter, Operation, Operator, Payload};
use crate::schema::{Column, Engine, Schema, Table, ValueKind};

use super::nodes::{Page, PlannedCondition, ReadPlan};
use super::read::{find_table, plan_read};
use super::{PlanError, closest};

/// What a key absent from a row becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// NULL (PostgREST's default, `Prefer: missing=null`).
    Null,
    /// The column's default (`Prefer: missing=default`).
    Default,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conflict<'s> {
    /// The unique key the conflict is on (`on_conflict=`, else the primary key).
    pub columns: Vec<&'s Column>,
    /// Update the existing row (merge-duplicates) or keep it (ignore-duplicates).
    pub merge: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InsertPlan<'s> {
    pub table: &'s Table,
    pub columns: Vec<&'s Column>,
    /// Per row, per column: the value, or `None` when the row lacks the key.
    pub rows: Vec<Vec<Option<Value>>>,
    pub missing: Missing,
    pub conflict: Option<Conflict<'s>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpdatePlan<'s> {
    /// The rows to change: the table and the request's filters.
    pub target: ReadPlan<'s>,
    /// Each column and its new value; `None` is the column's default
    /// (`columns=` naming a key the body lacks, with `missing=default`).
    pub set: Vec<(&'s Column, Option<Value>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeletePlan<'s> {
    pub target: ReadPlan<'s>,
}

/// Plans `POST /{table}` (and the insert half of `PUT`).
#[tracing::instrument(level = "debug", name = "plan", skip_all)]
pub fn plan_insert<'s>(
    schema: &'s Schema,
    profile: &str,
    table_name: &str,
    query: &ApiQuery,
    payload: &Payload,
    missing: Missing,
    resolution: Option<bool>,
) -> Result<InsertPlan<'s>, PlanError> {
    let table = writable_table(schema, profile, table_name)?;
    let names: Vec<String> = match &query.columns {
        Some(cols) => cols.clone(),
        None => {
            let first: Vec<String> = payload.rows.first().map(|r| r.keys().cloned().collect()).unwrap_or_default();
            for (i, row) in payload.rows.iter().enumerate().skip(1) {
                if row.len() != first.len() || !first.iter().all(|k| row.contains_key(k)) {
                    return Err(PlanError::Payload {
                        message: "All object keys must match".into(),
                        details: format!(
                            "row {i} has other keys than row 0; give the same keys in every object or list them in columns="
                        ),
                    });
                }
            }
            first
        }
    };
    let columns = names.iter().map(|n| body_column(table, n)).collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::with_capacity(payload.rows.len());
    for row in &payload.rows {
        let mut values = Vec::with_capacity(columns.len());
        for column in &columns {
            let value = row.get(&column.name).cloned();
            if let Some(v) = &value {
                check_write_value(&table.name, column, v)?;
            }
            values.push(value);
        }
        rows.push(values);
    }
    let conflict = match resolution {
        None => None,
        Some(merge) => {
            let keys: Vec<&'s Column> = match &query.on_conflict {
                Some(cols) => cols.iter().map(|n| body_column(table, n)).collect::<Result<_, _>>()?,
                None => table.primary_key.iter().filter_map(|k| table.column(k)).collect(),
            };
            if keys.is_empty() {
                return Err(PlanError::Unsupported {
                    message: format!("an upsert on {} needs a unique key", table.name),
                    hint: "Give on_conflict=col1,col2 naming a unique constraint, or add a primary key.".into(),
                });
            }
            let names: Vec<String> = keys.iter().map(|c| c.name.clone()).collect();
            if !table.is_unique_on(&names) {
                return Err(PlanError::Unsupported {
                    message: format!("on_conflict=({}) is not a unique key of {}", names.join(","), table.name),
                    hint: "Name the columns of a primary key or unique constraint.".into(),
                });
            }
            Some(Conflict { columns: keys, merge })
        }
    };
    Ok(InsertPlan { table, columns, rows, missing, conflict })
}

/// Plans `PATCH /{table}?filters` with one object of new values. With
/// `columns=`, exactly the listed columns are set, as in PostgREST: other
/// keys are ignored, and a listed key the body lacks is NULL, or the
/// column's default with `missing=default`.
#[tracing::instrument(level = "debug", name = "plan", skip_all)]
pub fn plan_update<'s>(
    schema: &'s Schema,
    profile: &str,
    table_name: &str,
    query: &ApiQuery,
    payload: &Payload,
    missing: Missing,
) -> Result<UpdatePlan<'s>, PlanError> {
    let target = plan_target(schema, profile, table_name, query)?;
    let row = match payload.rows.as_slice() {
        [row] if !payload.is_array => row,
        _ => {
            return Err(PlanError::Payload {
                message: "PATCH takes one JSON object".into(),
                details: "send the new values as a single object, not an array".into(),
            });
        }
    };
    let table = target.table;
    let set = match &query.columns {
        Some(names) => listed_set(table, names, row, missing)?,
        None => set_list(table, row)?,
    };
    // An empty object is a plan that sets nothing: the handler touches no
    // row for it, as PostgREST does.
    Ok(UpdatePlan { target, set })
}

/// Plans `DELETE /{table}?filters`.
#[tracing::instrument(level = "debug", name = "plan", skip_all)]
pub fn plan_delete<'s>(
    schema: &'s Schema,
    profile: &str,
    table_name: &str,
    query: &ApiQuery,
) -> Result<DeletePlan<'s>, PlanError> {
    Ok(DeletePlan { target: plan_target(schema, profile, table_name, query)? })
}

/// `PUT /{table}?pk=eq.x`: the filters must be `eq` on exactly the primary
/// key and the body must carry the same key values.
pub fn check_put(table: &Table, query: &ApiQuery, payload: &Payload) -> Result<(), PlanError> {
    let bad = |details: String| PlanError::Put {
        message: "Payload values do not match URL in primary key column(s)".into(),
        details,
    };
    // One object, or an array holding one, as PostgREST takes it.
    if payload.rows.len() != 1 {
        return Err(bad("PUT takes exactly one row: one object, or an array of one".into()));
    }
    if table.primary_key.is_empty() {
        return Err(bad(format!("{} has no primary key, so PUT cannot name one row", table.name)));
    }
    let mut filtered = Vec::new();
    for (path, condition) in &query.conditions {
        match (path.is_empty(), condition) {
            (
                true,
                Condition::Filter(Filter {
                    field,
                    negated: false,
                    operation: Operation::Compare { op: Operator::Eq, value },
                }),
            ) if field.json_path.is_empty() => filtered.push((field.name.clone(), value.clone())),
            _ => return Err(bad("PUT filters must be eq on every primary key column, and nothing else".into())),
        }
    }
    let mut names: Vec<&String> = filtered.iter().map(|(n, _)| n).collect();
    names.sort();
    let mut pk: Vec<&String> = table.primary_key.iter().collect();
    pk.sort();
    if names != pk {
        return Err(bad(format!("filter on exactly the primary key ({}) with eq", table.primary_key.join(", "))));
    }
    let row = &payload.rows[0];
    for (name, value) in &filtered {
        let matches = match row.get(name) {
            Some(Value::String(s)) => s == value,
            Some(Value::Number(n)) => n.to_string() == *value,
            Some(Value::Bool(b)) => b.to_string() == *value,
            _ => false,
        };
        if !matches {
            return Err(bad(format!("the body's {name} must equal {value:?}, as in the URL")));
        }
    }
    if query.limits.iter().any(|(p, _)| p.is_empty()) || query.offsets.iter().any(|(p, _)| p.is_empty()) {
        return Err(PlanError::Put {
            message: "limit/offset querystring parameters are not allowed for PUT".into(),
            details: "remove limit and offset".into(),
        });
    }
    Ok(())
}

/// The rows a PATCH or DELETE targets: the table with the request's
/// top-level filters. Filters inside embeds and row limits do not apply
/// to writes and are refused rather than ignored; `order=` (also inside
/// embeds) orders the representation.
fn plan_target<'s>(
    schema: &'s Schema,
    profile: &str,
    table_name: &str,
    query: &ApiQuery,
) -> Result<ReadPlan<'s>, PlanError> {
    writable_table(schema, profile, table_name)?;
    let root = |p: &EmbedPath| p.is_empty();
    if query.limits.iter().any(|(p, _)| root(p)) || query.offsets.iter().any(|(p, _)| root(p)) {
        return Err(PlanError::Unsupported {
            message: "limit and offset do not apply to PATCH or DELETE".into(),
            hint: "Narrow the rows with filters instead, or use Prefer: max-affected=N.".into(),
        });
    }
    // Filters on embedded resources shape the representation's embeds,
    // not the rows written (as in PostgREST).
    let conditions = query.conditions.iter().filter(|(p, _)| root(p)).cloned().collect();
    let filters_only = ApiQuery { conditions, ..ApiQuery::default() };
    plan_read(schema, profile, table_name, &filters_only, Page { offset: 0, limit: None })
}

fn writable_table<'s>(schema: &'s Schema, profile: &str, name: &str) -> Result<&'s Table, PlanError> {
    find_table(schema, profile, name)
}

/// A column named by a body key or `columns=`: PGRST204 when unknown.
fn body_column<'s>(table: &'s Table, name: &str) -> Result<&'s Column, PlanError> {
    table.column(name).ok_or_else(|| PlanError::UnknownBodyColumn {
        table: table.name.clone(),
        column: name.to_string(),
        hint: closest(name, table.columns.iter().map(|c| c.name.as_str()))
            .map(|c| format!("Perhaps you meant the '{c}' column.")),
    })
}

fn set_list<'s>(table: &'s Table, row: &Map<String, Value>) -> Result<Vec<(&'s Column, Option<Value>)>, PlanError> {
    let mut set = Vec::with_capacity(row.len());
    for (name, value) in row {
        let column = body_column(table, name)?;
        check_write_value(&table.name, column, value)?;
        set.push((column, Some(value.clone())));
    }
    Ok(set)
}

/// The SET list of a PATCH with `columns=`: every listed column (each must
/// exist), its value from the body, else NULL or its default.
fn listed_set<'s>(
    table: &'s Table,
    names: &[String],
    row: &Map<String, Value>,
    missing: Missing,
) -> Result<Vec<(&'s Column, Option<Value>)>, PlanError> {
    let mut set: Vec<(&'s Column, Option<Value>)> = Vec::with_capacity(names.len());
    for name in names {
        let column = body_column(table, name)?;
        if set.iter().any(|(c, _)| c.name == column.name) {
            continue;
        }
        let value = match (row.get(name), missing) {
            (Some(v), _) => {
                check_write_value(&table.name, column, v)?;
                Some(v.clone())
            }
            (None, Missing::Null) => Some(Value::Null),
            (None, Missing::Default) => None,
        };
        set.push((column, value));
    }
    Ok(set)
}

/// Refuses a value that cannot be of the column's type, naming both: the
/// same answer on every engine, before the database coerces anything.
/// Checks a value written to `column` of `owner` (a table or a function).
pub fn check_write_value(owner: &str, column: &Column, value: &Value) -> Result<(), PlanError> {
    // A domain read through its cast from json takes what that cast takes.
    if value.is_null() || column.representation.as_ref().is_some_and(|r| r.input.is_some()) {
        return Ok(());
    }
    let ok = match &column.kind {
        ValueKind::Integer => {
            value.as_i64().is_some() || value.as_str().is_some_and(|s| s.trim().parse::<i64>().is_ok())
        }
        ValueKind::Float | ValueKind::Numeric => {
            value.is_number() || value.as_str().is_some_and(|s| s.trim().parse::<f64>().is_ok())
        }
        ValueKind::Boolean => value.is_boolean() || matches!(value.as_str(), Some("true" | "false")),
        ValueKind::Uuid => value.as_str().is_some_and(|s| {
            let hex: String = s.chars().filter(|c| *c != '-').collect();
            hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
        }),
        ValueKind::Enum(labels) => value.as_str().is_some_and(|s| labels.is_empty() || labels.iter().any(|l| l == s)),
        ValueKind::Bytes => value.as_str().is_some_and(|s| {
            s.strip_prefix("\\x").is_some_and(|h| h.len() % 2 == 0 && h.chars().all(|c| c.is_ascii_hexdigit()))
        }),
        ValueKind::Array(_) => value.is_array(),
        ValueKind::Json => true,
        ValueKind::Text | ValueKind::Other => value.is_string() || value.is_number() || value.is_boolean(),
        ValueKind::Date | ValueKind::Timestamp | ValueKind::TimestampTz => value.as_str().is_some_and(iso_date_start),
        ValueKind::Time => value.as_str().is_some_and(iso_time_start),
    };
    if ok {
        return Ok(());
    }
    let expected = match &column.kind {
        ValueKind::Enum(labels) => format!("one of {}", labels.join(", ")),
        ValueKind::Bytes => "a string of \\x and hex digits".into(),
        ValueKind::Array(_) => "an array".into(),
        _ => column.db_type.clone(),
    };
    Err(PlanError::InvalidWriteValue { column: format!("{owner}.{}", column.name), expected, value: value.to_string() })
}

/// Starts with an ISO 8601 date (`2024-03-01`, then anything a database
/// reads after it): SQLite stores any text, so this is the one check that
/// keeps `"not a date"` out of every engine alike.
fn iso_date_start(s: &str) -> bool {
    let b = s.trim().as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
        && (b.len() == 10 || matches!(b[10], b'T' | b't' | b' '))
}

/// Starts with `HH:MM`.
fn iso_time_start(s: &str) -> bool {
    let b = s.trim().as_bytes();
    b.len() >= 5 && b[..2].iter().all(u8::is_ascii_digit) && b[2] == b':' && b[3..5].iter().all(u8::is_ascii_digit)
}

/// The filter selecting exactly these key values (from a write's
/// RETURNING), for reading back the written rows.
pub fn key_condition<'s>(table: &'s Table, engine: Engine, keys: &[Vec<Option<String>>]) -> PlannedCondition<'s> {
    values_condition(&table.key_columns(engine), keys)
}

/// The filter selecting the rows whose `columns` hold one of `keys` (each
/// key one value per column, as text).
pub fn values_condition<'s>(columns: &[&'s Column], keys: &[Vec<Option<String>>]) -> PlannedCondition<'s> {
    if let [column] = columns {
        return PlannedCondition::Filter {
            column,
            json_path: vec![],
            negated: false,
            operation: Operation::In(keys.iter().filter_map(|k| k[0].clone()).collect()),
        };
    }
    PlannedCondition::Group {
        negated: false,
        op: crate::grammar::LogicOp::Or,
        children: keys
            .iter()
            .map(|key| PlannedCondition::Group {
                negated: false,
                op: crate::grammar::LogicOp::And,
                children: columns
                    .iter()
                    .zip(key)
                    .map(|(column, value)| PlannedCondition::Filter {
                        column,
                        json_path: vec![],
                        negated: false,
                        operation: match value {
                            Some(v) => Operation::Compare { op: Operator::Eq, value: v.clone() },
                            None => Operation::Is(crate::grammar::IsValue::Null),
                        },
                    })
                    .collect(),
            })
            .collect(),
    }
}
