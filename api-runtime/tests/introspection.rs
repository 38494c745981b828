//! Schema introspection against real PostgreSQL, MySQL/MariaDB and SQLite
//! databases. PostgreSQL and MySQL need `DBAPI_TEST_PG_URL` and
//! `DBAPI_TEST_MYSQL_URL` (see `support`).

mod support;

use dbapi_crds::config::TableFilter;
use dbapi_runtime::db::Db;
use dbapi_runtime::schema::{self, Column, ForeignKey, IntrospectError, Schema, Table, ValueKind};

async fn introspect(db: &Db, schemas: &[&str]) -> Schema {
    let schemas: Vec<String> = schemas.iter().map(|s| s.to_string()).collect();
    schema::introspect(db, &schemas, &TableFilter::default()).await.expect("introspection failed")
}

fn table<'a>(schema: &'a Schema, ns: &str, name: &str) -> &'a Table {
    schema.table(ns, name).unwrap_or_else(|| {
        let names: Vec<_> = schema.tables.keys().collect();
        panic!("no table {ns}.{name}; have {names:?}")
    })
}

fn col<'a>(table: &'a Table, name: &str) -> &'a Column {
    table.column(name).unwrap_or_else(|| panic!("no column {}.{name}", table.name))
}

fn names(table: &Table) -> Vec<&str> {
    table.columns.iter().map(|c| c.name.as_str()).collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn fk<'a>(table: &'a Table, name: &str) -> &'a ForeignKey {
    table.foreign_keys.iter().find(|f| f.name == name).unwrap_or_else(|| {
        let have: Vec<_> = table.foreign_keys.iter().map(|f| &f.name).collect();
        panic!("no foreign key {name} on {}; have {have:?}", table.name)
    })
}

fn enum_of(labels: &[&str]) -> ValueKind {
    ValueKind::Enum(strings(labels))
}

async fn expect_unknown_schema(db: &Db, name: &str) {
    let schemas = vec![name.to_string()];
    match schema::introspect(db, &schemas, &TableFilter::default()).await {
        Err(IntrospectError::UnknownSchema(s)) => assert_eq!(s, name),
        other => panic!("expected UnknownSchema({name:?}), got {other:?}"),
    }
}

// ------------------------------------------------------------------ PostgreSQL

const PG_SCHEMA: &str = r#"
CREATE SCHEMA extra;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
ALTER TYPE mood ADD VALUE 'meh' BEFORE 'ok';
CREATE DOMAIN short_text AS varchar(20);

CREATE TABLE extra.regions (code text PRIMARY KEY);

CREATE TABLE "Warehouse" (
    region  text NOT NULL REFERENCES extra.regions,
    "Code"  integer NOT NULL,
    label   short_text,
    PRIMARY KEY (region, "Code")
);
COMMENT ON TABLE "Warehouse" IS 'Where things are';

CREATE TABLE items (
    id          bigserial PRIMARY KEY,
    sku         uuid NOT NULL UNIQUE,
    name        text NOT NULL DEFAULT 'unnamed',
    price       numeric(10,2),
    weight      double precision,
    small       smallint,
    active      boolean NOT NULL DEFAULT true,
    data        jsonb,
    raw_json    json,
    tags        text[] NOT NULL DEFAULT '{}',
    matrix      integer[][],
    feeling     mood,
    feelings    mood[],
    born        date,
    at_time     time,
    made_at     timestamp,
    seen_at     timestamptz DEFAULT now(),
    photo       bytea,
    span        interval,
    addr        inet,
    code        char(3),
    "select"    varchar(10),
    doubled     bigint GENERATED ALWAYS AS (id * 2) STORED,
    wh_region   text,
    wh_code     integer,
    CONSTRAINT items_warehouse_fk FOREIGN KEY (wh_region, wh_code) REFERENCES "Warehouse" (region, "Code"),
    CONSTRAINT items_name_code_key UNIQUE (code, name)
);
COMMENT ON COLUMN items.price IS 'Price in euros';
CREATE UNIQUE INDEX items_select_idx ON items ("select");
CREATE UNIQUE INDEX items_partial_idx ON items (small) WHERE small > 0;
CREATE UNIQUE INDEX items_expr_idx ON items (lower(name));
CREATE UNIQUE INDEX items_covering_idx ON items (born) INCLUDE (made_at);
ALTER TABLE items DROP COLUMN addr;

CREATE VIEW item_names AS SELECT id, name FROM items;
CREATE MATERIALIZED VIEW item_prices AS SELECT id, price FROM items;
"#;

#[tokio::test]
async fn postgres_tables_columns_and_keys() {
    let t = support::pg_database(PG_SCHEMA).await;
    let db = t.connect().await;
    let s = introspect(&db, &["public", "extra"]).await;
    assert_eq!(s.engine, schema::Engine::Postgres);

    let keys: Vec<_> = s.tables.keys().map(|(ns, n)| format!("{ns}.{n}")).collect();
    assert_eq!(keys, ["extra.regions", "public.Warehouse", "public.item_names", "public.item_prices", "public.items"]);

    let items = table(&s, "public", "items");
    assert!(!items.is_view);
    assert_eq!(
        names(items),
        [
            "id",
            "sku",
            "name",
            "price",
            "weight",
            "small",
            "active",
            "data",
            "raw_json",
            "tags",
            "matrix",
            "feeling",
            "feelings",
            "born",
            "at_time",
            "made_at",
            "seen_at",
            "photo",
            "span",
            "code",
            "select",
            "doubled",
            "wh_region",
            "wh_code",
        ],
        "dropped columns are gone, the rest in ordinal order"
    );
    let kinds = [
        ("id", "bigint", ValueKind::Integer),
        ("sku", "uuid", ValueKind::Uuid),
        ("name", "text", ValueKind::Text),
        ("price", "numeric(10,2)", ValueKind::Numeric),
        ("weight", "double precision", ValueKind::Float),
        ("small", "smallint", ValueKind::Integer),
        ("active", "boolean", ValueKind::Boolean),
        ("data", "jsonb", ValueKind::Json),
        ("raw_json", "json", ValueKind::Json),
        ("tags", "text[]", ValueKind::Array(Box::new(ValueKind::Text))),
        ("matrix", "integer[]", ValueKind::Array(Box::new(ValueKind::Integer))),
        ("feeling", "mood", enum_of(&["sad", "meh", "ok", "happy"])),
        ("feelings", "mood[]", ValueKind::Array(Box::new(enum_of(&["sad", "meh", "ok", "happy"])))),
        ("born", "date", ValueKind::Date),
        ("at_time", "time without time zone", ValueKind::Time),
        ("made_at", "timestamp without time zone", ValueKind::Timestamp),
        ("seen_at", "timestamp with time zone", ValueKind::TimestampTz),
        ("photo", "bytea", ValueKind::Bytes),
        ("span", "interval", ValueKind::Other),
        ("code", "character(3)", ValueKind::Text),
        ("select", "character varying(10)", ValueKind::Text),
    ];
    for (name, db_type, kind) in kinds {
        let c = col(items, name);
        assert_eq!((c.db_type.as_str(), &c.kind), (db_type, &kind), "column {name}");
    }

    assert!(!col(items, "id").nullable);
    assert!(col(items, "price").nullable);
    assert_eq!(col(items, "id").default.as_deref(), Some("nextval('items_id_seq'::regclass)"));
    assert_eq!(col(items, "name").default.as_deref(), Some("'unnamed'::text"));
    assert_eq!(col(items, "active").default.as_deref(), Some("true"));
    assert_eq!(col(items, "seen_at").default.as_deref(), Some("now()"));
    assert_eq!(col(items, "doubled").default, None, "a generation expression is not a default");
    assert_eq!(col(items, "price").comment.as_deref(), Some("Price in euros"));
    assert_eq!(col(items, "name").comment, None);
    assert_eq!(items.comment, None);

    assert_eq!(items.primary_key, ["id"]);
    assert_eq!(
        items.unique,
        [strings(&["born"]), strings(&["code", "name"]), strings(&["select"]), strings(&["sku"])],
        "constraints and plain unique indexes, in index name order; not partial or expression indexes"
    );
    assert_eq!(
        items.foreign_keys,
        [ForeignKey {
            name: "items_warehouse_fk".into(),
            columns: strings(&["wh_region", "wh_code"]),
            referenced_schema: "public".into(),
            referenced_table: "Warehouse".into(),
            referenced_columns: strings(&["region", "Code"]),
        }]
    );

    let wh = table(&s, "public", "Warehouse");
    assert_eq!(wh.primary_key, ["region", "Code"]);
    assert!(wh.unique.is_empty());
    assert_eq!(wh.comment.as_deref(), Some("Where things are"));
    let label = col(wh, "label");
    assert_eq!(
        (label.db_type.as_str(), &label.kind),
        ("short_text", &ValueKind::Text),
        "domains resolve to their base"
    );
    let to_region = fk(wh, "Warehouse_region_fkey");
    assert_eq!((to_region.referenced_schema.as_str(), to_region.referenced_table.as_str()), ("extra", "regions"));
    assert_eq!(to_region.referenced_columns, ["code"]);

    let view = table(&s, "public", "item_names");
    assert!(view.is_view);
    assert_eq!(names(view), ["id", "name"]);
    assert_eq!(col(view, "name").kind, ValueKind::Text);
    // A view showing its table's whole primary key has it as its own; it
    // shows no foreign key column, so it has no foreign key.
    assert_eq!(view.primary_key, ["id"]);
    assert!(view.foreign_keys.is_empty());
    let matview = table(&s, "public", "item_prices");
    assert!(matview.is_view);
    assert_eq!(matview.primary_key, ["id"]);
    assert_eq!(col(matview, "price").db_type, "numeric(10,2)");

    // Relationships are derived from the introspected keys.
    let rels = s.relationships_from(items);
    assert!(rels.iter().any(|r| r.constraint == "items_warehouse_fk" && r.target.1 == "Warehouse"));
}

#[tokio::test]
async fn postgres_default_and_unknown_schemas() {
    let t = support::pg_database(
        "CREATE TABLE a (id int PRIMARY KEY); CREATE SCHEMA hidden; CREATE TABLE hidden.b (id int);",
    )
    .await;
    let db = t.connect().await;
    let s = introspect(&db, &[]).await;
    assert_eq!(s.schemas, ["public"]);
    let keys: Vec<_> = s.tables.keys().cloned().collect();
    assert_eq!(keys, [("public".to_string(), "a".to_string())], "only the exposed schema");
    expect_unknown_schema(&db, "nope").await;
    let both = vec!["public".to_string(), "Hidden".to_string()];
    let err = schema::introspect(&db, &both, &TableFilter::default()).await.unwrap_err();
    assert!(
        matches!(err, IntrospectError::UnknownSchema(ref s) if s == "Hidden"),
        "schema names are case-sensitive: {err}"
    );
}

#[tokio::test]
async fn postgres_fixture() {
    let sql = support::fixture("postgres.sql").expect("tests/fixtures/postgres.sql is missing");
    let t = support::pg_database(&sql).await;
    let db = t.connect().await;
    let s = introspect(&db, &["public", "other"]).await;

    let items = table(&s, "public", "order_items");
    assert_eq!(items.primary_key, ["order_id", "product_id"]);
    let shipments = table(&s, "public", "shipments");
    for (name, column) in [("fk_shipments_from", "from_address_id"), ("fk_shipments_to", "to_address_id")] {
        let f = fk(shipments, name);
        assert_eq!((f.columns.clone(), f.referenced_table.as_str()), (strings(&[column]), "addresses"));
        assert_eq!(f.referenced_columns, ["id"]);
    }
    let stock = table(&s, "public", "stock");
    assert_eq!(fk(stock, "fk_stock_warehouse").columns, ["region", "code"]);
    assert_eq!(fk(stock, "fk_stock_warehouse").referenced_columns, ["region", "code"]);

    let orders = table(&s, "public", "orders");
    assert_eq!(col(orders, "status").kind, enum_of(&["pending", "paid", "shipped", "cancelled"]));
    assert_eq!(col(orders, "status").db_type, "order_status");
    assert_eq!(col(orders, "created_at").kind, ValueKind::TimestampTz);

    let products = table(&s, "public", "products");
    assert_eq!(col(products, "tags").kind, ValueKind::Array(Box::new(ValueKind::Text)));
    assert_eq!(col(products, "tags").db_type, "text[]");
    assert_eq!(col(products, "ratings").kind, ValueKind::Array(Box::new(ValueKind::Integer)));
    assert_eq!(col(products, "attrs").kind, ValueKind::Json);
    assert_eq!(col(products, "sku").kind, ValueKind::Uuid);
    assert_eq!(col(products, "image").kind, ValueKind::Bytes);
    assert_eq!(col(products, "price").db_type, "numeric(10,2)");
    assert_eq!(products.unique, [strings(&["sku"])]);
    assert_eq!(table(&s, "public", "shipments").column("transit_time").map(|c| &c.kind), Some(&ValueKind::Other));

    let customers = table(&s, "public", "customers");
    assert_eq!(customers.comment.as_deref(), Some("People who place orders"));
    assert_eq!(col(customers, "email").comment.as_deref(), Some("Unique contact address"));
    assert_eq!(customers.unique, [strings(&["email"])]);

    let view = table(&s, "public", "customer_totals");
    assert!(view.is_view);
    assert_eq!(names(view), ["customer_id", "name", "order_count", "total_spent"]);
    // Views inherit the foreign keys of the columns they show, renamed.
    assert_open_orders_inherits_the_customer_key(table(&s, "public", "open_orders"));
    let items_to_open: Vec<&str> = table(&s, "public", "order_items")
        .foreign_keys
        .iter()
        .filter(|f| f.referenced_table == "open_orders")
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(items_to_open, ["fk_order_items_order"], "a table's key to a view showing the referenced column");

    let mixed = table(&s, "public", "MixedCase");
    assert_eq!(names(mixed), ["Id", "DisplayName", "lowerCol"]);
    assert_eq!(names(table(&s, "public", "user")), ["id", "select", "group", "order", "first name"]);
    assert!(s.table("public", "articles").unwrap().unique.is_empty(), "the expression (fts) index is skipped");
    assert_eq!(table(&s, "other", "things").primary_key, ["id"]);
}

/// The fixtures' `open_orders` (orders.customer_id shown as `buyer`) has
/// orders' key to customers, both to the table and to `customer_totals`,
/// the view showing customers.id.
fn assert_open_orders_inherits_the_customer_key(open: &Table) {
    let mut fks: Vec<(String, Vec<String>, String, Vec<String>)> = open
        .foreign_keys
        .iter()
        .map(|f| (f.name.clone(), f.columns.clone(), f.referenced_table.clone(), f.referenced_columns.clone()))
        .collect();
    fks.sort();
    assert_eq!(
        fks,
        [
            ("fk_orders_customer".into(), strings(&["buyer"]), "customer_totals".into(), strings(&["customer_id"])),
            ("fk_orders_customer".into(), strings(&["buyer"]), "customers".into(), strings(&["id"])),
        ]
    );
}

// ------------------------------------------------------------------ MySQL / MariaDB

const MYSQL_SCHEMA: &str = r#"
CREATE TABLE `Warehouse` (
    region  VARCHAR(16) NOT NULL,
    `Code`  INT NOT NULL,
    label   VARCHAR(20) DEFAULT 'none',
    PRIMARY KEY (region, `Code`)
) ENGINE=InnoDB COMMENT='Where things are';

CREATE TABLE items (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    sku         CHAR(36) NOT NULL,
    name        VARCHAR(100) NOT NULL DEFAULT 'unnamed',
    price       DECIMAL(10,2) COMMENT 'Price in euros',
    weight      DOUBLE,
    small       SMALLINT,
    tiny        TINYINT,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    data        JSON,
    feeling     ENUM('sad', 'it''s ok', 'happy') NOT NULL DEFAULT 'sad',
    flags       SET('a', 'b'),
    born        DATE,
    at_time     TIME,
    made_at     DATETIME,
    seen_at     TIMESTAMP NULL,
    photo       BLOB,
    digest      VARBINARY(32),
    yr          YEAR,
    notes       LONGTEXT,
    `select`    VARCHAR(10),
    wh_region   VARCHAR(16),
    wh_code     INT,
    CONSTRAINT items_warehouse_fk FOREIGN KEY (wh_region, wh_code) REFERENCES `Warehouse` (region, `Code`),
    CONSTRAINT items_sku_key UNIQUE (sku),
    UNIQUE KEY items_name_small (name, small)
) ENGINE=InnoDB;
CREATE UNIQUE INDEX items_select_idx ON items (`select`);
CREATE INDEX items_born_idx ON items (born);

CREATE VIEW item_names AS SELECT id, name FROM items;
"#;

#[tokio::test]
async fn mysql_tables_columns_and_keys() {
    let t = support::mysql_database(MYSQL_SCHEMA).await;
    let db = t.connect().await;
    let s = introspect(&db, &[&t.schema]).await;
    assert_eq!(s.engine, schema::Engine::MySql);
    let ns = t.schema.as_str();

    let keys: Vec<_> = s.tables.keys().map(|(_, n)| n.as_str()).collect();
    assert_eq!(keys, ["Warehouse", "item_names", "items"]);

    let items = table(&s, ns, "items");
    assert!(!items.is_view);
    assert_eq!(names(items)[..4], ["id", "sku", "name", "price"]);
    assert_eq!(names(items).len(), 22);
    let kinds = [
        ("id", "bigint", ValueKind::Integer),
        ("sku", "char(36)", ValueKind::Text),
        ("name", "varchar(100)", ValueKind::Text),
        ("price", "decimal(10,2)", ValueKind::Numeric),
        ("weight", "double", ValueKind::Float),
        ("small", "smallint", ValueKind::Integer),
        ("active", "tinyint(1)", ValueKind::Boolean),
        ("data", "", ValueKind::Json),
        ("feeling", "enum('sad','it''s ok','happy')", enum_of(&["sad", "it's ok", "happy"])),
        ("flags", "set('a','b')", ValueKind::Other),
        ("born", "date", ValueKind::Date),
        ("at_time", "time", ValueKind::Time),
        ("made_at", "datetime", ValueKind::Timestamp),
        ("seen_at", "timestamp", ValueKind::TimestampTz),
        ("photo", "blob", ValueKind::Bytes),
        ("digest", "varbinary(32)", ValueKind::Bytes),
        ("notes", "longtext", ValueKind::Text),
        ("select", "varchar(10)", ValueKind::Text),
    ];
    for (name, db_type, kind) in kinds {
        let c = col(items, name);
        assert_eq!(c.kind, kind, "column {name}");
        // MySQL 5.7 and MariaDB print integer display widths (bigint(20)),
        // MySQL 8 does not; JSON is `json` or MariaDB's `longtext`.
        if !db_type.is_empty() && !db_type.starts_with("bigint") && !db_type.starts_with("smallint") {
            assert_eq!(c.db_type, db_type, "column {name}");
        }
    }
    assert!(col(items, "id").db_type.starts_with("bigint"));
    assert_eq!(col(items, "tiny").kind, ValueKind::Integer);
    assert!(matches!(col(items, "data").db_type.as_str(), "json" | "longtext"));
    assert_eq!(col(items, "yr").kind, ValueKind::Other);

    assert!(!col(items, "id").nullable);
    assert!(col(items, "price").nullable);
    assert_eq!(col(items, "price").default, None, "MariaDB's \"NULL\" is no default");
    assert!(matches!(col(items, "name").default.as_deref(), Some("'unnamed'" | "unnamed")));
    assert_eq!(col(items, "price").comment.as_deref(), Some("Price in euros"));
    assert_eq!(col(items, "name").comment, None);
    assert_eq!(items.comment, None);

    assert_eq!(items.primary_key, ["id"]);
    assert_eq!(
        items.unique,
        [strings(&["name", "small"]), strings(&["select"]), strings(&["sku"])],
        "unique constraints and indexes, not plain indexes"
    );
    assert_eq!(
        items.foreign_keys,
        [ForeignKey {
            name: "items_warehouse_fk".into(),
            columns: strings(&["wh_region", "wh_code"]),
            referenced_schema: ns.into(),
            referenced_table: "Warehouse".into(),
            referenced_columns: strings(&["region", "Code"]),
        }]
    );

    let wh = table(&s, ns, "Warehouse");
    assert_eq!(wh.primary_key, ["region", "Code"]);
    assert_eq!(wh.comment.as_deref(), Some("Where things are"));

    let view = table(&s, ns, "item_names");
    assert!(view.is_view);
    assert_eq!(view.comment, None, "MySQL's \"VIEW\" comment is dropped");
    assert_eq!(names(view), ["id", "name"]);
    assert_eq!(col(view, "id").default, None);
}

#[tokio::test]
async fn mysql_default_and_unknown_schemas() {
    let t = support::mysql_database("CREATE TABLE a (id INT PRIMARY KEY);").await;
    let db = t.connect().await;
    let s = introspect(&db, &[]).await;
    assert_eq!(s.schemas, std::slice::from_ref(&t.schema), "the URL's database is the default");
    assert!(s.table(&t.schema, "a").is_some());
    expect_unknown_schema(&db, "dbapi_no_such_database").await;
}

#[tokio::test]
async fn mysql_fixture() {
    let sql = support::fixture("mysql.sql").expect("tests/fixtures/mysql.sql is missing");
    let t = support::mysql_database(&sql).await;
    let db = t.connect().await;
    let s = introspect(&db, &[]).await;
    let ns = t.schema.as_str();

    assert_eq!(table(&s, ns, "order_items").primary_key, ["order_id", "product_id"]);
    let shipments = table(&s, ns, "shipments");
    for (name, column) in [("fk_shipments_from", "from_address_id"), ("fk_shipments_to", "to_address_id")] {
        let f = fk(shipments, name);
        assert_eq!((f.columns.clone(), f.referenced_table.as_str()), (strings(&[column]), "addresses"));
        assert_eq!(f.referenced_columns, ["id"]);
    }
    let stock = table(&s, ns, "stock");
    assert_eq!(fk(stock, "fk_stock_warehouse").columns, ["region", "code"]);
    assert_eq!(fk(stock, "fk_stock_warehouse").referenced_columns, ["region", "code"]);

    let orders = table(&s, ns, "orders");
    assert_eq!(col(orders, "status").kind, enum_of(&["pending", "paid", "shipped", "cancelled"]));
    assert_eq!(col(orders, "created_at").kind, ValueKind::Timestamp);

    let products = table(&s, ns, "products");
    for json in ["tags", "attrs", "ratings"] {
        assert_eq!(col(products, json).kind, ValueKind::Json, "{json} (MariaDB: longtext + json_valid check)");
    }
    assert_eq!(col(products, "sku").kind, ValueKind::Text, "char(36) stays text");
    assert_eq!(col(products, "in_stock").kind, ValueKind::Boolean);
    assert_eq!(col(products, "image").kind, ValueKind::Bytes);
    assert_eq!(col(products, "price").db_type, "decimal(10,2)");
    assert_eq!(products.unique, [strings(&["sku"])]);

    let customers = table(&s, ns, "customers");
    assert_eq!(customers.comment.as_deref(), Some("People who place orders"));
    assert_eq!(col(customers, "email").comment.as_deref(), Some("Unique contact address"));

    let view = table(&s, ns, "customer_totals");
    assert!(view.is_view);
    assert_eq!(names(view), ["customer_id", "name", "order_count", "total_spent"]);
    // Views inherit the keys of the columns they show (from their prepared
    // stored query), renamed.
    let open = table(&s, ns, "open_orders");
    assert_eq!(open.primary_key, ["order_id"]);
    assert_open_orders_inherits_the_customer_key(open);
    assert_eq!(view.primary_key, ["customer_id"], "the whole primary key of customers, and no other table's");

    assert_eq!(names(table(&s, ns, "MixedCase")), ["Id", "DisplayName", "lowerCol"]);
    assert_eq!(names(table(&s, ns, "user")), ["id", "select", "group", "order", "first name"]);
}

// ------------------------------------------------------------------ SQLite

const SQLITE_SCHEMA: &str = r#"
CREATE TABLE "Warehouse" (
    region  TEXT NOT NULL,
    "Code"  INTEGER NOT NULL,
    label   VARCHAR(20) DEFAULT 'none',
    PRIMARY KEY (region, "Code")
);

CREATE TABLE items (
    id          INTEGER PRIMARY KEY,
    sku         UUID NOT NULL UNIQUE,
    name        TEXT NOT NULL DEFAULT 'unnamed',
    price       DECIMAL(10,2),
    weight      DOUBLE PRECISION,
    active      BOOLEAN NOT NULL DEFAULT 1,
    data        JSON,
    born        DATE,
    made_at     DATETIME DEFAULT CURRENT_TIMESTAMP,
    photo       BLOB,
    anything,
    money       MONEY,
    "select"    VARCHAR(10),
    doubled     INTEGER GENERATED ALWAYS AS (id * 2) VIRTUAL,
    wh_region   TEXT,
    wh_code     INTEGER,
    parent_id   INTEGER REFERENCES items,
    CONSTRAINT items_warehouse_fk FOREIGN KEY (wh_region, wh_code) REFERENCES warehouse (region, "Code"),
    UNIQUE (name, weight)
);
CREATE UNIQUE INDEX items_select_idx ON items ("select");
CREATE UNIQUE INDEX items_partial_idx ON items (born) WHERE born IS NOT NULL;
CREATE UNIQUE INDEX items_expr_idx ON items (lower(name));

CREATE TABLE log (message TEXT, level INT);
CREATE TABLE labels (name TEXT PRIMARY KEY, note TEXT) WITHOUT ROWID;
CREATE TABLE codes (code TEXT PRIMARY KEY, note TEXT);

CREATE TABLE moves (
    item_id  INTEGER NOT NULL REFERENCES items (id),
    from_wh  TEXT, from_code INTEGER,
    to_wh    TEXT, to_code INTEGER,
    FOREIGN KEY (from_wh, from_code) REFERENCES "Warehouse",
    CONSTRAINT moves_to_fk FOREIGN KEY (to_wh, to_code) REFERENCES "Warehouse"
);

CREATE VIEW item_names AS SELECT id, name FROM items;
"#;

#[tokio::test]
async fn sqlite_tables_columns_and_keys() {
    let t = support::sqlite_database(SQLITE_SCHEMA).await;
    let db = t.connect().await;
    let s = introspect(&db, &[]).await;
    assert_eq!(s.engine, schema::Engine::Sqlite);
    assert_eq!(s.schemas, ["main"]);

    let keys: Vec<_> = s.tables.keys().map(|(_, n)| n.as_str()).collect();
    assert_eq!(keys, ["Warehouse", "codes", "item_names", "items", "labels", "log", "moves"]);

    let items = table(&s, "main", "items");
    assert!(!items.is_view);
    let kinds = [
        ("id", "INTEGER", ValueKind::Integer),
        ("sku", "UUID", ValueKind::Uuid),
        ("name", "TEXT", ValueKind::Text),
        ("price", "DECIMAL(10,2)", ValueKind::Numeric),
        ("weight", "DOUBLE PRECISION", ValueKind::Float),
        ("active", "BOOLEAN", ValueKind::Boolean),
        ("data", "JSON", ValueKind::Json),
        ("born", "DATE", ValueKind::Date),
        ("made_at", "DATETIME", ValueKind::Timestamp),
        ("photo", "BLOB", ValueKind::Bytes),
        ("anything", "", ValueKind::Other),
        ("money", "MONEY", ValueKind::Numeric),
        ("select", "VARCHAR(10)", ValueKind::Text),
        ("doubled", "INTEGER", ValueKind::Integer),
    ];
    for (name, db_type, kind) in kinds {
        let c = col(items, name);
        assert_eq!((c.db_type.as_str(), &c.kind), (db_type, &kind), "column {name}");
    }
    assert_eq!(names(items).len(), 17, "generated columns included");
    assert!(!col(items, "id").nullable, "INTEGER PRIMARY KEY is the rowid: never NULL");
    assert!(!col(table(&s, "main", "labels"), "name").nullable, "WITHOUT ROWID keys are NOT NULL");
    assert!(col(table(&s, "main", "codes"), "code").nullable, "other rowid-table keys may hold NULL in SQLite");
    assert!(!col(items, "sku").nullable);
    assert!(col(items, "price").nullable);
    assert_eq!(col(items, "name").default.as_deref(), Some("'unnamed'"));
    assert_eq!(col(items, "made_at").default.as_deref(), Some("CURRENT_TIMESTAMP"));
    assert_eq!(col(items, "price").default, None);

    assert_eq!(items.primary_key, ["id"]);
    assert_eq!(
        items.unique,
        [strings(&["select"]), strings(&["sku"]), strings(&["name", "weight"])],
        "unique constraints and plain unique indexes; not partial or expression indexes"
    );
    // Declared constraint names are kept; unnamed keys get PostgreSQL's
    // `{table}_{columns}_fkey`. Parents resolve case-insensitively.
    assert_eq!(
        items.foreign_keys,
        [
            ForeignKey {
                name: "items_parent_id_fkey".into(),
                columns: strings(&["parent_id"]),
                referenced_schema: "main".into(),
                referenced_table: "items".into(),
                referenced_columns: strings(&["id"]),
            },
            ForeignKey {
                name: "items_warehouse_fk".into(),
                columns: strings(&["wh_region", "wh_code"]),
                referenced_schema: "main".into(),
                referenced_table: "Warehouse".into(),
                referenced_columns: strings(&["region", "Code"]),
            },
            // Seen through the view showing items.id (its origin, as SQLite
            // reports it), as on PostgreSQL.
            ForeignKey {
                name: "items_parent_id_fkey".into(),
                columns: strings(&["parent_id"]),
                referenced_schema: "main".into(),
                referenced_table: "item_names".into(),
                referenced_columns: strings(&["id"]),
            },
        ]
    );

    let moves = table(&s, "main", "moves");
    let fk_names: Vec<_> = moves.foreign_keys.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        fk_names,
        ["moves_from_wh_from_code_fkey", "moves_item_id_fkey", "moves_to_fk", "moves_item_id_fkey"],
        "the table's own in name order, then the one seen through the view item_names"
    );
    assert_eq!(fk(moves, "moves_to_fk").referenced_columns, ["region", "Code"], "omitted parent columns: its PK");
    assert!(moves.primary_key.is_empty() && moves.unique.is_empty());

    let log = table(&s, "main", "log");
    assert!(log.primary_key.is_empty(), "a rowid table without a declared key has none");
    assert_eq!(col(log, "level").kind, ValueKind::Integer);

    let wh = table(&s, "main", "Warehouse");
    assert_eq!(wh.primary_key, ["region", "Code"]);
    assert!(wh.unique.is_empty(), "the PK's own index is not a unique key");

    let view = table(&s, "main", "item_names");
    assert!(view.is_view);
    assert_eq!(names(view), ["id", "name"]);
    // It shows its table's whole primary key and no foreign key column.
    assert_eq!(view.primary_key, ["id"]);
    assert!(view.foreign_keys.is_empty());

    expect_unknown_schema(&db, "aux").await;
}

#[tokio::test]
async fn sqlite_fixture() {
    let sql = support::fixture("sqlite.sql").expect("tests/fixtures/sqlite.sql is missing");
    let t = support::sqlite_database(&sql).await;
    let db = t.connect().await;
    let s = introspect(&db, &["main"]).await;

    assert_eq!(table(&s, "main", "order_items").primary_key, ["order_id", "product_id"]);
    let shipments = table(&s, "main", "shipments");
    for (name, column) in [("fk_shipments_from", "from_address_id"), ("fk_shipments_to", "to_address_id")] {
        let f = fk(shipments, name);
        assert_eq!((f.columns.clone(), f.referenced_table.as_str()), (strings(&[column]), "addresses"));
        assert_eq!(f.referenced_columns, ["id"]);
    }
    let stock = table(&s, "main", "stock");
    assert_eq!(fk(stock, "fk_stock_warehouse").columns, ["region", "code"]);

    let products = table(&s, "main", "products");
    assert_eq!(col(products, "attrs").kind, ValueKind::Json);
    assert_eq!(col(products, "in_stock").kind, ValueKind::Boolean);
    assert_eq!(col(products, "image").kind, ValueKind::Bytes);
    assert_eq!(col(products, "price").kind, ValueKind::Numeric);
    assert_eq!(products.unique, [strings(&["sku"])]);
    assert_eq!(table(&s, "main", "customers").primary_key, ["id"]);

    let view = table(&s, "main", "customer_totals");
    assert!(view.is_view);
    assert_eq!(names(view), ["customer_id", "name", "order_count", "total_spent"]);
    assert_eq!(names(table(&s, "main", "MixedCase")), ["Id", "DisplayName", "lowerCol"]);
    assert_eq!(names(table(&s, "main", "user")), ["id", "select", "group", "order", "first name"]);
}
