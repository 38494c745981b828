//! Connection limits (issue 18, item 7) on a real socket: the runtime runs
//! as a process, driven with raw TCP writes. Timeouts are set to 1–2 s and
//! every wait is bounded.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_dbapi-runtime");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The runtime on a SQLite database with `config`, killed on drop.
struct Server {
    child: Child,
    api: u16,
    _db: support::TestDb,
    dir: std::path::PathBuf,
}

impl Server {
    async fn start(config: &str) -> Server {
        let db = support::sqlite_database("CREATE TABLE items (id INTEGER PRIMARY KEY); INSERT INTO items VALUES (1);")
            .await;
        let dir = std::env::temp_dir().join(format!("dbapi-connlimits-{}", support::unique_name()));
        std::fs::create_dir_all(&dir).unwrap();
        let config_path = dir.join("config.yaml");
        std::fs::write(&config_path, config).unwrap();
        let (api, admin) = (free_port(), free_port());
        let child = Command::new(BIN)
            .args(["serve", "--database-url", &db.url, "--config", config_path.to_str().unwrap()])
            .args(["--listen", &format!("127.0.0.1:{api}"), "--admin-listen", &format!("127.0.0.1:{admin}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let server = Server { child, api, _db: db, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", admin)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut out = String::new();
                if s.read_to_string(&mut out).is_ok() && out.starts_with("HTTP/1.1 200") {
                    return server;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the server did not become ready");
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.api)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const KEEP_ALIVE_GET: &[u8] = b"GET /items HTTP/1.1\r\nHost: x\r\n\r\n";

/// Reads one whole response with a Content-Length body.
fn read_response(s: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).expect("a response");
        assert!(n > 0, "the connection closed before a response: {}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0usize);
            if body.len() >= length {
                return text;
            }
        }
    }
}

/// Whether the server closes the connection within the read timeout
/// (EOF or reset), rather than keeping it open.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

#[tokio::test]
async fn limit_a_half_sent_request_head_is_closed() {
    let server = Server::start("server: {headerReadTimeoutSeconds: 1, idleTimeoutSeconds: 30}\n").await;
    let mut s = server.connect();
    s.write_all(b"GET /items HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
    let started = Instant::now();
    assert!(closed_by_server(&mut s), "a half-sent head was held open");
    assert!(started.elapsed() < Duration::from_secs(8));
    // A silent new connection is one that has not sent its head either.
    let mut silent = server.connect();
    assert!(closed_by_server(&mut silent), "a silent connection was held open");
    // Whole requests are served as before.
    let mut ok = server.connect();
    ok.write_all(KEEP_ALIVE_GET).unwrap();
    assert!(read_response(&mut ok).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn limit_idle_keep_alive_connections_are_closed() {
    let server = Server::start("server: {headerReadTimeoutSeconds: 30, idleTimeoutSeconds: 1}\n").await;
    let mut s = server.connect();
    s.write_all(KEEP_ALIVE_GET).unwrap();
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));
    // Still open for a second request right away.
    s.write_all(KEEP_ALIVE_GET).unwrap();
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));
    assert!(closed_by_server(&mut s), "an idle keep-alive connection was held open");
}

#[tokio::test]
async fn limit_connections_past_the_maximum_wait_for_a_free_one() {
    let server = Server::start("server: {maxConnections: 1, idleTimeoutSeconds: 30}\n").await;
    let mut first = server.connect();
    first.write_all(KEEP_ALIVE_GET).unwrap();
    assert!(read_response(&mut first).starts_with("HTTP/1.1 200"));
    // The second connection is not served while the first is open...
    let mut second = server.connect();
    second.write_all(KEEP_ALIVE_GET).unwrap();
    second.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    let mut buf = [0u8; 64];
    let waited = second.read(&mut buf);
    assert!(
        matches!(&waited, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "served past server.maxConnections: {waited:?}"
    );
    // ...and is, once the first closes; the process is still there.
    drop(first);
    second.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(read_response(&mut second).starts_with("HTTP/1.1 200"));
}
