//! The runtime's own HTTP requests (a JWKS document, OTLP traces): one
//! client for http:// and https://, with rustls (ring) and the system's CA
//! certificates (`SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured).

use bytes::Bytes;
use http::{Request, Response, Uri};
use hyper::body::{Body, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An http:// or https:// client sending bodies of type `B`.
#[derive(Clone)]
pub(crate) enum HttpClient<B> {
    Http(Client<HttpConnector, B>),
    Https(Client<hyper_rustls::HttpsConnector<HttpConnector>, B>),
}

impl<B> std::fmt::Debug for HttpClient<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HttpClient::Http(_) => "HttpClient(http)",
            HttpClient::Https(_) => "HttpClient(https)",
        })
    }
}

impl<B> HttpClient<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// A client for `url`, which must be http:// or https://.
    pub fn for_url(url: &str) -> Result<(Uri, HttpClient<B>), String> {
        let uri: Uri = url.parse().map_err(|e| format!("is not a URL: {e}"))?;
        if uri.host().is_none() {
            return Err("has no host".into());
        }
        let builder = Client::builder(TokioExecutor::new());
        let client = match uri.scheme_str() {
            Some("http") => HttpClient::Http(builder.build(HttpConnector::new())),
            Some("https") => {
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
                    .map_err(|e| {
                        format!(
                            "needs the system's CA certificates, which cannot be loaded ({e}); \
                             install them (ca-certificates) or point SSL_CERT_FILE at a bundle"
                        )
                    })?
                    .https_only()
                    .enable_http1()
                    .build();
                HttpClient::Https(builder.build(connector))
            }
            _ => return Err("must start with http:// or https://".into()),
        };
        Ok((uri, client))
    }

    /// Sends `request`; the error is one line with its causes.
    pub async fn send(&self, request: Request<B>) -> Result<Response<Incoming>, String> {
        match self {
            HttpClient::Http(client) => client.request(request).await,
            HttpClient::Https(client) => client.request(request).await,
        }
        .map_err(|e| error_chain(&e))
    }
}

/// An error and its causes, as one line ("client error (Connect): tcp
/// connect error: Connection refused").
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
