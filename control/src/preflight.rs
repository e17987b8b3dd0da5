//! Checks of a valid config against what DPDK would refuse only at port setup,
//! done by `dsrlb check` and before EAL starts: net_pcap (DPDK 22.11) frees its
//! replay ring twice when an `infinite_rx` queue setup runs out of mbufs, and the
//! process then crashes while closing the port.

use config::{Config, ConfigError, KeyError};
use std::path::Path;

/// Everything `config` asks of its devices that cannot work, by key.
pub fn check(config: &Config, source: &Path) -> Result<(), ConfigError> {
    let mut errors = Vec::new();
    let mut replayed = 0usize;
    let mut files = Vec::new();
    for (i, port) in config.ports.iter().enumerate() {
        for file in infinite_rx_files(&port.device) {
            match std::fs::File::open(file).and_then(dataplane::pcap::count) {
                Ok(frames) => {
                    replayed += frames;
                    files.push(format!("{file} ({frames} frames)"));
                }
                Err(e) => errors.push(KeyError {
                    key: format!("ports[{i}].device"),
                    message: format!("rx_pcap {file}: {e}"),
                }),
            }
        }
    }
    let mbufs = config.dataplane.mbufs as usize;
    if replayed >= mbufs {
        errors.push(KeyError {
            key: "dataplane.mbufs".into(),
            message: format!(
                "{mbufs} mbufs cannot hold the {replayed} frames that infinite_rx keeps \
                 in mbufs ({}) and leave room for traffic: give more than {replayed}",
                files.join(", ")
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

/// The `rx_pcap` files of a net_pcap vdev replaying them forever (`infinite_rx=1`).
fn infinite_rx_files(device: &str) -> Vec<&str> {
    let mut args = device.split(',');
    let is_pcap = args.next().is_some_and(|name| name.starts_with("net_pcap"));
    let args: Vec<(&str, &str)> = args.filter_map(|a| a.split_once('=')).collect();
    if !is_pcap || !args.contains(&("infinite_rx", "1")) {
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
