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
/// Maglev table. Two CRC32C chains over the tuple in opposite orders, with different
/// seeds (CRC32C is an instruction on every CPU DPDK runs on, SSE4.2; the software
/// version gives the same values where it is not), then one multiply-xorshift: CRC is
/// linear, so flows that differ in a few bits (consecutive clients and ports) would
/// otherwise crowd a fraction of the buckets. The finaliser is a bijection, and the
/// 48 bits a client controls (address, port) map to 64 without collisions.
#[inline(always)]
pub fn flow_hash(src: u32, dst: u32, src_port: u16, dst_port: u16, proto: u8, seed: u64) -> u64 {
    let addrs = (u64::from(src) << 32) | u64::from(dst);
    let ports = (u64::from(src_port) << 32) | (u64::from(dst_port) << 16) | u64::from(proto);
    let lo = crc32c_u64(crc32c_u64(seed as u32, addrs), ports);
    let hi = crc32c_u64(crc32c_u64((seed >> 32) as u32 ^ 0x9e37_79b9, ports), addrs);
    let h = ((u64::from(hi) << 32) | u64::from(lo)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 32)
}

/// `flow_hash` of an IPv6 flow: each address folded to 32 bits by CRC32C over its
/// two halves (a different seed for each, so that swapping halves changes the fold).
#[inline(always)]
pub fn flow_hash6(src: u128, dst: u128, src_port: u16, dst_port: u16, proto: u8, seed: u64) -> u64 {
    let fold = |a: u128| crc32c_u64(crc32c_u64(0x6a09_e667, (a >> 64) as u64), a as u64);
    flow_hash(fold(src), fold(dst), src_port, dst_port, proto, seed)
}

/// One CRC32C step over 8 bytes: the instruction where the build has SSE4.2, else
/// the same values in software.
#[cfg(all(target_arch = "x86_64", target_feature = "sse4.2"))]
#[inline(always)]
pub fn crc32c_u64(crc: u32, value: u64) -> u32 {
    // SAFETY: SSE4.2 is enabled for this build (the cfg above).
    unsafe { core::arch::x86_64::_mm_crc32_u64(u64::from(crc), value) as u32 }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse4.2")))]
#[inline(always)]
pub fn crc32c_u64(crc: u32, value: u64) -> u32 {
    crc32c_u64_soft(crc, value)
}

/// CRC32C (Castagnoli, reflected) of 8 little-endian bytes, as the SSE4.2 instruction
/// computes it (no pre/post inversion).
pub fn crc32c_u64_soft(mut crc: u32, value: u64) -> u32 {
    for byte in value.to_le_bytes() {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    crc
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

/// FNV-1a, 64 bits: a digest that is the same on every machine and build (tables
/// compared across appliances), not a hash for lookups and not for security.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    pub fn eat(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }
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
            0x975d_bb77_5372_a6a0
        );
        assert_eq!(bytes_hash(b"10.99.0.11", 0), 0x66ee_0700_87e7_5142);
        assert_ne!(bytes_hash(b"10.99.0.11", 0), bytes_hash(b"10.99.0.11", 1));
    }

    /// The instruction and the software version must agree bit for bit, or two builds
    /// would send the same flow to different targets.
    #[test]
    fn crc32c_instruction_and_software_agree() {
        let mut x = 0x0123_4567_89ab_cdefu64;
        for i in 0..10_000u32 {
            x = mix64(x.wrapping_add(u64::from(i)));
            assert_eq!(
                crc32c_u64(i, x),
                crc32c_u64_soft(i, x),
                "crc32c({i:#x}, {x:#x})"
            );
        }
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
