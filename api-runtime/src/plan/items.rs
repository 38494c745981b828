//! What `select` items become besides columns and embeds: the casts a
//! column may take, aggregate functions, and what a level that aggregates
//! may also select (PostgREST's automatic GROUP BY).

use crate::grammar::{AggregateFunction, JsonStep};
use crate::schema::{Column, ValueKind};

use super::PlanError;
use super::read::{PlannedItem, ReadPlan};

/// Type names a `select=col::type` cast may use; each dialect spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cast {
    Text,
    Integer,
    BigInt,
    Numeric,
    Float,
    Boolean,
    Json,
    Date,
    Timestamp,
}

impl Cast {
    /// How a value cast to this type is represented in JSON.
    pub fn kind(self) -> ValueKind {
        match self {
            Cast::Text => ValueKind::Text,
            Cast::Integer | Cast::BigInt => ValueKind::Integer,
            Cast::Numeric => ValueKind::Numeric,
            Cast::Float => ValueKind::Float,
            Cast::Boolean => ValueKind::Boolean,
            Cast::Json => ValueKind::Json,
            Cast::Date => ValueKind::Date,
            Cast::Timestamp => ValueKind::Timestamp,
        }
    }

    fn parse(name: &str) -> Option<Cast> {
        Some(match name {
            "text" | "varchar" | "char" | "string" => Cast::Text,
            "int" | "int4" | "integer" | "smallint" | "int2" => Cast::Integer,
            "bigint" | "int8" => Cast::BigInt,
            "numeric" | "decimal" => Cast::Numeric,
            "float" | "float4" | "float8" | "real" | "double" | "double precision" => Cast::Float,
            "bool" | "boolean" => Cast::Boolean,
            "json" | "jsonb" => Cast::Json,
            "date" => Cast::Date,
            "timestamp" | "timestamptz" | "datetime" => Cast::Timestamp,
            _ => return None,
        })
    }
}

/// An aggregate function of `select`. A level with one groups its rows by
/// its other columns (PostgREST's automatic GROUP BY).
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatePlan<'s> {
    pub function: AggregateFunction,
    /// The aggregated column and JSON path; none for `count()` of rows.
    pub input: Option<(&'s Column, Vec<JsonStep>)>,
    pub input_cast: Option<Cast>,
    pub result_cast: Option<Cast>,
    pub label: String,
}

impl AggregatePlan<'_> {
    /// How the result is represented in JSON.
    pub fn kind(&self) -> ValueKind {
        if let Some(cast) = self.result_cast {
            return cast.kind();
        }
        match (self.function, &self.input) {
            (AggregateFunction::Count, _) => ValueKind::Integer,
            (AggregateFunction::Sum | AggregateFunction::Avg, _) => ValueKind::Numeric,
            (_, Some((column, path))) => effective_kind(column, path, self.input_cast),
            (_, None) => ValueKind::Integer,
        }
    }
}

/// How a column's value, after its JSON path and cast, is represented in
/// JSON.
pub(crate) fn effective_kind(column: &Column, json_path: &[JsonStep], cast: Option<Cast>) -> ValueKind {
    if let Some(c) = cast {
        return c.kind();
    }
    match json_path.last() {
        Some(step) if step.as_text => ValueKind::Text,
        Some(_) => ValueKind::Json,
        None => column.kind.clone(),
    }
}

pub(super) fn parse_cast(name: Option<&str>) -> Result<Option<Cast>, PlanError> {
    name.map(|n| Cast::parse(n).ok_or_else(|| PlanError::UnknownCast { cast: n.to_string() })).transpose()
}

/// What a level that aggregates may also select: at the top, the columns
/// its rows are grouped by (whole columns); in an embed, only aggregates
/// (each is computed over the related rows). Embedding beside aggregates
/// is not supported.
pub(super) fn check_grouping(plan: &ReadPlan, embedded: bool) -> Result<(), PlanError> {
    let unsupported = |message: &str, hint: &str| {
        Err(PlanError::Unsupported { message: message.to_string(), hint: hint.to_string() })
    };
    for item in &plan.items {
        match item {
            PlannedItem::Embed(e) if e.hidden => {}
            PlannedItem::Embed(_) => {
                return unsupported(
                    "Embedding resources beside aggregate functions is not supported",
                    "Aggregate inside the embed instead (customers?select=name,orders(total.sum())), or read the aggregates in a request of their own.",
                );
            }
            PlannedItem::Column { .. } if embedded => {
                return unsupported(
                    "Grouping the rows of an embedded resource is not supported",
                    "In an embed, select only aggregates (orders(total.sum(),count())); group at the top level instead.",
                );
            }
            PlannedItem::Column { json_path, .. } if !json_path.is_empty() => {
                return unsupported(
                    "Grouping by a JSON path is not supported",
                    "Group by whole columns, or by a generated column holding the value.",
                );
            }
            PlannedItem::Column { column, .. } if column.computed.is_some() => return computed_grouping(),
            PlannedItem::Aggregate(a) if a.input.as_ref().is_some_and(|(c, _)| c.computed.is_some()) => {
                return computed_grouping();
            }
            PlannedItem::Column { .. } | PlannedItem::Aggregate(_) => {}
        }
    }
    Ok(())
}

pub(super) fn computed_grouping() -> Result<(), PlanError> {
    Err(PlanError::Unsupported {
        message: "Computed fields cannot be grouped or aggregated".into(),
        hint: "Aggregate stored columns, or read the computed field without aggregates.".into(),
    })
}
