//! `auth.postgresRoles` on PostgreSQL: each request runs as the database
//! role of its role, with PostgREST's `request.*` settings, so a Row Level
//! Security policy written for PostgREST applies, on the pipelined read
//! connections (concurrent requests of different users never see each
//! other's settings) and on the pool.

mod support;

use std::sync::Arc;

use support::api::Api;
use support::{Engine, server_url, unique_name};

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

fn token(role: &str, sub: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let claims = serde_json::json!({"role": role, "sub": sub});
    format!("Bearer {}", jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap())
}

/// Drops the test's database roles (cluster-wide objects) after the
/// database that held their grants is gone: declare it before the `Api`.
struct DropRoles(Vec<String>);

impl Drop for DropRoles {
    fn drop(&mut self) {
        let roles = std::mem::take(&mut self.0);
        let url = server_url("DBAPI_TEST_PG_URL");
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                for role in roles {
                    let sql = format!("DROP ROLE IF EXISTS \"{role}\"");
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
                }
            })
        })
        .join();
    }
}

fn fixture(role: &str) -> String {
    format!(
        r#"CREATE ROLE "{role}" NOLOGIN;
CREATE TABLE docs (id int PRIMARY KEY, owner text NOT NULL, body text);
INSERT INTO docs VALUES (1, 'alice', 'a1'), (2, 'bob', 'b1'), (3, 'alice', 'a2');
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON docs
  USING (owner = current_setting('request.jwt.claims', true)::json->>'sub')
  WITH CHECK (owner = current_setting('request.jwt.claims', true)::json->>'sub');
GRANT USAGE ON SCHEMA public TO "{role}";
GRANT SELECT, INSERT ON docs TO "{role}";
CREATE FUNCTION whoami() RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object(
    'user', current_user,
    'method', current_setting('request.method', true),
    'path', current_setting('request.path', true),
    'sub', current_setting('request.jwt.claims', true)::json->>'sub',
    'sees_credentials', current_setting('request.headers', true)::jsonb ? 'authorization',
    'agent', current_setting('request.headers', true)::json->>'user-agent')
$$;
GRANT EXECUTE ON FUNCTION whoami() TO "{role}";
"#
    )
}

async fn requests_run_as_their_database_role(read_connections: u32) {
    let role = format!("r_{}", unique_name());
    let _roles = DropRoles(vec![role.clone()]);
    let yaml = format!(
        "database: {{pool: {{readConnections: {read_connections}}}}}\n\
         auth: {{postgresRoles: true, jwt: {{secret: '{SECRET}', roleClaim: role}}}}\n\
         roles: [{{name: '{role}', rules: [{{tables: ['*'], verbs: [GET, POST], functions: ['*']}}]}}]\n"
    );
    let config = dbapi_crds::config::parse_runtime_config(&yaml).unwrap();
    let api = Arc::new(Api::with_sql(Engine::Postgres, &fixture(&role), config).await);
    let (alice, bob) = (token(&role, "alice"), token(&role, "bob"));

    let ids = |body: &serde_json::Value| {
        body.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>()
    };
    let mine = api.get_with("/docs?order=id", &[("authorization", &alice)]).await;
    mine.expect(200);
    assert_eq!(ids(&mine.json()), [1, 3]);
    let theirs = api.get_with("/docs?order=id", &[("authorization", &bob)]).await;
    assert_eq!(ids(&theirs.json()), [2]);
    let counted = api.get_with("/docs", &[("authorization", &bob), ("prefer", "count=exact")]).await;
    assert_eq!(counted.header("content-range"), Some("0-0/1"));

    let me = api.get_with("/rpc/whoami", &[("authorization", &alice), ("user-agent", "dbapi-test")]).await;
    me.expect(200);
    assert_eq!(
        me.json(),
        serde_json::json!({"user": role, "method": "GET", "path": "/rpc/whoami", "sub": "alice",
                           "sees_credentials": false, "agent": "dbapi-test"})
    );

    // The policy's WITH CHECK refuses a row for someone else; nothing is kept.
    let forged = api.post_with("/docs", &[("authorization", &alice)], r#"{"id": 9, "owner": "bob"}"#).await;
    forged.expect_error(403, "42501");
    api.post_with("/docs", &[("authorization", &alice)], r#"{"id": 4, "owner": "alice"}"#).await.expect(201);
    assert_eq!(api.sql_i64("SELECT count(*) FROM docs").await, [4]);

    // Many users at once on the same connections: each sees only their own.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..400 {
        let (api, auth, expected) =
            if i % 2 == 0 { (api.clone(), alice.clone(), vec![1, 3, 4]) } else { (api.clone(), bob.clone(), vec![2]) };
        tasks.spawn(async move {
            let r = api.get_with("/docs?order=id", &[("authorization", &auth)]).await;
            let got: Vec<i64> = r.json().as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
            assert_eq!(got, expected, "request {i}");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_run_as_their_database_role_pipelined() {
    requests_run_as_their_database_role(2).await;
}

#[tokio::test]
async fn requests_run_as_their_database_role_pooled() {
    requests_run_as_their_database_role(0).await;
}

#[tokio::test]
async fn postgres_roles_need_postgresql() {
    let db = support::sqlite_database("CREATE TABLE t (id integer PRIMARY KEY);").await;
    let config = dbapi_crds::config::parse_runtime_config("auth: {postgresRoles: true, anonymousRole: web}\n").unwrap();
    let Err(e) = dbapi_runtime::server::prepare(&db.url, config).await else { panic!("SQLite took postgresRoles") };
    assert!(e.to_string().contains("auth.postgresRoles"), "{e}");
}
