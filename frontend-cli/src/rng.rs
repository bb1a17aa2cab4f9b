//! The seeded random numbers of `train` and `sweep`: SplitMix64.
//!
//! Hand-rolled rather than taken from `rand`: "the same seed gives the same numbers" has
//! to hold across dependency updates, and `rand`'s `StdRng` says its algorithm may change
//! between versions. SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom
//! number generators", OOPSLA 2014; the seeder of Java's `SplittableRandom` and of the
//! xoshiro generators) is fixed, ten lines, passes BigCrush, and is far more than a
//! shuffle of 1797 rows and a weight initialization need.

/// A SplitMix64 generator.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

/// What each stream is used for: one generator per purpose, so that changing the model
/// (and so how many numbers its initialization draws) leaves the split and the batch
/// order of a seed unchanged.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    /// The train/validation split.
    Split = 1,
    /// Weight initialization.
    Init = 2,
    /// The order of the training rows in each epoch.
    Batches = 3,
    /// `compare --noise`: the noise added to each gradient.
    Noise = 4,
}

impl Rng {
    /// The generator for `stream` of `seed`.
    pub fn new(seed: u64, stream: Stream) -> Rng {
        // Two different streams of one seed start far apart in SplitMix64's sequence,
        // and each is scrambled once before use.
        let mut rng = Rng {
            state: seed ^ (stream as u64).wrapping_mul(0xD1B5_4A32_D192_ED03),
        };
        rng.next_u64();
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (Lemire's multiply-shift: the bias is below 2⁻⁵⁰ for
    /// the sizes used here). `n` must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A uniform f32 in `[-bound, bound)`, from 24 random bits.
    pub fn uniform(&mut self, bound: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u32 << 24) as f32;
        (2.0 * unit - 1.0) * bound
    }

    /// A standard normal sample (Box–Muller on two 53-bit uniforms; the first in (0, 1]
    /// so that its logarithm is finite).
    pub fn normal(&mut self) -> f64 {
        let unit = |bits: u64| (bits >> 11) as f64 / (1u64 << 53) as f64;
        let u1 = 1.0 - unit(self.next_u64());
        let u2 = unit(self.next_u64());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // The reference implementation (Vigna's splitmix64.c) seeded with 0 gives these.
        let mut rng = Rng { state: 0 };
        assert_eq!(
            [rng.next_u64(), rng.next_u64(), rng.next_u64()],
            [
                0xE220_A839_7B1D_CDAF,
                0x6E78_9E6A_A1B9_65F4,
                0x06C4_5D18_8009_454F
            ]
        );
    }

    #[test]
    fn shuffles_are_permutations_and_depend_on_the_seed() {
        let shuffled = |seed| {
            let mut v: Vec<usize> = (0..100).collect();
            Rng::new(seed, Stream::Split).shuffle(&mut v);
            v
        };
        let mut sorted = shuffled(7);
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(shuffled(7), shuffled(7));
        assert_ne!(shuffled(7), shuffled(8));
    }

    #[test]
    fn uniform_stays_in_range() {
        let mut rng = Rng::new(1, Stream::Init);
        for _ in 0..10_000 {
            let v = rng.uniform(0.5);
            assert!((-0.5..0.5).contains(&v));
        }
    }
}
