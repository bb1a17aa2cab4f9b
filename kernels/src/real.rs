//! The element types rules compute in.

use crate::lanes::{Lanes, LoadStore};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point type the rules compute in: `f32` or `f64`.
///
/// Hyperparameters are `f64` (as Python floats are in torch); per-step scalars such as
/// bias corrections are computed in `f64` and rounded to `Self` once per step with
/// [`Real::from_f64`], which is what torch does when it multiplies an `f32` tensor by a
/// Python float. `Vector` is the lane type the kernels run on for this element type on
/// the compile target (chosen in [`crate::lanes`]).
pub trait Real:
    sealed::Sealed
    + crate::arch::Dispatch
    + Lanes<Scalar = Self>
    + LoadStore<Self>
    + PartialOrd
    + core::fmt::Debug
    + Default
    + Send
    + Sync
    + 'static
{
    /// The widest lane vector of `Self` for the compile target.
    type Vector: Lanes<Scalar = Self> + LoadStore<Self>;
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// Rounds an `f64` to `Self` (round to nearest, ties to even).
    fn from_f64(x: f64) -> Self;
    /// Widens to `f64` (exact).
    fn to_f64(self) -> f64;
    /// `true` unless NaN or infinite.
    fn is_finite(self) -> bool;
}

impl Real for f32 {
    type Vector = crate::lanes::F32Vector;
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
}

impl Real for f64 {
    type Vector = crate::lanes::F64Vector;
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
}
