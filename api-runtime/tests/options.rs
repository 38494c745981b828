//! `OPTIONS` answers the methods a resource takes in `Allow`, as
//! PostgREST's OptionsSpec has them: tables every method (`PUT` only with a
//! primary key), views the writes the database can run on them, functions
//! `POST` and, when they do not write, `GET` and `HEAD`; an unknown
//! resource is 404.

mod support;

use dbapi_crds::config::RuntimeConfig;
use support::Engine;
use support::api::Api;

on_every_engine!(options_list_what_a_relation_takes);

const ALL: &str = "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE";
const READ: &str = "OPTIONS,GET,HEAD";

fn schema_sql(engine: Engine) -> String {
    let mut sql = String::from(
        "CREATE TABLE items (id integer PRIMARY KEY, name varchar(20));
CREATE TABLE logs (msg varchar(20));
CREATE VIEW items_view AS SELECT id, name FROM items;
CREATE VIEW item_count AS SELECT count(*) AS n FROM items;
",
    );
    match engine {
        Engine::Sqlite => sql.push_str(
            "CREATE VIEW new_items AS SELECT id, name FROM items WHERE id > 100;
CREATE TRIGGER new_items_insert INSTEAD OF INSERT ON new_items
  BEGIN INSERT INTO items VALUES (NEW.id, NEW.name); END;
",
        ),
        Engine::Postgres => sql.push_str(
            "CREATE VIEW new_items AS SELECT DISTINCT id, name FROM items WHERE id > 100;
CREATE FUNCTION insert_new_item() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN INSERT INTO items VALUES (NEW.id, NEW.name); RETURN NEW; END $$;
CREATE TRIGGER new_items_insert INSTEAD OF INSERT ON new_items
  FOR EACH ROW EXECUTE FUNCTION insert_new_item();
",
        ),
        Engine::MySql => {}
    }
    sql
}

async fn options_list_what_a_relation_takes(engine: Engine) {
    let api = Api::with_sql(engine, &schema_sql(engine), RuntimeConfig::default()).await;
    let allow = |path: &'static str| {
        let api = &api;
        async move {
            let r = api.send("OPTIONS", path, &[], "").await;
            r.expect(200);
            assert_eq!(r.body, "", "OPTIONS has no body");
            r.header("allow").unwrap_or_else(|| panic!("no Allow on {path}")).to_string()
        }
    };
    assert_eq!(allow("/items").await, ALL);
    assert_eq!(allow("/logs").await, "OPTIONS,GET,HEAD,POST,PATCH,DELETE", "no PUT without a primary key");
    assert_eq!(allow("/item_count").await, READ, "an aggregate view takes no writes");
    let simple_view = match engine {
        // SQLite views take writes only through INSTEAD OF triggers.
        Engine::Sqlite => READ,
        _ => ALL,
    };
    assert_eq!(allow("/items_view").await, simple_view);
    if engine != Engine::MySql {
        assert_eq!(allow("/new_items").await, "OPTIONS,GET,HEAD,POST", "an INSTEAD OF INSERT trigger");
    }
    assert_eq!(allow("/").await, READ);

    let r = api.send("OPTIONS", "/nope", &[], "").await;
    let e = r.expect_error(404, "PGRST205");
    assert!(e["message"].as_str().unwrap().contains("nope"), "{e}");
    api.send("OPTIONS", "/items", &[("accept-profile", "nope")], "").await.expect_error(406, "PGRST106");
}

#[tokio::test]
async fn options_of_functions_follow_their_volatility() {
    for engine in [Engine::Postgres, Engine::MySql] {
        let api = Api::fixture(engine).await;
        let r = api.send("OPTIONS", "/rpc/add_them", &[], "").await;
        r.expect(200);
        assert_eq!(r.header("allow"), Some("OPTIONS,GET,HEAD,POST"), "{engine:?}");
        let r = api.send("OPTIONS", "/rpc/add_customer", &[], "").await;
        assert_eq!(r.header("allow"), Some("OPTIONS,POST"), "{engine:?}");
        api.send("OPTIONS", "/rpc/nope", &[], "").await.expect_error(404, "PGRST202");
    }
    let api = Api::fixture(Engine::Sqlite).await;
    api.send("OPTIONS", "/rpc/add_them", &[], "").await.expect_error(404, "PGRST202");
}
