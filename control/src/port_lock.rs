//! One appliance per port: before EAL starts, dsrlb takes an exclusive lock for each
//! port that another process could also drive (a PCI device, or a kernel interface
//! through af_packet or af_xdp, within its network namespace), and holds it until it
//! exits; the kernel drops it however dsrlb ends, kill -9 included. A second dsrlb
//! on the same port stops there, naming the port and the holder. Ports private to a
//! process (net_ring, net_null, net_pcap files) take no lock.

use config::Config;
use rustix::fs::FlockOperation;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Where the locks live: next to the default control socket, per machine.
pub const LOCK_DIR: &str = "/run/dsrlb/ports";

/// The locks held; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct PortLocks {
    _files: Vec<File>,
}

/// What makes `device` a port another process could drive too, as a file name; None
/// for a port private to this process.
pub fn lock_name(device: &str, netns: u64) -> Option<String> {
    if config::is_pci_address(device) {
        return Some(format!("pci-{device}"));
    }
    let iface = crate::kernel_port::kernel_interface(device)?;
    Some(format!("netns-{netns}-iface-{iface}"))
}

/// The network namespace this process is in, as the inode of its /proc link.
fn netns() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/net").map_or(0, |m| m.ino())
}

impl PortLocks {
    /// Locks every shared port of `config` under `dir`; an error names the port that
    /// another process holds and that process.
    pub fn take(config: &Config, dir: &Path) -> Result<PortLocks, String> {
        let netns = netns();
        let mut files = Vec::new();
        for (i, port) in config.ports.iter().enumerate() {
            let Some(name) = lock_name(&port.device, netns) else {
                continue;
            };
            let path = dir.join(format!("{name}.lock"));
            let shown = format!("ports[{i}] ({})", port.device);
            files.push(lock(&path).map_err(|e| format!("{shown}: {e}"))?);
        }
        Ok(PortLocks { _files: files })
    }
}

/// An exclusive lock on `path` with this process's pid in it.
fn lock(path: &PathBuf) -> Result<File, String> {
    let shown = path.display();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("{shown}: {e}"))?;
    if rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Err(format!(
            "another dsrlb drives this port (pid {}, lock {shown}): one appliance per port",
            holder.trim()
        ));
    }
    let mine = std::process::id().to_string();
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(mine.as_bytes()));
    written.map_err(|e| format!("{shown}: {e}"))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ports_another_process_could_drive_are_locked() {
        assert_eq!(
            lock_name("0000:01:00.0", 7).as_deref(),
            Some("pci-0000:01:00.0")
        );
        let af_packet = lock_name("net_af_packet0,iface=data0", 7);
        assert_eq!(af_packet.as_deref(), Some("netns-7-iface-data0"));
        let af_xdp = lock_name("net_af_xdp1,iface=eth1,start_queue=0,queue_count=1", 9);
        assert_eq!(af_xdp.as_deref(), Some("netns-9-iface-eth1"));
        for private in ["net_ring0", "net_null0", "net_pcap0,rx_pcap=/a,tx_pcap=/b"] {
            assert_eq!(lock_name(private, 7), None, "{private}");
        }
        assert_eq!(
            lock_name("net_af_packet0,iface=../x", 7),
            None,
            "no path in a name"
        );
    }

    #[test]
    fn a_second_lock_on_a_port_is_refused_naming_the_holder() {
        let dir = std::env::temp_dir().join(format!("dsrlb-portlock-{}", std::process::id()));
        let path = dir.join("netns-1-iface-data0.lock");
        let first = lock(&path).unwrap();
        let second = lock(&path).unwrap_err();
        let pid = std::process::id();
        assert!(
            second.contains(&format!("another dsrlb drives this port (pid {pid}")),
            "{second}"
        );
        drop(first);
        assert!(lock(&path).is_ok(), "free again once the holder is gone");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
