#!/usr/bin/env python3
"""Load for scripts/soak.sh: keep-alive GET and POST clients and a slowloris crowd against
one address, for a fixed time, then one summary line per kind of outcome.

Each worker thread keeps one keep-alive connection and sends GET / (or, one in four,
POST /register) in a loop; a broken connection is counted and reopened. The slowloris
crowd holds --slow connections that each send half a request head, then one more header
line every few seconds, and reopens those lb closes. Only the address given is contacted.

Latency is measured per answer (list.append is atomic under the GIL). An answer is
"served" (2xx), "backend" (a 4xx/5xx the backend itself sent), or "lost": an
error lb made up (502/503/504 with lb's one-line text), a connection lb dropped, or no
answer within --timeout. Exit status 0 when nothing was lost.
"""

import argparse
import collections
import selectors
import socket
import threading
import time


def read_response(sock, buf):
    """Reads one Content-Length framed response; returns (status, body, rest of buf)."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed before the head")
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed mid-body")
        rest += data
    return status, rest[:length], rest[length:]


LB_TEXTS = (b"no backend", b"could not be reached", b"failed to answer", b"broken response",
            b"did not answer in time", b"no backend has confirmed", b"out of connections",
            b"no backend accepted", b"too many writes")


def quantile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def worker(args, stop, counts, lock, n, latencies):
    sock, buf = None, b""
    i = 0
    while not stop.is_set():
        i += 1
        post = args.post_every > 0 and i % args.post_every == 0
        if post:
            req = (f"POST /register?username=soak{n}x{i}&password=p HTTP/1.1\r\nHost: soak\r\n"
                   "Content-Length: 0\r\n\r\n").encode()
        else:
            req = b"GET / HTTP/1.1\r\nHost: soak\r\n\r\n"
        kind = "POST" if post else "GET"
        try:
            if sock is None:
                sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
                buf = b""
            sent = time.monotonic()
            sock.sendall(req)
            status, body, buf = read_response(sock, buf)
            latencies[kind].append((sent, time.monotonic() - sent))
            if 200 <= status < 300:
                outcome = "served"
            elif any(t in body for t in LB_TEXTS):
                outcome = f"lost: lb {status} {body.strip().decode('latin-1')[:60]}"
            else:
                outcome = f"backend {status}"
        except socket.timeout:
            outcome = "lost: no answer in time"
            sock = None
        except OSError as e:
            outcome = f"lost: connection {type(e).__name__}"
            sock = None
        with lock:
            counts[(kind, outcome)] += 1


def slowloris(args, stop, counts, lock):
    sel = selectors.DefaultSelector()
    socks = {}
    last_drip = time.monotonic()

    def open_one():
        try:
            s = socket.create_connection((args.host, args.port), timeout=2)
            s.setblocking(False)
            s.send(b"GET /slow HTTP/1.1\r\nHost: soak\r\n")
            socks[s.fileno()] = s
            sel.register(s, selectors.EVENT_READ)
        except OSError:
            with lock:
                counts[("slowloris", "could not connect")] += 1

    while not stop.is_set():
        while len(socks) < args.slow and not stop.is_set():
            open_one()
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            outcome = "closed by lb (408 first)" if data.startswith(b"HTTP/1.1 408") else "closed by lb"
            with lock:
                counts[("slowloris", outcome)] += 1
            sel.unregister(s)
            del socks[s.fileno()]
            s.close()
        if time.monotonic() - last_drip > args.drip:
            last_drip = time.monotonic()
            for s in list(socks.values()):
                try:
                    s.send(b"X-Drip: 1\r\n")
                except OSError:
                    pass
    for s in socks.values():
        s.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--slow", type=int, default=1000, help="slowloris connections held (default 1000)")
    p.add_argument("--drip", type=float, default=4, help="seconds between a slowloris client's lines")
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--post-every", type=int, default=4,
                   help="every Nth request of a worker is a POST (0: GETs only; default 4)")
    args = p.parse_args()

    stop = threading.Event()
    counts = collections.Counter()
    lock = threading.Lock()
    latencies = {"GET": [], "POST": []}
    threads = [threading.Thread(target=worker, args=(args, stop, counts, lock, n, latencies))
               for n in range(args.workers)]
    threads.append(threading.Thread(target=slowloris, args=(args, stop, counts, lock)))
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join()
    lost = 0
    for (kind, outcome), n in sorted(counts.items()):
        print(f"{kind:9} {outcome:60} {n}")
        if outcome.startswith("lost"):
            lost += n
    start = min((t for took in latencies.values() for t, _ in took[:1]), default=0)
    for kind, took in latencies.items():
        if not took:
            continue
        # Per second of the run, so that a bad second (a backlog released, say) shows; the
        # first and the last second (connections opening, the stop) are left out.
        seconds = collections.defaultdict(list)
        for t, dt in took:
            seconds[int(t - start)].append(dt)
        inner = [s for s in seconds if 0 < s < max(seconds)] or list(seconds)
        worst = max(inner, key=lambda s: quantile(seconds[s], 0.99))
        all_ = sorted(dt for _, dt in took)
        print(f"{kind} latency (ms, answered ones, as a Python client sees it): "
              f"p50 {quantile(all_, 0.5) * 1000:.1f} p99 {quantile(all_, 0.99) * 1000:.1f} "
              f"p99.9 {quantile(all_, 0.999) * 1000:.1f} max {all_[-1] * 1000:.1f}; "
              f"worst second's p99 {quantile(seconds[worst], 0.99) * 1000:.1f} (second {worst})")
    total = sum(n for (kind, _), n in counts.items() if kind != "slowloris")
    print(f"requests {total} lost {lost}")
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
