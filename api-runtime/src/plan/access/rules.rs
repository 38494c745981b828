//! `roles` compiled once per configuration document: each rule's globs,
//! verbs, columns and row filter (parsed with the URL filter grammar, so a
//! filter that does not parse is a configuration error naming its key),
//! and the additive union of the rules that apply to a table and verb.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::Method;
use dbapi_crds::config::{Role, glob_match};

use crate::grammar::{Condition, Operation, Operator, parse_query};

/// An HTTP verb a rule may grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    pub const ALL: [Verb; 6] = [Verb::Get, Verb::Head, Verb::Post, Verb::Put, Verb::Patch, Verb::Delete];

    pub fn name(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Head => "HEAD",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }

    /// A verb as written in a rule, in any case.
    pub fn parse(text: &str) -> Option<Verb> {
        Verb::ALL.into_iter().find(|v| v.name().eq_ignore_ascii_case(text.trim()))
    }

    pub fn of_method(method: &Method) -> Option<Verb> {
        Verb::parse(method.as_str())
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of verbs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verbs(u8);

impl Verbs {
    pub fn contains(self, verb: Verb) -> bool {
        self.0 & verb.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn insert(&mut self, verb: Verb) {
        self.0 |= verb.bit();
        // GET also grants HEAD.
        if verb == Verb::Get {
            self.0 |= Verb::Head.bit();
        }
    }

    fn union(self, other: Verbs) -> Verbs {
        Verbs(self.0 | other.0)
    }
}

/// A row filter: the conditions of one rule, ANDed, as parsed (values may
/// hold `${claims.path}` placeholders, filled per request).
pub type RuleFilter = Arc<[Condition]>;

/// Which rows a verb may see or touch.
#[derive(Debug, Clone, PartialEq)]
pub enum RowFilter {
    /// Every row: an applicable rule has no filter.
    All,
    /// Rows matching any of these rules' filters.
    Any(Vec<RuleFilter>),
}

/// What one verb on one table is granted: the columns (`None`: all) and
/// the rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub columns: Option<BTreeSet<String>>,
    pub rows: RowFilter,
}

impl Grant {
    pub fn allows_column(&self, name: &str) -> bool {
        self.columns.as_ref().is_none_or(|c| c.contains(name))
    }
}

/// Everything a role may do on one table or view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableGrants {
    grants: [Option<Grant>; 6],
}

impl TableGrants {
    pub fn get(&self, verb: Verb) -> Option<&Grant> {
        self.grants[verb as usize].as_ref()
    }

    pub fn verbs(&self) -> Verbs {
        let mut verbs = Verbs::default();
        for v in Verb::ALL {
            if self.get(v).is_some() {
                verbs.0 |= v.bit();
            }
        }
        verbs
    }

    /// Drops the rule filters `applies` refuses (they name a column the
    /// table lacks): such a rule grants no rows there. Returns whether any
    /// was dropped.
    pub fn retain_filters(&mut self, applies: impl Fn(&[Condition]) -> bool) -> bool {
        let mut dropped = false;
        for grant in self.grants.iter_mut().flatten() {
            if let RowFilter::Any(filters) = &mut grant.rows {
                let before = filters.len();
                filters.retain(|f| applies(f));
                dropped |= filters.len() != before;
            }
        }
        dropped
    }

    /// The columns the role knows of: those GET shows when it may read,
    /// else those any granted verb names (`None`: all).
    pub fn known_columns(&self) -> Option<BTreeSet<String>> {
        if let Some(get) = self.get(Verb::Get) {
            return get.columns.clone();
        }
        let mut union = BTreeSet::new();
        for grant in self.grants.iter().flatten() {
            union.extend(grant.columns.as_ref()?.iter().cloned());
        }
        Some(union)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Rule {
    tables: Vec<String>,
    functions: Vec<String>,
    verbs: Verbs,
    columns: Option<Vec<String>>,
    filter: Option<RuleFilter>,
}

/// One role's rules, compiled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoleRules {
    rules: Vec<Rule>,
}

impl RoleRules {
    /// Compiles `roles[index]`; errors name the key (`roles[0].rules[1].rowFilter: ...`).
    pub fn compile(role: &Role, index: usize) -> Result<RoleRules, String> {
        let mut rules = Vec::with_capacity(role.rules.len());
        for (r, rule) in role.rules.iter().enumerate() {
            let key = format!("roles[{index}].rules[{r}]");
            let mut verbs = Verbs::default();
            for (v, text) in rule.verbs.iter().enumerate() {
                let verb = Verb::parse(text).ok_or_else(|| {
                    format!("{key}.verbs[{v}]: unknown verb {text:?} (use GET, HEAD, POST, PUT, PATCH or DELETE)")
                })?;
                verbs.insert(verb);
            }
            let filter = match rule.row_filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
                Some(text) => Some(parse_row_filter(text).map_err(|e| format!("{key}.rowFilter: {e}"))?),
                None => None,
            };
            rules.push(Rule {
                tables: rule.tables.clone(),
                functions: rule.functions.clone(),
                verbs,
                columns: (!rule.columns.is_empty()).then(|| rule.columns.clone()),
                filter,
            });
        }
        Ok(RoleRules { rules })
    }

    /// What the rules grant on the table or view `name`; `None` when no
    /// rule names it (the role does not see it at all).
    pub fn table(&self, name: &str) -> Option<TableGrants> {
        let matching: Vec<&Rule> = self.rules.iter().filter(|r| r.tables.iter().any(|g| glob_match(g, name))).collect();
        if matching.is_empty() {
            return None;
        }
        let mut grants = TableGrants::default();
        for verb in Verb::ALL {
            let applicable: Vec<&&Rule> = matching.iter().filter(|r| r.verbs.contains(verb)).collect();
            if applicable.is_empty() {
                continue;
            }
            let columns = if applicable.iter().any(|r| r.columns.is_none()) {
                None
            } else {
                Some(applicable.iter().flat_map(|r| r.columns.iter().flatten().cloned()).collect())
            };
            let rows = if applicable.iter().any(|r| r.filter.is_none()) {
                RowFilter::All
            } else {
                RowFilter::Any(applicable.iter().filter_map(|r| r.filter.clone()).collect())
            };
            grants.grants[verb as usize] = Some(Grant { columns, rows });
        }
        Some(grants)
    }

    /// The verbs the rules naming `/rpc/{name}` grant; `None` when no
    /// rule names the function.
    pub fn function(&self, name: &str) -> Option<Verbs> {
        self.rules
            .iter()
            .filter(|r| r.functions.iter().any(|g| glob_match(g, name)))
            .map(|r| r.verbs)
            .reduce(Verbs::union)
    }
}

/// A `rowFilter`: filters in the URL grammar joined by `&`
/// (`region=eq.eu&or=(owner_id.eq.${claims.sub},public.is.true)`).
fn parse_row_filter(text: &str) -> Result<RuleFilter, String> {
    let query = parse_query(text).map_err(|e| format!("{} ({})", e.message, e.details))?;
    let only_filters = query.select.is_none()
        && query.order.is_empty()
        && query.limits.is_empty()
        && query.offsets.is_empty()
        && query.columns.is_none()
        && query.on_conflict.is_none();
    if !only_filters {
        return Err("a row filter takes filters only (col=op.value, or=(...), and=(...))".into());
    }
    if query.conditions.is_empty() {
        return Err("no filter in it".into());
    }
    let mut conditions = Vec::with_capacity(query.conditions.len());
    for (path, condition) in query.conditions {
        if !path.is_empty() {
            return Err(format!("filters on embedded resources ({}) do not apply to rules", path.join(".")));
        }
        check_placeholders(&condition)?;
        conditions.push(condition);
    }
    Ok(conditions.into())
}

/// Whether every column a rule's filter names passes `exists`.
pub fn names_only(conditions: &[Condition], exists: &dyn Fn(&str) -> bool) -> bool {
    conditions.iter().all(|c| match c {
        Condition::Filter(f) => exists(&f.field.name),
        Condition::Group { children, .. } => names_only(children, exists),
    })
}

/// Every value of a condition tree, mutably.
fn values_mut(operation: &mut Operation) -> Vec<&mut String> {
    match operation {
        Operation::Compare { value, .. } => vec![value],
        Operation::Quantified { values, .. } | Operation::In(values) => values.iter_mut().collect(),
        Operation::Is(_) => vec![],
        Operation::Fts { query, .. } => vec![query],
    }
}

fn check_placeholders(condition: &Condition) -> Result<(), String> {
    match condition {
        Condition::Group { children, .. } => children.iter().try_for_each(check_placeholders),
        Condition::Filter(f) => {
            let mut operation = f.operation.clone();
            for value in values_mut(&mut operation) {
                placeholders(value)?;
            }
            Ok(())
        }
    }
}

/// The `${claims.path}` placeholders of a value: (byte range, path).
fn placeholders(value: &str) -> Result<Vec<(std::ops::Range<usize>, &str)>, String> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(start) = value[from..].find("${").map(|i| i + from) {
        let end = value[start..].find('}').map(|i| i + start).ok_or_else(|| format!("unclosed ${{ in {value:?}"))?;
        let inner = &value[start + 2..end];
        let path = inner.strip_prefix("claims.").filter(|p| {
            !p.is_empty()
                && p.split('.').all(|s| !s.is_empty())
                && p.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/'))
        });
        let path =
            path.ok_or_else(|| format!("${{{inner}}} is not a claim (write ${{claims.name}} or ${{claims.a.b}})"))?;
        found.push((start..end + 1, path));
        from = end + 1;
    }
    Ok(found)
}

/// The text a claim stands for in a filter: strings as they are, numbers
/// and booleans as their text; absent, null, objects and arrays have none.
fn claim_text(claims: &serde_json::Value, path: &str) -> Option<String> {
    let value = path.split('.').try_fold(claims, |v, key| v.get(key))?;
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A filter's operation with its placeholders replaced by the caller's
/// claims, into the parsed value (so a claim can never change the
/// filter's structure); `None` when a claim it names is missing, which
/// makes the comparison unknown (false), as SQL NULL would.
pub fn with_claims(operation: &Operation, claims: &serde_json::Value) -> Option<Operation> {
    let literal = literal_in(operation);
    let mut operation = operation.clone();
    for value in values_mut(&mut operation) {
        let Ok(found) = placeholders(value) else { return None };
        if found.is_empty() {
            continue;
        }
        let mut text = String::with_capacity(value.len());
        let mut last = 0;
        for (range, path) in &found {
            text.push_str(&value[last..range.start]);
            text.push_str(&claim_text(claims, path).filter(|claim| literal(claim))?);
            last = range.end;
        }
        text.push_str(&value[last..]);
        *value = text;
    }
    Some(operation)
}

/// Whether a claim's text stays literal inside this operation's values. In
/// a pattern (`like`, `ilike`), a regular expression (`match`, `imatch`) or
/// a search query (`fts`), a claim holding the pattern's own syntax would
/// widen the filter (a `sub` of `%` matching every owner), so such a claim
/// counts as missing: the comparison is unknown and matches no row.
fn literal_in(operation: &Operation) -> fn(&str) -> bool {
    let op = match operation {
        Operation::Compare { op, .. } | Operation::Quantified { op, .. } => Some(*op),
        Operation::Fts { .. } => None,
        Operation::In(_) | Operation::Is(_) => return |_| true,
    };
    match op {
        Some(Operator::Like | Operator::Ilike) => |claim| !claim.contains(['%', '_', '*', '?', '[', ']', '\\']),
        Some(Operator::Match | Operator::Imatch) | None => {
            |claim| claim.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '@')
        }
        Some(_) => |_| true,
    }
}

/// Whether an operation's values name a claim.
pub fn names_claims(operation: &Operation) -> bool {
    let mut operation = operation.clone();
    values_mut(&mut operation).iter().any(|v| v.contains("${"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::Filter;
    use dbapi_crds::config::RoleRule;

    fn role(rules: Vec<RoleRule>) -> Role {
        Role { name: "r".into(), rules, ..Role::default() }
    }

    fn rule(tables: &[&str], verbs: &[&str], columns: &[&str], filter: Option<&str>) -> RoleRule {
        RoleRule {
            tables: tables.iter().map(|s| s.to_string()).collect(),
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            columns: columns.iter().map(|s| s.to_string()).collect(),
            row_filter: filter.map(Into::into),
            functions: vec![],
        }
    }

    #[test]
    fn globs_pick_tables_and_get_grants_head() {
        let r = RoleRules::compile(&role(vec![rule(&["order*", "regions"], &["get"], &[], None)]), 0).unwrap();
        let orders = r.table("orders").unwrap();
        assert!(orders.get(Verb::Get).is_some() && orders.get(Verb::Head).is_some());
        assert!(orders.get(Verb::Post).is_none());
        assert!(r.table("order_items").is_some());
        assert!(r.table("customers").is_none());
        assert!(r.table("regions").is_some());
    }

    #[test]
    fn rules_add_up_per_verb() {
        let r = RoleRules::compile(
            &role(vec![
                rule(&["orders"], &["GET"], &["id", "status"], Some("region=eq.eu")),
                rule(&["*"], &["GET", "PATCH"], &["note"], Some("public=is.true")),
                rule(&["orders"], &["DELETE"], &[], None),
            ]),
            0,
        )
        .unwrap();
        let orders = r.table("orders").unwrap();
        let get = orders.get(Verb::Get).unwrap();
        assert_eq!(get.columns.as_ref().unwrap().iter().collect::<Vec<_>>(), ["id", "note", "status"]);
        assert!(matches!(&get.rows, RowFilter::Any(f) if f.len() == 2));
        let patch = orders.get(Verb::Patch).unwrap();
        assert_eq!(patch.columns.as_ref().unwrap().len(), 1);
        let delete = orders.get(Verb::Delete).unwrap();
        assert_eq!((delete.columns.clone(), delete.rows.clone()), (None, RowFilter::All));
        assert!(orders.get(Verb::Put).is_none());
        // A rule without columns or filter opens all of them for its verbs.
        let r = RoleRules::compile(
            &role(vec![rule(&["t"], &["GET"], &["a"], Some("a=eq.1")), rule(&["t"], &["GET"], &[], None)]),
            0,
        )
        .unwrap();
        let get = r.table("t").unwrap().get(Verb::Get).cloned().unwrap();
        assert_eq!((get.columns, get.rows), (None, RowFilter::All));
    }

    #[test]
    fn config_errors_name_the_key() {
        let bad_verb = RoleRules::compile(&role(vec![rule(&["t"], &["GET", "FETCH"], &[], None)]), 2).unwrap_err();
        assert!(bad_verb.starts_with("roles[2].rules[0].verbs[1]:"), "{bad_verb}");
        for bad in ["region=zz.eu", "select=id", "region", "a=eq.${claims}", "a=eq.${env.HOME}", "a=eq.${claims.x"] {
            let e = RoleRules::compile(
                &role(vec![rule(&["t"], &["GET"], &[], None), rule(&["t"], &["GET"], &[], Some(bad))]),
                0,
            )
            .unwrap_err();
            assert!(e.starts_with("roles[0].rules[1].rowFilter:"), "{bad}: {e}");
        }
    }

    #[test]
    fn functions_are_granted_by_their_own_globs() {
        let mut with_fn = rule(&[], &["POST"], &[], None);
        with_fn.functions = vec!["order_*".into()];
        let r = RoleRules::compile(&role(vec![with_fn, rule(&["*"], &["GET"], &[], None)]), 0).unwrap();
        let verbs = r.function("order_total").unwrap();
        assert!(verbs.contains(Verb::Post) && !verbs.contains(Verb::Get));
        assert_eq!(r.function("other"), None);
    }

    fn filter_of(text: &str) -> Vec<Condition> {
        parse_row_filter(text).unwrap().to_vec()
    }

    #[test]
    fn claims_fill_parsed_values_and_never_the_structure() {
        let conditions = filter_of("or=(owner_id.eq.${claims.sub},public.is.true)&tag=like.*${claims.app.team}*");
        assert_eq!(conditions.len(), 2);
        let Condition::Group { children, .. } = &conditions[0] else { panic!("{conditions:?}") };
        let Condition::Filter(Filter { operation, .. }) = &children[0] else { panic!() };
        assert!(names_claims(operation));
        let hostile = serde_json::json!({"sub": "1),public.is.true,(a.eq.1"});
        assert_eq!(
            with_claims(operation, &hostile),
            Some(Operation::Compare { op: Operator::Eq, value: "1),public.is.true,(a.eq.1".into() })
        );
        assert_eq!(
            with_claims(operation, &serde_json::json!({"sub": 42})),
            Some(Operation::Compare { op: Operator::Eq, value: "42".into() })
        );
        assert_eq!(with_claims(operation, &serde_json::json!({})), None);
        assert_eq!(with_claims(operation, &serde_json::json!({"sub": {"a": 1}})), None);
        assert_eq!(with_claims(operation, &serde_json::json!({"sub": null})), None);
        let Condition::Filter(Filter { operation, .. }) = &conditions[1] else { panic!() };
        assert_eq!(
            with_claims(operation, &serde_json::json!({"app": {"team": "red"}})),
            Some(Operation::Compare { op: Operator::Like, value: "%red%".into() })
        );
        // In a pattern, a claim with the pattern's syntax matches nothing.
        for sneaky in ["%", "re_", "*", "a\\%"] {
            assert_eq!(with_claims(operation, &serde_json::json!({"app": {"team": sneaky}})), None, "{sneaky}");
        }
        let plain = Operation::Compare { op: Operator::Eq, value: "eu".into() };
        assert!(!names_claims(&plain));
        assert_eq!(with_claims(&plain, &serde_json::json!({})), Some(plain));
    }
}
