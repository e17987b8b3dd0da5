//! The prober's system calls, behind one wall (its epoll set is `crate::poller`): a
//! non-blocking TCP connect from a chosen address and interface, sending and reading
//! on it, a pidfd for an exec check, and closing dsrlb's descriptors across exec.
//! Safe calls through rustix; the two it has no wrapper for (SO_BINDTODEVICE and
//! close_range) are the only unsafe code here, each with its reason.

use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use std::ffi::CString;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

pub use crate::poller::RawErrno;

fn raw(e: Errno) -> RawErrno {
    e.raw_os_error()
}

/// Errors of the connect itself: refused and timed out have names of their own.
pub const REFUSED: RawErrno = Errno::CONNREFUSED.raw_os_error();
pub const TIMED_OUT: RawErrno = Errno::TIMEDOUT.raw_os_error();

/// A non-blocking TCP socket to `to`, leaving from `interface` if given and, for an
/// IPv4 `to`, from `from` if given, its connect under way (or done).
pub fn start_connect(
    to: SocketAddr,
    from: Option<Ipv4Addr>,
    interface: Option<&CString>,
) -> Result<OwnedFd, RawErrno> {
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let family = match to {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let fd = rustix::net::socket_with(family, SocketType::STREAM, flags, None).map_err(raw)?;
    if let Some(name) = interface {
        bind_to_device(&fd, name)?;
    }
    if let (Some(address), SocketAddr::V4(_)) = (from, to) {
        rustix::net::bind(&fd, &SocketAddrV4::new(address, 0)).map_err(raw)?;
    }
    match rustix::net::connect(&fd, &to) {
        Ok(()) | Err(Errno::INPROGRESS) => Ok(fd),
        Err(e) => Err(raw(e)),
    }
}

/// SO_BINDTODEVICE, which rustix does not wrap.
fn bind_to_device(fd: &OwnedFd, name: &CString) -> Result<(), RawErrno> {
    let len = name.as_bytes_with_nul().len() as libc::socklen_t;
    // SAFETY: a valid socket and a NUL-terminated name of `len` bytes.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            len,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    }
}

/// How the connect on a socket that became writable ended.
pub fn connect_result(fd: impl AsFd) -> Result<(), RawErrno> {
    match rustix::net::sockopt::socket_error(fd) {
        Ok(result) => result.map_err(raw),
        Err(e) => Err(raw(e)),
    }
}

/// Sends a whole (small) request on a freshly connected socket.
pub fn send_all(fd: impl AsFd, bytes: &[u8]) -> Result<(), RawErrno> {
    match rustix::net::send(fd, bytes, SendFlags::NOSIGNAL) {
        Ok(n) if n == bytes.len() => Ok(()),
        Ok(_) => Err(raw(Errno::MSGSIZE)),
        Err(e) => Err(raw(e)),
    }
}

/// What one read of a response gave.
pub enum Read {
    /// Bytes; 0 at the end of the stream.
    Bytes(usize),
    /// Nothing yet.
    Pending,
    Failed(RawErrno),
}

pub fn read(fd: impl AsFd, buf: &mut [u8]) -> Read {
    match rustix::net::recv(fd, buf, RecvFlags::empty()) {
        Ok((_, n)) => Read::Bytes(n),
        Err(Errno::WOULDBLOCK) => Read::Pending,
        Err(e) => Read::Failed(raw(e)),
    }
}

/// A pidfd for `child`: readable once it exits (None on kernels without pidfds).
pub fn pidfd(child: &Child) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
}

/// close_range(2) flag: mark close-on-exec rather than close (Rust's spawn keeps a
/// pipe open until exec to report exec errors).
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// `command`'s child inherits none of dsrlb's descriptors beyond stdio: DPDK's
/// hugepage memfds among them would stay referenced (and the memory held) while the
/// check runs.
pub fn close_descriptors_on_exec(command: &mut Command) {
    // SAFETY: the closure makes one async-signal-safe syscall (rustix has no
    // close_range) and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC);
            Ok(())
        });
    }
}

/// Every probe in flight holds a socket: lifts the soft open-file limit to the hard one.
pub fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    // None is unlimited.
    let below = match (limit.current, limit.maximum) {
        (Some(current), Some(maximum)) => current < maximum,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            log::warn!("cannot raise the open-file limit: {e}");
        }
    }
}
