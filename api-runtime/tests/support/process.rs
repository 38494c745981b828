//! The built runtime binary as a child process on free ports, and plain
//! HTTP/1.1 requests to it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_dbapi-runtime");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// A header that must be there, as a number.
    pub fn number(&self, name: &str) -> u64 {
        self.header(name).unwrap_or_else(|| panic!("no {name} header: {:?}", self.headers)).parse().unwrap()
    }
}

/// A directory of the test's own, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(super::unique_name());
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A throwaway `redis-server` on `port`, stopped on drop (its directory
/// stays, for a restart on the same port).
pub struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    /// Starts it and waits until it answers.
    pub fn start(port: u16, dir: &Path) -> OwnRedis {
        let redis = OwnRedis::spawn(port, dir);
        wait_for(Duration::from_secs(20), || format!("redis-server on port {port}"), || redis.connection().ok());
        redis
    }

    /// Starts one that also takes TLS connections on `tls_port`, with a
    /// server certificate for `localhost` signed by a throwaway CA written
    /// to `dir` (see [`TlsFiles`]); `port` stays plain, for the test's own
    /// look inside.
    pub fn start_tls(port: u16, tls_port: u16, dir: &Path) -> (OwnRedis, TlsFiles) {
        let tls = TlsFiles::generate(dir);
        let args = [
            "--tls-port".to_string(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            tls.server_cert.to_string_lossy().into_owned(),
            "--tls-key-file".into(),
            tls.server_key.to_string_lossy().into_owned(),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        let redis = OwnRedis::spawn_with(port, dir, &args);
        wait_for(Duration::from_secs(20), || format!("redis-server on port {port}"), || redis.connection().ok());
        (redis, tls)
    }

    /// Starts it without waiting (to see a client find it later).
    pub fn spawn(port: u16, dir: &Path) -> OwnRedis {
        OwnRedis::spawn_with(port, dir, &[])
    }

    fn spawn_with(port: u16, dir: &Path, extra: &[String]) -> OwnRedis {
        let binary = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]
            .iter()
            .map(|d| Path::new(d).join("redis-server"))
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("redis-server"));
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (apt-get install redis-server)");
        OwnRedis { child, port }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn connection(&self) -> redis::RedisResult<redis::Connection> {
        let mut c = redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(1))?;
        redis::cmd("PING").query::<()>(&mut c)?;
        Ok(c)
    }

    /// The URL of a user made for it that may do everything but
    /// `SUBSCRIBE` (a replica that cannot mirror the cache's generations).
    pub fn url_without_subscribe(&self) -> String {
        redis::cmd("ACL")
            .arg(&["SETUSER", "nosub", "on", ">secret", "~*", "&*", "+@all", "-subscribe"])
            .query::<()>(&mut self.connection().unwrap())
            .unwrap();
        format!("redis://nosub:secret@127.0.0.1:{}", self.port)
    }

    pub fn keys(&self, pattern: &str) -> Vec<String> {
        redis::cmd("KEYS").arg(pattern).query(&mut self.connection().unwrap()).unwrap()
    }
}

/// A CA certificate and a server certificate and key for `localhost` and
/// 127.0.0.1 signed by it, made with the `openssl` command.
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl TlsFiles {
    pub fn generate(dir: &Path) -> TlsFiles {
        let path = |name: &str| dir.join(name);
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let ca = ["-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=dbapi test CA"];
        openssl(&[&["req", "-x509"], &ec[..], &ca[..]].concat());
        openssl(
            &[&["req"], &ec[..], &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat(),
        );
        std::fs::write(path("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "server.ext",
        ]);
        TlsFiles { ca_cert: path("ca.pem"), server_cert: path("server.pem"), server_key: path("server.key") }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 GET over a plain socket.
pub fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Reply> {
    send(port, "GET", path, headers, None)
}

/// One HTTP/1.1 request over a plain socket; a body goes as JSON.
pub fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    json: Option<&str>,
) -> std::io::Result<Reply> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    if let Some(body) = json {
        extra.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    write!(s, "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n{}", json.unwrap_or(""))?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Reply { status, headers, body: body.to_string() })
}

/// Calls `probe` until it returns `Some`, or panics with `what` after
/// `within`: for conditions that become true asynchronously.
pub fn wait_for<T>(within: Duration, what: impl Fn() -> String, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {}", what());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A runtime process, killed on drop; its stderr goes to `log_path`.
pub struct Runtime {
    pub child: Child,
    pub api: u16,
    pub admin: u16,
    pub log_path: PathBuf,
}

impl Runtime {
    /// `serve` with `args` (database URL, `--config`, …) added, in `dir`
    /// (where the log goes); returns once `/readyz` answers 200.
    pub fn serve(dir: &Path, args: &[&str]) -> Runtime {
        Runtime::serve_with_env(dir, args, &[])
    }

    /// `serve` with extra environment variables.
    pub fn serve_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Runtime {
        let log_path = dir.join("stderr.log");
        let (api, admin) = (free_port(), free_port());
        let child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{api}"), "--admin-listen", &format!("127.0.0.1:{admin}")])
            .env_remove("DBAPI_REDIS_URL")
            .env_remove("DBAPI_CONFIG")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .expect("the binary starts");
        let mut runtime = Runtime { child, api, admin, log_path };
        let ready = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Reply { status: 200, .. }) = get(admin, "/readyz", &[]) {
                return runtime;
            }
            if let Ok(Some(status)) = runtime.child.try_wait() {
                panic!("the runtime exited ({status}): {}", runtime.log());
            }
            assert!(Instant::now() < ready, "the runtime did not become ready: {}", runtime.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        get(self.api, path, headers).expect("the API answers")
    }

    /// The admin port's `/metrics` text.
    pub fn metrics(&self) -> String {
        let r = get(self.admin, "/metrics", &[]).expect("the admin port answers");
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }

    /// One sample of `/metrics` (`name{labels}`), 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        sample(&self.metrics(), series).unwrap_or(0.0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends `signal` (`HUP`, `TERM`, …) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{signal} failed");
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `series` in a Prometheus text exposition.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
