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
}

#[test]
fn backends_in_both_forms_with_weights() {
    let b = parse_backend("http://127.0.0.1:9001/").unwrap();
    assert_eq!(b.label, "127.0.0.1:9001");
    assert_eq!(b.weight, 1);
    let b = parse_backend("127.0.0.1:9002,weight=3").unwrap();
    assert_eq!(b.weight, 3);
    assert!(parse_backend("127.0.0.1:9002,weight=0").is_err());
    assert!(parse_backend("127.0.0.1:9002,color=red").is_err());
    assert!(parse_backend("127.0.0.1").is_err());
    assert!(parse_backend("ftp://127.0.0.1:21").is_err());
    assert_eq!(parse_backend("localhost:9001").unwrap().addr.port(), 9001);
}

#[test]
fn defaults_and_errors() {
    let c = run("-b 127.0.0.1:9001").unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
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
    assert_eq!(c.listen.port(), 2, "the last of a repeated flag wins");
    let c = run("-b 127.0.0.1:1 --retry-on 5xx,timeout --fanout 2").unwrap();
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
    assert_eq!(c.journal.as_deref(), Some(std::path::Path::new("/j")));
    assert_eq!(c.journal_sync, JournalSync::Off);
    assert!(run("-b 127.0.0.1:1 --journal-sync later").is_err());
}

#[test]
fn admin_address_or_off_and_access_log() {
    let c = run("-b 127.0.0.1:9001").unwrap();
    assert_eq!(c.admin, Some("127.0.0.1:8081".parse().unwrap()));
    assert!(!c.access_log);
    let c = run("-b 127.0.0.1:9001 --admin off --access-log").unwrap();
    assert_eq!(c.admin, None);
    assert!(c.access_log);
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
