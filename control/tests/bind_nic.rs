//! scripts/bind-nic.sh on this machine's real devices, changing nothing: `--status`
//! parsed against sysfs and iproute2, binding the device that carries the default
//! route refused, and the dry runs of a forced bind (IOMMU refusal, no-IOMMU mode,
//! --persist) printing what they would do. The device's driver is the same after.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bind-nic.sh")
}

/// (exit code, stdout, stderr) of bind-nic.sh `args`.
fn bind_nic(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(script()).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// The interface the default route leaves by, and its PCI device and driver.
fn default_route_nic() -> (String, String, String) {
    let route = Command::new("ip")
        .args(["route", "show", "default"])
        .output()
        .unwrap();
    let route = String::from_utf8_lossy(&route.stdout).into_owned();
    let iface = route
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .unwrap_or_else(|| panic!("no default route: {route}"))
        .to_owned();
    let device =
        std::fs::canonicalize(format!("/sys/class/net/{iface}/device")).unwrap_or_else(|e| {
            panic!("{iface} has no device behind it ({e}): this test needs a PCI NIC")
        });
    let pci = device
        .ancestors()
        .filter_map(|p| p.file_name()?.to_str())
        .find(|n| n.len() == 12 && n.as_bytes()[4] == b':' && n.as_bytes()[10] == b'.')
        .unwrap_or_else(|| panic!("{iface} ({}) is not on PCI", device.display()))
        .to_owned();
    (iface, pci.clone(), driver(&pci))
}

fn driver(pci: &str) -> String {
    let link = std::fs::read_link(format!("/sys/bus/pci/devices/{pci}/driver")).unwrap();
    link.file_name().unwrap().to_string_lossy().into_owned()
}

fn iommu_groups() -> usize {
    std::fs::read_dir("/sys/kernel/iommu_groups").map_or(0, |d| d.count())
}

#[test]
fn status_lists_the_nics_and_binding_the_one_with_the_default_route_is_refused() {
    let (iface, pci, before) = default_route_nic();

    let (code, out, err) = bind_nic(&["--status"]);
    assert_eq!(code, 0, "{err}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "PCI",
            "VENDOR:DEV",
            "DRIVER",
            "IFACE",
            "STATE",
            "ADDRESSES",
            "DEFAULT_ROUTE",
            "BINDABLE"
        ]
    );
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.split_whitespace().nth(3) == Some(iface.as_str()))
        .unwrap_or_else(|| panic!("no row for {iface}:\n{out}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        (row[0], row[2], row[6]),
        (pci.as_str(), before.as_str(), "yes"),
        "{out}"
    );
    let addr = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", &iface])
        .output()
        .unwrap();
    let addr = String::from_utf8_lossy(&addr.stdout);
    let first = addr.split_whitespace().nth(3).unwrap();
    assert!(row[5].contains(first), "{first} in {row:?}");
    assert_eq!(row[7], "no:", "{row:?}");
    let iommu = out.lines().find(|l| l.starts_with("IOMMU:")).unwrap();
    assert_eq!(iommu.contains("no groups"), iommu_groups() == 0, "{iommu}");

    // Refused by interface name and by PCI address, naming why and the way out.
    for device in [iface.as_str(), pci.as_str()] {
        let (code, _, err) = bind_nic(&["bind", device]);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("refusing to bind")
                && err.contains(&format!("{iface} carries the default route"))
                && err.contains("--force"),
            "{err}"
        );
    }

    // Forced, as dry runs: without IOMMU groups refused unless no-IOMMU mode is asked
    // for, with a warning; --persist goes through driverctl.
    let (code, out, err) = bind_nic(&["bind", &iface, "--force", "--dry-run"]);
    if iommu_groups() == 0 {
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            err.contains("no IOMMU groups") && err.contains("intel_iommu=on"),
            "{err}"
        );
    } else {
        assert_eq!(code, 0, "{err}");
    }
    let forced = ["bind", &iface, "--force", "--unsafe-noiommu", "--dry-run"];
    let (code, out, err) = bind_nic(&forced);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("would run: dpdk-devbind.py -b vfio-pci {pci}")),
        "{out}"
    );
    assert!(out.contains("would be bound to vfio-pci"), "{out}");
    if iommu_groups() == 0 {
        assert!(err.contains("WARNING: no-IOMMU mode"), "{err}");
    }
    let (code, out, err) = bind_nic(&[&forced[..], &["--persist"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("would run: driverctl set-override {pci} vfio-pci")),
        "{out}"
    );

    let (code, out, _) = bind_nic(&["restore", &pci, "--dry-run"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("on its kernel driver {before} already")),
        "{out}"
    );
    let (code, _, err) = bind_nic(&["bind", "no-such-nic"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no interface or PCI device 'no-such-nic'"),
        "{err}"
    );

    assert_eq!(driver(&pci), before, "nothing was rebound");
}
