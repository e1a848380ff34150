//! Wake-ups for a sleeping worker: frames arriving on an interface, and a
//! doorbell (an eventfd) rung by another thread.
//!
//! The af_packet PMD has no RX interrupts, so a worker that sleeps between
//! empty polls would leave a frame waiting until its sleep ends. A
//! [`PacketWake`] opens its own AF_PACKET socket on each interface the
//! worker's af_packet ports use. A classic BPF filter keeps the socket
//! silent while the worker polls (every frame dropped in the kernel, no
//! copy); [`PacketWake::arm`] switches it, just before a sleep, to a filter
//! that queues the first byte of each incoming frame, and
//! [`PacketWake::wait`] sleeps in ppoll(2) on those sockets and the doorbell.
//! The frames themselves are still received by the PMD's own socket: the
//! wake socket only says that one came.

// The kernel ABI's constants and struct sizes, all far below the narrower
// types the ABI wants them in.
#![allow(clippy::cast_possible_truncation)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use crate::packet_socket;

/// Frames drained from one wake socket per wake-up at most; any left make
/// the next sleep end at once, and are drained then.
const DRAIN_MAX: usize = 64;

/// `PACKET_OUTGOING`: a frame this host sends; it wakes nobody.
const PACKET_OUTGOING: u32 = 4;

/// A classic BPF program.
type Program = [libc::sock_filter];

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
/// `SKF_AD_OFF + SKF_AD_PKTTYPE`: the ancillary load of the packet type.
const PKTTYPE: u32 = (-0x1000i32 + 4) as u32;

/// While the worker polls: every frame dropped.
static DROP_ALL: [libc::sock_filter; 1] = [insn(BPF_RET_K, 0, 0, 0)];

/// While it sleeps: one byte of each incoming frame, nothing it sends.
static WAKE_ON_RX: [libc::sock_filter; 4] = [
    insn(BPF_LD_W_ABS, 0, 0, PKTTYPE),
    insn(BPF_JEQ_K, 1, 0, PACKET_OUTGOING),
    insn(BPF_RET_K, 0, 0, 1),
    insn(BPF_RET_K, 0, 0, 0),
];

/// The other threads' way to end a worker's sleep: cheap to clone, and
/// ringing it when nobody sleeps leaves the next sleep ending at once.
#[derive(Debug, Clone)]
pub struct WakeBell(Arc<OwnedFd>);

impl WakeBell {
    /// A new doorbell (an eventfd).
    pub fn new() -> io::Result<WakeBell> {
        // SAFETY: eventfd takes no pointers; a negative result is an error.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        Ok(WakeBell(Arc::new(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    /// Wakes the sleeper, or the next sleep.
    pub fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we own. A
        // failure (the counter at its maximum) still leaves it readable.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Clears the rings so far; returns whether there were any.
    fn clear(&self) -> bool {
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; nonblocking.
        let n = unsafe { libc::read(self.0.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
        n == 8
    }

    fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// What ended a [`PacketWake::wait`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Woken {
    /// A frame arrived on one of the interfaces.
    pub packet: bool,
    /// The doorbell was rung.
    pub bell: bool,
}

/// One worker's wake sockets and doorbell.
#[derive(Debug)]
pub struct PacketWake {
    sockets: Vec<OwnedFd>,
    bell: WakeBell,
    armed: bool,
}

impl PacketWake {
    /// Wake sockets on `ifaces` (interface names), silent until armed, and
    /// the doorbell `bell`.
    pub fn new<S: AsRef<str>>(ifaces: &[S], bell: WakeBell) -> io::Result<PacketWake> {
        let sockets = ifaces
            .iter()
            .map(|name| open_socket(name.as_ref()))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(PacketWake {
            sockets,
            bell,
            armed: false,
        })
    }

    /// The doorbell this waits on.
    pub fn bell(&self) -> &WakeBell {
        &self.bell
    }

    /// Before a sleep: incoming frames are queued (one byte each) from
    /// now on, until a wake-up or [`disarm`](Self::disarm). Returns whether
    /// it was not armed already: then look at the queues once more before
    /// [`wait`](Self::wait) (a frame that came before is there, one that
    /// comes after wakes the wait).
    pub fn arm(&mut self) -> io::Result<bool> {
        if self.armed {
            return Ok(false);
        }
        for socket in &self.sockets {
            // A frame the waking filter took just as the last disarm swapped
            // it out is queued after that disarm's drain: it would end this
            // sleep for nothing.
            drain(socket);
            attach(socket, &WAKE_ON_RX)?;
        }
        self.armed = true;
        Ok(true)
    }

    /// Whether frames are being queued.
    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// Sleeps up to `timeout` or until a frame comes (when armed) or the
    /// doorbell rings. A wake-up disarms; a timeout leaves it armed for
    /// the next sleep, which then costs one system call.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<Woken> {
        let bell = self.bell.fd();
        // Disarmed sockets are left out: all they can hold is a frame left
        // over from the last disarm, which would end every short sleep at
        // once (and, since a wake-up restarts the back-off, forever).
        let sockets: &[OwnedFd] = if self.armed { &self.sockets } else { &[] };
        let mut fds: Vec<libc::pollfd> = sockets
            .iter()
            .map(|s| s.as_raw_fd())
            .chain([bell])
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // ppoll: a timeout in nanoseconds (poll(2)'s milliseconds would
        // turn the back-off's first sleeps of a few µs into 1 ms).
        let timeout = libc::timespec {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(timeout.subsec_nanos()),
        };
        // SAFETY: `fds` is a live array of `fds.len()` pollfds, `timeout` a
        // live timespec; no signal mask is given.
        let n = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &timeout,
                std::ptr::null(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(Woken::default())
            } else {
                Err(err)
            };
        }
        let ready = |fd: &libc::pollfd| fd.revents != 0;
        let woken = Woken {
            packet: fds[..fds.len() - 1].iter().any(ready),
            bell: ready(&fds[fds.len() - 1]) && self.bell.clear(),
        };
        if woken.packet || woken.bell {
            self.disarm()?;
        }
        Ok(woken)
    }

    /// Silences the sockets and drains what they queued (nothing to do
    /// when not armed).
    pub fn disarm(&mut self) -> io::Result<()> {
        if !self.armed {
            return Ok(());
        }
        for socket in &self.sockets {
            attach(socket, &DROP_ALL)?;
        }
        self.armed = false;
        for socket in &self.sockets {
            drain(socket);
        }
        Ok(())
    }
}

fn last_error<T>() -> io::Result<T> {
    Err(io::Error::last_os_error())
}

/// An AF_PACKET socket on `iface` that drops everything: the filter is in
/// place before the socket is bound, so nothing is queued unfiltered.
fn open_socket(iface: &str) -> io::Result<OwnedFd> {
    let index = packet_socket::ifindex(iface)?;
    // Protocol 0: no frames at all until bound with a protocol below.
    // SAFETY: socket takes no pointers; a negative result is an error.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return last_error();
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    attach(&socket, &DROP_ALL)?;
    // A small receive buffer: it only ever holds one-byte frames.
    let rcvbuf: libc::c_int = 4096;
    packet_socket::set_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &rcvbuf)?;
    packet_socket::bind_all(fd, index)?;
    Ok(socket)
}

/// Puts `program` on the socket in place of its filter. The kernel copies
/// the program; `program` is static, so the pointer in the sock_fprog
/// stays valid for the call.
fn attach(socket: &OwnedFd, program: &'static Program) -> io::Result<()> {
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    packet_socket::set_option(
        socket.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_ATTACH_FILTER,
        &prog,
    )
}

/// Reads queued frames without waiting, at most [`DRAIN_MAX`]; returns how
/// many.
fn drain(socket: &OwnedFd) -> usize {
    let mut byte = [0u8; 1];
    let mut n = 0;
    while n < DRAIN_MAX {
        // SAFETY: receives at most 1 byte into a live 1-byte buffer.
        let got = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                byte.as_mut_ptr().cast(),
                1,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if got < 0 {
            break;
        }
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_rung_bell_ends_the_wait() {
        let bell = WakeBell::new().unwrap();
        let mut wake = PacketWake::new::<&str>(&[], bell.clone()).unwrap();
        let ringer = bell.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            ringer.ring();
        });
        let start = Instant::now();
        let woken = wake.wait(Duration::from_secs(10)).unwrap();
        t.join().unwrap();
        assert_eq!(
            woken,
            Woken {
                packet: false,
                bell: true
            }
        );
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_bell_rung_before_the_wait_ends_it_at_once() {
        let bell = WakeBell::new().unwrap();
        let mut wake = PacketWake::new::<&str>(&[], bell.clone()).unwrap();
        bell.ring();
        assert!(wake.wait(Duration::from_secs(10)).unwrap().bell);
        assert!(!wake.wait(Duration::from_millis(1)).unwrap().bell);
    }

    /// Needs CAP_NET_RAW; skipped without it unless CI is set.
    #[test]
    fn a_frame_ends_the_wait_only_when_armed() {
        let bell = WakeBell::new().unwrap();
        let mut wake = match PacketWake::new(&["lo"], bell) {
            Ok(wake) => wake,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("skipped: {e}");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = udp.local_addr().unwrap();
        // Disarmed: a frame is dropped by the filter, the wait times out.
        udp.send_to(b"x", to).unwrap();
        assert_eq!(
            wake.wait(Duration::from_millis(20)).unwrap(),
            Woken::default()
        );
        assert!(wake.arm().unwrap());
        assert!(!wake.arm().unwrap(), "armed already");
        assert_eq!(
            wake.wait(Duration::from_millis(1)).unwrap(),
            Woken::default()
        );
        assert!(wake.is_armed(), "a timeout leaves it armed");
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            udp.send_to(b"y", to).unwrap();
        });
        let start = Instant::now();
        let woken = wake.wait(Duration::from_secs(10)).unwrap();
        sender.join().unwrap();
        assert!(woken.packet, "{woken:?} after {:?}", start.elapsed());
        assert!(!woken.bell);
        assert!(!wake.is_armed(), "a wake-up disarms");
        // Disarmed again: nothing queued, a short wait times out.
        assert_eq!(
            wake.wait(Duration::from_millis(1)).unwrap(),
            Woken::default()
        );
    }

    /// Runs `f` on a thread of its own in a network namespace of its own,
    /// whose `lo` is up and carries only what `f` sends (other tests use
    /// the host's `lo` at the same time). None, with a note, where that
    /// needs privileges this process lacks, unless CI is set.
    fn on_private_lo<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let run = std::thread::spawn(move || {
            // SAFETY: unshare takes no pointers; it moves this thread alone.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            lo_up()?;
            Ok(f())
        });
        match run.join() {
            Ok(Ok(done)) => Some(done),
            Ok(Err(e)) if std::env::var_os("CI").is_none() => {
                eprintln!("skipped: a network namespace of its own: {e}");
                None
            }
            Ok(Err(e)) => panic!("a network namespace of its own: {e}"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Sets this thread's namespace's `lo` up.
    fn lo_up() -> io::Result<()> {
        // SAFETY: socket takes no pointers; a negative result is an error.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return last_error();
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ifreq is plain data, valid all zero.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (to, from) in req.ifr_name.iter_mut().zip(b"lo") {
            *to = *from as libc::c_char;
        }
        // SAFETY: both ioctls read and write the live ifreq `req`.
        unsafe {
            if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
                return last_error();
            }
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
                return last_error();
            }
        }
        Ok(())
    }

    /// Needs CAP_SYS_ADMIN and CAP_NET_RAW; skipped without them unless CI
    /// is set.
    #[test]
    fn a_frame_left_over_from_a_disarm_ends_no_later_wait() {
        on_private_lo(|| {
            let mut wake = PacketWake::new(&["lo"], WakeBell::new().unwrap()).unwrap();
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let to = udp.local_addr().unwrap();
            // The race of a disarm: the waking filter took a frame that is
            // queued only after the drain, behind the silencing filter.
            assert!(wake.arm().unwrap());
            udp.send_to(b"x", to).unwrap();
            attach(&wake.sockets[0], &DROP_ALL).unwrap();
            wake.armed = false;
            let mut poll = libc::pollfd {
                fd: wake.sockets[0].as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one live pollfd, no wait.
            let ready = unsafe { libc::poll(&mut poll, 1, 0) };
            assert_eq!(ready, 1, "a frame left over");
            // Disarmed, the short sleeps of a back-off do not see it.
            for _ in 0..3 {
                assert_eq!(
                    wake.wait(Duration::from_micros(100)).unwrap(),
                    Woken::default()
                );
            }
            // Arming clears it: the armed sleep ends on a new frame only.
            assert!(wake.arm().unwrap());
            let woken = wake.wait(Duration::from_millis(20)).unwrap();
            assert!(!woken.packet, "{woken:?}: the old frame woke it");
        });
    }

    #[test]
    fn an_unknown_interface_is_named_in_the_error() {
        let bell = WakeBell::new().unwrap();
        let err = PacketWake::new(&["no-such-if0"], bell).unwrap_err();
        assert!(err.to_string().contains("no-such-if0"), "{err}");
    }
}
