//! ICMPv6 (RFC 4443): the common header, echo fields, the "packet too big" MTU and
//! the packet an error quotes. NDP's messages are `ndp`'s.
use super::{checksum, read_u16, read_u32, wire_enum, write_u16, Error, IpProtocol, Result};
use std::net::Ipv6Addr;

wire_enum! {
    pub enum Icmpv6Message(u8) {
        DestinationUnreachable = 1,
        PacketTooBig = 2,
        TimeExceeded = 3,
        ParameterProblem = 4,
        EchoRequest = 128,
        EchoReply = 129,
        MulticastListenerQuery = 130,
        RouterSolicitation = 133,
        RouterAdvertisement = 134,
        NeighborSolicitation = 135,
        NeighborAdvertisement = 136,
        Redirect = 137,
        MulticastListenerReportV2 = 143,
    }
}

pub mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    /// Echo: identifier and sequence number.
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQ: usize = 6;
    /// Packet too big: the next hop's MTU.
    pub const MTU: usize = 4;
    /// Errors: the invoking packet, as much as fits.
    pub const QUOTED: usize = 8;
}

/// Type, code, checksum and the 4 bytes every message has after them.
pub const HEADER_LEN: usize = field::QUOTED;

#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// `buffer` is the whole message (the IPv6 payload after any extension headers).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(packet)
    }

    pub fn msg_type(&self) -> Icmpv6Message {
        Icmpv6Message::from(self.buffer.as_ref()[field::TYPE])
    }

    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQ)
    }

    /// The MTU a "packet too big" reports.
    pub fn mtu(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::MTU)
    }

    /// What follows the first 8 bytes: an error's invoking packet, an echo's data.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[field::QUOTED..]
    }

    /// The whole message.
    pub fn message(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Whether the checksum over the pseudo-header of `src` → `dst` holds.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        checksum::transport_v6(src, dst, IpProtocol::Icmpv6.into(), self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    pub fn set_msg_type(&mut self, value: Icmpv6Message) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }

    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    pub fn set_echo_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT, value);
    }

    pub fn set_echo_seq_no(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQ, value);
    }

    pub fn body_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::QUOTED..]
    }

    pub fn message_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Fills the checksum over the pseudo-header of `src` → `dst` and the message.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let value =
            checksum::transport_v6(src, dst, IpProtocol::Icmpv6.into(), self.buffer.as_ref());
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// An echo request fd00:99::1 -> fd00:99::100, ident 0x0102, seq 1, data "abcd";
    /// its checksum as tcpdump -vv verifies it ("icmp6 sum ok").
    static REQUEST: [u8; 12] = [
        0x80, 0x00, 0xbd, 0xba, 0x01, 0x02, 0x00, 0x01, b'a', b'b', b'c', b'd',
    ];

    #[test]
    fn parse_an_echo_request() {
        let icmp = Icmpv6Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(icmp.msg_type(), Icmpv6Message::EchoRequest);
        assert_eq!(
            (icmp.msg_code(), icmp.echo_ident(), icmp.echo_seq_no()),
            (0, 0x0102, 1)
        );
        assert_eq!(icmp.body(), b"abcd");
        assert!(icmp.verify_checksum(addr("fd00:99::1"), addr("fd00:99::100")));
        assert!(!icmp.verify_checksum(addr("fd00:99::2"), addr("fd00:99::100")));
    }

    #[test]
    fn emit_an_echo_request() {
        let mut bytes = [0u8; 12];
        let mut icmp = Icmpv6Packet::new_unchecked(&mut bytes[..]);
        icmp.set_msg_type(Icmpv6Message::EchoRequest);
        icmp.set_msg_code(0);
        icmp.set_echo_ident(0x0102);
        icmp.set_echo_seq_no(1);
        icmp.body_mut().copy_from_slice(b"abcd");
        icmp.fill_checksum(addr("fd00:99::1"), addr("fd00:99::100"));
        assert_eq!(bytes, REQUEST);
    }

    #[test]
    fn packet_too_big_reports_its_mtu() {
        let mut bytes = [0u8; 48];
        bytes[0] = 2;
        bytes[4..8].copy_from_slice(&1400u32.to_be_bytes());
        let icmp = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            (icmp.msg_type(), icmp.mtu(), icmp.body().len()),
            (Icmpv6Message::PacketTooBig, 1400, 40)
        );
    }

    #[test]
    fn truncated_and_unknown() {
        assert_eq!(
            Icmpv6Packet::new_checked(&REQUEST[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(Icmpv6Message::from(200), Icmpv6Message::Unknown(200));
    }
}
