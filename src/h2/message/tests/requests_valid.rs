//! Requests that are well formed, and the HTTP/1.1 head each becomes.

use super::BodyFraming::{Chunked, Length, None as NoBody, Tunnel};
use super::Want::Head;
use super::{Case, get, own};

pub(super) const CASES: &[Case] = &[
    get(
        "8.3.1 a GET -> request line from :method and :path, Host from :authority",
        &[],
        Head("GET /x HTTP/1.1\r\nhost: a.example\r\n\r\n", NoBody),
    ),
    get(
        "8.3.1 host equal to :authority but for case -> one Host, the :authority",
        &[("host", "A.example")],
        Head("GET /x HTTP/1.1\r\nhost: a.example\r\n\r\n", NoBody),
    ),
    get(
        "8.2.3 cookie crumbs -> one cookie joined with '; ', where the first was",
        &[
            ("cookie", "a=1"),
            ("accept", "*/*"),
            ("cookie", "b=2"),
            ("cookie", "c=3"),
        ],
        Head(
            "GET /x HTTP/1.1\r\nhost: a.example\r\ncookie: a=1; b=2; c=3\r\naccept: */*\r\n\r\n",
            NoBody,
        ),
    ),
    get(
        "8.2.2 te: trailers -> accepted, kept for lb's HTTP/1 code (which passes it on for gRPC only)",
        &[("te", "trailers"), ("accept", "*/*")],
        Head(
            "GET /x HTTP/1.1\r\nhost: a.example\r\nte: trailers\r\naccept: */*\r\n\r\n",
            NoBody,
        ),
    ),
    get(
        "8.2 regular fields -> forwarded in order, values as sent",
        &[("user-agent", "curl/8.5.0"), ("x-b", "2"), ("x-a", "1 , 2")],
        Head(
            "GET /x HTTP/1.1\r\nhost: a.example\r\nuser-agent: curl/8.5.0\r\nx-b: 2\r\nx-a: 1 , 2\r\n\r\n",
            NoBody,
        ),
    ),
    get(
        "8.2.1 empty value -> forwarded",
        &[("x-empty", "")],
        Head(
            "GET /x HTTP/1.1\r\nhost: a.example\r\nx-empty: \r\n\r\n",
            NoBody,
        ),
    ),
    own(
        "8.3.1 host without :authority -> Host from host",
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            ("host", "b.example:8080"),
        ],
        false,
        Head("GET / HTTP/1.1\r\nhost: b.example:8080\r\n\r\n", NoBody),
    ),
    own(
        "8.1 body and content-length -> Content-Length, DATA as they come",
        &[
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", "a.example"),
            (":path", "/f"),
            ("content-length", "5"),
        ],
        true,
        Head(
            "POST /f HTTP/1.1\r\nhost: a.example\r\ncontent-length: 5\r\n\r\n",
            Length(5),
        ),
    ),
    own(
        "8.1 body without content-length -> Transfer-Encoding: chunked",
        &[
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", "a.example"),
            (":path", "/f"),
        ],
        true,
        Head(
            "POST /f HTTP/1.1\r\nhost: a.example\r\ntransfer-encoding: chunked\r\n\r\n",
            Chunked,
        ),
    ),
    own(
        "8.1.1 equal content-length values -> one Content-Length",
        &[
            (":method", "PUT"),
            (":scheme", "https"),
            (":authority", "a.example"),
            (":path", "/f"),
            ("content-length", "12"),
            ("content-length", "12"),
        ],
        true,
        Head(
            "PUT /f HTTP/1.1\r\nhost: a.example\r\ncontent-length: 12\r\n\r\n",
            Length(12),
        ),
    ),
    own(
        "8.1.1 content-length: 0 on a HEADERS that ends the stream -> kept",
        &[
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", "a.example"),
            (":path", "/f"),
            ("content-length", "0"),
        ],
        false,
        Head(
            "POST /f HTTP/1.1\r\nhost: a.example\r\ncontent-length: 0\r\n\r\n",
            NoBody,
        ),
    ),
    own(
        "8.3.1 OPTIONS * -> OPTIONS * HTTP/1.1",
        &[
            (":method", "OPTIONS"),
            (":scheme", "https"),
            (":authority", "a.example"),
            (":path", "*"),
        ],
        false,
        Head("OPTIONS * HTTP/1.1\r\nhost: a.example\r\n\r\n", NoBody),
    ),
    own(
        "8.5 CONNECT with :authority alone -> CONNECT authority, a tunnel",
        &[(":method", "CONNECT"), (":authority", "a.example:443")],
        true,
        Head(
            "CONNECT a.example:443 HTTP/1.1\r\nhost: a.example:443\r\n\r\n",
            Tunnel,
        ),
    ),
    own(
        "RFC 8441 4 extended CONNECT -> GET with Upgrade to its protocol",
        &[
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":authority", "a.example"),
            (":path", "/chat"),
            ("sec-websocket-version", "13"),
        ],
        true,
        Head(
            "GET /chat HTTP/1.1\r\nhost: a.example\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n\r\n",
            Tunnel,
        ),
    ),
];
