//! The demo's own deterministic randomness: xoshiro256** seeded through SplitMix64 (both
//! public-domain algorithms by Blackman and Vigna), and ids made from it. No system entropy
//! and no clock: the same seed gives the same city, ids included.

use uuid::Uuid;

/// Independent streams, so that each part of the city draws from its own sequence.
pub const STREAM_UNITS: u64 = 1;
pub const STREAM_EQUIPMENT: u64 = 2;
pub const STREAM_USERS: u64 = 3;
pub const STREAM_HAZARDS: u64 = 4;
pub const STREAM_IDS: u64 = 5;

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256**.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// The generator of `stream` under `seed`.
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut x = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let s = [
            splitmix64(&mut x),
            splitmix64(&mut x),
            splitmix64(&mut x),
            splitmix64(&mut x),
        ];
        Rng { s }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// Uniform in `[0, 1)`.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Roughly standard normal (the sum of four uniforms, rescaled): enough for sizes.
    pub fn normalish(&mut self) -> f64 {
        let s: f64 = (0..4).map(|_| self.f64()).sum();
        (s - 2.0) * 3f64.sqrt()
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// An index drawn by weight, given the running sums of the weights (the last is the
    /// total, which must be positive).
    pub fn weighted(&mut self, cumulative: &[f64]) -> usize {
        let total = cumulative.last().copied().unwrap_or(0.0);
        let x = self.f64() * total;
        cumulative
            .partition_point(|&c| c <= x)
            .min(cumulative.len().saturating_sub(1))
    }
}

/// Running sums of `weights`.
pub fn cumulative(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut sum = 0.0;
    weights
        .into_iter()
        .map(|w| {
            sum += w.max(0.0);
            sum
        })
        .collect()
}

/// Ids for demo rows: UUIDv7-shaped (time-ordered, as the server's own ids are, so the
/// indexes fill in order), with a fake clock that starts at a fixed instant and ticks one
/// millisecond per id, and random bits from the seeded generator.
pub struct Ids {
    rng: Rng,
    millis: u64,
}

/// 2025-01-01T00:00:00Z.
const IDS_EPOCH_MS: u64 = 1_735_689_600_000;

impl Ids {
    pub fn new(seed: u64) -> Ids {
        Ids {
            rng: Rng::new(seed, STREAM_IDS),
            millis: IDS_EPOCH_MS,
        }
    }

    pub fn next(&mut self) -> Uuid {
        self.millis += 1;
        let a = self.rng.next_u64().to_le_bytes();
        let b = self.rng.next_u64().to_le_bytes();
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&a);
        bytes[8..].copy_from_slice(&b[..2]);
        uuid::Builder::from_unix_timestamp_millis(self.millis, &bytes).into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = {
            let mut r = Rng::new(1, STREAM_UNITS);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(1, STREAM_UNITS);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = Rng::new(2, STREAM_UNITS);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let d: Vec<u64> = {
            let mut r = Rng::new(1, STREAM_EQUIPMENT);
            (0..5).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn draws_stay_in_range() {
        let mut r = Rng::new(7, 0);
        for _ in 0..10_000 {
            assert!(r.below(10) < 10);
            let x = r.range(-3, 3);
            assert!((-3..=3).contains(&x));
            let f = r.f64();
            assert!((0.0..1.0).contains(&f));
        }
        let cum = cumulative([0.0, 1.0, 0.0, 3.0]);
        let mut hits = [0u32; 4];
        for _ in 0..10_000 {
            hits[r.weighted(&cum)] += 1;
        }
        assert_eq!(hits[0], 0);
        assert_eq!(hits[2], 0);
        assert!(hits[3] > hits[1] * 2, "{hits:?}");
    }

    #[test]
    fn ids_are_ordered_v7_and_repeatable() {
        let mut a = Ids::new(9);
        let mut b = Ids::new(9);
        let x: Vec<Uuid> = (0..100).map(|_| a.next()).collect();
        let y: Vec<Uuid> = (0..100).map(|_| b.next()).collect();
        assert_eq!(x, y);
        assert!(x.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(x[0].get_version_num(), 7);
        assert_ne!(Ids::new(10).next(), x[0]);
    }
}
