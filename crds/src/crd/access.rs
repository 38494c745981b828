//! Who may call the API and what they may do: `spec.auth` (JWT, the
//! anonymous role, PostgreSQL roles), `spec.roles` and `spec.apiKeys`.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::{KEY_NAME, ROLE_NAME, RateLimitSpec, SecretKeyRef};

/// How callers without an API key are authenticated.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// Accept JSON Web Tokens (HS256) signed with a shared secret; a claim
    /// names the caller's role. Unset: tokens are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "JwtSpec")]
    pub jwt: Option<JwtSpec>,
    /// The role of requests with neither key nor token; one of spec.roles.
    /// Unset: such requests are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", length(max = 63))]
    pub anonymous_role: Option<String>,
    /// PostgreSQL only: each request also runs as the database role of the
    /// same name (`SET LOCAL ROLE`) with PostgREST's `request.jwt.claims`,
    /// `request.method`, `request.path` and `request.headers` settings, so
    /// grants and Row Level Security policies written for PostgREST or
    /// Supabase apply. The roles must exist and be granted to the
    /// database URL's user. Default: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub postgres_roles: bool,
}

/// JSON Web Token verification. Public keys (RS/ES/EdDSA) come from a
/// JWKS URL, such as an identity provider's
/// `/.well-known/jwks.json`: the runtime's file settings
/// (`publicKeyFile`, `jwksFile`) are not offered here.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.secretRef) || has(self.jwksUrl)").message("auth.jwt needs secretRef (HS256/384/512) or jwksUrl (public keys)"))]
pub struct JwtSpec {
    /// The Secret key holding the HMAC secret HS256/384/512 tokens are
    /// signed with; it reaches the pods as `DBAPI_JWT_SECRET`. Unset: only
    /// jwksUrl's keys verify tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "SecretKeyRef")]
    pub secret_ref: Option<SecretKeyRef>,
    /// The claim naming the role.
    #[serde(default = "default_role_claim")]
    #[schemars(length(min = 1))]
    pub role_claim: String,
    /// Required `aud` claim. Unset: the audience is not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub audience: Option<String>,
    /// Signature algorithms accepted. Empty: HS256.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 10),
        extend("items" = {"type": "string", "enum": ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"]})
    )]
    pub algorithms: Vec<String>,
    /// A JSON Web Key Set (https://) whose keys, chosen by `kid`, verify
    /// tokens; fetched again every jwksRefreshSeconds and when an unknown
    /// `kid` arrives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", length(max = 2048), regex(pattern = r"^https?://[^\s]+$"))]
    pub jwks_url: Option<String>,
    /// Seconds between fetches of jwksUrl. Unset: 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64", range(min = 10))]
    pub jwks_refresh_seconds: Option<u64>,
    /// Required `iss` claim. Unset: the issuer is not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub issuer: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds. Unset: 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64", range(max = 3600))]
    pub leeway_seconds: Option<u64>,
}

fn default_role_claim() -> String {
    "role".into()
}

/// A named set of permissions.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RoleSpec {
    /// Name of the role: lower-case letters, digits, `-` and `_`.
    #[schemars(length(max = 63), regex(pattern = ROLE_NAME))]
    pub name: String,
    /// What the role may do; a request is allowed when any rule allows it.
    /// Empty: nothing.
    pub rules: Vec<RuleSpec>,
    /// A rate limit for callers acting as this role, instead of
    /// spec.rateLimit (a key's own rateLimit still wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "RateLimitSpec")]
    pub rate_limit: Option<RateLimitSpec>,
    /// The most rows one read by this role answers, instead of
    /// spec.api.maxRows: lower caps every answer; higher lifts the cap only
    /// for NDJSON and CSV table reads, which are streamed, never held in
    /// memory (a role that may export whole tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_rows: Option<u64>,
}

/// Tables and verbs a role may use, optionally limited to columns and rows.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RuleSpec {
    /// Table names or globs; `*` is every table.
    #[schemars(length(min = 1))]
    pub tables: Vec<String>,
    /// Allowed HTTP methods: GET, POST, PATCH, PUT, DELETE.
    #[schemars(
        length(min = 1),
        extend("items" = {"type": "string", "enum": ["GET", "POST", "PATCH", "PUT", "DELETE"]})
    )]
    pub verbs: Vec<String>,
    /// Visible and writable columns; empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// A filter in the URL grammar added to every request (`region=eq.eu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub row_filter: Option<String>,
    /// Functions (`/rpc/<name>`) the role may call, as names or globs, with
    /// the verbs above (GET or POST). Empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<String>,
}

/// An API key the operator generates and rotates.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeySpec {
    /// Name of the key, a DNS label of at most 40 characters; its Secret is
    /// `<databaseapi>-key-<name>`.
    #[schemars(length(min = 1, max = 40), regex(pattern = KEY_NAME))]
    pub name: String,
    /// The role the key acts as; one of spec.roles.
    #[schemars(length(max = 63))]
    pub role: String,
    /// RFC 3339 time after which the key is refused (`2027-01-01T00:00:00Z`).
    /// Unset: the key does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub expires_at: Option<String>,
    /// Raise to rotate the key: a new key is generated and the old one stays
    /// valid for rotationGracePeriodSeconds. The annotation
    /// `dbapi.dev/rotate-key-<name>` with any new value does the same.
    #[serde(default)]
    pub rotation: u32,
    /// Seconds a rotated-out key keeps working.
    #[serde(default = "default_grace")]
    pub rotation_grace_period_seconds: u64,
    /// A rate limit for this key instead of spec.rateLimit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "RateLimitSpec")]
    pub rate_limit: Option<RateLimitSpec>,
}

fn default_grace() -> u64 {
    86_400
}
