//! HTTP/2 with prior knowledge (`--h2c`) against hostile clients: each limit of
//! src/h2/limits.rs tripped over a real socket by tests/support/h2_client.py (PyPI's h2,
//! its hpack and hyperframe), the exact RST_STREAM or GOAWAY code checked, and lb still
//! serving HTTP/1.1 and HTTP/2 afterwards. `.ci/run` installs h2; elsewhere the tests
//! skip with a message when python3 or h2 is missing.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};

use common::python::python_ready;
use common::tls::{Site, tls_addr};
use common::*;
use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/h2_client.py");

fn h2_ready() -> bool {
    python_ready("h2", "h2")
}

/// The script against `port`, over TLS with ALPN h2 when `tls`.
fn script_on(port: u16, tls: bool, scenario: &str, arg: &str) -> Command {
    let mut cmd = Command::new("python3");
    // No __pycache__ in the source tree for h2_wire.py.
    cmd.env("PYTHONDONTWRITEBYTECODE", "1").arg(SCRIPT);
    if tls {
        cmd.arg("--tls");
    }
    cmd.arg(port.to_string()).arg(scenario).arg(arg);
    cmd
}

/// What the server did, from the script's one JSON line.
fn parse(out: std::process::Output, what: &str) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what}: {}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{what}: {e}: {text}"))
}

fn run(lb: &Proc, scenario: &str, arg: &str) -> Value {
    let out = script_on(lb.addr.port(), false, scenario, arg)
        .output()
        .expect("python3 runs");
    parse(out, &format!("{scenario} {arg}"))
}

fn run_tls(port: u16, scenario: &str, arg: &str) -> Value {
    let out = script_on(port, true, scenario, arg)
        .output()
        .expect("python3 runs");
    parse(out, &format!("TLS {scenario} {arg}"))
}

fn spawn_script(lb: &Proc, scenario: &str, arg: &str) -> Child {
    script_on(lb.addr.port(), false, scenario, arg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts")
}

/// A map of the report keyed by stream id.
fn by_stream(report: &Value, key: &str) -> BTreeMap<u32, Value> {
    report[key]
        .as_object()
        .unwrap_or_else(|| panic!("no {key} in {report}"))
        .iter()
        .map(|(k, v)| (k.parse().expect("a stream id"), v.clone()))
        .collect()
}

fn statuses(report: &Value) -> BTreeMap<u32, u64> {
    by_stream(report, "status")
        .into_iter()
        .map(|(k, v)| (k, v.as_u64().expect("a status")))
        .collect()
}

fn resets(report: &Value) -> BTreeMap<u32, String> {
    by_stream(report, "resets")
        .into_iter()
        .map(|(k, v)| (k, v.as_str().expect("a code").to_string()))
        .collect()
}

fn goaway(report: &Value) -> Option<&str> {
    report["goaway"]["code"].as_str()
}

fn h2c_lb(b: &Proc, extra: &[&str]) -> Proc {
    let mut args = vec!["--h2c"];
    args.extend_from_slice(extra);
    lb(&[b], &args)
}

/// lb has not exited, and answers HTTP/1.1 and HTTP/2 on the listener the attack used.
fn still_serving(lb: &mut Proc) {
    assert_eq!(lb.exit_code_within(std::time::Duration::ZERO), None);
    assert_eq!(get(lb.addr, "/").status, 200, "{}", lb.log_text());
    let after = run(lb, "get", "/");
    assert_eq!(statuses(&after), BTreeMap::from([(1, 200)]), "{after}");
}

/// The connection ended with GOAWAY `code` and lb closed it.
fn assert_goaway(report: &Value, code: &str) {
    assert_eq!(goaway(report), Some(code), "{report}");
    assert_eq!(report["closed"], true, "{report}");
}

#[test]
fn well_behaved_get_post_and_fifty_streams_beside_http1() {
    if !h2_ready() {
        return;
    }
    let b = backend("one", &[]);
    let mut lb = h2c_lb(&b, &[]);
    let one = run(&lb, "get", "/");
    assert_eq!(statuses(&one), BTreeMap::from([(1, 200)]), "{one}");
    assert_eq!(one["body"]["1"], "Hello from one\n".len(), "{one}");

    let fifty = run(&lb, "get", "/*50");
    let answered = statuses(&fifty);
    assert_eq!(answered.len(), 50, "{fifty}");
    assert!(answered.values().all(|s| *s == 200), "{fifty}");
    assert_eq!(goaway(&fifty), None);

    // /echo answers with the body it got: with a content-length, and without one.
    for (arg, len) in [("100000", 100_000), ("1000:chunked", 1000)] {
        let post = run(&lb, "post", arg);
        assert_eq!(statuses(&post), BTreeMap::from([(1, 200)]), "{post}");
        assert_eq!(post["body"]["1"], len, "{post}");
    }
    let te = run(&lb, "te-trailers", "");
    assert_eq!(statuses(&te), BTreeMap::from([(1, 200)]), "{te}");
    still_serving(&mut lb);
}

#[test]
fn without_h2c_a_preface_gets_an_http1_error_and_a_close() {
    let b = backend("one", &[]);
    let lb = lb(&[&b], &[]);
    let mut c = Client::new(lb.addr);
    c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0");
    let r = c.read_response(false).expect("read").expect("an answer");
    assert!((400..500).contains(&r.status), "{r:?}");
    assert!(c.closed_within(IO_TIMEOUT));
}

#[test]
fn streams_past_one_hundred_are_refused_and_the_rest_answered() {
    if !h2_ready() {
        return;
    }
    let b = backend("one", &[]);
    let mut lb = h2c_lb(&b, &[]);
    let report = run(&lb, "refused", "110");
    let refused: BTreeMap<u32, String> = (201..220)
        .step_by(2)
        .map(|s| (s, "REFUSED_STREAM".to_string()))
        .collect();
    assert_eq!(resets(&report), refused, "{report}");
    let answered: BTreeMap<u32, u64> = (1..200).step_by(2).map(|s| (s, 200)).collect();
    assert_eq!(statuses(&report), answered, "{report}");
    assert_eq!(goaway(&report), None, "{report}");
    still_serving(&mut lb);
}

#[test]
fn rapid_reset_is_calmed_while_another_client_is_served() {
    if !h2_ready() {
        return;
    }
    let b = backend("one", &[]);
    let mut lb = h2c_lb(&b, &[]);
    let flood = spawn_script(&lb, "rapid-reset", "20");
    for _ in 0..3 {
        let polite = run(&lb, "get", "/*50");
        let answered = statuses(&polite);
        assert_eq!(answered.len(), 50, "{polite}");
        assert!(answered.values().all(|s| *s == 200), "{polite}");
    }
    let report = parse(flood.wait_with_output().expect("wait"), "rapid-reset");
    let rounds = report["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 20);
    for round in rounds {
        assert_goaway(round, "ENHANCE_YOUR_CALM");
        // 100 premature resets are the least that trips it; far fewer than the script sends.
        let sent = round["sent"].as_u64().expect("sent");
        assert!((100..10_000).contains(&sent), "{round}");
    }
    still_serving(&mut lb);
}

#[test]
fn continuation_blocks_are_bounded_at_16_frames_and_27_904_bytes() {
    if !h2_ready() {
        return;
    }
    let b = backend("one", &[]);
    let mut lb = h2c_lb(&b, &[]);
    // HEADERS and 15 CONTINUATIONs are a block of 16 frames: answered.
    let most = run(&lb, "continuation", "frames:15");
    assert_eq!(
        statuses(&most),
        BTreeMap::from([(1, 200), (3, 200)]),
        "{most}"
    );
    // A block of 27 904 bytes is taken, and refused with 431 for what it decodes to
    // (about 4 000 fields); the connection goes on.
    let most = run(&lb, "continuation", "bytes:27904");
    assert_eq!(
        statuses(&most),
        BTreeMap::from([(1, 431), (3, 200)]),
        "{most}"
    );
    assert_eq!(goaway(&most), None, "{most}");
    // One frame or one byte more ends the connection, as does a block that never ends.
    for arg in ["frames:16", "bytes:27905", "flood:0", "flood:4096"] {
        let report = run(&lb, "continuation", arg);
        assert_goaway(&report, "ENHANCE_YOUR_CALM");
        assert_eq!(statuses(&report), BTreeMap::new(), "{arg}: {report}");
    }
    still_serving(&mut lb);
}

/// The most resident memory `lb` has had, in KiB (VmHWM).
fn peak_rss_kib(lb: &Proc) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", lb.pid())).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM")
}

#[test]
fn hpack_bomb_is_answered_431_without_decoding_it_and_the_connection_goes_on() {
    if !h2_ready() {
        return;
    }
    let b = backend("one", &[]);
    let mut lb = h2c_lb(&b, &[]);
    let before = peak_rss_kib(&lb);
    // 27 000 one-byte references to a 3 900-byte field in the dynamic table: a block of
    // 27 004 bytes (within the block bound) that decodes to 106 MB.
    let report = run(&lb, "hpack-bomb", "27000");
    assert_eq!(report["sent"], 27_004, "{report}");
    assert_eq!(
        statuses(&report),
        BTreeMap::from([(1, 200), (3, 431), (5, 200)]),
        "{report}"
    );
    assert_eq!(goaway(&report), None, "{report}");
    let grew = peak_rss_kib(&lb).saturating_sub(before);
    assert!(grew < 32 * 1024, "lb's peak memory grew by {grew} KiB");
    still_serving(&mut lb);
}

#[test]
fn a_table_size_update_beyond_the_setting_is_a_compression_error() {
    if !h2_ready() {
        return;
    }
    let b = backend("one", &[]);
    let mut lb = h2c_lb(&b, &[]);
    let report = run(&lb, "table-size", "65536");
    assert_goaway(&report, "COMPRESSION_ERROR");
    // Up to the 4 096 lb allows is fine.
    let report = run(&lb, "table-size", "4096");
    assert_eq!(statuses(&report), BTreeMap::from([(1, 200)]), "{report}");
    still_serving(&mut lb);
}

#[test]
fn a_header_list_over_the_limit_gets_431_and_the_largest_http1_head_is_proxied() {
    if !h2_ready() {
        return;
    }
    // The demo backend takes 64 fields at most: this one takes any head.
    let b = RawBackend::start(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let mut lb = lb_addrs(&[&b.addr.to_string()], &["--h2c"]);
    // Near the largest head lb's HTTP/1 code takes (8 KiB line, 16 KiB of fields, 100
    // fields with Host and the 3 lb adds): an 8 100-byte path and 90 fields of 170 bytes,
    // 26 718 octets as HTTP/2 counts them.
    let large = run(&lb, "big-headers", "90:170:8100");
    assert_eq!(
        statuses(&large),
        BTreeMap::from([(1, 200), (3, 200)]),
        "{large}"
    );
    // The four pseudo-header fields count 169 octets, each x-f of 60 bytes 95: 292 of
    // them make 27 909, 5 past the 27 904 of src/h2/limits.rs. (lb's HTTP/1 field count
    // would refuse it too: the HPACK bomb test shows the list bound itself.)
    let over = run(&lb, "big-headers", "292");
    assert_eq!(
        statuses(&over),
        BTreeMap::from([(1, 431), (3, 200)]),
        "{over}"
    );
    assert_eq!(goaway(&over), None, "{over}");
    // The large one went to the backend whole; the one over the limit did not go at all.
    let fields = b
        .received()
        .to_ascii_lowercase()
        .matches("\r\nx-f: ")
        .count();
    assert_eq!(fields, 90);
    still_serving(&mut lb);
}

#[test]
fn floods_of_work_only_frames_are_calmed_and_fifty_are_fine() {
    if !h2_ready() {
        return;
    }
    let b = backend("one", &[]);
    let mut lb = h2c_lb(&b, &[]);
    for kind in [
        "ping",
        "settings",
        "empty-data",
        "window-update",
        "priority",
    ] {
        // 50 on a connection with one open stream are fine (the allowance is 100 per 10 s)...
        let fifty = run(&lb, "flood", &format!("{kind}:50"));
        assert_eq!(
            statuses(&fifty),
            BTreeMap::from([(1, 200)]),
            "{kind}: {fifty}"
        );
        assert_eq!(goaway(&fifty), None, "{kind}: {fifty}");
        // ...a flood ends long before the script's 20 000.
        let report = run(&lb, "flood", kind);
        assert_goaway(&report, "ENHANCE_YOUR_CALM");
        assert!(report["sent"].as_u64() < Some(20_000), "{kind}: {report}");
    }
    still_serving(&mut lb);
}

/// lb ended stream 1, or the connection.
fn ended(report: &Value) -> bool {
    resets(report).contains_key(&1) || goaway(report).is_some() || report["closed"] == true
}

/// With the client timeout at 1 s, a stream the client never lets lb send on is ended
/// (RST_STREAM, GOAWAY or a close) within the script's 15 s, short of its body.
fn stalled_stream_is_ended(scenario: &str) {
    if !h2_ready() {
        return;
    }
    let b = backend("one", &[]);
    let mut lb = h2c_lb(&b, &["--client-timeout", "1s"]);
    let report = run(&lb, scenario, "100000");
    assert!(ended(&report), "lb held the stalled stream: {report}");
    assert!(report["body"]["1"].as_u64() < Some(100_000), "{report}");
    still_serving(&mut lb);
}

#[test]
fn a_zero_window_never_opened_is_ended_by_the_client_timeout() {
    stalled_stream_is_ended("zero-window");
}

#[test]
fn one_byte_window_drips_do_not_keep_a_stalled_stream_alive() {
    stalled_stream_is_ended("drip");
}

#[test]
fn malformed_requests_are_reset_with_protocol_error_and_the_connection_goes_on() {
    if !h2_ready() {
        return;
    }
    let b = backend("one", &[]);
    let mut lb = h2c_lb(&b, &[]);
    for kind in [
        "uppercase",
        "connection",
        "no-path",
        "te-gzip",
        "transfer-encoding",
        "crlf-in-value",
        "crlf-in-path",
        "nul-in-value",
        "colon-in-name",
    ] {
        let report = run(&lb, "malformed", kind);
        let protocol_error = BTreeMap::from([(1, "PROTOCOL_ERROR".to_string())]);
        assert_eq!(resets(&report), protocol_error, "{kind}: {report}");
        assert_eq!(
            statuses(&report),
            BTreeMap::from([(3, 200)]),
            "{kind}: {report}"
        );
        assert_eq!(goaway(&report), None, "{kind}: {report}");
    }
    still_serving(&mut lb);
}

#[test]
fn slow_clients_are_closed_by_the_client_and_idle_timeouts() {
    if !h2_ready() {
        return;
    }
    let b = backend("one", &[]);
    let mut lb = h2c_lb(&b, &["--client-timeout", "1s", "--idle-timeout", "2s"]);
    // Half a preface, a header block never ended, and keepalive PINGs on a connection
    // with no stream: each closed within the script's 15 s.
    for kind in ["preface", "header-block", "ping"] {
        let report = run(&lb, "slow", kind);
        assert_eq!(report["closed"], true, "{kind}: {report}");
        if kind == "header-block" {
            // By --client-timeout, as a partial HTTP/1.1 head; not the later idle one.
            assert_goaway(&report, "PROTOCOL_ERROR");
        }
    }
    // A body that never comes is answered 408, as over HTTP/1.1.
    let report = run(&lb, "slow", "body");
    assert_eq!(statuses(&report), BTreeMap::from([(1, 408)]), "{report}");
    assert_eq!(report["closed"], true, "{report}");
    still_serving(&mut lb);
}

#[test]
fn over_tls_with_alpn_h2_the_same_limits_hold() {
    if !h2_ready() {
        return;
    }
    let b = backend("one", &[]);
    let site = Site::new();
    let mut lb = site.lb(&[b.addr], &["--client-timeout", "1s"]);
    let port = tls_addr(&lb).port();
    let twenty = run_tls(port, "get", "/*20");
    assert_eq!(statuses(&twenty).len(), 20, "{twenty}");
    assert!(statuses(&twenty).values().all(|s| *s == 200), "{twenty}");
    let refused = run_tls(port, "refused", "110");
    assert_eq!(resets(&refused).len(), 10, "{refused}");
    assert_eq!(statuses(&refused).len(), 100, "{refused}");
    for (scenario, arg) in [
        ("rapid-reset", "2"),
        ("flood", "ping"),
        ("continuation", "frames:16"),
    ] {
        let report = run_tls(port, scenario, arg);
        let rounds = report["rounds"].as_array().cloned().unwrap_or(vec![report]);
        for round in &rounds {
            assert_goaway(round, "ENHANCE_YOUR_CALM");
        }
    }
    let stalled = run_tls(port, "zero-window", "100000");
    assert!(ended(&stalled), "lb held the stalled stream: {stalled}");
    assert_eq!(lb.exit_code_within(std::time::Duration::ZERO), None);
    let after = run_tls(port, "get", "/");
    assert_eq!(statuses(&after), BTreeMap::from([(1, 200)]), "{after}");
}

#[test]
fn a_client_that_opens_every_window_and_never_reads_holds_little_and_is_closed() {
    if !h2_ready() {
        return;
    }
    let b = backend("one", &[]);
    let mut lb = h2c_lb(&b, &["--client-timeout", "1s"]);
    let before = peak_rss_kib(&lb);
    // Ten 50 MB answers with windows of 2 GiB: without a bound on frames queued for the
    // client, lb would read all 500 MB from the backend and keep it.
    let report = run(&lb, "no-read", "10");
    assert_eq!(report["closed"], true, "{report}");
    let grown = peak_rss_kib(&lb).saturating_sub(before);
    assert!(grown < 32 * 1024, "lb's peak memory grew by {grown} KiB");
    assert!(
        lb.log_text().contains("cut off reading its HTTP/2 frames"),
        "{}",
        lb.log_text()
    );
    still_serving(&mut lb);
}

#[test]
fn a_client_that_shuts_its_side_still_gets_the_answers_in_flight() {
    if !h2_ready() {
        return;
    }
    let slow = backend("slow", &["--delay", "300ms"]);
    let mut lb = h2c_lb(&slow, &[]);
    let report = run(&lb, "half-close", "/");
    assert_eq!(statuses(&report), BTreeMap::from([(1, 200)]), "{report}");
    assert_eq!(report["closed"], true, "{report}");
    still_serving(&mut lb);
}
