//! Frames the kernel dropped because an af_packet port's RX ring was full.
//!
//! The af_packet PMD reports no `imissed`: when a worker falls behind and
//! the kernel finds the ring of the PMD's socket full, the frame is counted
//! only in that socket's `PACKET_STATISTICS`, which the PMD never reads.
//! [`RingDrops`] finds those sockets among this process's descriptors (an
//! AF_PACKET socket bound to the interface, of version TPACKET_V2, the
//! PMD's; a [`crate::PacketWake`] socket keeps the default version) and
//! sums what they report. Reading the statistics resets them, so the sum is
//! kept here: one `RingDrops` per interface, read from one thread.

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;

use crate::packet_socket::{bound_ifindex, get_option, ifindex};

/// `TPACKET_V2`, the ring version the af_packet PMD sets.
const TPACKET_V2: libc::c_int = 1;

/// `struct tpacket_stats` of `<linux/if_packet.h>`.
#[repr(C)]
#[derive(Default)]
struct TpacketStats {
    packets: libc::c_uint,
    drops: libc::c_uint,
}

/// The RX-ring drops of the af_packet PMD's sockets on one interface.
pub struct RingDrops {
    ifindex: libc::c_int,
    total: Cell<u64>,
}

impl RingDrops {
    /// For the interface named `iface`; an error if there is none.
    pub fn new(iface: &str) -> io::Result<RingDrops> {
        Ok(RingDrops {
            ifindex: ifindex(iface)?,
            total: Cell::new(0),
        })
    }

    /// Frames dropped on a full ring since this `RingDrops` was made.
    pub fn total(&self) -> u64 {
        let fresh: u64 = socket_fds()
            .filter(|&fd| is_ring_socket_on(fd, self.ifindex))
            .map(take_drops)
            .sum();
        self.total.set(self.total.get() + fresh);
        self.total.get()
    }
}

/// This process's socket descriptors.
fn socket_fds() -> impl Iterator<Item = RawFd> {
    std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| {
            std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
        })
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
}

/// Whether `fd` is an AF_PACKET socket bound to `ifindex` with a TPACKET_V2
/// ring. A descriptor closed meanwhile (or reused by another socket) fails
/// one of the checks.
fn is_ring_socket_on(fd: RawFd, ifindex: libc::c_int) -> bool {
    bound_ifindex(fd) == Some(ifindex)
        && get_option::<libc::c_int>(fd, libc::SOL_PACKET, libc::PACKET_VERSION)
            .is_ok_and(|version| version == TPACKET_V2)
}

/// The drops `fd` counted since it was last asked (the kernel resets them).
fn take_drops(fd: RawFd) -> u64 {
    get_option::<TpacketStats>(fd, libc::SOL_PACKET, libc::PACKET_STATISTICS)
        .map_or(0, |stats| u64::from(stats.drops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet_socket::{bind_all, set_option};
    use std::os::fd::{FromRawFd, OwnedFd};

    /// A TPACKET_V2 socket with a ring of two frames on `lo`, as the PMD
    /// opens them.
    fn tiny_ring_on_lo() -> io::Result<OwnedFd> {
        // Protocol 0: no frames until bound, with its ring in place.
        // SAFETY: socket takes no pointers; a negative result is an error.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        set_option(fd, libc::SOL_PACKET, libc::PACKET_VERSION, &TPACKET_V2)?;
        let req = libc::tpacket_req {
            tp_block_size: 4096,
            tp_block_nr: 1,
            tp_frame_size: 2048,
            tp_frame_nr: 2,
        };
        set_option(fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;
        bind_all(fd, ifindex("lo")?)?;
        Ok(socket)
    }

    #[test]
    fn frames_a_full_ring_could_not_take_are_counted_once() {
        let ring = match tiny_ring_on_lo() {
            Ok(ring) => ring,
            Err(e)
                if e.kind() == io::ErrorKind::PermissionDenied
                    && std::env::var_os("CI").is_none() =>
            {
                eprintln!("skipped: an AF_PACKET socket needs CAP_NET_RAW ({e})");
                return;
            }
            Err(e) => panic!("opening a packet ring on lo: {e}"),
        };
        let drops = RingDrops::new("lo").unwrap();
        assert_eq!(drops.total(), 0, "nothing sent yet");
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = udp.local_addr().unwrap();
        for _ in 0..20 {
            udp.send_to(b"x", to).unwrap();
        }
        let after = drops.total();
        // Twenty frames, each seen on lo, into a ring of two never read.
        assert!(after >= 18, "{after} drops counted");
        assert_eq!(drops.total(), after, "read twice, counted once");
        drop(ring);
    }

    #[test]
    fn an_unknown_interface_is_an_error() {
        assert!(RingDrops::new("no-such-if0").is_err());
    }
}
