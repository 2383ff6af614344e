//! SIGUSR2: lb starts the binary at its own path, hands it the listening sockets, and
//! drains once the new process serves; a new process that fails leaves the old one serving.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// The tests here run one at a time: a binary being copied is open for writing, and a
/// process forked meanwhile by another test's thread holds that descriptor until it execs,
/// so exec'ing the copy could fail with "Text file busy" (ETXTBSY).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A copy of the lb binary in a directory of its own, so that a test can replace it the
/// way a rebuild does.
struct Install {
    dir: PathBuf,
}

impl Install {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("lb-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let install = Install { dir };
        install.replace_with(Path::new(env!("CARGO_BIN_EXE_lb")));
        install
    }

    fn bin(&self) -> PathBuf {
        self.dir.join("lb")
    }

    /// Puts `file` where the binary is, as a new file (a rebuild leaves the running
    /// process on the old, deleted one).
    fn replace_with(&self, file: &Path) {
        let next = self.dir.join("lb.next");
        std::fs::copy(file, &next).unwrap();
        std::fs::rename(&next, self.bin()).unwrap();
    }
}

impl Drop for Install {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A process this test did not spawn itself (the new lb), killed at the end.
struct Adopted(i32);

impl Drop for Adopted {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of the lb this test made the old lb start.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

fn start(install: &Install, backends: &[&Proc], extra: &[&str]) -> Proc {
    let bin = install.bin();
    let mut args = vec!["-l", "127.0.0.1:0", "--admin", "127.0.0.1:0"];
    let addrs: Vec<String> = backends.iter().map(|b| b.addr.to_string()).collect();
    for a in &addrs {
        args.extend(["-b", a.as_str()]);
    }
    args.extend_from_slice(extra);
    spawn(bin.to_str().unwrap(), &args)
}

#[test]
fn an_upgrade_under_load_drops_no_connection_and_loses_no_write() {
    upgrade_under_load("upgrade", &[]);
}

#[test]
fn an_upgrade_with_two_workers_drops_no_connection_and_loses_no_write() {
    upgrade_under_load("upgrade-workers", &["--workers", "2"]);
}

fn upgrade_under_load(name: &str, extra: &[&str]) {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let b: Vec<Proc> = (0..3).map(|i| backend(&format!("b{i}"), &[])).collect();
    let install = Install::new(name);
    let mut old = start(&install, &[&b[0], &b[1], &b[2]], extra);
    let admin = admin_addr(&old);
    let load = load::start(old.addr, 4, 2, 2);
    load.progress(300);
    // As after `cargo build`: the running binary's file is gone, a new one is in its place.
    install.replace_with(Path::new(env!("CARGO_BIN_EXE_lb")));
    old.signal(libc::SIGUSR2);
    let new = new_pid(&old, 0);
    assert_eq!(
        old.exit_code_within(Duration::from_secs(15)),
        Some(0),
        "{}",
        old.log_text()
    );
    let exe = std::fs::read_link(format!("/proc/{}/exe", new.0)).unwrap();
    assert_eq!(exe, install.bin(), "the new process runs the new file");
    load.progress(300);
    let seen = load.stop();
    let log = old.log_text();
    assert!(
        seen.errors.is_empty(),
        "{:?}\n{log}",
        &seen.errors[..seen.errors.len().min(10)]
    );
    assert!(log.contains("upgrade: serving; the lb that started this one stops accepting now"));
    assert!(log.contains(&format!(
        "upgrade: pid {} serves now and accepts alone",
        new.0
    )));
    assert_eq!(
        get(admin, "/healthz").status,
        200,
        "the admin listener went over too"
    );
    assert!(seen.written.len() > 20, "{} writes", seen.written.len());
    for user in &seen.written {
        for backend in &b {
            let r = get(backend.addr, &format!("/users/{user}"));
            assert_eq!(r.status, 200, "{user} missing on {}", backend.addr);
        }
    }
}

#[test]
fn a_new_process_that_fails_leaves_the_old_one_serving() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let a = backend("a", &[]);
    let install = Install::new("failed-upgrade");
    let mut old = start(&install, &[&a], &[]);
    let script = install.dir.join("broken.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'lb-test: a broken build' >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    install.replace_with(&script);
    old.signal(libc::SIGUSR2);
    assert!(old.wait_log("upgrade failed, carrying on", Duration::from_secs(5)));
    let log = old.log_text();
    assert!(
        log.contains("lb-test: a broken build"),
        "the new binary on disk ran:\n{log}"
    );
    assert!(
        log.contains("exited (exit status: 3) before serving"),
        "{log}"
    );
    assert_eq!(get(old.addr, "/").status, 200);
    assert_eq!(old.exit_code_within(Duration::from_millis(200)), None);

    install.replace_with(Path::new(env!("CARGO_BIN_EXE_lb")));
    old.signal(libc::SIGUSR2);
    let _new = new_pid(&old, 1);
    assert_eq!(
        old.exit_code_within(Duration::from_secs(10)),
        Some(0),
        "{}",
        old.log_text()
    );
    assert_eq!(
        get(old.addr, "/").status,
        200,
        "the new lb serves on the same port"
    );
}

/// The pid the old lb logged for the `n`th process it started (counting from 0).
fn new_pid(lb: &Proc, n: usize) -> Adopted {
    let mut pid = None;
    eventually(Duration::from_secs(5), || {
        pid = lb
            .log_text()
            .lines()
            .filter_map(|l| l.split(" as pid ").nth(1))
            .nth(n)
            .and_then(|rest| rest.split(';').next())
            .and_then(|p| p.parse().ok());
        pid.is_some()
    });
    Adopted(pid.unwrap_or_else(|| panic!("no new pid logged:\n{}", lb.log_text())))
}

#[test]
fn an_upgrade_takes_the_journal_over_and_delivers_what_the_old_lb_owed() {
    journal_taken_over("upgrade-journal", 1);
}

#[test]
fn with_two_workers_an_upgrade_takes_every_workers_journal_over() {
    journal_taken_over("upgrade-journal-workers", 2);
}

/// POSTs owed to a backend that is down, an upgrade, and the new lb (with `workers`
/// workers, each taking its writer over) delivers them and takes new ones.
fn journal_taken_over(name: &str, workers: usize) {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let up = backend("up", &[]);
    let late_addr = format!("127.0.0.1:{}", free_port());
    let install = Install::new(name);
    let journal = install.dir.join("journal");
    let journal = journal.to_str().unwrap();
    let (bin, up_addr) = (install.bin(), up.addr.to_string());
    let mut args = vec!["-l", "127.0.0.1:0", "--admin", "off", "--journal", journal];
    args.extend(["-b", up_addr.as_str(), "-b", late_addr.as_str()]);
    args.extend_from_slice(FAST_RETRIES);
    let workers_arg = workers.to_string();
    args.extend(["--workers", workers_arg.as_str()]);
    let mut old = spawn(bin.to_str().unwrap(), &args);
    let before: Vec<String> = (0..6).map(|i| format!("ann{i}")).collect();
    for user in &before {
        let r = post(old.addr, &format!("/register?username={user}&password=p"));
        assert_eq!(r.status, 201);
    }
    old.signal(libc::SIGUSR2);
    let _new = new_pid(&old, 0);
    assert_eq!(
        old.exit_code_within(Duration::from_secs(15)),
        Some(0),
        "{}",
        old.log_text()
    );
    assert!(old.log_text().contains("kept in the journal"));
    // The new lb's log goes to the same pipe.
    assert!(
        old.wait_log(
            "taken over from the lb this one replaced",
            Duration::from_secs(5)
        ),
        "{}",
        old.log_text()
    );
    let taken = "taken over from the lb this one replaced";
    let every_worker = eventually(Duration::from_secs(5), || {
        old.log_text().matches(taken).count() == workers
    });
    assert!(every_worker, "{}", old.log_text());
    assert!(eventually(Duration::from_secs(5), || {
        post(old.addr, "/register?username=bob&password=p").status == 201
    }));
    let late = backend_on("late", &late_addr, &[]);
    for user in before.iter().map(String::as_str).chain(["bob"]) {
        assert!(
            eventually(Duration::from_secs(10), || registered(&late, user) == 1),
            "{user} on the backend that was down: {}",
            old.log_text()
        );
        assert_eq!(registered(&up, user), 1);
    }
}
