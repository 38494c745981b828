//! SQLite: `json_object`/`json_group_array`, `?` placeholders, GLOB for
//! case-sensitive `like`, and booleans and blobs converted for JSON.

use crate::grammar::{Direction, IsValue, JsonStep, Nulls, Operation, Operator, Quantifier};
use crate::plan::Cast;
use crate::schema::{Column, Engine, ValueKind};

use super::{Dialect, Fragment, Member, Param, Writer, bool_param, expand_list, json_path_text, nulls_first};

pub(super) struct Sqlite;

/// A LIKE pattern (`%`, `_`, `\` escapes) as a GLOB pattern, so that `like`
/// is case-sensitive as in PostgreSQL.
fn like_to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '\\' => match chars.next() {
                Some(n) => push_glob_literal(&mut out, n),
                None => push_glob_literal(&mut out, '\\'),
            },
            c => push_glob_literal(&mut out, c),
        }
    }
    out
}

fn push_glob_literal(out: &mut String, c: char) {
    match c {
        '*' | '?' | '[' => {
            out.push('[');
            out.push(c);
            out.push(']');
        }
        c => out.push(c),
    }
}

impl Dialect for Sqlite {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    fn quote_ident(&self, out: &mut String, name: &str) {
        super::quote_doubling(out, name, '"');
    }

    fn placeholder(&self, out: &mut String, _index: usize, _pg_type: &str) {
        out.push('?');
    }

    fn json_object(&self, w: &mut Writer, pairs: &[Member]) {
        super::key_value_call(w, "json_object", pairs);
    }

    fn json_value(&self, w: &mut Writer, kind: &ValueKind, value: &Fragment) {
        match kind {
            ValueKind::Boolean => {
                w.push("CASE WHEN ");
                value(w);
                w.push(" IS NULL THEN NULL WHEN ");
                value(w);
                w.push(" THEN json('true') ELSE json('false') END");
            }
            ValueKind::Bytes => {
                w.push("CASE WHEN ");
                value(w);
                w.push(" IS NULL THEN NULL ELSE '\\x' || lower(hex(");
                value(w);
                w.push(")) END");
            }
            ValueKind::Json => {
                w.push("CASE WHEN json_valid(");
                value(w);
                w.push(") THEN json(");
                value(w);
                w.push(") ELSE ");
                value(w);
                w.push(" END");
            }
            _ => value(w),
        }
    }

    fn json_array_agg(&self, w: &mut Writer, element: &Fragment, order: Option<&Fragment>) {
        w.push("json_group_array(");
        element(w);
        if let Some(order) = order {
            w.push(" ORDER BY ");
            order(w);
        }
        w.push(")");
    }

    fn derived_json(&self, w: &mut Writer, value: &Fragment) {
        w.push("json(");
        value(w);
        w.push(")");
    }

    fn json_text(&self, w: &mut Writer, value: &Fragment) {
        // A JSON value (an object, `json('true')`) stays as it is; a plain
        // SQL value becomes its JSON text, so that `json()` reads it back.
        w.push("json_quote(");
        value(w);
        w.push(")");
    }

    fn json_path(&self, w: &mut Writer, column: &Fragment, path: &[JsonStep]) {
        let path_text = json_path_text(path);
        if path.last().is_some_and(|s| s.as_text) {
            // Text like PostgreSQL's `->>`: SQLite would give numbers as
            // numbers and booleans as 1/0.
            w.push("CASE json_type(");
            column(w);
            w.push(", ");
            w.text(&path_text);
            w.push(") WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(json_extract(");
            column(w);
            w.push(", ");
            w.text(&path_text);
            w.push(") AS TEXT) END");
        } else {
            column(w);
            w.push(" -> ");
            w.text(&path_text);
        }
    }

    fn cast(&self, w: &mut Writer, cast: Cast, value: &Fragment) {
        let (open, close) = match cast {
            Cast::Text => ("CAST(", " AS TEXT)"),
            // Rounded, as PostgreSQL and MySQL do; SQLite would truncate.
            Cast::Integer | Cast::BigInt => ("CAST(round(", ") AS INTEGER)"),
            Cast::Numeric => ("CAST(", " AS NUMERIC)"),
            Cast::Float => ("CAST(", " AS REAL)"),
            Cast::Boolean => ("(", " <> 0)"),
            Cast::Json => ("json(", ")"),
            Cast::Date => ("date(", ")"),
            Cast::Timestamp => ("datetime(", ")"),
        };
        w.push(open);
        value(w);
        w.push(close);
    }

    fn condition(
        &self,
        w: &mut Writer,
        lhs: &Fragment,
        column: &Column,
        json_path: &[JsonStep],
        operation: &Operation,
    ) {
        let kind = if json_path.is_empty() { column.kind.clone() } else { ValueKind::Text };
        let value = |v: &str| bool_param(&kind, v);
        let pattern = |op: Operator, v: &str| match op {
            Operator::Like => Param::Text(like_to_glob(v)),
            _ => Param::Text(v.to_string()),
        };
        match operation {
            Operation::Compare { op, value: v } => match op {
                Operator::Like | Operator::Ilike => {
                    lhs(w);
                    w.push(comparison_operator(*op));
                    w.param(pattern(*op, v), "");
                    if *op == Operator::Ilike {
                        w.push(" ESCAPE '\\'");
                    }
                }
                Operator::IsDistinct => {
                    lhs(w);
                    w.push(" IS NOT ");
                    w.param(value(v), "");
                }
                op => {
                    lhs(w);
                    w.push(comparison_operator(*op));
                    w.param(value(v), "");
                }
            },
            Operation::Quantified { op, quantifier, values } => {
                let params: Vec<Param> = match op {
                    Operator::Like | Operator::Ilike => values.iter().map(|v| pattern(*op, v)).collect(),
                    _ => values.iter().map(|v| value(v)).collect(),
                };
                w.push("(");
                expand_list(w, lhs, comparison_operator(*op), &params, *quantifier == Quantifier::Any);
                w.push(")");
            }
            Operation::In(values) => {
                lhs(w);
                w.push(" IN (");
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        w.push(", ");
                    }
                    w.param(value(v), "");
                }
                w.push(")");
            }
            Operation::Is(v) => {
                lhs(w);
                w.push(match v {
                    IsValue::Null | IsValue::Unknown => " IS NULL",
                    IsValue::NotNull => " IS NOT NULL",
                    IsValue::True => " IS TRUE",
                    IsValue::False => " IS FALSE",
                });
            }
            Operation::Fts { .. } => unreachable!("the planner refuses fts on SQLite"),
        }
    }

    fn order_term(&self, w: &mut Writer, expr: &Fragment, direction: Option<Direction>, nulls: Option<Nulls>) {
        expr(w);
        w.push(if direction == Some(Direction::Desc) { " DESC" } else { " ASC" });
        w.push(if nulls_first(direction, nulls) { " NULLS FIRST" } else { " NULLS LAST" });
    }

    fn write_value(&self, w: &mut Writer, column: &Column, value: &serde_json::Value) {
        super::write_plain_value(w, column, value);
    }

    /// SQLite has no `SET col = DEFAULT`: the default expression the
    /// schema declares (introspected from the database's own DDL, never
    /// from a request) is written instead; a column without one defaults
    /// to NULL.
    fn column_default(&self, w: &mut Writer, column: &Column) {
        match column.default.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            Some(expression) => {
                w.push("(");
                w.push(expression);
                w.push(")");
            }
            None => w.push("NULL"),
        }
    }

    /// SQLite serializes writers on the whole database: nothing to lock.
    fn lock_rows(&self, _w: &mut Writer) {}

    fn limit_offset(&self, w: &mut Writer, limit: Option<u64>, offset: u64) {
        if limit.is_none() && offset == 0 {
            return;
        }
        w.push(" LIMIT ");
        w.param(Param::Int(limit.map_or(-1, |l| l.min(i64::MAX as u64) as i64)), "");
        if offset > 0 {
            w.push(" OFFSET ");
            w.param(Param::Int(offset.min(i64::MAX as u64) as i64), "");
        }
    }
}

fn comparison_operator(op: Operator) -> &'static str {
    match op {
        Operator::Eq => " = ",
        Operator::Neq => " <> ",
        Operator::Gt => " > ",
        Operator::Gte => " >= ",
        Operator::Lt => " < ",
        Operator::Lte => " <= ",
        Operator::Like => " GLOB ",
        Operator::Ilike => " LIKE ",
        _ => unreachable!("the planner refuses {op:?} on SQLite"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_become_globs() {
        assert_eq!(like_to_glob("%ab_c%"), "*ab?c*");
        assert_eq!(like_to_glob("a*b?[c"), "a[*]b[?][[]c");
        assert_eq!(like_to_glob(r"50\%"), "50%");
    }
}
