//! API keys: `apiKeys[]` of the document, checked by the SHA-256 of the
//! whole key text in constant time, with `notAfter` (per hash, for
//! rotations) and `expiresAt` (per key) honoured.

use std::sync::Arc;

use dbapi_crds::config::ApiKey;
use jiff::Timestamp;
use subtle::ConstantTimeEq;

use crate::limits::rate::Quota;

/// The configured keys, ready to check presented key texts against.
#[derive(Debug, Default)]
pub struct KeyRing {
    hashes: Vec<AcceptedHash>,
}

#[derive(Debug)]
struct AcceptedHash {
    sha256: [u8; 32],
    /// The earlier of the hash's `notAfter` and the key's `expiresAt`.
    valid_until: Option<Timestamp>,
    key: Arc<KeyEntry>,
}

/// A key that matched: its name (what logs and metrics show) and role.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyEntry {
    pub name: Arc<str>,
    pub role: Arc<str>,
    /// The key's own `rateLimit`.
    pub quota: Option<Quota>,
}

/// Why a presented key was refused; safe to show the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("Invalid API key")]
    Unknown,
    #[error("The API key has expired")]
    Expired,
}

impl KeyRing {
    /// Reads `apiKeys`; a hash that is not 64 hex digits or a time that is
    /// not RFC 3339 is an error naming the key.
    pub fn new(keys: &[ApiKey]) -> Result<KeyRing, String> {
        let mut hashes = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let at = |field: &str| format!("apiKeys[{i}] ({}).{field}", key.name);
            if key.name.is_empty() || key.role.is_empty() {
                return Err(format!("apiKeys[{i}]: every key needs a name and a role"));
            }
            let expires_at = parse_time(key.expires_at.as_deref()).map_err(|e| format!("{}: {e}", at("expiresAt")))?;
            let quota = key.rate_limit.as_ref().map(Quota::new).transpose().map_err(|e| format!("{}: {e}", at("")))?;
            let entry = Arc::new(KeyEntry { name: key.name.as_str().into(), role: key.role.as_str().into(), quota });
            for (j, hash) in key.hashes.iter().enumerate() {
                let sha256 = parse_sha256(&hash.sha256).ok_or_else(|| {
                    format!("{}: expected the 64 hex digits of a SHA-256", at(&format!("hashes[{j}].sha256")))
                })?;
                let not_after = parse_time(hash.not_after.as_deref())
                    .map_err(|e| format!("{}: {e}", at(&format!("hashes[{j}].notAfter"))))?;
                let valid_until = match (not_after, expires_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                hashes.push(AcceptedHash { sha256, valid_until, key: entry.clone() });
            }
        }
        Ok(KeyRing { hashes })
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The key whose hash matches `presented`. Every configured hash is
    /// compared, each in constant time, so the time taken says nothing
    /// about how close a guess was.
    pub fn check(&self, presented: &str, now: Timestamp) -> Result<Arc<KeyEntry>, KeyError> {
        let digest = dbapi_crds::keys::sha256(presented);
        let mut found: Option<&AcceptedHash> = None;
        for accepted in &self.hashes {
            if bool::from(accepted.sha256.ct_eq(&digest)) {
                found = Some(accepted);
            }
        }
        let accepted = found.ok_or(KeyError::Unknown)?;
        match accepted.valid_until {
            Some(until) if now > until => Err(KeyError::Expired),
            _ => Ok(accepted.key.clone()),
        }
    }
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn parse_time(text: Option<&str>) -> Result<Option<Timestamp>, String> {
    text.map(|t| t.parse::<Timestamp>().map_err(|e| format!("not an RFC 3339 time ({e})"))).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbapi_crds::config::KeyHash;
    use dbapi_crds::keys::sha256_hex;

    fn key(name: &str, text: &str, not_after: Option<&str>, expires_at: Option<&str>) -> ApiKey {
        ApiKey {
            name: name.into(),
            role: "reader".into(),
            hashes: vec![KeyHash { sha256: sha256_hex(text), not_after: not_after.map(Into::into) }],
            expires_at: expires_at.map(Into::into),
            rate_limit: None,
        }
    }

    #[test]
    fn keys_match_by_hash_and_expire() {
        let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        let ring = KeyRing::new(&[
            key("current", "dbapi_a", None, None),
            key("rotated", "dbapi_b", Some("2026-05-31T23:59:59Z"), None),
            key("until", "dbapi_c", None, Some("2026-06-01T02:00:00+02:00")),
        ])
        .unwrap();
        assert_eq!(&*ring.check("dbapi_a", now).unwrap().name, "current");
        assert_eq!(ring.check("dbapi_a ", now), Err(KeyError::Unknown));
        assert_eq!(ring.check("", now), Err(KeyError::Unknown));
        assert_eq!(ring.check("dbapi_b", now), Err(KeyError::Expired));
        // 02:00+02:00 is midnight UTC: valid at that instant, not after.
        assert!(ring.check("dbapi_c", now).is_ok());
        assert_eq!(ring.check("dbapi_c", "2026-06-01T00:00:01Z".parse().unwrap()), Err(KeyError::Expired));
    }

    #[test]
    fn bad_entries_name_the_key() {
        let mut bad = key("k", "x", None, None);
        bad.hashes[0].sha256 = "abc".into();
        assert!(KeyRing::new(&[bad]).unwrap_err().contains("apiKeys[0] (k).hashes[0].sha256"));
        let late = key("k", "x", Some("tomorrow"), None);
        assert!(KeyRing::new(&[late]).unwrap_err().contains("notAfter"));
    }
}
