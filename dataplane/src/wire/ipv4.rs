//! IPv4 header (RFC 791).
use super::{checksum, read_ipv4, read_u16, write_u16, Error, Field, IpProtocol, Result};
use std::net::Ipv4Addr;

pub mod field {
    use super::Field;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

pub const MIN_HEADER_LEN: usize = field::DST_ADDR.end;

#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Checks the version, the header length and the total length against the buffer.
    /// Bytes past the total length (Ethernet padding) are allowed and ignored.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::Malformed);
        }
        let header_len = usize::from(self.header_len());
        let total_len = usize::from(self.total_len());
        if header_len < MIN_HEADER_LEN || total_len < header_len {
            return Err(Error::Malformed);
        }
        if len < total_len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes.
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    pub fn dont_frag(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & 0x4000 != 0
    }

    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & 0x2000 != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (read_u16(self.buffer.as_ref(), field::FLG_OFF) & 0x1fff) * 8
    }

    /// First fragment or later one: either way the L4 header cannot be trusted to be
    /// the whole story (or is absent).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn src_addr(&self) -> Ipv4Addr {
        read_ipv4(self.buffer.as_ref(), field::SRC_ADDR.start)
    }

    pub fn dst_addr(&self) -> Ipv4Addr {
        read_ipv4(self.buffer.as_ref(), field::DST_ADDR.start)
    }

    pub fn verify_checksum(&self) -> bool {
        let header = &self.buffer.as_ref()[..usize::from(self.header_len())];
        checksum::sum(header) == 0xffff
    }

    /// The L4 bytes: after the options, up to the total length.
    pub fn payload(&self) -> &[u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &self.buffer.as_ref()[range]
    }
}

/// Bytes of the transport header an ICMPv4 error is sure to quote (RFC 792): the
/// ports of TCP and UDP, nothing more.
pub const QUOTED_L4_LEN: usize = 8;

/// The IPv4 packet an ICMP error quotes: its header whole and the first
/// `QUOTED_L4_LEN` bytes of what it carried, the rest perhaps cut off (so its total
/// length says more than there is). Only what is sure to be there is offered.
#[derive(Debug, Clone)]
pub struct QuotedIpv4Packet<T: AsRef<[u8]>> {
    packet: Ipv4Packet<T>,
}

impl<T: AsRef<[u8]>> QuotedIpv4Packet<T> {
    /// Checks the version, the header length, and that the buffer holds the header
    /// and `QUOTED_L4_LEN` bytes after it.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Ipv4Packet::new_unchecked(buffer);
        let len = packet.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = usize::from(packet.header_len());
        if packet.version() != 4 || header_len < MIN_HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < header_len + QUOTED_L4_LEN {
            return Err(Error::Truncated);
        }
        Ok(QuotedIpv4Packet { packet })
    }

    pub fn src_addr(&self) -> Ipv4Addr {
        self.packet.src_addr()
    }

    pub fn dst_addr(&self) -> Ipv4Addr {
        self.packet.dst_addr()
    }

    pub fn protocol(&self) -> IpProtocol {
        self.packet.protocol()
    }

    /// The first `QUOTED_L4_LEN` bytes of the transport header.
    pub fn l4_head(&self) -> &[u8] {
        let start = usize::from(self.packet.header_len());
        &self.packet.buffer.as_ref()[start..start + QUOTED_L4_LEN]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4).
    pub fn set_version_and_header_len(&mut self, header_len: u8) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) & 0x0f);
    }

    pub fn set_dscp_ecn(&mut self, value: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = value;
    }

    pub fn set_total_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }

    pub fn set_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, value);
    }

    pub fn set_flags_and_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let value = (u16::from(dont_frag) << 14) | (u16::from(more_frags) << 13) | (offset / 8);
        write_u16(self.buffer.as_mut(), field::FLG_OFF, value);
    }

    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    pub fn set_protocol(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = value.into();
    }

    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = usize::from(self.header_len());
        let value = checksum::checksum(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(value);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// An IPv4 header dsrlb builds: no options, DF set, checksum filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src_addr: std::net::Ipv4Addr,
    pub dst_addr: std::net::Ipv4Addr,
    pub protocol: IpProtocol,
    /// Bytes after the header.
    pub payload_len: usize,
    pub ttl: u8,
}

impl Ipv4Repr {
    /// Header and payload.
    pub fn buffer_len(&self) -> usize {
        MIN_HEADER_LEN + self.payload_len
    }

    /// Writes the header; the packet's buffer is at least `buffer_len` bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        packet.set_version_and_header_len(MIN_HEADER_LEN as u8);
        packet.set_dscp_ecn(0);
        packet.set_total_len(self.buffer_len() as u16);
        packet.set_ident(0);
        packet.set_flags_and_offset(true, false, 0);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 10.99.0.1 -> 10.99.0.100, TCP, DF, ttl 64, 20 bytes of payload.
    static HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x28, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x13, 0x72, //
        10, 99, 0, 1, 10, 99, 0, 100,
    ];

    fn packet_bytes() -> Vec<u8> {
        let mut bytes = HEADER.to_vec();
        bytes.extend(0u8..20);
        bytes
    }

    #[test]
    fn parse() {
        let bytes = packet_bytes();
        let ip = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(ip.version(), 4);
        assert_eq!(ip.header_len(), 20);
        assert_eq!(ip.total_len(), 40);
        assert_eq!(ip.ident(), 0x1234);
        assert!(ip.dont_frag());
        assert!(!ip.is_fragment());
        assert_eq!(ip.ttl(), 64);
        assert_eq!(ip.protocol(), IpProtocol::Tcp);
        assert_eq!(ip.src_addr(), Ipv4Addr::new(10, 99, 0, 1));
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(10, 99, 0, 100));
        assert!(ip.verify_checksum());
        assert_eq!(ip.payload().len(), 20);
    }

    #[test]
    fn emit() {
        let mut bytes = [0u8; 40];
        let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
        ip.set_version_and_header_len(20);
        ip.set_dscp_ecn(0);
        ip.set_total_len(40);
        ip.set_ident(0x1234);
        ip.set_flags_and_offset(true, false, 0);
        ip.set_ttl(64);
        ip.set_protocol(IpProtocol::Tcp);
        ip.set_src_addr(Ipv4Addr::new(10, 99, 0, 1));
        ip.set_dst_addr(Ipv4Addr::new(10, 99, 0, 100));
        ip.fill_checksum();
        assert_eq!(&bytes[..20], &HEADER[..]);
    }

    #[test]
    fn padding_after_total_len_is_ignored() {
        let mut bytes = packet_bytes();
        bytes.extend([0u8; 6]);
        let ip = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(ip.payload().len(), 20);
    }

    #[test]
    fn refuses_bad_headers() {
        let bytes = packet_bytes();
        type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: [(&str, Mutation, Error); 5] = [
            (
                "shorter than 20",
                Box::new(|b| b.truncate(19)),
                Error::Truncated,
            ),
            ("version 6", Box::new(|b| b[0] = 0x65), Error::Malformed),
            ("ihl 4", Box::new(|b| b[0] = 0x44), Error::Malformed),
            ("total below ihl", Box::new(|b| b[3] = 19), Error::Malformed),
            (
                "total beyond buffer",
                Box::new(|b| b[3] = 41),
                Error::Truncated,
            ),
        ];
        for (what, mutate, expected) in cases {
            let mut b = bytes.clone();
            mutate(&mut b);
            assert_eq!(
                Ipv4Packet::new_checked(&b[..]).unwrap_err(),
                expected,
                "{what}"
            );
        }
    }

    #[test]
    fn options_longer_than_buffer() {
        let mut b = packet_bytes();
        b[0] = 0x4f; // 60-byte header in a 40-byte packet
        b[3] = 40;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn fragments() {
        let mut b = packet_bytes();
        b[6] = 0x20; // MF
        assert!(Ipv4Packet::new_checked(&b[..]).unwrap().is_fragment());
        b[6] = 0x00;
        b[7] = 0x10; // offset 128
        let ip = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(ip.is_fragment());
        assert_eq!(ip.frag_offset(), 128);
    }
}
