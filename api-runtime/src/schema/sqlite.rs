//! SQLite introspection with the table-valued pragma functions.
//!
//! A "schema" is an attached database name, normally `main`; every pragma
//! function takes it as its last argument, so no name is ever spliced into
//! SQL text. One query lists the tables of a schema, then three per table
//! read columns, unique indexes and foreign keys.
//!
//! `PRAGMA foreign_key_list` does not report constraint names, so they are
//! read from the `CREATE TABLE` text (`CONSTRAINT fk_x FOREIGN KEY ...` or a
//! column's `CONSTRAINT fk_x REFERENCES ...`); unnamed keys get the name
//! PostgreSQL would give them, `{table}_{columns}_fkey`.

use std::collections::HashMap;

use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Column as _, Executor, Row, SqlSafeStr, SqliteConnection, Statement as _};

use super::{Column, ForeignKey, IntrospectError, Table, ValueKind, Writable, view_keys};
use crate::db::quote_doubling;

const DATABASES_SQL: &str = "SELECT name FROM pragma_database_list";

/// Tables, views and virtual tables; not shadow tables nor SQLite's own.
const TABLES_SQL: &str = r"
SELECT name, type, wr FROM pragma_table_list
WHERE schema = ?1 AND type IN ('table', 'view', 'virtual') AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
ORDER BY name";

/// Columns including generated ones (hidden 2 and 3), not the hidden
/// columns of virtual tables (hidden 1).
const COLUMNS_SQL: &str = r#"
SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_xinfo(?1, ?2)
WHERE hidden <> 1
ORDER BY cid"#;

/// Unique indexes other than the primary key's, without a WHERE clause.
/// Expression parts have no column name.
const INDEXES_SQL: &str = r#"
SELECT il.name AS index_name, ii.name AS column_name
FROM pragma_index_list(?1, ?2) AS il
JOIN pragma_index_info(il.name, ?2) AS ii
WHERE il."unique" = 1 AND il.origin <> 'pk' AND il.partial = 0
ORDER BY il.name, ii.seqno"#;

/// The `CREATE TABLE` statements, for constraint names. `sqlite_schema`
/// cannot take the schema as an argument, so only `main` and `temp` have a
/// query (a fixed text each); tables of other attached databases get
/// synthesized names.
const MAIN_TABLE_SQL_SQL: &str = "SELECT name, sql FROM main.sqlite_schema WHERE type = 'table'";
const TEMP_TABLE_SQL_SQL: &str = "SELECT name, sql FROM temp.sqlite_schema WHERE type = 'table'";
const MAIN_TRIGGERS_SQL: &str = "SELECT tbl_name, sql FROM main.sqlite_schema WHERE type = 'trigger'";
const TEMP_TRIGGERS_SQL: &str = "SELECT tbl_name, sql FROM temp.sqlite_schema WHERE type = 'trigger'";

/// Foreign keys in declaration order (SQLite numbers them backwards).
const FOREIGN_KEYS_SQL: &str = r#"
SELECT id, "table", "from", "to" FROM pragma_foreign_key_list(?1, ?2)
ORDER BY id DESC, seq"#;

pub(super) async fn introspect(conn: &mut SqliteConnection, schemas: &[String]) -> Result<Vec<Table>, IntrospectError> {
    let attached: Vec<String> = sqlx::query_scalar(DATABASES_SQL).fetch_all(&mut *conn).await?;
    if let Some(missing) = schemas.iter().find(|s| !attached.contains(s)) {
        return Err(IntrospectError::UnknownSchema(missing.clone()));
    }
    let mut out = Vec::new();
    for schema in schemas {
        out.extend(introspect_schema(conn, schema).await?);
    }
    out.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    Ok(out)
}

/// The event of an `INSTEAD OF` trigger (`INSERT`, `UPDATE`, `DELETE`),
/// read from its `CREATE TRIGGER` text.
fn instead_of(sql: &str) -> Option<&'static str> {
    let words: Vec<String> = sql.split_whitespace().take(12).map(str::to_ascii_uppercase).collect();
    let at = words.windows(2).position(|w| w[0] == "INSTEAD" && w[1] == "OF")?;
    ["INSERT", "UPDATE", "DELETE"].into_iter().find(|e| words.get(at + 2).is_some_and(|w| w == e))
}

/// A foreign key as SQLite reports it: the parent's name as written in the
/// declaration, and no parent columns when the key refers to its primary key.
struct RawForeignKey {
    parent: String,
    columns: Vec<String>,
    parent_columns: Vec<Option<String>>,
}

async fn introspect_schema(conn: &mut SqliteConnection, schema: &str) -> Result<Vec<Table>, sqlx::Error> {
    let create_sql = match schema {
        "main" => Some(MAIN_TABLE_SQL_SQL),
        "temp" => Some(TEMP_TABLE_SQL_SQL),
        _ => None,
    };
    let mut declared_fks: HashMap<String, Vec<DeclaredForeignKey>> = HashMap::new();
    if let Some(query) = create_sql {
        for row in sqlx::query(query).fetch_all(&mut *conn).await? {
            let name: String = row.try_get("name")?;
            let sql: Option<String> = row.try_get("sql")?;
            declared_fks.insert(name, sql.as_deref().map(declared_foreign_keys).unwrap_or_default());
        }
    }

    // A view takes the writes its INSTEAD OF triggers handle.
    let triggers = match schema {
        "main" => Some(MAIN_TRIGGERS_SQL),
        "temp" => Some(TEMP_TRIGGERS_SQL),
        _ => None,
    };
    let mut view_writes: HashMap<String, Writable> = HashMap::new();
    if let Some(query) = triggers {
        for row in sqlx::query(query).fetch_all(&mut *conn).await? {
            let view: String = row.try_get("tbl_name")?;
            let sql: Option<String> = row.try_get("sql")?;
            let w = view_writes.entry(view).or_insert(Writable::NONE);
            if let Some(event) = sql.as_deref().and_then(instead_of) {
                match event {
                    "INSERT" => w.insert = true,
                    "UPDATE" => w.update = true,
                    _ => w.delete = true,
                }
            }
        }
    }

    let mut tables = Vec::new();
    let mut raw_fks: Vec<Vec<RawForeignKey>> = Vec::new();
    for row in sqlx::query(TABLES_SQL).bind(schema).fetch_all(&mut *conn).await? {
        let name: String = row.try_get("name")?;
        let kind: String = row.try_get("type")?;
        let without_rowid: i64 = row.try_get("wr")?;
        let writable = match kind.as_str() {
            "view" => view_writes.get(&name).copied().unwrap_or(Writable::NONE),
            _ => Writable::ALL,
        };
        let mut table = Table {
            schema: schema.to_string(),
            name,
            is_view: kind == "view",
            writable,
            columns: Vec::new(),
            primary_key: Vec::new(),
            unique: Vec::new(),
            foreign_keys: Vec::new(),
            comment: None,
            computed: Vec::new(),
        };

        let mut pk: Vec<(i64, String)> = Vec::new();
        for row in sqlx::query(COLUMNS_SQL).bind(&table.name).bind(schema).fetch_all(&mut *conn).await? {
            let column = column(&row)?;
            let pk_position: i64 = row.try_get("pk")?;
            if pk_position > 0 {
                pk.push((pk_position, column.name.clone()));
            }
            table.columns.push(column);
        }
        pk.sort();
        table.primary_key = pk.into_iter().map(|(_, name)| name).collect();
        // SQLite lets primary key columns of rowid tables hold NULL, except
        // an INTEGER PRIMARY KEY, which is the rowid; WITHOUT ROWID tables
        // enforce NOT NULL on the whole key.
        let rowid_alias = without_rowid == 0
            && table.primary_key.len() == 1
            && table.column(&table.primary_key[0]).is_some_and(|c| c.db_type.eq_ignore_ascii_case("INTEGER"));
        if without_rowid != 0 || rowid_alias {
            for column in &mut table.columns {
                if table.primary_key.contains(&column.name) {
                    column.nullable = false;
                }
            }
        }

        let mut indexes: Vec<(String, Vec<Option<String>>)> = Vec::new();
        for row in sqlx::query(INDEXES_SQL).bind(&table.name).bind(schema).fetch_all(&mut *conn).await? {
            let index: String = row.try_get("index_name")?;
            let column: Option<String> = row.try_get("column_name")?;
            match indexes.last_mut() {
                Some((name, parts)) if *name == index => parts.push(column),
                _ => indexes.push((index, vec![column])),
            }
        }
        for (_, parts) in indexes {
            // An expression index does not make any column unique.
            let Some(columns) = parts.into_iter().collect::<Option<Vec<String>>>() else { continue };
            if columns != table.primary_key && !table.unique.contains(&columns) {
                table.unique.push(columns);
            }
        }

        let mut fks: Vec<(i64, RawForeignKey)> = Vec::new();
        for row in sqlx::query(FOREIGN_KEYS_SQL).bind(&table.name).bind(schema).fetch_all(&mut *conn).await? {
            let id: i64 = row.try_get("id")?;
            let from: String = row.try_get("from")?;
            let to: Option<String> = row.try_get("to")?;
            match fks.last_mut() {
                Some((last, fk)) if *last == id => {
                    fk.columns.push(from);
                    fk.parent_columns.push(to);
                }
                _ => fks.push((
                    id,
                    RawForeignKey { parent: row.try_get("table")?, columns: vec![from], parent_columns: vec![to] },
                )),
            }
        }
        raw_fks.push(fks.into_iter().map(|(_, fk)| fk).collect());
        tables.push(table);
    }

    // Resolve parents now that every table of the schema is known: SQLite
    // matches the parent's name case-insensitively, and a key that names no
    // parent columns refers to the parent's primary key.
    let by_name: HashMap<String, usize> =
        tables.iter().enumerate().map(|(i, t)| (t.name.to_ascii_lowercase(), i)).collect();
    let mut resolved: Vec<Vec<ForeignKey>> = Vec::new();
    for (table, fks) in tables.iter().zip(raw_fks) {
        let mut declared = declared_fks.remove(&table.name).unwrap_or_default();
        let mut out: Vec<ForeignKey> = Vec::new();
        for fk in fks {
            // The declaration with these columns, first come first served.
            let declared_name = declared
                .iter()
                .position(|d| {
                    d.columns.len() == fk.columns.len()
                        && d.columns.iter().zip(&fk.columns).all(|(a, b)| a.eq_ignore_ascii_case(b))
                })
                .and_then(|i| declared.remove(i).name);
            let parent = by_name.get(&fk.parent.to_ascii_lowercase()).map(|&i| &tables[i]);
            let referenced_table = parent.map_or(fk.parent.clone(), |p| p.name.clone());
            let referenced_columns = match fk.parent_columns.iter().cloned().collect::<Option<Vec<String>>>() {
                Some(columns) => columns,
                None => match parent {
                    Some(p) => p.primary_key.clone(),
                    // The parent is not a table of this schema: nothing to
                    // join to.
                    None => continue,
                },
            };
            if referenced_columns.len() != fk.columns.len() {
                continue;
            }
            let name = declared_name
                .filter(|n| !out.iter().any(|f| f.name == *n))
                .unwrap_or_else(|| unique_name(&format!("{}_{}_fkey", table.name, fk.columns.join("_")), &out));
            out.push(ForeignKey {
                name,
                columns: fk.columns,
                referenced_schema: table.schema.clone(),
                referenced_table,
                referenced_columns,
            });
        }
        resolved.push(out);
    }
    for (table, mut fks) in tables.iter_mut().zip(resolved) {
        fks.sort_by(|a, b| a.name.cmp(&b.name));
        table.foreign_keys = fks;
    }

    // Where views' columns come from (SQLite follows views of views), for
    // the keys views inherit.
    let mut direct: HashMap<(String, String), (String, String)> = HashMap::new();
    let prefix = format!("{schema}.");
    for view in tables.iter().filter(|t| t.is_view) {
        let mut sql = String::from("SELECT * FROM ");
        quote_doubling(&mut sql, schema, '"');
        sql.push('.');
        quote_doubling(&mut sql, &view.name, '"');
        // A view whose tables are gone fails to prepare: it shows nothing.
        let Ok(statement) = conn.prepare(AssertSqlSafe(sql).into_sql_str()).await else { continue };
        for column in statement.columns() {
            if let Some(origin) = column.origin().table_column() {
                let table = origin.table.strip_prefix(&prefix).unwrap_or(&origin.table);
                direct.insert(
                    (view.name.clone(), column.name().to_string()),
                    (table.to_string(), origin.name.to_string()),
                );
            }
        }
    }
    view_keys::inherit_by_name(&mut tables, &direct);
    Ok(tables)
}

/// A foreign key as declared in `CREATE TABLE`: its name, if it has one,
/// and its columns.
#[derive(Debug, PartialEq, Eq)]
struct DeclaredForeignKey {
    name: Option<String>,
    columns: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// A bare word: keyword, identifier or number.
    Word(String),
    /// A quoted identifier: `"x"`, `` `x` `` or `[x]`, unescaped.
    Quoted(String),
    /// A string literal (contents not needed).
    Str,
    Punct(char),
}

impl Token {
    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(keyword))
    }

    fn identifier(&self) -> Option<String> {
        match self {
            Token::Word(w) | Token::Quoted(w) => Some(w.clone()),
            _ => None,
        }
    }
}

/// Splits SQL into tokens, dropping whitespace and comments.
fn tokenize(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    // Reads up to the closing `close`, a doubled `close` standing for itself.
    let quoted = |i: &mut usize, close: char, doubling: bool| -> String {
        let mut out = String::new();
        *i += 1;
        while *i < chars.len() {
            let c = chars[*i];
            *i += 1;
            if c == close {
                if doubling && chars.get(*i) == Some(&close) {
                    out.push(close);
                    *i += 1;
                } else {
                    break;
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
            }
            '"' => tokens.push(Token::Quoted(quoted(&mut i, '"', true))),
            '`' => tokens.push(Token::Quoted(quoted(&mut i, '`', true))),
            '[' => tokens.push(Token::Quoted(quoted(&mut i, ']', false))),
            '\'' => {
                quoted(&mut i, '\'', true);
                tokens.push(Token::Str);
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii() => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '$' | '.') || !chars[i].is_ascii())
                {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
            other => {
                tokens.push(Token::Punct(other));
                i += 1;
            }
        }
    }
    tokens
}

/// The foreign keys declared in a `CREATE TABLE` statement, in declaration
/// order (which is the order SQLite reports them in, reversed).
fn declared_foreign_keys(create_table: &str) -> Vec<DeclaredForeignKey> {
    let tokens = tokenize(create_table);
    let Some(open) = tokens.iter().position(|t| *t == Token::Punct('(')) else { return Vec::new() };

    // Definitions: the comma-separated parts of the outer parentheses.
    let mut definitions: Vec<&[Token]> = Vec::new();
    let (mut depth, mut start) = (0usize, open + 1);
    for (i, token) in tokens.iter().enumerate().skip(open + 1) {
        match token {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') if depth == 0 => {
                definitions.push(&tokens[start..i]);
                break;
            }
            Token::Punct(')') => depth -= 1,
            Token::Punct(',') if depth == 0 => {
                definitions.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }

    let mut out = Vec::new();
    for def in definitions {
        let Some(first) = def.first() else { continue };
        if first.is_keyword("CONSTRAINT") || first.is_keyword("FOREIGN") {
            // Table constraint: [CONSTRAINT name] FOREIGN KEY (columns) ...
            let (name, rest) = if first.is_keyword("CONSTRAINT") {
                (def.get(1).and_then(Token::identifier), def.get(2..).unwrap_or(&[]))
            } else {
                (None, def)
            };
            if rest.first().is_some_and(|t| t.is_keyword("FOREIGN")) && rest.get(1).is_some_and(|t| t.is_keyword("KEY"))
            {
                out.push(DeclaredForeignKey { name, columns: parenthesized_names(&rest[2..]) });
            }
        } else if ["PRIMARY", "UNIQUE", "CHECK"].iter().any(|k| first.is_keyword(k)) {
            continue;
        } else {
            // Column definition: name type [CONSTRAINT name] constraint ...
            let Some(column) = first.identifier() else { continue };
            let mut pending: Option<String> = None;
            let mut depth = 0usize;
            let mut i = 1;
            while i < def.len() {
                match &def[i] {
                    Token::Punct('(') => depth += 1,
                    Token::Punct(')') => depth = depth.saturating_sub(1),
                    t if depth == 0 && t.is_keyword("CONSTRAINT") => {
                        pending = def.get(i + 1).and_then(Token::identifier);
                        i += 1;
                    }
                    t if depth == 0 && t.is_keyword("REFERENCES") => {
                        out.push(DeclaredForeignKey { name: pending.take(), columns: vec![column.clone()] });
                    }
                    t if depth == 0
                        && ["PRIMARY", "NOT", "NULL", "UNIQUE", "CHECK", "DEFAULT", "COLLATE", "GENERATED", "AS"]
                            .iter()
                            .any(|k| t.is_keyword(k)) =>
                    {
                        pending = None;
                    }
                    _ => {}
                }
                i += 1;
            }
        }
    }
    out
}

/// The identifiers of a leading `( a, "b", ... )`.
fn parenthesized_names(tokens: &[Token]) -> Vec<String> {
    let mut names = Vec::new();
    if tokens.first() != Some(&Token::Punct('(')) {
        return names;
    }
    for token in &tokens[1..] {
        match token {
            Token::Punct(')') => break,
            t => names.extend(t.identifier()),
        }
    }
    names
}

fn column(row: &SqliteRow) -> Result<Column, sqlx::Error> {
    let declared: Option<String> = row.try_get("type")?;
    let declared = declared.unwrap_or_default();
    let not_null: i64 = row.try_get("notnull")?;
    Ok(Column {
        name: row.try_get("name")?,
        kind: kind_of(&declared),
        db_type: declared,
        nullable: not_null == 0,
        default: row.try_get("dflt_value")?,
        comment: None,
        representation: None,
        computed: None,
    })
}

/// `base`, or `base1`, `base2`… when a key of that name exists already, as
/// PostgreSQL names a second constraint on the same columns.
fn unique_name(base: &str, existing: &[ForeignKey]) -> String {
    let taken = |n: &str| existing.iter().any(|fk| fk.name == n);
    if !taken(base) {
        return base.to_string();
    }
    (1..).map(|i| format!("{base}{i}")).find(|n| !taken(n)).unwrap_or_default()
}

/// The value kind of a declared type: well-known type names first, then
/// SQLite's affinity rules (<https://www.sqlite.org/datatype3.html>, 3.1).
fn kind_of(declared: &str) -> ValueKind {
    let upper = declared.to_ascii_uppercase();
    let words: Vec<&str> = upper.split('(').next().unwrap_or("").split_whitespace().collect();
    match words.join(" ").as_str() {
        "BOOLEAN" | "BOOL" => return ValueKind::Boolean,
        "JSON" | "JSONB" => return ValueKind::Json,
        "DATE" => return ValueKind::Date,
        "TIME" => return ValueKind::Time,
        "DATETIME" | "TIMESTAMP" => return ValueKind::Timestamp,
        "TIMESTAMPTZ" | "TIMESTAMP WITH TIME ZONE" => return ValueKind::TimestampTz,
        "NUMERIC" | "DECIMAL" => return ValueKind::Numeric,
        "UUID" => return ValueKind::Uuid,
        "" => return ValueKind::Other,
        _ => {}
    }
    if upper.contains("INT") {
        ValueKind::Integer
    } else if upper.contains("CHAR") || upper.contains("CLOB") || upper.contains("TEXT") {
        ValueKind::Text
    } else if upper.contains("BLOB") {
        ValueKind::Bytes
    } else if upper.contains("REAL") || upper.contains("FLOA") || upper.contains("DOUB") {
        ValueKind::Float
    } else {
        ValueKind::Numeric
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_follow_names_then_affinity() {
        assert_eq!(kind_of("INTEGER"), ValueKind::Integer);
        assert_eq!(kind_of("unsigned big int"), ValueKind::Integer);
        assert_eq!(kind_of("VARCHAR(20)"), ValueKind::Text);
        assert_eq!(kind_of("BLOB"), ValueKind::Bytes);
        assert_eq!(kind_of(""), ValueKind::Other);
        assert_eq!(kind_of("DOUBLE PRECISION"), ValueKind::Float);
        assert_eq!(kind_of("DECIMAL(10,2)"), ValueKind::Numeric);
        assert_eq!(kind_of("boolean"), ValueKind::Boolean);
        assert_eq!(kind_of("DATETIME"), ValueKind::Timestamp);
        assert_eq!(kind_of("json"), ValueKind::Json);
        assert_eq!(kind_of("UUID"), ValueKind::Uuid);
        assert_eq!(kind_of("MONEY"), ValueKind::Numeric);
    }

    fn declared(name: Option<&str>, columns: &[&str]) -> DeclaredForeignKey {
        DeclaredForeignKey { name: name.map(str::to_string), columns: columns.iter().map(|c| c.to_string()).collect() }
    }

    #[test]
    fn constraint_names_come_from_the_create_statement() {
        let sql = r#"CREATE TABLE "moves" (
            id INTEGER PRIMARY KEY, -- a comment, with (parens
            item_id INTEGER NOT NULL CONSTRAINT moves_item REFERENCES items (id) ON DELETE CASCADE,
            other INT CONSTRAINT nn NOT NULL REFERENCES others,
            "odd, ""name""" TEXT DEFAULT 'x,)' CHECK ("odd, ""name""" IN ('a', 'b')),
            [to wh] TEXT, to_code INTEGER,
            /* block, comment */
            FOREIGN KEY ([to wh], to_code) REFERENCES "Warehouse",
            CONSTRAINT `moves_to` FOREIGN KEY ("to wh", to_code) REFERENCES warehouse (region, code),
            CONSTRAINT pk_unused UNIQUE (item_id, other)
        )"#;
        assert_eq!(
            declared_foreign_keys(sql),
            [
                declared(Some("moves_item"), &["item_id"]),
                declared(None, &["other"]),
                declared(None, &["to wh", "to_code"]),
                declared(Some("moves_to"), &["to wh", "to_code"]),
            ]
        );
        assert!(declared_foreign_keys("CREATE TABLE t AS SELECT count(*) AS n FROM x").is_empty());
    }
}
