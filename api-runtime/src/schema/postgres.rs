//! PostgreSQL introspection from the system catalogs.
//!
//! Five catalog queries cover every exposed schema at once, whatever the
//! number of tables: the schemas themselves, relations, columns, the types
//! those columns use (resolved through domains and arrays), and keys
//! (constraints and unique indexes).

use std::collections::HashMap;

use sqlx::{PgPool, Row};

use super::{Column, ForeignKey, IntrospectError, Table, ValueKind};

/// Schemas that exist among the requested ones.
const SCHEMAS_SQL: &str = "SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1::text[]::name[])";

/// Tables (`r`), partitioned tables (`p`), foreign tables (`f`), views (`v`)
/// and materialized views (`m`).
const RELATIONS_SQL: &str = "
SELECT c.oid::int8 AS oid, n.nspname::text AS schema, c.relname::text AS name,
       c.relkind::text AS kind, obj_description(c.oid, 'pg_class') AS comment
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1::text[]::name[])
  AND c.relkind IN ('r', 'p', 'f', 'v', 'm')";

/// Live columns in ordinal order. Generated columns report no default: their
/// `pg_attrdef` entry is the generation expression, not a default.
const COLUMNS_SQL: &str = "
SELECT a.attrelid::int8 AS rel, a.attname::text AS name,
       format_type(a.atttypid, a.atttypmod) AS db_type, a.atttypid::int8 AS type_oid,
       a.attnotnull AS not_null,
       CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END AS dflt,
       col_description(a.attrelid, a.attnum::int) AS comment
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = ANY($1::text[]::name[])
  AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum";

/// Every type used by those columns, plus the element types of arrays and
/// the base types of domains, transitively.
const TYPES_SQL: &str = "
WITH RECURSIVE used(oid) AS (
    SELECT DISTINCT a.atttypid
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY($1::text[]::name[])
      AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
      AND a.attnum > 0 AND NOT a.attisdropped
  UNION
    SELECT x.oid
    FROM used u
    JOIN pg_type t ON t.oid = u.oid
    CROSS JOIN LATERAL (VALUES (t.typelem), (t.typbasetype)) AS x(oid)
    WHERE x.oid <> 0
)
SELECT t.oid::int8 AS oid, t.typname::text AS name, tn.nspname::text AS schema,
       t.typtype::text AS typtype, t.typelem::int8 AS elem, t.typbasetype::int8 AS base,
       (t.typlen = -1 AND t.typelem <> 0) AS is_array,
       CASE WHEN t.typtype = 'e' THEN
           ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
       END AS labels
FROM used u
JOIN pg_type t ON t.oid = u.oid
JOIN pg_namespace tn ON tn.oid = t.typnamespace";

/// Primary keys and foreign keys with their columns in key order, and
/// unique indexes (which include the indexes behind unique constraints)
/// on plain columns, without a predicate.
const KEYS_SQL: &str = "
SELECT con.conrelid::int8 AS rel, con.conname::text AS name, con.contype::text AS kind,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord) AS columns,
       fn.nspname::text AS ref_schema, fc.relname::text AS ref_table,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord) AS ref_columns
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE n.nspname = ANY($1::text[]::name[]) AND con.contype IN ('p', 'f')
UNION ALL
SELECT i.indrelid::int8, ic.relname::text, 'u',
       ARRAY(SELECT a.attname::text
             FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE k.ord <= i.indnkeyatts
             ORDER BY k.ord),
       NULL, NULL, NULL
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE n.nspname = ANY($1::text[]::name[])
  AND i.indisunique AND NOT i.indisprimary AND i.indisvalid
  AND i.indpred IS NULL AND i.indexprs IS NULL
ORDER BY 1, 3, 2";

/// A type as far as the value kind needs it.
struct PgType {
    name: String,
    schema: String,
    typtype: String,
    elem: i64,
    base: i64,
    is_array: bool,
    labels: Option<Vec<String>>,
}

pub(super) async fn introspect(pool: &PgPool, schemas: &[String]) -> Result<Vec<Table>, IntrospectError> {
    let existing: Vec<String> = sqlx::query_scalar(SCHEMAS_SQL).bind(schemas).fetch_all(pool).await?;
    if let Some(missing) = schemas.iter().find(|s| !existing.contains(s)) {
        return Err(IntrospectError::UnknownSchema(missing.clone()));
    }

    let mut tables: HashMap<i64, Table> = HashMap::new();
    for row in sqlx::query(RELATIONS_SQL).bind(schemas).fetch_all(pool).await? {
        let kind: String = row.try_get("kind")?;
        tables.insert(
            row.try_get("oid")?,
            Table {
                schema: row.try_get("schema")?,
                name: row.try_get("name")?,
                is_view: kind == "v" || kind == "m",
                columns: Vec::new(),
                primary_key: Vec::new(),
                unique: Vec::new(),
                foreign_keys: Vec::new(),
                comment: row.try_get("comment")?,
            },
        );
    }

    let mut types: HashMap<i64, PgType> = HashMap::new();
    for row in sqlx::query(TYPES_SQL).bind(schemas).fetch_all(pool).await? {
        types.insert(
            row.try_get("oid")?,
            PgType {
                name: row.try_get("name")?,
                schema: row.try_get("schema")?,
                typtype: row.try_get("typtype")?,
                elem: row.try_get("elem")?,
                base: row.try_get("base")?,
                is_array: row.try_get("is_array")?,
                labels: row.try_get("labels")?,
            },
        );
    }

    for row in sqlx::query(COLUMNS_SQL).bind(schemas).fetch_all(pool).await? {
        let Some(table) = tables.get_mut(&row.try_get::<i64, _>("rel")?) else { continue };
        let not_null: bool = row.try_get("not_null")?;
        table.columns.push(Column {
            name: row.try_get("name")?,
            db_type: row.try_get("db_type")?,
            kind: kind_of(&types, row.try_get("type_oid")?, 0),
            nullable: !not_null,
            default: row.try_get("dflt")?,
            comment: row.try_get("comment")?,
        });
    }

    for row in sqlx::query(KEYS_SQL).bind(schemas).fetch_all(pool).await? {
        let Some(table) = tables.get_mut(&row.try_get::<i64, _>("rel")?) else { continue };
        let columns: Vec<String> = row.try_get("columns")?;
        match row.try_get::<String, _>("kind")?.as_str() {
            "p" => table.primary_key = columns,
            "f" => {
                let (Some(referenced_schema), Some(referenced_table)) =
                    (row.try_get("ref_schema")?, row.try_get("ref_table")?)
                else {
                    continue;
                };
                table.foreign_keys.push(ForeignKey {
                    name: row.try_get("name")?,
                    columns,
                    referenced_schema,
                    referenced_table,
                    referenced_columns: row.try_get::<Option<Vec<String>>, _>("ref_columns")?.unwrap_or_default(),
                });
            }
            _ => {
                if !columns.is_empty() && !table.unique.contains(&columns) {
                    table.unique.push(columns);
                }
            }
        }
    }

    let mut tables: Vec<Table> = tables.into_values().collect();
    for table in &mut tables {
        // A unique index on exactly the primary key columns adds nothing.
        let pk = table.primary_key.clone();
        table.unique.retain(|u| *u != pk);
    }
    tables.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    Ok(tables)
}

/// Maps a type to its value kind, looking through domains and arrays.
fn kind_of(types: &HashMap<i64, PgType>, oid: i64, depth: u8) -> ValueKind {
    let Some(t) = types.get(&oid) else { return ValueKind::Other };
    if depth > 16 {
        return ValueKind::Other;
    }
    if t.typtype == "d" && t.base != 0 {
        return kind_of(types, t.base, depth + 1);
    }
    if t.is_array {
        return ValueKind::Array(Box::new(kind_of(types, t.elem, depth + 1)));
    }
    if t.typtype == "e" {
        return ValueKind::Enum(t.labels.clone().unwrap_or_default());
    }
    // citext is an extension type and lives in whatever schema it was
    // installed into; everything else must be the built-in type.
    if t.name == "citext" {
        return ValueKind::Text;
    }
    if t.schema != "pg_catalog" {
        return ValueKind::Other;
    }
    match t.name.as_str() {
        "int2" | "int4" | "int8" => ValueKind::Integer,
        "float4" | "float8" => ValueKind::Float,
        "numeric" => ValueKind::Numeric,
        "bool" => ValueKind::Boolean,
        "text" | "varchar" | "bpchar" | "char" | "name" => ValueKind::Text,
        "json" | "jsonb" => ValueKind::Json,
        "uuid" => ValueKind::Uuid,
        "date" => ValueKind::Date,
        "time" | "timetz" => ValueKind::Time,
        "timestamp" => ValueKind::Timestamp,
        "timestamptz" => ValueKind::TimestampTz,
        "bytea" => ValueKind::Bytes,
        _ => ValueKind::Other,
    }
}
