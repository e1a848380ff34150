//! The host side of the host port: the kernel interface DPDK created.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use baton_config::HostConfig;

/// Fails if an interface named `host.name` already exists here. DPDK's tap
/// driver would attach to an existing tap as one more queue, and on exit
/// take it down under whoever owns it (say, another Baton instance).
pub fn ensure_free(host: &HostConfig) -> Result<()> {
    if Path::new("/sys/class/net").join(&host.name).exists() {
        bail!(
            "the host interface {} already exists (another Baton instance, or another program, owns it); \
             stop that, or set another `host.name`",
            host.name
        );
    }
    Ok(())
}

/// Brings the host interface up and, when `host.address` is set, gives it
/// that address, as the node's own NIC would have had.
pub fn configure(host: &HostConfig) -> Result<()> {
    ip(&["link", "set", "dev", &host.name, "up"])?;
    if let Some(cidr) = &host.address {
        ip(&["addr", "replace", &cidr.to_string(), "dev", &host.name])?;
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run `ip` (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
