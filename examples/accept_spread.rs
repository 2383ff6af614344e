//! How the kernel spreads new connections over worker threads, for `scripts/workers_bench.sh`:
//! two ways of sharing one port, measured side by side with the same clients.
//!
//! - `reuseport`: each worker binds its own socket with SO_REUSEPORT; the kernel picks a
//!   socket by a hash of the connection's addresses.
//! - `exclusive`: one socket, registered in every worker's epoll with EPOLLEXCLUSIVE; the
//!   kernel wakes one worker that waits in epoll_wait, the first registered first.
//! - `exclusive-requeue`: the same, and a worker holding more than its share of the open
//!   connections registers again, which puts it last (what lb does).
//!
//! Each run: `workers` threads accept and hold connections; the client opens `clients`
//! connections one after another (a pause between, so that every worker is idle when the
//! next arrives: a few long-lived connections), or `clients` connections as fast as it can
//! and closes each at once (many short ones). Prints the connections each worker got.
//!
//! `cargo run --release --example accept_spread -- MODE WORKERS CLIENTS long|short ROUNDS`

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Reuseport,
    Exclusive,
    Requeue,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "MODE(reuseport|exclusive|exclusive-requeue) WORKERS CLIENTS long|short ROUNDS";
    let [mode, workers, clients, kind, rounds] = &args[..] else {
        eprintln!("usage: accept_spread {usage}");
        std::process::exit(2);
    };
    let mode = match mode.as_str() {
        "reuseport" => Mode::Reuseport,
        "exclusive" => Mode::Exclusive,
        "exclusive-requeue" => Mode::Requeue,
        _ => {
            eprintln!("usage: accept_spread {usage}");
            std::process::exit(2);
        }
    };
    let parse = |s: &str| s.parse::<usize>().unwrap_or(0).max(1);
    let (workers, clients, rounds) = (parse(workers), parse(clients), parse(rounds));
    let long = kind == "long";
    for _ in 0..rounds {
        let got = run(mode, workers, clients, long).expect("a run");
        let shown: Vec<String> = got.iter().map(usize::to_string).collect();
        println!("{}", shown.join(" "));
    }
}

/// One run: connections accepted by each worker.
fn run(mode: Mode, workers: usize, clients: usize, long: bool) -> io::Result<Vec<usize>> {
    let first = bind(
        mode == Mode::Reuseport,
        "127.0.0.1:0".parse().expect("addr"),
    )?;
    let addr = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..workers {
        let next = match mode {
            Mode::Reuseport => bind(true, addr)?,
            _ => duplicate(&sockets[0])?,
        };
        sockets.push(next);
    }
    let open = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(Barrier::new(workers + 1));
    let threads: Vec<_> = sockets
        .into_iter()
        .map(|sock| {
            let (open, stop, ready) = (Arc::clone(&open), Arc::clone(&stop), Arc::clone(&ready));
            std::thread::spawn(move || worker(mode, sock, workers, &open, &stop, &ready))
        })
        .collect();
    ready.wait();
    let mut held = Vec::new();
    for _ in 0..clients {
        let s = TcpStream::connect(addr)?;
        if long {
            held.push(s);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    drop(held);
    threads
        .into_iter()
        .map(|t| t.join().map_err(|_| io::Error::other("worker panicked"))?)
        .collect()
}

fn worker(
    mode: Mode,
    mut sock: TcpListener,
    workers: usize,
    open: &AtomicUsize,
    stop: &AtomicBool,
    ready: &Barrier,
) -> io::Result<usize> {
    let mut poll = Poll::new()?;
    let token = Token(0);
    if mode == Mode::Reuseport {
        poll.registry()
            .register(&mut sock, token, Interest::READABLE)?;
    } else {
        exclusive(&poll, &sock, libc::EPOLL_CTL_ADD)?;
    }
    ready.wait();
    let mut events = Events::with_capacity(64);
    let mut mine = 0;
    let mut held = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(20)))?;
        if events.is_empty() {
            continue;
        }
        while let Ok((s, _)) = sock.accept() {
            mine += 1;
            open.fetch_add(1, Ordering::Relaxed);
            held.push(s);
        }
        if mode == Mode::Requeue && mine * workers > open.load(Ordering::Relaxed) {
            exclusive(&poll, &sock, libc::EPOLL_CTL_DEL)?;
            exclusive(&poll, &sock, libc::EPOLL_CTL_ADD)?;
        }
    }
    Ok(mine)
}

fn exclusive(poll: &Poll, sock: &TcpListener, op: libc::c_int) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET | libc::EPOLLEXCLUSIVE) as u32,
        u64: 0,
    };
    // SAFETY: epoll_ctl on live descriptors with an event it only reads.
    let rc = unsafe { libc::epoll_ctl(poll.as_raw_fd(), op, sock.as_raw_fd(), &mut event) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn bind(reuseport: bool, addr: SocketAddr) -> io::Result<TcpListener> {
    let SocketAddr::V4(v4) = addr else {
        return Err(io::Error::other("IPv4 only"));
    };
    // SAFETY: plain socket calls on a descriptor owned here until it is handed to mio.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let on: libc::c_int = 1;
        let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        if reuseport {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_REUSEPORT,
                (&raw const on).cast(),
                size,
            );
        }
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, (&raw const sin).cast(), len) != 0 || libc::listen(fd, 1024) != 0 {
            let e = io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(TcpListener::from_raw_fd(fd))
    }
}

fn duplicate(sock: &TcpListener) -> io::Result<TcpListener> {
    // SAFETY: a new descriptor for a socket `sock` keeps open.
    let fd = unsafe { libc::fcntl(sock.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fresh descriptor is owned by nothing else.
    Ok(unsafe { TcpListener::from_raw_fd(fd) })
}
