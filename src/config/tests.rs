use super::*;

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn run(s: &str) -> Result<Config, String> {
    match parse_args(&args(s))? {
        Command::Run(c) => Ok(*c),
        _ => Err("not a run".into()),
    }
}

#[test]
fn durations_and_sizes() {
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
    assert!(parse_duration("ten").is_err());
    assert!(parse_duration("5x").is_err());
    assert_eq!(parse_size("64k"), Ok(65536));
    assert_eq!(parse_size("1m"), Ok(1 << 20));
    assert_eq!(parse_size("100"), Ok(100));
    assert!(parse_size("-1").is_err());
    assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
    assert!(
        parse_duration("307445734561825861m").is_err(),
        "no wrapping"
    );
    assert!(parse_size("18446744073709551615k").is_err(), "no wrapping");
}

/// The error for `flags` on top of one backend.
fn refused(flags: &str) -> String {
    run(&format!("-b 127.0.0.1:9001 {flags}")).expect_err(flags)
}

#[test]
fn every_number_has_a_stated_maximum_and_one_meaning_of_zero() {
    for f in flags::NUMBERS {
        let unit_max = flags::show(f.unit, f.max);
        let over = match f.unit {
            flags::Unit::Duration => "18446744073709551615s".to_string(),
            _ => format!("{}", f.max + 1),
        };
        let err = refused(&format!("--{} {over}", f.name));
        assert!(
            err.starts_with(&format!("--{}: ", f.name)) && err.contains(&unit_max),
            "{err}"
        );
        // --fanout is bounded by the backends given as well.
        if f.name != "fanout" {
            let at_max = format!("-b 127.0.0.1:9001 --{} {unit_max}", f.name);
            assert!(run(&at_max).is_ok(), "{at_max}");
        }
        let zero = run(&format!("-b 127.0.0.1:9001 --{} 0", f.name));
        match f.zero {
            flags::Zero::Refused => assert!(zero.is_err(), "{}", f.name),
            flags::Zero::Means(_) => assert!(zero.is_ok(), "{}: {zero:?}", f.name),
        }
        let help = usage().split_whitespace().collect::<Vec<_>>().join(" ");
        let at = help.find(&format!("--{} ", f.name)).unwrap();
        let at = at + help[at..].find("(default ").unwrap();
        let line = &help[at..at + help[at..].find(')').unwrap()];
        assert!(
            line.contains(&format!("at most {unit_max}; 0 ")),
            "--help states the limit and what 0 means: {line}"
        );
    }
    assert!(refused("--client-timeout 18446744073709551615s").contains("maximum, 1h"));
    assert!(refused("--idle-timeout 307445734561825861m").contains("maximum, 24h"));
    let c = run("-b 127.0.0.1:1 --health-interval 0 --drain-timeout 0 --retries 0").unwrap();
    assert!(c.health_interval.is_zero() && c.drain_timeout.is_zero() && c.retries == 0);
    assert_eq!(
        refused("--max-connections 0"),
        "--max-connections: must be at least 1"
    );
    assert!(refused("--server-timeout 0").contains("more than 0"));
    assert!(refused("--max-body 2g").contains("maximum, 1g"));
}

#[test]
fn contradictions_are_refused() {
    let dup = run("-b 127.0.0.1:9001 -b 127.0.0.1:9002 -b localhost:9001").unwrap_err();
    assert!(
        dup.contains("given twice (-b 127.0.0.1:9001 and -b localhost:9001)"),
        "{dup}"
    );
    assert!(refused("-b 127.0.0.1:0").contains("port 0"));
    assert!(
        run("-b 127.0.0.1:9001,weight=3,weight=4")
            .unwrap_err()
            .contains("weight given twice")
    );
    assert!(refused("-q -v").contains("-q and -v"));
    assert!(refused("--fanout 5").contains("--fanout 5 is more than the 1 backend"));
    assert!(run("-b 127.0.0.1:1 -b 127.0.0.1:2 --fanout 2").is_ok());
    for http_only in [
        "--server-timeout 1s",
        "--max-body 1k",
        "--fanout 1",
        "--retry-base 1s",
        "--retry-on 5xx",
        "--health-path /x",
        "--success-status 200",
        "--pool-size 1",
        "--max-pending 1",
    ] {
        let err = refused(&format!("-m tcp {http_only}"));
        assert!(err.contains("HTTP only") && err.contains("-m tcp"), "{err}");
    }
    assert!(run("-b 127.0.0.1:1 -m tcp --idle-timeout 5s --connect-timeout 1s").is_ok());
    // In TCP mode it times only what is read before the pipe opens.
    assert!(refused("-m tcp --client-timeout 1s").contains("--tls-listen or --accept-proxy"));
    assert!(run("-b 127.0.0.1:1 -m tcp --accept-proxy --client-timeout 1s").is_ok());
    assert!(refused("--retry-base 10s --retry-max 5s").contains("below --retry-base"));
    assert!(refused("--admin-host lb:8081").contains("without a port"));
    assert!(refused("--admin-host a/b").contains("not a host name"));
    let named = run("-b 127.0.0.1:1 --admin-host LB.Internal. --admin-host x").unwrap();
    assert_eq!(named.admin_hosts, ["lb.internal", "x"]);
    assert!(refused("-l 127.0.0.1:9100 --admin 127.0.0.1:9100").contains("--admin off"));
    assert!(
        run("-l 127.0.0.1:9001 -b 127.0.0.1:9001")
            .unwrap_err()
            .contains("would loop")
    );
    assert!(
        run("-l 0.0.0.0:9001 -b 127.0.0.1:9001")
            .unwrap_err()
            .contains("would loop")
    );
    assert_eq!(
        run("-b 127.0.0.1:9901").unwrap_err(),
        "backend 127.0.0.1:9901 (-b 127.0.0.1:9901) is lb's own --admin address: requests would loop"
    );
    assert!(run("-b 127.0.0.1:9901 --admin 127.0.0.1:9002").is_ok());
    assert!(
        run("-l 127.0.0.1:9001 -b 0.0.0.0:9001")
            .unwrap_err()
            .contains("would loop")
    );
    assert!(
        run("--tls-listen [::]:9443 --tls-cert c --tls-key k -b [::ffff:127.0.0.1]:9443")
            .unwrap_err()
            .contains("lb's own --tls-listen address")
    );
}

#[test]
fn what_is_ignored_is_said_once() {
    let c = run("-b 127.0.0.1:1,weight=3 -b 127.0.0.1:2 -s least-connections").unwrap();
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("least-connections does not use weights"));
    assert!(
        run("-b 127.0.0.1:1,weight=3 -b 127.0.0.1:2")
            .unwrap()
            .warnings
            .is_empty()
    );
    let c = run("-b 127.0.0.1:1 --health-interval 0 --rise 3 --health-timeout 1s").unwrap();
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(c.warnings.iter().all(|w| w.contains("--health-interval 0")));
}

#[test]
fn round_robin_is_weighted_and_has_its_old_name_too() {
    assert_eq!(run("-b 127.0.0.1:1").unwrap().strategy, "round-robin");
    let c = run("-b 127.0.0.1:1 -s weighted-round-robin").unwrap();
    assert_eq!(c.strategy, "round-robin");
    let help = usage().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("weighted-round-robin is another name"),
        "{help}"
    );
}

#[test]
fn backends_in_both_forms_with_weights() {
    let b = parse_backend("http://127.0.0.1:9001/", None).unwrap();
    assert_eq!(b.label, "127.0.0.1:9001");
    assert_eq!(b.weight, 1);
    let b = parse_backend("127.0.0.1:9002,weight=3", None).unwrap();
    assert_eq!(b.weight, 3);
    assert!(parse_backend("127.0.0.1:9002,weight=0", None).is_err());
    assert!(parse_backend("127.0.0.1:9002,color=red", None).is_err());
    assert!(parse_backend("127.0.0.1", None).is_err());
    assert!(parse_backend("ftp://127.0.0.1:21", None).is_err());
    assert_eq!(
        parse_backend("localhost:9001", None).unwrap().addr.port(),
        9001
    );
}

#[test]
fn defaults_and_errors() {
    let c = run("-b 127.0.0.1:9001").unwrap();
    assert_eq!(
        c.listen.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:8080")
    );
    assert_eq!(c.mode, Mode::Http);
    assert_eq!(c.retries, 2);
    assert_eq!(c.max_body, 1 << 20);
    assert_eq!(c.client_timeout, Duration::from_secs(10));
    assert!(run("").unwrap_err().contains("no backends"));
    assert!(run("-b 127.0.0.1:1 --bogus").is_err());
    assert!(
        run("-b 127.0.0.1:1 -s nope")
            .unwrap_err()
            .contains("unknown strategy")
    );
    assert!(run("-b 127.0.0.1:1 -m udp").is_err());
    assert!(
        run("-b 127.0.0.1:1 -m tcp -s hash-uri")
            .unwrap_err()
            .contains("-m tcp")
    );
    assert!(run("-b 127.0.0.1:1 -m tcp -s hash-source").is_ok());
    assert!(run("-b 127.0.0.1:1 --retries 99").is_err());
    assert!(
        run("-b 127.0.0.1:1 --idle-timeout soon")
            .unwrap_err()
            .contains("--idle-timeout")
    );
    assert_eq!(c.drain_timeout, Duration::from_secs(30));
    assert!(
        run("-b 127.0.0.1:1 --drain-timeout later")
            .unwrap_err()
            .contains("--drain-timeout")
    );
    let c = run("-b 127.0.0.1:1 --drain-timeout 5s").unwrap();
    assert_eq!(c.drain_timeout, Duration::from_secs(5));
    assert!(matches!(parse_args(&args("-h")), Ok(Command::Help(_))));
    let c = run("-b 127.0.0.1:1 -l 127.0.0.1:1 -l 127.0.0.1:2").unwrap();
    assert_eq!(
        c.listen.map(|a| a.port()),
        Some(2),
        "the last of a repeated flag wins"
    );
    let c = run("-b 127.0.0.1:1 -b 127.0.0.1:2 --retry-on 5xx,timeout --fanout 2").unwrap();
    assert!(c.retry_on.statuses.contains(502) && c.retry_on.timeout);
    assert!(!c.retry_on.statuses.contains(404) && !c.retry_on.reset);
    assert_eq!(c.fanout, 2);
    assert!(
        run("-b 127.0.0.1:1 --retry-on 6xx")
            .unwrap_err()
            .starts_with("--retry-on: ")
    );
    assert!(run("-b 127.0.0.1:1 --success-status 1xx").is_err());
    let c = run("-b 127.0.0.1:1").unwrap();
    assert_eq!(c.success_status, StatusSet::SUCCESS);
    assert_eq!(c.retry_on, RetryOn::DEFAULT);
    assert_eq!((c.journal, c.journal_sync), (None, JournalSync::Batch));
    let c = run("-b 127.0.0.1:1 --success-status 201,202 --journal /j --journal-sync off").unwrap();
    assert!(c.success_status.contains(202) && !c.success_status.contains(200));
    assert_eq!(
        c.journal.as_ref().and_then(|j| j.dir()),
        Some(std::path::Path::new("/j"))
    );
    assert_eq!(c.journal_sync, JournalSync::Off);
    let url = "postgres://lb@127.0.0.1:5432/lb";
    let c = run(&format!("-b 127.0.0.1:1 --journal {url}")).unwrap();
    assert_eq!(c.journal, Some(super::JournalAt::Postgres(url.into())));
    assert!(run("-b 127.0.0.1:1 --journal-sync later").is_err());
}

#[test]
fn admin_address_or_off_and_access_log() {
    let c = run("-b 127.0.0.1:9001").unwrap();
    assert_eq!(c.admin, Some("127.0.0.1:9901".parse().unwrap()));
    assert_eq!(c.access_log, AccessLogTo::Off);
    let c = run("-b 127.0.0.1:9001 --admin off --access-log").unwrap();
    assert_eq!(c.admin, None);
    assert_eq!(c.access_log, AccessLogTo::Stdout);
    let c = run("-b 127.0.0.1:9001 --access-log=/var/log/lb.log").unwrap();
    assert_eq!(c.access_log, AccessLogTo::File("/var/log/lb.log".into()));
    assert!(
        run("-b 127.0.0.1:9001 --access-log /var/log/lb.log")
            .unwrap_err()
            .contains("--access-log=PATH")
    );
    assert_eq!(c.log_format, LogFormat::Text);
    let c = run("-b 127.0.0.1:9001 --log-format json").unwrap();
    assert_eq!(c.log_format, LogFormat::Json);
    assert!(run("-b 127.0.0.1:9001 --log-format xml").is_err());
    let c = run("-b 127.0.0.1:9001 --admin 127.0.0.1:0").unwrap();
    assert_eq!(c.admin.map(|a| a.port()), Some(0));
    assert!(
        run("-b 127.0.0.1:9001 --admin nowhere")
            .unwrap_err()
            .starts_with("--admin: ")
    );
    assert!(usage().contains("--admin ADDR|off"));
    assert!(usage().contains("--access-log"));
}

#[test]
fn backends_file_messages_name_the_line() {
    let path = std::env::temp_dir().join(format!("lb-servers-bad-{}.txt", std::process::id()));
    let file = |text: &[u8]| {
        std::fs::write(&path, text).unwrap();
        run(&format!("-f {}", path.display()))
    };
    let c = file("\u{feff}127.0.0.1:9001\n127.0.0.1:9002,weight=2\n".as_bytes()).unwrap();
    assert_eq!(
        c.backends.len(),
        2,
        "a byte-order mark at the start is skipped"
    );
    assert_eq!(c.backends[1].weight, 2);
    let err = file(b"# two\n127.0.0.1:9001\n127.0.0.1:9002 weight=2\n").unwrap_err();
    assert!(
        err.ends_with(
            ":3: bad backend '127.0.0.1:9002 weight=2': options follow a comma, \
                       without spaces (127.0.0.1:9002,weight=2)"
        ),
        "{err}"
    );
    let err = file("127.0.0.1:9001\n\u{feff}127.0.0.1:9002\n".as_bytes()).unwrap_err();
    assert!(err.contains(":2: ") && err.contains("invisible"), "{err}");
    let err = file(b"127.0.0.1:9001\n\xff\xfe\n").unwrap_err();
    assert!(err.contains(":2: not UTF-8"), "{err}");
    let err = file(b"127.0.0.1:9001\n127.0.0.1:9001\n").unwrap_err();
    assert!(err.contains(":1 and ") && err.contains(":2)"), "{err}");
    std::fs::remove_file(&path).ok();
}

#[test]
fn backends_file_with_comments() {
    let path = std::env::temp_dir().join(format!("lb-servers-{}.txt", std::process::id()));
    std::fs::write(
        &path,
        "# servers\nhttp://127.0.0.1:9001\n\n127.0.0.1:9002 # two\n",
    )
    .unwrap();
    let c = run(&format!("-f {}", path.display())).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(c.backends.len(), 2);
    assert_eq!(c.backends[1].addr.port(), 9002);
}

#[test]
fn a_backend_written_twice_alike_is_refused_too() {
    let same = run("-b 127.0.0.1:1 -b 127.0.0.1:2 -b 127.0.0.1:1").unwrap_err();
    assert!(
        same.contains("given twice (-b 127.0.0.1:1 and -b 127.0.0.1:1)"),
        "{same}"
    );
    assert!(run("-b 127.0.0.1:1 -b http://127.0.0.1:1/").is_err());
}

#[test]
fn runtime_control_flags() {
    let c = run("-b 127.0.0.1:1").unwrap();
    assert_eq!(c.resolve_interval, Duration::from_secs(10));
    assert_eq!(c.admin_token, None);
    assert_eq!(c.backend_flags.len(), 1);
    assert_eq!(c.backends_file, None);
    let c = run("-b 127.0.0.1:1 --resolve-interval 0").unwrap();
    assert!(c.resolve_interval.is_zero());
    assert!(run("-b 127.0.0.1:1 --resolve-interval often").is_err());
}

#[test]
fn admin_token_file_must_exist_hold_a_token_and_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir();
    let path = dir.join(format!("lb-token-{}", std::process::id()));
    let flag = format!("-b 127.0.0.1:1 --admin-token-file {}", path.display());
    assert!(
        run(&flag)
            .unwrap_err()
            .starts_with("--admin-token-file: cannot read")
    );
    std::fs::write(&path, "s3cret\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = run(&flag).unwrap_err();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ok = run(&flag).map(|c| c.admin_token);
    std::fs::write(&path, "\n").unwrap();
    let empty = run(&flag).unwrap_err();
    std::fs::remove_file(&path).ok();
    assert!(open.contains("readable by every user"), "{open}");
    assert_eq!(ok, Ok(Some(Secret("s3cret".into()))));
    assert!(
        format!("{:?}", Secret("s3cret".into()))
            .find("s3cret")
            .is_none()
    );
    assert!(empty.contains("no token"), "{empty}");
}

#[test]
fn workers_are_counted_or_one_per_core() {
    assert_eq!(run("-b 127.0.0.1:1").unwrap().workers, 1);
    assert_eq!(run("-b 127.0.0.1:1 --workers 4").unwrap().workers, 4);
    assert!(run("-b 127.0.0.1:1 --workers auto").unwrap().workers >= 1);
    for bad in ["0", "1025", "two", "-1"] {
        let err = refused(&format!("--workers={bad}"));
        assert!(err.starts_with("--workers: "), "{err}");
    }
}

#[test]
fn the_bound_on_buffered_bytes_fits_one_body_and_follows_max_body() {
    let bound =
        |flags: &str| run(&format!("-b 127.0.0.1:9001 {flags}")).map(|c| c.max_buffered_bytes);
    assert_eq!(bound(""), Ok(64 << 20));
    assert_eq!(
        bound("--max-body 100m"),
        Ok(400 << 20),
        "4 bodies of --max-body"
    );
    assert_eq!(
        bound("--max-body 1m --max-connections 2"),
        Ok(2 * ((1 << 20) + (32 << 10))),
        "no more than can be arriving at once"
    );
    assert_eq!(bound("--max-buffered-bytes 1m --max-body 64k"), Ok(1 << 20));
    assert_eq!(
        refused("--max-buffered-bytes 64k --max-body 64k"),
        "--max-buffered-bytes 64k is below one body of --max-body (64k) with its head (32k): \
         give at least 96k"
    );
    assert_eq!(run("-b 127.0.0.1:9001").unwrap().client_min_rate, 1024);
}

#[test]
fn h2c_is_for_the_plain_http_listener() {
    let c = run("-b 127.0.0.1:9001 --h2c --tls-listen 127.0.0.1:8443 --tls-cert c --tls-key k");
    let err = c.unwrap_err();
    assert!(err.contains("--h2c is for the plain listener"), "{err}");
    let err = run("-b 127.0.0.1:9001 --h2c -m tcp").unwrap_err();
    assert!(err.contains("--h2c applies to HTTP only"), "{err}");
    let c = run("-b 127.0.0.1:9001 --h2c -l 127.0.0.1:8080").unwrap();
    let site = c.site();
    assert!(site.listeners.iter().all(|l| l.h2c));
}
