//! `GET /stats`: one self-contained HTML page (inline CSS, no script, no external asset)
//! that reloads itself. A wide screen gets a table; a phone gets one card per backend.

use std::fmt::{self, Write};

use super::View;
use crate::config::Mode;
use crate::metrics::{BackendMetrics, FAILURE_REASONS};

/// Seconds between reloads of the page.
const REFRESH_SECONDS: u32 = 2;

const STYLE: &str = r#"
:root{--bg:#f3f4f7;--fg:#1c2230;--muted:#687082;--line:#e1e4ea;--up:#1b7f3b;--down:#c62828;--downbg:#fdeceb;--warn:#a55a00}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{background:var(--fg);color:#fff;padding:12px 16px}
h1{margin:0;font-size:20px}
h1 small{font-weight:400;color:#aab2c0;font-size:14px}
header p{margin:2px 0 0;color:#c9ced8;font-size:13px;overflow-wrap:anywhere}
main{padding:12px 16px}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin:16px 0 6px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(135px,1fr));gap:8px}
.tile{background:#fff;border:1px solid var(--line);border-radius:8px;padding:8px 12px}
.tile b{display:block;font-size:22px;font-variant-numeric:tabular-nums}
.tile span{color:var(--muted);font-size:12px}
.tile.bad{background:var(--downbg);border-color:var(--down)}
.tile.bad b{color:var(--down)}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid var(--line)}
th,td{padding:7px 10px;text-align:left;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);background:#f8f9fb}
td small{display:block;color:var(--muted);font-size:12px}
td.name{font-weight:600;overflow-wrap:anywhere}
.state{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:700;color:#fff;background:var(--up)}
tr.down{background:var(--downbg)}
tr.down td.name{box-shadow:inset 4px 0 var(--down);color:var(--down)}
tr.down .state{background:var(--down)}
.fail{color:var(--warn);font-weight:600}
footer{color:var(--muted);font-size:12px;padding:0 16px 16px}
footer a{color:inherit}
@media (max-width:720px){
main{padding:10px}
thead{display:none}
table,tbody,tr,td{display:block}
table{border:0;background:none}
tr{background:#fff;border:1px solid var(--line);border-radius:8px;margin-bottom:10px;overflow:hidden}
tr.down{border:2px solid var(--down)}
td{padding:5px 12px;text-align:right}
td::before{content:attr(data-label);float:left;margin-right:12px;color:var(--muted);font-size:12px;padding-top:2px}
td.name{display:block;text-align:left;font-size:16px;background:#f8f9fb}
td.name::before{content:none}
tr.down td.name{box-shadow:none;background:var(--down);color:#fff}
td small{display:inline;margin-left:6px}
}
"#;

/// Text from config or counters, escaped for HTML.
struct Html<'a>(&'a str);

impl fmt::Display for Html<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A count with thousands separated, as people read them.
struct Count(u64);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        for (i, d) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                f.write_char(',')?;
            }
            f.write_char(d)?;
        }
        Ok(())
    }
}

/// Seconds as ms below one second, else as seconds.
struct Secs(f64);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0 * 1000.0;
        match ms {
            ms if ms < 10.0 => write!(f, "{ms:.2} ms"),
            ms if ms < 1000.0 => write!(f, "{ms:.0} ms"),
            _ => write!(f, "{:.2} s", self.0),
        }
    }
}

struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut n = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while n >= 1024.0 && unit + 1 < UNITS.len() {
            n /= 1024.0;
            unit += 1;
        }
        write!(f, "{n:.1} {}", UNITS[unit])
    }
}

struct Uptime(u64);

impl fmt::Display for Uptime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (d, h, m, s) = (
            self.0 / 86_400,
            self.0 / 3600 % 24,
            self.0 / 60 % 60,
            self.0 % 60,
        );
        match (d, h, m) {
            (0, 0, 0) => write!(f, "{s}s"),
            (0, 0, _) => write!(f, "{m}m {s:02}s"),
            (0, _, _) => write!(f, "{h}h {m:02}m"),
            _ => write!(f, "{d}d {h:02}h"),
        }
    }
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

pub fn render(v: &View, out: &mut String) {
    let m = v.metrics;
    let total = v.backends.len();
    let up = v.backends.iter().filter(|b| b.up).count();
    let requests: u64 = m.backends.iter().map(BackendMetrics::requests_total).sum();
    let errors: u64 = m.backends.iter().map(BackendMetrics::errors_total).sum();
    let local: u64 = m.local_responses.iter().sum();
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

    let tile = |out: &mut String, bad: bool, value: &str, what: &str| {
        let class = if bad { "tile bad" } else { "tile" };
        let _ = writeln!(
            out,
            "<div class=\"{class}\"><b>{value}</b><span>{what}</span></div>"
        );
    };
    out.push_str("<section class=\"tiles\">\n");
    tile(out, up < total, &format!("{up}/{total}"), "backends up");
    tile(
        out,
        false,
        &Count(v.clients_open as u64).to_string(),
        "client connections",
    );
    tile(out, false, &Count(requests).to_string(), "requests");
    tile(out, false, &Count(errors).to_string(), "backend errors");
    tile(out, false, &Count(local).to_string(), "answered by lb");
    tile(
        out,
        false,
        &Count(m.pending_retries).to_string(),
        "retries pending",
    );
    out.push_str("</section>\n");

    out.push_str(
        "<h2>Backends</h2>\n<table id=\"backends\">\n<thead><tr><th>Backend</th><th>State</th>\
         <th>Weight</th><th>Active</th><th>Connections</th><th>Requests</th><th>Errors</th>\
         <th>Latency</th><th>Last check</th><th>Traffic</th></tr></thead>\n<tbody>\n",
    );
    for (id, (b, bm)) in v.backends.iter().zip(&m.backends).enumerate() {
        let (class, state) = if b.up { ("up", "UP") } else { ("down", "DOWN") };
        let label = Html(&b.label);
        let _ = write!(
            out,
            "<tr class=\"backend {class}\" data-backend=\"{label}\">\
             <td class=\"name\" data-label=\"Backend\">{label}</td>\
             <td data-label=\"State\"><span class=\"state\">{state}</span></td>\
             <td data-label=\"Weight\">{}</td><td data-label=\"Active\">{}</td>\
             <td data-label=\"Connections\">{} open<small>{} idle</small></td>",
            b.weight,
            b.active,
            bm.connections,
            b.idle.len(),
        );
        let statuses = by_status(bm);
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        let _ = write!(
            out,
            "<td data-label=\"Requests\">{}<small>{}</small></td>",
            Count(bm.requests_total()),
            breakdown(classes.into_iter().zip(statuses)),
        );
        let errors = std::iter::once(("5xx", statuses[4]))
            .chain(FAILURE_REASONS.into_iter().zip(bm.failures));
        let _ = write!(
            out,
            "<td data-label=\"Errors\">{}<small>{}</small></td>",
            Count(bm.errors_total()),
            breakdown(errors).replace('_', " "),
        );
        match (bm.latency.mean_seconds(), bm.latency.quantile(0.5)) {
            (Some(mean), Some(p50)) => {
                let p95 = bm.latency.quantile(0.95).unwrap_or(p50);
                let _ = write!(
                    out,
                    "<td data-label=\"Latency\">{} mean<small>p50 {} · p95 {}</small></td>",
                    Secs(mean),
                    Secs(p50),
                    Secs(p95)
                );
            }
            _ => out.push_str("<td data-label=\"Latency\">–</td>"),
        }
        let (pass, fail) = (v.health.checks_passed[id], v.health.checks_failed[id]);
        let check = match v.health.last_check[id] {
            _ if !v.health.enabled() => "<span>checks off</span>",
            None => "<span>not yet</span>",
            Some(true) => "<span>passed</span>",
            Some(false) => "<span class=\"fail\">failed</span>",
        };
        let _ = writeln!(
            out,
            "<td data-label=\"Last check\">{check}<small>{} passed · {} failed</small></td>\
             <td data-label=\"Traffic\">{} out<small>{} in</small></td></tr>",
            Count(pass),
            Count(fail),
            Bytes(bm.bytes_sent),
            Bytes(bm.bytes_received),
        );
    }
    out.push_str("</tbody>\n</table>\n");

    let sum = |f: fn(&BackendMetrics) -> u64| m.backends.iter().map(f).sum::<u64>();
    out.push_str("<h2>POST fan-out</h2>\n<section class=\"tiles\">\n");
    for (what, n) in [
        ("copies sent", sum(|b| b.fanout_sent)),
        ("delivered", sum(|b| b.fanout_delivered)),
        ("refused", sum(|b| b.fanout_refused)),
        ("retried", sum(|b| b.fanout_retried)),
        ("gave up", sum(|b| b.fanout_spent)),
        ("retries pending", m.pending_retries),
        ("writes owed", m.writes_owed),
    ] {
        tile(out, false, &Count(n).to_string(), what);
    }
    let stuck = m.oldest_owed_seconds >= 60.0;
    tile(
        out,
        stuck,
        &Secs(m.oldest_owed_seconds).to_string(),
        "oldest owed",
    );
    if let Some(j) = &m.journal {
        let sync = j
            .stats
            .sync_latency
            .mean_seconds()
            .map_or("–".into(), |s| Secs(s).to_string());
        tile(
            out,
            j.stats.failures > 0,
            &Bytes(j.bytes_on_disk).to_string(),
            "journal on disk",
        );
        tile(
            out,
            false,
            &Count(j.stats.syncs).to_string(),
            "journal syncs",
        );
        tile(out, false, &sync, "mean sync");
    }
    let _ = write!(
        out,
        "</section>\n</main>\n<footer>Reloads every {REFRESH_SECONDS} s · \
         <a href=\"metrics\">metrics</a> · <a href=\"healthz\">healthz</a></footer>\n\
         </body>\n</html>\n"
    );
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::admin::tests::view_fixture;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            Html("<a href=\"x\">O'Neil & co</a>").to_string(),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Neil &amp; co&lt;/a&gt;"
        );
    }

    #[test]
    fn numbers_read_like_people_write_them() {
        assert_eq!(Count(0).to_string(), "0");
        assert_eq!(Count(999).to_string(), "999");
        assert_eq!(Count(1_234_567).to_string(), "1,234,567");
        assert_eq!(Bytes(512).to_string(), "512 B");
        assert_eq!(Bytes(1536).to_string(), "1.5 KiB");
        assert_eq!(Bytes(3 << 30).to_string(), "3.0 GiB");
        assert_eq!(Secs(0.0012).to_string(), "1.20 ms");
        assert_eq!(Secs(0.25).to_string(), "250 ms");
        assert_eq!(Secs(2.5).to_string(), "2.50 s");
        assert_eq!(Uptime(59).to_string(), "59s");
        assert_eq!(Uptime(3725).to_string(), "1h 02m");
        assert_eq!(Uptime(90_000).to_string(), "1d 01h");
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
        let mut page = String::new();
        render(&fx.view(), &mut page);
        assert!(page.contains("<title>lb · 1 DOWN</title>"), "{page}");
        assert!(page.contains("http-equiv=\"refresh\""));
        assert!(page.contains("name=\"viewport\""));
        assert!(page.contains("up 1m 05s"));
        assert!(page.contains("<td class=\"name\" data-label=\"Backend\">a&quot;b</td>"));
        assert!(
            !page.contains("a\"b"),
            "the raw label never reaches the page"
        );
        let row = page
            .lines()
            .find(|l| l.contains("data-backend=\"zz\""))
            .unwrap();
        assert!(row.contains("class=\"backend down\""), "{row}");
        assert!(row.contains(">DOWN<"), "{row}");
        let row = page
            .lines()
            .find(|l| l.contains("data-backend=\"a&quot;b\""))
            .unwrap();
        assert!(row.contains(">UP<") && row.contains("2xx 7"), "{row}");
        for external in ["src=", "<link", "<script", "http://", "https://"] {
            assert!(
                !page.contains(external),
                "{external} in a self-contained page"
            );
        }
    }
}
