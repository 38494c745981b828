//! What a read plan is made of: its levels (the table or call read, the
//! items selected, the embeds), conditions, order and page, and the casts
//! and aggregates of its columns. Data only: read.rs, filter.rs and
//! items.rs build it, the SQL renderers read it.

use crate::grammar::{AggregateFunction, Direction, JsonStep, LogicOp, Nulls, Operation};
use crate::schema::{Column, Function, Relationship, Table, ValueKind};

#[derive(Debug, Clone, PartialEq)]
pub struct ReadPlan<'s> {
    pub table: &'s Table,
    /// At the top level of `/rpc/{fn}`: the call whose result rows `table`
    /// describes; they are read from the call instead of the table.
    pub call: Option<Call<'s>>,
    /// SQL alias of this level, unique within the statement.
    pub alias: String,
    pub items: Vec<PlannedItem<'s>>,
    /// ANDed together.
    pub conditions: Vec<PlannedCondition<'s>>,
    pub order: Vec<PlannedOrder<'s>>,
    pub limit: Option<u64>,
    pub offset: u64,
}

/// A function applied to its arguments: what the top level of
/// `/rpc/{fn}` reads its rows from.
#[derive(Debug, Clone, PartialEq)]
pub struct Call<'s> {
    pub function: &'s Function,
    /// Passed arguments in declaration order; parameters with a default
    /// that the request left out are absent.
    pub args: Vec<(&'s Column, serde_json::Value)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlannedItem<'s> {
    Column { column: &'s Column, json_path: Vec<JsonStep>, label: String, cast: Option<Cast> },
    Embed(EmbedPlan<'s>),
    Aggregate(AggregatePlan<'s>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmbedPlan<'s> {
    pub label: String,
    pub relationship: &'s Relationship,
    /// The junction table of a many-to-many, with its SQL alias.
    pub junction: Option<(&'s Table, String)>,
    pub inner: bool,
    pub spread: bool,
    /// `label()`: used only to filter (`!inner`, `label=not.is.null`),
    /// never output.
    pub hidden: bool,
    pub plan: ReadPlan<'s>,
}

impl EmbedPlan<'_> {
    pub fn is_to_one(&self) -> bool {
        self.relationship.cardinality.is_to_one()
    }
}

impl ReadPlan<'_> {
    /// Whether an embedded level (or a junction) of this plan has `alias`.
    pub fn embeds_alias(&self, alias: &str) -> bool {
        self.items.iter().any(|item| match item {
            PlannedItem::Embed(e) => {
                e.plan.alias == alias
                    || e.junction.as_ref().is_some_and(|(_, j)| j == alias)
                    || e.plan.embeds_alias(alias)
            }
            _ => false,
        })
    }

    /// Whether this level aggregates its rows (an aggregate in `select`).
    pub fn is_aggregated(&self) -> bool {
        self.items.iter().any(|i| matches!(i, PlannedItem::Aggregate(_)))
    }

    /// Caps every to-many embed at `max` rows, as the top level is capped
    /// (PostgREST's `db-max-rows` applies to embedded arrays too).
    pub fn cap_embeds(&mut self, max: u64) {
        for item in &mut self.items {
            if let PlannedItem::Embed(e) = item {
                if !e.is_to_one() {
                    e.plan.limit = Some(e.plan.limit.map_or(max, |l| l.min(max)));
                }
                e.plan.cap_embeds(max);
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlannedCondition<'s> {
    Filter {
        column: &'s Column,
        json_path: Vec<JsonStep>,
        negated: bool,
        operation: Operation,
    },
    Group {
        negated: bool,
        op: LogicOp,
        children: Vec<PlannedCondition<'s>>,
    },
    /// `label=is.null` / `label=not.is.null` on an embedded resource: whether
    /// a related row exists.
    EmbedExists {
        label: String,
        exists: bool,
    },
    /// Neither true nor false, as SQL NULL: a role's row filter comparing
    /// with a claim the caller's token lacks.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedOrder<'s> {
    /// The label of the to-one embed whose column this orders by.
    pub via: Option<String>,
    pub column: &'s Column,
    pub json_path: Vec<JsonStep>,
    pub direction: Option<Direction>,
    pub nulls: Option<Nulls>,
}

/// The page of the top level, after `limit`/`offset`, the `Range` header
/// and the configured maximum were combined by the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: u64,
    pub limit: Option<u64>,
}

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

    pub(super) fn parse(name: &str) -> Option<Cast> {
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
