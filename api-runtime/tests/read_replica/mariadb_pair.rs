//! A throwaway MariaDB primary (binary log on) and a replica following it
//! by GTID, a set number of seconds behind (`MASTER_DELAY`), in a temp dir
//! on free ports; both are killed and the dir removed on drop. The replica's
//! data dir is a copy of the freshly installed primary's, which saves a
//! second `mariadb-install-db`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, Connection, MySqlConnection};

pub struct MariaDbPair {
    dir: PathBuf,
    servers: Vec<Child>,
    pub primary_port: u16,
    pub replica_port: u16,
}

/// The first of `names` in the sbin and bin dirs or in PATH.
fn program(names: &[&str]) -> PathBuf {
    for name in names {
        for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
            let path = Path::new(dir).join(name);
            if path.exists() {
                return path;
            }
        }
    }
    PathBuf::from(names[0])
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Options of both servers and of the install: no system config, fast and
/// small.
fn common(user: &[&'static str]) -> Vec<String> {
    let mut options: Vec<String> = ["--no-defaults"].iter().chain(user).map(|s| s.to_string()).collect();
    options.extend(
        [
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
        ]
        .map(String::from),
    );
    options
}

impl MariaDbPair {
    /// Starts both and has the replica follow the primary `delay_seconds`
    /// behind.
    pub async fn start(delay_seconds: u32) -> MariaDbPair {
        let dir = std::env::temp_dir().join(format!("dbapi-mariadb-pair-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let user: &[&'static str] = if is_root() { &["--user=root"] } else { &[] };
        let primary = dir.join("primary");
        let install = Command::new(program(&["mariadb-install-db", "mysql_install_db"]))
            .args(common(user))
            .arg(format!("--datadir={}", primary.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .output()
            .expect("mariadb-install-db runs (apt-get install mariadb-server)");
        assert!(install.status.success(), "mariadb-install-db: {}", String::from_utf8_lossy(&install.stderr));
        let copy = Command::new("cp").arg("-a").arg(&primary).arg(dir.join("replica")).output().unwrap();
        assert!(copy.status.success(), "cp: {}", String::from_utf8_lossy(&copy.stderr));
        let mut pair = MariaDbPair { dir, servers: Vec::new(), primary_port: 0, replica_port: 0 };
        let bin_log = format!("--log-bin={}", pair.dir.join("primary-bin").display());
        pair.primary_port = pair.serve("primary", user, &["--server-id=1", &bin_log, "--binlog-format=ROW"]).await;
        pair.replica_port = pair.serve("replica", user, &["--server-id=2"]).await;
        let follow = format!(
            "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = 'root', \
             MASTER_PASSWORD = '', MASTER_USE_GTID = slave_pos, MASTER_DELAY = {delay_seconds}; START SLAVE",
            pair.primary_port
        );
        pair.execute(true, &follow).await;
        pair
    }

    pub fn url(&self, on_replica: bool, database: &str) -> String {
        let port = if on_replica { self.replica_port } else { self.primary_port };
        format!("mysql://root@127.0.0.1:{port}/{database}")
    }

    /// Runs `sql` (statements separated by `;`) on the primary, or on the
    /// replica.
    pub async fn execute(&self, on_replica: bool, sql: &str) {
        let url = self.url(on_replica, "mysql");
        let mut conn = MySqlConnection::connect(&url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = conn.close().await;
    }

    /// Waits until `sql`'s first integer on the replica is `expected`.
    pub async fn wait_on_replica(&self, sql: &str, expected: i64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut conn) = MySqlConnection::connect(&self.url(true, "mysql")).await {
                let found: Option<i64> =
                    sqlx::query_scalar(AssertSqlSafe(sql.to_string())).fetch_one(&mut conn).await.ok();
                if found == Some(expected) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the replica never answered {expected} to {sql}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts the server of data dir `name` and waits until root can log in
    /// over TCP.
    async fn serve(&mut self, name: &str, user: &[&'static str], extra: &[&str]) -> u16 {
        let port = free_port();
        let path = |suffix: &str| self.dir.join(format!("{name}{suffix}")).display().to_string();
        let child = Command::new(program(&["mariadbd", "mysqld"]))
            .args(common(user))
            .arg(format!("--datadir={}", path("")))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", path(".sock")))
            .arg(format!("--pid-file={}", path(".pid")))
            .arg(format!("--log-error={}", path(".err")))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        self.servers.push(child);
        let url = format!("mysql://root@127.0.0.1:{port}/mysql");
        let deadline = Instant::now() + Duration::from_secs(60);
        while MySqlConnection::connect(&url).await.is_err() {
            let log = std::fs::read_to_string(path(".err")).unwrap_or_default();
            assert!(Instant::now() < deadline, "MariaDB ({name}) did not start on {port}:\n{log}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        port
    }
}

impl Drop for MariaDbPair {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
