//! Extractors whose rejections are API errors, so a malformed request gets
//! PostgREST's JSON error shape rather than axum's plain-text body.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// axum's `Path`, rejecting with a JSON error: a table or function segment
/// that does not percent-decode to UTF-8 (`/%C0%A7`) is a 400 `PGRST100`.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => {
                let status = rejection.status();
                let code = if status.is_client_error() { "PGRST100" } else { "DBAPI500" };
                let status = if status.is_client_error() { status } else { StatusCode::INTERNAL_SERVER_ERROR };
                Err(ApiError::new(status, code, rejection.body_text()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_segment_that_is_not_utf8_is_a_json_400() {
        let app = axum::Router::new().route("/{table}", get(|Path(t): Path<String>| async move { t }));
        let request = |uri: &str| Request::get(uri).body(axum::body::Body::empty()).unwrap();
        let ok = app.clone().oneshot(request("/caf%C3%A9")).await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        let bad = app.oneshot(request("/%C0%A7")).await.unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let content_type = bad.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with("application/json"), "{content_type}");
        let body = axum::body::to_bytes(bad.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "PGRST100");
        assert!(body["message"].as_str().unwrap().contains("UTF-8"), "{body}");
    }
}
