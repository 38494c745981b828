//! Keys seen through views, on every engine, so views embed like the
//! tables they show (PostgREST does the same on PostgreSQL).
//!
//! Each engine says where a view's columns come from (a table and column,
//! through views of views); from that alone, a foreign key between two
//! tables becomes a foreign key between every view (or the table itself)
//! showing all of its columns on one side and every one showing them on the
//! other, and a view showing all of one table's primary key (and no other
//! table's) gets it as its own, for `PUT`, representations and one-to-one
//! embedding through updatable views.

use std::collections::HashMap;
use std::hash::Hash;

use super::{ForeignKey, Table};

/// A primary or foreign key of a table, columns as the engine identifies
/// them (`R` a relation, `C` a column of it).
pub(super) struct BaseKey<R, C> {
    pub name: String,
    pub relation: R,
    pub columns: Vec<C>,
    /// The referenced relation and columns; `None` for a primary key.
    pub references: Option<(R, Vec<C>)>,
}

/// Adds to `tables` (the exposed relations) the keys their views inherit.
/// `shown_by[view]` maps each base column a view shows to the name of (the
/// first of) the view's columns showing it; `column_name` names a table's
/// own columns.
pub(super) fn inherit<R, C>(
    tables: &mut HashMap<R, Table>,
    shown_by: &HashMap<R, HashMap<(R, C), String>>,
    keys: Vec<BaseKey<R, C>>,
    column_name: impl Fn(&R, &C) -> Option<String>,
) where
    R: Clone + Eq + Hash,
    C: Clone + Eq + Hash,
{
    // Each side of a key: the table itself if exposed, and every exposed
    // view showing all of its columns, with those columns' names there.
    let endpoints = |rel: &R, cols: &[C]| -> Vec<(R, Vec<String>)> {
        let mut out = Vec::new();
        if tables.get(rel).is_some_and(|t| !t.is_view) {
            let names: Option<Vec<String>> = cols.iter().map(|c| column_name(rel, c)).collect();
            out.extend(names.map(|n| (rel.clone(), n)));
        }
        for (view, shown) in shown_by {
            if !tables.contains_key(view) {
                continue;
            }
            let names: Option<Vec<String>> =
                cols.iter().map(|c| shown.get(&(rel.clone(), c.clone())).cloned()).collect();
            out.extend(names.map(|n| (view.clone(), n)));
        }
        out
    };
    let mut added: Vec<(R, ForeignKey)> = Vec::new();
    let mut primary_keys: HashMap<R, Vec<Vec<String>>> = HashMap::new();
    for key in keys {
        let Some((ref_rel, ref_cols)) = &key.references else {
            for (view, names) in endpoints(&key.relation, &key.columns) {
                if view != key.relation {
                    primary_keys.entry(view).or_default().push(names);
                }
            }
            continue;
        };
        for (from, columns) in endpoints(&key.relation, &key.columns) {
            for (to, referenced_columns) in endpoints(ref_rel, ref_cols) {
                if from == key.relation && to == *ref_rel {
                    continue; // the tables' own key, read with the tables
                }
                let target = &tables[&to];
                added.push((
                    from.clone(),
                    ForeignKey {
                        name: key.name.clone(),
                        columns: columns.clone(),
                        referenced_schema: target.schema.clone(),
                        referenced_table: target.name.clone(),
                        referenced_columns,
                    },
                ));
            }
        }
    }
    for (rel, fk) in added {
        let table = tables.get_mut(&rel).expect("endpoints are exposed relations");
        if !table.foreign_keys.contains(&fk) {
            table.foreign_keys.push(fk);
        }
    }
    // A view showing the keys of two tables (a join) gets none: which one
    // identifies its rows cannot be told.
    for (view, keys) in primary_keys {
        if let [key] = &keys[..] {
            tables.get_mut(&view).expect("endpoints are exposed relations").primary_key = key.clone();
        }
    }
}

/// The base column behind every view column: `direct` maps a view column to
/// the column it shows, which may be a column of another view; followed to
/// the end (a bounded number of steps, against cycles).
pub(super) fn resolve<R, C>(direct: &HashMap<(R, C), (R, C)>) -> impl Fn(&(R, C)) -> (R, C) + '_
where
    R: Clone + Eq + Hash,
    C: Clone + Eq + Hash,
{
    move |start| {
        let mut at = start.clone();
        for _ in 0..8 {
            match direct.get(&at) {
                Some(next) => at = next.clone(),
                None => break,
            }
        }
        at
    }
}

/// Keys of the tables among `tables`, named by table and column name.
fn keys_by_name(tables: &[Table]) -> Vec<BaseKey<String, String>> {
    let mut keys = Vec::new();
    for t in tables.iter().filter(|t| !t.is_view) {
        if !t.primary_key.is_empty() {
            keys.push(BaseKey {
                name: format!("{}_pkey", t.name),
                relation: t.name.clone(),
                columns: t.primary_key.clone(),
                references: None,
            });
        }
        for fk in t.foreign_keys.iter().filter(|fk| fk.referenced_schema == t.schema) {
            keys.push(BaseKey {
                name: fk.name.clone(),
                relation: t.name.clone(),
                columns: fk.columns.clone(),
                references: Some((fk.referenced_table.clone(), fk.referenced_columns.clone())),
            });
        }
    }
    keys
}

/// `inherit` for engines that name relations and columns (MySQL, SQLite):
/// `tables` are one schema's relations; `direct` maps (view, column) to the
/// (relation, column) it shows.
pub(super) fn inherit_by_name(tables: &mut Vec<Table>, direct: &HashMap<(String, String), (String, String)>) {
    if direct.is_empty() {
        return;
    }
    let origin_of = resolve(direct);
    let mut shown_by: HashMap<String, HashMap<(String, String), String>> = HashMap::new();
    for t in tables.iter().filter(|t| t.is_view) {
        let shown = shown_by.entry(t.name.clone()).or_default();
        // The first view column showing a base column names it.
        for c in t.columns.iter().rev() {
            let (rel, col) = origin_of(&(t.name.clone(), c.name.clone()));
            if rel != t.name {
                shown.insert((rel, col), c.name.clone());
            }
        }
    }
    let keys = keys_by_name(tables);
    let mut by_name: HashMap<String, Table> = tables.drain(..).map(|t| (t.name.clone(), t)).collect();
    inherit(&mut by_name, &shown_by, keys, |_, col| Some(col.clone()));
    tables.extend(by_name.into_values()); // in no particular order: callers sort
}

#[cfg(test)]
mod tests {
    use super::super::{Column, ValueKind};
    use super::*;

    fn relation(name: &str, is_view: bool, columns: &[&str], primary_key: &[&str], fks: Vec<ForeignKey>) -> Table {
        let column = |n: &&str| Column {
            name: n.to_string(),
            db_type: "integer".into(),
            kind: ValueKind::Integer,
            nullable: true,
            default: None,
            comment: None,
            representation: None,
            computed: None,
        };
        Table {
            schema: "main".into(),
            name: name.into(),
            is_view,
            writable: super::super::Writable::ALL,
            columns: columns.iter().map(column).collect(),
            primary_key: primary_key.iter().map(|c| c.to_string()).collect(),
            unique: Vec::new(),
            foreign_keys: fks,
            comment: None,
            computed: Vec::new(),
        }
    }

    fn fk(name: &str, column: &str, table: &str, referenced: &str) -> ForeignKey {
        ForeignKey {
            name: name.into(),
            columns: vec![column.into()],
            referenced_schema: "main".into(),
            referenced_table: table.into(),
            referenced_columns: vec![referenced.into()],
        }
    }

    fn shows(pairs: &[(&str, &str, &str, &str)]) -> HashMap<(String, String), (String, String)> {
        pairs.iter().map(|(v, c, t, tc)| ((v.to_string(), c.to_string()), (t.to_string(), tc.to_string()))).collect()
    }

    #[test]
    fn views_inherit_the_keys_of_the_columns_they_show() {
        let mut tables = vec![
            relation("customers", false, &["id", "name"], &["id"], vec![]),
            relation(
                "orders",
                false,
                &["id", "customer_id"],
                &["id"],
                vec![fk("to_customer", "customer_id", "customers", "id")],
            ),
            relation("open_orders", true, &["order_id", "buyer"], &[], vec![]),
            relation("recent", true, &["n", "who"], &[], vec![]),
            relation("order_with_name", true, &["order_id", "customer_id", "name"], &[], vec![]),
        ];
        let direct = shows(&[
            ("open_orders", "order_id", "orders", "id"),
            ("open_orders", "buyer", "orders", "customer_id"),
            // A view of a view, renaming again.
            ("recent", "n", "open_orders", "order_id"),
            ("recent", "who", "open_orders", "buyer"),
            // A join: both tables' keys.
            ("order_with_name", "order_id", "orders", "id"),
            ("order_with_name", "customer_id", "customers", "id"),
        ]);
        inherit_by_name(&mut tables, &direct);
        let get = |n: &str| tables.iter().find(|t| t.name == n).unwrap();
        assert_eq!(get("open_orders").primary_key, ["order_id"]);
        // To the table, and to every view showing customers.id.
        assert_eq!(
            get("open_orders").foreign_keys,
            [
                fk("to_customer", "buyer", "customers", "id"),
                fk("to_customer", "buyer", "order_with_name", "customer_id")
            ]
        );
        assert_eq!(get("recent").primary_key, ["n"]);
        assert!(get("recent").foreign_keys.contains(&fk("to_customer", "who", "customers", "id")));
        assert!(get("order_with_name").primary_key.is_empty(), "two tables' keys: which one is the view's is unknown");
        // orders.customer_id -> the join view's customers.id column.
        assert!(get("orders").foreign_keys.contains(&fk(
            "to_customer",
            "customer_id",
            "order_with_name",
            "customer_id"
        )));
        // The tables' own key is not repeated.
        assert_eq!(get("orders").foreign_keys.iter().filter(|f| f.referenced_table == "customers").count(), 1);
    }
}
