//! The same-flow run: a frame that continues the flow and header shape of the frame
//! decided before it goes the same way without a lookup (see `SameFlowRun`).

use super::fast::at;
use super::fast6::at as at6;
use crate::snapshot::Snapshot;
use crate::wire::tcp;

/// The flow of the frame forwarded just before in this burst. The next frame of
/// the same flow with the same header shape (same length and TCP state: a TSO
/// train's full segments, an elephant flow's burst) goes to the same target without
/// the service lookup, hash and flow-table probe.
/// This is exact, not a cache: between two frames of the run nothing it relies on
/// can change, and touching the entry again with the same state in the same
/// millisecond changes nothing. Within a burst that holds by construction (one
/// snapshot, one clock reading, and any other frame decided in between replaces or
/// ends the run). Across bursts `carry_over` keeps the run only under the same
/// snapshot and in the same millisecond: the worker's flow-table walk between polls
/// then only clears entries expired by that millisecond, and the run's entry was
/// touched in it.
///
/// A frame continues the run when it is long enough and its first `RUN_SPAN` bytes
/// equal those of the frame that started it wherever `run_mask` says: every byte the
/// fast path validates or keys the flow on. Its validation would then come out the
/// same (the one check that depends on the frame's length is repeated as `min_len`),
/// so it is not repeated field by field: one masked compare of three 16-byte words.
#[derive(Debug, Clone, Copy)]
pub struct SameFlowRun {
    /// The first `RUN_SPAN` bytes of the frame that started the run, as it came in.
    image: HeadWords,
    mask: &'static HeadWords,
    /// An IPv6 run's bytes past `RUN_SPAN` (`ipv6`: whether the run is IPv6's).
    ipv6: bool,
    image6: Tail6,
    mask6: &'static Tail6,
    /// The shortest frame the run takes (usize::MAX: no run).
    min_len: usize,
    slot: u16,
    /// The frame's first 12 bytes after the rewrite (the target's MAC, this
    /// port's), as two words: two stores instead of byte-wise copies.
    macs_head: u64,
    macs_tail: u32,
    /// The snapshot (`Snapshot::epoch`) and millisecond of the run's first frame.
    snapshot_epoch: u64,
    now_ms: u64,
    /// The flow hash of the frame the fast path decided in full last, run or not: a
    /// frame with the same hash starts a run, so a train's second frame starts the
    /// run the rest of it continues. Among many flows almost no run outlives its
    /// first frame, and starting one for every frame costs more than this compare
    /// (its image copied, then compared with the next frame). A hash that matches
    /// another flow's only starts a run that no frame continues: never a question of
    /// correctness, since a frame outside a run is decided in full.
    last_hash: u64,
}

/// Bytes of a frame compared with the run's first frame: the fast path's span up to
/// the TCP flags (UDP's header ends before it).
pub(super) const RUN_SPAN: usize = at::TCP_FLAGS + 1;

/// An IPv6 frame's run compares up to its TCP flags too: IPv4's span, then `TAIL6`
/// bytes more (`Tail6`).
pub(super) const RUN_SPAN6: usize = at6::TCP_FLAGS + 1;
pub(super) const TAIL6: usize = RUN_SPAN6 - RUN_SPAN;

/// Which bits of the first `RUN_SPAN` bytes a frame of the run must share with its
/// first frame: the destination MAC, EtherType, version and header length, total
/// length, fragment bits, protocol, addresses and ports; for TCP the data offset and
/// the SYN and ACK flags (its `FlowState`), for UDP its length. Free to differ: the
/// source MAC (rewritten), TOS, IP id, the DF bit, TTL, checksums, TCP sequence and
/// acknowledgement numbers and its other flags, the UDP payload.
const fn run_mask(tcp: bool) -> HeadWords {
    let mut bytes = [0u8; RUN_SPAN];
    let mut i = 0;
    while i < RUN_SPAN {
        bytes[i] = match i {
            _ if in_range(i, at::ETH_DST) => 0xff,
            _ if in_range(i, at::ETHERTYPE..at::VER_IHL + 1) => 0xff,
            _ if in_range(i, at::IP_LENGTH..at::IP_LENGTH + 2) => 0xff,
            // The fragment bits (MF and the offset); DF may differ.
            at::FLG_OFF => 0x3f,
            _ if i == at::FLG_OFF + 1 || i == at::PROTOCOL => 0xff,
            _ if in_range(i, at::SRC_ADDR..at::DST_PORT + 2) => 0xff,
            _ if !tcp && in_range(i, at::UDP_LENGTH..at::UDP_LENGTH + 2) => 0xff,
            _ if tcp && i == at::TCP_DATA_OFF => 0xf0,
            _ if tcp && i == at::TCP_FLAGS => tcp::FLAG_SYN | tcp::FLAG_ACK,
            _ => 0,
        };
        i += 1;
    }
    HeadWords::new(bytes)
}

const fn in_range(i: usize, range: std::ops::Range<usize>) -> bool {
    range.start <= i && i < range.end
}

/// The same for the IPv6 fast path's frame: the destination MAC, EtherType,
/// version, payload length, next header, addresses and ports; for TCP the data
/// offset and the SYN and ACK flags, for UDP its length. Free: the traffic class,
/// flow label and hop limit, and what IPv4's mask frees in TCP and UDP.
const fn run_mask6(tcp: bool) -> (HeadWords, Tail6) {
    let mut bytes = [0u8; RUN_SPAN6];
    let mut i = 0;
    while i < RUN_SPAN6 {
        bytes[i] = match i {
            _ if in_range(i, at6::ETH_DST) => 0xff,
            _ if in_range(i, at6::ETHERTYPE..at6::ETHERTYPE + 2) => 0xff,
            at6::VERSION => 0xf0,
            _ if in_range(i, at6::PAYLOAD_LEN..at6::PAYLOAD_LEN + 2) => 0xff,
            at6::NEXT_HEADER => 0xff,
            _ if in_range(i, at6::SRC_ADDR..at6::DST_PORT + 2) => 0xff,
            _ if !tcp && in_range(i, at6::UDP_LENGTH..at6::UDP_LENGTH + 2) => 0xff,
            _ if tcp && i == at6::TCP_DATA_OFF => 0xf0,
            _ if tcp && i == at6::TCP_FLAGS => tcp::FLAG_SYN | tcp::FLAG_ACK,
            _ => 0,
        };
        i += 1;
    }
    split6(bytes)
}

/// An IPv6 run's `RUN_SPAN6` bytes as IPv4's words and the tail.
const fn split6(bytes: [u8; RUN_SPAN6]) -> (HeadWords, Tail6) {
    let mut head = [0u8; RUN_SPAN];
    let mut tail = [0u8; TAIL6];
    let mut i = 0;
    while i < RUN_SPAN6 {
        if i < RUN_SPAN {
            head[i] = bytes[i];
        } else {
            tail[i - RUN_SPAN] = bytes[i];
        }
        i += 1;
    }
    (HeadWords::new(head), Tail6::new(tail))
}

static TCP_RUN_MASK: HeadWords = run_mask(true);
static UDP_RUN_MASK: HeadWords = run_mask(false);
static TCP_RUN_MASK6: (HeadWords, Tail6) = run_mask6(true);
static UDP_RUN_MASK6: (HeadWords, Tail6) = run_mask6(false);

/// The `TAIL6` bytes an IPv6 run compares past `RUN_SPAN`: a 16-byte word and the
/// last four bytes.
#[derive(Debug, Clone, Copy)]
struct Tail6 {
    word: HeadWord,
    last: u32,
}

impl Tail6 {
    #[inline(always)]
    const fn new(bytes: [u8; TAIL6]) -> Self {
        let mut word = [0u8; 16];
        let mut i = 0;
        while i < 16 {
            word[i] = bytes[i];
            i += 1;
        }
        Tail6 {
            // SAFETY: both word types are 16 plain bytes, valid for any bit pattern.
            word: unsafe { std::mem::transmute::<[u8; 16], HeadWord>(word) },
            last: u32::from_ne_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]),
        }
    }

    /// Whether `self` and `other` differ in any bit of `mask`.
    #[inline(always)]
    fn differ(&self, other: &Tail6, mask: &Tail6) -> bool {
        nonzero(masked_xor(self.word, other.word, mask.word))
            || (self.last ^ other.last) & mask.last != 0
    }
}

/// `RUN_SPAN` bytes as three 16-byte words. On x86-64 they are SSE vectors: held in
/// a struct, a `u128` is split into two 64-bit halves, and the compare then takes
/// about 20 instructions instead of 12.
#[derive(Debug, Clone, Copy)]
#[repr(transparent)]
struct HeadWords([HeadWord; 3]);

#[cfg(all(target_arch = "x86_64", target_feature = "sse4.1"))]
type HeadWord = core::arch::x86_64::__m128i;
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse4.1")))]
type HeadWord = u128;

impl HeadWords {
    #[inline(always)]
    const fn new(bytes: [u8; RUN_SPAN]) -> Self {
        // SAFETY: both word types are 16 plain bytes, valid for any bit pattern.
        HeadWords(unsafe { std::mem::transmute::<[u8; RUN_SPAN], [HeadWord; 3]>(bytes) })
    }

    /// Whether `self` and `other` differ in any bit of `mask`.
    #[inline(always)]
    fn differ(&self, other: &HeadWords, mask: &HeadWords) -> bool {
        let word = |w: usize| masked_xor(self.0[w], other.0[w], mask.0[w]);
        nonzero(or(or(word(0), word(1)), word(2)))
    }
}

/// `(a ^ b) & mask`, `a | b` and `w != 0` on words.
#[cfg(all(target_arch = "x86_64", target_feature = "sse4.1"))]
mod words {
    use super::HeadWord;
    use core::arch::x86_64::{_mm_and_si128, _mm_or_si128, _mm_testz_si128, _mm_xor_si128};

    // SAFETY (all three): register-only SSE2/SSE4.1 operations, enabled for this
    // build (cfg).
    #[inline(always)]
    #[allow(unused_unsafe)] // the intrinsics are safe to call from Rust 1.87 on
    pub fn masked_xor(a: HeadWord, b: HeadWord, mask: HeadWord) -> HeadWord {
        unsafe { _mm_and_si128(_mm_xor_si128(a, b), mask) }
    }

    #[inline(always)]
    #[allow(unused_unsafe)]
    pub fn or(a: HeadWord, b: HeadWord) -> HeadWord {
        unsafe { _mm_or_si128(a, b) }
    }

    #[inline(always)]
    #[allow(unused_unsafe)]
    pub fn nonzero(w: HeadWord) -> bool {
        unsafe { _mm_testz_si128(w, w) == 0 }
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse4.1")))]
mod words {
    use super::HeadWord;

    #[inline(always)]
    pub fn masked_xor(a: HeadWord, b: HeadWord, mask: HeadWord) -> HeadWord {
        (a ^ b) & mask
    }

    #[inline(always)]
    pub fn or(a: HeadWord, b: HeadWord) -> HeadWord {
        a | b
    }

    #[inline(always)]
    pub fn nonzero(w: HeadWord) -> bool {
        w != 0
    }
}

use words::{masked_xor, nonzero, or};

impl Default for SameFlowRun {
    fn default() -> Self {
        SameFlowRun {
            image: HeadWords::new([0; RUN_SPAN]),
            mask: &TCP_RUN_MASK,
            ipv6: false,
            image6: Tail6::new([0; TAIL6]),
            mask6: &TCP_RUN_MASK6.1,
            min_len: usize::MAX,
            slot: 0,
            macs_head: 0,
            macs_tail: 0,
            snapshot_epoch: 0,
            now_ms: 0,
            last_hash: 0,
        }
    }
}

impl SameFlowRun {
    #[inline(always)]
    pub(super) fn end(&mut self) {
        self.min_len = usize::MAX;
    }

    /// Whether a run stands: if not, no frame can continue it.
    #[inline(always)]
    pub fn stands(&self) -> bool {
        self.min_len != usize::MAX
    }

    /// Keeps the run for frames decided under `snapshot` at `now_ms` only if its
    /// first frame was decided under the same snapshot in the same millisecond;
    /// ends it otherwise. Callers that keep one run from burst to burst call this
    /// before each.
    #[inline(always)]
    pub fn carry_over(&mut self, snapshot: &Snapshot, now_ms: u64) {
        if self.snapshot_epoch != snapshot.epoch() || self.now_ms != now_ms {
            self.end();
        }
    }

    /// The target slot of the run's frames (meaningful while a run stands).
    #[inline(always)]
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// Forwards `frame` as the run's first frame was, if it continues the run:
    /// rewritten, and the target slot.
    #[inline(always)]
    pub fn forward(&self, frame: &mut [u8]) -> Option<u16> {
        if self.ipv6 {
            self.forward_as::<true>(frame)
        } else {
            self.forward_as::<false>(frame)
        }
    }

    /// Whether the run is an IPv6 flow's: a loop over frames asks once, then calls
    /// `forward_as` with the answer, so that IPv4's runs pay nothing for IPv6's.
    #[inline(always)]
    pub fn is_ipv6(&self) -> bool {
        self.ipv6
    }

    /// `forward` for a run of the family `IPV6` says (`is_ipv6`).
    #[inline(always)]
    pub fn forward_as<const IPV6: bool>(&self, frame: &mut [u8]) -> Option<u16> {
        // min_len is at least `at::SPAN` while a run stands: with max() the compiler
        // sees that the slice below is long enough, and the check goes.
        if frame.len() < self.min_len.max(RUN_SPAN) {
            return None;
        }
        if IPV6 && self.tail_differs(frame) {
            return None;
        }
        let head: &mut [u8; RUN_SPAN] = frame.get_mut(..RUN_SPAN)?.try_into().ok()?;
        if HeadWords::new(*head).differ(&self.image, self.mask) {
            return None;
        }
        head[..8].copy_from_slice(&self.macs_head.to_ne_bytes());
        head[8..12].copy_from_slice(&self.macs_tail.to_ne_bytes());
        Some(self.slot)
    }
}

impl SameFlowRun {
    /// Whether an IPv6 frame's bytes past `RUN_SPAN` differ from the run's (or it
    /// is too short to have them).
    #[inline(always)]
    fn tail_differs(&self, frame: &[u8]) -> bool {
        let Some(tail) = frame.get(RUN_SPAN..RUN_SPAN6) else {
            return true;
        };
        let Ok(tail) = <[u8; TAIL6]>::try_from(tail) else {
            return true;
        };
        Tail6::new(tail).differ(&self.image6, self.mask6)
    }
}

/// What starts a run: the first frame's head as it came in, its shape and where
/// it went.
pub(super) struct RunStart<'f> {
    pub head: [u8; RUN_SPAN],
    /// An IPv6 frame's bytes past `head`, as it came in.
    pub tail6: Option<[u8; TAIL6]>,
    pub tcp: bool,
    /// The shortest frame the run takes.
    pub min_len: usize,
    pub slot: u16,
    /// The frame after its rewrite (its first 12 bytes are read back).
    pub rewritten: &'f [u8],
}

impl SameFlowRun {
    /// The head of a frame the fast path took, if the frame decided before it had
    /// the same flow hash (see `last_hash`): then, and only then, it may start a run.
    #[inline(always)]
    pub(super) fn head_to_start(&mut self, hash: u64, frame: &[u8]) -> Option<[u8; RUN_SPAN]> {
        let start = hash == self.last_hash;
        self.last_hash = hash;
        if start {
            frame.get(..RUN_SPAN)?.try_into().ok()
        } else {
            None
        }
    }

    /// Starts a run at a frame decided under `snapshot` at `now_ms`; ends the run if
    /// the frame is too short to read its MACs back (never, after the fast path).
    #[inline(always)]
    pub(super) fn start(&mut self, start: RunStart, snapshot: &Snapshot, now_ms: u64) {
        let Some(m) = start.rewritten.get(..12) else {
            self.end();
            return;
        };
        let masks6 = if start.tcp {
            &TCP_RUN_MASK6
        } else {
            &UDP_RUN_MASK6
        };
        let (mask, image6) = match start.tail6 {
            Some(tail) => (&masks6.0, Tail6::new(tail)),
            None if start.tcp => (&TCP_RUN_MASK, Tail6::new([0; TAIL6])),
            None => (&UDP_RUN_MASK, Tail6::new([0; TAIL6])),
        };
        *self = SameFlowRun {
            image: HeadWords::new(start.head),
            mask,
            ipv6: start.tail6.is_some(),
            image6,
            mask6: &masks6.1,
            min_len: start.min_len,
            slot: start.slot,
            // The rewritten MACs, read back: two loads.
            macs_head: u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]]),
            macs_tail: u32::from_ne_bytes([m[8], m[9], m[10], m[11]]),
            snapshot_epoch: snapshot.epoch(),
            now_ms,
            last_hash: self.last_hash,
        }
    }
}
