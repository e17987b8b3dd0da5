use super::{c_string, check, Error, MbufRing, Mempool, Result};
use crate::wire::MacAddr;

/// How to set a port up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_ring_size: u16,
    pub tx_ring_size: u16,
    pub promiscuous: bool,
    /// Set on the device: the largest IP packet taken and sent.
    pub mtu: u16,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_ring_size: 1024,
            tx_ring_size: 1024,
            promiscuous: false,
            mtu: 1500,
        }
    }
}

/// What a device offers for spreading flows over rx queues, and what dsrlb took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RssOffer {
    /// RTE_ETH_RSS_* hash types: the device's, and those asked for that it has (none
    /// with one rx queue).
    pub offered: u64,
    pub granted: u64,
    /// Entries of the redirection table (0: the device has none).
    pub reta_size: u16,
    pub hash_key_size: u8,
    pub max_rx_queues: u16,
}

/// What dsrlb asks to hash on, by name: the 4-tuple of TCP and UDP over IPv4 and IPv6
/// (the device hashes other IP frames by addresses).
pub const RSS_WANTED: [(&str, u64); 6] = [
    ("tcp4", dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV4_TCP as u64),
    ("udp4", dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV4_UDP as u64),
    ("ipv4", dpdk_sys::RTE_ETH_RSS_IPV4 as u64),
    ("tcp6", dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV6_TCP as u64),
    ("udp6", dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV6_UDP as u64),
    ("ipv6", dpdk_sys::RTE_ETH_RSS_IPV6 as u64),
];

impl RssOffer {
    fn new(rx_queues: u16, info: &dpdk_sys::rte_eth_dev_info) -> RssOffer {
        let wanted = u64::from(
            dpdk_sys::RTE_ETH_RSS_IP | dpdk_sys::RTE_ETH_RSS_TCP | dpdk_sys::RTE_ETH_RSS_UDP,
        );
        RssOffer {
            offered: info.flow_type_rss_offloads,
            granted: if rx_queues > 1 {
                wanted & info.flow_type_rss_offloads
            } else {
                0
            },
            reta_size: info.reta_size,
            hash_key_size: info.hash_key_size,
            max_rx_queues: info.max_rx_queues,
        }
    }

    /// The names of `RSS_WANTED` that `types` has, and of those it lacks.
    pub fn names(types: u64) -> (Vec<&'static str>, Vec<&'static str>) {
        let (has, lacks): (Vec<_>, Vec<_>) =
            RSS_WANTED.iter().partition(|(_, bit)| types & bit != 0);
        let names = |v: Vec<&(&'static str, u64)>| v.into_iter().map(|(n, _)| *n).collect();
        (names(has), names(lacks))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Dropped by the NIC for lack of room in the rx ring.
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_no_mbuf: u64,
}

/// An ethdev port. Stopped and closed when dropped.
#[derive(Debug)]
pub struct Port {
    id: u16,
    name: String,
    started: bool,
    /// Transmit queues set up by `configure_and_start` (0 before).
    tx_queues: u16,
}

impl Port {
    /// A port EAL already probed (from `-a PCI` or `--vdev`), by its device name:
    /// the PCI address, or the vdev name before the first comma (`net_ring0`).
    pub fn by_name(name: &str) -> Result<Port> {
        let c_name = c_string("port name", name)?;
        let mut id = 0u16;
        // SAFETY: valid C string and out pointer.
        let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut id) };
        check(
            || format!("no DPDK port named `{name}` (is the device on the EAL command line?)"),
            ret,
        )?;
        Ok(Port {
            id,
            name: name.to_owned(),
            started: false,
            tx_queues: 0,
        })
    }

    /// Hot-plugs a virtual device (`net_pcap0,rx_pcap=...`) and returns its port.
    pub fn probe_vdev(devargs: &str) -> Result<Port> {
        let c_args = c_string("vdev arguments", devargs)?;
        // SAFETY: valid C string.
        let ret = unsafe { dpdk_sys::rte_dev_probe(c_args.as_ptr()) };
        check(|| format!("rte_dev_probe({devargs})"), ret)?;
        Port::by_name(devargs.split(',').next().unwrap_or(devargs))
    }

    /// A port whose queues are rings: what the port transmits lands in `tx[q]`, and
    /// it receives what is enqueued on `rx[q]`. For tests that feed and drain a port.
    pub fn from_rings(name: &str, rx: &[&MbufRing], tx: &[&MbufRing]) -> Result<Port> {
        let c_name = c_string("port name", name)?;
        let mut rx_ptrs: Vec<*mut dpdk_sys::rte_ring> = rx.iter().map(|r| r.as_ptr()).collect();
        let mut tx_ptrs: Vec<*mut dpdk_sys::rte_ring> = tx.iter().map(|r| r.as_ptr()).collect();
        // SAFETY: valid name and ring arrays for the duration of the call; the rings
        // outlive the port by the caller's contract (dropping the port first).
        let ret = unsafe {
            dpdk_sys::rte_eth_from_rings(
                c_name.as_ptr(),
                rx_ptrs.as_mut_ptr(),
                rx_ptrs.len() as u32,
                tx_ptrs.as_mut_ptr(),
                tx_ptrs.len() as u32,
                dpdk_sys::rte_socket_id(),
            )
        };
        if ret < 0 {
            return Err(Error::from_rte_errno(format!("rte_eth_from_rings({name})")));
        }
        Ok(Port {
            id: ret as u16,
            name: name.to_owned(),
            started: false,
            tx_queues: 0,
        })
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn socket(&self) -> i32 {
        // SAFETY: valid port id.
        unsafe { dpdk_sys::rte_eth_dev_socket_id(self.id) }
    }

    /// Whether the link is up, as the driver says now (without waiting). A driver
    /// that cannot tell counts as up.
    pub fn link_up(&self) -> bool {
        let mut link: dpdk_sys::rte_eth_link = Default::default();
        // SAFETY: valid port and out pointer.
        let ret = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.id, &mut link) };
        ret != 0 || link.link_status() != 0
    }

    /// The most rx and tx queues the device offers.
    pub fn max_queues(&self) -> Result<(u16, u16)> {
        let mut info: dpdk_sys::rte_eth_dev_info = Default::default();
        // SAFETY: valid port and out pointer.
        check(
            || format!("rte_eth_dev_info_get(port {})", self.name),
            unsafe { dpdk_sys::rte_eth_dev_info_get(self.id, &mut info) },
        )?;
        Ok((info.max_rx_queues, info.max_tx_queues))
    }

    /// Configures queues (RSS over IP/TCP/UDP when there is more than one rx queue)
    /// and the MTU, and starts the port; says what the device offers for RSS.
    pub fn configure_and_start(&mut self, config: &PortConfig, pool: &Mempool) -> Result<RssOffer> {
        let port = self.id;
        let mut info: dpdk_sys::rte_eth_dev_info = Default::default();
        // SAFETY: valid port and out pointer.
        check(|| format!("rte_eth_dev_info_get(port {port})"), unsafe {
            dpdk_sys::rte_eth_dev_info_get(port, &mut info)
        })?;
        self.refuse_beyond(config, &info)?;
        let rss = RssOffer::new(config.rx_queues, &info);
        let mut conf: dpdk_sys::rte_eth_conf = Default::default();
        conf.rxmode.mtu = u32::from(config.mtu);
        if config.rx_queues > 1 {
            conf.rxmode.mq_mode = dpdk_sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss.granted;
        }
        // SAFETY: valid port and config.
        check(
            || format!("rte_eth_dev_configure(port {})", self.name),
            unsafe {
                dpdk_sys::rte_eth_dev_configure(port, config.rx_queues, config.tx_queues, &conf)
            },
        )?;
        self.set_mtu(config.mtu)?;
        let socket = self.socket().max(0) as u32;
        for q in 0..config.rx_queues {
            // SAFETY: valid port, queue and pool; default queue config.
            check(
                || format!("rte_eth_rx_queue_setup(port {}, queue {q})", self.name),
                unsafe {
                    dpdk_sys::rte_eth_rx_queue_setup(
                        port,
                        q,
                        config.rx_ring_size,
                        socket,
                        std::ptr::null(),
                        pool.as_ptr(),
                    )
                },
            )?;
        }
        for q in 0..config.tx_queues {
            // SAFETY: valid port and queue; default queue config.
            check(
                || format!("rte_eth_tx_queue_setup(port {}, queue {q})", self.name),
                unsafe {
                    dpdk_sys::rte_eth_tx_queue_setup(
                        port,
                        q,
                        config.tx_ring_size,
                        socket,
                        std::ptr::null(),
                    )
                },
            )?;
        }
        // SAFETY: configured port.
        check(
            || format!("rte_eth_dev_start(port {})", self.name),
            unsafe { dpdk_sys::rte_eth_dev_start(port) },
        )?;
        self.started = true;
        self.tx_queues = config.tx_queues;
        if config.promiscuous {
            // SAFETY: started port.
            check(
                || format!("rte_eth_promiscuous_enable(port {})", self.name),
                unsafe { dpdk_sys::rte_eth_promiscuous_enable(port) },
            )?;
        }
        Ok(rss)
    }

    /// Refuses more queues, or a larger MTU, than the device has.
    fn refuse_beyond(&self, config: &PortConfig, info: &dpdk_sys::rte_eth_dev_info) -> Result<()> {
        if config.rx_queues > info.max_rx_queues || config.tx_queues > info.max_tx_queues {
            return Err(Error::new(
                format!(
                    "port {} supports {} rx / {} tx queues, {} rx / {} tx asked",
                    self.name,
                    info.max_rx_queues,
                    info.max_tx_queues,
                    config.rx_queues,
                    config.tx_queues
                ),
                22,
            ));
        }
        if config.mtu > info.max_mtu || config.mtu < info.min_mtu {
            return Err(Error::new(
                format!(
                    "port {}: MTU {} is outside the device's {}..={}",
                    self.name, config.mtu, info.min_mtu, info.max_mtu
                ),
                22,
            ));
        }
        Ok(())
    }

    /// Sets the MTU where the driver has the setting (af_packet sets its interface's;
    /// net_ring has none, and nothing to set).
    fn set_mtu(&self, mtu: u16) -> Result<()> {
        // SAFETY: valid, configured port.
        let ret = unsafe { dpdk_sys::rte_eth_dev_set_mtu(self.id, mtu) };
        if ret == -libc::ENOTSUP {
            return Ok(());
        }
        check(
            || format!("rte_eth_dev_set_mtu(port {}, {mtu})", self.name),
            ret,
        )
        .map(drop)
    }

    pub fn mac_addr(&self) -> Result<MacAddr> {
        let mut addr: dpdk_sys::rte_ether_addr = Default::default();
        // SAFETY: valid port and out pointer.
        check(
            || format!("rte_eth_macaddr_get(port {})", self.name),
            unsafe { dpdk_sys::rte_eth_macaddr_get(self.id, &mut addr) },
        )?;
        Ok(MacAddr(addr.addr_bytes))
    }

    /// Makes `mac` the port's address. Returns false where the driver cannot (some
    /// vdevs): the caller then needs promiscuous mode to receive frames sent to it.
    pub fn set_mac_addr(&mut self, mac: MacAddr) -> Result<bool> {
        let mut addr = dpdk_sys::rte_ether_addr { addr_bytes: mac.0 };
        // SAFETY: valid port and address.
        let ret = unsafe { dpdk_sys::rte_eth_dev_default_mac_addr_set(self.id, &mut addr) };
        if ret == -95 {
            return Ok(false); // ENOTSUP
        }
        check(
            || {
                format!(
                    "rte_eth_dev_default_mac_addr_set(port {}, {mac})",
                    self.name
                )
            },
            ret,
        )?;
        Ok(true)
    }

    /// Receives every multicast frame: IPv6 neighbour solicitations come to
    /// solicited-node groups' MACs. False where the driver cannot (it may pass them
    /// anyway, as af_packet on a veth does).
    pub fn enable_all_multicast(&mut self) -> Result<bool> {
        // SAFETY: started port.
        let ret = unsafe { dpdk_sys::rte_eth_allmulticast_enable(self.id) };
        if ret == -95 {
            return Ok(false); // ENOTSUP
        }
        check(
            || format!("rte_eth_allmulticast_enable(port {})", self.name),
            ret,
        )?;
        Ok(true)
    }

    pub fn enable_promiscuous(&mut self) -> Result<()> {
        // SAFETY: valid port.
        check(
            || format!("rte_eth_promiscuous_enable(port {})", self.name),
            unsafe { dpdk_sys::rte_eth_promiscuous_enable(self.id) },
        )?;
        Ok(())
    }

    pub fn stats(&self) -> Result<PortStats> {
        let mut s: dpdk_sys::rte_eth_stats = Default::default();
        // SAFETY: valid port and out pointer.
        check(
            || format!("rte_eth_stats_get(port {})", self.name),
            unsafe { dpdk_sys::rte_eth_stats_get(self.id, &mut s) },
        )?;
        Ok(PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_no_mbuf: s.rx_nombuf,
        })
    }

    /// Stops the port (flushing what a pcap vdev has written). No other thread may
    /// use its queues any more.
    pub fn stop(&mut self) -> Result<()> {
        if self.started {
            self.started = false;
            // Some drivers free transmitted mbufs only on their next transmit
            // (net_af_xdp reaps its completion ring then): an empty one gives back
            // what the last burst left, so the pool's count at exit is exact.
            for q in 0..self.tx_queues {
                let mut none = [std::ptr::null_mut::<dpdk_sys::rte_mbuf>()];
                // SAFETY: started port and set-up queue, used by no other thread;
                // zero mbufs to send.
                unsafe { dpdk_sys::rte_eth_tx_burst(self.id, q, none.as_mut_ptr(), 0) };
            }
            // SAFETY: started port.
            check(|| format!("rte_eth_dev_stop(port {})", self.name), unsafe {
                dpdk_sys::rte_eth_dev_stop(self.id)
            })?;
        }
        Ok(())
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            log::warn!("{e}");
        }
        // SAFETY: stopped port; closing releases its queues (and a vdev's resources).
        let ret = unsafe { dpdk_sys::rte_eth_dev_close(self.id) };
        if ret < 0 {
            log::warn!(
                "{}",
                Error::new(format!("rte_eth_dev_close(port {})", self.name), ret)
            );
        }
    }
}
