//! Hashes that must give the same answer on every appliance, every build and every
//! Rust version (std's hashers promise none of that): two dsrlb boxes with the same
//! config must pick the same target for a flow.

/// The 64-bit finaliser of MurmurHash3: a bijection that spreads every input bit.
#[inline(always)]
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// Hash of a flow's 5-tuple. Its low bits index the flow table, its high bits the
/// Maglev table, so the two are independent.
#[inline(always)]
pub fn flow_hash(src: u32, dst: u32, src_port: u16, dst_port: u16, proto: u8, seed: u64) -> u64 {
    let addrs = (u64::from(src) << 32) | u64::from(dst);
    let ports = (u64::from(src_port) << 32) | (u64::from(dst_port) << 16) | u64::from(proto);
    mix64(addrs ^ mix64(ports ^ seed))
}

/// Hash of a byte string (FNV-1a, then mixed with the seed): target identities.
pub fn bytes_hash(data: &[u8], seed: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h ^ mix64(seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned values: if these change, appliances running different builds would
    /// disagree on where flows go. Changing them is a compatibility break.
    #[test]
    fn values_are_stable_across_builds() {
        assert_eq!(mix64(1), 0xb456_bcfc_34c2_cb2c);
        assert_eq!(
            flow_hash(0x0a63_0001, 0x0a63_0064, 40000, 80, 6, 0),
            0x4d0b_b96c_b768_1fdd
        );
        assert_eq!(bytes_hash(b"10.99.0.11", 0), 0x66ee_0700_87e7_5142);
        assert_ne!(bytes_hash(b"10.99.0.11", 0), bytes_hash(b"10.99.0.11", 1));
    }

    #[test]
    fn every_tuple_field_matters() {
        let base = flow_hash(1, 2, 3, 4, 6, 9);
        assert_ne!(base, flow_hash(5, 2, 3, 4, 6, 9));
        assert_ne!(base, flow_hash(1, 5, 3, 4, 6, 9));
        assert_ne!(base, flow_hash(1, 2, 5, 4, 6, 9));
        assert_ne!(base, flow_hash(1, 2, 3, 5, 6, 9));
        assert_ne!(base, flow_hash(1, 2, 3, 4, 17, 9));
        assert_ne!(base, flow_hash(1, 2, 3, 4, 6, 10));
    }
}
