"""HTTP/2 with prior knowledge against 127.0.0.1:PORT, well-behaved or hostile.

    python3 h2_client.py [--tls] PORT SCENARIO [ARG]

--tls: over TLS, with ALPN h2 (exit 1 if the server chooses anything else).

Prints one JSON line of what the server did: `status`, `body` (bytes) and `resets` (the
RST_STREAM code) by stream, `goaway` ({code, last_stream} or null), `closed` (the server
closed the connection), and per scenario `sent` (frames or streams written). Exit 0 once a
scenario ran, whatever the server did; 2 on bad arguments; 3 when the h2 package is not
installed (pip install h2).
"""
import json
import socket
import sys
import time

try:
    import h2  # noqa: F401 (h2 brings hpack and hyperframe)
except ImportError as e:
    print(f"the h2 package is not installed (pip install h2): {e}")
    sys.exit(3)

from hpack.hpack import encode_integer
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from h2_wire import PREFACE, Polite, Raw, request, use_tls

WAIT = 20
CANCEL = 8
INITIAL_WINDOW_SIZE = 4


def ended(c, streams):
    return lambda: all(c.seen.done(s) for s in streams) or c.seen.goaway is not None


def finish(c, **extra):
    """The report, once the server said what it does with the connection."""
    if c.seen.goaway is not None:
        c.wait_closed(5)
    c.drain()
    return dict(c.seen.report(), **extra)


def get(port, arg):
    """`count` GETs of `path` at once on one connection: ARG is PATH or PATH*COUNT."""
    path, _, count = (arg or "/").partition("*")
    c = Polite(port)
    streams = [c.request(request(b"GET", path.encode())) for _ in range(int(count or 1))]
    c.wait(ended(c, streams), WAIT)
    return finish(c)


def post(port, arg):
    """A POST of ARG bytes to /echo, with content-length, or without for ARG 'N:chunked'."""
    size, _, how = (arg or "11").partition(":")
    body = b"x" * int(size)
    extra = [] if how == "chunked" else [(b"content-length", str(len(body)).encode())]
    c = Polite(port)
    stream = c.request(request(b"POST", b"/echo", extra), body)
    c.wait(ended(c, [stream]), WAIT)
    return finish(c)


def te_trailers(port, _):
    c = Polite(port)
    stream = c.request(request(b"GET", b"/", [(b"te", b"trailers")]))
    c.wait(ended(c, [stream]), WAIT)
    return finish(c)


def bidi(port, arg):
    """A bidi gRPC call to /grpc-stream with grpc-timeout ARG (default 1S): one message
    sent and the request left open; waits for the server to end or reset the stream."""
    c = Polite(port)
    grpc = [(b"content-type", b"application/grpc"), (b"te", b"trailers")]
    timeout = [(b"grpc-timeout", (arg or "1S").encode())]
    stream = c.conn.get_next_available_stream_id()
    c.conn.send_headers(stream, request(b"POST", b"/grpc-stream", grpc + timeout))
    c.conn.send_data(stream, b"\x00\x00\x00\x00\x04call")
    c.flush()
    c.wait(ended(c, [stream]), WAIT)
    return finish(c)


def refused(port, arg):
    """ARG streams opened at once (default 110), each waiting for its body: those past
    the concurrency limit are refused; then every open one is finished and answered."""
    n = int(arg or 110)
    c = Raw(port)
    streams = list(range(1, 2 * n, 2))
    c.write(b"".join(c.headers(s, request(b"POST", b"/echo"), False) for s in streams))
    c.sync(WAIT)
    open_ = [s for s in streams if s not in c.seen.resets]
    c.write(b"".join(DataFrame(s, b"", flags=["END_STREAM"]).serialize() for s in open_))
    c.wait(ended(c, streams), WAIT)
    return finish(c, sent=n)


def rapid_reset(port, arg):
    """ARG rounds (default 1), each a connection that opens and at once resets streams,
    50 to a write, until the server ends it (or 10 000 streams went)."""
    rounds = []
    for _ in range(int(arg or 1)):
        c = Raw(port)
        stream = 1
        while stream < 20_000 and c.seen.goaway is None and not c.seen.closed:
            batch = b""
            for _ in range(50):
                batch += c.headers(stream, request(b"GET", b"/"))
                batch += RstStreamFrame(stream, error_code=CANCEL).serialize()
                stream += 2
            c.write(batch)
            c.drain()
        rounds.append(finish(c, sent=stream // 2))
    return {"rounds": rounds}


def literal_fields(size):
    """Exactly `size` bytes (at least 6) of whole HPACK literal fields, never indexed,
    new name: x-a: b, and a last x-a whose value (at most 126 bytes) fills the rest."""
    one = b"\x10\x03x-a\x01b"
    count = -(-max(size - 132, 0) // len(one))
    rest = size - count * len(one) - 6
    return one * count + b"\x10\x03x-a" + bytes([rest]) + b"v" * rest


def continuation(port, arg):
    """A header block cut into CONTINUATIONs, as ARG says:
    frames:N   HEADERS and N empty CONTINUATIONs, the last ending the block; stream 3 a GET
    bytes:N    a block of exactly N bytes in frames of 4 096; stream 3 a GET
    flood:N    CONTINUATIONs of N bytes never ending the block, until the server ends
               the connection (or 10 000 went)."""
    how, _, n = (arg or "flood:0").partition(":")
    n = int(n or 0)
    c = Raw(port)
    # The SETTINGS exchange done first, so that no ACK of ours falls inside the block.
    c.sync(WAIT)
    first = c.encoder.encode(request(b"GET", b"/"))
    if how == "flood":
        c.write(HeadersFrame(1, first, flags=["END_STREAM"]).serialize())
        payload = ContinuationFrame(1, literal_fields(n) if n else b"").serialize()
        sent = 0
        while sent < 10_000 and c.seen.goaway is None and not c.seen.closed:
            c.write(payload * 10)
            sent += 10
            c.drain()
        c.wait(lambda: c.seen.goaway is not None, 5)
        return finish(c, sent=sent)
    if how == "frames":
        pieces = [first] + [b""] * n
    else:
        block = first + literal_fields(n - len(first))
        pieces = [block[i : i + 4096] for i in range(0, len(block), 4096)]
    frames = HeadersFrame(1, pieces[0], flags=["END_STREAM"]).serialize()
    for i, piece in enumerate(pieces[1:], 2):
        flags = ["END_HEADERS"] if i == len(pieces) else []
        frames += ContinuationFrame(1, piece, flags=flags).serialize()
    c.write(frames + c.headers(3, request(b"GET", b"/")))
    c.wait(ended(c, [1, 3]), WAIT)
    return finish(c, sent=sum(map(len, pieces)))


def hpack_bomb(port, arg):
    """Stream 1 puts a 3 900-byte field in the dynamic table; stream 3 refers to it ARG
    times (default 100) in a block of a few hundred bytes; stream 5 is a plain GET."""
    times = int(arg or 100)
    c = Raw(port)
    big = (b"x-bomb", b"b" * 3900)
    c.write(c.headers(1, request(b"GET", b"/") + [big]))
    index = c.encoder.header_table.search(*big)[0]
    ref = bytes(encode_integer(index, 7))
    ref = bytes([ref[0] | 0x80]) + ref[1:]
    bomb = c.encoder.encode(request(b"GET", b"/")) + ref * times
    c.write(c.block_frames(3, bomb))
    c.write(c.headers(5, request(b"GET", b"/")))
    c.wait(ended(c, [1, 3, 5]), WAIT)
    return finish(c, sent=len(bomb))


def table_size(port, arg):
    """A header block that opens with a dynamic table size update to ARG (default 65 536),
    beyond the 4 096 the server allows."""
    size = int(arg or 65536)
    c = Raw(port)
    update = bytearray(encode_integer(size, 5))
    update[0] |= 0x20
    c.write(c.block_frames(1, bytes(update) + c.encoder.encode(request(b"GET", b"/"))))
    c.wait(ended(c, [1]), WAIT)
    return finish(c)


def big_headers(port, arg):
    """Stream 1 with fields x-f, as ARG says: COUNT[:VALUE_BYTES[:PATH_BYTES]] (default
    292:60:1, with the pseudo-header fields 27 909 octets counted with 32 a field, past
    27 904); stream 3 a plain GET."""
    count, value, path = (list(map(int, (arg or "292").split(":"))) + [60, 1])[:3]
    c = Raw(port)
    target = b"/" + b"p" * (path - 1)
    fields = request(b"GET", target) + [(b"x-f", b"v" * value)] * count
    block = c.encoder.encode([(k, v, True) for k, v in fields])
    c.write(c.block_frames(1, block))
    c.write(c.headers(3, request(b"GET", b"/")))
    c.wait(ended(c, [1, 3]), WAIT)
    return finish(c, sent=len(block))


FLOODS = {
    "ping": lambda i: PingFrame(0, i.to_bytes(8, "big")).serialize(),
    "settings": lambda _: SettingsFrame(0).serialize(),
    "empty-data": lambda _: DataFrame(1, b"").serialize(),
    "window-update": lambda _: WindowUpdateFrame(0, window_increment=1).serialize(),
    "priority": lambda _: PriorityFrame(7, depends_on=0, stream_weight=15).serialize(),
}


def flood(port, arg):
    """Stream 1 opened (its body still to come), then frames of the kind ARG names,
    KIND or KIND:COUNT. Without a count, 50 to a write until the server ends the
    connection (or 20 000 went); with one, COUNT of them, then stream 1 is ended."""
    kind, _, count = arg.partition(":")
    make = FLOODS[kind]
    c = Raw(port)
    c.write(c.headers(1, request(b"POST", b"/echo"), False))
    if count:
        c.write(b"".join(make(i) for i in range(int(count))))
        c.write(DataFrame(1, b"", flags=["END_STREAM"]).serialize())
        c.wait(ended(c, [1]), WAIT)
        return finish(c, sent=int(count))
    sent = 0
    while sent < 20_000 and c.seen.goaway is None and not c.seen.closed:
        c.write(b"".join(make(sent + i) for i in range(50)))
        sent += 50
        c.drain()
    c.wait(lambda: c.seen.goaway is not None, 5)
    return finish(c, sent=sent)


def zero_window(port, arg):
    """GET /bytes/ARG (default 100 000) with an initial window of 0 never opened: waits
    up to 15 s for the server to end the stream or the connection."""
    c = Raw(port, settings={INITIAL_WINDOW_SIZE: 0}, credit=False)
    c.write(c.headers(1, request(b"GET", f"/bytes/{arg or 100000}".encode())))
    c.wait(lambda: 1 in c.seen.resets or c.seen.goaway or c.seen.closed, 15)
    return finish(c)


def no_read(port, arg):
    """Opens every window as wide as HTTP/2 allows, GETs /bytes/50000000 on ARG streams
    (default 10), then never reads: waits up to 15 s for the server to close the connection
    (a server that frames answers faster than the client takes them holds them all)."""
    widest = 2**31 - 1
    c = Raw(port, settings={INITIAL_WINDOW_SIZE: widest})
    c.write(WindowUpdateFrame(0, window_increment=widest - 65535).serialize())
    streams = int(arg or 10)
    for i in range(streams):
        c.write(c.headers(1 + 2 * i, request(b"GET", b"/bytes/50000000")))
    end = time.monotonic() + 15
    closed = False
    while time.monotonic() < end and not closed:
        time.sleep(0.5)
        # Whether the server closed, without reading what it sent (its end of file waits
        # behind that): a PING to a closed socket draws a reset, and the next write fails.
        try:
            c.sock.sendall(PingFrame(0).serialize())
        except OSError:
            closed = True
    return {"closed": closed, "streams": streams}


def half_close(port, arg):
    """GET ARG (default /), then shut the socket's write side at once: the answer must
    still come, then the close."""
    # The settings exchanged first, and no credit given back: nothing is written after
    # the shutdown.
    c = Raw(port, credit=False)
    c.sync(WAIT)
    c.write(c.headers(1, request(b"GET", (arg or "/").encode())))
    c.sock.shutdown(socket.SHUT_WR)
    c.wait_closed(10)
    return finish(c)


def drip(port, arg):
    """As zero-window, but a 1-byte WINDOW_UPDATE for the stream every 200 ms."""
    c = Raw(port, settings={INITIAL_WINDOW_SIZE: 0}, credit=False)
    c.write(c.headers(1, request(b"GET", f"/bytes/{arg or 100000}".encode())))
    sent = 0
    end = time.monotonic() + 15
    while time.monotonic() < end and not (1 in c.seen.resets or c.seen.goaway):
        if c.seen.closed or c.seen.done(1):
            break
        c.write(WindowUpdateFrame(1, window_increment=1).serialize())
        sent += 1
        c.wait(lambda: False, 0.2)
    return finish(c, sent=sent)


def slow(port, arg):
    """A client that holds the connection without finishing anything, as ARG says:
    preface (half the preface), header-block (a block never ended), body (a POST whose
    body never comes), ping (no stream, a PING every 500 ms). Waits up to 15 s for the
    server to close."""
    if arg == "preface":
        c = Raw(port, preface=PREFACE[:12])
    else:
        c = Raw(port)
        c.sync(WAIT)
    if arg == "header-block":
        block = c.encoder.encode(request(b"GET", b"/"))
        c.write(HeadersFrame(1, block, flags=["END_STREAM"]).serialize())
    elif arg == "body":
        fields = request(b"POST", b"/echo", [(b"content-length", b"10")])
        c.write(c.headers(1, fields, False))
    end = time.monotonic() + 15
    while not c.seen.closed and time.monotonic() < end:
        if arg == "ping":
            c.write(PingFrame(0).serialize())
        c.wait(lambda: c.seen.closed, 0.5)
    return finish(c)


MALFORMED = {
    "uppercase": request(b"GET", b"/", [(b"X-Upper", b"1")]),
    "connection": request(b"GET", b"/", [(b"connection", b"keep-alive")]),
    "no-path": [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"test")],
    "te-gzip": request(b"GET", b"/", [(b"te", b"gzip")]),
    "transfer-encoding": request(b"POST", b"/", [(b"transfer-encoding", b"chunked")]),
    # What would smuggle a field or a request line into the HTTP/1.1 head lb writes.
    "crlf-in-value": request(b"GET", b"/", [(b"x-a", b"1\r\nx-injected: yes")]),
    "crlf-in-path": request(b"GET", b"/ HTTP/1.1\r\nx-injected: yes\r\nx-b:"),
    "nul-in-value": request(b"GET", b"/", [(b"x-a", b"1\x00")]),
    "colon-in-name": request(b"GET", b"/", [(b"x:a", b"1")]),
}


def malformed(port, arg):
    """Stream 1 a request malformed as ARG says; stream 3 a plain GET."""
    c = Raw(port)
    c.write(c.headers(1, MALFORMED[arg]) + c.headers(3, request(b"GET", b"/")))
    c.wait(ended(c, [1, 3]), WAIT)
    return finish(c)


SCENARIOS = {
    "get": get,
    "post": post,
    "te-trailers": te_trailers,
    "bidi": bidi,
    "refused": refused,
    "rapid-reset": rapid_reset,
    "continuation": continuation,
    "hpack-bomb": hpack_bomb,
    "table-size": table_size,
    "big-headers": big_headers,
    "flood": flood,
    "zero-window": zero_window,
    "drip": drip,
    "malformed": malformed,
    "slow": slow,
    "no-read": no_read,
    "half-close": half_close,
}

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--tls"]:
        args = args[1:]
        use_tls()
    if len(args) not in (2, 3) or args[1] not in SCENARIOS:
        print(__doc__ + "\nscenarios: " + " ".join(SCENARIOS))
        sys.exit(2)
    arg = args[2] if len(args) == 3 else None
    print(json.dumps(SCENARIOS[args[1]](int(args[0]), arg)))
