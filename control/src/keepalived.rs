//! keepalived for an active/standby pair: its configuration, written from dsrlb's own
//! file (one source of truth: `dsrlb keepalived-config`), and the two things through
//! which dsrlb and keepalived talk, neither of them a script:
//! - keepalived -> dsrlb: `vrrp_notify_fifo`, one line per state change
//!   (`INSTANCE "dsrlb" MASTER 150`), read by `crate::pair`;
//! - dsrlb -> keepalived: a `track_file` holding 0 while dsrlb can serve, minus
//!   `ha.degraded_penalty` while some VIP cannot be served, and FAULT_VALUE while
//!   none can (keepalived then leaves MASTER at once, advertising priority 0); and
//!   `track_interface` on the tap dsrlb holds, which the kernel removes however
//!   dsrlb ends, so a dead dsrlb yields within milliseconds.
//!
//! VRRP runs version 3, unicast, on the management interface only; keepalived never
//! touches the data port. It moves one management address (`ha.address`), because
//! VRRP version 3 needs an address to advertise; the VIPs are dsrlb's to announce.

use config::Config;
use std::path::Path;

/// The VRRP instance's name, as the notify FIFO's lines give it.
pub const VRRP_INSTANCE: &str = "dsrlb";

/// The track file's value that sends keepalived to FAULT with a weight of 1
/// (keepalived: a result below -253).
pub const FAULT_VALUE: i32 = -254;

/// keepalived.conf for `config`'s [ha] section; None without one. `source` names
/// the file it came from, in the header.
pub fn config_text(config: &Config, source: &Path) -> Option<String> {
    let ha = config.ha.as_ref()?;
    let interval = format!(
        "{}.{:02}",
        ha.advert_interval_ms / 1000,
        ha.advert_interval_ms % 1000 / 10
    );
    Some(format!(
        "# Written by `dsrlb keepalived-config --config {source}`: edit that file, not this one.\n\
         # keepalived elects the active appliance; dsrlb follows it through the notify FIFO\n\
         # and answers ARP for the VIPs only while active.\n\
         global_defs {{\n\
         \x20 router_id dsrlb-{local}\n\
         \x20 vrrp_notify_fifo {fifo}\n\
         \x20 dynamic_interfaces\n\
         }}\n\n\
         # dsrlb's health: 0 serving, -{penalty} with a VIP it cannot serve, {fault} none.\n\
         vrrp_track_file dsrlb_health {{\n\
         \x20 file {track}\n\
         \x20 weight 1\n\
         }}\n\n\
         vrrp_instance {instance} {{\n\
         \x20 state BACKUP\n\
         \x20 interface {interface}\n\
         \x20 virtual_router_id {vrid}\n\
         \x20 priority {priority}\n\
         \x20 advert_int {interval}\n\
         \x20 version 3\n\
         \x20 unicast_src_ip {local}\n\
         \x20 unicast_peer {{\n\
         \x20   {peer}\n\
         \x20 }}\n\
         \x20 virtual_ipaddress {{\n\
         \x20   {address}/32 dev {interface}\n\
         \x20 }}\n\
         \x20 # dsrlb holds this tap while it runs: gone, keepalived yields at once.\n\
         \x20 track_interface {{\n\
         \x20   {tap}\n\
         \x20 }}\n\
         \x20 track_file {{\n\
         \x20   dsrlb_health\n\
         \x20 }}\n\
         {preempt}\
         }}\n",
        source = source.display(),
        local = ha.local_address,
        fifo = ha.notify_fifo.display(),
        penalty = ha.degraded_penalty,
        fault = FAULT_VALUE,
        track = ha.track_file.display(),
        instance = VRRP_INSTANCE,
        interface = ha.interface,
        vrid = ha.virtual_router_id,
        priority = ha.priority,
        peer = ha.peer_address,
        address = ha.address,
        tap = ha.tap,
        preempt = if ha.preempt {
            ""
        } else {
            "  # No fail-back: the active stays active until it fails.\n  nopreempt\n"
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HA: &str = r#"
[appliance]
address = "10.99.0.2"

[[ports]]
name = "data"
device = "net_null0"

[ha]
interface = "mgmt0"
local_address = "10.99.1.2"
peer_address = "10.99.1.3"
address = "10.99.1.10"
virtual_router_id = 51
priority = 150
advert_interval_ms = 50

[[services]]
vip = "10.99.0.100"
port = 80
protocol = "tcp"
targets = [{ address = "10.99.0.11" }]
"#;

    #[test]
    fn keepalived_config_is_written_from_the_ha_section() {
        let config = Config::from_toml(HA, "t").unwrap();
        let text = config_text(&config, Path::new("/etc/dsrlb/lb1.toml")).unwrap();
        for line in [
            "vrrp_notify_fifo /run/dsrlb/keepalived.fifo",
            "file /run/dsrlb/ha-health",
            "vrrp_instance dsrlb {",
            "interface mgmt0",
            "virtual_router_id 51",
            "priority 150",
            "advert_int 0.05",
            "version 3",
            "unicast_src_ip 10.99.1.2",
            "10.99.1.3",
            "10.99.1.10/32 dev mgmt0",
            "dsrlb-ha",
        ] {
            assert!(
                text.lines().any(|l| l.trim() == line),
                "no line `{line}` in:\n{text}"
            );
        }
        assert!(!text.contains("nopreempt"));
        // keepalived ignores keywords that share a line: one a line.
        assert!(text.lines().all(|l| l.split_whitespace().count() <= 3
            || l.starts_with('#')
            || l.trim_start().starts_with('#')));
        let mut stay = config.clone();
        if let Some(ha) = stay.ha.as_mut() {
            ha.preempt = false;
        }
        let text = config_text(&stay, Path::new("x.toml")).unwrap();
        assert!(text.lines().any(|l| l.trim() == "nopreempt"));
        let mut single = config;
        single.ha = None;
        assert!(config_text(&single, Path::new("x.toml")).is_none());
    }
}
