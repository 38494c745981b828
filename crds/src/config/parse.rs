//! Reading the document: YAML in one or several parts, merged key by key,
//! with the offending key named on error.

use super::RuntimeConfig;

/// Parses the YAML document, naming the offending key on error.
pub fn parse_runtime_config(yaml: &str) -> Result<RuntimeConfig, ConfigParseError> {
    parse_runtime_config_parts(&[yaml])
}

/// A document that is not YAML, or a value that does not fit its key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigParseError {
    #[error("{0}")]
    Yaml(#[from] serde_yaml::Error),
    /// `key` is the dotted path of the offending setting
    /// (`database.pool.readConnections`).
    #[error("{key}: {source}")]
    Value { key: String, source: serde_yaml::Error },
}

/// Parses a document split over several files (the operator mounts the
/// non-secret part from a ConfigMap and the secret part from a Secret):
/// mappings are merged key by key, later parts winning on conflicts.
pub fn parse_runtime_config_parts(parts: &[&str]) -> Result<RuntimeConfig, ConfigParseError> {
    let mut merged = serde_yaml::Value::Mapping(Default::default());
    for part in parts.iter().filter(|p| !p.trim().is_empty()) {
        let value: serde_yaml::Value = serde_yaml::from_str(part)?;
        merge_yaml(&mut merged, value);
    }
    // The merged value has no line numbers left: name the key instead.
    serde_path_to_error::deserialize(merged)
        .map_err(|e| ConfigParseError::Value { key: e.path().to_string(), source: e.into_inner() })
}

fn merge_yaml(into: &mut serde_yaml::Value, from: serde_yaml::Value) {
    match (into, from) {
        (serde_yaml::Value::Mapping(a), serde_yaml::Value::Mapping(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) => merge_yaml(existing, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let err = parse_runtime_config("database:\n  pool:\n    maxConections: 3\n").unwrap_err();
        assert!(err.to_string().contains("maxConections"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_their_key() {
        let err = parse_runtime_config("database:\n  pool:\n    readConnections: -1\n").unwrap_err();
        assert!(err.to_string().starts_with("database.pool.readConnections: "), "{err}");
        let err = parse_runtime_config("api: {maxRows: lots}").unwrap_err();
        assert!(err.to_string().starts_with("api.maxRows: "), "{err}");
    }

    #[test]
    fn parts_merge_key_by_key() {
        let c = parse_runtime_config_parts(&[
            "api: {maxRows: 50}\ndatabase: {schemas: [public]}\n",
            "apiKeys: [{name: k, role: r, hashes: [{sha256: abc}]}]\ndatabase: {pool: {maxConnections: 3}}\n",
        ])
        .unwrap();
        assert_eq!(c.api.max_rows, 50);
        assert_eq!(c.database.schemas, vec!["public"]);
        assert_eq!(c.database.pool.max_connections, 3);
        assert_eq!(c.api_keys[0].hashes[0].sha256, "abc");
    }
}
