//! What the fuzz targets check beyond "no panic": a canonical writer for
//! the parsed query (so a parsed query must re-parse to the same AST) and
//! the invariants a parsed query always keeps.
//!
//! The writer quotes every name, so it leans only on the grammar's quoting
//! rules, never on which characters happen to be safe unquoted.

use dbapi_runtime::grammar::{
    ApiQuery, Condition, Direction, Embed, Field, Filter, IsValue, JsonKey, LogicOp, MAX_DEPTH, Nulls, Operation,
    OrderTerm, Quantifier, SelectItem,
};

/// `"..."` with `"` and `\` escaped, as the grammar's `unquote` reads it.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

pub fn write_field(f: &Field) -> String {
    let mut out = quote(&f.name);
    for step in &f.json_path {
        out.push_str(if step.as_text { "->>" } else { "->" });
        match &step.key {
            JsonKey::Name(n) => out.push_str(&quote(n)),
            JsonKey::Index(i) => out.push_str(&i.to_string()),
        }
    }
    out
}

pub fn write_select(items: &[SelectItem]) -> String {
    items.iter().map(write_item).collect::<Vec<_>>().join(",")
}

fn write_item(item: &SelectItem) -> String {
    match item {
        SelectItem::Star => "*".into(),
        SelectItem::Column { field, alias, cast } => {
            let mut out = alias.as_deref().map(|a| quote(a) + ":").unwrap_or_default();
            out.push_str(&write_field(field));
            if let Some(c) = cast {
                out.push_str("::");
                out.push_str(c);
            }
            out
        }
        SelectItem::Embed(e) => write_embed(e),
    }
}

fn write_embed(e: &Embed) -> String {
    let mut out = String::new();
    if e.spread {
        out.push_str("...");
    } else if let Some(a) = &e.alias {
        out.push_str(&quote(a));
        out.push(':');
    }
    out.push_str(&quote(&e.target));
    if let Some(h) = &e.hint {
        out.push('!');
        out.push_str(&quote(h));
    }
    if e.inner {
        out.push_str("!inner");
    }
    out.push('(');
    out.push_str(&write_select(&e.select));
    out.push(')');
    out
}

fn list(values: &[String], open: char, close: char) -> String {
    format!("{open}{}{close}", values.iter().map(|v| quote(v)).collect::<Vec<_>>().join(","))
}

/// `[not.]op.value`; inside a logic tree (`in_tree`) plain values are
/// quoted, as reserved characters there must be.
pub fn write_filter_value(negated: bool, op: &Operation, in_tree: bool) -> String {
    let not = if negated { "not." } else { "" };
    let scalar = |v: &str| if in_tree { quote(v) } else { v.to_string() };
    match op {
        Operation::Compare { op, value } => format!("{not}{}.{}", op.name(), scalar(value)),
        Operation::Quantified { op, quantifier, values } => {
            let q = match quantifier {
                Quantifier::Any => "any",
                Quantifier::All => "all",
            };
            format!("{not}{}({q}).{}", op.name(), list(values, '{', '}'))
        }
        Operation::In(values) => format!("{not}in.{}", list(values, '(', ')')),
        Operation::Is(v) => {
            let v = match v {
                IsValue::Null => "null",
                IsValue::NotNull => "not_null",
                IsValue::True => "true",
                IsValue::False => "false",
                IsValue::Unknown => "unknown",
            };
            format!("{not}is.{v}")
        }
        Operation::Fts { kind, language, query } => {
            let lang = language.as_deref().map(|l| format!("({l})")).unwrap_or_default();
            format!("{not}{}{lang}.{}", kind.name(), scalar(query))
        }
    }
}

fn logic_name(op: LogicOp) -> &'static str {
    match op {
        LogicOp::And => "and",
        LogicOp::Or => "or",
    }
}

fn write_tree(children: &[Condition]) -> String {
    let parts: Vec<String> = children
        .iter()
        .map(|c| match c {
            Condition::Filter(f) => {
                format!("{}.{}", write_field(&f.field), write_filter_value(f.negated, &f.operation, true))
            }
            Condition::Group { negated, op, children } => {
                format!("{}{}{}", if *negated { "not." } else { "" }, logic_name(*op), write_tree(children))
            }
        })
        .collect();
    format!("({})", parts.join(","))
}

fn key(path: &[String], last: &str) -> String {
    let mut k: String = path.iter().map(|s| format!("{s}.")).collect();
    k.push_str(last);
    k
}

fn write_order(terms: &[OrderTerm]) -> String {
    terms
        .iter()
        .map(|t| {
            let mut out = match &t.relation {
                Some(r) => format!("{r}({})", write_field(&t.field)),
                None => write_field(&t.field),
            };
            match t.direction {
                Some(Direction::Asc) => out.push_str(".asc"),
                Some(Direction::Desc) => out.push_str(".desc"),
                None => {}
            }
            match t.nulls {
                Some(Nulls::First) => out.push_str(".nullsfirst"),
                Some(Nulls::Last) => out.push_str(".nullslast"),
                None => {}
            }
            out
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The query string (form-encoded) that says what `q` says.
pub fn write_query(q: &ApiQuery) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    if let Some(items) = &q.select {
        out.append_pair("select", &write_select(items));
    }
    for (path, condition) in &q.conditions {
        match condition {
            Condition::Filter(Filter { field, negated, operation }) => {
                out.append_pair(&key(path, &write_field(field)), &write_filter_value(*negated, operation, false));
            }
            Condition::Group { negated, op, children } => {
                let last = format!("{}{}", if *negated { "not." } else { "" }, logic_name(*op));
                out.append_pair(&key(path, &last), &write_tree(children));
            }
        }
    }
    for (path, terms) in &q.order {
        out.append_pair(&key(path, "order"), &write_order(terms));
    }
    for (path, n) in &q.limits {
        out.append_pair(&key(path, "limit"), &n.to_string());
    }
    for (path, n) in &q.offsets {
        out.append_pair(&key(path, "offset"), &n.to_string());
    }
    let names = |v: &[String]| v.iter().map(|n| quote(n)).collect::<Vec<_>>().join(",");
    if let Some(c) = &q.columns {
        out.append_pair("columns", &names(c));
    }
    if let Some(c) = &q.on_conflict {
        out.append_pair("on_conflict", &names(c));
    }
    out.finish()
}

/// Panics when a parsed query breaks an invariant the planner relies on.
pub fn check_query(q: &ApiQuery) {
    if let Some(items) = &q.select {
        assert!(!items.is_empty(), "select= parsed to no items");
        check_items(items, 0);
    }
    for (path, c) in &q.conditions {
        check_path(path);
        check_condition(c, 0);
    }
    for (path, terms) in &q.order {
        check_path(path);
        assert!(!terms.is_empty(), "order= parsed to no terms");
        for t in terms {
            check_field(&t.field);
            assert!(t.relation.as_deref() != Some(""), "empty order relation");
        }
    }
    for (path, _) in q.limits.iter().chain(&q.offsets) {
        check_path(path);
    }
    for names in q.columns.iter().chain(&q.on_conflict) {
        assert!(names.iter().all(|n| !n.is_empty()), "empty name in {names:?}");
    }
}

fn check_path(path: &[String]) {
    assert!(path.iter().all(|s| !s.is_empty()), "empty embed path segment in {path:?}");
}

fn check_field(f: &Field) {
    assert!(!f.name.is_empty(), "empty column name");
    for step in &f.json_path {
        if let JsonKey::Name(n) = &step.key {
            assert!(!n.is_empty(), "empty JSON key in {f:?}");
        }
    }
}

fn check_items(items: &[SelectItem], depth: usize) {
    assert!(depth <= MAX_DEPTH + 1, "embeds nested deeper than MAX_DEPTH");
    for item in items {
        match item {
            SelectItem::Star => {}
            SelectItem::Column { field, cast, .. } => {
                check_field(field);
                if let Some(c) = cast {
                    assert!(
                        !c.is_empty()
                            && c.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ' ')
                    );
                }
            }
            SelectItem::Embed(e) => {
                assert!(!e.target.is_empty(), "empty embed target");
                assert!(!(e.spread && e.alias.is_some()), "a spread has no alias");
                check_items(&e.select, depth + 1);
            }
        }
    }
}

fn check_condition(c: &Condition, depth: usize) {
    assert!(depth <= MAX_DEPTH + 1, "logic tree nested deeper than MAX_DEPTH");
    match c {
        Condition::Filter(f) => {
            check_field(&f.field);
            if let Operation::Fts { language: Some(l), .. } = &f.operation {
                assert!(
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "text search configuration {l:?}"
                );
            }
        }
        Condition::Group { children, .. } => {
            assert!(!children.is_empty(), "a logic tree with no conditions");
            children.iter().for_each(|c| check_condition(c, depth + 1));
        }
    }
}
