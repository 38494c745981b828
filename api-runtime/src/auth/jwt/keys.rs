//! Public keys tokens are verified with: read from a PEM file or a JWKS
//! document, each tagged with what it may verify so that a key is only ever
//! used with an algorithm of its own kind (no HS256 against an RSA key).

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

/// One public key (RSA, EC P-256/P-384 or Ed25519).
#[derive(Clone)]
pub(crate) struct PublicKey {
    /// The JWK's `kid`; none for a PEM file.
    pub kid: Option<String>,
    /// The JWK's `alg`, when it names one: then only that algorithm.
    pub alg: Option<Algorithm>,
    pub key: DecodingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey").field("kid", &self.kid).field("kind", &self.kind()).finish()
    }
}

impl PublicKey {
    /// Whether a token signed with `alg` may be checked with this key: same
    /// family, same curve for EC, and the JWK's own `alg` when it has one.
    pub fn fits(&self, alg: Algorithm) -> bool {
        if self.alg.is_some_and(|own| own != alg) || alg.family() != self.key.family() {
            return false;
        }
        match alg {
            Algorithm::ES256 => self.ec_bytes() == Some(65),
            Algorithm::ES384 => self.ec_bytes() == Some(97),
            _ => true,
        }
    }

    /// The length of an uncompressed EC point (65 for P-256, 97 for P-384).
    fn ec_bytes(&self) -> Option<usize> {
        (self.key.family() == AlgorithmFamily::Ec).then(|| self.key.try_get_as_bytes().map_or(0, <[u8]>::len))
    }

    /// What the key is, for messages: "an RSA key", "a P-256 EC key", ...
    pub fn kind(&self) -> &'static str {
        match self.key.family() {
            AlgorithmFamily::Rsa => "an RSA key",
            AlgorithmFamily::Ec if self.ec_bytes() == Some(65) => "a P-256 EC key",
            AlgorithmFamily::Ec => "a P-384 EC key",
            AlgorithmFamily::Ed => "an Ed25519 key",
            AlgorithmFamily::Hmac => "an HMAC secret",
        }
    }

    /// A PEM public key (`PUBLIC KEY`, `RSA PUBLIC KEY` or a certificate).
    pub fn from_pem(pem: &[u8]) -> Result<PublicKey, String> {
        let text = String::from_utf8_lossy(pem);
        if text.contains("PRIVATE KEY-----") {
            return Err("it holds a private key; give the public key (`openssl pkey -in key.pem -pubout`)".into());
        }
        if !text.contains("-----BEGIN") {
            return Err("it is not PEM (no -----BEGIN line)".into());
        }
        let key = DecodingKey::from_rsa_pem(pem)
            .or_else(|_| DecodingKey::from_ec_pem(pem))
            .or_else(|_| DecodingKey::from_ed_pem(pem))
            .map_err(|_| "it holds no RSA, EC or Ed25519 public key that can be read".to_string())?;
        let key = PublicKey { kid: None, alg: None, key };
        key.check()?;
        Ok(key)
    }

    /// A key of a JWKS document. Symmetric (`oct`) keys are refused: an HMAC
    /// secret belongs in `auth.jwt.secret`, not in a document fetched over
    /// the network.
    pub fn from_jwk(jwk: &Jwk) -> Result<PublicKey, String> {
        if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature) {
            return Err("its use is not sig".into());
        }
        let alg = match jwk.common.key_algorithm {
            Some(alg) => {
                Some(Algorithm::try_from(alg).map_err(|_| format!("its alg {alg} is not a signature algorithm"))?)
            }
            None => None,
        };
        let key = match &jwk.algorithm {
            AlgorithmParameters::RSA(_)
            | AlgorithmParameters::EllipticCurve(_)
            | AlgorithmParameters::OctetKeyPair(_) => {
                DecodingKey::from_jwk(jwk).map_err(|e| format!("it cannot be read: {e}"))?
            }
            AlgorithmParameters::OctetKey(_) => return Err("it is a symmetric (oct) key".into()),
            _ => return Err("its kty is not RSA, EC or OKP".into()),
        };
        let key = PublicKey { kid: jwk.common.key_id.clone(), alg, key };
        key.check()?;
        Ok(key)
    }

    /// Refuses what no supported algorithm could use (P-521, Ed448, ...).
    fn check(&self) -> Result<(), String> {
        let usable = match self.key.family() {
            AlgorithmFamily::Ec => matches!(self.ec_bytes(), Some(65 | 97)),
            AlgorithmFamily::Ed => self.key.try_get_as_bytes().is_ok_and(|b| b.len() == 32),
            AlgorithmFamily::Rsa => true,
            AlgorithmFamily::Hmac => false,
        };
        if !usable {
            return Err("its curve is not supported (P-256, P-384 and Ed25519 are)".into());
        }
        if let Some(alg) = self.alg
            && !self.fits(alg)
        {
            return Err(format!("its alg {alg:?} does not fit {}", self.kind()));
        }
        Ok(())
    }
}

/// The keys of one JWKS document.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    pub keys: Vec<PublicKey>,
    /// The SHA-256 of the document, to tell whether a refresh changed it.
    pub digest: [u8; 32],
}

impl KeySet {
    /// Reads a JWKS document (`{"keys": [...]}`). Keys this runtime cannot
    /// use (encryption keys, symmetric keys, other curves) are skipped and
    /// logged; a document with no usable key at all is an error.
    pub fn parse(document: &[u8]) -> Result<KeySet, String> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let parsed: Document = serde_json::from_slice(document)
            .map_err(|e| format!("it is not a JWKS document (a JSON object with a \"keys\" array): {e}"))?;
        let mut keys = Vec::with_capacity(parsed.keys.len());
        for (index, value) in parsed.keys.into_iter().enumerate() {
            let parsed = serde_json::from_value::<Jwk>(value)
                .map_err(|e| format!("it is not a JWK: {e}"))
                .and_then(|jwk| PublicKey::from_jwk(&jwk));
            match parsed {
                Ok(key) => keys.push(key),
                Err(why) => tracing::debug!(index, "JWKS key skipped: {why}"),
            }
        }
        if keys.is_empty() {
            return Err("it holds no usable signing key (RSA, EC P-256/P-384 or Ed25519)".into());
        }
        Ok(KeySet { keys, digest: super::cache::digest_bytes(document) })
    }
}

/// The keys a token signed with `alg` (and naming `kid`, if it does) is
/// checked with. With a JWKS, a token's `kid` picks the key; a token without
/// `kid` is checked with the one key of the JWKS that fits its algorithm,
/// when there is exactly one, and with the `publicKeyFile` key. Without a
/// JWKS the `publicKeyFile` key is used whatever the `kid`.
pub(crate) fn candidates<'a>(
    file: Option<&'a PublicKey>,
    jwks: Option<&'a KeySet>,
    alg: Algorithm,
    kid: Option<&str>,
) -> Vec<&'a PublicKey> {
    let file = file.filter(|key| key.fits(alg));
    match (jwks, kid) {
        (Some(set), Some(kid)) => {
            set.keys.iter().filter(|key| key.kid.as_deref() == Some(kid) && key.fits(alg)).collect()
        }
        (Some(set), None) => {
            let mut fitting = set.keys.iter().filter(|key| key.fits(alg));
            let only = match (fitting.next(), fitting.next()) {
                (Some(key), None) => Some(key),
                _ => None,
            };
            file.into_iter().chain(only).collect()
        }
        (None, _) => file.into_iter().collect(),
    }
}
