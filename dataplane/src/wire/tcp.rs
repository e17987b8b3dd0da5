//! TCP header (RFC 9293): what a balancer reads, ports and flags.
use super::{read_u16, read_u32, write_u16, write_u32, Error, Result};

pub mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ_NUM: usize = 4;
    pub const ACK_NUM: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
}

pub const MIN_HEADER_LEN: usize = field::URGENT + 2;

pub const FLAG_FIN: u8 = 0x01;
pub const FLAG_SYN: u8 = 0x02;
pub const FLAG_RST: u8 = 0x04;
pub const FLAG_PSH: u8 = 0x08;
pub const FLAG_ACK: u8 = 0x10;

#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

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
        let header_len = usize::from(self.header_len());
        if header_len < MIN_HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < header_len {
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

    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    pub fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK_NUM)
    }

    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    pub fn syn(&self) -> bool {
        self.flags() & FLAG_SYN != 0
    }

    pub fn ack(&self) -> bool {
        self.flags() & FLAG_ACK != 0
    }

    pub fn fin(&self) -> bool {
        self.flags() & FLAG_FIN != 0
    }

    pub fn rst(&self) -> bool {
        self.flags() & FLAG_RST != 0
    }

    pub fn window(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WINDOW)
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[usize::from(self.header_len())..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, value);
    }

    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, value);
    }

    pub fn set_seq_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ_NUM, value);
    }

    pub fn set_ack_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::ACK_NUM, value);
    }

    pub fn set_header_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::DATA_OFF] = (value / 4) << 4;
    }

    pub fn set_flags(&mut self, value: u8) {
        self.buffer.as_mut()[field::FLAGS] = value;
    }

    pub fn set_window(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::WINDOW, value);
    }

    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }
}

/// A TCP header without options that dsrlb builds (the DSR doctor's probes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq_number: u32,
    pub ack_number: u32,
    pub flags: u8,
    pub window: u16,
}

impl TcpRepr {
    /// Writes the header over the start of `segment` and fills the checksum over the
    /// whole of it (header and whatever payload follows), from `src` to `dst`.
    pub fn emit(&self, segment: &mut [u8], src: std::net::Ipv4Addr, dst: std::net::Ipv4Addr) {
        let mut tcp = TcpPacket::new_unchecked(&mut *segment);
        tcp.set_src_port(self.src_port);
        tcp.set_dst_port(self.dst_port);
        tcp.set_seq_number(self.seq_number);
        tcp.set_ack_number(self.ack_number);
        tcp.set_header_len(MIN_HEADER_LEN as u8);
        tcp.set_flags(self.flags);
        tcp.set_window(self.window);
        tcp.set_checksum(0);
        write_u16(segment, field::URGENT, 0);
        let sum = super::checksum::transport(src, dst, 6, segment);
        TcpPacket::new_unchecked(segment).set_checksum(sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 40000 -> 80, seq 1, SYN, window 64240
    static SYN: [u8; 20] = [
        0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
    ];

    #[test]
    fn parse() {
        let tcp = TcpPacket::new_checked(&SYN[..]).unwrap();
        assert_eq!(tcp.src_port(), 40000);
        assert_eq!(tcp.dst_port(), 80);
        assert_eq!(tcp.seq_number(), 1);
        assert_eq!(tcp.ack_number(), 0);
        assert_eq!(tcp.header_len(), 20);
        assert!(tcp.syn() && !tcp.ack() && !tcp.fin() && !tcp.rst());
        assert_eq!(tcp.window(), 64240);
        assert!(tcp.payload().is_empty());
    }

    #[test]
    fn emit() {
        let mut bytes = [0u8; 20];
        let mut tcp = TcpPacket::new_unchecked(&mut bytes[..]);
        tcp.set_src_port(40000);
        tcp.set_dst_port(80);
        tcp.set_seq_number(1);
        tcp.set_ack_number(0);
        tcp.set_header_len(20);
        tcp.set_flags(FLAG_SYN);
        tcp.set_window(64240);
        tcp.set_checksum(0);
        assert_eq!(bytes, SYN);
    }

    #[test]
    fn refuses_bad_offsets() {
        assert_eq!(
            TcpPacket::new_checked(&SYN[..19]).unwrap_err(),
            Error::Truncated
        );
        let mut small = SYN;
        small[12] = 0x40; // 16-byte header
        assert_eq!(
            TcpPacket::new_checked(&small[..]).unwrap_err(),
            Error::Malformed
        );
        let mut long = SYN;
        long[12] = 0x60; // 24-byte header in 20 bytes
        assert_eq!(
            TcpPacket::new_checked(&long[..]).unwrap_err(),
            Error::Truncated
        );
    }
}
