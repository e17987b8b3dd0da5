//! `dsrlb-floor`: the least a Layer-4 balancer can do a frame, on the same pcap replay,
//! port and core as the packet-rate benchmark, to show what its targets leave room for.
//! Not a balancer: it keeps no state beyond what its mode names, and only `checked`
//! checks frames or counts anything but frames.
//!
//! - `swap`: every frame to one target MAC (testpmd mac-forward's work: the tool's own
//!   overhead against testpmd's).
//! - `maglev`: CRC32C of the addresses and ports, a 65537-entry lookup table of 16
//!   targets, the target's MAC (a stateless Maglev balancer with no connection table).
//! - `table`: the same hash into a direct-mapped connection table of 16-byte entries
//!   sized twice the flow count, the key compared, a miss filled from the lookup table;
//!   the burst hashed and its entries prefetched before any frame is decided (the
//!   least a balancer with a connection table does; deciding a poll later, for a
//!   longer prefetch, was no faster: 57.2-57.5 % PMD share against 57.5-58.9 %, nor
//!   was the table on 4 KiB pages slower than on 2 MiB ones).
//! - `checked`: the least a balancer on packet path v2 does for the replay's frames,
//!   written straight, with nothing else: the checks dsrlb's fast path makes before it
//!   may forward a frame (destination MAC, EtherType, a 20-byte IPv4 header without
//!   fragment bits, TCP, the service's VIP and port: four masked 8-byte compares with
//!   a template; the IP length within the frame, a TCP header that fits), the hash,
//!   the slot's steering entry (4 bytes: the current target and a mark; no slot is
//!   marked here), the target usable, a bare SYN recorded in the direct-mapped table
//!   of `table` (from 4096 flows, as dsrlb's worker looks ahead, the burst's SYNs'
//!   entries prefetched first), the MAC rewrite, and a packet and byte count for the
//!   target. A frame failing a check is freed and counted. No same-flow run, no drop
//!   reasons, one service.
//!
//! Prints `floor <mode> <Mpps>` each second, forwarded frames over the second, then
//! the median over the run after the first two seconds.

use clap::{Parser, ValueEnum};
use dataplane::dpdk::{launch, Eal, Mbuf, MbufBurst, Mempool, Port, PortConfig, BURST_SIZE};
use dataplane::hash::crc32c_u64;
use dataplane::memory::{prefetch, HugeSlice};
use dataplane::worker::LOOKAHEAD_FROM_LIVE_FLOWS;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Swap,
    Maglev,
    Table,
    Checked,
}

#[derive(Parser, Debug)]
#[command(about = "the least a balancer can do a frame, on the packet-rate benchmark's replay")]
struct Args {
    #[arg(long, value_enum)]
    mode: Mode,
    /// The pcap file to replay (net_pcap, infinite_rx).
    #[arg(long)]
    pcap: String,
    /// Distinct flows in it: the connection table holds twice as many entries.
    #[arg(long, default_value_t = 1)]
    flows: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 8192)]
    mbufs: u32,
    /// EAL memory without hugepages (1 GiB): for valgrind, which cannot reserve the
    /// address space hugepages take.
    #[arg(long)]
    no_huge: bool,
}

const TARGETS: usize = 16;
const LOOKUP_SIZE: u64 = 65537;
const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
/// The replay's service (`dsrlb-traffic`'s defaults): 10.99.0.100, TCP port 80.
const VIP: u32 = u32::from_be_bytes([10, 99, 0, 100]);
const VIP_PORT: u16 = 80;
const TCP: u8 = 6;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
/// Where `checked` reads: Ethernet, a 20-byte IPv4 header, TCP's fixed header.
const SPAN: usize = 54;

#[derive(Clone, Copy, Default)]
#[repr(C, align(16))]
struct Entry {
    key: u64,
    target: u32,
    used: u32,
}

/// (connection key, hash) of an IPv4 frame without options, read at fixed offsets.
#[inline(always)]
fn flow_of(frame: &[u8]) -> Option<(u64, u32)> {
    let h: &[u8; 38] = frame.get(..38)?.try_into().ok()?;
    let addrs = u64::from_ne_bytes([h[26], h[27], h[28], h[29], h[30], h[31], h[32], h[33]]);
    let ports = u64::from(u32::from_ne_bytes([h[34], h[35], h[36], h[37]]));
    let hash = crc32c_u64(crc32c_u64(0, addrs), ports);
    Some(((addrs & 0xffff_ffff) << 32 | ports, hash))
}

/// A target as `checked` reads it: its MAC, whether it may take flows, its counts.
#[derive(Clone, Copy, Default)]
struct Target {
    mac: [u8; 6],
    usable: bool,
    packets: u64,
    bytes: u64,
}

/// Where `checked` compares a frame with its template: four 8-byte words, from the
/// destination MAC, the EtherType, the fragment bits and the destination address.
const WORDS: [usize; 4] = [0, 12, 20, 30];

/// The bytes every frame of the service has, at `WORDS`: the port's MAC, IPv4 with a
/// 20-byte header, no fragment bits (DF aside), TCP, the VIP and its port.
struct Template {
    words: [u64; 4],
    masks: [u64; 4],
}

impl Template {
    fn new() -> Template {
        let (mut image, mut mask) = ([0u8; SPAN], [0u8; SPAN]);
        let mut set = |at: usize, bytes: &[u8], bits: &[u8]| {
            image[at..at + bytes.len()].copy_from_slice(bytes);
            mask[at..at + bits.len()].copy_from_slice(bits);
        };
        set(0, &PORT_MAC, &[0xff; 6]);
        set(12, &[0x08, 0x00, 0x45], &[0xff; 3]);
        set(20, &[0, 0], &[0x3f, 0xff]);
        set(23, &[TCP], &[0xff]);
        set(30, &VIP.to_be_bytes(), &[0xff; 4]);
        set(36, &VIP_PORT.to_be_bytes(), &[0xff; 2]);
        Template {
            words: WORDS.map(|at| word(&image, at)),
            masks: WORDS.map(|at| word(&mask, at)),
        }
    }
}

#[inline(always)]
fn word(h: &[u8; SPAN], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&h[at..at + 8]);
    u64::from_ne_bytes(w)
}

/// A bare SYN (SYN without ACK) of a frame `checked` may read.
#[inline(always)]
fn is_bare_syn(frame: &[u8]) -> bool {
    frame.get(47).is_some_and(|&f| f & (SYN | ACK) == SYN)
}

struct Floor {
    mode: Mode,
    macs: [[u8; 6]; TARGETS],
    lookup: Vec<u8>,
    /// `checked`'s steering entries: the target in the low 16 bits, the mark above.
    steering: Vec<u32>,
    targets: [Target; TARGETS],
    template: Template,
    /// Whether `checked` prefetches the bare SYNs' entries in a pass over the burst.
    look_ahead: bool,
    /// Frames `checked` refused.
    refused: u64,
    /// On 2 MiB pages, as dsrlb's flow table is (dataplane::memory).
    table: HugeSlice<Entry>,
    mask: usize,
}

impl Floor {
    fn new(mode: Mode, flows: usize) -> Floor {
        let mut macs = [[2, 0, 0, 0, 1, 0]; TARGETS];
        for (i, mac) in macs.iter_mut().enumerate() {
            mac[5] = i as u8 + 1;
        }
        let entries = if matches!(mode, Mode::Table | Mode::Checked) {
            (flows * 2).next_power_of_two()
        } else {
            1
        };
        Floor {
            mode,
            macs,
            lookup: (0..LOOKUP_SIZE)
                .map(|i| (i % TARGETS as u64) as u8)
                .collect(),
            steering: (0..LOOKUP_SIZE)
                .map(|i| (i % TARGETS as u64) as u32)
                .collect(),
            targets: macs.map(|mac| Target {
                mac,
                usable: true,
                ..Target::default()
            }),
            template: Template::new(),
            look_ahead: flows as u64 >= LOOKAHEAD_FROM_LIVE_FLOWS,
            refused: 0,
            table: HugeSlice::new(entries, Entry::default()),
            mask: entries - 1,
        }
    }

    #[inline(always)]
    fn pick(&self, hash: u32) -> usize {
        let slot = (u64::from(hash) * LOOKUP_SIZE) >> 32;
        usize::from(self.lookup.get(slot as usize).copied().unwrap_or(0))
    }

    /// `checked`'s target MAC for a frame, counted; None if it fails a check.
    #[inline(always)]
    fn checked(&mut self, frame: &[u8]) -> Option<[u8; 6]> {
        let h: &[u8; SPAN] = frame.get(..SPAN)?.try_into().ok()?;
        let t = &self.template;
        let differs = (0..WORDS.len()).fold(0, |d, i| {
            d | ((word(h, WORDS[i]) ^ t.words[i]) & t.masks[i])
        });
        let total = usize::from(u16::from_be_bytes([h[16], h[17]]));
        let room = total.checked_sub(20)?;
        let tcp_header = usize::from(h[46] >> 4) * 4;
        if differs != 0 || total > frame.len() - 14 || tcp_header < 20 || tcp_header > room {
            return None;
        }
        let (key, hash) = flow_of(frame)?;
        let slot = (u64::from(hash) * LOOKUP_SIZE) >> 32;
        let entry = *self.steering.get(slot as usize)?;
        // A marked slot would ask the connection table: none is marked in this replay.
        let target = entry as u16;
        let t = self
            .targets
            .get_mut(usize::from(target))
            .filter(|t| t.usable)?;
        t.packets += 1;
        t.bytes += frame.len() as u64;
        let mac = t.mac;
        if is_bare_syn(h) {
            if let Some(e) = self.table.get_mut(hash as usize & self.mask) {
                *e = Entry {
                    key,
                    target: u32::from(target),
                    used: 1,
                };
            }
        }
        Some(mac)
    }

    /// The target of a frame; `flow` is its (key, hash), read ahead in table mode.
    #[inline(always)]
    fn target(&mut self, frame: &[u8], flow: Option<(u64, u32)>) -> usize {
        match self.mode {
            Mode::Swap => 0,
            // `run` decides `checked`'s frames itself.
            Mode::Checked => 0,
            Mode::Maglev => flow_of(frame).map_or(0, |(_, hash)| self.pick(hash)),
            Mode::Table => {
                let Some((key, hash)) = flow else {
                    return 0;
                };
                let pick = self.pick(hash);
                match self.table.get_mut(hash as usize & self.mask) {
                    Some(e) if e.used != 0 && e.key == key => e.target as usize,
                    Some(e) => {
                        *e = Entry {
                            key,
                            target: pick as u32,
                            used: 1,
                        };
                        pick
                    }
                    None => pick,
                }
            }
        }
    }

    /// `checked` over a burst: the bare SYNs' entries prefetched, then each frame
    /// decided, rewritten and queued, or freed.
    #[inline(always)]
    fn checked_burst(&mut self, rx: &mut MbufBurst, tx: &mut MbufBurst, got: usize) {
        // As dsrlb's worker, only where the table is too big for the caches.
        if self.look_ahead {
            for i in 0..got {
                let Some(frame) = rx.frame(i).filter(|f| is_bare_syn(f)) else {
                    continue;
                };
                if let Some(e) =
                    flow_of(frame).and_then(|(_, h)| self.table.get(h as usize & self.mask))
                {
                    prefetch(e);
                }
            }
        }
        for m in rx.drain() {
            let Some(mac) = self.checked(m.data()) else {
                self.refused += 1;
                drop(m);
                continue;
            };
            to_target(m, mac, tx);
        }
    }

    fn run(&mut self, port: u16, stop: &AtomicBool, forwarded: &AtomicU64) {
        let mut rx = MbufBurst::new();
        let mut tx = MbufBurst::new();
        let mut flows = [None; BURST_SIZE];
        let mut total = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let got = rx.rx(port, 0);
            if got == 0 {
                continue;
            }
            if self.mode == Mode::Checked {
                self.checked_burst(&mut rx, &mut tx, got);
            } else {
                if self.mode == Mode::Table {
                    for (i, flow) in flows.iter_mut().enumerate().take(got) {
                        *flow = rx.frame(i).and_then(flow_of);
                        if let Some(e) =
                            flow.and_then(|(_, h)| self.table.get(h as usize & self.mask))
                        {
                            prefetch(e);
                        }
                    }
                }
                for (i, m) in rx.drain().enumerate() {
                    let flow = flows.get(i).copied().flatten();
                    let target = self.target(m.data(), flow);
                    to_target(m, self.macs[target % TARGETS], &mut tx);
                }
            }
            total += tx.tx(port, 0) as u64;
            tx.free_all();
            forwarded.store(total, Ordering::Relaxed);
        }
        if self.mode == Mode::Checked {
            // The replay's frames all pass: a floor that refused them would measure nothing.
            println!("refused {}", self.refused);
        }
    }
}

/// Rewrites a frame's MACs for the target at `mac` and queues it on `tx`.
#[inline(always)]
fn to_target(mut m: Mbuf, mac: [u8; 6], tx: &mut MbufBurst) {
    if let Some(head) = m.data_mut().get_mut(..12) {
        head[..6].copy_from_slice(&mac);
        head[6..].copy_from_slice(&PORT_MAC);
    }
    // Never full: it is sent empty every poll and takes at most a burst.
    let _ = tx.push(m);
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let memory = if args.no_huge {
        ["--no-huge", "--no-shconf", "-m", "1024"]
            .map(str::to_owned)
            .to_vec()
    } else {
        vec!["--in-memory".to_owned()]
    };
    let eal_args = [
        "-l",
        "0,1",
        "--main-lcore",
        "0",
        "--file-prefix=dsrlb-bench-floor",
        "--no-pci",
    ]
    .map(str::to_owned)
    .into_iter()
    .chain(memory)
    .chain([format!(
        "--vdev=net_pcap0,rx_pcap={},infinite_rx=1",
        args.pcap
    )])
    .collect::<Vec<_>>();
    let result = (|| -> Result<Vec<f64>, String> {
        let eal = Eal::init(&eal_args).map_err(|e| e.to_string())?;
        let pool = Mempool::new("floor", args.mbufs, 256, 512, -1).map_err(|e| e.to_string())?;
        let mut port = Port::by_name("net_pcap0").map_err(|e| e.to_string())?;
        port.configure_and_start(&PortConfig::default(), &pool)
            .map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(AtomicU64::new(0));
        let mut floor = Floor::new(args.mode, args.flows);
        let id = port.id();
        let worker = {
            let (stop, forwarded) = (stop.clone(), forwarded.clone());
            launch(1, move || floor.run(id, &stop, &forwarded)).map_err(|e| e.to_string())?
        };
        // bench/run.sh opens its measuring window (the PMD-share sampler) on this line.
        println!("forwarding");
        let mut rates = Vec::new();
        let (mut last, mut at) = (0, Instant::now());
        for _ in 0..args.seconds {
            std::thread::sleep(Duration::from_secs(1));
            let (now, n) = (Instant::now(), forwarded.load(Ordering::Relaxed));
            let mpps = (n - last) as f64 / now.duration_since(at).as_secs_f64() / 1e6;
            println!("floor {:?} {mpps:.3}", args.mode);
            rates.push(mpps);
            (last, at) = (n, now);
        }
        stop.store(true, Ordering::Relaxed);
        worker.join().map_err(|e| e.to_string())?;
        drop(port);
        drop(pool);
        drop(eal);
        Ok(rates)
    })();
    match result {
        Ok(rates) => {
            let mut steady: Vec<f64> = rates.into_iter().skip(2).collect();
            steady.sort_by(f64::total_cmp);
            match steady.get(steady.len() / 2) {
                Some(m) => println!("median {m:.3}"),
                None => println!("median nan"),
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dsrlb-floor: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
