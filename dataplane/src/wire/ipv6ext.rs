//! IPv6 extension headers (RFC 8200 §4): the walk from the fixed header to the
//! transport header over hop-by-hop, routing, destination options and fragment
//! headers, bounded, with every way a chain can be unusable named.
use super::{read_u16, IpProtocol};

/// Hop-by-hop, routing and destination options: next header, then the length in
/// 8-byte units not counting the first 8.
pub mod field {
    pub const NEXT_HEADER: usize = 0;
    pub const LENGTH: usize = 1;
    /// Fragment header (always 8 bytes): offset in 8-byte units (13 bits), two
    /// reserved bits, the M flag; then the identification.
    pub const FRAG_OFFSET_M: usize = 2;
    pub const FRAG_IDENT: std::ops::Range<usize> = 4..8;
}

/// The fragment header's length, and the unit of every extension header's.
pub const UNIT: usize = 8;

/// Extension headers walked before the chain is refused: RFC 8200 §4.1 expects at
/// most one of each (destination options twice), so a longer chain is an attack on
/// the walk, not traffic.
pub const MAX_HEADERS: usize = 6;

/// Why an extension-header chain is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainError {
    /// A header, or the transport header's first byte, lies past the payload.
    Truncated,
    /// Hop-by-hop options anywhere but right after the fixed header (§4.3).
    HopByHopNotFirst,
    /// "No next header" (59): nothing to balance on.
    NoNextHeader,
    /// More than `MAX_HEADERS` extension headers.
    TooLong,
}

/// A fragment header's fields (§4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Where this fragment's data starts in the original payload, in bytes.
    pub offset: u16,
    pub more: bool,
    pub ident: u32,
}

impl Fragment {
    /// The first fragment carries the transport header; later ones do not.
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// Where the walk ended: the upper-layer protocol and where its header starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    pub protocol: IpProtocol,
    /// From the start of the IPv6 payload (after the fixed header). For a later
    /// fragment, where its data starts: no transport header is there.
    pub offset: usize,
    pub fragment: Option<Fragment>,
}

/// Walks `payload` (an `Ipv6Packet::payload`, whose fixed header said `first`) to its
/// upper-layer header. Any protocol number that is not one of the four extension
/// headers ends the walk as the upper layer (the caller decides what it serves).
pub fn walk(first: IpProtocol, payload: &[u8]) -> Result<Transport, ChainError> {
    let (mut next, mut at, mut fragment) = (first, 0usize, None);
    for walked in 0..=MAX_HEADERS {
        let len = match next {
            IpProtocol::NoNextHeader => return Err(ChainError::NoNextHeader),
            IpProtocol::HopByHop if walked > 0 => return Err(ChainError::HopByHopNotFirst),
            IpProtocol::HopByHop | IpProtocol::Ipv6Routing | IpProtocol::Ipv6DestinationOptions => {
                let length = payload
                    .get(at + field::LENGTH)
                    .ok_or(ChainError::Truncated)?;
                (usize::from(*length) + 1) * UNIT
            }
            IpProtocol::Ipv6Fragment => UNIT,
            protocol => return upper_layer(protocol, at, fragment, payload),
        };
        if walked == MAX_HEADERS {
            break;
        }
        let header = payload.get(at..at + len).ok_or(ChainError::Truncated)?;
        if next == IpProtocol::Ipv6Fragment {
            let f = fragment_of(header);
            fragment = Some(f);
            if !f.is_first() {
                // Its data is the middle of the original payload: no header follows.
                let protocol = IpProtocol::from(header[field::NEXT_HEADER]);
                return Ok(Transport {
                    protocol,
                    offset: at + len,
                    fragment,
                });
            }
        }
        next = IpProtocol::from(header[field::NEXT_HEADER]);
        at += len;
    }
    Err(ChainError::TooLong)
}

/// The end of a walk at `protocol`, whose header must begin inside the payload.
fn upper_layer(
    protocol: IpProtocol,
    at: usize,
    fragment: Option<Fragment>,
    payload: &[u8],
) -> Result<Transport, ChainError> {
    if at >= payload.len() {
        return Err(ChainError::Truncated);
    }
    Ok(Transport {
        protocol,
        offset: at,
        fragment,
    })
}

/// The fields of an 8-byte fragment header.
fn fragment_of(header: &[u8]) -> Fragment {
    let offset_m = read_u16(header, field::FRAG_OFFSET_M);
    let i = &header[field::FRAG_IDENT];
    Fragment {
        offset: offset_m & 0xfff8,
        more: offset_m & 1 != 0,
        ident: u32::from_be_bytes([i[0], i[1], i[2], i[3]]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HBH: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAG: u8 = 44;
    const DEST: u8 = 60;
    const TCP: u8 = 6;
    const UDP: u8 = 17;

    /// An extension header of `units` 8-byte units after the first, naming `next`.
    fn ext(next: u8, units: u8) -> Vec<u8> {
        let mut h = vec![0u8; (usize::from(units) + 1) * UNIT];
        h[0] = next;
        h[1] = units;
        h
    }

    fn frag(next: u8, offset: u16, more: bool, ident: u32) -> Vec<u8> {
        let mut h = vec![next, 0];
        h.extend((offset | u16::from(more)).to_be_bytes());
        h.extend(ident.to_be_bytes());
        h
    }

    /// `count` destination-options headers, the last naming UDP, and 8 bytes of it.
    fn destination_options(count: usize) -> Vec<u8> {
        let mut headers = vec![ext(DEST, 0); count - 1];
        headers.push(ext(UDP, 0));
        chain(&headers, 8)
    }

    fn chain(parts: &[Vec<u8>], upper: usize) -> Vec<u8> {
        let mut b: Vec<u8> = parts.concat();
        b.extend(std::iter::repeat_n(0xaa, upper));
        b
    }

    #[test]
    fn walks_to_the_transport_header() {
        let tcp = |offset, fragment| {
            Ok(Transport {
                protocol: IpProtocol::Tcp,
                offset,
                fragment,
            })
        };
        let first = Fragment {
            offset: 0,
            more: true,
            ident: 7,
        };
        let later = Fragment {
            offset: 1448,
            more: false,
            ident: 7,
        };
        type Case = (&'static str, u8, Vec<u8>, Result<Transport, ChainError>);
        let cases: Vec<Case> = vec![
            ("no extension", TCP, chain(&[], 20), tcp(0, None)),
            ("hop-by-hop", HBH, chain(&[ext(TCP, 0)], 20), tcp(8, None)),
            (
                "hop-by-hop, routing, dest options",
                HBH,
                chain(&[ext(ROUTING, 1), ext(DEST, 0), ext(TCP, 2)], 20),
                tcp(16 + 8 + 24, None),
            ),
            (
                "first fragment",
                FRAG,
                chain(&[frag(TCP, 0, true, 7)], 20),
                tcp(8, Some(first)),
            ),
            (
                "dest options after a first fragment",
                FRAG,
                chain(&[frag(DEST, 0, true, 7), ext(TCP, 0)], 20),
                tcp(16, Some(first)),
            ),
            (
                "later fragment: no header follows",
                DEST,
                chain(&[ext(FRAG, 0), frag(TCP, 1448, false, 7)], 8),
                tcp(16, Some(later)),
            ),
            (
                "unknown protocol ends the walk",
                DEST,
                chain(&[ext(47, 0)], 4),
                Ok(Transport {
                    protocol: IpProtocol::Unknown(47),
                    offset: 8,
                    fragment: None,
                }),
            ),
            (
                "hop-by-hop second",
                DEST,
                chain(&[ext(HBH, 0), ext(TCP, 0)], 20),
                Err(ChainError::HopByHopNotFirst),
            ),
            (
                "no next header",
                DEST,
                chain(&[ext(59, 0)], 0),
                Err(ChainError::NoNextHeader),
            ),
            (
                "header past the payload",
                HBH,
                chain(&[ext(TCP, 3)], 0)[..16].to_vec(),
                Err(ChainError::Truncated),
            ),
            (
                "length byte past the payload",
                ROUTING,
                vec![TCP],
                Err(ChainError::Truncated),
            ),
            (
                "nothing after the chain",
                HBH,
                chain(&[ext(UDP, 0)], 0),
                Err(ChainError::Truncated),
            ),
            ("empty payload", TCP, vec![], Err(ChainError::Truncated)),
            (
                "six headers",
                DEST,
                destination_options(MAX_HEADERS),
                Ok(Transport {
                    protocol: IpProtocol::Udp,
                    offset: MAX_HEADERS * UNIT,
                    fragment: None,
                }),
            ),
            (
                "seven headers",
                DEST,
                destination_options(MAX_HEADERS + 1),
                Err(ChainError::TooLong),
            ),
        ];
        for (what, first, payload, expected) in cases {
            assert_eq!(walk(IpProtocol::from(first), &payload), expected, "{what}");
        }
    }

    #[test]
    fn no_chain_of_bytes_panics_or_walks_past_its_end() {
        // Every two-byte prefix over a short payload: the walk ends, inside it.
        for first in [HBH, ROUTING, FRAG, DEST] {
            for a in 0..=255u8 {
                for b in [0u8, 1, 2, 255] {
                    let payload = [a, b, 0, 0, 0, 0, 0, 0, DEST, 0, 0, 0, 0, 0, 0, 0];
                    if let Ok(t) = walk(IpProtocol::from(first), &payload) {
                        assert!(t.offset <= payload.len(), "{first} {a} {b}: {t:?}");
                    }
                }
            }
        }
    }
}
