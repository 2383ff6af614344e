use crate::route::{BadTarget, RequestView, normalize};

#[test]
fn targets_are_normalized_as_rfc_3986_says() {
    let cases: &[(&str, &str)] = &[
        ("/", "/"),
        ("/admin", "/admin"),
        ("/a/b/c?x=1", "/a/b/c?x=1"),
        // §6.2.2.2: unreserved characters decoded, others upper-cased.
        ("/%61dmin", "/admin"),
        ("/%41%7a%30%2D%2e%5F%7E", "/Az0-._~"),
        ("/a%2cb", "/a%2Cb"),
        ("/caf%c3%a9", "/caf%C3%A9"),
        ("/a%20b", "/a%20b"),
        // §5.2.4: dot segments.
        ("/x/../admin", "/admin"),
        ("/x/./admin", "/x/admin"),
        ("/a/b/../../c", "/c"),
        ("/a/.", "/a/"),
        ("/a/..", "/"),
        ("/.", "/"),
        ("/./", "/"),
        ("/a/./", "/a/"),
        ("/a/../", "/"),
        ("/x/%2e%2e/admin", "/admin"),
        ("/x/.%2E/admin", "/admin"),
        ("/..a/.b/a..", "/..a/.b/a.."),
        // Empty segments merged.
        ("//admin", "/admin"),
        ("/a//b///c", "/a/b/c"),
        ("/a//", "/a/"),
        ("//", "/"),
        // The query is left as sent, dots, escapes and all.
        ("/x/../a?p=/../%61", "/a?p=/../%61"),
        ("/a?", "/a?"),
        ("/%61?q", "/a?q"),
        ("/a/.?x", "/a/?x"),
        ("/a/..?x", "/?x"),
        ("/a//?x", "/a/?x"),
        // A `;` that is not a dot segment's is just a character.
        ("/a;b/c", "/a;b/c"),
    ];
    for &(sent, want) in cases {
        let mut scratch = [0; 64];
        let got = normalize(sent.as_bytes(), &mut scratch)
            .map(|n| String::from_utf8_lossy(n.target).into_owned());
        assert_eq!(got.as_deref(), Ok(want), "{sent}");
    }
}

#[test]
fn targets_that_would_reach_another_path_than_the_one_routed_are_refused() {
    let cases: &[(&str, BadTarget)] = &[
        ("/..", BadTarget::AboveRoot),
        ("/../admin", BadTarget::AboveRoot),
        ("/a/../../admin", BadTarget::AboveRoot),
        ("/%2e%2e/admin", BadTarget::AboveRoot),
        ("/admin%2F..", BadTarget::EncodedSeparator),
        ("/admin%2f", BadTarget::EncodedSeparator),
        ("/x%5C..%5Cadmin", BadTarget::EncodedSeparator),
        ("/x\\..\\admin", BadTarget::EncodedSeparator),
        ("/admin%00.html", BadTarget::Control),
        ("/a%0d%0aX-Evil:%201", BadTarget::Control),
        ("/a%7f", BadTarget::Control),
        ("/a%1F", BadTarget::Control),
        ("/a%", BadTarget::BadEscape),
        ("/a%4", BadTarget::BadEscape),
        ("/a%zz", BadTarget::BadEscape),
        ("/admin#x", BadTarget::Fragment),
        ("/a?q#x", BadTarget::Fragment),
        ("/x/..;/admin", BadTarget::DotParams),
        ("/x/.;a/admin", BadTarget::DotParams),
        ("/x/%2e%2e;/admin", BadTarget::DotParams),
        ("*", BadTarget::NotOriginForm),
        ("http://example.com/", BadTarget::NotOriginForm),
        ("example.com:443", BadTarget::NotOriginForm),
        ("", BadTarget::NotOriginForm),
    ];
    for &(sent, want) in cases {
        let mut scratch = [0; 64];
        let got = normalize(sent.as_bytes(), &mut scratch).map(|n| n.target.to_vec());
        assert_eq!(got, Err(want), "{sent}");
        assert_eq!(want.status(), 400, "{sent}");
    }
}

#[test]
fn a_normal_target_is_not_copied() {
    for sent in ["/", "/api/v1/users?id=7&x=/../", "/a.b/c..d/.e", "/..."] {
        let mut scratch = [0; 64];
        let n = normalize(sent.as_bytes(), &mut scratch).expect("normal");
        assert_eq!(n.target.as_ptr(), sent.as_ptr(), "{sent}");
        assert_eq!(n.target, sent.as_bytes());
    }
}

#[test]
fn a_target_longer_than_the_buffer_is_too_long_however_it_is_written() {
    let mut scratch = [0; 8];
    for sent in ["/abcdefgh", "/abc/../fgh"] {
        let got = normalize(sent.as_bytes(), &mut scratch).map(|n| n.target.len());
        assert_eq!(got, Err(BadTarget::TooLong), "{sent}");
    }
    assert_eq!(BadTarget::TooLong.status(), 414);
    let exact_fit = "/a/../bcd";
    let mut scratch = [0; 9];
    let n = normalize(exact_fit.as_bytes(), &mut scratch).expect("fits");
    assert_eq!(n.target, b"/bcd");
}

#[test]
fn the_view_splits_path_and_query_of_the_normalized_target() {
    let mut scratch = [0; 64];
    let v =
        RequestView::new("GET", b"h", b"/a/../b%7e?x=1&y", &[], &mut scratch).expect("routable");
    assert_eq!(v.path(), b"/b~");
    assert_eq!(v.query(), Some(&b"x=1&y"[..]));
    assert_eq!(v.target(), b"/b~?x=1&y");
    assert_eq!(v.sent_target(), b"/a/../b%7e?x=1&y");
    let mut scratch = [0; 64];
    let v = RequestView::new("GET", b"h", b"/b", &[], &mut scratch).expect("routable");
    assert_eq!(v.query(), None);
}
