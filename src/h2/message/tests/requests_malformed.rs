//! Requests that are malformed, and why.

use super::Want::Malformed as Bad;
use super::{Case, get, own};

pub(super) const CASES: &[Case] = &[
    get(
        "8.2.2 connection header in a request -> malformed",
        &[("connection", "keep-alive")],
        Bad("8.2.2 connection-specific field"),
    ),
    get(
        "8.2.2 keep-alive in a request -> malformed",
        &[("keep-alive", "timeout=5")],
        Bad("8.2.2 connection-specific field"),
    ),
    get(
        "8.2.2 proxy-connection in a request -> malformed",
        &[("proxy-connection", "keep-alive")],
        Bad("8.2.2 connection-specific field"),
    ),
    get(
        "8.2.2 transfer-encoding in a request -> malformed",
        &[("transfer-encoding", "chunked")],
        Bad("8.2.2 connection-specific field"),
    ),
    get(
        "8.2.2 upgrade in a request -> malformed",
        &[("upgrade", "h2c")],
        Bad("8.2.2 connection-specific field"),
    ),
    get(
        "8.2.2 te other than trailers -> malformed",
        &[("te", "gzip")],
        Bad("8.2.2 te other than trailers"),
    ),
    get(
        "8.2.2 te: trailers with another coding -> malformed",
        &[("te", "trailers, deflate")],
        Bad("8.2.2 te other than trailers"),
    ),
    get(
        "8.2.1 uppercase in a field name -> malformed",
        &[("Accept", "*/*")],
        Bad("8.2.1 field name not a lowercase token"),
    ),
    get(
        "8.2.1 space in a field name -> malformed",
        &[("x a", "1")],
        Bad("8.2.1 field name not a lowercase token"),
    ),
    get(
        "8.2.1 colon inside a field name -> malformed",
        &[("x:a", "1")],
        Bad("8.2.1 field name not a lowercase token"),
    ),
    get(
        "8.2.1 empty field name -> malformed",
        &[("", "1")],
        Bad("8.2.1 field name not a lowercase token"),
    ),
    get(
        "8.2.1 NUL in a value -> malformed",
        &[("x-a", "a\0b")],
        Bad("8.2.1 field value with NUL, CR, LF or whitespace at an end"),
    ),
    get(
        "8.2.1 CR in a value -> malformed",
        &[("x-a", "a\rb")],
        Bad("8.2.1 field value with NUL, CR, LF or whitespace at an end"),
    ),
    get(
        "8.2.1 LF in a value (a smuggled line) -> malformed",
        &[("x-a", "a\nx-b: c")],
        Bad("8.2.1 field value with NUL, CR, LF or whitespace at an end"),
    ),
    get(
        "8.2.1 leading space in a value -> malformed",
        &[("x-a", " a")],
        Bad("8.2.1 field value with NUL, CR, LF or whitespace at an end"),
    ),
    get(
        "8.2.1 trailing tab in a value -> malformed",
        &[("x-a", "a\t")],
        Bad("8.2.1 field value with NUL, CR, LF or whitespace at an end"),
    ),
    get(
        "8.3 pseudo-header field after a regular one -> malformed",
        &[("accept", "*/*"), (":scheme", "http")],
        Bad("8.3 pseudo-header field after a regular field"),
    ),
    get(
        "8.3 unknown pseudo-header field -> malformed",
        &[(":foo", "bar")],
        Bad("8.3 unknown pseudo-header field"),
    ),
    get(
        "8.3.2 :status in a request -> malformed",
        &[(":status", "200")],
        Bad("8.3.2 response pseudo-header field in a request"),
    ),
    get(
        "8.3.1 repeated :path -> malformed",
        &[(":path", "/y")],
        Bad("8.3.1 repeated pseudo-header field"),
    ),
    get(
        "8.3.1 host differing from :authority -> malformed",
        &[("host", "b.example")],
        Bad("8.3.1 host differs from :authority"),
    ),
    get(
        "8.3.1 several host fields -> malformed",
        &[("host", "a.example"), ("host", "a.example")],
        Bad("8.3.1 several host fields"),
    ),
    get(
        "8.1.1 content-length not a number -> malformed",
        &[("content-length", "abc")],
        Bad("8.1.1 content-length not a number"),
    ),
    get(
        "8.1.1 content-length with a sign -> malformed",
        &[("content-length", "+5")],
        Bad("8.1.1 content-length not a number"),
    ),
    get(
        "8.1.1 content-length as a list -> malformed",
        &[("content-length", "5, 5")],
        Bad("8.1.1 content-length not a number"),
    ),
    get(
        "8.1.1 content-length past u64 -> malformed",
        &[("content-length", "99999999999999999999")],
        Bad("8.1.1 content-length not a number"),
    ),
    get(
        "8.1.1 content-length values differ -> malformed",
        &[("content-length", "5"), ("content-length", "6")],
        Bad("8.1.1 content-length values differ"),
    ),
    get(
        "8.1.1 content-length above 0 on a HEADERS that ends the stream -> malformed",
        &[("content-length", "5")],
        Bad("8.1.1 content-length above 0 without DATA"),
    ),
    get(
        "RFC 8441 4 :protocol with a method other than CONNECT -> malformed",
        &[(":protocol", "websocket")],
        Bad("RFC 8441 4 :protocol with a method other than CONNECT"),
    ),
    own(
        "8.3.1 no :method -> malformed",
        &[
            (":scheme", "https"),
            (":authority", "a.example"),
            (":path", "/"),
        ],
        false,
        Bad("8.3.1 no :method"),
    ),
    own(
        "8.3.1 no :scheme -> malformed",
        &[
            (":method", "GET"),
            (":authority", "a.example"),
            (":path", "/"),
        ],
        false,
        Bad("8.3.1 no :scheme or no :path"),
    ),
    own(
        "8.3.1 no :path -> malformed",
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "a.example"),
        ],
        false,
        Bad("8.3.1 no :scheme or no :path"),
    ),
    own(
        "8.3.1 empty :path -> malformed",
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "a.example"),
            (":path", ""),
        ],
        false,
        Bad("8.3.1 empty :path"),
    ),
    own(
        "8.3.1 :path * for GET -> malformed",
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "a.example"),
            (":path", "*"),
        ],
        false,
        Bad("8.3.1 :path * for a method other than OPTIONS"),
    ),
    own(
        "8.3.1 :path not starting with / -> malformed",
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "a.example"),
            (":path", "x/y"),
        ],
        false,
        Bad("8.3.1 :path neither an absolute path nor *"),
    ),
    own(
        "8.3.1 :path with a space (a second request line) -> malformed",
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "a.example"),
            (":path", "/a HTTP/1.1"),
        ],
        false,
        Bad("8.3.1 :path with a byte a request target cannot have"),
    ),
    own(
        "8.3.1 :method not a token -> malformed",
        &[
            (":method", "GE T"),
            (":scheme", "https"),
            (":authority", "a.example"),
            (":path", "/"),
        ],
        false,
        Bad("8.3.1 :method not a token"),
    ),
    own(
        "8.3.1 :scheme neither http nor https -> malformed",
        &[
            (":method", "GET"),
            (":scheme", "ftp"),
            (":authority", "a.example"),
            (":path", "/"),
        ],
        false,
        Bad("8.3.1 :scheme other than http or https"),
    ),
    own(
        "8.3.1 neither :authority nor host -> malformed",
        &[(":method", "GET"), (":scheme", "https"), (":path", "/")],
        false,
        Bad("8.3.1 neither :authority nor host"),
    ),
    own(
        "8.3.1 userinfo in :authority -> malformed",
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "u:p@a.example"),
            (":path", "/"),
        ],
        false,
        Bad("8.3.1 :authority or host not a host and port"),
    ),
    own(
        "8.3.1 host with a slash -> malformed",
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            ("host", "a.example/x"),
        ],
        false,
        Bad("8.3.1 :authority or host not a host and port"),
    ),
    own(
        "8.5 CONNECT with :path -> malformed",
        &[
            (":method", "CONNECT"),
            (":authority", "a.example:443"),
            (":path", "/"),
        ],
        true,
        Bad("8.5 CONNECT with :scheme or :path"),
    ),
    own(
        "8.5 CONNECT with :scheme -> malformed",
        &[
            (":method", "CONNECT"),
            (":authority", "a.example:443"),
            (":scheme", "https"),
        ],
        true,
        Bad("8.5 CONNECT with :scheme or :path"),
    ),
    own(
        "8.5 CONNECT without :authority -> malformed",
        &[(":method", "CONNECT")],
        true,
        Bad("8.5 CONNECT without :authority"),
    ),
    own(
        "RFC 8441 4 extended CONNECT without :path -> malformed",
        &[
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":authority", "a.example"),
        ],
        true,
        Bad("RFC 8441 4 extended CONNECT without :scheme or :path"),
    ),
    own(
        "RFC 8441 4 :protocol not a token -> malformed",
        &[
            (":method", "CONNECT"),
            (":protocol", "web socket"),
            (":scheme", "https"),
            (":authority", "a.example"),
            (":path", "/"),
        ],
        true,
        Bad("RFC 8441 4 :protocol not a token"),
    ),
    Case {
        name: "RFC 8441 3 :protocol when lb did not enable it -> malformed",
        after_get: false,
        fields: &[
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":authority", "a.example"),
            (":path", "/chat"),
        ],
        has_body: true,
        extended_connect: false,
        want: Bad("8.3 unknown pseudo-header field"),
    },
];
