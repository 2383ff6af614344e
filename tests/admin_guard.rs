//! The admin listener under attack: connections held idle or trickled, writes from a page
//! that rebinds a name to the admin address, backends that would loop back into lb, and
//! removed backends that cannot be reached.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

const ADMIN: &[&str] = &["--admin", "127.0.0.1:0"];

/// Connections a flood holds open: more than the admin listener's 1024 slots.
const FLOOD: usize = 1100;

/// Lets this process open `n` more descriptors: the soft limit up to the hard one.
fn allow_descriptors(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on this process with a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur >= n + 100,
        "this test needs {n} descriptors; the hard limit is {}",
        lim.rlim_cur
    );
}

#[test]
fn idle_connections_do_not_lock_out_healthz() {
    allow_descriptors(FLOOD as u64);
    let b = backend("a", &[]);
    let lb = lb(&[&b], ADMIN);
    let admin = admin_addr(&lb);
    let idle: Vec<TcpStream> = (0..FLOOD).map(|_| connect(admin)).collect();
    // Before any of them has been open long enough to be cut off by its deadline.
    let r = get(admin, "/healthz");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "ok\n");
    let m = get(admin, "/metrics");
    assert_eq!(m.status, 200);
    let api = request(
        admin,
        format!("GET /backends HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(api.status, 200, "{}", api.text());
    drop(idle);
}

#[test]
fn a_trickled_admin_head_is_cut_off_at_its_deadline() {
    let b = backend("a", &[]);
    let lb = lb(&[&b], ADMIN);
    let admin = admin_addr(&lb);
    let mut c = Client::new(admin);
    c.send(b"GET /healthz HTTP/1.1\r\nX-Slow: ");
    let start = Instant::now();
    let mut closed = false;
    // A byte every 300 ms: each would reset a deadline that restarts on progress.
    while !closed && start.elapsed() < Duration::from_secs(8) {
        closed = c.stream.write_all(b"x").is_err() || c.closed_within(Duration::from_millis(300));
    }
    assert!(
        closed,
        "a head trickled for {:?} is still being read",
        start.elapsed()
    );
}

/// A request to the admin listener `admin` with `host` as its Host and `extra` lines.
fn admin_request(
    admin: std::net::SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    extra: &str,
) -> Response {
    request(
        admin,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: 0\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
    )
}

#[test]
fn a_rebinding_page_can_change_nothing() {
    let (a, spare) = (backend("a", &[]), backend("spare", &[]));
    let lb = lb(
        &[&a],
        &["--admin", "127.0.0.1:0", "--admin-host", "lb.test"],
    );
    let admin = admin_addr(&lb);
    let port = admin.port();
    // What a page on evil.example sends once its name resolves to the admin address.
    let evil = format!("evil.example:{port}");
    let origin = format!("Origin: http://{evil}\r\n");
    let drain = format!("/backends/{}/drain", a.addr);
    let add = format!("/backends/{}", spare.addr);
    for (method, path) in [("POST", &drain), ("PUT", &add), ("DELETE", &add)] {
        let r = admin_request(admin, method, path, &evil, &origin);
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
        assert!(
            r.text().contains("does not name this admin listener"),
            "{}",
            r.text()
        );
        let r = admin_request(admin, method, path, &evil, "");
        assert_eq!(
            r.status,
            403,
            "{method} {path} without Origin: {}",
            r.text()
        );
    }
    assert!(lb.wait_log(
        &format!("Host {evil} does not name this admin listener"),
        Duration::from_secs(1)
    ));
    let list = admin_request(admin, "GET", "/backends", &evil, "").text();
    assert!(
        list.starts_with("{\"version\":0,"),
        "nothing changed: {list}"
    );
    assert!(list.contains("\"state\":\"ready\""), "{list}");
    assert!(!list.contains(&spare.addr.to_string()), "{list}");
    // The listener's own names may write: its address, localhost, and --admin-host's.
    let named = format!("lb.test:{port}");
    let r = admin_request(
        admin,
        "POST",
        &drain,
        &named,
        &format!("Origin: http://{named}\r\n"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let local = format!("localhost:{port}");
    assert_eq!(admin_request(admin, "POST", &drain, &local, "").status, 200);
    let own = admin.to_string();
    assert_eq!(admin_request(admin, "PUT", &add, &own, "").status, 201);
    // A page of another site, even when the Host is ours.
    let r = admin_request(admin, "DELETE", &add, &own, &origin);
    assert_eq!(r.status, 403, "{}", r.text());
}

#[test]
fn the_api_refuses_what_the_command_line_refuses() {
    let (a, b) = (backend("a", &[]), backend("b", &[]));
    let lb = lb(&[&a], ADMIN);
    let admin = admin_addr(&lb);
    let host = admin.to_string();
    let put = |target: &str| admin_request(admin, "PUT", &format!("/backends/{target}"), &host, "");
    for (target, flag) in [
        (lb.addr.to_string(), "--listen"),
        (admin.to_string(), "--admin"),
        (format!("localhost:{}", lb.addr.port()), "--listen"),
    ] {
        let r = put(&target);
        assert_eq!(r.status, 400, "PUT {target}: {}", r.text());
        assert!(
            r.text().contains(&format!(
                "backend {target} (PUT /backends/{target}) is lb's own {flag} address: \
                 requests would loop"
            )),
            "{}",
            r.text()
        );
    }
    let r = put("127.0.0.1:0");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("has port 0"), "{}", r.text());
    // The same address under another name: the command line says "given twice".
    let r = put(&format!("localhost:{}", a.addr.port()));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("given twice"), "{}", r.text());
    assert!(lb.wait_log("refused PUT /backends/", Duration::from_secs(1)));
    let list = admin_request(admin, "GET", "/backends", &host, "").text();
    assert!(
        list.starts_with("{\"version\":0,"),
        "nothing changed: {list}"
    );
    // The command line's words for the same backend.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lb"))
        .args(["-l", &lb.addr.to_string(), "--admin", "off", "-b"])
        .arg(lb.addr.to_string())
        .output()
        .expect("run lb");
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    let target = lb.addr.to_string();
    assert!(
        said.contains(&format!(
            "backend {target} (-b {target}) is lb's own --listen address: requests would loop"
        )),
        "{said}"
    );
    assert_eq!(
        put(&b.addr.to_string()).status,
        201,
        "a good one still joins"
    );
}

#[test]
fn a_reload_naming_lb_itself_is_refused_and_keeps_the_running_list() {
    let a = backend("a", &[]);
    let file = std::env::temp_dir().join(format!("lb-test-guard-reload-{}", std::process::id()));
    std::fs::write(&file, format!("{}\n", a.addr)).unwrap();
    let path = file.to_string_lossy().into_owned();
    let lb = lb_addrs(&[], &["-f", &path, "--admin", "127.0.0.1:0"]);
    let admin = admin_addr(&lb);
    for (own, flag) in [(lb.addr, "--listen"), (admin, "--admin")] {
        std::fs::write(&file, format!("{}\n{own}\n", a.addr)).unwrap();
        let failed = lb.log_text().matches("reload failed").count();
        lb.signal(libc::SIGHUP);
        assert!(
            eventually(Duration::from_secs(5), || {
                lb.log_text().matches("reload failed").count() > failed
            }),
            "no refusal logged:\n{}",
            lb.log_text()
        );
        assert!(
            lb.log_text()
                .contains(&format!("is lb's own {flag} address: requests would loop")),
            "{}",
            lb.log_text()
        );
        let list = get(admin, "/backends").text();
        assert!(list.starts_with("{\"version\":0,"), "{list}");
        assert!(!list.contains(&format!("\"{own}\"")), "{list}");
    }
    assert_metric(&lb, "lb_reloads_total{result=\"failed\"} 2");
    std::fs::remove_file(&file).ok();
}

#[test]
fn an_added_backend_is_of_unknown_health_until_a_check_ends() {
    let (a, later) = (backend("a", &[]), backend("later", &[]));
    // Takes connections into its backlog and never answers: a check of it never ends.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = silent.local_addr().unwrap().to_string();
    let lb = lb(
        &[&a],
        &["--admin", "127.0.0.1:0", "--health-timeout", "10m"],
    );
    let admin = admin_addr(&lb);
    let host = admin.to_string();
    let r = admin_request(admin, "PUT", &format!("/backends/{silent}"), &host, "");
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.text().contains("\"health\":\"unknown\""), "{}", r.text());
    let one = admin_request(admin, "GET", &format!("/backends/{silent}"), &host, "");
    assert!(
        one.text().contains("\"health\":\"unknown\""),
        "{}",
        one.text()
    );
    assert_metric(
        &lb,
        &format!("lb_backend_health{{backend=\"{silent}\",health=\"unknown\"}} 1"),
    );
    let page = get(admin, "/stats").text();
    let row = page
        .lines()
        .find(|l| l.contains(&format!("data-backend=\"{silent}\"")))
        .unwrap_or_else(|| panic!("no row for {silent}:\n{page}"));
    assert!(
        row.contains(">UNKNOWN<") && row.contains("backend unknown"),
        "{row}"
    );
    let r = admin_request(
        admin,
        "PUT",
        &format!("/backends/{}", later.addr),
        &host,
        "",
    );
    assert!(r.text().contains("\"health\":\"unknown\""), "{}", r.text());
    assert!(
        eventually(Duration::from_secs(5), || {
            admin_request(
                admin,
                "GET",
                &format!("/backends/{}", later.addr),
                &host,
                "",
            )
            .text()
            .contains("\"health\":\"up\"")
        }),
        "its first check passed"
    );
}

#[test]
fn without_health_checks_health_is_unchecked() {
    let (a, b) = (backend("a", &[]), backend("b", &[]));
    let lb = lb(&[&a], &["--admin", "127.0.0.1:0", "--health-interval", "0"]);
    let admin = admin_addr(&lb);
    let host = admin.to_string();
    let r = admin_request(admin, "PUT", &format!("/backends/{}", b.addr), &host, "");
    assert!(
        r.text().contains("\"health\":\"unchecked\""),
        "{}",
        r.text()
    );
    let list = admin_request(admin, "GET", "/backends", &host, "").text();
    assert_eq!(
        list.matches("\"health\":\"unchecked\"").count(),
        2,
        "{list}"
    );
    assert_metric(
        &lb,
        &format!(
            "lb_backend_health{{backend=\"{}\",health=\"unchecked\"}} 1",
            a.addr
        ),
    );
}

/// The one entry of `GET /backends` for `label`, if it is listed.
fn entry(admin: std::net::SocketAddr, label: &str) -> Option<String> {
    let list = admin_request(admin, "GET", "/backends", &admin.to_string(), "").text();
    list.split("{\"backend\":\"")
        .find(|e| e.starts_with(&format!("{label}\"")))
        .map(String::from)
}

/// lb in front of `up` and `dead` (a port nobody listens on) with `extra` flags; one POST
/// delivered to `up` leaves a copy parked for `dead`, which is then removed.
fn removed_with_a_parked_copy(
    up: &Proc,
    dead: &str,
    extra: &[&str],
) -> (Proc, std::net::SocketAddr) {
    let up_addr = up.addr.to_string();
    let mut flags = vec!["--admin", "127.0.0.1:0"];
    flags.extend_from_slice(FAST_RETRIES);
    flags.extend_from_slice(extra);
    let lb = lb_addrs(&[&up_addr, dead], &flags);
    let admin = admin_addr(&lb);
    let r = post(lb.addr, "/register?username=ann&password=p");
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        eventually(Duration::from_secs(5), || metric(
            admin,
            &format!("lb_fanout_backend_copies_owed{{backend=\"{dead}\",place=\"parked\"}}")
        ) == 1.0),
        "the copy for {dead} is parked:\n{}",
        lb.log_text()
    );
    let host = admin.to_string();
    let r = admin_request(admin, "DELETE", &format!("/backends/{dead}"), &host, "");
    assert_eq!(r.status, 200, "{}", r.text());
    let gone = entry(admin, dead).expect("a removed backend that owes a copy stays listed");
    assert!(
        gone.contains("\"state\":\"removed\"") && gone.contains("\"owed_copies\":1"),
        "{gone}"
    );
    (lb, admin)
}

#[test]
fn an_operator_gives_up_what_an_unreachable_removed_backend_owes() {
    let dir = std::env::temp_dir().join(format!("lb-test-guard-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let journal = dir.to_string_lossy().into_owned();
    let up = backend("up", &[]);
    let dead = format!("127.0.0.1:{}", free_port());
    let (mut lb, admin) = removed_with_a_parked_copy(&up, &dead, &["--journal", &journal]);
    let host = admin.to_string();
    let give_up = format!("/backends/{dead}?owed=give-up");
    let bad = admin_request(
        admin,
        "DELETE",
        &format!("/backends/{dead}?owed=keep"),
        &host,
        "",
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    let r = admin_request(admin, "DELETE", &give_up, &host, "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        eventually(Duration::from_secs(5), || entry(admin, &dead).is_none()),
        "the removed backend has left: {:?}",
        entry(admin, &dead)
    );
    assert_eq!(metric(admin, "lb_fanout_removed_given_up_total"), 1.0);
    assert!(lb.wait_log(
        &format!("removed backend {dead}: 1 POST copies it owed are given up"),
        Duration::from_secs(1)
    ));
    assert!(
        lb.log_text().contains(&format!("to {dead} given up")),
        "{}",
        lb.log_text()
    );
    lb.signal(libc::SIGTERM);
    assert_eq!(
        lb.exit_code_within(Duration::from_secs(5)),
        Some(0),
        "{}",
        lb.log_text()
    );
    // The journal says the copy was given up: a restart with the backend back does not
    // send it again.
    let up_addr = up.addr.to_string();
    let _back = backend_on("back", &dead, &[]);
    let again = lb_addrs(
        &[&up_addr, &dead],
        &["--journal", &journal, "--admin", "127.0.0.1:0"],
    );
    let again_admin = admin_addr(&again);
    let resumed = "lb_journal_resumed_writes_total";
    assert!(
        eventually(Duration::from_secs(5), || get(again_admin, "/metrics")
            .text()
            .contains(resumed)),
        "the journal's counters are published once a second"
    );
    assert_eq!(metric(again_admin, resumed), 0.0, "{}", again.log_text());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn leave_timeout_gives_up_what_an_unreachable_removed_backend_owes() {
    let up = backend("up", &[]);
    let dead = format!("127.0.0.1:{}", free_port());
    // Two workers: the copy may be owed by either; the roster tells both to give up.
    let flags = ["--leave-timeout", "1s", "--workers", "2"];
    let (lb, admin) = removed_with_a_parked_copy(&up, &dead, &flags);
    assert!(
        eventually(Duration::from_secs(5), || entry(admin, &dead).is_none()),
        "the removed backend has left: {:?}",
        entry(admin, &dead)
    );
    assert_eq!(metric(admin, "lb_fanout_removed_given_up_total"), 1.0);
    assert!(
        lb.wait_log("(--leave-timeout)", Duration::from_secs(1)),
        "{}",
        lb.log_text()
    );
    assert!(lb.log_text().contains(&format!("backend {dead} has left")));
}
