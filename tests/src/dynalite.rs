//! DynamoDB's JSON API for the tests: dynalite (npm, 4.0.0), run by the
//! machine's Node.js on 127.0.0.1 on a free port, installed with npm into
//! `tests/.dynalite` the first time it is missing. In memory by default, or
//! on LevelDB in a folder of its own ([`Dynalite::start_on_disk`]), where
//! it keeps its tables across a restart on the same port. Tables are made
//! and deleted at once (no 500 ms `CREATING` state). The process is stopped
//! when this is dropped, and by a watchdog if the test process dies first.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::plugins::repo_root;

/// The version the tests run.
const VERSION: &str = "4.0.0";

/// dynalite's command-line entry, installed now if missing (once per test
/// process; the install goes to a folder of its own and is renamed into
/// place, so an interrupted one is not taken for done).
pub fn dynalite() -> &'static Path {
    static DYNALITE: OnceLock<PathBuf> = OnceLock::new();
    DYNALITE.get_or_init(|| {
        let home = repo_root().join("tests/.dynalite");
        let cli = home.join("node_modules/dynalite/cli.js");
        if cli.exists() {
            return cli;
        }
        eprintln!(
            "dynalite is not installed; installing it with npm into {}",
            home.display()
        );
        let staging = repo_root().join(format!("tests/.dynalite-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).expect("a folder for dynalite");
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&staging)
            .arg(format!("dynalite@{VERSION}"))
            .stdin(Stdio::null())
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm install dynalite@{VERSION} failed");
        // Another test process may have finished first: its copy is as good.
        if std::fs::rename(&staging, &home).is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        assert!(
            cli.exists(),
            "dynalite installed, but {} is missing",
            cli.display()
        );
        cli
    })
}

/// A dynalite process.
pub struct Dynalite {
    child: Option<Child>,
    port: u16,
    /// Its LevelDB folder, on disk; none: in memory.
    path: Option<PathBuf>,
    /// Its log (and, on disk, its data).
    dir: tempfile::TempDir,
}

impl Dynalite {
    /// Starts one keeping its tables in memory.
    pub fn start() -> Dynalite {
        Self::launched(false)
    }

    /// Starts one keeping its tables on LevelDB, kept across a restart.
    pub fn start_on_disk() -> Dynalite {
        Self::launched(true)
    }

    fn launched(on_disk: bool) -> Dynalite {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port on 127.0.0.1");
        let mut d = Dynalite {
            child: None,
            port,
            path: on_disk.then(|| dir.path().join("data")),
            dir,
        };
        d.launch();
        d
    }

    /// `http://127.0.0.1:PORT`, the endpoint a client is given.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("dynalite.log"))
            .expect("dynalite log");
        let mut command = Command::new("node");
        command.arg(dynalite()).args([
            "--host",
            "127.0.0.1",
            "--port",
            &self.port.to_string(),
            "--createTableMs",
            "0",
            "--deleteTableMs",
            "0",
            "--updateTableMs",
            "0",
        ]);
        if let Some(path) = &self.path {
            command.arg("--path").arg(path);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("node starts dynalite");
        // The watchdog: stops it once this process is gone.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {me} 2>/dev/null && kill -0 {it} 2>/dev/null; do sleep 1; done; kill -0 {me} 2>/dev/null || kill {it} 2>/dev/null",
                me = std::process::id(),
                it = child.id()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "dynalite did not listen on port {} within 30s; its log: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dynalite.log")).unwrap_or_default()
    }

    /// Kills it (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (on disk: with the same tables).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        self.kill();
    }
}
