//! A real PostgreSQL for a test: Debian's server binaries, a cluster made by `initdb` in a
//! temporary directory, listening on 127.0.0.1 at a free port (its unix socket in the
//! same directory), stopped when the test lets go of it, panics included. PostgreSQL
//! refuses to run as root, so a test running as root runs it as `nobody`.

#![allow(dead_code)] // each test binary that includes it uses a different subset

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{eventually, free_port};

pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    server: Option<Child>,
}

/// The newest installed server's binaries, if any.
fn binaries() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("postgres").exists() && bin.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

/// The user the server runs as: ourselves, or `nobody` when we are root.
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions; getpwnam returns a pointer into static storage
    // (or null), read at once and never kept.
    unsafe {
        if libc::geteuid() != 0 {
            return None;
        }
        let pw = libc::getpwnam(c"nobody".as_ptr());
        assert!(
            !pw.is_null(),
            "running as root, and there is no user nobody"
        );
        Some(((*pw).pw_uid, (*pw).pw_gid))
    }
}

impl Postgres {
    /// A fresh cluster, started; `None` (said on stderr) when PostgreSQL is not installed,
    /// except in CI, where .ci/run installs it and its absence fails the test.
    pub fn start(name: &str) -> Option<Postgres> {
        let Some(bin) = binaries() else {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty());
            assert!(!ci, "CI must install postgresql (.ci/run)");
            eprintln!("PostgreSQL is not installed (/usr/lib/postgresql/*/bin): skipping");
            return None;
        };
        let dir = std::env::temp_dir().join(format!("lb-pg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the cluster's directory");
        if let Some((uid, gid)) = run_as() {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown to nobody");
        }
        let out = command(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "lb", "--no-sync", "-D"])
            .arg(dir.join("data"))
            .stdout(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            bin,
            dir,
            port: free_port(),
            server: None,
        };
        pg.resume();
        Some(pg)
    }

    /// lb's `--journal` for this database, with `instance` as lb's instance name.
    pub fn url(&self, instance: &str) -> String {
        format!(
            "postgres://lb@127.0.0.1:{}/postgres?instance={instance}",
            self.port
        )
    }

    /// A client of our own, to look at or change what lb wrote.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(
            &format!("host=127.0.0.1 port={} user=lb dbname=postgres", self.port),
            postgres::NoTls,
        )
        .expect("connect to the test's PostgreSQL")
    }

    /// Starts the server (again, on the same port and data), and waits until it answers.
    pub fn resume(&mut self) {
        let server = command(&self.bin.join("postgres"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .arg("-k")
            .arg(&self.dir)
            .args(["-c", "fsync=off"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        self.server = Some(server);
        let port = self.port;
        assert!(
            eventually(Duration::from_secs(30), || {
                postgres::Client::connect(
                    &format!("host=127.0.0.1 port={port} user=lb dbname=postgres"),
                    postgres::NoTls,
                )
                .is_ok()
            }),
            "postgres did not start on port {port}"
        );
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the server and every process it started: its
    /// kernel still accepts connections and acknowledges bytes, but nothing answers, as
    /// with a database that hangs.
    pub fn freeze(&self, frozen: bool) {
        let Some(server) = &self.server else {
            return;
        };
        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        let mut pids = children(server.id());
        pids.push(server.id());
        for pid in pids {
            // SAFETY: kill(2) on the server (our child, not yet waited for) and on its own
            // children, which it reaps only once it runs again.
            unsafe { libc::kill(pid as i32, signal) };
        }
    }

    /// Stops the server (a fast shutdown: clients are cut off) and waits for it to exit.
    pub fn stop(&mut self) {
        // A frozen server would never hear the signal.
        self.freeze(false);
        if let Some(mut server) = self.server.take() {
            // SAFETY: kill(2) on our own child, not yet waited for.
            unsafe { libc::kill(server.id() as i32, libc::SIGINT) };
            let _ = server.wait();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `program`, run as `nobody` when we are root.
fn command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    if let Some((uid, gid)) = run_as() {
        cmd.uid(uid).gid(gid).env("HOME", "/tmp");
    }
    cmd
}

/// The processes whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // The fourth field of /proc/PID/stat, after the parenthesized command name.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}
