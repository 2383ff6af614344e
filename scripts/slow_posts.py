#!/usr/bin/env python3
"""Many slow POST clients against one address, for scripts/post_memory.sh.

    slow_posts.py upload --port 8080 -n 1000 --length 1048576 --fast 1047552 --every 3 --seconds 30
    slow_posts.py read --port 8080 -n 100 --path /bytes/8388608 --seconds 30

upload: each of N clients sends a POST head declaring --length bytes of body, the first
--fast bytes of it as fast as it can, then one byte every --every seconds. A client that
gets an answer (or is closed or reset) notes it and starts again a second later, as an
attacker would: there are N uploaders all the time.

read: each of N clients POSTs a two-byte body to --path and reads the head and the first
64 KiB of the answer, then reads nothing more.

Once every client has had its first go (its fast part sent or refused; its first bytes
read), one line goes to stdout:

    READY seconds=2.41

then the clients go on for --seconds, and a last line says what they met:

    DONE answered-408=120 answered-503=2210 now-trickling=1000 now-waiting=0

(for read: got-200=100 now-holding=100)

Only the address given is contacted. The exit status is 0 unless a client could not
connect at all.
"""

import argparse
import collections
import errno
import resource
import selectors
import socket
import sys
import time

HOLD_READ = 64 * 1024


def raise_fd_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Client:
    __slots__ = ("sock", "out", "got", "phase", "next_at", "first_done")

    def __init__(self):
        self.sock = None
        self.out = b""
        self.got = b""
        # connecting, sending, trickling, reading, holding, waiting (to start again)
        self.phase = "waiting"
        self.next_at = 0.0
        self.first_done = False


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["upload", "read"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("-n", type=int, default=1000)
    p.add_argument("--length", type=int, default=1 << 20, help="declared body length (upload)")
    p.add_argument("--fast", type=int, default=(1 << 20) - 1024, help="body bytes sent at once (upload)")
    p.add_argument("--every", type=float, default=3.0, help="seconds between trickled bytes (upload)")
    p.add_argument("--path", default="/bytes/8388608", help="what to POST to (read)")
    p.add_argument("--seconds", type=float, default=30.0)
    a = p.parse_args()
    raise_fd_limit(a.n + 64)

    sel = selectors.DefaultSelector()
    addr = (a.host, a.port)
    outcomes = collections.Counter()
    clients = [Client() for _ in range(a.n)]
    body = b"x" * a.fast
    upload_head = (
        f"POST /upload HTTP/1.1\r\nHost: {a.host}\r\nContent-Length: {a.length}\r\n\r\n".encode()
    )
    upload_bytes = upload_head + body
    read_request = f"POST {a.path} HTTP/1.1\r\nHost: {a.host}\r\nContent-Length: 2\r\n\r\nhi".encode()

    def start(c, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(addr)
        except BlockingIOError:
            pass
        except OSError as e:
            print(f"slow_posts: connect: {e}", file=sys.stderr)
            s.close()
            outcomes["no-connect"] += 1
            c.phase, c.next_at = "waiting", now + 1.0
            return
        c.sock, c.got = s, b""
        c.out = memoryview(upload_bytes if a.mode == "upload" else read_request)
        c.phase = "sending"
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)

    def finish(c, now, what):
        outcomes[what] += 1
        c.first_done = True
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        c.sock = None
        c.phase, c.next_at = "waiting", now + 1.0

    def status_of(got):
        line = got.split(b"\r\n", 1)[0].split()
        return line[1].decode() if len(line) > 1 else "garbage"

    began = time.monotonic()
    ready_at = None
    end = None
    while True:
        now = time.monotonic()
        if ready_at is None and all(c.first_done for c in clients):
            ready_at = now
            end = now + a.seconds
            print(f"READY seconds={now - began:.2f}", flush=True)
        if end is not None and now >= end:
            break
        for c in clients:
            if c.phase == "waiting" and now >= c.next_at and (a.mode == "upload" or not c.first_done):
                start(c, now)
            elif c.phase == "trickling" and now >= c.next_at:
                try:
                    c.sock.send(b"x")
                    c.next_at = now + a.every
                except OSError:
                    finish(c, now, "reset")
        for key, events in sel.select(timeout=0.05):
            c = key.data
            if c.sock is None:
                continue
            if events & selectors.EVENT_WRITE and c.phase == "sending":
                try:
                    n = c.sock.send(c.out)
                    c.out = c.out[n:]
                except BlockingIOError:
                    pass
                except OSError:
                    finish(c, now, "reset")
                    continue
                if not c.out:
                    c.phase = "trickling" if a.mode == "upload" else "reading"
                    c.next_at = now + a.every
                    c.first_done |= a.mode == "upload"
                    sel.modify(c.sock, selectors.EVENT_READ, c)
            if events & selectors.EVENT_READ and c.sock is not None:
                try:
                    data = c.sock.recv(HOLD_READ)
                except BlockingIOError:
                    continue
                except OSError:
                    finish(c, now, "reset")
                    continue
                if a.mode == "read":
                    c.got += data
                    if not data:
                        finish(c, now, "closed")
                    elif len(c.got) >= HOLD_READ:
                        # Its first bytes came: from now on it reads nothing.
                        outcomes["got-" + status_of(c.got)] += 1
                        c.first_done = True
                        c.phase = "holding"
                        c.got = b""
                        sel.unregister(c.sock)
                    continue
                c.got += data
                if b"\r\n\r\n" in c.got or not data:
                    finish(c, now, "answered-" + status_of(c.got) if c.got else "closed")
    phases = collections.Counter(c.phase for c in clients)
    parts = [f"{k}={v}" for k, v in sorted(outcomes.items())]
    parts += [f"now-{k}={v}" for k, v in sorted(phases.items())]
    print("DONE " + " ".join(parts), flush=True)
    return 1 if outcomes["no-connect"] else 0


if __name__ == "__main__":
    sys.exit(main())
