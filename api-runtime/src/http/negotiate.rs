//! Content negotiation: which representation of rows the client accepts.

use super::error::ApiError;
use axum::http::StatusCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// `application/json`: an array of objects.
    Json,
    /// `application/vnd.pgrst.object+json`: exactly one object.
    SingleObject,
    /// `text/csv`: a header line and one line per row.
    Csv,
}

impl Representation {
    pub fn content_type(self) -> &'static str {
        match self {
            Representation::Json => "application/json; charset=utf-8",
            Representation::SingleObject => "application/vnd.pgrst.object+json; charset=utf-8",
            Representation::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// Picks the representation from an `Accept` header, honouring q-values;
/// 406 when none is available.
pub fn negotiate(accept: Option<&str>) -> Result<Representation, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Representation::Json);
    };
    let mut candidates: Vec<(f32, usize, &str)> = Vec::new();
    for (i, part) in accept.split(',').enumerate() {
        let mut pieces = part.split(';');
        let media = pieces.next().unwrap_or("").trim();
        let mut q = 1.0f32;
        for p in pieces {
            if let Some(v) = p.trim().strip_prefix("q=") {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        if q > 0.0 {
            candidates.push((q, i, media));
        }
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, media) in &candidates {
        let r = match media.to_ascii_lowercase().as_str() {
            "application/json" | "application/*" | "*/*" => Representation::Json,
            "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => Representation::SingleObject,
            "text/csv" | "text/*" => Representation::Csv,
            _ => continue,
        };
        return Ok(r);
    }
    Err(ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        "PGRST107",
        format!("None of these media types are available: {accept}"),
    )
    .hint("Accept application/json, application/vnd.pgrst.object+json or text/csv."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_by_quality_then_order() {
        assert_eq!(negotiate(None).unwrap(), Representation::Json);
        assert_eq!(negotiate(Some("text/csv")).unwrap(), Representation::Csv);
        assert_eq!(negotiate(Some("application/vnd.pgrst.object+json")).unwrap(), Representation::SingleObject);
        assert_eq!(negotiate(Some("text/csv;q=0.5, application/json")).unwrap(), Representation::Json);
        assert_eq!(negotiate(Some("image/png, */*;q=0.1")).unwrap(), Representation::Json);
        let err = negotiate(Some("image/png")).unwrap_err();
        assert_eq!(err.status, StatusCode::NOT_ACCEPTABLE);
        assert!(negotiate(Some("application/json;q=0")).is_err());
    }
}
