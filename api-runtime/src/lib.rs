//! dbapi-runtime: serves a SQL database as a PostgREST-compatible REST API.
//!
//! The request pipeline, one module per step (DESIGN §3):
//! `http` (routing, negotiation, responses) → `auth` (who is calling) → `grammar` (URL to AST) →
//! `plan` (names checked against `schema`) → `sql` (one renderer per
//! dialect) → `db` (execution; the database builds the JSON). `audit` records writes and refusals, `config`
//! reads flags and the configuration document (`reload` re-reads it on change), `server` runs start-up and
//! shutdown, `metrics` counts for the admin port's `/metrics`, `limits` bounds what one request or
//! connection may take, `openapi` describes the live schema, `demo` bundles a sample, `cache` keeps answers and learns
//! of writes (the PostgreSQL change feed).

pub mod audit;
pub mod auth;
pub mod cache;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod grammar;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod openapi;
mod outbound;
pub mod plan;
pub mod policy;
pub mod redis_link;
pub mod reload;
pub mod request_id;
pub mod schema;
pub mod server;
pub mod sql;
pub mod telemetry;
pub mod timing;
