//! PostgreSQL introspection from the system catalogs.
//!
//! Six catalog queries cover every exposed schema at once, whatever the
//! number of tables: the schemas themselves, relations, columns, the types
//! those columns and the functions use (resolved through domains and
//! arrays), keys (constraints and unique indexes), and functions.

use std::collections::HashMap;

use sqlx::{PgConnection, Row};

use super::pg_views;
use super::{
    Column, ComputedBy, ForeignKey, Function, IntrospectError, MediaHandler, Relationship, Representation, Returns,
    Routines, Table, ValueKind, Volatility, Writable, result_rows, scalar_result,
};

/// Schemas that exist among the requested ones.
const SCHEMAS_SQL: &str = "SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1::text[]::name[])";

/// Tables (`r`), partitioned tables (`p`), foreign tables (`f`), views (`v`)
/// and materialized views (`m`).
const RELATIONS_SQL: &str = "
SELECT c.oid::int8 AS oid, n.nspname::text AS schema, c.relname::text AS name,
       c.relkind::text AS kind, obj_description(c.oid, 'pg_class') AS comment,
       pg_relation_is_updatable(c.oid::regclass, true) AS updatable
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1::text[]::name[])
  AND c.relkind IN ('r', 'p', 'f', 'v', 'm')";

/// Live columns in ordinal order, of relations and of the composite types
/// functions may return (`c`). Generated columns report no default: their
/// `pg_attrdef` entry is the generation expression, not a default.
const COLUMNS_SQL: &str = "
SELECT a.attrelid::int8 AS rel, a.attnum::int4 AS attnum, a.attname::text AS name,
       format_type(a.atttypid, a.atttypmod) AS db_type, a.atttypid::int8 AS type_oid,
       a.attnotnull AS not_null,
       CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END AS dflt,
       col_description(a.attrelid, a.attnum::int) AS comment
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = ANY($1::text[]::name[])
  AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'c')
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum";

/// Every type used by those columns and by functions' parameters and
/// results, plus the element types of arrays and the base types of
/// domains, transitively.
const TYPES_SQL: &str = "
WITH RECURSIVE used(oid) AS (
    SELECT DISTINCT a.atttypid
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY($1::text[]::name[])
      AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'c')
      AND a.attnum > 0 AND NOT a.attisdropped
  UNION
    SELECT x.oid
    FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
    CROSS JOIN LATERAL unnest(COALESCE(p.proallargtypes, p.proargtypes::oid[]) || p.prorettype) AS x(oid)
    WHERE n.nspname = ANY($1::text[]::name[])
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

/// Functions and procedures. Arguments come as parallel arrays in
/// declaration order (`proallargtypes` lists OUT parameters too; it is
/// NULL when every parameter is IN). Functions of extensions are left out:
/// they belong to the extension, not to the application's API.
const FUNCTIONS_SQL: &str = "
SELECT n.nspname::text AS schema, p.proname::text AS name, p.prokind::text AS kind,
       p.provolatile::text AS volatility, p.proretset AS set_returning,
       p.pronargdefaults::int4 AS n_defaults,
       COALESCE(p.proargnames, ARRAY[]::text[])::text[] AS arg_names,
       COALESCE(p.proargmodes::text[], ARRAY[]::text[]) AS arg_modes,
       ARRAY(SELECT x::int8 FROM unnest(COALESCE(p.proallargtypes, p.proargtypes::oid[]))
             WITH ORDINALITY AS u(x, i) ORDER BY i) AS arg_types,
       ARRAY(SELECT format_type(x, NULL) FROM unnest(COALESCE(p.proallargtypes, p.proargtypes::oid[]))
             WITH ORDINALITY AS u(x, i) ORDER BY i) AS arg_type_names,
       p.prorettype::int8 AS ret_type, format_type(p.prorettype, NULL) AS ret_type_name,
       rt.typtype::text AS ret_typtype, rt.typrelid::int8 AS ret_rel,
       CASE WHEN rt.typtype = 'd' AND rt.typname LIKE '%/%' THEN rt.typname::text END AS media_type,
       (SELECT t.typrelid::int8 FROM pg_type t WHERE t.oid = p.proargtypes[0]) AS first_arg_rel,
       p.prorows::float8 AS rows_estimate,
       obj_description(p.oid, 'pg_proc') AS comment
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_type rt ON rt.oid = p.prorettype
WHERE n.nspname = ANY($1::text[]::name[])
  AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY 1, 2, p.oid";

/// Aggregates of one table's rows whose result is a domain named like a
/// media type: PostgREST's media type handlers for tables and views.
const HANDLERS_SQL: &str = "
SELECT n.nspname::text AS schema, p.proname::text AS name, rt.typname::text AS media_type,
       (SELECT t.typrelid::int8 FROM pg_type t WHERE t.oid = p.proargtypes[0]) AS rel
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_type rt ON rt.oid = p.prorettype
WHERE n.nspname = ANY($1::text[]::name[]) AND p.prokind = 'a' AND p.pronargs = 1
  AND rt.typtype = 'd' AND rt.typname LIKE '%/%'
ORDER BY 1, 2";

/// Casts between a domain and json or text made with a function:
/// PostgREST's domain representations (json, as its documentation writes
/// them). PostgreSQL ignores casts on domains, so the functions are
/// called directly.
const DOMAIN_CASTS_SQL: &str = "
SELECT c.castsource::int8 AS source, c.casttarget::int8 AS target,
       st.typtype::text AS source_typtype, tt.typtype::text AS target_typtype,
       st.typname::text AS source_name,
       pn.nspname::text AS fn_schema, p.proname::text AS fn_name
FROM pg_cast c
JOIN pg_proc p ON p.oid = c.castfunc
JOIN pg_namespace pn ON pn.oid = p.pronamespace
JOIN pg_type st ON st.oid = c.castsource
JOIN pg_type tt ON tt.oid = c.casttarget
WHERE (st.typtype = 'd' AND tt.oid = 'json'::regtype)
   OR (tt.typtype = 'd' AND st.oid IN ('text'::regtype, 'json'::regtype))";

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

pub(super) async fn introspect(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<(Vec<Table>, Routines), IntrospectError> {
    let existing: Vec<String> = sqlx::query_scalar(SCHEMAS_SQL).bind(schemas).fetch_all(&mut *conn).await?;
    if let Some(missing) = schemas.iter().find(|s| !existing.contains(s)) {
        return Err(IntrospectError::UnknownSchema(missing.clone()));
    }

    let mut tables: HashMap<i64, Table> = HashMap::new();
    for row in sqlx::query(RELATIONS_SQL).bind(schemas).fetch_all(&mut *conn).await? {
        let kind: String = row.try_get("kind")?;
        // Bits of the command types PostgreSQL can run on the relation
        // (auto-updatable, or through INSTEAD OF triggers or rules).
        let updatable: i32 = row.try_get("updatable")?;
        let writable = Writable { insert: updatable & 8 != 0, update: updatable & 4 != 0, delete: updatable & 16 != 0 };
        tables.insert(
            row.try_get("oid")?,
            Table {
                schema: row.try_get("schema")?,
                name: row.try_get("name")?,
                is_view: kind == "v" || kind == "m",
                writable,
                columns: Vec::new(),
                primary_key: Vec::new(),
                unique: Vec::new(),
                foreign_keys: Vec::new(),
                comment: row.try_get("comment")?,
                computed: Vec::new(),
            },
        );
    }

    let mut types: HashMap<i64, PgType> = HashMap::new();
    for row in sqlx::query(TYPES_SQL).bind(schemas).fetch_all(&mut *conn).await? {
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

    let representations = domain_representations(conn).await?;

    // Columns of composite types (not relations) only serve as function results.
    let mut composites: HashMap<i64, Vec<Column>> = HashMap::new();
    let mut attnames: HashMap<(i64, i32), String> = HashMap::new();
    for row in sqlx::query(COLUMNS_SQL).bind(schemas).fetch_all(&mut *conn).await? {
        let rel: i64 = row.try_get("rel")?;
        attnames.insert((rel, row.try_get("attnum")?), row.try_get("name")?);
        let not_null: bool = row.try_get("not_null")?;
        let type_oid: i64 = row.try_get("type_oid")?;
        let column = Column {
            name: row.try_get("name")?,
            db_type: row.try_get("db_type")?,
            kind: kind_of(&types, type_oid, 0),
            nullable: !not_null,
            default: row.try_get("dflt")?,
            comment: row.try_get("comment")?,
            representation: representations.get(&type_oid).cloned().map(Box::new),
            computed: None,
        };
        match tables.get_mut(&rel) {
            Some(table) => table.columns.push(column),
            None => composites.entry(rel).or_default().push(column),
        }
    }

    for row in sqlx::query(KEYS_SQL).bind(schemas).fetch_all(&mut *conn).await? {
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

    pg_views::add_view_foreign_keys(conn, &mut tables, &attnames).await?;
    for table in tables.values_mut() {
        // A unique index on exactly the primary key columns adds nothing.
        let pk = table.primary_key.clone();
        table.unique.retain(|u| *u != pk);
    }
    let mut routines = functions(conn, schemas, &types, &mut tables, &composites).await?;
    for row in sqlx::query(HANDLERS_SQL).bind(schemas).fetch_all(&mut *conn).await? {
        let Some(table) = row.try_get::<Option<i64>, _>("rel")?.and_then(|rel| tables.get(&rel)) else { continue };
        let handler = MediaHandler {
            media_type: row.try_get("media_type")?,
            aggregate_schema: row.try_get("schema")?,
            aggregate: row.try_get("name")?,
        };
        routines.handlers.push(((table.schema.clone(), table.name.clone()), handler));
    }
    let mut tables: Vec<Table> = tables.into_values().collect();
    tables.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    Ok((tables, routines))
}

/// The representation of each domain that has casts to or from json or
/// text, by the domain's type oid.
async fn domain_representations(conn: &mut PgConnection) -> Result<HashMap<i64, Representation>, IntrospectError> {
    let mut out: HashMap<i64, Representation> = HashMap::new();
    for row in sqlx::query(DOMAIN_CASTS_SQL).fetch_all(&mut *conn).await? {
        let function = Some((row.try_get("fn_schema")?, row.try_get("fn_name")?));
        if row.try_get::<String, _>("source_typtype")? == "d" {
            out.entry(row.try_get("source")?).or_default().output = function;
        } else if row.try_get::<String, _>("source_name")? == "text" {
            out.entry(row.try_get("target")?).or_default().filter = function;
        } else {
            out.entry(row.try_get("target")?).or_default().input = function;
        }
    }
    Ok(out)
}

/// Reads the functions, deciding for each how a call's result is read.
async fn functions(
    conn: &mut PgConnection,
    schemas: &[String],
    types: &HashMap<i64, PgType>,
    tables: &mut HashMap<i64, Table>,
    composites: &HashMap<i64, Vec<Column>>,
) -> Result<Routines, IntrospectError> {
    let mut routines = Routines::default();
    for row in sqlx::query(FUNCTIONS_SQL).bind(schemas).fetch_all(&mut *conn).await? {
        let schema: String = row.try_get("schema")?;
        let name: String = row.try_get("name")?;
        let key = (schema.clone(), name.clone());
        if row.try_get::<String, _>("kind")? == "p" {
            routines.uncallable.push((key, "is a procedure; only functions can be called".into()));
            continue;
        }
        let arg_names: Vec<String> = row.try_get("arg_names")?;
        let arg_modes: Vec<String> = row.try_get("arg_modes")?;
        let arg_types: Vec<i64> = row.try_get("arg_types")?;
        let arg_type_names: Vec<String> = row.try_get("arg_type_names")?;
        let n_defaults = row.try_get::<i32, _>("n_defaults")?.max(0) as usize;
        let mut params = Vec::new();
        let mut outputs = Vec::new();
        let mut variadic = false;
        for (i, (oid, db_type)) in arg_types.iter().zip(&arg_type_names).enumerate() {
            let mode = arg_modes.get(i).map_or("i", String::as_str);
            let column = Column {
                name: arg_names.get(i).cloned().unwrap_or_default(),
                db_type: db_type.clone(),
                kind: kind_of(types, *oid, 0),
                nullable: true,
                default: None,
                comment: None,
                representation: None,
                computed: None,
            };
            if matches!(mode, "o" | "b" | "t") {
                outputs.push(column.clone());
            }
            if matches!(mode, "i" | "b" | "v") {
                variadic |= mode == "v";
                params.push(column);
            }
        }
        // The last `n_defaults` inputs may be left out.
        let first_default = params.len().saturating_sub(n_defaults);
        for p in &mut params[first_default..] {
            p.default = Some("DEFAULT".into());
        }
        let ret_typtype: String = row.try_get("ret_typtype")?;
        let ret_type_name: String = row.try_get("ret_type_name")?;
        let set_returning: bool = row.try_get("set_returning")?;
        // One parameter of a table's row type and one value back: a
        // computed field of that table (PostgREST's "Computed Fields").
        let row_table = row.try_get::<Option<i64>, _>("first_arg_rel")?.filter(|_| params.len() == 1);
        let ret_rel: i64 = row.try_get("ret_rel")?;
        let returned_table =
            tables.get(&ret_rel).filter(|_| ret_typtype == "c").map(|t| (t.schema.clone(), t.name.clone()));
        if let Some(table) = row_table.and_then(|rel| tables.get_mut(&rel)) {
            let by = ComputedBy {
                function_schema: schema.clone(),
                function: name.clone(),
                row_schema: table.schema.clone(),
                row_type: table.name.clone(),
            };
            if let Some(target) = returned_table {
                // Rows of a table back: a computed relationship (PostgREST's
                // "Computed Relationships"), to-one unless a set of more
                // than one row is declared.
                let to_one = !set_returning || row.try_get::<f64, _>("rows_estimate")? == 1.0;
                let from = (table.schema.clone(), table.name.clone());
                routines.relationships.push((from, Relationship::computed(by, target, to_one)));
            } else if !set_returning && !matches!(ret_typtype.as_str(), "c" | "p") && table.readable(&name).is_none() {
                table.computed.push(Column {
                    name: name.clone(),
                    db_type: ret_type_name.clone(),
                    kind: kind_of(types, row.try_get("ret_type")?, 0),
                    nullable: true,
                    default: None,
                    comment: row.try_get("comment")?,
                    representation: None,
                    computed: Some(Box::new(by)),
                });
            }
        }
        // Unnamed parameters cannot be passed by name; only a single
        // unnamed json/jsonb parameter (the whole body) is callable.
        let unnamed = params.iter().filter(|p| p.name.is_empty()).count();
        if unnamed > 0 && !(params.len() == 1 && params[0].kind == ValueKind::Json) {
            routines.uncallable.push((key, "has unnamed parameters; name them to call it by name".into()));
            continue;
        }
        let returns = if ret_type_name == "void" {
            Returns::Void
        } else if ret_typtype == "c" {
            if let Some(table) = tables.get(&ret_rel) {
                Returns::Rows(table.clone())
            } else if let Some(columns) = composites.get(&ret_rel) {
                Returns::Rows(result_rows(&schema, &name, columns.clone()))
            } else {
                routines.uncallable.push((key, format!("returns {ret_type_name}, a type outside the exposed schemas")));
                continue;
            }
        } else if ret_type_name == "record" && !outputs.is_empty() {
            Returns::Rows(result_rows(&schema, &name, outputs))
        } else if ret_typtype == "p" {
            routines.uncallable.push((key, format!("returns {ret_type_name}, which has no JSON form")));
            continue;
        } else {
            let value = Column {
                name: name.clone(),
                db_type: ret_type_name,
                kind: kind_of(types, row.try_get("ret_type")?, 0),
                nullable: true,
                default: None,
                comment: None,
                representation: None,
                computed: None,
            };
            Returns::Scalar(scalar_result(&schema, &name, value))
        };
        let volatility = match row.try_get::<String, _>("volatility")?.as_str() {
            "i" => Volatility::Immutable,
            "s" => Volatility::Stable,
            _ => Volatility::Volatile,
        };
        routines.functions.push(Function {
            schema,
            name,
            params,
            variadic,
            returns,
            set_returning,
            volatility,
            comment: row.try_get("comment")?,
            media_type: row.try_get("media_type")?,
        });
    }
    Ok(routines)
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
