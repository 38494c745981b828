//! API keys: generated once, kept across reconciles and restarts, rotated
//! on request with a grace period for the old key.
//!
//! The key lives only in its Secret (`data.key`); the runtime sees hashes.
//! The Secret's annotations remember which rotation request it satisfies
//! and the previous key's hash until it expires.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;

use crate::error::{Error, Result};
use crate::resources::keys::{
    KEY_DATA, PREVIOUS_NOT_AFTER_ANNOTATION, PREVIOUS_SHA256_ANNOTATION, ROTATION_TOKEN_ANNOTATION, sha256_hex,
};

/// A new high-entropy key, in the one format the runtime's `keygen` prints too.
pub fn generate_key() -> Result<String> {
    dbapi_crds::keys::generate_key().map_err(|e| Error::Random(e.to_string()))
}

/// What a key's Secret holds today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingKey {
    pub plaintext: String,
    pub rotation_token: String,
    /// The rotated-out key's hash and the RFC 3339 time it stops working.
    pub previous: Option<(String, String)>,
    pub resource_version: Option<String>,
}

impl ExistingKey {
    /// Reads a key Secret; `None` when it holds no key (then it is
    /// regenerated, as if absent).
    pub fn from_secret(secret: &Secret) -> Option<ExistingKey> {
        let plaintext = secret.data.as_ref()?.get(KEY_DATA)?;
        let plaintext = String::from_utf8(plaintext.0.clone()).ok().filter(|k| !k.is_empty())?;
        let annotations = secret.metadata.annotations.clone().unwrap_or_default();
        let previous =
            match (annotations.get(PREVIOUS_SHA256_ANNOTATION), annotations.get(PREVIOUS_NOT_AFTER_ANNOTATION)) {
                (Some(h), Some(t)) => Some((h.clone(), t.clone())),
                _ => None,
            };
        Some(ExistingKey {
            plaintext,
            rotation_token: annotations.get(ROTATION_TOKEN_ANNOTATION).cloned().unwrap_or_default(),
            previous,
            resource_version: secret.metadata.resource_version.clone(),
        })
    }

    pub fn sha256(&self) -> String {
        sha256_hex(&self.plaintext)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAction {
    /// No usable Secret: generate a key and create it.
    Create,
    /// A new rotation was requested: new key, old one valid until then.
    Rotate {
        previous_not_after: String,
    },
    /// The previous key's grace period is over: forget its hash.
    DropPrevious,
    Keep,
}

/// Decides what to do with one key. Pure, so the rules are tested without
/// a cluster.
pub fn decide(existing: Option<&ExistingKey>, desired_token: &str, grace_seconds: u64, now: Timestamp) -> KeyAction {
    let Some(existing) = existing else { return KeyAction::Create };
    if existing.rotation_token != desired_token {
        let until = now + std::time::Duration::from_secs(grace_seconds.min(10 * 365 * 86_400));
        return KeyAction::Rotate { previous_not_after: until.to_string() };
    }
    match &existing.previous {
        Some((_, not_after)) if expired(not_after, now) => KeyAction::DropPrevious,
        _ => KeyAction::Keep,
    }
}

/// Whether an RFC 3339 time has passed; an unreadable one counts as passed,
/// so a damaged annotation never keeps an old key alive.
pub fn expired(not_after: &str, now: Timestamp) -> bool {
    not_after.parse::<Timestamp>().map(|t| t <= now).unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn existing(token: &str, previous: Option<(&str, &str)>) -> ExistingKey {
        ExistingKey {
            plaintext: "dbapi_abc".into(),
            rotation_token: token.into(),
            previous: previous.map(|(h, t)| (h.into(), t.into())),
            resource_version: Some("1".into()),
        }
    }

    #[test]
    fn rotation_rules() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(decide(None, "0/", 60, now), KeyAction::Create);
        assert_eq!(decide(Some(&existing("0/", None)), "0/", 60, now), KeyAction::Keep);
        assert_eq!(
            decide(Some(&existing("0/", None)), "1/", 3600, now),
            KeyAction::Rotate { previous_not_after: "2026-01-01T01:00:00Z".into() }
        );
        let grace = existing("1/", Some(("h", "2026-01-01T01:00:00Z")));
        assert_eq!(decide(Some(&grace), "1/", 60, now), KeyAction::Keep);
        let later: Timestamp = "2026-01-01T01:00:01Z".parse().unwrap();
        assert_eq!(decide(Some(&grace), "1/", 60, later), KeyAction::DropPrevious);
        assert!(expired("garbage", now));
    }
}
