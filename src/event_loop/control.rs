//! What a loop does apart from its connections: taking clients off the listeners, and
//! everything that crosses workers. Worker 0 receives the signals, starts upgrades, tells
//! the other workers how to stop and tells systemd what lb is doing; each worker takes in
//! what the others published (`take_news`) and publishes its own counters.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use log::{error, info, warn};

use super::site::SiteUpdate;
use super::{EventLoop, Timer, UPGRADE};
use crate::accept::{self, Accepting};
use crate::admin;
use crate::config::model::Source;
use crate::drain::{self, Reason, Stopped};
use crate::front::FrontId;
use crate::notify;
use crate::probe;
use crate::reconfigure;
use crate::resolver::Done;
use crate::shared::Stop;
use crate::upgrade::Outcome;

/// How long a new process started by SIGUSR2 may take to serve before it is given up.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);

/// Worker 0's SIGHUP reload. One runs at a time, so that systemd hears one RELOADING=1
/// and then one READY=1 however many SIGHUPs come: those that arrive meanwhile make one
/// more reload, in the same RELOADING=1, which reads the files as they are by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reloading {
    No,
    Yes,
    /// And another SIGHUP came meanwhile.
    Again,
}

impl EventLoop {
    pub(super) fn signalled(&mut self) {
        let Some(signals) = &self.signals else {
            return;
        };
        let arrived = signals.take();
        if arrived.reload {
            self.reload();
            // A config file brings its certificates with the rest of it (`site`).
            if self.core.source == Source::Flags {
                self.core.tls.reload_certificates();
                if self.core.shared.workers() > 1 {
                    self.core.shared.publish_tls(self.core.tls.serving());
                }
            }
        }
        if arrived.upgrade {
            self.upgrade();
        }
        if arrived.stops > 0 {
            self.stop_signalled(arrived.last_stop);
        }
    }

    /// Another thread rang: the resolver has results, or (worker 0) another worker
    /// published the counters the admin listener waits for, or ended.
    pub(super) fn woken(&mut self) {
        if self.core.shared.take_handed(self.core.worker) {
            // Handed by a worker past its share: this one is not, so any pause ends.
            self.accept_again.clear();
            self.accept_again_at = None;
            for front in 0..self.listeners.len() {
                self.accept(front);
            }
        }
        let done = self.core.resolver.as_ref().map(|r| r.take());
        for done in done.into_iter().flatten() {
            let reload = matches!(done, Done::Reloaded(_) | Done::ReloadedFile(_));
            if let Some(file) = reconfigure::resolved(&mut self.conns, &mut self.core, done) {
                self.file_reloaded(file);
            }
            if reload {
                self.reload_ended();
            }
        }
        if self.core.worker == 0 {
            admin::gathered(&mut self.conns, &mut self.core, false);
        }
    }

    /// SIGHUP: a reload starts, or follows the one under way.
    fn reload(&mut self) {
        if self.reloading != Reloading::No {
            info!("SIGHUP during a reload: reading again once this one is done");
            self.reloading = Reloading::Again;
            return;
        }
        if reconfigure::reload(&mut self.core) {
            self.reloading = Reloading::Yes;
            self.notifier.reloading(notify::monotonic_usec());
        }
    }

    /// A reload's result was taken in, whether it changed something or failed: lb serves
    /// either way, unless a SIGHUP that came meanwhile reloads once more.
    fn reload_ended(&mut self) {
        match std::mem::replace(&mut self.reloading, Reloading::No) {
            Reloading::No => return,
            Reloading::Again if reconfigure::reload(&mut self.core) => {
                self.reloading = Reloading::Yes;
                return;
            }
            Reloading::Again | Reloading::Yes => {}
        }
        if self.notifier.is_on() {
            let status = self.status_line();
            self.notifier.ready(status);
        }
    }

    /// What `systemctl status` shows: pools, backends up, POST copies owed. Worker 0's
    /// copies are counted now; the other workers' as they last published them (once a
    /// second).
    pub(super) fn status_line(&self) -> String {
        let core = &self.core;
        let pools = core.pools.iter().filter(|p| !p.retired).count();
        let members = || core.backends.iter().filter(|b| b.role.is_member());
        let up = members().filter(|b| b.up).count();
        let others: usize = (1..core.shared.workers())
            .filter_map(|k| core.shared.stats(k))
            .filter_map(|s| {
                s.as_ref()
                    .as_ref()
                    .map(|s| s.load.iter().map(|l| l.owed).sum::<usize>())
            })
            .sum();
        let owed = core.fanout.undelivered().iter().sum::<usize>() + others;
        notify::summary(pools, up, members().count(), owed)
    }

    /// SIGUSR2: starts the binary on disk with our listeners; it takes over once it serves.
    fn upgrade(&mut self) {
        let serving = self.listeners.iter().any(Option::is_some);
        if !serving || self.core.draining {
            return warn!("SIGUSR2 while stopping: no upgrade");
        }
        let mut fds: Vec<(String, RawFd)> = self
            .listeners
            .iter()
            .zip(&self.core.fronts)
            .filter_map(|(l, f)| Some((f.name.clone(), l.as_ref()?.as_raw_fd())))
            .collect();
        if let Some(admin) = &self.admin {
            fds.push(("admin".to_string(), admin.as_raw_fd()));
        }
        let registry = self.poll.registry();
        match self.upgrades.start(registry, UPGRADE, fds) {
            Ok(pid) => {
                let deadline = self.core.now + UPGRADE_TIMEOUT;
                self.core
                    .timers
                    .insert(deadline, Timer::UpgradeDeadline(pid));
            }
            Err(e) => error!("upgrade failed, carrying on: {e}"),
        }
    }

    /// The new process said something on its ready pipe: it serves, or it failed.
    pub(super) fn upgrade_progress(&mut self) {
        match self.upgrades.progress(self.poll.registry()) {
            None => {}
            Some(Outcome::Serving(pid)) => {
                self.notifier.handed_over();
                self.tell_workers(Stop::HandedOver(pid));
                self.begin_drain(Reason::HandedOver(pid));
            }
            Some(Outcome::Failed(why)) => error!("upgrade failed, carrying on: {why}"),
        }
    }

    pub(super) fn upgrade_timed_out(&mut self, pid: u32) {
        if self.upgrades.stop(self.poll.registry(), Some(pid)) {
            error!(
                "upgrade failed, carrying on: pid {pid} did not serve within \
                 {UPGRADE_TIMEOUT:?}; stopped it"
            );
        }
    }

    /// The first stop signal starts the drain; another ends it at once.
    fn stop_signalled(&mut self, signal: &'static str) {
        if self.core.draining {
            self.tell_workers(Stop::Cut);
            return self.cut(&format!("{signal} while draining"));
        }
        if self.upgrades.stop(self.poll.registry(), None) {
            warn!("{signal}: stopped the new lb that was starting to take over");
        }
        self.notifier.stopping();
        self.tell_workers(Stop::Signal(signal));
        self.begin_drain(Reason::Signal(signal));
    }

    fn tell_workers(&self, how: Stop) {
        if self.core.shared.workers() > 1 {
            self.core.shared.stop(how);
        }
    }

    /// Closes this worker's listeners (new clients are refused at once, or after a
    /// handover accepted by the new process alone) and starts the drain.
    fn begin_drain(&mut self, why: Reason) {
        self.close_listeners();
        drain::begin(&mut self.conns, &mut self.core, why);
        let deadline = self.core.now + self.core.cfg.drain_timeout;
        self.core.timers.insert(deadline, Timer::DrainDeadline);
    }

    /// --drain-timeout passed: this worker stops now, and worker 0 stops the others too.
    pub(super) fn drain_timed_out(&mut self) {
        if self.core.worker == 0 {
            self.tell_workers(Stop::Cut);
        }
        self.cut("--drain-timeout passed");
    }

    /// Ends the loop now, saying what is cut short.
    pub(super) fn cut(&mut self, why: &str) {
        if self.stopped.is_none() {
            drain::report_cut(&self.conns, &self.core, why);
            self.stopped = Some(Stopped::Cut);
        }
    }

    /// This worker has nothing left; worker 0, which holds the signals, also waits for
    /// the others to end.
    pub(super) fn drained(&self) -> bool {
        let shared = &self.core.shared;
        drain::is_done(&self.core)
            && (self.core.worker != 0 || shared.finished_count() + 1 >= shared.workers())
    }

    /// Drops this worker's hold on the listening sockets. The socket itself closes once
    /// no worker (and, after a handover, no new process) holds it, so nothing waiting in
    /// its queue is lost to a handover.
    fn close_listeners(&mut self) {
        let registry = self.poll.registry();
        for listener in self.listeners.iter_mut().filter_map(Option::take) {
            listener.deregister(registry);
        }
        if let Some(mut admin) = self.admin.take() {
            let _ = registry.deregister(&mut admin);
        }
    }

    /// Takes in what other workers published since this loop last looked: the roster,
    /// backend health, certificates, how to stop, and a request for counters.
    pub(super) fn take_news(&mut self) {
        let shared = Arc::clone(&self.core.shared);
        self.core.news_seen = shared.news();
        if self.core.worker != 0 {
            // Pools first: the roster may put backends in pools that are new.
            let applied = |u: &Arc<SiteUpdate>| {
                self.applied_site
                    .as_ref()
                    .is_some_and(|a| Arc::ptr_eq(a, u))
            };
            if let Some(update) = shared.site().filter(|u| !applied(u)) {
                self.apply_site(&update);
                self.applied_site = Some(update);
            }
            let notes = reconfigure::sync(&mut self.conns, &mut self.core);
            if !notes.is_empty() {
                log::debug!("worker {}: {}", self.core.worker, notes.join(", "));
            }
            if let Some(config) = shared.tls() {
                self.core.tls.adopt(config);
            }
            match shared.stopping() {
                Stop::Running => {}
                Stop::Cut => {
                    self.cut("worker 0 stopped at once (a second signal, or its --drain-timeout)")
                }
                Stop::Signal(signal) if !self.core.draining => {
                    self.begin_drain(Reason::Signal(signal));
                }
                Stop::HandedOver(pid) if !self.core.draining => {
                    self.begin_drain(Reason::HandedOver(pid));
                }
                Stop::Signal(_) | Stop::HandedOver(_) => {}
            }
            let wanted = shared.stats_wanted();
            if wanted > self.stats_answered {
                self.stats_answered = wanted;
                self.publish_stats(wanted);
            }
        }
        probe::follow_published(&mut self.conns, &mut self.core);
    }

    /// Publishes this worker's counters for the admin listener (worker 0 sums them).
    pub(super) fn publish_stats(&mut self, answers: u64) {
        let stats = admin::worker_stats(&self.core, answers);
        self.core.shared.publish_stats(self.core.worker, stats);
    }

    /// The loop is ending: its last counters answer every request to come.
    pub(super) fn publish_final(&mut self) {
        if self.core.shared.workers() > 1 {
            crate::fanout::refresh_metrics(&mut self.core);
            self.publish_stats(u64::MAX);
        }
    }

    pub(super) fn accept(&mut self, front: FrontId) {
        let listener = self.listeners.get(front).and_then(Option::as_ref);
        let (Some(listener), false) = (listener, self.accepting == Accepting::Failing) else {
            return;
        };
        let state = accept::accept_all(&mut self.conns, &mut self.core, listener, front);
        let shared = &self.core.shared;
        // More than its share of the clients: the next idle worker gets the next one.
        if shared.workers() > 1 && self.core.clients_open * shared.workers() > shared.clients() {
            listener.requeue(self.poll.registry());
        }
        match state {
            Accepting::Open => {}
            // The others are told; this worker looks again after a pause that lets one of
            // them run (on a busy machine a woken thread may wait for a CPU), so that it
            // does not take the whole burst one client per turn meanwhile.
            Accepting::Yielded => {
                self.core.shared.hand_off(self.core.worker);
                if !self.accept_again.contains(&front) {
                    self.accept_again.push(front);
                }
                self.accept_again_at
                    .get_or_insert(self.core.now + accept::YIELD_PAUSE);
            }
            Accepting::Full => {
                if self.accepting == Accepting::Open {
                    info!(
                        "{} client connections open (--max-connections): new ones wait",
                        self.core.shared.clients()
                    );
                }
                self.accepting = Accepting::Full;
            }
            // The clients left in the backlog bring no new readiness edge: a timer must.
            Accepting::Failing => {
                self.accepting = Accepting::Failing;
                let at = self.core.now + accept::RETRY;
                self.core.timers.insert(at, Timer::AcceptRetry);
            }
        }
    }

    pub(super) fn resume_accepting(&mut self) {
        self.accepting = Accepting::Open;
        for front in 0..self.listeners.len() {
            self.accept(front);
        }
    }

    pub(super) fn accept_admin(&mut self) {
        let Some(listener) = &self.admin else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((sock, peer)) => admin::accept(&mut self.conns, &mut self.core, sock, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    error!("admin accept failed: {e}");
                    return;
                }
            }
        }
    }
}
