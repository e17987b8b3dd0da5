//! IEEE 802.1Q tag: the four bytes that follow an EtherType of 0x8100 (TCI and the
//! inner EtherType). The view starts at the TCI, i.e. at the Ethernet payload.
use super::{read_u16, write_u16, Error, EtherType, Rest, Result};

mod field {
    pub const TCI: usize = 0;
    pub const ETHERTYPE: usize = 2;
    pub const PAYLOAD: super::Rest = 4..;
}

pub const HEADER_LEN: usize = field::PAYLOAD.start;

#[derive(Debug, Clone)]
pub struct VlanHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanHeader<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        VlanHeader { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self> {
        let header = Self::new_unchecked(buffer);
        header.check_len()?;
        Ok(header)
    }

    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn priority(&self) -> u8 {
        (read_u16(self.buffer.as_ref(), field::TCI) >> 13) as u8
    }

    pub fn vlan_id(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::TCI) & 0x0fff
    }

    pub fn ethertype(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanHeader<T> {
    pub fn set_tci(&mut self, priority: u8, vlan_id: u16) {
        let tci = (u16::from(priority & 0x7) << 13) | (vlan_id & 0x0fff);
        write_u16(self.buffer.as_mut(), field::TCI, tci);
    }

    pub fn set_ethertype(&mut self, value: EtherType) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, value.into());
    }
}

/// `frame` (an untagged Ethernet frame) with an 802.1Q tag of `vlan_id` (priority 0)
/// inserted after its MAC addresses: how dsrlb's own frames go out on a VLAN.
pub fn tagged(frame: &[u8], vlan_id: u16) -> Vec<u8> {
    let macs = super::ethernet::field::ETHERTYPE.min(frame.len());
    let tpid = u16::from(EtherType::Vlan).to_be_bytes();
    let mut bytes = Vec::with_capacity(frame.len() + HEADER_LEN);
    bytes.extend_from_slice(&frame[..macs]);
    bytes.extend_from_slice(&tpid);
    bytes.extend_from_slice(&[0; field::ETHERTYPE]);
    // The frame's own EtherType becomes the tag's.
    bytes.extend_from_slice(&frame[macs..]);
    VlanHeader::new_unchecked(&mut bytes[macs + tpid.len()..]).set_tci(0, vlan_id);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    static TAG: [u8; 6] = [0xa0, 0x64, 0x08, 0x00, 0x45, 0x00];

    #[test]
    fn parse() {
        let tag = VlanHeader::new_checked(&TAG[..]).unwrap();
        assert_eq!(tag.priority(), 5);
        assert_eq!(tag.vlan_id(), 100);
        assert_eq!(tag.ethertype(), EtherType::Ipv4);
        assert_eq!(tag.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn a_frame_tagged_keeps_its_macs_ethertype_and_payload() {
        let frame = [[1u8; 6], [2; 6]].concat();
        let frame = [&frame[..], &[0x08, 0x06], b"arp"].concat();
        let tagged = tagged(&frame, 10);
        assert_eq!(&tagged[..12], &frame[..12]);
        assert_eq!(&tagged[12..16], &[0x81, 0x00, 0x00, 0x0a]);
        assert_eq!(&tagged[16..], &frame[12..]);
    }

    #[test]
    fn emit() {
        let mut bytes = [0u8; 6];
        bytes[4..].copy_from_slice(&[0x45, 0x00]);
        let mut tag = VlanHeader::new_unchecked(&mut bytes[..]);
        tag.set_tci(5, 100);
        tag.set_ethertype(EtherType::Ipv4);
        assert_eq!(bytes, TAG);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            VlanHeader::new_checked(&TAG[..3]).unwrap_err(),
            Error::Truncated
        );
    }
}
