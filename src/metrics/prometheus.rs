//! The counters as Prometheus text exposition format 0.0.4, for `GET /metrics`.
//! Rendering allocates freely: it runs once per scrape, never per request.

use std::fmt::{self, Write};

use super::{FAILURE_REASONS, Histogram, LATENCY_BOUNDS, METHOD_CLASSES};
use crate::admin::View;

/// The Content-Type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const FANOUT_RESULTS: [&str; 5] = ["sent", "delivered", "refused", "retried", "spent"];

/// A label value with `\`, `"` and newlines escaped, as the format requires.
pub struct LabelValue<'a>(pub &'a str);

impl fmt::Display for LabelValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// HELP and TYPE lines, which come once before a family's samples.
pub(super) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One gauge or counter sample per backend.
fn per_backend(out: &mut String, v: &View, name: &str, value: impl Fn(usize) -> f64) {
    for (id, b) in v.backends.iter().enumerate() {
        let _ = writeln!(
            out,
            "{name}{{backend=\"{}\"}} {}",
            LabelValue(&b.label),
            value(id)
        );
    }
}

pub fn render(v: &View, out: &mut String) {
    let m = v.metrics;

    family(
        out,
        "lb_build_info",
        "gauge",
        "Always 1; the version is a label.",
    );
    let _ = writeln!(
        out,
        "lb_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    family(
        out,
        "lb_uptime_seconds",
        "gauge",
        "Seconds since the balancer started.",
    );
    let _ = writeln!(out, "lb_uptime_seconds {}", v.uptime().as_secs_f64());

    family(
        out,
        "lb_client_connections_open",
        "gauge",
        "Client connections open now.",
    );
    let _ = writeln!(out, "lb_client_connections_open {}", v.clients_open);
    family(
        out,
        "lb_client_connections_total",
        "counter",
        "Client connections accepted.",
    );
    let _ = writeln!(
        out,
        "lb_client_connections_total {}",
        m.client_connections_total
    );
    family(
        out,
        "lb_local_responses_total",
        "counter",
        "Responses the balancer made itself without a backend (bad requests, timeouts, no backend), by status class.",
    );
    for (class, n) in STATUS_CLASSES.iter().zip(m.local_responses) {
        let _ = writeln!(out, "lb_local_responses_total{{code=\"{class}\"}} {n}");
    }
    family(
        out,
        "lb_fanout_pending_retries",
        "gauge",
        "POST fan-out copies waiting for a retry or for their backend.",
    );
    let _ = writeln!(out, "lb_fanout_pending_retries {}", m.pending_retries);
    super::fanout::render(m, out);

    family(
        out,
        "lb_backend_up",
        "gauge",
        "1 while the backend takes traffic, 0 while health checks hold it down.",
    );
    per_backend(out, v, "lb_backend_up", |id| {
        f64::from(u8::from(v.backends[id].up))
    });
    family(
        out,
        "lb_backend_weight",
        "gauge",
        "Configured weight of the backend.",
    );
    per_backend(out, v, "lb_backend_weight", |id| {
        f64::from(v.backends[id].weight)
    });
    family(
        out,
        "lb_backend_active",
        "gauge",
        "Requests in flight (HTTP mode) or sessions open (TCP mode) on the backend.",
    );
    per_backend(out, v, "lb_backend_active", |id| {
        f64::from(v.backends[id].active)
    });
    family(
        out,
        "lb_backend_connections_open",
        "gauge",
        "Connections to the backend open now, busy or pooled.",
    );
    per_backend(out, v, "lb_backend_connections_open", |id| {
        m.backends[id].connections as f64
    });
    family(
        out,
        "lb_backend_idle_connections",
        "gauge",
        "Idle keep-alive connections in the backend's pool.",
    );
    per_backend(out, v, "lb_backend_idle_connections", |id| {
        v.backends[id].idle.len() as f64
    });

    family(
        out,
        "lb_health_checks_total",
        "counter",
        "Active health checks, by result.",
    );
    for (id, b) in v.backends.iter().enumerate() {
        let label = LabelValue(&b.label);
        let (pass, fail) = (v.health.checks_passed[id], v.health.checks_failed[id]);
        let _ = writeln!(
            out,
            "lb_health_checks_total{{backend=\"{label}\",result=\"pass\"}} {pass}\n\
             lb_health_checks_total{{backend=\"{label}\",result=\"fail\"}} {fail}"
        );
    }

    family(
        out,
        "lb_requests_total",
        "counter",
        "Requests answered through a backend, by method class and status class (502 and 504 included).",
    );
    for (b, bm) in v.backends.iter().zip(&m.backends) {
        for (method, by_status) in METHOD_CLASSES.iter().zip(&bm.requests) {
            for (code, n) in STATUS_CLASSES.iter().zip(by_status) {
                let _ = writeln!(
                    out,
                    "lb_requests_total{{backend=\"{}\",method=\"{method}\",code=\"{code}\"}} {n}",
                    LabelValue(&b.label)
                );
            }
        }
    }
    family(
        out,
        "lb_backend_failures_total",
        "counter",
        "Failures talking to the backend, by reason.",
    );
    for (b, bm) in v.backends.iter().zip(&m.backends) {
        for (reason, n) in FAILURE_REASONS.iter().zip(bm.failures) {
            let _ = writeln!(
                out,
                "lb_backend_failures_total{{backend=\"{}\",reason=\"{reason}\"}} {n}",
                LabelValue(&b.label)
            );
        }
    }
    family(
        out,
        "lb_fanout_copies_total",
        "counter",
        "POST fan-out copies to the backend, by what became of them.",
    );
    for (b, bm) in v.backends.iter().zip(&m.backends) {
        let counts = [
            bm.fanout_sent,
            bm.fanout_delivered,
            bm.fanout_refused,
            bm.fanout_retried,
            bm.fanout_spent,
        ];
        for (result, n) in FANOUT_RESULTS.iter().zip(counts) {
            let _ = writeln!(
                out,
                "lb_fanout_copies_total{{backend=\"{}\",result=\"{result}\"}} {n}",
                LabelValue(&b.label)
            );
        }
    }
    family(
        out,
        "lb_backend_sent_bytes_total",
        "counter",
        "Bytes sent to the backend.",
    );
    per_backend(out, v, "lb_backend_sent_bytes_total", |id| {
        m.backends[id].bytes_sent as f64
    });
    family(
        out,
        "lb_backend_received_bytes_total",
        "counter",
        "Bytes received from the backend.",
    );
    per_backend(out, v, "lb_backend_received_bytes_total", |id| {
        m.backends[id].bytes_received as f64
    });

    family(
        out,
        "lb_request_duration_seconds",
        "histogram",
        "Time from dispatching a request to the backend's response head.",
    );
    for (b, bm) in v.backends.iter().zip(&m.backends) {
        let label = format!("backend=\"{}\"", LabelValue(&b.label));
        histogram(out, "lb_request_duration_seconds", &label, &bm.latency);
    }
}

/// The samples of one histogram: cumulative buckets, sum and count. `labels` is empty or
/// `name="value",...` without braces.
pub(super) fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (i, n) in h.cumulative().enumerate() {
        let _ = match LATENCY_BOUNDS.get(i) {
            Some(le) => writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {n}"),
            None => writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {n}"),
        };
    }
    let braced = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(
        out,
        "{name}_sum{braced} {}\n{name}_count{braced} {}",
        h.sum_seconds, h.count
    );
}

#[cfg(test)]
mod tests {
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
        let series = |le: &str| {
            format!("lb_request_duration_seconds_bucket{{backend=\"a\\\"b\",le=\"{le}\"}}")
        };
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
}
