//! The backends table's columns: a heading and a function that writes one backend's cell.
//! A new column (a button, say) is one entry in `columns`.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use super::chart::sparkline;
use super::format::{Bytes, Count, Html, Rate, Secs, Uptime};
use super::{RATE_POINTS, View, tcp};
use crate::backend::BackendId;
use crate::config::model::Protocol;
use crate::logging::Timestamp;
use crate::metrics::history::{POINTS, recent_rate};
use crate::metrics::{BackendMetrics, FAILURE_REASONS};

/// One column of the backends table: its heading, and how a backend's cell is written.
pub struct Column {
    pub title: &'static str,
    pub cell: fn(&View, BackendId, &mut String),
}

pub fn columns(protocol: Protocol) -> Vec<Column> {
    let http = protocol == Protocol::Http;
    vec![
        Column {
            title: "State",
            cell: state_cell,
        },
        Column {
            title: "Load",
            cell: load_cell,
        },
        Column {
            title: if http { "Requests" } else { "Sessions" },
            cell: count_cell,
        },
        Column {
            title: "Rate",
            cell: rate_cell,
        },
        Column {
            title: if http { "Latency" } else { "Session length" },
            cell: latency_cell,
        },
        Column {
            title: "Last 3 min",
            cell: chart_cell,
        },
        Column {
            title: "Last check",
            cell: check_cell,
        },
        Column {
            title: "Traffic",
            cell: traffic_cell,
        },
        Column {
            title: "Control",
            cell: crate::admin::api::control_cell,
        },
    ]
}

/// The wall-clock time `d` before now, for "since".
fn wall_time_ago(d: Duration) -> String {
    let at = SystemTime::now()
        .checked_sub(d)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    // Seconds are enough here: 2026-11-21 14:03:07 UTC.
    let ts = Timestamp(at).to_string();
    format!("{} {} UTC", &ts[..10], &ts[11..19])
}

fn state_cell(v: &View, id: BackendId, out: &mut String) {
    let state = v
        .health
        .known(id, v.backends[id].up)
        .name()
        .to_ascii_uppercase();
    let for_how_long = v.now.saturating_duration_since(v.health.since[id]);
    let _ = write!(
        out,
        "<span class=\"state\">{state}</span><small>for {}</small><small>since {}</small>",
        Uptime(for_how_long.as_secs()),
        wall_time_ago(for_how_long)
    );
}

fn load_cell(v: &View, id: BackendId, out: &mut String) {
    let b = &v.backends[id];
    let bm = &v.metrics.backends[id];
    let _ = write!(
        out,
        "{} active<small>weight {}</small><small>{} open",
        v.load(id).active,
        b.weight,
        bm.connections
    );
    let pool = v.pool_of(id);
    if pool.protocol == Protocol::Http {
        let _ = write!(
            out,
            " · {} idle of {}",
            v.load(id).idle,
            pool.settings.pool_size
        );
    }
    out.push_str("</small>");
}

/// The nonzero parts of a breakdown, as "2xx 10 · 4xx 1".
fn breakdown<'a>(parts: impl Iterator<Item = (&'a str, u64)>) -> String {
    let mut s = String::new();
    for (name, n) in parts.filter(|(_, n)| *n > 0) {
        if !s.is_empty() {
            s.push_str(" · ");
        }
        let _ = write!(s, "{name} {}", Count(n));
    }
    s
}

fn by_status(bm: &BackendMetrics) -> [u64; 5] {
    let mut sums = [0; 5];
    for by_method in &bm.requests {
        for (sum, n) in sums.iter_mut().zip(by_method) {
            *sum += n;
        }
    }
    sums
}

fn count_cell(v: &View, id: BackendId, out: &mut String) {
    let bm = &v.metrics.backends[id];
    let statuses = by_status(bm);
    if tcp(v) {
        let _ = write!(out, "{}", Count(bm.sessions));
    } else {
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        let _ = write!(out, "{}", Count(bm.requests_total()));
        let parts = breakdown(classes.into_iter().zip(statuses));
        if !parts.is_empty() {
            let _ = write!(out, "<small>{parts}</small>");
        }
    }
    let errors =
        std::iter::once(("5xx", statuses[4])).chain(FAILURE_REASONS.into_iter().zip(bm.failures));
    let _ = match breakdown(errors).replace('_', " ") {
        b if b.is_empty() => write!(out, "<small>no errors</small>"),
        b => write!(out, "<small>errors: {b}</small>"),
    };
}

fn rate_cell(v: &View, id: BackendId, out: &mut String) {
    match recent_rate(v.history.backend(id), RATE_POINTS) {
        Some((rate, errors)) => {
            let _ = write!(out, "{}<small>{} errors</small>", Rate(rate), Rate(errors));
        }
        None => out.push_str("–<small>in a few seconds</small>"),
    }
}

fn latency_cell(v: &View, id: BackendId, out: &mut String) {
    let bm = &v.metrics.backends[id];
    let h = if tcp(v) {
        &bm.session_duration
    } else {
        &bm.latency
    };
    match (h.mean_seconds(), h.quantile(0.5)) {
        (Some(mean), Some(p50)) => {
            let p99 = h.quantile(0.99).unwrap_or(p50);
            let _ = write!(
                out,
                "{} mean<small>p50 {} · p99 {}</small>",
                Secs(mean),
                Secs(p50),
                Secs(p99)
            );
        }
        _ => out.push('–'),
    }
}

fn chart_cell(v: &View, id: BackendId, out: &mut String) {
    let points = v.history.backend(id);
    let rates: Vec<Option<f64>> = points.iter().map(|p| Some(p.rate)).collect();
    let seconds: Vec<Option<f64>> = points.iter().map(|p| p.second).collect();
    let last = points.back();
    let (rate_name, second_name) = if tcp(v) {
        ("sessions/s", "bytes/s")
    } else {
        ("requests/s", "p99 latency")
    };
    out.push_str("<div class=\"chart\">");
    sparkline(out, &rates, POINTS, "rate", rate_name);
    let _ = write!(
        out,
        "<span>{}</span></div>",
        last.map_or("–".to_string(), |p| Rate(p.rate).to_string())
    );
    out.push_str("<div class=\"chart\">");
    sparkline(out, &seconds, POINTS, "p99", second_name);
    let now = last.and_then(|p| p.second);
    let text = match (now, tcp(v)) {
        (None, _) => "–".to_string(),
        (Some(b), true) => format!("{}/s", Bytes(b as u64)),
        (Some(s), false) => format!("p99 {}", Secs(s)),
    };
    let _ = write!(out, "<span>{text}</span></div>");
}

fn check_cell(v: &View, id: BackendId, out: &mut String) {
    if !v.health.enabled(id) {
        out.push_str("<span>checks off</span>");
        return;
    }
    match &v.health.last_check[id] {
        None => out.push_str("<span>not yet</span>"),
        Some(c) => {
            let ago = Uptime(v.now.saturating_duration_since(c.at).as_secs());
            if c.passed {
                let _ = write!(out, "<span>passed</span>");
            } else {
                let _ = write!(
                    out,
                    "<span class=\"fail\">failed</span><small>{}</small>",
                    Html(&c.error)
                );
            }
            let _ = write!(
                out,
                "<small>took {} · {ago} ago</small>",
                Secs(c.took.as_secs_f64())
            );
        }
    }
    let _ = write!(
        out,
        "<small>{} passed · {} failed</small>",
        Count(v.health.checks_passed[id]),
        Count(v.health.checks_failed[id])
    );
}

fn traffic_cell(v: &View, id: BackendId, out: &mut String) {
    let bm = &v.metrics.backends[id];
    let _ = write!(
        out,
        "{} out<small>{} in</small>",
        Bytes(bm.bytes_sent),
        Bytes(bm.bytes_received)
    );
}
