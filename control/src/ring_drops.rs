//! Frames the kernel dropped because an af_packet port's receive ring was full. The
//! DPDK 22.11 af_packet driver reports none of them (its `imissed` stays 0), but the
//! kernel counts them on each packet socket, and the sockets are this process's own
//! descriptors: found by their inode in /proc/net/packet (bound to the port's
//! interface), read with PACKET_STATISTICS, which also resets the kernel's count, so
//! the totals are kept here.

use std::os::fd::RawFd;

/// `<linux/if_packet.h>`: the socket option and what it fills in (`tpacket_stats`; a
/// TPACKET_V3 socket adds a third word, room for which is given).
const PACKET_STATISTICS: libc::c_int = 6;

/// One port's packet sockets and the drops read from them so far.
#[derive(Debug, Default)]
pub struct RingDrops {
    sockets: Vec<RawFd>,
    total: u64,
}

impl RingDrops {
    /// The packet sockets of this process bound to `iface` (none if it has none).
    pub fn find(iface: &str) -> RingDrops {
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
        let sockets = std::fs::read_dir("/proc/self/fd")
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let link = std::fs::read_link(entry.path()).ok()?;
                let inode = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
                let fd: RawFd = entry.file_name().to_str()?.parse().ok()?;
                inodes.iter().any(|i| i == inode).then_some(fd)
            })
            .collect();
        RingDrops { sockets, total: 0 }
    }

    /// The sockets found.
    pub fn sockets(&self) -> usize {
        self.sockets.len()
    }

    /// Every drop so far: what the kernel counted since the last read, added. None
    /// for a port without packet sockets, which has no such drops to count.
    pub fn read(&mut self) -> Option<u64> {
        if self.sockets.is_empty() {
            return None;
        }
        for &fd in &self.sockets {
            let mut stats = [0u32; 3];
            let mut len = std::mem::size_of_val(&stats) as libc::socklen_t;
            // SAFETY: a buffer of `len` bytes and its length; `fd` is a packet socket
            // the port driver keeps open until the port closes, after the last read.
            let ret = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_PACKET,
                    PACKET_STATISTICS,
                    stats.as_mut_ptr().cast(),
                    &mut len,
                )
            };
            if ret == 0 {
                self.total += u64::from(stats[1]);
            }
        }
        Some(self.total)
    }
}
