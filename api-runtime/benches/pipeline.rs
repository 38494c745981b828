//! The runtime's own work per request, with no database and no HTTP: the
//! query string parsed, planned against the schema and rendered as SQL
//! with its bound parameters, for the shared benchmark's URLs (W1–W5) on
//! its tables (`../shared/bench/schema_pg.sql`), on each engine's dialect.
//!
//! `cargo bench -p dbapi-runtime --bench pipeline` measures (divan);
//! `cargo test -p dbapi-runtime --benches` runs each once, as the test
//! command does, so the benchmarks cannot rot. Never a pass/fail timing.

use dbapi_crds::config::TableFilter;
use dbapi_runtime::grammar::{parse_payload, parse_query};
use dbapi_runtime::plan::{Missing, Page, plan_insert, plan_read};
use dbapi_runtime::schema::{Column, Engine, ForeignKey, Schema, Table, ValueKind, Writable};
use dbapi_runtime::sql::{Returning, render_insert, render_read};

fn main() {
    divan::main();
}

/// W1–W4 as `ours` sends them (`../shared/bench/targets/ours.sh`).
fn read_query(workload: &str) -> &'static str {
    match workload {
        "w1_page" => "limit=25&offset=4321",
        "w2_filter" => "status=eq.shipped&total=gte.100&limit=25",
        "w3_pk" => "id=eq.123456",
        "w4_embed" => "select=id,total,customers(name)&limit=25",
        other => panic!("no workload {other}"),
    }
}

/// W5's body.
const INSERT: &str = r#"{"customer_id": 4242, "status": "pending", "total": 123.45}"#;

fn column(name: &str, db_type: &str, kind: ValueKind) -> Column {
    Column {
        name: name.into(),
        db_type: db_type.into(),
        kind,
        nullable: false,
        default: None,
        comment: None,
        representation: None,
        computed: None,
    }
}

fn table(name: &str, columns: Vec<Column>, foreign_keys: Vec<ForeignKey>) -> Table {
    Table {
        schema: "public".into(),
        name: name.into(),
        is_view: false,
        writable: Writable::ALL,
        columns,
        primary_key: vec!["id".into()],
        unique: vec![],
        foreign_keys,
        comment: None,
        computed: vec![],
    }
}

/// The benchmark dataset's tables, as introspection would describe them.
fn schema(engine: Engine) -> Schema {
    use ValueKind::*;
    let fk = |name: &str, column: &str, target: &str| ForeignKey {
        name: name.into(),
        columns: vec![column.into()],
        referenced_schema: "public".into(),
        referenced_table: target.into(),
        referenced_columns: vec!["id".into()],
    };
    let tables = vec![
        table(
            "customers",
            vec![
                column("id", "integer", Integer),
                column("name", "text", Text),
                column("email", "text", Text),
                column("country", "text", Text),
                column("created_at", "timestamp with time zone", TimestampTz),
            ],
            vec![],
        ),
        table(
            "orders",
            vec![
                column("id", "integer", Integer),
                column("customer_id", "integer", Integer),
                column("status", "text", Text),
                column("total", "numeric", Numeric),
                column("created_at", "timestamp with time zone", TimestampTz),
            ],
            vec![fk("orders_customer_id_fkey", "customer_id", "customers")],
        ),
    ];
    Schema::new(engine, vec!["public".into()], tables, &TableFilter::default())
}

const ENGINES: [Engine; 3] = [Engine::Postgres, Engine::MySql, Engine::Sqlite];

/// Grammar, plan and SQL (with parameters) of one read, as a GET runs them.
#[divan::bench(args = ["w1_page", "w2_filter", "w3_pk", "w4_embed"])]
fn read(bencher: divan::Bencher, workload: &str) {
    let schemas = ENGINES.map(schema);
    let query = read_query(workload);
    bencher.bench_local(|| {
        for schema in &schemas {
            let parsed = parse_query(divan::black_box(query)).expect("the bench URLs parse");
            let page = Page { offset: 0, limit: Some(1000) };
            let plan = plan_read(schema, "public", "orders", &parsed, page).expect("the bench URLs plan");
            divan::black_box(render_read(&plan, schema.engine, false));
        }
    });
}

/// W5: the body parsed, planned and rendered as one INSERT.
#[divan::bench]
fn insert(bencher: divan::Bencher) {
    let schemas = ENGINES.map(schema);
    let no_query = parse_query("").expect("an empty query parses");
    bencher.bench_local(|| {
        for schema in &schemas {
            let payload = parse_payload(divan::black_box(INSERT.as_bytes())).expect("the W5 body parses");
            let plan = plan_insert(schema, "public", "orders", &no_query, &payload, Missing::Null, None)
                .expect("the W5 body plans");
            let columns: Vec<usize> = (0..plan.columns.len()).collect();
            divan::black_box(render_insert(&plan, schema.engine, &[0], &columns, Returning::Keys));
        }
    });
}
