//! MySQL/MariaDB: `JSON_OBJECT`/`JSON_ARRAYAGG` (with ORDER BY and LIMIT
//! inside the aggregate, a MariaDB form), `?` placeholders, JSON_CONTAINS
//! for containment, and NULL ordering spelled out.

use crate::grammar::{Direction, IsValue, JsonStep, Nulls, Operation, Operator, Quantifier, pg_array_to_json};
use crate::plan::Cast;
use crate::schema::{Column, Engine, ValueKind};

use super::{Dialect, Fragment, Member, Param, Writer, bool_param, expand_list, json_path_text, nulls_first};

pub(super) struct MySql;

impl Dialect for MySql {
    fn engine(&self) -> Engine {
        Engine::MySql
    }

    fn quote_ident(&self, out: &mut String, name: &str) {
        super::quote_doubling(out, name, '`');
    }

    fn placeholder(&self, out: &mut String, _index: usize, _pg_type: &str) {
        out.push('?');
    }

    fn json_object(&self, w: &mut Writer, pairs: &[Member]) {
        super::key_value_call(w, "JSON_OBJECT", pairs);
    }

    fn json_value(&self, w: &mut Writer, kind: &ValueKind, value: &Fragment) {
        match kind {
            ValueKind::Boolean => {
                w.push("CASE WHEN ");
                value(w);
                w.push(" IS NULL THEN NULL WHEN ");
                value(w);
                w.push(" THEN JSON_EXTRACT('true', '$') ELSE JSON_EXTRACT('false', '$') END");
            }
            ValueKind::Bytes => {
                // PostgreSQL's bytea spelling, `\x` and hex digits.
                w.push("CONCAT(CHAR(92), 'x', LOWER(HEX(");
                value(w);
                w.push(")))");
            }
            ValueKind::TimestampTz if w.time_zone.is_some() => {
                // The instant in the requested zone, with its offset, as
                // PostgreSQL writes a timestamptz (`2024-01-01T04:00:00-08:00`).
                let zone = w.time_zone.clone().unwrap_or_default();
                let local = |w: &mut Writer| {
                    w.push("CONVERT_TZ(");
                    value(w);
                    w.push(", '+00:00', ");
                    w.text(&zone);
                    w.push(")");
                };
                let offset = |w: &mut Writer| {
                    w.push("TIMEDIFF(");
                    local(w);
                    w.push(", ");
                    value(w);
                    w.push(")");
                };
                w.push("CONCAT(REPLACE(CAST(");
                local(w);
                w.push(" AS CHAR), ' ', 'T'), IF(TIME_TO_SEC(");
                offset(w);
                w.push(") < 0, '-', '+'), TIME_FORMAT(SEC_TO_TIME(ABS(TIME_TO_SEC(");
                offset(w);
                w.push("))), '%H:%i'))");
            }
            ValueKind::Timestamp | ValueKind::TimestampTz => {
                w.push("REPLACE(CAST(");
                value(w);
                w.push(" AS CHAR), ' ', 'T')");
            }
            ValueKind::Json => {
                w.push("JSON_EXTRACT(");
                value(w);
                w.push(", '$')");
            }
            _ => value(w),
        }
    }

    fn json_array_agg(&self, w: &mut Writer, element: &Fragment, order: Option<&Fragment>) {
        self.json_array_agg_limited(w, element, order, None, 0);
    }

    fn json_array_result(&self, w: &mut Writer, element: &Fragment, order: Option<&Fragment>) {
        w.push("COALESCE(JSON_ARRAYAGG(");
        element(w);
        if let Some(order) = order {
            w.push(" ORDER BY ");
            order(w);
        }
        w.push("), '[]')");
    }

    fn builds_objects_before_aggregating(&self) -> bool {
        true
    }

    fn aggregate_limits(&self) -> bool {
        true
    }

    fn json_array_agg_limited(
        &self,
        w: &mut Writer,
        element: &Fragment,
        order: Option<&Fragment>,
        limit: Option<u64>,
        offset: u64,
    ) {
        w.push("COALESCE(JSON_ARRAYAGG(");
        element(w);
        if let Some(order) = order {
            w.push(" ORDER BY ");
            order(w);
        }
        self.limit_offset(w, limit, offset);
        w.push("), JSON_ARRAY())");
    }

    fn json_path(&self, w: &mut Writer, column: &Fragment, path: &[JsonStep]) {
        let path_text = json_path_text(path);
        if path.last().is_some_and(|s| s.as_text) {
            // Like PostgreSQL's `->>`: scalars unquoted (true as `true`,
            // not 1), JSON null and missing keys as NULL, objects and
            // arrays as their JSON text.
            let extract = |w: &mut Writer| {
                w.push("JSON_EXTRACT(");
                column(w);
                w.push(", ");
                w.text(&path_text);
                w.push(")");
            };
            w.push("CASE WHEN COALESCE(JSON_TYPE(");
            extract(w);
            w.push("), 'NULL') = 'NULL' THEN NULL ELSE JSON_UNQUOTE(");
            extract(w);
            w.push(") END");
        } else {
            w.push("JSON_EXTRACT(");
            column(w);
            w.push(", ");
            w.text(&path_text);
            w.push(")");
        }
    }

    fn cast(&self, w: &mut Writer, cast: Cast, value: &Fragment) {
        if cast == Cast::Boolean {
            w.push("(");
            value(w);
            w.push(" <> 0)");
            return;
        }
        if cast == Cast::Json {
            value(w);
            return;
        }
        w.push("CAST(");
        value(w);
        w.push(match cast {
            Cast::Text => " AS CHAR)",
            Cast::Integer | Cast::BigInt => " AS SIGNED)",
            Cast::Numeric => " AS DECIMAL(65,10))",
            Cast::Float => " AS DOUBLE)",
            Cast::Date => " AS DATE)",
            Cast::Timestamp => " AS DATETIME(6))",
            Cast::Boolean | Cast::Json => unreachable!("handled above"),
        });
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
        let json_valued = json_path.last().is_some_and(|s| !s.as_text);
        // A JSON document as is; a PostgreSQL array literal (`{a,b}`, what
        // postgrest-js sends for arrays) as the JSON array it means.
        let json_arg = |v: &str| match serde_json::from_str::<serde_json::Value>(v) {
            Ok(_) => v.to_string(),
            Err(_) => pg_array_to_json(v).unwrap_or_else(|| v.to_string()),
        };
        match operation {
            // JSON against JSON, in a normal form. (Not JSON_EQUALS: MariaDB
            // 10.11 treats its NULL as true inside WHERE.)
            Operation::Compare { op: op @ (Operator::Eq | Operator::Neq), value: v } if json_valued => {
                w.push("JSON_COMPACT(");
                lhs(w);
                w.push(if *op == Operator::Eq { ") = JSON_COMPACT(" } else { ") <> JSON_COMPACT(" });
                w.text(v);
                w.push(")");
            }
            Operation::Compare { op, value: v } => match op {
                Operator::Ilike => {
                    w.push("LOWER(");
                    lhs(w);
                    w.push(") LIKE LOWER(");
                    w.text(v);
                    w.push(")");
                }
                Operator::Match | Operator::Imatch => {
                    lhs(w);
                    w.push(" REGEXP ");
                    let flag = if *op == Operator::Match { "(?-i)" } else { "(?i)" };
                    w.text(&format!("{flag}{v}"));
                }
                Operator::IsDistinct => {
                    w.push("NOT (");
                    lhs(w);
                    w.push(" <=> ");
                    w.param(value(v), "");
                    w.push(")");
                }
                Operator::Cs => {
                    w.push("JSON_CONTAINS(");
                    lhs(w);
                    w.push(", ");
                    w.text(&json_arg(v));
                    w.push(")");
                }
                Operator::Cd => {
                    w.push("JSON_CONTAINS(");
                    w.text(&json_arg(v));
                    w.push(", ");
                    lhs(w);
                    w.push(")");
                }
                Operator::Ov => {
                    w.push("JSON_OVERLAPS(");
                    lhs(w);
                    w.push(", ");
                    w.text(&json_arg(v));
                    w.push(")");
                }
                op => {
                    lhs(w);
                    w.push(comparison_operator(*op));
                    w.param(value(v), "");
                }
            },
            Operation::Quantified { op, quantifier, values } => {
                let any = *quantifier == Quantifier::Any;
                let params: Vec<Param> = match op {
                    Operator::Match => values.iter().map(|v| Param::Text(format!("(?-i){v}"))).collect(),
                    Operator::Imatch => values.iter().map(|v| Param::Text(format!("(?i){v}"))).collect(),
                    Operator::Ilike => values.iter().map(|v| Param::Text(v.to_lowercase())).collect(),
                    _ => values.iter().map(|v| value(v)).collect(),
                };
                let lower_lhs = |w: &mut Writer| {
                    w.push("LOWER(");
                    lhs(w);
                    w.push(")");
                };
                let lhs: &Fragment = if *op == Operator::Ilike { &lower_lhs } else { lhs };
                w.push("(");
                expand_list(w, lhs, comparison_operator(*op), &params, any);
                w.push(")");
            }
            Operation::In(values) => {
                if values.is_empty() {
                    w.push("1 = 0");
                    return;
                }
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
                    IsValue::Null => " IS NULL",
                    IsValue::NotNull => " IS NOT NULL",
                    IsValue::True => " IS TRUE",
                    IsValue::False => " IS FALSE",
                    IsValue::Unknown => " IS UNKNOWN",
                });
            }
            Operation::Fts { .. } => unreachable!("the planner refuses fts on MySQL"),
        }
    }

    fn order_term(&self, w: &mut Writer, expr: &Fragment, direction: Option<Direction>, nulls: Option<Nulls>) {
        // No NULLS FIRST/LAST: sort on "is null" first.
        expr(w);
        w.push(if nulls_first(direction, nulls) { " IS NULL DESC, " } else { " IS NULL ASC, " });
        expr(w);
        w.push(if direction == Some(Direction::Desc) { " DESC" } else { " ASC" });
    }

    fn write_value(&self, w: &mut Writer, column: &Column, value: &serde_json::Value) {
        super::write_plain_value(w, column, value);
    }

    fn default_values(&self, w: &mut Writer) {
        w.push(" () VALUES ()");
    }

    /// MySQL has no conflict target: a duplicate on any unique key updates
    /// (merge) or keeps the row through a no-op update (INSERT IGNORE would
    /// also swallow NOT NULL and type errors).
    fn on_conflict(&self, w: &mut Writer, keys: &[&Column], updates: &[&Column], merge: bool) {
        if !merge || updates.is_empty() {
            if let Some(k) = keys.first() {
                w.push(" ON DUPLICATE KEY UPDATE ");
                w.ident(&k.name);
                w.push(" = ");
                w.ident(&k.name);
            }
            return;
        }
        w.push(" ON DUPLICATE KEY UPDATE ");
        for (i, c) in updates.iter().enumerate() {
            if i > 0 {
                w.push(", ");
            }
            w.ident(&c.name);
            w.push(" = VALUES(");
            w.ident(&c.name);
            w.push(")");
        }
    }

    fn delete_from(&self, w: &mut Writer, schema: &str, table: &str, alias: &str) {
        w.push("DELETE ");
        w.ident(alias);
        w.push(" FROM ");
        w.table(schema, table);
        w.push(" AS ");
        w.ident(alias);
    }

    fn limit_offset(&self, w: &mut Writer, limit: Option<u64>, offset: u64) {
        if limit.is_none() && offset == 0 {
            return;
        }
        w.push(" LIMIT ");
        w.param(Param::Int(limit.unwrap_or(i64::MAX as u64).min(i64::MAX as u64) as i64), "");
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
        Operator::Like | Operator::Ilike => " LIKE ",
        Operator::Match | Operator::Imatch => " REGEXP ",
        _ => unreachable!("the planner refuses {op:?} on MySQL outside JSON functions"),
    }
}
