//! The fast path: the common frame (untagged IPv4 without options or fragments, TCP
//! or UDP to a service) read at fixed offsets behind one bounds check.

use super::run::RunStart;
use super::steer::{steer, Flow};
use super::{rewrite_macs, Context, Verdict};
use crate::flow::{FlowKey, FlowState};
use crate::hash::flow_hash;
use crate::wire::{ethernet, ipv4, tcp, udp};

/// Offsets in the fast path's frame, from `wire`'s fields: Ethernet without a tag,
/// then IPv4 without options, then TCP or UDP (whose ports sit where TCP's do).
pub(super) mod at {
    use crate::wire::{ethernet, ipv4};
    use std::ops::Range;

    pub const ETH_DST: Range<usize> = ethernet::field::DESTINATION;
    pub const ETHERTYPE: usize = ethernet::field::ETHERTYPE;
    const IP: usize = ethernet::HEADER_LEN;
    pub const VER_IHL: usize = IP + ipv4::field::VER_IHL;
    pub const IP_LENGTH: usize = IP + ipv4::field::LENGTH;
    pub const FLG_OFF: usize = IP + ipv4::field::FLG_OFF;
    pub const PROTOCOL: usize = IP + ipv4::field::PROTOCOL;
    pub const SRC_ADDR: usize = IP + ipv4::field::SRC_ADDR.start;
    pub const DST_ADDR: usize = IP + ipv4::field::DST_ADDR.start;
    /// Where the transport header starts (IPv4 without options).
    pub const L4: usize = IP + ipv4::MIN_HEADER_LEN;
    pub const SRC_PORT: usize = L4 + super::l4::SRC_PORT;
    pub const DST_PORT: usize = L4 + super::l4::DST_PORT;
    pub const UDP_LENGTH: usize = L4 + super::l4::UDP_LENGTH;
    pub const TCP_DATA_OFF: usize = L4 + super::l4::TCP_DATA_OFF;
    pub const TCP_FLAGS: usize = L4 + super::l4::TCP_FLAGS;
    /// Bytes read at fixed offsets: up to TCP's fixed header (UDP's is within it).
    pub const SPAN: usize = L4 + super::l4::SPAN;
}

/// The transport header's fields both fast paths read, from its start: TCP's, and
/// UDP's, whose ports sit where TCP's do.
pub(super) mod l4 {
    use crate::wire::{tcp, udp};

    pub const SRC_PORT: usize = tcp::field::SRC_PORT;
    pub const DST_PORT: usize = tcp::field::DST_PORT;
    pub const UDP_LENGTH: usize = udp::field::LENGTH;
    pub const TCP_DATA_OFF: usize = tcp::field::DATA_OFF;
    pub const TCP_FLAGS: usize = tcp::field::FLAGS;
    /// Bytes read: TCP's fixed header (UDP's is within it).
    pub const SPAN: usize = tcp::MIN_HEADER_LEN;

    const _: () = assert!(udp::field::SRC_PORT == tcp::field::SRC_PORT);
    const _: () = assert!(udp::field::DST_PORT == tcp::field::DST_PORT);
}

/// What the TCP or UDP header at `h[l4..]` says of its flow, where its IP packet
/// leaves it `room` bytes; None wherever the general path would not take it as it
/// is (a header too short or too long for the packet, another protocol).
#[inline(always)]
pub(super) fn transport_state<const N: usize>(
    h: &[u8; N],
    l4: usize,
    proto: u8,
    room: usize,
) -> Option<FlowState> {
    match proto {
        TCP => {
            let header = usize::from(h[l4 + l4::TCP_DATA_OFF] >> 4) * 4;
            if header < tcp::MIN_HEADER_LEN || room < header {
                return None;
            }
            let flags = h[l4 + l4::TCP_FLAGS];
            Some(
                if flags & tcp::FLAG_SYN != 0 && flags & tcp::FLAG_ACK == 0 {
                    FlowState::TcpSynOnly
                } else {
                    FlowState::TcpEstablished
                },
            )
        }
        UDP => {
            let at = l4 + l4::UDP_LENGTH;
            let udp_len = usize::from(u16::from_be_bytes([h[at], h[at + 1]]));
            (udp::HEADER_LEN..=room)
                .contains(&udp_len)
                .then_some(FlowState::Udp)
        }
        _ => None,
    }
}

/// The values the fast path requires: IPv4 (its EtherType), version 4 with a
/// 20-byte header, no fragment bits (MF and the offset: DF may be set).
const ETHERTYPE_IPV4: u16 = 0x0800;
const VER_IHL_NO_OPTIONS: u8 = 0x40 | (ipv4::MIN_HEADER_LEN / 4) as u8;
const FRAGMENT_BITS: u16 = 0x3fff;
pub(super) const TCP: u8 = 6;
pub(super) const UDP: u8 = 17;

/// None for anything else, or for any check that fails: the general path then
/// decides, with its drop reason. It accepts exactly what the general path forwards,
/// and forwards it the same way.
#[inline(always)]
pub(super) fn fast_path(
    ctx: &mut Context,
    frame: &mut [u8],
    hash_hint: Option<u64>,
) -> Option<Verdict> {
    let len = frame.len();
    let h: &[u8; at::SPAN] = frame.get(..at::SPAN)?.try_into().ok()?;
    let be16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    if h[at::ETH_DST] != ctx.port_mac.0
        || be16(at::ETHERTYPE) != ETHERTYPE_IPV4
        || h[at::VER_IHL] != VER_IHL_NO_OPTIONS
        || be16(at::FLG_OFF) & FRAGMENT_BITS != 0
    {
        return None;
    }
    let total = usize::from(be16(at::IP_LENGTH));
    if total > len - ethernet::HEADER_LEN {
        return None;
    }
    let proto = h[at::PROTOCOL];
    let room = total.checked_sub(ipv4::MIN_HEADER_LEN)?;
    let state = transport_state(h, at::L4, proto, room)?;
    let (src, dst) = (be32(at::SRC_ADDR), be32(at::DST_ADDR));
    let (src_port, dst_port) = (be16(at::SRC_PORT), be16(at::DST_PORT));
    let snapshot = ctx.snapshot;
    let service = snapshot.service(dst, proto, dst_port)?;
    let hash =
        hash_hint.unwrap_or_else(|| flow_hash(src, dst, src_port, dst_port, proto, snapshot.seed));
    // As it came in (the rewrite below changes it), for the run it may start.
    let head = ctx.run.head_to_start(hash, h);
    let flow = Flow {
        key: FlowKey::new(src, src_port, dst_port, service.slot),
        hash,
        state,
    };
    let Some(to) = steer(ctx, service, &flow) else {
        // Nothing changed in the flow table: the run, if any, still stands.
        return Some(Verdict::Unserved {
            service: service.slot,
        });
    };
    rewrite_macs(frame, to.mac, ctx.port_mac);
    match head {
        Some(head) if to.repeatable => ctx.run.start(
            RunStart {
                head,
                tail6: None,
                tcp: proto == TCP,
                min_len: (total + ethernet::HEADER_LEN).max(at::SPAN),
                slot: to.slot,
                rewritten: frame,
            },
            snapshot,
            ctx.now_ms,
        ),
        // Only the marker: writing a whole empty run cost 18 instructions a frame.
        _ => ctx.run.end(),
    }
    Some(Verdict::Forward { slot: to.slot })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{EtherType, IpProtocol};

    #[test]
    fn the_values_the_fast_path_compares_are_wires() {
        assert_eq!(ETHERTYPE_IPV4, u16::from(EtherType::Ipv4));
        assert_eq!(TCP, u8::from(IpProtocol::Tcp));
        assert_eq!(UDP, u8::from(IpProtocol::Udp));
        assert_eq!(at::SPAN, 54);
        assert_eq!((at::DST_ADDR, at::DST_PORT, at::TCP_FLAGS), (30, 36, 47));
    }
}
