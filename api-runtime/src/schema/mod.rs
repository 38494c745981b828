//! The introspected database schema: the only source of identifiers that may
//! appear in generated SQL.
//!
//! Each engine's introspection lives in its own file and fills the same
//! model; relationships (for embedding) are derived here, once, from the
//! foreign keys.

mod mysql;
mod postgres;
mod relationships;
mod sqlite;

use std::collections::BTreeMap;

use dbapi_crds::config::TableFilter;

use crate::db::Db;
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
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    /// Unique constraints and unique indexes, each a list of columns.
    pub unique: Vec<Vec<String>>,
    pub foreign_keys: Vec<ForeignKey>,
    pub comment: Option<String>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether these columns identify at most one row (a primary key or a
    /// unique constraint is a subset of them).
    pub fn is_unique_on(&self, columns: &[String]) -> bool {
        let covers = |key: &Vec<String>| !key.is_empty() && key.iter().all(|k| columns.contains(k));
        covers(&self.primary_key) || self.unique.iter().any(covers)
    }
}

/// Qualified name of a table: (schema, table).
pub type TableKey = (String, String);

/// Everything the runtime knows about the database, read once and swapped
/// whole on reload.
#[derive(Debug, Clone)]
pub struct Schema {
    pub engine: Engine,
    /// Exposed schemas; the first is the default profile.
    pub schemas: Vec<String>,
    pub tables: BTreeMap<TableKey, Table>,
    /// Relationships by the table they start from.
    relationships: BTreeMap<TableKey, Vec<Relationship>>,
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
        Schema { engine, schemas, tables, relationships }
    }

    pub fn default_schema(&self) -> &str {
        &self.schemas[0]
    }

    pub fn table(&self, schema: &str, name: &str) -> Option<&Table> {
        self.tables.get(&(schema.to_string(), name.to_string()))
    }

    /// Tables of one exposed schema, in name order.
    pub fn tables_in<'a>(&'a self, schema: &'a str) -> impl Iterator<Item = &'a Table> + 'a {
        self.tables.values().filter(move |t| t.schema == schema)
    }

    pub fn relationships_from(&self, table: &Table) -> &[Relationship] {
        self.relationships.get(&(table.schema.clone(), table.name.clone())).map(Vec::as_slice).unwrap_or(&[])
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntrospectError {
    #[error("could not read the schema from the database: {0}")]
    Query(#[from] sqlx::Error),
    #[error("schema {0:?} does not exist in the database (check `database.schemas` / --schemas)")]
    UnknownSchema(String),
}

/// Reads tables, views, columns, keys and foreign keys of the exposed schemas.
pub async fn introspect(db: &Db, schemas: &[String], filter: &TableFilter) -> Result<Schema, IntrospectError> {
    let (engine, schemas, tables) = match db {
        Db::Postgres(pool) => {
            let schemas = if schemas.is_empty() { vec!["public".to_string()] } else { schemas.to_vec() };
            let tables = postgres::introspect(pool, &schemas).await?;
            (Engine::Postgres, schemas, tables)
        }
        Db::MySql(pool) => {
            let schemas =
                if schemas.is_empty() { vec![mysql::current_database(pool).await?] } else { schemas.to_vec() };
            let tables = mysql::introspect(pool, &schemas).await?;
            (Engine::MySql, schemas, tables)
        }
        Db::Sqlite(pool) => {
            let schemas = if schemas.is_empty() { vec!["main".to_string()] } else { schemas.to_vec() };
            let tables = sqlite::introspect(pool, &schemas).await?;
            (Engine::Sqlite, schemas, tables)
        }
    };
    Ok(Schema::new(engine, schemas, tables, filter))
}
