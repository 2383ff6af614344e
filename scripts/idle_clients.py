#!/usr/bin/env python3
"""Open many idle HTTP/1.1 keep-alive connections to one address and hold them
(or, with --partial-head, many slowloris connections that never finish their head).

Each connection sends one `GET PATH` (keep-alive), reads the whole answer, then stays
open and idle. When every connection has been tried, one line is printed to stdout:

    READY open=4998 failed=2 seconds=1.84

and the connections are held until stdin reaches EOF (--wait stdin, the default) or
SIGTERM/SIGINT arrives (--wait signal). The exit status is 0 when all connections were
opened and answered, 1 otherwise. Only the address given is ever contacted.

    python3 scripts/idle_clients.py --port 8080 -n 5000 --wait signal &

With --tls each connection is HTTPS instead (the certificate is not checked): the handshake
is finished and one request answered before the connection is held.
"""

import argparse
import errno
import resource
import selectors
import signal
import socket
import ssl
import sys
import time


def raise_fd_limit(wanted):
    """Raise RLIMIT_NOFILE to `wanted` (capped by the hard limit); returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            print(f"idle_clients: cannot raise the fd limit to {target}: {e}", file=sys.stderr)
    return soft


class Conn:
    __slots__ = ("sock", "state", "out", "inbuf", "need", "started")

    def __init__(self, sock, request):
        self.sock = sock
        self.state = "connecting"
        self.out = request
        self.inbuf = b""
        self.need = None  # total bytes of head + body, once the head is read
        self.started = time.monotonic()


def response_complete(c):
    """True once `c.inbuf` holds a whole Content-Length framed response (or a bodiless one)."""
    if c.need is None:
        end = c.inbuf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = c.inbuf[:end].decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
            elif name.strip().lower() == "transfer-encoding":
                # Not used by the demo backend for GET /; accept the end of a chunked body.
                length = None
        if length is None:
            return c.inbuf.endswith(b"0\r\n\r\n")
        c.need = end + 4 + length
    return len(c.inbuf) >= c.need


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to connect to (default 127.0.0.1)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("-n", "--connections", type=int, default=5000, help="connections to open (default 5000)")
    p.add_argument("--path", default="/", help="path of the one GET each connection sends (default /)")
    p.add_argument("--in-flight", type=int, default=200,
                   help="connections being opened at once, so the listen backlog is not overrun (default 200)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds for one connection to be answered (default 10)")
    p.add_argument("--tls", action="store_true", help="speak HTTPS (certificates are not verified)")
    p.add_argument("--wait", choices=("stdin", "signal"), default="stdin",
                   help="hold the connections until stdin EOF (default) or until SIGTERM/SIGINT")
    p.add_argument("--partial-head", action="store_true",
                   help="slowloris: send only the first lines of the head, never its end, and "
                        "count a connection as open once they are sent")
    args = p.parse_args()

    limit = raise_fd_limit(args.connections + 64)
    if limit < args.connections + 16:
        print(f"idle_clients: fd limit {limit} is too low for {args.connections} connections", file=sys.stderr)
        return 1

    stop = False

    def on_signal(_sig, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    tls = None
    if args.tls:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE

    request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
               "User-Agent: idle_clients\r\n" + ("" if args.partial_head else "\r\n")).encode()
    sel = selectors.DefaultSelector()
    pending = {}  # fd -> Conn, still connecting or waiting for the answer
    idle = []     # sockets answered and held open
    failed = 0
    errors = {}
    to_start = args.connections
    t0 = time.monotonic()

    def fail(c, why):
        nonlocal failed
        failed += 1
        errors[why] = errors.get(why, 0) + 1
        sel.unregister(c.sock)
        del pending[c.sock.fileno()]
        c.sock.close()

    while (to_start or pending) and not stop:
        while to_start and len(pending) < args.in_flight:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = s.connect_ex((args.host, args.port))
            to_start -= 1
            if err not in (0, errno.EINPROGRESS):
                failed += 1
                why = errno.errorcode.get(err, str(err))
                errors[why] = errors.get(why, 0) + 1
                s.close()
                continue
            c = Conn(s, request)
            pending[s.fileno()] = c
            sel.register(s, selectors.EVENT_WRITE, c)

        for key, _ in sel.select(timeout=0.2):
            c = key.data
            s = c.sock
            try:
                if c.state == "connecting":
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        fail(c, errno.errorcode.get(err, str(err)))
                        continue
                    c.state = "writing"
                    if tls is not None:
                        fd = s.fileno()
                        sel.unregister(s)
                        c.sock = s = tls.wrap_socket(s, do_handshake_on_connect=False)
                        pending[fd] = c
                        sel.register(s, selectors.EVENT_WRITE, c)
                        c.state = "handshaking"
                if c.state == "handshaking":
                    try:
                        s.do_handshake()
                    except ssl.SSLWantReadError:
                        sel.modify(s, selectors.EVENT_READ, c)
                        continue
                    except ssl.SSLWantWriteError:
                        sel.modify(s, selectors.EVENT_WRITE, c)
                        continue
                    c.state = "writing"
                    sel.modify(s, selectors.EVENT_WRITE, c)
                if c.state == "writing":
                    n = s.send(c.out)
                    c.out = c.out[n:]
                    if not c.out and args.partial_head:
                        sel.unregister(s)
                        del pending[s.fileno()]
                        idle.append(s)
                    elif not c.out:
                        c.state = "reading"
                        sel.modify(s, selectors.EVENT_READ, c)
                    continue
                data = s.recv(65536)
                if not data:
                    fail(c, "closed before the answer")
                    continue
                c.inbuf += data
                if response_complete(c):
                    if not c.inbuf.startswith(b"HTTP/1.1 2"):
                        fail(c, "status " + c.inbuf[9:12].decode("latin-1"))
                        continue
                    sel.unregister(s)
                    del pending[s.fileno()]
                    idle.append(s)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            except OSError as e:
                fail(c, errno.errorcode.get(e.errno, str(e)))

        now = time.monotonic()
        for c in [c for c in pending.values() if now - c.started > args.timeout]:
            fail(c, "timeout")

    elapsed = time.monotonic() - t0
    print(f"READY open={len(idle)} failed={failed} seconds={elapsed:.2f}", flush=True)
    if errors:
        print("idle_clients: failures: " + ", ".join(f"{k} x{v}" for k, v in sorted(errors.items())),
              file=sys.stderr)

    # Hold the connections. A peer that closes one is noticed and counted.
    for s in idle:
        sel.register(s, selectors.EVENT_READ, None)
    closed_by_peer = 0
    if args.wait == "stdin" and not stop:
        try:
            sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
        except (PermissionError, ValueError):
            # A file or /dev/null cannot be polled: read it to its end, which comes at once.
            while sys.stdin.buffer.read(65536):
                pass
            stop = True
    while not stop:
        for key, _ in sel.select(timeout=1.0):
            if key.data == "stdin":
                if not sys.stdin.buffer.read1(4096):
                    stop = True
                continue
            s = key.fileobj
            try:
                data = s.recv(4096)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue  # a TLS record that carried no data (a session ticket)
            except OSError:
                data = b""
            if not data:
                closed_by_peer += 1
                sel.unregister(s)
                s.close()
    if closed_by_peer:
        print(f"idle_clients: {closed_by_peer} connections were closed by the peer while idle", file=sys.stderr)
    for s in idle:
        s.close()
    return 0 if failed == 0 and closed_by_peer == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
