//! The journal over real processes: acknowledged writes survive `kill -9`, damaged journals
//! are read past, a full disk refuses new writes without losing old ones, and two lbs
//! cannot share one directory.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A fresh, empty directory for one test's journal, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("lb-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }

    fn segments(&self) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&self.0)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        found.retain(|p| p.extension().is_some_and(|e| e == "journal"));
        found.sort();
        found
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn kill_9(lb: &mut Proc) {
    lb.signal(libc::SIGKILL);
    assert_eq!(lb.exit_code_within(Duration::from_secs(5)), Some(-1));
}

/// Runs lb until it exits (within 10 s): its exit code and its stderr.
fn run_to_exit(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lb"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lb");
    let end = Instant::now() + Duration::from_secs(10);
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code().unwrap_or(-1),
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("lb {args:?} did not exit");
            }
        }
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    (code, stderr)
}

#[test]
fn acknowledged_writes_survive_kill_9_and_a_restart_on_the_same_journal() {
    crash_and_restart("crash", &[]);
}

#[test]
fn with_two_workers_acknowledged_writes_survive_kill_9_and_a_restart() {
    let dir = crash_and_restart("crash-workers", &["--workers", "2"]);
    let names: Vec<String> = dir
        .segments()
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert!(names.iter().any(|n| n.starts_with("w0-")), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("w1-")), "{names:?}");
}

/// 200 acknowledged writes, three backends of which one fails its first 50 and one is not
/// there yet; lb (with `extra` flags) is killed with -9 and started again on its journal,
/// and every write reaches every backend once. Returns the journal, still in use.
fn crash_and_restart(name: &str, extra: &[&str]) -> TempDir {
    let dir = TempDir::new(name);
    let good = backend("good", &[]);
    let flaky = backend("flaky", &["--fail-first", "50"]);
    let late_addr = format!("127.0.0.1:{}", free_port());
    let (good_addr, flaky_addr) = (good.addr.to_string(), flaky.addr.to_string());
    let mut args = lb_args(
        &[&good_addr, &flaky_addr, &late_addr],
        &["--journal", dir.arg()],
    );
    args.extend_from_slice(FAST_RETRIES);
    args.extend_from_slice(extra);
    let mut lb = spawn(env!("CARGO_BIN_EXE_lb"), &args);
    let users: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
    for user in &users {
        let r = post(lb.addr, &format!("/register?username={user}&password=p"));
        assert_eq!(r.status, 201, "{}", r.text());
    }
    kill_9(&mut lb);
    assert!(!dir.segments().is_empty(), "the journal holds what is owed");
    let late = backend_on("late", &late_addr, &[]);
    let lb = spawn(env!("CARGO_BIN_EXE_lb"), &args);
    assert!(lb.wait_log("writes still owed are resumed", Duration::from_secs(5)));
    every_write_once(&[&good, &flaky, &late], &users);
    dir
}

/// Walks the records of a segment: (start, payload type) of each.
fn records(bytes: &[u8]) -> Vec<(usize, u8)> {
    use lb::journal::record::{HEADER, MAGIC, TAG};
    let mut found = Vec::new();
    let mut pos = 0;
    while pos + HEADER <= bytes.len() && bytes[pos..pos + 4] == MAGIC {
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        found.push((pos, bytes[pos + HEADER]));
        pos += HEADER + len + TAG;
    }
    found
}

#[test]
fn a_torn_tail_and_a_damaged_record_are_read_past() {
    let dir = TempDir::new("damage");
    let live = backend("live", &[]);
    let late_addr = format!("127.0.0.1:{}", free_port());
    let live_addr = live.addr.to_string();
    // Without health checks and with a long backoff, the copies to `late` stay owed.
    let args = lb_args(
        &[&live_addr, &late_addr],
        &[
            "--journal",
            dir.arg(),
            "--health-interval",
            "0",
            "--retry-base",
            "10m",
            "--admin",
            "127.0.0.1:0",
        ],
    );
    let mut lb = spawn(env!("CARGO_BIN_EXE_lb"), &args);
    for user in ["u0", "u1", "u2"] {
        let r = post(lb.addr, &format!("/register?username={user}&password=p"));
        assert_eq!(r.status, 201);
    }
    kill_9(&mut lb);
    let segments = dir.segments();
    assert_eq!(segments.len(), 1, "{segments:?}");
    let mut bytes = std::fs::read(&segments[0]).unwrap();
    let jobs: Vec<usize> = records(&bytes)
        .into_iter()
        .filter(|&(_, kind)| kind == 1)
        .map(|(start, _)| start)
        .collect();
    assert_eq!(jobs.len(), 3);
    bytes[jobs[1] + 30] ^= 0xff;
    let torn = bytes[jobs[0]..jobs[0] + 40].to_vec();
    bytes.extend_from_slice(&torn);
    std::fs::write(&segments[0], &bytes).unwrap();

    let late = backend_on("late", &late_addr, &[]);
    let lb = spawn(env!("CARGO_BIN_EXE_lb"), &args);
    assert!(lb.wait_log("damaged record", Duration::from_secs(5)));
    assert!(lb.wait_log("incomplete record", Duration::from_secs(5)));
    every_write_once(&[&late], &["u0".to_string(), "u2".to_string()]);
    assert_eq!(registered(&late, "u1"), 0, "the damaged record is skipped");
    let admin = admin_addr(&lb);
    assert!(eventually(Duration::from_secs(3), || {
        let m = get(admin, "/metrics").text();
        m.contains("lb_journal_damaged_records_total 1")
            && m.contains("lb_journal_torn_tails_total 1")
    }));
}

#[test]
fn a_journal_directory_that_cannot_be_made_is_a_clear_error() {
    let dir = TempDir::new("notadir");
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join("file");
    std::fs::write(&file, b"x").unwrap();
    let inside = file.join("journal");
    let (code, stderr) = run_to_exit(&lb_args(
        &["127.0.0.1:1"],
        &["--journal", inside.to_str().unwrap()],
    ));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--journal") && stderr.contains("cannot create"),
        "{stderr}"
    );
}

#[test]
fn a_second_lb_on_the_same_journal_exits_2_and_says_why() {
    let dir = TempDir::new("twice");
    let b = backend("b", &[]);
    let addr = b.addr.to_string();
    let first = lb_addrs(&[&addr], &["--journal", dir.arg()]);
    let (code, stderr) = run_to_exit(&lb_args(&[&addr], &["--journal", dir.arg()]));
    assert_eq!(code, 2, "{stderr}");
    let pid = format!("in use by another lb (pid {})", first.pid());
    assert!(stderr.contains(&pid), "{stderr}");
    assert_eq!(post(first.addr, "/register?username=a").status, 201);
}

#[test]
fn a_full_disk_refuses_new_writes_at_once_and_loses_none_already_acknowledged() {
    let dir = TempDir::new("full");
    let b1 = backend("b1", &[]);
    let b2 = backend("b2", &[]);
    let (a1, a2) = (b1.addr.to_string(), b2.addr.to_string());
    let args = lb_args(&[&a1, &a2], &["--journal", dir.arg()]);
    // A file-size limit makes the journal's writes fail with EFBIG, as a full disk would.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lb"));
    cmd.args(&args);
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 64 * 1024,
                rlim_max: 64 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let lb = spawn_command(&mut cmd);
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for i in 0..5000 {
        let user = format!("f{i}");
        let started = Instant::now();
        let r = post(lb.addr, &format!("/register?username={user}&password=p"));
        match r.status {
            201 => acknowledged.push(user),
            503 => {
                assert!(started.elapsed() < Duration::from_secs(2), "at once");
                refused = Some(r);
                break;
            }
            other => panic!("{other}: {}", r.text()),
        }
    }
    let refused = refused.expect("the journal filled up");
    assert!(refused.text().contains("journal"), "{}", refused.text());
    assert!(refused.header("retry-after").is_some());
    assert_eq!(get(lb.addr, "/").status, 200, "GETs go on");
    assert!(lb.wait_log("new POSTs are refused", Duration::from_secs(2)));
    every_write_once(&[&b1, &b2], &acknowledged);
    // The disk is tried again a second later: a fresh segment takes writes again.
    assert!(eventually(Duration::from_secs(5), || {
        post(lb.addr, "/register?username=after&password=p").status == 201
    }));
    assert!(
        Path::new(&dir.0).join("lock").exists(),
        "the lock file stays while lb runs"
    );
}

#[test]
fn a_drain_leaves_owed_copies_to_the_journal_and_the_next_start_delivers_them() {
    let dir = TempDir::new("drain");
    let up = backend("up", &[]);
    let late_addr = format!("127.0.0.1:{}", free_port());
    let up_addr = up.addr.to_string();
    let mut args = lb_args(&[&up_addr, &late_addr], &["--journal", dir.arg()]);
    args.extend_from_slice(FAST_RETRIES);
    let mut lb = spawn(env!("CARGO_BIN_EXE_lb"), &args);
    assert_eq!(
        post(lb.addr, "/register?username=ann&password=p").status,
        201
    );
    lb.signal(libc::SIGTERM);
    assert_eq!(
        lb.exit_code_within(Duration::from_secs(5)),
        Some(0),
        "the owed copy does not hold the drain: {}",
        lb.log_text()
    );
    assert!(
        lb.log_text().contains("kept in the journal"),
        "{}",
        lb.log_text()
    );
    let late = backend_on("late", &late_addr, &[]);
    let _lb = spawn(env!("CARGO_BIN_EXE_lb"), &args);
    every_write_once(&[&up, &late], &["ann".to_string()]);
}
