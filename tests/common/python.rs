//! The Python packages some tests drive (PyPI's `h2`, `grpcio`): whether they are there,
//! and the gRPC test server. `.ci/run` installs them; elsewhere a test without them skips
//! with a message, in CI it fails.

use std::process::Command;

use super::{Proc, spawn_command};

const GRPC_SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/grpc_server.py");

/// Running under CI (`.ci/run` sets CI), where every tool the tests need is installed.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// True when python3 can import `module` (PyPI's `package`); false, with a message, when
/// it cannot outside CI; a failure in CI.
pub fn python_ready(module: &str, package: &str) -> bool {
    let import = format!("import {module}");
    let why = match Command::new("python3").args(["-c", &import]).output() {
        Ok(out) if out.status.success() => return true,
        Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
        Err(e) => format!("no python3: {e}"),
    };
    assert!(!in_ci(), "{why}: in CI, .ci/run installs {package}");
    eprintln!("skipped: the {package} Python package is missing (pip install {package}): {why}");
    false
}

/// tests/support/grpc_server.py, answering as `name`, on a port it prints.
pub fn grpc_server(name: &str) -> Proc {
    spawn_command(
        Command::new("python3")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(GRPC_SERVER)
            .args(["--name", name]),
    )
}
