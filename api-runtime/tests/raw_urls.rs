//! URLs as curl sends them (issue 17, item 9): `"`, `<` and `>` unencoded
//! in the query string, as PostgREST's documentation writes
//! `in.("a,b",c)`, reach the API as their percent-encoded selves, on every
//! request of a keep-alive connection; bodies and headers are untouched.
//! On the built binary, over raw sockets (an HTTP client would encode).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use support::process::{Runtime, TempDir, send};

async fn serve(root: &TempDir) -> (Runtime, support::TestDb) {
    let db = support::sqlite_database(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO items VALUES (1, 'a,b'), (2, 'c'), (3, '<tag>'), (4, 'say \"hi\"');",
    )
    .await;
    let runtime = Runtime::serve(&root.0, &["--database-url", &db.url]);
    (runtime, db)
}

/// Reads one response (status and body) with a Content-Length.
fn read_response(reader: &mut BufReader<TcpStream>) -> (u16, String) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (status, String::from_utf8(body).unwrap())
}

fn ids(body: &str) -> Vec<i64> {
    let rows: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    rows.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn quotes_and_angle_brackets_in_the_query_string_are_understood() {
    let root = TempDir::new();
    let (runtime, _db) = serve(&root).await;
    let r = send(runtime.api, "GET", "/items?name=in.(\"a,b\",c)&order=id", &[], None).unwrap();
    assert_eq!((r.status, ids(&r.body)), (200, vec![1, 2]), "{}", r.body);
    let r = send(runtime.api, "GET", "/items?name=eq.<tag>", &[], None).unwrap();
    assert_eq!((r.status, ids(&r.body)), (200, vec![3]), "{}", r.body);
    let r = send(runtime.api, "GET", "/items?name=like.*\"hi\"", &[], None).unwrap();
    assert_eq!((r.status, ids(&r.body)), (200, vec![4]), "{}", r.body);
}

#[tokio::test]
async fn every_request_of_a_keep_alive_connection_is_read_so_and_bodies_are_untouched() {
    let root = TempDir::new();
    let (runtime, _db) = serve(&root).await;
    let stream = TcpStream::connect(("127.0.0.1", runtime.api)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    // A body with quotes and brackets, then two reads with them in the URL.
    let body = r#"{"id": 5, "name": "<\"quoted\">"}"#;
    write!(
        writer,
        "POST /items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    assert_eq!(read_response(&mut reader).0, 201);
    write!(writer, "GET /items?name=eq.<\"quoted\"> HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (status, body) = read_response(&mut reader);
    assert_eq!(status, 200, "{body}");
    let rows: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rows, json!([{"id": 5, "name": "<\"quoted\">"}]), "the body was stored as sent");
    write!(writer, "GET /items?id=in.(1,\"2\")&order=id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let (status, body) = read_response(&mut reader);
    assert_eq!((status, ids(&body)), (200, vec![1, 2]), "{body}");
}
