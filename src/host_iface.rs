//! The host side of the host port: the kernel interface DPDK created.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use baton_config::{HostConfig, HostPortKind};

/// Fails if an interface named `host.name` already exists here. DPDK's tap
/// driver would attach to an existing tap as one more queue, and on exit
/// take it down under whoever owns it (say, another Baton instance).
/// An af-packet host port's veth pair outlives a killed instance; one that
/// no packet socket reads is that, and is removed (the caller holds this
/// config's instance lock, so no live instance of it owns the pair).
pub fn ensure_free(host: &HostConfig) -> Result<()> {
    if host.kind == HostPortKind::AfPacket && is_stale_veth(host)? {
        tracing::warn!(
            "removing the host port's veth pair {} / {} left by an instance that did not exit",
            host.name,
            host.veth_peer()
        );
        ip(&["link", "del", "dev", &host.name])?;
    }
    ensure_absent(&host.name)?;
    if host.kind == HostPortKind::AfPacket {
        ensure_absent(&host.veth_peer())?;
    }
    Ok(())
}

fn ensure_absent(name: &str) -> Result<()> {
    if Path::new("/sys/class/net").join(name).exists() {
        bail!(
            "the host interface {name} already exists (another Baton instance, or another program, owns it); \
             stop that, or set another `host.name`",
        );
    }
    Ok(())
}

/// Whether `host.name` is the kernel end of a veth pair whose other end is
/// Baton's, and no packet socket is bound to that end.
fn is_stale_veth(host: &HostConfig) -> Result<bool> {
    let peer = Path::new("/sys/class/net").join(host.veth_peer());
    let Ok(index) = std::fs::read_to_string(peer.join("ifindex")) else {
        return Ok(false);
    };
    let Ok(link) = std::fs::read_to_string(peer.join("iflink")) else {
        return Ok(false);
    };
    let kernel_end = Path::new("/sys/class/net").join(&host.name).join("ifindex");
    if std::fs::read_to_string(kernel_end).ok().as_deref() != Some(link.as_str()) {
        return Ok(false);
    }
    let sockets = std::fs::read_to_string("/proc/net/packet")
        .context("cannot read /proc/net/packet (to see whether the host port is in use)")?;
    // Columns: sk RefCnt Type Proto Iface R Rmem User Inode.
    let index = index.trim();
    let bound = sockets
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(4) == Some(index));
    Ok(!bound)
}

/// An af-packet host port's veth pair: `host.name` for the kernel, with
/// the node's address, and Baton's end, which the kernel leaves alone.
/// Made before EAL starts (the driver opens its end then); removed on
/// drop.
pub struct VethPair {
    name: String,
}

impl VethPair {
    pub fn create(host: &HostConfig) -> Result<VethPair> {
        let peer = host.veth_peer();
        ip(&[
            "link", "add", &host.name, "type", "veth", "peer", "name", &peer,
        ])?;
        let pair = VethPair {
            name: host.name.clone(),
        };
        // The driver neither fills in checksums nor splits segments: the
        // kernel must hand it finished, MTU-sized frames, as it would put
        // them on a wire.
        for dev in [&host.name, &peer] {
            run(
                "ethtool",
                &[
                    "-K", dev, "rx", "off", "tx", "off", "tso", "off", "gso", "off", "gro", "off",
                ],
            )?;
        }
        // Baton's end carries no address and speaks no IPv6 of its own.
        let ipv6 = format!("/proc/sys/net/ipv6/conf/{peer}/disable_ipv6");
        if Path::new(&ipv6).exists() {
            std::fs::write(&ipv6, "1").with_context(|| format!("cannot write {ipv6}"))?;
        }
        ip(&["link", "set", "dev", &peer, "arp", "off", "up"])?;
        Ok(pair)
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        if let Err(e) = ip(&["link", "del", "dev", &self.name]) {
            tracing::warn!("{e:#}");
        }
    }
}

/// Brings the host interface up with the wire port's `mac` and, when
/// `host.address` is set, gives it that address, as the node's own NIC
/// would have had. (A TAP took the MAC from DPDK already; a veth's kernel
/// end is not DPDK's port.)
pub fn configure(host: &HostConfig, mac: &str) -> Result<()> {
    if host.kind == HostPortKind::AfPacket {
        ip(&["link", "set", "dev", &host.name, "address", mac])?;
    }
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

impl HandoffAddresses {
    /// Installs those of `addrs` not yet installed (peers added by a
    /// reload). A removed peer's stays: connections it handed here may
    /// still live there.
    pub fn add(&mut self, host: &HostConfig, addrs: &[Ipv4Addr]) -> Result<()> {
        let new: Vec<Ipv4Addr> = addrs
            .iter()
            .filter(|a| !self.added.contains(a))
            .copied()
            .collect();
        // Taken over: `more` drops with nothing to remove.
        let mut more = Self::install(host, &new)?;
        self.added.append(&mut more.added);
        Ok(())
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
    run("ip", args)
}

/// Runs `program` (iproute2's `ip`, `ethtool`) to set up the host side.
fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run `{program}` (is it installed?)"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
