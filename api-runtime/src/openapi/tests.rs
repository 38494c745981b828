//! The document's shape, checked on a sample schema, and its snapshot.

use dbapi_crds::config::TableFilter;
use serde_json::Value;

use super::*;
use crate::schema::{Column, Engine, ForeignKey, Function, Returns, Routines, ValueKind, Volatility};

fn col(name: &str, db_type: &str, kind: ValueKind, nullable: bool) -> Column {
    Column {
        name: name.into(),
        db_type: db_type.into(),
        kind,
        nullable,
        default: None,
        comment: None,
        representation: None,
        computed: None,
    }
}

fn sample() -> Schema {
    let customers = Table {
        schema: "public".into(),
        name: "customers".into(),
        is_view: false,
        writable: crate::schema::Writable::ALL,
        columns: vec![
            Column {
                default: Some("nextval('customers_id_seq'::regclass)".into()),
                ..col("id", "integer", ValueKind::Integer, false)
            },
            col("name", "text", ValueKind::Text, false),
            col("email", "character varying(200)", ValueKind::Text, true),
            col("profile", "jsonb", ValueKind::Json, true),
            col("tags", "text[]", ValueKind::Array(Box::new(ValueKind::Text)), true),
            col("id_ext", "uuid", ValueKind::Uuid, false),
        ],
        primary_key: vec!["id".into()],
        unique: vec![],
        foreign_keys: vec![],
        comment: Some("People who place orders.".into()),
        computed: Vec::new(),
    };
    let statuses: Vec<String> = ["pending", "shipped", "cancelled"].iter().map(|s| s.to_string()).collect();
    let orders = Table {
        schema: "public".into(),
        name: "orders".into(),
        is_view: false,
        writable: crate::schema::Writable::ALL,
        columns: vec![
            Column {
                default: Some("nextval('orders_id_seq'::regclass)".into()),
                ..col("id", "integer", ValueKind::Integer, false)
            },
            Column { comment: Some("Amount due.".into()), ..col("total", "numeric(10,2)", ValueKind::Numeric, false) },
            col("customer_id", "integer", ValueKind::Integer, false),
            Column {
                default: Some("'pending'::order_status".into()),
                ..col("status", "order_status", ValueKind::Enum(statuses), false)
            },
            col("shipped_at", "timestamp with time zone", ValueKind::TimestampTz, true),
            col("limit", "integer", ValueKind::Integer, true),
        ],
        primary_key: vec!["id".into()],
        unique: vec![],
        foreign_keys: vec![ForeignKey {
            name: "orders_customer_id_fkey".into(),
            columns: vec!["customer_id".into()],
            referenced_schema: "public".into(),
            referenced_table: "customers".into(),
            referenced_columns: vec!["id".into()],
        }],
        comment: None,
        computed: vec![Column {
            computed: Some(Box::new(crate::schema::ComputedBy {
                function_schema: "public".into(),
                function: "total_with_tax".into(),
                row_schema: "public".into(),
                row_type: "orders".into(),
            })),
            ..col("total_with_tax", "numeric", ValueKind::Numeric, true)
        }],
    };
    let view = Table {
        schema: "public".into(),
        name: "order_totals".into(),
        is_view: true,
        writable: crate::schema::Writable::ALL,
        columns: vec![
            col("customer_id", "integer", ValueKind::Integer, true),
            col("sum", "numeric", ValueKind::Numeric, true),
            col("day", "date", ValueKind::Date, true),
        ],
        primary_key: vec![],
        unique: vec![],
        foreign_keys: vec![],
        comment: Some("Totals per customer.".into()),
        computed: Vec::new(),
    };
    let add = Function {
        schema: "public".into(),
        name: "add_them".into(),
        params: vec![
            col("a", "integer", ValueKind::Integer, true),
            Column { default: Some("DEFAULT".into()), ..col("b", "integer", ValueKind::Integer, true) },
        ],
        variadic: false,
        returns: Returns::Scalar(crate::schema::scalar_result(
            "public",
            "add_them",
            col("", "integer", ValueKind::Integer, true),
        )),
        set_returning: false,
        volatility: Volatility::Immutable,
        comment: Some("Adds two integers.".into()),
        media_type: None,
    };
    let orders_of = Function {
        name: "orders_of".into(),
        params: vec![col("customer", "integer", ValueKind::Integer, true)],
        returns: Returns::Rows(orders.clone()),
        set_returning: true,
        volatility: Volatility::Volatile,
        comment: None,
        media_type: None,
        ..add.clone()
    };
    let routines = Routines { functions: vec![add, orders_of], ..Routines::default() };
    Schema::new(Engine::Postgres, vec!["public".into()], vec![customers, orders, view], &TableFilter::default())
        .with_routines(routines, &TableFilter::default())
}

fn json() -> Value {
    serde_json::to_value(document(&sample(), "public", 1000)).unwrap()
}

fn params(doc: &Value, path: &str) -> Vec<Value> {
    doc["paths"][path]["get"]["parameters"].as_array().unwrap().clone()
}

#[test]
fn declares_openapi_3_1() {
    let text = document(&sample(), "public", 1000).to_json().unwrap();
    assert!(text.starts_with(r#"{"openapi":"3.1.0""#), "{}", &text[..40]);
    let doc = json();
    assert_eq!(doc["info"]["title"], "dbapi: public");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["info"]["description"].as_str().unwrap().contains("/_/docs/"));
}

#[test]
fn tables_are_read_and_written_views_read_functions_called() {
    let doc = json();
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(
        paths.keys().collect::<Vec<_>>(),
        ["/customers", "/order_totals", "/orders", "/rpc/add_them", "/rpc/orders_of"]
    );
    let methods = |path: &str| doc["paths"][path].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(methods("/orders"), ["get", "put", "post", "delete", "patch"]);
    assert_eq!(methods("/order_totals"), ["get"]);
    // A function that may write has no GET.
    assert_eq!(methods("/rpc/add_them"), ["get", "post"]);
    assert_eq!(methods("/rpc/orders_of"), ["post"]);
    let insert = &doc["paths"]["/orders"]["post"];
    assert_eq!(insert["responses"]["409"]["$ref"], "#/components/responses/Conflict");
    let body = &insert["requestBody"]["content"]["application/json"]["schema"]["oneOf"];
    assert_eq!(body[0]["$ref"], "#/components/schemas/orders");
    assert_eq!(body[1]["items"]["$ref"], "#/components/schemas/orders");
    let rows = &doc["paths"]["/rpc/orders_of"]["post"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(rows["items"]["$ref"], "#/components/schemas/orders", "a table's rows reuse its schema");
    assert!(doc["paths"]["/order_totals"]["get"]["summary"].as_str().unwrap().contains("view"));
    assert!(doc["paths"]["/orders"]["get"]["summary"].as_str().unwrap().contains("table"));
    let responses = doc["paths"]["/orders"]["get"]["responses"].as_object().unwrap();
    assert_eq!(responses.keys().collect::<Vec<_>>(), ["200", "206", "400", "404", "406", "503"]);
    let ok = &responses["200"]["content"];
    assert_eq!(ok["application/json"]["schema"]["items"]["$ref"], "#/components/schemas/orders");
    assert_eq!(ok["application/vnd.pgrst.object+json"]["schema"]["$ref"], "#/components/schemas/orders");
    assert!(ok["text/csv"].is_object());
    assert!(ok["application/x-ndjson"].is_object());
    // Streamed answers are never partial: only JSON answers are 206.
    assert!(responses["206"]["content"]["text/csv"].is_null());
    assert_eq!(responses["400"]["$ref"], "#/components/responses/BadRequest");
    assert_eq!(
        doc["components"]["responses"]["BadRequest"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error"
    );
}

#[test]
fn columns_become_filter_parameters() {
    let doc = json();
    let orders = params(&doc, "/orders");
    let total = orders.iter().find(|p| p["name"] == "total").expect("total filter");
    assert_eq!(total["in"], "query");
    assert_eq!(total["required"], false);
    assert_eq!(
        total["description"],
        "Filter on `total` (numeric(10,2)): `total=eq.10`, `total=gt.5`, `total=in.(1,2)`"
    );
    assert!(orders.iter().any(|p| p["name"] == "status"));
    assert!(orders.iter().any(|p| p["name"] == "total_with_tax"), "computed fields can be filtered on");
    // A column named like a reserved key is not a second `limit` parameter.
    assert_eq!(
        orders.iter().filter(|p| p["name"] == "limit" || p["$ref"] == "#/components/parameters/limit").count(),
        1
    );
    assert!(doc["paths"]["/orders"]["get"]["description"].as_str().unwrap().contains("and=(limit.eq.1)"));
    let shipped = orders.iter().find(|p| p["name"] == "shipped_at").unwrap();
    assert!(shipped["description"].as_str().unwrap().contains("`shipped_at=is.null`"));
    for p in ["order", "offset", "range", "prefer"] {
        let r = format!("#/components/parameters/{p}");
        assert!(orders.iter().any(|x| x["$ref"] == r.as_str()), "{p}");
    }
    // One profile: no Accept-Profile.
    assert!(doc["components"]["parameters"].get("acceptProfile").is_none());
    let view = params(&doc, "/order_totals");
    assert!(view.iter().any(|p| p["name"] == "day"));
}

#[test]
fn row_schemas_map_kinds_and_nullability() {
    let doc = json();
    let schemas = &doc["components"]["schemas"];
    let orders = &schemas["orders"];
    assert_eq!(orders["type"], "object");
    assert_eq!(orders["properties"]["total"]["type"], "number");
    assert_eq!(orders["properties"]["id"]["type"], "integer");
    assert_eq!(orders["properties"]["shipped_at"]["type"], serde_json::json!(["string", "null"]));
    assert_eq!(orders["properties"]["shipped_at"]["format"], "date-time");
    assert_eq!(orders["properties"]["status"]["enum"], serde_json::json!(["pending", "shipped", "cancelled"]));
    assert_eq!(orders["required"], serde_json::json!(["total", "customer_id"]));
    let desc = |t: &str, c: &str| schemas[t]["properties"][c]["description"].as_str().unwrap().to_string();
    assert_eq!(desc("orders", "total"), "Amount due.\n\n`numeric(10,2)`");
    assert_eq!(desc("orders", "customer_id"), "`integer`, foreign key to `customers.id`");
    assert!(desc("orders", "id").starts_with("`integer`, primary key, default `nextval("));
    // A computed field is described as one, and never required.
    assert_eq!(orders["properties"]["total_with_tax"]["type"], serde_json::json!(["number", "null"]));
    assert!(desc("orders", "total_with_tax").contains("computed by the function `total_with_tax(orders)`"));
    let customers = &schemas["customers"];
    assert!(customers["properties"]["profile"].get("type").is_none(), "json is any value");
    assert_eq!(customers["properties"]["tags"]["type"], serde_json::json!(["array", "null"]));
    assert_eq!(customers["properties"]["tags"]["items"]["type"], "string");
    assert_eq!(customers["properties"]["id_ext"]["format"], "uuid");
    assert_eq!(schemas["order_totals"]["properties"]["day"]["format"], "date");
    assert_eq!(schemas["Error"]["properties"]["hint"]["type"], serde_json::json!(["string", "null"]));
}

#[test]
fn the_example_uses_real_columns_and_an_embed() {
    let doc = json();
    let example = doc["paths"]["/orders"]["get"]["description"].as_str().unwrap();
    assert!(
        example.contains("GET /orders?select=id,total,customers(name)&status=eq.pending&order=id.desc&limit=10"),
        "{example}"
    );
    let select = params(&doc, "/customers").into_iter().find(|p| p["name"] == "select").unwrap();
    assert!(select["description"].as_str().unwrap().contains("`orders` (many)"));
    assert!(select["description"].as_str().unwrap().contains("`column.sum()`"));
    let view = doc["paths"]["/order_totals"]["get"]["description"].as_str().unwrap();
    assert!(view.starts_with("Totals per customer."), "{view}");
}

#[test]
fn several_profiles_document_accept_profile() {
    let mut schema = sample();
    schema.schemas = vec!["public".into(), "audit".into()];
    let doc = serde_json::to_value(document(&schema, "public", 50)).unwrap();
    let p = &doc["components"]["parameters"]["acceptProfile"];
    assert_eq!(p["name"], "Accept-Profile");
    assert_eq!(p["in"], "header");
    assert_eq!(p["required"], false);
    assert!(params(&doc, "/orders").iter().any(|x| x["$ref"] == "#/components/parameters/acceptProfile"));
    // A profile with no tables yields an empty but valid document that requires the header.
    let audit = serde_json::to_value(document(&schema, "audit", 50)).unwrap();
    assert!(audit["paths"].as_object().unwrap().is_empty());
    assert_eq!(audit["components"]["parameters"]["acceptProfile"]["required"], true);
}

#[test]
fn names_are_made_safe() {
    let t = |name: &str| Table {
        schema: "public".into(),
        name: name.into(),
        is_view: false,
        writable: crate::schema::Writable::ALL,
        columns: vec![col("id", "integer", ValueKind::Integer, false)],
        primary_key: vec![],
        unique: vec![],
        foreign_keys: vec![],
        comment: None,
        computed: Vec::new(),
    };
    let schema = Schema::new(
        Engine::Sqlite,
        vec!["public".into()],
        vec![t("Error"), t("line items"), t("line_items"), t("{x}")],
        &TableFilter::default(),
    );
    let doc = serde_json::to_value(document(&schema, "public", 10)).unwrap();
    let names: Vec<_> = doc["components"]["schemas"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(names, ["Error", "Error_2", "_x_", "line_items", "line_items_2"]);
    assert_eq!(
        doc["paths"]["/line_items"]["get"]["responses"]["200"]["content"]["application/vnd.pgrst.object+json"]["schema"]
            ["$ref"],
        "#/components/schemas/line_items"
    );
    let paths: Vec<_> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(paths, ["/%7Bx%7D", "/Error", "/line%20items", "/line_items"]);
}

#[test]
fn snapshot() {
    let mut doc = document(&sample(), "public", 1000);
    doc.info.version = "[version]".into(); // the snapshot survives version bumps
    insta::assert_json_snapshot!("openapi_document", doc);
}
