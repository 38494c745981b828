//! Configuration reload without restart, on the built binary: directories
//! written exactly as kubelet writes a mounted ConfigMap or Secret (a
//! timestamped directory, `..data` pointing at it, `config.yaml ->
//! ..data/config.yaml`, and an atomic rename of a new `..data`), SIGHUP,
//! and a broken document that keeps the old keys, each counted on the
//! admin port's `/metrics`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use dbapi_crds::keys::sha256_hex;
use support::process::{Runtime, TempDir, wait_for};

/// inotify is asynchronous and reloads are debounced: a change shows
/// within this (generous for a loaded CI machine).
const RELOAD_WITHIN: Duration = Duration::from_secs(15);

/// A temp directory removed on drop.
/// A volume directory as kubelet's atomic writer keeps it.
struct KubeletVolume {
    dir: PathBuf,
    generation: u32,
}

impl KubeletVolume {
    /// Writes the first generation and the user-visible symlinks.
    fn new(dir: PathBuf, files: &[(&str, &str)]) -> KubeletVolume {
        std::fs::create_dir_all(&dir).unwrap();
        let mut volume = KubeletVolume { dir, generation: 0 };
        let first = volume.write_generation(files);
        std::os::unix::fs::symlink(&first, volume.dir.join("..data")).unwrap();
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), volume.dir.join(name)).unwrap();
        }
        volume
    }

    fn write_generation(&mut self, files: &[(&str, &str)]) -> String {
        self.generation += 1;
        let name = format!("..2026_12_06_07_00_{:02}.{:09}", self.generation, 100_000 + self.generation);
        std::fs::create_dir(self.dir.join(&name)).unwrap();
        for (file, text) in files {
            std::fs::write(self.dir.join(&name).join(file), text).unwrap();
        }
        name
    }

    /// A new timestamped directory, `..data_tmp` pointing at it, renamed
    /// over `..data` in one step, then the old directory removed.
    fn update(&mut self, files: &[(&str, &str)]) {
        let old = std::fs::read_link(self.dir.join("..data")).unwrap();
        let new = self.write_generation(files);
        std::os::unix::fs::symlink(&new, self.dir.join("..data_tmp")).unwrap();
        std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).unwrap();
        std::fs::remove_dir_all(self.dir.join(old)).unwrap();
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
    }
}

fn keys(names_and_texts: &[(&str, &str)]) -> String {
    let mut doc = String::from("apiKeys:\n");
    for (name, text) in names_and_texts {
        doc.push_str(&format!(
            "  - name: {name}\n    role: reader\n    hashes:\n      - sha256: {}\n",
            sha256_hex(text)
        ));
    }
    doc
}

async fn database() -> support::TestDb {
    support::sqlite_database("CREATE TABLE items (id integer PRIMARY KEY); INSERT INTO items VALUES (1), (2), (3);")
        .await
}

fn status_with_key(runtime: &Runtime, key: &str) -> u16 {
    runtime.get("/items", &[("apikey", key)]).status
}

/// The public part in one volume and the keys in another, as the operator
/// mounts them.
fn start(root: &Path, db: &support::TestDb, secret_doc: &str) -> (Runtime, KubeletVolume) {
    let config = KubeletVolume::new(root.join("config"), &[("config.yaml", "api:\n  maxRows: 100\n")]);
    let secret = KubeletVolume::new(root.join("secret"), &[("config.yaml", secret_doc)]);
    let paths = format!("{},{}", config.path("config.yaml"), secret.path("config.yaml"));
    let runtime = Runtime::serve(root, &["--database-url", &db.url, "--config", &paths]);
    (runtime, secret)
}

#[tokio::test]
async fn a_kubelet_swap_adds_a_key_and_revokes_another() {
    let (root, db) = (TempDir::new(), database().await);
    let (runtime, mut secret) = start(&root.0, &db, &keys(&[("old", "dbapi_old")]));
    assert_eq!(status_with_key(&runtime, "dbapi_old"), 200);
    assert_eq!(status_with_key(&runtime, "dbapi_new"), 401);
    assert_eq!(runtime.metric("dbapi_config_reloads_total{result=\"ok\"}"), 0.0);

    secret.update(&[("config.yaml", &keys(&[("new", "dbapi_new")]))]);
    wait_for(
        RELOAD_WITHIN,
        || format!("the new key to be accepted: {}", runtime.log()),
        || (status_with_key(&runtime, "dbapi_new") == 200).then_some(()),
    );
    assert_eq!(status_with_key(&runtime, "dbapi_old"), 401, "the revoked key is refused");
    assert!(runtime.metric("dbapi_config_reloads_total{result=\"ok\"}") >= 1.0, "{}", runtime.metrics());
    assert_eq!(runtime.metric("dbapi_config_reloads_total{result=\"error\"}"), 0.0);
    let log = runtime.log();
    assert!(log.contains("configuration reloaded") && log.contains("apiKeys"), "{log}");
    assert!(!log.contains(&sha256_hex("dbapi_new")[..16]), "a key hash was logged: {log}");
}

#[tokio::test]
async fn a_broken_document_keeps_the_keys_in_force_and_counts_the_error() {
    let (root, db) = (TempDir::new(), database().await);
    let (runtime, mut secret) = start(&root.0, &db, &keys(&[("app", "dbapi_app")]));
    let before = runtime.metric("dbapi_config_last_reload_success_timestamp_seconds");
    assert!(before > 1.7e9, "set at start-up: {}", runtime.metrics());

    // A hash written as a plain string: not a valid `hashes` entry.
    let hash = sha256_hex("dbapi_other");
    secret.update(&[("config.yaml", &format!("apiKeys:\n  - name: other\n    role: r\n    hashes: [\"{hash}\"]\n"))]);
    wait_for(
        RELOAD_WITHIN,
        || format!("a failed reload: {}", runtime.metrics()),
        || (runtime.metric("dbapi_config_reloads_total{result=\"error\"}") >= 1.0).then_some(()),
    );
    assert_eq!(status_with_key(&runtime, "dbapi_app"), 200, "the old keys stay in force");
    assert_eq!(status_with_key(&runtime, "dbapi_other"), 401);
    assert_eq!(runtime.metric("dbapi_config_last_reload_success_timestamp_seconds"), before);
    let log = runtime.log();
    assert!(log.contains("configuration reload failed") && log.contains("apiKeys[0].hashes[0]"), "{log}");
    assert!(!log.contains(&hash[..16]), "the hash was logged: {log}");

    // A key whose hash is not 64 hex digits fails in the policy, not the parser.
    secret.update(&[("config.yaml", "apiKeys: [{name: short, role: r, hashes: [{sha256: abc}]}]\n")]);
    wait_for(
        RELOAD_WITHIN,
        || format!("a second failed reload: {}", runtime.metrics()),
        || (runtime.metric("dbapi_config_reloads_total{result=\"error\"}") >= 2.0).then_some(()),
    );
    assert_eq!(status_with_key(&runtime, "dbapi_app"), 200);

    // Fixed: in force again.
    secret.update(&[("config.yaml", &keys(&[("other", "dbapi_other")]))]);
    wait_for(
        RELOAD_WITHIN,
        || format!("the fixed document: {}", runtime.log()),
        || (status_with_key(&runtime, "dbapi_other") == 200).then_some(()),
    );
    assert_eq!(status_with_key(&runtime, "dbapi_app"), 401);
    assert!(runtime.metric("dbapi_config_last_reload_success_timestamp_seconds") >= before);
}

#[tokio::test]
async fn sighup_reloads_and_restart_only_settings_are_reported_not_applied() {
    let (root, db) = (TempDir::new(), database().await);
    // `--config` names a symlink in a watched directory; the document it
    // points at lives elsewhere, so editing it raises no event there and
    // only SIGHUP can bring the change in.
    let elsewhere = root.0.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let target = elsewhere.join("real.yaml");
    std::fs::write(&target, format!("api: {{maxRows: 100}}\n{}", keys(&[("a", "dbapi_a")]))).unwrap();
    let watched = root.0.join("watched");
    std::fs::create_dir(&watched).unwrap();
    std::os::unix::fs::symlink(&target, watched.join("config.yaml")).unwrap();
    let path = watched.join("config.yaml").to_string_lossy().into_owned();
    let runtime = Runtime::serve(&root.0, &["--database-url", &db.url, "--config", &path]);
    assert_eq!(status_with_key(&runtime, "dbapi_a"), 200);

    let changed = format!("api: {{maxRows: 2, maxUrlBytes: 4000}}\n{}", keys(&[("b", "dbapi_b")]));
    std::fs::write(&target, changed).unwrap();
    runtime.signal("HUP");
    wait_for(
        RELOAD_WITHIN,
        || format!("SIGHUP to bring the new key in: {}", runtime.log()),
        || (status_with_key(&runtime, "dbapi_b") == 200).then_some(()),
    );
    assert_eq!(status_with_key(&runtime, "dbapi_a"), 401);
    let log = runtime.log();
    assert!(log.contains("SIGHUP") && log.contains("configuration reloaded"), "{log}");
    assert!(log.contains("api.maxUrlBytes changed; restart to apply"), "{log}");
    assert!(!log.contains("api.maxRows changed; restart"), "maxRows reloads: {log}");
    assert_eq!(runtime.metric("dbapi_config_reloads_total{result=\"ok\"}"), 1.0, "{}", runtime.metrics());
    // The new maxRows is in force; the URL limit stays the start-up one.
    let capped = runtime.get("/items?select=id&order=id", &[("apikey", "dbapi_b")]);
    assert_eq!((capped.status, capped.body.as_str()), (200, r#"[{"id":1},{"id":2}]"#));
}

/// An API without keys, roles or auth is open to everyone: start-up and a
/// reload that removes the last key say so in the log, once each.
#[tokio::test]
async fn opening_the_api_is_announced_in_the_log() {
    const OPEN: &str = "the API is open to every caller";
    let (root, db) = (TempDir::new(), database().await);
    let (runtime, mut secret) = start(&root.0, &db, &keys(&[("app", "dbapi_app")]));
    assert_eq!(runtime.get("/items", &[]).status, 401);
    assert!(!runtime.log().contains(OPEN), "{}", runtime.log());

    secret.update(&[("config.yaml", "apiKeys: []\n")]);
    wait_for(
        RELOAD_WITHIN,
        || format!("the API to open: {}", runtime.log()),
        || (runtime.get("/items", &[]).status == 200).then_some(()),
    );
    assert_eq!(runtime.log().matches(OPEN).count(), 1, "{}", runtime.log());

    let (open_root, open_db) = (TempDir::new(), database().await);
    let (open, _secret) = start(&open_root.0, &open_db, "apiKeys: []\n");
    assert_eq!(open.get("/items", &[]).status, 200);
    let log = open.log();
    assert_eq!(log.matches(OPEN).count(), 1, "{log}");
    assert!(log.contains("WARN") || log.contains("\"level\":\"WARN\""), "a warning: {log}");
}
