//! Verified tokens, kept briefly so that a client sending the same token on
//! every request costs one signature check a minute, not one per request.
//!
//! Entries are keyed by the SHA-256 of the whole token (never the token
//! itself, and never a part of it: a valid signature pasted onto other
//! claims must not hit), live at most [`TTL`] and never past the token's own
//! `exp` (plus leeway), whose expiry is checked again on every hit. An entry
//! made under an older key set (a JWKS that changed since) is not used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::TokenError;

/// How long a verified token is kept at most.
pub(crate) const TTL: Duration = Duration::from_secs(60);
/// How many tokens are kept at most.
const CAPACITY: usize = 10_000;

pub(crate) type TokenDigest = [u8; 32];

pub(crate) fn digest(token: &str) -> TokenDigest {
    digest_bytes(token.as_bytes())
}

pub(crate) fn digest_bytes(bytes: &[u8]) -> [u8; 32] {
    dbapi_crds::keys::sha256(bytes)
}

struct Entry {
    claims: Arc<serde_json::Value>,
    /// The token's `exp` (Unix seconds), if it has one.
    exp: Option<u64>,
    until: Instant,
    generation: u64,
}

#[derive(Default)]
pub(crate) struct TokenCache {
    entries: Mutex<HashMap<TokenDigest, Entry>>,
}

impl TokenCache {
    /// A kept verdict for this token: its claims, or `Expired` once its
    /// `exp` has passed (leeway included) even if the entry is still fresh.
    pub fn get(
        &self,
        digest: &TokenDigest,
        generation: u64,
        now_unix: u64,
        leeway: u64,
    ) -> Option<Result<Arc<serde_json::Value>, TokenError>> {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = entries.get(digest)?;
        if entry.generation != generation || entry.until <= Instant::now() {
            entries.remove(digest);
            return None;
        }
        if entry.exp.is_some_and(|exp| exp.saturating_add(leeway) < now_unix) {
            entries.remove(digest);
            return Some(Err(TokenError::Expired));
        }
        Some(Ok(entry.claims.clone()))
    }

    /// Keeps a verified token's claims until [`TTL`] or its `exp` (plus
    /// leeway), whichever comes first.
    pub fn insert(
        &self,
        digest: TokenDigest,
        claims: Arc<serde_json::Value>,
        generation: u64,
        now_unix: u64,
        leeway: u64,
    ) {
        let exp = claims.get("exp").and_then(|exp| exp.as_u64().or_else(|| exp.as_f64().map(|f| f.round() as u64)));
        let ttl = match exp {
            Some(exp) => TTL.min(Duration::from_secs(exp.saturating_add(leeway).saturating_sub(now_unix))),
            None => TTL,
        };
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, entry| entry.until > now && entry.generation == generation);
            if entries.len() >= CAPACITY {
                // Full of live tokens: start over rather than scan for the
                // oldest on every insert. The cost is one more signature
                // check for each of them.
                entries.clear();
            }
        }
        entries.insert(digest, Entry { claims, exp, until: now + ttl, generation });
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}
