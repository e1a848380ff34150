//! The host side of the host port: the kernel interface DPDK created.

use std::net::Ipv4Addr;
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

/// The peers' handoff addresses on `lo`, where the kernel takes replayed
/// connections for them, and never answers ARP for them on the host
/// interface (`arp_ignore` 1: only for its own addresses; `arp_announce`
/// 2: never as an ARP source), as a VIP is set up. Removed again on drop.
pub struct HandoffAddresses {
    added: Vec<Ipv4Addr>,
}

impl HandoffAddresses {
    pub fn install(host: &HostConfig, addrs: &[Ipv4Addr]) -> Result<HandoffAddresses> {
        if addrs.is_empty() {
            return Ok(HandoffAddresses { added: Vec::new() });
        }
        for (knob, value) in [("arp_ignore", "1"), ("arp_announce", "2")] {
            let path = format!("/proc/sys/net/ipv4/conf/{}/{knob}", host.name);
            std::fs::write(&path, value).with_context(|| {
                format!("cannot set {path} to {value} (for the handoff addresses)")
            })?;
        }
        let mut installed = HandoffAddresses { added: Vec::new() };
        for addr in addrs {
            ip(&["addr", "replace", &format!("{addr}/32"), "dev", "lo"])?;
            installed.added.push(*addr);
        }
        tracing::info!(
            "handoff addresses on lo: {}",
            addrs
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(installed)
    }
}

impl Drop for HandoffAddresses {
    fn drop(&mut self) {
        for addr in &self.added {
            if let Err(e) = ip(&["addr", "del", &format!("{addr}/32"), "dev", "lo"]) {
                tracing::warn!("{e:#}");
            }
        }
    }
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
