//! Where a sticky key falls: one of 10,000 buckets, from a hash that is
//! the same in every process, on every machine and in every version of
//! the runner (FNV-1a, then a finaliser so that keys differing only at
//! the end spread out). A key goes to green when its bucket is below the
//! green share, so a user who moved to green stays there as the share
//! grows, and routers behind one load balancer agree without talking.

/// Buckets in all: the share of green is kept in hundredths of a percent.
pub const BUCKETS: u32 = 10_000;

/// The bucket of `key`, in `0..BUCKETS`.
pub fn bucket(key: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // MurmurHash3's 64-bit finaliser.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h % u64::from(BUCKETS)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_never_change_between_versions() {
        // Changing these moves users between blue and green mid-ramp.
        let known: Vec<u32> = ["alice", "bob", "user-1", "user-2"]
            .iter()
            .map(|k| bucket(k.as_bytes()))
            .collect();
        assert_eq!(known, KNOWN);
    }

    // Computed apart from this code (FNV-1a 64 and fmix64 in Python).
    const KNOWN: [u32; 4] = [7236, 9952, 5477, 2635];

    #[test]
    fn keys_spread_evenly() {
        let mut below = [0u32; 4];
        for i in 0..100_000 {
            let b = bucket(format!("user-{i}").as_bytes());
            assert!(b < BUCKETS);
            for (n, share) in [100, 500, 2500, 5000].iter().enumerate() {
                if b < *share {
                    below[n] += 1;
                }
            }
        }
        // 1%, 5%, 25%, 50% of 100,000 keys, within 5% of each.
        for (count, expected) in below.iter().zip([1000, 5000, 25_000, 50_000]) {
            let off = (*count as f64 - expected as f64).abs() / expected as f64;
            assert!(off < 0.05, "{count} keys where {expected} were expected");
        }
    }
}
