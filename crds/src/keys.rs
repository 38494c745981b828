//! API key text and hashes: one format for the operator, which generates
//! keys into Secrets, and the runtime, which prints them (`keygen`) and
//! checks them against `apiKeys[].hashes`.

use sha2::{Digest, Sha256};

/// Every key starts with it, so leaked keys are easy to recognise.
pub const KEY_PREFIX: &str = "dbapi_";

/// A new high-entropy key: `dbapi_` and 256 random bits from the OS, hex
/// encoded.
pub fn generate_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{KEY_PREFIX}{}", hex(&bytes)))
}

/// The SHA-256 of the whole key text, lower-case hex, as `apiKeys[].hashes[].sha256`.
pub fn sha256_hex(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// The raw SHA-256 of a key text (or of any bytes: tokens, documents).
pub fn sha256(bytes: impl AsRef<[u8]>) -> [u8; 32] {
    Sha256::digest(bytes.as_ref()).into()
}

/// Lowercase hex digits of `bytes` (a digest's usual text form). Built
/// from a table: a `format!` per byte was most of the cost of an answer's
/// ETag.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Bytes, not chars (`String::push` encodes each char as UTF-8), into
    // a buffer of the exact size (`flat_map` gives `collect` no size, so it
    // grew the buffer as it went).
    let mut text = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]]);
    }
    String::from_utf8(text).expect("hex digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_hex() {
        let (a, b) = (generate_key().unwrap(), generate_key().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), KEY_PREFIX.len() + 64);
        assert!(a[KEY_PREFIX.len()..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn hashes_are_sha256_hex() {
        assert_eq!(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(hex(&sha256("abc")), sha256_hex("abc"));
    }
}
