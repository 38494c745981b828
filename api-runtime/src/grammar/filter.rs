//! Horizontal filters (`col=op.value`) and logic trees (`or=(...)`).

use super::lexer::{bracketed_list, split_top_level, unquote};
use super::select::parse_field;
use super::{Condition, Filter, FtsKind, GrammarError, IsValue, LogicOp, MAX_DEPTH, Operation, Operator, Quantifier};

fn error(input: &str, details: impl Into<String>) -> GrammarError {
    GrammarError::new(format!("failed to parse filter ({input})"), details)
}

fn operator_list() -> String {
    let mut names: Vec<&str> = Operator::ALL.iter().map(|(n, _)| *n).collect();
    names.extend(["in", "is", "fts", "plfts", "phfts", "wfts"]);
    names.join(", ")
}

/// Whether a query value is written as a filter (`eq.5`, `not.in.(1,2)`,
/// `fts(english).cat`), as PostgREST tells a function's arguments from
/// filters on its result in a GET call: by the value's form, not by the
/// key.
pub fn has_operator(value: &str) -> bool {
    let mut parts = value.split('.');
    let first = parts.next().unwrap_or("");
    match first {
        "not" => parts.next().is_some(),
        "is" | "in" => true,
        _ => {
            let name = first.split('(').next().unwrap_or("");
            Operator::ALL.iter().any(|(n, _)| *n == name) || matches!(name, "fts" | "plfts" | "phfts" | "wfts")
        }
    }
}

/// `[not.]op[(modifier)].value`: the right-hand side of a filter.
pub fn parse_filter_value(input: &str) -> Result<(bool, Operation), GrammarError> {
    let (negated, rest) = match input.strip_prefix("not.") {
        Some(r) => (true, r),
        None => (false, input),
    };
    let dot =
        rest.find('.').ok_or_else(|| error(input, "expected \"operator.value\", for example eq.5 or in.(1,2)"))?;
    let (head, value) = (&rest[..dot], &rest[dot + 1..]);
    let (op_name, modifier) = match head.find('(') {
        Some(open) => {
            let m = head[open + 1..]
                .strip_suffix(')')
                .ok_or_else(|| error(input, format!("unbalanced parentheses in \"{head}\"")))?;
            (&head[..open], Some(m))
        }
        None => (head, None),
    };
    let operation = match op_name {
        "in" => {
            no_modifier(input, op_name, modifier)?;
            Operation::In(bracketed_list(value, '(', ')', "filter")?)
        }
        "is" => {
            no_modifier(input, op_name, modifier)?;
            let v = match value.to_ascii_lowercase().as_str() {
                "null" => IsValue::Null,
                "not_null" => IsValue::NotNull,
                "true" => IsValue::True,
                "false" => IsValue::False,
                "unknown" => IsValue::Unknown,
                _ => {
                    return Err(error(
                        input,
                        format!("is.{value}: use is.null, is.not_null, is.true, is.false or is.unknown"),
                    ));
                }
            };
            Operation::Is(v)
        }
        "fts" | "plfts" | "phfts" | "wfts" => {
            let kind = match op_name {
                "fts" => FtsKind::Fts,
                "plfts" => FtsKind::Plain,
                "phfts" => FtsKind::Phrase,
                _ => FtsKind::Websearch,
            };
            if let Some(lang) = modifier
                && (lang.is_empty() || !lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            {
                return Err(error(input, format!("invalid text search configuration \"{lang}\"")));
            }
            Operation::Fts { kind, language: modifier.map(str::to_string), query: value.to_string() }
        }
        name => {
            let op =
                Operator::ALL.iter().find(|(n, _)| *n == name).map(|(_, op)| *op).ok_or_else(|| {
                    error(input, format!("unknown operator \"{name}\": use one of {}", operator_list()))
                })?;
            let like = |v: &str| {
                if matches!(op, Operator::Like | Operator::Ilike) { v.replace('*', "%") } else { v.to_string() }
            };
            match modifier {
                None => Operation::Compare { op, value: like(value) },
                Some(m) => {
                    let quantifier = match m {
                        "any" => Quantifier::Any,
                        "all" => Quantifier::All,
                        _ => return Err(error(input, format!("unknown modifier \"{m}\": use (any) or (all)"))),
                    };
                    if !op.quantifiable() {
                        return Err(error(input, format!("\"{name}\" does not take (any) or (all)")));
                    }
                    let values = bracketed_list(value, '{', '}', "filter")?.iter().map(|v| like(v)).collect();
                    Operation::Quantified { op, quantifier, values }
                }
            }
        }
    };
    Ok((negated, operation))
}

fn no_modifier(input: &str, op: &str, modifier: Option<&str>) -> Result<(), GrammarError> {
    match modifier {
        Some(m) => Err(error(input, format!("\"{op}\" does not take a modifier ({m})"))),
        None => Ok(()),
    }
}

/// A filter written as `field.op.value` (inside logic trees) or as the
/// key/value pair `field=op.value`.
pub(super) fn parse_filter(field: &str, value: &str) -> Result<Filter, GrammarError> {
    let field = parse_field(field).map_err(|d| error(&format!("{field}={value}"), d))?;
    let (negated, operation) = parse_filter_value(value)?;
    Ok(Filter { field, negated, operation })
}

/// Inside a logic tree, a value holding reserved characters (`,` `(` `)`)
/// is written in double quotes: `or=(name.eq."a, b")`.
fn parse_tree_filter(field: &str, value: &str) -> Result<Filter, GrammarError> {
    let mut filter = parse_filter(field, value)?;
    match &mut filter.operation {
        Operation::Compare { value, .. } if value.starts_with('"') && value.ends_with('"') && value.len() >= 2 => {
            *value = unquote(value);
        }
        Operation::Fts { query, .. } if query.starts_with('"') && query.ends_with('"') && query.len() >= 2 => {
            *query = unquote(query);
        }
        _ => {}
    }
    Ok(filter)
}

/// The value of `or=`/`and=`: `(cond,cond,...)`.
pub(super) fn parse_logic(op: LogicOp, negated: bool, value: &str) -> Result<Condition, GrammarError> {
    parse_group(op, negated, value, 0)
}

fn parse_group(op: LogicOp, negated: bool, value: &str, depth: usize) -> Result<Condition, GrammarError> {
    let what = "logic tree";
    if depth > MAX_DEPTH {
        return Err(GrammarError::new(
            format!("failed to parse {what}"),
            format!("nesting deeper than {MAX_DEPTH} levels"),
        ));
    }
    let inner = value.strip_prefix('(').and_then(|v| v.strip_suffix(')')).ok_or_else(|| {
        GrammarError::new(
            format!("failed to parse {what} ({value})"),
            "expected conditions in parentheses, like (a.eq.1,b.gt.2)",
        )
    })?;
    let mut children = Vec::new();
    for part in split_top_level(inner, ',', what)? {
        let part = part.trim();
        if part.is_empty() {
            return Err(GrammarError::new(format!("failed to parse {what} ({value})"), "empty condition"));
        }
        let (child_negated, body) = match part.strip_prefix("not.") {
            Some(b) if b.starts_with("and(") || b.starts_with("or(") => (true, b),
            _ => (false, part),
        };
        let child = if let Some(rest) = body.strip_prefix("and")
            && rest.starts_with('(')
        {
            parse_group(LogicOp::And, child_negated, rest, depth + 1)?
        } else if let Some(rest) = body.strip_prefix("or")
            && rest.starts_with('(')
        {
            parse_group(LogicOp::Or, child_negated, rest, depth + 1)?
        } else {
            let dot = part.find('.').ok_or_else(|| {
                GrammarError::new(
                    format!("failed to parse {what} ({value})"),
                    format!("\"{part}\" is not field.operator.value"),
                )
            })?;
            Condition::Filter(parse_tree_filter(&part[..dot], &part[dot + 1..])?)
        };
        children.push(child);
    }
    Ok(Condition::Group { negated, op, children })
}

/// A PostgreSQL array literal (`{a,"b c",1}`) as a JSON array, for engines
/// whose containment operators take JSON: numbers, booleans and null stay
/// themselves, everything else becomes a string. `None` when the value is
/// not such a literal.
pub fn pg_array_to_json(value: &str) -> Option<String> {
    let inner = value.strip_prefix('{')?.strip_suffix('}')?;
    if inner.trim().is_empty() {
        return Some("[]".into());
    }
    let mut items = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut was_quoted, mut escaped) = (false, false, false);
    let finish = |current: &mut String, was_quoted: &mut bool, items: &mut Vec<serde_json::Value>| {
        let raw = std::mem::take(current);
        let item = if *was_quoted {
            serde_json::Value::String(raw)
        } else {
            let t = raw.trim();
            match t {
                "true" => serde_json::Value::Bool(true),
                "false" => serde_json::Value::Bool(false),
                "null" | "NULL" => serde_json::Value::Null,
                _ => serde_json::from_str::<serde_json::Number>(t)
                    .map(serde_json::Value::Number)
                    .unwrap_or_else(|_| serde_json::Value::String(t.to_string())),
            }
        };
        *was_quoted = false;
        items.push(item);
    };
    for c in inner.chars() {
        if escaped {
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
            was_quoted = true;
        } else if c == ',' && !quoted {
            finish(&mut current, &mut was_quoted, &mut items);
        } else {
            current.push(c);
        }
    }
    finish(&mut current, &mut was_quoted, &mut items);
    Some(serde_json::Value::Array(items).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_written_as_filters_are_told_from_arguments() {
        for filter in ["eq.5", "not.in.(1,2)", "in.(a)", "is.null", "fts(english).cat", "eq(any).{1,2}", "gte.2024"] {
            assert!(has_operator(filter), "{filter}");
        }
        for argument in ["5", "Ann", "not", "2024.5", "{1,2}", "", "equal.1"] {
            assert!(!has_operator(argument), "{argument}");
        }
    }

    #[test]
    fn array_literals_become_json_arrays() {
        assert_eq!(pg_array_to_json("{tools}").unwrap(), r#"["tools"]"#);
        assert_eq!(pg_array_to_json(r#"{5,4,"a b",true,null}"#).unwrap(), r#"[5,4,"a b",true,null]"#);
        assert_eq!(pg_array_to_json(r#"{"1"}"#).unwrap(), r#"["1"]"#);
        assert_eq!(pg_array_to_json("{}").unwrap(), "[]");
        assert_eq!(pg_array_to_json(r#"["a"]"#), None);
    }
    use crate::grammar::Field;

    #[test]
    fn simple_operators() {
        assert_eq!(
            parse_filter_value("eq.5").unwrap(),
            (false, Operation::Compare { op: Operator::Eq, value: "5".into() })
        );
        assert_eq!(
            parse_filter_value("eq.").unwrap(),
            (false, Operation::Compare { op: Operator::Eq, value: "".into() })
        );
        assert_eq!(
            parse_filter_value("eq.a.b").unwrap().1,
            Operation::Compare { op: Operator::Eq, value: "a.b".into() }
        );
        assert_eq!(
            parse_filter_value("not.like.*ab*").unwrap(),
            (true, Operation::Compare { op: Operator::Like, value: "%ab%".into() })
        );
        assert_eq!(parse_filter_value("is.NULL").unwrap().1, Operation::Is(IsValue::Null));
        assert_eq!(
            parse_filter_value("in.(1,\"a,b\",c)").unwrap().1,
            Operation::In(vec!["1".into(), "a,b".into(), "c".into()])
        );
        assert_eq!(
            parse_filter_value("like(any).{a*,*b}").unwrap().1,
            Operation::Quantified {
                op: Operator::Like,
                quantifier: Quantifier::Any,
                values: vec!["a%".into(), "%b".into()]
            }
        );
        assert_eq!(
            parse_filter_value("fts(english).cat & dog").unwrap().1,
            Operation::Fts { kind: FtsKind::Fts, language: Some("english".into()), query: "cat & dog".into() }
        );
        assert_eq!(
            parse_filter_value("cs.{1,2}").unwrap().1,
            Operation::Compare { op: Operator::Cs, value: "{1,2}".into() }
        );
    }

    #[test]
    fn bad_filters_say_what_to_do() {
        let e = parse_filter_value("eq1").unwrap_err();
        assert!(e.details.contains("operator.value"), "{e:?}");
        let e = parse_filter_value("equals.1").unwrap_err();
        assert!(e.details.contains("unknown operator \"equals\"") && e.details.contains("ilike"), "{e:?}");
        assert!(parse_filter_value("in.1,2").is_err());
        assert!(parse_filter_value("in.(1,2").is_err());
        assert!(parse_filter_value("is.maybe").is_err());
        assert!(parse_filter_value("eq(some).{1}").is_err());
        assert!(parse_filter_value("cs(any).{1}").is_err());
        assert!(parse_filter_value("fts(eng;lish).x").is_err());
        assert!(parse_filter_value("").is_err());
    }

    #[test]
    fn logic_trees_nest() {
        let c = parse_logic(LogicOp::Or, false, "(a.eq.1,and(b.gt.2,c.lt.3),not.or(d.is.null,e.in.(1,2)))").unwrap();
        let Condition::Group { op: LogicOp::Or, negated: false, children } = c else { panic!() };
        assert_eq!(children.len(), 3);
        assert_eq!(
            children[0],
            Condition::Filter(Filter {
                field: Field::plain("a"),
                negated: false,
                operation: Operation::Compare { op: Operator::Eq, value: "1".into() }
            })
        );
        let Condition::Group { op: LogicOp::And, negated: false, children: and } = &children[1] else { panic!() };
        assert_eq!(and.len(), 2);
        let Condition::Group { op: LogicOp::Or, negated: true, children: or } = &children[2] else { panic!() };
        assert_eq!(or.len(), 2);
        let c = parse_logic(LogicOp::And, false, "(a.not.eq.1)").unwrap();
        let Condition::Group { children, .. } = c else { panic!() };
        let Condition::Filter(f) = &children[0] else { panic!() };
        assert!(f.negated);
    }

    #[test]
    fn quoted_values_in_logic_trees() {
        let c = parse_logic(LogicOp::Or, false, r#"(name.eq."a, (b)",name.like."x*")"#).unwrap();
        let Condition::Group { children, .. } = c else { panic!() };
        let Condition::Filter(f) = &children[0] else { panic!() };
        assert_eq!(f.operation, Operation::Compare { op: Operator::Eq, value: "a, (b)".into() });
        let Condition::Filter(f) = &children[1] else { panic!() };
        assert_eq!(f.operation, Operation::Compare { op: Operator::Like, value: "x%".into() });
    }

    #[test]
    fn malformed_logic_trees() {
        for bad in ["a.eq.1", "(a.eq.1", "(a.eq.1,)", "(a)", "(and(a.eq.1)", "(a.eq.1))", "(a.zz.1)"] {
            assert!(parse_logic(LogicOp::Or, false, bad).is_err(), "{bad}");
        }
        let deep = "(".to_string() + &"and(".repeat(200) + "a.eq.1" + &")".repeat(201);
        assert!(parse_logic(LogicOp::Or, false, &deep).is_err());
    }
}
