"""An h2c backend for lb's HTTP/2-to-backends tests, on h2's server state machine, one
thread per connection. Prints "listening on ADDR" on stderr.

Paths: /echo (the method, path and body back, with a content-length), /chunks (a body in
three DATA frames and no content-length), /hang (no answer), /grpc (as a gRPC server: 400
without te: trailers, else a body, then trailers grpc-status 0 and grpc-message),
/grpc-stream (a streaming gRPC call that ignores its deadline: answered as soon as its
head comes, whatever the request still sends, a message every 50 ms for 10 s, then
trailers grpc-status 0; its head says in grpc-timeout-seen the grpc-timeout it got), /slow
(answers once 8 streams wait at once: only streams that share connections can all get
there), /endless (DATA for as long as the windows open), /stats (JSON: connections
accepted, the most open at once, the bytes /endless sent, whether it has waited a second
for window, the streams lb reset, the requests it refused or reset, and the requests it
processed, /stats aside). --refuse: every stream is reset with REFUSED_STREAM. --goaway:
each connection gets GOAWAY (last stream 0) on its first request. --restart: as a server
restarting gracefully, the first connection holds its requests until RESTART_AFTER are
whole, then sends GOAWAY with the lowest of their streams as the last, answers that one
and refuses the others; later connections serve as usual. --reset-internal: every
stream is reset with INTERNAL_ERROR. --stop-reading: windows as wide as HTTP/2 allows, and
once a request's HEADERS are in, the connection's socket is never read again (its kernel
buffer fills): it says "stopped reading after N bytes" on stderr. The modes spare /stats.
A number N: SETTINGS_MAX_CONCURRENT_STREAMS N.
"""
import json
import socket
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
from h2.errors import ErrorCodes
from h2.exceptions import FlowControlError, StreamClosedError
from hyperframe.frame import GoAwayFrame

LOCK = threading.Lock()
STATS = {
    "connections": 0,
    "open": 0,
    "most_open": 0,
    "endless_sent": 0,
    "stalled": False,
    "resets": 0,
    "refused": 0,
    "processed": 0,
}
SLOW = threading.Condition(LOCK)
SLOW_WAITING = [0]
MODE = set(a for a in sys.argv[1:] if a.startswith("--"))
MAX_STREAMS = next((int(a) for a in sys.argv[1:] if a.isdigit()), 0)
WIDEST = 2**31 - 1
TICK = 0.05
TICKS = 200
RESTART_AFTER = 4


def stats():
    with LOCK:
        return json.dumps(STATS).encode()


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        settings = {}
        if MAX_STREAMS:
            settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = MAX_STREAMS
        if "--stop-reading" in MODE:
            settings[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] = WIDEST
        if settings:
            self.h2.local_settings = h2.settings.Settings(client=False, initial_values=settings)
        self.lock = threading.Lock()
        self.requests = {}
        self.endless = set()
        self.ticking = set()
        self.waiting_window = threading.Condition(self.lock)
        self.deaf = False
        # --restart: this connection is the one that goes away; the requests it holds.
        self.restarting = False
        self.held = []

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def respond(self, stream, status, headers, body, trailers=None):
        with self.lock:
            self.h2.send_headers(stream, [(":status", str(status))] + headers)
            self.h2.send_data(stream, body, end_stream=trailers is None)
            if trailers is not None:
                self.h2.send_headers(stream, trailers, end_stream=True)
            self.flush()

    def handle(self, stream, headers, body):
        path = headers.get(":path", "")
        method = headers.get(":method", "")
        if path == "/stats":
            return self.respond(stream, 200, [("content-type", "application/json")], stats())
        with LOCK:
            STATS["processed"] += 1
        if path == "/grpc":
            # As a strict gRPC server: the client must say it takes trailers.
            if headers.get("te") != "trailers":
                return self.respond(stream, 400, [], b"te: trailers is missing")
            return self.respond(
                stream,
                200,
                [("content-type", "application/grpc")],
                b"\x00\x00\x00\x00\x02hi",
                [("grpc-status", "0"), ("grpc-message", "fine")],
            )
        if path == "/chunks":
            with self.lock:
                self.h2.send_headers(stream, [(":status", "200")])
                for part in (b"one ", b"two ", b"three"):
                    self.h2.send_data(stream, part)
                self.h2.end_stream(stream)
                self.flush()
            return
        if path == "/endless":
            with self.lock:
                self.h2.send_headers(stream, [(":status", "200")])
                self.flush()
                self.endless.add(stream)
            threading.Thread(target=self.pour, args=(stream,), daemon=True).start()
            return
        if path == "/hang":
            return
        if path == "/slow":
            with SLOW:
                SLOW_WAITING[0] += 1
                SLOW.notify_all()
                SLOW.wait_for(lambda: SLOW_WAITING[0] >= 8, timeout=20)
        text = f"{method} {path} {len(body)} ".encode() + body
        self.respond(stream, 200, [("content-length", str(len(text)))], text)

    def pour(self, stream):
        chunk = b"x" * 16384
        while True:
            with self.lock:
                if stream not in self.endless:
                    return
                room = min(self.h2.local_flow_control_window(stream), len(chunk))
                if room <= 0:
                    # A second without window back: lb holds what it has and takes no more.
                    if not self.waiting_window.wait(timeout=1):
                        with LOCK:
                            STATS["stalled"] = True
                    continue
                try:
                    self.h2.send_data(stream, chunk[:room])
                    self.flush()
                except (StreamClosedError, FlowControlError, OSError):
                    return
            with LOCK:
                STATS["endless_sent"] += room

    def tick(self, stream, timeout):
        head = [(":status", "200"), ("content-type", "application/grpc")]
        with self.lock:
            self.h2.send_headers(stream, head + [("grpc-timeout-seen", timeout)])
            self.flush()
            self.ticking.add(stream)
        for _ in range(TICKS):
            time.sleep(TICK)
            with self.lock:
                if stream not in self.ticking:
                    return
                try:
                    self.h2.send_data(stream, b"\x00\x00\x00\x00\x04tick")
                    self.flush()
                except (StreamClosedError, FlowControlError, OSError):
                    return
        with self.lock:
            self.ticking.discard(stream)
            try:
                self.h2.send_headers(stream, [("grpc-status", "0")], end_stream=True)
                self.flush()
            except (StreamClosedError, OSError):
                return

    def serve(self):
        with LOCK:
            STATS["connections"] += 1
            self.restarting = "--restart" in MODE and STATS["connections"] == 1
            STATS["open"] += 1
            STATS["most_open"] = max(STATS["most_open"], STATS["open"])
        try:
            with self.lock:
                self.h2.initiate_connection()
                if "--stop-reading" in MODE:
                    self.h2.increment_flow_control_window(WIDEST - 65535)
                self.flush()
            read = 0
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return
                read += len(data)
                with self.lock:
                    events = self.h2.receive_data(data)
                    self.flush()
                for event in events:
                    self.on_event(event)
                if self.deaf:
                    # The socket stays open and unread until the process is killed.
                    print(f"stopped reading after {read} bytes", file=sys.stderr, flush=True)
                    threading.Event().wait()
        except OSError:
            return
        finally:
            with self.lock:
                self.endless.clear()
                self.ticking.clear()
                self.waiting_window.notify_all()
            with LOCK:
                STATS["open"] -= 1
            self.sock.close()

    def on_event(self, event):
        if isinstance(event, h2.events.RequestReceived):
            stream = event.stream_id
            headers = dict(event.headers)
            # /stats is always answered, for the tests to ask.
            mode = MODE if headers.get(":path") != "/stats" else set()
            if "--stop-reading" in mode:
                self.deaf = True
                return
            if "--goaway" in mode:
                with self.lock:
                    self.h2.close_connection(last_stream_id=0)
                    self.flush()
                return self.refused()
            if "--refuse" in mode or "--reset-internal" in mode:
                code = ErrorCodes.REFUSED_STREAM
                if "--reset-internal" in mode:
                    code = ErrorCodes.INTERNAL_ERROR
                with self.lock:
                    self.h2.reset_stream(stream, code)
                    self.flush()
                return self.refused()
            if headers.get(":path") == "/grpc-stream":
                args = (stream, headers.get("grpc-timeout", ""))
                threading.Thread(target=self.tick, args=args, daemon=True).start()
                return
            self.requests[stream] = (headers, bytearray())
            if event.stream_ended:
                self.finish(stream)
        elif isinstance(event, h2.events.DataReceived):
            with self.lock:
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                self.flush()
            if event.stream_id in self.requests:
                self.requests[event.stream_id][1].extend(event.data)
        elif isinstance(event, h2.events.StreamEnded):
            self.finish(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            with LOCK:
                STATS["resets"] += 1
            with self.lock:
                self.endless.discard(event.stream_id)
                self.ticking.discard(event.stream_id)
        elif isinstance(event, h2.events.WindowUpdated):
            with self.lock:
                self.waiting_window.notify_all()

    def refused(self):
        with LOCK:
            STATS["refused"] += 1

    def finish(self, stream):
        request = self.requests.pop(stream, None)
        if request is None:
            return
        if self.restarting and request[0].get(":path") != "/stats":
            self.held.append((stream, request))
            if len(self.held) < RESTART_AFTER:
                return
            self.restarting = False
            self.held.sort(key=lambda h: h[0])
            (stream, request), refused = self.held[0], self.held[1:]
            # Written raw: h2 answers no stream once its own GOAWAY is sent, and a graceful
            # restart still answers those up to the last stream.
            goaway = GoAwayFrame(stream_id=0, last_stream_id=stream, error_code=0)
            with self.lock:
                self.flush()
                self.sock.sendall(goaway.serialize())
            for _ in refused:
                self.refused()
        headers, body = request
        threading.Thread(
            target=self.handle, args=(stream, headers, bytes(body)), daemon=True
        ).start()


def main():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print("listening on %s:%d" % listener.getsockname(), file=sys.stderr, flush=True)
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=Conn(sock).serve, daemon=True).start()


if __name__ == "__main__":
    main()
