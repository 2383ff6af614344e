//! Counters kept by the event loop. Plain integers in plain structs: one thread owns
//! them, so recording costs no lock and no allocation.

use std::time::{Duration, Instant, SystemTime};

use crate::http::head::Method;

mod cluster;
mod fanout;
pub mod history;
pub mod process;
pub mod prometheus;
mod sum;

/// Upper bounds of the latency histogram buckets, in seconds (Prometheus `le`): from
/// 100 µs (answers on a local network are mostly well under a millisecond), on past 10 s
/// as far as the longest a request may wait (see `latency_bounds`).
const LATENCY_STEPS: [f64; 26] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
];

/// Bounds of the TCP session duration histogram, in seconds: sessions last from a request
/// to days.
pub const SESSION_BOUNDS: [f64; 12] = [
    0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 86400.0,
];

/// Bounds of the histogram of how long a POST copy took to be delivered, in seconds: from
/// at once, through backoffs and short outages (seconds), to long ones (hours).
pub const DELIVERY_BOUNDS: [f64; 16] = [
    0.001, 0.01, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 300.0, 1800.0, 3600.0,
    86400.0,
];

/// Where the POST copies still owed to a backend are, in `/metrics` labels.
pub const COPY_PLACES: [&str; 4] = ["in_flight", "backoff", "waiting", "parked"];

/// The latency bounds up to the first one at or past `longest`, and at least up to 10 s:
/// a histogram whose top bucket is below the server timeout cannot tell a slow backend
/// from one that timed out.
pub fn latency_bounds(longest: Duration) -> &'static [f64] {
    let s = longest.as_secs_f64();
    let top = LATENCY_STEPS
        .iter()
        .position(|&b| b >= s)
        .unwrap_or(LATENCY_STEPS.len() - 1);
    &LATENCY_STEPS[..=top.max(15)]
}

#[derive(Debug, Clone)]
pub struct Histogram {
    pub bounds: &'static [f64],
    /// Not cumulative: `buckets[i]` counts samples in (bound[i-1], bound[i]]; the last is +Inf.
    pub buckets: Vec<u64>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: vec![0; bounds.len() + 1],
            sum_seconds: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(self.bounds.len());
        self.buckets[i] += 1;
        self.sum_seconds += s;
        self.count += 1;
    }

    /// Samples at or below each bound, then all of them: what Prometheus `le` buckets count.
    pub fn cumulative(&self) -> impl Iterator<Item = u64> + '_ {
        self.buckets.iter().scan(0, |total, n| {
            *total += n;
            Some(*total)
        })
    }

    pub fn mean_seconds(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_seconds / self.count as f64)
    }

    pub fn quantile(&self, q: f64) -> Option<f64> {
        quantile(self.bounds, &self.buckets, q)
    }
}

/// The `q` quantile of samples counted per bucket (not cumulative), interpolated inside its
/// bucket as Prometheus' `histogram_quantile` does; a quantile past the last bound reports
/// that bound. `None` without samples.
pub fn quantile(bounds: &[f64], buckets: &[u64], q: f64) -> Option<f64> {
    let count: u64 = buckets.iter().sum();
    if count == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * count as f64;
    let mut below = 0;
    for (i, &n) in buckets.iter().enumerate() {
        let Some(&upper) = bounds.get(i) else {
            break;
        };
        if n > 0 && (below + n) as f64 >= rank {
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            return Some(lower + (upper - lower) * (rank - below as f64) / n as f64);
        }
        below += n;
    }
    bounds.last().copied()
}

/// Method classes in metric labels.
pub const METHOD_CLASSES: [&str; 4] = ["GET", "HEAD", "POST", "other"];
/// Failure reasons in metric labels.
pub const FAILURE_REASONS: [&str; 4] = ["connect", "timeout", "reset", "bad_response"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Connect = 0,
    Timeout = 1,
    Reset = 2,
    BadResponse = 3,
}

pub fn method_class(m: Method) -> usize {
    match m {
        Method::Get => 0,
        Method::Head => 1,
        Method::Post => 2,
        Method::Other => 3,
    }
}

/// 0 for 1xx … 4 for 5xx.
pub fn status_class(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

#[derive(Debug, Clone)]
pub struct BackendMetrics {
    /// By method class, then status class.
    pub requests: [[u64; 5]; 4],
    pub failures: [u64; 4],
    /// Bytes sent to the backend and received from it (TCP mode too).
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub latency: Histogram,
    /// Connections to this backend open now.
    pub connections: u64,
    /// Of them, HTTP/2 connections (`protocol = "h2"`), which carry many exchanges; each
    /// exchange's stream counts in `connections` too.
    pub h2_connections: u64,
    /// POST copies: attempts sent, and what became of them.
    pub fanout_sent: u64,
    pub fanout_delivered: u64,
    pub fanout_refused: u64,
    pub fanout_retried: u64,
    pub fanout_spent: u64,
    /// Copies owed to the backend now, by place (`COPY_PLACES`: in flight, in backoff,
    /// waiting in its lane, parked while lb cannot reach it), and the age of the
    /// oldest POST owed to it: refreshed once a second.
    pub copies_owed: [u64; 4],
    pub oldest_owed_seconds: f64,
    /// From a POST's arrival to its copy's delivery here.
    pub delivery: Histogram,
    /// TCP mode: sessions paired with this backend, and how long the finished ones lasted.
    pub sessions: u64,
    pub session_duration: Histogram,
}

impl BackendMetrics {
    pub fn new(latency_bounds: &'static [f64]) -> Self {
        BackendMetrics {
            requests: [[0; 5]; 4],
            failures: [0; 4],
            bytes_sent: 0,
            bytes_received: 0,
            latency: Histogram::new(latency_bounds),
            connections: 0,
            h2_connections: 0,
            fanout_sent: 0,
            fanout_delivered: 0,
            fanout_refused: 0,
            fanout_retried: 0,
            fanout_spent: 0,
            copies_owed: [0; 4],
            oldest_owed_seconds: 0.0,
            delivery: Histogram::new(&DELIVERY_BOUNDS),
            sessions: 0,
            session_duration: Histogram::new(&SESSION_BOUNDS),
        }
    }

    pub fn requests_total(&self) -> u64 {
        self.requests.iter().flatten().sum()
    }

    pub fn errors_total(&self) -> u64 {
        self.requests
            .iter()
            .map(|by_status| by_status[4])
            .sum::<u64>()
            + self.failures.iter().sum::<u64>()
    }
}

#[derive(Debug, Clone)]
pub struct Metrics {
    pub started: Instant,
    /// The same moment on the wall clock, for `process_start_time_seconds`.
    pub started_wall: SystemTime,
    pub backends: Vec<BackendMetrics>,
    /// The latency buckets every backend's histogram has, for backends that join later.
    latency_bounds: &'static [f64],
    /// Responses lb made itself without a backend (400, 408, 413, 414, 431, 503), by status class.
    pub local_responses: [u64; 5],
    /// Client requests answered, whoever answered (a backend, a fan-out copy, lb), by
    /// status class: a POST counts once however many copies it took.
    pub client_answers: [u64; 5],
    pub client_connections_total: u64,
    /// Client connections that spoke HTTP/2, the streams they opened, and those ended by
    /// a connection error of the client's (a GOAWAY other than NO_ERROR).
    pub h2_connections_total: u64,
    pub h2_streams_total: u64,
    pub h2_connection_errors_total: u64,
    /// POST copies waiting for a retry or for their backend (maintained by the fan-out code).
    pub pending_retries: u64,
    /// `--accept-proxy` connections closed for a missing, malformed or untrusted header.
    pub proxy_headers_refused: u64,
    /// HTTP exchanges that a 101 turned into a byte tunnel, and those open now.
    pub upgrades_total: u64,
    pub tunnels_open: u64,
    /// Reloads of the backend list (SIGHUP): applied, and refused for a bad file.
    pub reloads: u64,
    pub reloads_failed: u64,
    /// POSTs still owed to some backend and the age of the oldest, and the journal's
    /// counters: refreshed once a second.
    pub writes_owed: u64,
    pub oldest_owed_seconds: f64,
    /// Request bytes of the writes owed (refreshed once a second), and the POSTs refused
    /// because --max-pending or --max-pending-bytes was reached.
    pub owed_bytes: u64,
    pub posts_refused_full: u64,
    /// POST copies given up because their backend was removed and its owed copies were
    /// (`fanout::abandon`): kept here, as the backend's own counters leave with it.
    pub removed_given_up: u64,
    /// Requests each route took, by its place in the site's list, and those no route took.
    pub routed: Vec<u64>,
    pub unrouted: u64,
    /// Bytes held for POSTs in the whole process (bodies arriving, answers kept), read
    /// from the process-wide count once a second; POSTs refused at --max-buffered-bytes.
    pub buffered_bytes: u64,
    pub posts_refused_buffers: u64,
    /// Clients cut off for moving less than --client-min-rate over a --client-timeout.
    pub slow_clients: u64,
    pub journal: Option<JournalMetrics>,
}

/// The journal's counters, as /metrics and /stats show them.
#[derive(Debug, Clone)]
pub struct JournalMetrics {
    pub stats: crate::journal::Stats,
    pub bytes_on_disk: u64,
}

impl Metrics {
    /// `longest` is the longest a request may wait for its answer: the top latency bucket.
    pub fn new(backends: usize, started: Instant, longest: Duration) -> Self {
        let bounds = latency_bounds(longest);
        Metrics {
            started,
            started_wall: SystemTime::now(),
            backends: vec![BackendMetrics::new(bounds); backends],
            latency_bounds: bounds,
            local_responses: [0; 5],
            client_answers: [0; 5],
            client_connections_total: 0,
            h2_connections_total: 0,
            h2_streams_total: 0,
            h2_connection_errors_total: 0,
            pending_retries: 0,
            proxy_headers_refused: 0,
            upgrades_total: 0,
            tunnels_open: 0,
            reloads: 0,
            reloads_failed: 0,
            writes_owed: 0,
            oldest_owed_seconds: 0.0,
            owed_bytes: 0,
            posts_refused_full: 0,
            removed_given_up: 0,
            routed: Vec::new(),
            unrouted: 0,
            buffered_bytes: 0,
            posts_refused_buffers: 0,
            slow_clients: 0,
            journal: None,
        }
    }

    /// The routes were reloaded: each count follows its route's name to its new place,
    /// and the counts of routes that are gone are dropped.
    /// Linear in the routes: a file may have thousands.
    pub fn routes_renamed(&mut self, before: &[String], after: &[String]) {
        let counts: std::collections::HashMap<&str, u64> = before
            .iter()
            .zip(&self.routed)
            .map(|(name, &n)| (name.as_str(), n))
            .collect();
        self.routed = after
            .iter()
            .map(|n| counts.get(n.as_str()).copied().unwrap_or(0))
            .collect();
    }

    /// Request routed by route `index`.
    pub fn route_taken(&mut self, index: usize) {
        if index >= self.routed.len() {
            self.routed.resize(index + 1, 0);
        }
        self.routed[index] += 1;
    }

    /// A backend joined slot `id`: its counters start at zero.
    pub fn place(&mut self, id: usize) {
        let fresh = BackendMetrics::new(self.latency_bounds);
        if id >= self.backends.len() {
            self.backends.resize(id + 1, fresh.clone());
        }
        self.backends[id] = fresh;
    }

    /// A backend answered (or lb answered for it with 502/504).
    pub fn request(&mut self, backend: usize, method: Method, status: u16, took: Duration) {
        let b = &mut self.backends[backend];
        b.requests[method_class(method)][status_class(status)] += 1;
        b.latency.observe(took);
    }

    pub fn failure(&mut self, backend: usize, why: Failure) {
        self.backends[backend].failures[why as usize] += 1;
    }

    pub fn local_response(&mut self, status: u16) {
        self.local_responses[status_class(status)] += 1;
    }

    pub fn client_answer(&mut self, status: u16) {
        self.client_answers[status_class(status)] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_S: Duration = Duration::from_secs(10);

    #[test]
    fn route_counts_follow_their_names_across_a_reload() {
        let mut m = Metrics::new(0, Instant::now(), TEN_S);
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        m.route_taken(0);
        m.route_taken(2);
        m.route_taken(2);
        m.routes_renamed(&names(&["a", "b", "c"]), &names(&["c", "new", "a"]));
        assert_eq!(m.routed, [2, 0, 1]);
    }

    #[test]
    fn latency_buckets_reach_the_longest_wait() {
        assert_eq!(latency_bounds(TEN_S).last(), Some(&10.0));
        assert_eq!(latency_bounds(Duration::from_secs(1)).last(), Some(&10.0));
        assert_eq!(latency_bounds(Duration::from_secs(30)).last(), Some(&30.0));
        assert_eq!(latency_bounds(Duration::from_secs(31)).last(), Some(&60.0));
        assert_eq!(
            latency_bounds(Duration::from_secs(86_400)).last(),
            Some(&86_400.0)
        );
    }

    #[test]
    fn histogram_buckets() {
        let mut h = Histogram::new(latency_bounds(TEN_S));
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        assert_eq!(h.buckets[2], 1, "300 us is in (250 us, 500 us]");
        assert_eq!(h.buckets[5], 1, "3 ms is in (2.5 ms, 5 ms]");
        assert_eq!(h.buckets[h.bounds.len()], 1);
        assert_eq!(h.count, 3);
    }

    #[test]
    fn cumulative_buckets_end_at_the_count() {
        let mut h = Histogram::new(latency_bounds(TEN_S));
        for ms in [0, 3, 3, 60_000] {
            h.observe(Duration::from_millis(ms));
        }
        let c: Vec<u64> = h.cumulative().collect();
        let n = h.bounds.len();
        assert_eq!(c.len(), n + 1);
        assert_eq!(&c[..7], &[1, 1, 1, 1, 1, 3, 3]);
        assert_eq!(c[n - 1], 3);
        assert_eq!(c[n], h.count);
    }

    #[test]
    fn quantiles_interpolate_inside_a_bucket() {
        let mut h = Histogram::new(latency_bounds(TEN_S));
        assert_eq!(h.quantile(0.5), None);
        assert_eq!(h.mean_seconds(), None);
        // Four samples in (5ms, 10ms]: the median sits halfway through that bucket.
        for _ in 0..4 {
            h.observe(Duration::from_millis(8));
        }
        let p50 = h.quantile(0.5).unwrap();
        assert!((p50 - 0.0075).abs() < 1e-9, "{p50}");
        assert!((h.quantile(1.0).unwrap() - 0.01).abs() < 1e-9);
        assert!((h.mean_seconds().unwrap() - 0.008).abs() < 1e-9);
        h.observe(Duration::from_secs(60));
        assert_eq!(
            h.quantile(1.0),
            Some(10.0),
            "past the last bound reports it"
        );
    }

    #[test]
    fn classes() {
        assert_eq!(status_class(101), 0);
        assert_eq!(status_class(204), 1);
        assert_eq!(status_class(503), 4);
        assert_eq!(method_class(Method::Post), 2);
    }
}
