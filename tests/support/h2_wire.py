"""Two HTTP/2 clients over a plain socket to 127.0.0.1, both recording what the server did
in one `Seen`: `Raw` writes frames with hyperframe and HPACK blocks with hpack, so it can
send what no well-behaved client would; `Polite` is h2's own client state machine.
"""
import select
import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
from h2.frame_buffer import FrameBuffer
from h2.errors import ErrorCodes
from hpack import Decoder, Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_FRAME = 16384


def code_name(code):
    try:
        return ErrorCodes(code).name
    except ValueError:
        return str(code)


class Seen:
    """What the server sent on one connection, by stream."""

    def __init__(self):
        self.status = {}
        self.body = {}
        self.resets = {}
        self.ended = set()
        self.goaway = None
        self.closed = False

    def report(self):
        return {
            "status": {str(k): v for k, v in sorted(self.status.items())},
            "body": {str(k): v for k, v in sorted(self.body.items())},
            "resets": {str(k): v for k, v in sorted(self.resets.items())},
            "goaway": self.goaway,
            "closed": self.closed,
        }

    def done(self, stream):
        return stream in self.ended or stream in self.resets


# Set by use_tls(): every connection is then TLS with ALPN h2, the certificate unchecked
# (the tests check lb's certificates elsewhere; here only the HTTP/2 inside matters).
TLS = None


def use_tls():
    global TLS
    TLS = ssl.create_default_context()
    TLS.check_hostname = False
    TLS.verify_mode = ssl.CERT_NONE
    TLS.set_alpn_protocols(["h2"])


class Socket:
    """A connected socket whose writes and reads survive the server closing it."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if TLS:
            self.sock = TLS.wrap_socket(self.sock, server_hostname="localhost")
            alpn = self.sock.selected_alpn_protocol()
            if alpn != "h2":
                raise SystemExit(f"ALPN chose {alpn!r}, not h2")
        self.seen = Seen()

    def write(self, data):
        if self.seen.closed:
            return
        try:
            self.sock.sendall(data)
        except OSError:
            # The server closed; what it said before is still read.
            self.seen.closed = True

    def read(self, timeout):
        """Bytes that arrive within `timeout` seconds (b"" when none, None at the end)."""
        try:
            # TLS may hold decrypted bytes that select() cannot see.
            if not (TLS and self.sock.pending()):
                ready, _, _ = select.select([self.sock], [], [], max(timeout, 0))
                if not ready:
                    return b""
            data = self.sock.recv(65536)
        except ssl.SSLWantReadError:
            return b""
        except OSError:
            data = b""
        if not data:
            self.seen.closed = True
            return None
        return data

    def wait(self, done, within):
        """Reads until `done()` holds, the connection ends, or `within` seconds pass."""
        end = time.monotonic() + within
        while not done():
            left = end - time.monotonic()
            if left <= 0 or self.pump(left) is None:
                return done()
        return True

    def drain(self):
        """Reads whatever has already arrived."""
        while self.pump(0):
            pass

    def wait_closed(self, within):
        return self.wait(lambda: self.seen.closed, within)


class Raw(Socket):
    """Frames written as given; the server's frames parsed and answered as a client must
    (SETTINGS and PING acknowledged, DATA credited back unless `credit` is off)."""

    def __init__(self, port, settings=None, credit=True, preface=None):
        super().__init__(port)
        self.credit = credit
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.decoder.max_header_list_size = 1 << 20
        self.frames = FrameBuffer(server=False)
        self.frames.max_frame_size = MAX_FRAME
        self.block = None
        self.acked = set()
        if preface is None:
            preface = PREFACE + SettingsFrame(0, settings=settings or {}).serialize()
        self.write(preface)

    def pump(self, timeout):
        data = self.read(timeout)
        if data:
            self.frames.add_data(data)
            for frame in self.frames:
                self.on_frame(frame)
        return data

    def on_frame(self, f):
        seen = self.seen
        if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            self.write(SettingsFrame(0, flags=["ACK"]).serialize())
        elif isinstance(f, PingFrame) and "ACK" not in f.flags:
            self.write(PingFrame(0, f.opaque_data, flags=["ACK"]).serialize())
        elif isinstance(f, PingFrame):
            self.acked.add(f.opaque_data)
        elif isinstance(f, (HeadersFrame, ContinuationFrame)):
            self.block = (self.block or b"") + f.data
            if "END_HEADERS" in f.flags:
                fields = self.decoder.decode(self.block, raw=True)
                self.block = None
                for name, value in fields:
                    if name == b":status":
                        seen.status[f.stream_id] = int(value)
        elif isinstance(f, DataFrame):
            seen.body[f.stream_id] = seen.body.get(f.stream_id, 0) + len(f.data)
            if self.credit and f.flow_controlled_length:
                n = f.flow_controlled_length
                self.write(
                    WindowUpdateFrame(0, window_increment=n).serialize()
                    + WindowUpdateFrame(f.stream_id, window_increment=n).serialize()
                )
        elif isinstance(f, RstStreamFrame):
            seen.resets[f.stream_id] = code_name(f.error_code)
        elif isinstance(f, GoAwayFrame):
            seen.goaway = {"code": code_name(f.error_code), "last_stream": f.last_stream_id}
        if "END_STREAM" in getattr(f, "flags", ()):
            seen.ended.add(f.stream_id)

    def sync(self, within):
        """A PING, and its ACK awaited: the server has handled every frame before it."""
        opaque = len(self.acked).to_bytes(8, "big")
        self.write(PingFrame(0, opaque).serialize())
        return self.wait(lambda: opaque in self.acked, within)

    def headers(self, stream, fields, end_stream=True):
        """A request's HEADERS, split into CONTINUATIONs when the block is long."""
        return self.block_frames(stream, self.encoder.encode(fields), end_stream)

    def block_frames(self, stream, block, end_stream=True):
        first, rest = block[:MAX_FRAME], block[MAX_FRAME:]
        flags = ["END_STREAM"] if end_stream else []
        if not rest:
            flags.append("END_HEADERS")
        out = HeadersFrame(stream, first, flags=flags).serialize()
        while rest:
            piece, rest = rest[:MAX_FRAME], rest[MAX_FRAME:]
            flags = [] if rest else ["END_HEADERS"]
            out += ContinuationFrame(stream, piece, flags=flags).serialize()
        return out


def request(method, path, extra=()):
    return [
        (b":method", method),
        (b":scheme", b"http"),
        (b":authority", b"test"),
        (b":path", path),
    ] + list(extra)


class Polite(Socket):
    """h2's client: flow control, SETTINGS and header validation as h2 does them."""

    def __init__(self, port):
        super().__init__(port)
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.pending = {}
        self.flush()

    def flush(self):
        self.write(self.conn.data_to_send())

    def pump(self, timeout):
        data = self.read(timeout)
        if data:
            for event in self.conn.receive_data(data):
                self.on_event(event)
            self.send_pending()
            self.flush()
        return data

    def on_event(self, e):
        seen = self.seen
        if isinstance(e, h2.events.ResponseReceived):
            seen.status[e.stream_id] = int(dict(e.headers)[b":status"])
        elif isinstance(e, h2.events.DataReceived):
            seen.body[e.stream_id] = seen.body.get(e.stream_id, 0) + len(e.data)
            self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        elif isinstance(e, h2.events.StreamEnded):
            seen.ended.add(e.stream_id)
        elif isinstance(e, h2.events.StreamReset):
            seen.resets[e.stream_id] = code_name(e.error_code)
        elif isinstance(e, h2.events.ConnectionTerminated):
            seen.goaway = {"code": code_name(e.error_code), "last_stream": e.last_stream_id}

    def request(self, fields, body=None):
        """Opens a stream; its body goes as the windows allow."""
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, fields, end_stream=body is None)
        if body is not None:
            self.pending[stream] = body
            self.send_pending()
        self.flush()
        return stream

    def send_pending(self):
        for stream, body in list(self.pending.items()):
            if stream in self.seen.resets:
                del self.pending[stream]
                continue
            while body:
                window = self.conn.local_flow_control_window(stream)
                size = min(window, self.conn.max_outbound_frame_size, len(body))
                if size <= 0:
                    break
                self.conn.send_data(stream, body[:size])
                body = body[size:]
            self.pending[stream] = body
            if not body:
                self.conn.end_stream(stream)
                del self.pending[stream]
        self.flush()
