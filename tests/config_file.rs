//! The config file from the command line: `lb check -c FILE` says every problem at its
//! line and column and exits 2, or prints one line and the routing table; and
//! `--print-config` writes the file that flags mean, which `lb check` accepts.

use std::path::PathBuf;
use std::process::Command;

/// A file in the test's own temporary directory.
fn file(name: &str, text: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_TARGET_TMPDIR"),
        &format!("{}-{name}", std::process::id()),
    ]
    .iter()
    .collect();
    std::fs::write(&path, text).expect("write the file");
    path.display().to_string()
}

/// Runs lb with `args` to its end: exit code, stdout, stderr.
fn lb(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lb"))
        .args(args)
        .output()
        .expect("run lb");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_says_every_problem_at_its_line_with_a_caret_and_exits_2() {
    let path = file(
        "bad.toml",
        "[listeners.web]\naddress = \"127.0.0.1:8080\"\n\n[pools.app]\n\
         backends = [\"127.0.0.1:9001\"]\nhelth = { path = \"/ping\" }\n\n\
         [[routes]]\npath = \"/login\"\npool = \"ap\"\n",
    );
    let (code, out, err) = lb(&["check", "-c", &path]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains(&format!(
            "{path}:6:1: unknown key `helth` in [pools.app] (did you mean `health`?)\n  |\n6 | \
             helth = {{ path = \"/ping\" }}\n  | ^^^^^\n"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{path}:10:8: no pool is called `ap` (did you mean `app`?)\n   |\n10 | pool = \
             \"ap\"\n   |        ^^^^\n"
        )),
        "{err}"
    );
    assert!(
        err.ends_with(&format!("{path}: 2 error(s), 1 warning(s): not loaded\n")),
        "{err}"
    );
}

#[test]
fn check_of_a_good_file_prints_one_line_and_the_routing_table() {
    let path = file(
        "good.toml",
        "[listeners.web]\naddress = \"127.0.0.1:8080\"\n\n[pools.app]\n\
         backends = [\"127.0.0.1:9001\"]\n\n[[routes]]\nname = \"login\"\npath = \"/login\"\n\
         methods = [\"GET\"]\npool = \"app\"\n\n[[routes]]\nrespond = { status = 404 }\n",
    );
    let (code, out, err) = lb(&["check", "-c", &path]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err, "");
    assert_eq!(
        out,
        format!(
            "{path}: ok, 1 listener(s), 1 pool(s) with 1 backend(s), 2 route(s)\n  \
             listener web 127.0.0.1:8080: HTTP, every route\n  \
             route login: GET, path /login -> pool app\n  route #2: any request -> answer 404\n"
        )
    );
}

#[test]
fn check_reads_each_pools_backends_file_and_counts_its_backends() {
    let listed = file("listed.txt", "127.0.0.1:9002\n127.0.0.1:9003\n");
    let toml = |backends_file: &str| {
        format!(
            "[listeners.web]\naddress = \"127.0.0.1:8080\"\n\n[pools.app]\n\
             backends = [\"127.0.0.1:9001\"]\nbackends_file = \"{backends_file}\"\n\n\
             [[routes]]\npool = \"app\"\n"
        )
    };
    let path = file("with-list.toml", &toml(&listed));
    let (code, out, err) = lb(&["check", "-c", &path]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with(&format!(
            "{path}: ok, 1 listener(s), 1 pool(s) with 3 backend(s), 1 route(s)\n"
        )),
        "{out}"
    );
    // What lb -c would refuse at start, lb check refuses at the key, naming the line.
    let bad = file("bad-list.txt", "127.0.0.1:9002\n127.0.0.1:9003,weight=0\n");
    let path = file("with-bad-list.toml", &toml(&bad));
    let (code, out, err) = lb(&["check", "-c", &path]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        err.starts_with(&format!(
            "{path}:6:17: {bad}:2: bad weight in backend '127.0.0.1:9003,weight=0' (1 to 1000)\n"
        )),
        "{err}"
    );
    let missing = format!("{listed}.gone");
    let path = file("with-no-list.toml", &toml(&missing));
    let (code, _, err) = lb(&["check", "-c", &path]);
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with(&format!(
            "{path}:6:17: cannot read backends file {missing}: "
        )),
        "{err}"
    );
}

/// The file the Debian package installs as /etc/lb/lb.toml: lb.service runs `lb check` on
/// it before each start and reload, so as shipped it must pass, with no warning.
#[test]
fn the_packaged_config_passes_check() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/dist/lb.toml");
    let (code, out, err) = lb(&["check", "-c", path, "--explain", "POST http://x/register"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err, "");
    assert!(
        out.starts_with(&format!(
            "{path}: ok, 1 listener(s), 1 pool(s) with 3 backend(s), 2 route(s)\n"
        )),
        "{out}"
    );
    assert!(
        out.contains("#1 writes: matches -> pool app, fanned out"),
        "{out}"
    );
}

#[test]
fn check_needs_a_readable_file() {
    let (code, _, err) = lb(&["check"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("check needs the file: lb check -c FILE"),
        "{err}"
    );
    let (code, _, err) = lb(&["check", "-c", "/nonexistent/lb.toml"]);
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with("lb: cannot read /nonexistent/lb.toml: "),
        "{err}"
    );
}

#[test]
fn print_config_writes_a_file_that_check_accepts() {
    let (code, printed, err) = lb(&[
        "--print-config",
        "-b",
        "127.0.0.1:9001",
        "-b",
        "127.0.0.1:9002,weight=2",
        "--health-path",
        "/ping",
        "--admin",
        "127.0.0.1:9911",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        printed.contains("[admin]\nlisten = \"127.0.0.1:9911\"\n"),
        "{printed}"
    );
    assert!(
        printed.contains(
            "[pools.default]\nbackends = [\"127.0.0.1:9001\", \"127.0.0.1:9002,weight=2\"]\n\
             health = { path = \"/ping\" }\n"
        ),
        "{printed}"
    );
    let path = file("printed.toml", &printed);
    let (code, out, err) = lb(&["check", "-c", &path]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with(&format!("{path}: ok, 1 listener(s)")),
        "{out}"
    );
}

#[test]
fn print_config_keeps_what_the_flags_said_not_what_they_came_to() {
    let token = file("token", "s3cret\n");
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let (code, printed, err) = lb(&[
        "--print-config",
        "-b",
        "127.0.0.1:9001",
        "--workers",
        "auto",
        "--admin-token-file",
        &token,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(printed.starts_with("workers = \"auto\"\n"), "{printed}");
    assert!(
        printed.contains(&format!("[admin]\ntoken_file = \"{token}\"\n")),
        "{printed}"
    );
    let path = file("printed-auto.toml", &printed);
    let (code, _, err) = lb(&["check", "-c", &path]);
    assert_eq!(code, Some(0), "{err}");
    // Without process settings, the file starts with its first section.
    let (_, printed, _) = lb(&["--print-config", "-b", "127.0.0.1:9001"]);
    assert!(printed.starts_with("[listeners.main]\n"), "{printed:?}");
}

#[test]
fn explain_says_which_route_takes_a_request_and_why_the_others_did_not() {
    let path = file(
        "explain.toml",
        "[listeners.web]\naddress = \"127.0.0.1:8080\"\n\n[pools.app]\n\
         backends = [\"127.0.0.1:9001\"]\n\n[pools.api]\nbackends = [\"127.0.0.1:9002\"]\n\n\
         [[routes]]\nname = \"login\"\npath = \"/login\"\nmethods = [\"GET\"]\npool = \"app\"\n\n\
         [[routes]]\nname = \"api\"\nhost = \"shop.example.com\"\npath_prefix = \"/api\"\n\
         pool = \"api\"\nrewrite = { strip_prefix = \"/api\" }\n\n\
         [[routes]]\nrespond = { status = 404 }\n",
    );
    let (code, out, err) = lb(&[
        "check",
        "-c",
        &path,
        "--explain",
        "GET http://SHOP.example.com:8080/api/x?q=1",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.ends_with(
            "GET http://SHOP.example.com:8080/api/x?q=1 on listener web:\n  \
             #1 login: path /api/x is not /login\n  \
             #2 api: matches -> pool api, path rewritten to /x?q=1\n"
        ),
        "{out}"
    );
    let (code, out, _) = lb(&["check", "-c", &path, "--explain", "POST /api/../login"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("  target /api/../login is routed as /login\n"),
        "{out}"
    );
    assert!(
        out.contains("  #1 login: method POST is not GET\n"),
        "{out}"
    );
    assert!(
        out.ends_with("  #3: matches -> respond 404 (0 bytes of text/plain; charset=utf-8)\n"),
        "{out}"
    );
    let (code, _, err) = lb(&["check", "-c", &path, "--explain", "GET https://x/"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no HTTP listener has TLS"), "{err}");
}
