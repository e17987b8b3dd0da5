//! Every counter a worker keeps and every reason it drops a frame, each declared once
//! here: its name (the key in `dsrlb show stats --json`, the label in reports), what
//! kind of figure it is, its metric and its help. The worker's cells, their plain
//! copy, the poll's tally and everything that reports them (`dsrlb show`, the exit
//! report, the Prometheus metrics) are derived from these two tables.

use std::sync::atomic::{AtomicU64, Ordering};

/// What kind of figure a counter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only grows (a Prometheus `counter`).
    Total,
    /// Goes up and down (a Prometheus `gauge`).
    Level,
}

impl Kind {
    /// Its Prometheus TYPE.
    pub fn prometheus(self) -> &'static str {
        match self {
            Kind::Total => "counter",
            Kind::Level => "gauge",
        }
    }
}

/// One worker counter as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterSpec {
    /// Its key in `dsrlb show stats --json` (and its field in `Counts`).
    pub name: &'static str,
    pub kind: Kind,
    /// Its Prometheus family, labelled by lcore, port and queue.
    pub metric: &'static str,
    pub help: &'static str,
    /// Its word in the one-line summary (the periodic log line, the exit report), if
    /// the summary shows it.
    pub summary: Option<&'static str>,
    /// Its column in `dsrlb show stats`' table (and the exit report's), if any.
    pub column: Option<&'static str>,
}

/// How the worker brings a counter up to date: `add`s what each poll counted, or
/// `set`s it from the flow table's own figures (and the capacity once, at start).
macro_rules! publish {
    (add, $cell:expr, $n:expr) => {
        add($cell, $n)
    };
    (set, $cell:expr, $n:expr) => {};
}

macro_rules! counters {
    ($($field:ident: $kind:ident $how:ident, $summary:expr, $column:expr, $metric:literal, $help:literal;)*) => {
        /// A worker's counters as it keeps them: written by that worker alone (plain
        /// load + store, no read-modify-write), read by the control thread.
        #[derive(Debug, Default)]
        pub struct CounterCells {
            $(#[doc = $help] pub $field: AtomicU64,)*
        }

        /// A plain copy of a worker's counters; also what one poll counts before it
        /// publishes (`CounterCells::add`).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct Counts {
            $(#[doc = $help] pub $field: u64,)*
        }

        /// Every worker counter, in the order reports show them.
        pub const COUNTERS: &[CounterSpec] = &[$(CounterSpec {
            name: stringify!($field),
            kind: Kind::$kind,
            metric: $metric,
            help: $help,
            summary: $summary,
            column: $column,
        },)*];

        impl CounterCells {
            pub fn read(&self) -> Counts {
                Counts { $($field: self.$field.load(Ordering::Relaxed),)* }
            }

            /// Adds what one poll counted to the counters the worker adds to.
            #[inline(always)]
            pub fn add(&self, poll: &Counts) {
                $(publish!($how, &self.$field, poll.$field);)*
            }
        }

        impl Counts {
            /// Each counter's value, in `COUNTERS`' order.
            pub fn values(&self) -> [u64; COUNTER_COUNT] {
                [$(self.$field,)*]
            }
        }
    };
}

counters! {
    rx_packets: Total add, Some("rx"), Some("RX"), "dsrlb_worker_rx_packets_total",
        "Frames received by the worker.";
    rx_bytes: Total add, None, None, "dsrlb_worker_rx_bytes_total",
        "Bytes received by the worker.";
    forwarded: Total add, Some("forwarded"), Some("FORWARDED"), "dsrlb_worker_forwarded_packets_total",
        "Frames forwarded to targets.";
    forwarded_bytes: Total add, None, None, "dsrlb_worker_forwarded_bytes_total",
        "Bytes forwarded to targets.";
    replied: Total add, Some("replied"), Some("REPLIED"), "dsrlb_worker_replied_packets_total",
        "ARP and ICMP echo replies sent.";
    punted: Total add, Some("punted"), Some("PUNTED"), "dsrlb_worker_punted_packets_total",
        "Frames handed to the control thread.";
    punt_overflow: Total add, None, None, "dsrlb_worker_punt_overflow_packets_total",
        "Frames for the control thread dropped because its queue was full.";
    injected: Total add, None, None, "dsrlb_worker_injected_packets_total",
        "Frames sent for the control thread (ARP), counted in tx_packets too.";
    tx_packets: Total add, Some("tx"), Some("TX"), "dsrlb_worker_tx_packets_total",
        "Frames sent by the worker.";
    tx_dropped: Total add, Some("tx_dropped"), Some("TX_FULL"), "dsrlb_worker_tx_dropped_packets_total",
        "Frames the driver did not take (tx ring full), freed.";
    bursts: Total add, None, None, "dsrlb_worker_bursts_total",
        "Bursts of received frames the worker decided: rx_packets_total / bursts_total near the burst size (32) means it is saturated.";

    flows_live: Level set, Some("flows"), Some("FLOWS"), "dsrlb_flow_table_entries",
        "Live entries in the worker's flow table (IPv4 and IPv6).";
    flow_capacity: Level set, None, Some("CAPACITY"), "dsrlb_flow_table_capacity",
        "Entries the worker's flow table holds (IPv4 and IPv6).";
    flows_inserted: Total set, None, None, "dsrlb_flow_table_inserted_total",
        "Flows inserted.";
    flows_expired: Total set, None, None, "dsrlb_flow_table_expired_total",
        "Flows removed after their idle timeout.";
    flows_evicted: Total set, None, Some("EVICTED"), "dsrlb_flow_table_evictions_total",
        "Flows idle a second or more evicted to make room for a new one.";
    flow_guard_refused: Total set, None, Some("GUARD"), "dsrlb_flow_guard_refused_total",
        "New flows refused by the new-flow rate guard.";
    flow_bucket_full: Total set, None, Some("FULL"), "dsrlb_flow_bucket_full_total",
        "New flows not remembered: their bucket held only flows active within the last second.";
    fragments_recorded: Total set, None, None, "dsrlb_fragment_datagrams_total",
        "Fragmented datagrams whose first fragment's target was recorded for the later ones.";
    fragments_evicted: Total set, None, None, "dsrlb_fragment_evictions_total",
        "Fragmented datagrams forgotten before their timeout to make room for a new one.";
    fragments_held: Total add, None, None, "dsrlb_fragments_held_total",
        "Later fragments held until their datagram's first fragment came.";
}

/// How many counters `COUNTERS` declares.
pub const COUNTER_COUNT: usize = COUNTERS.len();

/// Stores `counter + n`: one writer, so no atomic read-modify-write is needed.
#[inline(always)]
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

macro_rules! drop_reasons {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal;)*) => {
        /// Why a frame was dropped. Every drop has one, and each is counted.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $($(#[doc = $doc])* $variant,)*
        }

        impl DropReason {
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            pub const COUNT: usize = Self::ALL.len();

            /// Counter label: stable, for metrics and `show stats`.
            pub fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)*
                }
            }
        }
    };
}

drop_reasons! {
    /// Destination MAC is not this port's (nor broadcast, for ARP).
    NotOurMac = "not_our_mac";
    /// IPv4 or IPv6 to an address that is neither a VIP nor a real address.
    NotOurAddress = "not_our_address";
    /// Shorter than its headers say.
    Truncated = "truncated";
    /// Two or more VLAN tags (802.1ad, stacked 802.1Q).
    StackedVlan = "stacked_vlan";
    /// IPv6 with hop-by-hop options anywhere but right after the fixed header.
    Ipv6HopByHopNotFirst = "ipv6_hop_by_hop_not_first";
    /// IPv6 whose header chain ends in "no next header": nothing to balance on.
    Ipv6NoNextHeader = "ipv6_no_next_header";
    /// IPv6 with more extension headers than `wire::ipv6ext::MAX_HEADERS`.
    Ipv6ChainTooLong = "ipv6_chain_too_long";
    UnknownEthertype = "unknown_ethertype";
    BadIpHeader = "bad_ip_header";
    /// An IPv4 or IPv6 fragment dsrlb does not balance: to the real address, of a
    /// protocol other than TCP or UDP (an ICMP echo in fragments), or of an IPv6
    /// datagram whose fragmentable part begins with an extension header.
    Fragment = "fragment";
    /// A later fragment whose first had not come, dropped: the worker's hold
    /// (`flows.fragments_held`) was full.
    FragmentHoldFull = "fragment_hold_full";
    /// A later fragment held for its first fragment, which did not come within
    /// `flows.fragment_timeout_ms`.
    FragmentTimeout = "fragment_timeout";
    /// IPv4 or IPv6 to a VIP with a protocol other than TCP, UDP or ICMP (ICMPv6).
    UnknownProtocol = "unknown_protocol";
    BadL4Header = "bad_l4_header";
    /// TCP or UDP to a VIP port no service listens on.
    NoService = "no_service";
    /// The service has no target that may take the flow.
    NoUsableTarget = "no_usable_target";
    /// ICMP (ICMPv6) to a VIP that is neither an echo request nor a destination
    /// unreachable (nor neighbour discovery); an ICMPv6 echo request behind extension
    /// headers.
    IcmpNotEcho = "icmp_not_echo";
    /// ICMP destination unreachable to a VIP that quotes no packet a service of the
    /// VIP sent (another source, not TCP or UDP, no service, or cut too short).
    IcmpErrorNotOurs = "icmp_error_not_ours";
    /// ICMP destination unreachable about a flow of a service with
    /// `icmp_errors = "drop"`.
    IcmpErrorOff = "icmp_error_off";
    /// ARP that is not Ethernet/IPv4.
    BadArp = "bad_arp";
    /// ARP request for an address that is not ours.
    ArpNotForUs = "arp_not_for_us";
    /// ARP with an operation other than request and reply.
    ArpUnknownOperation = "arp_unknown_operation";
    /// IPv4 (IPv6) to the real address that is not an echo request nor an answer to
    /// the doctor (nothing listens there).
    ToRealAddress = "to_real_address";
    /// Neighbour discovery with a hop limit other than 255: it crossed a router, so
    /// it may be forged from off the segment (RFC 4861).
    NdpHopLimit = "ndp_hop_limit";
    /// A neighbour solicitation or advertisement that is malformed: a code other than
    /// 0, a multicast target, a bad option or checksum, cut short.
    BadNdp = "bad_ndp";
    /// A neighbour solicitation for an address that is not dsrlb's (or not its to
    /// answer: a pair's standby, a VIP behind BGP), or an advertisement dsrlb did not
    /// ask for.
    NdpNotForUs = "ndp_not_for_us";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_metrics_are_unique_and_reasons_are_their_indices() {
        let mut names: Vec<&str> = COUNTERS.iter().map(|c| c.name).collect();
        let mut metrics: Vec<&str> = COUNTERS.iter().map(|c| c.metric).collect();
        names.sort_unstable();
        names.dedup();
        metrics.sort_unstable();
        metrics.dedup();
        assert_eq!((names.len(), metrics.len()), (COUNTER_COUNT, COUNTER_COUNT));
        for c in COUNTERS {
            assert!(c.metric.starts_with("dsrlb_"), "{c:?}");
            assert_eq!(c.kind == Kind::Total, c.metric.ends_with("_total"), "{c:?}");
        }
        // The help states the burst size; it must be the worker's.
        let bursts = COUNTERS.iter().find(|c| c.name == "bursts").unwrap();
        let burst_size = format!("({})", crate::dpdk::BURST_SIZE);
        assert!(bursts.help.contains(&burst_size), "{bursts:?}");
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?} indexes the drop counters");
        }
    }

    #[test]
    fn readme_lists_every_drop_reason() {
        let readme = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let text = std::fs::read_to_string(readme).unwrap();
        // In its list of drop reasons, not anywhere in it.
        let list = text
            .split("Drop reasons, each counted:")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .expect("README's list of drop reasons");
        for r in DropReason::ALL {
            assert!(
                list.contains(&format!("`{}`", r.name())),
                "README's drop reasons lack {r:?}"
            );
        }
    }

    #[test]
    fn the_worker_adds_its_own_counts_and_leaves_the_flow_tables() {
        let cells = CounterCells::default();
        let poll = Counts {
            forwarded: 3,
            flows_live: 9,
            ..Counts::default()
        };
        cells.add(&poll);
        cells.add(&poll);
        let read = cells.read();
        assert_eq!((read.forwarded, read.flows_live), (6, 0));
        let position = |name| COUNTERS.iter().position(|c| c.name == name).unwrap();
        assert_eq!(read.values()[position("forwarded")], 6);
    }
}
