//! Types shared by the operator and the runtime.
//!
//! The runtime configuration document ([`config::RuntimeConfig`]) is the one
//! contract between them: the operator writes exactly this document, the
//! runtime reads it. Unknown keys are refused so that a field the runtime does
//! not implement yet is never silently ignored.

pub mod config;
#[cfg(feature = "kube")]
pub mod crd;
pub mod keys;
