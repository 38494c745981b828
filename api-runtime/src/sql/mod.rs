//! SQL rendering: a plan to one statement per request, for each dialect.
//!
//! `read.rs` holds the statement's shape, shared by all engines; each
//! dialect file says how its engine spells identifiers, placeholders, JSON
//! building, operators and ordering. Identifiers come only from the schema
//! (via the plan) and are always quoted; every value, including JSON keys
//! and LIKE patterns, is a bound parameter.

mod aggregate;
mod media;
mod mysql;
mod postgres;
mod read;
mod sqlite;
mod write;

pub use media::render_handler;
pub use read::{render_count, render_read, render_read_in_zone, render_rows, render_void_call};
pub use write::{
    MAX_PARAMS, OUTSIDE_ROW_FILTER, Returning, SHADOW, render_delete, render_insert, render_keys, render_shadow_copy,
    render_shadow_drain, render_shadow_update, render_update,
};

use crate::grammar::{Direction, JsonStep, Nulls, Operation};
use crate::plan::Cast;
use crate::schema::{Column, Engine, ValueKind};
use std::borrow::Cow;

pub(crate) use crate::db::quote_doubling;
pub use crate::db::{Param, Statement};

/// Writes one piece of SQL (an expression, a clause) into a [`Writer`].
pub(crate) type Fragment<'a> = dyn Fn(&mut Writer) + 'a;
/// A JSON object member: its key and the fragment writing its value.
pub(crate) type Member<'a> = (&'a str, &'a Fragment<'a>);

/// Appends SQL text and parameters in order, delegating spelling to the
/// dialect.
pub(crate) struct Writer {
    pub sql: String,
    pub params: Vec<Param>,
    pub dialect: &'static dyn Dialect,
    /// `Prefer: timezone`, for engines that write zoned timestamps in the
    /// statement (MySQL); PostgreSQL sets it for the transaction instead.
    pub time_zone: Option<String>,
}

impl Writer {
    fn new(engine: Engine) -> Self {
        let dialect: &'static dyn Dialect = match engine {
            Engine::Postgres => &postgres::Postgres,
            Engine::MySql => &mysql::MySql,
            Engine::Sqlite => &sqlite::Sqlite,
        };
        Writer { sql: String::with_capacity(512), params: Vec::new(), dialect, time_zone: None }
    }

    fn finish(self) -> Statement {
        Statement { sql: self.sql, params: self.params, one_off: false }
    }

    pub fn push(&mut self, s: &str) {
        self.sql.push_str(s);
    }

    pub fn ident(&mut self, name: &str) {
        self.dialect.quote_ident(&mut self.sql, name);
    }

    /// `"alias"."column"`
    pub fn column(&mut self, alias: &str, column: &str) {
        self.ident(alias);
        self.sql.push('.');
        self.ident(column);
    }

    /// `"schema"."table"` (SQLite's `main` is left implicit).
    pub fn table(&mut self, schema: &str, table: &str) {
        if !(self.dialect.engine() == Engine::Sqlite && schema == "main") {
            self.ident(schema);
            self.sql.push('.');
        }
        self.ident(table);
    }

    /// A placeholder for `value`; `pg_type` is the type PostgreSQL should
    /// read it as (other engines ignore it).
    pub fn param(&mut self, value: Param, pg_type: &str) {
        self.params.push(value);
        let n = self.params.len();
        self.dialect.placeholder(&mut self.sql, n, pg_type);
    }

    pub fn text(&mut self, value: &str) {
        self.param(Param::Text(value.to_string()), "text");
    }
}

/// The statement that makes `zone` the time zone of the transaction it runs
/// in (PostgreSQL; an unknown zone fails with 22023).
pub fn render_set_time_zone(zone: &str) -> Statement {
    Statement {
        sql: "SELECT set_config('timezone', $1, true)".into(),
        params: vec![Param::Text(zone.into())],
        one_off: true,
    }
}

/// A statement whose one value is NULL when MySQL does not know `zone` (a
/// name needs the server's time zone tables; an offset always works).
pub fn render_time_zone_check(zone: &str) -> Statement {
    Statement {
        sql: "SELECT CAST(CONVERT_TZ('2000-01-01 00:00:00', '+00:00', ?) AS CHAR)".into(),
        params: vec![Param::Text(zone.into())],
        one_off: true,
    }
}

/// How each engine spells the pieces of a statement.
pub(crate) trait Dialect: Sync {
    fn engine(&self) -> Engine;
    fn quote_ident(&self, out: &mut String, name: &str);
    fn placeholder(&self, out: &mut String, index: usize, pg_type: &str);

    /// A JSON object from (key, value) pairs; keys are bound parameters.
    fn json_object(&self, w: &mut Writer, pairs: &[Member]);
    /// Wraps a value so it lands in a JSON object as the right JSON type.
    fn json_value(&self, w: &mut Writer, kind: &ValueKind, value: &Fragment);
    /// Aggregates JSON values of a row set into an array (`[]` when empty),
    /// optionally ordered.
    fn json_array_agg(&self, w: &mut Writer, element: &Fragment, order: Option<&Fragment>);
    /// A JSON array holding the one JSON value `element`.
    fn json_array_of_one(&self, w: &mut Writer, element: &Fragment) {
        w.push("JSON_ARRAY(");
        element(w);
        w.push(")");
    }
    /// The aggregated JSON array as the statement's text result.
    fn json_array_result(&self, w: &mut Writer, element: &Fragment, order: Option<&Fragment>) {
        self.json_array_agg(w, element, order);
    }
    /// Whether the engine turns a whole record into a JSON object
    /// (PostgreSQL's `json_agg(record)`), which is cheaper than building it
    /// key by key.
    fn aggregates_records(&self) -> bool {
        false
    }
    /// Whether the top level builds each row's object in a derived table
    /// and aggregates that table's column. MariaDB refuses an aggregate at a
    /// statement's top level whose argument holds a subquery reading a
    /// grouped view (error 1111, "Invalid use of group function"), which
    /// is what embedding such a view writes; the same subquery inside an
    /// aggregate that is itself in a subquery is accepted.
    fn builds_objects_before_aggregating(&self) -> bool {
        false
    }
    /// Engines that can limit inside the aggregate (MariaDB) build
    /// to-many embeds without a derived table, which they could not
    /// correlate with the parent row.
    fn aggregate_limits(&self) -> bool {
        false
    }
    /// The aggregate with ORDER BY and LIMIT inside it; only called when
    /// [`Dialect::aggregate_limits`] is true.
    fn json_array_agg_limited(
        &self,
        w: &mut Writer,
        element: &Fragment,
        order: Option<&Fragment>,
        limit: Option<u64>,
        offset: u64,
    ) {
        let _ = (limit, offset);
        self.json_array_agg(w, element, order);
    }
    /// A JSON value read back from a derived table's column (SQLite loses
    /// the JSON flag there and must re-parse).
    fn derived_json(&self, w: &mut Writer, value: &Fragment) {
        value(w);
    }
    /// A JSON value as it is stored in a derived table's column, for
    /// [`Dialect::derived_json`] to read back (SQLite: its JSON text).
    fn json_text(&self, w: &mut Writer, value: &Fragment) {
        value(w);
    }

    /// `column->key->>key` for each engine.
    fn json_path(&self, w: &mut Writer, column: &Fragment, path: &[JsonStep]);
    /// A column of `kind` as what `json_path` steps into: the column
    /// itself, unless the engine must read it as JSON first.
    fn json_source(&self, w: &mut Writer, _kind: &ValueKind, column: &Fragment) {
        column(w);
    }
    fn cast(&self, w: &mut Writer, cast: Cast, value: &Fragment);
    /// One filter; `lhs` writes the column (or JSON path) expression.
    fn condition(&self, w: &mut Writer, lhs: &Fragment, column: &Column, json_path: &[JsonStep], operation: &Operation);
    /// One ORDER BY term with PostgreSQL's null placement as the default.
    fn order_term(&self, w: &mut Writer, expr: &Fragment, direction: Option<Direction>, nulls: Option<Nulls>);
    fn limit_offset(&self, w: &mut Writer, limit: Option<u64>, offset: u64);

    /// A placeholder for a JSON value written into `column`, encoded so the
    /// engine stores it as the column's type.
    fn write_value(&self, w: &mut Writer, column: &Column, value: &serde_json::Value);
    /// One argument of a function call. Positional by default: every
    /// parameter is passed, in order (MySQL functions have no defaults).
    fn call_argument(&self, w: &mut Writer, param: &Column, value: &serde_json::Value, _variadic: bool) {
        self.write_value(w, param, value);
    }
    /// A row of defaults only.
    /// A column's default as the new value of an UPDATE.
    fn column_default(&self, w: &mut Writer, _column: &Column) {
        w.push("DEFAULT");
    }
    fn default_values(&self, w: &mut Writer) {
        w.push(" DEFAULT VALUES");
    }
    /// The upsert clause: on a conflict over `keys`, update `updates` or
    /// keep the existing row.
    fn on_conflict(&self, w: &mut Writer, keys: &[&Column], updates: &[&Column], merge: bool) {
        w.push(" ON CONFLICT (");
        for (i, k) in keys.iter().enumerate() {
            if i > 0 {
                w.push(", ");
            }
            w.ident(&k.name);
        }
        if !merge || updates.is_empty() {
            w.push(") DO NOTHING");
            return;
        }
        w.push(") DO UPDATE SET ");
        for (i, c) in updates.iter().enumerate() {
            if i > 0 {
                w.push(", ");
            }
            w.ident(&c.name);
            w.push(" = excluded.");
            w.ident(&c.name);
        }
    }
    /// Locks selected rows until the transaction ends.
    fn lock_rows(&self, w: &mut Writer) {
        w.push(" FOR UPDATE");
    }
    fn delete_from(&self, w: &mut Writer, schema: &str, table: &str, alias: &str) {
        w.push("DELETE FROM ");
        w.table(schema, table);
        w.push(" AS ");
        w.ident(alias);
    }
}

/// A written value on engines that store JSON as text and booleans as 0/1
/// (MySQL, SQLite): bytes go through `unhex()`, everything else is a plain
/// parameter.
pub(crate) fn write_plain_value(w: &mut Writer, column: &Column, value: &serde_json::Value) {
    match (&column.kind, value.as_str()) {
        (ValueKind::Bytes, Some(hex)) => {
            w.push("unhex(");
            w.text(hex.trim_start_matches("\\x"));
            w.push(")");
        }
        _ => w.param(plain_param(column, value), ""),
    }
}

/// A JSON value as a bound parameter for engines that store JSON as text
/// and booleans as 0/1 (MySQL, SQLite).
pub(crate) fn plain_param(column: &Column, value: &serde_json::Value) -> Param {
    use serde_json::Value;
    match value {
        Value::Null => Param::Null,
        // A JSON column stores the value as JSON: a string stays a string.
        _ if column.kind == ValueKind::Json => Param::Text(value.to_string()),
        // 0/1 where the engine stores booleans as numbers, else the word.
        Value::Bool(b) if matches!(column.kind, ValueKind::Text | ValueKind::Other | ValueKind::Enum(_)) => {
            Param::Text(b.to_string())
        }
        Value::Bool(b) => Param::Int(i64::from(*b)),
        Value::Number(n) => match (n.as_i64(), &column.kind) {
            (Some(i), _) => Param::Int(i),
            (None, ValueKind::Float) => Param::Float(n.as_f64().unwrap_or_default()),
            // Exact decimals travel as text, so nothing is rounded.
            _ => Param::Text(n.to_string()),
        },
        Value::String(s) if column.kind == ValueKind::Boolean => match s.as_str() {
            "true" => Param::Int(1),
            "false" => Param::Int(0),
            _ => Param::Text(s.clone()),
        },
        Value::String(s) => Param::Text(s.clone()),
        Value::Array(_) | Value::Object(_) => Param::Text(value.to_string()),
    }
}

/// `lhs OP ?` for each value, joined with OR (`any`) or AND (`all`); the
/// spelling for engines without array parameters. An empty list is false
/// for `any` and true for `all`.
pub(crate) fn expand_list(w: &mut Writer, lhs: &Fragment, op: &str, values: &[Param], any: bool) {
    if values.is_empty() {
        w.push(if any { "1 = 0" } else { "1 = 1" });
        return;
    }
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            w.push(if any { " OR " } else { " AND " });
        }
        lhs(w);
        w.push(op);
        w.param(v.clone(), "");
    }
}

/// A filter value for a boolean column on engines that store 0/1.
pub(crate) fn bool_param(kind: &ValueKind, value: &str) -> Param {
    if *kind == ValueKind::Boolean {
        match value.to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "yes" | "on" => return Param::Int(1),
            "false" | "f" | "0" | "no" | "off" => return Param::Int(0),
            _ => {}
        }
    }
    Param::Text(value.to_string())
}

/// A JSON path as MySQL and SQLite spell it (`$."a"[0]`); bound as a value.
pub(crate) fn json_path_text(path: &[JsonStep]) -> String {
    let mut out = String::from("$");
    for step in path {
        match &step.key {
            crate::grammar::JsonKey::Name(n) => {
                out.push_str(".\"");
                out.push_str(&n.replace('\\', "\\\\").replace('"', "\\\""));
                out.push('"');
            }
            crate::grammar::JsonKey::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// `function(key1, value1, key2, value2, …)` with the keys bound: the JSON
/// object builders of every engine share this shape.
pub(crate) fn key_value_call(w: &mut Writer, function: &str, pairs: &[Member]) {
    w.push(function);
    w.push("(");
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            w.push(", ");
        }
        w.text(key);
        w.push(", ");
        value(w);
    }
    w.push(")");
}

/// PostgreSQL's default: NULLs sort as larger than any value.
pub(crate) fn nulls_first(direction: Option<Direction>, nulls: Option<Nulls>) -> bool {
    match nulls {
        Some(n) => n == Nulls::First,
        None => direction == Some(Direction::Desc),
    }
}

/// A type name without modifiers: `numeric(10,2)` to `numeric`,
/// `timestamp(3) with time zone` to `timestamp with time zone`.
pub(crate) fn base_type(db_type: &str) -> Cow<'_, str> {
    // Most types have no modifiers: nothing to copy (this runs per value).
    if !db_type.contains('(') {
        return Cow::Borrowed(db_type);
    }
    let mut out = String::with_capacity(db_type.len());
    let mut depth = 0;
    for c in db_type.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    Cow::Owned(out.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_types_drop_modifiers() {
        assert_eq!(base_type("numeric(10,2)"), "numeric");
        assert_eq!(base_type("timestamp(3) with time zone"), "timestamp with time zone");
        assert_eq!(base_type("character varying(20)[]"), "character varying[]");
        assert_eq!(base_type("text"), "text");
    }
}

#[cfg(test)]
mod render_tests {
    use dbapi_crds::config::TableFilter;

    use super::*;
    use crate::grammar::{Operator, parse_query};
    use crate::plan::{Page, plan_read};
    use crate::schema::{Schema, Table};

    fn col(name: &str, db_type: &str, kind: ValueKind) -> Column {
        Column {
            name: name.into(),
            db_type: db_type.into(),
            kind,
            nullable: true,
            default: None,
            comment: None,
            representation: None,
            computed: None,
        }
    }

    fn schema(engine: Engine) -> Schema {
        let table = Table {
            schema: "s".into(),
            name: "t".into(),
            is_view: false,
            writable: crate::schema::Writable::ALL,
            columns: vec![
                col("i", "integer", ValueKind::Integer),
                col("n", "numeric(10,2)", ValueKind::Numeric),
                col("s", "text", ValueKind::Text),
                col("b", "boolean", ValueKind::Boolean),
                col("j", "jsonb", ValueKind::Json),
                col("a", "text[]", ValueKind::Array(Box::new(ValueKind::Text))),
                col("u", "uuid", ValueKind::Uuid),
                col("x", "bytea", ValueKind::Bytes),
            ],
            primary_key: vec!["i".into()],
            unique: vec![],
            foreign_keys: vec![],
            comment: None,
            computed: Vec::new(),
        };
        Schema::new(engine, vec!["s".into()], vec![table], &TableFilter::default())
    }

    /// Every operator on every column kind either plans to a 400 or renders;
    /// no combination reaches a renderer arm that cannot express it.
    #[test]
    fn every_planned_filter_renders_on_every_engine() {
        let mut ops: Vec<String> = Operator::ALL.iter().map(|(n, _)| format!("{n}.1")).collect();
        ops.extend(Operator::ALL.iter().map(|(n, _)| format!("{n}(any).{{1,2}}")));
        ops.extend(["in.(1,2)", "is.null", "is.true", "fts.x", "wfts(english).x", "not.eq.1"].map(String::from));
        for engine in [Engine::Postgres, Engine::MySql, Engine::Sqlite] {
            let schema = schema(engine);
            let mut rendered = 0;
            for column in ["i", "n", "s", "b", "j", "a", "u", "x", "j->>k", "j->k"] {
                for op in &ops {
                    let q = format!("select=i,b,x,j->>k,n::text&{column}={op}&order={column}.desc&limit=3&offset=1");
                    let Ok(query) = parse_query(&q) else { continue };
                    let page = Page { offset: 1, limit: Some(3) };
                    if let Ok(plan) = plan_read(&schema, "s", "t", &query, page) {
                        let stmt = render_read(&plan, engine, true);
                        let placeholders = match engine {
                            Engine::Postgres => stmt.sql.matches('$').count(),
                            _ => stmt.sql.matches('?').count(),
                        };
                        assert_eq!(placeholders, stmt.params.len(), "{engine:?} {q}: {}", stmt.sql);
                        rendered += 1;
                    }
                }
            }
            assert!(rendered > 100, "{engine:?}: only {rendered} combinations planned");
        }
    }

    #[test]
    fn values_never_appear_in_sql_text() {
        let schema = schema(Engine::MySql);
        let evil = "x'); DROP TABLE t; --";
        let q = parse_query(&format!(r#"select=evil:s&s=eq.{evil}&or=(s.like."{evil}")&j->>k=eq.{evil}"#)).unwrap();
        let plan = plan_read(&schema, "s", "t", &q, Page { offset: 0, limit: Some(10) }).unwrap();
        for engine in [Engine::Postgres, Engine::MySql, Engine::Sqlite] {
            let stmt = render_read(&plan, engine, false);
            assert!(!stmt.sql.contains("DROP"), "{}", stmt.sql);
            assert!(stmt.params.contains(&Param::Text(evil.into())), "{:?}", stmt.params);
        }
    }

    /// `columns=` with `missing=default` on PATCH: a listed column the body
    /// lacks is set to its default, which SQLite (no `SET c = DEFAULT`)
    /// spells as the declared expression, or NULL without one.
    #[test]
    fn updates_set_absent_listed_columns_to_their_default() {
        use crate::grammar::Payload;
        use crate::plan::{Missing, plan_update};
        for engine in [Engine::Postgres, Engine::MySql, Engine::Sqlite] {
            let mut schema = schema(engine);
            let table = schema.tables.values_mut().find(|t| t.name == "t").expect("fixture table");
            table.columns.iter_mut().find(|c| c.name == "s").expect("column s").default = Some("'dflt'".into());
            let query = parse_query("i=eq.1&columns=n,s,b").unwrap();
            let row = serde_json::json!({"n": 5, "ignored": 1}).as_object().unwrap().clone();
            let payload = Payload { rows: vec![row], is_array: false };
            let plan = plan_update(&schema, "s", "t", &query, &payload, Missing::Default).unwrap();
            let stmt = write::render_update(&plan, engine, Returning::Nothing);
            let (s_default, b_default) = match engine {
                Engine::Sqlite => ("\"s\" = ('dflt')", "\"b\" = NULL"),
                Engine::Postgres => ("\"s\" = DEFAULT", "\"b\" = DEFAULT"),
                Engine::MySql => ("`s` = DEFAULT", "`b` = DEFAULT"),
            };
            assert!(stmt.sql.contains(s_default) && stmt.sql.contains(b_default), "{engine:?}: {}", stmt.sql);
            assert!(!stmt.sql.contains("ignored"), "{}", stmt.sql);
            // n and the filter's value are bound.
            assert_eq!(stmt.params.len(), 2, "{engine:?}: {:?}", stmt.params);
            // Without missing=default the absent columns are NULL, bound.
            let plan = plan_update(&schema, "s", "t", &query, &payload, Missing::Null).unwrap();
            let stmt = write::render_update(&plan, engine, Returning::Nothing);
            assert!(!stmt.sql.contains("DEFAULT") && !stmt.sql.contains("dflt"), "{}", stmt.sql);
        }
    }

    #[test]
    fn identifiers_are_quoted_with_quotes_doubled() {
        let mut out = String::new();
        postgres::Postgres.quote_ident(&mut out, "we\"ird");
        assert_eq!(out, "\"we\"\"ird\"");
        let mut out = String::new();
        mysql::MySql.quote_ident(&mut out, "we`ird");
        assert_eq!(out, "`we``ird`");
    }
}
