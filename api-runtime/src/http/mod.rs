//! The HTTP surface: the API router (tables, OpenAPI, docs page) and the
//! admin router (health, readiness and metrics), with tower-http layers for the
//! cross-cutting concerns.

mod compression;
mod docs;
pub mod error;
mod extract;
mod formats;
mod gate;
mod media;
pub mod negotiate;
mod observe;
mod options;
mod read;
pub(crate) mod request_line;
mod rpc;
mod stream;
mod write;
mod zone;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dbapi_crds::config::RuntimeConfig;
use tower::ServiceBuilder;

use crate::audit::AuditLog;
use crate::db::Db;
use crate::db::replica::{CONSISTENCY_HEADER, Reads, Replica};
use crate::error::ApiError;
use crate::limits::client_ip::ClientIp;
use crate::limits::rate::RateLimiter;
use crate::plan::memo::Memo;
use crate::policy::Policy;
use crate::schema::Schema;

/// Where the interactive docs live: two path segments, so no table name
/// can collide with it.
pub const DOCS_PATH: &str = "/_/docs";
pub const OPENAPI_PATH: &str = "/_/openapi.json";

/// What every handler shares.
pub struct AppState {
    /// The primary: writes, transactions, introspection, and reads when
    /// there is no replica.
    pub db: Db,
    /// The read replica (`--read-replica-url`), which GET reads may use.
    pub replica: Option<Replica>,
    pub config: RuntimeConfig,
    schema: ArcSwap<Schema>,
    /// Counts requests against the quotas the policy gives each caller.
    pub rate: Arc<RateLimiter>,
    /// How the client's address is found (`api.trustedProxies`).
    pub clients: Arc<ClientIp>,
    /// Where writes and refusals are recorded (`audit.path`).
    pub audit: Arc<AuditLog>,
    /// The response cache, when the document has a `cache` section.
    pub cache: Option<Arc<crate::cache::ResponseCache>>,
    /// Stops requests going to a database that keeps failing.
    pub circuit: Arc<crate::db::circuit::Circuit>,
    /// Keys, tokens and roles: replaced whole when the document is
    /// reloaded; a request keeps the one it started with.
    policy: ArcSwap<Policy>,
    /// Cleared when shutdown starts, so readiness fails before the
    /// listeners close.
    accepting: AtomicBool,
    /// Reads planned before, by exact request (`plan::memo`).
    planned_reads: Memo<read::PlannedRead>,
}

/// Distinct requests whose plans are kept; a statement and its keys take
/// a few KiB, so at most a few MiB.
const PLANNED_READS: usize = 1024;

/// The per-request services a state is built with, beside the database,
/// schema, document and policy.
pub struct Services {
    pub rate: Arc<RateLimiter>,
    pub clients: ClientIp,
    pub audit: AuditLog,
    pub cache: Option<Arc<crate::cache::ResponseCache>>,
}

impl AppState {
    pub fn new(
        (db, replica): (Db, Option<Replica>),
        schema: Schema,
        config: RuntimeConfig,
        policy: Policy,
        services: Services,
    ) -> Arc<Self> {
        let Services { rate, clients, audit, cache } = services;
        let circuit = crate::db::circuit::Circuit::new(config.database.circuit.clone());
        Arc::new(AppState {
            db,
            replica,
            config,
            schema: ArcSwap::from_pointee(schema),
            rate,
            clients: Arc::new(clients),
            audit: Arc::new(audit),
            cache,
            circuit,
            policy: ArcSwap::from_pointee(policy),
            accepting: AtomicBool::new(true),
            planned_reads: Memo::new(PLANNED_READS),
        })
    }

    /// The current keys, tokens and roles.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// Puts a new policy in force for every request that starts from now.
    pub fn replace_policy(&self, policy: Policy) {
        self.policy.store(Arc::new(policy));
    }

    /// The current schema; a request keeps the one it started with.
    pub fn schema(&self) -> Arc<Schema> {
        self.schema.load_full()
    }

    /// What a request of `identity` may see and do: its role's view of the
    /// current schema, or the whole schema on an open API.
    pub fn scope(&self, identity: &crate::auth::Identity) -> crate::plan::access::Scope {
        self.policy().scope(identity, self.schema())
    }

    /// Swaps in a freshly introspected schema atomically.
    pub fn replace_schema(&self, schema: Schema) {
        self.schema.store(Arc::new(schema));
    }

    /// Where the reads of a request with these headers go: the replica,
    /// unless it is out of use or the request's `Dbapi-Consistency-Token`
    /// is ahead of it. A malformed token is refused (400 `DBAPI107`).
    pub fn reads(&self, headers: &HeaderMap) -> Result<Reads<'_>, ApiError> {
        let token = headers.get(&CONSISTENCY_HEADER).map(|v| std::str::from_utf8(v.as_bytes()).unwrap_or(""));
        crate::db::replica::route(&self.db, self.replica.as_ref(), token).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "DBAPI107", "Invalid Dbapi-Consistency-Token")
                .details(e.to_string())
                .hint("Send back the header exactly as a write's answer gave it, or leave it out.")
        })
    }

    /// Whether writes answer with a `Dbapi-Consistency-Token` (only a
    /// replica needs one).
    pub fn gives_tokens(&self) -> bool {
        self.replica.is_some()
    }

    /// Closes the primary's and the replica's connections (on shutdown).
    pub async fn close_databases(&self) {
        if let Some(replica) = &self.replica {
            replica.close().await;
        }
        self.db.close().await;
    }

    /// How many distinct reads are kept planned (`plan::memo`).
    pub fn planned_reads(&self) -> usize {
        self.planned_reads.len()
    }

    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::SeqCst);
    }
}

/// The API router on the public port. Every route lives under
/// `api.pathPrefix` (validated at start-up); other paths are 404.
pub fn api_router(state: Arc<AppState>) -> HttpService {
    let prefix = state.config.api.prefix().to_string();
    let content_headers = [
        header::CONTENT_RANGE,
        header::LOCATION,
        HeaderName::from_static("preference-applied"),
        HeaderName::from_static("content-profile"),
        HeaderName::from_static("proxy-status"),
        HeaderName::from_static("server-timing"),
        header::RETRY_AFTER,
        crate::limits::rate::RATELIMIT_LIMIT,
        crate::limits::rate::RATELIMIT_REMAINING,
        crate::limits::rate::RATELIMIT_RESET,
        CONSISTENCY_HEADER,
    ];
    let root = || get(openapi_document).options(options::root).fallback(method_not_allowed);
    let mut routes = Router::new();
    if prefix.is_empty() {
        routes = routes.route("/", root());
    } else {
        // Both `/rest/v1` and `/rest/v1/` are the prefix's root.
        routes = routes.route(&prefix, root()).route(&format!("{prefix}/"), root());
    }
    let routes = routes
        .route(&format!("{prefix}{OPENAPI_PATH}"), get(openapi_document))
        .route(
            &format!("{prefix}/{{table}}"),
            get(read::read)
                .post(write::insert)
                .patch(write::update)
                .put(write::upsert_one)
                .delete(write::delete)
                .options(options::table)
                .fallback(method_not_allowed),
        )
        .route(
            &format!("{prefix}/rpc/{{function}}"),
            get(rpc::call_get).post(rpc::call_post).options(options::function).fallback(rpc::method_not_allowed),
        )
        .fallback(not_found)
        .with_state(state.clone());
    // The layers wrap the router once, as one service, never each route:
    // axum clones a route's whole stack of layers for every request, and
    // moves each layer's future into the next (bench/README.md, "Where a
    // request's instructions go"). The docs page is static and public; the
    // document it shows is the caller's.
    use axum::middleware::from_fn;
    // Boxed once, as a whole (the gate boxes its own future): every box
    // on the way is an allocation and a copy of the future inside it.
    let gate = gate::Gate { state: state.clone(), several_schemas: state.schema().schemas.len() > 1, routes };
    let routes = docs::DocsOr::new(&prefix, gate);
    let with_cors = ServiceBuilder::new()
        .layer(crate::limits::cors::layer(&state.config.api.cors, content_headers))
        .layer_fn(compression::when_asked)
        .service(routes.clone());
    let edge = |inner| gate::Edge {
        max_url_bytes: state.config.api.max_url_bytes,
        request_timeout: Duration::from_secs(state.config.server.request_timeout_seconds.max(1)),
        routes: HttpService::new(routes.clone()),
        inner,
    };
    let timed = ServiceBuilder::new()
        .option_layer(state.config.observability.server_timing.then(|| from_fn(crate::timing::server_timing)))
        // The CORS layer answers every OPTIONS as a preflight; the edge
        // sends the others to the routes.
        .layer_fn(edge)
        .service(with_cors);
    // Outermost: every answer, a panic's 500 too, is counted and carries
    // the request's id.
    let app = observe::Observe {
        resource_of: Arc::new({
            let state = state.clone();
            move |path| resource_of(&state, path)
        }),
        inner: timed,
    };
    HttpService::new(app)
}

/// A request's way through: the whole API as [`api_router`] returns it, and
/// the routes behind identification and limits, where `OPTIONS` requests
/// that are no preflight are sent.
pub type HttpService = tower::util::BoxCloneSyncService<axum::extract::Request, Response, std::convert::Infallible>;

/// The `table` label of a request for `path`: the table or `rpc/<function>`
/// it names when the schema has one, else empty.
fn resource_of(state: &AppState, path: &str) -> String {
    let Some(rest) = path.strip_prefix(state.config.api.prefix()).and_then(|p| p.strip_prefix('/')) else {
        return String::new();
    };
    let name = percent_encoding::percent_decode_str(rest).decode_utf8_lossy();
    let schema = state.schema();
    let in_any_schema = |exists: &dyn Fn(&str) -> bool| schema.schemas.iter().any(|s| exists(s));
    match name.strip_prefix("rpc/") {
        Some(function) if in_any_schema(&|s| !schema.functions_named(s, function).is_empty()) => {
            format!("rpc/{function}")
        }
        None if in_any_schema(&|s| schema.table(s, &name).is_some()) => name.into_owned(),
        _ => String::new(),
    }
}

/// The admin router on its own port: liveness, readiness and metrics.
pub fn admin_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let metrics = crate::metrics::global();
    metrics.observe_pool(state.db.pool_status());
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], metrics.render()).into_response()
}

async fn openapi_document(
    State(state): State<Arc<AppState>>,
    axum::Extension(identity): axum::Extension<Arc<crate::auth::Identity>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // The caller's role sees what it may do, and nothing else.
    let scope = state.scope(&identity);
    let schema = &scope.schema;
    let profile = negotiate::profile(schema, &headers)?;
    let doc = crate::openapi::document(schema, profile, scope.config.api.max_rows);
    let doc =
        crate::openapi::served_under(crate::openapi::only_granted(doc, &scope, profile), state.config.api.prefix());
    let body = serde_json::to_vec(&doc).map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "DBAPI500", "Could not render the OpenAPI document")
            .details(e.to_string())
    })?;
    Ok(([(header::CONTENT_TYPE, "application/openapi+json; charset=utf-8")], body).into_response())
}

async fn not_found(State(state): State<Arc<AppState>>, uri: Uri) -> ApiError {
    ApiError::not_found(uri.path(), state.config.api.prefix())
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::method_not_allowed(method.as_str())
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the schema is loaded (always, once serving), the database
/// answers, and shutdown has not begun.
async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    if !state.accepting.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    match tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n"),
    }
}
