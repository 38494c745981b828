//! What was planned for a request, kept for the next identical one.
//!
//! Parsing, planning and rendering a read is a pure function of the
//! request text (path, query, the headers that change the answer), the
//! caller's role and claims, the schema and the configuration document.
//! A request seen before under the same schema and document reuses what
//! was computed for it instead of doing it again; the caller files it
//! under a key holding all of the request's part (`cache::key::request_text`).
//!
//! The memo belongs to one schema and one document at a time: the first
//! request under a new one (a reload) empties it. It holds at most
//! `capacity` entries and starts again when full, so that requests that
//! never repeat cannot grow it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dbapi_crds::config::RuntimeConfig;

use super::access::Scope;
use crate::schema::Schema;

/// Values computed for exact requests, valid while the schema and the
/// document they were computed under are in force.
pub struct Memo<V> {
    capacity: usize,
    inner: Mutex<Inner<V>>,
}

struct Inner<V> {
    /// The schema and document the entries were computed under; held, so
    /// that their addresses cannot be reused by a later pair.
    sources: Option<(Arc<Schema>, Arc<RuntimeConfig>)>,
    /// Keys are request texts, a few hundred bytes each: hashed with
    /// foldhash (seeded per process), not SipHash.
    entries: HashMap<String, Arc<V>, foldhash::fast::RandomState>,
}

impl<V> Memo<V> {
    pub fn new(capacity: usize) -> Self {
        Memo { capacity, inner: Mutex::new(Inner { sources: None, entries: HashMap::default() }) }
    }

    /// What was kept for `key` under `scope`'s schema and document.
    pub fn get(&self, scope: &Scope, key: &str) -> Option<Arc<V>> {
        let inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !inner.computed_under(scope) {
            return None;
        }
        inner.entries.get(key).cloned()
    }

    /// Keeps `value` for `key`, computed under `scope`.
    pub fn insert(&self, scope: &Scope, key: String, value: V) -> Arc<V> {
        let value = Arc::new(value);
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !inner.computed_under(scope) {
            inner.entries.clear();
            inner.sources = Some((scope.full_schema().clone(), scope.config.clone()));
        }
        if inner.entries.len() >= self.capacity {
            inner.entries.clear();
        }
        inner.entries.insert(key, value.clone());
        value
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<V> Inner<V> {
    fn computed_under(&self, scope: &Scope) -> bool {
        self.sources.as_ref().is_some_and(|(schema, config)| {
            Arc::ptr_eq(schema, scope.full_schema()) && Arc::ptr_eq(config, &scope.config)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Arc<Schema> {
        let filter = dbapi_crds::config::TableFilter::default();
        Arc::new(Schema::new(crate::schema::Engine::Sqlite, vec!["main".into()], vec![], &filter))
    }

    #[test]
    fn entries_hold_only_under_the_schema_and_document_they_were_computed_under() {
        let (first, config) = (schema(), Arc::new(RuntimeConfig::default()));
        let scope = Scope::open(first.clone(), config.clone());
        let memo = Memo::new(8);
        assert!(memo.get(&scope, "a").is_none());
        memo.insert(&scope, "a".into(), 1);
        assert_eq!(memo.get(&Scope::open(first.clone(), config.clone()), "a").as_deref(), Some(&1));

        // A reloaded schema, or a reloaded document, sees nothing.
        let reloaded = Scope::open(schema(), config.clone());
        assert!(memo.get(&reloaded, "a").is_none());
        let new_document = Scope::open(first.clone(), Arc::new(RuntimeConfig::default()));
        assert!(memo.get(&new_document, "a").is_none());

        // The first entry under the new pair empties the old ones.
        memo.insert(&reloaded, "b".into(), 2);
        assert_eq!(memo.len(), 1);
        assert!(memo.get(&scope, "b").is_none());
        assert_eq!(memo.get(&reloaded, "b").as_deref(), Some(&2));
    }

    #[test]
    fn a_full_memo_starts_again() {
        let scope = Scope::open(schema(), Arc::new(RuntimeConfig::default()));
        let memo = Memo::new(2);
        memo.insert(&scope, "a".into(), 1);
        memo.insert(&scope, "b".into(), 2);
        assert_eq!(memo.len(), 2);
        memo.insert(&scope, "c".into(), 3);
        assert_eq!(memo.len(), 1);
        assert!(memo.get(&scope, "a").is_none());
        assert_eq!(memo.get(&scope, "c").as_deref(), Some(&3));
    }
}
