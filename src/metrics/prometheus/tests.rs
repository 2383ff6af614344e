use std::time::{Duration, Instant};

use super::*;
use crate::admin::tests::view_fixture;

#[test]
fn label_values_are_escaped() {
    assert_eq!(
        LabelValue("a\"b\\c\nd").to_string(),
        "a\\\"b\\\\c\\nd",
        "quote, backslash and newline"
    );
    assert_eq!(LabelValue("127.0.0.1:80").to_string(), "127.0.0.1:80");
}

fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
}

#[test]
fn histogram_is_cumulative_and_ends_with_inf() {
    let mut fx = view_fixture(Instant::now());
    let h = &mut fx.metrics.backends[0].latency;
    for ms in [0, 3, 3, 60_000] {
        h.observe(Duration::from_millis(ms));
    }
    let mut text = String::new();
    render(&fx.view(), &mut text);
    let series =
        |le: &str| format!("lb_request_duration_seconds_bucket{{backend=\"a\\\"b\",le=\"{le}\"}}");
    assert_eq!(sample(&text, &series("0.0005")), Some("1"));
    assert_eq!(sample(&text, &series("0.005")), Some("3"));
    assert_eq!(sample(&text, &series("10")), Some("3"));
    assert_eq!(sample(&text, &series("+Inf")), Some("4"));
    assert_eq!(
        sample(
            &text,
            "lb_request_duration_seconds_count{backend=\"a\\\"b\"}"
        ),
        Some("4")
    );
    let sum: f64 = sample(&text, "lb_request_duration_seconds_sum{backend=\"a\\\"b\"}")
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!((sum - 60.006).abs() < 1e-9, "{sum}");
}

#[test]
fn every_family_is_declared_before_its_samples() {
    let mut fx = view_fixture(Instant::now());
    fx.metrics.journal = Some(crate::metrics::JournalMetrics {
        stats: crate::journal::Stats::default(),
        bytes_on_disk: 0,
    });
    let mut text = String::new();
    render(&fx.view(), &mut text);
    let mut declared: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                !declared.iter().any(|(n, _)| n == name),
                "{name} declared twice"
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{name}");
            }
            declared.push((name.to_string(), kind.to_string()));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name = line.split(['{', ' ']).next().unwrap();
        let (family, kind) = declared.last().expect("a sample before any TYPE");
        let fits = name == family
            || (kind == "histogram"
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name == format!("{family}{s}")));
        assert!(fits, "{name} sits under {family}");
    }
    assert!(text.contains("lb_backend_up{backend=\"zz\"} 1\n"));
    assert!(text.contains("lb_journal_sync_duration_seconds_count 0\n"));
}
