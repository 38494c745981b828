//! Planning a read: which table, columns, embeds, conditions, order and
//! page (the plan's parts are in nodes.rs).

use crate::grammar::{AggregateFunction, ApiQuery, EmbedPath, SelectItem};
use crate::schema::{Cardinality, Relationship, Schema, Table};

use super::filter::plan_condition;
use super::items::{check_grouping, computed_grouping, parse_cast};
use super::nodes::{AggregatePlan, EmbedPlan, Page, PlannedItem, PlannedOrder, ReadPlan};
use super::{PlanError, RelationshipChoice, closest, find_column};

/// Plans `GET /{table}` in the exposed schema `profile`.
#[tracing::instrument(level = "debug", name = "plan", skip_all)]
pub fn plan_read<'s>(
    schema: &'s Schema,
    profile: &str,
    table_name: &str,
    query: &ApiQuery,
    page: Page,
) -> Result<ReadPlan<'s>, PlanError> {
    plan_rows_of(schema, find_table(schema, profile, table_name)?, query, page)
}

/// Plans a read of `table`'s rows (a table, a view or a function's result).
pub(crate) fn plan_rows_of<'s>(
    schema: &'s Schema,
    table: &'s Table,
    query: &ApiQuery,
    page: Page,
) -> Result<ReadPlan<'s>, PlanError> {
    let mut planner = Planner { schema, next_alias: 0 };
    let star = [SelectItem::Star];
    let select = query.select.as_deref().unwrap_or(&star);
    let mut plan = planner.node(table, select, false)?;
    plan.offset = page.offset;
    plan.limit = page.limit;
    for (path, condition) in &query.conditions {
        let node = node_at(&mut plan, path)?;
        let planned = plan_condition(schema.engine, node, condition)?;
        node.conditions.push(planned);
    }
    for (path, terms) in &query.order {
        let node = node_at(&mut plan, path)?;
        for t in terms {
            let (via, table) = match &t.relation {
                None => (None, node.table),
                Some(label) => (Some(label.clone()), to_one_embed(node, label)?),
            };
            let column = find_column(table, &t.field.name)?;
            if column.computed.is_some() && node.is_aggregated() {
                computed_grouping()?;
            }
            node.order.push(PlannedOrder {
                via,
                column,
                json_path: t.field.json_path.clone(),
                direction: t.direction,
                nulls: t.nulls,
            });
        }
    }
    for (path, limit) in query.limits.iter().filter(|(p, _)| !p.is_empty()) {
        node_at(&mut plan, path)?.limit = Some(*limit);
    }
    for (path, offset) in query.offsets.iter().filter(|(p, _)| !p.is_empty()) {
        node_at(&mut plan, path)?.offset = *offset;
    }
    Ok(plan)
}

pub fn find_table<'s>(schema: &'s Schema, profile: &str, name: &str) -> Result<&'s Table, PlanError> {
    schema.table(profile, name).ok_or_else(|| PlanError::UnknownTable {
        schema: profile.to_string(),
        table: name.to_string(),
        hint: closest(name, schema.tables_in(profile).map(|t| t.name.as_str()))
            .map(|c| format!("Perhaps you meant the table '{profile}.{c}'")),
    })
}

struct Planner<'s> {
    schema: &'s Schema,
    next_alias: usize,
}

impl<'s> Planner<'s> {
    fn alias(&mut self, prefix: &str) -> String {
        self.next_alias += 1;
        format!("{prefix}{}", self.next_alias)
    }

    fn node(&mut self, table: &'s Table, select: &[SelectItem], embedded: bool) -> Result<ReadPlan<'s>, PlanError> {
        let alias = self.alias("t");
        let mut items = Vec::new();
        for item in select {
            match item {
                SelectItem::Star => items.extend(table.columns.iter().map(|c| PlannedItem::Column {
                    column: c,
                    json_path: vec![],
                    label: c.name.clone(),
                    cast: None,
                })),
                // `books(count)`: the count of the embedded rows, as
                // supabase-js writes it, unless the table has such a column.
                SelectItem::Column { field, alias, cast: None }
                    if embedded
                        && field.name == "count"
                        && field.json_path.is_empty()
                        && table.column("count").is_none() =>
                {
                    items.push(PlannedItem::Aggregate(AggregatePlan {
                        function: AggregateFunction::Count,
                        input: None,
                        input_cast: None,
                        result_cast: None,
                        label: alias.clone().unwrap_or_else(|| "count".into()),
                    }));
                }
                SelectItem::Aggregate { function, field, input_cast, alias, result_cast } => {
                    let input = match field {
                        Some(field) => Some((find_column(table, &field.name)?, field.json_path.clone())),
                        None => None,
                    };
                    items.push(PlannedItem::Aggregate(AggregatePlan {
                        function: *function,
                        input,
                        input_cast: parse_cast(input_cast.as_deref())?,
                        result_cast: parse_cast(result_cast.as_deref())?,
                        label: alias.clone().unwrap_or_else(|| function.name().to_string()),
                    }));
                }
                SelectItem::Column { field, alias, cast } => {
                    let column = find_column(table, &field.name)?;
                    let cast = parse_cast(cast.as_deref())?;
                    items.push(PlannedItem::Column {
                        column,
                        json_path: field.json_path.clone(),
                        label: alias.clone().unwrap_or_else(|| field.default_label()),
                        cast,
                    });
                }
                SelectItem::Embed(embed) => {
                    let relationship = self.relationship(table, &embed.target, embed.hint.as_deref())?;
                    let target = self
                        .schema
                        .table(&relationship.target.0, &relationship.target.1)
                        .expect("relationships only point at known tables");
                    let junction = match &relationship.junction {
                        Some(j) => Some((
                            self.schema.table(&j.table.0, &j.table.1).expect("junctions are known tables"),
                            self.alias("j"),
                        )),
                        None => None,
                    };
                    let plan = self.node(target, &embed.select, true)?;
                    if embed.spread && plan.is_aggregated() {
                        return Err(PlanError::Unsupported {
                            message: "Aggregate functions in a spread embed are not supported".into(),
                            hint: format!("Embed it without \"...\": {}(...)", embed.target),
                        });
                    }
                    items.push(PlannedItem::Embed(EmbedPlan {
                        label: embed.label().to_string(),
                        relationship,
                        junction,
                        inner: embed.inner,
                        spread: embed.spread,
                        hidden: embed.select.is_empty(),
                        plan,
                    }));
                }
            }
        }
        let plan =
            ReadPlan { table, call: None, alias, items, conditions: vec![], order: vec![], limit: None, offset: 0 };
        if plan.is_aggregated() {
            check_grouping(&plan, embedded)?;
        }
        Ok(plan)
    }

    /// The relationship `target!hint` names from `table`, resolved as
    /// PostgREST resolves it: by the target table's name (with a hint: the
    /// foreign key's name or column, or the junction table), or, without a
    /// hint, by a foreign key's name or its single column
    /// (`select=client_id(*)`). A table referring to itself has two
    /// relationships through one key: its name (with or without a hint)
    /// reaches the rows that refer to this one, the key's column or name
    /// the row this one refers to (`family_tree!parent` are the children,
    /// `parent` the parent). More than one match is refused, never guessed.
    fn relationship(&self, table: &'s Table, target: &str, hint: Option<&str>) -> Result<&'s Relationship, PlanError> {
        let all = self.schema.relationships_from(table);
        // A computed relationship is embedded by its function's name, and
        // wins over a detected one of the same name, as in PostgREST.
        let computed = |r: &Relationship| r.function.as_ref().is_some_and(|f| f.function == target);
        if hint.is_none()
            && let Some(r) = all.iter().find(|r| computed(r))
        {
            return Ok(r);
        }
        let all: Vec<&Relationship> = all.iter().filter(|r| r.function.is_none()).collect();
        let refers_to_itself = |r: &Relationship| r.target.0 == table.schema && r.target.1 == table.name;
        let by_key = |r: &Relationship| {
            r.junction.is_none()
                && ((r.cardinality == Cardinality::ManyToOne && r.columns.len() == 1 && r.columns[0].0 == target)
                    || (r.constraint == target && (r.cardinality == Cardinality::ManyToOne || !refers_to_itself(r))))
        };
        let by_table = |r: &Relationship| {
            r.target.1 == target
                && !(refers_to_itself(r) && r.cardinality == Cardinality::ManyToOne)
                && hint.is_none_or(|h| r.matches_hint(h))
        };
        let matching: Vec<&Relationship> =
            all.iter().copied().filter(|r| by_table(r) || (hint.is_none() && by_key(r))).collect();
        match matching.len() {
            1 => Ok(matching[0]),
            0 => {
                let to_target: Vec<&Relationship> = all.iter().copied().filter(|r| r.target.1 == target).collect();
                Err(PlanError::NoRelationship {
                    from: table.name.clone(),
                    to: target.to_string(),
                    hint: if to_target.is_empty() {
                        closest(target, all.iter().map(|r| r.target.1.as_str()))
                            .map(|c| format!("Perhaps you meant '{c}' instead of '{target}'."))
                            .or_else(|| Some("Verify that the tables are related by a foreign key.".into()))
                    } else {
                        Some(format!(
                            "No relationship matches the hint '{}'; use one of: {}",
                            hint.unwrap_or_default(),
                            to_target.iter().map(|r| describe(table, r).hint).collect::<Vec<_>>().join(", ")
                        ))
                    },
                })
            }
            _ => Err(PlanError::AmbiguousRelationship {
                from: table.name.clone(),
                to: target.to_string(),
                candidates: matching.iter().map(|r| describe(table, r)).collect(),
            }),
        }
    }
}

/// A relationship as PostgREST lists the candidates of an ambiguous embed.
fn describe(table: &Table, r: &Relationship) -> RelationshipChoice {
    let cardinality = match r.cardinality {
        Cardinality::ManyToOne => "many-to-one",
        Cardinality::OneToOne => "one-to-one",
        Cardinality::OneToMany => "one-to-many",
        Cardinality::ManyToMany => "many-to-many",
    };
    let columns = |pairs: &[(String, String)], first: bool| {
        pairs.iter().map(|(a, b)| if first { a.as_str() } else { b.as_str() }).collect::<Vec<_>>().join(", ")
    };
    match &r.junction {
        Some(j) => RelationshipChoice {
            cardinality,
            relationship: format!(
                "{} using {}({}) and {}({})",
                j.table.1,
                j.source_constraint,
                columns(&j.source_columns, true),
                j.target_constraint,
                columns(&j.target_columns, true)
            ),
            hint: j.table.1.clone(),
        },
        None => RelationshipChoice {
            cardinality,
            relationship: format!(
                "{} using {}({}) and {}({})",
                r.constraint,
                table.name,
                columns(&r.columns, true),
                r.target.1,
                columns(&r.columns, false)
            ),
            hint: r.constraint.clone(),
        },
    }
}

/// The target table of the to-one embed `label` of `node`, for ordering.
fn to_one_embed<'s>(node: &ReadPlan<'s>, label: &str) -> Result<&'s Table, PlanError> {
    let embed = node.items.iter().find_map(|i| match i {
        PlannedItem::Embed(e) if e.label == label => Some(e),
        _ => None,
    });
    match embed {
        Some(e) if e.is_to_one() => Ok(e.plan.table),
        Some(_) => Err(PlanError::RelatedOrderNotToOne { label: label.to_string() }),
        None => Err(PlanError::UnknownEmbedPath { path: label.to_string() }),
    }
}

/// The plan node an embed path leads to.
fn node_at<'p, 's>(plan: &'p mut ReadPlan<'s>, path: &EmbedPath) -> Result<&'p mut ReadPlan<'s>, PlanError> {
    let mut node = plan;
    for (depth, label) in path.iter().enumerate() {
        let found = node.items.iter_mut().find_map(|i| match i {
            PlannedItem::Embed(e) if &e.label == label => Some(&mut e.plan),
            _ => None,
        });
        node = found.ok_or_else(|| PlanError::UnknownEmbedPath { path: path[..=depth].join(".") })?;
    }
    Ok(node)
}
