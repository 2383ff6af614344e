//! Telling systemd what lb is doing (`sd_notify`), without libsystemd: one datagram of
//! `KEY=value` lines to the unix socket named in `NOTIFY_SOCKET` (a path, or `@name` for
//! an abstract socket). READY=1 once lb serves and after each reload, RELOADING=1 when a
//! reload starts, STOPPING=1 when a drain starts, STATUS= for `systemctl status`.
//!
//! A `Notifier` is a plain value the loop calls; only worker 0 has one that sends. The
//! variable stays in the environment: a new lb started by an upgrade needs it too.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use log::{debug, warn};

const ENV: &str = "NOTIFY_SOCKET";

/// What to tell systemd, and where.
#[derive(Default)]
pub struct Notifier {
    /// systemd's socket and an unbound one to send from; `None` when lb is not run by
    /// systemd (or could not make the socket, said once).
    to: Option<(SocketAddr, UnixDatagram)>,
    /// `NOTIFY_SOCKET` as given, for the log.
    name: String,
    /// The STATUS= line systemd has last been sent.
    status: Option<String>,
    /// A send failed and was logged as a warning; until one succeeds, more are debug.
    warned: bool,
    /// STOPPING=1 was sent, or a new lb took over: this process has nothing more to say,
    /// and a READY=1 now would contradict the one that counts.
    done: bool,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`; one that sends nothing when it is not set.
    pub fn from_env() -> Self {
        match std::env::var_os(ENV) {
            Some(value) if !value.is_empty() => Self::at(&value),
            _ => Self::default(),
        }
    }

    /// One that sends to `value` (a path or `@name`).
    pub fn at(value: &OsStr) -> Self {
        let name = value.to_string_lossy().into_owned();
        let to = address(value).and_then(|addr| {
            let sock = UnixDatagram::unbound()?;
            // A full queue at systemd's end must not stop the loop: that message is lost.
            sock.set_nonblocking(true)?;
            Ok((addr, sock))
        });
        match to {
            Ok(to) => Notifier {
                to: Some(to),
                name,
                ..Self::default()
            },
            Err(e) => {
                warn!("{ENV}={name}: {e}; systemd is not told when lb is ready");
                Self::default()
            }
        }
    }

    /// Whether anything is sent: the status line need not be worked out otherwise.
    pub fn is_on(&self) -> bool {
        self.to.is_some() && !self.done
    }

    /// lb serves now, as process `MAINPID`: after an upgrade the new lb is the service's
    /// main process, and the old one exiting must not look to systemd like the service
    /// ending.
    pub fn started(&mut self, status: String) {
        let pid = std::process::id();
        self.say(&format!(
            "READY=1\nMAINPID={pid}\nSTATUS={}\n",
            line(&status)
        ));
        self.status = Some(status);
    }

    /// A reload is over, taken or refused: lb serves either way.
    pub fn ready(&mut self, status: String) {
        self.say(&format!("READY=1\nSTATUS={}\n", line(&status)));
        self.status = Some(status);
    }

    /// A reload starts. `Type=notify-reload` wants the time in the same datagram, to tell
    /// this reload from an earlier one (`monotonic_usec`).
    pub fn reloading(&mut self, monotonic_usec: u64) {
        self.say(&format!("RELOADING=1\nMONOTONIC_USEC={monotonic_usec}\n"));
    }

    /// A stop signal: lb drains and exits. Nothing is sent after this.
    pub fn stopping(&mut self) {
        self.say("STOPPING=1\n");
        self.done = true;
    }

    /// A new lb serves now and has said so: this one goes quiet, so that nothing it says
    /// while it drains (its STATUS, STOPPING=1) is taken for the service's.
    pub fn handed_over(&mut self) {
        self.done = true;
    }

    /// The summary line, sent only when it differs from the last one sent.
    pub fn status(&mut self, status: String) {
        if self.status.as_ref() == Some(&status) {
            return;
        }
        self.say(&format!("STATUS={}\n", line(&status)));
        self.status = Some(status);
    }

    fn say(&mut self, message: &str) {
        let Some((addr, sock)) = self.to.as_ref().filter(|_| !self.done) else {
            return;
        };
        match sock.send_to_addr(message.as_bytes(), addr) {
            Ok(_) => self.warned = false,
            Err(e) if self.warned => debug!("cannot tell systemd at {}: {e}", self.name),
            Err(e) => {
                self.warned = true;
                warn!(
                    "cannot tell systemd at {} ({}): {e}; further failures are logged at \
                     debug level until one succeeds",
                    self.name,
                    message.lines().next().unwrap_or_default()
                );
            }
        }
    }
}

/// `STATUS=2 pool(s), 5/6 backends up, 0 POST copies owed`.
pub fn summary(pools: usize, up: usize, listed: usize, owed: usize) -> String {
    format!("{pools} pool(s), {up}/{listed} backends up, {owed} POST copies owed")
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares MONOTONIC_USEC with.
/// `Instant` reads the same clock but does not say its value.
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into a live one.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000)
}

/// A path, or an abstract socket written `@name`, as sd_notify reads the variable.
fn address(value: &OsStr) -> io::Result<SocketAddr> {
    let bytes = value.as_bytes();
    match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None if bytes.starts_with(b"/") => SocketAddr::from_pathname(value),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "neither an absolute path nor @name",
        )),
    }
}

/// One line, whatever the value holds: a newline would start a field of its own.
fn line(value: &str) -> String {
    value.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// systemd's end: a socket bound in a directory of its own.
    struct Systemd {
        sock: UnixDatagram,
        dir: std::path::PathBuf,
    }

    impl Systemd {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("lb-notify-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let sock = UnixDatagram::bind(dir.join("notify")).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            Systemd { sock, dir }
        }

        fn notifier(&self) -> Notifier {
            Notifier::at(self.dir.join("notify").as_os_str())
        }

        fn next(&self) -> String {
            let mut got = [0u8; 512];
            let n = self.sock.recv(&mut got).unwrap();
            String::from_utf8_lossy(&got[..n]).into_owned()
        }

        fn nothing_more(&self) {
            self.sock.set_nonblocking(true).unwrap();
            let mut got = [0u8; 512];
            let more = self.sock.recv(&mut got).map(|n| got[..n].to_vec());
            assert!(more.is_err(), "{:?}", more.map(String::from_utf8));
        }
    }

    impl Drop for Systemd {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn each_message_is_one_datagram_and_the_status_only_when_it_changes() {
        let systemd = Systemd::new("messages");
        let mut n = systemd.notifier();
        assert!(n.is_on());
        n.started(summary(1, 2, 2, 0));
        let pid = std::process::id();
        assert_eq!(
            systemd.next(),
            format!(
                "READY=1\nMAINPID={pid}\nSTATUS=1 pool(s), 2/2 backends up, 0 POST copies owed\n"
            )
        );
        n.status(summary(1, 2, 2, 0));
        n.status(summary(1, 1, 2, 3));
        assert_eq!(
            systemd.next(),
            "STATUS=1 pool(s), 1/2 backends up, 3 POST copies owed\n"
        );
        n.reloading(1_234_567);
        assert_eq!(systemd.next(), "RELOADING=1\nMONOTONIC_USEC=1234567\n");
        n.ready("two\nlines".into());
        assert_eq!(systemd.next(), "READY=1\nSTATUS=two lines\n");
        n.stopping();
        assert_eq!(systemd.next(), "STOPPING=1\n");
        n.ready(summary(1, 2, 2, 0));
        n.status(summary(9, 9, 9, 9));
        n.reloading(1);
        n.stopping();
        assert!(!n.is_on());
        systemd.nothing_more();
    }

    #[test]
    fn after_a_handover_the_old_lb_says_nothing() {
        let systemd = Systemd::new("handover");
        let mut n = systemd.notifier();
        n.handed_over();
        n.status(summary(1, 0, 1, 0));
        n.stopping();
        systemd.nothing_more();
    }

    #[test]
    fn an_abstract_socket_is_written_with_an_at_sign() {
        let name = format!("lb-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let systemd = UnixDatagram::bind_addr(&addr).unwrap();
        let mut n = Notifier::at(format!("@{name}").as_ref());
        n.stopping();
        let mut got = [0u8; 64];
        let len = systemd.recv(&mut got).unwrap();
        assert_eq!(&got[..len], b"STOPPING=1\n");
    }

    #[test]
    fn a_failed_send_warns_once_until_one_succeeds() {
        let systemd = Systemd::new("failing");
        let path = systemd.dir.join("notify");
        let mut n = systemd.notifier();
        drop(systemd);
        n.status("a".into());
        assert!(n.warned);
        n.status("b".into());
        assert!(n.warned);
        let _ = std::fs::create_dir_all(path.parent().unwrap());
        let again = UnixDatagram::bind(&path).unwrap();
        n.status("c".into());
        assert!(!n.warned, "a send that works again re-arms the warning");
        let mut got = [0u8; 64];
        let len = again.recv(&mut got).unwrap();
        assert_eq!(&got[..len], b"STATUS=c\n");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_relative_path_or_no_variable_sends_nothing() {
        assert!(!Notifier::at("run/notify".as_ref()).is_on());
        assert!(!Notifier::default().is_on());
    }

    #[test]
    fn the_monotonic_clock_moves_on() {
        let a = monotonic_usec();
        assert!(a > 0);
        assert!(monotonic_usec() >= a);
    }
}
