//! `select=` — vertical filtering, renaming, casts and embedding.
//!
//! ```text
//! items  := item ("," item)*
//! item   := "*" | "..." embed | [label ":"] (aggregate | embed | field ["::" cast])
//! aggregate := [field ["::" cast] "."] function "()" ["::" cast]
//! embed  := name ("!" hint)* "(" [items] ")"
//! field  := name (("->" | "->>") key)*
//! ```
//! `function` is `count`, `sum`, `avg`, `min` or `max`; only `count()`
//! may go without a field.

use super::lexer::{closing_quote, split_top_level, unquote, unquoted_chars};
use super::{AggregateFunction, Embed, Field, GrammarError, JsonKey, JsonStep, MAX_DEPTH, SelectItem};

pub fn parse_select(input: &str) -> Result<Vec<SelectItem>, GrammarError> {
    parse_items(input, 0)
}

fn error(input: &str, details: impl Into<String>) -> GrammarError {
    GrammarError::new(format!("failed to parse select parameter ({input})"), details)
}

fn parse_items(input: &str, depth: usize) -> Result<Vec<SelectItem>, GrammarError> {
    if depth > MAX_DEPTH {
        return Err(error(input, format!("embedding deeper than {MAX_DEPTH} levels")));
    }
    let mut items = Vec::new();
    for raw in split_top_level(input, ',', "select parameter")? {
        let item = raw.trim();
        if item.is_empty() {
            return Err(error(input, "empty item: remove the extra comma"));
        }
        items.push(parse_item(item, depth)?);
    }
    Ok(items)
}

fn parse_item(item: &str, depth: usize) -> Result<SelectItem, GrammarError> {
    if item == "*" {
        return Ok(SelectItem::Star);
    }
    if let Some(rest) = item.strip_prefix("...") {
        let mut embed = parse_embed(rest, None, depth)?;
        embed.spread = true;
        return Ok(SelectItem::Embed(embed));
    }
    let (alias, rest) = split_alias(item);
    if let Some(aggregate) = parse_aggregate(item, rest, alias)? {
        return Ok(aggregate);
    }
    if rest.ends_with(')') {
        return Ok(SelectItem::Embed(parse_embed(rest, alias, depth)?));
    }
    let (field_part, cast) = split_cast(item, rest)?;
    let field = parse_field(field_part).map_err(|d| error(item, d))?;
    Ok(SelectItem::Column { field, alias: alias.map(unquote), cast })
}

/// `rest` without its `::type` suffix, and the type.
fn split_cast<'a>(item: &str, rest: &'a str) -> Result<(&'a str, Option<String>), GrammarError> {
    match find_unquoted(rest, "::") {
        Some(i) => Ok((&rest[..i], Some(cast_name(item, &rest[i + 2..])?))),
        None => Ok((rest, None)),
    }
}

fn cast_name(item: &str, cast: &str) -> Result<String, GrammarError> {
    let cast = cast.trim();
    if cast.is_empty() || !cast.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ' ') {
        return Err(error(item, format!("invalid cast \"{cast}\": use a type name like text or integer")));
    }
    Ok(cast.to_ascii_lowercase())
}

/// `[field[::cast].]function()[::cast]`, when `rest` is one. `name()`
/// with another name is an embed used only to filter (`books()`).
fn parse_aggregate(item: &str, rest: &str, alias: Option<&str>) -> Result<Option<SelectItem>, GrammarError> {
    let Some(call) = find_unquoted(rest, "()") else { return Ok(None) };
    let head = &rest[..call];
    if unquoted_chars(head).any(|(_, c)| c == '(') {
        // `orders(amount.sum())`: an embed whose items may aggregate.
        return Ok(None);
    }
    let dot = unquoted_chars(head).filter(|&(_, c)| c == '.').map(|(i, _)| i).last();
    let (field_part, name) = match dot {
        Some(i) => (Some(&head[..i]), &head[i + 1..]),
        None => (None, head),
    };
    let Some(function) = AggregateFunction::parse(name.trim()) else { return Ok(None) };
    if field_part.is_none() && function != AggregateFunction::Count {
        return Err(error(item, format!("{}() needs a column: write column.{}()", function.name(), function.name())));
    }
    let tail = rest[call + 2..].trim();
    let result_cast = match tail.strip_prefix("::") {
        Some(cast) => Some(cast_name(item, cast)?),
        None if tail.is_empty() => None,
        None => return Err(error(item, format!("unexpected \"{tail}\" after {}()", function.name()))),
    };
    let (field, input_cast) = match field_part {
        Some(part) => {
            let (field, cast) = split_cast(item, part)?;
            (Some(parse_field(field).map_err(|d| error(item, d))?), cast)
        }
        None => (None, None),
    };
    Ok(Some(SelectItem::Aggregate { function, field, input_cast, alias: alias.map(unquote), result_cast }))
}

/// `label:rest` where the colon is not part of `::`.
fn split_alias(item: &str) -> (Option<&str>, &str) {
    let bytes = item.as_bytes();
    for (i, c) in unquoted_chars(item) {
        match c {
            '(' | '-' | '!' => break,
            ':' => {
                if bytes.get(i + 1) == Some(&b':') {
                    break;
                }
                return (Some(&item[..i]), &item[i + 1..]);
            }
            _ => {}
        }
    }
    (None, item)
}

fn find_unquoted(s: &str, needle: &str) -> Option<usize> {
    unquoted_chars(s).map(|(i, _)| i).find(|&i| s[i..].starts_with(needle))
}

fn parse_embed(item: &str, alias: Option<&str>, depth: usize) -> Result<Embed, GrammarError> {
    let open = item.find('(').ok_or_else(|| error(item, "expected \"(\" after the embedded resource's name"))?;
    let inner = item[open + 1..]
        .strip_suffix(')')
        .ok_or_else(|| error(item, "expected \")\" closing the embedded resource"))?;
    let mut head = item[..open].split('!');
    let target = head.next().unwrap_or_default().trim();
    if target.is_empty() {
        return Err(error(item, "missing the embedded resource's name before \"(\""));
    }
    let mut hint = None;
    let mut inner_join = false;
    for part in head {
        match part.trim() {
            "inner" => inner_join = true,
            "left" => inner_join = false,
            "" => return Err(error(item, "empty \"!\" hint")),
            h if hint.is_none() => hint = Some(unquote(h)),
            h => return Err(error(item, format!("more than one hint (\"{h}\"): give one foreign key or column"))),
        }
    }
    let select = if inner.trim().is_empty() { vec![] } else { parse_items(inner, depth + 1)? };
    Ok(Embed { target: unquote(target), alias: alias.map(unquote), hint, inner: inner_join, spread: false, select })
}

/// `name` or `"quoted name"`, followed by `->`/`->>` steps.
pub(super) fn parse_field(s: &str) -> Result<Field, String> {
    let s = s.trim();
    let (name, mut rest) = if s.starts_with('"') {
        let end = closing_quote(s).ok_or("unterminated double quote in a name")?;
        (unquote(&s[..=end]), &s[end + 1..])
    } else {
        let end = s.find("->").unwrap_or(s.len());
        (s[..end].to_string(), &s[end..])
    };
    if name.is_empty() {
        return Err("empty column name".into());
    }
    if let Some(bad) = name.chars().find(|c| matches!(c, '(' | ')' | ',' | '!' | ':' | '"'))
        && !s.starts_with('"')
    {
        return Err(format!("unexpected \"{bad}\" in column name \"{name}\""));
    }
    let mut json_path = Vec::new();
    while !rest.is_empty() {
        let (as_text, after) = if let Some(a) = rest.strip_prefix("->>") {
            (true, a)
        } else if let Some(a) = rest.strip_prefix("->") {
            (false, a)
        } else {
            return Err(format!("unexpected \"{rest}\" after \"{name}\""));
        };
        let end = after.find("->").unwrap_or(after.len());
        let key_text = unquote(&after[..end]);
        if key_text.is_empty() {
            return Err(format!("empty JSON key after \"{name}\""));
        }
        let quoted = after.starts_with('"');
        let key = match key_text.parse::<i64>() {
            Ok(i) if !quoted => JsonKey::Index(i),
            // What starts like a number must be one (`->>--34` is not).
            Err(_) if !quoted && key_text.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') => {
                return Err(format!("\"{key_text}\" after \"{name}\" is neither a key nor an array index"));
            }
            _ => JsonKey::Name(key_text),
        };
        json_path.push(JsonStep { as_text, key });
        rest = &after[end..];
    }
    Ok(Field { name, json_path })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str) -> SelectItem {
        SelectItem::Column { field: Field::plain(name), alias: None, cast: None }
    }

    #[test]
    fn columns_aliases_and_casts() {
        let items = parse_select("id, name,label:title,total::text,x:\"first name\"::integer").unwrap();
        assert_eq!(items[0], col("id"));
        assert_eq!(items[1], col("name"));
        assert_eq!(
            items[2],
            SelectItem::Column { field: Field::plain("title"), alias: Some("label".into()), cast: None }
        );
        assert_eq!(
            items[3],
            SelectItem::Column { field: Field::plain("total"), alias: None, cast: Some("text".into()) }
        );
        assert_eq!(
            items[4],
            SelectItem::Column {
                field: Field::plain("first name"),
                alias: Some("x".into()),
                cast: Some("integer".into())
            }
        );
    }

    #[test]
    fn json_paths() {
        let items = parse_select("data->a->>b,data->0").unwrap();
        let SelectItem::Column { field, .. } = &items[0] else { panic!() };
        assert_eq!(field.name, "data");
        assert_eq!(
            field.json_path,
            vec![
                JsonStep { as_text: false, key: JsonKey::Name("a".into()) },
                JsonStep { as_text: true, key: JsonKey::Name("b".into()) }
            ]
        );
        assert_eq!(field.default_label(), "b");
        let SelectItem::Column { field, .. } = &items[1] else { panic!() };
        assert_eq!(field.json_path[0].key, JsonKey::Index(0));
        // Array indexes never name a key: the last name before them does,
        // else the column.
        assert_eq!(field.default_label(), "data");
        let label = |s: &str| match &parse_select(s).unwrap()[0] {
            SelectItem::Column { field, .. } => field.default_label(),
            other => panic!("{other:?}"),
        };
        assert_eq!(label("data->>0::int"), "data");
        assert_eq!(label("data->0->a->>2"), "a");
        assert_eq!(label("data->a->-1"), "a");
        assert_eq!(label("data->\"1\""), "1");
    }

    #[test]
    fn aggregates_with_fields_casts_and_aliases() {
        let agg = |function,
                   field: Option<&str>,
                   input_cast: Option<&str>,
                   alias: Option<&str>,
                   result_cast: Option<&str>| {
            SelectItem::Aggregate {
                function,
                field: field.map(|f| parse_field(f).unwrap()),
                input_cast: input_cast.map(String::from),
                alias: alias.map(String::from),
                result_cast: result_cast.map(String::from),
            }
        };
        use AggregateFunction::*;
        assert_eq!(parse_select("count()").unwrap(), vec![agg(Count, None, None, None, None)]);
        assert_eq!(
            parse_select("status,total:amount.sum(),amount::int.avg()::text,n:id.count()").unwrap(),
            vec![
                col("status"),
                agg(Sum, Some("amount"), None, Some("total"), None),
                agg(Avg, Some("amount"), Some("int"), None, Some("text")),
                agg(Count, Some("id"), None, Some("n"), None),
            ]
        );
        assert_eq!(parse_select("data->>price.max()").unwrap(), vec![agg(Max, Some("data->>price"), None, None, None)]);
        // Inside embeds too; `name()` with another name is an embed that
        // only filters.
        let SelectItem::Embed(e) = &parse_select("order_items(quantity.sum())").unwrap()[0] else { panic!() };
        assert_eq!(e.select, vec![agg(Sum, Some("quantity"), None, None, None)]);
        assert!(matches!(&parse_select("books()").unwrap()[0], SelectItem::Embed(e) if e.target == "books"));
        assert!(parse_select("order_items(quantity.sum())").unwrap()[0].uses_aggregates());
        assert!(!parse_select("*,books(count)").unwrap().iter().any(SelectItem::uses_aggregates));
        for bad in ["sum()", "amount.sum()x", "amount.sum()::", "amount.sum()::te;xt"] {
            assert!(parse_select(bad).unwrap_err().message.contains("failed to parse select"), "{bad}");
        }
    }

    #[test]
    fn embeds_with_hints_inner_spread_and_nesting() {
        let items =
            parse_select("*,buyer:customers!fk_orders_customer!inner(name,addresses(*)),...products(name)").unwrap();
        assert_eq!(items[0], SelectItem::Star);
        let SelectItem::Embed(e) = &items[1] else { panic!() };
        assert_eq!(e.target, "customers");
        assert_eq!(e.alias.as_deref(), Some("buyer"));
        assert_eq!(e.hint.as_deref(), Some("fk_orders_customer"));
        assert!(e.inner);
        assert_eq!(e.label(), "buyer");
        let SelectItem::Embed(nested) = &e.select[1] else { panic!() };
        assert_eq!(nested.target, "addresses");
        assert_eq!(nested.select, vec![SelectItem::Star]);
        let SelectItem::Embed(spread) = &items[2] else { panic!() };
        assert!(spread.spread);
        assert_eq!(
            parse_select("items()").unwrap(),
            vec![SelectItem::Embed(Embed {
                target: "items".into(),
                alias: None,
                hint: None,
                inner: false,
                spread: false,
                select: vec![],
            })]
        );
    }

    #[test]
    fn malformed_select_is_a_clear_error() {
        for bad in [
            "id,", ",id", "a(b", "a(b))", "a)b(", "x::", "x::te;xt", "a!(b)", "a!b!c(d)", "\"abc", "a->", "(x)",
            "d->>--34", "d->1a",
        ] {
            let err = parse_select(bad).unwrap_err();
            assert!(err.message.starts_with("failed to parse select"), "{bad}: {err:?}");
        }
    }

    #[test]
    fn very_deep_nesting_is_refused_without_overflow() {
        let deep = "a(".repeat(5000) + &")".repeat(5000);
        assert!(parse_select(&deep).is_err());
        let ok = "a(".repeat(10) + "*" + &")".repeat(10);
        assert!(parse_select(&ok).is_ok());
    }
}
