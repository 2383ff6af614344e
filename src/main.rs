use std::process::ExitCode;

use lb::config::{self, Command, Mode};
use lb::drain::Stopped;
use lb::event_loop::EventLoop;
use lb::journal::Journal;

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
    if let Err(e) = simple_logger::SimpleLogger::new()
        .with_level(cfg.log_level)
        .init()
    {
        eprintln!("lb: cannot start logging: {e}");
    }
    if cfg.journal.is_none() && cfg.mode == Mode::Http {
        log::info!(
            "no --journal: POST copies still owed are kept in memory only, and a crash of \
             lb loses them"
        );
    }
    let journal = match cfg.journal.as_deref() {
        Some(dir) => match Journal::open(dir, cfg.journal_sync) {
            Ok(opened) => Some(opened),
            Err(e) => {
                log::error!("--journal {}: {e}", dir.display());
                return ExitCode::from(2);
            }
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
        Ok(addr) => log::info!("lb {} listening on {addr}", env!("CARGO_PKG_VERSION")),
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
