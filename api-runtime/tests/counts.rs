//! `Prefer: count=exact|planned|estimated` on a table of thousands of rows,
//! as PostgREST's "Pagination and Count" describes them: the total in
//! `Content-Range`, 206 when the page is part of it, 416 past the end with
//! the total. PostgreSQL's planned count is the planner's estimate of the
//! matching rows; MariaDB and SQLite have no estimates and count exactly.

mod support;

use dbapi_crds::config::RuntimeConfig;
use support::Engine;
use support::api::{Api, Response};

on_every_engine!(counts_of_a_large_table);

/// `pets` with ids 1..=5000, from a cross join of digits (every engine
/// runs it); PostgreSQL's statistics are fresh and not refreshed later.
fn pets_sql(engine: Engine) -> String {
    let mut sql = String::from(
        "CREATE TABLE digits (d integer);
INSERT INTO digits VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9);
CREATE TABLE pets (id integer PRIMARY KEY, legs integer);
INSERT INTO pets (id, legs)
  SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 1, 4
  FROM digits a, digits b, digits c, digits e WHERE e.d < 5;
",
    );
    if engine == Engine::Postgres {
        sql.push_str("ALTER TABLE pets SET (autovacuum_enabled = false);\nANALYZE pets;\n");
    }
    sql
}

fn total(r: &Response) -> i64 {
    let range = r.header("content-range").unwrap_or_else(|| panic!("no Content-Range: {r:?}"));
    range.rsplit('/').next().unwrap().parse().unwrap_or_else(|_| panic!("no total in {range}"))
}

async fn counts_of_a_large_table(engine: Engine) {
    let mut config = RuntimeConfig::default();
    config.api.max_rows = 1000;
    let api = Api::with_sql(engine, &pets_sql(engine), config).await;
    let count = |c: &'static str| [("prefer", c)];

    let r = api.get_with("/pets?select=id&id=gt.100&limit=5", &count("count=exact")).await;
    r.expect(206);
    assert_eq!(r.header("content-range"), Some("0-4/4900"));

    // The planner's estimate of the rows the filter matches (exact where
    // there is no planner to ask).
    let r = api.get_with("/pets?select=id&id=gt.100&limit=5", &count("count=planned")).await;
    r.expect(206);
    assert_eq!(r.header("preference-applied"), Some("count=planned"));
    assert!(r.header("content-range").unwrap().starts_with("0-4/"), "{r:?}");
    let planned = total(&r);
    match engine {
        Engine::Postgres => assert!((4800..=5000).contains(&planned), "an estimate near 4900, got {planned}"),
        _ => assert_eq!(planned, 4900),
    }
    let r = api.get_with("/pets?select=id&limit=25", &count("count=planned")).await;
    r.expect(206);
    assert_eq!(r.header("content-range"), Some("0-24/5000"), "the whole table's estimate is its size");
    let r = api.get_with("/pets?select=id&id=gt.100&offset=10&limit=5", &count("count=planned")).await;
    r.expect(206);
    assert_eq!(r.header("content-range").unwrap(), format!("10-14/{planned}"));

    // Estimated: exact up to maxRows, the estimate above it.
    let r = api.get_with("/pets?select=id&id=gt.4990&limit=5", &count("count=estimated")).await;
    r.expect(206);
    assert_eq!(r.header("content-range"), Some("0-4/10"));
    assert_eq!(r.header("preference-applied"), Some("count=estimated"));
    let r = api.get_with("/pets?select=id&id=gt.4990", &count("count=estimated")).await;
    r.expect(200);
    assert_eq!(r.header("content-range"), Some("0-9/10"));
    let r = api.get_with("/pets?select=id&id=gt.100&limit=5", &count("count=estimated")).await;
    r.expect(206);
    assert_eq!(total(&r), planned);

    // Past the end: 416 with the total; at the end: an empty page.
    let r = api.get_with("/pets?id=gt.100&offset=6000", &count("count=exact")).await;
    let e = r.expect_error(416, "PGRST103");
    assert_eq!(e["details"], "An offset of 6000 was requested, but there are only 4900 rows.");
    assert_eq!(r.header("content-range"), Some("*/4900"));
    let r = api.get_with("/pets?id=gt.100", &[("prefer", "count=planned"), ("range", "9000-9010")]).await;
    r.expect_error(416, "PGRST103");
    assert_eq!(r.header("content-range").unwrap(), format!("*/{planned}"));
    let r = api.get_with("/pets?id=gt.4990&offset=10", &count("count=exact")).await;
    r.expect(206);
    assert_eq!(r.header("content-range"), Some("*/10"));
    assert_eq!(r.body, "[]");

    if engine == Engine::Postgres {
        // Without fresh statistics the estimate stays where it was: it is
        // the planner's, not a count.
        api.db.execute("DELETE FROM pets WHERE id > 2600").await;
        let r = api.get_with("/pets?select=id&id=gt.100&limit=5", &count("count=exact")).await;
        assert_eq!(r.header("content-range"), Some("0-4/2500"));
        let r = api.get_with("/pets?select=id&id=gt.100&limit=5", &count("count=planned")).await;
        assert!(total(&r) > 4000, "the stale estimate, not the count: {r:?}");
        let r = api.get_with("/pets?select=id&id=gt.100&limit=5", &count("count=estimated")).await;
        assert!(total(&r) > 4000, "above maxRows the estimate: {r:?}");
    }
}
