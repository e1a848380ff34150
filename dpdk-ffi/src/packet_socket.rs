//! The few AF_PACKET socket calls Baton's own packet sockets need (the wake
//! sockets of [`crate::PacketWake`], the ring statistics of
//! [`crate::RingDrops`]): an interface's index, binding to it, and socket
//! options read and written as plain values.

// The kernel ABI's struct sizes, far below socklen_t.
#![allow(clippy::cast_possible_truncation)]

use std::io;
use std::os::fd::RawFd;

/// The index of the interface named `iface`; an error naming it if there
/// is none.
pub(crate) fn ifindex(iface: &str) -> io::Result<libc::c_int> {
    let name = std::ffi::CString::new(iface)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: `name` is a NUL-terminated string alive for the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    match libc::c_int::try_from(index) {
        Ok(index) if index != 0 => Ok(index),
        _ => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {iface}: {}", io::Error::last_os_error()),
        )),
    }
}

/// Binds the AF_PACKET socket `fd` to interface `ifindex`, for frames of
/// every protocol.
pub(crate) fn bind_all(fd: RawFd, ifindex: libc::c_int) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    addr.sll_ifindex = ifindex;
    // SAFETY: passes a live sockaddr_ll and its size.
    let rc = unsafe {
        libc::bind(
            fd,
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    ok_or_last_error(rc)
}

/// The interface an AF_PACKET socket is bound to; `None` for a socket of
/// another family (or a descriptor that is no socket).
pub(crate) fn bound_ifindex(fd: RawFd) -> Option<libc::c_int> {
    // SAFETY: sockaddr_ll is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: passes a live sockaddr_ll and its size; the kernel writes at
    // most `len` bytes. A stale `fd` only makes the call fail.
    let rc =
        unsafe { libc::getsockname(fd, (&mut addr as *mut libc::sockaddr_ll).cast(), &mut len) };
    (rc == 0 && addr.sll_family == libc::AF_PACKET as u16).then_some(addr.sll_ifindex)
}

/// Sets socket option `opt` of `level` to `value`, a plain C value of the
/// type the option takes.
pub(crate) fn set_option<T>(
    fd: RawFd,
    level: libc::c_int,
    opt: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: passes a live `T` and its size; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    ok_or_last_error(rc)
}

/// Reads socket option `opt` of `level`, a plain C value of type `T`.
pub(crate) fn get_option<T: Default>(
    fd: RawFd,
    level: libc::c_int,
    opt: libc::c_int,
) -> io::Result<T> {
    let mut value = T::default();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: passes a live `T` and its size; the kernel writes at most
    // `len` bytes of plain data into it.
    let rc = unsafe { libc::getsockopt(fd, level, opt, (&mut value as *mut T).cast(), &mut len) };
    ok_or_last_error(rc).map(|()| value)
}

fn ok_or_last_error(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
