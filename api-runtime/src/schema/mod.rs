//! The introspected database schema: the only source of identifiers that may
//! appear in generated SQL.
//!
//! Each engine's introspection lives in its own file and fills the same
//! model; relationships (for embedding) are derived here, once, from the
//! foreign keys.

mod mysql;
mod pg_views;
mod postgres;
mod relationships;
mod sqlite;
mod view_keys;

use std::collections::BTreeMap;

use dbapi_crds::config::TableFilter;

use crate::db::Db;
use crate::db::pool::lease;
pub use relationships::{Cardinality, Relationship};

/// Which SQL engine a schema came from; decides the SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    MySql,
    Sqlite,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "PostgreSQL",
            Engine::MySql => "MySQL/MariaDB",
            Engine::Sqlite => "SQLite",
        }
    }
}

/// How a column's values are represented in JSON and compared in SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind {
    Integer,
    Float,
    /// Exact decimals; JSON numbers.
    Numeric,
    Boolean,
    Text,
    Json,
    Uuid,
    Date,
    Time,
    /// Timestamp without a zone.
    Timestamp,
    TimestampTz,
    Bytes,
    /// An enumerated type with its labels.
    Enum(Vec<String>),
    /// PostgreSQL array of the inner kind.
    Array(Box<ValueKind>),
    /// Anything else: rendered as text.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// The engine's own type name (`integer`, `varchar(20)`, `order_status`),
    /// used for casts of bound values on PostgreSQL and shown in OpenAPI.
    pub db_type: String,
    pub kind: ValueKind,
    pub nullable: bool,
    /// The default expression as the database reports it.
    pub default: Option<String>,
    pub comment: Option<String>,
    /// PostgreSQL: how a domain column is presented and read, when casts
    /// on its domain say so.
    pub representation: Option<Box<Representation>>,
    /// PostgreSQL: the function behind a computed field (see
    /// [`Table::computed`]); `None` for a stored column.
    pub computed: Option<Box<ComputedBy>>,
}

/// What identifies a row of a table without a primary key, within the
/// transaction that read it: PostgreSQL's `ctid` (an UPDATE moves a row to
/// a new one, which its RETURNING gives) and SQLite's `rowid`, on tables
/// only; MySQL has none. Never shown to a client (no `Location` is made
/// of it).
pub fn row_identity(engine: Engine, table: &Table) -> Option<&'static Column> {
    static CTID: std::sync::LazyLock<Column> = std::sync::LazyLock::new(|| identity_column("ctid", "tid"));
    static ROWID: std::sync::LazyLock<Column> = std::sync::LazyLock::new(|| identity_column("rowid", "integer"));
    match engine {
        _ if table.is_view => None,
        Engine::Postgres => Some(&CTID),
        Engine::Sqlite => Some(&ROWID),
        Engine::MySql => None,
    }
}

fn identity_column(name: &str, db_type: &str) -> Column {
    Column {
        name: name.into(),
        db_type: db_type.into(),
        kind: ValueKind::Other,
        nullable: false,
        default: None,
        comment: None,
        representation: None,
        computed: None,
    }
}

/// A PostgreSQL function taking a table's row and returning one value: a
/// column of that table in `select`, filters and `order`, as PostgREST's
/// "Computed Fields". Called on the row as `fn(ROW(t.*)::table)`, which
/// works on the table and on any derived table of its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputedBy {
    pub function_schema: String,
    pub function: String,
    /// The row type the function takes: the table's schema and name.
    pub row_schema: String,
    pub row_type: String,
}

/// The functions behind the casts on a column's domain, as PostgREST's
/// "Domain Representations" uses them: each is `(schema, name)`, called on
/// the value directly (PostgreSQL itself ignores casts on domains).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Representation {
    /// `domain -> json`: the value in responses.
    pub output: Option<(String, String)>,
    /// `text -> domain`: filter values from the query string.
    pub filter: Option<(String, String)>,
    /// `json -> domain`: values in request bodies.
    pub input: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// Constraint name, used for `!fkey` disambiguation.
    pub name: String,
    pub columns: Vec<String>,
    pub referenced_schema: String,
    pub referenced_table: String,
    pub referenced_columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub is_view: bool,
    /// The writes the relation takes: all for a table; for a view what
    /// the database reports (auto-updatable, or INSTEAD OF triggers).
    pub writable: Writable,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    /// Unique constraints and unique indexes, each a list of columns.
    pub unique: Vec<Vec<String>>,
    pub foreign_keys: Vec<ForeignKey>,
    pub comment: Option<String>,
    /// PostgreSQL computed fields: readable like columns when named (never
    /// part of `*`, never written).
    pub computed: Vec<Column>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The columns that identify one of its rows to a write's read-back
    /// (`return=representation`): the primary key, else the row identity
    /// the engine has (see [`row_identity`]); empty when neither.
    pub fn key_columns(&self, engine: Engine) -> Vec<&Column> {
        if self.primary_key.is_empty() {
            return row_identity(engine, self).into_iter().collect();
        }
        self.primary_key.iter().filter_map(|k| self.column(k)).collect()
    }

    /// Whether [`Table::key_columns`] has any, without collecting them.
    pub fn has_key_columns(&self, engine: Engine) -> bool {
        if self.primary_key.is_empty() {
            return row_identity(engine, self).is_some();
        }
        self.primary_key.iter().any(|k| self.column(k).is_some())
    }

    /// A column or, failing that, a computed field: what a read may name.
    pub fn readable(&self, name: &str) -> Option<&Column> {
        self.column(name).or_else(|| self.computed.iter().find(|c| c.name == name))
    }

    /// Whether these columns identify at most one row (a primary key or a
    /// unique constraint is a subset of them).
    pub fn is_unique_on(&self, columns: &[String]) -> bool {
        let covers = |key: &Vec<String>| !key.is_empty() && key.iter().all(|k| columns.contains(k));
        covers(&self.primary_key) || self.unique.iter().any(covers)
    }
}

/// Which writes a relation takes, as the database reports them
/// (PostgreSQL `pg_relation_is_updatable`, MySQL `IS_UPDATABLE`, SQLite
/// `INSTEAD OF` triggers); `OPTIONS` answers with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writable {
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
}

impl Writable {
    pub const ALL: Writable = Writable { insert: true, update: true, delete: true };
    pub const NONE: Writable = Writable { insert: false, update: false, delete: false };
}

/// Qualified name of a table: (schema, table).
pub type TableKey = (String, String);

/// A [`TableKey`] as borrowed names, so that the maps keyed by it are
/// searched without building an owned key (two allocations a lookup, and a
/// request makes several).
pub(crate) trait QualifiedName {
    fn parts(&self) -> (&str, &str);
}

impl QualifiedName for TableKey {
    fn parts(&self) -> (&str, &str) {
        (&self.0, &self.1)
    }
}

impl QualifiedName for (&str, &str) {
    fn parts(&self) -> (&str, &str) {
        (self.0, self.1)
    }
}

impl<'a> std::borrow::Borrow<dyn QualifiedName + 'a> for TableKey {
    fn borrow(&self) -> &(dyn QualifiedName + 'a) {
        self
    }
}

// The order of `(String, String)`: names compared as bytes, schema first.
impl PartialEq for dyn QualifiedName + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn QualifiedName + '_ {}

impl PartialOrd for dyn QualifiedName + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn QualifiedName + '_ {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.parts().cmp(&other.parts())
    }
}

/// The map key for `schema.name`, borrowed.
pub(crate) fn qualified<'a>(schema: &'a str, name: &'a str) -> (&'a str, &'a str) {
    (schema, name)
}

/// Whether a function may run on a read (GET) request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Volatility {
    Immutable,
    Stable,
    /// May change data: only POST calls it.
    Volatile,
}

/// A database function exposed under `/rpc/{name}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub schema: String,
    pub name: String,
    /// Input parameters in declaration order; a parameter with a `default`
    /// may be left out of a call.
    pub params: Vec<Column>,
    /// PostgreSQL `VARIADIC` last parameter (passed as an array).
    pub variadic: bool,
    pub returns: Returns,
    pub set_returning: bool,
    pub volatility: Volatility,
    pub comment: Option<String>,
    /// PostgreSQL: the media type its result is (a domain named like
    /// `application/vnd.twkb` or `*/*`, as PostgREST's "Media Type
    /// Handlers"): the value is the body, sent as that type.
    pub media_type: Option<String>,
}

/// An aggregate over a table's rows whose result is a media type (a domain
/// named like one): PostgREST's handler for reads of that table (and of
/// functions returning its rows) asking for that type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaHandler {
    /// `text/csv`, `application/vnd.twkb`, or `*/*` for every type.
    pub media_type: String,
    pub aggregate_schema: String,
    pub aggregate: String,
}

/// What a call yields. Every result is read as rows of a [`Table`], so the
/// read grammar (select, filters, order, limit) applies to it unchanged.
#[derive(Debug, Clone, PartialEq)]
pub enum Returns {
    Void,
    /// One value per row, in a single column named after the function.
    Scalar(Table),
    /// Rows of a composite type or of OUT/TABLE columns.
    Rows(Table),
    /// Rows of an exposed table's type: that table, so its relationships
    /// embed as in a read of the table.
    Table(TableKey),
}

impl Function {
    /// The rows a call yields, or `None` for a void function.
    pub fn result_table<'a>(&'a self, schema: &'a Schema) -> Option<&'a Table> {
        match &self.returns {
            Returns::Void => None,
            Returns::Scalar(t) | Returns::Rows(t) => Some(t),
            Returns::Table((s, n)) => schema.table(s, n),
        }
    }

    pub fn is_scalar(&self) -> bool {
        matches!(self.returns, Returns::Scalar(_))
    }

    /// `fn(a, b)`, as error messages and the OpenAPI document name it.
    pub fn signature(&self) -> String {
        let names: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
        format!("{}.{}({})", self.schema, self.name, names.join(", "))
    }
}

/// The single-column table a scalar function's values are read from.
pub(crate) fn scalar_result(schema: &str, function: &str, value: Column) -> Table {
    result_rows(schema, function, vec![Column { name: function.to_string(), ..value }])
}

/// The rows a function returns, described as a keyless view named after it
/// (OUT/TABLE columns, a composite type that is not a table, a scalar).
pub(crate) fn result_rows(schema: &str, function: &str, columns: Vec<Column>) -> Table {
    Table {
        schema: schema.to_string(),
        name: function.to_string(),
        is_view: true,
        writable: Writable::NONE,
        columns,
        primary_key: Vec::new(),
        unique: Vec::new(),
        foreign_keys: Vec::new(),
        comment: None,
        computed: Vec::new(),
    }
}

/// The introspected functions and, by name, the routines that exist but
/// cannot be called (procedures, unsupported signatures) with the reason.
#[derive(Debug, Clone, Default)]
pub struct Routines {
    pub functions: Vec<Function>,
    pub uncallable: Vec<(TableKey, String)>,
    /// Computed relationships, by the table they start from.
    pub relationships: Vec<(TableKey, Relationship)>,
    /// Media type handlers, by the table whose rows they aggregate.
    pub handlers: Vec<(TableKey, MediaHandler)>,
}

/// Everything the runtime knows about the database, read once and swapped
/// whole on reload.
#[derive(Debug, Clone)]
pub struct Schema {
    pub engine: Engine,
    /// Exposed schemas; the first is the default profile.
    pub schemas: Vec<String>,
    pub tables: BTreeMap<TableKey, Table>,
    /// Functions by (schema, name); overloads share the key.
    pub functions: BTreeMap<TableKey, Vec<Function>>,
    /// Routines that exist but are not exposed, with the reason.
    pub uncallable: BTreeMap<TableKey, String>,
    /// Relationships by the table they start from.
    relationships: BTreeMap<TableKey, Vec<Relationship>>,
    /// Media type handlers by the table whose rows they aggregate.
    handlers: BTreeMap<TableKey, Vec<MediaHandler>>,
}

impl Schema {
    /// Builds the model from introspected tables: applies the table filter
    /// and derives relationships.
    pub fn new(engine: Engine, schemas: Vec<String>, tables: Vec<Table>, filter: &TableFilter) -> Self {
        let tables: BTreeMap<TableKey, Table> = tables
            .into_iter()
            .filter(|t| filter.allows(&t.name))
            .map(|t| ((t.schema.clone(), t.name.clone()), t))
            .collect();
        let relationships = relationships::derive(&tables);
        Schema {
            engine,
            schemas,
            tables,
            functions: BTreeMap::new(),
            uncallable: BTreeMap::new(),
            relationships,
            handlers: BTreeMap::new(),
        }
    }

    /// Adds the introspected functions; the table filter applies to their
    /// names too.
    pub fn with_routines(mut self, routines: Routines, filter: &TableFilter) -> Self {
        for mut f in routines.functions.into_iter().filter(|f| filter.allows(&f.name)) {
            if let Returns::Rows(t) = &f.returns
                && self.table(&t.schema, &t.name).is_some_and(|exposed| exposed.columns == t.columns)
            {
                f.returns = Returns::Table((t.schema.clone(), t.name.clone()));
            }
            self.functions.entry((f.schema.clone(), f.name.clone())).or_default().push(f);
        }
        self.uncallable.extend(routines.uncallable.into_iter().filter(|((_, name), _)| filter.allows(name)));
        for (from, relationship) in routines.relationships {
            let function = relationship.function.as_ref().map_or("", |f| f.function.as_str());
            if self.tables.contains_key(&from)
                && self.tables.contains_key(&relationship.target)
                && filter.allows(function)
            {
                self.relationships.entry(from).or_default().push(relationship);
            }
        }
        for (table, handler) in routines.handlers {
            if self.tables.contains_key(&table) {
                self.handlers.entry(table).or_default().push(handler);
            }
        }
        self
    }

    /// The media type handlers for reads of `table`'s rows.
    pub fn handlers_of(&self, table: &Table) -> &[MediaHandler] {
        // Asked on every read: most schemas have none, so no key is built.
        if self.handlers.is_empty() {
            return &[];
        }
        self.handlers
            .get(&qualified(&table.schema, &table.name) as &dyn QualifiedName)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// A narrower view of this schema (a role's): these tables, functions
    /// and uncallable routines, with the relationships between kept tables
    /// that `keep` accepts. Nothing is re-derived: the kept relationships
    /// are this schema's own.
    pub(crate) fn restricted(
        &self,
        tables: BTreeMap<TableKey, Table>,
        functions: BTreeMap<TableKey, Vec<Function>>,
        uncallable: BTreeMap<TableKey, String>,
        keep: impl Fn(&Relationship) -> bool,
    ) -> Schema {
        let relationships = self
            .relationships
            .iter()
            .filter(|(from, _)| tables.contains_key(*from))
            .map(|(from, rels)| (from.clone(), rels.iter().filter(|r| keep(r)).cloned().collect()))
            .collect();
        let handlers =
            self.handlers.iter().filter(|(t, _)| tables.contains_key(*t)).map(|(t, h)| (t.clone(), h.clone()));
        let handlers = handlers.collect();
        Schema {
            engine: self.engine,
            schemas: self.schemas.clone(),
            tables,
            functions,
            uncallable,
            relationships,
            handlers,
        }
    }

    /// The overloads of `schema.name`.
    pub fn functions_named(&self, schema: &str, name: &str) -> &[Function] {
        self.functions.get(&qualified(schema, name) as &dyn QualifiedName).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Functions of one exposed schema, in name order.
    pub fn functions_in<'a>(&'a self, schema: &'a str) -> impl Iterator<Item = &'a Function> + 'a {
        self.functions.iter().filter(move |((s, _), _)| s == schema).flat_map(|(_, f)| f.iter())
    }

    pub fn default_schema(&self) -> &str {
        &self.schemas[0]
    }

    pub fn table(&self, schema: &str, name: &str) -> Option<&Table> {
        self.tables.get(&qualified(schema, name) as &dyn QualifiedName)
    }

    /// Tables of one exposed schema, in name order.
    pub fn tables_in<'a>(&'a self, schema: &'a str) -> impl Iterator<Item = &'a Table> + 'a {
        self.tables.values().filter(move |t| t.schema == schema)
    }

    /// Relationships of an exposed table. A function's result rows named
    /// like a table have none: only the table itself (the same object) is
    /// looked up.
    pub fn relationships_from(&self, table: &Table) -> &[Relationship] {
        let key = qualified(&table.schema, &table.name);
        let key = &key as &dyn QualifiedName;
        match self.tables.get(key) {
            Some(exposed) if std::ptr::eq(exposed, table) => {
                self.relationships.get(key).map(Vec::as_slice).unwrap_or(&[])
            }
            _ => &[],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntrospectError {
    #[error("could not read the schema from the database: {0}")]
    Query(#[from] sqlx::Error),
    #[error("schema {0:?} does not exist in the database (check `database.schemas` / --schemas)")]
    UnknownSchema(String),
}

impl crate::db::pool::ConnectionFailure for IntrospectError {
    fn connection_lost(&self) -> bool {
        matches!(self, IntrospectError::Query(e) if e.connection_lost())
    }
}

/// Reads tables, views, columns, keys, foreign keys and functions of the
/// exposed schemas.
pub async fn introspect(db: &Db, schemas: &[String], filter: &TableFilter) -> Result<Schema, IntrospectError> {
    let (engine, schemas, tables, routines) = match db {
        Db::Postgres(pool, _) => {
            let schemas = if schemas.is_empty() { vec!["public".to_string()] } else { schemas.to_vec() };
            let (tables, routines) = lease(pool).await?.run(|c| postgres::introspect(c, &schemas)).await?;
            (Engine::Postgres, schemas, tables, routines)
        }
        Db::MySql(pool) => {
            let mut conn = lease(pool).await?;
            let schemas =
                if schemas.is_empty() { vec![conn.run(mysql::current_database).await?] } else { schemas.to_vec() };
            let (tables, routines) = conn.run(|c| mysql::introspect(c, &schemas)).await?;
            (Engine::MySql, schemas, tables, routines)
        }
        Db::Sqlite(pool) => {
            let schemas = if schemas.is_empty() { vec!["main".to_string()] } else { schemas.to_vec() };
            let tables = lease(pool).await?.run(|c| sqlite::introspect(c, &schemas)).await?;
            (Engine::Sqlite, schemas, tables, Routines::default())
        }
    };
    Ok(Schema::new(engine, schemas, tables, filter).with_routines(routines, filter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_found_by_borrowed_names_in_the_owned_keys_order() {
        // Names whose order as (schema, name) differs from their order as
        // one string, and a schema that is a prefix of another.
        let names = [("a", "bc"), ("ab", "c"), ("a", "b"), ("a", "B"), ("a", "b_c"), ("ab", ""), ("b", "a")];
        let schemas: Vec<String> = ["a", "ab", "b"].iter().map(|s| s.to_string()).collect();
        let tables = names.iter().map(|(s, n)| result_rows(s, n, Vec::new())).collect();
        let schema = Schema::new(Engine::Postgres, schemas, tables, &TableFilter::default());
        for (s, n) in names {
            let found = schema.table(s, n).unwrap_or_else(|| panic!("{s}.{n}"));
            assert_eq!((found.schema.as_str(), found.name.as_str()), (s, n));
            assert!(schema.relationships_from(found).is_empty());
            assert!(schema.handlers_of(found).is_empty());
        }
        for (s, n) in [("a", "c"), ("ab", "bc"), ("", "abc"), ("a", "bc ")] {
            assert!(schema.table(s, n).is_none(), "{s}.{n}");
        }
        assert!(schema.functions_named("a", "bc").is_empty());
    }
}
