//! MLDv2 listener reports (RFC 3810 §5.2): how dsrlb tells switches that snoop
//! multicast which groups to pass it, the solicited-node groups of its IPv6
//! addresses, so that neighbour solicitations for them reach it. Reports go to all
//! MLDv2 routers, hop limit 1, behind a hop-by-hop header with the router alert
//! option (§5), from a link-local address.
use super::icmpv6::{self, Icmpv6Message, Icmpv6Packet};
use super::ipv6::{self, multicast_mac};
use super::{ethernet, ipv6ext, read_u16, write_u16};
use super::{Error, EtherType, EthernetFrame, EthernetRepr, IpProtocol, Ipv6Packet, Ipv6Repr};
use super::{MacAddr, Result};
use std::net::Ipv6Addr;

/// After the ICMPv6 type, code and checksum: two reserved bytes, the number of
/// records, then the records; in a record: its type, the auxiliary data's length,
/// the number of sources, the group (then the sources, none in dsrlb's).
pub mod field {
    pub const RECORD_COUNT: usize = 6;
    pub const RECORDS: usize = 8;
    pub const RECORD_TYPE: usize = 0;
    pub const AUX_LEN: usize = 1;
    pub const SOURCE_COUNT: usize = 2;
    pub const GROUP: std::ops::Range<usize> = 4..20;
}

/// A record without sources.
pub const RECORD_LEN: usize = field::GROUP.end;

/// Where reports go (§5.2.14).
pub const ALL_MLDV2_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);

/// "Listening in exclude mode to no source", that is to every source (§5.2.12).
pub const MODE_IS_EXCLUDE: u8 = 2;

/// The hop-by-hop header reports carry: next header ICMPv6, no more than its 8
/// bytes, a router alert option (type 5, 2 bytes, value 0: MLD; RFC 2711) and a
/// PadN of none to fill them.
pub const ROUTER_ALERT: [u8; ipv6ext::UNIT] = [58, 0, 5, 2, 0, 0, 1, 0];

/// The groups a report says dsrlb listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MldReportRepr<'a> {
    pub groups: &'a [Ipv6Addr],
}

impl MldReportRepr<'_> {
    pub fn buffer_len(&self) -> usize {
        field::RECORDS + RECORD_LEN * self.groups.len()
    }

    /// Writes the message, checksum over `src` → `dst` included; `message` is
    /// `buffer_len` long.
    pub fn emit(&self, message: &mut Icmpv6Packet<&mut [u8]>, src: Ipv6Addr, dst: Ipv6Addr) {
        let bytes = message.message_mut();
        bytes.fill(0);
        bytes[icmpv6::field::TYPE] = Icmpv6Message::MulticastListenerReportV2.into();
        write_u16(bytes, field::RECORD_COUNT, self.groups.len() as u16);
        for (record, group) in bytes[field::RECORDS..]
            .chunks_exact_mut(RECORD_LEN)
            .zip(self.groups)
        {
            record[field::RECORD_TYPE] = MODE_IS_EXCLUDE;
            record[field::GROUP].copy_from_slice(&group.octets());
        }
        message.fill_checksum(src, dst);
    }

    /// The groups of a report's records (for tests and the lab's checks).
    pub fn groups_of(message: &[u8]) -> Result<Vec<Ipv6Addr>> {
        let count = usize::from(read_u16(
            message.get(..field::RECORDS).ok_or(Error::Truncated)?,
            field::RECORD_COUNT,
        ));
        let mut groups = Vec::with_capacity(count.min(64));
        let mut at = field::RECORDS;
        for _ in 0..count {
            let record = message.get(at..at + RECORD_LEN).ok_or(Error::Truncated)?;
            let sources = usize::from(read_u16(record, field::SOURCE_COUNT));
            let aux = usize::from(record[field::AUX_LEN]) * 4;
            let octets: [u8; 16] = record[field::GROUP]
                .try_into()
                .map_err(|_| Error::Truncated)?;
            groups.push(Ipv6Addr::from(octets));
            at += RECORD_LEN + sources * 16 + aux;
        }
        Ok(groups)
    }

    /// The whole frame from `src_mac` and `src` (link-local) to all MLDv2 routers.
    pub fn frame(&self, src_mac: MacAddr, src: Ipv6Addr) -> Vec<u8> {
        let dst = ALL_MLDV2_ROUTERS;
        let payload_len = ROUTER_ALERT.len() + self.buffer_len();
        let mut bytes = vec![0u8; ethernet::HEADER_LEN + ipv6::HEADER_LEN + payload_len];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        EthernetRepr {
            src_addr: src_mac,
            dst_addr: multicast_mac(dst),
            ethertype: EtherType::Ipv6,
        }
        .emit(&mut frame);
        let mut packet = Ipv6Packet::new_unchecked(frame.payload_mut());
        Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::HopByHop,
            payload_len,
            hop_limit: 1,
        }
        .emit(&mut packet);
        let (hop_by_hop, message) = packet.payload_mut().split_at_mut(ROUTER_ALERT.len());
        hop_by_hop.copy_from_slice(&ROUTER_ALERT);
        self.emit(&mut Icmpv6Packet::new_unchecked(message), src, dst);
        bytes
    }
}

/// The link-local address a port's MAC makes (modified EUI-64, RFC 4291 App. A):
/// the source of its reports.
pub fn link_local(mac: MacAddr) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv6::solicited_node;

    #[test]
    fn a_report_lists_each_group_to_all_mldv2_routers_behind_a_router_alert() {
        let mac = MacAddr([0x02, 0x99, 0, 0, 0, 0x02]);
        let groups = [
            solicited_node("fd00:99::2".parse().unwrap()),
            solicited_node("fd00:99::100".parse().unwrap()),
        ];
        let src = link_local(mac);
        assert_eq!(src, "fe80::99:ff:fe00:2".parse::<Ipv6Addr>().unwrap());
        let frame = MldReportRepr { groups: &groups }.frame(mac, src);
        let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!(eth.dst_addr(), MacAddr([0x33, 0x33, 0, 0, 0, 0x16]));
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(
            (ip.hop_limit(), ip.next_header()),
            (1, IpProtocol::HopByHop)
        );
        assert_eq!((ip.src_addr(), ip.dst_addr()), (src, ALL_MLDV2_ROUTERS));
        let transport = ipv6ext::walk(ip.next_header(), ip.payload()).unwrap();
        assert_eq!(
            (transport.protocol, transport.offset),
            (IpProtocol::Icmpv6, 8)
        );
        let message = Icmpv6Packet::new_checked(&ip.payload()[8..]).unwrap();
        assert_eq!(message.msg_type(), Icmpv6Message::MulticastListenerReportV2);
        assert!(message.verify_checksum(src, ALL_MLDV2_ROUTERS));
        let body = &ip.payload()[8..];
        assert_eq!(MldReportRepr::groups_of(body).unwrap(), groups);
        assert_eq!(body[field::RECORDS + field::RECORD_TYPE], MODE_IS_EXCLUDE);
        assert_eq!(body.len(), 8 + 2 * 20);
    }
}
