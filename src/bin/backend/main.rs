//! `backend`: the demo HTTP/1.1 server behind `lb` in setup.sh, integration tests and
//! benchmarks. It must be fast enough that a benchmark measures the balancer, not it.
//!
//! One thread runs one mio poll loop, edge-triggered, with every connection in a slab.
//! Keep-alive and pipelining are supported (answers go out in order, batched into one
//! write), request bodies may be Content-Length or chunked, and flags add faults:
//! `--fail-rate` (random 500s on every route, /ping included), `--delay` (a timer per
//! answer, other clients go on) and `--one-at-a-time` (a single request in service).
//! The routes are listed in `config::ROUTES`, printed by `backend --help`.

mod config;
mod conn;
mod form;
mod http;
mod pi;
mod routes;
mod stream;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use log::{LevelFilter, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use config::{Cli, Config};
use conn::{Conn, Ctx, Pool, Slot, Step};
use http::DateCache;
use routes::App;

const LISTENER: Token = Token(usize::MAX);
/// After a failed accept (say, out of file descriptors), wait before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match config::parse(&args) {
        Ok(Cli::Run(cfg)) => cfg,
        Ok(Cli::Help(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("backend: {msg} (try --help)");
            return ExitCode::from(2);
        }
    };
    let level = if cfg.verbose {
        LevelFilter::Debug
    } else {
        LevelFilter::Warn
    };
    if let Err(e) = lb::logging::init(level, lb::config::LogFormat::Text, false) {
        eprintln!("backend: cannot start logging: {e}");
    }
    let listener = match TcpListener::bind(cfg.listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("backend: cannot listen on {}: {e}", cfg.listen);
            return ExitCode::FAILURE;
        }
    };
    match Server::new(listener, cfg).and_then(Server::run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("backend: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Server {
    poll: Poll,
    listener: TcpListener,
    conns: Slab<Conn>,
    ctx: Ctx,
    accept_retry: Option<Instant>,
}

impl Server {
    fn new(mut listener: TcpListener, cfg: Config) -> io::Result<Server> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        // Printed only once bound: tests wait for this line and read the port from it.
        eprintln!(
            "backend {} listening on {}",
            cfg.name,
            listener.local_addr()?
        );
        let ctx = Ctx {
            app: App::new(&cfg.name, cfg.username, cfg.fail_rate, cfg.fail_first),
            date: DateCache::new(),
            delay: cfg.delay,
            slot: cfg.one_at_a_time.then(Slot::default),
            timers: BinaryHeap::new(),
            pool: Pool::default(),
        };
        Ok(Server {
            poll,
            listener,
            conns: Slab::new(),
            ctx,
            accept_retry: None,
        })
    }

    fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let next = self.ctx.timers.peek().map(|Reverse((at, _))| *at);
            let wake = match (next, self.accept_retry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = wake.map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.ctx.date.refresh();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    Token(key) => {
                        if let Some(conn) = self.conns.get_mut(key) {
                            conn.on_event(event);
                            let step = conn.drive(&mut self.ctx);
                            self.settle(key, step);
                        }
                    }
                }
            }
            let now = Instant::now();
            if self.accept_retry.is_some_and(|at| at <= now) {
                self.accept();
            }
            while let Some(&Reverse((at, key))) = self.ctx.timers.peek()
                && at <= now
            {
                self.ctx.timers.pop();
                if let Some(conn) = self.conns.get_mut(key) {
                    let step = conn.on_timer(now, &mut self.ctx);
                    self.settle(key, step);
                }
            }
            self.grant_slot();
        }
    }

    fn accept(&mut self) {
        self.accept_retry = None;
        loop {
            match self.listener.accept() {
                Ok((mut sock, _)) => {
                    // Answers are small and complete: send them without waiting (Nagle).
                    if let Err(e) = sock.set_nodelay(true) {
                        warn!("set_nodelay: {e}");
                    }
                    let entry = self.conns.vacant_entry();
                    let key = entry.key();
                    if let Err(e) = self.poll.registry().register(
                        &mut sock,
                        Token(key),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        warn!("register connection: {e}");
                        continue;
                    }
                    entry.insert(Conn::new(sock, key));
                    self.ctx.app.accepted += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("accept: {e}");
                    self.accept_retry = Some(Instant::now() + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    fn settle(&mut self, key: usize, step: Step) {
        if step == Step::Close
            && let Some(mut conn) = self.conns.try_remove(key)
        {
            // Closing the socket removes it from epoll too; this keeps mio's books straight.
            let _ = self.poll.registry().deregister(conn.socket());
            conn.release(&mut self.ctx);
        }
    }

    /// With --one-at-a-time, hands a free slot to the connections queued for it, in order.
    fn grant_slot(&mut self) {
        while let Some(slot) = &mut self.ctx.slot
            && !slot.busy
            && let Some(key) = slot.waiting.pop_front()
        {
            if let Some(conn) = self.conns.get_mut(key)
                && let Some(step) = conn.grant(&mut self.ctx)
            {
                self.settle(key, step);
            }
        }
    }
}
