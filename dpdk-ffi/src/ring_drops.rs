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

// The kernel ABI's struct sizes, far below socklen_t.
#![allow(clippy::cast_possible_truncation)]

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;

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
        let name = std::ffi::CString::new(iface)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
        // SAFETY: `name` is a NUL-terminated string alive for the call.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        let ifindex = libc::c_int::try_from(index).unwrap_or(0);
        if ifindex == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no interface {iface}"),
            ));
        }
        Ok(RingDrops {
            ifindex,
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
    // SAFETY: sockaddr_ll is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: passes a live sockaddr_ll and its size; the kernel writes at
    // most `len` bytes. A stale `fd` only makes the call fail.
    let rc =
        unsafe { libc::getsockname(fd, (&mut addr as *mut libc::sockaddr_ll).cast(), &mut len) };
    if rc < 0 || addr.sll_family != libc::AF_PACKET as u16 || addr.sll_ifindex != ifindex {
        return false;
    }
    let mut version: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: passes a live c_int and its size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            (&mut version as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    rc == 0 && version == TPACKET_V2
}

/// The drops `fd` counted since it was last asked (the kernel resets them).
fn take_drops(fd: RawFd) -> u64 {
    let mut stats = TpacketStats::default();
    let mut len = std::mem::size_of::<TpacketStats>() as libc::socklen_t;
    // SAFETY: passes a live tpacket_stats and its size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut stats as *mut TpacketStats).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return 0;
    }
    u64::from(stats.drops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// A TPACKET_V2 socket with a ring of two frames on `lo`, as the PMD
    /// opens them.
    fn tiny_ring_on_lo() -> io::Result<OwnedFd> {
        // SAFETY: socket takes no pointers; a negative result is an error.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from((libc::ETH_P_ALL as u16).to_be()),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        let set = |opt: libc::c_int, value: *const libc::c_void, len: usize| {
            // SAFETY: `value` points at a live value of `len` bytes.
            let rc = unsafe {
                libc::setsockopt(fd, libc::SOL_PACKET, opt, value, len as libc::socklen_t)
            };
            if rc < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        set(
            libc::PACKET_VERSION,
            (&TPACKET_V2 as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>(),
        )?;
        let req = libc::tpacket_req {
            tp_block_size: 4096,
            tp_block_nr: 1,
            tp_frame_size: 2048,
            tp_frame_nr: 2,
        };
        set(
            libc::PACKET_RX_RING,
            (&req as *const libc::tpacket_req).cast(),
            std::mem::size_of::<libc::tpacket_req>(),
        )?;
        // SAFETY: sockaddr_ll is plain data; all zeroes is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: "lo" is a NUL-terminated literal.
        addr.sll_ifindex = unsafe { libc::if_nametoindex(c"lo".as_ptr()) } as i32;
        // SAFETY: passes a live sockaddr_ll and its size.
        let rc = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
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
