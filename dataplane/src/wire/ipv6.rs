//! IPv6 fixed header (RFC 8200 §3), and the addresses NDP derives from a unicast one.
use super::{read_ipv6, read_u16, write_u16, Error, Field, IpProtocol, MacAddr, Result};
use std::net::Ipv6Addr;

pub mod field {
    use super::Field;
    /// Version (4 bits), traffic class (8), flow label (20).
    pub const VER_TC_FLOW: Field = 0..4;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

pub const HEADER_LEN: usize = field::DST_ADDR.end;

#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Checks the version and the payload length against the buffer. Bytes past the
    /// payload (Ethernet padding) are allowed and ignored.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 6 {
            return Err(Error::Malformed);
        }
        if len < HEADER_LEN + usize::from(self.payload_len()) {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW.start] >> 4
    }

    pub fn traffic_class(&self) -> u8 {
        let b = &self.buffer.as_ref()[field::VER_TC_FLOW];
        (b[0] << 4) | (b[1] >> 4)
    }

    pub fn flow_label(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VER_TC_FLOW];
        u32::from_be_bytes([0, b[1] & 0x0f, b[2], b[3]])
    }

    /// Bytes after the fixed header: extension headers and the upper layer.
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NEXT_HEADER])
    }

    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    pub fn src_addr(&self) -> Ipv6Addr {
        read_ipv6(self.buffer.as_ref(), field::SRC_ADDR)
    }

    pub fn dst_addr(&self) -> Ipv6Addr {
        read_ipv6(self.buffer.as_ref(), field::DST_ADDR)
    }

    /// Extension headers and the upper layer, up to the payload length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Version 6, traffic class 0, flow label 0: what dsrlb sends.
    pub fn set_version_plain(&mut self) {
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&[0x60, 0, 0, 0]);
    }

    pub fn set_payload_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, value);
    }

    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::NEXT_HEADER] = value.into();
    }

    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value;
    }

    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// An IPv6 header dsrlb builds: no extension headers, traffic class and flow label 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src_addr: Ipv6Addr,
    pub dst_addr: Ipv6Addr,
    pub next_header: IpProtocol,
    /// Bytes after the header.
    pub payload_len: usize,
    pub hop_limit: u8,
}

impl Ipv6Repr {
    /// Header and payload.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the header; the packet's buffer is at least `buffer_len` bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) {
        packet.set_version_plain();
        packet.set_payload_len(self.payload_len as u16);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

/// The solicited-node multicast address of `addr` (RFC 4291 §2.7.1): where neighbour
/// solicitations for it are sent.
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

/// The Ethernet address an IPv6 multicast group is sent to (RFC 2464 §7): 33:33 and
/// the group's last 32 bits.
pub fn multicast_mac(group: Ipv6Addr) -> MacAddr {
    let o = group.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// All nodes on the link (RFC 4291 §2.7.1).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

#[cfg(test)]
mod tests {
    use super::*;

    // fd00:99::1 -> fd00:99::100, TCP, hop limit 64, traffic class 0xb8, flow label
    // 0x12345, 20 bytes of payload.
    static HEADER: [u8; 40] = [
        0x6b, 0x81, 0x23, 0x45, 0x00, 0x14, 0x06, 0x40, //
        0xfd, 0x00, 0x00, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, //
        0xfd, 0x00, 0x00, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00,
    ];

    fn packet_bytes() -> Vec<u8> {
        let mut bytes = HEADER.to_vec();
        bytes.extend(0u8..20);
        bytes
    }

    #[test]
    fn parse() {
        let bytes = packet_bytes();
        let ip = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(ip.version(), 6);
        assert_eq!(ip.traffic_class(), 0xb8);
        assert_eq!(ip.flow_label(), 0x12345);
        assert_eq!(ip.payload_len(), 20);
        assert_eq!(ip.next_header(), IpProtocol::Tcp);
        assert_eq!(ip.hop_limit(), 64);
        assert_eq!(ip.src_addr(), "fd00:99::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip.dst_addr(), "fd00:99::100".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip.payload(), &(0u8..20).collect::<Vec<_>>()[..]);
    }

    #[test]
    fn padding_after_the_payload_is_ignored() {
        let mut bytes = packet_bytes();
        bytes.extend([0u8; 6]);
        assert_eq!(
            Ipv6Packet::new_checked(&bytes[..]).unwrap().payload().len(),
            20
        );
    }

    #[test]
    fn refuses_bad_headers() {
        type Mutation = fn(&mut Vec<u8>);
        let cases: [(&str, Mutation, Error); 3] = [
            ("shorter than 40", |b| b.truncate(39), Error::Truncated),
            ("version 4", |b| b[0] = 0x4b, Error::Malformed),
            ("payload beyond the buffer", |b| b[5] = 21, Error::Truncated),
        ];
        for (what, mutate, expected) in cases {
            let mut b = packet_bytes();
            mutate(&mut b);
            assert_eq!(
                Ipv6Packet::new_checked(&b[..]).unwrap_err(),
                expected,
                "{what}"
            );
        }
    }

    #[test]
    fn emit() {
        let repr = Ipv6Repr {
            src_addr: "fd00:99::1".parse().unwrap(),
            dst_addr: "fd00:99::100".parse().unwrap(),
            next_header: IpProtocol::Tcp,
            payload_len: 20,
            hop_limit: 64,
        };
        let mut bytes = vec![0xffu8; repr.buffer_len()];
        repr.emit(&mut Ipv6Packet::new_unchecked(&mut bytes[..]));
        let mut expected = HEADER;
        expected[..4].copy_from_slice(&[0x60, 0, 0, 0]);
        assert_eq!(&bytes[..HEADER_LEN], &expected[..]);
    }

    #[test]
    fn solicited_node_address_and_its_mac() {
        let addr: Ipv6Addr = "fd00:99::1:2345:6789".parse().unwrap();
        let group = solicited_node(addr);
        assert_eq!(group, "ff02::1:ff45:6789".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            multicast_mac(group),
            MacAddr([0x33, 0x33, 0xff, 0x45, 0x67, 0x89])
        );
        assert_eq!(multicast_mac(ALL_NODES), MacAddr([0x33, 0x33, 0, 0, 0, 1]));
    }
}
