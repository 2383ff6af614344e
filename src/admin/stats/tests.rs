use std::time::{Duration, Instant};

use super::*;
use crate::admin::tests::{Fixture, view_fixture};
use crate::http::head::Method;
use crate::probe::LastCheck;

fn page(fx: &Fixture) -> String {
    let mut page = String::new();
    render(&fx.view(), &mut page);
    page
}

fn row<'a>(page: &'a str, label: &str) -> &'a str {
    page.lines()
        .find(|l| l.contains(&format!("data-backend=\"{label}\"")))
        .unwrap_or_else(|| panic!("no row for {label}:\n{page}"))
}

/// The number in the tile named `what`.
fn tile_value<'a>(page: &'a str, what: &str) -> &'a str {
    let line = page
        .lines()
        .find(|l| l.contains(&format!("<span>{what}</span>")))
        .unwrap_or_else(|| panic!("no {what} tile:\n{page}"));
    let start = line.find("<b>").unwrap() + 3;
    &line[start..line.find("</b>").unwrap()]
}

#[test]
fn down_backends_stand_out_and_labels_are_escaped() {
    let start = Instant::now();
    let mut fx = view_fixture(start);
    fx.now = start + Duration::from_secs(65);
    fx.backends[1].up = false;
    fx.metrics.backends[0].requests[0][1] = 7;
    fx.metrics.backends[0]
        .latency
        .observe(Duration::from_millis(3));
    let page = page(&fx);
    assert!(page.contains("<title>lb · 1 DOWN</title>"), "{page}");
    assert!(page.contains("http-equiv=\"refresh\""));
    assert!(page.contains("name=\"viewport\""));
    assert!(page.contains("up 1m 05s"));
    assert!(page.contains("<td class=\"name\" data-label=\"Backend\">a&quot;b</td>"));
    assert!(
        !page.contains("a\"b"),
        "the raw label never reaches the page"
    );
    let down = row(&page, "zz");
    assert!(down.contains("class=\"backend down\""), "{down}");
    assert!(down.contains(">DOWN<"), "{down}");
    let unknown = row(&page, "a&quot;b");
    assert!(unknown.contains("class=\"backend unknown\""), "{unknown}");
    assert!(
        unknown.contains(">UNKNOWN<") && unknown.contains("2xx 7"),
        "{unknown}"
    );
    fx.health.last_check[0] = Some(LastCheck {
        passed: true,
        error: String::new(),
        took: Duration::from_millis(1),
        at: start,
    });
    let mut again = String::new();
    render(&fx.view(), &mut again);
    let up = row(&again, "a&quot;b");
    assert!(
        up.contains("class=\"backend up\"") && up.contains(">UP<"),
        "{up}"
    );
    for external in ["src=", "<link", "<script", "http://", "https://"] {
        assert!(
            !page.contains(external),
            "{external} in a self-contained page"
        );
    }
}

#[test]
fn state_age_and_last_check_tell_the_story() {
    let start = Instant::now();
    let mut fx = view_fixture(start);
    fx.now = start + Duration::from_secs(130);
    fx.health.since[1] = start + Duration::from_secs(10);
    fx.health.last_check[1] = Some(LastCheck {
        passed: false,
        error: "Connection refused <os error 111>".into(),
        took: Duration::from_micros(420),
        at: start + Duration::from_secs(127),
    });
    let page = page(&fx);
    let zz = row(&page, "zz");
    assert!(zz.contains("for 2m 00s"), "time in state: {zz}");
    assert!(zz.contains("since 20"), "when it changed: {zz}");
    assert!(
        zz.contains("failed</span><small>Connection refused &lt;os error 111&gt;</small>"),
        "the error text, escaped: {zz}"
    );
    assert!(zz.contains("took 0.42 ms · 3s ago"), "{zz}");
}

#[test]
fn requests_count_clients_once_and_retries_pending_once() {
    let mut fx = view_fixture(Instant::now());
    // One POST: three copies to backends, one answer to the client.
    for _ in 0..3 {
        fx.metrics
            .request(0, Method::Post, 201, Duration::from_millis(1));
    }
    fx.metrics.client_answer(201);
    fx.metrics.pending_retries = 4;
    let page = page(&fx);
    assert_eq!(tile_value(&page, "requests"), "1");
    assert_eq!(page.matches("retries pending").count(), 1, "{page}");
    assert!(page.contains("<h2>POST fan-out</h2>"));
    assert!(
        page.contains("2 / 100,000</b><span>POSTs in delivery"),
        "{page}"
    );
    assert!(page.contains("3 / 10,000</b><span>client connections / limit"));
}

#[test]
fn tcp_mode_shows_sessions_and_no_posts() {
    let mut fx = view_fixture(Instant::now());
    fx.pools[0].protocol = Protocol::Tcp;
    fx.metrics.backends[1].sessions = 5;
    let page = page(&fx);
    assert_eq!(tile_value(&page, "sessions"), "5");
    assert!(page.contains("<th>Sessions</th>"));
    assert!(!page.contains("POST"), "{page}");
    assert!(!page.contains("<span>requests</span>"));
}

#[test]
fn charts_draw_the_last_minutes_from_the_history() {
    let start = Instant::now();
    let mut fx = view_fixture(start);
    fx.history.sample(start, &fx.metrics);
    for i in 1..=3 {
        for _ in 0..(10 * i) {
            fx.metrics
                .request(0, Method::Get, 200, Duration::from_millis(2));
        }
        fx.history.sample(start + history::EVERY * i, &fx.metrics);
    }
    let page = page(&fx);
    let a = row(&page, "a&quot;b");
    assert_eq!(a.matches("<svg class=\"spark").count(), 2, "{a}");
    assert!(a.contains("<polyline points=\""), "{a}");
    assert!(a.contains("<span>15.0/s</span>"), "the latest point: {a}");
    assert!(a.contains("10.0/s<small>"), "the rate over 10 s: {a}");
    let zz = row(&page, "zz");
    assert!(
        zz.contains("<polyline points=\"117.3,29.0 118.7,29.0 120.0,29.0\"/>"),
        "no requests: flat at the bottom, at the right: {zz}"
    );
    assert_eq!(
        zz.matches("<polyline").count(),
        1,
        "no answers, no p99: {zz}"
    );
}

#[test]
fn a_config_files_routes_are_listed_in_order_with_their_requests() {
    let mut fx = view_fixture(Instant::now());
    fx.metrics.routed = vec![7, 0];
    fx.metrics.unrouted = 2;
    let described = [
        (
            "host shop.example.com, path under /api".to_string(),
            "proxy to pool api".to_string(),
        ),
        ("any request".to_string(), "respond 404 <gone>".to_string()),
    ];
    let mut v = fx.view();
    v.flags = false;
    v.routes = vec!["api", "rest"];
    v.described = &described;
    let mut page = String::new();
    render(&v, &mut page);
    let api = page.find("data-route=\"api\"").expect("api row");
    let rest = page.find("data-route=\"rest\"").expect("rest row");
    assert!(api < rest, "in the file's order");
    let api_row = page[api..].lines().next().unwrap();
    assert!(api_row.contains("path under /api</td>") && api_row.contains(">7</td>"));
    assert!(page.contains("respond 404 &lt;gone&gt;"), "escaped");
    let none = page.find("data-route=\"\"").expect("the row for no route");
    assert!(page[none..].lines().next().unwrap().contains(">2</td>"));
    assert!(
        !self::page(&fx).contains("id=\"routes\""),
        "not for the flags"
    );
}
