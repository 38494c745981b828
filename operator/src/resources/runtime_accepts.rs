//! The runtime accepts what the operator renders (issue 18, "How it is
//! checked"): the ConfigMap's and the Secret's `config.yaml` of the full
//! fixture (roles, keys, JWT), written as the two files the pod mounts, read
//! by the runtime's own loader and built into the policy that checks
//! requests, which then accepts the rendered key.

use std::path::PathBuf;

use dbapi_crds::config::RuntimeConfig;
use dbapi_crds::keys::{generate_key, sha256_hex};
use dbapi_runtime::config::{DatabaseArgs, load};
use dbapi_runtime::policy::Policy;

use super::config::{CONFIG_FILE, KeyMaterial, config_map, config_secret, runtime_config};
use super::test_fixtures::full;

struct Files {
    dir: PathBuf,
}

impl Files {
    /// The two mounted files, from the ConfigMap and Secret objects.
    fn write(name: &str, public: &RuntimeConfig, secret: &RuntimeConfig) -> (Files, DatabaseArgs) {
        let api = full();
        let dir = std::env::temp_dir().join(format!("dbapi-operator-{name}-{}", std::process::id()));
        let (config_dir, secret_dir) = (dir.join("config"), dir.join("secret"));
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::create_dir_all(&secret_dir).unwrap();
        let map = config_map(&api, public).unwrap().data.unwrap();
        let secret = config_secret(&api, secret).unwrap().data.unwrap();
        std::fs::write(config_dir.join(CONFIG_FILE), &map[CONFIG_FILE]).unwrap();
        std::fs::write(secret_dir.join(CONFIG_FILE), &secret[CONFIG_FILE].0).unwrap();
        let args = DatabaseArgs {
            database_url: "sqlite::memory:".into(),
            config: vec![config_dir.join(CONFIG_FILE), secret_dir.join(CONFIG_FILE)],
            schemas: vec![],
        };
        (Files { dir }, args)
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn with_key(key: &str) -> axum::http::HeaderMap {
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("apikey", key.parse().unwrap());
    headers
}

#[tokio::test]
async fn the_runtime_loads_the_rendered_files_and_accepts_the_rendered_key() {
    let (storefront, support) = (generate_key().unwrap(), generate_key().unwrap());
    let keys = [
        KeyMaterial { name: "storefront".into(), sha256: sha256_hex(&storefront), previous: None },
        KeyMaterial { name: "support-desk".into(), sha256: sha256_hex(&support), previous: None },
    ];
    let (public, secret) = runtime_config(&full(), &keys);

    // Everything the operator renders (cache included) loads and checks
    // requests.
    let (_files, args) = Files::write("accepted", &public, &secret);
    let config = load(&args).unwrap_or_else(|e| panic!("the runtime refuses the operator's document: {e}"));
    assert_eq!(config.api_keys.len(), 2);
    assert_eq!(config.cache.as_ref().map(|c| c.default_ttl_seconds), Some(60));
    assert_eq!(config.database.pool.max_connections, 40 / 8, "the ConfigMap's part is not overridden");
    // The pod gets the HMAC secret from the referenced Secret as DBAPI_JWT_SECRET.
    let jwt_secret = Some(format!("{storefront}-as-a-jwt-secret"));
    let policy = Policy::with_jwt_secret(config, jwt_secret)
        .await
        .unwrap_or_else(|e| panic!("the runtime refuses the operator's document: {e}"));
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    let who = policy.authenticator.identify(&with_key(&storefront), now).await.unwrap();
    assert_eq!(who.role.as_deref(), Some("reader"));
    let who = policy.authenticator.identify(&with_key(&support), now).await.unwrap();
    assert_eq!(who.role.as_deref(), Some("support"));
    let wrong = format!("dbapi_{}", "0".repeat(64));
    assert!(policy.authenticator.identify(&with_key(&wrong), now).await.is_err());
    // support-desk expires on 2026-06-30 in the fixture.
    let later = "2026-07-01T00:00:00Z".parse().unwrap();
    assert!(policy.authenticator.identify(&with_key(&support), later).await.is_err());
}
