//! The query string as a whole: which keys are reserved, which are filters,
//! and at which embed path each applies.

use super::filter::{parse_filter, parse_logic};
use super::lexer::split_top_level;
use super::select::{parse_field, parse_select};
use super::{ApiQuery, Direction, EmbedPath, GrammarError, LogicOp, MAX_QUERY_LEN, Nulls, OrderTerm};

/// Parses a raw (still percent-encoded) query string. `+` is a space, as
/// in HTML forms and PostgREST.
pub fn parse_query(raw: &str) -> Result<ApiQuery, GrammarError> {
    if raw.len() > MAX_QUERY_LEN {
        return Err(GrammarError::new(
            "query string too long",
            format!("{} bytes; at most {MAX_QUERY_LEN} are accepted", raw.len()),
        ));
    }
    let mut q = ApiQuery::default();
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let (key, value) = (key.as_ref(), value.as_ref());
        match key {
            "select" => q.select = Some(parse_select(value)?),
            "columns" => q.columns = Some(name_list(key, value)?),
            "on_conflict" => q.on_conflict = Some(name_list(key, value)?),
            _ => parse_keyed(&mut q, key, value)?,
        }
    }
    Ok(q)
}

/// Keys whose last dot-separated segment is reserved apply at the embed
/// path before it; every other key is a filter on `path.column`.
fn parse_keyed(q: &mut ApiQuery, key: &str, value: &str) -> Result<(), GrammarError> {
    let segments: Vec<&str> = key.split('.').collect();
    let (last, before) = segments.split_last().expect("split yields at least one segment");
    let path = |segs: &[&str]| -> Result<EmbedPath, GrammarError> {
        segs.iter()
            .map(|s| {
                if s.is_empty() {
                    Err(GrammarError::new(
                        format!("failed to parse parameter name ({key})"),
                        "empty segment between dots",
                    ))
                } else {
                    Ok(s.to_string())
                }
            })
            .collect()
    };
    match *last {
        "order" => q.order.push((path(before)?, parse_order(value)?)),
        "limit" => q.limits.push((path(before)?, parse_count(key, value)?)),
        "offset" => q.offsets.push((path(before)?, parse_count(key, value)?)),
        "or" | "and" => {
            let op = if *last == "or" { LogicOp::Or } else { LogicOp::And };
            let (negated, before) = match before.split_last() {
                Some((&"not", rest)) => (true, rest),
                _ => (false, before),
            };
            q.conditions.push((path(before)?, parse_logic(op, negated, value)?));
        }
        "" => {
            return Err(GrammarError::new(
                format!("failed to parse parameter name ({key})"),
                "a parameter name must not be empty or end with a dot",
            ));
        }
        column => {
            let filter = parse_filter(column, value)?;
            q.conditions.push((path(before)?, super::Condition::Filter(filter)));
        }
    }
    Ok(())
}

fn parse_count(key: &str, value: &str) -> Result<u64, GrammarError> {
    value.trim().parse::<u64>().map_err(|_| {
        GrammarError::new(format!("failed to parse {key} parameter ({value})"), "expected a whole number, 0 or more")
    })
}

fn name_list(key: &str, value: &str) -> Result<Vec<String>, GrammarError> {
    let names: Vec<String> = value.split(',').map(|s| super::lexer::unquote(s.trim())).collect();
    if names.iter().any(String::is_empty) {
        return Err(GrammarError::new(format!("failed to parse {key} parameter ({value})"), "empty column name"));
    }
    Ok(names)
}

/// `order=a.desc.nullslast,b`
pub(super) fn parse_order(value: &str) -> Result<Vec<OrderTerm>, GrammarError> {
    let err = |d: String| GrammarError::new(format!("failed to parse order ({value})"), d);
    let mut terms = Vec::new();
    for term in split_top_level(value, ',', "order")? {
        let term = term.trim();
        if term.is_empty() {
            return Err(err("empty term: remove the extra comma".into()));
        }
        // `col.desc` or `rel(col).desc`
        let (relation, field_text, modifiers) = match term.find('(') {
            Some(open) => {
                let close = term
                    .rfind(')')
                    .filter(|c| *c > open)
                    .ok_or_else(|| err(format!("unbalanced parentheses in \"{term}\"")))?;
                (Some(term[..open].trim().to_string()), &term[open + 1..close], &term[close + 1..])
            }
            None => match term.find('.') {
                Some(dot) => (None, &term[..dot], &term[dot..]),
                None => (None, term, ""),
            },
        };
        if relation.as_deref() == Some("") {
            return Err(err(format!("missing the embedded resource's name in \"{term}\"")));
        }
        let field = parse_field(field_text).map_err(err)?;
        let (mut direction, mut nulls) = (None, None);
        let modifiers = match modifiers {
            "" => "",
            m => m.strip_prefix('.').ok_or_else(|| err(format!("unexpected \"{m}\" in \"{term}\"")))?,
        };
        let modifiers: Vec<&str> = if modifiers.is_empty() { vec![] } else { modifiers.split('.').collect() };
        for modifier in modifiers {
            match modifier {
                "asc" if direction.is_none() => direction = Some(Direction::Asc),
                "desc" if direction.is_none() => direction = Some(Direction::Desc),
                "nullsfirst" if nulls.is_none() => nulls = Some(Nulls::First),
                "nullslast" if nulls.is_none() => nulls = Some(Nulls::Last),
                other => {
                    return Err(err(format!(
                        "unexpected \"{other}\" in \"{term}\": use column[.asc|.desc][.nullsfirst|.nullslast]"
                    )));
                }
            }
        }
        terms.push(OrderTerm { relation, field, direction, nulls });
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::{Condition, Field, Operation, Operator, SelectItem};

    #[test]
    fn reserved_keys_apply_at_their_embed_path() {
        let q = parse_query("select=id,items(*)&items.order=qty.desc&items.limit=2&items.offset=1&limit=10&items.qty=gt.1&not.or=(a.eq.1,b.eq.2)&items.and=(x.eq.1)").unwrap();
        assert_eq!(q.order[0].0, vec!["items".to_string()]);
        assert_eq!(q.limits, vec![(vec!["items".to_string()], 2), (vec![], 10)]);
        assert_eq!(q.offsets, vec![(vec!["items".to_string()], 1)]);
        assert_eq!(q.conditions.len(), 3);
        assert_eq!(q.conditions[0].0, vec!["items".to_string()]);
        let Condition::Group { negated, .. } = &q.conditions[1].1 else { panic!() };
        assert!(*negated);
        assert_eq!(q.conditions[1].0, Vec::<String>::new());
        assert_eq!(q.conditions[2].0, vec!["items".to_string()]);
        assert!(matches!(q.select.as_ref().unwrap()[1], SelectItem::Embed(_)));
    }

    #[test]
    fn plus_is_a_space_and_percent_decodes() {
        let q = parse_query("name=eq.John+Smith&city=in.(%22a%2Cb%22)").unwrap();
        let Condition::Filter(f) = &q.conditions[0].1 else { panic!() };
        assert_eq!(f.operation, Operation::Compare { op: Operator::Eq, value: "John Smith".into() });
        let Condition::Filter(f) = &q.conditions[1].1 else { panic!() };
        assert_eq!(f.operation, Operation::In(vec!["a,b".into()]));
    }

    #[test]
    fn json_path_filters() {
        let q = parse_query("data->>name=eq.x").unwrap();
        let Condition::Filter(f) = &q.conditions[0].1 else { panic!() };
        assert_eq!(f.field.name, "data");
        assert_eq!(f.field.json_path.len(), 1);
    }

    #[test]
    fn order_terms() {
        let t = parse_order("a.desc.nullslast,b,c.nullsfirst").unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].direction, Some(Direction::Desc));
        assert_eq!(t[0].nulls, Some(Nulls::Last));
        assert_eq!(t[1], OrderTerm { relation: None, field: Field::plain("b"), direction: None, nulls: None });
        let t = parse_order("customers(name).desc,id").unwrap();
        assert_eq!(t[0].relation.as_deref(), Some("customers"));
        assert_eq!(t[0].field, Field::plain("name"));
        assert_eq!(t[0].direction, Some(Direction::Desc));
        assert!(parse_order("(name).desc").is_err());
        assert!(parse_order("customers(name.desc").is_err());
        assert!(parse_order("a.sideways").is_err());
        assert!(parse_order("a.asc.desc").is_err());
        assert!(parse_order("a,,b").is_err());
    }

    #[test]
    fn bad_query_strings() {
        for bad in
            ["limit=-1", "limit=abc", "offset=1.5", "id=5", ".order=a", "a..b=eq.1", "order=", "columns=a,,b", "=eq.1"]
        {
            assert!(parse_query(bad).is_err(), "{bad}");
        }
        assert!(parse_query(&"a".repeat(MAX_QUERY_LEN + 1)).is_err());
    }
}
