//! Helpers of the crate's unit tests.

/// SplitMix64: reproducible test inputs, the same on every target.
pub(crate) struct Mix(pub(crate) u64);

impl Mix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A double of random bits: every sign, exponent and NaN payload.
    pub(crate) fn any_f64(&mut self) -> f64 {
        f64::from_bits(self.next())
    }
}

/// The doubles every bit-level test of a float predicate starts from: both zeros, both
/// infinities, quiet and signalling NaNs of either sign, the least subnormals, the
/// least normal, the extremes and ±1.
pub(crate) const SPECIAL_F64: [f64; 15] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    -f64::NAN,
    f64::from_bits(0x7FF0_0000_0000_0001),
    f64::from_bits(0xFFF8_0000_0000_0001),
    f64::MAX,
    f64::MIN,
    f64::MIN_POSITIVE,
    f64::from_bits(1),
    f64::from_bits(0x8000_0000_0000_0001),
];
