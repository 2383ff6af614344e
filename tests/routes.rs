//! The config files in examples/, and the one the Debian package installs as
//! /etc/lb/lb.toml (dist/lb.toml), run end to end: each file as shipped, with only its
//! addresses (and certificate and journal paths) put where this test's servers are.

mod common;

use std::path::Path;
use std::time::Duration;

use common::tls::{TempDir, TestCa, tls_connect, write_pair};
use common::*;

/// Example `name` with each `from` replaced by its `to`, written in `dir`.
fn example(dir: &TempDir, name: &str, swaps: &[(&str, String)]) -> String {
    shipped(dir, "examples", name, swaps)
}

/// File `name` of the repository's directory `under`, with each `from` replaced by its
/// `to`, written in `dir`.
fn shipped(dir: &TempDir, under: &str, name: &str, swaps: &[(&str, String)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(under).join(name);
    let mut text = std::fs::read_to_string(&path).expect("the shipped file");
    for (from, to) in swaps {
        assert!(text.contains(from), "{name} has no {from}");
        text = text.replace(from, to);
    }
    dir.write(name, &text)
}

/// `GET path` for `host` on a connection kept open.
fn get_as<S: std::io::Read + std::io::Write>(
    c: &mut Client<S>,
    host: &str,
    path: &str,
) -> Response {
    c.send(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
    c.read_response(false)
        .expect("read a response")
        .expect("a response before close")
}

#[test]
fn seed_002_splits_logins_writes_and_everything_else() {
    let servers: Vec<Proc> = (1..=3)
        .map(|i| backend(&format!("server{i}"), &[]))
        .collect();
    let dir = TempDir::new();
    let mut swaps = vec![
        ("127.0.0.1:8080", "127.0.0.1:0".to_string()),
        ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
        (
            "[admin]",
            "[log]\naccess_log = \"stdout\"\n\n[admin]".to_string(),
        ),
    ];
    for (i, s) in servers.iter().enumerate() {
        swaps.push((
            ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"][i],
            s.addr.to_string(),
        ));
    }
    let lb = lb_file(&example(&dir, "seed-002.toml", &swaps), &[]);
    let web = listener(&lb, "web");
    // GET /login: round-robin over the three.
    let mut seen: Vec<String> = (0..3)
        .map(|_| {
            get(web, "/login")
                .text()
                .trim()
                .rsplit(' ')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    seen.sort();
    assert_eq!(seen, ["server1", "server2", "server3"], "{}", lb.log_text());
    // Settings are named as the file writes them.
    assert!(
        lb.log_text().contains("INFO  no journal: POST copies"),
        "{}",
        lb.log_text()
    );
    // The start-up log lists the routes in the order they are tried.
    let listed = || {
        let log = lb.log_text();
        let at = |name: &str| log.find(&format!("  route {name}: "));
        matches!((at("login"), at("writes"), at("not-found")), (Some(a), Some(b), Some(c)) if a < b && b < c)
    };
    assert!(
        eventually(Duration::from_secs(10), listed),
        "{}",
        lb.log_text()
    );
    // POST /register: every server has the user, and the client got 201.
    let r = request(
        web,
        b"POST /register?username=jack&password=pw HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    for s in &servers {
        assert!(
            eventually(Duration::from_secs(5), || get(s.addr, "/users/jack").status
                == 200),
            "{} never got the write",
            s.addr
        );
    }
    // Another POST goes to one server (not fanned out: a fan-out would be 201 from the
    // copies' rules or 502), which does not take POST /login.
    let r = request(
        web,
        b"POST /login HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 405, "{}", r.text());
    // A path no route takes: 404 from lb itself.
    let r = get(web, "/nothing-here");
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "no such page\n");
    assert!(r.header("x-request-id").is_some());
    // Each access log line ends with the route that took the request and its pool.
    let logged = |request: &str, ends: &str| {
        lb.log_text()
            .lines()
            .any(|l| l.contains(&format!("\"{request}\" ")) && l.ends_with(ends))
    };
    let lines = [
        ("GET /login", " login servers"),
        (
            "POST /register?username=jack&password=pw",
            " writes servers",
        ),
        ("POST /login", " other-posts servers"),
        ("GET /nothing-here", " not-found -"),
    ];
    assert!(
        eventually(Duration::from_secs(10), || lines
            .iter()
            .all(|(r, e)| logged(r, e))),
        "{}",
        lb.log_text()
    );
}

#[test]
fn the_packaged_config_fans_writes_out_to_the_demo_backends() {
    let servers: Vec<Proc> = (1..=3)
        .map(|i| backend(&format!("server{i}"), &[]))
        .collect();
    let dir = TempDir::new();
    let journal = dir.0.join("journal");
    let mut swaps = vec![
        ("0.0.0.0:80\"", "127.0.0.1:0\"".to_string()),
        ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
        ("/var/lib/lb/journal", journal.display().to_string()),
    ];
    for (i, s) in servers.iter().enumerate() {
        swaps.push((
            ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"][i],
            s.addr.to_string(),
        ));
    }
    let lb = lb_file(&shipped(&dir, "dist", "lb.toml", &swaps), &[]);
    let web = listener(&lb, "web");
    // GET: one server each, round-robin.
    let mut seen: Vec<String> = (0..3).map(|_| served_by(&get(web, "/"))).collect();
    seen.sort();
    assert_eq!(seen, ["server1", "server2", "server3"], "{}", lb.log_text());
    // The writes reach every server, and the journal is where the file says.
    for (write, user) in [
        (
            "/register?username=jack&password=pw",
            "jack registered 1 changed 0",
        ),
        (
            "/changePassword?username=jack&password=pw2",
            "jack registered 1 changed 1",
        ),
    ] {
        let r = post(web, write);
        assert_eq!(r.status, 201, "{write}: {}", r.text());
        for s in &servers {
            assert!(
                eventually(Duration::from_secs(5), || get(s.addr, "/users/jack")
                    .text()
                    .starts_with(user)),
                "{} never got {write}",
                s.addr
            );
        }
    }
    assert!(journal.is_dir(), "{}", lb.log_text());
    // Any other POST goes to one server: the demo backend answers POST /login 405.
    assert_eq!(post(web, "/login").status, 405);
    // The health checks (GET /ping) pass: each server comes up.
    let admin = admin_addr(&lb);
    assert!(
        eventually(Duration::from_secs(10), || {
            get(admin, "/backends")
                .text()
                .matches("\"health\":\"up\"")
                .count()
                == 3
        }),
        "{}",
        get(admin, "/backends").text()
    );
}

#[test]
fn seed_001_serves_home_from_the_servers_root_and_checks_ping() {
    let servers: Vec<Proc> = (1..=3).map(|i| backend(&format!("s{i}"), &[])).collect();
    let dir = TempDir::new();
    let mut swaps = vec![
        ("127.0.0.1:8080\"", "127.0.0.1:0\"".to_string()),
        ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
        ("interval = \"10s\"", "interval = \"100ms\"".to_string()),
    ];
    for (i, s) in servers.iter().enumerate() {
        swaps.push((
            ["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"][i],
            s.addr.to_string(),
        ));
    }
    let lb = lb_file(&example(&dir, "seed-001.toml", &swaps), &[]);
    let web = listener(&lb, "web");
    let r = get(web, "/home");
    assert_eq!(r.status, 200, "{}", lb.log_text());
    assert!(r.text().starts_with("Hello from s"), "{}", r.text());
    // /home/10 is the servers' /10: pi to ten places.
    assert_eq!(get(web, "/home/10").text().trim(), "3.1415926535");
    assert_eq!(get(web, "/homestead").status, 404);
    assert_eq!(get(web, "/").text(), "try /home\n");
    // Health is /ping: a server that stops is taken out, the others serve /home.
    let mut servers = servers;
    servers[0].kill();
    let down = format!("backend {} DOWN", servers[0].addr);
    assert!(
        lb.wait_log(&down, Duration::from_secs(5)),
        "{}",
        lb.log_text()
    );
    for _ in 0..4 {
        assert_eq!(get(web, "/home").status, 200);
    }
}

#[test]
fn site_serves_two_names_over_tls_redirects_http_and_passes_tcp_through() {
    let (web1, web2) = (backend("web1", &[]), backend("web2", &[]));
    let (api1, api2) = (backend("api1", &[]), backend("api2", &[]));
    let db = backend("db", &[]);
    let dir = TempDir::new();
    let ca = TestCa::new();
    let (shop_cert, shop_key) = write_pair(&dir, "shop", &ca.issue(&["shop.example.com"]));
    let (blog_cert, blog_key) = write_pair(&dir, "blog", &ca.issue(&["blog.example.com"]));
    let swaps = [
        ("127.0.0.1:8443", "127.0.0.1:0".to_string()),
        ("127.0.0.1:8080", "127.0.0.1:0".to_string()),
        ("127.0.0.1:5433", "127.0.0.1:0".to_string()),
        ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
        ("127.0.0.1:9001", web1.addr.to_string()),
        ("127.0.0.1:9002", web2.addr.to_string()),
        ("127.0.0.1:9011", api1.addr.to_string()),
        ("127.0.0.1:9012", api2.addr.to_string()),
        ("127.0.0.1:5432", db.addr.to_string()),
        ("certs/shop.example.com.pem", shop_cert),
        ("certs/shop.example.com.key", shop_key),
        ("certs/blog.example.com.pem", blog_cert),
        ("certs/blog.example.com.key", blog_key),
    ];
    let lb = lb_file(&example(&dir, "site.toml", &swaps), &[]);
    let (https, http, tcp) = (
        listener(&lb, "https"),
        listener(&lb, "http"),
        listener(&lb, "db"),
    );
    let config = ca.client_config();
    for name in ["shop.example.com", "blog.example.com"] {
        // The certificate of each name (a wrong one fails the handshake).
        let mut tls = Client::over(tls_connect(&config, https, name));
        let r = get_as(&mut tls, name, "/api/10");
        assert_eq!(r.status, 200);
        // /api is stripped: the API servers got /10, pi to ten places.
        assert_eq!(r.text().trim(), "3.1415926535", "{name}");
        assert_eq!(
            r.header("strict-transport-security"),
            Some("max-age=31536000")
        );
        let r = get_as(&mut tls, name, "/");
        assert!(r.text().starts_with("Hello from web"), "{}", r.text());
        assert_eq!(
            r.header("strict-transport-security"),
            Some("max-age=31536000")
        );
    }
    // Plain HTTP: a 308 to the same place over HTTPS, no HSTS (it means nothing there).
    let r = request(
        http,
        b"GET /cart?id=7 HTTP/1.1\r\nHost: shop.example.com\r\n\r\n",
    );
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some("https://shop.example.com/cart?id=7")
    );
    assert_eq!(r.header("strict-transport-security"), None);
    // The database listener passes bytes through unparsed: the demo backend answers.
    assert!(get(tcp, "/").text().starts_with("Hello from db"));
    // A name no route serves, over TLS: 404 from lb.
    let mut tls = Client::over(tls_connect(&config, https, "shop.example.com"));
    assert_eq!(get_as(&mut tls, "other.example.com", "/").status, 404);
}
