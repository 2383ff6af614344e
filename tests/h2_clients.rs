//! HTTP/2 through lb with real clients: curl with prior knowledge against `--h2c` and with
//! ALPN over TLS, nghttp and h2load (Debian's nghttp2-client). `.ci/run` installs
//! nghttp2-client; elsewhere its tests skip with a message when it is missing.

mod common;

use std::process::{Command, Output};

use common::python::in_ci;
use common::tls::*;
use common::*;

/// True when `tool` runs; outside CI a test without it skips, in CI it fails.
fn have(tool: &str, package: &str) -> bool {
    if Command::new(tool).arg("--version").output().is_ok() {
        return true;
    }
    assert!(!in_ci(), "{tool} is missing: in CI, .ci/run installs it");
    eprintln!("skipped: {tool} is missing (Debian: apt-get install {package})");
    false
}

fn ran(tool: &str, args: &[&str]) -> String {
    let out: Output = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// curl's `HTTP-VERSION STATUS BYTES` for one request, the body thrown away.
fn curl(args: &[&str]) -> String {
    let mut all = vec![
        "-sS",
        "--max-time",
        "30",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code} %{size_download}",
    ];
    all.extend_from_slice(args);
    ran("curl", &all)
}

#[test]
fn curl_with_prior_knowledge_gets_posts_and_downloads_a_megabyte() {
    if !have("curl", "curl") {
        return;
    }
    let b = backend("one", &[]);
    let lb = lb(&[&b], &["--h2c"]);
    let url = |path: &str| format!("http://{}{path}", lb.addr);
    let h2 = "--http2-prior-knowledge";
    assert_eq!(curl(&[h2, &url("/")]), "2 200 15");
    assert_eq!(
        curl(&[h2, "--data-binary", "twelve bytes", &url("/echo")]),
        "2 200 12"
    );
    assert_eq!(curl(&[h2, &url("/bytes/1048576")]), "2 200 1048576");
    // The same listener still speaks HTTP/1.1.
    assert_eq!(curl(&["--http1.1", &url("/")]), "1.1 200 15");
}

#[test]
fn curl_over_tls_negotiates_h2_by_alpn_and_http1_still_works() {
    if !have("curl", "curl") {
        return;
    }
    let b = backend("one", &[]);
    let site = Site::new();
    let ca = site.dir.write("ca.pem", &site.ca.pem);
    let lb = site.lb(&[b.addr], &[]);
    let url = |path: &str| format!("https://localhost:{}{path}", tls_addr(&lb).port());
    let with = |extra: &[&str]| {
        let mut args = vec!["--cacert", &ca];
        args.extend_from_slice(extra);
        curl(&args)
    };
    assert_eq!(with(&["--http2", &url("/")]), "2 200 15");
    assert_eq!(
        with(&["--http2", "--data-binary", "twelve bytes", &url("/echo")]),
        "2 200 12"
    );
    assert_eq!(with(&["--http2", &url("/bytes/1048576")]), "2 200 1048576");
    assert_eq!(with(&["--http1.1", &url("/")]), "1.1 200 15");
}

#[test]
fn nghttp_gets_posts_and_runs_twenty_streams_on_one_connection() {
    if !have("nghttp", "nghttp2-client") {
        return;
    }
    let b = backend("one", &[]);
    let lb = lb(&[&b], &["--h2c"]);
    let url = |path: &str| format!("http://{}{path}", lb.addr);
    assert_eq!(ran("nghttp", &[&url("/")]), "Hello from one\n");
    let body = TempDir::new();
    let file = body.write("body", "a body for /echo");
    assert_eq!(
        ran("nghttp", &["-d", &file, &url("/echo")]),
        "a body for /echo"
    );
    assert_eq!(ran("nghttp", &[&url("/bytes/1048576")]).len(), 1_048_576);
    // -m 20: the same request twenty times at once; -s: one line per stream, with its code.
    let stats = ran("nghttp", &["-n", "-s", "-m", "20", &url("/")]);
    let codes: Vec<&str> = stats
        .lines()
        .filter(|l| l.trim_end().ends_with(" /"))
        .filter_map(|l| l.split_whitespace().nth(4))
        .collect();
    assert_eq!(codes, vec!["200"; 20], "{stats}");
}

/// h2load's summary says every one of `n` requests succeeded with a 2xx.
fn assert_all_2xx(summary: &str, n: u32) {
    assert!(
        summary.contains(&format!(
            "requests: {n} total, {n} started, {n} done, {n} succeeded, 0 failed, 0 errored"
        )),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("status codes: {n} 2xx, 0 3xx, 0 4xx, 0 5xx")),
        "{summary}"
    );
}

#[test]
fn h2load_ten_streams_on_each_of_two_connections_all_2xx() {
    if !have("h2load", "nghttp2-client") {
        return;
    }
    let b = backend("one", &[]);
    let lb = lb(&[&b], &["--h2c"]);
    let url = format!("http://{}/", lb.addr);
    let summary = ran("h2load", &["-n", "200", "-c", "2", "-m", "10", &url]);
    assert_all_2xx(&summary, 200);

    // Over TLS, h2 is what ALPN chooses.
    let site = Site::new();
    let tls = site.lb(&[b.addr], &[]);
    let url = format!("https://127.0.0.1:{}/", tls_addr(&tls).port());
    let summary = ran("h2load", &["-n", "200", "-c", "2", "-m", "10", &url]);
    assert!(summary.contains("Application protocol: h2"), "{summary}");
    assert_all_2xx(&summary, 200);
}

#[test]
fn h2c_in_a_config_file_is_per_listener() {
    if !have("curl", "curl") {
        return;
    }
    let b = backend("one", &[]);
    let dir = TempDir::new();
    let path = dir.write(
        "lb.toml",
        &format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n\n\
             [listeners.h2]\naddress = \"127.0.0.1:0\"\nh2c = true\n\n\
             [listeners.old]\naddress = \"127.0.0.1:0\"\n\n\
             [pools.app]\nbackends = [\"{}\"]\n\n[[routes]]\npool = \"app\"\n",
            b.addr
        ),
    );
    let lb = lb_file(&path, &[]);
    let h2 = format!("http://{}/", listener(&lb, "h2"));
    assert_eq!(curl(&["--http2-prior-knowledge", &h2]), "2 200 15");
    assert_eq!(curl(&["--http1.1", &h2]), "1.1 200 15");
    // The listener without it answers a preface as the HTTP/1.1 it is not, and closes.
    let mut c = Client::new(listener(&lb, "old"));
    c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    let r = c.read_response(false).expect("read").expect("an answer");
    assert!((400..500).contains(&r.status), "{r:?}");
    assert!(c.closed_within(IO_TIMEOUT));
}
