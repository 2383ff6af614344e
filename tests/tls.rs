//! TLS termination over real sockets: a rustls client with certificates made at test
//! time, lb's `--tls-listen` in front of the demo backends.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use common::tls::*;
use common::*;

#[test]
fn get_post_fanout_pipelining_and_ten_megabytes_over_tls() {
    let (b1, b2) = (backend("one", &[]), backend("two", &[]));
    let site = Site::new();
    let lb = site.lb(&[b1.addr, b2.addr], &[]);
    let addr = tls_addr(&lb);
    let config = site.ca.client_config();
    let stream = tls_connect(&config, addr, "localhost");
    assert_eq!(stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut c = Client::over(stream);

    let r = c.get("/headers");
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("X-Forwarded-Proto: https\r\n"),
        "{}",
        r.text()
    );

    // A chunked POST fans out to both backends.
    c.send(
        b"POST /register HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          7\r\nusernam\r\n12\r\ne=tls&password=pw1\r\n0\r\n\r\n",
    );
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    for b in [&b1, &b2] {
        assert!(eventually(Duration::from_secs(5), || get(
            b.addr,
            "/users/tls"
        )
        .status
            == 200));
    }

    // Three pipelined requests in one write, answered in order.
    c.send(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\nGET /3 HTTP/1.1\r\nHost: t\r\n\r\n");
    for digits in ["3.1", "3.14", "3.141"] {
        let r = c.read_response(false).unwrap().unwrap();
        assert_eq!(r.text().trim(), digits);
    }

    // 10 MB down, then 10 MB up, on the same TLS connection.
    let ten_mb = 10 * 1024 * 1024;
    let r = c.get(&format!("/bytes/{ten_mb}"));
    assert_eq!(r.body.len(), ten_mb);
    c.send(format!("PUT /sink HTTP/1.1\r\nHost: t\r\nContent-Length: {ten_mb}\r\n\r\n").as_bytes());
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..ten_mb / chunk.len() {
        c.stream.write_all(&chunk).unwrap();
    }
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!(r.text().trim(), ten_mb.to_string());
}

#[test]
fn sni_chooses_the_certificate_and_no_name_gets_the_default() {
    let b = backend("one", &[]);
    let ca = TestCa::new();
    let dir = TempDir::new();
    let first = ca.issue(&["a.test", "127.0.0.1"]);
    let second = ca.issue(&["b.test", "*.wild.test"]);
    let (c1, k1) = write_pair(&dir, "a", &first);
    let (c2, k2) = write_pair(&dir, "b", &second);
    let lb = lb(
        &[&b],
        &[
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            &c1,
            "--tls-key",
            &k1,
            "--tls-cert",
            &c2,
            "--tls-key",
            &k2,
        ],
    );
    let addr = tls_addr(&lb);
    let config = ca.client_config();
    let served = |name: &str| {
        let s = tls_connect(&config, addr, name);
        s.conn.peer_certificates().unwrap()[0].clone()
    };
    assert_eq!(served("b.test"), second.der);
    assert_eq!(served("x.wild.test"), second.der);
    assert_eq!(served("a.test"), first.der);
    // An IP address sends no SNI at all: the first certificate answers.
    assert_eq!(served("127.0.0.1"), first.der);
}

#[test]
fn a_second_connection_resumes_the_session() {
    let b = backend("one", &[]);
    let site = Site::new();
    let lb = site.lb(&[b.addr], &["--admin", "127.0.0.1:0"]);
    let addr = tls_addr(&lb);
    let config = site.ca.client_config();
    for expected in [rustls::HandshakeKind::Full, rustls::HandshakeKind::Resumed] {
        let mut c = Client::over(tls_connect(&config, addr, "localhost"));
        assert_eq!(c.get("/").status, 200);
        assert_eq!(c.stream.conn.handshake_kind(), Some(expected));
    }
    assert_metric(&lb, "lb_tls_handshakes_total{resumed=\"true\"} 1");
    assert_metric(&lb, "lb_tls_handshakes_total{resumed=\"false\"} 1");
}

#[test]
fn sessions_resume_on_whichever_worker_takes_the_next_connection() {
    let b = backend("one", &[]);
    let site = Site::new();
    let lb = site.lb(&[b.addr], &["--admin", "127.0.0.1:0", "--workers", "2"]);
    let addr = tls_addr(&lb);
    let config = site.ca.client_config();
    for i in 0..8 {
        let mut c = Client::over(tls_connect(&config, addr, "localhost"));
        assert_eq!(c.get("/").status, 200);
        let expected = match i {
            0 => rustls::HandshakeKind::Full,
            _ => rustls::HandshakeKind::Resumed,
        };
        assert_eq!(
            c.stream.conn.handshake_kind(),
            Some(expected),
            "connection {i}"
        );
    }
    assert_metric(&lb, "lb_tls_handshakes_total{resumed=\"true\"} 7");
    let metrics = get(admin_addr(&lb), "/metrics").text();
    for k in 0..2 {
        let line = format!("lb_worker_client_connections_total{{worker=\"{k}\"}} 0");
        assert!(
            !metrics.contains(&line),
            "both workers took connections:\n{metrics}"
        );
    }
}

#[test]
fn plain_http_on_the_tls_port_gets_a_plain_400() {
    let b = backend("one", &[]);
    let site = Site::new();
    let lb = site.lb(&[b.addr], &["--admin", "127.0.0.1:0"]);
    let mut c = Client::new(tls_addr(&lb));
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(false).unwrap().unwrap();
    assert_eq!(r.status, 400);
    assert!(r.text().contains("HTTPS"), "{}", r.text());
    assert!(c.closed_within(Duration::from_secs(5)));
    assert_metric(
        &lb,
        "lb_tls_handshake_failures_total{reason=\"plaintext_http\"} 1",
    );
}

#[test]
fn a_handshake_never_finished_is_cut_by_the_client_timeout() {
    let b = backend("one", &[]);
    let site = Site::new();
    let lb = site.lb(
        &[b.addr],
        &["--client-timeout", "300ms", "--admin", "127.0.0.1:0"],
    );
    let mut c = Client::new(tls_addr(&lb));
    // The start of a ClientHello record, and nothing more.
    c.send(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
    assert!(c.closed_within(Duration::from_secs(5)), "still open");
    assert_metric(
        &lb,
        "lb_tls_handshake_failures_total{reason=\"unfinished\"} 1",
    );
}

/// Runs lb with `args` and expects one line on stderr containing `says`, and status 2.
fn refused(args: &[&str], says: &str) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lb"))
        .args(args)
        .output()
        .expect("run lb");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(says), "wanted {says:?} in {err}");
}

#[test]
fn bad_certificates_and_keys_are_one_line_and_exit_2() {
    let ca = TestCa::new();
    let dir = TempDir::new();
    let (cert, key) = write_pair(&dir, "a", &ca.issue(&["a.test"]));
    let (_, other_key) = write_pair(&dir, "b", &ca.issue(&["b.test"]));
    let expired = ca.issue_with(&["old.test"], |p| {
        p.not_before = rcgen::date_time_ymd(2001, 1, 1);
        p.not_after = rcgen::date_time_ymd(2002, 1, 1);
    });
    let (old_cert, old_key) = write_pair(&dir, "old", &expired);
    let junk = dir.write(
        "junk.key",
        "-----BEGIN DSA PRIVATE KEY-----\nAAAA\n-----END DSA PRIVATE KEY-----\n",
    );
    let base = [
        "-b",
        "127.0.0.1:1",
        "--tls-listen",
        "127.0.0.1:0",
        "--admin",
        "off",
    ];
    let with = |c: &str, k: &str| -> Vec<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(["--tls-cert", c, "--tls-key", k].map(String::from))
            .collect()
    };
    let cases = [
        (with(&cert, &other_key), "does not match"),
        (with(&old_cert, &old_key), "expired on 2002-01-01"),
        (with(&cert, &junk), "holds no private key"),
        (with(&cert, "/nonexistent/lb.key"), "cannot read key"),
        (with("/nonexistent/lb.crt", &key), "cannot read certificate"),
    ];
    for (args, says) in &cases {
        refused(&args.iter().map(String::as_str).collect::<Vec<_>>(), says);
    }
    refused(&base, "--tls-listen needs --tls-cert");
}

#[test]
fn sighup_reloads_the_certificate_and_a_bad_one_keeps_the_old() {
    let b = backend("one", &[]);
    let site = Site::new();
    let (ca, dir, old) = (&site.ca, &site.dir, &site.issued);
    let lb = site.lb(&[b.addr], &[]);
    let addr = tls_addr(&lb);
    let config = ca.client_config();
    let served = || {
        tls_connect(&config, addr, "localhost")
            .conn
            .peer_certificates()
            .unwrap()[0]
            .clone()
    };
    assert_eq!(served(), old.der);

    let new = ca.issue(&["localhost"]);
    write_pair(dir, "site", &new);
    lb.signal(libc::SIGHUP);
    assert!(lb.wait_log("reloaded 1 TLS certificate", Duration::from_secs(5)));
    assert_eq!(served(), new.der);

    dir.write("site.key", "not a key");
    lb.signal(libc::SIGHUP);
    assert!(
        lb.wait_log("certificates not reloaded", Duration::from_secs(5)),
        "{}",
        lb.log_text()
    );
    assert_eq!(served(), new.der);
}

#[test]
fn tcp_mode_terminates_tls_and_passes_plain_bytes() {
    use std::net::TcpListener;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(&got).unwrap();
    });
    let site = Site::new();
    let lb = site.lb(&[backend_addr], &["-m", "tcp", "--health-interval", "0"]);
    let mut s = tls_connect(&site.ca.client_config(), tls_addr(&lb), "localhost");
    s.write_all(b"plain bytes, not HTTP").unwrap();
    s.conn.send_close_notify();
    s.flush().unwrap();
    s.sock.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    let _ = s.read_to_end(&mut back);
    assert_eq!(back, b"plain bytes, not HTTP");
}

#[test]
fn https_backends_are_verified_and_health_checked_over_tls() {
    let b = backend("inner", &[]);
    let site = Site::new();
    let front = site.lb(&[b.addr], &["--access-log"]);
    let dir = &site.dir;
    let ca_file = dir.write("ca.pem", &site.ca.pem);
    let https = format!("https://localhost:{}", tls_addr(&front).port());
    let checks = ["--health-interval", "100ms", "--fall", "1", "--rise", "1"];
    let mut args = vec!["--backend-ca", ca_file.as_str()];
    args.extend_from_slice(&checks);
    let outer = lb_addrs(&[&https], &args);
    let r = get(outer.addr, "/");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(served_by(&r), "inner");
    // The checks are HTTPS GETs that pass: the front end logs them, and the backend stays up.
    assert!(
        eventually(Duration::from_secs(5), || {
            front.log_text().matches("\"GET /\"").count() >= 4
        }),
        "{}",
        front.log_text()
    );
    assert!(!outer.log_text().contains("DOWN"), "{}", outer.log_text());

    // A CA that did not sign the backend's certificate: not trusted, and its checks fail.
    let other = TestCa::new();
    let wrong = dir.write("wrong.pem", &other.pem);
    let mut args = vec!["--backend-ca", wrong.as_str()];
    args.extend_from_slice(&checks);
    let distrusting = lb_addrs(&[&https], &args);
    assert!(
        distrusting.wait_log("DOWN after", Duration::from_secs(5)),
        "{}",
        distrusting.log_text()
    );
    assert_ne!(get(distrusting.addr, "/").status, 200);
}

#[test]
fn curl_with_cacert_gets_an_answer() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("curl is not installed: skipping");
        return;
    }
    let b = backend("one", &[]);
    let site = Site::new();
    let lb = site.lb(&[b.addr], &[]);
    let ca_file = site.dir.write("ca.pem", &site.ca.pem);
    let url = format!("https://localhost:{}/", tls_addr(&lb).port());
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert", &ca_file, &url])
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Hello from one"
    );
}

#[test]
fn an_upgrade_hands_the_tls_listener_over() {
    let b = backend("one", &[]);
    let site = Site::new();
    let mut old = site.lb(&[b.addr], &[]);
    let addr = tls_addr(&old);
    let config = site.ca.client_config();
    assert_eq!(
        Client::over(tls_connect(&config, addr, "localhost"))
            .get("/")
            .status,
        200
    );
    old.signal(libc::SIGUSR2);
    // The new process writes to the same stderr: its own line says it serves.
    assert!(
        old.wait_log("upgrade: serving", Duration::from_secs(10)),
        "{}",
        old.log_text()
    );
    let pid: i32 = old
        .log_text()
        .split(" as pid ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|pid| pid.parse().ok())
        .expect("the new pid in the log");
    let _new = KillOnDrop(pid);
    assert_eq!(old.exit_code_within(Duration::from_secs(10)), Some(0));
    // The same TLS port, now the new process's, with the same certificate.
    let mut c = Client::over(tls_connect(&config, addr, "localhost"));
    assert_eq!(c.get("/").status, 200);
}

/// The lb that an upgrade started (this test did not spawn it), killed when the test ends.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of the lb that the old one started.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

/// ALPN offers `h2` first, then `http/1.1`, on an HTTP listener, and nothing on a TCP one
/// in the same site: what it relays may not be HTTP at all, let alone HTTP/2.
#[test]
fn alpn_offers_h2_on_http_listeners_and_nothing_on_tcp_ones() {
    let b = backend("alpn", &[]);
    let site = Site::new();
    let config = format!(
        "[admin]\nlisten = \"off\"\n\n\
         [listeners.web]\naddress = \"127.0.0.1:0\"\ntls = [{{ cert = \"{cert}\", key = \"{key}\" }}]\n\n\
         [listeners.raw]\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"raw\"\n\
         tls = [{{ cert = \"{cert}\", key = \"{key}\" }}]\n\n\
         [pools.main]\nbackends = [\"{b}\"]\n\n[pools.raw]\nbackends = [\"{b}\"]\n\n\
         [[routes]]\nname = \"all\"\npool = \"main\"\n",
        cert = site.cert,
        key = site.key,
        b = b.addr,
    );
    let path = site.dir.write("alpn.toml", &config);
    let lb = lb_file(&path, &[]);
    let mut both = (*site.ca.client_config()).clone();
    both.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let both = std::sync::Arc::new(both);
    let web = tls_connect(&both, listener(&lb, "web"), "localhost");
    assert_eq!(web.conn.alpn_protocol(), Some(&b"h2"[..]));
    let http1 = tls_connect(&site.ca.client_config(), listener(&lb, "web"), "localhost");
    assert_eq!(http1.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let raw = tls_connect(&both, listener(&lb, "raw"), "localhost");
    assert_eq!(raw.conn.alpn_protocol(), None);
}
