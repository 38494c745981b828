//! Writes end to end on PostgreSQL, MariaDB and SQLite: POST (single,
//! bulk, upserts), PUT, PATCH and DELETE with their `Prefer` options, one
//! transaction per request, and the errors a client gets for bad input or
//! a constraint the database enforces. What a write did is checked with
//! SQL against the same database. One module per kind of write; the
//! helpers they share are here.

#[path = "../support/mod.rs"]
mod support;

mod change;
mod errors;
mod insert;
mod shapes;
mod upsert;

use std::time::Instant;

use dbapi_crds::config::RuntimeConfig;
use serde_json::{Value, json};
use support::Engine;
use support::api::{Api, Response};

const OBJECT: &str = "application/vnd.pgrst.object+json";
const REPRESENTATION: (&str, &str) = ("prefer", "return=representation");

/// The tokens of a `Preference-Applied` header.
fn applied(r: &Response) -> Vec<String> {
    r.header("preference-applied")
        .unwrap_or("")
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

#[track_caller]
fn assert_applied(r: &Response, tokens: &[&str]) {
    let got = applied(r);
    for t in tokens {
        assert!(got.iter().any(|g| g == t), "Preference-Applied {got:?} lacks {t}");
    }
}

#[track_caller]
fn assert_json_content(r: &Response) {
    let ct = r.header("content-type").unwrap_or_else(|| panic!("no content-type; body: {}", r.body));
    assert!(ct.starts_with("application/json"), "content-type {ct}");
}

/// `"message details"` of an error body, for "names the column" checks.
fn error_text(e: &Value) -> String {
    format!(
        "{} {} {}",
        e["message"].as_str().unwrap_or(""),
        e["details"].as_str().unwrap_or(""),
        e["hint"].as_str().unwrap_or("")
    )
}
