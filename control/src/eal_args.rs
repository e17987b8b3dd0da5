//! The EAL command line a config implies.

use config::Config;

pub fn eal_args(config: &Config) -> Vec<String> {
    let d = &config.dataplane;
    let mut args = lcore_args(d);
    args.extend([format!("--file-prefix={}", d.file_prefix)]);
    if d.hugepages {
        // Nothing left in /dev/hugepages or /var/run/dpdk when dsrlb exits.
        args.push("--in-memory".to_owned());
    } else {
        args.extend([
            "--no-huge".to_owned(),
            "--no-shconf".to_owned(),
            "-m".to_owned(),
            d.memory_mb.to_string(),
        ]);
    }
    for port in &config.ports {
        if port.is_pci() {
            args.extend(["-a".to_owned(), port.device.clone()]);
        } else {
            args.push(format!("--vdev={}", port.device));
        }
    }
    if !config.ports.iter().any(|p| p.is_pci()) {
        args.push("--no-pci".to_owned());
    }
    args.extend(d.eal_args.iter().cloned());
    args
}

/// `-l` with the lcores, each on the CPU of its number; with `worker_cpus`,
/// `--lcores` placing each worker lcore on its CPU (several may share one).
fn lcore_args(d: &config::Dataplane) -> Vec<String> {
    let list = if d.worker_cpus.is_empty() {
        std::iter::once(d.main_lcore)
            .chain(d.worker_lcores.iter().copied())
            .map(|lcore| lcore.to_string())
            .collect::<Vec<_>>()
    } else {
        std::iter::once((d.main_lcore, d.main_lcore))
            .chain(
                d.worker_lcores
                    .iter()
                    .copied()
                    .zip(d.worker_cpus.iter().copied()),
            )
            .map(|(lcore, cpu)| format!("{lcore}@{cpu}"))
            .collect()
    };
    let flag = if d.worker_cpus.is_empty() {
        "-l"
    } else {
        "--lcores"
    };
    vec![
        flag.to_owned(),
        list.join(","),
        "--main-lcore".to_owned(),
        d.main_lcore.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str, device: &str) -> Config {
        let text = format!(
            "[appliance]\naddress = \"10.99.0.2\"\n[dataplane]\nworker_lcores = [1]\n{extra}\n[[ports]]\nname = \"p\"\ndevice = \"{device}\"\n"
        );
        Config::from_toml(&text, "t").unwrap()
    }

    #[test]
    fn vdev_without_hugepages() {
        let args = eal_args(&config(
            "hugepages = false\nmemory_mb = 256",
            "net_af_packet0,iface=veth0",
        ));
        assert_eq!(
            args,
            [
                "-l",
                "0,1",
                "--main-lcore",
                "0",
                "--file-prefix=dsrlb",
                "--no-huge",
                "--no-shconf",
                "-m",
                "256",
                "--vdev=net_af_packet0,iface=veth0",
                "--no-pci"
            ]
        );
    }

    #[test]
    fn pci_with_hugepages_and_extra_args() {
        let args = eal_args(&config(
            "eal_args = [\"--log-level=*:debug\"]",
            "0000:01:00.0",
        ));
        assert_eq!(
            args,
            [
                "-l",
                "0,1",
                "--main-lcore",
                "0",
                "--file-prefix=dsrlb",
                "--in-memory",
                "-a",
                "0000:01:00.0",
                "--log-level=*:debug"
            ]
        );
    }

    #[test]
    fn workers_placed_on_cpus_share_them() {
        let text = "[appliance]\naddress = \"10.99.0.2\"\n[dataplane]\nworker_lcores = [1, 2]\nworker_cpus = [1, 1]\n[[ports]]\nname = \"p\"\ndevice = \"net_ring0\"\nqueues = 2\n";
        let args = eal_args(&Config::from_toml(text, "t").unwrap());
        assert_eq!(args[..4], ["--lcores", "0@0,1@1,2@1", "--main-lcore", "0"]);
    }
}
