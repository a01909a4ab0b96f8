//! A database of a test's own on the machine's PostgreSQL: made fresh for
//! the test and dropped after it, so tests can run in parallel and leave
//! nothing behind.
//!
//! The server is the one at `SWITCHYARD_TEST_POSTGRES` (a URL whose
//! database is one the tests may connect to in order to create others;
//! default `postgres://postgres@127.0.0.1:5432/postgres`). When the
//! default cannot be reached and the machine has a Debian cluster
//! installed but stopped, the tests start it (`pg_ctlcluster`), once.

use std::sync::atomic::{AtomicU64, Ordering};

use postgres::{Client, NoTls};

/// The server the tests use, as a URL.
pub fn server_url() -> String {
    std::env::var("SWITCHYARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database made for one test, dropped when this is.
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Makes a fresh, empty database.
    pub fn new() -> TestDatabase {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "switchyard_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = admin();
        // One statement each: neither may run inside a transaction, which
        // several statements in one call would be.
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin.batch_execute(&sql).unwrap_or_else(|e| {
                panic!(
                    "{sql}: {}",
                    e.as_db_error()
                        .map_or(e.to_string(), |d| d.message().to_string())
                )
            });
        }
        let base = server_url();
        let (head, _) = base
            .rsplit_once('/')
            .expect("the server URL names a database");
        TestDatabase {
            url: format!("{head}/{name}"),
            name,
        }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A client connected to it.
    pub fn client(&self) -> Client {
        Client::connect(&self.url, NoTls).expect("connect to the test database")
    }

    /// Ends every other connection to it now (a server restart as the
    /// runner's connections see it, without stopping the server other
    /// tests use); returns how many were ended.
    pub fn cut_connections(&self) -> i64 {
        admin()
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .expect("terminate backends")
            .get(0)
    }
}

impl Default for TestDatabase {
    fn default() -> Self {
        TestDatabase::new()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&server_url(), NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn admin() -> Client {
    if let Ok(client) = Client::connect(&server_url(), NoTls) {
        return client;
    }
    if std::env::var_os("SWITCHYARD_TEST_POSTGRES").is_none() {
        start_installed_cluster();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match Client::connect(&server_url(), NoTls) {
            Ok(client) => return client,
            Err(e) if std::time::Instant::now() > deadline => panic!(
                "PostgreSQL at {} cannot be reached ({e}); start it, or point SWITCHYARD_TEST_POSTGRES at one",
                server_url()
            ),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(200)),
        }
    }
}

/// Starts the machine's Debian PostgreSQL clusters, once per test process.
fn start_installed_cluster() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let Ok(versions) = std::fs::read_dir("/etc/postgresql") else {
            return;
        };
        for version in versions.flatten() {
            let version = version.file_name();
            eprintln!(
                "PostgreSQL is not answering; starting the installed cluster {}",
                version.to_string_lossy()
            );
            let _ = std::process::Command::new("pg_ctlcluster")
                .arg("--skip-systemctl-redirect")
                .arg(&version)
                .arg("main")
                .arg("start")
                .status();
        }
    });
}

/// A PostgreSQL server of one test's own: a cluster made by the machine's
/// installed `initdb` in a temporary folder, on a free loopback port, so
/// the test may stop and start it without disturbing any other. Run as
/// root, the server runs as the `postgres` user (PostgreSQL refuses root).
/// It is stopped when this is dropped, and by a watchdog if the test
/// process dies first.
pub struct PrivateServer {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
}

impl PrivateServer {
    /// Makes the cluster and starts it.
    pub fn start() -> PrivateServer {
        let bin = installed_bin_dir();
        let dir = tempfile::tempdir().expect("temp dir");
        if is_root() {
            run("chown", &["postgres".as_ref(), dir.path().as_os_str()]);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let server = PrivateServer { dir, bin, port };
        let data = server.data();
        server.pg(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--no-sync".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
            ],
        );
        server.start_again();
        // The watchdog: stops the server once this process is gone.
        let stop = server.ctl_line("stop -m immediate");
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1",
                std::process::id()
            ))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        server
    }

    /// Its URL (the `postgres` database).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A client connected to it.
    pub fn client(&self) -> Client {
        Client::connect(&self.url(), NoTls).expect("connect to the private server")
    }

    /// Stops it as an operator's restart does (`pg_ctl stop -m fast`:
    /// clients are disconnected, open transactions rolled back).
    pub fn stop(&self) {
        let line = self.ctl_line("stop -m fast");
        run("sh", &["-c".as_ref(), line.as_ref()]);
    }

    /// Starts it (again), waiting until it takes connections.
    pub fn start_again(&self) {
        let line = self.ctl_line(&format!(
            "start -l {}/log -o '-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off'",
            self.dir.path().display(),
            self.port,
            self.dir.path().display()
        ));
        run("sh", &["-c".as_ref(), line.as_ref()]);
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// A `pg_ctl` command line for `sh`, as the user the server runs as.
    fn ctl_line(&self, args: &str) -> String {
        format!(
            "{}{}/pg_ctl -w -D {} {args}",
            if is_root() {
                "runuser -u postgres -- "
            } else {
                ""
            },
            self.bin.display(),
            self.data().display()
        )
    }

    fn pg(&self, program: &str, args: &[&std::ffi::OsStr]) {
        let exe = self.bin.join(program);
        if is_root() {
            let mut all: Vec<&std::ffi::OsStr> = vec![
                "-u".as_ref(),
                "postgres".as_ref(),
                "--".as_ref(),
                exe.as_os_str(),
            ];
            all.extend_from_slice(args);
            run("runuser", &all);
        } else {
            run(exe.to_str().expect("a UTF-8 path"), args);
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let line = self.ctl_line("stop -m immediate");
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{line} >/dev/null 2>&1"))
            .status();
    }
}

/// Where the installed server's programs are (`pg_config --bindir`, or
/// the newest `/usr/lib/postgresql/N/bin`).
fn installed_bin_dir() -> std::path::PathBuf {
    if let Ok(out) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
    {
        let dir = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").is_file() {
            return dir;
        }
    }
    let mut found: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).expect(
        "no PostgreSQL server programs (initdb, pg_ctl) are installed; the restart test needs them",
    )
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(program: &str, args: &[&std::ffi::OsStr]) {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
