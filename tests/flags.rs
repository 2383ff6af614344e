//! The lb binary's answer to flags: one line and exit 2 for anything wrong, a warning
//! once for what is ignored, and startup errors that say what to type instead.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

/// Runs lb with `args` to its end; exit code and stderr.
fn lb_exits(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lb"))
        .args(args)
        .output()
        .expect("run lb");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_values_and_contradictions_are_one_line_and_exit_2() {
    for (args, says) in [
        (
            &[
                "-b",
                "127.0.0.1:9",
                "--client-timeout",
                "18446744073709551615s",
            ][..],
            "maximum, 1h",
        ),
        (
            &["-b", "127.0.0.1:9", "--idle-timeout", "307445734561825861m"],
            "maximum",
        ),
        (
            &["-b", "127.0.0.1:9", "--drain-timeout", "25h"],
            "maximum, 24h",
        ),
        (
            &["-b", "127.0.0.1:9", "--server-timeout", "0"],
            "more than 0",
        ),
        (&["-b", "127.0.0.1:9", "-b", "127.0.0.1:9"], "given twice"),
        (&["-b", "127.0.0.1:0"], "port 0"),
        (
            &["-b", "127.0.0.1:9,weight=3,weight=4"],
            "weight given twice",
        ),
        (&["-b", "127.0.0.1:9", "-q", "-v"], "-q and -v"),
        (&["-b", "127.0.0.1:9", "--fanout", "5"], "--fanout 5"),
        (
            &["-b", "127.0.0.1:9", "-m", "tcp", "--server-timeout", "5s"],
            "HTTP only",
        ),
        (&["-b", "127.0.0.1:9", "--max-body", "5g"], "maximum, 1g"),
    ] {
        let (code, err) = lb_exits(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} should say {says:?}: {err}");
    }
}

#[test]
fn ignored_flags_are_warned_about_once() {
    let a = backend("a", &[]);
    let b = backend("b", &[]);
    let weighted = format!("{},weight=3", a.addr);
    let plain = b.addr.to_string();
    let lb = lb_addrs(&[&weighted, &plain], &["-s", "least-connections"]);
    let warned = |lb: &Proc| {
        lb.log_text()
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("weight= is ignored"))
            .count()
    };
    assert!(eventually(Duration::from_secs(2), || warned(&lb) == 1));
    for _ in 0..5 {
        get(lb.addr, "/");
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(warned(&lb), 1, "{}", lb.log_text());
    let rr = lb_addrs(&[&weighted, &plain], &[]);
    get(rr.addr, "/");
    assert_eq!(warned(&rr), 0, "round-robin uses weights");
}

#[test]
fn a_taken_admin_or_listen_port_says_what_to_type() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, err) = lb_exits(&["-l", "127.0.0.1:0", "-b", "127.0.0.1:9", "--admin", &addr]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--admin ADDR") && err.contains("--admin off"),
        "{err}"
    );
    let (code, err) = lb_exits(&["-l", &addr, "-b", "127.0.0.1:9", "--admin", "off"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("-l ADDR"), "{err}");
}

#[test]
fn an_empty_backends_file_and_a_backend_without_a_port_say_so() {
    let dir = std::env::temp_dir().join(format!("lb-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("servers.txt");
    std::fs::write(&empty, "# nothing yet\n").unwrap();
    let empty = empty.display().to_string();
    let (code, err) = lb_exits(&["-f", &empty]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains(&format!("{empty} lists no backends, and no -b gives one")),
        "{err}"
    );
    let (code, err) = lb_exits(&["-b", "127.0.0.1"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("the port is missing (write 127.0.0.1:80"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn version_names_the_version_and_the_commit() {
    let out = Command::new(env!("CARGO_BIN_EXE_lb"))
        .arg("--version")
        .output()
        .expect("run lb");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = regex::Regex::new(r"^lb (\d+\.\d+\.\d+) \(([0-9a-f]{7,40}|unknown)\)\n$")
        .expect("the pattern compiles");
    let Some(got) = line.captures(&text) else {
        panic!("lb --version printed {text:?}");
    };
    assert_eq!(&got[1], env!("CARGO_PKG_VERSION"));
    // Built in a git checkout, the commit is HEAD's: build.rs reran when HEAD moved.
    let dir = env!("CARGO_MANIFEST_DIR");
    if std::path::Path::new(dir).join(".git").exists()
        && let Ok(head) = Command::new("git")
            .args(["-C", dir, "rev-parse", "--short", "HEAD"])
            .output()
        && head.status.success()
    {
        assert_eq!(&got[2], String::from_utf8_lossy(&head.stdout).trim());
    }
}
