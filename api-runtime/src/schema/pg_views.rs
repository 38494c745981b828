//! PostgreSQL: where views' columns come from, for the keys they inherit
//! (`view_keys`).
//!
//! A view's stored query (`pg_rewrite.ev_action`, a node tree in text form)
//! records, for each output column that is a plain column of a table, that
//! table and column (`:resorigtbl`, `:resorigcol`), followed here through
//! views of views.

use std::collections::{HashMap, HashSet};

use sqlx::{PgConnection, Row};

use super::Table;
use super::view_keys::{self, BaseKey};

/// The stored query of views, by view oid.
const VIEWS_SQL: &str = "
SELECT r.ev_class::int8 AS view, r.ev_action::text AS action
FROM pg_rewrite r
JOIN pg_class c ON c.oid = r.ev_class
WHERE r.ev_class = ANY($1::int8[]::oid[]) AND r.rulename = '_RETURN' AND c.relkind IN ('v', 'm')";

/// Foreign keys touching the given relations and their primary keys,
/// columns as attribute numbers.
const KEYS_SQL: &str = "
SELECT contype::text AS kind, conname::text AS name, conrelid::int8 AS rel, conkey::int4[] AS cols,
       confrelid::int8 AS ref_rel, COALESCE(confkey::int4[], ARRAY[]::int4[]) AS ref_cols
FROM pg_constraint
WHERE (contype = 'f' AND (conrelid = ANY($1::int8[]::oid[]) OR confrelid = ANY($1::int8[]::oid[])))
   OR (contype = 'p' AND conrelid = ANY($1::int8[]::oid[]))";

/// A column of a relation: (relation oid, attribute number).
type Attr = (i64, i32);

/// Adds to `tables` (exposed relations by oid) the foreign keys that views
/// among them inherit from the tables they show. `attnames` names the
/// columns of those relations.
pub(super) async fn add_view_foreign_keys(
    conn: &mut PgConnection,
    tables: &mut HashMap<i64, Table>,
    attnames: &HashMap<Attr, String>,
) -> Result<(), sqlx::Error> {
    // Where each view column comes from, following views of views (up to a
    // depth; a view on a view in another schema is read as well).
    let mut direct: HashMap<Attr, Attr> = HashMap::new();
    let mut pending: Vec<i64> = tables.iter().filter(|(_, t)| t.is_view).map(|(oid, _)| *oid).collect();
    let mut seen: HashSet<i64> = HashSet::new();
    for _ in 0..8 {
        pending.retain(|v| seen.insert(*v));
        if pending.is_empty() {
            break;
        }
        let mut next = Vec::new();
        for row in sqlx::query(VIEWS_SQL).bind(&pending).fetch_all(&mut *conn).await? {
            let view: i64 = row.try_get("view")?;
            let action: String = row.try_get("action")?;
            for (resno, origin) in target_origins(&action) {
                direct.insert((view, resno), origin);
                next.push(origin.0);
            }
        }
        pending = next;
    }
    if direct.is_empty() {
        return Ok(());
    }
    let origin_of = view_keys::resolve(&direct);
    // The base column behind every column of an exposed view, named by
    // the first view column showing it.
    let mut shown_by: HashMap<i64, HashMap<Attr, String>> = HashMap::new();
    let mut first: HashMap<(i64, Attr), i32> = HashMap::new();
    for &(view, resno) in direct.keys() {
        if tables.contains_key(&view) {
            first.entry((view, origin_of(&(view, resno)))).and_modify(|r| *r = (*r).min(resno)).or_insert(resno);
        }
    }
    for ((view, base), resno) in first {
        if let Some(name) = attnames.get(&(view, resno)) {
            shown_by.entry(view).or_default().insert(base, name.clone());
        }
    }
    let bases: Vec<i64> =
        shown_by.values().flat_map(|m| m.keys().map(|a| a.0)).collect::<HashSet<_>>().into_iter().collect();
    let mut keys = Vec::new();
    for row in sqlx::query(KEYS_SQL).bind(&bases).fetch_all(&mut *conn).await? {
        let (rel, ref_rel): (i64, i64) = (row.try_get("rel")?, row.try_get("ref_rel")?);
        let (columns, ref_cols): (Vec<i32>, Vec<i32>) = (row.try_get("cols")?, row.try_get("ref_cols")?);
        let primary = row.try_get::<String, _>("kind")? == "p";
        keys.push(BaseKey {
            name: row.try_get("name")?,
            relation: rel,
            columns,
            references: (!primary).then_some((ref_rel, ref_cols)),
        });
    }
    view_keys::inherit(tables, &shown_by, keys, |rel, col| attnames.get(&(*rel, *col)).cloned());
    Ok(())
}

/// `(resno, (resorigtbl, resorigcol))` of the top-level query's output
/// columns that are plain table columns, from a stored query's node tree.
fn target_origins(action: &str) -> Vec<(i32, Attr)> {
    let bytes = action.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut in_targets = false;
    let mut entry: HashMap<&str, &str> = HashMap::new();
    let mut key: Option<&str> = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'(' => {
                depth += 1;
                if in_targets && depth == 4 {
                    entry.clear();
                }
                i += 1;
            }
            b'}' | b')' => {
                if in_targets && depth == 4 && bytes[i] == b'}' {
                    let num = |k: &str| entry.get(k).and_then(|v| v.parse::<i64>().ok());
                    if let (Some(resno), Some(tbl), Some(col)) = (num(":resno"), num(":resorigtbl"), num(":resorigcol"))
                        && tbl != 0
                        && entry.get(":resjunk") != Some(&"true")
                    {
                        out.push((resno as i32, (tbl, col as i32)));
                    }
                }
                depth = depth.saturating_sub(1);
                if in_targets && depth == 2 {
                    break; // the top-level target list is done
                }
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                let start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !b"{}()".contains(&bytes[i]) {
                    // A backslash escapes the next character of a token.
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let token = &action[start..i.min(bytes.len())];
                if depth == 2 && token == ":targetList" {
                    in_targets = true;
                } else if in_targets && depth == 4 {
                    if token.starts_with(':') {
                        key = Some(token);
                    } else if let Some(k) = key.take() {
                        entry.insert(k, token);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_the_top_level_target_list_only() {
        // Shortened from PostgreSQL 15: a view `SELECT o.id, o.cid AS "cust id",
        // (SELECT count(*) FROM c x WHERE ...) AS n FROM o`.
        let action = r#"({QUERY :commandType 1 :rtable ({RANGETBLENTRY :eref {ALIAS :aliasname o :colnames ("id" "cust\ id")}}) :targetList ({TARGETENTRY :expr {VAR :varno 3 :varattno 1} :resno 1 :resname id :ressortgroupref 0 :resorigtbl 75273 :resorigcol 1 :resjunk false} {TARGETENTRY :expr {VAR :varno 3 :varattno 2} :resno 2 :resname cust\ id :ressortgroupref 0 :resorigtbl 75273 :resorigcol 2 :resjunk false} {TARGETENTRY :expr {SUBLINK :subselect {QUERY :targetList ({TARGETENTRY :expr {AGGREF} :resno 1 :resname count :resorigtbl 99 :resorigcol 1 :resjunk false})}} :resno 3 :resname n :ressortgroupref 0 :resorigtbl 0 :resorigcol 0 :resjunk false}) :override 0})"#;
        assert_eq!(target_origins(action), [(1, (75273, 1)), (2, (75273, 2))]);
    }

    #[test]
    fn junk_entries_and_garbage_are_ignored() {
        let action = "({QUERY :targetList ({TARGETENTRY :resno 1 :resorigtbl 5 :resorigcol 1 :resjunk true})})";
        assert!(target_origins(action).is_empty());
        assert!(target_origins("").is_empty());
        assert!(target_origins("))}}{{((\\").is_empty());
    }
}
