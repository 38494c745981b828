//! The pipeline steps' errors (grammar, plan, database) as the
//! [`ApiError`]s PostgREST answers them with: its status codes and `code`
//! values, the database's SQLSTATE mapped as PostgREST maps it.

use axum::http::StatusCode;

use crate::db::DbError;
use crate::error::{ApiError, RETRY_AFTER_SECONDS};
use crate::grammar::GrammarError;
use crate::plan::PlanError;

impl From<GrammarError> for ApiError {
    fn from(e: GrammarError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, e.code, e.message).details(e.details)
    }
}

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        let message = e.to_string();
        match e {
            PlanError::Grammar(g) => g.into(),
            PlanError::UnknownTable { hint, .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "PGRST205", message).hint_opt(hint)
            }
            PlanError::UnknownColumn { hint, .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "42703", message).hint_opt(hint)
            }
            PlanError::NoRelationship { from, to, hint } => ApiError::new(StatusCode::BAD_REQUEST, "PGRST200", message)
                .details(format!(
                    "Searched for a foreign key relationship between '{from}' and '{to}', but no matches were found."
                ))
                .hint_opt(hint),
            PlanError::AmbiguousRelationship { from, to, candidates } => {
                let hints: Vec<String> = candidates.iter().map(|c| format!("'{to}!{}'", c.hint)).collect();
                let details = candidates
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "cardinality": c.cardinality,
                            "embedding": format!("{from} with {to}"),
                            "relationship": c.relationship,
                        })
                    })
                    .collect();
                let mut err = ApiError::new(StatusCode::MULTIPLE_CHOICES, "PGRST201", message).hint(format!(
                    "Try changing '{to}' to one of the following: {}. Find the desired relationship in the 'details' key.",
                    hints.join(", ")
                ));
                err.details = Some(Box::new(serde_json::Value::Array(details)));
                err
            }
            PlanError::UnsupportedOperator { hint, .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "DBAPI100", message).hint(hint)
            }
            PlanError::OperatorTypeMismatch { hint, .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "DBAPI101", message).hint(hint)
            }
            PlanError::UnknownEmbedPath { .. } => ApiError::new(StatusCode::BAD_REQUEST, "PGRST108", message)
                .hint("Add the resource to select=, e.g. select=*,items(*), before filtering or ordering inside it."),
            PlanError::InvalidValue { column, type_name, .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "22P02", message).details(format!(
                    "The filter on {column} compares it with a value that is not a valid {type_name}."
                ))
            }
            PlanError::RelatedOrderNotToOne { .. } => ApiError::new(StatusCode::BAD_REQUEST, "PGRST118", message)
                .hint("Order by columns of many-to-one or one-to-one embeds only; order one-to-many embeds with rel.order=col."),
            PlanError::UnknownBodyColumn { hint, .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "PGRST204", message).hint_opt(hint)
            }
            PlanError::Payload { details, .. } => ApiError::new(StatusCode::BAD_REQUEST, "PGRST102", message).details(details),
            PlanError::InvalidWriteValue { .. } => ApiError::new(StatusCode::BAD_REQUEST, "22P02", message)
                .hint("Send a JSON value of the column's type."),
            PlanError::Put { details, .. } => ApiError::new(StatusCode::BAD_REQUEST, "PGRST115", message).details(details),
            PlanError::Unsupported { hint, .. } => ApiError::new(StatusCode::BAD_REQUEST, "DBAPI103", message).hint(hint),
            PlanError::UnknownCast { .. } => ApiError::new(StatusCode::BAD_REQUEST, "DBAPI102", message)
                .hint("Casts may use text, integer, bigint, numeric, float, boolean, json, date or timestamp."),
            PlanError::UnknownFunction { hint, .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "PGRST202", message).hint_opt(hint)
            }
            PlanError::AmbiguousFunction { signature, .. } => {
                ApiError::new(StatusCode::MULTIPLE_CHOICES, "PGRST203", message)
                    .details(format!("The call {signature} fits more than one overload"))
                    .hint("Rename the overloaded functions, or name a parameter only one of them has.")
            }
            PlanError::PermissionDenied { details, .. } => ApiError::new(StatusCode::FORBIDDEN, "42501", message)
                .details(details)
                .hint("The caller's role is not granted this; see roles in the configuration."),
            PlanError::BadRule { .. } => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "DBAPI500", message)
                .hint("Fix the role's rule in the configuration; the server log names it."),
            PlanError::UncallableFunction { reason, .. } => ApiError::new(StatusCode::NOT_FOUND, "PGRST202", message)
                .details(reason)
                .hint("Wrap it in a function with named parameters that returns a table, a type or a value."),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(reason) | DbError::Lost(reason) => {
                tracing::warn!(%reason, "database unavailable");
                let mut err = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "PGRST003",
                    "The database is not available right now",
                )
                .details(reason)
                .hint("Retry after the number of seconds in Retry-After.");
                err.retry_after = Some(RETRY_AFTER_SECONDS);
                err
            }
            DbError::Rejected { code, message, detail, hint } => {
                let status = status_for_database_code(&code);
                if status.is_server_error() {
                    tracing::error!(%code, %message, "database rejected a statement");
                }
                let mut err = ApiError::new(status, code, message);
                err.details = detail.map(|d| Box::new(serde_json::Value::String(d)));
                err.hint = hint;
                err
            }
            DbError::Other(reason) => {
                tracing::error!(%reason, "unexpected database error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "DBAPI500", "Unexpected database error")
                    .hint("The server log has the details.")
            }
        }
    }
}

/// PostgREST's table of SQLSTATE classes, extended with the MySQL and
/// SQLite codes that mean the same.
fn status_for_database_code(code: &str) -> StatusCode {
    match code {
        // Unique and foreign key violations: PostgreSQL, MySQL (23000),
        // SQLite extended codes 2067/1555 (unique, primary key) and 787.
        "23505" | "23503" | "23000" | "2067" | "1555" | "787" => StatusCode::CONFLICT,
        "42501" => StatusCode::FORBIDDEN,
        // A write in a read-only transaction (a GET calling a function
        // that writes): PostgREST's 405.
        "25006" => StatusCode::METHOD_NOT_ALLOWED,
        // A table dropped since the schema was read (until the next reload).
        "42P01" | "42S02" => StatusCode::NOT_FOUND,
        "42883" | "42804" | "2201B" => StatusCode::BAD_REQUEST,
        // RAISE EXCEPTION (MySQL: SIGNAL) in a function: the client's error.
        "P0001" => StatusCode::BAD_REQUEST,
        // PostgREST's convention: SQLSTATE PTxyz answers HTTP status xyz.
        c if c.len() == 5 && c.starts_with("PT") => c[2..]
            .parse::<u16>()
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        "57014" => StatusCode::GATEWAY_TIMEOUT,
        c if c.starts_with("22") || c.starts_with("23") => StatusCode::BAD_REQUEST,
        c if c.starts_with("08") || c.starts_with("53") => StatusCode::SERVICE_UNAVAILABLE,
        // Infinite recursion in a policy or view is the schema's fault.
        "42P17" => StatusCode::INTERNAL_SERVER_ERROR,
        // The rest of class 42 is what a request's values can provoke: a
        // malformed tsquery or regular expression (42601, MariaDB's 42000),
        // an unknown text search configuration (42704). PostgREST answers
        // them 400 too.
        c if c.starts_with("42") => StatusCode::BAD_REQUEST,
        // MySQL's HY000 covers bad JSON and bad regular expressions in
        // values; SQLite's 1 is its generic error, raised for malformed
        // JSON values in filters.
        "HY000" | "1" => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;
    use axum::response::IntoResponse;
    use http_body_util::BodyExt;

    async fn body_of(e: ApiError) -> (StatusCode, serde_json::Value, Option<String>) {
        let r = e.into_response();
        let status = r.status();
        let retry = r.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_string());
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap(), retry)
    }

    #[tokio::test]
    async fn errors_have_postgrest_shape() {
        let (status, body, _) =
            body_of(GrammarError::new("failed to parse filter (eq1)", "expected operator.value").into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "PGRST100");
        assert_eq!(body["message"], "failed to parse filter (eq1)");
        assert_eq!(body["details"], "expected operator.value");
        assert!(body["hint"].is_null());
        assert_eq!(body.as_object().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn unavailable_database_asks_to_retry() {
        let (status, body, retry) = body_of(DbError::Unavailable("connection refused".into()).into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["code"], "PGRST003");
        assert_eq!(retry.as_deref(), Some("5"));
    }

    #[test]
    fn database_codes_map_to_statuses() {
        assert_eq!(status_for_database_code("23505"), StatusCode::CONFLICT);
        assert_eq!(status_for_database_code("P0001"), StatusCode::BAD_REQUEST);
        assert_eq!(status_for_database_code("PT402"), StatusCode::PAYMENT_REQUIRED);
        assert_eq!(status_for_database_code("PT200"), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(status_for_database_code("22P02"), StatusCode::BAD_REQUEST);
        assert_eq!(status_for_database_code("XX000"), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(status_for_database_code("08006"), StatusCode::SERVICE_UNAVAILABLE);
        // Values the database refuses to read (`fts.(`, `match.(`, `fts(nope).x`).
        for code in ["42601", "42000", "42704"] {
            assert_eq!(status_for_database_code(code), StatusCode::BAD_REQUEST, "{code}");
        }
        assert_eq!(status_for_database_code("42P17"), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
