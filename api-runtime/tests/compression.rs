//! Answers are compressed as the client's `Accept-Encoding` asks (brotli or
//! gzip), from 1 KiB up; small ones and clients that ask for nothing get
//! the plain body.

mod support;

use std::io::Read;

use axum::body::Body;
use axum::http::Request;
use dbapi_crds::config::RuntimeConfig;
use support::Engine;
use support::api::Api;

const SQL: &str = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(100));
    INSERT INTO notes VALUES (1, 'the first note, long enough to be worth compressing when repeated');";

async fn notes(engine: Engine) -> Api {
    let api = Api::with_sql(engine, SQL, RuntimeConfig::default()).await;
    let rows: Vec<String> = (2..=60).map(|i| format!("({i}, 'note number {i} says the same thing again')")).collect();
    api.db.execute(&format!("INSERT INTO notes VALUES {}", rows.join(", "))).await;
    api
}

fn get(path: &str, accept_encoding: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(encoding) = accept_encoding {
        request = request.header("accept-encoding", encoding);
    }
    request.body(Body::empty()).unwrap()
}

fn decode(encoding: Option<&str>, body: &[u8]) -> String {
    let mut text = String::new();
    match encoding {
        Some("br") => brotli::Decompressor::new(body, 4096).read_to_string(&mut text).unwrap(),
        Some("gzip") => flate2::read::GzDecoder::new(body).read_to_string(&mut text).unwrap(),
        None => return String::from_utf8(body.to_vec()).unwrap(),
        Some(other) => panic!("unexpected encoding {other}"),
    };
    text
}

async fn large_answers_are_compressed_as_asked(engine: Engine) {
    let api = notes(engine).await;
    let (plain_head, plain) = api.request_bytes(get("/notes?order=id", None)).await;
    let rows = plain_head.headers.get("content-range").cloned();
    assert_eq!(rows.as_ref().map(|v| v.to_str().unwrap()), Some("0-59/*"));
    assert!(plain.len() > 2048, "a large answer: {} bytes", plain.len());
    for (asked, expected) in
        [("br", Some("br")), ("gzip", Some("gzip")), ("gzip;q=0.5, br", Some("br")), ("identity", None)]
    {
        let (head, body) = api.request_bytes(get("/notes?order=id", Some(asked))).await;
        assert_eq!(head.status, 200);
        assert_eq!(head.headers.get("content-range"), rows.as_ref(), "the row range survives compression");
        let encoding = head.headers.get("content-encoding").map(|v| v.to_str().unwrap());
        assert_eq!(encoding, expected, "Accept-Encoding: {asked}");
        if expected.is_some() {
            assert!(body.len() < plain.len() / 2, "{asked}: {} of {} bytes", body.len(), plain.len());
            let vary: Vec<&str> = head.headers.get_all("vary").iter().map(|v| v.to_str().unwrap()).collect();
            assert!(vary.iter().any(|v| v.contains("accept-encoding")), "{vary:?}");
        }
        assert_eq!(decode(encoding, &body).as_bytes(), plain.as_slice(), "{asked}");
    }
}

async fn small_answers_stay_plain(engine: Engine) {
    let api = notes(engine).await;
    let (head, body) = api.request_bytes(get("/notes?id=eq.1", Some("br, gzip"))).await;
    assert_eq!(head.status, 200);
    assert!(body.len() < 1024);
    assert_eq!(head.headers.get("content-encoding"), None);
    assert!(String::from_utf8(body).unwrap().contains("the first note"));
}

/// A client that sends no `Accept-Encoding` skips the compression layer
/// (bench/README.md), yet every answer that layer would compress for
/// another client still says it varies with `Accept-Encoding`, so that a
/// shared cache does not hand the plain one to a client that asked, or the
/// reverse; a small one does not.
async fn compressible_answers_vary_with_accept_encoding_for_every_client(engine: Engine) {
    let api = notes(engine).await;
    let rows: Vec<String> =
        (100..130).map(|i| format!(r#"{{"id":{i},"body":"a written note, long enough to add up"}}"#)).collect();
    let insert = || {
        Request::post("/notes")
            .header("content-type", "application/json")
            .header("prefer", "return=representation")
            .body(Body::from(format!("[{}]", rows.join(","))))
            .unwrap()
    };
    let varies = |head: &axum::http::response::Parts| {
        head.headers.get_all("vary").iter().any(|v| v.to_str().unwrap().contains("accept-encoding"))
    };
    let (head, body) = api.request_bytes(insert()).await;
    assert_eq!(head.status, 201, "{}", String::from_utf8_lossy(&body));
    assert!(body.len() > 1024, "{} bytes", body.len());
    assert_eq!(head.headers.get("content-encoding"), None);
    assert!(varies(&head), "{:?}", head.headers);
    let (head, body) = api.request_bytes(get("/", None)).await;
    assert_eq!(head.status, 200);
    assert!(body.len() > 1024 && varies(&head), "the OpenAPI document: {:?}", head.headers);

    let one = Request::post("/notes")
        .header("content-type", "application/json")
        .header("prefer", "return=representation")
        .body(Body::from(r#"{"id":200,"body":"short"}"#))
        .unwrap();
    let (head, body) = api.request_bytes(one).await;
    assert_eq!(head.status, 201, "{}", String::from_utf8_lossy(&body));
    assert!(!varies(&head), "a small answer is never compressed: {:?}", head.headers);
}

on_every_engine!(
    large_answers_are_compressed_as_asked,
    small_answers_stay_plain,
    compressible_answers_vary_with_accept_encoding_for_every_client
);
