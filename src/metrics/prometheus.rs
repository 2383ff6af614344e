//! The counters as Prometheus text exposition format 0.0.4, for `GET /metrics`.
//! Rendering allocates freely: it runs once per scrape, never per request.

use std::fmt::{self, Write};
use std::time::UNIX_EPOCH;

use super::process::Process;
use super::{BackendMetrics, FAILURE_REASONS, Histogram, METHOD_CLASSES};
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
    for (id, _, _) in v.listed() {
        let _ = writeln!(out, "{name}{{{}}} {}", v.labels(id), value(id));
    }
}

/// Samples of histogram `name`, one series per backend, in the usual three parts.
fn histograms<'a>(
    out: &mut String,
    v: &View<'a>,
    name: &str,
    histogram: impl Fn(&'a BackendMetrics) -> &'a Histogram,
) {
    for (id, _, bm) in v.listed() {
        samples(out, name, &v.labels(id).to_string(), histogram(bm));
    }
}

/// The samples of one histogram: cumulative buckets, sum and count. `labels` is empty or
/// `name="value",...` without braces.
pub(super) fn samples(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (i, n) in h.cumulative().enumerate() {
        let _ = match h.bounds.get(i) {
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

/// The `process_` families client libraries export, from /proc.
fn process(out: &mut String, v: &View) {
    let p = Process::read();
    let readings = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            p.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.resident_bytes.map(|b| b as f64),
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            p.open_fds.map(|n| n as f64),
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            p.max_fds.map(|n| n as f64),
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            v.metrics
                .started_wall
                .duration_since(UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs_f64()),
        ),
    ];
    for (name, kind, help, value) in readings {
        if let Some(value) = value {
            family(out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
    }
}

pub fn render(v: &View, out: &mut String) {
    let m = v.metrics;
    let http = !v.tcp_only();

    process(out, v);
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
    clients::workers(out, v);
    if http {
        clients::http2(out, m);
        family(
            out,
            "lb_client_requests_total",
            "counter",
            "Client requests answered, whoever answered (a backend or the balancer), by status class; a POST counts once however many backends it went to.",
        );
        for (class, n) in STATUS_CLASSES.iter().zip(m.client_answers) {
            let _ = writeln!(out, "lb_client_requests_total{{code=\"{class}\"}} {n}");
        }
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
        super::fanout::render(v, out);
    }
    if let Some(cluster) = v.cluster {
        super::cluster::render(cluster, out);
    }
    if http && !v.flags {
        family(
            out,
            "lb_route_requests_total",
            "counter",
            "Requests each route took (by its name), and those no route took (route=\"\", answered 404).",
        );
        for (i, name) in v.routes.iter().enumerate() {
            let n = m.routed.get(i).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "lb_route_requests_total{{route=\"{}\"}} {n}",
                LabelValue(name)
            );
        }
        let _ = writeln!(out, "lb_route_requests_total{{route=\"\"}} {}", m.unrouted);
    }
    family(
        out,
        "lb_reloads_total",
        "counter",
        "Reloads of the backend list (SIGHUP), by result; a failed one keeps the running list.",
    );
    let _ = writeln!(
        out,
        "lb_reloads_total{{result=\"ok\"}} {}\nlb_reloads_total{{result=\"failed\"}} {}",
        m.reloads, m.reloads_failed
    );
    clients::connections(out, m, http);

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
        "lb_backend_health",
        "gauge",
        "1 for what is known of the backend's health: up, down, unknown (no check has ended \
         since it joined), or unchecked (--health-interval 0).",
    );
    for (id, b, _) in v.listed() {
        let _ = writeln!(
            out,
            "lb_backend_health{{{},health=\"{}\"}} 1",
            v.labels(id),
            v.health.known(id, b.up).name()
        );
    }
    family(
        out,
        "lb_backend_state",
        "gauge",
        "1 for the backend's state: ready, drain, maint, or removed (finishing its work).",
    );
    for (id, b, _) in v.listed() {
        let _ = writeln!(
            out,
            "lb_backend_state{{{},state=\"{}\"}} 1",
            v.labels(id),
            b.role.name()
        );
    }
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
        f64::from(v.load(id).active)
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
        "lb_backend_h2_connections_open",
        "gauge",
        "HTTP/2 connections to the backend open now (pools with protocol = \"h2\").",
    );
    per_backend(out, v, "lb_backend_h2_connections_open", |id| {
        m.backends[id].h2_connections as f64
    });
    if http {
        family(
            out,
            "lb_backend_idle_connections",
            "gauge",
            "Idle keep-alive connections in the backend's pool.",
        );
        per_backend(out, v, "lb_backend_idle_connections", |id| {
            v.load(id).idle as f64
        });
    }

    family(
        out,
        "lb_health_checks_total",
        "counter",
        "Active health checks, by result.",
    );
    for (id, _, _) in v.listed() {
        let label = v.labels(id);
        let (pass, fail) = (v.health.checks_passed[id], v.health.checks_failed[id]);
        let _ = writeln!(
            out,
            "lb_health_checks_total{{{label},result=\"pass\"}} {pass}\n\
             lb_health_checks_total{{{label},result=\"fail\"}} {fail}"
        );
    }

    if http {
        family(
            out,
            "lb_requests_total",
            "counter",
            "Requests answered through a backend, by method class and status class (502 and 504 included); each POST copy counts.",
        );
        for (id, _, bm) in v.listed() {
            for (method, by_status) in METHOD_CLASSES.iter().zip(&bm.requests) {
                for (code, n) in STATUS_CLASSES.iter().zip(by_status) {
                    let _ = writeln!(
                        out,
                        "lb_requests_total{{{},method=\"{method}\",code=\"{code}\"}} {n}",
                        v.labels(id)
                    );
                }
            }
        }
    } else {
        family(
            out,
            "lb_tcp_sessions_total",
            "counter",
            "TCP sessions paired with the backend (its connect succeeded).",
        );
        per_backend(out, v, "lb_tcp_sessions_total", |id| {
            m.backends[id].sessions as f64
        });
    }
    family(
        out,
        "lb_backend_failures_total",
        "counter",
        "Failures talking to the backend, by reason.",
    );
    for (id, _, bm) in v.listed() {
        for (reason, n) in FAILURE_REASONS.iter().zip(bm.failures) {
            let _ = writeln!(
                out,
                "lb_backend_failures_total{{{},reason=\"{reason}\"}} {n}",
                v.labels(id)
            );
        }
    }
    if http {
        family(
            out,
            "lb_fanout_copies_total",
            "counter",
            "POST fan-out copies to the backend, by what became of them.",
        );
        for (id, _, bm) in v.listed() {
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
                    "lb_fanout_copies_total{{{},result=\"{result}\"}} {n}",
                    v.labels(id)
                );
            }
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

    if http {
        family(
            out,
            "lb_request_duration_seconds",
            "histogram",
            "Time from dispatching a request to the backend's response head.",
        );
        histograms(out, v, "lb_request_duration_seconds", |bm| &bm.latency);
    } else {
        family(
            out,
            "lb_tcp_session_duration_seconds",
            "histogram",
            "How long finished TCP sessions lasted, from accept to close.",
        );
        histograms(out, v, "lb_tcp_session_duration_seconds", |bm| {
            &bm.session_duration
        });
    }
}

mod clients;

#[cfg(test)]
mod tests;
