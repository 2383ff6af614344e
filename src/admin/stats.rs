//! `GET /stats`: one self-contained HTML page (inline CSS and SVG, no script, no external
//! asset) that reloads itself. A wide screen gets a table; a phone gets one card per backend.
//!
//! The page is a list of sections (`SECTIONS`) and the backends table a list of columns
//! (`columns`): a new section or a new column (a button, say) is one function added there.

use std::fmt::Write;

use super::View;
use crate::config::model::Protocol;
use crate::metrics::BackendMetrics;
use crate::metrics::history::{self, POINTS, recent_rate};
use crate::metrics::process::Process;
use crate::pool::{Pool, PoolId};

mod chart;
mod cluster;
mod columns;
pub(super) mod format;

use columns::columns;
use format::{Bytes, Count, Flag, Html, Rate, Secs, Uptime};

/// Seconds between reloads of the page: one point of the charts.
const REFRESH_SECONDS: u64 = history::EVERY.as_secs();
/// Rates are the mean of this many points (10 s).
pub(super) const RATE_POINTS: usize = 5;

const STYLE: &str = include_str!("stats/style.css");

/// The page, top to bottom. Each section decides for itself whether it shows in a mode.
const SECTIONS: &[fn(&View, &mut String)] =
    &[summary, routes, backends, limits, fanout, cluster::cluster];

/// How many listed backends are up, of how many (removed ones finishing are not counted).
fn up_of(v: &View) -> (usize, usize) {
    let listed = v.listed().filter(|(_, b, _)| b.role.is_member());
    listed.fold((0, 0), |(up, all), (_, b, _)| {
        (up + usize::from(b.up), all + 1)
    })
}

pub fn render(v: &View, out: &mut String) {
    let (up, total) = up_of(v);
    let title = if up == total {
        format!("all {total} up")
    } else {
        format!("{} DOWN", total - up)
    };
    let what = match (v.pools, v.fronts) {
        ([pool], [_]) => format!(
            "{} on {} · {}",
            protocol(pool.protocol),
            Html(v.listen),
            Html(&pool.settings.strategy)
        ),
        (pools, fronts) => format!("{} listeners · {} pools", fronts.len(), pools.len()),
    };
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\n\
         <title>lb · {title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header><h1>lb <small>{}</small></h1>\
         <p>{what} · up {}</p></header>\n<main>\n",
        env!("CARGO_PKG_VERSION"),
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

fn protocol(p: Protocol) -> &'static str {
    match p {
        Protocol::Http => "HTTP",
        Protocol::Tcp => "TCP",
    }
}

pub(super) fn tcp(v: &View) -> bool {
    v.tcp_only()
}

fn summary(v: &View, out: &mut String) {
    let m = v.metrics;
    let (up, total) = up_of(v);
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
    let all: Vec<history::Point> = v
        .listed()
        .filter_map(|(id, _, _)| v.history.backend(id).back().copied())
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
    tile(
        out,
        false,
        &Count(m.tunnels_open).to_string(),
        "upgrade tunnels",
        "",
    );
    out.push_str("</section>\n");
}

/// A config file's routes in the order they are tried, with the requests each took.
fn routes(v: &View, out: &mut String) {
    if v.flags || tcp(v) {
        return;
    }
    out.push_str(
        "<h2>Routes <small>first match wins</small></h2>\n<table id=\"routes\">\n\
         <thead><tr><th>Route</th><th>Matches</th><th>Does</th><th>Requests</th></tr></thead>\n\
         <tbody>\n",
    );
    let m = v.metrics;
    for (i, name) in v.routes.iter().enumerate() {
        let (matches, does) = v.described.get(i).map_or(("", ""), |(m, d)| (m, d));
        let n = m.routed.get(i).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "<tr data-route=\"{name}\"><td class=\"name\" data-label=\"Route\">{name}</td>\
             <td data-label=\"Matches\">{}</td><td data-label=\"Does\">{}</td>\
             <td data-label=\"Requests\">{}</td></tr>",
            Html(matches),
            Html(does),
            Count(n),
            name = Html(name),
        );
    }
    let _ = writeln!(
        out,
        "<tr data-route=\"\"><td class=\"name\" data-label=\"Route\"><em>none</em></td>\
         <td data-label=\"Matches\">what no route took</td>\
         <td data-label=\"Does\">404 from lb</td><td data-label=\"Requests\">{}</td></tr>",
        Count(m.unrouted)
    );
    out.push_str("</tbody>\n</table>\n");
}

/// One table per pool (one called Backends with the flags' single pool).
fn backends(v: &View, out: &mut String) {
    for (pool, p) in v.pools.iter().enumerate() {
        if v.pools.len() == 1 {
            out.push_str("<h2>Backends</h2>\n<table id=\"backends\">\n");
        } else {
            let _ = write!(
                out,
                "<h2>Pool {} <small>{} · {}</small></h2>\n\
                 <table class=\"backends\" data-pool=\"{}\">\n",
                Html(p.name()),
                protocol(p.protocol),
                Html(&p.settings.strategy),
                Html(p.name())
            );
        }
        pool_table(v, pool, out);
        let _ = writeln!(out, "<p class=\"limits\">{}</p>", PoolLimits(p));
    }
}

fn pool_table(v: &View, pool: PoolId, out: &mut String) {
    let columns = columns(v.pools[pool].protocol);
    out.push_str("<thead><tr><th>Backend</th>");
    for c in &columns {
        let _ = write!(out, "<th>{}</th>", c.title);
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (id, b, _) in v.listed().filter(|(_, b, _)| b.pool == pool) {
        let class = v.health.known(id, b.up).name();
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

/// A tile for `used` of `limit`, set by `flag`; red when full, with what then happens.
fn limit_tile(out: &mut String, (used, limit): (usize, usize), what: &str, flag: &str, full: &str) {
    let is_full = used >= limit;
    let note = if is_full {
        format!("full: {full} ({flag})")
    } else {
        flag.to_string()
    };
    let value = format!("{} / {}", Count(used as u64), Count(limit as u64));
    tile(out, is_full, &value, what, &note);
}

/// What lb is allowed and how close it is: connections, descriptors, POSTs in delivery.
fn limits(v: &View, out: &mut String) {
    let cfg = v.cfg;
    out.push_str("<h2>Limits and queues</h2>\n<section class=\"tiles\">\n");
    limit_tile(
        out,
        (v.clients_open, cfg.max_connections),
        "client connections / limit",
        "--max-connections",
        "new clients wait",
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
        limit_tile(
            out,
            (v.posts_pending, cfg.max_pending),
            "POSTs in delivery / limit",
            "--max-pending",
            "new POSTs get 503",
        );
        // Refreshed once a second, and a POST is refused before it would pass the limit:
        // near it counts as full.
        let (owed, limit) = (v.metrics.owed_bytes, cfg.max_pending_bytes);
        let near = owed.saturating_mul(10) >= limit.saturating_mul(9);
        let note = if near {
            "near full: new POSTs get 503 (--max-pending-bytes)"
        } else {
            "--max-pending-bytes"
        };
        let value = format!("{} / {}", Bytes(owed), Bytes(limit));
        tile(out, near, &value, "POST bytes in delivery / limit", note);
    }
    out.push_str("</section>\n<p class=\"limits\">");
    if !tcp(v) {
        let _ = write!(out, "Timeouts: client {} · ", Flag(cfg.client_timeout));
    } else {
        out.push_str("Timeouts: ");
    }
    let _ = write!(out, "idle {}", Flag(cfg.idle_timeout));
    if !tcp(v) {
        let _ = write!(out, " · max body {}", Bytes(cfg.max_body));
    }
    out.push_str("</p>\n");
}

/// A pool's timeouts and retries, under its table.
struct PoolLimits<'a>(&'a Pool);

impl std::fmt::Display for PoolLimits<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.0.settings;
        write!(f, "Connect {}", Flag(s.connect_timeout))?;
        if self.0.protocol == Protocol::Http {
            write!(f, " · server {}", Flag(s.server_timeout))?;
        }
        write!(f, " · retries {}", s.retries)
    }
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
        (sum(|b| b.fanout_delivered), "delivered"),
        (sum(|b| b.fanout_refused), "refused"),
        (sum(|b| b.fanout_retried), "retried"),
        (sum(|b| b.fanout_spent), "gave up"),
        (m.pending_retries, "retries pending"),
        (m.writes_owed, "writes owed"),
    ] {
        tile(out, false, &Count(n).to_string(), what, "");
    }
    let oldest = Secs(m.oldest_owed_seconds).to_string();
    tile(
        out,
        m.oldest_owed_seconds >= 60.0,
        &oldest,
        "oldest owed",
        "",
    );
    if let Some(j) = &m.journal {
        let on_disk = Bytes(j.bytes_on_disk).to_string();
        let failed = j.stats.failures > 0;
        let note = if failed {
            "writes failed: see the log"
        } else {
            ""
        };
        tile(out, failed, &on_disk, "journal on disk", note);
        let sync = j.stats.sync_latency.mean_seconds();
        let sync = sync.map_or("–".into(), |s| Secs(s).to_string());
        let syncs = format!("{} syncs", Count(j.stats.syncs));
        tile(out, false, &sync, "mean journal sync", &syncs);
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests;
