//! Routing and rendering of the admin pages, without an event loop.

use super::*;
use crate::config::{self, Command};

/// The state behind a `View`, owned, for rendering tests without an event loop.
pub struct Fixture {
    pub cfg: Process,
    pub pools: Vec<Pool>,
    pub fronts: Vec<Front>,
    pub backends: Vec<Backend>,
    pub metrics: Metrics,
    pub history: History,
    pub health: HealthMonitor,
    pub now: Instant,
}

impl Fixture {
    pub fn view(&self) -> View<'_> {
        View {
            cfg: &self.cfg,
            pools: &self.pools,
            fronts: &self.fronts,
            flags: true,
            routes: vec!["default"],
            described: &[],
            listen: "127.0.0.1:8080",
            backends: &self.backends,
            metrics: &self.metrics,
            history: &self.history,
            health: &self.health,
            load: &[],
            workers: &[],
            clients_open: 3,
            posts_pending: 2,
            cluster: None,
            now: self.now,
        }
    }
}

/// Two backends: one whose label needs escaping, one plain.
pub fn view_fixture(now: Instant) -> Fixture {
    let args: Vec<String> = ["-b", "127.0.0.1:1", "-b", "127.0.0.1:2"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let Ok(Command::Run(cfg)) = config::parse_args(&args) else {
        panic!("fixture config");
    };
    let backends = vec![
        Backend::new(0, cfg.backends[0].addr, "a\"b".into(), 1),
        Backend::new(0, cfg.backends[1].addr, "zz".into(), 3),
    ];
    let site = cfg.site();
    let mut pools: Vec<Pool> = site
        .pools
        .into_iter()
        .map(|p| Pool::new(p, Protocol::Http).expect("a pool"))
        .collect();
    pools[0].rebuild(0, &backends).expect("members");
    let fronts = site
        .listeners
        .iter()
        .map(|l| Front::of(l, &["default"]).expect("a front"))
        .collect();
    Fixture {
        health: HealthMonitor::new(&pools, &backends),
        metrics: Metrics::new(backends.len(), now, cfg.server_timeout),
        history: History::new(&pools, &backends),
        pools,
        fronts,
        backends,
        cfg: site.process,
        now,
    }
}

fn answer_to(raw: &[u8]) -> Option<String> {
    let fx = view_fixture(Instant::now());
    answer(raw, &fx.view()).map(|r| match r {
        Answer::Now(r) => String::from_utf8_lossy(&r).into_owned(),
        Answer::Control => "control".into(),
    })
}

#[test]
fn routes_and_errors() {
    let r = answer_to(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.contains("Connection: close\r\n"));
    assert!(r.ends_with("\r\n\r\nok\n"));
    let r = answer_to(b"GET /metrics?x=1 HTTP/1.1\r\n\r\n").unwrap();
    assert!(r.contains("version=0.0.4"), "{r}");
    assert!(r.contains("lb_backend_up{backend=\"zz\"} 1"));
    let r = answer_to(b"HEAD /stats HTTP/1.1\r\n\r\n").unwrap();
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(r.ends_with("\r\n\r\n"), "HEAD has no body");
    for (raw, status) in [
        (&b"GET / HTTP/1.1\r\n\r\n"[..], "404"),
        (b"GET /metricsx HTTP/1.1\r\n\r\n", "404"),
        (b"GET /backendsx HTTP/1.1\r\n\r\n", "404"),
        (b"POST /metrics HTTP/1.1\r\n\r\n", "405"),
        (b"GET /me trics HTTP/1.1\r\n\r\n", "400"),
        (b"\x01\x02 nonsense\r\n\r\n", "400"),
    ] {
        let r = answer_to(raw).unwrap();
        assert!(r.starts_with(&format!("HTTP/1.1 {status} ")), "{r}");
    }
    for raw in [
        &b"GET /backends HTTP/1.1\r\n\r\n"[..],
        b"POST /backends/a:1/drain HTTP/1.1\r\n\r\n",
        b"DELETE /backends/a:1?x HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(answer_to(raw).as_deref(), Some("control"));
    }
}

#[test]
fn heads_wait_until_complete_but_not_past_the_limit() {
    assert_eq!(answer_to(b"GET /healthz HTTP/1.1\r\nHost:"), None);
    let mut big = b"GET /healthz HTTP/1.1\r\nX: ".to_vec();
    big.resize(MAX_HEAD, b'a');
    assert!(answer_to(&big).unwrap().starts_with("HTTP/1.1 431 "));
}
