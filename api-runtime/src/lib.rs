//! dbapi-runtime: serves a SQL database as a PostgREST-compatible REST API.
//!
//! The request pipeline, one module per step (DESIGN §3):
//! `http` (routing, negotiation) → `grammar` (URL to AST) → `plan` (names
//! checked against `schema`) → `sql` (one renderer per dialect) → `db`
//! (execution; the database builds the JSON) → response.

pub mod db;
pub mod grammar;
pub mod schema;
pub mod plan;
pub mod sql;
