//! ICMP for IPv4 (RFC 792): the common header, and the echo fields.
use super::{checksum, read_u16, wire_enum, write_u16, Error, Result};

wire_enum! {
    pub enum IcmpMessage(u8) {
        EchoReply = 0,
        DestinationUnreachable = 3,
        EchoRequest = 8,
        TimeExceeded = 11,
    }
}

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQ: usize = 6;
}

pub const HEADER_LEN: usize = field::ECHO_SEQ + 2;

#[derive(Debug, Clone)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        IcmpPacket { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn msg_type(&self) -> IcmpMessage {
        IcmpMessage::from(self.buffer.as_ref()[field::TYPE])
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

    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.buffer.as_ref()) == 0xffff
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    pub fn set_msg_type(&mut self, value: IcmpMessage) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }

    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    pub fn set_echo_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT, value);
    }

    pub fn set_echo_seq_no(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQ, value);
    }

    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let value = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(value);
    }
}

/// An ICMP echo request or reply's header; its data stays where it is in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpEchoRepr {
    /// `EchoRequest` or `EchoReply`.
    pub message: IcmpMessage,
    pub ident: u16,
    pub seq_no: u16,
}

impl IcmpEchoRepr {
    /// The echo a checked packet holds; None for any other message.
    pub fn parse<T: AsRef<[u8]>>(packet: &IcmpPacket<T>) -> Option<IcmpEchoRepr> {
        let message = packet.msg_type();
        matches!(message, IcmpMessage::EchoRequest | IcmpMessage::EchoReply).then(|| IcmpEchoRepr {
            message,
            ident: packet.echo_ident(),
            seq_no: packet.echo_seq_no(),
        })
    }

    /// The reply to this request.
    pub fn reply(&self) -> IcmpEchoRepr {
        IcmpEchoRepr {
            message: IcmpMessage::EchoReply,
            ..*self
        }
    }

    /// Writes the header over `packet`, whose data is already in place, and its
    /// checksum (over that data too).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut IcmpPacket<T>) {
        packet.set_msg_type(self.message);
        packet.set_msg_code(0);
        packet.set_echo_ident(self.ident);
        packet.set_echo_seq_no(self.seq_no);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static REQUEST: [u8; 12] = [
        0x08, 0x00, 0x32, 0x36, 0x01, 0x02, 0x00, 0x01, b'a', b'b', b'c', b'd',
    ];
    static REPLY: [u8; 12] = [
        0x00, 0x00, 0x3a, 0x36, 0x01, 0x02, 0x00, 0x01, b'a', b'b', b'c', b'd',
    ];

    #[test]
    fn parse() {
        let icmp = IcmpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(icmp.msg_type(), IcmpMessage::EchoRequest);
        assert_eq!(icmp.msg_code(), 0);
        assert_eq!(icmp.echo_ident(), 0x0102);
        assert_eq!(icmp.echo_seq_no(), 1);
        assert!(icmp.verify_checksum());
        assert_eq!(icmp.payload(), b"abcd");
    }

    #[test]
    fn emit() {
        let mut bytes = [0u8; 12];
        bytes[8..].copy_from_slice(b"abcd");
        let mut icmp = IcmpPacket::new_unchecked(&mut bytes[..]);
        icmp.set_msg_type(IcmpMessage::EchoRequest);
        icmp.set_msg_code(0);
        icmp.set_echo_ident(0x0102);
        icmp.set_echo_seq_no(1);
        icmp.fill_checksum();
        assert_eq!(bytes, REQUEST);
    }

    #[test]
    fn echo_reply_in_place() {
        let mut bytes = REQUEST;
        let request = IcmpEchoRepr::parse(&IcmpPacket::new_checked(&bytes[..]).unwrap());
        let request = request.expect("an echo request");
        assert_eq!((request.ident, request.seq_no), (0x0102, 1));
        request
            .reply()
            .emit(&mut IcmpPacket::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, REPLY);
        assert!(IcmpPacket::new_checked(&bytes[..])
            .unwrap()
            .verify_checksum());
    }

    #[test]
    fn truncated_and_unknown() {
        assert_eq!(
            IcmpPacket::new_checked(&REQUEST[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(IcmpMessage::from(42), IcmpMessage::Unknown(42));
    }
}
