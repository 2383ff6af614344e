//! The fan-out's gauges and the journal's counters in Prometheus text format.

use std::fmt::Write;

use super::Metrics;
use super::prometheus::{family, samples};

pub fn render(m: &Metrics, out: &mut String) {
    family(
        out,
        "lb_fanout_writes_owed",
        "gauge",
        "POSTs still owed to at least one backend (refreshed once a second).",
    );
    let _ = writeln!(out, "lb_fanout_writes_owed {}", m.writes_owed);
    family(
        out,
        "lb_fanout_oldest_owed_seconds",
        "gauge",
        "Age of the oldest POST still owed to a backend; 0 when none is.",
    );
    let _ = writeln!(
        out,
        "lb_fanout_oldest_owed_seconds {}",
        m.oldest_owed_seconds
    );
    let Some(j) = &m.journal else {
        return;
    };
    let s = &j.stats;
    for (name, kind, help, value) in [
        (
            "lb_journal_bytes",
            "gauge",
            "Bytes in the journal's segments on disk.",
            j.bytes_on_disk,
        ),
        (
            "lb_journal_written_bytes_total",
            "counter",
            "Bytes written to the journal.",
            s.bytes,
        ),
        (
            "lb_journal_records_total",
            "counter",
            "Records made: jobs and outcomes.",
            s.records,
        ),
        (
            "lb_journal_syncs_total",
            "counter",
            "fdatasync calls on the journal.",
            s.syncs,
        ),
        (
            "lb_journal_write_failures_total",
            "counter",
            "Journal writes that failed (disk full, I/O error); new POSTs got 503 for a while.",
            s.failures,
        ),
        (
            "lb_journal_damaged_records_total",
            "counter",
            "Damaged records skipped when the journal was read at start.",
            s.corrupt,
        ),
        (
            "lb_journal_torn_tails_total",
            "counter",
            "Incomplete last records (a crash mid-write) dropped when the journal was read at start.",
            s.torn,
        ),
        (
            "lb_journal_resumed_writes_total",
            "counter",
            "Writes still owed that were resumed from the journal at start.",
            s.replayed,
        ),
    ] {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    family(
        out,
        "lb_journal_sync_duration_seconds",
        "histogram",
        "Time of one fdatasync of the journal.",
    );
    samples(out, "lb_journal_sync_duration_seconds", "", &s.sync_latency);
}
