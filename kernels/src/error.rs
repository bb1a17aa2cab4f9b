//! The one error type every kernel returns.
//!
//! Every check happens before any buffer is written, so an `Err` always means that the
//! parameters, the state slices and the scalar state are exactly as the caller left them.

use core::fmt;

use crate::checkpoint::CheckpointError;

/// Which caller-provided buffer a [`Error::LengthMismatch`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Buffer {
    /// The gradient slice.
    Grads,
    /// The state slice at this index (see the rule's `slot_names`).
    State(usize),
    /// The scratch slice of a step with scratch memory
    /// ([`crate::rules::AnyRule::step_scratch`]).
    Scratch,
}

/// Why a step, or the construction of a rule, was refused.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A buffer's length differs from the parameter slice's length.
    LengthMismatch {
        /// The buffer whose length is wrong.
        buffer: Buffer,
        /// The parameter slice's length, which every buffer must equal.
        expected: usize,
        /// The buffer's actual length.
        found: usize,
    },
    /// The number of state slices differs from what the rule needs with its options
    /// (e.g. Adam needs 2, or 3 with `amsgrad`).
    StateSlots {
        /// Slices the rule needs.
        expected: usize,
        /// Slices given.
        found: usize,
    },
    /// A flat state buffer's length is not `slots × params.len()`.
    FlatStateLength {
        /// `slots × params.len()`.
        expected: usize,
        /// The flat buffer's length.
        found: usize,
    },
    /// A hyperparameter is outside its valid range (or NaN/infinite).
    InvalidHyperparameter {
        /// The field's name, as in the rule's struct (`"lr"`, `"beta1"`, ...).
        name: &'static str,
        /// The offending value (for flags such as `nesterov`, 1.0 for `true`).
        value: f64,
        /// The condition the value must meet, in words.
        requirement: &'static str,
    },
    /// The step counter would pass `u64::MAX`.
    StepOverflow,
    /// Gradient clipping was asked to refuse a non-finite total norm
    /// (`error_if_nonfinite`), and the norm is NaN or infinite. No gradient was changed.
    NonFiniteNorm {
        /// The total norm that was found.
        norm: f64,
    },
    /// A schedule with a fixed length (OneCycleLR) was stepped past its last step.
    ScheduleFinished {
        /// The schedule's total number of steps.
        total_steps: u64,
    },
    /// A rule chosen at run time ([`crate::rules::AnyRule`]) was given the scalar state of
    /// another kind of rule (NAdam's for Adam, ...). Nothing was written.
    WrongScalars {
        /// The rule stepped.
        rule: crate::rules::RuleId,
    },
    /// A checkpoint could not be written or read ([`crate::checkpoint`]); nothing was
    /// written to the destination buffers.
    Checkpoint(CheckpointError),
    /// A step in two parts ([`crate::rules::AnyRule::step_norms_part`]) was asked of an
    /// elementwise rule, which has no norm between its parts: step it with
    /// [`crate::rules::AnyRule::step`], over the whole tensor or any cut of it.
    NotLayerWise {
        /// The rule asked.
        rule: crate::rules::RuleId,
    },
    /// Scalar state that no run of steps produces, after step 0 (NAdam's μ-product
    /// outside [0, 1]; ASGD's η not finite and ≥ 0, or μ outside (0, 1]): stepped, every
    /// later step would be silently wrong. Nothing was written. At step 0 (fresh state)
    /// these fields are ignored.
    InvalidScalarState {
        /// The field's name, as in the scalar state's struct (`"mu_product"`, `"eta"`,
        /// `"mu"`).
        name: &'static str,
        /// The offending value.
        value: f64,
        /// The range steps keep it in, in words.
        requirement: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::LengthMismatch {
                buffer: Buffer::Grads,
                expected,
                found,
            } => {
                write!(
                    f,
                    "gradient slice has length {found}, parameters have {expected}"
                )
            }
            Error::LengthMismatch {
                buffer: Buffer::State(i),
                expected,
                found,
            } => {
                write!(
                    f,
                    "state slice {i} has length {found}, parameters have {expected}"
                )
            }
            Error::LengthMismatch {
                buffer: Buffer::Scratch,
                expected,
                found,
            } => {
                write!(
                    f,
                    "scratch slice has length {found}, parameters have {expected}"
                )
            }
            Error::StateSlots { expected, found } => {
                write!(f, "rule needs {expected} state slices, {found} given")
            }
            Error::FlatStateLength { expected, found } => {
                write!(
                    f,
                    "flat state buffer has length {found}, rule needs {expected}"
                )
            }
            Error::InvalidHyperparameter {
                name,
                value,
                requirement,
            } => {
                write!(f, "invalid hyperparameter {name} = {value}: {requirement}")
            }
            Error::StepOverflow => f.write_str("step counter overflow"),
            Error::NonFiniteNorm { norm } => {
                write!(f, "total gradient norm is {norm}, refusing to clip")
            }
            Error::ScheduleFinished { total_steps } => {
                write!(f, "schedule stepped past its {total_steps} total steps")
            }
            Error::WrongScalars { rule } => {
                write!(f, "scalar state is not of the kind rule {rule} keeps")
            }
            Error::Checkpoint(e) => fmt::Display::fmt(&e, f),
            Error::NotLayerWise { rule } => {
                write!(f, "rule {rule} has no norm pass to step in two parts")
            }
            Error::InvalidScalarState {
                name,
                value,
                requirement,
            } => {
                write!(f, "invalid scalar state {name} = {value}: {requirement}")
            }
        }
    }
}

impl core::error::Error for Error {}

/// Checks `ok`, or returns the [`Error::InvalidHyperparameter`] that describes it.
#[inline]
pub(crate) fn require(
    ok: bool,
    name: &'static str,
    value: f64,
    requirement: &'static str,
) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name,
            value,
            requirement,
        })
    }
}

/// Hyperparameter checks shared by the rules; each returns the typed error on failure.
///
/// The ranges are tested on the bits, which order like the values among non-negative
/// doubles (NaN and the infinities above every finite one): the same answers as the
/// float comparisons (`bit_tests_are_the_float_comparisons`), but a few integer
/// operations where a core without a double-precision unit (the Cortex-M4F, the M0)
/// makes each float comparison a library call of about 30 instructions: every step
/// validates its rule, and the comparisons were about 250 of Adam's 2 300 instructions
/// per step there.
pub(crate) mod check {
    use super::{Error, require};

    /// The bits of `-0.0`: the one value with the sign set that every range here holds.
    const NEG_ZERO: u64 = 1 << 63;

    /// Whether `v` is finite and `>= 0`, on the bits.
    #[inline(always)]
    pub(crate) fn is_non_negative(v: f64) -> bool {
        let b = v.to_bits();
        b < f64::INFINITY.to_bits() || b == NEG_ZERO
    }
    /// Whether `v` is in `[0, 1]`, on the bits.
    #[inline(always)]
    pub(crate) fn is_unit_closed(v: f64) -> bool {
        let b = v.to_bits();
        b <= 1f64.to_bits() || b == NEG_ZERO
    }
    /// Whether `v` is in `(0, 1]`, on the bits: the positive doubles up to 1 are the
    /// bits 1 ..= 1.0's.
    #[inline(always)]
    pub(crate) fn is_unit_positive(v: f64) -> bool {
        v.to_bits().wrapping_sub(1) < 1f64.to_bits()
    }

    /// Finite and `>= 0`: learning rates, weight decays, momenta.
    pub fn non_negative(name: &'static str, v: f64) -> Result<(), Error> {
        require(is_non_negative(v), name, v, "must be finite and >= 0")
    }
    /// Finite and `> 0`: epsilons.
    pub fn positive(name: &'static str, v: f64) -> Result<(), Error> {
        let b = v.to_bits();
        require(
            b != 0 && b < f64::INFINITY.to_bits(),
            name,
            v,
            "must be finite and > 0",
        )
    }
    /// In `[0, 1)`: betas.
    pub fn unit_open(name: &'static str, v: f64) -> Result<(), Error> {
        let b = v.to_bits();
        require(
            b < 1f64.to_bits() || b == NEG_ZERO,
            name,
            v,
            "must be in [0, 1)",
        )
    }
    /// In `[0, 1]`: decay rates that may freeze the average.
    pub fn unit_closed(name: &'static str, v: f64) -> Result<(), Error> {
        require(is_unit_closed(v), name, v, "must be in [0, 1]")
    }
    /// In `(0, 1]`: rates that must move (Proximal's and Mukkamala & Hein's γ).
    pub fn unit_positive(name: &'static str, v: f64) -> Result<(), Error> {
        require(is_unit_positive(v), name, v, "must be in (0, 1]")
    }
    /// Any finite value.
    pub fn finite(name: &'static str, v: f64) -> Result<(), Error> {
        require(crate::rules::finite(v), name, v, "must be finite")
    }
}

#[cfg(test)]
mod tests {
    use super::check;
    use crate::testing::{Mix, SPECIAL_F64};

    /// The checks on the bits answer as the float comparisons they replace, on the
    /// special values, each range's ends and their neighbours, and random doubles.
    #[test]
    fn bit_tests_are_the_float_comparisons() {
        let mut values = SPECIAL_F64.to_vec();
        values.extend([
            1.0 - f64::EPSILON / 2.0,
            1.0 + f64::EPSILON,
            1e-8,
            0.9,
            0.999,
        ]);
        let mut rng = Mix(0x2545_F491_4F6C_DD1D);
        for _ in 0..100_000 {
            values.push(rng.any_f64());
            // Dense around the ranges' ends: [-2, 2).
            values.push(rng.unit() * 4.0 - 2.0);
        }
        let mut refused = [0usize; 5];
        for v in values {
            let cases = [
                (
                    check::non_negative("v", v).is_ok(),
                    v.is_finite() && v >= 0.0,
                ),
                (check::positive("v", v).is_ok(), v.is_finite() && v > 0.0),
                (check::unit_open("v", v).is_ok(), (0.0..1.0).contains(&v)),
                (check::unit_closed("v", v).is_ok(), (0.0..=1.0).contains(&v)),
                (check::unit_positive("v", v).is_ok(), v > 0.0 && v <= 1.0),
            ];
            for (k, (got, want)) in cases.into_iter().enumerate() {
                assert_eq!(got, want, "check {k} of {v:e} ({:#x})", v.to_bits());
                refused[k] += usize::from(!got);
            }
        }
        // Each check both accepts and refuses a good share of the random values.
        assert!(
            refused.iter().all(|&r| r > 50_000 && r < 190_000),
            "{refused:?}"
        );
    }

    /// `rules::{lt, le, is}` answer as `<`, `<=` and `==`, for every pair drawn from the
    /// special values, values a few ulps apart, and random doubles of both signs.
    #[test]
    fn bit_orders_are_the_float_comparisons() {
        use crate::rules::{is, le, lt};
        let mut values = SPECIAL_F64.to_vec();
        let mut rng = Mix(0xD1B5_4A32_D192_ED03);
        for _ in 0..300 {
            let x = rng.any_f64();
            values.extend([
                x,
                -x,
                f64::from_bits(x.to_bits() + 1),
                rng.unit() * 4.0 - 2.0,
            ]);
        }
        values.extend([
            1.0,
            -1.0,
            0.5,
            5.0,
            10.0,
            f64::from_bits(1),
            -f64::from_bits(1),
        ]);
        let mut seen = [0usize; 3];
        for &x in &values {
            for &y in &values {
                let (a, b) = (x.to_bits(), y.to_bits());
                assert_eq!(lt(x, y), x < y, "lt {x:e} ({a:#x}), {y:e} ({b:#x})");
                assert_eq!(le(x, y), x <= y, "le {x:e} ({a:#x}), {y:e} ({b:#x})");
                if y != 0.0 && !y.is_nan() {
                    assert_eq!(is(x, y), x == y, "is {x:e} ({a:#x}), {y:e} ({b:#x})");
                }
                seen[0] += usize::from(x < y);
                seen[1] += usize::from(x == y);
                seen[2] += usize::from(x.is_nan() || y.is_nan());
            }
        }
        assert!(seen.iter().all(|&k| k > 100), "{seen:?}");
    }

    /// `rules::whole` is the float test it replaces, on the specials, every power of two
    /// and its neighbours, whole numbers and halves near 2⁵³, and random doubles.
    #[test]
    fn whole_exponents_are_the_float_test() {
        let float = |e: f64| {
            ((0.0..=9_007_199_254_740_992.0).contains(&e) && e as u64 as f64 == e)
                .then_some(e as u64)
        };
        let mut values = SPECIAL_F64.to_vec();
        for k in -1074..1024 {
            // 2^k from its bits, the subnormal ones included.
            let p = if k >= -1022 {
                f64::from_bits(((k + 1023) as u64) << 52)
            } else {
                f64::from_bits(1 << (k + 1074))
            };
            for b in [p.to_bits() - 1, p.to_bits(), p.to_bits() + 1] {
                values.extend([f64::from_bits(b), -f64::from_bits(b)]);
            }
        }
        let top = 9_007_199_254_740_992.0f64;
        for d in -8..=8 {
            values.extend([
                top + f64::from(d),
                top + f64::from(d) * 2.0,
                4503599627370496.0 + f64::from(d) / 2.0,
            ]);
        }
        values.extend([0.5, 1.5, 3.0, 3.25, 1e15, 1e300, 6.0 * 0.004]);
        let mut rng = Mix(0x853C_49E6_748F_EA9B);
        for _ in 0..100_000 {
            values.push(rng.any_f64());
            values.push((rng.unit() * 1e6).floor());
            values.push(rng.unit() * 100.0);
        }
        let mut wholes = 0;
        for v in values {
            assert_eq!(
                crate::rules::whole(v),
                float(v),
                "{v:e} ({:#x})",
                v.to_bits()
            );
            wholes += usize::from(float(v).is_some());
        }
        assert!(wholes > 100_000, "{wholes}");
    }

    /// `rules::nonzero` (two 32-bit halves) is `x != 0.0`, and `rules::finite` (the high
    /// half) `x.is_finite()`: ±0, NaNs, infinities, subnormals, the values whose bits are
    /// zero in one half only, random doubles.
    #[test]
    fn nonzero_and_finite_are_the_float_tests() {
        let mut values = SPECIAL_F64.to_vec();
        for half in [
            1u64,
            1 << 31,
            1 << 32,
            1 << 62,
            1 << 63 | 1,
            1 << 63 | 1 << 32,
        ] {
            values.push(f64::from_bits(half));
        }
        let mut rng = Mix(0x9E37_79B9_7F4A_7C15);
        values.extend((0..100_000).map(|_| rng.any_f64()));
        let zeros = values.iter().filter(|&&v| v == 0.0).count();
        for v in values {
            assert_eq!(
                crate::rules::nonzero(v),
                v != 0.0,
                "{v:e} ({:#x})",
                v.to_bits()
            );
            assert_eq!(
                crate::rules::finite(v),
                v.is_finite(),
                "{v:e} ({:#x})",
                v.to_bits()
            );
        }
        assert!(zeros >= 2, "{zeros}");
    }
}
