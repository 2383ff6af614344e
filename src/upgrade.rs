//! Upgrading lb without dropping a connection (SIGUSR2), as nginx does on USR2.
//!
//! The running lb starts the binary at its own path again (the file on disk, so that a
//! freshly built lb takes over) with the same arguments, and the new process inherits the
//! listening sockets themselves: both accept from the same queue until the new one says it
//! serves, then the old one closes its copies and drains. A listening socket is never
//! closed while clients wait in its queue, which is why the sockets are passed rather than
//! bound again with SO_REUSEPORT: closing a SO_REUSEPORT listener resets the connections
//! waiting in its own queue.
//!
//! The descriptors are named in one environment variable,
//! `LB_INHERITED_FDS=ready=FD,admin=FD,NAME=FD,...`, each listener by its name; the new
//! process takes the listener of each name it has, binds the others, and closes what it
//! no longer has. The form of lb versions before named listeners,
//! `listen,tls,admin,ready` (`-` for one lb did not have, or three fields without `tls`),
//! is read too. `ready` is the write end of a pipe on which the new process writes one
//! byte once it serves. End of file without that byte means it failed; the old process
//! then logs why and goes on serving. Under systemd the new process tells it its pid
//! before writing that byte (`notify.rs`), so the old one's exit is not the service's.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use log::info;
use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::config::from_flags::{LISTENER, TLS_LISTENER};
use crate::config::model::{Site, Source};

const ENV: &str = "LB_INHERITED_FDS";

/// What a new process got from the lb that started it.
struct Inherited {
    /// Traffic listeners by name.
    traffic: Vec<(String, std::net::TcpListener)>,
    admin: Option<std::net::TcpListener>,
    ready: ReadyPipe,
}

/// The listening sockets: one for each of the site's listeners, in its order, and the
/// admin one if configured, and the pipe on which to say that this process serves if it
/// was started by an upgrade.
pub struct Listeners {
    pub traffic: Vec<TcpListener>,
    pub admin: Option<TcpListener>,
    pub ready: Option<ReadyPipe>,
}

/// The new process's end of the pipe that says it serves.
pub struct ReadyPipe(OwnedFd);

impl ReadyPipe {
    /// Tells the old lb that this one accepts clients now; it then stops accepting.
    pub fn announce(self) {
        // SAFETY: writes one byte from a live buffer to a descriptor this value owns.
        unsafe { libc::write(self.0.as_raw_fd(), b"R".as_ptr().cast(), 1) };
    }
}

/// This process was started by an upgrade: the lb it replaces still runs.
pub fn inheriting() -> bool {
    std::env::var_os(ENV).is_some()
}

/// The listeners: those handed over by the lb that started this one (with the pipe on
/// which to say that this one serves), or new ones. Called once, before any thread
/// starts: it takes the variable out of the environment.
pub fn listeners(site: &Site) -> Result<Listeners, String> {
    let mut inherited = inherited()?;
    let mut traffic = Vec::with_capacity(site.listeners.len());
    for l in &site.listeners {
        let handed = inherited.as_mut().and_then(|got| {
            let at = got.traffic.iter().position(|(name, _)| *name == l.name)?;
            Some(got.traffic.swap_remove(at).1)
        });
        let sock = match handed {
            Some(sock) => TcpListener::from_std(sock),
            None => TcpListener::bind(l.address).map_err(|e| {
                let hint = match (&site.source, l.name.as_str()) {
                    (Source::Flags, LISTENER) => "-l ADDR listens elsewhere".to_string(),
                    (Source::Flags, TLS_LISTENER) => {
                        "--tls-listen ADDR listens elsewhere".to_string()
                    }
                    _ => format!("listener {}: give it another address", l.name),
                };
                format!("cannot listen on {}: {e} ({hint})", l.address)
            })?,
        };
        traffic.push(sock);
    }
    let (admin, ready) = match inherited {
        Some(got) => {
            for (name, _) in &got.traffic {
                info!("upgrade: listener {name} is no longer configured; closing it");
            }
            (got.admin.map(TcpListener::from_std), Some(got.ready))
        }
        None => (None, None),
    };
    let admin = match (admin, site.admin.listen) {
        (Some(a), _) => Some(a),
        (None, Some(addr)) => Some(TcpListener::bind(addr).map_err(|e| {
            format!(
                "cannot listen on {addr} for the admin interface: {e}; give it another \
                 address with --admin ADDR, or turn it off with --admin off"
            )
        })?),
        (None, None) => None,
    };
    Ok(Listeners {
        traffic,
        admin,
        ready,
    })
}

fn inherited() -> Result<Option<Inherited>, String> {
    let Some(value) = std::env::var_os(ENV) else {
        return Ok(None);
    };
    // SAFETY: lb has started no thread yet, so nothing reads the environment meanwhile.
    unsafe { std::env::remove_var(ENV) };
    let value = value.to_string_lossy().into_owned();
    let bad = || format!("{ENV}={value}: expected ready=FD,admin=FD,NAME=FD,...");
    let fd = |f: &str| -> Result<Option<RawFd>, String> {
        match f {
            "-" => Ok(None),
            f => f.parse().map(Some).map_err(|_| bad()),
        }
    };
    let named: Vec<(String, RawFd)> = if value.contains('=') {
        value
            .split(',')
            .map(|kv| {
                let (k, v) = kv.split_once('=').ok_or_else(bad)?;
                Ok((k.to_string(), fd(v)?.ok_or_else(bad)?))
            })
            .collect::<Result<_, String>>()?
    } else {
        // Before named listeners: listen,tls,admin,ready (or listen,admin,ready).
        let fds: Vec<Option<RawFd>> = value.split(',').map(fd).collect::<Result<_, _>>()?;
        let names: &[&str] = match fds.len() {
            4 => &[LISTENER, TLS_LISTENER, "admin", "ready"],
            3 => &[LISTENER, "admin", "ready"],
            _ => return Err(bad()),
        };
        names
            .iter()
            .zip(fds)
            .filter_map(|(n, f)| f.map(|f| (n.to_string(), f)))
            .collect()
    };
    let listener = |fd: RawFd| -> Result<std::net::TcpListener, String> {
        if !is_listening(fd) {
            return Err(format!("{ENV}: descriptor {fd} is not a listening socket"));
        }
        // SAFETY: the descriptor is open (it answered getsockopt), was handed to this
        // process for this use, and nothing else here owns it.
        let l = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        l.set_nonblocking(true)
            .map_err(|e| format!("{ENV}: descriptor {fd}: {e}"))?;
        Ok(l)
    };
    let mut ready = None;
    let mut admin = None;
    let mut traffic = Vec::new();
    for (name, fd) in named {
        match name.as_str() {
            // SAFETY: handed to this process as the write end of the ready pipe, owned by
            // no one else.
            "ready" => ready = Some(ReadyPipe(unsafe { OwnedFd::from_raw_fd(fd) })),
            "admin" => admin = Some(listener(fd)?),
            _ => traffic.push((name, listener(fd)?)),
        }
    }
    Ok(Some(Inherited {
        traffic,
        admin,
        ready: ready.ok_or_else(bad)?,
    }))
}

fn is_listening(fd: RawFd) -> bool {
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `on`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&raw mut on).cast(),
            &mut len,
        )
    };
    rc == 0 && on == 1
}

/// The file this process was started from. A rebuilt binary replaces that file, and the
/// link then names the old, deleted one: the path is what is wanted, not that inode.
fn own_path() -> io::Result<PathBuf> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let text = exe.to_string_lossy();
    Ok(match text.strip_suffix(" (deleted)") {
        Some(path) => PathBuf::from(path),
        None => exe,
    })
}

/// The loop's side of SIGUSR2: at most one new process at a time, its ready pipe watched
/// by the poll under one token.
#[derive(Default)]
pub struct Upgrades {
    pending: Option<Pending>,
}

/// How an upgrade ended.
pub enum Outcome {
    /// The new process, by pid, accepts clients now.
    Serving(u32),
    Failed(String),
}

impl Upgrades {
    /// Starts the binary on disk with the listeners' descriptors, each by its name (the
    /// admin one as `admin`); returns the new pid.
    pub fn start(
        &mut self,
        registry: &Registry,
        token: Token,
        fds: Vec<(String, RawFd)>,
    ) -> Result<u32, String> {
        if let Some(p) = &self.pending {
            return Err(format!("pid {} is already starting to take over", p.pid()));
        }
        let mut p = start(fds)?;
        if let Err(e) = registry.register(&mut SourceFd(&p.fd()), token, Interest::READABLE) {
            p.abandon();
            return Err(format!("cannot watch the new process: {e}"));
        }
        info!(
            "SIGUSR2: started {} as pid {}; it takes over once it serves",
            p.path.display(),
            p.pid()
        );
        let pid = p.pid();
        self.pending = Some(p);
        Ok(pid)
    }

    /// What the new process said on its pipe, once it has said something.
    pub fn progress(&mut self, registry: &Registry) -> Option<Outcome> {
        let p = self.pending.as_mut()?;
        let outcome = match p.progress() {
            Progress::Waiting => return None,
            Progress::Serving => Outcome::Serving(p.pid()),
            Progress::Failed(why) => Outcome::Failed(why),
        };
        self.forget(registry);
        Some(outcome)
    }

    /// Stops the new process `pid` if it is still starting (its time is up, or lb is
    /// stopping); true if there was one.
    pub fn stop(&mut self, registry: &Registry, pid: Option<u32>) -> bool {
        match self.pending.as_mut() {
            Some(p) if pid.is_none_or(|pid| pid == p.pid()) => {
                p.abandon();
                self.forget(registry);
                true
            }
            _ => false,
        }
    }

    fn forget(&mut self, registry: &Registry) {
        if let Some(p) = self.pending.take() {
            let _ = registry.deregister(&mut SourceFd(&p.fd()));
        }
    }
}

/// A new process started, not yet serving.
struct Pending {
    child: Child,
    /// Read end of the ready pipe, non-blocking.
    ready: OwnedFd,
    path: PathBuf,
}

/// What the new process has done so far.
enum Progress {
    Waiting,
    Serving,
    Failed(String),
}

/// Starts the binary at our own path with our arguments, handing it the listeners.
fn start(listeners: Vec<(String, RawFd)>) -> Result<Pending, String> {
    let path = own_path().map_err(|e| format!("cannot find the lb binary: {e}"))?;
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 fills in.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!(
            "cannot make a pipe: {}",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: pipe2 succeeded, so both are open descriptors that nothing else owns.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor this function owns.
    unsafe {
        let flags = libc::fcntl(read.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(read.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let ready = write.as_raw_fd();
    let named: Vec<String> = listeners
        .iter()
        .map(|(name, fd)| format!("{name}={fd}"))
        .collect();
    let mut cmd = Command::new(&path);
    cmd.args(std::env::args_os().skip(1))
        .env(ENV, format!("ready={ready},{}", named.join(",")));
    let keep: Vec<RawFd> = listeners
        .into_iter()
        .map(|(_, fd)| fd)
        .chain([ready])
        .collect();
    // SAFETY: between fork and exec only fcntl runs, which is async-signal-safe; it lets
    // exactly these descriptors survive the exec.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &keep {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    drop(write);
    Ok(Pending {
        child,
        ready: read,
        path,
    })
}

impl Pending {
    fn fd(&self) -> RawFd {
        self.ready.as_raw_fd()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads what the new process wrote on the ready pipe.
    fn progress(&mut self) -> Progress {
        let mut byte = [0u8; 1];
        // SAFETY: reads at most one byte into a live buffer.
        let got = unsafe { libc::read(self.fd(), byte.as_mut_ptr().cast(), 1) };
        match got {
            1 => Progress::Serving,
            0 => Progress::Failed(self.reap()),
            _ => match io::Error::last_os_error() {
                e if e.kind() == io::ErrorKind::WouldBlock => Progress::Waiting,
                e if e.kind() == io::ErrorKind::Interrupted => Progress::Waiting,
                e => Progress::Failed(format!("cannot read the ready pipe: {e}; {}", self.reap())),
            },
        }
    }

    /// The new process closed the pipe without serving: it is exiting. Its exit status,
    /// collected so that it does not stay a zombie.
    fn reap(&mut self) -> String {
        for _ in 0..50 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return format!("the new process exited ({status}) before serving");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.abandon();
        "the new process closed its ready pipe without serving; stopped it".into()
    }

    /// Stops a new process that will not serve.
    fn abandon(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_path_is_a_file() {
        assert!(own_path().unwrap().is_file());
    }

    #[test]
    fn only_listening_sockets_pass() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(is_listening(l.as_raw_fd()));
        let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        assert!(!is_listening(s.as_raw_fd()));
        assert!(!is_listening(-1));
    }
}
