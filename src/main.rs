use std::process::ExitCode;

use lb::config::{self, Command, Mode};
use lb::drain::Stopped;
use std::sync::Arc;

use lb::event_loop::workers::{self, Common};
use lb::event_loop::{EventLoop, Start};
use lb::journal::{Journal, Opened, Writer};
use lb::limits;
use lb::shared::Shared;
use lb::tls::{TlsContexts, TlsSettings};
use lb::upgrade;

fn main() -> ExitCode {
    lb::budget::map_large_blocks_apart();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match config::parse_args(&args) {
        Ok(Command::Run(cfg)) => *cfg,
        Ok(Command::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("lb {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("lb: {e} (see lb --help)");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = lb::logging::init(cfg.log_level, cfg.log_format) {
        eprintln!("lb: cannot start logging: {e}");
    }
    // Certificates are checked before anything starts: a bad one is a bad flag.
    let tls = match TlsContexts::load(&TlsSettings {
        pairs: &cfg.tls_certs,
        https_backends: cfg.backends.iter().any(|b| b.label.starts_with("https://")),
        backend_ca: cfg.backend_ca.as_deref(),
        http: cfg.mode == Mode::Http,
    }) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("lb: {e}");
            return ExitCode::from(2);
        }
    };
    for warning in &cfg.warnings {
        log::warn!("{warning}");
    }
    let mode = match cfg.mode {
        Mode::Http => "HTTP",
        Mode::Tcp => "TCP",
    };
    let backends: Vec<String> = cfg
        .backends
        .iter()
        .map(|b| match b.weight {
            1 => b.label.clone(),
            w => format!("{},weight={w}", b.label),
        })
        .collect();
    // What is really running, in one line: setup.sh prints it back. The pid tells an
    // upgraded lb's lines from its predecessor's.
    let threads = match cfg.workers {
        1 => String::new(),
        n => format!(", {n} workers"),
    };
    let what = format!(
        "({mode}, {}{threads}) in front of {}",
        cfg.strategy,
        backends.join(" ")
    );
    match limits::raise_fd_limit() {
        Ok(limit) => {
            let need =
                limits::descriptors_needed(cfg.max_connections, cfg.pool_size, cfg.backends.len());
            if need > limit {
                log::warn!(
                    "--max-connections {} may need {need} file descriptors, but lb may open only \
                     {limit} (ulimit -n): raise the hard limit or lower --max-connections",
                    cfg.max_connections
                );
            }
        }
        Err(e) => log::warn!("cannot raise the open file limit: {e}"),
    }
    if cfg.journal.is_none() && cfg.mode == Mode::Http {
        log::info!(
            "no --journal: POST copies still owed are kept in memory only, and a crash of \
             lb loses them"
        );
    }
    let workers = cfg.workers;
    // One journal per process, one writer in it per worker: `None` without --journal,
    // `Some(None)` for each worker while the lb this one replaces still holds it.
    let mut journals: Vec<Option<Option<Writer>>> = match cfg.journal.as_deref() {
        Some(dir) => match Journal::open(dir, cfg.journal_sync, workers) {
            // An upgrade: the lb this one replaces lets go of the journal once it is done.
            Ok(Opened::Held(why)) if upgrade::inheriting() => {
                log::info!(
                    "--journal {}: {why}; this lb takes it over once that one has finished \
                     (until then its POSTs get 503)",
                    dir.display()
                );
                (0..workers).map(|_| Some(None)).collect()
            }
            Ok(Opened::Held(why)) | Err(why) => {
                log::error!("--journal {}: {why}", dir.display());
                return ExitCode::from(2);
            }
            Ok(Opened::Ready(writers)) => writers.into_iter().map(|w| Some(Some(w))).collect(),
        },
        None => (0..workers).map(|_| None).collect(),
    };
    let listeners = match upgrade::listeners(&cfg) {
        Ok(l) => l,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let shared = Arc::new(Shared::new(
        workers,
        cfg.max_connections,
        lb::roster::Roster::new(&cfg.backends).snapshot(),
    ));
    let common = Common {
        cfg: &cfg,
        tls: &tls,
        listeners: &listeners,
        shared: &shared,
    };
    let others = match workers::spawn(&common, &mut journals) {
        Ok(w) => w,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let start = Start {
        worker: 0,
        cfg,
        tls,
        listeners,
        journal: journals.first_mut().and_then(Option::take),
        shared,
    };
    let mut event_loop = match EventLoop::bind(start) {
        Ok(l) => l,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let version = env!("CARGO_PKG_VERSION");
    match event_loop.local_addr() {
        Some(Ok(addr)) => log::info!(
            "lb {version} listening on {addr} (pid {}) {what}",
            std::process::id()
        ),
        Some(Err(e)) => log::warn!("listening, but cannot read the local address: {e}"),
        None => {}
    }
    match event_loop.tls_addr() {
        Some(Ok(addr)) => log::info!(
            "lb {version} TLS listening on {addr} (pid {}) {what} ({})",
            std::process::id(),
            lb::tls::PROVIDER
        ),
        Some(Err(e)) => log::warn!("TLS listening, but cannot read the local address: {e}"),
        None => {}
    }
    // Logged after the line above: scripts take the first "listening on" as the traffic port.
    match event_loop.admin_addr() {
        Some(Ok(addr)) => log::info!("admin interface on {addr}: /stats, /metrics, /healthz"),
        Some(Err(e)) => log::warn!("admin interface up, but cannot read its address: {e}"),
        None => {}
    }
    let stopped = event_loop.run();
    let others = others.join();
    match (stopped, others) {
        (Ok(Stopped::Drained), Stopped::Drained) => ExitCode::SUCCESS,
        (Ok(_), _) => ExitCode::FAILURE,
        (Err(e), _) => {
            log::error!("event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
