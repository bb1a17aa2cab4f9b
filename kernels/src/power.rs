//! `x ** n` for a double `x` and an integer `n ≥ 0`, correctly rounded, in integer
//! arithmetic; and a cache that advances `β ** t` to `β ** (t + 1)` with one multiply.
//!
//! torch's bias corrections are Python's `beta ** step` (C `pow` on doubles). A general
//! `pow` costs about 9 000 instructions on a Cortex-M4F, whose FPU has no double
//! precision: two of them were most of Adam's per-step cost there. Here the power is
//! the exact product `m^n · 2^(e·n)` of the base's integer significand `m`, carried
//! with a 128-bit significand (every product truncated, with a flag for whether any bit
//! was dropped) and rounded to the nearest double, ties to even, once at the end.
//!
//! Accuracy: truncation only lowers the value, by less than 2⁻¹²⁷ relative per
//! multiply, and there are at most 128 multiplies, so the carried value is within
//! 2⁻¹²⁰ (relative) below the exact power. The result is therefore the correctly
//! rounded power unless the exact value lies within 2⁻¹²⁰ above a point halfway
//! between two doubles, a band of relative width 2⁻⁶⁷ of each interval between doubles.
//! glibc's `pow`, which Python and therefore torch call, is not always correctly rounded
//! (its error bound is 0.52 ulp): on a million sampled powers it rounds 0.03% the other
//! way (by one ulp), where `libm::pow` (FreeBSD's algorithm) differs from it in 3%.

/// A positive number `mant · 2^exp` with `mant` normalized to `[2¹²⁷, 2¹²⁸)`, and whether
/// it was rounded down (truncated) on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wide {
    mant: u128,
    exp: i64,
    inexact: bool,
}

/// The binary exponent beyond which a power is certainly 0 or ∞ as a double, with room
/// for the ≤ 1 bit that rounding can move it.
const EXP_LIMIT: i64 = 1100;

impl Wide {
    /// `|x|` for a finite non-zero `x` (subnormals included).
    fn from_f64(x: f64) -> Wide {
        let bits = x.to_bits() & !(1 << 63);
        let (field, frac) = ((bits >> 52) as i64, bits & ((1 << 52) - 1));
        let (m, e) = if field == 0 {
            (frac, -1074)
        } else {
            (frac | 1 << 52, field - 1075)
        };
        let shift = m.leading_zeros() + 64;
        Wide {
            mant: u128::from(m) << shift,
            exp: e - i64::from(shift),
            inexact: false,
        }
    }

    /// The binary exponent `E` with `self ∈ [2^E, 2^(E+1))`.
    fn binary_exponent(&self) -> i64 {
        self.exp + 127
    }

    /// `self · other`, truncated to 128 bits.
    fn mul(&self, other: &Wide) -> Wide {
        let (hi, lo) = mul_wide(self.mant, other.mant);
        // Both factors are in [2¹²⁷, 2¹²⁸), so the product's top bit is bit 255 or 254.
        let (mant, dropped, exp) = if hi >> 127 == 1 {
            (hi, lo, self.exp + other.exp + 128)
        } else {
            (hi << 1 | lo >> 127, lo << 1, self.exp + other.exp + 127)
        };
        Wide {
            mant,
            exp,
            inexact: self.inexact || other.inexact || dropped != 0,
        }
    }

    /// The nearest double (ties to even), as `+0` or `+∞` out of range.
    fn to_f64(self) -> f64 {
        let e = self.binary_exponent();
        if e > EXP_LIMIT {
            return f64::INFINITY;
        }
        // Keep 53 bits, or fewer for subnormal results (E < −1022).
        let shift = 75 + (-1022 - e).max(0);
        if shift > 128 {
            return 0.0;
        }
        let (q, rem, half) = if shift == 128 {
            (0, self.mant, 1u128 << 127)
        } else {
            (
                (self.mant >> shift) as u64,
                self.mant & ((1 << shift) - 1),
                1 << (shift - 1),
            )
        };
        let up = rem > half || (rem == half && (self.inexact || q & 1 == 1));
        let q = q + u64::from(up);
        // With the implicit bit included in `q`, adding the biased exponent minus one
        // carries a rounding overflow (q = 2⁵³) into the exponent field, and a subnormal
        // rounding up to 2⁵² becomes the smallest normal.
        let bits = if e < -1022 {
            q
        } else {
            (((e + 1022) as u64) << 52) + q
        };
        if bits >= f64::INFINITY.to_bits() {
            f64::INFINITY
        } else {
            f64::from_bits(bits)
        }
    }
}

/// The 256-bit product `a · b` as `(high, low)` halves, in 32-bit limbs so that 32-bit
/// targets get one `UMAAL` per partial product rather than a call to `__multi3`.
#[inline]
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    let limbs = |x: u128| {
        [
            x as u32,
            (x >> 32) as u32,
            (x >> 64) as u32,
            (x >> 96) as u32,
        ]
    };
    let (a, b) = (limbs(a), limbs(b));
    let mut r = [0u32; 8];
    for i in 0..4 {
        let mut carry = 0u64;
        for j in 0..4 {
            // (2³² − 1)² + 2·(2³² − 1) = 2⁶⁴ − 1: never overflows.
            let t = u64::from(a[i]) * u64::from(b[j]) + u64::from(r[i + j]) + carry;
            r[i + j] = t as u32;
            carry = t >> 32;
        }
        r[i + 4] = carry as u32;
    }
    let join = |l: &[u32]| {
        l.iter()
            .rev()
            .fold(0u128, |acc, &limb| acc << 32 | u128::from(limb))
    };
    (join(&r[4..]), join(&r[..4]))
}

/// `|x|ⁿ` for finite non-zero `x` and `n ≥ 1`, by left-to-right binary powering.
fn wide_pow(x: f64, n: u64) -> Wide {
    let base = Wide::from_f64(x);
    let mut r = base;
    for bit in (0..63 - n.leading_zeros()).rev() {
        r = r.mul(&r);
        if n >> bit & 1 == 1 {
            r = r.mul(&base);
        }
        // Powers of |x| < 1 only shrink as the prefix of n grows, and powers of |x| > 1
        // only grow: once out of range, the result is 0 or ∞.
        if r.binary_exponent().abs() > EXP_LIMIT {
            break;
        }
    }
    r
}

/// `x ** n` as C's `pow(x, n)` returns it, correctly rounded (see the module docs).
pub(crate) fn powi(x: f64, n: u64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    if !x.is_finite() || x == 0.0 {
        return libm::pow(x, n as f64);
    }
    let magnitude = wide_pow(x, n).to_f64();
    if x < 0.0 && n & 1 == 1 {
        -magnitude
    } else {
        magnitude
    }
}

/// A power `β^t` kept at 128 bits between steps, so that the next step's `β^(t+1)` is one
/// multiply; any other request recomputes it. `t = 0` marks an empty entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    base: u64,
    t: u64,
    power: Wide,
}

impl Entry {
    const EMPTY: Entry = Entry {
        base: 0,
        t: 0,
        power: Wide {
            mant: 0,
            exp: 0,
            inexact: false,
        },
    };
}

/// Cached powers `β^t` for up to two bases (Adam's β₁ and β₂), advanced one step at a
/// time. The results are those of [`powi`], whatever the cache holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Powers {
    entries: [Entry; 2],
}

impl Powers {
    /// No powers cached.
    pub(crate) const EMPTY: Powers = Powers {
        entries: [Entry::EMPTY; 2],
    };

    /// `β^t`, from entry `slot` (0 or 1) when it holds `β^t` or `β^(t−1)`.
    pub(crate) fn pow(&mut self, slot: usize, beta: f64, t: u64) -> f64 {
        let Some(entry) = self.entries.get_mut(slot) else {
            return powi(beta, t);
        };
        if t == 0 || !beta.is_finite() || beta <= 0.0 {
            *entry = Entry::EMPTY;
            return powi(beta, t);
        }
        let same_base = entry.t != 0 && entry.base == beta.to_bits();
        if !(same_base && entry.t == t) {
            entry.power = if same_base && entry.t == t - 1 {
                if entry.power.binary_exponent().abs() > EXP_LIMIT {
                    // Already 0 or ∞ as a double, and stays so: keep the exponent bounded.
                    entry.power
                } else {
                    entry.power.mul(&Wide::from_f64(beta))
                }
            } else {
                wide_pow(beta, t)
            };
            (entry.base, entry.t) = (beta.to_bits(), t);
        }
        entry.power.to_f64()
    }

    /// The cache as plain words, for carrying it where only plain data goes (the C
    /// ABI's `gradstep_scalars`): per entry the base's bits, t, the significand (low,
    /// high), the exponent, the inexact flag and a check word.
    pub(crate) fn words(&self) -> [u64; CACHE_WORDS] {
        let mut words = [0; CACHE_WORDS];
        for (entry, w) in self.entries.iter().zip(words.chunks_exact_mut(7)) {
            let p = &entry.power;
            w[..6].copy_from_slice(&[
                entry.base,
                entry.t,
                p.mant as u64,
                (p.mant >> 64) as u64,
                p.exp as u64,
                u64::from(p.inexact),
            ]);
            w[6] = if entry.t == 0 { 0 } else { check(&w[..6]) };
        }
        words
    }

    /// The cache from [`Powers::words`]. An entry whose words are not what
    /// `words` writes (zeros, or anything altered: the check word, a normalized
    /// significand and a bounded exponent are verified) is empty, and is recomputed.
    pub(crate) fn from_words(words: &[u64; CACHE_WORDS]) -> Powers {
        let mut powers = Powers::EMPTY;
        for (entry, w) in powers.entries.iter_mut().zip(words.chunks_exact(7)) {
            let power = Wide {
                mant: u128::from(w[3]) << 64 | u128::from(w[2]),
                exp: w[4] as i64,
                inexact: w[5] == 1,
            };
            let valid = w[1] != 0
                && w[5] <= 1
                && w[6] == check(&w[..6])
                && power.mant >> 127 == 1
                && power.exp.unsigned_abs() < 1 << 40;
            if valid {
                *entry = Entry {
                    base: w[0],
                    t: w[1],
                    power,
                };
            }
        }
        powers
    }
}

impl Default for Powers {
    fn default() -> Powers {
        Powers::EMPTY
    }
}

/// Words in [`Powers::words`].
pub(crate) const CACHE_WORDS: usize = 14;

/// A 64-bit digest of an entry's words (SplitMix64 finalizer over a running mix).
fn check(words: &[u64]) -> u64 {
    words.iter().fold(0x6772_6164_7374_6570, |h, &w| {
        let mut z = (h ^ w).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    use proptest::prelude::Rng;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    use proptest::test_runner::{RngAlgorithm, TestRng};
    use std::vec::Vec;

    /// The host's C library `pow`: glibc on Linux, which CPython and therefore torch
    /// use. The tests that compare with it run only there.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn host_pow(x: f64, n: u64) -> f64 {
        x.powf(n as f64)
    }

    fn assert_same(x: f64, n: u64, got: f64, want: f64) {
        assert!(
            got.to_bits() == want.to_bits(),
            "{x:e} ** {n}: {got:e} ({:#x}), want {want:e} ({:#x})",
            got.to_bits(),
            want.to_bits()
        );
    }

    #[test]
    fn the_cache_survives_words_and_refuses_forged_ones() {
        let mut cache = Powers::default();
        cache.pow(0, 0.9, 41);
        cache.pow(1, 0.999, 41);
        let words = cache.words();
        assert_eq!(Powers::from_words(&words), cache);
        assert_eq!(Powers::from_words(&[0; CACHE_WORDS]), Powers::EMPTY);
        // Any single altered word empties its entry (and only its entry).
        for i in 0..CACHE_WORDS {
            for flip in [1u64, 1 << 63, u64::MAX] {
                let mut forged = words;
                forged[i] ^= flip;
                let back = Powers::from_words(&forged);
                let (hit, other) = (i / 7, 1 - i / 7);
                assert_eq!(back.entries[hit], Entry::EMPTY, "word {i}");
                assert_eq!(back.entries[other], cache.entries[other]);
                // And the powers are right whatever was passed in.
                let mut back = back;
                assert_eq!(back.pow(0, 0.9, 42), powi(0.9, 42));
                assert_eq!(back.pow(1, 0.999, 42), powi(0.999, 42));
            }
        }
        // A cache far out of range (a step counter near 2^64) stays bounded and right.
        let mut cache = Powers::default();
        for t in [u64::MAX - 2, u64::MAX - 1, u64::MAX, 3, u64::MAX] {
            assert_eq!(cache.pow(0, 0.5, t), powi(0.5, t));
            assert_eq!(cache.pow(1, 1.5, t), powi(1.5, t));
        }
    }

    #[test]
    fn exact_cases() {
        assert_eq!(powi(0.5, 1074), f64::from_bits(1));
        // 2^-1075 is halfway between 0 and the smallest subnormal: ties to even, 0.
        assert_eq!(powi(0.5, 1075), 0.0);
        assert_eq!(powi(2.0, 1023), f64::from_bits(0x7FE0_0000_0000_0000));
        assert_eq!(powi(2.0, 1024), f64::INFINITY);
        assert_eq!(powi(-0.5, 3), -0.125);
        assert_eq!(powi(-3.0, 4), 81.0);
        assert_eq!(powi(3.0, 40), 12_157_665_459_056_928_801.0);
        assert_eq!(powi(10.0, 22), 1e22);
        assert_eq!(powi(0.9, 1), 0.9);
        assert_eq!(powi(f64::MAX, 1), f64::MAX);
        assert_eq!(powi(f64::from_bits(1), 1), f64::from_bits(1));
        assert_eq!(powi(0.999, u64::MAX), 0.0);
        assert_eq!(powi(1.0, u64::MAX), 1.0);
        assert_eq!(powi(1.5, u64::MAX), f64::INFINITY);
        assert!(powi(f64::NAN, 3).is_nan());
        assert_eq!(powi(f64::NAN, 0), 1.0);
        assert_eq!(powi(0.0, 3), 0.0);
        assert_eq!(powi(-0.0, 3).to_bits(), (-0.0f64).to_bits());
        assert_eq!(powi(f64::NEG_INFINITY, 2), f64::INFINITY);
    }

    /// Against exactly computed powers (`kernels/tests/data/record_powers.py`), including
    /// every sampled power that glibc's `pow` rounds the other way.
    #[test]
    fn correctly_rounded() {
        let text = include_str!("../tests/data/powers.txt");
        let (mut rows, mut c_differs) = (0, 0);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split(' ').collect();
            let hex = |s: &str| u64::from_str_radix(s, 16).unwrap();
            let (x, n) = (f64::from_bits(hex(f[0])), f[1].parse::<u64>().unwrap());
            let (exact, c) = (f64::from_bits(hex(f[2])), f64::from_bits(hex(f[3])));
            assert_same(x, n, powi(x, n), exact);
            let mut cache = Powers::default();
            cache.pow(0, x, n - 1);
            assert_same(x, n, cache.pow(0, x, n), exact);
            rows += 1;
            c_differs += usize::from(c != exact);
        }
        assert!(
            rows > 1200 && c_differs > 20,
            "{rows} rows, {c_differs} differ"
        );
    }

    /// Against the host's C library `pow` (glibc on Linux, which CPython and therefore
    /// torch use): glibc is not always correctly rounded (its bound is 0.52 ulp), so a
    /// few differ, by one ulp. `libm::pow` (what gradstep used before) differs in 3%.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[cfg_attr(
        miri,
        ignore = "Miri's pow is the host's with added error, not glibc's"
    )]
    fn agrees_with_the_c_library_pow() {
        let mut rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
        let unit = |rng: &mut TestRng| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (mut checked, mut differ) = (0u32, 0u32);
        for i in 0..1_000_000u64 {
            // Bases: Adam-like decays near 1, anything in (0, 2), and subnormal or huge
            // magnitudes; exponents: small, step-counter sized, and any 64-bit value.
            let x = match i % 4 {
                0 => 1.0 - unit(&mut rng) * 0.2,
                1 => unit(&mut rng) * 2.0,
                2 => f64::from_bits(rng.next_u64() >> 1),
                _ => -(1.0 - unit(&mut rng) * 1e-3),
            };
            let n = match i % 3 {
                0 => rng.next_u64() % 64,
                1 => rng.next_u64() % 2_000_000,
                _ => rng.next_u64() >> (rng.next_u64() % 64),
            };
            // The host's pow takes the exponent as a double: only exact ones compare.
            if !x.is_finite() || (n as f64) as u64 != n {
                continue;
            }
            let (got, want) = (powi(x, n), host_pow(x, n));
            if got != want {
                differ += 1;
                assert_eq!(got.to_bits().abs_diff(want.to_bits()), 1, "{x:e} ** {n}");
            }
            checked += 1;
        }
        assert!(checked > 900_000);
        assert!(differ < checked / 1000, "{differ} of {checked} differ");
    }

    /// Powers around the smallest normal, where the result loses precision bit by bit.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[cfg_attr(
        miri,
        ignore = "Miri's pow is the host's with added error, not glibc's"
    )]
    fn near_the_subnormal_boundary() {
        for &x in &[0.5, 0.75, 0.9, 0.999, 0.123_456_789, 1e-300] {
            // The n whose power crosses 2^-1022, and its neighbours down to zero.
            let n0 = (-1022.0 / libm::log2(x)) as u64;
            for n in n0.saturating_sub(3)..n0 + 60 {
                assert_same(x, n, powi(x, n), host_pow(x, n));
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "120 000 powers: hours under Miri, and no unsafe code")]
    fn the_cache_gives_the_uncached_powers() {
        for &beta in &[0.9, 0.999, 0.99, 0.5, 0.123, 0.999_999] {
            let mut cache = Powers::default();
            for t in 1..=20_000u64 {
                assert_same(beta, t, cache.pow(1, beta, t), powi(beta, t));
            }
        }
        // Jumps, repeats, base changes, both slots, a bad slot: always powi's value.
        let mut cache = Powers::default();
        let requests: Vec<(usize, f64, u64)> = [
            (0, 0.9, 5),
            (0, 0.9, 5),
            (0, 0.9, 6),
            (0, 0.9, 4),
            (1, 0.999, 1_000_000),
            (1, 0.999, 1_000_001),
            (0, 0.8, 5),
            (0, 0.8, 6),
            (0, 0.0, 6),
            (0, 0.8, 7),
            (0, f64::NAN, 8),
            (1, 0.999, 0),
            (2, 0.9, 3),
        ]
        .into();
        for (slot, beta, t) in requests {
            let got = cache.pow(slot, beta, t);
            let want = powi(beta, t);
            assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()));
        }
    }
}
