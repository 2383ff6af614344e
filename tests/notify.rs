//! systemd's notify socket (`NOTIFY_SOCKET`): lb says READY=1 once it serves, RELOADING=1
//! (with the time) and then READY=1 around every SIGHUP reload, taken or refused, STOPPING=1
//! at a stop signal, a STATUS= line that follows the backends, and after an upgrade the new
//! lb says READY=1 with its own pid before the old one exits.

mod common;

use std::ffi::CString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use common::tls::TempDir;
use common::*;

/// systemd's end of the socket, in a directory of the test's own.
struct Systemd {
    sock: UnixDatagram,
    path: String,
    dir: TempDir,
}

impl Systemd {
    fn new() -> Self {
        let dir = TempDir::new();
        let path = dir.0.join("notify").to_string_lossy().into_owned();
        let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Systemd { sock, path, dir }
    }

    /// lb with `args`, told where systemd listens.
    fn lb(&self, args: &[&str]) -> Proc {
        spawn_command(
            Command::new(env!("CARGO_BIN_EXE_lb"))
                .args(args)
                .env("NOTIFY_SOCKET", &self.path),
        )
    }

    /// The next datagram within the read timeout.
    fn recv(&self) -> Option<String> {
        let mut got = [0u8; 1024];
        let n = self.sock.recv(&mut got).ok()?;
        Some(String::from_utf8_lossy(&got[..n]).into_owned())
    }

    /// The next message that says more than STATUS= (which comes whenever the summary
    /// changes, so it may come between any two others).
    fn next(&self, lb: &Proc) -> String {
        loop {
            match self.recv() {
                Some(m) if m.lines().all(|l| l.starts_with("STATUS=")) => continue,
                Some(m) => return m,
                None => panic!("systemd heard nothing more:\n{}", lb.log_text()),
            }
        }
    }

    /// Messages until one whose STATUS= is `status`.
    fn until_status(&self, lb: &Proc, status: &str) {
        while let Some(m) = self.recv() {
            if field(&m, "STATUS") == Some(status) {
                return;
            }
        }
        panic!("never STATUS={status}:\n{}", lb.log_text());
    }

    /// What was sent and not yet read, without waiting (for a process that has exited).
    fn left(&self) -> Vec<String> {
        self.sock.set_nonblocking(true).expect("nonblocking");
        let left = std::iter::from_fn(|| self.recv()).collect();
        self.sock.set_nonblocking(false).expect("blocking");
        left
    }
}

/// The value of `key` in a message.
fn field<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// CLOCK_MONOTONIC in microseconds, as systemd reads it.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into a live one.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// SIGHUP, then RELOADING=1 stamped between the signal and its arrival, then READY=1;
/// returns the READY message.
fn reload(systemd: &Systemd, lb: &Proc) -> String {
    let before = monotonic_usec();
    lb.signal(libc::SIGHUP);
    let reloading = systemd.next(lb);
    let after = monotonic_usec();
    assert_eq!(field(&reloading, "RELOADING"), Some("1"), "{reloading:?}");
    let stamp: u64 = field(&reloading, "MONOTONIC_USEC")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(
        (before..=after).contains(&stamp),
        "{stamp} not within {before}..={after}"
    );
    let ready = systemd.next(lb);
    assert_eq!(field(&ready, "READY"), Some("1"), "{ready:?}");
    ready
}

/// SIGTERM: STOPPING=1, then lb exits and has said nothing more.
fn stop(systemd: &Systemd, mut lb: Proc) {
    lb.signal(libc::SIGTERM);
    assert_eq!(systemd.next(&lb), "STOPPING=1\n");
    assert_eq!(lb.exit_code_within(Duration::from_secs(10)), Some(0));
    assert_eq!(systemd.left(), Vec::<String>::new(), "{}", lb.log_text());
}

fn count(lb: &Proc, needle: &str) -> usize {
    lb.log_text().matches(needle).count()
}

#[test]
fn with_flags_systemd_hears_ready_each_reload_taken_or_refused_and_stopping() {
    let systemd = Systemd::new();
    let (a, b) = (backend("a", &[]), backend("b", &[]));
    let file = systemd.dir.write("backends", &format!("{}\n", a.addr));
    let args = ["-l", "127.0.0.1:0", "--admin", "off", "-f", &file];
    let fast_checks = ["--health-interval", "100ms", "--fall", "1"];
    let lb = systemd.lb(&[&args[..], &fast_checks].concat());
    let ready = systemd.next(&lb);
    assert_eq!(field(&ready, "READY"), Some("1"), "{ready:?}");
    assert_eq!(
        field(&ready, "MAINPID"),
        Some(lb.pid().to_string().as_str())
    );
    assert_eq!(
        field(&ready, "STATUS"),
        Some("1 pool(s), 1/1 backends up, 0 POST copies owed")
    );

    systemd
        .dir
        .write("backends", &format!("{}\n{}\n", a.addr, b.addr));
    let ready = reload(&systemd, &lb);
    assert_eq!(
        field(&ready, "STATUS"),
        Some("1 pool(s), 2/2 backends up, 0 POST copies owed")
    );
    assert!(lb.wait_log("reloaded ", Duration::from_secs(5)));

    // A refused file keeps the running backends, and systemd must leave "reloading".
    systemd.dir.write("backends", "127.0.0.1:notaport\n");
    reload(&systemd, &lb);
    assert!(lb.wait_log("reload failed", Duration::from_secs(5)));

    // A backend going down changes the line, told at the next housekeeping tick.
    drop(b);
    systemd.until_status(&lb, "1 pool(s), 1/2 backends up, 0 POST copies owed");
    stop(&systemd, lb);
}

/// Writes `text` to the FIFO at `path` once lb has it open to read, without ever blocking.
fn feed(path: &str, text: &str, lb: &Proc) {
    let mut opened = None;
    let reader = eventually(Duration::from_secs(10), || {
        opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .ok();
        opened.is_some()
    });
    assert!(reader, "lb never read {path}:\n{}", lb.log_text());
    if let Some(mut f) = opened {
        f.write_all(text.as_bytes()).expect("write the FIFO");
    }
}

#[test]
fn sighups_during_a_reload_make_one_reloading_and_one_ready() {
    let systemd = Systemd::new();
    let a = backend("a", &[]);
    let listed = format!("{}\n", a.addr);
    let file = systemd.dir.write("backends", &listed);
    let lb = systemd.lb(&["-l", "127.0.0.1:0", "--admin", "off", "-f", &file]);
    assert_eq!(field(&systemd.next(&lb), "READY"), Some("1"));
    // From now on a reload waits on a FIFO until the test writes it: still under way while
    // two more SIGHUPs come.
    let fifo = systemd.dir.0.join("fifo");
    let c_path = CString::new(fifo.to_string_lossy().as_bytes()).expect("path");
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    std::fs::rename(&fifo, &file).expect("the FIFO replaces the file");
    lb.signal(libc::SIGHUP);
    let reloading = systemd.next(&lb);
    assert_eq!(field(&reloading, "RELOADING"), Some("1"), "{reloading:?}");
    for n in 1..=2 {
        lb.signal(libc::SIGHUP);
        assert!(
            eventually(Duration::from_secs(5), || count(
                &lb,
                "SIGHUP during a reload"
            ) == n),
            "{}",
            lb.log_text()
        );
    }
    feed(&file, &listed, &lb);
    assert!(
        eventually(Duration::from_secs(5), || count(&lb, "reloaded ") == 1),
        "{}",
        lb.log_text()
    );
    // The SIGHUPs that came meanwhile read the file once more, in the same reload: no
    // READY=1 yet (it would have been sent just after the line above).
    let early: Vec<String> = systemd
        .left()
        .into_iter()
        .filter(|m| !m.lines().all(|l| l.starts_with("STATUS=")))
        .collect();
    assert_eq!(early, Vec::<String>::new());
    feed(&file, &listed, &lb);
    let ready = systemd.next(&lb);
    assert_eq!(field(&ready, "READY"), Some("1"), "{ready:?}");
    assert!(
        eventually(Duration::from_secs(5), || count(&lb, "reloaded ") == 2),
        "{}",
        lb.log_text()
    );
    assert_eq!(count(&lb, "reload failed"), 0, "{}", lb.log_text());
    // A plain file again (writing the FIFO's path would wait for a reader).
    std::fs::remove_file(&file).expect("remove the FIFO");
    std::fs::write(&file, &listed).expect("a plain file again");
    reload(&systemd, &lb);
    stop(&systemd, lb);
}

#[test]
fn with_a_config_file_systemd_hears_each_reload_end_even_a_refused_one() {
    let systemd = Systemd::new();
    let (a, b) = (backend("a", &[]), backend("b", &[]));
    let head = "[admin]\nlisten = \"off\"\n\n[listeners.web]\naddress = \"127.0.0.1:0\"\n\n";
    let one = format!("{head}[pools.pa]\nbackends = [\"{}\"]\n", a.addr);
    let two = format!(
        "{head}[pools.pa]\nbackends = [\"{}\"]\n[pools.pb]\nbackends = [\"{}\"]\n\n\
         [[routes]]\nhost = \"b.test\"\npool = \"pb\"\n[[routes]]\npool = \"pa\"\n",
        a.addr, b.addr
    );
    let path = systemd.dir.write("lb.toml", &one);
    let lb = systemd.lb(&["-c", &path]);
    let ready = systemd.next(&lb);
    assert_eq!(field(&ready, "READY"), Some("1"), "{ready:?}");
    assert_eq!(
        field(&ready, "STATUS"),
        Some("1 pool(s), 1/1 backends up, 0 POST copies owed")
    );

    systemd.dir.write("lb.toml", &two);
    let ready = reload(&systemd, &lb);
    assert_eq!(
        field(&ready, "STATUS"),
        Some("2 pool(s), 2/2 backends up, 0 POST copies owed"),
        "{}",
        lb.log_text()
    );

    systemd
        .dir
        .write("lb.toml", &two.replace("pool = \"pb\"", "pool = \"pz\""));
    reload(&systemd, &lb);
    assert!(lb.wait_log(
        "reload failed: the running config stays as it was",
        Duration::from_secs(5)
    ));

    // pb goes: it no longer counts, though its backend leaves only once idle.
    systemd.dir.write("lb.toml", &one);
    let ready = reload(&systemd, &lb);
    assert_eq!(
        field(&ready, "STATUS").map(|s| s.split(',').next()),
        Some(Some("1 pool(s)")),
        "{ready:?}"
    );
    stop(&systemd, lb);
}

/// A process this test did not spawn itself (the new lb), killed at the end.
struct Adopted(i32);

impl Drop for Adopted {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of the lb this test made the old lb start.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

#[test]
fn after_an_upgrade_the_new_lb_says_ready_with_its_pid_before_the_old_one_exits() {
    let systemd = Systemd::new();
    let a = backend("a", &[]);
    let addr = a.addr.to_string();
    let mut old = systemd.lb(&["-l", "127.0.0.1:0", "--admin", "off", "-b", &addr]);
    let ready = systemd.next(&old);
    assert_eq!(
        field(&ready, "MAINPID"),
        Some(old.pid().to_string().as_str())
    );
    old.signal(libc::SIGUSR2);
    let mut pid = None;
    eventually(Duration::from_secs(5), || {
        pid = old
            .log_text()
            .split(" as pid ")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .and_then(|p| p.parse::<i32>().ok());
        pid.is_some()
    });
    let new = Adopted(pid.unwrap_or_else(|| panic!("no new pid:\n{}", old.log_text())));
    assert_eq!(
        old.exit_code_within(Duration::from_secs(10)),
        Some(0),
        "{}",
        old.log_text()
    );
    // Queued by the time the old lb has exited, and the old one said nothing after it:
    // no STOPPING=1 for a drain that hands over.
    let left = systemd.left();
    let said: Vec<&String> = left
        .iter()
        .filter(|m| !m.lines().all(|l| l.starts_with("STATUS=")))
        .collect();
    assert_eq!(said.len(), 1, "{left:?}");
    assert_eq!(field(said[0], "READY"), Some("1"), "{left:?}");
    assert_eq!(
        field(said[0], "MAINPID"),
        Some(new.0.to_string().as_str()),
        "{left:?}"
    );
    assert_eq!(get(old.addr, "/").status, 200, "the new lb serves");
    // SAFETY: kill(2) on the new lb's pid, which has not been reaped: it still serves.
    assert_eq!(unsafe { libc::kill(new.0, libc::SIGTERM) }, 0);
    assert_eq!(systemd.next(&old), "STOPPING=1\n");
}

#[test]
fn with_two_workers_ready_comes_once() {
    let systemd = Systemd::new();
    let a = backend("a", &[]);
    let addr = a.addr.to_string();
    let lb = systemd.lb(&[
        "-l",
        "127.0.0.1:0",
        "--admin",
        "off",
        "--workers",
        "2",
        "-b",
        &addr,
    ]);
    let ready = systemd.next(&lb);
    assert_eq!(field(&ready, "READY"), Some("1"), "{ready:?}");
    assert_eq!(get(lb.addr, "/").status, 200);
    // Anything a second worker said at start comes before the answer to SIGTERM.
    stop(&systemd, lb);
}
