//! Aggregates in a read (`count()`, `amount.sum()`, `books(count)`): the
//! grouped page of a level that aggregates, and an embed of aggregates
//! computed over its related rows.

use crate::plan::{AggregatePlan, EmbedPlan, PlannedItem, ReadPlan};

use super::read::{column_at, from_related};
use super::{Fragment, Member, Writer};

/// The columns a level's rows are grouped by, once each (they keep their
/// names, so the object reads them as usual), then each aggregate as
/// `dbapi_agg_<n>`: the names are the statement's, never the request's.
pub(super) fn grouped_columns(w: &mut Writer, plan: &ReadPlan) {
    let mut first = true;
    let mut separate = |w: &mut Writer| {
        if !std::mem::take(&mut first) {
            w.push(", ");
        }
    };
    for name in group_columns(plan) {
        separate(w);
        w.column(&plan.alias, name);
    }
    for (n, aggregate) in aggregates(plan).enumerate() {
        separate(w);
        aggregate_call(w, &plan.alias, aggregate);
        w.push(" AS ");
        w.ident(&aggregate_column(n));
    }
}

pub(super) fn group_by(w: &mut Writer, plan: &ReadPlan) {
    for (i, name) in group_columns(plan).into_iter().enumerate() {
        w.push(if i == 0 { " GROUP BY " } else { ", " });
        w.column(&plan.alias, name);
    }
}

/// The names of the columns selected beside aggregates, once each.
fn group_columns<'p>(plan: &'p ReadPlan) -> Vec<&'p str> {
    let mut names: Vec<&str> = Vec::new();
    for item in &plan.items {
        if let PlannedItem::Column { column, .. } = item
            && !names.contains(&column.name.as_str())
        {
            names.push(&column.name);
        }
    }
    names
}

fn aggregates<'p, 's>(plan: &'p ReadPlan<'s>) -> impl Iterator<Item = &'p AggregatePlan<'s>> {
    plan.items.iter().filter_map(|item| match item {
        PlannedItem::Aggregate(a) => Some(a),
        _ => None,
    })
}

fn aggregate_column(n: usize) -> String {
    format!("dbapi_agg_{n}")
}

/// An aggregate's JSON value at a grouped level: its column of the page.
pub(super) fn grouped_value(w: &mut Writer, plan: &ReadPlan, aggregate: &AggregatePlan) {
    let n = aggregates(plan).position(|other| std::ptr::eq(other, aggregate)).expect("one of the plan's");
    aggregate_value(w, aggregate, &|w: &mut Writer| w.column(&plan.alias, &aggregate_column(n)));
}

/// `sum(t1.amount)`, `count(*)`: the aggregate over the rows of `alias`.
fn aggregate_call(w: &mut Writer, alias: &str, aggregate: &AggregatePlan) {
    let d = w.dialect;
    w.push(aggregate.function.name());
    w.push("(");
    match &aggregate.input {
        None => w.push("*"),
        Some((column, json_path)) => {
            let value = |w: &mut Writer| column_at(w, alias, column, json_path);
            match aggregate.input_cast {
                Some(cast) => d.cast(w, cast, &value),
                None => value(w),
            }
        }
    }
    w.push(")");
}

/// An aggregate's JSON value, from `result` (its SQL value), with its
/// result cast.
fn aggregate_value(w: &mut Writer, aggregate: &AggregatePlan, result: &Fragment) {
    let d = w.dialect;
    d.json_value(w, &aggregate.kind(), &|w| match aggregate.result_cast {
        Some(cast) => d.cast(w, cast, result),
        None => result(w),
    });
}

/// An embed of aggregates only (`books(count)`, `order_items(quantity.sum())`):
/// one object whose every value is its aggregate over the related rows,
/// in an array of one for a to-many relationship, as PostgREST answers.
pub(super) fn aggregated_embed(w: &mut Writer, embed: &EmbedPlan, parent_alias: &str) {
    let d = w.dialect;
    let values: Vec<(&str, Box<Fragment>)> = aggregates(&embed.plan)
        .map(|a| {
            let over_related = move |w: &mut Writer| {
                w.push("(SELECT ");
                aggregate_call(w, &embed.plan.alias, a);
                from_related(w, embed, parent_alias);
                w.push(")");
            };
            let value = move |w: &mut Writer| aggregate_value(w, a, &over_related);
            (a.label.as_str(), Box::new(value) as Box<Fragment>)
        })
        .collect();
    let members: Vec<Member> = values.iter().map(|(k, v)| (*k, v.as_ref())).collect();
    let object = |w: &mut Writer| d.json_object(w, &members);
    if embed.is_to_one() { object(w) } else { d.json_array_of_one(w, &object) }
}
