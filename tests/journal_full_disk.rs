//! A journal disk that is full when lb starts with writes owed. lb serves GETs, answers
//! POSTs 503 with Retry-After for as long as nothing can be written, delivers what it owes
//! meanwhile, leaves no empty segment behind per failed try and says so once; once there
//! is room, it takes POSTs again. "Full" is a file-size limit (RLIMIT_FSIZE: a write past
//! it fails with EFBIG, as one on a full disk fails with ENOSPC) that the test raises again
//! later with prlimit(2): that needs no root and no filesystem of its own.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::tls::TempDir;
use common::*;

/// No record fits while the limit holds: not a POST's, nor the few bytes of an outcome
/// (with 4096, an outcome written between failed POSTs let the journal resume too early,
/// and the test saw two error lines under load).
const LIMIT: u64 = 1;
const BODY: usize = 8192;

#[test]
fn a_disk_full_at_start_with_writes_owed_refuses_posts_and_delivers_what_is_owed() {
    let tmp = TempDir::new();
    let dir = tmp.0.join("journal");
    let dir_arg = dir.to_str().expect("a UTF-8 path").to_string();
    let live = backend("live", &[]);
    let late_addr = format!("127.0.0.1:{}", free_port());
    let live_addr = live.addr.to_string();
    let mut args = lb_args(
        &[&live_addr, &late_addr],
        &["--journal", &dir_arg, "--admin", "127.0.0.1:0"],
    );
    args.extend_from_slice(FAST_RETRIES);
    let body = "x".repeat(BODY);
    let mut lb = spawn(env!("CARGO_BIN_EXE_lb"), &args);
    let users: Vec<String> = (0..3).map(|i| format!("owed{i}")).collect();
    for user in &users {
        let r = post_body(
            lb.addr,
            &format!("/register?username={user}&password=p"),
            &body,
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    lb.signal(libc::SIGKILL);
    assert_eq!(lb.exit_code_within(Duration::from_secs(5)), Some(-1));
    let before = segments(&dir);
    assert_eq!(before.len(), 1, "{before:?}");

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lb"));
    cmd.args(&args);
    // SAFETY: setrlimit is async-signal-safe and touches only the child. The hard limit
    // stays unlimited, so that the test may raise the soft one again.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let lb = spawn_command(&mut cmd);
    assert_eq!(get(lb.addr, "/").status, 200, "GETs are served");
    let admin = admin_addr(&lb);
    // POSTs get 503 at once, through several tries of the disk.
    let mut refused = 0;
    let tried = eventually(Duration::from_secs(15), || {
        let r = post_body(lb.addr, "/register?username=refused&password=p", &body);
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(r.header("retry-after").is_some(), "{}", r.text());
        assert!(r.text().contains("journal"), "{}", r.text());
        refused += 1;
        write_failures(admin) >= 3
    });
    assert!(tried, "the disk was not tried again:\n{}", lb.log_text());
    let errors = lb.log_text().matches("new POSTs are refused").count();
    assert_eq!(
        errors,
        1,
        "one error line for {refused} refused POSTs:\n{}",
        lb.log_text()
    );
    assert!(
        eventually(Duration::from_secs(3), || segments(&dir) == before),
        "failed tries leave no segment behind: {:?}",
        segments(&dir)
    );

    // What was owed is delivered while the disk is still full.
    let late = backend_on("late", &late_addr, &[]);
    for user in &users {
        assert!(
            eventually(Duration::from_secs(20), || registered(&late, user) == 1),
            "{user} never reached late:\n{}",
            lb.log_text()
        );
    }
    assert_eq!(registered(&late, "refused"), 0);
    assert_eq!(registered(&live, "refused"), 0);

    // Room again: POSTs are taken.
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit(2) on our own child's pid, which has not been waited for.
    let raised = unsafe {
        libc::prlimit(
            lb.pid() as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &unlimited,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(raised, 0, "prlimit: {}", std::io::Error::last_os_error());
    assert!(eventually(Duration::from_secs(10), || {
        post_body(lb.addr, "/register?username=after&password=p", &body).status == 201
    }));
    assert!(lb.wait_log("written again after", Duration::from_secs(2)));
    assert!(eventually(Duration::from_secs(10), || {
        registered(&late, "after") == 1 && registered(&live, "after") == 1
    }));
    let now = segments(&dir);
    assert!(
        !now.is_empty() && now.iter().all(|s| !before.contains(s)),
        "{now:?}"
    );
    for s in &now {
        let len = std::fs::metadata(s).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{} is empty", s.display());
    }
}

/// `lb_journal_write_failures_total`, 0 until the journal's counters are first published.
fn write_failures(admin: std::net::SocketAddr) -> u64 {
    let text = get(admin, "/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix("lb_journal_write_failures_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    found.retain(|p| p.extension().is_some_and(|e| e == "journal"));
    found.sort();
    found
}
