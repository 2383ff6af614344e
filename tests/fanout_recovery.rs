//! POST copies to backends that fail, go away and come back: copies wait only while lb
//! cannot reach their backend, come out of backoff as soon as it is back, and the bound on
//! what lb owes holds in bytes too and says so once.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// A backend held DOWN because it answers GETs with 500 (as a backend failing a share of
/// its requests is, over and over) still answers POSTs: its copies go out at once, so a
/// steady stream of writes never fills --max-pending. They used to wait for it to come
/// UP, and the 11th POST got 503.
#[test]
fn a_backend_held_down_for_failing_gets_still_takes_every_write_at_once() {
    let bs = [backend("a", &[]), backend("b", &[])];
    let lb = lb(
        &[&bs[0], &bs[1]],
        &[
            // The same path always goes to the same backend; checks rarely bring it back.
            "-s",
            "hash-uri",
            "--health-interval",
            "5s",
            "--max-pending",
            "10",
            "--admin",
            "127.0.0.1:0",
        ],
    );
    let admin = admin_addr(&lb);
    for _ in 0..3 {
        assert_eq!(get(lb.addr, "/status/500").status, 500);
    }
    let up = |b: &Proc| metric(admin, &format!("lb_backend_up{{backend=\"{}\"}}", b.addr));
    let held = bs
        .iter()
        .find(|b| up(b) == 0.0)
        .expect("three 500s in a row take the backend that gave them down");
    for i in 0..100 {
        let r = post(lb.addr, &format!("/register?username=w{i}&password=p"));
        assert_eq!(r.status, 201, "POST {i}: {}", r.text());
    }
    for i in 0..100 {
        let user = format!("w{i}");
        assert!(
            eventually(Duration::from_secs(5), || registered(held, &user) == 1),
            "{user} reached the backend held down"
        );
    }
}

/// A backend that failed its first writes delivers one: the copies that were waiting out
/// a backoff to it go at once, not when their (by then 4 s) backoff ends.
#[test]
fn a_backend_that_recovers_gets_its_backed_off_copies_at_its_first_success() {
    let ok = backend("ok", &[]);
    let failing = backend("failing", &["--fail-first", "6"]);
    let lb = lb(
        &[&ok, &failing],
        &[
            "--retry-base",
            "2s",
            "--retry-max",
            "60s",
            "--retry-jitter",
            "0",
            "--admin",
            "127.0.0.1:0",
        ],
    );
    let admin = admin_addr(&lb);
    for i in 0..3 {
        let r = post(lb.addr, &format!("/register?username=r{i}&password=p"));
        assert_eq!(r.status, 201, "{}", r.text());
    }
    // Each copy fails twice (6 writes), at once and 2 s later; the next try is 4 s away.
    assert!(
        eventually(Duration::from_secs(6), || copies(
            admin,
            failing.addr,
            "retried"
        ) == 6.0),
        "the first six attempts fail"
    );
    assert_eq!(
        post(lb.addr, "/register?username=r3&password=p").status,
        201
    );
    let after_success = Instant::now();
    assert!(
        eventually(Duration::from_millis(1500), || copies(
            admin,
            failing.addr,
            "delivered"
        ) == 4.0),
        "the backed-off copies follow the first success, {:?} after it: {} delivered",
        after_success.elapsed(),
        copies(admin, failing.addr, "delivered")
    );
    for i in 0..4 {
        assert_eq!(registered(&failing, &format!("r{i}")), 1);
    }
}

/// Copies that failed to connect while their backend was away go out as soon as it
/// answers again, not when their backoff ends.
#[test]
fn a_backend_back_from_an_outage_gets_the_copies_that_failed_during_it_at_once() {
    back_from_an_outage("1");
}

/// The same with two workers: worker 0's checks see the backend answer again, and the
/// other worker's copies, which saw it fail, follow.
#[test]
fn every_worker_hears_that_a_backend_is_back() {
    back_from_an_outage("2");
}

fn back_from_an_outage(workers: &'static str) {
    let ok = backend("ok", &[]);
    let away = format!("127.0.0.1:{}", free_port());
    let mut gone = backend_on("away", &away, &[]);
    let ok_addr = ok.addr.to_string();
    let lb = lb_addrs(
        &[&ok_addr, &away],
        &[
            "--retry-base",
            "4s",
            "--retry-max",
            "60s",
            "--retry-jitter",
            "0",
            "--health-interval",
            "200ms",
            "--workers",
            workers,
            "--admin",
            "127.0.0.1:0",
        ],
    );
    let admin = admin_addr(&lb);
    assert_eq!(
        post(lb.addr, "/register?username=before&password=p").status,
        201
    );
    gone.kill();
    // Right after the kill, before a check notices: these copies fail to connect and
    // back off for 4 s.
    for i in 0..5 {
        let r = post(lb.addr, &format!("/register?username=o{i}&password=p"));
        assert_eq!(r.status, 201, "{}", r.text());
    }
    std::thread::sleep(Duration::from_millis(500));
    let back = backend_on("away", &away, &[]);
    let restarted = Instant::now();
    for i in 0..5 {
        let user = format!("o{i}");
        assert!(
            eventually(Duration::from_millis(1500), || registered(&back, &user)
                == 1),
            "{user} was delivered {:?} after the backend came back, not within 1.5 s",
            restarted.elapsed()
        );
    }
    assert_eq!(
        metric(admin, "lb_fanout_refused_full_total"),
        0.0,
        "nothing was refused"
    );
}

/// --max-pending-bytes bounds the request bytes owed: past it new POSTs get 503, said
/// once in the log and counted, and once the backend takes its backlog, POSTs flow again.
#[test]
fn the_bytes_owed_are_bounded_and_reaching_the_bound_is_said_once() {
    let ok = backend("ok", &[]);
    let away = format!("127.0.0.1:{}", free_port());
    let ok_addr = ok.addr.to_string();
    let lb = lb_addrs(
        &[&ok_addr, &away],
        &[
            "--max-pending-bytes",
            "3k",
            "--health-interval",
            "100ms",
            "--admin",
            "127.0.0.1:0",
        ],
    );
    let admin = admin_addr(&lb);
    let body = "x".repeat(1000);
    let statuses: Vec<u16> = (0..6)
        .map(|i| post_body(lb.addr, &format!("/register?username=b{i}"), &body).status)
        .collect();
    assert_eq!(
        statuses,
        [201, 201, 503, 503, 503, 503],
        "1 KiB bodies, 3 KiB"
    );
    assert_eq!(metric(admin, "lb_fanout_refused_full_total"), 4.0);
    assert_eq!(
        lb.log_text().matches("new POSTs get 503").count(),
        1,
        "said once:\n{}",
        lb.log_text()
    );
    assert!(lb.log_text().contains("--max-pending-bytes"));
    let back = backend_on("away", &away, &[]);
    assert!(
        lb.wait_log("POSTs are taken again: 4 got 503", Duration::from_secs(10)),
        "{}",
        lb.log_text()
    );
    assert_eq!(
        post_body(lb.addr, "/register?username=b6", &body).status,
        201
    );
    assert!(eventually(Duration::from_secs(5), || registered(
        &back, "b6"
    ) == 1));
}
