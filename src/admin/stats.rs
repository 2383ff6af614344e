//! `GET /stats`: one self-contained HTML page (inline CSS and SVG, no script, no external
//! asset) that reloads itself. A wide screen gets a table; a phone gets one card per backend.
//!
//! The page is a list of sections (`SECTIONS`) and the backends table a list of columns
//! (`columns`): a new section or a new column (a button, say) is one function added there.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use super::View;
use crate::backend::BackendId;
use crate::config::Mode;
use crate::logging::Timestamp;
use crate::metrics::history::{self, POINTS, recent_rate};
use crate::metrics::process::Process;
use crate::metrics::{BackendMetrics, FAILURE_REASONS};

mod chart;
mod format;

use chart::sparkline;
use format::{Bytes, Count, Flag, Html, Rate, Secs, Uptime};

/// Seconds between reloads of the page: one point of the charts.
const REFRESH_SECONDS: u64 = history::EVERY.as_secs();
/// Rates are the mean of this many points (10 s).
const RATE_POINTS: usize = 5;

const STYLE: &str = include_str!("stats/style.css");

/// The page, top to bottom. Each section decides for itself whether it shows in a mode.
const SECTIONS: &[fn(&View, &mut String)] = &[summary, backends, limits, fanout];

pub fn render(v: &View, out: &mut String) {
    let total = v.backends.len();
    let up = v.backends.iter().filter(|b| b.up).count();
    let title = if up == total {
        format!("all {total} up")
    } else {
        format!("{} DOWN", total - up)
    };
    let mode = match v.cfg.mode {
        Mode::Http => "HTTP",
        Mode::Tcp => "TCP",
    };
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\n\
         <title>lb · {title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header><h1>lb <small>{}</small></h1>\
         <p>{mode} on {} · {} · up {}</p></header>\n<main>\n",
        env!("CARGO_PKG_VERSION"),
        Html(v.listen),
        Html(&v.cfg.strategy),
        Uptime(v.uptime().as_secs()),
    );
    for section in SECTIONS {
        section(v, out);
    }
    let _ = write!(
        out,
        "</main>\n<footer>Reloads every {REFRESH_SECONDS} s; rates over the last 10 s, \
         charts over the last {} min · <a href=\"metrics\">metrics</a> · \
         <a href=\"healthz\">healthz</a></footer>\n</body>\n</html>\n",
        POINTS as u64 * REFRESH_SECONDS / 60
    );
}

fn tile(out: &mut String, bad: bool, value: &str, what: &str, note: &str) {
    let class = if bad { "tile bad" } else { "tile" };
    let note = if note.is_empty() {
        String::new()
    } else {
        format!("<em>{note}</em>")
    };
    let _ = writeln!(
        out,
        "<div class=\"{class}\"><b>{value}</b><span>{what}</span>{note}</div>"
    );
}

/// "12.5/s" over the last points, or nothing while there are none.
fn rate_note(points: &std::collections::VecDeque<history::Point>, errors: bool) -> String {
    match recent_rate(points, RATE_POINTS) {
        Some((rate, err)) => Rate(if errors { err } else { rate }).to_string(),
        None => String::new(),
    }
}

fn tcp(v: &View) -> bool {
    v.cfg.mode == Mode::Tcp
}

fn summary(v: &View, out: &mut String) {
    let m = v.metrics;
    let total = v.backends.len();
    let up = v.backends.iter().filter(|b| b.up).count();
    let errors: u64 = m.backends.iter().map(BackendMetrics::errors_total).sum();
    out.push_str("<section class=\"tiles\">\n");
    tile(out, up < total, &format!("{up}/{total}"), "backends up", "");
    tile(
        out,
        false,
        &Count(v.clients_open as u64).to_string(),
        "client connections",
        "",
    );
    let points = v.history.total();
    if tcp(v) {
        let sessions = m.backends.iter().map(|b| b.sessions).sum();
        let note = rate_note(points, false);
        tile(out, false, &Count(sessions).to_string(), "sessions", &note);
    } else {
        // Client requests: a POST counts once, not once per copy or retry.
        let requests = m.client_answers.iter().sum();
        let note = rate_note(points, false);
        tile(out, false, &Count(requests).to_string(), "requests", &note);
    }
    let all: Vec<history::Point> = (0..total)
        .filter_map(|id| v.history.backend(id).back().copied())
        .collect();
    let err_rate = (!all.is_empty()).then(|| all.iter().map(|p| p.errors).sum::<f64>());
    let note = err_rate.map_or(String::new(), |r| Rate(r).to_string());
    tile(
        out,
        false,
        &Count(errors).to_string(),
        "backend errors",
        &note,
    );
    if !tcp(v) {
        let local: u64 = m.local_responses.iter().sum();
        tile(out, false, &Count(local).to_string(), "answered by lb", "");
    }
    out.push_str("</section>\n");
}

/// One column of the backends table: its heading, and how a backend's cell is written.
struct Column {
    title: &'static str,
    cell: fn(&View, BackendId, &mut String),
}

fn columns(mode: Mode) -> Vec<Column> {
    let http = mode == Mode::Http;
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
    ]
}

fn backends(v: &View, out: &mut String) {
    let columns = columns(v.cfg.mode);
    out.push_str("<h2>Backends</h2>\n<table id=\"backends\">\n<thead><tr><th>Backend</th>");
    for c in &columns {
        let _ = write!(out, "<th>{}</th>", c.title);
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (id, b) in v.backends.iter().enumerate() {
        let class = if b.up { "up" } else { "down" };
        let label = Html(&b.label);
        let _ = write!(
            out,
            "<tr class=\"backend {class}\" data-backend=\"{label}\">\
             <td class=\"name\" data-label=\"Backend\">{label}</td>"
        );
        for c in &columns {
            let _ = write!(out, "<td data-label=\"{}\">", c.title);
            (c.cell)(v, id, out);
            out.push_str("</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
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
    let state = if v.backends[id].up { "UP" } else { "DOWN" };
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
        b.active, b.weight, bm.connections
    );
    if !tcp(v) {
        let _ = write!(out, " · {} idle of {}", b.idle.len(), v.cfg.pool_size);
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
    if !v.health.enabled() {
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

/// What lb is allowed and how close it is: connections, descriptors, POSTs in delivery.
fn limits(v: &View, out: &mut String) {
    let cfg = v.cfg;
    out.push_str("<h2>Limits and queues</h2>\n<section class=\"tiles\">\n");
    let full = v.clients_open >= cfg.max_connections;
    tile(
        out,
        full,
        &format!(
            "{} / {}",
            Count(v.clients_open as u64),
            Count(cfg.max_connections as u64)
        ),
        "client connections / limit",
        if full {
            "full: new clients wait (--max-connections)"
        } else {
            "--max-connections"
        },
    );
    let p = Process::read();
    if let (Some(open), Some(max)) = (p.open_fds, p.max_fds) {
        let tight = open.saturating_mul(10) >= max.saturating_mul(9);
        tile(
            out,
            tight,
            &format!("{} / {}", Count(open), Count(max)),
            "file descriptors / limit",
            "",
        );
    }
    if !tcp(v) {
        let full = v.posts_pending >= cfg.max_pending;
        tile(
            out,
            full,
            &format!(
                "{} / {}",
                Count(v.posts_pending as u64),
                Count(cfg.max_pending as u64)
            ),
            "POSTs in delivery / limit",
            if full {
                "full: new POSTs get 503 (--max-pending)"
            } else {
                "--max-pending"
            },
        );
    }
    out.push_str("</section>\n<p class=\"limits\">");
    let _ = write!(out, "Timeouts: connect {}", Flag(cfg.connect_timeout));
    if !tcp(v) {
        let _ = write!(
            out,
            " · client {} · server {}",
            Flag(cfg.client_timeout),
            Flag(cfg.server_timeout)
        );
    }
    let _ = write!(
        out,
        " · idle {} · retries {}",
        Flag(cfg.idle_timeout),
        cfg.retries
    );
    if !tcp(v) {
        let _ = write!(out, " · max body {}", Bytes(cfg.max_body));
    }
    out.push_str("</p>\n");
}

/// POST fan-out: HTTP only.
fn fanout(v: &View, out: &mut String) {
    if tcp(v) {
        return;
    }
    let m = v.metrics;
    let sum = |f: fn(&BackendMetrics) -> u64| m.backends.iter().map(f).sum::<u64>();
    out.push_str("<h2>POST fan-out</h2>\n<section class=\"tiles\">\n");
    for (n, what) in [
        (sum(|b| b.fanout_sent), "copies sent"),
        (sum(|b| b.fanout_succeeded), "succeeded"),
        (sum(|b| b.fanout_retried), "retried"),
        (sum(|b| b.fanout_spent), "gave up"),
        (m.pending_retries, "retries pending"),
    ] {
        tile(out, false, &Count(n).to_string(), what, "");
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests;
