//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

/// One's-complement sum of `data` as big-endian 16-bit words, folded to 16 bits.
pub fn sum(data: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for word in &mut chunks {
        acc += u32::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    fold(acc)
}

/// The checksum to store: complement of the sum.
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// New checksum after a 16-bit word changed from `old` to `new` (RFC 1624, eqn. 3).
pub fn update(checksum: u16, old: u16, new: u16) -> u16 {
    let acc = u32::from(!checksum) + u32::from(!old) + u32::from(new);
    !fold(acc)
}

/// The checksum of a TCP or UDP segment `l4` (its checksum field zero) from `src` to
/// `dst`: over the IPv4 pseudo-header and the segment.
pub fn transport(src: std::net::Ipv4Addr, dst: std::net::Ipv4Addr, protocol: u8, l4: &[u8]) -> u16 {
    let mut pseudo = [0u8; 12];
    pseudo[..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = protocol;
    pseudo[10..].copy_from_slice(&(l4.len() as u16).to_be_bytes());
    over_pseudo_header(&pseudo, l4)
}

/// The checksum of an upper-layer packet `l4` (its checksum field zero) from `src` to
/// `dst` over IPv6 (TCP, UDP, ICMPv6): over the IPv6 pseudo-header (RFC 8200 §8.1)
/// and the packet.
pub fn transport_v6(
    src: std::net::Ipv6Addr,
    dst: std::net::Ipv6Addr,
    next_header: u8,
    l4: &[u8],
) -> u16 {
    let mut pseudo = [0u8; 40];
    pseudo[..16].copy_from_slice(&src.octets());
    pseudo[16..32].copy_from_slice(&dst.octets());
    pseudo[32..36].copy_from_slice(&(l4.len() as u32).to_be_bytes());
    pseudo[39] = next_header;
    over_pseudo_header(&pseudo, l4)
}

fn over_pseudo_header(pseudo: &[u8], l4: &[u8]) -> u16 {
    !fold(u32::from(sum(pseudo)) + u32::from(sum(l4)))
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the sum of these bytes is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), sum(&[0x12, 0x34, 0x56, 0x00]));
    }

    #[test]
    fn incremental_update_matches_full_recompute() {
        let mut data = [0x08u8, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x01, b'a', b'b'];
        let before = checksum(&data);
        data[0] = 0x00;
        assert_eq!(update(before, 0x0800, 0x0000), checksum(&data));
    }
}
