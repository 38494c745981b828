//! A throwaway PostgreSQL primary and its streaming standby (made with
//! `pg_basebackup -R`), in a temp dir on free ports; both are stopped and the
//! dir removed on drop. PostgreSQL refuses to run as root, so as root its
//! programs run as the `postgres` OS user (as `scripts/test-services.sh`
//! does).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, Connection, PgConnection};

pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    pub primary_port: u16,
    pub standby_port: u16,
}

/// The newest installed PostgreSQL's programs (`PG_BIN` overrides).
fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    dirs.retain(|d| d.join("pg_basebackup").exists());
    dirs.sort_by_key(|d| d.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()).unwrap_or(0));
    dirs.pop()
        .expect("PostgreSQL server programs under /usr/lib/postgresql/*/bin (apt-get install postgresql), or PG_BIN")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl PgCluster {
    /// Starts the primary (`wal_level=replica`), copies it with
    /// `pg_basebackup -R` and starts the copy as its standby.
    pub fn start() -> PgCluster {
        // As root, under /tmp: the postgres user cannot reach every TMPDIR.
        let base = if is_root() { PathBuf::from("/tmp") } else { std::env::temp_dir() };
        let dir = base.join(format!("dbapi-standby-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = PgCluster { dir, bin: pg_bin(), primary_port: 0, standby_port: 0 };
        if is_root() {
            let out = Command::new("chown").arg("postgres:").arg(&cluster.dir).output().unwrap();
            assert!(out.status.success(), "chown: {}", String::from_utf8_lossy(&out.stderr));
        }
        let primary = cluster.data("primary");
        cluster.pg(
            "initdb",
            &["-D", &primary, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
        );
        let conf = "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nwal_level = replica\n\
                    max_wal_senders = 4\nfsync = off\nfull_page_writes = off\nlogging_collector = off\n";
        std::fs::OpenOptions::new()
            .append(true)
            .open(Path::new(&primary).join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))
            .unwrap();
        cluster.primary_port = cluster.start_server("primary");
        let standby = cluster.data("standby");
        let port = cluster.primary_port.to_string();
        cluster.pg(
            "pg_basebackup",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-D", &standby, "-R", "-X", "stream", "--no-sync"],
        );
        cluster.standby_port = cluster.start_server("standby");
        cluster
    }

    pub fn primary_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.primary_port)
    }

    pub fn standby_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.standby_port)
    }

    /// Stops the standby (fast shutdown: its sessions are ended).
    pub fn stop_standby(&self) {
        self.pg("pg_ctl", &["-D", &self.data("standby"), "-m", "fast", "-w", "stop"]);
    }

    /// Starts the standby again on its port.
    pub fn restart_standby(&self) {
        self.pg_ctl_start("standby", self.standby_port).expect("the standby starts again");
    }

    /// Stops the primary (fast shutdown: its sessions are ended); for
    /// tests/circuit.rs, which shares this file.
    #[allow(dead_code)]
    pub fn stop_primary(&self) {
        self.pg("pg_ctl", &["-D", &self.data("primary"), "-m", "fast", "-w", "stop"]);
    }

    /// Starts the primary again on its port.
    #[allow(dead_code)]
    pub fn restart_primary(&self) {
        self.pg_ctl_start("primary", self.primary_port).expect("the primary starts again");
    }

    /// Runs `sql` on the primary (`on_standby`: on the standby).
    pub async fn execute(&self, on_standby: bool, sql: &str) {
        let url = if on_standby { self.standby_url() } else { self.primary_url() };
        let mut conn = PgConnection::connect(&url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = conn.close().await;
    }

    /// Waits until the standby has replayed everything the primary has
    /// flushed now.
    pub async fn wait_for_standby(&self) {
        let mut primary = PgConnection::connect(&self.primary_url()).await.unwrap();
        let target: String =
            sqlx::query_scalar("SELECT pg_current_wal_flush_lsn()::text").fetch_one(&mut primary).await.unwrap();
        let mut standby = PgConnection::connect(&self.standby_url()).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let caught_up: bool = sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn")
                .bind(&target)
                .fetch_one(&mut standby)
                .await
                .unwrap();
            if caught_up {
                return;
            }
            assert!(Instant::now() < deadline, "the standby did not replay up to {target}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn data(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// Starts the server of data dir `name` on a free port; retried on
    /// another port if that one was taken meanwhile.
    fn start_server(&self, name: &str) -> u16 {
        for _ in 0..3 {
            let port = free_port();
            match self.pg_ctl_start(name, port) {
                Ok(()) => return port,
                Err(log) if log.contains("already in use") => continue,
                Err(log) => panic!("PostgreSQL ({name}) did not start:\n{log}"),
            }
        }
        panic!("no free port for PostgreSQL ({name})");
    }

    fn pg_ctl_start(&self, name: &str, port: u16) -> Result<(), String> {
        let log = self.dir.join(format!("{name}.log"));
        let _ = std::fs::remove_file(&log);
        let data = self.data(name);
        let args = ["-D", &data, "-l", log.to_str().unwrap(), "-o", &format!("-p {port}"), "-w", "-t", "60", "start"];
        let out = self.pg_output("pg_ctl", &args);
        if out.status.success() {
            return Ok(());
        }
        Err(std::fs::read_to_string(&log).unwrap_or_default() + &String::from_utf8_lossy(&out.stderr))
    }

    fn pg(&self, program: &str, args: &[&str]) {
        let out = self.pg_output(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg_output(&self, program: &str, args: &[&str]) -> Output {
        let path = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        command.args(args).current_dir(&self.dir).output().unwrap_or_else(|e| panic!("{program}: {e}"))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        for name in ["standby", "primary"] {
            if self.dir.join(name).join("postmaster.pid").exists() {
                let _ = self.pg_output("pg_ctl", &["-D", &self.data(name), "-m", "immediate", "-w", "stop"]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
