//! A shop served with role rules, shared by the role tests: regions,
//! customers, orders (with an owner, a region and a public flag), tags on
//! orders, an audit table and a view, and a key per role.

use dbapi_crds::config::RuntimeConfig;

use super::Engine;
use super::api::Api;

pub const SQL: &str = "
CREATE TABLE regions (code VARCHAR(10) PRIMARY KEY, name VARCHAR(50) NOT NULL);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, region VARCHAR(10) NOT NULL,
    email VARCHAR(100), secret VARCHAR(50),
    FOREIGN KEY (region) REFERENCES regions(code)
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY, customer_id INTEGER, owner_id VARCHAR(20), region VARCHAR(10) NOT NULL,
    is_public BOOLEAN NOT NULL, amount INTEGER NOT NULL, note VARCHAR(100), cost INTEGER,
    FOREIGN KEY (customer_id) REFERENCES customers(id)
);
CREATE TABLE tags (
    id INTEGER PRIMARY KEY, order_id INTEGER, label VARCHAR(20),
    FOREIGN KEY (order_id) REFERENCES orders(id)
);
CREATE TABLE audit (id INTEGER PRIMARY KEY, what VARCHAR(50));
CREATE VIEW eu_orders AS SELECT id, region, amount FROM orders WHERE region = 'eu';
INSERT INTO regions VALUES ('eu', 'Europe'), ('us', 'United States');
INSERT INTO customers VALUES (1, 'Ann', 'eu', 'ann@example.com', 's1'), (2, 'Bob', 'us', 'bob@example.com', 's2'),
    (3, 'Cid', 'eu', 'cid@example.com', 's3');
INSERT INTO orders VALUES (1, 1, 'u1', 'eu', TRUE, 100, 'a', 10), (2, 1, 'u2', 'eu', FALSE, 200, 'b', 20),
    (3, 2, 'u1', 'us', TRUE, 300, 'c', 30), (4, 3, 'u3', 'eu', FALSE, 400, 'd', 40),
    (5, 2, 'u2', 'us', FALSE, 500, 'e', 50);
INSERT INTO tags VALUES (1, 1, 'red'), (2, 3, 'blue');
INSERT INTO audit VALUES (1, 'created');
";

/// Each role's key, sent in `apikey`.
pub const CLERK: (&str, &str) = ("apikey", "dbapi_clerk");
pub const READER: (&str, &str) = ("apikey", "dbapi_reader");
pub const WRITER: (&str, &str) = ("apikey", "dbapi_writer");
pub const OWNER: (&str, &str) = ("apikey", "dbapi_owner");
pub const PUTTER: (&str, &str) = ("apikey", "dbapi_putter");
pub const EUROPE: (&str, &str) = ("apikey", "dbapi_europe");
/// A key whose role `roles` does not define: it sees nothing.
pub const NOBODY: (&str, &str) = ("apikey", "dbapi_nobody");

/// - clerk: the EU orders (every verb, `cost` hidden), customers' names
///   (GET), the view, tags (POST only), and `order_*` functions by POST.
/// - reader: GET on every table, view and function.
/// - writer: POST on audit, nothing else.
/// - putter: PUT on orders, nothing else.
/// - europe: GET on everything, rows of region `eu` (tables without a
///   `region` column: none).
/// - owner: GET on orders it owns (`${claims.sub}`) or that are public.
pub const ROLES: &str = r#"
roles:
  - name: clerk
    rules:
      - tables: [orders]
        verbs: [GET, POST, PUT, PATCH, DELETE]
        columns: [id, customer_id, owner_id, region, is_public, amount, note]
        rowFilter: region=eq.eu
      - tables: [customers]
        verbs: [get]
        columns: [id, name, region]
      - tables: [eu_*]
        verbs: [GET]
      - tables: [tags]
        verbs: [POST]
      - functions: [order_*]
        verbs: [POST]
  - name: reader
    rules:
      - tables: ["*"]
        functions: ["*"]
        verbs: [GET]
  - name: writer
    rules:
      - tables: [audit]
        verbs: [POST]
  - name: putter
    rules:
      - tables: [orders]
        verbs: [PUT]
  - name: europe
    rules:
      - tables: ["*"]
        verbs: [GET]
        rowFilter: region=eq.eu
  - name: owner
    rules:
      - tables: [orders]
        verbs: [GET]
        rowFilter: or=(owner_id.eq.${claims.sub},is_public.is.true)
"#;

pub fn config() -> RuntimeConfig {
    let mut config: RuntimeConfig = serde_yaml::from_str(ROLES).expect("the roles document parses");
    for (name, role) in [
        ("clerk", "clerk"),
        ("reader", "reader"),
        ("writer", "writer"),
        ("owner", "owner"),
        ("putter", "putter"),
        ("europe", "europe"),
        ("nobody", "ghost"),
    ] {
        config.api_keys.push(dbapi_crds::config::ApiKey {
            name: name.into(),
            role: role.into(),
            hashes: vec![dbapi_crds::config::KeyHash {
                sha256: dbapi_crds::keys::sha256_hex(&format!("dbapi_{name}")),
                not_after: None,
            }],
            ..Default::default()
        });
    }
    config
}

pub async fn shop(engine: Engine) -> Api {
    Api::with_sql(engine, SQL, config()).await
}

/// The `id`s of a JSON array of rows.
pub fn ids(rows: &serde_json::Value) -> Vec<i64> {
    rows.as_array().expect("an array of rows").iter().map(|r| r["id"].as_i64().expect("an id")).collect()
}

/// The keys of the first row of a JSON array.
pub fn keys(rows: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = rows[0].as_object().expect("a row").keys().cloned().collect();
    keys.sort();
    keys
}
