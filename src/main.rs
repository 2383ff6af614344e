use std::process::ExitCode;
use std::sync::Arc;

use lb::config::model::{Protocol, Site, Source};
use lb::config::{self, BackendSpec, Command};
use lb::drain::Stopped;
use lb::event_loop::workers::{self, Common};
use lb::event_loop::{EventLoop, Start};
use lb::limits;
use lb::shared::Shared;
use lb::store::{self, Opened, Writer};
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
            println!("lb {} ({})", env!("CARGO_PKG_VERSION"), env!("LB_COMMIT"));
            return ExitCode::SUCCESS;
        }
        Ok(Command::PrintConfig(cfg)) => {
            print!("{}", cfg.site().to_toml());
            return ExitCode::SUCCESS;
        }
        Ok(Command::RunFile {
            path,
            log_level,
            log_dependencies,
        }) => return run_file(&path, (log_level, log_dependencies)),
        Ok(Command::Check { file, explain }) => {
            let report = config::check::check_file(&file, explain.as_deref());
            print!("{}", report.out);
            eprint!("{}", report.err);
            return ExitCode::from(report.status);
        }
        Err(e) => {
            eprintln!("lb: {e} (see lb --help)");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = lb::logging::init(cfg.log_level, cfg.log_format, cfg.log_dependencies) {
        eprintln!("lb: cannot start logging: {e}");
    }
    for warning in &cfg.warnings {
        log::warn!("{warning}");
    }
    serve(cfg.site(), cfg.backends)
}

/// `lb -c FILE`: the file is checked as `lb check` does, and run if nothing is wrong.
fn run_file(path: &str, (log_level, dependencies): (Option<log::LevelFilter>, bool)) -> ExitCode {
    let loaded = match config::file::load(path, config::file::Told::Shown) {
        Ok(loaded) => loaded,
        Err(shown) => {
            eprint!("{}", shown.concat());
            return ExitCode::from(2);
        }
    };
    let process = &loaded.site.process;
    let level = log_level.unwrap_or(process.log_level);
    if let Err(e) = lb::logging::init(level, process.log_format, dependencies) {
        eprintln!("lb: cannot start logging: {e}");
    }
    for warning in &loaded.warnings {
        log::warn!("{warning}");
    }
    let backends = match config::resolve_site(&loaded.site) {
        Ok((backends, warnings)) => {
            for w in warnings {
                log::warn!("{w}");
            }
            backends
        }
        Err(e) => {
            eprintln!("lb: {e}");
            return ExitCode::from(2);
        }
    };
    serve(loaded.site, backends)
}

/// Runs `site` with `backends` (their names resolved) until it is stopped.
fn serve(mut site: Site, backends: Vec<BackendSpec>) -> ExitCode {
    // Certificates are checked before anything starts: a bad one is a bad flag.
    let settings = TlsSettings {
        https_backends: backends.iter().any(|b| b.label.starts_with("https://")),
        ..config::check::tls_settings(&site)
    };
    let tls = match TlsContexts::load(&settings) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("lb: {e}");
            return ExitCode::from(2);
        }
    };
    match limits::raise_fd_limit() {
        Ok(limit) => fit_connections(&mut site, &backends, limit),
        Err(e) => log::warn!("cannot raise the open file limit: {e}"),
    }
    let http = site.pools.iter().any(|p| {
        !site
            .listeners
            .iter()
            .any(|l| l.protocol == Protocol::Tcp && l.pool.as_ref() == Some(&p.name))
    });
    if site.process.journal.is_none() && http {
        log::info!(
            "no {}: POST copies still owed are kept in memory only, and a crash of lb loses \
             them",
            said(&site, "--journal", "journal")
        );
    }
    // Bound before the store is opened, which records where this lb listens (a port of 0
    // is only known once bound); no client is taken before the loop runs. Taking them
    // takes the upgrade's variable out of the environment: asked first.
    let upgrading = upgrade::inheriting();
    let listeners = match upgrade::listeners(&site) {
        Ok(l) => l,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let workers = site.process.workers;
    // One journal per process, one writer in it per worker: `None` without --journal,
    // `Some(None)` for each worker while the lb this one replaces still holds it.
    let mut journals: Vec<Option<Option<Writer>>> = match site.process.journal.as_ref() {
        Some(at) => match store::open(
            at,
            site.process.journal_sync,
            workers,
            &listening(&listeners),
        ) {
            // An upgrade: the lb this one replaces lets go of the journal once it is done.
            Ok(Opened::Held(why)) if upgrading => {
                log::info!(
                    "--journal {at}: {why}; this lb takes it over once that one has finished \
                     (until then its POSTs get 503)"
                );
                (0..workers).map(|_| Some(None)).collect()
            }
            Ok(Opened::Held(why)) | Err(why) => {
                log::error!("--journal {at}: {why}");
                return ExitCode::from(2);
            }
            Ok(Opened::Ready(writers)) => writers.into_iter().map(|w| Some(Some(w))).collect(),
        },
        None => (0..workers).map(|_| None).collect(),
    };
    let shared = Arc::new(Shared::new(
        workers,
        site.process.max_connections,
        lb::roster::Roster::new(&backends).snapshot(),
    ));
    let common = Common {
        site: &site,
        backends: &backends,
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
    let lines = started(&site, &backends);
    let routes = match site.source {
        Source::Flags => Vec::new(),
        Source::File(_) => config::check::route_lines(&site),
    };
    let start = Start {
        worker: 0,
        site,
        backends,
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
    let pid = std::process::id();
    for (addr, (listening, what)) in event_loop.local_addrs().into_iter().zip(lines) {
        match addr {
            Some(Ok(addr)) => log::info!("lb {version} {listening} on {addr} (pid {pid}) {what}"),
            Some(Err(e)) => log::warn!("listening, but cannot read the local address: {e}"),
            None => {}
        }
    }
    // Logged after the lines above: scripts take the first "listening on" as the traffic port.
    match event_loop.admin_addr() {
        Some(Ok(addr)) => log::info!("admin interface on {addr}: /stats, /metrics, /healthz"),
        Some(Err(e)) => log::warn!("admin interface up, but cannot read its address: {e}"),
        None => {}
    }
    if !routes.is_empty() {
        log::info!("routes, first match wins:");
    }
    for line in routes {
        log::info!("  {line}");
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

/// For each listener, what its start-up line says: "listening" or "TLS listening", and
/// what it serves. The flags' lines say what is really running in one line, which
/// setup.sh prints back; a file's name each listener. The pid tells an upgraded lb's lines
/// from its predecessor's.
fn started(site: &Site, backends: &[BackendSpec]) -> Vec<(&'static str, String)> {
    let threads = match site.process.workers {
        1 => String::new(),
        n => format!(", {n} workers"),
    };
    site.listeners
        .iter()
        .map(|l| {
            let listening = if l.tls.is_empty() {
                "listening"
            } else {
                "TLS listening"
            };
            let mode = match l.protocol {
                Protocol::Http => "HTTP",
                Protocol::Tcp => "TCP",
            };
            let what = match (&site.source, site.pools.first()) {
                (Source::Flags, Some(pool)) => {
                    let listed: Vec<String> = backends
                        .iter()
                        .map(|b| match b.weight {
                            1 => b.label.clone(),
                            w => format!("{},weight={w}", b.label),
                        })
                        .collect();
                    format!(
                        "({mode}, {}{threads}) in front of {}",
                        pool.strategy,
                        listed.join(" ")
                    )
                }
                _ => match &l.pool {
                    Some(pool) => format!("listener {} ({mode}{threads}) to pool {pool}", l.name),
                    None => format!("listener {} ({mode}{threads})", l.name),
                },
            };
            let provider = match l.tls.is_empty() {
                true => String::new(),
                false => format!(" ({})", lb::tls::PROVIDER),
            };
            (listening, format!("{what}{provider}"))
        })
        .collect()
}

/// Keeps `--max-connections` within what `limit` open files allow: a count given on the
/// command line stays as asked, with a warning; the default shrinks to fit, as HAProxy's
/// maxconn does, so that an ordinary machine starts without a warning.
fn fit_connections(site: &mut Site, backends: &[BackendSpec], limit: u64) {
    // Idle connections each backend's pool may keep.
    let pooled = backends
        .iter()
        .filter_map(|b| site.pools.iter().find(|p| p.name == b.pool))
        .map(|p| p.pool_size as u64)
        .sum();
    let name = said(site, "--max-connections", "max_connections");
    let p = &mut site.process;
    let need = limits::descriptors_needed(p.max_connections, pooled);
    if need <= limit {
        return;
    }
    if p.max_connections_given {
        log::warn!(
            "{name} {} may need {need} file descriptors, but lb may open only {limit} \
             (ulimit -n): raise the hard limit or lower {name}",
            p.max_connections
        );
        return;
    }
    let fits = limits::connections_within(limit, pooled);
    log::info!(
        "{name} {fits}: the default {} needs more file descriptors than the {limit} lb may \
         open (ulimit -n)",
        p.max_connections
    );
    p.max_connections = fits;
}

/// The addresses lb listens on for clients, for the other instances sharing a store.
fn listening(listeners: &upgrade::Listeners) -> String {
    let addresses: Vec<String> = listeners
        .traffic
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    addresses.join(",")
}

/// A setting as the operator wrote it: its flag, or its key in the config file.
fn said(site: &Site, flag: &'static str, key: &'static str) -> &'static str {
    match site.source {
        Source::Flags => flag,
        Source::File(_) => key,
    }
}
