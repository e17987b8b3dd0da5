//! The poll loop of one worker lcore: rx burst -> decide -> tx burst, on its own
//! (port, queue) pair, with its own flow table and counters.
//!
//! Inside the loop: no locks, no allocation, no syscalls. The only syscall is the idle
//! back-off's sleep, taken only after many empty polls in a row, never while frames
//! are arriving.

use crate::counters::{add, CounterCells, Counts};
use crate::dpdk::{Clock, Mbuf, MbufBurst, BURST_SIZE};
use crate::flow::{FlowStats, FlowTable};
use crate::flow_query::FlowQueries;
use crate::forward::{decide, hint_and_prefetch, Context, DropReason, SameFlowRun, Verdict};
use crate::fragment::{FragmentStats, Held};
use crate::rcu::Reader;
use crate::snapshot::{Snapshot, MAX_SERVICE_SLOTS, MAX_TARGET_SLOTS};
use crate::wire::MacAddr;
use crossbeam::queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Everything one worker counts: its counters and drops (declared in `counters`),
/// and its counts by target and service slot. Written by that worker alone, read by
/// the control thread; cache-line aligned so two workers never share a line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct WorkerStats {
    pub counters: CounterCells,
    pub drops: [AtomicU64; DropReason::COUNT],
    pub slots: SlotStats,
}

/// One worker's counters by target slot and by service slot (see `snapshot`): same
/// single-writer rule as `WorkerStats`. The control thread maps slots to targets and
/// services with the snapshot.
#[derive(Debug)]
pub struct SlotStats {
    /// Packets and bytes forwarded to each target.
    pub targets: Box<[TargetTraffic]>,
    /// Live flows pinned to each target, as of the last full walk of the flow table.
    pub target_flows: Box<[AtomicU64]>,
    /// Packets dropped because the service had no usable target.
    pub service_drops: Box<[AtomicU64]>,
    /// ICMP errors about the service's flows forwarded to their targets.
    pub service_icmp_errors: Box<[AtomicU64]>,
    /// Frames of the service kept on a previous target by a mark (`FlowTable::kept`),
    /// as of the last full walk of the flow table.
    pub service_kept: Box<[AtomicU64]>,
    /// Full walks of the flow table so far.
    pub flow_walks: AtomicU64,
}

/// A target's packets and bytes side by side: one bounds check and one cache line
/// for both.
#[derive(Debug, Default)]
#[repr(C, align(16))]
pub struct TargetTraffic {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
}

impl TargetTraffic {
    #[inline(always)]
    fn add(&self, packets: u64, bytes: u64) {
        add(&self.packets, packets);
        add(&self.bytes, bytes);
    }
}

fn zeroed(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl Default for SlotStats {
    fn default() -> Self {
        SlotStats {
            targets: (0..MAX_TARGET_SLOTS)
                .map(|_| TargetTraffic::default())
                .collect(),
            target_flows: zeroed(MAX_TARGET_SLOTS),
            service_drops: zeroed(MAX_SERVICE_SLOTS),
            service_icmp_errors: zeroed(MAX_SERVICE_SLOTS),
            service_kept: zeroed(MAX_SERVICE_SLOTS),
            flow_walks: AtomicU64::new(0),
        }
    }
}

fn load(counters: &[AtomicU64], slot: usize) -> u64 {
    counters.get(slot).map_or(0, |c| c.load(Ordering::Relaxed))
}

impl SlotStats {
    /// No slot of a snapshot is out of range; one that were reads as zero and goes
    /// uncounted, rather than crash the worker.
    #[inline(always)]
    fn target(&self, slot: u16) -> Option<&TargetTraffic> {
        self.targets.get(usize::from(slot))
    }
    pub fn target_packets(&self, slot: u16) -> u64 {
        self.target(slot)
            .map_or(0, |t| t.packets.load(Ordering::Relaxed))
    }
    pub fn target_bytes(&self, slot: u16) -> u64 {
        self.target(slot)
            .map_or(0, |t| t.bytes.load(Ordering::Relaxed))
    }

    /// Counts frames forwarded to the target in `slot`.
    #[inline(always)]
    fn count_forwarded(&self, slot: u16, packets: u64, bytes: u64) {
        if let Some(t) = self.target(slot) {
            t.add(packets, bytes);
        }
    }
    pub fn target_flows(&self, slot: u16) -> u64 {
        load(&self.target_flows, usize::from(slot))
    }
    pub fn service_drops(&self, slot: u16) -> u64 {
        load(&self.service_drops, usize::from(slot))
    }
    pub fn service_icmp_errors(&self, slot: u16) -> u64 {
        load(&self.service_icmp_errors, usize::from(slot))
    }
    pub fn service_kept(&self, slot: u16) -> u64 {
        load(&self.service_kept, usize::from(slot))
    }
}

/// A plain copy of a worker's counters and drops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCounters {
    pub counts: Counts,
    pub drops: [u64; DropReason::COUNT],
}

impl WorkerCounters {
    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    pub fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }
}

impl WorkerStats {
    pub fn read(&self) -> WorkerCounters {
        let mut drops = [0u64; DropReason::COUNT];
        for (d, c) in drops.iter_mut().zip(&self.drops) {
            *d = c.load(Ordering::Relaxed);
        }
        WorkerCounters {
            counts: self.counters.read(),
            drops,
        }
    }
}

/// Sends up to a burst of the control thread's frames (empty queue: two loads).
#[inline(always)]
fn send_injected(inject: &ArrayQueue<Mbuf>, queues: &WorkerQueues, stats: &WorkerStats) {
    if inject.is_empty() {
        return;
    }
    let mut burst = MbufBurst::new();
    while !burst.is_full() {
        match inject.pop() {
            Some(mbuf) => {
                let _ = burst.push(mbuf);
            }
            None => break,
        }
    }
    let queued = burst.len() as u64;
    let sent = burst.tx(queues.port, queues.tx_queue) as u64;
    burst.free_all();
    add(&stats.counters.injected, sent);
    add(&stats.counters.tx_packets, sent);
    add(&stats.counters.tx_dropped, queued - sent);
}

/// Sleeps only after `spin_polls` empty polls in a row, doubling up to `max_sleep`.
#[derive(Debug, Clone)]
pub struct IdleBackoff {
    spin_polls: u32,
    max_sleep: Duration,
    empty: u32,
    sleep: Duration,
}

impl IdleBackoff {
    pub fn new(spin_polls: u32, max_sleep: Duration) -> Self {
        IdleBackoff {
            spin_polls,
            max_sleep,
            empty: 0,
            sleep: Duration::from_micros(1),
        }
    }

    #[inline(always)]
    pub fn busy(&mut self) {
        self.empty = 0;
        self.sleep = Duration::from_micros(1);
    }

    #[inline(always)]
    pub fn idle(&mut self) {
        self.empty = self.empty.saturating_add(1);
        if self.empty < self.spin_polls || self.max_sleep.is_zero() {
            std::hint::spin_loop();
            return;
        }
        std::thread::sleep(self.sleep);
        self.sleep = (self.sleep * 2).min(self.max_sleep);
    }
}

impl Default for IdleBackoff {
    fn default() -> Self {
        IdleBackoff::new(1024, Duration::from_micros(100))
    }
}

/// Where a worker reads and writes.
#[derive(Debug, Clone, Copy)]
pub struct WorkerQueues {
    pub port: u16,
    pub rx_queue: u16,
    pub tx_queue: u16,
    pub port_mac: MacAddr,
}

pub struct Worker {
    queues: WorkerQueues,
    flows: FlowTable,
    snapshot: Reader<Snapshot>,
    stats: Arc<WorkerStats>,
    punt: Arc<ArrayQueue<Mbuf>>,
    /// Frames the control thread asks this worker to send, on ports where the
    /// control thread has no tx queue of its own (see `ControlTx`).
    inject: Option<Arc<ArrayQueue<Mbuf>>>,
    /// The control thread's questions about the flow table (`with_queries`).
    queries: Option<Arc<FlowQueries>>,
    clock: Clock,
    idle: IdleBackoff,
    walk: FlowWalk,
    lookahead: Lookahead,
    /// The same-flow run, kept from burst to burst (see `SameFlowRun::carry_over`).
    run: SameFlowRun,
    /// Later fragments waiting for their first (`Verdict::Hold`).
    held: Held<Mbuf>,
}

/// Live flows from which a burst is decided one poll after it arrives: its flows'
/// buckets are hashed and prefetched on arrival, so their loads from memory overlap
/// the previous burst's work. Below that the buckets are in cache (4096 flows touch
/// at most 256 KiB of them) and the extra pass only costs. How the threshold was
/// chosen, with its figures: bench/README.md, "Where the time goes".
pub const LOOKAHEAD_FROM_LIVE_FLOWS: u64 = 4096;

/// The burst received on the previous poll, waiting to be decided, with the flow
/// hashes computed for it (under `seed`, the snapshot's hash seed then).
struct Lookahead {
    from_live_flows: u64,
    burst: MbufBurst,
    /// Two, used in turn: the held burst's, and the one being filled for the burst
    /// just received (no copy from one to the other).
    hints: [BurstHints; 2],
    held: usize,
    seed: u64,
}

/// The flow hashes of a burst's frames, by position, for the frames
/// `flow_hash_hint` gave one for.
struct BurstHints {
    hashes: [u64; BURST_SIZE],
    /// Bit i set: `hashes[i]` is frame i's. Unset slots are left as they were, so
    /// a burst's hints cost no clearing of the array.
    known: u32,
}

const _: () = assert!(BURST_SIZE <= 32, "one bit of BurstHints::known a frame");

impl BurstHints {
    const NONE: BurstHints = BurstHints {
        hashes: [0; BURST_SIZE],
        known: 0,
    };

    #[inline(always)]
    fn get(&self, i: usize) -> Option<u64> {
        let hash = *self.hashes.get(i)?;
        (self.known & (1 << i) != 0).then_some(hash)
    }
}

/// Most buckets of the flow table counted in one poll: few when bursts come full
/// (the walk must not cost forwarding), more when there is slack.
const WALK_BUCKETS_FULL: usize = 2;
const WALK_BUCKETS_PARTIAL: usize = 32;
const WALK_BUCKETS_IDLE: usize = 256;

/// One whole walk of the flow table per this period at most. Paced by time, not by
/// polls: a polling worker walking 256 buckets (32 KiB) every empty poll streamed
/// its table through the shared caches at GB/s, which added about 40 us to the lab's
/// median ping-pong time through it (bench/README.md).
const WALK_PERIOD_MS: u64 = 1000;

/// A walk over the flow table, a few buckets per poll, counting live flows by
/// target slot; each full walk is published to `SlotStats::target_flows`.
struct FlowWalk {
    next_bucket: usize,
    /// Buckets the walk may still count, earned at bucket_count / WALK_PERIOD_MS
    /// a millisecond.
    credit: usize,
    credit_ms: u64,
    counts: Box<[u64]>,
    /// One past the highest slot counted in this walk, and in the published one.
    high: usize,
    published_high: usize,
}

impl FlowWalk {
    fn new() -> Self {
        FlowWalk {
            next_bucket: 0,
            credit: 0,
            credit_ms: 0,
            counts: vec![0; MAX_TARGET_SLOTS].into_boxed_slice(),
            high: 0,
            published_high: 0,
        }
    }

    /// Counts up to `buckets` more buckets, as far as the walk's credit goes.
    #[inline(always)]
    fn step(
        &mut self,
        buckets: usize,
        flows: &mut FlowTable,
        snapshot: &Snapshot,
        now_ms: u64,
        stats: &SlotStats,
    ) {
        // Most polls of a busy worker come in a millisecond whose credit is spent:
        // they skip the call.
        if now_ms == self.credit_ms && self.credit == 0 {
            return;
        }
        self.step_with_credit(buckets, flows, snapshot, now_ms, stats);
    }

    #[inline(never)]
    fn step_with_credit(
        &mut self,
        buckets: usize,
        flows: &mut FlowTable,
        snapshot: &Snapshot,
        now_ms: u64,
        stats: &SlotStats,
    ) {
        let total = flows.bucket_count();
        if now_ms != self.credit_ms {
            let per_ms = total.div_ceil(WALK_PERIOD_MS as usize);
            let elapsed = now_ms.saturating_sub(self.credit_ms).min(WALK_PERIOD_MS) as usize;
            self.credit = (self.credit + elapsed * per_ms).min(total);
            self.credit_ms = now_ms;
        }
        let buckets = buckets.min(self.credit);
        if buckets == 0 {
            return;
        }
        self.credit -= buckets;
        let high = flows.count_by_slot(
            self.next_bucket,
            buckets,
            now_ms,
            &mut self.counts,
            |target| snapshot.usable_target(target).is_some(),
        );
        self.high = self.high.max(high);
        self.next_bucket += buckets;
        if self.next_bucket < total {
            return;
        }
        let end = self.high.max(self.published_high);
        for (count, published) in self.counts[..end].iter_mut().zip(stats.target_flows.iter()) {
            published.store(*count, Ordering::Relaxed);
            *count = 0;
        }
        for (kept, published) in flows.kept().iter().zip(stats.service_kept.iter()) {
            published.store(*kept, Ordering::Relaxed);
        }
        add(&stats.flow_walks, 1);
        self.published_high = self.high;
        self.high = 0;
        self.next_bucket = 0;
    }
}

impl Worker {
    pub fn new(
        queues: WorkerQueues,
        flows: FlowTable,
        snapshot: Reader<Snapshot>,
        stats: Arc<WorkerStats>,
        punt: Arc<ArrayQueue<Mbuf>>,
        idle: IdleBackoff,
    ) -> Self {
        stats.counters.flow_capacity.store(
            (flows.capacity() + flows.capacity_v6()) as u64,
            Ordering::Relaxed,
        );
        let held = Held::new(flows.config().fragments_held, flows.fragments.timeout_ms());
        Worker {
            queues,
            flows,
            snapshot,
            stats,
            punt,
            inject: None,
            queries: None,
            clock: Clock::new(),
            idle,
            walk: FlowWalk::new(),
            lookahead: Lookahead {
                from_live_flows: LOOKAHEAD_FROM_LIVE_FLOWS,
                burst: MbufBurst::new(),
                hints: [BurstHints::NONE, BurstHints::NONE],
                held: 0,
                seed: 0,
            },
            run: SameFlowRun::default(),
            held,
        }
    }

    /// Makes this worker also send what the control thread queues on `inject`.
    pub fn with_injection(mut self, inject: Arc<ArrayQueue<Mbuf>>) -> Self {
        self.inject = Some(inject);
        self
    }

    /// Makes this worker answer the control thread's questions about its flow table.
    pub fn with_queries(mut self, queries: Arc<FlowQueries>) -> Self {
        self.queries = Some(queries);
        self
    }

    /// Decides bursts one poll late once `live_flows` or more flows are live (see
    /// `LOOKAHEAD_FROM_LIVE_FLOWS`; tests set 0 to run that path).
    pub fn with_lookahead_from(mut self, live_flows: u64) -> Self {
        self.lookahead.from_live_flows = live_flows;
        self
    }

    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.stats
    }

    /// Polls until `stop` is set, then decides the burst still held for lookahead.
    /// Returns the number of polls that handled frames.
    pub fn run(&mut self, stop: &AtomicBool) -> u64 {
        let mut busy_polls = 0;
        while !stop.load(Ordering::Relaxed) {
            if self.poll_once() == 0 {
                self.idle.idle();
            } else {
                self.idle.busy();
                busy_polls += 1;
            }
        }
        self.poll(false);
        busy_polls
    }

    /// One poll: receive a burst, decide and transmit it (or the one held since
    /// the previous poll, see `Lookahead`), free what is dropped. Returns the frames
    /// received or decided, whichever is more: 0 only when there was nothing to do.
    #[inline]
    pub fn poll_once(&mut self) -> usize {
        self.poll(true)
    }

    #[inline(always)]
    fn poll(&mut self, receive: bool) -> usize {
        let Worker {
            queues,
            flows,
            snapshot,
            stats,
            punt,
            inject,
            clock,
            walk,
            lookahead,
            run,
            queries,
            held,
            ..
        } = self;
        if let Some(inject) = inject {
            send_injected(inject, queues, stats);
        }
        if let Some(queries) = queries {
            queries.serve(flows, || clock.now_ms());
        }
        let mut rx = MbufBurst::new();
        let received = if receive {
            rx.rx(queues.port, queues.rx_queue)
        } else {
            0
        };
        // Reading (and dropping) the guard is this worker's quiescent state, idle or not.
        let snap = snapshot.read();
        // Nothing held (almost every poll): one compare, no clock read.
        if let Some(now_ms) = held.due(flows.fragments.stats().recorded, || clock.now_ms()) {
            let env = BurstEnv {
                snap: &snap,
                queues,
                now_ms,
                punt,
                stats,
            };
            let mut tally = Tally::default();
            decide_held(held, &env, flows, &mut tally);
            tally.publish(stats, flows);
        }
        if received == 0 && lookahead.burst.is_empty() {
            walk.step(
                WALK_BUCKETS_IDLE,
                flows,
                &snap,
                clock.now_ms(),
                &stats.slots,
            );
            return 0;
        }
        let now_ms = clock.now_ms();
        let mut tally = Tally::default();
        let mut decided = 0;
        let ahead = received > 0 && flows.stats().live >= lookahead.from_live_flows;
        let fill = 1 - lookahead.held;
        if ahead {
            // Hash every flow of the new burst and start loading what deciding it
            // reads (`hint_and_prefetch`); it is decided on the next poll, so the
            // held burst's work hides the loads. Below `from_live_flows` this pass
            // costs more than it saves: at 1000 flows, 26.7 Mpps with it against
            // 30.9 without (two runs each, alternated).
            rx.prefetch_frames();
            let hints = &mut lookahead.hints[fill];
            hints.known = 0;
            for (i, slot) in hints.hashes.iter_mut().enumerate().take(received) {
                if let Some(hash) = rx.frame(i).and_then(|f| hint_and_prefetch(&snap, flows, f)) {
                    *slot = hash;
                    hints.known |= 1 << i;
                }
            }
        }
        let env = BurstEnv {
            snap: &snap,
            queues,
            now_ms,
            punt,
            stats,
        };
        let mut decide = |burst: &mut MbufBurst, hints: &BurstHints, tally: &mut Tally| {
            decide_burst(burst, hints, &env, flows, tally, run, held)
        };
        if !lookahead.burst.is_empty() {
            let hints = if lookahead.seed == snap.seed {
                &lookahead.hints[lookahead.held]
            } else {
                &BurstHints::NONE
            };
            decided += decide(&mut lookahead.burst, hints, &mut tally);
        }
        if ahead {
            lookahead.held = fill;
            lookahead.seed = snap.seed;
            std::mem::swap(&mut lookahead.burst, &mut rx);
        } else if received > 0 {
            decided += decide(&mut rx, &BurstHints::NONE, &mut tally);
        }
        let walk_buckets = if received == BURST_SIZE {
            WALK_BUCKETS_FULL
        } else {
            WALK_BUCKETS_PARTIAL
        };
        walk.step(walk_buckets, flows, &snap, now_ms, &stats.slots);
        drop(snap);
        tally.publish(stats, flows);
        received.max(decided)
    }
}

/// Counts of one poll, kept in registers and published once per poll.
#[derive(Default)]
struct Tally {
    counts: Counts,
    drops: [u64; DropReason::COUNT],
    /// The sum of `drops`: most polls drop nothing and skip publishing them.
    dropped: u64,
}

impl Tally {
    /// Frames forwarded to the target in `slot`.
    #[inline(always)]
    fn forwarded(&mut self, slots: &SlotStats, slot: u16, packets: u64, bytes: u64) {
        self.counts.forwarded += packets;
        self.counts.forwarded_bytes += bytes;
        slots.count_forwarded(slot, packets, bytes);
    }

    #[inline(always)]
    fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
        self.dropped += 1;
    }

    #[inline(always)]
    fn publish(&self, stats: &WorkerStats, table: &FlowTable) {
        let (flows, fragments): (FlowStats, FragmentStats) =
            (table.stats(), table.fragments.stats());
        stats.counters.add(&self.counts);
        if self.dropped != 0 {
            for (counter, &n) in stats.drops.iter().zip(&self.drops) {
                if n != 0 {
                    add(counter, n);
                }
            }
        }
        let set = |c: &AtomicU64, v: u64| c.store(v, Ordering::Relaxed);
        let c = &stats.counters;
        set(&c.flows_live, flows.live);
        set(&c.flows_inserted, flows.inserted);
        set(&c.flows_expired, flows.expired);
        set(&c.flows_evicted, flows.evicted);
        set(&c.flow_guard_refused, flows.guard_refused);
        set(&c.flow_bucket_full, flows.bucket_full);
        set(&c.fragments_recorded, fragments.recorded);
        set(&c.fragments_evicted, fragments.evicted);
    }
}

/// Sends a frame that is not forwarded on its way: out (a reply), to the control
/// thread (a punt) or to `discard` (a drop), and counts it. Out of line: a
/// dispatch over every verdict cost the forwarded frames about 10 instructions each.
#[cold]
#[inline(never)]
fn dispatch_other(verdict: Verdict, mbuf: Mbuf, to: &mut Sinks, env: &BurstEnv, tally: &mut Tally) {
    let Sinks { out, discard, held } = to;
    let held = held.as_deref_mut();
    let (punt, stats) = (env.punt, env.stats);
    // out and discard hold at most as many mbufs as the burst.
    let _ = match verdict {
        // decide_burst takes forwards inline; any other caller gets the same here.
        Verdict::Forward { slot } => {
            tally.forwarded(&stats.slots, slot, 1, u64::from(mbuf.pkt_len()));
            out.push(mbuf)
        }
        Verdict::IcmpError { slot, service } => {
            tally.forwarded(&stats.slots, slot, 1, u64::from(mbuf.pkt_len()));
            if let Some(c) = stats.slots.service_icmp_errors.get(usize::from(service)) {
                add(c, 1);
            }
            out.push(mbuf)
        }
        Verdict::Reply(_) => {
            tally.counts.replied += 1;
            out.push(mbuf)
        }
        Verdict::Punt(_) => match punt.push(mbuf) {
            Ok(()) => {
                tally.counts.punted += 1;
                Ok(())
            }
            Err(mbuf) => {
                tally.counts.punt_overflow += 1;
                discard.push(mbuf)
            }
        },
        Verdict::Drop(reason) => {
            tally.drop(reason);
            discard.push(mbuf)
        }
        Verdict::Hold => match hold(held, mbuf, env.now_ms) {
            Ok(()) => {
                tally.counts.fragments_held += 1;
                Ok(())
            }
            Err(mbuf) => {
                tally.drop(DropReason::FragmentHoldFull);
                discard.push(mbuf)
            }
        },
        Verdict::Unserved { service } => {
            tally.drop(DropReason::NoUsableTarget);
            if let Some(c) = stats.slots.service_drops.get(usize::from(service)) {
                add(c, 1);
            }
            discard.push(mbuf)
        }
    };
}

/// Holds `mbuf` if there is a hold with room; else gives it back.
fn hold(held: Option<&mut Held<Mbuf>>, mbuf: Mbuf, now_ms: u64) -> Result<(), Mbuf> {
    match held {
        Some(held) => held.hold(mbuf, now_ms),
        None => Err(mbuf),
    }
}

/// Where `dispatch_other` sends a frame: out, to be freed, or held (`None` while the
/// held ones are decided again).
struct Sinks<'a> {
    out: MbufBurst,
    discard: MbufBurst,
    held: Option<&'a mut Held<Mbuf>>,
}

impl Sinks<'_> {
    /// Sends `out` and frees `discard`, counting what the driver took.
    fn flush(&mut self, queues: &WorkerQueues, tally: &mut Tally) {
        let to_send = self.out.len() as u64;
        let sent = self.out.tx(queues.port, queues.tx_queue) as u64;
        self.out.free_all();
        self.discard.free_all();
        tally.counts.tx_packets += sent;
        tally.counts.tx_dropped += to_send - sent;
    }
}

/// Decides the held later fragments again (a first fragment has been recorded, or
/// one has waited its time): those whose first has come go out, those that waited
/// `fragment_timeout_ms` in vain are dropped, the rest stay. Rare, out of line.
#[cold]
#[inline(never)]
fn decide_held(held: &mut Held<Mbuf>, env: &BurstEnv, flows: &mut FlowTable, tally: &mut Tally) {
    held.seen_recorded = flows.fragments.stats().recorded;
    let timeout_ms = flows.fragments.timeout_ms();
    let mut ctx = Context::new(env.snap, env.queues.port_mac, flows, env.now_ms);
    let mut to = Sinks {
        out: MbufBurst::new(),
        discard: MbufBurst::new(),
        held: None,
    };
    held.release(|mut mbuf, since_ms| {
        let verdict = match decide(&mut ctx, mbuf.data_mut(), None) {
            Verdict::Hold if env.now_ms < since_ms + timeout_ms => return Some(mbuf),
            Verdict::Hold => Verdict::Drop(DropReason::FragmentTimeout),
            other => other,
        };
        if to.out.is_full() || to.discard.is_full() {
            to.flush(env.queues, tally);
        }
        dispatch_other(verdict, mbuf, &mut to, env, tally);
        None
    });
    to.flush(env.queues, tally);
}

/// What a poll's bursts are decided under and sent through.
struct BurstEnv<'a> {
    snap: &'a Snapshot,
    queues: &'a WorkerQueues,
    now_ms: u64,
    punt: &'a ArrayQueue<Mbuf>,
    stats: &'a WorkerStats,
}

/// Decides every frame of `burst` (rewriting in place), transmits what goes out and
/// frees the rest: every mbuf to exactly one place. Returns the frames decided.
#[inline(always)]
fn decide_burst(
    burst: &mut MbufBurst,
    hints: &BurstHints,
    env: &BurstEnv,
    flows: &mut FlowTable,
    tally: &mut Tally,
    run_carried: &mut SameFlowRun,
    held: &mut Held<Mbuf>,
) -> usize {
    let BurstEnv {
        snap,
        queues,
        now_ms,
        stats,
        ..
    } = *env;
    let count = burst.len();
    let mut to = Sinks {
        out: MbufBurst::new(),
        discard: MbufBurst::new(),
        held: Some(held),
    };
    // The run by value for the burst: behind a reference the compiler reloads the
    // run's fields after every frame it rewrites.
    let mut ctx = Context::new(snap, queues.port_mac, flows, now_ms).carrying(*run_carried);
    // One pass: each frame is decided and sent on its way at once (a second pass
    // over an array of verdicts cost about 30 instructions a frame).
    let mut frames = burst.drain();
    loop {
        // The frames that continue the run of the one before them, moved out and
        // counted together.
        if ctx.run.stands() {
            let run = &ctx.run;
            // The run's family asked once, not for every frame.
            let (run_packets, run_bytes) = if run.is_ipv6() {
                frames.move_while(&mut to.out, |frame| run.forward_as::<true>(frame).is_some())
            } else {
                frames.move_while(&mut to.out, |frame| {
                    run.forward_as::<false>(frame).is_some()
                })
            };
            if run_packets > 0 {
                tally.counts.rx_bytes += run_bytes;
                tally.forwarded(&stats.slots, run.slot(), run_packets as u64, run_bytes);
            }
        }
        let position = frames.position();
        let Some(mut mbuf) = frames.next() else {
            break;
        };
        let hint = hints.get(position);
        let bytes = u64::from(mbuf.pkt_len());
        tally.counts.rx_bytes += bytes;
        let verdict = decide(&mut ctx, mbuf.data_mut(), hint);
        // out and discard hold at most as many mbufs as the burst.
        if let Verdict::Forward { slot } = verdict {
            tally.forwarded(&stats.slots, slot, 1, bytes);
            let _ = to.out.push(mbuf);
        } else {
            dispatch_other(verdict, mbuf, &mut to, env, tally);
        }
    }
    drop(frames);
    *run_carried = ctx.run;
    to.flush(queues, tally);
    tally.counts.rx_packets += count as u64;
    tally.counts.bursts += 1;
    count
}
