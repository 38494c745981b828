//! One Secret per API key: the plaintext key for the team that uses it, and
//! annotations that let the operator rebuild the runtime's hash list (and
//! notice a requested rotation) from the Secret alone.

use std::collections::BTreeMap;

use dbapi_crds::crd::{ApiKeySpec, DatabaseApi};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::{child_meta, names};

/// The data key of the plaintext API key in its Secret.
pub const KEY_DATA: &str = "key";
/// SHA-256 (hex) of the current key.
pub const SHA256_ANNOTATION: &str = "dbapi.dev/key-sha256";
/// The [`rotation_token`] the key was generated for.
pub const ROTATION_TOKEN_ANNOTATION: &str = "dbapi.dev/rotation-token";
/// SHA-256 (hex) of the rotated-out key, while it is still accepted.
pub const PREVIOUS_SHA256_ANNOTATION: &str = "dbapi.dev/previous-key-sha256";
/// RFC 3339 time after which the rotated-out key is refused.
pub const PREVIOUS_NOT_AFTER_ANNOTATION: &str = "dbapi.dev/previous-key-not-after";
/// Prefix of the annotation on the `DatabaseApi` that requests a rotation
/// of key `<name>` whenever its value changes.
pub const ROTATE_ANNOTATION_PREFIX: &str = "dbapi.dev/rotate-key-";

/// The Secret of one API key. `previous` is `(sha256, notAfter)` of the
/// rotated-out key during its grace period.
pub fn key_secret(
    api: &DatabaseApi,
    key: &ApiKeySpec,
    plaintext: &str,
    sha256: &str,
    rotation_token: &str,
    previous: Option<(&str, &str)>,
) -> Secret {
    let mut metadata = child_meta(api, names::key_secret(api, &key.name), "api-key");
    let mut annotations = BTreeMap::from([
        (SHA256_ANNOTATION.to_string(), sha256.to_string()),
        (ROTATION_TOKEN_ANNOTATION.to_string(), rotation_token.to_string()),
    ]);
    if let Some((previous_sha256, not_after)) = previous {
        annotations.insert(PREVIOUS_SHA256_ANNOTATION.to_string(), previous_sha256.to_string());
        annotations.insert(PREVIOUS_NOT_AFTER_ANNOTATION.to_string(), not_after.to_string());
    }
    metadata.annotations = Some(annotations);
    Secret {
        metadata,
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(KEY_DATA.to_string(), ByteString(plaintext.as_bytes().to_vec()))])),
        ..Secret::default()
    }
}

/// What a key was generated for: `spec.apiKeys[].rotation` and the value of
/// the annotation `dbapi.dev/rotate-key-<name>` on the `DatabaseApi` (empty
/// when absent). A key whose Secret carries another token is rotated.
pub fn rotation_token(api: &DatabaseApi, key: &ApiKeySpec) -> String {
    let annotation = format!("{ROTATE_ANNOTATION_PREFIX}{}", key.name);
    let requested = api.annotations().get(&annotation).map(String::as_str).unwrap_or("");
    format!("{}/{}", key.rotation, requested)
}

/// What the runtime compares a presented key against; one function for both.
pub use dbapi_crds::keys::sha256_hex;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::test_fixtures::{full, minimal};

    #[test]
    fn rotation_tokens() {
        let api = full();
        assert_eq!(rotation_token(&api, &api.spec.api_keys[0]), "2/2025-05-01");
        assert_eq!(rotation_token(&api, &api.spec.api_keys[1]), "0/");
        let key = ApiKeySpec { name: "storefront".into(), role: "reader".into(), ..ApiKeySpec::default() };
        assert_eq!(rotation_token(&minimal(), &key), "0/");
    }

    #[test]
    fn full_key_secrets() {
        let api = full();
        let plaintext = "dbapi_storefront_not-a-real-key";
        let sha = sha256_hex(plaintext);
        let rotating = key_secret(
            &api,
            &api.spec.api_keys[0],
            plaintext,
            &sha,
            &rotation_token(&api, &api.spec.api_keys[0]),
            Some((&"b".repeat(64), "2025-05-02T10:00:00Z")),
        );
        insta::assert_yaml_snapshot!("full_key_secret_rotating", rotating);
        let plain =
            key_secret(&api, &api.spec.api_keys[1], "dbapi_support_not-a-real-key", &"c".repeat(64), "0/", None);
        insta::assert_yaml_snapshot!("full_key_secret", plain);
    }

    #[test]
    fn minimal_key_secret() {
        let api = minimal();
        let key = ApiKeySpec { name: "storefront".into(), role: "reader".into(), ..ApiKeySpec::default() };
        let secret = key_secret(&api, &key, "k", &sha256_hex("k"), &rotation_token(&api, &key), None);
        insta::assert_yaml_snapshot!("minimal_key_secret", secret);
    }
}
