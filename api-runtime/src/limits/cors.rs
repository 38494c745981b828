//! CORS from `api.cors`, through tower-http's `CorsLayer`. The default is
//! PostgREST's: any origin, every method the API takes, any request header,
//! no credentials.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method};
use dbapi_crds::config::CorsSettings;
use tower_http::cors::{AllowHeaders, AllowOrigin, Any, CorsLayer};

/// The methods the API takes, allowed when `allowedMethods` is empty.
const API_METHODS: [Method; 7] =
    [Method::GET, Method::HEAD, Method::POST, Method::PATCH, Method::PUT, Method::DELETE, Method::OPTIONS];

fn any_origin(settings: &CorsSettings) -> bool {
    settings.allowed_origins.is_empty() || settings.allowed_origins.iter().any(|o| o == "*")
}

/// Settings `CorsLayer` would refuse (it panics on them), or that no
/// browser would honour.
pub fn validate(settings: &CorsSettings) -> Result<(), String> {
    if settings.allow_credentials && any_origin(settings) {
        return Err("api.cors.allowCredentials needs api.cors.allowedOrigins to list the origins: \
                    browsers refuse credentials from a server that allows any origin"
            .into());
    }
    if !any_origin(settings) {
        for origin in &settings.allowed_origins {
            HeaderValue::from_str(origin)
                .map_err(|_| format!("api.cors.allowedOrigins: {origin:?} is not a valid origin"))?;
        }
    }
    for method in &settings.allowed_methods {
        Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("api.cors.allowedMethods: {method:?} is not an HTTP method"))?;
    }
    for name in &settings.allowed_headers {
        if name != "*" {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("api.cors.allowedHeaders: {name:?} is not a header name"))?;
        }
    }
    Ok(())
}

/// The layer for valid settings (see [`validate`]); `expose` are the
/// response headers browsers may read.
pub fn layer(settings: &CorsSettings, expose: impl IntoIterator<Item = HeaderName>) -> CorsLayer {
    let mut cors = CorsLayer::new().expose_headers(expose.into_iter().collect::<Vec<_>>());
    cors = if any_origin(settings) {
        cors.allow_origin(Any)
    } else {
        let origins = settings.allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok());
        cors.allow_origin(AllowOrigin::list(origins))
    };
    cors = if settings.allowed_methods.is_empty() {
        cors.allow_methods(API_METHODS)
    } else {
        let methods =
            settings.allowed_methods.iter().filter_map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok());
        cors.allow_methods(methods.collect::<Vec<_>>())
    };
    let any_header = settings.allowed_headers.is_empty() || settings.allowed_headers.iter().any(|h| h == "*");
    cors = match (any_header, settings.allow_credentials) {
        (true, false) => cors.allow_headers(Any),
        // `*` does not cover credentialed requests: echo what is asked.
        (true, true) => cors.allow_headers(AllowHeaders::mirror_request()),
        (false, _) => {
            let names = settings.allowed_headers.iter().filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok());
            cors.allow_headers(names.collect::<Vec<_>>())
        }
    };
    if let Some(seconds) = settings.max_age_seconds {
        cors = cors.max_age(Duration::from_secs(seconds));
    }
    cors.allow_credentials(settings.allow_credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_need_listed_origins() {
        let bad = CorsSettings { allow_credentials: true, ..CorsSettings::default() };
        assert!(validate(&bad).unwrap_err().contains("allowedOrigins"));
        let good = CorsSettings { allowed_origins: vec!["https://a.example".into()], ..bad };
        assert_eq!(validate(&good), Ok(()));
        // Building the layer for valid settings does not panic.
        let _ = layer(&good, []);
        let _ = layer(&CorsSettings::default(), []);
        let bad_method = CorsSettings { allowed_methods: vec!["GE T".into()], ..CorsSettings::default() };
        assert!(validate(&bad_method).is_err());
    }
}
