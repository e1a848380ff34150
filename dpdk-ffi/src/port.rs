use std::ffi::{CStr, CString};
use std::fmt;

use crate::error::DpdkError;
use crate::{sys, Eal, Mempool};

// RSS hash types (rte_ethdev.h builds them with RTE_BIT64, which bindgen
// cannot evaluate).
const RSS_IPV4: u64 = 1 << 2;
const RSS_NONFRAG_IPV4_TCP: u64 = 1 << 4;
const RSS_IPV6: u64 = 1 << 8;
const RSS_NONFRAG_IPV6_TCP: u64 = 1 << 10;
// RX offloads (asserted in csrc/shim.c).
const RX_OFFLOAD_IPV4_CKSUM: u64 = 1 << 1;
const RX_OFFLOAD_TCP_CKSUM: u64 = 1 << 3;

/// An Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddress(pub [u8; 6]);

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// How a port is set up: `queues` RX/TX queue pairs, one per worker.
#[derive(Debug, Clone)]
pub struct PortConfig {
    pub queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
}

/// Hardware counters of a port (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Frames the NIC dropped because no RX descriptor was free.
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    /// Frames dropped because the mempool was empty.
    pub rx_no_mbuf: u64,
}

/// An ethdev port: a PCI NIC or a virtual device created from a `--vdev`.
/// Stopped and closed on drop.
pub struct Port {
    id: u16,
    name: String,
    queues: u16,
    taken: Vec<bool>,
    started: bool,
}

/// One RX/TX queue pair of a port, owned by one worker.
///
/// Not `Clone`, not `Sync`: DPDK queues are single-threaded, so exactly one
/// worker may poll a given pair.
pub struct Queue {
    port: u16,
    queue: u16,
}

impl Queue {
    #[inline]
    pub fn port_id(&self) -> u16 {
        self.port
    }

    #[inline]
    pub fn queue_id(&self) -> u16 {
        self.queue
    }
}

impl Port {
    /// The port DPDK knows as `name`: a PCI address ("0000:3b:00.0") or a
    /// vdev name ("net_af_packet0").
    pub fn find(_eal: &Eal, name: &str) -> Result<Port, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::NoSuchPort {
            name: name.into(),
            present: present_ports(),
        })?;
        let mut id = 0u16;
        // SAFETY: valid C string and out-pointer.
        let rc = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if rc != 0 {
            return Err(DpdkError::NoSuchPort {
                name: name.into(),
                present: present_ports(),
            });
        }
        Ok(Port {
            id,
            name: name.into(),
            queues: 0,
            taken: Vec::new(),
            started: false,
        })
    }

    /// A port over rings (the ring PMD): what it receives comes from `rx`,
    /// what it sends goes into `tx`, one ring per queue. The rings must
    /// outlive the port.
    pub fn from_rings(
        _eal: &Eal,
        name: &str,
        rx: &[&crate::Ring],
        tx: &[&crate::Ring],
    ) -> Result<Port, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::Call {
            what: format!("create ring port {name:?}"),
            reason: "name contains a NUL byte".into(),
        })?;
        let rx: Vec<_> = rx.iter().map(|r| r.as_ptr()).collect();
        let tx: Vec<_> = tx.iter().map(|r| r.as_ptr()).collect();
        let (Ok(nb_rx), Ok(nb_tx)) = (u32::try_from(rx.len()), u32::try_from(tx.len())) else {
            return Err(DpdkError::Call {
                what: format!("create ring port {name:?}"),
                reason: "too many rings".into(),
            });
        };
        // SAFETY: valid C string and arrays of valid ring pointers, read
        // during the call; the rings outlive the port (caller's contract).
        let id = unsafe {
            sys::rte_eth_from_rings(cname.as_ptr(), rx.as_ptr(), nb_rx, tx.as_ptr(), nb_tx, 0)
        };
        // Negative on failure; a port id is a u16.
        let Ok(id) = u16::try_from(id) else {
            return Err(DpdkError::call(format!("create ring port {name:?}"), -1));
        };
        Ok(Port {
            id,
            name: name.into(),
            queues: 0,
            taken: Vec::new(),
            started: false,
        })
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The driver behind the port, e.g. "net_af_packet".
    pub fn driver(&self) -> String {
        self.info()
            .ok()
            .filter(|i| !i.driver_name.is_null())
            .map(|i| {
                // SAFETY: driver_name is not null (filtered above) and points
                // at the driver's static NUL-terminated name string.
                unsafe { CStr::from_ptr(i.driver_name) }
                    .to_string_lossy()
                    .into_owned()
            })
            .unwrap_or_default()
    }

    fn info(&self) -> Result<sys::rte_eth_dev_info, DpdkError> {
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: valid port id and out-pointer.
        let rc = unsafe { sys::rte_eth_dev_info_get(self.id, &mut info) };
        if rc != 0 {
            return Err(DpdkError::call(
                format!("read device info of port {}", self.name),
                rc,
            ));
        }
        Ok(info)
    }

    /// Configures `conf.queues` queue pairs receiving into `pool`. With more
    /// than one queue, RSS spreads TCP/IP flows over them where the device
    /// supports it; where it verifies IPv4 and TCP checksums, it does.
    pub fn configure(&mut self, conf: &PortConfig, pool: &Mempool) -> Result<(), DpdkError> {
        let info = self.info()?;
        let max = info.max_rx_queues.min(info.max_tx_queues);
        if conf.queues == 0 || conf.queues > max {
            return Err(DpdkError::Call {
                what: format!("configure port {}", self.name),
                reason: format!(
                    "{} queue pairs requested, the {} driver offers at most {max}",
                    conf.queues,
                    self.driver()
                ),
            });
        }
        let mut eth_conf = sys::rte_eth_conf::default();
        let rss = (RSS_IPV4 | RSS_NONFRAG_IPV4_TCP | RSS_IPV6 | RSS_NONFRAG_IPV6_TCP)
            & info.flow_type_rss_offloads;
        if conf.queues > 1 && rss != 0 {
            eth_conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            eth_conf.rx_adv_conf.rss_conf.rss_hf = rss;
        }
        // Where the NIC verifies checksums, it marks the bad frames
        // (`Mbuf::checksum_bad`) at no cost to the CPU.
        eth_conf.rxmode.offloads =
            (RX_OFFLOAD_IPV4_CKSUM | RX_OFFLOAD_TCP_CKSUM) & info.rx_offload_capa;
        // SAFETY: valid port id; eth_conf outlives the call.
        let rc =
            unsafe { sys::rte_eth_dev_configure(self.id, conf.queues, conf.queues, &eth_conf) };
        if rc != 0 {
            return Err(DpdkError::call(format!("configure port {}", self.name), rc));
        }
        let (mut rx_desc, mut tx_desc) = (conf.rx_desc, conf.tx_desc);
        // SAFETY: valid port id and out-pointers; DPDK clamps to the device's limits.
        let rc =
            unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut rx_desc, &mut tx_desc) };
        if rc != 0 {
            return Err(DpdkError::call(
                format!("size the rings of port {}", self.name),
                rc,
            ));
        }
        // SAFETY: valid port id.
        let socket = unsafe { sys::rte_eth_dev_socket_id(self.id) } as u32;
        for q in 0..conf.queues {
            // SAFETY: the port is configured with `queues` queues; a null conf
            // means the driver's defaults; the pool outlives the port (the
            // owner drops ports first).
            let rc = unsafe {
                sys::rte_eth_rx_queue_setup(
                    self.id,
                    q,
                    rx_desc,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if rc != 0 {
                return Err(DpdkError::call(
                    format!("set up RX queue {q} of port {}", self.name),
                    rc,
                ));
            }
            // SAFETY: as above.
            let rc = unsafe {
                sys::rte_eth_tx_queue_setup(self.id, q, tx_desc, socket, std::ptr::null())
            };
            if rc != 0 {
                return Err(DpdkError::call(
                    format!("set up TX queue {q} of port {}", self.name),
                    rc,
                ));
            }
        }
        self.queues = conf.queues;
        self.taken = vec![false; conf.queues as usize];
        Ok(())
    }

    pub fn start(&mut self) -> Result<(), DpdkError> {
        // SAFETY: valid, configured port.
        let rc = unsafe { sys::rte_eth_dev_start(self.id) };
        if rc != 0 {
            return Err(DpdkError::call(format!("start port {}", self.name), rc));
        }
        self.started = true;
        Ok(())
    }

    /// Stops the port. Its queues must no longer be polled.
    pub fn stop(&mut self) {
        if std::mem::take(&mut self.started) {
            // SAFETY: valid, started port; the owner has stopped its workers.
            unsafe { sys::rte_eth_dev_stop(self.id) };
        }
    }

    /// Hands out queue pair `q`, once.
    pub fn take_queue(&mut self, q: u16) -> Option<Queue> {
        let slot = self.taken.get_mut(q as usize)?;
        if std::mem::replace(slot, true) {
            return None;
        }
        Some(Queue {
            port: self.id,
            queue: q,
        })
    }

    pub fn mac(&self) -> Result<MacAddress, DpdkError> {
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: valid port id and out-pointer.
        let rc = unsafe { sys::rte_eth_macaddr_get(self.id, &mut addr) };
        if rc != 0 {
            return Err(DpdkError::call(
                format!("read the MAC address of port {}", self.name),
                rc,
            ));
        }
        Ok(MacAddress(addr.addr_bytes))
    }

    /// Sets the port's own MAC address (for a tap, the kernel interface's).
    pub fn set_mac(&self, mac: MacAddress) -> Result<(), DpdkError> {
        let mut addr = sys::rte_ether_addr { addr_bytes: mac.0 };
        // SAFETY: valid port id and pointer.
        let rc = unsafe { sys::rte_eth_dev_default_mac_addr_set(self.id, &mut addr) };
        if rc != 0 {
            return Err(DpdkError::call(
                format!("set MAC {mac} on port {}", self.name),
                rc,
            ));
        }
        Ok(())
    }

    /// Receive every frame, whatever its destination MAC.
    pub fn set_promiscuous(&self, on: bool) -> Result<(), DpdkError> {
        // SAFETY: valid port id.
        let rc = unsafe {
            if on {
                sys::rte_eth_promiscuous_enable(self.id)
            } else {
                sys::rte_eth_promiscuous_disable(self.id)
            }
        };
        // Some virtual devices have no such mode and are promiscuous anyway.
        if rc != 0 && rc != -(libc_enotsup()) {
            return Err(DpdkError::call(
                format!("set promiscuous mode on port {}", self.name),
                rc,
            ));
        }
        Ok(())
    }

    pub fn stats(&self) -> PortStats {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid port id and out-pointer.
        if unsafe { sys::rte_eth_stats_get(self.id, &mut s) } != 0 {
            return PortStats::default();
        }
        PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_no_mbuf: s.rx_nombuf,
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.stop();
        // SAFETY: valid, stopped port, closed once.
        unsafe { sys::rte_eth_dev_close(self.id) };
    }
}

const fn libc_enotsup() -> i32 {
    95 // ENOTSUP on Linux
}

/// The names of the ports DPDK has, for error messages.
fn present_ports() -> String {
    let mut names = Vec::new();
    // Port ids are u16, so no valid id lies past u16::MAX.
    for id in 0..u16::try_from(sys::RTE_MAX_ETHPORTS).unwrap_or(u16::MAX) {
        // SAFETY: any id is accepted; asking first keeps DPDK from logging
        // an error for every unused one.
        if unsafe { sys::rte_eth_dev_is_valid_port(id) } == 0 {
            continue;
        }
        let mut buf = [0 as std::ffi::c_char; 64];
        // SAFETY: valid out-buffer of RTE_ETH_NAME_MAX_LEN (64) bytes; an
        // id was checked valid above.
        if unsafe { sys::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) } == 0 {
            // SAFETY: DPDK wrote a NUL-terminated name into buf.
            names.push(
                unsafe { CStr::from_ptr(buf.as_ptr()) }
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
