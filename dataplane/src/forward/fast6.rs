//! The IPv6 fast path: the common IPv6 frame (untagged, TCP or UDP right after the
//! fixed header, to a service) read at fixed offsets behind one bounds check.
//! Extension headers, ICMPv6 and neighbour discovery go to the general path.

use super::fast::{l4, transport_state, TCP};
use super::run::RunStart;
use super::steer::{steer, Flow};
use super::{rewrite_macs, Context, Verdict};
use crate::flow::FlowKey6;
use crate::hash::flow_hash6;

/// Offsets in the IPv6 fast path's frame, from `wire`'s fields: Ethernet without a
/// tag, the IPv6 fixed header, then TCP or UDP (whose ports sit where TCP's do).
pub(super) mod at {
    use super::l4;
    use crate::wire::{ethernet, ipv6};
    use std::ops::Range;

    pub const ETH_DST: Range<usize> = ethernet::field::DESTINATION;
    pub const ETHERTYPE: usize = ethernet::field::ETHERTYPE;
    const IP: usize = ethernet::HEADER_LEN;
    pub const VERSION: usize = IP + ipv6::field::VER_TC_FLOW.start;
    pub const PAYLOAD_LEN: usize = IP + ipv6::field::PAYLOAD_LEN;
    pub const NEXT_HEADER: usize = IP + ipv6::field::NEXT_HEADER;
    pub const SRC_ADDR: usize = IP + ipv6::field::SRC_ADDR.start;
    pub const DST_ADDR: usize = IP + ipv6::field::DST_ADDR.start;
    /// Where the transport header starts (no extension header).
    pub const L4: usize = IP + ipv6::HEADER_LEN;
    pub const SRC_PORT: usize = L4 + l4::SRC_PORT;
    pub const DST_PORT: usize = L4 + l4::DST_PORT;
    pub const UDP_LENGTH: usize = L4 + l4::UDP_LENGTH;
    pub const TCP_DATA_OFF: usize = L4 + l4::TCP_DATA_OFF;
    pub const TCP_FLAGS: usize = L4 + l4::TCP_FLAGS;
    /// Bytes read at fixed offsets: up to TCP's fixed header (UDP's is within it).
    pub const SPAN: usize = L4 + l4::SPAN;
}

const ETHERTYPE_IPV6: u16 = 0x86dd;

/// None for anything else, or for any check that fails: the general path then
/// decides, with its drop reason. It accepts exactly what the general path forwards,
/// and forwards it the same way; a frame of the flow decided before it may start a
/// same-flow run, as on IPv4's fast path.
#[inline(always)]
pub(super) fn fast_path6(
    ctx: &mut Context,
    frame: &mut [u8],
    hash_hint: Option<u64>,
) -> Option<Verdict> {
    let len = frame.len();
    let h: &[u8; at::SPAN] = frame.get(..at::SPAN)?.try_into().ok()?;
    let be16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
    let be128 = |at: usize| u128::from_be_bytes(h[at..at + 16].try_into().unwrap_or_default());
    if h[at::ETH_DST] != ctx.port_mac.0
        || be16(at::ETHERTYPE) != ETHERTYPE_IPV6
        || h[at::VERSION] >> 4 != 6
    {
        return None;
    }
    let payload = usize::from(be16(at::PAYLOAD_LEN));
    if payload > len - at::L4 {
        return None;
    }
    let proto = h[at::NEXT_HEADER];
    let state = transport_state(h, at::L4, proto, payload)?;
    let (src, dst) = (be128(at::SRC_ADDR), be128(at::DST_ADDR));
    let (src_port, dst_port) = (be16(at::SRC_PORT), be16(at::DST_PORT));
    let snapshot = ctx.snapshot;
    let service = snapshot.service6(dst, proto, dst_port)?;
    let hash =
        hash_hint.unwrap_or_else(|| flow_hash6(src, dst, src_port, dst_port, proto, snapshot.seed));
    // As it came in (the rewrite below changes it), for the run it may start.
    let head = (ctx.run.head_to_start(hash, h)).map(|head| (head, head6(h)));
    let flow = Flow {
        key: FlowKey6::new6(src.to_be_bytes(), src_port, dst_port, service.slot),
        hash,
        state,
    };
    let Some(to) = steer(ctx, service, &flow) else {
        return Some(Verdict::Unserved {
            service: service.slot,
        });
    };
    rewrite_macs(frame, to.mac, ctx.port_mac);
    match head {
        Some((head, tail)) if to.repeatable => ctx.run.start(
            RunStart {
                head,
                tail6: Some(tail),
                tcp: proto == TCP,
                min_len: (payload + at::L4).max(at::SPAN),
                slot: to.slot,
                rewritten: frame,
            },
            snapshot,
            ctx.now_ms,
        ),
        _ => ctx.run.end(),
    }
    Some(Verdict::Forward { slot: to.slot })
}

/// The bytes of an IPv6 frame's head its run compares beyond IPv4's span.
#[inline(always)]
fn head6(h: &[u8; at::SPAN]) -> [u8; super::run::TAIL6] {
    let mut tail = [0; super::run::TAIL6];
    tail.copy_from_slice(&h[super::run::RUN_SPAN..super::run::RUN_SPAN6]);
    tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ethernet, ipv6, EtherType};

    #[test]
    fn the_values_the_fast_path_compares_are_wires() {
        assert_eq!(ETHERTYPE_IPV6, u16::from(EtherType::Ipv6));
        assert_eq!(at::L4, ethernet::HEADER_LEN + ipv6::HEADER_LEN);
    }
}
