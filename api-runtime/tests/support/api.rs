//! The runtime's API router on a fixture database, driven in-process with
//! `tower::ServiceExt::oneshot` (no sockets), plus direct SQL against the
//! same database to compute expected results.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use dbapi_crds::config::RuntimeConfig;
use dbapi_runtime::http::HttpService;
use dbapi_runtime::http::{AppState, api_router};
use http_body_util::BodyExt;
use sqlx::{AssertSqlSafe, Connection, Row};
use tower::ServiceExt;

use super::{Engine, TestDb, fixture, mysql_database, pg_database, sqlite_database};

/// Runs one async test body once per engine, as three tests:
/// `on_every_engine!(filters);` makes `filters::postgres`, `filters::mysql`
/// and `filters::sqlite`, each calling `filters(engine)`.
#[macro_export]
macro_rules! on_every_engine {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn postgres() {
                super::$test($crate::support::Engine::Postgres).await
            }
            #[tokio::test]
            async fn mysql() {
                super::$test($crate::support::Engine::MySql).await
            }
            #[tokio::test]
            async fn sqlite() {
                super::$test($crate::support::Engine::Sqlite).await
            }
        }
    )*};
}

pub struct Api {
    pub db: TestDb,
    pub state: Arc<AppState>,
    router: HttpService,
}

#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `field` of every row of a JSON array body, as i64.
    pub fn column_i64(&self, field: &str) -> Vec<i64> {
        let v = self.json();
        let rows = v.as_array().unwrap_or_else(|| panic!("expected a JSON array, got {}", self.body));
        rows.iter().map(|r| r[field].as_i64().unwrap_or_else(|| panic!("row without integer {field:?}: {r}"))).collect()
    }

    /// Asserts the status and, for errors, returns the error body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.body);
        self
    }

    /// Asserts an error of PostgREST's shape with this status and code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> serde_json::Value {
        self.expect(status);
        let v = self.json();
        assert_eq!(v["code"], code, "unexpected error code: {}", self.body);
        for key in ["message", "details", "hint"] {
            assert!(v.get(key).is_some(), "error without {key}: {}", self.body);
        }
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "error without a message: {}", self.body);
        v
    }
}

impl Api {
    /// The shared fixture (`tests/fixtures/<engine>.sql`) on a fresh database.
    pub async fn fixture(engine: Engine) -> Api {
        Self::fixture_with(engine, RuntimeConfig::default()).await
    }

    pub async fn fixture_with(engine: Engine, config: RuntimeConfig) -> Api {
        let file = match engine {
            Engine::Postgres => "postgres.sql",
            Engine::MySql => "mysql.sql",
            Engine::Sqlite => "sqlite.sql",
        };
        let sql = fixture(file).unwrap_or_else(|| panic!("missing fixture {file}"));
        Self::with_sql(engine, &sql, config).await
    }

    /// A fresh database holding `sql`, served with `config`.
    pub async fn with_sql(engine: Engine, sql: &str, config: RuntimeConfig) -> Api {
        let db = match engine {
            Engine::Postgres => pg_database(sql).await,
            Engine::MySql => mysql_database(sql).await,
            Engine::Sqlite => sqlite_database(sql).await,
        };
        let state = dbapi_runtime::server::prepare(&db.url, config)
            .await
            .unwrap_or_else(|e| panic!("runtime could not start on {}: {e}", db.url));
        let router = api_router(state.clone());
        Api { db, state, router }
    }

    /// The router itself, for a test that reads an answer's body frame by
    /// frame.
    pub fn router(&self) -> HttpService {
        self.router.clone()
    }

    pub fn engine(&self) -> Engine {
        self.db.engine
    }

    pub async fn get(&self, uri: &str) -> Response {
        self.get_with(uri, &[]).await
    }

    pub async fn get_with(&self, uri: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::get(encode_uri(uri));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.request(req.body(Body::empty()).unwrap()).await
    }

    /// The answer's head and its body bytes as sent (compressed ones too).
    pub async fn request_bytes(&self, req: Request<Body>) -> (axum::http::response::Parts, Vec<u8>) {
        let resp = self.router.clone().oneshot(req).await.expect("the router is infallible");
        let (parts, body) = resp.into_parts();
        (parts, body.collect().await.expect("body reads").to_bytes().to_vec())
    }

    pub async fn request(&self, req: Request<Body>) -> Response {
        let resp = self.router.clone().oneshot(req).await.expect("the router is infallible");
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.expect("body reads").to_bytes();
        Response {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(bytes.to_vec()).expect("bodies are UTF-8"),
        }
    }

    /// The first column of `sql`'s rows as i64, straight from the database:
    /// the expected side of a comparison.
    pub async fn sql_i64(&self, sql: &str) -> Vec<i64> {
        fn int<R: Row>(row: &R) -> i64
        where
            for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            usize: sqlx::ColumnIndex<R>,
        {
            row.try_get::<i64, _>(0usize)
                .or_else(|_| row.try_get::<i32, _>(0usize).map(i64::from))
                .expect("an integer first column")
        }
        let q = AssertSqlSafe(sql.to_string());
        match self.engine() {
            Engine::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.db.url).await.unwrap();
                sqlx::query(q)
                    .fetch_all(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .iter()
                    .map(int)
                    .collect()
            }
            Engine::MySql => {
                let mut c = sqlx::MySqlConnection::connect(&self.db.url).await.unwrap();
                sqlx::query(q)
                    .fetch_all(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .iter()
                    .map(int)
                    .collect()
            }
            Engine::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.db.url).await.unwrap();
                sqlx::query(q)
                    .fetch_all(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .iter()
                    .map(int)
                    .collect()
            }
        }
    }

    /// Quotes an identifier for this engine, for hand-written expected SQL.
    pub fn q(&self, ident: &str) -> String {
        match self.engine() {
            Engine::MySql => format!("`{ident}`"),
            _ => format!("\"{ident}\""),
        }
    }
}

/// Percent-encodes what a browser or HTTP client would before sending
/// (spaces, quotes, braces, non-ASCII), so tests can write URLs readably.
pub fn encode_uri(uri: &str) -> String {
    let mut out = String::with_capacity(uri.len());
    for b in uri.bytes() {
        match b {
            b' ' | b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}' | 0x80.. => {
                out.push_str(&format!("%{b:02X}"))
            }
            _ => out.push(b as char),
        }
    }
    out
}

/// Requests with bodies, for the write tests.
impl Api {
    /// `method uri` with `headers` and `body`; a JSON `Content-Type` is
    /// added unless `headers` give one.
    pub async fn send(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Response {
        let mut req = Request::builder().method(method).uri(encode_uri(uri));
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.request(req.body(Body::from(body.to_string())).unwrap()).await
    }

    pub async fn post_with(&self, uri: &str, headers: &[(&str, &str)], body: &str) -> Response {
        self.send("POST", uri, headers, body).await
    }

    pub async fn patch_with(&self, uri: &str, headers: &[(&str, &str)], body: &str) -> Response {
        self.send("PATCH", uri, headers, body).await
    }

    pub async fn put_with(&self, uri: &str, headers: &[(&str, &str)], body: &str) -> Response {
        self.send("PUT", uri, headers, body).await
    }

    /// `DELETE uri` with `headers` and no body.
    pub async fn delete_with(&self, uri: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::delete(encode_uri(uri));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.request(req.body(Body::empty()).unwrap()).await
    }

    /// The first column of `sql`'s rows as text (NULL as `None`), straight
    /// from the database.
    pub async fn sql_text(&self, sql: &str) -> Vec<Option<String>> {
        fn text<R: Row>(row: &R) -> Option<String>
        where
            for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database>,
            usize: sqlx::ColumnIndex<R>,
        {
            row.try_get::<Option<String>, _>(0usize).unwrap_or_else(|_| {
                let bytes: Option<Vec<u8>> = row.try_get_unchecked(0usize).expect("a text-like first column");
                bytes.map(|b| String::from_utf8_lossy(&b).into_owned())
            })
        }
        let q = AssertSqlSafe(sql.to_string());
        match self.engine() {
            Engine::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.db.url).await.unwrap();
                let rows = sqlx::query(q).fetch_all(&mut c).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                rows.iter().map(text).collect()
            }
            Engine::MySql => {
                let mut c = sqlx::MySqlConnection::connect(&self.db.url).await.unwrap();
                let rows = sqlx::query(q).fetch_all(&mut c).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                rows.iter().map(text).collect()
            }
            Engine::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.db.url).await.unwrap();
                let rows = sqlx::query(q).fetch_all(&mut c).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                rows.iter().map(text).collect()
            }
        }
    }

    /// `SELECT COUNT(*) FROM table [WHERE ...]` straight from the database.
    pub async fn count(&self, table_and_where: &str) -> i64 {
        self.sql_i64(&format!("SELECT COUNT(*) FROM {table_and_where}")).await[0]
    }
}
