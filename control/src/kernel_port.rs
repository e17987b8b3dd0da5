//! The kernel stays off the data segment. A port driven through af_packet or af_xdp
//! is still a kernel interface: by default its kernel answers ARP there for any of its
//! addresses (the management address included) and accepts IP for them, so frames
//! from the data segment reach the kernel's stack and replies leave by other routes.
//! Before EAL starts dsrlb sets, for each such interface: `arp_ignore = 8` (answer no
//! ARP on it), `rp_filter = 1` (with no route through it, strict reverse-path
//! filtering drops every IPv4 packet arriving on it, counted as
//! TcpExtIPReversePathFilter) and `disable_ipv6 = 1`; and it warns when a route goes
//! through the interface, since that lets IPv4 in again. scripts/data-port.sh does the
//! same (and removes the addresses) for a port set up before dsrlb runs.

use config::Config;
use std::path::PathBuf;

/// The sysctls that keep the kernel off a data interface, and their values.
pub const QUIET: [(&str, &str); 3] = [
    ("ipv4/conf/{}/arp_ignore", "8"),
    ("ipv4/conf/{}/rp_filter", "1"),
    ("ipv6/conf/{}/disable_ipv6", "1"),
];

/// The kernel interface behind a port driven through af_packet or af_xdp.
pub fn kernel_interface(device: &str) -> Option<&str> {
    let mut args = device.split(',');
    let driver = args.next()?;
    if !(driver.starts_with("net_af_packet") || driver.starts_with("net_af_xdp")) {
        return None;
    }
    // An interface name is a file name under /proc/sys and /sys: no path in it.
    args.find_map(|a| a.strip_prefix("iface="))
        .filter(|i| !i.is_empty() && !i.contains('/') && *i != "." && *i != "..")
}

/// Sets the sysctls of every kernel interface of `config` under `root` (/proc/sys/net
/// in production), logging what changed, and warns of routes through one.
pub fn quiet_kernel(config: &Config, root: &std::path::Path, routes: &str) {
    for port in &config.ports {
        let Some(iface) = kernel_interface(&port.device) else {
            continue;
        };
        let mut changed = Vec::new();
        for (path, value) in QUIET {
            let file: PathBuf = root.join(path.replace("{}", iface));
            let now = std::fs::read_to_string(&file).unwrap_or_default();
            if now.trim() == value {
                continue;
            }
            match std::fs::write(&file, value) {
                Ok(()) => changed.push(format!("{} {} -> {value}", file.display(), now.trim())),
                Err(e) => log::warn!(
                    "data port {iface}: cannot set {} to {value} ({e}): the kernel may answer on the data segment",
                    file.display()
                ),
            }
        }
        if !changed.is_empty() {
            log::info!(
                "data port {iface}: the kernel now ignores it ({})",
                changed.join(", ")
            );
        }
        // The kernel filters with the larger of "all" and the interface's value.
        let all = std::fs::read_to_string(root.join("ipv4/conf/all/rp_filter")).unwrap_or_default();
        if all.trim() == "2" {
            log::warn!(
                "data port {iface}: net.ipv4.conf.all.rp_filter = 2 makes its reverse-path filter loose: IPv4 from the data segment still reaches the kernel; set it to 0 or 1"
            );
        }
        if routes_through(routes, iface) {
            log::warn!(
                "data port {iface} has a kernel route (an address on it?): IPv4 from the data segment still reaches the kernel; remove it (scripts/data-port.sh {iface})"
            );
        }
    }
}

/// Whether /proc/net/route (`routes`) has a route out of `iface`.
fn routes_through(routes: &str, iface: &str) -> bool {
    routes
        .lines()
        .skip(1)
        .any(|line| line.split_whitespace().next() == Some(iface))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_interfaces_are_those_of_af_packet_and_af_xdp() {
        assert_eq!(
            kernel_interface("net_af_packet0,iface=data0"),
            Some("data0")
        );
        assert_eq!(
            kernel_interface("net_af_xdp0,iface=eth1,start_queue=0"),
            Some("eth1")
        );
        assert_eq!(kernel_interface("net_pcap0,iface=eth0"), None);
        assert_eq!(kernel_interface("0000:01:00.0"), None);
        assert_eq!(kernel_interface("net_af_packet0,iface=../all"), None);
        assert_eq!(kernel_interface("net_af_packet0,iface=.."), None);
        assert_eq!(
            kernel_interface("net_af_packet0,iface=eth0.100"),
            Some("eth0.100")
        );
    }

    #[test]
    fn sets_what_differs_and_sees_routes() {
        let root = std::env::temp_dir().join(format!("dsrlb-sysctl-{}", std::process::id()));
        for (path, _) in QUIET {
            let file = root.join(path.replace("{}", "data0"));
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, "0\n").unwrap();
        }
        let text = "[appliance]\naddress = \"10.99.0.2\"\n[dataplane]\nworker_lcores = [1]\n\
                    [[ports]]\nname = \"d\"\ndevice = \"net_af_packet0,iface=data0\"\n";
        let config = Config::from_toml(text, "t").unwrap();
        quiet_kernel(&config, &root, "Iface\tDestination\n");
        for (path, value) in QUIET {
            let file = root.join(path.replace("{}", "data0"));
            assert_eq!(std::fs::read_to_string(file).unwrap(), value);
        }
        let routes =
            "Iface\tDestination\tGateway\nmgmt0\t00016300\t00000000\ndata0\t00006300\t00000000\n";
        assert!(routes_through(routes, "data0"));
        assert!(!routes_through(routes, "eth0"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
