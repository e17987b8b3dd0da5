//! ARP for IPv4 over Ethernet (RFC 826). Other hardware or protocol types are refused
//! by `new_checked` as `Malformed`, so the fixed offsets below always hold.
use super::ethernet::{self, EtherType, EthernetFrame, EthernetRepr};
use super::{read_ipv4, read_u16, wire_enum, write_u16, Error, Field, MacAddr, Result};
use std::net::Ipv4Addr;

wire_enum! {
    pub enum ArpOperation(u16) {
        Request = 1,
        Reply = 2,
    }
}

mod field {
    use super::Field;
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

pub const PACKET_LEN: usize = field::TPA.end;
const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        if read_u16(data, field::HTYPE) != HTYPE_ETHERNET
            || read_u16(data, field::PTYPE) != PTYPE_IPV4
            || data[field::HLEN] != 6
            || data[field::PLEN] != 4
        {
            return Err(Error::Malformed);
        }
        Ok(())
    }

    pub fn operation(&self) -> ArpOperation {
        ArpOperation::from(read_u16(self.buffer.as_ref(), field::OPER))
    }

    pub fn sender_hardware_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SHA])
    }

    pub fn sender_protocol_addr(&self) -> Ipv4Addr {
        read_ipv4(self.buffer.as_ref(), field::SPA.start)
    }

    pub fn target_hardware_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::THA])
    }

    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        read_ipv4(self.buffer.as_ref(), field::TPA.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Writes the fixed Ethernet/IPv4 header fields.
    pub fn set_ethernet_ipv4(&mut self) {
        let data = self.buffer.as_mut();
        write_u16(data, field::HTYPE, HTYPE_ETHERNET);
        write_u16(data, field::PTYPE, PTYPE_IPV4);
        data[field::HLEN] = 6;
        data[field::PLEN] = 4;
    }

    pub fn set_operation(&mut self, op: ArpOperation) {
        write_u16(self.buffer.as_mut(), field::OPER, op.into());
    }

    pub fn set_sender_hardware_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&addr.0);
    }

    pub fn set_sender_protocol_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&addr.octets());
    }

    pub fn set_target_hardware_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&addr.0);
    }

    pub fn set_target_protocol_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&addr.octets());
    }
}

/// An Ethernet/IPv4 ARP message, parsed or to be emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    pub operation: ArpOperation,
    pub sender_hardware_addr: MacAddr,
    pub sender_protocol_addr: Ipv4Addr,
    pub target_hardware_addr: MacAddr,
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// The message a checked packet holds (`new_checked` refused any other kind).
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> ArpRepr {
        ArpRepr {
            operation: packet.operation(),
            sender_hardware_addr: packet.sender_hardware_addr(),
            sender_protocol_addr: packet.sender_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        }
    }

    /// "Who has `wanted`? Tell `from`."
    pub fn request(from: (MacAddr, Ipv4Addr), wanted: Ipv4Addr) -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            sender_hardware_addr: from.0,
            sender_protocol_addr: from.1,
            target_hardware_addr: MacAddr::ZERO,
            target_protocol_addr: wanted,
        }
    }

    /// A gratuitous ARP: a request for `addr` from `addr` itself, which every host
    /// on the segment that knows `addr` updates its entry from.
    pub fn gratuitous(mac: MacAddr, addr: Ipv4Addr) -> ArpRepr {
        ArpRepr::request((mac, addr), addr)
    }

    /// The answer to this request: `wanted` (asked about) is at `mac`.
    pub fn reply(&self, mac: MacAddr) -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Reply,
            sender_hardware_addr: mac,
            sender_protocol_addr: self.target_protocol_addr,
            target_hardware_addr: self.sender_hardware_addr,
            target_protocol_addr: self.sender_protocol_addr,
        }
    }

    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_ethernet_ipv4();
        packet.set_operation(self.operation);
        packet.set_sender_hardware_addr(self.sender_hardware_addr);
        packet.set_sender_protocol_addr(self.sender_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
    }

    /// The whole frame: to `eth_dst` from the sender's MAC, padded to the Ethernet
    /// minimum as a NIC sends it.
    pub fn frame(&self, eth_dst: MacAddr) -> [u8; ethernet::MIN_FRAME_LEN] {
        let mut bytes = [0u8; ethernet::MIN_FRAME_LEN];
        let header = EthernetRepr {
            src_addr: self.sender_hardware_addr,
            dst_addr: eth_dst,
            ethertype: EtherType::Arp,
        };
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        header.emit(&mut frame);
        self.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // who-has 10.99.0.100 tell 10.99.0.1
    static REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, //
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 99, 0, 1, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 99, 0, 100,
    ];

    #[test]
    fn parse() {
        let arp = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(arp.operation(), ArpOperation::Request);
        assert_eq!(arp.sender_hardware_addr(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(arp.sender_protocol_addr(), Ipv4Addr::new(10, 99, 0, 1));
        assert_eq!(arp.target_hardware_addr(), MacAddr::ZERO);
        assert_eq!(arp.target_protocol_addr(), Ipv4Addr::new(10, 99, 0, 100));
    }

    #[test]
    fn emit() {
        let mut bytes = [0u8; 28];
        let mut arp = ArpPacket::new_unchecked(&mut bytes[..]);
        arp.set_ethernet_ipv4();
        arp.set_operation(ArpOperation::Request);
        arp.set_sender_hardware_addr(MacAddr([2, 0, 0, 0, 0, 1]));
        arp.set_sender_protocol_addr(Ipv4Addr::new(10, 99, 0, 1));
        arp.set_target_hardware_addr(MacAddr::ZERO);
        arp.set_target_protocol_addr(Ipv4Addr::new(10, 99, 0, 100));
        assert_eq!(bytes, REQUEST);
    }

    #[test]
    fn repr_round_trips_and_answers() {
        let request = ArpRepr::parse(&ArpPacket::new_checked(&REQUEST[..]).unwrap());
        let (client, vip) = (Ipv4Addr::new(10, 99, 0, 1), Ipv4Addr::new(10, 99, 0, 100));
        assert_eq!(
            request,
            ArpRepr::request((MacAddr([2, 0, 0, 0, 0, 1]), client), vip)
        );
        let mut bytes = [0u8; PACKET_LEN];
        request.emit(&mut ArpPacket::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, REQUEST);
        let ours = MacAddr([2, 0, 0, 0, 0, 2]);
        let reply = request.reply(ours);
        assert_eq!(
            (
                reply.operation,
                reply.sender_protocol_addr,
                reply.target_hardware_addr
            ),
            (ArpOperation::Reply, vip, MacAddr([2, 0, 0, 0, 0, 1]))
        );
        let garp = ArpRepr::gratuitous(ours, vip);
        let frame = garp.frame(MacAddr::BROADCAST);
        assert_eq!(frame.len(), 60, "padded to the Ethernet minimum");
        let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!(
            (eth.dst_addr(), eth.src_addr(), eth.ethertype()),
            (MacAddr::BROADCAST, ours, EtherType::Arp)
        );
        let parsed = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap());
        assert_eq!(parsed, garp);
        assert!(frame[ethernet::HEADER_LEN + PACKET_LEN..]
            .iter()
            .all(|&b| b == 0));
    }

    #[test]
    fn refuses_what_it_cannot_view() {
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..27]).unwrap_err(),
            Error::Truncated
        );
        let mut other_hw = REQUEST;
        other_hw[1] = 6; // IEEE 802
        assert_eq!(
            ArpPacket::new_checked(&other_hw[..]).unwrap_err(),
            Error::Malformed
        );
        let mut short_hlen = REQUEST;
        short_hlen[4] = 1;
        assert_eq!(
            ArpPacket::new_checked(&short_hlen[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn unknown_operation() {
        let mut rarp = REQUEST;
        rarp[7] = 3;
        let arp = ArpPacket::new_checked(&rarp[..]).unwrap();
        assert_eq!(arp.operation(), ArpOperation::Unknown(3));
    }
}
