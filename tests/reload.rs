//! SIGHUP reloads the backends file; names are looked up again, every --resolve-interval
//! and at each reload. Removed backends finish what they have in flight, including the POST
//! copies owed to them; a bad file keeps the running set.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;

struct File(PathBuf);

impl File {
    /// A path of its own, even for tests that run side by side with the same `name`.
    fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("lb-test-{name}-{}-{n}", std::process::id()));
        File(path)
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).expect("write test file");
    }

    fn flag(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn lines(backends: &[&Proc]) -> String {
    backends.iter().map(|b| format!("{}\n", b.addr)).collect()
}

/// The backends lb lists now (removed ones still finishing are left out), sorted.
fn listed(lb: &Proc) -> Vec<String> {
    let body = get(admin_addr(lb), "/backends").text();
    let mut labels: Vec<String> = body
        .split("{\"backend\":\"")
        .skip(1)
        .filter(|entry| !entry.contains("\"state\":\"removed\""))
        .filter_map(|entry| entry.split('"').next().map(String::from))
        .collect();
    labels.sort();
    labels
}

fn sorted(backends: &[&Proc]) -> Vec<String> {
    let mut v: Vec<String> = backends.iter().map(|b| b.addr.to_string()).collect();
    v.sort();
    v
}

fn count(lb: &Proc, needle: &str) -> usize {
    lb.log_text().matches(needle).count()
}

/// Sends SIGHUP and waits for the reload's outcome line.
fn reload(lb: &Proc) {
    let (ok, failed) = (count(lb, "reloaded "), count(lb, "reload failed"));
    lb.signal(libc::SIGHUP);
    assert!(
        eventually(Duration::from_secs(5), || count(lb, "reloaded ") > ok
            || count(lb, "reload failed") > failed),
        "no reload logged:\n{}",
        lb.log_text()
    );
}

#[test]
fn twenty_reloads_under_load_give_no_client_error() {
    let b: Vec<Proc> = (0..4).map(|i| backend(&format!("b{i}"), &[])).collect();
    let sets: [&[usize]; 4] = [&[0, 1], &[1, 2, 3], &[0, 3], &[2]];
    let file = File::new("reload-load");
    file.write(&lines(&[&b[0], &b[1]]));
    let lb = lb_addrs(&[], &["--admin", "127.0.0.1:0", "-f", &file.flag()]);
    let load = load::start(lb.addr, 4, 2, 1);
    load.progress(100);
    for i in 0..20 {
        let set: Vec<&Proc> = sets[i % sets.len()].iter().map(|&n| &b[n]).collect();
        file.write(&lines(&set));
        reload(&lb);
        assert_eq!(listed(&lb), sorted(&set));
        load.progress(50);
    }
    let seen = load.stop();
    assert!(
        seen.errors.is_empty(),
        "{:?}",
        &seen.errors[..seen.errors.len().min(10)]
    );
    assert!(seen.ok > 1000, "{seen:?}");
    for i in 0..4 {
        assert!(
            seen.by_backend.contains_key(&format!("b{i}")),
            "{:?}",
            seen.by_backend
        );
    }
    assert_eq!(count(&lb, "reloaded "), 20);
    let last = sets[19 % sets.len()];
    assert_eq!(last, [2]);
    assert_eq!(
        tally(lb.addr, 30).get("b2"),
        Some(&30),
        "removed backends get nothing new"
    );
}

#[test]
fn a_reload_storm_leaves_lb_up_with_the_files_set() {
    let b: Vec<Proc> = (0..3).map(|i| backend(&format!("b{i}"), &[])).collect();
    let file = File::new("storm");
    file.write(&lines(&[&b[0]]));
    let lb = lb_addrs(&[], &["--admin", "127.0.0.1:0", "-f", &file.flag()]);
    for i in 0..100 {
        if i % 10 == 0 {
            file.write(&lines(&[&b[i / 10 % 3], &b[(i / 10 + 1) % 3]]));
        }
        lb.signal(libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(8));
    }
    file.write(&lines(&[&b[2], &b[0]]));
    lb.signal(libc::SIGHUP);
    let want = sorted(&[&b[0], &b[2]]);
    assert!(
        eventually(Duration::from_secs(5), || listed(&lb) == want),
        "{:?}\n{}",
        listed(&lb),
        lb.log_text()
    );
    assert_eq!(get(lb.addr, "/").status, 200);
}

#[test]
fn a_bad_file_keeps_the_running_set_logs_one_line_and_is_counted() {
    let (a, b) = (backend("a", &[]), backend("b", &[]));
    let file = File::new("bad");
    file.write(&lines(&[&a, &b]));
    let lb = lb_addrs(&[], &["--admin", "127.0.0.1:0", "-f", &file.flag()]);
    let bad = [
        "",
        "# only a comment\n",
        &format!("{}\n127.0.0.1:notaport\n", a.addr),
        &format!("{}\n{}\n", a.addr, a.addr),
        &format!("{},weight=0\n", a.addr),
    ];
    for (i, text) in bad.iter().enumerate() {
        file.write(text);
        reload(&lb);
        assert_eq!(
            count(&lb, "reload failed"),
            i + 1,
            "{text:?}:\n{}",
            lb.log_text()
        );
        assert_eq!(listed(&lb), sorted(&[&a, &b]));
    }
    std::fs::remove_file(&file.0).unwrap();
    reload(&lb);
    let log = lb.log_text();
    let last = log
        .lines()
        .rev()
        .find(|l| l.contains("reload failed"))
        .unwrap();
    assert!(
        last.contains("the 2 running backends stay as they are: cannot read backends file"),
        "{last}"
    );
    let metrics = get(admin_addr(&lb), "/metrics").text();
    assert!(
        metrics.contains("lb_reloads_total{result=\"failed\"} 6"),
        "{metrics}"
    );
    assert!(metrics.contains("lb_reloads_total{result=\"ok\"} 0"));
    assert_eq!(tally(lb.addr, 4).len(), 2, "both still serve");
}

#[test]
fn a_removed_backends_owed_post_copies_are_still_delivered_and_logged() {
    let up = backend("up", &[]);
    let late_addr = format!("127.0.0.1:{}", free_port());
    let file = File::new("owed");
    file.write(&format!("{}\n{late_addr}\n", up.addr));
    let mut extra = vec!["--admin", "127.0.0.1:0", "-f"];
    let flag = file.flag();
    extra.push(&flag);
    extra.extend_from_slice(FAST_RETRIES);
    let lb = lb_addrs(&[], &extra);
    assert_eq!(
        post(lb.addr, "/register?username=ann&password=p").status,
        201
    );
    file.write(&lines(&[&up]));
    reload(&lb);
    let log = lb.log_text();
    let removed = log
        .lines()
        .find(|l| l.contains(&format!("-{late_addr} (")))
        .unwrap_or("");
    assert!(removed.contains("1 POST copies owed finish first"), "{log}");
    assert!(
        get(admin_addr(&lb), "/backends")
            .text()
            .contains("\"state\":\"removed\"")
    );
    let late = backend_on("late", &late_addr, &[]);
    assert!(lb.wait_log(
        &format!("delivered to removed backend {late_addr}"),
        Duration::from_secs(5)
    ));
    assert_eq!(get(late.addr, "/users/ann").status, 200);
    assert!(lb.wait_log(
        &format!("backend {late_addr} has left"),
        Duration::from_secs(3)
    ));
    assert_eq!(listed(&lb), sorted(&[&up]));
}

#[test]
fn a_change_made_through_the_api_lasts_until_the_next_reload() {
    let (a, b) = (backend("a", &[]), backend("b", &[]));
    let file = File::new("api-then-reload");
    file.write(&lines(&[&a, &b]));
    let lb = lb_addrs(&[], &["--admin", "127.0.0.1:0", "-f", &file.flag()]);
    let admin = admin_addr(&lb);
    let drain = format!(
        "POST /backends/{}/drain HTTP/1.1\r\nHost: {admin}\r\nContent-Length: 0\r\n\r\n",
        a.addr
    );
    assert_eq!(request(admin, drain.as_bytes()).status, 200);
    assert_eq!(tally(lb.addr, 4).get("b"), Some(&4));
    reload(&lb);
    assert!(
        lb.log_text()
            .contains(&format!("{} drain -> ready", a.addr))
    );
    assert_eq!(tally(lb.addr, 4).get("a"), Some(&2));
}

/// Two demo backends on one port, at 127.0.0.1 and 127.0.0.2, so that only the address
/// that a name resolves to tells them apart.
fn twins(extra: &[&str]) -> (Proc, Proc) {
    for _ in 0..20 {
        let one = backend("one", extra);
        let two_addr = format!("127.0.0.2:{}", one.addr.port());
        if std::net::TcpListener::bind(&two_addr).is_ok() {
            return (one, backend_on("two", &two_addr, extra));
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

/// lb in front of `lb-test-backend:PORT`, a name that the returned hosts file maps to
/// 127.0.0.1 (backend "one"); 127.0.0.2 on the same port is backend "two". Both backends
/// get `backend_flags`.
fn by_name(resolve_interval: &str, backend_flags: &[&str]) -> (Proc, Proc, File, Proc) {
    let (one, two) = twins(backend_flags);
    let hosts = File::new(&format!("hosts-{resolve_interval}"));
    hosts.write("127.0.0.1 lb-test-backend\n");
    let name = format!("lb-test-backend:{}", one.addr.port());
    let flag = hosts.flag();
    let lb = lb_addrs(
        &[&name],
        &[
            "--hosts-file",
            &flag,
            "--resolve-interval",
            resolve_interval,
            "--admin",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(served_by(&get(lb.addr, "/")), "one");
    (one, two, hosts, lb)
}

#[test]
fn a_name_that_moves_is_followed_and_one_that_stops_resolving_keeps_its_address() {
    let (_one, _two, hosts, lb) = by_name("100ms", &[]);
    hosts.write("127.0.0.2 lb-test-backend\n");
    assert!(
        eventually(Duration::from_secs(5), || served_by(&get(lb.addr, "/"))
            == "two"),
        "{}",
        lb.log_text()
    );
    assert!(lb.log_text().contains("resolves elsewhere now"));
    hosts.write("# the name is gone\n");
    assert!(lb.wait_log("no longer resolves", Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(count(&lb, "no longer resolves"), 1, "{}", lb.log_text());
    assert!(
        lb.log_text()
            .contains("keeping its last address 127.0.0.2:")
    );
    assert_eq!(served_by(&get(lb.addr, "/")), "two");
    hosts.write("127.0.0.2 lb-test-backend\n");
    assert!(lb.wait_log("resolves again", Duration::from_secs(5)));
}

/// A connection that carries a request while its backend's name moves was not among the
/// idle ones closed then: it must not go back to the pool, where it would serve every
/// later request from the old address.
#[test]
fn a_connection_busy_when_its_name_moves_is_closed_not_pooled() {
    let (_one, _two, hosts, lb) = by_name("100ms", &["--delay", "3s"]);
    let admin = admin_addr(&lb);
    let in_flight = || {
        get(admin, "/metrics")
            .text()
            .lines()
            .filter(|l| l.starts_with("lb_backend_active{"))
            .any(|l| l.ends_with(" 1"))
    };
    let addr = lb.addr;
    let slow = std::thread::spawn(move || served_by(&get(addr, "/")));
    assert!(eventually(Duration::from_secs(5), in_flight));
    hosts.write("127.0.0.2 lb-test-backend\n");
    assert!(lb.wait_log("resolves elsewhere now", Duration::from_secs(5)));
    assert_eq!(slow.join().expect("the slow request"), "one");
    assert_eq!(served_by(&get(lb.addr, "/")), "two", "{}", lb.log_text());
}

#[test]
fn sighup_looks_names_up_again_even_without_a_backends_file() {
    let (_one, _two, hosts, lb) = by_name("0", &[]);
    hosts.write("127.0.0.2 lb-test-backend\n");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        served_by(&get(lb.addr, "/")),
        "one",
        "--resolve-interval 0: no lookups"
    );
    reload(&lb);
    assert_eq!(served_by(&get(lb.addr, "/")), "two");
    assert!(
        lb.log_text()
            .contains("no --backends-file; looking up the backends' names again")
    );
}
