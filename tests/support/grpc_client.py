"""Calls the test server of grpc_server.py at ADDR, directly or through lb, and prints one
JSON object per call on stdout: {"call": KIND, "code": "OK" or the status code's name,
"result": what came back, as text, or "details": the error's message}.

Usage: grpc_client.py ADDR KIND [ARG] [--timeout SECONDS]
  KIND: unary, server-stream, client-stream, bidi, all (the four), health [SERVICE],
  set-serving SERVING|NOT_SERVING, hang (a call the server never answers)
Exits 0 when every call was made, whatever its status; non-zero on a usage error.
"""

import argparse
import json
import sys

import grpc


def decode_status(message):
    """The status of a HealthCheckResponse: field 1, a varint below 128 in practice."""
    if len(message) == 2 and message[0] == 0x08:
        return {1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}.get(
            message[1], str(message[1])
        )
    return "UNKNOWN" if not message else message.hex()


def encode_service(service):
    raw = service.encode()
    if not raw:
        return b""
    assert len(raw) < 128, "a one-byte length is enough here"
    return bytes([0x0A, len(raw)]) + raw


def calls(channel, kind, arg, timeout):
    def unary(method):
        return channel.unary_unary(method)

    if kind == "unary":
        return unary("/test.Echo/Unary")(arg.encode(), timeout=timeout).decode()
    if kind == "server-stream":
        stream = channel.unary_stream("/test.Echo/ServerStream")
        return [m.decode() for m in stream(arg.encode(), timeout=timeout)]
    if kind == "client-stream":
        call = channel.stream_unary("/test.Echo/ClientStream")
        return call(iter(p.encode() for p in arg.split(",")), timeout=timeout).decode()
    if kind == "bidi":
        call = channel.stream_stream("/test.Echo/Bidi")
        got = call(iter(p.encode() for p in arg.split(",")), timeout=timeout)
        return [m.decode() for m in got]
    if kind == "health":
        check = unary("/grpc.health.v1.Health/Check")
        return decode_status(check(encode_service(arg), timeout=timeout))
    if kind == "hang":
        return unary("/test.Echo/Hang")(arg.encode(), timeout=timeout).decode()
    if kind == "set-serving":
        return unary("/test.Control/SetServing")(arg.encode(), timeout=timeout).decode()
    raise ValueError(kind)


DEFAULT_ARG = {
    "unary": "hello",
    "server-stream": "a,b,c",
    "client-stream": "x,y,z",
    "bidi": "p,q,r",
    "health": "",
    "set-serving": "SERVING",
    "hang": "",
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("addr")
    parser.add_argument("kind", choices=[*DEFAULT_ARG, "all"])
    parser.add_argument("arg", nargs="?")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    kinds = ["unary", "server-stream", "client-stream", "bidi"] if args.kind == "all" else [args.kind]
    with grpc.insecure_channel(args.addr) as channel:
        for kind in kinds:
            arg = args.arg if args.arg is not None else DEFAULT_ARG[kind]
            try:
                out = {"call": kind, "code": "OK", "result": calls(channel, kind, arg, args.timeout)}
            except grpc.RpcError as e:
                out = {"call": kind, "code": e.code().name, "details": e.details()}
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
