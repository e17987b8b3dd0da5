//! Zero-copy views over frame bytes, one file per header, in the manner of smoltcp's
//! `wire`: `new_checked` validates the length (and the fixed-layout fields a view relies
//! on) once; after that no accessor can panic. Pure Rust over `&[u8]` / `&mut [u8]`,
//! no DPDK.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod icmpv6;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod ipv6ext;
pub mod mld;
pub mod ndp;
pub mod tcp;
pub mod udp;
pub mod vlan;

use core::fmt;
use core::ops::{Range, RangeFrom};

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{EtherType, EthernetFrame, EthernetRepr, MacAddr};
pub use icmp::{IcmpEchoRepr, IcmpMessage, IcmpPacket};
pub use icmpv6::{Icmpv6Message, Icmpv6Packet};
pub use ip::IpProtocol;
pub use ipv4::{Ipv4Packet, Ipv4Repr, QuotedIpv4Packet};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use ndp::NdpRepr;
pub use tcp::{TcpPacket, TcpRepr};
pub use udp::{UdpPacket, UdpRepr};
pub use vlan::VlanHeader;

pub(crate) type Field = Range<usize>;
pub(crate) type Rest = RangeFrom<usize>;

/// Why a view could not be made over some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the header (or its length fields) say there are.
    Truncated,
    /// The bytes are there but a field makes the header unusable (bad version,
    /// header length below the minimum, ARP for something other than Ethernet/IPv4).
    Malformed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("truncated"),
            Error::Malformed => f.write_str("malformed"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = core::result::Result<T, Error>;

#[inline]
pub(crate) fn read_u16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

#[inline]
pub(crate) fn write_u16(data: &mut [u8], at: usize, value: u16) {
    data[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

#[inline]
pub(crate) fn read_u32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

#[inline]
pub(crate) fn write_u32(data: &mut [u8], at: usize, value: u32) {
    data[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

#[inline]
pub(crate) fn read_ipv4(data: &[u8], at: usize) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(data[at], data[at + 1], data[at + 2], data[at + 3])
}

#[inline]
pub(crate) fn read_ipv6(data: &[u8], at: Field) -> std::net::Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&data[at]);
    std::net::Ipv6Addr::from(octets)
}

/// Declares a protocol-number enum with an `Unknown(n)` arm and both conversions.
macro_rules! wire_enum {
    ($(#[$attr:meta])* pub enum $name:ident($ty:ty) { $($variant:ident = $value:expr),+ $(,)? }) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            Unknown($ty),
        }

        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $($value => $name::$variant,)+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => $value,)+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
pub(crate) use wire_enum;
