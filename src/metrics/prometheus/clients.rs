//! The families about clients rather than backends: each worker's share of them, TLS
//! handshakes, PROXY headers and upgrade tunnels.

use std::fmt::Write;

use super::family;
use crate::admin::{View, WorkerLine};

/// A per-worker family: name, type, help, and its value for one worker.
type WorkerFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&WorkerLine) -> u64,
);

/// Each worker's share of the clients (`--workers`): how evenly they spread.
pub(super) fn workers(out: &mut String, v: &View) {
    let families: [WorkerFamily; 3] = [
        (
            "lb_worker_client_connections_open",
            "gauge",
            "Client connections open now, by worker.",
            |w| w.clients_open as u64,
        ),
        (
            "lb_worker_client_connections_total",
            "counter",
            "Client connections accepted, by worker.",
            |w| w.clients_total,
        ),
        (
            "lb_worker_client_requests_total",
            "counter",
            "Client requests answered, by worker (a POST once).",
            |w| w.requests,
        ),
    ];
    for (name, kind, help, value) in families {
        family(out, name, kind, help);
        for (k, w) in v.workers.iter().enumerate() {
            let _ = writeln!(out, "{name}{{worker=\"{k}\"}} {}", value(w));
        }
    }
}

/// TLS handshakes, PROXY headers and (HTTP mode) upgrade tunnels: per connection, not per
/// backend.
pub(super) fn connections(out: &mut String, m: &crate::metrics::Metrics, http: bool) {
    let tls = crate::tls::stats::snapshot();
    family(
        out,
        "lb_tls_handshakes_total",
        "counter",
        "Client TLS handshakes completed, by whether they resumed an earlier session.",
    );
    let _ = writeln!(
        out,
        "lb_tls_handshakes_total{{resumed=\"false\"}} {}\n\
         lb_tls_handshakes_total{{resumed=\"true\"}} {}",
        tls.completed - tls.resumed,
        tls.resumed
    );
    family(
        out,
        "lb_tls_handshake_failures_total",
        "counter",
        "Client TLS handshakes that failed, by reason.",
    );
    for (reason, n) in crate::tls::stats::FAILURE_REASONS.iter().zip(tls.failures) {
        let _ = writeln!(
            out,
            "lb_tls_handshake_failures_total{{reason=\"{reason}\"}} {n}"
        );
    }
    if http {
        family(
            out,
            "lb_upgrades_total",
            "counter",
            "HTTP exchanges that a 101 answer turned into a tunnel (WebSocket and other upgrades).",
        );
        let _ = writeln!(out, "lb_upgrades_total {}", m.upgrades_total);
        family(out, "lb_tunnels_open", "gauge", "Upgrade tunnels open now.");
        let _ = writeln!(out, "lb_tunnels_open {}", m.tunnels_open);
    }
    family(
        out,
        "lb_proxy_headers_refused_total",
        "counter",
        "--accept-proxy connections closed for a missing, malformed or untrusted PROXY header.",
    );
    let _ = writeln!(
        out,
        "lb_proxy_headers_refused_total {}",
        m.proxy_headers_refused
    );
}

/// HTTP/2 clients: connections, the streams they opened, and connection errors.
pub(super) fn http2(out: &mut String, m: &crate::metrics::Metrics) {
    let families = [
        (
            "lb_http2_connections_total",
            "Client connections that spoke HTTP/2 (ALPN h2, or h2c with prior knowledge).",
            m.h2_connections_total,
        ),
        (
            "lb_http2_streams_total",
            "HTTP/2 streams that became requests.",
            m.h2_streams_total,
        ),
        (
            "lb_http2_connection_errors_total",
            "HTTP/2 connections ended by a GOAWAY with an error code (a protocol error, a flood, rapid reset).",
            m.h2_connection_errors_total,
        ),
    ];
    for (name, help, value) in families {
        family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
}
