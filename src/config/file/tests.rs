use super::*;
use crate::config::model::{Action, CheckKind, HostPattern, PathMatch, Protocol, Rewrite};
use crate::grpc::message::MAX_SERVICE;

/// The issue's example file: every key in it is read, nothing is wrong with it.
const SAMPLE: &str = r#"
[admin]
listen = "127.0.0.1:9901"

[listeners.web]
address = "127.0.0.1:8080"

[pools.app]
backends = ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003,weight=2"]
strategy = "round-robin"
health = { path = "/ping", interval = "2s" }

[[routes]]
name = "login"
path = "/login"
methods = ["GET"]
pool = "app"

[[routes]]
path_prefix = "/home"
pool = "app"
rewrite = { strip_prefix = "/home" }
fanout = false

[[routes]]
host = "api.example.com"
path_prefix = "/v1"
pool = "app"
headers = { request = { set = { "X-Api" = "1" } }, response = { set = { "Strict-Transport-Security" = "max-age=31536000" }, remove = ["Server"] } }

[[routes]]
host = "old.example.com"
redirect = { to = "https://new.example.com{path}", status = 308 }

[[routes]]
respond = { status = 404, body = "no such page\n" }
"#;

#[test]
fn the_sample_file_reads_whole() {
    let checked = check(SAMPLE);
    assert_eq!(checked.problems, vec![]);
    let site = checked.site.expect("a site");
    assert_eq!(site.listeners.len(), 1);
    assert_eq!(site.listeners[0].protocol, Protocol::Http);
    let app = &site.pools[0];
    assert_eq!(app.backends.len(), 3);
    assert_eq!(app.backends[2].weight, 2);
    assert_eq!(app.health.path, "/ping");
    assert_eq!(app.health.interval, std::time::Duration::from_secs(2));
    assert_eq!(site.routes.len(), 5);
    assert_eq!(site.routes[0].name, "login");
    assert_eq!(site.routes[1].name, "#2");
    assert_eq!(site.routes[0].path, Some(PathMatch::Exact("/login".into())));
    assert!(matches!(
        &site.routes[1].action,
        Action::Proxy { fanout: Some(false), rewrite: Some(Rewrite::StripPrefix(p)), .. } if p == "/home"
    ));
    assert_eq!(
        site.routes[2].hosts,
        vec![HostPattern::Exact("api.example.com".into())]
    );
    assert_eq!(site.routes[2].response_headers.remove, vec!["Server"]);
    assert!(matches!(
        &site.routes[3].action,
        Action::Redirect { status: 308, .. }
    ));
    assert!(matches!(
        &site.routes[4].action,
        Action::Respond { status: 404, .. }
    ));
    assert_eq!(site.admin.listen, Some("127.0.0.1:9901".parse().unwrap()));
}

/// `LINE:COL: message` of each problem, warnings marked.
fn said(text: &str) -> Vec<String> {
    check(text)
        .problems
        .iter()
        .map(|d| {
            let (line, col) = d.line_col(text);
            let w = if d.level == Level::Warning {
                "warning: "
            } else {
                ""
            };
            format!("{line}:{col}: {w}{}", d.message)
        })
        .collect()
}

#[test]
fn a_base_file_is_fine() {
    assert_eq!(said(&edited("")), Vec::<String>::new());
}

/// Bad files, each as an edit of a good one (see `edited`), and what check says of it.
const BAD: &[(&str, &[&str])] = &[
    (
        "[[routes]]\npath_regex = \"/(a\"\npool = \"app\"",
        &["11:14: path_regex \"/(a\" is not a valid regular expression: unclosed group"],
    ),
    (
        "[[routes]]\npath = \"/h\"\npool = \"app\"\nheaders = { request = { set = { \"Host\" = \"x\" } } }",
        &["13:31: a rule cannot set Host: lb routes by it and forwards it as the client sent it"],
    ),
    (
        "[[routes]]\nredirect = { to = \"https://{host}{path}\", status = 305 }",
        &["11:52: redirect status 305 is not one of 301, 302, 303, 307, 308"],
    ),
    (
        "[[routes]]\nredirect = { to = \"https://{hots}{path}\" }",
        &[
            "11:19: unknown placeholder {hots} in the redirect target: use {host}, {path} or {query}",
        ],
    ),
    (
        "[[routes]]\nrespond = { status = 404 }\n[[routes]]\npath = \"/never\"\nrespond = { status = 410 }",
        &[
            "12:1: warning: route \"#3\" can never match: route \"#2\" (routes[1]) comes first and takes every request",
        ],
    ),
    (
        "@LISTENER routes = [\"nosuch\"]",
        &["3:11: no route is named \"nosuch\""],
    ),
    (
        "[[routes]]\npath = \"x\"\npool = \"app\"",
        &["11:8: path \"x\" does not start with '/'"],
    ),
    (
        "[[routes]]\nmethods = [\"GE T\"]\npath = \"/m\"\npool = \"app\"",
        &["11:12: \"GE T\" is not a method name"],
    ),
    (
        "[pools.app\nbackends = []\n",
        &["10:11: unclosed table, expected `]`"],
    ),
    (
        "@TOP workres = 2",
        &["1:1: unknown key `workres` in the file (did you mean `workers`?)"],
    ),
    (
        "@TOP retries = 3\n@TOP pool = \"app\"\n@TOP address = \"127.0.0.1:80\"\n@TOP interval = \"5s\"\n@TOP level = \"debug\"",
        &[
            "1:1: unknown key `retries` in the file (`retries` is a pool setting: put it under [pools.NAME])",
            "2:1: unknown key `pool` in the file (`pool` is a route setting: put it under [[routes]])",
            "3:1: unknown key `address` in the file (`address` is a listener setting: put it under [listeners.NAME])",
            "4:1: unknown key `interval` in the file (`interval` is a health check setting: put it in `health = { ... }` under [pools.NAME])",
            "5:1: unknown key `level` in the file (`level` is a log setting: put it under [log])",
        ],
    ),
    (
        "@POOL helth = { path = \"/x\" }",
        &["6:1: unknown key `helth` in [pools.app] (did you mean `health`?)"],
    ),
    (
        "methds = [\"GET\"]",
        &["10:1: unknown key `methds` in a route (did you mean `methods`?)"],
    ),
    (
        "@POOL health = { kind = \"grpcc\" }",
        &["6:19: `kind`: 'grpcc' is not a kind of health check (http or grpc)"],
    ),
    (
        "[listeners.db]\naddress = \"127.0.0.1:5432\"\nmode = \"tcp\"\npool = \"db\"\n[pools.db]\nbackends = [\"127.0.0.1:5433\"]\nhealth = { kind = \"grpc\" }",
        &[
            "16:12: `health.kind` applies to HTTP only and does nothing in pool `db`, which TCP listener `db` uses",
        ],
    ),
    (
        "@POOL health = { grpc_service = \"app.Svc\" }",
        &["6:12: `grpc_service` needs `kind = \"grpc\"`"],
    ),
    (
        "@POOL health = { kind = \"grpc\", path = \"/x\", expect = \"2xx\" }",
        &[
            "6:27: `path` does nothing with `kind = \"grpc\"`: the check calls grpc.health.v1.Health/Check",
            "6:40: `expect` does nothing with `kind = \"grpc\"`: the check calls grpc.health.v1.Health/Check",
        ],
    ),
    (
        "@POOL health = { kind = \"grpc\", grpc_service = \"a b\" }",
        &[
            "6:42: `grpc_service`: 'a b' is not a gRPC service name (at most 200 characters, no spaces)",
        ],
    ),
    (
        "@POOL health = { pth = \"/x\" }",
        &["6:12: unknown key `pth` in `health` (did you mean `path`?)"],
    ),
    (
        "@TOP max_connections = \"many\"",
        &["1:19: `max_connections`: 'many' is not a whole number"],
    ),
    (
        "@TOP client_timeout = \"2h\"",
        &["1:18: `client_timeout`: 2h is more than the maximum, 1h"],
    ),
    (
        "@TOP max_body = 0",
        &["1:12: `max_body`: must be more than 0 (at most 1g)"],
    ),
    (
        "@POOL health = { interval = -5 }\n@POOL connect_timeout = -1\n@POOL retries = 0x2",
        &[
            "6:23: `interval` cannot be negative (0 turns health checks off)",
            "7:19: `connect_timeout` cannot be negative",
            "8:11: `retries`: write the number in decimal",
        ],
    ),
    (
        "@TOP max_body = \"2m\"\n@TOP max_buffered_bytes = \"1m\"",
        &[
            "2:22: `max_buffered_bytes` 1m is below one body of `max_body` (2m) with its head (32k): give at least 2080k",
        ],
    ),
    (
        "@TOP max_buffered_bytes = \"64m\"\nmax_body = \"100m\"",
        &[
            "11:12: route `#1`'s `max_body` (100m) with its head (32k) is more than `max_buffered_bytes` (64m): every such POST would get 503; give `max_buffered_bytes` at least 102432k, or a smaller `max_body`",
        ],
    ),
    (
        "@TOP idle_timeout = \"5 minutes\"",
        &["1:16: `idle_timeout`: bad duration '5 minutes' (write 250ms, 10s, 1m or 1h)"],
    ),
    (
        "@POOL strategy = \"fastest\"",
        &[
            "6:12: `strategy`: unknown strategy 'fastest' (one of: round-robin, n-to-1, least-connections, least-response-time, random, power-of-two, hash-source, hash-uri)",
        ],
    ),
    (
        "@BACKENDS backends = [\"127.0.0.1:9001,wieght=2\"]",
        &["5:13: bad option 'wieght=2' in backend '127.0.0.1:9001,wieght=2' (only weight=N)"],
    ),
    (
        "[[routes]]\npool = \"ap\"",
        &["11:8: no pool is called `ap` (did you mean `app`?)"],
    ),
    (
        "@BACKENDS backends = []",
        &["5:12: pool `app` has no backends: list them in `backends` (or name a `backends_file`)"],
    ),
    (
        "@BACKENDS backends = [\"127.0.0.1:9001\", \"127.0.0.1:9001\"]",
        &[
            "5:31: backend 127.0.0.1:9001 is listed twice in pool `app`: each backend once, with ,weight=N to send it more",
        ],
    ),
    (
        "[listeners.again]\naddress = \"127.0.0.1:8080\"",
        &["11:11: 127.0.0.1:8080 is also the address of listener `web`"],
    ),
    (
        "[listeners.secure]\naddress = \"127.0.0.1:8443\"\ntls = []",
        &[
            "12:7: `tls` lists no certificate: give at least one { cert = ..., key = ... }, or leave `tls` out for a plain listener",
        ],
    ),
    (
        "[listeners.secure]\naddress = \"127.0.0.1:8443\"\ntls = { cert = \"a.pem\", key = \"a.key\" }",
        &[
            "12:7: `tls` is a list of certificates: write `tls = [{ cert = ..., key = ... }]`, the first being the default",
        ],
    ),
    (
        "[listeners.secure]\naddress = \"127.0.0.1:8443\"\ntls = \"a.pem\"",
        &[
            "12:7: `listeners.secure.tls` must be a list of tables ([[listeners.secure.tls]]), not a string",
        ],
    ),
    (
        "[listeners.db]\naddress = \"127.0.0.1:5432\"\nmode = \"tcp\"\npool = \"db\"\nroutes = [\"x\"]\n[pools.db]\nbackends = [\"127.0.0.1:5433\"]",
        &[
            "14:10: a TCP listener has no routes: its connections go to its `pool` unparsed",
            "14:11: no route is named \"x\"",
        ],
    ),
    (
        "[listeners.db]\naddress = \"127.0.0.1:5432\"\nmode = \"tcp\"",
        &["10:1: TCP listener `db` needs `pool`: where its connections go"],
    ),
    (
        "@LISTENER pool = \"app\"",
        &[
            "3:8: an HTTP listener sends requests where its routes say: `pool` is for mode = \"tcp\" (a route has `pool`)",
        ],
    ),
    (
        "[listeners.db]\naddress = \"127.0.0.1:5432\"\nmode = \"tcp\"\npool = \"db\"\n[pools.db]\nbackends = [\"127.0.0.1:5433\"]\nstrategy = \"hash-uri\"",
        &[
            "13:8: pool `db` balances with hash-uri, which needs HTTP requests: a TCP listener cannot use it",
        ],
    ),
    (
        "[listeners.db]\naddress = \"127.0.0.1:5432\"\nmode = \"tcp\"\npool = \"db\"\n[pools.db]\nbackends = [\"127.0.0.1:5433\"]\nserver_timeout = \"5s\"\npool_size = 4\nhealth = { path = \"/x\", expect = \"2xx\", rise = 3 }\nfanout = { count = 1 }\nprotocol = \"h2\"",
        &[
            "16:1: `server_timeout` applies to HTTP only and does nothing in pool `db`, which TCP listener `db` uses",
            "17:1: `pool_size` applies to HTTP only and does nothing in pool `db`, which TCP listener `db` uses",
            "18:12: `health.path` applies to HTTP only and does nothing in pool `db`, which TCP listener `db` uses",
            "18:25: `health.expect` applies to HTTP only and does nothing in pool `db`, which TCP listener `db` uses",
            "19:1: `fanout` applies to HTTP only and does nothing in pool `db`, which TCP listener `db` uses",
            "20:1: `protocol` applies to HTTP only and does nothing in pool `db`, which TCP listener `db` uses",
        ],
    ),
    (
        "[listeners.db]\naddress = \"127.0.0.1:5432\"\nmode = \"tcp\"\npool = \"app\"",
        &[
            "9:8: pool `app` is used by TCP listener `db` and by route `#1`: a pool carries TCP connections or HTTP requests, not both (give each its own)",
        ],
    ),
    (
        "respond = { status = 404 }",
        &["10:1: a route has one action: `pool` and `respond` given"],
    ),
    (
        "[[routes]]\npath = \"/x\"",
        &["10:1: a route needs one action: `pool`, `redirect` or `respond`"],
    ),
    (
        "[[routes]]\npath = \"/x\"\npath_prefix = \"/y\"\npool = \"app\"",
        &["12:1: a route matches one path: `path` and `path_prefix` given"],
    ),
    (
        "[[routes]]\nredirect = { status = 301 }",
        &["11:12: `redirect` needs `to`, e.g. \"https://{host}{path}\""],
    ),
    (
        "[[routes]]\nrespond = { status = 404 }\nfanout = true",
        &["12:1: `fanout` applies to a route with `pool`, not `respond`"],
    ),
    (
        "host = \"exa mple.com\"",
        &[
            "10:8: 'exa mple.com' is not a host name (example.com, or *.example.com for any name under it)",
        ],
    ),
    (
        "rewrite = { with = \"/x\" }",
        &[
            "10:11: `rewrite` takes `strip_prefix = \"/a\"`, or `replace_prefix = \"/a\"` with `with = \"/b\"`",
        ],
    ),
    (
        "[[routes]]\nrespond = { status = \"404\" }",
        &["11:22: `status` must be an HTTP status code, such as 308"],
    ),
    (
        "[admin]\nlisten = \"127.0.0.1:8080\"",
        &["11:10: the admin listener's 127.0.0.1:8080 is also listener `web`'s address"],
    ),
    (
        "@BACKENDS backends = [\"127.0.0.1:8080\"]",
        &["5:13: backend 127.0.0.1:8080 is listener `web`'s own address: requests would loop"],
    ),
    (
        "@BACKENDS backends = [\"127.0.0.1:0\"]",
        &["5:13: backend 127.0.0.1:0 has port 0"],
    ),
    (
        "@POOL fanout = { count = 3 }",
        &["6:20: a fan-out to 3 backends, but pool `app` has 2"],
    ),
    (
        "@POOL fanout = { retry_base = \"10s\", retry_max = \"1s\" }",
        &["6:44: `retry_max` is below `retry_base`"],
    ),
    (
        "[log]\nlevel = \"loud\"",
        &["11:9: `level`: 'loud' is not a log level (error, warn, info, debug or trace)"],
    ),
    (
        "@TOP workers = 0",
        &["1:11: `workers`: 0 workers: give 1 to 1024, or auto"],
    ),
    (
        "[listeners.db]\naddress = \"127.0.0.1:5432\"\nmode = \"tcp\"\npool = \"db\"\nh2c = true\n[pools.db]\nbackends = [\"127.0.0.1:5433\"]",
        &[
            "14:1: `h2c` is for plain HTTP listeners: a TCP listener passes bytes through and speaks no HTTP",
        ],
    ),
    (
        "@LISTENER h2c = \"yes\"",
        &["3:7: `h2c` must be true or false, not a string"],
    ),
    (
        "@LISTENER accept_proxy = [\"10.0.0.0/33\"]",
        &["3:17: `accept_proxy`: '10.0.0.0/33' is not an address or a range such as 10.0.0.0/8"],
    ),
    (
        "header = { \"X-A\" = 1 }",
        &["10:20: `header.X-A` must be a string to equal, or true for present, not an integer"],
    ),
    (
        "@LISTENER mode = \"udp\"",
        &["3:8: `mode`: 'udp' is not a mode (http or tcp)"],
    ),
    (
        "[listeners.other]\nmode = \"http\"",
        &["10:1: [listeners.other] needs an `address`"],
    ),
    (
        "[listeners.other]\naddress = \"nowhere\"",
        &["11:11: `address`: 'nowhere' has no port: write host:port, such as 127.0.0.1:8080"],
    ),
    (
        "[listeners.secure]\naddress = \"127.0.0.1:8443\"\ntls = [{ cert = \"a.pem\" }]",
        &["12:8: a certificate needs both `cert` (a PEM chain) and `key` (its PEM key)"],
    ),
    (
        "@POOL protocol = \"h3\"",
        &["6:12: `protocol`: 'h3' is not a backend protocol (http1 or h2)"],
    ),
    (
        "@POOL send_proxy = \"v3\"",
        &["6:14: `send_proxy`: 'v3' is not a PROXY protocol version (v1 or v2)"],
    ),
    (
        "@POOL fanout = { success_status = \"6xx\" }",
        &["6:29: `success_status`: '6xx' is not a status (200-599) or a class (2xx-5xx)"],
    ),
    (
        "@POOL fanout = { retry_on = \"sometimes\" }",
        &[
            "6:23: `retry_on`: 'sometimes' is not a status (200-599) or a class (2xx-5xx); the list takes codes, classes, connect-failure, timeout, reset, bad-response or all",
        ],
    ),
    (
        "@TOP journal_sync = \"never\"",
        &["1:16: `journal_sync`: 'never' is not one of always, batch, off"],
    ),
    (
        "@POOL health = { interval = \"0s\", path = \"/ping\", rise = 3 }",
        &[
            "6:29: warning: `path` is ignored: `interval` 0 turns health checks off",
            "6:45: warning: `rise` is ignored: `interval` 0 turns health checks off",
        ],
    ),
    (
        "[pools.spare]\nbackends = [\"127.0.0.1:9009\"]",
        &["10:1: warning: pool `spare` is used by no route and no listener"],
    ),
    (
        "@POOL strategy = \"least-connections\"\n@BACKENDS backends = [\"127.0.0.1:9001,weight=3\"]",
        &[
            "6:12: warning: weight= is ignored: least-connections does not use weights (round-robin does)",
        ],
    ),
];

/// A base file changed by `edit`: `@TOP`, `@POOL`, `@LISTENER` put a line in that
/// section, `@BACKENDS` replaces the pool's backends line; other lines follow the route.
fn edited(edit: &str) -> String {
    let mut top = String::new();
    let mut pool = String::new();
    let mut backends = "backends = [\"127.0.0.1:9001\", \"127.0.0.1:9002\"]".to_string();
    let mut listener = String::new();
    let mut rest = String::new();
    for line in edit.lines() {
        if let Some(l) = line.strip_prefix("@TOP ") {
            top.push_str(l);
            top.push('\n');
        } else if let Some(l) = line.strip_prefix("@BACKENDS ") {
            backends = l.to_string();
        } else if let Some(l) = line.strip_prefix("@POOL ") {
            pool.push_str(l);
            pool.push('\n');
        } else if let Some(l) = line.strip_prefix("@LISTENER ") {
            listener.push_str(l);
            listener.push('\n');
        } else {
            rest.push_str(line);
            rest.push('\n');
        }
    }
    format!(
        "{top}[listeners.web]\naddress = \"127.0.0.1:8080\"\n{listener}\n[pools.app]\n{backends}\n{pool}\n[[routes]]\npath = \"/\"\npool = \"app\"\n{rest}"
    )
}

#[test]
fn every_bad_file_is_told_at_its_line_and_column() {
    assert!(BAD.len() >= 30);
    for (edit, expected) in BAD {
        let text = edited(edit);
        assert_eq!(said(&text), *expected, "{edit:?} in:\n{text}");
        let errors = expected.iter().any(|e| !e.contains(": warning: "));
        assert_eq!(check(&text).site.is_none(), errors, "{edit:?}");
    }
}

#[test]
fn the_default_bound_on_buffered_posts_fits_the_largest_body_a_route_takes() {
    let site = check(&edited("max_body = \"100m\"")).site.expect("a site");
    assert_eq!(site.process.max_buffered_bytes, 400 * 1024 * 1024);
    let site = check(&edited("")).site.expect("a site");
    assert_eq!(site.process.max_buffered_bytes, 64 * 1024 * 1024);
}

#[test]
fn http_settings_are_refused_where_only_tcp_passes() {
    let tcp = "[listeners.db]\naddress = \"127.0.0.1:5432\"\nmode = \"tcp\"\npool = \"db\"\n\n\
               [pools.db]\nbackends = [\"127.0.0.1:5433\"]\n";
    let text = format!(
        "max_body = \"2m\"\njournal = \"/var/lib/lb\"\nclient_timeout = \"5s\"\nidle_timeout = \"5m\"\n{tcp}"
    );
    assert_eq!(
        said(&text),
        [
            "1:1: `max_body` applies to HTTP only and does nothing: every listener is mode = \"tcp\"",
            "2:1: `journal` applies to HTTP only and does nothing: every listener is mode = \"tcp\"",
            "3:1: `client_timeout` with only TCP listeners times TLS handshakes and PROXY headers only: give it with a listener's `tls` or `accept_proxy`",
        ]
    );
    // With a PROXY header to read first, the client timeout has something to time.
    let text = format!(
        "client_timeout = \"5s\"\n{}",
        tcp.replace("mode = ", "accept_proxy = true\nmode = ")
    );
    assert_eq!(said(&text), Vec::<String>::new());
}

#[test]
fn a_pools_backends_file_is_read_as_lb_reads_it_at_start() {
    let dir = std::env::temp_dir().join(format!("lb-file-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("a backends file");
        path.display().to_string()
    };
    let good = write(
        "good.txt",
        "127.0.0.1:9003\n# spare\n127.0.0.1:9004,weight=2\n",
    );
    let bad = write("bad.txt", "127.0.0.1:9003\n127.0.0.1\n");
    let twice = write("twice.txt", "127.0.0.1:9001\n");
    let empty = write("empty.txt", "# none yet\n");
    let missing = dir.join("missing.txt").display().to_string();
    let with =
        |file: &str, more: &str| edited(&format!("@POOL backends_file = \"{file}\"\n{more}"));

    let checked = check(&with(&good, ""));
    assert_eq!(checked.problems, vec![]);
    assert_eq!(checked.listed["app"].len(), 2);
    assert_eq!(checked.listed["app"][1].at, format!("{good}:3"));
    assert_eq!(
        said(&with(&good, "@POOL fanout = { count = 4 }")),
        Vec::<String>::new()
    );
    assert_eq!(
        said(&with(&good, "@POOL fanout = { count = 5 }")),
        ["7:20: a fan-out to 5 backends, but pool `app` has 4"]
    );
    assert_eq!(
        said(&with(&missing, "")),
        [format!(
            "6:17: cannot read backends file {missing}: No such file or directory (os error 2)"
        )]
    );
    assert_eq!(
        said(&with(&bad, "")),
        [format!(
            "6:17: {bad}:2: bad backend '127.0.0.1': the port is missing (write 127.0.0.1:80, or the port it serves on)"
        )]
    );
    assert_eq!(
        said(&with(&twice, "")),
        [format!(
            "6:17: {twice}:1: backend 127.0.0.1:9001 is listed twice in pool `app`: each backend once, with ,weight=N to send it more"
        )]
    );
    assert_eq!(
        said(&edited(&format!("@BACKENDS backends_file = \"{empty}\""))),
        [format!(
            "5:17: pool `app` has no backends: {empty} lists none, and no `backends` gives one"
        )]
    );
    // A path in the file is relative to the file's directory.
    let lb_toml = dir.join("lb.toml").display().to_string();
    let text = edited("@POOL backends_file = \"good.txt\"");
    let checked = check_file(&lb_toml, &text);
    assert_eq!(checked.problems, vec![]);
    assert_eq!(checked.listed["app"].len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The site with where each backend was written left out: the same backends written in
/// two places are the same.
fn comparable(mut site: Site) -> String {
    site.source = Source::Flags;
    for p in &mut site.pools {
        for b in &mut p.backends {
            b.at.clear();
        }
    }
    format!("{site:?}")
}

#[test]
fn a_grpc_health_check_reads_and_prints() {
    let text = edited("@POOL health = { kind = \"grpc\", grpc_service = \"app.Svc\" }");
    let site = check(&text).site.expect("a site");
    assert_eq!(
        site.pools[0].health.kind,
        CheckKind::Grpc {
            service: "app.Svc".into()
        }
    );
    let printed = site.to_toml();
    assert!(
        printed.contains("health = { kind = \"grpc\", grpc_service = \"app.Svc\" }"),
        "{printed}"
    );
    assert_eq!(
        comparable(check(&printed).site.expect("printed")),
        comparable(site)
    );
    let plain = check(&edited("")).site.expect("a site");
    assert_eq!(plain.pools[0].health.kind, CheckKind::Http);
    // At most MAX_SERVICE characters.
    let long = |n| {
        edited(&format!(
            "@POOL health = {{ kind = \"grpc\", grpc_service = \"{}\" }}",
            "a".repeat(n)
        ))
    };
    assert!(check(&long(MAX_SERVICE)).site.is_some());
    assert!(check(&long(MAX_SERVICE + 1)).site.is_none());
}

#[test]
fn a_printed_site_reads_back_the_same() {
    let site = check(SAMPLE).site.expect("the sample");
    let printed = site.to_toml();
    let again = check(&printed);
    assert_eq!(again.problems, vec![], "{printed}");
    assert_eq!(
        comparable(again.site.expect("printed")),
        comparable(site),
        "{printed}"
    );
}

#[test]
fn the_flags_print_as_the_file_they_mean() {
    let args: Vec<String> = [
        "-l",
        "127.0.0.1:7000",
        "-b",
        "127.0.0.1:9001",
        "-b",
        "127.0.0.1:9002,weight=3",
        "-s",
        "least-connections",
        "--health-interval",
        "500ms",
        "--health-path",
        "/ping",
        "--retry-on",
        "503,timeout",
        "--fanout",
        "1",
        "--workers",
        "2",
        "--admin",
        "off",
        "--access-log",
        "--max-body",
        "64k",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let Ok(crate::config::Command::Run(cfg)) = crate::config::parse_args(&args) else {
        panic!("flags refused");
    };
    let site = cfg.site();
    let printed = site.to_toml();
    assert!(printed.contains("[pools.default]\nbackends = [\"127.0.0.1:9001\", \"127.0.0.1:9002,weight=3\"]\nstrategy = \"least-connections\"\nhealth = { path = \"/ping\", interval = \"500ms\" }\n"), "{printed}");
    let again = check(&printed);
    let warnings: Vec<_> = again.problems.iter().map(|d| d.message.clone()).collect();
    assert_eq!(
        warnings,
        vec!["weight= is ignored: least-connections does not use weights (round-robin does)"]
    );
    assert_eq!(
        comparable(again.site.expect("printed")),
        comparable(site),
        "{printed}"
    );
}

#[test]
fn a_fixed_answer_fits_the_buffer_it_goes_out_of() {
    let fits = format!(
        "[[routes]]\nrespond = {{ body = \"{}\" }}",
        "x".repeat(16 * 1024)
    );
    assert!(said(&edited(&fits)).is_empty());
    let large = format!(
        "[[routes]]\nrespond = {{ body = \"{}\" }}",
        "x".repeat(16 * 1024 + 1)
    );
    assert_eq!(
        said(&edited(&large)),
        [
            "11:20: a `respond` body is at most 16 KiB (16385 bytes here): lb answers it from one buffer; serve larger pages from a pool"
        ]
    );
}
