//! `--journal postgres://...` against a real PostgreSQL: acknowledged writes survive
//! `kill -9` and are resumed by the next start, and a schema newer than lb's is refused.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::postgres::Postgres;
use common::*;

fn every_write_once(backends: &[&Proc], users: &[String]) {
    for b in backends {
        for user in users {
            assert!(
                eventually(Duration::from_secs(30), || registered(b, user) >= 1),
                "{user} never reached {}",
                b.addr
            );
            assert_eq!(registered(b, user), 1, "{user} applied twice on {}", b.addr);
        }
    }
}

/// Copies the store still owes, for all instances, to `backend` or (`""`) to any.
fn owed_rows(pg: &Postgres, backend: &str) -> i64 {
    pg.client()
        .query_one(
            "SELECT count(*) FROM lb_copies WHERE $1 = '' OR backend = $1",
            &[&backend],
        )
        .and_then(|row| row.try_get(0))
        .expect("count the owed copies")
}

#[test]
fn acknowledged_writes_survive_kill_9_and_the_next_start_delivers_them_once() {
    let Some(pg) = Postgres::start("crash") else {
        return;
    };
    let url = pg.url("crash");
    let good = backend("good", &[]);
    let late_addr = format!("127.0.0.1:{}", free_port());
    let good_addr = good.addr.to_string();
    let mut args = lb_args(&[&good_addr, &late_addr], &["--journal", &url]);
    args.extend_from_slice(FAST_RETRIES);
    let mut lb = spawn(env!("CARGO_BIN_EXE_lb"), &args);
    let users: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    for user in &users {
        let r = post(lb.addr, &format!("/register?username={user}&password=p"));
        assert_eq!(r.status, 201, "{}", r.text());
    }
    lb.signal(libc::SIGKILL);
    assert_eq!(lb.exit_code_within(Duration::from_secs(5)), Some(-1));
    assert_eq!(
        owed_rows(&pg, &late_addr),
        100,
        "the store holds the copy owed to the backend that is down, for every write"
    );
    let late = backend_on("late", &late_addr, &[]);
    let lb = spawn(env!("CARGO_BIN_EXE_lb"), &args);
    assert!(
        lb.wait_log("100 writes still owed are resumed", Duration::from_secs(5)),
        "{}",
        lb.log_text()
    );
    every_write_once(&[&good, &late], &users);
    assert!(
        eventually(Duration::from_secs(10), || owed_rows(&pg, "") == 0),
        "delivered copies are deleted from the store"
    );
}

#[test]
fn a_schema_newer_than_lb_is_refused_at_start() {
    let Some(pg) = Postgres::start("schema") else {
        return;
    };
    let url = pg.url("schema");
    let b = backend("b", &[]);
    let b_addr = b.addr.to_string();
    // The first start makes the tables at lb's version.
    let mut lb = spawn(
        env!("CARGO_BIN_EXE_lb"),
        &lb_args(&[&b_addr], &["--journal", &url]),
    );
    lb.kill();
    pg.client()
        .execute("UPDATE lb_schema SET version = version + 1", &[])
        .expect("pretend a later lb migrated");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lb"));
    cmd.args(lb_args(&[&b_addr], &["--journal", &url]));
    let mut refused = spawn_exiting(&mut cmd);
    assert_eq!(
        refused.exit_code_within(Duration::from_secs(10)),
        Some(2),
        "{}",
        refused.log_text()
    );
    assert!(
        refused.wait_log("newer than this lb's", Duration::from_secs(5)),
        "{}",
        refused.log_text()
    );
}

/// Starts `cmd`, which is expected to exit without listening, keeping its stderr lines.
fn spawn_exiting(cmd: &mut std::process::Command) -> Proc {
    use std::io::BufRead;
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start lb");
    let stderr = child.stderr.take().expect("stderr is piped");
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(mut l) = sink.lock() {
                l.push(line);
            }
        }
    });
    let addr = "127.0.0.1:0".parse().expect("an address");
    Proc { child, addr, log }
}
