//! The last few minutes of per-backend rates, for the status page's rates and charts.
//! The loop's once-a-second housekeeping calls `sample`; every `EVERY` it turns the growth
//! of the counters into one point per backend. Nothing is done per request, and a page
//! opened in the middle of an incident shows the minutes before it at once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{BackendMetrics, Metrics, quantile};
use crate::backend::Backend;
use crate::config::model::Protocol;
use crate::pool::Pool;

/// Time between points: the status page's refresh.
pub const EVERY: Duration = Duration::from_secs(2);
/// Points kept: three minutes.
pub const POINTS: usize = 90;

/// One interval of one backend (or of all clients, for `History::total`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Point {
    /// Requests (HTTP) or sessions (TCP) per second.
    pub rate: f64,
    /// Errors per second: 5xx answers and failures.
    pub errors: f64,
    /// HTTP: the p99 of the interval's latencies, in seconds, if any came. TCP: bytes per
    /// second both ways.
    pub second: Option<f64>,
}

/// The counters as they were at the last point.
#[derive(Clone)]
struct Snapshot {
    count: u64,
    errors: u64,
    bytes: u64,
    buckets: Vec<u64>,
}

impl Snapshot {
    fn of(b: &BackendMetrics, tcp: bool) -> Self {
        Snapshot {
            count: if tcp { b.sessions } else { b.requests_total() },
            errors: b.errors_total(),
            bytes: b.bytes_sent + b.bytes_received,
            buckets: b.latency.buckets.clone(),
        }
    }
}

pub struct History {
    /// By backend slot: its pool carries TCP connections (sessions, not requests).
    tcp: Vec<bool>,
    last: Option<(Instant, Vec<Snapshot>, Snapshot)>,
    backends: Vec<VecDeque<Point>>,
    /// Client requests answered, whoever answered (a POST once, however many copies).
    total: VecDeque<Point>,
}

impl History {
    pub fn new(pools: &[Pool], backends: &[Backend]) -> Self {
        History {
            tcp: backends
                .iter()
                .map(|b| pools[b.pool].protocol == Protocol::Tcp)
                .collect(),
            last: None,
            backends: vec![VecDeque::with_capacity(POINTS); backends.len()],
            total: VecDeque::with_capacity(POINTS),
        }
    }

    /// A backend joined slot `id`, in a pool of `protocol`: its points start afresh, from
    /// counters at zero.
    pub fn place(&mut self, id: usize, protocol: Protocol) {
        if id >= self.backends.len() {
            self.backends
                .resize(id + 1, VecDeque::with_capacity(POINTS));
            self.tcp.resize(id + 1, false);
        }
        self.backends[id].clear();
        self.tcp[id] = protocol == Protocol::Tcp;
        if let Some((_, before, _)) = &mut self.last {
            let zero = Snapshot {
                count: 0,
                errors: 0,
                bytes: 0,
                buckets: Vec::new(),
            };
            if id >= before.len() {
                before.resize(id + 1, zero);
            } else {
                before[id] = zero;
            }
        }
    }

    /// Adds a point per backend if `EVERY` has passed since the last one.
    pub fn sample(&mut self, now: Instant, m: &Metrics) {
        let tcp = |id: usize| self.tcp.get(id).copied().unwrap_or(false);
        let snaps: Vec<Snapshot> = (m.backends.iter().enumerate())
            .map(|(id, b)| Snapshot::of(b, tcp(id)))
            .collect();
        // Requests answered to HTTP clients, and sessions of TCP ones.
        let sessions = || (0..snaps.len()).filter(|&id| tcp(id)).map(|id| &snaps[id]);
        let total = Snapshot {
            count: m.client_answers.iter().sum::<u64>() + sessions().map(|s| s.count).sum::<u64>(),
            errors: m.client_answers[4] + sessions().map(|s| s.errors).sum::<u64>(),
            bytes: snaps.iter().map(|s| s.bytes).sum(),
            buckets: Vec::new(),
        };
        let Some((at, before, total_before)) = &self.last else {
            self.last = Some((now, snaps, total));
            return;
        };
        let secs = now.saturating_duration_since(*at).as_secs_f64();
        if secs < EVERY.as_secs_f64() {
            return;
        }
        for (id, ((points, then), snap)) in
            self.backends.iter_mut().zip(before).zip(&snaps).enumerate()
        {
            let tcp = self.tcp.get(id).copied().unwrap_or(false);
            push(points, point(then, snap, secs, tcp, bounds_of(m)));
        }
        push(
            &mut self.total,
            point(total_before, &total, secs, true, &[]),
        );
        self.last = Some((now, snaps, total));
    }

    /// Points of backend `id`, oldest first.
    pub fn backend(&self, id: usize) -> &VecDeque<Point> {
        &self.backends[id]
    }

    pub fn total(&self) -> &VecDeque<Point> {
        &self.total
    }
}

fn bounds_of(m: &Metrics) -> &'static [f64] {
    m.backends.first().map_or(&[], |b| b.latency.bounds)
}

fn push(points: &mut VecDeque<Point>, p: Point) {
    if points.len() == POINTS {
        points.pop_front();
    }
    points.push_back(p);
}

/// The interval between two snapshots `secs` apart. With `bytes_second`, the second
/// value is bytes per second; else the p99 of the latencies that came in between.
fn point(then: &Snapshot, now: &Snapshot, secs: f64, bytes_second: bool, bounds: &[f64]) -> Point {
    let per_second = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
    let second = if bytes_second {
        Some(per_second(then.bytes, now.bytes))
    } else {
        let delta: Vec<u64> = now
            .buckets
            .iter()
            .zip(&then.buckets)
            .map(|(n, t)| n.saturating_sub(*t))
            .collect();
        quantile(bounds, &delta, 0.99)
    };
    Point {
        rate: per_second(then.count, now.count),
        errors: per_second(then.errors, now.errors),
        second,
    }
}

/// The mean rate over the last `n` points, as `(requests, errors)` per second.
pub fn recent_rate(points: &VecDeque<Point>, n: usize) -> Option<(f64, f64)> {
    let recent: Vec<&Point> = points.iter().rev().take(n).collect();
    if recent.is_empty() {
        return None;
    }
    let k = recent.len() as f64;
    Some((
        recent.iter().map(|p| p.rate).sum::<f64>() / k,
        recent.iter().map(|p| p.errors).sum::<f64>() / k,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::Method;

    #[test]
    fn points_are_rates_and_interval_p99() {
        let start = Instant::now();
        let mut m = Metrics::new(1, start, Duration::from_secs(30));
        let mut h = History::new(&[], &[]);
        h.place(0, Protocol::Http);
        h.sample(start, &m);
        assert!(
            h.backend(0).is_empty(),
            "the first sample only sets the base"
        );
        for _ in 0..10 {
            m.request(0, Method::Get, 200, Duration::from_millis(3));
        }
        m.request(0, Method::Get, 502, Duration::from_secs(20));
        m.client_answer(200);
        h.sample(start + Duration::from_secs(1), &m);
        assert!(h.backend(0).is_empty(), "not before EVERY");
        h.sample(start + EVERY, &m);
        let p = h.backend(0)[0];
        assert!((p.rate - 5.5).abs() < 1e-9, "{p:?}");
        assert!((p.errors - 0.5).abs() < 1e-9, "{p:?}");
        let p99 = p.second.unwrap();
        assert!(p99 > 10.0 && p99 <= 30.0, "the slow one is the p99: {p99}");
        assert!(
            (h.total()[0].rate - 0.5).abs() < 1e-9,
            "client answers, once each"
        );
        h.sample(start + EVERY * 2, &m);
        assert_eq!(h.backend(0)[1].rate, 0.0);
        assert_eq!(h.backend(0)[1].second, None, "no answer, no p99");
        assert_eq!(recent_rate(h.backend(0), 5), Some((2.75, 0.25)));
        for i in 3..200 {
            h.sample(start + EVERY * i, &m);
        }
        assert_eq!(h.backend(0).len(), POINTS);
    }
}
