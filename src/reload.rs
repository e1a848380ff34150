//! `baton reload` and SIGHUP: the running node takes from a config file
//! what can change at run time (`baton_config::RELOADABLE`), or refuses
//! the file, saying why, and keeps running as it was.

use std::path::{Path, PathBuf};

use anyhow::Result;
use baton_config::{Changes, Config};
use baton_control::plane::ControlPlane;
use baton_handoff::workers::{Reload, ReloadPeer};

use crate::host_iface::HandoffAddresses;
use crate::{logging, parts};

/// What the running node was configured with.
pub struct Reloader {
    /// The file `baton run` was started with: SIGHUP reads it again.
    pub path: PathBuf,
    running: Config,
    /// The workers' peers by index: every peer the node has had, removed
    /// ones marked (see `ControlPlane::peer_slots`).
    peers: Vec<ReloadPeer>,
}

impl Reloader {
    pub fn new(path: &Path, running: &Config) -> Reloader {
        let mut reloader = Reloader {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_owned()),
            running: running.clone(),
            peers: Vec::new(),
        };
        reloader.peers = reloader.peers_of(running);
        reloader
    }

    /// Reads the config file at `path` and applies it: to `control` (with
    /// `[cluster]`), and to `addresses`, which gain added peers' handoff
    /// addresses. Returns the keys changed, or the refusal: `baton
    /// check`'s words for an invalid file, or the keys only a restart
    /// changes. Counted and logged either way.
    pub fn reload(
        &mut self,
        path: &Path,
        control: Option<&mut ControlPlane>,
        addresses: Option<&mut HandoffAddresses>,
    ) -> Result<Vec<String>, String> {
        let mut control = control;
        let result = self.apply(path, control.as_deref_mut(), addresses);
        if let Some(control) = control {
            control.count_reload(result.is_ok());
        }
        match &result {
            Ok(changed) if changed.is_empty() => {
                tracing::info!("reloaded {}: nothing changed", path.display())
            }
            Ok(changed) => tracing::info!(
                "reloaded {}: {} applied",
                path.display(),
                changed.join(", ")
            ),
            Err(why) => tracing::warn!("reload refused, the running configuration stays: {why}"),
        }
        result
    }

    fn apply(
        &mut self,
        path: &Path,
        control: Option<&mut ControlPlane>,
        addresses: Option<&mut HandoffAddresses>,
    ) -> Result<Vec<String>, String> {
        // As `baton check` does.
        let new = baton_config::load(path).map_err(|e| e.to_string())?;
        parts::build_all(&new).map_err(|e| format!("{}: {e:#}", path.display()))?;
        let changes = Changes::between(&self.running, &new);
        if !changes.fixed.is_empty() {
            return Err(format!(
                "{}: only a restart changes {}; nothing was changed",
                path.display(),
                changes
                    .fixed
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if changes.reloadable.is_empty() {
            return Ok(Vec::new());
        }
        if let (Some(control), Some(cluster), Some(handoff)) = (control, &new.cluster, &new.handoff)
        {
            let peers = self.peers_of(&new);
            let names: Vec<String> = peers.iter().map(|p| p.name.clone()).collect();
            let mut workers = Vec::new();
            for _ in 0..new.lcores.workers.len() {
                workers.push(Reload {
                    placer: parts::placer_over(&new, handoff, names.clone())
                        .map_err(|e| format!("{}: {e:#}", path.display()))?,
                    peers: peers.clone(),
                    limits: parts::limits(handoff),
                });
            }
            if let Some(addresses) = addresses {
                let engine = parts::engine_config(&new, cluster, handoff, [0x02, 0, 0, 0, 0, 0])
                    .map_err(|e| format!("{e:#}"))?;
                addresses
                    .add(&new.host, &parts::handoff_addresses(&engine, cluster))
                    .map_err(|e| format!("{e:#}"))?;
            }
            control.reload(parts::channel_peers(cluster), workers);
            self.peers = peers;
        }
        if changes.reloadable.iter().any(|k| k == "node.log_level") {
            logging::set_level(new.node.log_level.as_str());
        }
        self.running = new;
        Ok(changes.reloadable)
    }

    /// The workers' peers under `cfg`: those known, in their places (marked
    /// removed unless `cfg` has them), then those new.
    fn peers_of(&self, cfg: &Config) -> Vec<ReloadPeer> {
        let Some(cluster) = &cfg.cluster else {
            return Vec::new();
        };
        let of = |p: &baton_config::PeerConfig| ReloadPeer {
            name: p.name.clone(),
            address: p.address,
            control_port: cluster.control_port,
            mac: p.mac.map(|m| m.octets()),
            removed: false,
        };
        let mut peers: Vec<ReloadPeer> = self
            .peers
            .iter()
            .map(
                |known| match cluster.peers.iter().find(|p| p.name == known.name) {
                    Some(p) => of(p),
                    None => ReloadPeer {
                        removed: true,
                        ..known.clone()
                    },
                },
            )
            .collect();
        for p in &cluster.peers {
            if !peers.iter().any(|known| known.name == p.name) {
                peers.push(of(p));
            }
        }
        peers
    }
}
