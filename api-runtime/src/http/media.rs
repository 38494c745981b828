//! Media type handlers (PostgreSQL), as PostgREST's "Media Type Handlers":
//! a function whose result is a domain named like a media type answers
//! requests accepting that type with its value as the body; an aggregate
//! of a table's rows whose result is such a domain answers reads of the
//! table. A handler for `*/*` answers every request for its resource; a
//! handler for a built-in type (`text/csv`) replaces the built-in one.
//! The function or aggregate may set `response.headers` (a JSON array of
//! one-member objects, as PostgREST reads it) for the answer's headers.

use axum::http::header::{self, HeaderName};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::headers_for_database;
use crate::db::{Param, Statement, Tx};

use super::negotiate::{accepted, built_in};
use crate::error::ApiError;

/// The handler's media type that answers a request accepting `accept`
/// among the `offered` ones: a `*/*` handler always; else the first
/// accepted range a handler serves exactly, unless a built-in
/// representation is preferred to it.
pub(super) fn pick<'a>(accept: Option<&str>, offered: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let offered: Vec<&str> = offered.into_iter().collect();
    if offered.is_empty() {
        return None;
    }
    if offered.contains(&"*/*") {
        return Some("*/*".into());
    }
    let accept = accept.filter(|a| !a.trim().is_empty())?;
    for (media, _) in accepted(accept) {
        if let Some(handled) = offered.iter().find(|o| o.eq_ignore_ascii_case(media)) {
            return Some(handled.to_string());
        }
        if built_in(media).is_some() {
            return None;
        }
    }
    None
}

/// The request a handler answers, as it may read it in the database
/// (`request.method`, `request.path`, `request.headers`, as PostgREST sets
/// them; already set when `auth.postgresRoles` is on).
pub(super) struct Asked<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

/// Runs the handler's statement (its one value is the body) in `tx`, reads
/// the `response.headers` it set, and answers with `media_type`. For a
/// `*/*` handler the type is the first concrete one the client accepts,
/// else `application/octet-stream`; `response.headers` may name another.
pub(super) async fn answer(
    mut tx: Tx,
    statement: &Statement,
    media_type: &str,
    asked: Asked<'_>,
) -> Result<Response, ApiError> {
    if crate::db::session::current().is_none() {
        let sql = "SELECT set_config('request.method', $1, true), set_config('request.path', $2, true), \
                   set_config('request.headers', $3, true)";
        let params = [asked.method.as_str().to_string(), asked.path.to_string(), headers_for_database(asked.headers)];
        let set = Statement { sql: sql.into(), params: params.into_iter().map(Param::Text).collect(), one_off: false };
        tx.fetch_text_rows(&set).await?;
    }
    let accept = asked.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let body = tx.fetch_bytes(statement).await?;
    let set = Statement { sql: "SELECT current_setting('response.headers', true)".into(), ..Statement::default() };
    let response_headers =
        tx.fetch_text_rows(&set).await?.into_iter().next().and_then(|row| row.into_iter().next().flatten());
    tx.commit().await?;
    let content_type = match media_type {
        "*/*" => accept
            .and_then(|a| accepted(a).map(|(m, _)| m).find(|m| !m.contains('*')))
            .unwrap_or("application/octet-stream")
            .to_string(),
        other => other.to_string(),
    };
    let mut response = (StatusCode::OK, body.unwrap_or_default()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    for (name, value) in parse_response_headers(response_headers.as_deref())? {
        headers.insert(name, value);
    }
    Ok(response)
}

/// `response.headers` as PostgREST reads it: `[{"Name": "value"}, ...]`.
fn parse_response_headers(set: Option<&str>) -> Result<Vec<(HeaderName, HeaderValue)>, ApiError> {
    let Some(set) = set.filter(|s| !s.trim().is_empty()) else { return Ok(Vec::new()) };
    let bad = || {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "PGRST111",
            "response.headers guc must be a JSON array composed of objects with a single key and a string value",
        )
    };
    let items: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(set).map_err(|_| bad())?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let mut members = item.into_iter();
        let (Some((name, serde_json::Value::String(value))), None) = (members.next(), members.next()) else {
            return Err(bad());
        };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        out.push((name, HeaderValue::from_str(&value).map_err(|_| bad())?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handler_answers_only_what_the_client_prefers() {
        let twkb = ["application/vnd.twkb"];
        assert_eq!(pick(Some("application/vnd.twkb"), twkb).as_deref(), Some("application/vnd.twkb"));
        assert_eq!(pick(Some("application/json"), twkb), None);
        assert_eq!(pick(None, twkb), None);
        assert_eq!(
            pick(Some("application/json;q=0.5, application/vnd.twkb"), twkb).as_deref(),
            Some("application/vnd.twkb")
        );
        assert_eq!(pick(Some("application/json, application/vnd.twkb"), twkb), None);
        // A CSV handler replaces the built-in CSV; `*/*` is always taken.
        assert_eq!(pick(Some("text/csv"), ["text/csv"]).as_deref(), Some("text/csv"));
        assert_eq!(pick(None, ["*/*"]).as_deref(), Some("*/*"));
        assert_eq!(pick(Some("application/json"), ["text/xml", "*/*"]).as_deref(), Some("*/*"));
        assert_eq!(pick(Some("text/xml"), []), None);
    }

    #[test]
    fn response_headers_are_read_as_postgrest_writes_them() {
        let h = parse_response_headers(Some(r#"[{"Content-Disposition": "attachment; filename=\"a.csv\""}]"#)).unwrap();
        assert_eq!(h[0].0, "content-disposition");
        assert_eq!(h[0].1, "attachment; filename=\"a.csv\"");
        assert!(parse_response_headers(None).unwrap().is_empty());
        assert!(parse_response_headers(Some("")).unwrap().is_empty());
        for bad in [r#"{"a": "b"}"#, r#"[{"a": 1}]"#, r#"[{"a": "b", "c": "d"}]"#, r#"[{"bad name": "x"}]"#] {
            assert_eq!(parse_response_headers(Some(bad)).unwrap_err().code, "PGRST111", "{bad}");
        }
    }
}
