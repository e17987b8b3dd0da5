//! Checks of a valid config against the files it names, done by `dsrlb check` and
//! before EAL starts: every file is looked at by its type and size before anything
//! reads it (a FIFO would hang the read, /dev/zero would fill memory); the control
//! socket's path must be a socket if anything is there, since dsrlb replaces a stale
//! socket; and net_pcap (DPDK 22.11) frees its replay ring twice when an
//! `infinite_rx` queue setup runs out of mbufs, and the process then crashes while
//! closing the port.

use config::{Config, ConfigError, KeyError};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// The largest pcap file a port may replay: infinite_rx keeps every frame in an
/// mbuf, and the check reads the file whole to count them.
const MAX_PCAP_BYTES: u64 = 1 << 30;

/// Everything `config` asks of its devices that cannot work, by key.
pub fn check(config: &Config, source: &Path) -> Result<(), ConfigError> {
    let mut errors = Vec::new();
    let mut replayed = 0u64;
    let mut files = Vec::new();
    for (i, port) in config.ports.iter().enumerate() {
        let key = || format!("ports[{i}].device");
        for (arg, file) in pcap_files(&port.device) {
            if let Err(message) = fit_pcap_file(arg, file) {
                errors.push(KeyError {
                    key: key(),
                    message,
                });
            }
        }
        // Files unfit to read were reported above (missing ones: by the driver at
        // start, or here when infinite_rx counts them): only the others are read.
        let fit = |file: &&str| {
            let missing = Path::new(file).symlink_metadata().is_err();
            missing || regular_file(file, MAX_PCAP_BYTES).is_ok()
        };
        for file in infinite_rx_files(&port.device).into_iter().filter(fit) {
            match std::fs::File::open(file).and_then(dataplane::pcap::count) {
                Ok(frames) => {
                    replayed += frames as u64;
                    files.push(format!("{file} ({frames} frames)"));
                }
                Err(e) => errors.push(KeyError {
                    key: key(),
                    message: format!("rx_pcap {file}: {e}"),
                }),
            }
        }
    }
    if let Err(message) = crate::ctl::stale_socket_or_nothing(&config.control.socket) {
        errors.push(KeyError {
            key: "control.socket".into(),
            message,
        });
    }
    let mbufs = u64::from(config.dataplane.mbufs);
    let budget = config.mbuf_budget();
    if replayed > 0 && mbufs < replayed + budget.total() {
        errors.push(KeyError {
            key: "dataplane.mbufs".into(),
            message: format!(
                "{mbufs} mbufs cannot hold the {replayed} frames that infinite_rx keeps \
                 in mbufs ({}) as well as the {} the ports and queues may hold: give at \
                 least {}",
                files.join(", "),
                budget.total(),
                replayed + budget.total()
            ),
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigError {
            source: source.display().to_string(),
            errors,
        })
    }
}

/// Every (argument, file) of a net_pcap vdev: what it reads and what it writes.
fn pcap_files(device: &str) -> Vec<(&str, &str)> {
    pcap_args(device)
        .into_iter()
        .filter(|(k, _)| matches!(*k, "rx_pcap" | "tx_pcap"))
        .collect()
}

/// The key=value arguments of a net_pcap vdev; none for any other device.
fn pcap_args(device: &str) -> Vec<(&str, &str)> {
    let mut args = device.split(',');
    if !args.next().is_some_and(|name| name.starts_with("net_pcap")) {
        return Vec::new();
    }
    args.filter_map(|a| a.split_once('=')).collect()
}

/// A file net_pcap reads must be a regular file of a replayable size (if it is there);
/// one it writes must be a regular file if it exists, in a directory that does.
fn fit_pcap_file(arg: &str, file: &str) -> Result<(), String> {
    let path = Path::new(file);
    // One not there yet is for the driver to report when the port starts.
    if arg == "rx_pcap" && path.symlink_metadata().is_ok() {
        return regular_file(file, MAX_PCAP_BYTES).map_err(|e| format!("rx_pcap {e}"));
    }
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(format!("tx_pcap {file}: not a regular file")),
        Ok(_) => Ok(()),
        Err(_) => match path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) if !dir.is_dir() => {
                Err(format!("tx_pcap {file}: no directory {}", dir.display()))
            }
            _ => Ok(()),
        },
    }
}

/// `file` is a regular file of at most `max` bytes (looked at, not read).
fn regular_file(file: &str, max: u64) -> Result<(), String> {
    let meta = std::fs::metadata(file).map_err(|e| format!("{file}: {e}"))?;
    let kind = meta.file_type();
    if kind.is_fifo() || kind.is_char_device() || kind.is_block_device() || kind.is_socket() {
        return Err(format!("{file}: a device, FIFO or socket, not a file"));
    }
    if !meta.is_file() {
        return Err(format!("{file}: not a regular file"));
    }
    if meta.len() > max {
        return Err(format!("{file}: {} bytes, more than {max}", meta.len()));
    }
    Ok(())
}

/// The `rx_pcap` files of a net_pcap vdev replaying them forever (`infinite_rx=1`).
fn infinite_rx_files(device: &str) -> Vec<&str> {
    let args = pcap_args(device);
    if !args.contains(&("infinite_rx", "1")) {
        return Vec::new();
    }
    args.iter()
        .filter(|(k, _)| *k == "rx_pcap")
        .map(|(_, v)| *v)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(device: &str, socket: &Path) -> Config {
        let text = format!(
            "[appliance]\naddress = \"10.99.0.2\"\n[dataplane]\nworker_lcores = [1]\n\
             [control]\nsocket = \"{}\"\n[[ports]]\nname = \"p\"\ndevice = \"{device}\"\n",
            socket.display()
        );
        Config::from_toml(&text, "t").unwrap()
    }

    /// The messages `check` gives, by key; a check that waits on a file fails the
    /// test after 30 s instead of hanging it.
    fn problems(device: &str, socket: &Path) -> Vec<(String, String)> {
        let config = config(device, socket);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(match check(&config, Path::new("t")) {
                Ok(()) => Vec::new(),
                Err(e) => e.errors.into_iter().map(|e| (e.key, e.message)).collect(),
            });
        });
        rx.recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("check of {device} waited on a file"))
    }

    #[test]
    fn files_are_judged_by_type_and_size_before_anything_reads_them() {
        let dir = std::env::temp_dir().join(format!("dsrlb-preflight-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("dsrlb.sock");
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        for (device, wanted) in [
            (
                format!("net_pcap0,rx_pcap={},infinite_rx=1", fifo.display()),
                "a device, FIFO or socket",
            ),
            (
                "net_pcap0,rx_pcap=/dev/zero,infinite_rx=1".to_owned(),
                "a device, FIFO or socket",
            ),
            (
                "net_pcap0,rx_pcap=/dev/zero".to_owned(),
                "a device, FIFO or socket",
            ),
            (
                format!("net_pcap0,rx_pcap={}", dir.display()),
                "not a regular file",
            ),
            (
                "net_pcap0,tx_pcap=/nonexistent-dir/out.pcap".to_owned(),
                "no directory /nonexistent-dir",
            ),
            (
                format!("net_pcap0,tx_pcap={}", fifo.display()),
                "not a regular file",
            ),
        ] {
            let found = problems(&device, &socket);
            assert!(
                found
                    .iter()
                    .any(|(k, m)| k == "ports[0].device" && m.contains(wanted)),
                "{device}: {found:?}"
            );
        }
        assert!(problems("net_ring0", &socket).is_empty());

        // Something other than a socket at control.socket is named, and left alone.
        std::fs::write(&socket, "precious").unwrap();
        let found = problems("net_ring0", &socket);
        assert!(
            found
                .iter()
                .any(|(k, m)| k == "control.socket" && m.contains("is not a socket")),
            "{found:?}"
        );
        let (asker, _questions) = crate::ctl::channel();
        let refused = crate::ctl::ControlSocket::start(&socket, asker);
        assert!(refused.err().unwrap().contains("is not a socket"));
        assert_eq!(std::fs::read_to_string(&socket).unwrap(), "precious");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn finds_the_files_only_of_an_infinite_pcap_replay() {
        assert_eq!(
            infinite_rx_files("net_pcap0,rx_pcap=/a.pcap,infinite_rx=1"),
            ["/a.pcap"]
        );
        assert_eq!(
            infinite_rx_files("net_pcap1,rx_pcap=/a,rx_pcap=/b,infinite_rx=1"),
            ["/a", "/b"]
        );
        assert!(infinite_rx_files("net_pcap0,rx_pcap=/a.pcap,tx_pcap=/b.pcap").is_empty());
        assert!(infinite_rx_files("net_pcap0,rx_pcap=/a.pcap,infinite_rx=0").is_empty());
        assert!(infinite_rx_files("net_ring0,rx_pcap=/a,infinite_rx=1").is_empty());
        assert!(infinite_rx_files("0000:01:00.0").is_empty());
    }
}
