//! Content negotiation: which representation of rows the client accepts,
//! and which exposed schema (`Accept-Profile`, `Content-Profile`).

use axum::http::{HeaderMap, HeaderValue, StatusCode};

use crate::error::ApiError;
use crate::schema::{Engine, Schema};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// `application/json`: an array of objects.
    Json,
    /// `application/vnd.pgrst.object+json`: exactly one object.
    SingleObject,
    /// `text/csv`: a header line and one line per row.
    Csv,
    /// `application/x-ndjson`: one JSON object per line. Not PostgREST's:
    /// with CSV, the representation a table read streams.
    Ndjson,
}

impl Representation {
    /// Written row by row, so a table read can stream it from the database
    /// (see `http::stream`) instead of holding an array of the rows.
    pub fn is_row_by_row(self) -> bool {
        matches!(self, Representation::Csv | Representation::Ndjson)
    }
}

/// The chosen representation and whether null members are dropped
/// (`;nulls=stripped`, as postgrest-js's `stripNulls()` asks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub representation: Representation,
    pub strip_nulls: bool,
}

impl Negotiated {
    pub fn content_type(self) -> &'static str {
        match (self.representation, self.strip_nulls) {
            (Representation::Json, false) => "application/json; charset=utf-8",
            (Representation::Json, true) => "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8",
            (Representation::SingleObject, false) => "application/vnd.pgrst.object+json; charset=utf-8",
            (Representation::SingleObject, true) => "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8",
            (Representation::Csv, _) => "text/csv; charset=utf-8",
            (Representation::Ndjson, _) => "application/x-ndjson",
        }
    }
}

/// Removes object members whose value is null, at every depth.
pub fn strip_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Picks the representation from an `Accept` header, honouring q-values;
/// 406 when none is available.
pub fn negotiate(accept: Option<&str>) -> Result<Negotiated, ApiError> {
    let json = Negotiated { representation: Representation::Json, strip_nulls: false };
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(json);
    };
    if let Some((representation, strip_nulls)) = accepted(accept).find_map(|(m, s)| built_in(m).map(|r| (r, s))) {
        return Ok(Negotiated { representation, strip_nulls });
    }
    Err(ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        "PGRST107",
        format!("None of these media types are available: {accept}"),
    )
    .hint("Accept application/json, application/vnd.pgrst.object+json, text/csv or application/x-ndjson."))
}

/// The media ranges of an `Accept` header, most preferred first (by
/// q-value, then in the order written), without those refused (`q=0`),
/// each with whether it asks for nulls stripped.
pub fn accepted(accept: &str) -> impl Iterator<Item = (&str, bool)> {
    let mut candidates: Vec<(f32, usize, &str, bool)> = Vec::new();
    for (i, part) in accept.split(',').enumerate() {
        let mut pieces = part.split(';');
        let media = pieces.next().unwrap_or("").trim();
        let (mut q, mut stripped) = (1.0f32, false);
        for p in pieces {
            let p = p.trim();
            if let Some(v) = p.strip_prefix("q=") {
                q = v.trim().parse().unwrap_or(0.0);
            } else if p.eq_ignore_ascii_case("nulls=stripped") {
                stripped = true;
            }
        }
        if q > 0.0 && !media.is_empty() {
            candidates.push((q, i, media, stripped));
        }
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    candidates.into_iter().map(|(_, _, media, stripped)| (media, stripped))
}

/// The built-in representation a media range asks for, if any.
pub fn built_in(media: &str) -> Option<Representation> {
    Some(match media.to_ascii_lowercase().as_str() {
        "application/json" | "application/*" | "*/*" => Representation::Json,
        "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" => Representation::Json,
        "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => Representation::SingleObject,
        "text/csv" | "text/*" => Representation::Csv,
        "application/x-ndjson" => Representation::Ndjson,
        _ => return None,
    })
}

/// The schema a request is answered from when the API has several, as the
/// `Content-Profile` its successful answer carries: the one
/// `Accept-Profile` (reads) or `Content-Profile` (writes) asked for, else
/// the default. None when the one asked for does not exist (the handler
/// answers that).
pub fn answered_profile(schema: &Schema, request: &axum::extract::Request) -> Option<HeaderValue> {
    let asked = if matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD) {
        "accept-profile"
    } else {
        "content-profile"
    };
    let profile = profile_from(schema, request.headers(), asked).ok()?;
    HeaderValue::from_str(profile).ok()
}

/// Names the schema on a successful answer.
pub fn label_profile(response: &mut axum::response::Response, profile: HeaderValue) {
    if response.status().is_success() || response.status().is_redirection() {
        response.headers_mut().insert("content-profile", profile);
    }
}

/// The exposed schema a request reads: `Accept-Profile`, else the default.
pub(crate) fn profile<'s>(schema: &'s Schema, headers: &HeaderMap) -> Result<&'s str, ApiError> {
    profile_from(schema, headers, "accept-profile")
}

/// The exposed schema named by `header` (`Content-Profile` for writes).
pub(crate) fn profile_from<'s>(schema: &'s Schema, headers: &HeaderMap, header: &str) -> Result<&'s str, ApiError> {
    match headers.get(header).and_then(|v| v.to_str().ok()) {
        None => Ok(schema.default_schema()),
        // PostgreSQL's default schema, which clients such as postgrest-py
        // name in every request: on engines without schemas of that name
        // it is the default one.
        Some("public") if schema.engine != Engine::Postgres && !schema.schemas.iter().any(|s| s == "public") => {
            Ok(schema.default_schema())
        }
        Some(wanted) => schema.schemas.iter().find(|s| *s == wanted).map(String::as_str).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "PGRST106",
                format!("The schema must be one of the following: {}", schema.schemas.join(", ")),
            )
            .details(format!("Accept-Profile asked for {wanted:?}"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_nulls_at_every_depth() {
        let mut v = serde_json::json!([{"a": null, "b": {"c": null, "d": 1}, "e": [{"f": null}]}]);
        strip_nulls(&mut v);
        assert_eq!(v, serde_json::json!([{"b": {"d": 1}, "e": [{}]}]));
    }

    #[test]
    fn picks_by_quality_then_order() {
        let r = |a| negotiate(Some(a)).unwrap().representation;
        assert_eq!(negotiate(None).unwrap().representation, Representation::Json);
        assert_eq!(r("text/csv"), Representation::Csv);
        assert_eq!(r("application/x-ndjson"), Representation::Ndjson);
        assert_eq!(r("application/x-ndjson;q=0.5, text/csv"), Representation::Csv);
        assert_eq!(r("application/vnd.pgrst.object+json"), Representation::SingleObject);
        assert_eq!(r("text/csv;q=0.5, application/json"), Representation::Json);
        assert_eq!(r("image/png, */*;q=0.1"), Representation::Json);
        let stripped = negotiate(Some("application/vnd.pgrst.array+json;nulls=stripped")).unwrap();
        assert_eq!(stripped, Negotiated { representation: Representation::Json, strip_nulls: true });
        let err = negotiate(Some("image/png")).unwrap_err();
        assert_eq!(err.status, StatusCode::NOT_ACCEPTABLE);
        assert!(negotiate(Some("application/json;q=0")).is_err());
    }
}
