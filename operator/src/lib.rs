//! dbapi-operator: reconciles `DatabaseApi` resources.
//!
//! `resources` holds pure functions from a `DatabaseApi` (and what the
//! operator read from the cluster) to the desired child objects;
//! `reconcile` applies them with server-side apply, prunes what is no
//! longer desired and writes status (`status` computes the conditions);
//! `controller` wires the watches; `keys` generates and rotates API keys;
//! `metrics` serves /metrics and /healthz; `leader` elects one replica on a
//! Lease.

pub mod controller;
pub mod error;
pub mod keys;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod resources;
pub mod status;
