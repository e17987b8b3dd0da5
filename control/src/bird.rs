//! BIRD 2 for BGP scale-out: its configuration, written from dsrlb's own file (one
//! source of truth: `dsrlb bird-config`), and its control socket, through which dsrlb
//! enables a VIP's route while it is ready to serve the VIP and disables it otherwise.
//!
//! Each VIP is a static protocol of its own, `route VIP/32 via "<tap>"`, starting
//! disabled: BIRD announces it only once dsrlb has enabled it, and only while the tap
//! exists, which dsrlb holds open; when dsrlb ends, however it ends, the kernel removes
//! the tap and BIRD withdraws every VIP. The export filter sets the next hop to the
//! appliance's real address on the data segment, which the router resolves by ARP,
//! answered by dsrlb. Nothing is exported to the kernel: BIRD never touches routing
//! on the appliance, and never the data port.

use config::{Bgp, Config};
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a command to BIRD may take before dsrlb gives up on it (and retries at
/// its next sync): BIRD answers in milliseconds.
const BIRD_TIMEOUT: Duration = Duration::from_millis(200);

/// The static protocol that holds `vip`'s route.
pub fn protocol(vip: Ipv4Addr) -> String {
    let [a, b, c, d] = vip.octets();
    format!("vip_{a}_{b}_{c}_{d}")
}

/// bird.conf for `config`'s [bgp] section; None without one. `source` names the file
/// it came from, in the header.
pub fn config_text(config: &Config, source: &Path) -> Option<String> {
    let bgp = config.bgp.as_ref()?;
    let vips = config.vips_v4();
    let next_hop = bgp.next_hop.unwrap_or(config.appliance.address);
    let mut out = format!(
        "# Written by `dsrlb bird-config --config {}`: edit that file, not this one.\n\
         # BIRD announces each VIP while dsrlb enables it, next hop {next_hop}.\n\
         log stderr all;\n\
         router id {};\n\n\
         protocol device {{\n  scan time 10;\n}}\n\n",
        source.display(),
        bgp.router_id.unwrap_or(bgp.local_address),
    );
    for vip in &vips {
        out += &format!(
            "protocol static {} {{\n  ipv4;\n  disabled;\n  route {vip}/32 via \"{}\";\n}}\n\n",
            protocol(*vip),
            bgp.tap
        );
    }
    let set = vips
        .iter()
        .map(|v| format!("{v}/32"))
        .collect::<Vec<_>>()
        .join(", ");
    out += &format!(
        "filter dsrlb_vips {{\n  if net ~ [ {set} ] then {{\n    bgp_next_hop = {next_hop};\n    accept;\n  }}\n  reject;\n}}\n\n"
    );
    out += &session(bgp);
    Some(out)
}

/// The BGP session to the router, with BFD if asked for.
fn session(bgp: &Bgp) -> String {
    let bfd = if bgp.bfd {
        format!(
            "protocol bfd {{\n  neighbor {} local {};\n  interface \"*\" {{\n    min rx interval {ms} ms;\n    min tx interval {ms} ms;\n    multiplier {};\n  }};\n}}\n\n",
            bgp.peer_address,
            bgp.local_address,
            bgp.bfd_multiplier,
            ms = bgp.bfd_interval_ms,
        )
    } else {
        String::new()
    };
    format!(
        "{bfd}protocol bgp uplink {{\n  local {} as {};\n  neighbor {} as {};\n  hold time {};\n  keepalive time {};\n  connect retry time 1;\n  error wait time 1, 5;\n  bfd {};\n  ipv4 {{\n    import none;\n    export filter dsrlb_vips;\n  }};\n}}\n",
        bgp.local_address,
        bgp.local_as,
        bgp.peer_address,
        bgp.peer_as,
        bgp.hold_time_secs,
        (bgp.hold_time_secs / 3).max(1),
        if bgp.bfd { "on" } else { "off" },
    )
}

/// BIRD's control socket.
#[derive(Debug, Clone)]
pub struct BirdControl {
    path: PathBuf,
}

impl BirdControl {
    pub fn new(path: &Path) -> BirdControl {
        BirdControl {
            path: path.to_owned(),
        }
    }

    /// Sends one command and reads BIRD's answer to its end: its text, or an error
    /// (BIRD unreachable, or a reply code of 8xxx/9xxx).
    pub fn command(&self, command: &str) -> Result<String, String> {
        let shown = self.path.display();
        let stream =
            UnixStream::connect(&self.path).map_err(|e| format!("BIRD at {shown}: {e}"))?;
        stream
            .set_read_timeout(Some(BIRD_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(BIRD_TIMEOUT)))
            .map_err(|e| format!("BIRD at {shown}: {e}"))?;
        let mut reader = BufReader::new(&stream);
        // The greeting: "0001 BIRD 2.0.12 ready."
        read_reply(&mut reader).map_err(|e| format!("BIRD at {shown}: {e}"))?;
        (&stream)
            .write_all(format!("{command}\n").as_bytes())
            .map_err(|e| format!("BIRD at {shown}: {e}"))?;
        read_reply(&mut reader).map_err(|e| format!("BIRD at {shown}, `{command}`: {e}"))
    }
}

/// One reply: lines "NNNN-text" or " text" go on, "NNNN text" ends it. A code of
/// 8xxx or 9xxx is an error.
fn read_reply(reader: &mut impl BufRead) -> Result<String, String> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed mid-reply".to_owned());
        }
        let bytes = line.as_bytes();
        let coded = bytes.len() >= 5 && bytes[..4].iter().all(u8::is_ascii_digit);
        text += line.get(if coded { 5 } else { 1 }..).unwrap_or("");
        if coded && bytes[4] == b' ' {
            return match bytes[0] {
                b'8' | b'9' => Err(text.trim_end().to_owned()),
                _ => Ok(text),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[appliance]
address = "10.99.0.2"
[[ports]]
name = "data"
device = "net_ring0"
[bgp]
local_as = 65001
peer_as = 65000
peer_address = "10.99.1.254"
local_address = "10.99.1.2"
[[services]]
vip = "10.99.0.100"
port = 80
protocol = "tcp"
targets = [{ address = "10.99.0.11" }]
[[services]]
vip = "10.99.0.100"
port = 53
protocol = "udp"
targets = [{ address = "10.99.0.11" }]
[[services]]
vip = "10.99.0.101"
port = 80
protocol = "tcp"
targets = [{ address = "10.99.0.12" }]
"#;

    #[test]
    fn one_disabled_static_protocol_a_vip_and_a_session_with_bfd() {
        let config = Config::from_toml(CONFIG, "t").unwrap();
        let text = config_text(&config, Path::new("/etc/dsrlb/dsrlb.toml")).unwrap();
        assert_eq!(text.matches("protocol static").count(), 2, "one per VIP");
        assert!(text.contains(
            "protocol static vip_10_99_0_100 {\n  ipv4;\n  disabled;\n  route 10.99.0.100/32 via \"dsrlb-vips\";\n}"
        ));
        assert!(text.contains("if net ~ [ 10.99.0.100/32, 10.99.0.101/32 ]"));
        assert!(text.contains("bgp_next_hop = 10.99.0.2;"));
        assert!(text.contains("router id 10.99.1.2;"));
        assert!(text.contains("local 10.99.1.2 as 65001;\n  neighbor 10.99.1.254 as 65000;"));
        assert!(text.contains("hold time 3;") && text.contains("bfd on;"));
        assert!(text.contains("min rx interval 100 ms;") && text.contains("multiplier 3;"));
        assert!(
            !text.contains("protocol kernel"),
            "nothing exported to the kernel"
        );
        let no_bgp = Config::from_toml(&CONFIG.replace("[bgp]", "[x]"), "t");
        assert!(no_bgp.is_err(), "unknown section refused");
    }

    #[test]
    fn bird_itself_parses_what_is_written() {
        let config = Config::from_toml(CONFIG, "t").unwrap();
        let text = config_text(&config, Path::new("dsrlb.toml")).unwrap();
        let file = std::env::temp_dir().join(format!("dsrlb-bird-{}.conf", std::process::id()));
        std::fs::write(&file, &text).unwrap();
        // bird2 is one of scripts/setup.sh's packages.
        let out = std::process::Command::new("bird")
            .arg("-p")
            .arg("-c")
            .arg(&file)
            .output();
        std::fs::remove_file(&file).ok();
        let out = out.expect("bird (Debian's bird2) runs");
        assert!(
            out.status.success(),
            "{}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn replies_are_read_to_their_last_line_and_errors_told_apart() {
        let ok = "0001 BIRD 2.0.12 ready.\n";
        assert_eq!(
            read_reply(&mut ok.as_bytes()).unwrap(),
            "BIRD 2.0.12 ready.\n"
        );
        let multi = "1002-vip_10_99_0_100 Static master4 up\n more\n0000 \n";
        assert_eq!(
            read_reply(&mut multi.as_bytes()).unwrap(),
            "vip_10_99_0_100 Static master4 up\nmore\n\n"
        );
        let error = "8003 No protocols match\n";
        assert_eq!(
            read_reply(&mut error.as_bytes()).unwrap_err(),
            "No protocols match"
        );
        assert!(read_reply(&mut "1002-cut".as_bytes()).is_err());
    }
}
