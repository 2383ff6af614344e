//! docker-compose.yml (alone and with docker-compose.postgres.yml) and the Dockerfile, run
//! without docker. This machine has a docker CLI and no engine, so each service's
//! entrypoint and command are run as the files write them, natively on loopback: the
//! binaries the Dockerfile installs are this build's, the paths it and the compose file
//! mount are mapped back to the repository, and what only a container network gives is put
//! on loopback. Each demo backend gets an address of its
//! own in 127.0.0.0/8 (all of it is local on Linux) on one port, and lb finds them by
//! their service names through a hosts file. So the names, the flags and the config's
//! routes are proven as written; only the addresses and the port are swapped.
//!
//! Where docker itself is there, the last two tests also check the file with docker
//! compose and build and run the image; otherwise they say they were skipped.

mod common;
#[path = "common/postgres.rs"]
mod db;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::tls::TempDir;
use common::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// One service of docker-compose.yml: its keys as written on their line, a key under a
/// nested map as `parent.key` (`healthcheck.disable`).
struct Service {
    name: String,
    keys: HashMap<String, String>,
}

impl Service {
    /// A key written as a flow sequence on one line, read as the JSON array it also is.
    fn list(&self, key: &str) -> Vec<String> {
        let raw = self
            .keys
            .get(key)
            .unwrap_or_else(|| panic!("service {} has no {key}:", self.name));
        serde_json::from_str(raw).unwrap_or_else(|e| {
            panic!(
                "service {}: {key}: must be a flow sequence of strings on one line, \
                 [\"a\", \"b\"] ({e}): {raw}",
                self.name
            )
        })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.keys.get(key).map(String::as_str)
    }
}

struct Compose {
    services: Vec<Service>,
    /// The top-level named volumes.
    volumes: Vec<String>,
}

/// Reads the compose file's layout as this repository writes it: two-space indents,
/// services under `services:`, their keys four spaces in, nested keys six, every value on
/// its key's line. Anything else is refused, so the file cannot drift to a shape the
/// test would misread.
fn parse_compose(text: &str) -> Compose {
    let mut compose = Compose {
        services: Vec::new(),
        volumes: Vec::new(),
    };
    let (mut top, mut parent) = (String::new(), String::new());
    for (n, line) in text.lines().enumerate() {
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        let (key, value) = body
            .split_once(':')
            .unwrap_or_else(|| panic!("docker-compose.yml:{}: not `key: value`: {line}", n + 1));
        let (key, value) = (key.trim().to_string(), value.trim().to_string());
        match (indent, top.as_str()) {
            (0, _) => top = key,
            (2, "services") => compose.services.push(Service {
                name: key,
                keys: HashMap::new(),
            }),
            (2, "volumes") => compose.volumes.push(key),
            (4, "services") => {
                parent = key.clone();
                let service = compose.services.last_mut().expect("a service");
                service.keys.insert(key, value);
            }
            (6, "services") => {
                let service = compose.services.last_mut().expect("a service");
                service.keys.insert(format!("{parent}.{key}"), value);
            }
            _ => panic!("docker-compose.yml:{}: unexpected line: {line}", n + 1),
        }
    }
    compose
}

/// `docker compose -f base -f over`: a service's keys in `over` replace its keys in `base`,
/// but its `depends_on`, `volumes` and `ports` are added to; new services and volumes join.
fn merged(mut base: Compose, over: Compose) -> Compose {
    for service in over.services {
        let Some(into) = base.services.iter_mut().find(|s| s.name == service.name) else {
            base.services.push(service);
            continue;
        };
        for (key, value) in service.keys {
            let value = match (key.as_str(), into.keys.get(&key)) {
                ("depends_on" | "volumes" | "ports", Some(before)) => {
                    let mut all: Vec<String> = serde_json::from_str(before).expect("a list");
                    all.extend(serde_json::from_str::<Vec<String>>(&value).expect("a list"));
                    serde_json::to_string(&all).expect("a list")
                }
                _ => value,
            };
            into.keys.insert(key, value);
        }
    }
    base.volumes.extend(over.volumes);
    base
}

/// The Dockerfile's instructions, stage by stage: comment lines dropped, continued lines
/// joined, each as (INSTRUCTION, the rest).
fn parse_dockerfile(text: &str) -> Vec<Vec<(String, String)>> {
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    let mut logical = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => logical.push_str(part),
            None => {
                logical.push_str(line);
                let whole = std::mem::take(&mut logical);
                let whole = whole.trim();
                if whole.is_empty() {
                    continue;
                }
                let (instr, rest) = whole.split_once(' ').unwrap_or((whole, ""));
                let instr = instr.to_ascii_uppercase();
                if instr == "FROM" {
                    stages.push(Vec::new());
                }
                let stage = stages.last_mut().expect("FROM comes first");
                stage.push((instr, rest.trim().to_string()));
            }
        }
    }
    stages
}

/// The image's last stage, what runs.
struct Image {
    stages: Vec<Vec<(String, String)>>,
}

impl Image {
    fn load() -> Image {
        Image {
            stages: parse_dockerfile(&read("Dockerfile")),
        }
    }

    fn runtime(&self) -> &[(String, String)] {
        self.stages.last().expect("a stage")
    }

    fn all(&self, instr: &str) -> Vec<&str> {
        self.runtime()
            .iter()
            .filter(|(i, _)| i == instr)
            .map(|(_, rest)| rest.as_str())
            .collect()
    }

    /// The one (last) `instr` of the runtime stage.
    fn one(&self, instr: &str) -> &str {
        self.all(instr)
            .pop()
            .unwrap_or_else(|| panic!("the Dockerfile's last stage has no {instr}"))
    }

    /// An instruction in exec form, `["a", "b"]`.
    fn exec_form(&self, instr: &str) -> Vec<String> {
        json_list(self.one(instr))
    }

    /// This build's binary for a path the image installs it at: the build stage's
    /// `target/release/NAME`, copied there.
    fn binary(&self, installed: &str) -> &'static str {
        let copied = self
            .all("COPY")
            .into_iter()
            .filter_map(|rest| rest.strip_prefix("--from=build "))
            .find_map(|rest| {
                let (from, to) = rest.split_once(' ')?;
                (to.trim() == installed).then(|| from.rsplit('/').next().unwrap_or(from))
            })
            .unwrap_or_else(|| panic!("the Dockerfile installs nothing at {installed}"));
        match copied {
            "lb" => env!("CARGO_BIN_EXE_lb"),
            "backend" => env!("CARGO_BIN_EXE_backend"),
            other => panic!("{installed} is target/release/{other}, not a binary of lb's"),
        }
    }

    /// The repository file the image has at `path`, from a `COPY FILES... DIR/`.
    fn source_of(&self, path: &str) -> PathBuf {
        for rest in self.all("COPY") {
            if rest.starts_with("--") {
                continue;
            }
            let words: Vec<&str> = rest.split_whitespace().collect();
            let (dir, files) = words.split_last().expect("COPY has a destination");
            for file in files {
                let name = Path::new(file).file_name().expect("a file name");
                if Path::new(dir).join(name) == Path::new(path) {
                    return root().join(file);
                }
            }
        }
        panic!("the Dockerfile copies nothing to {path}")
    }

    /// The HEALTHCHECK's command: exec form after CMD.
    fn healthcheck(&self) -> Vec<String> {
        let rest = self.one("HEALTHCHECK");
        let (_, cmd) = rest.split_once("CMD ").expect("HEALTHCHECK ... CMD [...]");
        json_list(cmd)
    }
}

fn json_list(raw: &str) -> Vec<String> {
    serde_json::from_str(raw).unwrap_or_else(|e| panic!("not a JSON array of strings ({e}): {raw}"))
}

/// "40s", "1m", "250ms" as the compose file and lb's config write durations.
fn duration(s: &str) -> Duration {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split].parse().expect("a number");
    match &s[split..] {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        other => panic!("unknown duration unit {other} in {s}"),
    }
}

/// A config file, as lb's parser also reads it.
fn toml_table(text: &str) -> toml::Table {
    text.parse().expect("the config is TOML")
}

fn toml_str<'a>(t: &'a toml::Table, path: &[&str]) -> &'a str {
    let (last, parents) = path.split_last().expect("a key");
    let table = parents.iter().fold(t, |t, k| {
        t.get(*k)
            .and_then(|v| v.as_table())
            .unwrap_or_else(|| panic!("config has no [{k}] for {}", path.join(".")))
    });
    table
        .get(*last)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("config has no string {}", path.join(".")))
}

/// `text` with each `from` replaced, each required to be there.
fn swapped(mut text: String, swaps: &[(String, String)]) -> String {
    for (from, to) in swaps {
        assert!(text.contains(from.as_str()), "no {from} in:\n{text}");
        text = text.replace(from.as_str(), to);
    }
    text
}

/// Starts `bin args...` as the image would, and waits until it listens. Err carries what it
/// said when it exited or never listened (a bad flag: its message, exit status 2).
fn start(bin: &str, args: &[String]) -> Result<Proc, String> {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    std::panic::catch_unwind(AssertUnwindSafe(|| spawn_command(&mut cmd))).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// A port free on each of `ips` a moment ago.
fn port_free_on(ips: &[Ipv4Addr]) -> u16 {
    for _ in 0..50 {
        let port = free_port();
        if ips.iter().all(|ip| TcpListener::bind((*ip, port)).is_ok()) {
            return port;
        }
    }
    panic!("no port free on all of {ips:?}")
}

/// Runs `argv` and waits at most `within` (a healthcheck is killed at its --timeout too).
fn run_within(argv: &[String], within: Duration) -> Option<ExitStatus> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"));
    let end = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The image's HEALTHCHECK as a command line for an lb whose admin listener is on `admin`
/// instead of the image's port, which the check names as `/dev/tcp/127.0.0.1/PORT`.
fn healthcheck_for(image: &Image, image_admin_port: u16, admin: SocketAddr) -> Vec<String> {
    let argv = image.healthcheck();
    let from = format!("/dev/tcp/127.0.0.1/{image_admin_port}");
    let to = format!("/dev/tcp/{}/{}", admin.ip(), admin.port());
    assert!(
        argv.iter().any(|a| a.contains(&from)),
        "the HEALTHCHECK does not ask {from}, the config's admin port: {argv:?}"
    );
    argv.iter().map(|a| a.replace(&from, &to)).collect()
}

/// The image's stop signal, as a number for kill(2).
fn stop_signal(image: &Image) -> i32 {
    match image.one("STOPSIGNAL") {
        "SIGTERM" => libc::SIGTERM,
        "SIGINT" => libc::SIGINT,
        other => panic!("STOPSIGNAL {other}: lb drains on SIGTERM or SIGINT only"),
    }
}

/// The demo backends of the compose file, each started from its own entrypoint and
/// command on 127.0.0.(2+i):port instead of its container's 0.0.0.0:PORT.
struct Servers {
    procs: Vec<Proc>,
    /// Their service names, in the file's order.
    names: Vec<String>,
    /// A hosts(5) file giving each name its address here.
    hosts: String,
    /// The port the compose file has them all listen on.
    file_port: u16,
    /// The port they all listen on here, each on its own address.
    port: u16,
}

fn start_servers(compose: &Compose, image: &Image) -> Servers {
    let backend = env!("CARGO_BIN_EXE_backend");
    let servers: Vec<&Service> = compose
        .services
        .iter()
        .filter(|s| s.get("entrypoint").is_some())
        .filter(|s| image.binary(&s.list("entrypoint")[0]) == backend)
        .collect();
    assert_eq!(
        servers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["server1", "server2", "server3"],
        "the seeds' three servers, by the names their servers.txt used"
    );
    let ips: Vec<Ipv4Addr> = (0..servers.len())
        .map(|i| Ipv4Addr::new(127, 0, 0, 2 + i as u8))
        .collect();
    let port = port_free_on(&ips);
    let mut file_port = None;
    let mut procs = Vec::new();
    let mut hosts = String::new();
    for (s, ip) in servers.iter().zip(&ips) {
        let entrypoint = s.list("entrypoint");
        let mut args: Vec<String> = entrypoint[1..].to_vec();
        args.extend(s.list("command"));
        // --listen 0.0.0.0:PORT: every interface of its container, as a server must listen
        // to be reached by service name.
        let at = args
            .iter()
            .position(|a| a == "--listen")
            .unwrap_or_else(|| panic!("{}: no --listen in {args:?}", s.name));
        let listen: SocketAddr = args[at + 1].parse().expect("--listen ADDR:PORT");
        assert!(listen.ip().is_unspecified(), "{}: {listen}", s.name);
        assert_eq!(*file_port.get_or_insert(listen.port()), listen.port());
        args[at + 1] = SocketAddr::from((*ip, port)).to_string();
        let proc = start(image.binary(&entrypoint[0]), &args)
            .unwrap_or_else(|e| panic!("service {} did not start: {e}", s.name));
        hosts.push_str(&format!("{ip} {}\n", s.name));
        procs.push(proc);
    }
    Servers {
        procs,
        names: servers.iter().map(|s| s.name.clone()).collect(),
        hosts,
        file_port: file_port.expect("a server"),
        port,
    }
}

/// `GET /` on fresh connections goes to each server in turn.
fn assert_round_robin(web: SocketAddr, servers: &Servers, lb: &Proc) {
    let counts = tally(web, 3 * servers.names.len());
    for name in &servers.names {
        assert_eq!(counts.get(name), Some(&3), "{counts:?}\n{}", lb.log_text());
    }
}

/// A demo backend's `USER registered R changed C password P`, as numbers (R, C).
fn user_on(server: &Proc, user: &str) -> (u32, u32) {
    let text = get(server.addr, &format!("/users/{user}")).text();
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        [_, "registered", r, "changed", c, ..] => (r.parse().unwrap_or(0), c.parse().unwrap_or(0)),
        _ => (0, 0),
    }
}

/// The compose file's lb: its service, its binary and arguments, and the config file its
/// command names, as a repository path found through the service's volumes.
fn compose_lb<'a>(
    compose: &'a Compose,
    image: &Image,
) -> (&'a Service, &'static str, Vec<String>, PathBuf) {
    let lb_bin = env!("CARGO_BIN_EXE_lb");
    let lbs: Vec<&Service> = compose
        .services
        .iter()
        .filter(|s| s.get("entrypoint").is_some())
        .filter(|s| image.binary(&s.list("entrypoint")[0]) == lb_bin)
        .collect();
    assert_eq!(lbs.len(), 1, "one lb service");
    let s = lbs[0];
    let entrypoint = s.list("entrypoint");
    let mut args: Vec<String> = entrypoint[1..].to_vec();
    args.extend(s.list("command"));
    let at = args.iter().position(|a| a == "-c").expect("lb -c FILE");
    let in_container = args[at + 1].clone();
    let config = s
        .list("volumes")
        .iter()
        .find_map(|v| {
            let mut parts = v.split(':');
            let (from, to) = (parts.next()?, parts.next()?);
            let rest = Path::new(&in_container).strip_prefix(to).ok()?;
            from.starts_with("./").then(|| root().join(from).join(rest))
        })
        .unwrap_or_else(|| panic!("no volume of the lb service holds {in_container}"));
    (s, lb_bin, args, config)
}

#[test]
fn the_compose_services_run_as_written_and_do_what_the_seeds_did() {
    let compose = parse_compose(&read("docker-compose.yml"));
    let image = Image::load();
    let servers = start_servers(&compose, &image);
    let (lb_service, lb_bin, mut args, config_path) = compose_lb(&compose, &image);
    assert_eq!(
        config_path,
        root().join("dist/docker/compose.toml"),
        "the lb service runs dist/docker/compose.toml"
    );
    let text = std::fs::read_to_string(&config_path).expect("the compose config");
    let config = toml_table(&text);

    // The pool lists the servers by service name and port, as servers.txt did.
    for name in &servers.names {
        let backend = format!("\"http://{name}:{}\"", servers.file_port);
        assert!(text.contains(&backend), "no {backend} in {config_path:?}");
    }
    // Published ports reach the listener and the admin listener; the journal is on the
    // named volume; the drain ends before docker's stop_grace_period kills lb.
    let listeners = config["listeners"].as_table().expect("[listeners]");
    assert_eq!(listeners.len(), 1, "one listener");
    let (web_name, web) = listeners.iter().next().expect("a listener");
    let web_addr: SocketAddr = web["address"].as_str().expect("address").parse().unwrap();
    let admin_addr_file: SocketAddr = toml_str(&config, &["admin", "listen"]).parse().unwrap();
    let ports = lb_service.list("ports");
    for (what, addr) in [("listener", web_addr), ("admin", admin_addr_file)] {
        assert!(
            addr.ip().is_unspecified(),
            "{what} {addr}: unreachable from outside"
        );
        assert!(
            ports
                .iter()
                .any(|p| p.ends_with(&format!(":{}", addr.port()))),
            "{what} port {} is not published: {ports:?}",
            addr.port()
        );
    }
    let journal = toml_str(&config, &["journal"]);
    assert!(compose.volumes.contains(&"lb-journal".to_string()));
    assert!(
        lb_service.list("volumes").iter().any(|v| v
            .strip_prefix("lb-journal:")
            .is_some_and(|dir| journal.starts_with(&format!("{dir}/")))),
        "journal {journal} is not on the lb-journal volume"
    );
    let grace = duration(
        lb_service
            .get("stop_grace_period")
            .expect("stop_grace_period"),
    );
    let drain = duration(toml_str(&config, &["drain_timeout"]));
    assert!(
        drain < grace,
        "drain_timeout {drain:?} >= stop_grace_period {grace:?}"
    );
    assert_eq!(
        lb_service.list("depends_on"),
        servers.names,
        "lb starts after the servers"
    );

    // The file as written, but on loopback: names through a hosts file, a temporary
    // journal, ports the kernel picks.
    let dir = TempDir::new();
    let hosts = dir.write("hosts", &servers.hosts);
    let mut swaps = vec![
        (
            format!("address = \"{web_addr}\""),
            "address = \"127.0.0.1:0\"".to_string(),
        ),
        (
            format!("listen = \"{admin_addr_file}\""),
            "listen = \"127.0.0.1:0\"".to_string(),
        ),
        (
            format!("journal = \"{journal}\""),
            format!("journal = \"{}\"", dir.0.join("journal").display()),
        ),
    ];
    for name in &servers.names {
        swaps.push((
            format!("http://{name}:{}\"", servers.file_port),
            format!("http://{name}:{}\"", servers.port),
        ));
    }
    let local = swapped(text.clone(), &swaps);
    let local = format!("hosts_file = \"{hosts}\"\n{local}");
    let local_path = dir.write("compose.toml", &local);
    let at = args.iter().position(|a| a == "-c").expect("-c") + 1;
    args[at] = local_path;
    let mut lb = start(lb_bin, &args).unwrap_or_else(|e| panic!("service lb did not start: {e}"));
    let web = listener(&lb, web_name);
    let admin = admin_addr(&lb);

    // GETs, /login included (seeds 000 and 002), round-robin to one server at a time.
    assert_round_robin(web, &servers, &lb);
    let login = get(web, "/login");
    assert_eq!(login.status, 200, "{}", login.text());

    // The writes go to all three, each until it answers 201.
    let r = post(web, "/register?username=jack&password=secret");
    assert_eq!(r.status, 201, "{}\n{}", r.text(), lb.log_text());
    let r = post(web, "/changePassword?username=jack&password=other");
    assert_eq!(r.status, 201, "{}\n{}", r.text(), lb.log_text());
    for s in &servers.procs {
        assert!(
            eventually(Duration::from_secs(10), || user_on(s, "jack") == (1, 1)),
            "{} has {:?}\n{}",
            s.addr,
            user_on(s, "jack"),
            lb.log_text()
        );
    }
    // Any other POST goes to one server (the catch-all route does not fan out).
    let r = post_body(web, "/echo", "once");
    assert_eq!((r.status, r.text().as_str()), (200, "once"));

    // /metrics on the admin port: each write delivered to each server, by service name.
    let pools = config["pools"].as_table().expect("[pools]");
    let (pool, _) = pools.iter().next().expect("a pool");
    let metrics = get(admin, "/metrics").text();
    for name in &servers.names {
        let delivered = format!(
            "lb_fanout_copies_total{{backend=\"{name}:{}\",pool=\"{pool}\",result=\"delivered\"}} 2",
            servers.port
        );
        assert!(
            metrics.lines().any(|l| l == delivered),
            "no {delivered} in\n{metrics}"
        );
    }
    assert_eq!(
        metric(admin, "lb_route_requests_total{route=\"writes\"}"),
        2.0
    );

    // The image's HEALTHCHECK, which the lb service keeps, passes against this config.
    let health = healthcheck_for(&image, admin_addr_file.port(), admin);
    let status = run_within(&health, Duration::from_secs(10)).expect("healthcheck ends");
    assert!(status.success(), "healthcheck {health:?}: {status}");

    // docker stop: the image's stop signal drains lb, which exits 0 well within the grace.
    lb.signal(stop_signal(&image));
    assert_eq!(lb.exit_code_within(grace), Some(0), "{}", lb.log_text());
    assert!(lb.log_text().contains("drained"), "{}", lb.log_text());
    let status = run_within(&health, Duration::from_secs(10)).expect("healthcheck ends");
    assert!(!status.success(), "healthcheck passes with lb stopped");
}

#[test]
fn the_image_runs_its_own_config_as_its_entrypoint_and_cmd_say() {
    let compose = parse_compose(&read("docker-compose.yml"));
    let image = Image::load();

    // What the image is: a non-root user, the journal on its volume, its ports exposed.
    let user = image.one("USER");
    assert!(user != "root" && user != "0", "USER {user}");
    // The build stage's Debian release is the runtime's: the binaries need its glibc.
    let releases: Vec<Option<&str>> = image
        .stages
        .iter()
        .map(|s| {
            let from = s[0].1.split_whitespace().next().expect("FROM image");
            ["bullseye", "bookworm", "trixie"]
                .into_iter()
                .find(|r| from.contains(r))
        })
        .collect();
    assert!(
        releases[0].is_some() && releases.iter().all(|r| *r == releases[0]),
        "stages on one Debian release: {releases:?}"
    );

    let entrypoint = image.exec_form("ENTRYPOINT");
    let mut args: Vec<String> = entrypoint[1..].to_vec();
    args.extend(image.exec_form("CMD"));
    let at = args.iter().position(|a| a == "-c").expect("CMD -c FILE") + 1;
    let config_path = image.source_of(&args[at]);
    let text = std::fs::read_to_string(&config_path).expect("the image's config");
    let config = toml_table(&text);
    let pools = config["pools"].as_table().expect("[pools]");
    let (pool, _) = pools.iter().next().expect("a pool");
    let in_image = Path::new(&args[at]).parent().expect("a directory");
    let file = toml_str(&config, &["pools", pool, "backends_file"]);
    let servers_path = image.source_of(&in_image.join(file).to_string_lossy());
    let servers_txt = std::fs::read_to_string(&servers_path).expect("servers.txt");

    let listeners = config["listeners"].as_table().expect("[listeners]");
    let (web_name, web) = listeners.iter().next().expect("a listener");
    let web_addr: SocketAddr = web["address"].as_str().expect("address").parse().unwrap();
    let admin_file: SocketAddr = toml_str(&config, &["admin", "listen"]).parse().unwrap();
    let exposed: Vec<u16> = image
        .one("EXPOSE")
        .split_whitespace()
        .map(|p| p.parse().expect("a port"))
        .collect();
    assert!(exposed.contains(&web_addr.port()) && exposed.contains(&admin_file.port()));
    let journal = toml_str(&config, &["journal"]);
    let volume = image.one("VOLUME");
    assert!(
        journal.starts_with(&format!("{volume}/")),
        "{journal} not on {volume}"
    );

    // Its servers.txt names the compose file's servers, as the seeds' did.
    let servers = start_servers(&compose, &image);
    let mut listed: Vec<String> = servers_txt
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    listed.sort();
    let want: Vec<String> = servers
        .names
        .iter()
        .map(|n| format!("http://{n}:{}", servers.file_port))
        .collect();
    assert_eq!(listed, want);

    let dir = TempDir::new();
    let hosts = dir.write("hosts", &servers.hosts);
    let from_port = format!(":{}\n", servers.file_port);
    let local_servers = swapped(
        servers_txt.clone(),
        &[(from_port, format!(":{}\n", servers.port))],
    );
    dir.write(file, &local_servers);
    let local = swapped(
        text.clone(),
        &[
            (
                format!("address = \"{web_addr}\""),
                "address = \"127.0.0.1:0\"".to_string(),
            ),
            (
                format!("listen = \"{admin_file}\""),
                "listen = \"127.0.0.1:0\"".to_string(),
            ),
            (
                format!("journal = \"{journal}\""),
                format!("journal = \"{}\"", dir.0.join("journal").display()),
            ),
        ],
    );
    let name = config_path.file_name().expect("a name").to_string_lossy();
    args[at] = dir.write(&name, &format!("hosts_file = \"{hosts}\"\n{local}"));
    let mut lb = start(image.binary(&entrypoint[0]), &args)
        .unwrap_or_else(|e| panic!("the image's lb did not start: {e}"));
    let web = listener(&lb, web_name);
    let admin = admin_addr(&lb);
    assert_round_robin(web, &servers, &lb);
    let r = post(web, "/register?username=jill&password=secret");
    assert_eq!(r.status, 201, "{}\n{}", r.text(), lb.log_text());
    for s in &servers.procs {
        assert!(eventually(Duration::from_secs(10), || registered(
            s, "jill"
        ) == 1));
    }
    // The access log is on stdout, beside lb's own lines on stderr: both reach docker logs.
    // Its line is written at the end of the loop's turn, after the answer: wait for it.
    assert!(
        lb.wait_log(
            "\"POST /register?username=jill&password=secret\"",
            Duration::from_secs(10)
        ),
        "{}",
        lb.log_text()
    );

    let health = healthcheck_for(&image, admin_file.port(), admin);
    let status = run_within(&health, Duration::from_secs(10)).expect("healthcheck ends");
    assert!(status.success(), "healthcheck {health:?}: {status}");
    lb.signal(stop_signal(&image));
    assert_eq!(
        lb.exit_code_within(
            duration(toml_str(&config, &["drain_timeout"])) + Duration::from_secs(5)
        ),
        Some(0),
        "{}",
        lb.log_text()
    );
}

/// docker-compose.postgres.yml over docker-compose.yml, as `docker compose -f ... -f ...`
/// merges them: a postgres service on the project's network only, and lb's command and
/// config switched to it. lb runs natively as the merged service says, against a
/// PostgreSQL of this test's own with the database, user and password the file gives it.
#[test]
fn the_postgres_compose_file_runs_lb_on_the_shared_store() {
    let compose = merged(
        parse_compose(&read("docker-compose.yml")),
        parse_compose(&read("docker-compose.postgres.yml")),
    );
    let image = Image::load();
    let pg_service = compose
        .services
        .iter()
        .find(|s| s.name == "postgres")
        .expect("a postgres service");
    assert!(
        pg_service
            .get("image")
            .is_some_and(|i| i.starts_with("postgres:")),
        "the postgres service runs PostgreSQL's image"
    );
    assert!(
        pg_service.get("ports").is_none(),
        "the database is published outside the project's network"
    );
    assert!(compose.volumes.contains(&"lb-store".to_string()));
    assert!(
        pg_service
            .list("volumes")
            .iter()
            .any(|v| v.starts_with("lb-store:")),
        "the database is not on the lb-store volume"
    );
    let env = |key: &str| {
        pg_service
            .get(&format!("environment.{key}"))
            .unwrap_or_else(|| panic!("postgres: no environment {key}"))
            .to_string()
    };

    let servers = start_servers(&compose, &image);
    let (lb_service, lb_bin, mut args, config_path) = compose_lb(&compose, &image);
    assert_eq!(
        config_path,
        root().join("dist/docker/compose-postgres.toml"),
        "the lb service runs dist/docker/compose-postgres.toml"
    );
    let mut depends = servers.names.clone();
    depends.push("postgres".to_string());
    assert_eq!(lb_service.list("depends_on"), depends);
    // lb exits 2 while the database does not answer; compose starts it again until it does.
    assert_eq!(lb_service.get("restart"), Some("on-failure"));

    // The journal URL names the service, its port, and the user, password and database the
    // service is made with.
    let text = std::fs::read_to_string(&config_path).expect("the compose config");
    let config = toml_table(&text);
    let journal = toml_str(&config, &["journal"]).to_string();
    let (user, password, db) = (
        env("POSTGRES_USER"),
        env("POSTGRES_PASSWORD"),
        env("POSTGRES_DB"),
    );
    let at = format!("postgres://{user}:{password}@postgres:5432/{db}?");
    assert!(journal.starts_with(&at), "{journal} is not at {at}...");

    let Some(pg) = db::Postgres::start("compose") else {
        return;
    };
    pg.client()
        .batch_execute(&format!("CREATE DATABASE {db} OWNER {user}"))
        .expect("create the compose file's database");
    let dir = TempDir::new();
    let hosts = dir.write("hosts", &servers.hosts);
    let web_addr = toml_str(&config, &["listeners", "web", "address"]).to_string();
    let admin_addr_file = toml_str(&config, &["admin", "listen"]).to_string();
    let mut swaps = vec![
        (
            format!("address = \"{web_addr}\""),
            "address = \"127.0.0.1:0\"".to_string(),
        ),
        (
            format!("listen = \"{admin_addr_file}\""),
            "listen = \"127.0.0.1:0\"".to_string(),
        ),
        (
            "@postgres:5432/".to_string(),
            format!("@127.0.0.1:{}/", pg.port),
        ),
    ];
    for name in &servers.names {
        swaps.push((
            format!("http://{name}:{}\"", servers.file_port),
            format!("http://{name}:{}\"", servers.port),
        ));
    }
    let local = format!(
        "hosts_file = \"{hosts}\"\n{}",
        swapped(text.clone(), &swaps)
    );
    let local_path = dir.write("compose-postgres.toml", &local);
    let at = args.iter().position(|a| a == "-c").expect("-c") + 1;
    args[at] = local_path;
    let mut lb = start(lb_bin, &args).unwrap_or_else(|e| panic!("service lb did not start: {e}"));
    let web = listener(&lb, "web");

    let r = post(web, "/register?username=jill&password=secret");
    assert_eq!(r.status, 201, "{}\n{}", r.text(), lb.log_text());
    for s in &servers.procs {
        assert!(
            eventually(Duration::from_secs(10), || user_on(s, "jill") == (1, 0)),
            "{} has {:?}\n{}",
            s.addr,
            user_on(s, "jill"),
            lb.log_text()
        );
    }
    // lb holds the lease of the instance its URL names, in the compose file's database.
    let instance = journal
        .split_once("instance=")
        .map(|(_, name)| name.to_string())
        .expect("an instance name");
    let leases: i64 = postgres::Client::connect(
        &format!("host=127.0.0.1 port={} user={user} dbname={db}", pg.port),
        postgres::NoTls,
    )
    .and_then(|mut c| {
        c.query_one(
            "SELECT count(*) FROM lb_instances WHERE instance = $1",
            &[&instance],
        )
    })
    .and_then(|row| row.try_get(0))
    .expect("read lb_instances");
    assert_eq!(leases, 1, "no lease of {instance} in database {db}");

    lb.signal(libc::SIGTERM);
    assert_eq!(
        lb.exit_code_within(Duration::from_secs(30)),
        Some(0),
        "{}",
        lb.log_text()
    );
}

#[test]
fn lb_check_takes_every_config_as_shipped() {
    let configs = [
        "dist/docker/compose.toml",
        "dist/docker/compose-postgres.toml",
        "dist/docker/lb.toml",
    ];
    for rel in configs {
        let out = Command::new(env!("CARGO_BIN_EXE_lb"))
            .args(["check", "-c"])
            .arg(root().join(rel))
            .output()
            .expect("run lb check");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(0), "{rel}:\n{stdout}{stderr}");
        assert!(stdout.contains(": ok, "), "{stdout}");
        assert!(!stdout.contains("with warnings"), "{stdout}{stderr}");
    }
}

/// The harness itself: a wrong flag in a command, or flags lb refuses beside -c, stop the
/// service from starting, as they would stop its container (exit status 2).
#[test]
fn a_wrong_flag_in_the_compose_file_stops_its_service() {
    let image = Image::load();
    let text = read("docker-compose.yml");
    let cases = [
        (
            "\"--name\", \"server2\"",
            "\"--nmae\", \"server2\"",
            "server2",
            "Unrecognized option",
        ),
        (
            "[\"-c\", \"/etc/lb/compose.toml\"]",
            "[\"-c\", \"/etc/lb/compose.toml\", \"-l\", \"127.0.0.1:0\"]",
            "lb",
            "with -c FILE, everything is set in the file",
        ),
    ];
    for (from, to, service, says) in cases {
        assert!(text.contains(from), "no {from} in docker-compose.yml");
        let compose = parse_compose(&text.replace(from, to));
        let s = compose
            .services
            .iter()
            .find(|s| s.name == service)
            .expect("the service");
        let entrypoint = s.list("entrypoint");
        let mut args: Vec<String> = entrypoint[1..].to_vec();
        args.extend(s.list("command"));
        let bin = image.binary(&entrypoint[0]);
        let err = match start(bin, &args) {
            Ok(_) => panic!("{service} started with {args:?}"),
            Err(e) => e,
        };
        assert!(err.contains(says), "{err}");
        let mut argv = vec![bin.to_string()];
        argv.extend(args.iter().cloned());
        let status = run_within(&argv, Duration::from_secs(10)).expect("it exits");
        assert_eq!(status.code(), Some(2), "{service} {args:?}");
    }
}

/// `docker compose config` reads the file as docker will, with no engine needed; the
/// compose CLI is not on every machine (not on this one), and then this says so and passes.
#[test]
fn docker_compose_reads_the_file_where_it_is_installed() {
    let tries: [&[&str]; 2] = [&["docker", "compose"], &["docker-compose"]];
    for cli in tries {
        let works = Command::new(cli[0])
            .args(&cli[1..])
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !works {
            continue;
        }
        let files: [&[&str]; 2] = [
            &["-f", "docker-compose.yml"],
            &[
                "-f",
                "docker-compose.yml",
                "-f",
                "docker-compose.postgres.yml",
            ],
        ];
        for f in files {
            let out = Command::new(cli[0])
                .args(&cli[1..])
                .args(f)
                .args(["config", "-q"])
                .current_dir(root())
                .output()
                .expect("run compose config");
            assert!(
                out.status.success(),
                "{} {f:?} config:\n{}",
                cli.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        return;
    }
    eprintln!("skipped: neither `docker compose` nor `docker-compose` is installed");
}

/// With a docker engine (CI may have one; this machine has only the CLI), the image builds
/// and its binaries run on the runtime stage, as the user it names. Otherwise it says it
/// was skipped and passes.
#[test]
fn the_image_builds_where_docker_has_an_engine() {
    let engine = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !engine {
        eprintln!("skipped: no docker engine (docker info failed); the image was not built");
        return;
    }
    let tag = "lb:compose-test";
    let docker = |args: &[&str]| {
        let out = Command::new("docker")
            .args(args)
            .current_dir(root())
            .output()
            .expect("run docker");
        assert!(
            out.status.success(),
            "docker {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    docker(&["build", "-t", tag, "."]);
    assert!(docker(&["run", "--rm", tag, "--version"]).starts_with("lb "));
    docker(&["run", "--rm", tag, "check", "-c", "/etc/lb/lb.toml"]);
    docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/usr/bin/lb-backend",
        tag,
        "--help",
    ]);
    let uid = docker(&["run", "--rm", "--entrypoint", "id", tag, "-u"]);
    assert_eq!(uid.trim(), "10001");
}
