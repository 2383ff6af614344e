//! The fan-out's gauges and the journal's counters in Prometheus text format.

use std::fmt::Write;

use super::COPY_PLACES;
use super::prometheus::{family, samples};
use crate::admin::View;

pub fn render(v: &View, out: &mut String) {
    let m = v.metrics;
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
    family(
        out,
        "lb_fanout_owed_bytes",
        "gauge",
        "Request bytes (head and body) of the POSTs still owed, against --max-pending-bytes (refreshed once a second).",
    );
    let _ = writeln!(out, "lb_fanout_owed_bytes {}", m.owed_bytes);
    family(
        out,
        "lb_fanout_refused_full_total",
        "counter",
        "POSTs answered 503 because the writes still owed had reached --max-pending or --max-pending-bytes.",
    );
    let _ = writeln!(out, "lb_fanout_refused_full_total {}", m.posts_refused_full);
    family(
        out,
        "lb_fanout_removed_given_up_total",
        "counter",
        "POST copies owed to removed backends and given up (DELETE ?owed=give-up or \
         --leave-timeout); each is also in lb_fanout_copies_total{result=\"spent\"} while \
         its backend is listed.",
    );
    let _ = writeln!(
        out,
        "lb_fanout_removed_given_up_total {}",
        m.removed_given_up
    );
    family(
        out,
        "lb_fanout_buffered_bytes",
        "gauge",
        "Bytes held for POSTs in the whole process: bodies still arriving and refused answers kept for their client, against --max-buffered-bytes (refreshed once a second).",
    );
    let _ = writeln!(out, "lb_fanout_buffered_bytes {}", m.buffered_bytes);
    family(
        out,
        "lb_fanout_refused_buffers_total",
        "counter",
        "POSTs answered 503 because the bytes held for POSTs had reached --max-buffered-bytes.",
    );
    let _ = writeln!(
        out,
        "lb_fanout_refused_buffers_total {}",
        m.posts_refused_buffers
    );
    family(
        out,
        "lb_client_too_slow_total",
        "counter",
        "Clients cut off for moving less than --client-min-rate bytes a second over a --client-timeout window: 408 while sending a request body, a close while taking an answer lb held.",
    );
    let _ = writeln!(out, "lb_client_too_slow_total {}", m.slow_clients);
    per_backend(v, out);
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

/// Where each backend's owed copies are, how old its oldest owed write is, and how long
/// its delivered copies took.
fn per_backend(v: &View, out: &mut String) {
    family(
        out,
        "lb_fanout_backend_copies_owed",
        "gauge",
        "POST copies owed to the backend, by place: in flight, in backoff after a failed attempt, waiting in its lane, parked while lb cannot reach it (refreshed once a second).",
    );
    for (id, _, bm) in v.listed() {
        for (place, n) in COPY_PLACES.iter().zip(bm.copies_owed) {
            let _ = writeln!(
                out,
                "lb_fanout_backend_copies_owed{{{},place=\"{place}\"}} {n}",
                v.labels(id)
            );
        }
    }
    family(
        out,
        "lb_fanout_backend_oldest_owed_seconds",
        "gauge",
        "Age of the oldest POST still owed to the backend; 0 when none is.",
    );
    for (id, _, bm) in v.listed() {
        let _ = writeln!(
            out,
            "lb_fanout_backend_oldest_owed_seconds{{{}}} {}",
            v.labels(id),
            bm.oldest_owed_seconds
        );
    }
    family(
        out,
        "lb_fanout_delivery_seconds",
        "histogram",
        "From a POST's arrival until its copy was delivered to the backend, retries and waits included.",
    );
    for (id, _, bm) in v.listed() {
        let label = v.labels(id).to_string();
        samples(out, "lb_fanout_delivery_seconds", &label, &bm.delivery);
    }
}
