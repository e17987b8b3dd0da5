//! A tap device that lives exactly as long as dsrlb: created non-persistent, so the
//! kernel removes it when its last descriptor closes, which happens however dsrlb
//! ends (kill -9 included). BIRD's VIP routes point at it (`crate::bird`), so they
//! are withdrawn without dsrlb's help. No frame is ever read from or written to it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

#[derive(Debug)]
pub struct Tap {
    name: String,
    _fd: OwnedFd,
}

/// `struct ifreq` as TUNSETIFF and SIOC[GS]IFFLAGS use it: a name and flags.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl IfReq {
    fn new(name: &str, flags: libc::c_short) -> io::Result<IfReq> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{name}` is not an interface name"),
            ));
        }
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags,
            _pad: [0; 22],
        };
        req.name[..bytes.len()].copy_from_slice(bytes);
        Ok(req)
    }
}

impl Tap {
    /// Creates tap `name` and sets it up. Fails if it exists already (another dsrlb,
    /// or a persistent tap of that name).
    pub fn create(name: &str) -> io::Result<Tap> {
        let path = CString::new("/dev/net/tun").map_err(io::Error::other)?;
        // SAFETY: a NUL-terminated path; the descriptor is owned below.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor just opened and owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        let mut req = IfReq::new(name, flags)?;
        // SAFETY: TUNSETIFF takes a struct ifreq, which IfReq lays out.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let created = String::from_utf8_lossy(&req.name)
            .trim_end_matches('\0')
            .to_owned();
        if created != name {
            // The name was taken by a tap already attached elsewhere? Refuse.
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("tap `{name}` came up as `{created}`"),
            ));
        }
        set_up(name)?;
        Ok(Tap {
            name: created,
            _fd: fd,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Sets interface `name` administratively up.
fn set_up(name: &str) -> io::Result<()> {
    // SAFETY: a plain socket for interface ioctls, owned below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just created, owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    let mut req = IfReq::new(name, 0)?;
    // SAFETY: SIOCGIFFLAGS / SIOCSIFFLAGS take a struct ifreq, which IfReq lays out.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exists(name: &str) -> bool {
        std::path::Path::new(&format!("/sys/class/net/{name}")).exists()
    }

    #[test]
    fn the_tap_is_up_while_held_and_gone_when_dropped() {
        let name = format!("dsrlbt{}", std::process::id() % 100_000);
        let tap = match Tap::create(&name) {
            Ok(tap) => tap,
            // Needs CAP_NET_ADMIN: scripts/test.sh runs as root.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => panic!("run as root: {e}"),
            Err(e) => panic!("{e}"),
        };
        assert!(exists(&name));
        let flags = std::fs::read_to_string(format!("/sys/class/net/{name}/flags")).unwrap();
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
        assert_eq!(flags & libc::IFF_UP as u32, libc::IFF_UP as u32, "up");
        assert!(Tap::create(&name).is_err(), "one holder at a time");
        drop(tap);
        assert!(!exists(&name), "gone with its descriptor");
        assert!(Tap::create("a-name-much-too-long").is_err());
    }
}
