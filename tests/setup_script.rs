//! `./setup.sh` checks each process it starts and says what really runs. It is run here
//! on free ports, with the test build's binaries (no release build).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// setup.sh on `listen` and backend `ports`, with `args` for lb.
fn setup(listen: &str, ports: &[u16], args: &[&str]) -> Child {
    let bin = Path::new(env!("CARGO_BIN_EXE_lb"))
        .parent()
        .expect("a directory");
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    // A journal of its own: tests run side by side, and one journal takes one lb.
    let journal = std::env::temp_dir().join(format!("lb-setup-journal-{listen}"));
    Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/setup.sh"))
        .args(args)
        .env("SETUP_BIN", bin)
        .env("SETUP_LISTEN", listen)
        .env("SETUP_BACKEND_PORTS", ports.join(" "))
        .env("SETUP_JOURNAL", journal)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run setup.sh")
}

/// Nothing listens on `port` any more.
fn released(port: u16) -> bool {
    eventually(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    })
}

#[test]
fn a_taken_backend_port_fails_clearly_and_stops_the_rest() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let (first, third) = (free_port(), free_port());
    let listen = format!("127.0.0.1:{}", free_port());
    let child = setup(&listen, &[first, taken_port, third], &["--admin", "off"]);
    let out = child.wait_with_output().expect("setup.sh ends by itself");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "server2 could not start on 127.0.0.1:{taken_port}"
        )),
        "{err}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("lb is running"),
        "no banner"
    );
    assert!(released(first), "server1 was stopped");
}

#[test]
fn the_banner_says_what_really_runs() {
    let ports = [free_port(), free_port(), free_port()];
    let default_listen = format!("127.0.0.1:{}", free_port());
    let real_listen = format!("127.0.0.1:{}", free_port());
    let mut child = setup(
        &default_listen,
        &ports,
        &["-m", "tcp", "-l", &real_listen, "--admin", "off"],
    );
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut banner = Vec::new();
    let end = Instant::now() + Duration::from_secs(20);
    while let Ok(line) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        let last = line.starts_with("Ctrl-C");
        banner.push(line);
        if last {
            break;
        }
    }
    let text = banner.join("\n");
    assert!(
        text.contains(&format!(
            "lb is running on http://{real_listen} in TCP mode"
        )),
        "the -l given, and the mode:\n{text}"
    );
    assert!(!text.contains("every backend got the write"), "{text}");
    assert!(text.contains("admin interface off"), "{text}");
    let r = get(real_listen.parse().unwrap(), "/");
    assert_eq!(r.status, 200);
    // SAFETY: kill(2) on our own child, not yet waited for.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().expect("setup.sh exits");
    for port in ports {
        assert!(released(port), "backend on {port} stopped");
    }
    let listen_port: u16 = real_listen.rsplit(':').next().unwrap().parse().unwrap();
    assert!(released(listen_port), "lb stopped");
}
