//! Relationships between tables, derived from foreign keys: what `select=`
//! embedding can follow, in both directions and through junction tables;
//! and on PostgreSQL the computed ones, functions from a row to rows.

use std::collections::BTreeMap;

use super::{ComputedBy, Table, TableKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    /// The source holds the foreign key: embeds as one object (or null).
    ManyToOne,
    /// The target holds a foreign key whose columns are unique: one object.
    OneToOne,
    /// The target holds the foreign key: embeds as an array.
    OneToMany,
    /// Through a junction table holding foreign keys to both: an array.
    ManyToMany,
}

impl Cardinality {
    /// Whether the embedded value is a single object rather than an array.
    pub fn is_to_one(self) -> bool {
        matches!(self, Cardinality::ManyToOne | Cardinality::OneToOne)
    }
}

/// A junction table carrying foreign keys to both ends of a many-to-many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Junction {
    pub table: TableKey,
    /// (junction column, source column) pairs.
    pub source_columns: Vec<(String, String)>,
    /// (junction column, target column) pairs.
    pub target_columns: Vec<(String, String)>,
    pub source_constraint: String,
    pub target_constraint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relationship {
    pub target: TableKey,
    pub cardinality: Cardinality,
    /// The foreign key constraint followed (for many-to-many, the one from
    /// the junction to the target).
    pub constraint: String,
    /// (source column, target column) pairs joined on; empty for many-to-many.
    pub columns: Vec<(String, String)>,
    pub junction: Option<Junction>,
    /// A computed relationship (PostgreSQL, as PostgREST's "Computed
    /// Relationships"): the function taking the source's row and returning
    /// the target's rows, embedded by the function's name; `constraint`
    /// is that name and `columns` is empty.
    pub function: Option<ComputedBy>,
}

impl Relationship {
    /// A computed relationship from the function `by` to `target`'s rows,
    /// one of them (`to_one`) or many.
    pub fn computed(by: ComputedBy, target: TableKey, to_one: bool) -> Relationship {
        Relationship {
            target,
            cardinality: if to_one { Cardinality::ManyToOne } else { Cardinality::OneToMany },
            constraint: by.function.clone(),
            columns: vec![],
            junction: None,
            function: Some(by),
        }
    }

    /// Whether a `!hint` names this relationship: the constraint, one of its
    /// columns, or the junction table.
    pub fn matches_hint(&self, hint: &str) -> bool {
        if self.constraint == hint || self.columns.iter().any(|(s, t)| s == hint || t == hint) {
            return true;
        }
        match &self.junction {
            Some(j) => {
                j.table.1 == hint
                    || j.source_constraint == hint
                    || j.target_constraint == hint
                    || j.source_columns.iter().chain(&j.target_columns).any(|(c, _)| c == hint)
            }
            None => false,
        }
    }
}

pub(super) fn derive(tables: &BTreeMap<TableKey, Table>) -> BTreeMap<TableKey, Vec<Relationship>> {
    let mut out: BTreeMap<TableKey, Vec<Relationship>> = BTreeMap::new();
    for (key, table) in tables {
        for fk in &table.foreign_keys {
            let target_key = (fk.referenced_schema.clone(), fk.referenced_table.clone());
            if !tables.contains_key(&target_key) {
                continue;
            }
            let pairs: Vec<(String, String)> =
                fk.columns.iter().cloned().zip(fk.referenced_columns.iter().cloned()).collect();
            out.entry(key.clone()).or_default().push(Relationship {
                target: target_key.clone(),
                cardinality: Cardinality::ManyToOne,
                constraint: fk.name.clone(),
                columns: pairs.clone(),
                junction: None,
                function: None,
            });
            let reverse = if table.is_unique_on(&fk.columns) { Cardinality::OneToOne } else { Cardinality::OneToMany };
            out.entry(target_key).or_default().push(Relationship {
                target: key.clone(),
                cardinality: reverse,
                constraint: fk.name.clone(),
                columns: pairs.into_iter().map(|(s, t)| (t, s)).collect(),
                junction: None,
                function: None,
            });
        }
        // A junction: two foreign keys whose columns all belong to the
        // primary key (or a unique constraint) of this table.
        let key_cols: Vec<&Vec<String>> =
            std::iter::once(&table.primary_key).chain(table.unique.iter()).filter(|k| !k.is_empty()).collect();
        let in_a_key = |cols: &[String]| key_cols.iter().any(|k| cols.iter().all(|c| k.contains(c)));
        let fks: Vec<_> = table.foreign_keys.iter().filter(|fk| in_a_key(&fk.columns)).collect();
        for a in &fks {
            for b in &fks {
                if a.name == b.name {
                    continue;
                }
                let a_key = (a.referenced_schema.clone(), a.referenced_table.clone());
                let b_key = (b.referenced_schema.clone(), b.referenced_table.clone());
                if !tables.contains_key(&a_key) || !tables.contains_key(&b_key) {
                    continue;
                }
                out.entry(a_key).or_default().push(Relationship {
                    target: b_key,
                    cardinality: Cardinality::ManyToMany,
                    constraint: b.name.clone(),
                    columns: vec![],
                    junction: Some(Junction {
                        table: key.clone(),
                        source_columns: a.columns.iter().cloned().zip(a.referenced_columns.iter().cloned()).collect(),
                        target_columns: b.columns.iter().cloned().zip(b.referenced_columns.iter().cloned()).collect(),
                        source_constraint: a.name.clone(),
                        target_constraint: b.name.clone(),
                    }),
                    function: None,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Column, ForeignKey, ValueKind};

    fn table(name: &str, pk: &[&str], fks: Vec<ForeignKey>) -> Table {
        Table {
            schema: "public".into(),
            name: name.into(),
            is_view: false,
            writable: crate::schema::Writable::ALL,
            columns: vec![Column {
                name: "id".into(),
                db_type: "integer".into(),
                kind: ValueKind::Integer,
                nullable: false,
                default: None,
                comment: None,
                representation: None,
                computed: None,
            }],
            primary_key: pk.iter().map(|s| s.to_string()).collect(),
            unique: vec![],
            foreign_keys: fks,
            comment: None,
            computed: Vec::new(),
        }
    }

    fn fk(name: &str, cols: &[&str], target: &str) -> ForeignKey {
        ForeignKey {
            name: name.into(),
            columns: cols.iter().map(|s| s.to_string()).collect(),
            referenced_schema: "public".into(),
            referenced_table: target.into(),
            referenced_columns: vec!["id".into()],
        }
    }

    fn rels(tables: Vec<Table>) -> BTreeMap<TableKey, Vec<Relationship>> {
        derive(&tables.into_iter().map(|t| (("public".to_string(), t.name.clone()), t)).collect())
    }

    #[test]
    fn foreign_keys_give_both_directions_and_junctions() {
        let r = rels(vec![
            table("orders", &["id"], vec![]),
            table("products", &["id"], vec![]),
            table(
                "order_items",
                &["order_id", "product_id"],
                vec![fk("oi_order", &["order_id"], "orders"), fk("oi_product", &["product_id"], "products")],
            ),
        ]);
        let from_orders = &r[&("public".to_string(), "orders".to_string())];
        let kinds: Vec<_> = from_orders.iter().map(|r| (r.target.1.as_str(), r.cardinality)).collect();
        assert!(kinds.contains(&("order_items", Cardinality::OneToMany)));
        assert!(kinds.contains(&("products", Cardinality::ManyToMany)));
        let m2m = from_orders.iter().find(|r| r.cardinality == Cardinality::ManyToMany).unwrap();
        assert!(m2m.matches_hint("order_items"));
        assert!(m2m.matches_hint("oi_product"));
        assert!(!m2m.matches_hint("nope"));
        let from_items = &r[&("public".to_string(), "order_items".to_string())];
        assert_eq!(from_items.iter().filter(|r| r.cardinality == Cardinality::ManyToOne).count(), 2);
    }

    #[test]
    fn a_unique_foreign_key_is_one_to_one() {
        let r = rels(vec![
            table("users", &["id"], vec![]),
            table("profiles", &["user_id"], vec![fk("p_user", &["user_id"], "users")]),
        ]);
        let from_users = &r[&("public".to_string(), "users".to_string())];
        assert_eq!(from_users[0].cardinality, Cardinality::OneToOne);
    }
}
