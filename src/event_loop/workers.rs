//! Starting `--workers N`: worker 0 runs on the main thread (it is also the control loop),
//! workers 1..N each on a thread of their own with a duplicate of every client listener.
//! Each builds its whole loop on its own thread, so nothing of a loop ever crosses threads.

use std::io;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::thread::JoinHandle;

use super::{EventLoop, Start};
use crate::config::BackendSpec;
use crate::config::model::Site;
use crate::drain::Stopped;
use crate::listen::duplicate;
use crate::shared::Shared;
use crate::store::Writer;
use crate::tls::TlsContexts;
use crate::upgrade::Listeners;

/// Workers 1..N, running.
pub struct Workers {
    threads: Vec<JoinHandle<io::Result<Stopped>>>,
}

/// What every worker but 0 starts from.
pub struct Common<'a> {
    pub site: &'a Site,
    pub backends: &'a [BackendSpec],
    pub tls: &'a TlsContexts,
    /// Worker 0's listeners, which the others duplicate.
    pub listeners: &'a Listeners,
    pub shared: &'a Arc<Shared>,
}

/// Starts workers 1..N; `journals[k]` is worker k's journal (see `Start::journal`).
/// Returns once every one of them serves, or the first error.
pub fn spawn(c: &Common, journals: &mut [Option<Option<Writer>>]) -> Result<Workers, String> {
    let mut threads = Vec::new();
    for k in 1..c.shared.workers() {
        let traffic = c
            .listeners
            .traffic
            .iter()
            .map(duplicate)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cannot share a listener with worker {k}: {e}"))?;
        let start = Start {
            worker: k,
            site: c.site.clone(),
            backends: c.backends.to_vec(),
            tls: c.tls.clone(),
            listeners: Listeners {
                traffic,
                admin: None,
                ready: None,
            },
            journal: journals.get_mut(k).and_then(Option::take),
            shared: Arc::clone(c.shared),
        };
        let (bound, told) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name(format!("lb-worker-{k}"))
            .spawn(move || {
                let shared = Arc::clone(&start.shared);
                let mut event_loop = match EventLoop::bind(start) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = bound.send(Err(e));
                        shared.finished();
                        return Ok(Stopped::Cut);
                    }
                };
                let _ = bound.send(Ok(()));
                event_loop.run()
            })
            .map_err(|e| format!("cannot start worker {k}: {e}"))?;
        threads.push(thread);
        match told.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("worker {k}: {e}")),
            Err(_) => return Err(format!("worker {k} ended while starting")),
        }
    }
    Ok(Workers { threads })
}

impl Workers {
    /// Waits for every worker to end: drained only if all of them drained.
    pub fn join(self) -> Stopped {
        let mut all = Stopped::Drained;
        for (i, thread) in self.threads.into_iter().enumerate() {
            match thread.join() {
                Ok(Ok(Stopped::Drained)) => {}
                Ok(Ok(Stopped::Cut)) => all = Stopped::Cut,
                Ok(Err(e)) => {
                    log::error!("worker {}: event loop failed: {e}", i + 1);
                    all = Stopped::Cut;
                }
                Err(_) => {
                    log::error!("worker {} panicked", i + 1);
                    all = Stopped::Cut;
                }
            }
        }
        all
    }
}
