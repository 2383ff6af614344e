//! Shared helpers for the integration tests: start the real `lb` and `backend` binaries
//! on loopback ports they choose themselves, and speak HTTP/1.1 over plain sockets.
#![allow(dead_code)] // each test binary uses a different subset

pub mod browser;
mod fd_limit;
pub mod load;
pub mod python;
mod raw;
pub mod tcp_queues;
#[allow(unused_imports)] // as above: not every test binary uses them
pub use fd_limit::lb_with_fd_limit;
#[allow(unused_imports)]
pub use raw::{RawBackend, exchange_raw};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod tls;

pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A child process that is killed when the test lets go of it.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Waits until a stderr line contains `needle`.
    pub fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if self.log_text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` (libc::SIGTERM, ...) to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid; it cannot have been reaped and reused
        // while `self.child` has not been waited for.
        let sent = unsafe { libc::kill(self.pid() as i32, signal) };
        assert_eq!(
            sent,
            0,
            "kill {}: {}",
            self.pid(),
            std::io::Error::last_os_error()
        );
    }

    /// The exit code once the process has exited within `within`; `None` if it still runs.
    pub fn exit_code_within(&mut self, within: Duration) -> Option<i32> {
        let end = Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status.code().unwrap_or(-1)),
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
                _ => return None,
            }
        }
    }

    /// Resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The address after `needle` in a log line, in either log format.
pub fn addr_after(line: &str, needle: &str) -> Option<SocketAddr> {
    let rest = line.split(needle).nth(1)?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || ".:[]".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].trim_end_matches(':').parse().ok()
}

/// Starts `bin` with `args` and waits for the stderr line "... listening on ADDR".
/// Its stdout (the access log) and stderr lines are both kept, in the order they come.
pub fn spawn(bin: &str, args: &[&str]) -> Proc {
    spawn_command(Command::new(bin).args(args))
}

/// Starts `cmd` (a binary of ours) and waits for the stderr line "... listening on ADDR".
pub fn spawn_command(cmd: &mut Command) -> Proc {
    let bin = cmd.get_program().to_string_lossy().into_owned();
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let stderr = child.stderr.take().expect("stderr is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(addr) = addr_after(&line, "listening on ") {
                let _ = tx.send(addr);
                sent = true;
            }
            if let Ok(mut l) = sink.lock() {
                l.push(line);
            }
        }
    });
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(mut l) = sink.lock() {
                l.push(line);
            }
        }
    });
    // A fixed -l port need not be logged (-q hides the line): connecting to it is enough.
    let fixed = args
        .windows(2)
        .filter(|w| w[0] == "-l")
        .filter_map(|w| w[1].parse::<SocketAddr>().ok())
        .next_back()
        .filter(|a| a.port() != 0);
    let found = match fixed {
        Some(a) => {
            eventually(Duration::from_secs(15), || TcpStream::connect(a).is_ok()).then_some(a)
        }
        None => rx.recv_timeout(Duration::from_secs(15)).ok(),
    };
    let addr = match found {
        Some(a) => a,
        None => {
            let _ = child.kill();
            let text = log.lock().map(|l| l.join("\n")).unwrap_or_default();
            panic!("{bin} {args:?} did not start listening:\n{text}");
        }
    };
    Proc { child, addr, log }
}

/// A port that was free a moment ago, for a backend that must come back on the same port.
/// It lies above the ephemeral range (32768-60999 by default), so that no outgoing
/// connection of a test running beside takes it as its source port while the backend is
/// away (that made a restarted backend fail to listen, now and then), and away from the
/// 20000-31999 that the scripts use.
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let start = std::process::id() as usize * 7919;
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 61_000 + (start + n * 104_729) % 4_500;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port as u16)) {
            drop(l);
            return port as u16;
        }
    }
    panic!("no free port in 61000-65499")
}

pub fn backend(name: &str, extra: &[&str]) -> Proc {
    backend_on(name, "127.0.0.1:0", extra)
}

pub fn backend_on(name: &str, listen: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["--listen", listen, "--name", name];
    args.extend_from_slice(extra);
    spawn(env!("CARGO_BIN_EXE_backend"), &args)
}

/// Starts lb on a free port in front of `backends`, with `extra` flags.
pub fn lb(backends: &[&Proc], extra: &[&str]) -> Proc {
    let addrs: Vec<String> = backends.iter().map(|b| b.addr.to_string()).collect();
    lb_addrs(&addrs.iter().map(String::as_str).collect::<Vec<_>>(), extra)
}

/// Without `--admin` in `extra` the admin listener is off: its default port is fixed,
/// and tests run side by side.
pub fn lb_addrs(backends: &[&str], extra: &[&str]) -> Proc {
    spawn(env!("CARGO_BIN_EXE_lb"), &lb_args(backends, extra))
}

/// lb's arguments for `lb_addrs`.
pub fn lb_args<'a>(backends: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["-l", "127.0.0.1:0"];
    for b in backends {
        args.push("-b");
        args.push(b);
    }
    if !extra.contains(&"--admin") {
        args.extend_from_slice(&["--admin", "off"]);
    }
    args.extend_from_slice(extra);
    args
}

/// lb running config file `path`, with `extra` flags (-v or -q).
pub fn lb_file(path: &str, extra: &[&str]) -> Proc {
    spawn_command(
        Command::new(env!("CARGO_BIN_EXE_lb"))
            .arg("-c")
            .arg(path)
            .args(extra),
    )
}

/// Where listener `name` of an lb run with a config file listens, from its start-up line
/// (lb counts as started once its first listener's line is out; the others' follow).
pub fn listener(lb: &Proc, name: &str) -> SocketAddr {
    let mut found = None;
    eventually(Duration::from_secs(5), || {
        found = lb
            .log_text()
            .lines()
            .filter(|l| l.contains(&format!(") listener {name} (")))
            .find_map(|l| addr_after(l, "listening on "));
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no listener {name}:\n{}", lb.log_text()))
}

/// The admin address of an lb started with `--admin 127.0.0.1:0`, from its log.
pub fn admin_addr(lb: &Proc) -> SocketAddr {
    let mut found = None;
    let logged = eventually(Duration::from_secs(5), || {
        found = lb
            .log_text()
            .lines()
            .find_map(|l| addr_after(l, "admin interface on "));
        found.is_some()
    });
    match (logged, found) {
        (true, Some(addr)) => addr,
        _ => panic!("lb logged no admin address:\n{}", lb.log_text()),
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub chunked: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP connection with its own read-ahead, for keep-alive and pipelining; over
/// plain TCP or anything else that reads and writes (a TLS stream).
pub struct Client<S = TcpStream> {
    pub stream: S,
    buf: Vec<u8>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        Client::over(connect(addr))
    }
}

impl<S: Read + Write> Client<S> {
    pub fn over(stream: S) -> Self {
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).expect("send request");
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        self.read_response(false)
            .expect("read a response")
            .expect("a response before close")
    }

    fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16384];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn take_line(&mut self) -> std::io::Result<Option<String>> {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..p]).into_owned();
                self.buf.drain(..p + 2);
                return Ok(Some(line));
            }
            if self.fill()? == 0 {
                return Ok(None);
            }
        }
    }

    fn take_exact(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "body cut short",
                ));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads one response; `None` when the connection closed before a status line.
    /// Interim 1xx responses are skipped.
    pub fn read_response(&mut self, head_request: bool) -> std::io::Result<Option<Response>> {
        loop {
            let Some(status_line) = self.take_line()? else {
                return Ok(None);
            };
            let status: u16 = status_line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
            let mut headers = Vec::new();
            loop {
                let line = self
                    .take_line()?
                    .ok_or_else(|| std::io::Error::other("eof in head"))?;
                if line.is_empty() {
                    break;
                }
                if let Some((n, v)) = line.split_once(':') {
                    headers.push((n.trim().to_string(), v.trim().to_string()));
                }
            }
            if (100..200).contains(&status) {
                continue;
            }
            let mut resp = Response {
                status,
                headers,
                body: Vec::new(),
                chunked: false,
            };
            if head_request || status == 204 || status == 304 {
                return Ok(Some(resp));
            }
            if resp
                .header("transfer-encoding")
                .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
            {
                resp.chunked = true;
                loop {
                    let size_line = self
                        .take_line()?
                        .ok_or_else(|| std::io::Error::other("eof in chunk"))?;
                    let size =
                        usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                            .map_err(|_| {
                                std::io::Error::other(format!("bad chunk size {size_line:?}"))
                            })?;
                    if size == 0 {
                        while self.take_line()?.is_some_and(|l| !l.is_empty()) {}
                        break;
                    }
                    let data = self.take_exact(size)?;
                    resp.body.extend_from_slice(&data);
                    self.take_exact(2)?;
                }
            } else if let Some(len) = resp.header("content-length") {
                let len: usize = len
                    .parse()
                    .map_err(|_| std::io::Error::other("bad length"))?;
                resp.body = self.take_exact(len)?;
            } else {
                while self.fill()? > 0 {}
                resp.body = std::mem::take(&mut self.buf);
            }
            return Ok(Some(resp));
        }
    }
}

impl Client {
    /// True when the peer has closed: a read returns end of file (or a reset) within `within`.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let _ = self.stream.set_read_timeout(Some(within));
        let mut b = [0u8; 1024];
        let end = Instant::now() + within;
        while Instant::now() < end {
            match self.stream.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
        false
    }
}

/// Retry and health-check flags fast enough for a test to see a backend come back.
pub const FAST_RETRIES: &[&str] = &[
    "--retry-base",
    "50ms",
    "--retry-max",
    "400ms",
    "--retry-jitter",
    "20ms",
    "--health-interval",
    "100ms",
    "--rise",
    "1",
    "--fall",
    "1",
];

/// A POST with an empty body on a fresh connection.
pub fn post(addr: SocketAddr, path: &str) -> Response {
    request(
        addr,
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
}

/// A POST with `body` on a fresh connection.
pub fn post_body(addr: SocketAddr, path: &str, body: &str) -> Response {
    request(
        addr,
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// One request on a fresh connection.
pub fn request(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut c = Client::new(addr);
    c.send(raw);
    c.read_response(raw.starts_with(b"HEAD "))
        .expect("read response")
        .expect("a response before close")
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// Polls `check` until it holds or `within` passes.
pub fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// A connection from a chosen loopback source address (any 127.x.y.z is local on Linux),
/// so that tests can look like many clients.
pub fn connect_from(source: std::net::Ipv4Addr, addr: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns until it is wrapped.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket failed");
        let stream = TcpStream::from_raw_fd(fd);
        let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(ip).to_be(),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let local = sockaddr(source, 0);
        let rc = libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len);
        assert_eq!(
            rc,
            0,
            "bind to {source}: {}",
            std::io::Error::last_os_error()
        );
        let SocketAddr::V4(v4) = addr else {
            panic!("IPv4 only");
        };
        let remote = sockaddr(*v4.ip(), v4.port());
        let rc = libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len);
        assert_eq!(
            rc,
            0,
            "connect to {addr}: {}",
            std::io::Error::last_os_error()
        );
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream
    }
}

impl Client {
    pub fn from_stream(stream: TcpStream) -> Self {
        Client::over(stream)
    }
}

/// The name in a demo backend's "Hello from NAME".
pub fn served_by(r: &Response) -> String {
    r.text()
        .trim()
        .trim_start_matches("Hello from ")
        .to_string()
}

/// Sends `n` GET / on fresh connections and counts answers by backend name.
pub fn tally(addr: SocketAddr, n: usize) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for _ in 0..n {
        let r = get(addr, "/");
        assert_eq!(r.status, 200, "{}", r.text());
        *counts.entry(served_by(&r)).or_insert(0) += 1;
    }
    counts
}

/// Checks that the /metrics of `lb` (started with `--admin 127.0.0.1:0`) has the sample `line`.
pub fn assert_metric(lb: &Proc, line: &str) {
    let metrics = get(admin_addr(lb), "/metrics").text();
    assert!(
        metrics.lines().any(|l| l == line),
        "no {line:?} in /metrics:\n{metrics}"
    );
}

/// One sample of lb's /metrics, e.g. `lb_fanout_copies_total{backend="..",result="sent"}`.
pub fn metric(admin: SocketAddr, series: &str) -> f64 {
    let text = get(admin, "/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// POST copies to `backend` that came to `result` (sent, delivered, retried, ...).
pub fn copies(admin: SocketAddr, backend: SocketAddr, result: &str) -> f64 {
    metric(
        admin,
        &format!("lb_fanout_copies_total{{backend=\"{backend}\",result=\"{result}\"}}"),
    )
}

/// Each of `users` reaches each of `backends` within 30 s, and is applied there once.
pub fn every_write_once(backends: &[&Proc], users: &[String]) {
    for b in backends {
        for user in users {
            assert!(
                eventually(Duration::from_secs(30), || registered(b, user) >= 1),
                "{user} never reached {}",
                b.addr
            );
            assert_eq!(registered(b, user), 1, "{user} applied twice on {}", b.addr);
        }
    }
}

/// How many times `user` was registered on demo backend `b` (0 when unknown or unreachable).
pub fn registered(b: &Proc, user: &str) -> u32 {
    if TcpStream::connect(b.addr).is_err() {
        return 0;
    }
    let mut c = Client::new(b.addr);
    c.send(
        format!("GET /users/{user} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    match c.read_response(false) {
        Ok(Some(r)) if r.status == 200 => r
            .text()
            .split_whitespace()
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}
