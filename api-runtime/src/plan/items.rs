//! The checks of `select` items besides columns and embeds: the cast names
//! a column may take, and what a level that aggregates may also select
//! (PostgREST's automatic GROUP BY). Casts and aggregates themselves are
//! in nodes.rs.

use super::PlanError;
use super::nodes::{Cast, PlannedItem, ReadPlan};

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
