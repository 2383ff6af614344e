//! `--journal postgres://...` against a real PostgreSQL: acknowledged writes survive
//! `kill -9` and are resumed by the next start, a store that goes away or hangs refuses
//! new POSTs at once and loses nothing acknowledged, and a schema newer than lb's is
//! refused.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    crash_and_restart("crash", &[]);
}

#[test]
fn with_two_workers_acknowledged_writes_survive_kill_9_and_a_restart() {
    crash_and_restart("crash-workers", &["--workers", "2"]);
}

/// 100 writes acknowledged while one of two backends is down, lb (with `extra` flags)
/// killed with -9 and started again on the same store, the backend back: every write
/// reaches each backend once, and the store is left owing nothing.
fn crash_and_restart(name: &str, extra: &[&str]) {
    let Some(pg) = Postgres::start(name) else {
        return;
    };
    let url = pg.url(name);
    let good = backend("good", &[]);
    let late_addr = format!("127.0.0.1:{}", free_port());
    let good_addr = good.addr.to_string();
    let mut args = lb_args(&[&good_addr, &late_addr], &["--journal", &url]);
    args.extend_from_slice(FAST_RETRIES);
    args.extend_from_slice(extra);
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

/// What the clients of a POST storm saw: the writes acknowledged, and each refusal's
/// status, how long it took, and whether it said when to come back.
#[derive(Default)]
struct Storm {
    acknowledged: Vec<String>,
    refused: Vec<(u16, Duration, bool)>,
}

fn storm(addr: std::net::SocketAddr, stop: Arc<AtomicBool>, seen: Arc<Mutex<Storm>>, k: usize) {
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let user = format!("s{k}-{i}");
        i += 1;
        let started = Instant::now();
        let r = post(addr, &format!("/register?username={user}&password=p"));
        let took = started.elapsed();
        let Ok(mut s) = seen.lock() else { return };
        match r.status {
            201 => s.acknowledged.push(user),
            status => {
                let retry_after = r.header("retry-after").is_some();
                s.refused.push((status, took, retry_after));
            }
        }
    }
}

#[test]
fn a_store_outage_refuses_posts_at_once_and_loses_nothing_acknowledged() {
    let Some(mut pg) = Postgres::start("outage") else {
        return;
    };
    let url = pg.url("outage");
    let up = backend("up", &[]);
    let late_addr = format!("127.0.0.1:{}", free_port());
    let up_addr = up.addr.to_string();
    let mut args = lb_args(&[&up_addr, &late_addr], &["--journal", &url]);
    args.extend_from_slice(FAST_RETRIES);
    let lb = spawn(env!("CARGO_BIN_EXE_lb"), &args);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Storm::default()));
    let clients: Vec<_> = (0..4)
        .map(|k| {
            let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
            std::thread::spawn(move || storm(lb.addr, stop, seen, k))
        })
        .collect();
    let acknowledged = || seen.lock().map(|s| s.acknowledged.len()).unwrap_or(0);
    assert!(eventually(Duration::from_secs(10), || acknowledged() >= 200));
    pg.stop();
    assert!(
        eventually(Duration::from_secs(5), || {
            seen.lock().map(|s| s.refused.len() >= 50).unwrap_or(false)
        }),
        "POSTs are refused while the store is down"
    );
    assert_eq!(get(lb.addr, "/").status, 200, "GETs go on");
    let r = post(lb.addr, "/register?username=while-down&password=p");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert!(r.text().contains("PostgreSQL"), "{}", r.text());
    pg.resume();
    let before = acknowledged();
    assert!(
        eventually(Duration::from_secs(10), || acknowledged() >= before + 100),
        "POSTs are taken again once the store is back"
    );
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("a storm client");
    }
    let s = seen.lock().expect("the storm's results");
    for &(status, took, retry_after) in &s.refused {
        assert_eq!(status, 503);
        assert!(retry_after, "a 503 says when to come back");
        assert!(
            took < Duration::from_secs(1),
            "refused at once, not {took:?}"
        );
    }
    let text = lb.log_text();
    assert_eq!(
        text.matches("new POSTs get 503 until it can be reached again")
            .count(),
        1,
        "one line for the outage, not one per POST:\n{text}"
    );
    assert!(text.contains("reached again after"), "{text}");
    let late = backend_on("late", &late_addr, &[]);
    every_write_once(&[&up, &late], &s.acknowledged);
    assert!(
        eventually(Duration::from_secs(10), || owed_rows(&pg, "") == 0),
        "every copy finished during and after the outage is recorded"
    );
}

#[test]
fn a_store_that_hangs_refuses_posts_at_once_until_it_answers_again() {
    let Some(pg) = Postgres::start("hang") else {
        return;
    };
    let b = backend("b", &[]);
    let b_addr = b.addr.to_string();
    let lb = spawn(
        env!("CARGO_BIN_EXE_lb"),
        &lb_args(&[&b_addr], &["--journal", &pg.url("hang")]),
    );
    assert_eq!(
        post(lb.addr, "/register?username=h0&password=p").status,
        201
    );
    pg.freeze(true);
    // The POST whose commit hangs is held; once the commit is overdue, new ones are
    // refused without waiting.
    let held = std::thread::spawn(move || post(lb.addr, "/register?username=h1&password=p"));
    let mut tries = 0;
    let mut refused = Vec::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            tries += 1;
            let user = format!("r{tries}");
            let refusing = post_within(lb.addr, &user, Duration::from_millis(500)) == Some(503);
            if refusing {
                refused.push(user);
            }
            refusing
        }),
        "POSTs are refused at once while the store does not answer"
    );
    assert_eq!(get(lb.addr, "/").status, 200, "GETs go on");
    pg.freeze(false);
    let r = held.join().expect("the held POST");
    assert_eq!(
        r.status, 201,
        "its commit went through once the store answered"
    );
    assert!(
        eventually(Duration::from_secs(10), || {
            post(lb.addr, "/register?username=h2&password=p").status == 201
        }),
        "POSTs are taken again"
    );
    for user in ["h0", "h1", "h2"] {
        assert_eq!(registered(&b, user), 1, "{user}");
    }
    for user in &refused {
        assert_eq!(registered(&b, user), 0, "a refused POST went nowhere");
    }
}

/// The status of a POST registering `user`, if it comes within `within`; `None` while lb
/// holds it (the connection is then closed).
fn post_within(addr: std::net::SocketAddr, user: &str, within: Duration) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(within)).ok()?;
    let request = format!(
        "POST /register?username={user}&password=p HTTP/1.1\r\nHost: t\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
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
