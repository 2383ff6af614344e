//! Name lookups on a thread of their own, so that the event loop never waits for DNS.
//!
//! The loop hands the thread jobs (read the backends file again, resolve a backend added
//! through the admin API) over a channel; every `--resolve-interval` the thread also looks
//! up the listed host names again. Each result goes back over a channel, and a `mio::Waker`
//! (an eventfd the poll watches) wakes the loop to take it. Reloads that pile up while one
//! is read are done once: the last one reads the file as it is now.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::file;
use crate::config::model::Site;
use crate::config::{BackendLine, read_backends_file};
use crate::front::CompiledRoutes;
use crate::names;
use crate::roster::Lookup;

/// The admin connection that waits for an answer: slab key and serial.
pub type Reply = (usize, u32);

/// The backends of one pool as configured: lines, and a file that lists more.
pub struct Listed {
    pub pool: String,
    pub file: Option<String>,
    pub lines: Vec<BackendLine>,
}

pub enum Job {
    /// Read each pool's backends file again (if it has one), after its lines, and resolve
    /// every line.
    Reload { pools: Vec<Listed> },
    /// Read and check the config file again, and resolve every pool's backends.
    ReloadFile { path: String },
    /// Resolve a backend that `PUT /backends/...` adds to `pool`.
    Add {
        pool: String,
        label: String,
        weight: Option<u32>,
        reply: Reply,
    },
}

pub enum Done {
    Reloaded(Result<Vec<Lookup>, String>),
    ReloadedFile(FileReloaded),
    Added {
        pool: String,
        label: String,
        weight: Option<u32>,
        reply: Reply,
        addr: Result<SocketAddr, String>,
    },
    /// The periodic lookup of the listed names: every address of each.
    Refreshed(Vec<(String, Result<Vec<SocketAddr>, String>)>),
}

/// The config file read again: the site with its backends looked up, and its warnings;
/// or every problem found, one line each.
pub type FileReloaded = Result<Box<SiteRead>, Vec<String>>;

pub struct SiteRead {
    pub site: Site,
    /// Its routes compiled here, off the loop.
    pub routes: CompiledRoutes,
    pub lookups: Vec<Lookup>,
    pub warnings: Vec<String>,
}

/// What one periodic lookup means for a backend.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Unchanged,
    Moved(SocketAddr),
    /// The first failure since it last resolved: log it, once.
    StoppedResolving,
    /// It resolves again after failing.
    Recovered,
}

/// The loop's end of the resolver thread.
pub struct Resolver {
    jobs: Sender<Job>,
    done: Receiver<Done>,
    /// The names the thread looks up every interval.
    names: Arc<Mutex<Vec<String>>>,
    /// Names whose failure has been logged.
    failing: HashSet<String>,
}

impl Resolver {
    pub fn spawn(
        interval: Duration,
        hosts: Option<PathBuf>,
        names: Vec<String>,
        waker: Arc<mio::Waker>,
    ) -> std::io::Result<Self> {
        let (jobs, job_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let names = Arc::new(Mutex::new(names));
        let worker = Worker {
            jobs: job_rx,
            done: done_tx,
            names: Arc::clone(&names),
            hosts,
            interval,
            waker,
        };
        std::thread::Builder::new()
            .name("lb-resolver".into())
            .spawn(move || worker.run())?;
        Ok(Resolver {
            jobs,
            done,
            names,
            failing: HashSet::new(),
        })
    }

    pub fn send(&self, job: Job) {
        // The thread only ends when this end is dropped.
        let _ = self.jobs.send(job);
    }

    /// Results that arrived since the last call.
    pub fn take(&self) -> Vec<Done> {
        self.done.try_iter().collect()
    }

    /// The names to look up from now on.
    pub fn watch(&self, names: Vec<String>) {
        if let Ok(mut n) = self.names.lock() {
            *n = names;
        }
    }

    /// Judges one periodic lookup of `label`, whose address is `current`. A name with
    /// several addresses moves only when `current` is no longer among them, so that DNS
    /// answers in rotating order do not move it every time.
    pub fn judge(
        &mut self,
        label: &str,
        got: &Result<Vec<SocketAddr>, String>,
        current: SocketAddr,
    ) -> Verdict {
        match got {
            Err(_) if self.failing.insert(label.to_string()) => Verdict::StoppedResolving,
            Err(_) => Verdict::Unchanged,
            Ok(all) => {
                let recovered = self.failing.remove(label);
                match (all.first(), all.contains(&current), recovered) {
                    (Some(&addr), false, _) => Verdict::Moved(addr),
                    (_, _, true) => Verdict::Recovered,
                    _ => Verdict::Unchanged,
                }
            }
        }
    }
}

/// The thread's end.
struct Worker {
    jobs: Receiver<Job>,
    done: Sender<Done>,
    names: Arc<Mutex<Vec<String>>>,
    hosts: Option<PathBuf>,
    interval: Duration,
    /// Worker 0's, which the other workers ring too.
    waker: Arc<mio::Waker>,
}

impl Worker {
    fn run(self) {
        let mut next = Instant::now() + self.interval;
        loop {
            let job = if self.interval.is_zero() {
                match self.jobs.recv() {
                    Ok(job) => Some(job),
                    Err(_) => return,
                }
            } else {
                match self
                    .jobs
                    .recv_timeout(next.saturating_duration_since(Instant::now()))
                {
                    Ok(job) => Some(job),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            };
            let done = match job {
                Some(job) => self.work(job),
                None => {
                    next = Instant::now() + self.interval;
                    vec![self.refresh()]
                }
            };
            for d in done {
                if self.done.send(d).is_err() {
                    return;
                }
            }
            // A failed wake-up leaves the results queued for the loop's next turn.
            let _ = self.waker.wake();
        }
    }

    /// Does `first` and every job queued behind it, reloading the file once.
    fn work(&self, first: Job) -> Vec<Done> {
        let mut reload = None;
        let mut done = Vec::new();
        for job in std::iter::once(first).chain(self.jobs.try_iter()) {
            match job {
                Job::Reload { pools } => reload = Some(pools),
                Job::ReloadFile { path } => done.push(Done::ReloadedFile(self.reload_file(&path))),
                Job::Add {
                    pool,
                    label,
                    weight,
                    reply,
                } => {
                    let addr = names::resolve(&label, self.hosts.as_deref());
                    done.push(Done::Added {
                        pool,
                        label,
                        weight,
                        reply,
                        addr,
                    });
                }
            }
        }
        if let Some(pools) = reload {
            done.push(Done::Reloaded(self.reload(pools)));
        }
        done
    }

    /// The file at `path` read and checked as at start, and its backends looked up.
    fn reload_file(&self, path: &str) -> FileReloaded {
        let loaded = file::load(path, file::Told::Logged)?;
        let listed = loaded
            .site
            .pools
            .iter()
            .map(|p| Listed {
                pool: p.name.clone(),
                file: p.backends_file.clone(),
                lines: p.backends.clone(),
            })
            .collect();
        let lookups = self.reload(listed).map_err(|e| vec![e])?;
        let routes = CompiledRoutes::of(&loaded.site).map_err(|e| vec![e])?;
        Ok(Box::new(SiteRead {
            routes,
            site: loaded.site,
            lookups,
            warnings: loaded.warnings,
        }))
    }

    fn reload(&self, pools: Vec<Listed>) -> Result<Vec<Lookup>, String> {
        let mut lookups = Vec::new();
        for Listed {
            pool,
            file,
            mut lines,
        } in pools
        {
            if let Some(path) = &file {
                let listed = read_backends_file(path)?;
                if listed.is_empty() {
                    return Err(format!("{path} lists no backends"));
                }
                lines.extend(listed);
            }
            lookups.extend(lines.into_iter().map(|l| Lookup {
                pool: pool.clone(),
                addr: names::resolve(&l.label, self.hosts.as_deref()),
                label: l.label,
                weight: l.weight,
                at: l.at,
            }));
        }
        Ok(lookups)
    }

    fn refresh(&self) -> Done {
        let names = self.names.lock().map(|n| n.clone()).unwrap_or_default();
        Done::Refreshed(
            names
                .into_iter()
                .map(|label| {
                    let addr = names::resolve_all(&label, self.hosts.as_deref());
                    (label, addr)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_reported_once_and_a_move_at_once() {
        let (jobs, _) = mpsc::channel();
        let (_, done) = mpsc::channel();
        let mut r = Resolver {
            jobs,
            done,
            names: Arc::default(),
            failing: HashSet::new(),
        };
        let a: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:80".parse().unwrap();
        let fail = Err("no such name".to_string());
        assert_eq!(r.judge("x:80", &Ok(vec![a]), a), Verdict::Unchanged);
        assert_eq!(r.judge("x:80", &fail, a), Verdict::StoppedResolving);
        assert_eq!(r.judge("x:80", &fail, a), Verdict::Unchanged);
        assert_eq!(r.judge("x:80", &Ok(vec![a]), a), Verdict::Recovered);
        assert_eq!(r.judge("x:80", &Ok(vec![b]), a), Verdict::Moved(b));
        assert_eq!(r.judge("x:80", &fail, b), Verdict::StoppedResolving);
        assert_eq!(r.judge("x:80", &Ok(vec![a]), b), Verdict::Moved(a));
        assert_eq!(r.judge("x:80", &fail, a), Verdict::StoppedResolving);
        assert_eq!(r.judge("x:80", &Ok(vec![b, a]), a), Verdict::Recovered);
        assert_eq!(
            r.judge("x:80", &Ok(vec![b, a]), a),
            Verdict::Unchanged,
            "still one of the answers"
        );
    }
}
