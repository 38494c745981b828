//! The role rules applied in planning.
//!
//! `roles` is compiled once per policy ([`Access::new`], in `rules`). For
//! each role and each schema generation a [`RoleView`] is derived once
//! and cached: the schema as the role sees it, without the tables,
//! columns, functions and relationships it has no rule for, so the
//! planner's own answers (404 `PGRST205`, 400 `42703`, 400 `PGRST200`,
//! 404 `PGRST202`, and their hints) apply unchanged and never name a
//! hidden object. A request's [`Scope`] adds what depends on the verb and
//! the caller: 403 for a verb not granted, per-verb columns, and the row
//! filters, planned against the full table with the caller's claims bound
//! as parameters. An open API (no `roles`) has no view: requests plan
//! against the schema itself, with no extra work.

mod rules;
mod scope;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use dbapi_crds::config::RuntimeConfig;

use crate::auth::Identity;
use crate::schema::{Function, QualifiedName, Relationship, Returns, Schema, TableKey, Writable, qualified};

pub use rules::{Grant, RoleRules, RowFilter, TableGrants, Verb, Verbs};
pub use scope::Scope;

/// The compiled `roles` of one policy, and the role views built from them.
#[derive(Debug, Default)]
pub struct Access {
    /// `None` when the document has no `roles`: callers are only
    /// authenticated, every role has full access.
    roles: Option<HashMap<String, Arc<RoleRules>>>,
    /// Per role: the schema it was built from and the view.
    views: Mutex<HashMap<Arc<str>, BuiltView>>,
}

/// A role's view and the schema generation it was built from.
type BuiltView = (Arc<Schema>, Arc<RoleView>);

impl Access {
    pub fn new(config: &RuntimeConfig) -> Result<Access, String> {
        if config.roles.is_empty() {
            return Ok(Access::default());
        }
        let mut roles = HashMap::new();
        for (i, role) in config.roles.iter().enumerate() {
            if roles.insert(role.name.clone(), Arc::new(RoleRules::compile(role, i)?)).is_some() {
                return Err(format!("roles[{i}].name: {:?} is defined twice", role.name));
            }
        }
        let named = config
            .api_keys
            .iter()
            .map(|k| k.role.as_str())
            .chain(config.auth.as_ref().and_then(|a| a.anonymous_role.as_deref()));
        for role in named {
            if !roles.contains_key(role) {
                tracing::warn!(
                    role,
                    "a key or auth.anonymousRole names a role that roles does not define: it sees nothing"
                );
            }
        }
        Ok(Access { roles: Some(roles), views: Mutex::default() })
    }

    /// Whether role rules apply at all.
    pub fn enforced(&self) -> bool {
        self.roles.is_some()
    }

    /// What a request of `identity` may do on `schema`.
    pub fn scope(&self, identity: &Identity, schema: Arc<Schema>, config: Arc<RuntimeConfig>) -> Scope {
        match (&self.roles, &identity.role) {
            (Some(roles), Some(role)) => {
                let view = self.view(roles, role, &schema);
                Scope::restricted(schema, view, identity.claims.clone(), config)
            }
            _ => Scope::open(schema, config),
        }
    }

    fn view(&self, roles: &HashMap<String, Arc<RoleRules>>, role: &Arc<str>, schema: &Arc<Schema>) -> Arc<RoleView> {
        // Every role `roles` does not define shares one empty view, so
        // callers naming roles at will (token claims) cannot grow the cache.
        let empty = RoleRules::default();
        let (key, rules) = match roles.get(&**role) {
            Some(rules) => (role.clone(), &**rules),
            None => (Arc::from(""), &empty),
        };
        let mut views = self.views.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((built_from, view)) = views.get(&key)
            && Arc::ptr_eq(built_from, schema)
        {
            return view.clone();
        }
        let view = Arc::new(RoleView::build(&key, rules, schema));
        views.insert(key, (schema.clone(), view.clone()));
        view
    }
}

/// One role's view of one schema generation.
#[derive(Debug)]
pub struct RoleView {
    /// The tables, columns, functions and relationships the role may see.
    pub schema: Arc<Schema>,
    /// Ordered maps: searched by borrowed names ([`qualified`]), where a
    /// hashed map would need an owned key built for every lookup.
    tables: BTreeMap<TableKey, TableGrants>,
    functions: BTreeMap<TableKey, Verbs>,
}

impl RoleView {
    pub fn build(role: &str, rules: &RoleRules, full: &Schema) -> RoleView {
        let mut grants = BTreeMap::new();
        let mut tables = BTreeMap::new();
        for (key, table) in &full.tables {
            let Some(mut g) = rules.table(&table.name) else { continue };
            // A filter naming a column the table lacks (a `*` rule's filter
            // meant for other tables) grants no rows here.
            if g.retain_filters(|f| rules::names_only(f, &|c| table.column(c).is_some())) {
                tracing::warn!(
                    role,
                    table = %table.name,
                    "a rowFilter of this role names a column the table lacks: that rule grants no rows of it"
                );
            }
            let mut table = table.clone();
            if let Some(columns) = g.known_columns() {
                table.columns.retain(|c| columns.contains(&c.name));
                table.computed.retain(|c| columns.contains(&c.name));
            }
            let w = table.writable;
            table.writable = Writable {
                insert: w.insert && g.get(Verb::Post).is_some(),
                update: w.update && g.get(Verb::Patch).is_some(),
                delete: w.delete && g.get(Verb::Delete).is_some(),
            };
            tables.insert(key.clone(), table);
            grants.insert(key.clone(), g);
        }
        let readable = |key: &TableKey| grants.get(key).is_some_and(|g: &TableGrants| g.get(Verb::Get).is_some());
        let keep = |r: &Relationship| readable(&r.target) && r.junction.as_ref().is_none_or(|j| readable(&j.table));
        let mut function_verbs = BTreeMap::new();
        let mut functions = BTreeMap::new();
        for (key, overloads) in &full.functions {
            let Some(verbs) = rules.function(&key.1) else { continue };
            function_verbs.insert(key.clone(), verbs);
            let overloads: Vec<Function> = overloads
                .iter()
                .map(|f| {
                    let mut f = f.clone();
                    // Rows of a table the role cannot see are still the
                    // function's (trusted) result, described on their own.
                    if let Returns::Table(t) = &f.returns
                        && !tables.contains_key(t)
                        && let Some(full_table) = full.tables.get(t)
                    {
                        f.returns = Returns::Rows(full_table.clone());
                    }
                    f
                })
                .collect();
            functions.insert(key.clone(), overloads);
        }
        let uncallable =
            full.uncallable.iter().filter(|(k, _)| rules.function(&k.1).is_some()).map(|(k, v)| (k.clone(), v.clone()));
        let schema = full.restricted(tables, functions, uncallable.collect(), keep);
        RoleView { schema: Arc::new(schema), tables: grants, functions: function_verbs }
    }

    pub fn table(&self, schema: &str, name: &str) -> Option<&TableGrants> {
        self.tables.get(&qualified(schema, name) as &dyn QualifiedName)
    }

    pub fn function(&self, schema: &str, name: &str) -> Option<Verbs> {
        self.functions.get(&qualified(schema, name) as &dyn QualifiedName).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_name_the_bad_key_and_refuse_duplicate_roles() {
        let doc = |yaml: &str| serde_yaml::from_str::<RuntimeConfig>(yaml).unwrap();
        let bad = doc("roles: [{name: a, rules: [{tables: [t], verbs: [GET], rowFilter: 'x=nope.1'}]}]");
        let e = Access::new(&bad).unwrap_err();
        assert!(e.starts_with("roles[0].rules[0].rowFilter:"), "{e}");
        let twice = doc("roles: [{name: a, rules: []}, {name: a, rules: []}]");
        assert!(Access::new(&twice).unwrap_err().starts_with("roles[1].name"));
        assert!(!Access::new(&doc("{}")).unwrap().enforced());
        assert!(Access::new(&doc("roles: [{name: a, rules: []}]")).unwrap().enforced());
    }
}
