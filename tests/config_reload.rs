//! SIGHUP with a config file: the whole file is read again and taken between requests;
//! listeners, pools and routes come and go; a bad file changes nothing and says why.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::tls::TempDir;
use common::*;

fn hup(lb: &Proc) {
    let _ = Command::new("kill")
        .args(["-HUP", &lb.child.id().to_string()])
        .status();
}

/// Sends SIGHUP and waits for the `n`th line that says how a reload ended.
fn reload(lb: &Proc, n: usize) {
    hup(lb);
    let ended = |l: &&str| l.contains("reloaded the config file") || l.contains("reload failed");
    assert!(
        eventually(Duration::from_secs(5), || lb
            .log_text()
            .lines()
            .filter(ended)
            .count()
            >= n),
        "reload {n} never ended:\n{}",
        lb.log_text()
    );
}

/// A config file; two workers, so that every reload is taken in by a worker that did not
/// read the file.
fn site(admin: &str, listeners: &str, pools: &str, routes: &str) -> String {
    format!("workers = 2\n\n[admin]\nlisten = \"{admin}\"\n\n{listeners}\n{pools}\n{routes}")
}

#[test]
fn listeners_pools_and_routes_come_and_go_and_a_bad_file_changes_nothing() {
    let (a, b, c) = (backend("a", &[]), backend("b", &[]), backend("c", &[]));
    let dir = TempDir::new();
    let first = site(
        "127.0.0.1:0",
        "[listeners.web]\naddress = \"127.0.0.1:0\"\n",
        &format!(
            "[pools.pa]\nbackends = [\"{}\"]\n[pools.pb]\nbackends = [\"{}\"]\n",
            a.addr, b.addr
        ),
        "[[routes]]\nname = \"to-b\"\nhost = \"b.test\"\npool = \"pb\"\n[[routes]]\nname = \"rest\"\npool = \"pa\"\n",
    );
    let path = dir.write("lb.toml", &first);
    let lb = lb_file(&path, &[]);
    let web = listener(&lb, "web");
    let by_host = |addr, host: &str| {
        let r = request(
            addr,
            format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
        );
        (r.status, served_by(&r))
    };
    assert_eq!(by_host(web, "b.test"), (200, "b".into()));
    assert_eq!(by_host(web, "x.test"), (200, "a".into()));
    // Pool pb goes, pool pc comes with a route of its own, and a second listener opens.
    let second = site(
        "127.0.0.1:0",
        "[listeners.web]\naddress = \"127.0.0.1:0\"\n[listeners.more]\naddress = \"127.0.0.1:0\"\n",
        &format!(
            "[pools.pa]\nbackends = [\"{}\"]\n[pools.pc]\nbackends = [\"{}\"]\n",
            a.addr, c.addr
        ),
        "[[routes]]\nname = \"to-c\"\nhost = \"c.test\"\npool = \"pc\"\n[[routes]]\nname = \"rest\"\npool = \"pa\"\n",
    );
    dir.write("lb.toml", &second);
    reload(&lb, 1);
    assert!(
        lb.log_text()
            .contains("reloaded the config file: 2 listener(s), 2 pool(s)"),
        "{}",
        lb.log_text()
    );
    assert_eq!(by_host(web, "c.test"), (200, "c".into()));
    assert_eq!(
        by_host(web, "b.test"),
        (200, "a".into()),
        "pb's route is gone"
    );
    let more = listener(&lb, "more");
    for _ in 0..8 {
        assert_eq!(by_host(more, "c.test"), (200, "c".into()));
    }
    // A file with a mistake: one line for it, the count, and the running site unchanged.
    dir.write("lb.toml", &second.replace("pool = \"pc\"", "pool = \"pz\""));
    reload(&lb, 2);
    let log = lb.log_text();
    assert!(
        log.contains("lb.toml:19:8: no pool is called `pz` (did you mean `pa`?)"),
        "{log}"
    );
    assert!(
        log.contains("reload failed: the running config stays as it was"),
        "{log}"
    );
    assert_eq!(by_host(web, "c.test"), (200, "c".into()));
    let metrics = get(admin_addr(&lb), "/metrics").text();
    assert!(
        metrics.contains("lb_reloads_total{result=\"failed\"} 1"),
        "{metrics}"
    );
    // The second listener goes: it takes no new client.
    dir.write("lb.toml", &first);
    reload(&lb, 3);
    assert!(
        eventually(Duration::from_secs(5), || std::net::TcpStream::connect(
            more
        )
        .is_err()),
        "listener more still accepts"
    );
    assert_eq!(by_host(web, "b.test"), (200, "b".into()));
    // What only a restart changes stays, and the warning names the file's keys.
    dir.write(
        "lb.toml",
        &first.replace("workers = 2\n", "workers = 3\n[log]\nlevel = \"debug\"\n"),
    );
    reload(&lb, 4);
    let log = lb.log_text();
    assert!(
        log.contains("reload: workers, [log] level change at a restart only"),
        "{log}"
    );
    assert_eq!(by_host(web, "b.test"), (200, "b".into()));
}

#[test]
fn reloads_under_load_that_add_and_remove_pools_lose_no_request() {
    let (a, b) = (backend("a", &[]), backend("b", &[]));
    let dir = TempDir::new();
    let with = |extra_pool: bool| {
        let pools = if extra_pool {
            format!(
                "[pools.main]\nbackends = [\"{}\"]\n[pools.extra]\nbackends = [\"{}\"]\n",
                a.addr, b.addr
            )
        } else {
            format!("[pools.main]\nbackends = [\"{}\"]\n", a.addr)
        };
        let routes = if extra_pool {
            "[[routes]]\npath_prefix = \"/extra\"\npool = \"extra\"\nrewrite = { strip_prefix = \"/extra\" }\n[[routes]]\npool = \"main\"\n"
        } else {
            "[[routes]]\npool = \"main\"\n"
        };
        site(
            "127.0.0.1:0",
            "[listeners.web]\naddress = \"127.0.0.1:0\"\n",
            &pools,
            routes,
        )
    };
    let path = dir.write("lb.toml", &with(false));
    let lb = lb_file(&path, &["--verbose"]);
    let web = listener(&lb, "web");
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, done, failed) = (Arc::clone(&stop), Arc::clone(&done), Arc::clone(&failed));
            std::thread::spawn(move || {
                let mut c = Client::new(web);
                while !stop.load(Ordering::Relaxed) {
                    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
                    match c.read_response(false) {
                        Ok(Some(r)) if r.status == 200 => done.fetch_add(1, Ordering::Relaxed),
                        _ => {
                            c = Client::new(web);
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    for i in 1..=20 {
        dir.write("lb.toml", &with(i % 2 == 1));
        reload(&lb, i);
        if i % 2 == 1 {
            assert_eq!(served_by(&get(web, "/extra/")), "b");
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("a client thread");
    }
    assert!(done.load(Ordering::Relaxed) > 0);
    assert_eq!(failed.load(Ordering::Relaxed), 0, "{}", lb.log_text());
    assert!(
        !lb.log_text().contains("reload failed"),
        "{}",
        lb.log_text()
    );
}

#[test]
fn a_backend_whose_name_does_not_resolve_yet_waits_and_the_rest_serve() {
    let (early, late) = (backend("early", &[]), backend("late", &[]));
    let dir = TempDir::new();
    let hosts = dir.write("hosts", "# late-server comes later\n");
    let text = format!(
        "hosts_file = \"{hosts}\"\nresolve_interval = \"100ms\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n\
         [listeners.web]\naddress = \"127.0.0.1:0\"\n\n\
         [pools.app]\nbackends = [\"{}\", \"late-server:{}\"]\nhealth = {{ interval = \"100ms\" }}\n\n\
         [[routes]]\npool = \"app\"\n",
        early.addr,
        late.addr.port()
    );
    let path = dir.write("lb.toml", &text);
    let lb = lb_file(&path, &[]);
    // Said where the file names it, as lb check would.
    let line = text
        .lines()
        .position(|l| l.starts_with("backends = "))
        .expect("the backends line")
        + 1;
    let col = format!("\"{}\", ", early.addr).len() + "backends = [".len() + 1;
    let said = format!(
        "{path}:{line}:{col} (pools.app.backends[1]): cannot resolve backend 'late-server:{}'",
        late.addr.port()
    );
    assert!(
        lb.log_text().contains(&said)
            && lb.log_text().contains("stays down until its name resolves"),
        "{said}\n{}",
        lb.log_text()
    );
    let web = listener(&lb, "web");
    for _ in 0..4 {
        assert_eq!(served_by(&get(web, "/")), "early");
    }
    // Nowhere to check yet: while early's checks pass, none is made of it.
    let admin = admin_addr(&lb);
    let checks = |backend: &str, result: &str| {
        metric(
            admin,
            &format!(
                "lb_health_checks_total{{backend=\"{backend}\",pool=\"app\",result=\"{result}\"}}"
            ),
        )
    };
    let early_label = early.addr.to_string();
    assert!(eventually(Duration::from_secs(10), || checks(
        &early_label,
        "pass"
    ) >= 5.0));
    let late_label = format!("late-server:{}", late.addr.port());
    assert_eq!(checks(&late_label, "fail"), 0.0, "{}", lb.log_text());
    dir.write("hosts", "127.0.0.1 late-server\n");
    assert!(
        eventually(Duration::from_secs(10), || served_by(&get(web, "/"))
            == "late"),
        "{}",
        lb.log_text()
    );
    // A reload adds another name that does not resolve yet: the same rule as at start, the
    // reload is taken and the rest serve.
    let later = backend("later", &[]);
    let more = text.replace(
        "\"]\nhealth",
        &format!("\", \"later-server:{}\"]\nhealth", later.addr.port()),
    );
    assert_ne!(more, text);
    dir.write("lb.toml", &more);
    reload(&lb, 1);
    let log = lb.log_text();
    assert!(log.contains("reloaded the config file"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("later-server") && l.contains("stays down until its name resolves")),
        "{log}"
    );
    for _ in 0..6 {
        assert_ne!(served_by(&get(web, "/")), "later");
    }
    dir.write("hosts", "127.0.0.1 late-server\n127.0.0.1 later-server\n");
    assert!(
        eventually(Duration::from_secs(10), || served_by(&get(web, "/"))
            == "later"),
        "{}",
        lb.log_text()
    );
}

/// A request to lb's admin listener.
fn admin(lb: &Proc, method: &str, path: &str) -> Response {
    let addr = admin_addr(lb);
    request(
        addr,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
    )
}

#[test]
fn the_admin_api_changes_one_pool_until_the_next_reload() {
    let (a, b, c) = (backend("a", &[]), backend("b", &[]), backend("c", &[]));
    let dir = TempDir::new();
    let text = site(
        "127.0.0.1:0",
        "[listeners.web]\naddress = \"127.0.0.1:0\"\n",
        &format!(
            "[pools.pa]\nbackends = [\"{}\"]\n[pools.pb]\nbackends = [\"{}\"]\n",
            a.addr, b.addr
        ),
        "[[routes]]\nhost = \"b.test\"\npool = \"pb\"\n[[routes]]\npool = \"pa\"\n",
    );
    let path = dir.write("lb.toml", &text);
    let lb = lb_file(&path, &[]);
    let web = listener(&lb, "web");
    let to_b = |n: usize| -> std::collections::BTreeSet<String> {
        (0..n)
            .map(|_| served_by(&request(web, b"GET / HTTP/1.1\r\nHost: b.test\r\n\r\n")))
            .collect()
    };
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
    assert_eq!(to_b(4), set(&["b"]));
    let r = admin(&lb, "PUT", &format!("/backends/{}", c.addr));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("/pools/NAME/backends"), "{}", r.text());
    assert_eq!(admin(&lb, "GET", "/pools/nope/backends").status, 404);
    let r = admin(&lb, "PUT", &format!("/pools/pb/backends/{}", c.addr));
    assert_eq!(r.status, 201, "{}", r.text());
    let listed = admin(&lb, "GET", "/pools/pb/backends").text();
    assert!(
        listed.contains(&c.addr.to_string())
            && listed.contains(&b.addr.to_string())
            && !listed.contains(&a.addr.to_string()),
        "{listed}"
    );
    assert!(
        eventually(Duration::from_secs(10), || to_b(8) == set(&["b", "c"])),
        "{}",
        lb.log_text()
    );
    let r = admin(&lb, "POST", &format!("/pools/pb/backends/{}/drain", b.addr));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(eventually(Duration::from_secs(10), || to_b(8) == set(&["c"])));
    // /stats' button for b puts it back in its own pool, and leads back to the page.
    let page = admin(&lb, "GET", "/stats").text();
    let ready = format!("action=\"pools/pb/backends/{}/ready\"", b.addr);
    assert!(page.contains(&ready), "{page}");
    let addr = admin_addr(&lb);
    let r = request(
        addr,
        format!(
            "POST /pools/pb/backends/{}/drain HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n",
            b.addr
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("../../../../stats"));
    // Pool pa is untouched, and the file wins again at the next reload.
    assert_eq!(served_by(&get(web, "/")), "a");
    reload(&lb, 1);
    assert!(
        eventually(Duration::from_secs(10), || to_b(8) == set(&["b"])),
        "{}",
        lb.log_text()
    );
}
