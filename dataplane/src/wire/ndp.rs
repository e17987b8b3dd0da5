//! Neighbour Discovery (RFC 4861 §4.3, §4.4): neighbour solicitations and
//! advertisements over an `Icmpv6Packet`, with their link-layer address options.
use super::icmpv6::{Icmpv6Message, Icmpv6Packet};
use super::{ethernet, ipv6, EtherType, EthernetFrame, EthernetRepr, IpProtocol, Ipv6Packet};
use super::{read_ipv6, Error, Ipv6Repr, MacAddr, Result};
use std::net::Ipv6Addr;

pub mod field {
    use std::ops::Range;
    /// Advertisement flags: router, solicited, override.
    pub const FLAGS: usize = 4;
    pub const TARGET: Range<usize> = 8..24;
    pub const OPTIONS: usize = 24;
    /// In an option: its type, its length in 8-byte units, then a link-layer address.
    pub const OPT_TYPE: usize = 0;
    pub const OPT_LENGTH: usize = 1;
    pub const OPT_MAC: Range<usize> = 2..8;
}

pub const FLAG_ROUTER: u8 = 0x80;
pub const FLAG_SOLICITED: u8 = 0x40;
pub const FLAG_OVERRIDE: u8 = 0x20;

const OPT_SOURCE_MAC: u8 = 1;
const OPT_TARGET_MAC: u8 = 2;
/// An Ethernet link-layer address option: 8 bytes.
const MAC_OPTION_LEN: usize = field::OPT_MAC.end;

/// Hop limit every NDP message is sent with, and the only one accepted (§7.1.1): a
/// message that crossed a router is not from the link.
pub const HOP_LIMIT: u8 = 255;

/// A neighbour solicitation or advertisement. `mac` is the link-layer address option
/// its kind carries (source for a solicitation, target for an advertisement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdpRepr {
    Solicit {
        target: Ipv6Addr,
        mac: Option<MacAddr>,
    },
    Advert {
        flags: u8,
        target: Ipv6Addr,
        mac: Option<MacAddr>,
    },
}

impl NdpRepr {
    /// The solicitation or advertisement a checked packet holds; None for any other
    /// message. Refused (§7.1.1, §7.1.2): a code other than 0, a body shorter than
    /// 24 bytes, a multicast target, an option of length 0 or past the end.
    pub fn parse<T: AsRef<[u8]>>(packet: &Icmpv6Packet<T>) -> Result<Option<NdpRepr>> {
        let kind = packet.msg_type();
        if !matches!(
            kind,
            Icmpv6Message::NeighborSolicitation | Icmpv6Message::NeighborAdvertisement
        ) {
            return Ok(None);
        }
        let bytes = packet.message();
        if bytes.len() < field::OPTIONS {
            return Err(Error::Truncated);
        }
        let target = read_ipv6(bytes, field::TARGET);
        if packet.msg_code() != 0 || target.is_multicast() {
            return Err(Error::Malformed);
        }
        let wanted = if kind == Icmpv6Message::NeighborSolicitation {
            OPT_SOURCE_MAC
        } else {
            OPT_TARGET_MAC
        };
        let mac = link_layer_option(&bytes[field::OPTIONS..], wanted)?;
        Ok(Some(match kind {
            Icmpv6Message::NeighborSolicitation => NdpRepr::Solicit { target, mac },
            _ => NdpRepr::Advert {
                flags: bytes[field::FLAGS] & (FLAG_ROUTER | FLAG_SOLICITED | FLAG_OVERRIDE),
                target,
                mac,
            },
        }))
    }

    /// The message's length: 24 bytes, and 8 for the option if any.
    pub fn buffer_len(&self) -> usize {
        field::OPTIONS
            + if self.mac().is_some() {
                MAC_OPTION_LEN
            } else {
                0
            }
    }

    fn mac(&self) -> Option<MacAddr> {
        match *self {
            NdpRepr::Solicit { mac, .. } | NdpRepr::Advert { mac, .. } => mac,
        }
    }

    /// Writes the message, checksum included, for a packet from `src` to `dst`; the
    /// packet's buffer is `buffer_len` bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Icmpv6Packet<T>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) {
        let (kind, flags, target, option) = match *self {
            NdpRepr::Solicit { target, .. } => (
                Icmpv6Message::NeighborSolicitation,
                0,
                target,
                OPT_SOURCE_MAC,
            ),
            NdpRepr::Advert { flags, target, .. } => (
                Icmpv6Message::NeighborAdvertisement,
                flags,
                target,
                OPT_TARGET_MAC,
            ),
        };
        packet.set_msg_type(kind);
        packet.set_msg_code(0);
        let bytes = packet.message_mut();
        bytes[field::FLAGS..].fill(0);
        bytes[field::FLAGS] = flags;
        bytes[field::TARGET].copy_from_slice(&target.octets());
        if let Some(mac) = self.mac() {
            let opt = &mut bytes[field::OPTIONS..field::OPTIONS + MAC_OPTION_LEN];
            opt[field::OPT_TYPE] = option;
            opt[field::OPT_LENGTH] = (MAC_OPTION_LEN / 8) as u8;
            opt[field::OPT_MAC].copy_from_slice(&mac.0);
        }
        packet.fill_checksum(src, dst);
    }
}

/// The Ethernet address in the first option of type `wanted`, walking every option
/// to check its length.
impl NdpRepr {
    /// The whole frame dsrlb sends: from `src_mac`, to `dst`'s MAC (a multicast
    /// group's, or the all-nodes one for any other address: dsrlb sends only
    /// solicitations to solicited-node groups and unsolicited advertisements), hop
    /// limit 255.
    pub fn frame(&self, src_mac: MacAddr, (src, dst): (Ipv6Addr, Ipv6Addr)) -> [u8; FRAME_LEN] {
        let mut bytes = [0u8; FRAME_LEN];
        let dst_mac = if dst.is_multicast() {
            ipv6::multicast_mac(dst)
        } else {
            ipv6::multicast_mac(ipv6::ALL_NODES)
        };
        let header = EthernetRepr {
            src_addr: src_mac,
            dst_addr: dst_mac,
            ethertype: EtherType::Ipv6,
        };
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        header.emit(&mut frame);
        let ip = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: self.buffer_len(),
            hop_limit: HOP_LIMIT,
        };
        let mut packet = Ipv6Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut packet);
        let message = &mut packet.payload_mut()[..self.buffer_len()];
        self.emit(&mut Icmpv6Packet::new_unchecked(message), src, dst);
        bytes
    }
}

/// The longest frame `NdpRepr::frame` builds: a message with its MAC option.
pub const FRAME_LEN: usize =
    ethernet::HEADER_LEN + ipv6::HEADER_LEN + field::OPTIONS + MAC_OPTION_LEN;

fn link_layer_option(mut options: &[u8], wanted: u8) -> Result<Option<MacAddr>> {
    let mut found = None;
    while !options.is_empty() {
        let len = usize::from(*options.get(field::OPT_LENGTH).ok_or(Error::Truncated)?) * 8;
        if len == 0 {
            return Err(Error::Malformed);
        }
        let option = options.get(..len).ok_or(Error::Truncated)?;
        if found.is_none() && option[field::OPT_TYPE] == wanted && len >= MAC_OPTION_LEN {
            found = Some(MacAddr::from_bytes(&option[field::OPT_MAC]));
        }
        options = &options[len..];
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Checksums as tcpdump -vv verifies them ("icmp6 sum ok").
    /// fd00:99::1 -> ff02::1:ff00:100: who has fd00:99::100, from 02:00:00:00:cc:01.
    const SOLICIT: &str = "8700ae6800000000fd000099000000000000000000000100010102000000cc01";
    /// fd00:99::100 -> fd00:99::1: fd00:99::100 is at 02:00:00:00:00:02 (S, O).
    const ADVERT: &str = "880018d360000000fd0000990000000000000000000001000201020000000002";

    fn solicit() -> NdpRepr {
        NdpRepr::Solicit {
            target: addr("fd00:99::100"),
            mac: Some(MacAddr([2, 0, 0, 0, 0xcc, 1])),
        }
    }

    fn advert() -> NdpRepr {
        NdpRepr::Advert {
            flags: FLAG_SOLICITED | FLAG_OVERRIDE,
            target: addr("fd00:99::100"),
            mac: Some(MacAddr([2, 0, 0, 0, 0, 2])),
        }
    }

    #[test]
    fn parse_and_emit_both_messages() {
        let cases = [
            (SOLICIT, solicit(), "fd00:99::1", "ff02::1:ff00:100"),
            (ADVERT, advert(), "fd00:99::100", "fd00:99::1"),
        ];
        for (bytes, repr, src, dst) in cases {
            let bytes = hex(bytes);
            let packet = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
            assert!(packet.verify_checksum(addr(src), addr(dst)));
            assert_eq!(NdpRepr::parse(&packet), Ok(Some(repr)));
            let mut out = vec![0xffu8; repr.buffer_len()];
            repr.emit(
                &mut Icmpv6Packet::new_unchecked(&mut out[..]),
                addr(src),
                addr(dst),
            );
            assert_eq!(out, bytes, "{repr:?}");
        }
    }

    #[test]
    fn without_an_option() {
        let repr = NdpRepr::Solicit {
            target: addr("fd00:99::100"),
            mac: None,
        };
        let mut out = vec![0u8; repr.buffer_len()];
        assert_eq!(out.len(), 24);
        let (src, dst) = (Ipv6Addr::UNSPECIFIED, addr("ff02::1:ff00:100"));
        repr.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), src, dst);
        let packet = Icmpv6Packet::new_checked(&out[..]).unwrap();
        assert!(packet.verify_checksum(src, dst));
        assert_eq!(NdpRepr::parse(&packet), Ok(Some(repr)));
    }

    #[test]
    fn refuses_what_rfc_4861_refuses() {
        type Mutation = fn(&mut Vec<u8>);
        let cases: [(&str, Mutation, Result<Option<NdpRepr>>); 7] = [
            ("code 1", |b| b[1] = 1, Err(Error::Malformed)),
            ("multicast target", |b| b[8] = 0xff, Err(Error::Malformed)),
            ("option of length 0", |b| b[25] = 0, Err(Error::Malformed)),
            ("option past the end", |b| b[25] = 2, Err(Error::Truncated)),
            (
                "option length byte missing",
                |b| b.truncate(25),
                Err(Error::Truncated),
            ),
            ("shorter than 24", |b| b.truncate(23), Err(Error::Truncated)),
            ("an echo is not NDP", |b| b[0] = 128, Ok(None)),
        ];
        for (what, mutate, expected) in cases {
            let mut b = hex(SOLICIT);
            mutate(&mut b);
            let packet = Icmpv6Packet::new_checked(&b[..]).unwrap();
            assert_eq!(NdpRepr::parse(&packet), expected, "{what}");
        }
    }

    #[test]
    fn an_option_of_another_kind_is_skipped() {
        // A solicitation carrying a target link-layer option (type 2, meaningless in
        // it), then its source one: the source one is read.
        let mut b = hex(SOLICIT);
        let mut other = b[24..32].to_vec();
        other[0] = 2;
        other[7] = 9;
        b.splice(24..24, other);
        let packet = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(NdpRepr::parse(&packet), Ok(Some(solicit())));
    }
}
