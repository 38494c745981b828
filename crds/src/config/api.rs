//! `api`: how the API is served (rows, bodies, paths, request limits,
//! client addresses, CORS).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::glob_match;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ApiSettings {
    /// Most rows one response carries, applied even when the client asks for
    /// no limit; the cut is visible in `Content-Range`.
    pub max_rows: u64,
    /// Largest request body accepted; larger ones are answered 413.
    pub max_body_bytes: u64,
    /// Tables (globs) on which PATCH and DELETE without any filter are
    /// allowed; elsewhere they are refused so that one missing `?id=` cannot
    /// change every row.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_unfiltered_writes: Vec<String>,
    /// A path every API route lives under (`/rest/v1`, as Supabase serves
    /// PostgREST, so `createClient(url, key)` works unchanged); none means
    /// the API is at `/`. Starts with `/`, has no trailing slash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Longest request target (path and query string, in bytes); longer
    /// ones are answered 414.
    #[serde(skip_serializing_if = "is_default_max_url_bytes")]
    pub max_url_bytes: u64,
    /// Most filter conditions in one request, counting those inside logic
    /// trees and on embedded resources; more are answered 400.
    #[serde(skip_serializing_if = "is_default_max_filters")]
    pub max_filters: u32,
    /// Most embedded resources in one `select`, nested ones included; more
    /// are answered 400.
    #[serde(skip_serializing_if = "is_default_max_embeds")]
    pub max_embeds: u32,
    /// Cross-origin requests from browsers.
    #[serde(skip_serializing_if = "CorsSettings::is_default")]
    pub cors: CorsSettings,
    /// Proxies and load balancers (CIDRs such as `10.0.0.0/8`, or single
    /// addresses) whose `clientIpHeader` is believed. A request from any
    /// other peer is limited by its socket address, whatever it sends.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    /// The header a trusted proxy puts the client's address in. In a list
    /// (`X-Forwarded-For: client, proxy1, proxy2`) the right-most address
    /// that is not itself a trusted proxy is the client.
    #[serde(skip_serializing_if = "is_default_client_ip_header")]
    pub client_ip_header: String,
    /// Aggregate functions in `select` (`count()`, `amount.sum()`, …), as
    /// PostgREST's `db-aggregates-enabled`; off, they are refused 400
    /// `PGRST123`. The embedded count `books(count)` is always allowed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub aggregates: bool,
}

const DEFAULT_MAX_URL_BYTES: u64 = 8192;
const DEFAULT_MAX_FILTERS: u32 = 100;
const DEFAULT_MAX_EMBEDS: u32 = 20;
pub const DEFAULT_CLIENT_IP_HEADER: &str = "X-Forwarded-For";

fn is_default_client_ip_header(v: &str) -> bool {
    v == DEFAULT_CLIENT_IP_HEADER
}

fn is_default_max_url_bytes(v: &u64) -> bool {
    *v == DEFAULT_MAX_URL_BYTES
}

fn is_default_max_filters(v: &u32) -> bool {
    *v == DEFAULT_MAX_FILTERS
}

fn is_default_max_embeds(v: &u32) -> bool {
    *v == DEFAULT_MAX_EMBEDS
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            max_rows: 1000,
            max_body_bytes: 16 * 1024 * 1024,
            allow_unfiltered_writes: vec![],
            path_prefix: None,
            max_url_bytes: DEFAULT_MAX_URL_BYTES,
            max_filters: DEFAULT_MAX_FILTERS,
            max_embeds: DEFAULT_MAX_EMBEDS,
            cors: CorsSettings::default(),
            trusted_proxies: vec![],
            client_ip_header: DEFAULT_CLIENT_IP_HEADER.into(),
            aggregates: false,
        }
    }
}

/// CORS, as browsers ask for it. The default is PostgREST's: any origin,
/// every method the API takes, any request header, no credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CorsSettings {
    /// Origins allowed (`https://app.example.com`), or `*` for any.
    pub allowed_origins: Vec<String>,
    /// Methods allowed; empty means every method the API takes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_methods: Vec<String>,
    /// Request headers allowed; empty means any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_headers: Vec<String>,
    /// Whether browsers may send cookies and credentials (not with `*`
    /// origins).
    pub allow_credentials: bool,
    /// How long browsers may cache a preflight answer (seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u64>,
}

impl Default for CorsSettings {
    fn default() -> Self {
        CorsSettings {
            allowed_origins: vec!["*".into()],
            allowed_methods: vec![],
            allowed_headers: vec![],
            allow_credentials: false,
            max_age_seconds: None,
        }
    }
}

impl CorsSettings {
    pub fn is_default(&self) -> bool {
        *self == CorsSettings::default()
    }
}

impl ApiSettings {
    pub fn allows_unfiltered_write(&self, table: &str) -> bool {
        self.allow_unfiltered_writes.iter().any(|p| glob_match(p, table))
    }

    /// The path prefix as routes are built from it: empty when none is set.
    pub fn prefix(&self) -> &str {
        self.path_prefix.as_deref().unwrap_or("")
    }
}

/// Why a `pathPrefix` value cannot be served, or `None` when it can: it
/// must start with `/`, end without one, and have only non-empty segments
/// of URL-safe characters (letters, digits, `-`, `.`, `_`, `~`), none of
/// them `.` or `..`.
pub fn path_prefix_problem(prefix: &str) -> Option<String> {
    let Some(rest) = prefix.strip_prefix('/') else {
        return Some(format!("{prefix:?} must start with \"/\" (for example \"/rest/v1\")"));
    };
    if rest.is_empty() || rest.ends_with('/') {
        return Some(format!("{prefix:?} must not end with \"/\" (leave the key out to serve the API at \"/\")"));
    }
    for segment in rest.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Some(format!("{prefix:?} has an empty, \".\" or \"..\" segment"));
        }
        if let Some(c) = segment.chars().find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c))) {
            return Some(format!(
                "{prefix:?} has {c:?}; use only letters, digits, \"-\", \".\", \"_\", \"~\" and \"/\""
            ));
        }
    }
    None
}
