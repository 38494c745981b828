//! A request's [`Scope`]: the schema it plans against (its role's view, or
//! the whole schema on an open API) and the checks that depend on the verb
//! and the caller.

use std::sync::Arc;

use dbapi_crds::config::RuntimeConfig;

use crate::grammar::{Condition, Filter, LogicOp};
use crate::plan::filter::plan_filter_on;
use crate::plan::{PlanError, PlannedCondition, PlannedItem, ReadPlan};
use crate::schema::{Engine, Function, Schema, Table};

use super::rules::{RowFilter, names_claims, with_claims};
use super::{Grant, RoleView, TableGrants, Verb, Verbs};

/// What one request may see and do.
#[derive(Debug)]
pub struct Scope {
    /// The schema requests are planned against: the role's view, or the
    /// whole schema when no rules apply.
    pub schema: Arc<Schema>,
    /// The document in force when the request started: its per-request
    /// limits (`api.maxRows` ...) hold for the whole request, whatever a
    /// reload does meanwhile.
    pub config: Arc<RuntimeConfig>,
    full: Arc<Schema>,
    role: Option<RoleScope>,
}

#[derive(Debug)]
struct RoleScope {
    view: Arc<RoleView>,
    claims: Arc<serde_json::Value>,
}

impl Scope {
    /// No rules: the whole schema, full access.
    pub fn open(schema: Arc<Schema>, config: Arc<RuntimeConfig>) -> Scope {
        Scope { schema: schema.clone(), config, full: schema, role: None }
    }

    pub(super) fn restricted(
        full: Arc<Schema>,
        view: Arc<RoleView>,
        claims: Arc<serde_json::Value>,
        config: Arc<RuntimeConfig>,
    ) -> Scope {
        Scope { schema: view.schema.clone(), config, full, role: Some(RoleScope { view, claims }) }
    }

    /// Whether role rules apply to this request.
    pub fn is_restricted(&self) -> bool {
        self.role.is_some()
    }

    /// The whole introspected schema (hidden columns included): row
    /// filters and key lookups resolve against it.
    pub fn full(&self) -> &Schema {
        &self.full
    }

    /// [`Scope::full`] as shared: with the document, what a plan was
    /// computed under (see `plan::memo`).
    pub fn full_schema(&self) -> &Arc<Schema> {
        &self.full
    }

    /// The role's grants on a table it sees; `None` on an open API.
    pub fn grants(&self, table: &Table) -> Option<&TableGrants> {
        self.role.as_ref().and_then(|r| r.view.table(&table.schema, &table.name))
    }

    fn grant(&self, table: &Table, verb: Verb) -> Option<&Grant> {
        self.grants(table).and_then(|g| g.get(verb))
    }

    /// 403 `42501` when the role may see `table` but not use `verb` on it.
    pub fn check_verb(&self, table: &Table, verb: Verb) -> Result<(), PlanError> {
        if self.role.is_none() || self.grant(table, verb).is_some() {
            return Ok(());
        }
        Err(PlanError::PermissionDenied {
            kind: if table.is_view { "view" } else { "table" },
            name: table.name.clone(),
            details: format!("{} is not granted on {} to the caller's role", verb.name(), table.name),
        })
    }

    /// A column `verb` may not write on `table` (a body key, `columns=`,
    /// `on_conflict=`) answers as an unknown one does there: 400
    /// `PGRST204`, as in PostgREST.
    pub fn check_columns<'a>(
        &self,
        table: &Table,
        verb: Verb,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), PlanError> {
        let Some(grant) = self.grant(table, verb) else { return Ok(()) };
        match names.into_iter().find(|n| !grant.allows_column(n)) {
            Some(hidden) => {
                Err(PlanError::UnknownBodyColumn { table: table.name.clone(), column: hidden.to_string(), hint: None })
            }
            None => Ok(()),
        }
    }

    /// Whether the caller may read every one of `columns` on `table` with
    /// GET: what a response may reveal of a row beyond the body it asked
    /// for (the primary key in `Location`).
    pub fn may_read_columns<'a>(&self, table: &Table, mut columns: impl Iterator<Item = &'a str>) -> bool {
        if self.role.is_none() {
            return true;
        }
        self.grant(table, Verb::Get).is_some_and(|grant| columns.all(|c| grant.allows_column(c)))
    }

    /// The table itself, with every column, for the view's `table`.
    pub fn full_table<'s>(&'s self, table: &Table) -> Option<&'s Table> {
        self.full.table(&table.schema, &table.name)
    }

    /// The rows `verb` may see or touch on `table`, as a condition on its
    /// columns (any column, hidden or not); `None` when every row.
    pub fn row_condition<'s>(&'s self, table: &Table, verb: Verb) -> Result<Option<PlannedCondition<'s>>, PlanError> {
        let Some(role) = &self.role else { return Ok(None) };
        let Some(Grant { rows: RowFilter::Any(filters), .. }) = self.grant(table, verb) else { return Ok(None) };
        let full = self.full_table(table).ok_or_else(|| PlanError::BadRule {
            message: format!("a row filter applies to {}, which is not a table of the schema", table.name),
        })?;
        if filters.is_empty() {
            // Every filter that applied named a column the table lacks.
            return Ok(Some(PlannedCondition::Unknown));
        }
        let mut alternatives = Vec::with_capacity(filters.len());
        for filter in filters {
            let children = filter
                .iter()
                .map(|c| rule_condition(self.full.engine, full, c, &role.claims))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| match e {
                    PlanError::BadRule { .. } => e,
                    other => PlanError::BadRule {
                        message: format!("a role's rowFilter cannot apply to {}: {other}", table.name),
                    },
                })?;
            alternatives.push(PlannedCondition::Group { negated: false, op: LogicOp::And, children });
        }
        Ok(Some(PlannedCondition::Group { negated: false, op: LogicOp::Or, children: alternatives }))
    }

    /// Adds the row filters to a read: `root`'s at the top level (none for
    /// a function's result, which is trusted), GET's in every embedded
    /// resource and spread.
    pub fn restrict<'s>(&'s self, plan: &mut ReadPlan<'s>, root: Option<Verb>) -> Result<(), PlanError> {
        if self.role.is_none() {
            return Ok(());
        }
        if let Some(verb) = root
            && let Some(condition) = self.row_condition(plan.table, verb)?
        {
            plan.conditions.push(condition);
        }
        for item in &mut plan.items {
            if let PlannedItem::Embed(e) = item {
                self.restrict(&mut e.plan, Some(Verb::Get))?;
            }
        }
        Ok(())
    }

    /// The verbs the role may call a function with; `None` on an open API.
    pub fn function_verbs(&self, function: &Function) -> Option<Verbs> {
        let role = self.role.as_ref()?;
        Some(role.view.function(&function.schema, &function.name).unwrap_or_default())
    }

    /// 403 `42501` when the role may see the function but not call it with
    /// `verb`.
    pub fn check_function(&self, function: &Function, verb: Verb) -> Result<(), PlanError> {
        match self.function_verbs(function) {
            Some(verbs) if !verbs.contains(verb) => Err(PlanError::PermissionDenied {
                kind: "function",
                name: function.name.clone(),
                details: format!("{} is not granted on /rpc/{} to the caller's role", verb.name(), function.name),
            }),
            _ => Ok(()),
        }
    }
}

/// A rule's condition planned on the full table, with the caller's claims
/// in its values. A comparison with a missing claim, or with a claim that
/// cannot be of the column's type, is unknown (false), as SQL NULL.
fn rule_condition<'s>(
    engine: Engine,
    table: &'s Table,
    condition: &Condition,
    claims: &serde_json::Value,
) -> Result<PlannedCondition<'s>, PlanError> {
    match condition {
        Condition::Group { negated, op, children } => Ok(PlannedCondition::Group {
            negated: *negated,
            op: *op,
            children: children.iter().map(|c| rule_condition(engine, table, c, claims)).collect::<Result<_, _>>()?,
        }),
        Condition::Filter(f) if names_claims(&f.operation) => {
            let Some(operation) = with_claims(&f.operation, claims) else { return Ok(PlannedCondition::Unknown) };
            match plan_filter_on(engine, table, &Filter { operation, ..f.clone() }) {
                Err(PlanError::InvalidValue { .. }) => Ok(PlannedCondition::Unknown),
                other => other,
            }
        }
        Condition::Filter(f) => plan_filter_on(engine, table, f),
    }
}
