//! Applies the scripts of [`super::rules`] with `iptables-restore`, one change at a time on the host: a lock file
//! keeps two agents of one host from working out a change from the same table.

use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

use gantry_model::agent::TaskFirewall;

use super::rules::{self, Current};

/// Makes the rules of the task at `address` what `firewall` says.
pub fn apply(address: Ipv4Addr, firewall: &TaskFirewall) -> Result<(), String> {
    locked(|| {
        bridged_traffic_filtered();
        let current = current()?;
        restore(&rules::apply_script(&current, address, firewall))
    })
}

/// Removes the rules of the task at `address` (and the shared ones with the last task's).
pub fn remove(address: Ipv4Addr) -> Result<(), String> {
    locked(|| match rules::remove_script(&current()?, address) {
        Some(script) => restore(&script),
        None => Ok(()),
    })
}

fn current() -> Result<Current, String> {
    let out = Command::new("iptables")
        .args(["-w", "-t", "filter", "-S"])
        .output()
        .map_err(|e| format!("cannot run iptables: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "iptables -S failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(Current::parse(&String::from_utf8_lossy(&out.stdout)))
}

fn restore(script: &str) -> Result<(), String> {
    let mut child = Command::new("iptables-restore")
        .args(["-w", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run iptables-restore: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("iptables-restore: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("iptables-restore: {e}"))?;
    if !out.status.success() {
        tracing::debug!(%script, "iptables-restore refused");
        return Err(format!(
            "iptables-restore failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Traffic between two tasks of one subnet crosses a bridge, not a route: the packet filter sees it only with
/// `bridge-nf-call-iptables` on (Docker turns it on too; it may not have yet).
fn bridged_traffic_filtered() {
    let path = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "0") {
        if let Err(e) = std::fs::write(path, "1") {
            tracing::warn!(error = %e, "cannot filter bridged traffic: tasks of one subnet reach each other whatever their groups");
        }
    }
}

/// Runs `f` holding the host's firewall lock (an exclusive `flock`, released when the file is closed).
fn locked<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    let path = std::path::Path::new("/run/gantry-firewall.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns for as long as the lock is needed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(format!(
            "cannot lock {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    f()
}
