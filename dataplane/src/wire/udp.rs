//! UDP header (RFC 768).
use super::{read_u16, write_u16, Error, Result};

pub mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

pub const HEADER_LEN: usize = field::CHECKSUM + 2;

#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

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
        let field_len = usize::from(self.len());
        if field_len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < field_len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The length field: header plus payload.
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) == HEADER_LEN
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, value);
    }

    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, value);
    }

    pub fn set_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }

    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }
}

/// A UDP header dsrlb builds (the DSR doctor's probes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
}

impl UdpRepr {
    /// Writes the header over the start of `datagram` (header and payload, all of it
    /// the datagram) and fills the checksum, from `src` to `dst`.
    pub fn emit(&self, datagram: &mut [u8], src: std::net::Ipv4Addr, dst: std::net::Ipv4Addr) {
        let len = datagram.len() as u16;
        let mut udp = UdpPacket::new_unchecked(&mut *datagram);
        udp.set_src_port(self.src_port);
        udp.set_dst_port(self.dst_port);
        udp.set_len(len);
        udp.set_checksum(0);
        let sum = super::checksum::transport(src, dst, 17, datagram);
        // 0 means "no checksum" in UDP: a computed 0 is sent as its complement.
        UdpPacket::new_unchecked(datagram).set_checksum(if sum == 0 { 0xffff } else { sum });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static DATAGRAM: [u8; 12] = [
        0x9c, 0x40, 0x14, 0xe9, 0x00, 0x0c, 0x00, 0x00, b'p', b'i', b'n', b'g',
    ];

    #[test]
    fn parse() {
        let udp = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(udp.src_port(), 40000);
        assert_eq!(udp.dst_port(), 5353);
        assert_eq!(udp.len(), 12);
        assert_eq!(udp.payload(), b"ping");
    }

    #[test]
    fn emit() {
        let mut bytes = [0u8; 12];
        bytes[8..].copy_from_slice(b"ping");
        let mut udp = UdpPacket::new_unchecked(&mut bytes[..]);
        udp.set_src_port(40000);
        udp.set_dst_port(5353);
        udp.set_len(12);
        udp.set_checksum(0);
        assert_eq!(bytes, DATAGRAM);
    }

    #[test]
    fn refuses_bad_lengths() {
        assert_eq!(
            UdpPacket::new_checked(&DATAGRAM[..7]).unwrap_err(),
            Error::Truncated
        );
        let mut short = DATAGRAM;
        short[5] = 7;
        assert_eq!(
            UdpPacket::new_checked(&short[..]).unwrap_err(),
            Error::Malformed
        );
        let mut long = DATAGRAM;
        long[5] = 13;
        assert_eq!(
            UdpPacket::new_checked(&long[..]).unwrap_err(),
            Error::Truncated
        );
    }
}
