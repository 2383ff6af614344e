//! The status page's section on the instances sharing a PostgreSQL store: one row each
//! (release, where it listens, last heartbeat, owed copies), and the copies owed per backend over all.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use super::format::{Count, Html};
use crate::admin::View;

pub fn cluster(v: &View, out: &mut String) {
    let Some(c) = v.cluster else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    out.push_str(
        "<h2>Instances sharing the store</h2>\n<table id=\"cluster\">\n\
         <tr><th>instance</th><th>version</th><th>listens on</th><th>last heartbeat</th>\
         <th>lease</th>\
         <th>owed copies</th></tr>\n",
    );
    for i in &c.instances {
        let ago = i.heartbeat.map_or("–".into(), |at| {
            format!("{:.0} s ago", (now - at).max(0.0))
        });
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{ago}</td><td>{}</td><td>{}</td></tr>",
            Html(&i.name),
            Html(i.version.as_deref().unwrap_or("–")),
            Html(
                i.address
                    .as_deref()
                    .filter(|a| !a.is_empty())
                    .unwrap_or("–")
            ),
            if i.alive { "held" } else { "ran out" },
            Count(u64::try_from(i.owed).unwrap_or(0)),
        );
    }
    out.push_str("</table>\n");
    if c.owed.is_empty() {
        return;
    }
    out.push_str(
        "<table id=\"cluster-owed\">\n<tr><th>backend</th><th>owed copies, all instances</th></tr>\n",
    );
    for (backend, n) in &c.owed {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td></tr>",
            Html(backend),
            Count(u64::try_from(*n).unwrap_or(0))
        );
    }
    out.push_str("</table>\n");
}
