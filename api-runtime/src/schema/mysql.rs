//! MySQL and MariaDB introspection from `information_schema`.
//!
//! Each exposed schema (database) is read with a few queries filtered by
//! `TABLE_SCHEMA = ?`, the form both servers answer without scanning every
//! database. Text columns are decoded as raw bytes: MariaDB sends several
//! `information_schema` columns with a binary collation, which the typed
//! `String` decoder refuses.

use std::collections::HashMap;

use sqlx::mysql::MySqlRow;
use sqlx::{AssertSqlSafe, Column as _, Executor, MySqlConnection, Row, SqlSafeStr, Statement as _};

use super::{
    Column, ForeignKey, Function, IntrospectError, Returns, Routines, Table, ValueKind, Volatility, Writable,
    scalar_result, view_keys,
};

const VERSION_SQL: &str = "SELECT VERSION()";

const SCHEMA_SQL: &str = "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?";

const TABLES_SQL: &str = "
SELECT t.TABLE_NAME, t.TABLE_TYPE, t.TABLE_COMMENT, v.IS_UPDATABLE
FROM information_schema.TABLES t
LEFT JOIN information_schema.VIEWS v ON v.TABLE_SCHEMA = t.TABLE_SCHEMA AND v.TABLE_NAME = t.TABLE_NAME
WHERE t.TABLE_SCHEMA = ?";

const COLUMNS_SQL: &str = "
SELECT TABLE_NAME, COLUMN_NAME, CAST(ORDINAL_POSITION AS SIGNED), COLUMN_TYPE, DATA_TYPE,
       IS_NULLABLE, COLUMN_DEFAULT, COLUMN_COMMENT
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = ?
ORDER BY TABLE_NAME, ORDINAL_POSITION";

/// Unique indexes, the primary key (`PRIMARY`) among them. Functional index
/// parts (MySQL 8) have no column name.
const INDEXES_SQL: &str = "
SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME, CAST(SEQ_IN_INDEX AS SIGNED)
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = ? AND NON_UNIQUE = 0
ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX";

const FOREIGN_KEYS_SQL: &str = "
SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, CAST(ORDINAL_POSITION AS SIGNED),
       REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = ? AND REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION";

/// The stored queries of views, fully qualified by the server.
const VIEWS_SQL: &str = "
SELECT TABLE_NAME, VIEW_DEFINITION
FROM information_schema.VIEWS
WHERE TABLE_SCHEMA = ?";

/// MariaDB only: its `JSON` type is `longtext` with a `json_valid(col)`
/// check, which is the only way to tell it apart from plain text.
const MARIADB_CHECKS_SQL: &str = "
SELECT TABLE_NAME, CHECK_CLAUSE
FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = ?";

/// Stored functions and procedures. A function is callable through
/// `SELECT fn(…)`; a procedure only through `CALL`, whose result sets have
/// no declared shape, so procedures are listed as not callable.
const ROUTINES_SQL: &str = "
SELECT ROUTINE_NAME, ROUTINE_TYPE, SQL_DATA_ACCESS, IS_DETERMINISTIC, ROUTINE_COMMENT, SPECIFIC_NAME
FROM information_schema.ROUTINES
WHERE ROUTINE_SCHEMA = ?
ORDER BY ROUTINE_NAME";

/// Parameters of the schema's stored functions; position 0 is the return
/// value.
const PARAMETERS_SQL: &str = "
SELECT SPECIFIC_NAME, CAST(ORDINAL_POSITION AS SIGNED), PARAMETER_NAME, DATA_TYPE, DTD_IDENTIFIER
FROM information_schema.PARAMETERS
WHERE SPECIFIC_SCHEMA = ? AND ROUTINE_TYPE = 'FUNCTION'
ORDER BY SPECIFIC_NAME, ORDINAL_POSITION";

/// The database the connection URL selected.
pub(super) async fn current_database(conn: &mut MySqlConnection) -> Result<String, sqlx::Error> {
    let row = sqlx::query("SELECT DATABASE()").fetch_one(&mut *conn).await?;
    text(&row, 0)?.ok_or_else(|| {
        sqlx::Error::Configuration(
            "the MySQL URL selects no database: add it to the URL (mysql://host/<database>) or configure the schemas"
                .into(),
        )
    })
}

pub(super) async fn introspect(
    conn: &mut MySqlConnection,
    schemas: &[String],
) -> Result<(Vec<Table>, Routines), IntrospectError> {
    let version_row = sqlx::query(VERSION_SQL).fetch_one(&mut *conn).await?;
    let mariadb = text(&version_row, 0)?.unwrap_or_default().contains("MariaDB");

    let mut out = Vec::new();
    let mut routines = Routines::default();
    for schema in schemas {
        if sqlx::query(SCHEMA_SQL).bind(schema).fetch_optional(&mut *conn).await?.is_none() {
            return Err(IntrospectError::UnknownSchema(schema.clone()));
        }
        out.extend(introspect_schema(conn, schema, mariadb).await?);
        introspect_routines(conn, schema, &mut routines).await?;
    }
    out.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    Ok((out, routines))
}

async fn introspect_routines(
    conn: &mut MySqlConnection,
    schema: &str,
    routines: &mut Routines,
) -> Result<(), sqlx::Error> {
    // (position, name, data type, full type) by routine.
    let mut params: Grouped<String, (i64, Option<String>, String, String)> = Grouped::default();
    for row in sqlx::query(PARAMETERS_SQL).bind(schema).fetch_all(&mut *conn).await? {
        let position: i64 = row.try_get(1)?;
        params.push(req(&row, 0)?, (position, text(&row, 2)?, req(&row, 3)?, req(&row, 4)?));
    }
    let column = |name: String, data_type: &str, full_type: &str| Column {
        name,
        db_type: full_type.to_string(),
        kind: kind_of(&data_type.to_ascii_lowercase(), full_type, false),
        nullable: true,
        default: None,
        comment: None,
        representation: None,
        computed: None,
    };
    for row in sqlx::query(ROUTINES_SQL).bind(schema).fetch_all(&mut *conn).await? {
        let name = req(&row, 0)?;
        let key = (schema.to_string(), name.clone());
        if req(&row, 1)? != "FUNCTION" {
            routines.uncallable.push((key, "is a stored procedure; only stored functions can be called".into()));
            continue;
        }
        let specific = req(&row, 5)?;
        let declared = params.groups.iter().find(|(k, _)| *k == specific).map(|(_, v)| v.as_slice()).unwrap_or(&[]);
        let Some((_, _, ret_data, ret_full)) = declared.iter().find(|p| p.0 == 0) else { continue };
        let inputs = declared
            .iter()
            .filter(|p| p.0 > 0)
            .map(|(_, n, data, full)| column(n.clone().unwrap_or_default(), data, full))
            .collect();
        // Only a routine declared not to write (NO SQL, READS SQL DATA)
        // runs on GET; the default, CONTAINS SQL, may write.
        let volatility = match (req(&row, 2)?.as_str(), req(&row, 3)?.as_str()) {
            ("NO SQL" | "READS SQL DATA", "YES") => Volatility::Immutable,
            ("NO SQL" | "READS SQL DATA", _) => Volatility::Stable,
            _ => Volatility::Volatile,
        };
        let value = column(name.clone(), ret_data, ret_full);
        routines.functions.push(Function {
            schema: schema.to_string(),
            returns: Returns::Scalar(scalar_result(schema, &name, value)),
            name,
            params: inputs,
            variadic: false,
            set_returning: false,
            volatility,
            comment: text(&row, 4)?.filter(|c| !c.is_empty()),
            media_type: None,
        });
    }
    Ok(())
}

async fn introspect_schema(conn: &mut MySqlConnection, schema: &str, mariadb: bool) -> Result<Vec<Table>, sqlx::Error> {
    let mut tables: HashMap<String, Table> = HashMap::new();
    for row in sqlx::query(TABLES_SQL).bind(schema).fetch_all(&mut *conn).await? {
        let name = req(&row, 0)?;
        let is_view = match req(&row, 1)?.as_str() {
            "BASE TABLE" | "SYSTEM VERSIONED" => false,
            "VIEW" | "SYSTEM VIEW" => true,
            // Sequences (MariaDB), temporary tables.
            _ => continue,
        };
        // A view is updatable (and insertable, deletable) as the server
        // says; MySQL has no INSTEAD OF triggers.
        let writable = match is_view {
            false => Writable::ALL,
            true if text(&row, 3)?.as_deref() == Some("YES") => Writable::ALL,
            true => Writable::NONE,
        };
        // Views report the comment "VIEW".
        let comment = if is_view { None } else { text(&row, 2)?.filter(|c| !c.is_empty()) };
        tables.insert(
            name.clone(),
            Table {
                schema: schema.to_string(),
                name,
                is_view,
                writable,
                columns: Vec::new(),
                primary_key: Vec::new(),
                unique: Vec::new(),
                foreign_keys: Vec::new(),
                comment,
                computed: Vec::new(),
            },
        );
    }

    // MariaDB JSON columns: (table, column) pairs with a json_valid check.
    let mut json_columns: Vec<(String, String)> = Vec::new();
    if mariadb {
        for row in sqlx::query(MARIADB_CHECKS_SQL).bind(schema).fetch_all(&mut *conn).await? {
            if let (Some(table), Some(clause)) = (text(&row, 0)?, text(&row, 1)?)
                && let Some(column) = json_valid_column(&clause)
            {
                json_columns.push((table, column));
            }
        }
    }

    let mut columns: Vec<(String, i64, Column)> = Vec::new();
    for row in sqlx::query(COLUMNS_SQL).bind(schema).fetch_all(&mut *conn).await? {
        let table = req(&row, 0)?;
        let Some(t) = tables.get(&table) else { continue };
        let name = req(&row, 1)?;
        let ordinal: i64 = row.try_get_unchecked(2)?;
        let column_type = req(&row, 3)?;
        let data_type = req(&row, 4)?.to_ascii_lowercase();
        let is_json = data_type == "json"
            || (data_type == "longtext" && json_columns.iter().any(|(jt, jc)| *jt == table && *jc == name));
        let kind = kind_of(&data_type, &column_type, is_json);
        // MariaDB reports "NULL" for a nullable column without a default;
        // view columns report their base column's default (or a bogus 0 for
        // auto-increment keys), which the view itself does not have.
        let default = if t.is_view { None } else { text(&row, 6)?.filter(|d| d != "NULL") };
        let column = Column {
            name,
            db_type: column_type,
            kind,
            nullable: req(&row, 5)? == "YES",
            default,
            comment: text(&row, 7)?.filter(|c| !c.is_empty()),
            representation: None,
            computed: None,
        };
        columns.push((table, ordinal, column));
    }
    columns.sort_by_key(|(_, ordinal, _)| *ordinal);
    for (table, _, column) in columns {
        if let Some(t) = tables.get_mut(&table) {
            t.columns.push(column);
        }
    }

    // (table, index) -> [(seq, column)]; an expression part poisons the index.
    let mut indexes: Grouped<(String, String), (i64, Option<String>)> = Grouped::default();
    for row in sqlx::query(INDEXES_SQL).bind(schema).fetch_all(&mut *conn).await? {
        let key = (req(&row, 0)?, req(&row, 1)?);
        indexes.push(key, (row.try_get_unchecked::<i64, _>(3)?, text(&row, 2)?));
    }
    for ((table, index), mut parts) in indexes.groups {
        let Some(t) = tables.get_mut(&table) else { continue };
        parts.sort_by_key(|(seq, _)| *seq);
        let Some(columns) = parts.into_iter().map(|(_, c)| c).collect::<Option<Vec<String>>>() else { continue };
        if index == "PRIMARY" {
            t.primary_key = columns;
        } else if !t.unique.contains(&columns) {
            t.unique.push(columns);
        }
    }
    for t in tables.values_mut() {
        let pk = t.primary_key.clone();
        t.unique.retain(|u| *u != pk);
    }

    // (table, constraint) -> [(position, column, referenced column)].
    // (table, constraint, referenced schema, referenced table), the same on
    // every row of a constraint -> (position, column, referenced column).
    type FkKey = (String, String, String, String);
    let mut foreign_keys: Grouped<FkKey, (i64, String, String)> = Grouped::default();
    for row in sqlx::query(FOREIGN_KEYS_SQL).bind(schema).fetch_all(&mut *conn).await? {
        let key = (req(&row, 0)?, req(&row, 1)?, req(&row, 4)?, req(&row, 5)?);
        foreign_keys.push(key, (row.try_get_unchecked::<i64, _>(3)?, req(&row, 2)?, req(&row, 6)?));
    }
    for ((table, name, referenced_schema, referenced_table), mut parts) in foreign_keys.groups {
        let Some(t) = tables.get_mut(&table) else { continue };
        parts.sort_by_key(|(position, _, _)| *position);
        let (columns, referenced_columns) = parts.into_iter().map(|(_, c, r)| (c, r)).unzip();
        t.foreign_keys.push(ForeignKey { name, columns, referenced_schema, referenced_table, referenced_columns });
    }
    // information_schema sorts case-insensitively; use the byte order
    // PostgreSQL and SQLite introspection use.
    for t in tables.values_mut() {
        t.foreign_keys.sort_by(|a, b| a.name.cmp(&b.name));
    }

    let mut tables: Vec<Table> = tables.into_values().collect();
    let direct = view_origins(conn, schema).await?;
    view_keys::inherit_by_name(&mut tables, &direct);
    Ok(tables)
}

/// Where views' columns come from: (view, column) -> (relation, column),
/// within `schema`. Querying a view reports the view itself as its columns'
/// table, but preparing its stored query (never running it) reports the
/// relations it reads; a view of a view reports that view, and
/// `view_keys` follows the chain.
async fn view_origins(
    conn: &mut MySqlConnection,
    schema: &str,
) -> Result<HashMap<(String, String), (String, String)>, sqlx::Error> {
    let mut direct = HashMap::new();
    let prefix = format!("{schema}.");
    for row in sqlx::query(VIEWS_SQL).bind(schema).fetch_all(&mut *conn).await? {
        let (view, Some(definition)) = (req(&row, 0)?, text(&row, 1)?) else { continue };
        // The server's own text of a view it accepted, prepared and not
        // executed. A view the connection may not read, or whose tables
        // are gone, fails to prepare: it shows no table's columns.
        let Ok(statement) = conn.prepare(AssertSqlSafe(definition).into_sql_str()).await else { continue };
        for column in statement.columns() {
            let origin = column.origin();
            let Some(origin) = origin.table_column() else { continue };
            // Relations of other schemas are not this schema's to relate.
            let Some(table) = origin.table.strip_prefix(&prefix) else { continue };
            direct.insert((view.clone(), column.name().to_string()), (table.to_string(), origin.name.to_string()));
        }
    }
    Ok(direct)
}

/// Rows grouped by a key, groups in the order their key first appeared.
struct Grouped<K, V> {
    groups: Vec<(K, Vec<V>)>,
    index: HashMap<K, usize>,
}

impl<K, V> Default for Grouped<K, V> {
    fn default() -> Self {
        Grouped { groups: Vec::new(), index: HashMap::new() }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V> Grouped<K, V> {
    fn push(&mut self, key: K, value: V) {
        match self.index.get(&key) {
            Some(&i) => self.groups[i].1.push(value),
            None => {
                self.index.insert(key.clone(), self.groups.len());
                self.groups.push((key, vec![value]));
            }
        }
    }
}

/// A text column decoded from its bytes; `None` for SQL NULL.
fn text(row: &MySqlRow, index: usize) -> Result<Option<String>, sqlx::Error> {
    let raw: Option<Vec<u8>> = row.try_get_unchecked(index)?;
    Ok(raw.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// A text column that must not be NULL.
fn req(row: &MySqlRow, index: usize) -> Result<String, sqlx::Error> {
    text(row, index)?.ok_or_else(|| sqlx::Error::ColumnDecode {
        index: index.to_string(),
        source: "unexpected NULL in information_schema".into(),
    })
}

/// The column a MariaDB `json_valid(`col`)` check clause validates.
fn json_valid_column(clause: &str) -> Option<String> {
    let inner = clause.trim().strip_prefix("json_valid(")?.strip_suffix(')')?.trim();
    let quoted = inner.strip_prefix('`')?.strip_suffix('`')?;
    if quoted.replace("``", "").contains('`') {
        return None;
    }
    Some(quoted.replace("``", "`"))
}

/// Maps `DATA_TYPE` / `COLUMN_TYPE` to a value kind.
fn kind_of(data_type: &str, column_type: &str, is_json: bool) -> ValueKind {
    if is_json {
        return ValueKind::Json;
    }
    match data_type {
        "tinyint" if column_type.to_ascii_lowercase().starts_with("tinyint(1)") => ValueKind::Boolean,
        "bool" | "boolean" => ValueKind::Boolean,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => ValueKind::Integer,
        "float" | "double" | "real" | "double precision" => ValueKind::Float,
        "decimal" | "numeric" | "fixed" => ValueKind::Numeric,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => ValueKind::Text,
        "json" => ValueKind::Json,
        "enum" => ValueKind::Enum(enum_labels(column_type)),
        "uuid" => ValueKind::Uuid,
        "date" => ValueKind::Date,
        "time" => ValueKind::Time,
        "datetime" => ValueKind::Timestamp,
        // Stored as UTC and shown in the session's zone: an instant.
        "timestamp" => ValueKind::TimestampTz,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => ValueKind::Bytes,
        _ => ValueKind::Other,
    }
}

/// Labels of `enum('a','it''s','c\\d')`, in declaration order.
fn enum_labels(column_type: &str) -> Vec<String> {
    let Some(open) = column_type.find('(') else { return Vec::new() };
    let mut labels = Vec::new();
    let mut chars = column_type[open + 1..].chars().peekable();
    loop {
        // Skip to the next opening quote; stop at the closing parenthesis.
        match chars.next() {
            Some('\'') => {}
            Some(')') | None => break,
            Some(_) => continue,
        }
        let mut label = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                '\'' => break,
                '\\' => match chars.next() {
                    Some('n') => label.push('\n'),
                    Some('t') => label.push('\t'),
                    Some('r') => label.push('\r'),
                    Some('0') => label.push('\0'),
                    Some('Z') => label.push('\u{1a}'),
                    Some(other) => label.push(other),
                    None => break,
                },
                other => label.push(other),
            }
        }
        labels.push(label);
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_labels_unescape_quotes_and_backslashes() {
        assert_eq!(enum_labels("enum('a','it''s','c\\\\d')"), vec!["a", "it's", "c\\d"]);
        assert_eq!(enum_labels("enum('x,y','(z)')"), vec!["x,y", "(z)"]);
        assert_eq!(enum_labels("enum('')"), vec![""]);
    }

    #[test]
    fn mariadb_json_checks_name_their_column() {
        assert_eq!(json_valid_column("json_valid(`data`)").as_deref(), Some("data"));
        assert_eq!(json_valid_column("json_valid(`we``ird`)").as_deref(), Some("we`ird"));
        assert_eq!(json_valid_column("json_valid(`a`) and `a` <> ''"), None);
        assert_eq!(json_valid_column("`x` > 0"), None);
        assert_eq!(json_valid_column("json_valid(`a`) and json_valid(`b`)"), None);
    }

    #[test]
    fn mysql_types_map_to_kinds() {
        assert_eq!(kind_of("tinyint", "tinyint(1)", false), ValueKind::Boolean);
        assert_eq!(kind_of("tinyint", "tinyint(4)", false), ValueKind::Integer);
        assert_eq!(kind_of("char", "char(36)", false), ValueKind::Text);
        assert_eq!(kind_of("longtext", "longtext", true), ValueKind::Json);
        assert_eq!(kind_of("decimal", "decimal(10,2)", false), ValueKind::Numeric);
        assert_eq!(kind_of("set", "set('a','b')", false), ValueKind::Other);
        assert_eq!(kind_of("year", "year(4)", false), ValueKind::Other);
    }
}
