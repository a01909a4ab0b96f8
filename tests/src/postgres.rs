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
