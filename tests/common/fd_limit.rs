//! lb started under a low limit on open files, for the tests of running out of them.

use std::os::unix::process::CommandExt;
use std::process::Command;

use super::{Proc, spawn_command};

/// Starts lb like `lb`, with both its soft and hard limits on open files set to `limit`
/// (lb raises the soft one to the hard one itself).
pub fn lb_with_fd_limit(backends: &[&Proc], extra: &[&str], limit: u64) -> Proc {
    let bin = env!("CARGO_BIN_EXE_lb");
    let mut cmd = Command::new(bin);
    cmd.args(["-l", "127.0.0.1:0", "--admin", "off"]);
    for b in backends {
        cmd.args(["-b", &b.addr.to_string()]);
    }
    cmd.args(extra);
    // SAFETY: setrlimit is async-signal-safe and touches only the child being started.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    spawn_command(&mut cmd)
}
