//! The request and connection limits of the spec: CORS (under
//! `spec.database`, with the other API settings) and `spec.server`.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// CORS answers of the API.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.allowCredentials || (size(self.allowedOrigins) > 0 && !self.allowedOrigins.exists(o, o == '*'))").message("cors.allowCredentials needs cors.allowedOrigins to list the origins (browsers refuse credentials with *)"))]
pub struct CorsSpec {
    /// Origins allowed (`https://app.example.com`), or `*` for any. Empty:
    /// any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 253)))]
    pub allowed_origins: Vec<String>,
    /// Methods allowed. Empty: every method the API takes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_methods: Vec<String>,
    /// Request headers allowed. Empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_headers: Vec<String>,
    /// Whether browsers may send credentials (needs explicit origins).
    #[serde(default)]
    pub allow_credentials: bool,
    /// Seconds a browser may cache a preflight answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64")]
    pub max_age_seconds: Option<u64>,
}

/// Limits of each runtime pod's HTTP server; each unset field keeps the
/// runtime's default.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServerSpec {
    /// Seconds a client may take to send a whole request head before its
    /// connection is closed. Unset: 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64", range(min = 1))]
    pub header_read_timeout_seconds: Option<u64>,
    /// Seconds an idle keep-alive connection stays open. Unset: 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64", range(min = 1))]
    pub idle_timeout_seconds: Option<u64>,
    /// Seconds a request may run before it is answered 504 and its query
    /// cancelled. Unset: 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64", range(min = 1))]
    pub request_timeout_seconds: Option<u64>,
    /// Most client connections one pod serves at once; more wait to be
    /// accepted. Unset: 10000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u32", range(min = 1))]
    pub max_connections: Option<u32>,
    /// Seconds a stopping pod keeps accepting with readiness already false,
    /// so the Service stops routing to it first. Unset: 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64", range(max = 300))]
    pub drain_delay_seconds: Option<u64>,
    /// Seconds in-flight requests then have to finish before the pod exits
    /// anyway. The pod's terminationGracePeriodSeconds covers both. Unset:
    /// 25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64", range(max = 3600))]
    pub shutdown_grace_seconds: Option<u64>,
}
