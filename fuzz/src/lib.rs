//! What the fuzz targets share: reading the fuzzer's bytes as values.

/// Reads the fuzzer's bytes front to back; past the end everything is 0.
pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    /// The next byte.
    pub fn u8(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }

    /// The next `out.len()` bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            *b = self.u8();
        }
    }

    /// The next 8 bytes as a number.
    pub fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| acc << 8 | u64::from(self.u8()))
    }

    /// One of `typical` (a caller's values, so that calls get past validation) in
    /// `odds + 1` of 256 draws; otherwise any bits at all (NaN payloads, subnormals,
    /// infinities, huge and negative values).
    pub fn f64_from(&mut self, typical: &[f64; 16], odds: u8) -> f64 {
        if self.u8() <= odds {
            typical[usize::from(self.u8() % 16)]
        } else {
            f64::from_bits(self.u64())
        }
    }
}
