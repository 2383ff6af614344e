//! Adding one worker's counters to another's, for `/metrics` and `/stats` with several
//! workers. Runs when the admin listener renders a page, never per request.

use super::{BackendMetrics, Histogram, Metrics};

impl Histogram {
    fn add(&mut self, other: &Histogram) {
        for (n, m) in self.buckets.iter_mut().zip(&other.buckets) {
            *n += m;
        }
        self.sum_seconds += other.sum_seconds;
        self.count += other.count;
    }
}

impl BackendMetrics {
    fn add(&mut self, o: &BackendMetrics) {
        for (by_status, other) in self.requests.iter_mut().zip(&o.requests) {
            for (n, m) in by_status.iter_mut().zip(other) {
                *n += m;
            }
        }
        for (n, m) in self.failures.iter_mut().zip(&o.failures) {
            *n += m;
        }
        self.bytes_sent += o.bytes_sent;
        self.bytes_received += o.bytes_received;
        self.latency.add(&o.latency);
        self.connections += o.connections;
        self.h2_connections += o.h2_connections;
        self.fanout_sent += o.fanout_sent;
        self.fanout_delivered += o.fanout_delivered;
        self.fanout_refused += o.fanout_refused;
        self.fanout_retried += o.fanout_retried;
        self.fanout_spent += o.fanout_spent;
        for (n, m) in self.copies_owed.iter_mut().zip(o.copies_owed) {
            *n += m;
        }
        self.oldest_owed_seconds = self.oldest_owed_seconds.max(o.oldest_owed_seconds);
        self.delivery.add(&o.delivery);
        self.sessions += o.sessions;
        self.session_duration.add(&o.session_duration);
    }
}

impl Metrics {
    /// Adds another worker's counters to these. Backend slots are this one's: a slot the
    /// other worker has not heard of yet counts nothing there, one it still has but this
    /// one dropped is left out.
    pub fn add(&mut self, o: &Metrics) {
        for (b, other) in self.backends.iter_mut().zip(&o.backends) {
            b.add(other);
        }
        for (n, m) in self.local_responses.iter_mut().zip(o.local_responses) {
            *n += m;
        }
        for (n, m) in self.client_answers.iter_mut().zip(o.client_answers) {
            *n += m;
        }
        self.client_connections_total += o.client_connections_total;
        self.h2_connections_total += o.h2_connections_total;
        self.h2_streams_total += o.h2_streams_total;
        self.h2_connection_errors_total += o.h2_connection_errors_total;
        self.pending_retries += o.pending_retries;
        self.proxy_headers_refused += o.proxy_headers_refused;
        self.upgrades_total += o.upgrades_total;
        self.tunnels_open += o.tunnels_open;
        self.writes_owed += o.writes_owed;
        self.oldest_owed_seconds = self.oldest_owed_seconds.max(o.oldest_owed_seconds);
        self.owed_bytes += o.owed_bytes;
        self.posts_refused_full += o.posts_refused_full;
        self.removed_given_up += o.removed_given_up;
        self.unrouted += o.unrouted;
        if self.routed.len() < o.routed.len() {
            self.routed.resize(o.routed.len(), 0);
        }
        for (n, m) in self.routed.iter_mut().zip(&o.routed) {
            *n += m;
        }
        // Each worker reads the one process-wide count: the highest reading, not a sum.
        self.buffered_bytes = self.buffered_bytes.max(o.buffered_bytes);
        self.posts_refused_buffers += o.posts_refused_buffers;
        self.slow_clients += o.slow_clients;
        self.journal = match (self.journal.take(), &o.journal) {
            (Some(mut j), Some(other)) => {
                let (s, t) = (&mut j.stats, &other.stats);
                s.bytes += t.bytes;
                s.records += t.records;
                s.syncs += t.syncs;
                s.sync_latency.add(&t.sync_latency);
                s.failures += t.failures;
                s.corrupt += t.corrupt;
                s.torn += t.torn;
                s.replayed += t.replayed;
                j.bytes_on_disk += other.bytes_on_disk;
                Some(j)
            }
            (j, other) => j.or_else(|| other.clone()),
        };
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::http::head::Method;

    #[test]
    fn two_workers_add_up() {
        let now = Instant::now();
        let mut a = Metrics::new(2, now, Duration::from_secs(30));
        let mut b = Metrics::new(1, now, Duration::from_secs(30));
        a.request(0, Method::Get, 200, Duration::from_millis(1));
        b.request(0, Method::Get, 200, Duration::from_millis(2));
        b.request(0, Method::Post, 503, Duration::from_millis(3));
        a.client_answer(200);
        b.client_answer(200);
        b.client_connections_total = 4;
        b.oldest_owed_seconds = 2.5;
        b.backends[0].copies_owed = [1, 2, 3, 4];
        b.backends[0].oldest_owed_seconds = 7.0;
        a.backends[0].copies_owed = [1, 0, 0, 1];
        b.backends[0].delivery.observe(Duration::from_secs(3));
        a.add(&b);
        let bm = &a.backends[0];
        assert_eq!(bm.requests_total(), 3);
        assert_eq!(bm.latency.count, 3);
        assert_eq!(bm.errors_total(), 1);
        assert_eq!(
            a.backends[1].requests_total(),
            0,
            "a slot b has not heard of"
        );
        assert_eq!(a.client_answers[1], 2);
        assert_eq!(a.client_connections_total, 4);
        assert_eq!(a.oldest_owed_seconds, 2.5, "the oldest, not a sum");
        assert_eq!(bm.copies_owed, [2, 2, 3, 5]);
        assert_eq!(bm.oldest_owed_seconds, 7.0);
        assert_eq!(bm.delivery.count, 1);
    }
}
