"""A gRPC server for lb's tests, on PyPI's grpcio with generic handlers and bytes in and
out (no protoc): service test.Echo with one method of each kind, test.Control/SetServing
to flip its health, and grpc.health.v1.Health/Check answering with hand-encoded
protobuf. Binds 127.0.0.1:0 (or the port given) and says "listening on ADDR" on stderr,
as lb's own test backends do.

Usage: grpc_server.py [--port N] [--name NAME]

test.Echo:
  Unary          the request, prefixed with NAME and ": "
  ServerStream   the request split on b",", one response a piece
  ClientStream   the requests joined with b","
  Bidi           each request back as it comes, upper-cased
  Hang           no answer until the call is cancelled or its deadline passes
test.Control/SetServing: b"SERVING" or b"NOT_SERVING" sets what Health/Check says
  (for every service); answers with the status set.
grpc.health.v1.Health/Check: SERVING or NOT_SERVING for "" and "test.Echo";
  NOT_FOUND for any other service, as the health protocol says.
"""

import argparse
import sys
import threading
from concurrent import futures

import grpc

SERVING, NOT_SERVING = 1, 2
KNOWN_SERVICES = ("", "test.Echo")


def decode_service(request):
    """Field 1 of a HealthCheckRequest (the service name); other fields skipped."""
    at, service = 0, ""

    def varint():
        nonlocal at
        value, shift = 0, 0
        while True:
            byte = request[at]
            at += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    while at < len(request):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            varint()
        elif wire == 2:
            n = varint()
            if field == 1:
                service = request[at : at + n].decode()
            at += n
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        else:
            raise ValueError(f"wire type {wire}")
    return service


class Handlers(grpc.GenericRpcHandler):
    def __init__(self, name):
        self.name = name.encode()
        self.lock = threading.Lock()
        self.status = SERVING
        self.methods = {
            "/test.Echo/Unary": grpc.unary_unary_rpc_method_handler(self.unary),
            "/test.Echo/ServerStream": grpc.unary_stream_rpc_method_handler(
                self.server_stream
            ),
            "/test.Echo/ClientStream": grpc.stream_unary_rpc_method_handler(
                self.client_stream
            ),
            "/test.Echo/Bidi": grpc.stream_stream_rpc_method_handler(self.bidi),
            "/test.Echo/Hang": grpc.unary_unary_rpc_method_handler(self.hang),
            "/test.Control/SetServing": grpc.unary_unary_rpc_method_handler(
                self.set_serving
            ),
            "/grpc.health.v1.Health/Check": grpc.unary_unary_rpc_method_handler(
                self.check
            ),
        }

    def service(self, details):
        return self.methods.get(details.method)

    def unary(self, request, context):
        return self.name + b": " + request

    def server_stream(self, request, context):
        for piece in request.split(b","):
            yield piece

    def client_stream(self, requests, context):
        return b",".join(requests)

    def bidi(self, requests, context):
        for r in requests:
            yield r.upper()

    def hang(self, request, context):
        ended = threading.Event()
        context.add_callback(ended.set)
        ended.wait()
        return b""

    def set_serving(self, request, context):
        statuses = {b"SERVING": SERVING, b"NOT_SERVING": NOT_SERVING}
        if request not in statuses:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "SERVING or NOT_SERVING")
        with self.lock:
            self.status = statuses[request]
        return request

    def check(self, request, context):
        try:
            service = decode_service(request)
        except (IndexError, ValueError, UnicodeDecodeError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad request: {e}")
        if service not in KNOWN_SERVICES:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service!r}")
        with self.lock:
            status = self.status
        return bytes([0x08, status])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default="grpc")
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((Handlers(args.name),))
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    if port == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    server.start()
    print(f"{args.name} listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
