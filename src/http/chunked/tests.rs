use super::*;

/// Runs the decoder over `body` (data counted by size, not stepped); `Ok(true)` when
/// the final CRLF ends exactly at the end of `body`.
fn accepts(body: &[u8]) -> Result<bool, BadChunk> {
    let mut c = Chunked::new();
    let mut i = 0;
    while i < body.len() {
        if c.is_done() {
            return Ok(false);
        }
        if c.part == Part::Data {
            let n = c.n.min((body.len() - i) as u64);
            c.take_data(n);
            i += n as usize;
            continue;
        }
        c.step(body[i])?;
        i += 1;
    }
    Ok(c.is_done())
}

#[test]
fn accepts_the_grammar() {
    for good in [
        &b"0\r\n\r\n"[..],
        b"000\r\n\r\n",
        b"5\r\nhello\r\n0\r\n\r\n",
        b"00005\r\nhello\r\n0\r\n\r\n",
        b"a\r\n0123456789\r\n0\r\n\r\n",
        b"5;a\r\nhello\r\n0;b=c\r\n\r\n",
        b"5 ;a\r\nhello\r\n0\r\n\r\n",
        b"5\t; \ta \t= \tb\r\nhello\r\n0\r\n\r\n",
        b"5;a=\"q \\\" \\\\ \\x\";b;c=d\r\nhello\r\n0\r\n\r\n",
        b"5;a=\"\" ;b\r\nhello\r\n0\r\n\r\n",
        b"5;a ;b\r\nhello\r\n0\r\n\r\n",
        b"5;!#$%&'*+-.^_`|~09azAZ=tok\r\nhello\r\n0\r\n\r\n",
        b"0\r\nX-T: 1\r\n\r\n",
        b"0\r\nX-T:\r\nY:  v a l \t\r\n\r\n",
        b"0\r\nX-Obs: \x80\xff\r\n\r\n",
        b"5;a=\"\x80\"\r\nhello\r\n0\r\n\r\n",
    ] {
        assert_eq!(
            accepts(good),
            Ok(true),
            "{:?}",
            String::from_utf8_lossy(good)
        );
    }
}

#[test]
fn refuses_every_deviation() {
    for bad in [
        // The smuggling of issue 16: a bare LF where the trailer section starts.
        &b"5\r\nhello\r\n0\r\n\nGET /smuggled HTTP/1.1\r\n"[..],
        b"0\r\n\n",
        b"0\n\r\n",
        b"0\r\r\n",
        b"0\r\n\r\r",
        b"x\r\n",
        b"\r\n",
        b";a\r\n",
        b"-1\r\n",
        b"+1\r\n",
        b"0x5\r\n",
        b"1ffffffffffffffff\r\n",
        b"5 \r\n",
        b"5\t\r\n",
        b"5;\r\n",
        b"5;a=\r\n",
        b"5;a \r\n",
        b"5;a= \r\n",
        b"5;a=b \r\n",
        b"5;a=\"b\" \r\n",
        b"5;a=\"b\r\n",
        b"5;a=\"b\"c\r\n",
        b"5;a=b\"c\"\r\n",
        b"5;a=\"\x01\"\r\n",
        b"5;a=\"\\\x01\"\r\n",
        b"5;a@=b\r\n",
        b"5;=b\r\n",
        b"5;a==b\r\n",
        b"5 a\r\n",
        b"5\r\nhelloX\r\n",
        b"5\r\nhello\n",
        b"5\r\nhello\r\r",
        b"0\r\nX-T: 1\n\r\n",
        b"0\r\nX-T: 1\r\r\n",
        b"0\r\nX-T 1\r\n",
        b"0\r\nX-T : 1\r\n",
        b"0\r\n: 1\r\n",
        b"0\r\n X-T: 1\r\n",
        b"0\r\nX-T: 1\r\n folded\r\n",
        b"0\r\nX-T: \x01\r\n",
        b"0\r\nX-T: \x7f\r\n",
        b"0\r\nX(T): 1\r\n",
    ] {
        assert!(
            accepts(bad).is_err(),
            "{:?} was accepted",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn limits_size_lines_and_trailers() {
    let mut long_ext = b"5;a=".to_vec();
    long_ext.resize(MAX_CHUNK_LINE as usize + 10, b'x');
    long_ext.extend_from_slice(b"\r\n");
    assert!(accepts(&long_ext).is_err());
    let mut trailers = b"0\r\n".to_vec();
    while trailers.len() < 2 * MAX_TRAILERS as usize {
        trailers.extend_from_slice(b"X-Trailer: some value\r\n");
    }
    assert!(accepts(&trailers).is_err());
    // Leading zeros are not significant digits.
    assert_eq!(
        accepts(b"0000000000000000000001\r\nx\r\n0\r\n\r\n"),
        Ok(true)
    );
    assert_eq!(accepts(b"fffffffffffffff\r\n"), Ok(false));
}

#[test]
fn state_is_the_same_whatever_the_split() {
    let body = b"4;x=\"y\"\r\nWiki\r\n5\r\npedia\r\n0\r\nT: v\r\n\r\n";
    for cut in 0..body.len() {
        let mut c = Chunked::new();
        for part in [&body[..cut], &body[cut..]] {
            let mut i = 0;
            while i < part.len() {
                if c.part == Part::Data {
                    let n = c.n.min((part.len() - i) as u64);
                    c.take_data(n);
                    i += n as usize;
                } else {
                    c.step(part[i]).expect("valid");
                    i += 1;
                }
            }
        }
        assert!(c.is_done(), "cut at {cut}");
    }
}
