//! A query's filters checked against the table they apply to: the column
//! exists, the operator suits its type and the engine, the values parse.

use crate::grammar::{Condition, Field, Filter, IsValue, Operation, Operator};
use crate::schema::{Column, Engine, Table, ValueKind};

use super::nodes::{PlannedCondition, PlannedItem, ReadPlan};
use super::{PlanError, find_column};

pub(super) fn plan_condition<'s>(
    engine: Engine,
    node: &ReadPlan<'s>,
    condition: &Condition,
) -> Result<PlannedCondition<'s>, PlanError> {
    match condition {
        Condition::Group { negated, op, children } => Ok(PlannedCondition::Group {
            negated: *negated,
            op: *op,
            children: children.iter().map(|c| plan_condition(engine, node, c)).collect::<Result<_, _>>()?,
        }),
        Condition::Filter(f) => plan_filter(engine, node, f),
    }
}

fn plan_filter<'s>(engine: Engine, node: &ReadPlan<'s>, f: &Filter) -> Result<PlannedCondition<'s>, PlanError> {
    if f.field.json_path.is_empty() && node.table.column(&f.field.name).is_none() {
        let embedded = node.items.iter().any(|i| matches!(i, PlannedItem::Embed(e) if e.label == f.field.name));
        if embedded && let Operation::Is(v @ (IsValue::Null | IsValue::NotNull)) = f.operation {
            let is_null = (v == IsValue::Null) != f.negated;
            return Ok(PlannedCondition::EmbedExists { label: f.field.name.clone(), exists: !is_null });
        }
    }
    plan_filter_on(engine, node.table, f)
}

/// A filter on a column of `table`, checked against the engine and the
/// column's type.
pub(crate) fn plan_filter_on<'s>(
    engine: Engine,
    table: &'s Table,
    f: &Filter,
) -> Result<PlannedCondition<'s>, PlanError> {
    let column = find_column(table, &f.field.name)?;
    check_operator(engine, column, &f.field, &f.operation)?;
    // A domain whose values are read through a cast from text takes what
    // that cast takes.
    let read_by_cast = column.representation.as_ref().is_some_and(|r| r.filter.is_some());
    if f.field.json_path.is_empty() && !read_by_cast {
        check_values(table, column, &f.operation)?;
    }
    // MySQL's JSON functions read an invalid document as "no match";
    // refuse it instead of answering an empty page.
    if engine == Engine::MySql
        && let Operation::Compare { op, value } = &f.operation
        && is_container(*op)
        && serde_json::from_str::<serde_json::Value>(value).is_err()
        && crate::grammar::pg_array_to_json(value).is_none()
    {
        return Err(PlanError::InvalidValue {
            type_name: "json".into(),
            value: value.clone(),
            column: format!("{}.{}", table.name, column.name),
        });
    }
    Ok(PlannedCondition::Filter {
        column,
        json_path: f.field.json_path.clone(),
        negated: f.negated,
        operation: f.operation.clone(),
    })
}

/// Refuses filter values that cannot be of the column's type, so that no
/// engine silently coerces them (MySQL reads `'abc'` as 0 for an integer
/// column, which would match the wrong rows).
fn check_values(table: &Table, column: &Column, operation: &Operation) -> Result<(), PlanError> {
    let values: Vec<&String> = match operation {
        Operation::Compare { op, value } if !is_pattern(*op) && !is_container(*op) => vec![value],
        Operation::Quantified { op, values, .. } if !is_pattern(*op) => values.iter().collect(),
        Operation::In(values) => values.iter().collect(),
        _ => return Ok(()),
    };
    let (type_name, valid): (&str, fn(&str) -> bool) = match column.kind {
        ValueKind::Integer => ("integer", |v| v.trim().parse::<i64>().is_ok()),
        ValueKind::Float | ValueKind::Numeric => ("numeric", |v| {
            let v = v.trim();
            v.parse::<f64>().is_ok()
                && v.chars().all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        }),
        ValueKind::Boolean => ("boolean", |v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "true" | "false" | "t" | "f" | "1" | "0" | "yes" | "no" | "on" | "off"
            )
        }),
        ValueKind::Uuid => ("uuid", |v| {
            let hex: String = v.chars().filter(|c| *c != '-').collect();
            hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
        }),
        _ => return Ok(()),
    };
    match values.into_iter().find(|v| !valid(v)) {
        Some(bad) => Err(PlanError::InvalidValue {
            type_name: type_name.to_string(),
            value: bad.clone(),
            column: format!("{}.{}", table.name, column.name),
        }),
        None => Ok(()),
    }
}

fn is_pattern(op: Operator) -> bool {
    matches!(op, Operator::Like | Operator::Ilike | Operator::Match | Operator::Imatch)
}

fn is_container(op: Operator) -> bool {
    matches!(
        op,
        Operator::Cs
            | Operator::Cd
            | Operator::Ov
            | Operator::Sl
            | Operator::Sr
            | Operator::Nxr
            | Operator::Nxl
            | Operator::Adj
    )
}

/// Refuses operators the engine (or the column's type) cannot express.
fn check_operator(engine: Engine, column: &Column, field: &Field, operation: &Operation) -> Result<(), PlanError> {
    let unsupported = |operator: &str, hint: &str| PlanError::UnsupportedOperator {
        operator: operator.to_string(),
        engine: engine.name(),
        hint: hint.to_string(),
    };
    let op = match operation {
        Operation::Fts { kind, .. } => {
            return if engine == Engine::Postgres {
                Ok(())
            } else {
                Err(unsupported(kind.name(), "Full-text search needs PostgreSQL; use like or ilike instead."))
            };
        }
        Operation::Compare { op, .. } | Operation::Quantified { op, .. } => *op,
        Operation::In(_) | Operation::Is(_) => return Ok(()),
    };
    let json = column.kind == ValueKind::Json && field.json_path.is_empty();
    match (engine, op) {
        (Engine::Postgres, _) => Ok(()),
        (Engine::Sqlite, Operator::Match | Operator::Imatch) => {
            Err(unsupported(op.name(), "SQLite has no regular expressions; use like or ilike instead."))
        }
        (Engine::Sqlite, Operator::Cs | Operator::Cd | Operator::Ov) => {
            Err(unsupported(op.name(), "SQLite has no array or JSON containment operators."))
        }
        (_, Operator::Cs | Operator::Cd) if json => Ok(()),
        (Engine::MySql, Operator::Ov) if json => Ok(()),
        (_, Operator::Cs | Operator::Cd | Operator::Ov) => Err(PlanError::OperatorTypeMismatch {
            operator: op.name().to_string(),
            column: column.name.clone(),
            db_type: column.db_type.clone(),
            hint: "On MySQL/MariaDB cs, cd and ov apply to JSON columns only.".into(),
        }),
        (_, Operator::Sl | Operator::Sr | Operator::Nxr | Operator::Nxl | Operator::Adj) => {
            Err(unsupported(op.name(), "Range operators need PostgreSQL range types."))
        }
        _ => Ok(()),
    }
}
