//! What IPv4 and IPv6 share: the protocol numbers (IANA's "Assigned Internet Protocol
//! Numbers"), which name both IPv4's protocol and IPv6's next header. Of IPv6's
//! extension headers, hop-by-hop (0) may only follow the fixed header, and 59 says
//! nothing follows.
use super::wire_enum;

wire_enum! {
    pub enum IpProtocol(u8) {
        HopByHop = 0,
        Icmp = 1,
        Tcp = 6,
        Udp = 17,
        Ipv6Routing = 43,
        Ipv6Fragment = 44,
        Icmpv6 = 58,
        NoNextHeader = 59,
        Ipv6DestinationOptions = 60,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_numbers() {
        assert_eq!(IpProtocol::from(47), IpProtocol::Unknown(47));
        assert_eq!(u8::from(IpProtocol::Udp), 17);
        assert_eq!(IpProtocol::from(58), IpProtocol::Icmpv6);
        assert_eq!(u8::from(IpProtocol::Ipv6DestinationOptions), 60);
    }
}
