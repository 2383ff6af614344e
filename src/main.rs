use std::process::ExitCode;

use lb::config::{self, Command, Mode};
use lb::drain::Stopped;
use lb::event_loop::EventLoop;
use lb::journal::{Journal, Opened};
use lb::upgrade;

fn main() -> ExitCode {
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
    let what = format!(
        "({mode}, {}) in front of {}",
        cfg.strategy,
        backends.join(" ")
    );
    if cfg.journal.is_none() && cfg.mode == Mode::Http {
        log::info!(
            "no --journal: POST copies still owed are kept in memory only, and a crash of \
             lb loses them"
        );
    }
    let journal = match cfg.journal.as_deref() {
        Some(dir) => match Journal::open(dir, cfg.journal_sync) {
            // An upgrade: the lb this one replaces lets go of the journal once it is done.
            Ok(Opened::Held(why)) if upgrade::inheriting() => {
                log::info!(
                    "--journal {}: {why}; this lb takes it over once that one has finished \
                     (until then its POSTs get 503)",
                    dir.display()
                );
                Some(Opened::Held(why))
            }
            Ok(Opened::Held(why)) | Err(why) => {
                log::error!("--journal {}: {why}", dir.display());
                return ExitCode::from(2);
            }
            Ok(opened) => Some(opened),
        },
        None => None,
    };
    let mut event_loop = match EventLoop::bind(cfg, journal) {
        Ok(l) => l,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match event_loop.local_addr() {
        Ok(addr) => log::info!(
            "lb {} listening on {addr} (pid {}) {what}",
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        ),
        Err(e) => log::warn!("listening, but cannot read the local address: {e}"),
    }
    // Logged after the line above: scripts take the first "listening on" as the traffic port.
    match event_loop.admin_addr() {
        Some(Ok(addr)) => log::info!("admin interface on {addr}: /stats, /metrics, /healthz"),
        Some(Err(e)) => log::warn!("admin interface up, but cannot read its address: {e}"),
        None => {}
    }
    match event_loop.run() {
        Ok(Stopped::Drained) => ExitCode::SUCCESS,
        Ok(Stopped::Cut) => ExitCode::FAILURE,
        Err(e) => {
            log::error!("event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
