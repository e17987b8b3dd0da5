//! Frames the kernel dropped because a port's receive ring was full, which DPDK
//! 22.11's drivers do not report for the kernel ports dsrlb runs on:
//! - af_packet: the driver's `imissed` stays 0, but the kernel counts the drops on
//!   each packet socket. The sockets are this process's own descriptors, found by
//!   their inode in /proc/net/packet (bound to the port's interface) and read with
//!   PACKET_STATISTICS, which also resets the kernel's count, so totals are kept here.
//! - af_xdp: the driver adds XDP_STATISTICS' `rx_dropped` (no fill-ring buffer, frame
//!   too long) to `imissed`, not `rx_ring_full` (the socket's rx ring was full: the
//!   worker did not keep up). The port's XDP sockets are those the driver opened
//!   while the port started; their counts are cumulative.

use std::collections::BTreeSet;
use std::os::fd::RawFd;

/// `<linux/if_packet.h>`: the socket option and what it fills in (`tpacket_stats`; a
/// TPACKET_V3 socket adds a third word, room for which is given).
const PACKET_STATISTICS: libc::c_int = 6;
/// `<linux/socket.h>`, `<linux/if_xdp.h>`: the XDP socket family, its option level
/// and statistics option, which fills in six u64s; `rx_ring_full` is the fourth.
const AF_XDP: libc::c_int = 44;
const SOL_XDP: libc::c_int = 283;
const XDP_STATISTICS: libc::c_int = 7;
const XDP_RX_RING_FULL: usize = 3;

/// One port's packet and XDP sockets and the drops read from them so far.
#[derive(Debug, Default)]
pub struct RingDrops {
    packet_sockets: Vec<RawFd>,
    xdp_sockets: Vec<RawFd>,
    /// Packet sockets' drops read so far (each read resets the kernel's count).
    packet_total: u64,
}

impl RingDrops {
    /// The packet sockets of this process bound to `iface`, and the XDP sockets
    /// opened since `xdp_before` was taken (`xdp_sockets()` before the port started).
    pub fn find(iface: &str, xdp_before: &BTreeSet<RawFd>) -> RingDrops {
        let index = std::fs::read_to_string(format!("/sys/class/net/{iface}/ifindex"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        let packet = std::fs::read_to_string("/proc/net/packet").unwrap_or_default();
        let inodes: Vec<String> = packet
            .lines()
            .skip(1)
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.get(4) == Some(&index.as_str()))
                    .then(|| fields.get(8).map(|s| s.to_string()))?
            })
            .collect();
        let packet_sockets = own_sockets()
            .filter(|(_, inode)| inodes.contains(inode))
            .map(|(fd, _)| fd)
            .collect();
        RingDrops {
            packet_sockets,
            xdp_sockets: xdp_sockets().difference(xdp_before).copied().collect(),
            packet_total: 0,
        }
    }

    /// The sockets found, packet and XDP.
    pub fn sockets(&self) -> (usize, usize) {
        (self.packet_sockets.len(), self.xdp_sockets.len())
    }

    /// Every drop so far. None for a port without such sockets, which has no such
    /// drops to count.
    pub fn read(&mut self) -> Option<u64> {
        if self.packet_sockets.is_empty() && self.xdp_sockets.is_empty() {
            return None;
        }
        for &fd in &self.packet_sockets {
            let mut stats = [0u32; 3];
            if get_stats(fd, libc::SOL_PACKET, PACKET_STATISTICS, &mut stats) {
                self.packet_total += u64::from(stats[1]);
            }
        }
        let xdp: u64 = (self.xdp_sockets.iter())
            .filter_map(|&fd| {
                let mut stats = [0u64; 6];
                get_stats(fd, SOL_XDP, XDP_STATISTICS, &mut stats)
                    .then_some(stats[XDP_RX_RING_FULL])
            })
            .sum();
        Some(self.packet_total + xdp)
    }
}

/// The XDP sockets this process has open now.
pub fn xdp_sockets() -> BTreeSet<RawFd> {
    own_sockets()
        .map(|(fd, _)| fd)
        .filter(|&fd| {
            let mut domain = [0 as libc::c_int];
            get_stats(fd, libc::SOL_SOCKET, libc::SO_DOMAIN, &mut domain) && domain[0] == AF_XDP
        })
        .collect()
}

/// This process's sockets: descriptor and inode.
fn own_sockets() -> impl Iterator<Item = (RawFd, String)> {
    std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let link = std::fs::read_link(entry.path()).ok()?;
            let inode = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
            let fd: RawFd = entry.file_name().to_str()?.parse().ok()?;
            Some((fd, inode.to_owned()))
        })
}

/// getsockopt(`fd`, `level`, `name`) into `out`; false if the call failed.
fn get_stats<T: Copy>(fd: RawFd, level: libc::c_int, name: libc::c_int, out: &mut [T]) -> bool {
    let mut len = std::mem::size_of_val(out) as libc::socklen_t;
    // SAFETY: a buffer of `len` bytes and its length. `fd` is a socket the port
    // driver keeps open until the port closes, after the last read; at worst a
    // descriptor closed and reused meanwhile answers with an error or its own option.
    unsafe { libc::getsockopt(fd, level, name, out.as_mut_ptr().cast(), &mut len) == 0 }
}
