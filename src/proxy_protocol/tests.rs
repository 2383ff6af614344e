use super::*;

fn addrs(s: &str, d: &str) -> Option<Addresses> {
    Some(Addresses {
        source: s.parse().unwrap(),
        destination: d.parse().unwrap(),
    })
}

#[test]
fn v1_lines() {
    let line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /";
    assert_eq!(
        parse(line),
        Ok(Parsed::Header {
            len: 45,
            addresses: addrs("192.0.2.1:56324", "198.51.100.2:443"),
        })
    );
    let line = b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n";
    assert!(matches!(
        parse(line),
        Ok(Parsed::Header {
            len: 36,
            addresses: Some(_)
        })
    ));
    assert_eq!(
        parse(b"PROXY UNKNOWN\r\n"),
        Ok(Parsed::Header {
            len: 15,
            addresses: None
        })
    );
    assert_eq!(parse(b"PROXY UNKNOWN 1 2 3 4\r\n").map(|_| ()), Ok(()));
    for partial in [&b"PRO"[..], b"PROXY TCP4 1.2.3.4", b"\r\n\r\n\0\r\nQU"] {
        assert_eq!(parse(partial), Ok(Parsed::Partial), "{partial:?}");
    }
    for bad in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"\x16\x03\x01",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
    ] {
        assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
    let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 120]].concat();
    assert!(parse(&long).is_err());
}

#[test]
fn v2_round_trips_and_rejects() {
    for (s, d) in [
        ("192.0.2.1:56324", "198.51.100.2:443"),
        ("[2001:db8::1]:1", "[::1]:8443"),
    ] {
        let mut out = Vec::new();
        write(Version::V2, addrs(s, d), &mut out);
        out.extend_from_slice(b"rest");
        assert_eq!(
            parse(&out),
            Ok(Parsed::Header {
                len: out.len() - 4,
                addresses: addrs(s, d)
            })
        );
        assert_eq!(parse(&out[..out.len() - 6]), Ok(Parsed::Partial));
        let mut v1 = Vec::new();
        write(Version::V1, addrs(s, d), &mut v1);
        assert!(
            matches!(parse(&v1), Ok(Parsed::Header { addresses, .. }) if addresses == addrs(s, d))
        );
    }
    let mut local = Vec::new();
    write(Version::V2, None, &mut local);
    assert_eq!(
        parse(&local),
        Ok(Parsed::Header {
            len: 16,
            addresses: None
        })
    );
    let mut mixed = Vec::new();
    write(Version::V2, addrs("10.0.0.1:5", "[::1]:80"), &mut mixed);
    assert!(
        matches!(parse(&mixed), Ok(Parsed::Header { addresses: Some(a), .. }) if a.source.ip().to_canonical() == "10.0.0.1".parse::<IpAddr>().unwrap())
    );
    let mut bad = local.clone();
    bad[12] = 0x31;
    assert!(parse(&bad).is_err(), "version 3");
    let mut bad = local.clone();
    bad[12] = 0x22;
    assert!(parse(&bad).is_err(), "command 2");
    let mut udp = Vec::new();
    write(Version::V2, addrs("10.0.0.1:5", "10.0.0.2:6"), &mut udp);
    udp[13] = 0x12;
    assert!(parse(&udp).is_err(), "UDP");
    let mut short = udp.clone();
    short[13] = 0x21;
    assert!(parse(&short).is_err(), "IPv6 family with an IPv4 block");
    let mut huge = local.clone();
    huge[14..16].copy_from_slice(&2000u16.to_be_bytes());
    assert!(parse(&huge).is_err());
}

#[test]
fn cidr_ranges() {
    let c = Cidr::parse("10.1.0.0/16").unwrap();
    assert!(c.contains("10.1.200.3".parse().unwrap()));
    assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
    assert!(!c.contains("10.2.0.1".parse().unwrap()));
    assert!(!c.contains("::1".parse().unwrap()));
    assert!(
        Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap())
    );
    assert!(
        Cidr::parse("127.0.0.1")
            .unwrap()
            .contains("127.0.0.1".parse().unwrap())
    );
    assert!(
        !Cidr::parse("127.0.0.1")
            .unwrap()
            .contains("127.0.0.2".parse().unwrap())
    );
    assert!(
        Cidr::parse("fd00::/8")
            .unwrap()
            .contains("fd12::1".parse().unwrap())
    );
    for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::/129"] {
        assert!(Cidr::parse(bad).is_err(), "{bad}");
    }
}
