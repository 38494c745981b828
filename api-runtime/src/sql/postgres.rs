//! PostgreSQL: `json_build_object`/`json_agg`, typed `$n::type`
//! placeholders, arrays for `in`/`any`/`all`, full-text search and ranges.

use std::borrow::Cow;

use crate::grammar::{Direction, FtsKind, IsValue, JsonKey, JsonStep, Nulls, Operation, Operator, Quantifier};
use crate::plan::Cast;
use crate::schema::{Column, Engine, ValueKind};

use super::{Dialect, Fragment, Member, Param, Writer, base_type, nulls_first};

pub(super) struct Postgres;

/// `json_build_object` takes at most 100 arguments: wider objects are built
/// in chunks and joined.
const PAIRS_PER_CALL: usize = 50;

impl Postgres {
    /// The type a filter value is read as: the column's own type, or, on a
    /// JSON path, text (`->>`) or jsonb (`->`).
    fn value_type<'c>(column: &'c Column, json_path: &[JsonStep]) -> Cow<'c, str> {
        match json_path.last() {
            Some(step) if step.as_text => "text".into(),
            Some(_) => "jsonb".into(),
            None => base_type(&column.db_type),
        }
    }
}

/// The values as one array parameter, converted from text once per
/// statement (a sub-select) rather than once per row compared.
/// A filter value for `column`: through its domain's cast from text when
/// it has one (domain representations), else cast to `ty`.
fn filter_param(w: &mut Writer, column: &Column, json_path: &[JsonStep], value: Param, ty: &str) {
    match filter_cast(column, json_path) {
        Some((schema, function)) => {
            w.table(schema, function);
            w.push("(");
            w.param(value, "text");
            w.push(")");
        }
        None => w.param(value, ty),
    }
}

/// [`filter_param`] for a list of values, as an array.
fn filter_array(w: &mut Writer, column: &Column, json_path: &[JsonStep], values: &[String], array_type: &str) {
    match filter_cast(column, json_path) {
        Some((schema, function)) => {
            w.push("ARRAY(SELECT ");
            w.table(schema, function);
            w.push("(dbapi_value) FROM unnest(");
            w.param(Param::Text(array_literal(values)), "text[]");
            w.push(") AS dbapi_value)");
        }
        None => array_param(w, values, array_type),
    }
}

fn filter_cast<'c>(column: &'c Column, json_path: &[JsonStep]) -> Option<&'c (String, String)> {
    column.representation.as_ref().and_then(|r| r.filter.as_ref()).filter(|_| json_path.is_empty())
}

fn array_param(w: &mut Writer, values: &[String], array_type: &str) {
    // The outer cast keeps ANY(...) from reading the sub-select as a set of
    // rows to compare with.
    w.push("(SELECT ");
    w.param(Param::Text(array_literal(values)), array_type);
    w.push(")::");
    w.push(array_type);
}

/// A PostgreSQL array literal (`{"a","b\"c"}`) holding `values` as text.
fn array_literal(values: &[String]) -> String {
    let mut out = String::from("{");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in v.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

impl Dialect for Postgres {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn quote_ident(&self, out: &mut String, name: &str) {
        super::quote_doubling(out, name, '"');
    }

    fn placeholder(&self, out: &mut String, index: usize, pg_type: &str) {
        out.push('$');
        out.push_str(&index.to_string());
        if !pg_type.is_empty() {
            out.push_str("::");
            out.push_str(pg_type);
        }
    }

    fn json_object(&self, w: &mut Writer, pairs: &[Member]) {
        if pairs.is_empty() {
            w.push("'{}'::json");
            return;
        }
        let chunks: Vec<_> = pairs.chunks(PAIRS_PER_CALL).collect();
        let last = chunks.len() - 1;
        if last > 0 {
            w.push("(");
        }
        for (i, chunk) in chunks.iter().enumerate() {
            // `{"a":1}` `{"b":2}` `{"c":3}` are joined as text into
            // `{"a":1, "b":2, "c":3}`: each chunk loses its inner braces.
            if last > 0 {
                w.push(match i {
                    0 => "left(",
                    i if i == last => " || ', ' || right(",
                    _ => " || ', ' || substr(left(",
                });
            }
            super::key_value_call(w, "json_build_object", chunk);
            if last > 0 {
                w.push(match i {
                    0 => "::text, -1)",
                    i if i == last => "::text, -1)",
                    _ => "::text, -1), 2)",
                });
            }
        }
        if last > 0 {
            w.push(")::json");
        }
    }

    fn aggregates_records(&self) -> bool {
        true
    }

    fn json_value(&self, w: &mut Writer, _kind: &ValueKind, value: &Fragment) {
        value(w);
    }

    fn json_array_agg(&self, w: &mut Writer, element: &Fragment, order: Option<&Fragment>) {
        w.push("coalesce(json_agg(");
        element(w);
        if let Some(order) = order {
            w.push(" ORDER BY ");
            order(w);
        }
        w.push("), '[]'::json)");
    }

    fn json_array_of_one(&self, w: &mut Writer, element: &Fragment) {
        w.push("json_build_array(");
        element(w);
        w.push(")");
    }

    fn json_array_result(&self, w: &mut Writer, element: &Fragment, order: Option<&Fragment>) {
        self.json_array_agg(w, element, order);
        w.push("::text");
    }

    /// Arrays and composite values are stepped into as `jsonb`, as
    /// PostgREST does (`->` exists only on json and jsonb).
    fn json_source(&self, w: &mut Writer, kind: &ValueKind, column: &Fragment) {
        if *kind == ValueKind::Json {
            return column(w);
        }
        w.push("to_jsonb(");
        column(w);
        w.push(")");
    }

    fn json_path(&self, w: &mut Writer, column: &Fragment, path: &[JsonStep]) {
        // Parenthesized: `::` binds tighter than `->`.
        w.push("(");
        column(w);
        for step in path {
            w.push(if step.as_text { "->>" } else { "->" });
            match &step.key {
                JsonKey::Name(n) => w.text(n),
                JsonKey::Index(i) => w.param(Param::Int(*i), "integer"),
            }
        }
        w.push(")");
    }

    fn cast(&self, w: &mut Writer, cast: Cast, value: &Fragment) {
        w.push("CAST(");
        value(w);
        w.push(match cast {
            Cast::Text => " AS text)",
            Cast::Integer => " AS integer)",
            Cast::BigInt => " AS bigint)",
            Cast::Numeric => " AS numeric)",
            Cast::Float => " AS double precision)",
            Cast::Boolean => " AS boolean)",
            Cast::Json => " AS jsonb)",
            Cast::Date => " AS date)",
            Cast::Timestamp => " AS timestamp)",
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
        let ty = Self::value_type(column, json_path);
        let jsonb_lhs = |w: &mut Writer| {
            lhs(w);
            if ty == "jsonb" && !json_path.is_empty() {
                w.push("::jsonb");
            }
        };
        let texty = matches!(column.kind, ValueKind::Text) || json_path.last().is_some_and(|s| s.as_text);
        let text_lhs = |w: &mut Writer| {
            lhs(w);
            if !texty {
                w.push("::text");
            }
        };
        match operation {
            Operation::Compare { op, value } => {
                let value = Param::Text(value.clone());
                match op {
                    Operator::Like | Operator::Ilike | Operator::Match | Operator::Imatch => {
                        text_lhs(w);
                        w.push(pattern_operator(*op));
                        w.param(value, "text");
                    }
                    Operator::IsDistinct => {
                        jsonb_lhs(w);
                        w.push(" IS DISTINCT FROM ");
                        filter_param(w, column, json_path, value, &ty);
                    }
                    op => {
                        jsonb_lhs(w);
                        w.push(comparison_operator(*op));
                        filter_param(w, column, json_path, value, &ty);
                    }
                }
            }
            Operation::Quantified { op, quantifier, values } => {
                let pattern = matches!(op, Operator::Like | Operator::Ilike | Operator::Match | Operator::Imatch);
                if pattern {
                    text_lhs(w);
                    w.push(pattern_operator(*op));
                } else {
                    jsonb_lhs(w);
                    w.push(comparison_operator(*op));
                }
                w.push(match quantifier {
                    Quantifier::Any => "ANY(",
                    Quantifier::All => "ALL(",
                });
                if pattern {
                    array_param(w, values, "text[]");
                } else {
                    filter_array(w, column, json_path, values, &format!("{ty}[]"));
                }
                w.push(")");
            }
            Operation::In(values) => {
                jsonb_lhs(w);
                w.push(" = ANY(");
                filter_array(w, column, json_path, values, &format!("{ty}[]"));
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
            Operation::Fts { kind, language, query } => {
                let is_tsvector = base_type(&column.db_type) == "tsvector" && json_path.is_empty();
                if is_tsvector {
                    lhs(w);
                } else {
                    w.push("to_tsvector(");
                    if let Some(lang) = language {
                        w.param(Param::Text(lang.clone()), "regconfig");
                        w.push(", ");
                    }
                    text_lhs(w);
                    w.push(")");
                }
                w.push(" @@ ");
                w.push(match kind {
                    FtsKind::Fts => "to_tsquery(",
                    FtsKind::Plain => "plainto_tsquery(",
                    FtsKind::Phrase => "phraseto_tsquery(",
                    FtsKind::Websearch => "websearch_to_tsquery(",
                });
                if let Some(lang) = language {
                    w.param(Param::Text(lang.clone()), "regconfig");
                    w.push(", ");
                }
                w.param(Param::Text(query.clone()), "text");
                w.push(")");
            }
        }
    }

    fn order_term(&self, w: &mut Writer, expr: &Fragment, direction: Option<Direction>, nulls: Option<Nulls>) {
        expr(w);
        w.push(if direction == Some(Direction::Desc) { " DESC" } else { " ASC" });
        w.push(if nulls_first(direction, nulls) { " NULLS FIRST" } else { " NULLS LAST" });
    }

    fn write_value(&self, w: &mut Writer, column: &Column, value: &serde_json::Value) {
        use serde_json::Value;
        let ty = base_type(&column.db_type);
        // A domain with a cast from json reads the body's value through it.
        if let Some((schema, function)) = column.representation.as_ref().and_then(|r| r.input.as_ref())
            && !value.is_null()
        {
            w.table(schema, function);
            w.push("(");
            w.param(Param::Text(value.to_string()), "json");
            w.push(")");
            return;
        }
        let param = match value {
            Value::Null => Param::Null,
            // A JSON column stores the value as JSON: a string stays a string.
            _ if column.kind == ValueKind::Json => Param::Text(value.to_string()),
            Value::String(s) => Param::Text(s.clone()),
            Value::Array(_) if matches!(column.kind, ValueKind::Array(_)) => Param::Text(json_to_array_literal(value)),
            other => Param::Text(other.to_string()),
        };
        w.param(param, &ty);
    }

    /// Named notation, so parameters with defaults may be left out; an
    /// unnamed parameter (a function's only json one) goes by position.
    fn call_argument(&self, w: &mut Writer, param: &Column, value: &serde_json::Value, variadic: bool) {
        if variadic {
            w.push("VARIADIC ");
        }
        if !param.name.is_empty() {
            w.ident(&param.name);
            w.push(" => ");
        }
        self.write_value(w, param, value);
    }

    fn limit_offset(&self, w: &mut Writer, limit: Option<u64>, offset: u64) {
        // The limit is written as a number, not bound: with `LIMIT $n` the
        // generic plan of a prepared statement assumes 10% of the rows, so
        // PostgreSQL re-plans every execution (bench/README.md measured W2's
        // SQL at half speed). It is a u64 the runtime computed, never text
        // from the request. The offset stays bound, so pages share one
        // statement.
        if let Some(l) = limit {
            w.push(" LIMIT ");
            w.push(&l.min(i64::MAX as u64).to_string());
        }
        if offset > 0 {
            w.push(" OFFSET ");
            w.param(Param::Int(offset.min(i64::MAX as u64) as i64), "bigint");
        }
    }
}

/// A JSON array as a PostgreSQL array literal for an array column.
fn json_to_array_literal(value: &serde_json::Value) -> String {
    use serde_json::Value;
    fn element(v: &Value, out: &mut String) {
        match v {
            Value::Null => out.push_str("NULL"),
            Value::Array(items) => {
                out.push('{');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    element(item, out);
                }
                out.push('}');
            }
            Value::String(s) => quote(s, out),
            other => quote(&other.to_string(), out),
        }
    }
    fn quote(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    let mut out = String::new();
    element(value, &mut out);
    out
}

fn comparison_operator(op: Operator) -> &'static str {
    match op {
        Operator::Eq => " = ",
        Operator::Neq => " <> ",
        Operator::Gt => " > ",
        Operator::Gte => " >= ",
        Operator::Lt => " < ",
        Operator::Lte => " <= ",
        Operator::Cs => " @> ",
        Operator::Cd => " <@ ",
        Operator::Ov => " && ",
        Operator::Sl => " << ",
        Operator::Sr => " >> ",
        Operator::Nxr => " &< ",
        Operator::Nxl => " &> ",
        Operator::Adj => " -|- ",
        Operator::Like | Operator::Ilike | Operator::Match | Operator::Imatch => pattern_operator(op),
        Operator::IsDistinct => " IS DISTINCT FROM ",
    }
}

fn pattern_operator(op: Operator) -> &'static str {
    match op {
        Operator::Like => " LIKE ",
        Operator::Ilike => " ILIKE ",
        Operator::Match => " ~ ",
        Operator::Imatch => " ~* ",
        _ => unreachable!("only pattern operators"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_arrays_become_array_literals() {
        let v = serde_json::json!(["a", "b\"c", null, 5, [1, 2]]);
        assert_eq!(json_to_array_literal(&v), r#"{"a","b\"c",NULL,"5",{"1","2"}}"#);
    }

    #[test]
    fn array_literals_escape_quotes_and_backslashes() {
        assert_eq!(
            array_literal(&["a".into(), "b\"c".into(), "d\\e".into(), "x,y".into()]),
            r#"{"a","b\"c","d\\e","x,y"}"#
        );
        assert_eq!(array_literal(&[]), "{}");
    }
}
