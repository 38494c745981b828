//! Planning: the request AST checked against the schema.
//!
//! Every name in the AST is resolved to a table, column or relationship of
//! the introspected schema here, so the SQL renderers only ever see schema
//! objects. Operators the engine cannot express are refused here with a
//! clear 400 instead of producing wrong results.

pub mod access;
mod call;
mod filter;
mod items;
pub mod memo;
mod nodes;
mod read;
mod write;

pub use call::{CallArgs, CallPlan, find_functions, plan_call};
pub(crate) use nodes::effective_kind;
pub use nodes::{AggregatePlan, Call, Cast, EmbedPlan, Page, PlannedCondition, PlannedItem, PlannedOrder, ReadPlan};
pub use read::{find_table, plan_read};
pub use write::{
    Conflict, DeletePlan, InsertPlan, Missing, UpdatePlan, check_put, check_write_value, key_condition, plan_delete,
    plan_insert, plan_update, values_condition,
};

use crate::grammar::GrammarError;
use crate::schema::{Column, Table};

/// Why a request cannot be planned. Each maps to PostgREST's code and status
/// in `http::error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Grammar(#[from] GrammarError),
    #[error("Could not find the table '{schema}.{table}' in the schema cache")]
    UnknownTable { schema: String, table: String, hint: Option<String> },
    #[error("column {table}.{column} does not exist")]
    UnknownColumn { table: String, column: String, hint: Option<String> },
    #[error("Could not find a relationship between '{from}' and '{to}' in the schema cache")]
    NoRelationship { from: String, to: String, hint: Option<String> },
    #[error("Could not embed because more than one relationship was found for '{from}' and '{to}'")]
    AmbiguousRelationship { from: String, to: String, candidates: Vec<RelationshipChoice> },
    #[error("operator \"{operator}\" is not supported on {engine}")]
    UnsupportedOperator { operator: String, engine: &'static str, hint: String },
    #[error("cannot apply \"{operator}\" to column {column} of type {db_type}")]
    OperatorTypeMismatch { operator: String, column: String, db_type: String, hint: String },
    #[error("\"{path}\" in a query parameter does not name an embedded resource of this request")]
    UnknownEmbedPath { path: String },
    #[error("invalid input syntax for type {type_name}: \"{value}\"")]
    InvalidValue { type_name: String, value: String, column: String },
    #[error("A related order on '{label}' is not possible")]
    RelatedOrderNotToOne { label: String },
    #[error("Could not find the '{column}' column of '{table}' in the schema cache")]
    UnknownBodyColumn { table: String, column: String, hint: Option<String> },
    #[error("{message}")]
    Payload { message: String, details: String },
    #[error("invalid value for {column}: {value} (expected {expected})")]
    InvalidWriteValue { column: String, expected: String, value: String },
    #[error("{message}")]
    Put { message: String, details: String },
    #[error("{message}")]
    Unsupported { message: String, hint: String },
    #[error("invalid cast \"{cast}\"")]
    UnknownCast { cast: String },
    #[error("Could not find the function {signature} in the schema cache")]
    UnknownFunction { signature: String, hint: Option<String> },
    #[error("Could not choose the best candidate function between: {}", candidates.join(", "))]
    AmbiguousFunction { signature: String, candidates: Vec<String> },
    #[error("The function {name} cannot be called")]
    UncallableFunction { name: String, reason: String },
    /// A verb the caller's role is not granted on a table or function it
    /// can see (PostgreSQL's wording and code, 42501).
    #[error("permission denied for {kind} {name}")]
    PermissionDenied { kind: &'static str, name: String, details: String },
    /// A role's rule that cannot apply to the table it names (a row filter
    /// on a column the table lacks): the configuration's fault.
    #[error("{message}")]
    BadRule { message: String },
}

/// One of the relationships an ambiguous embed could mean, as PostgREST
/// lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationshipChoice {
    pub cardinality: &'static str,
    /// `billing using orders(billing_address_id) and addresses(id)`
    pub relationship: String,
    /// What to write after `!` to pick this one.
    pub hint: String,
}

/// The closest of `candidates` to `name`, for "did you mean" hints.
pub(crate) fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(score, _)| *score > 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A column, or a computed field, that a read names.
pub(crate) fn find_column<'s>(table: &'s Table, name: &str) -> Result<&'s Column, PlanError> {
    table.readable(name).ok_or_else(|| PlanError::UnknownColumn {
        table: table.name.clone(),
        column: name.to_string(),
        hint: closest(name, table.columns.iter().map(|c| c.name.as_str()))
            .map(|c| format!("Perhaps you meant to reference the column \"{}.{}\".", table.name, c)),
    })
}
