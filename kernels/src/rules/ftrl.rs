//! FTRL-Proximal (`keras.optimizers.Ftrl`).

use super::{Rule, StepCount, begin_step, is, nonzero};
use crate::driver::{Drive, Kernel, Plain};
use crate::error::{Error, check, require};
use crate::lanes::{Divisor, Lanes};
use crate::real::Real;

/// FTRL-Proximal (McMahan et al., "Ad Click Prediction: a View from the Trenches",
/// 2013) as `keras.optimizers.Ftrl`, with `pytorch_optimizer.FTRL`'s differences as
/// options.
///
/// Per step with gradient `g` (per coordinate; `n` the accumulator, `z` the linear
/// term, `P(x) = x^(−p)` for the power `p` = `lr_power`):
///
/// ```text
/// g ← −g                                         if maximize
/// g̃ = g + 2λₛθ                                   (shrinkage: on the linear term only)
/// n' = n + g²
/// σ = (P(n') − P(n))/γ
/// z ← z + (g̃ − σ·θ)
/// q = P(n')/γ + 2·(λ₂ + β/(2γ))                   (Keras)
/// q = (√n' + β)/γ + λ₂                            (single_l2: pytorch_optimizer's form)
/// θ ← (clip(z, −λ₁, λ₁) − z)/q                    (0 exactly where |z| ≤ λ₁)
/// n ← n'
/// ```
///
/// q is 0 only where n' = 0 (from n₀ = 0, every gradient so far 0 or so small that its
/// square underflows: |g| < 2⁻⁷⁵ in f32, 2⁻⁵³⁸ in f64) with λ₂ = β = 0 and p ≠ 0 or
/// `sqrt_denominator`: pytorch_optimizer's defaults. There θ = 0 where |z| ≤ λ₁
/// (pytorch_optimizer's mask; the formula's 0/0), and ±∞ where |z| > λ₁ (after tiny
/// gradients, z = Σg ≠ 0), as the formula gives.
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | γ | `lr` | 1e-3 | finite, > 0 |
/// | p | `lr_power` | −0.5 | 0, −0.5 or −1 |
/// | n₀ | `initial_accumulator_value` | 0.1 | finite, ≥ 0 |
/// | λ₁ | `l1` | 0 | finite, ≥ 0 |
/// | λ₂ | `l2` | 0 | finite, ≥ 0 |
/// | λₛ | `l2_shrinkage` | 0 | finite, ≥ 0 |
/// | β | `beta` | 0 | finite, ≥ 0 |
/// | | `single_l2` | false | |
/// | | `sqrt_denominator` | false | |
/// | | `maximize` | false | |
///
/// The fields are Keras's: `learning_rate`, `learning_rate_power`,
/// `initial_accumulator_value`, `l1_regularization_strength`,
/// `l2_regularization_strength`, `l2_shrinkage_regularization_strength`, `beta`, with
/// Keras's defaults. State slices: `accumulator` (n, from n₀) and `linear` (z, from 0),
/// Keras's names. Scalar state: the step counter.
///
/// Where `pytorch_optimizer.FTRL` (4.1.0) differs, each a named option, checked against
/// its source and its recordings (`tests/fixtures/pytorch_optimizer/ftrl.json`; its
/// defaults are `ftrl:initial_accumulator_value=0,single_l2,sqrt_denominator`):
/// - its accumulator starts at 0: `initial_accumulator_value = 0`;
/// - its denominator adds λ₂ where Keras adds 2λ₂, computed as `(√n' + β)/γ + λ₂`:
///   `single_l2`;
/// - its denominator uses √n' whatever the power (the power still sets σ):
///   `sqrt_denominator`;
/// - it adds the gradient to z before subtracting σθ (`(z + g) − σθ`), Keras after
///   (`z + (g − σθ)`), and writes θ as `(sign(z)·λ₁ − z)/q` set to 0 where |z| ≤ λ₁
///   (the same values: clip(z) = sign(z)·λ₁ where |z| > λ₁): gradstep always uses
///   Keras's order, so pytorch_optimizer's results differ from these in the last bits;
/// - it has no shrinkage (λₛ = 0) and takes any power p ≤ 0 (gradstep: 0, −½, −1).
///
/// Powers other than 0, −½ and −1 are refused: `P` is computed per element, with the
/// square root for −½ (as torch's `pow(x, 0.5)`), and the lanes have no general power.
/// When the denominator can be 0 (n₀ = λ₂ = β = 0, p ≠ 0 or `sqrt_denominator`),
/// shrinkage is refused: with it z = 2λₛθ need not be 0 where q is, and Keras itself
/// gives 0/0 = NaN at a zero first gradient when n₀ = 0.
///
/// In exact arithmetic, with β = 0, λₛ = 0 and p = −½, this is
/// [`Proximal`](crate::Proximal) with `representation = lazy, adapt = adagrad, eps = 0,
/// initial_accumulator_value = n₀, l1_kind = fixed, l2_kind = proximal, l2 = 2λ₂`, and
/// then bit for bit too (both compute Keras's expressions).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ftrl {
    /// Learning rate γ.
    pub lr: f64,
    /// The power p of the accumulator in the learning rate (≤ 0).
    pub lr_power: f64,
    /// Initial value n₀ of the accumulator.
    pub initial_accumulator_value: f64,
    /// L1 strength λ₁.
    pub l1: f64,
    /// L2 strength λ₂ (Keras's: the regulariser is λ₂‖θ‖²).
    pub l2: f64,
    /// Shrinkage-type L2 strength λₛ (added to the gradient in z as 2λₛθ).
    pub l2_shrinkage: f64,
    /// β, added to the denominator as β/γ.
    pub beta: f64,
    /// pytorch_optimizer's denominator: λ₂ instead of 2λ₂, as `(√n + β)/γ + λ₂`.
    pub single_l2: bool,
    /// pytorch_optimizer's denominator: √n whatever the power.
    pub sqrt_denominator: bool,
    /// Ascend the objective instead of descending it.
    pub maximize: bool,
}

impl Default for Ftrl {
    fn default() -> Self {
        Ftrl {
            lr: 1e-3,
            lr_power: -0.5,
            initial_accumulator_value: 0.1,
            l1: 0.0,
            l2: 0.0,
            l2_shrinkage: 0.0,
            beta: 0.0,
            single_l2: false,
            sqrt_denominator: false,
            maximize: false,
        }
    }
}

/// Which power `P(x) = x^(−p)` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Power {
    One,
    Sqrt,
    Identity,
}

impl Power {
    fn of(lr_power: f64) -> Power {
        if !nonzero(lr_power) {
            Power::One
        } else if is(lr_power, -1.0) {
            Power::Identity
        } else {
            Power::Sqrt
        }
    }

    #[inline(always)]
    fn apply<V: Lanes>(self, x: V) -> V {
        match self {
            Power::One => V::splat(<V::Scalar as Real>::ONE),
            // √|x|: x is an accumulator, non-negative by construction (n₀ ≥ 0, then
            // n + g²); an inline `VSQRT` on the Cortex-M4F where `sqrt` is a call.
            Power::Sqrt => x.sqrt_abs(),
            Power::Identity => x,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Coeffs<T> {
    maximize: bool,
    power: Power,
    sqrt_denominator: bool,
    single_l2: bool,
    /// γ: every element divides by it twice (σ, and q's `d/γ`): a per-step divisor, so
    /// `div_by`'s multiplying path where it is exact (the same bits as `/`); with P = √,
    /// σ's dividend is a difference of two roots, which needs no range test
    /// (`Lanes::root_difference_div_by`).
    lr: Divisor<T>,
    shrink2: T,
    l1: T,
    /// Keras: 2·(λ₂ + β/(2γ)); single_l2: λ₂.
    l2_term: T,
    beta: T,
}

impl Ftrl {
    fn coeffs<T: Real>(&self) -> Coeffs<T> {
        let lr = T::from_f64(self.lr);
        let two = T::from_f64(2.0);
        // Keras computes λ₂ + β/(2γ) in the variable's dtype, with γ a tensor.
        let l2_term = if self.single_l2 {
            T::from_f64(self.l2)
        } else {
            two * (T::from_f64(self.l2) + T::from_f64(self.beta) / (two * lr))
        };
        Coeffs {
            maximize: self.maximize,
            power: Power::of(self.lr_power),
            sqrt_denominator: self.sqrt_denominator,
            single_l2: self.single_l2,
            lr: Divisor::new(lr),
            shrink2: T::from_f64(2.0 * self.l2_shrinkage),
            l1: T::from_f64(self.l1),
            l2_term,
            beta: T::from_f64(self.beta),
        }
    }

    /// Whether q can be 0: n' = 0 (every gradient so far 0, from n₀ = 0) with λ₂ = β = 0
    /// and a denominator that is a power of n'.
    fn denominator_can_be_zero(&self) -> bool {
        let powered = nonzero(self.lr_power) || self.sqrt_denominator;
        powered
            && !nonzero(self.initial_accumulator_value)
            && !nonzero(self.l2)
            && !nonzero(self.beta)
    }
}

impl<T: Real> Coeffs<T> {
    /// The options a [`Plain`] kernel makes constants: no `maximize` and P = √ (Keras's
    /// default power), where `sqrt_denominator` changes nothing (d = √n' either way);
    /// variant 0 with Keras's denominator, 1 with `single_l2`'s.
    fn plain_variant(&self) -> Option<u8> {
        (!self.maximize && self.power == Power::Sqrt).then_some(u8::from(self.single_l2))
    }

    /// One element's step. `PLAIN` 0 is the general form; 1 and 2 are
    /// [`Coeffs::plain_variant`] 0 and 1, with the options as constants: the same
    /// operations on the same values (P(n') is computed once for σ and d).
    #[inline(always)]
    fn update<V: Lanes<Scalar = T>, const PLAIN: u8>(&self, p: &mut V, g: V, [n, z]: &mut [V; 2]) {
        let g = if PLAIN == 0 && self.maximize { -g } else { g };
        let theta = *p;
        let g_shrunk = g + V::splat(self.shrink2) * theta;
        let fresh = *n + g * g;
        let power = if PLAIN == 0 { self.power } else { Power::Sqrt };
        let powered = power.apply(fresh);
        let rise = powered - power.apply(*n);
        let sigma = if power == Power::Sqrt {
            // A difference of two roots: the lanes that multiply need no range test.
            rise.root_difference_div_by(self.lr)
        } else {
            rise.div_by(self.lr)
        };
        *z = *z + (g_shrunk - sigma * theta);
        let d = if PLAIN == 0 && self.sqrt_denominator {
            fresh.sqrt_abs()
        } else {
            powered
        };
        let single_l2 = if PLAIN == 0 {
            self.single_l2
        } else {
            PLAIN == 2
        };
        let q = if single_l2 {
            (d + V::splat(self.beta)).div_by(self.lr) + V::splat(self.l2_term)
        } else if PLAIN == 1 {
            // d = √n': the root's own division, with its one-compare range test.
            fresh.sqrt_abs_div_by(self.lr) + V::splat(self.l2_term)
        } else {
            d.div_by(self.lr) + V::splat(self.l2_term)
        };
        let l1 = V::splat(self.l1);
        let clipped = z.max(-l1).min(l1);
        // q is 0 only where n' = 0 with n₀ = λ₂ = β = 0 (pytorch_optimizer's defaults):
        // every gradient so far 0, or so small that its square underflowed. Where
        // |z| ≤ λ₁ the numerator is +0 (z − z) and the step would be 0/0: θ = 0,
        // pytorch_optimizer's mask; elsewhere ±∞, as the formula gives. A NaN numerator
        // stays NaN.
        let num = clipped - *z;
        let zero = V::splat(T::ZERO);
        *p = V::select(num.eq(zero), zero, num / q);
        *n = fresh;
    }
}

impl<T: Real> Kernel<T, 2> for Coeffs<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, s: &mut [V; 2]) {
        self.update::<V, 0>(p, g, s);
    }
}

impl<T: Real, const VARIANT: u8> Kernel<T, 2> for Plain<Coeffs<T>, VARIANT> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, s: &mut [V; 2]) {
        if VARIANT == 0 {
            self.0.update::<V, 1>(p, g, s);
        } else {
            self.0.update::<V, 2>(p, g, s);
        }
    }
}

impl Rule for Ftrl {
    type Scalars = StepCount;
    const NAME: &'static str = "ftrl";

    fn validate(&self) -> Result<(), Error> {
        check::positive("lr", self.lr)?;
        require(
            !nonzero(self.lr_power) || is(self.lr_power, -0.5) || is(self.lr_power, -1.0),
            "lr_power",
            self.lr_power,
            "must be 0, -0.5 or -1 (other powers need a per-element pow)",
        )?;
        check::non_negative("initial_accumulator_value", self.initial_accumulator_value)?;
        check::non_negative("l1", self.l1)?;
        check::non_negative("l2", self.l2)?;
        check::non_negative("l2_shrinkage", self.l2_shrinkage)?;
        check::non_negative("beta", self.beta)?;
        require(
            !self.denominator_can_be_zero() || !nonzero(self.l2_shrinkage),
            "l2_shrinkage",
            self.l2_shrinkage,
            "must be 0 when initial_accumulator_value, l2 and beta are 0 \
             (a zero gradient would divide the shrinkage term by 0)",
        )
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["accumulator", "linear"]
    }

    fn run<T: Real, D: Drive<T>>(&self, _: &mut StepCount, _: u64, drive: D) -> D::Out {
        let init = [T::from_f64(self.initial_accumulator_value), T::ZERO];
        let c = self.coeffs::<T>();
        match c.plain_variant() {
            Some(0) => drive.run::<2, _>(&Plain::<_, 0>(c), Some(init)),
            Some(_) => drive.run::<2, _>(&Plain::<_, 1>(c), Some(init)),
            None => drive.run::<2, _>(&c, Some(init)),
        }
    }

    fn step_reference<T: Real>(
        &self,
        scalars: &mut StepCount,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
    ) -> Result<(), Error> {
        let t = begin_step(self, scalars, params, grads, state)?;
        let lr = T::from_f64(self.lr);
        let power = |x: T| -> T {
            if self.lr_power == 0.0 {
                T::ONE
            } else if self.lr_power == -1.0 {
                x
            } else {
                Lanes::sqrt_abs(x)
            }
        };
        for i in 0..params.len() {
            if t == 1 {
                state[0][i] = T::from_f64(self.initial_accumulator_value);
                state[1][i] = T::ZERO;
            }
            let theta = params[i];
            let g = if self.maximize { -grads[i] } else { grads[i] };
            let n = state[0][i];
            let n_new = n + g * g;
            let sigma = (power(n_new) - power(n)) / lr;
            let z =
                state[1][i] + ((g + T::from_f64(2.0 * self.l2_shrinkage) * theta) - sigma * theta);
            let d = if self.sqrt_denominator {
                Lanes::sqrt_abs(n_new)
            } else {
                power(n_new)
            };
            let q = if self.single_l2 {
                (d + T::from_f64(self.beta)) / lr + T::from_f64(self.l2)
            } else {
                let two = T::from_f64(2.0);
                d / lr + two * (T::from_f64(self.l2) + T::from_f64(self.beta) / (two * lr))
            };
            let l1 = T::from_f64(self.l1);
            let clipped = if z > l1 {
                l1
            } else if z < -l1 {
                -l1
            } else {
                z
            };
            // pytorch_optimizer's form: 0 where |z| ≤ λ₁, which is where the step
            // above gives 0/0 when q = 0.
            params[i] = if q == T::ZERO && Lanes::abs(z) <= l1 {
                T::ZERO
            } else {
                (clipped - z) / q
            };
            state[0][i] = n_new;
            state[1][i] = z;
        }
        scalars.step = t;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::vec::Vec;

    /// pytorch_optimizer's defaults (n₀ = λ₂ = β = 0): where every gradient so far was
    /// exactly 0 the denominator is 0, and θ is 0 (not 0/0), on the lanes and in the
    /// reference alike; elsewhere the step is the usual one. Keras's form with n₀ = 0
    /// is the same rule, and shrinkage is refused there.
    fn zero_denominator<T: Real>() {
        for (single_l2, sqrt_denominator, lr_power, l1) in [
            (true, true, -0.5, 0.0),
            (true, true, -0.5, 0.1),
            (false, false, -1.0, 0.0),
            (true, true, 0.0, 0.05),
        ] {
            let rule = Ftrl {
                lr: 0.1,
                lr_power,
                initial_accumulator_value: 0.0,
                l1,
                single_l2,
                sqrt_denominator,
                ..Ftrl::default()
            };
            rule.validate().unwrap();
            let n = 37;
            let x = |i: usize, k: usize| T::from_f64(((i * k + 5) % 17) as f64 / 5.0 - 1.5);
            let mut p: Vec<T> = (0..n).map(|i| x(i, 7)).collect();
            let mut q = p.clone();
            let zeros = || Vec::from_iter((0..n).map(|_| T::ZERO));
            let (mut a0, mut a1, mut b0, mut b1) = (zeros(), zeros(), zeros(), zeros());
            let (mut sa, mut sb) = (StepCount::default(), StepCount::default());
            for step in 0..4 {
                // Coordinates i % 3 == 0 see only zero gradients (−0 once).
                let g: Vec<T> = (0..n)
                    .map(|i| match (i % 3, step) {
                        (0, 1) => -T::ZERO,
                        (0, _) => T::ZERO,
                        _ => x(i, 3 + step),
                    })
                    .collect();
                rule.step(&mut sa, &mut p, &g, &mut [&mut a0, &mut a1])
                    .unwrap();
                rule.step_reference(&mut sb, &mut q, &g, &mut [&mut b0, &mut b1])
                    .unwrap();
                for i in 0..n {
                    assert_eq!(p[i].to_f64().to_bits(), q[i].to_f64().to_bits(), "{i}");
                    if i % 3 == 0 {
                        assert_eq!(p[i].to_f64(), 0.0, "{i}: {:?}", p[i].to_f64());
                    } else {
                        assert!(p[i].to_f64().is_finite());
                    }
                }
            }
            // With shrinkage the zero-denominator configuration is refused.
            let shrunk = Ftrl {
                l2_shrinkage: 0.1,
                ..rule
            };
            assert!(shrunk.validate().is_err());
            let p_before = p.clone();
            let g = zeros();
            assert!(
                shrunk
                    .step(&mut sa, &mut p, &g, &mut [&mut a0, &mut a1])
                    .is_err()
            );
            assert_eq!(p, p_before);
        }
    }

    /// A gradient so small that its square underflows (|g| < 2⁻⁷⁵ in f32, 2⁻⁵³⁸ in
    /// f64) leaves n' = 0, so the denominator is 0 with z = g ≠ 0: θ = −z/0 = ∓∞ where
    /// |z| > λ₁, as Keras's and pytorch_optimizer's formulas give, and 0 where |z| ≤ λ₁;
    /// the lanes as the reference, bit for bit (lifting q to the least subnormal gave
    /// a finite θ there).
    fn underflowing_gradient<T: Real>(tiny: f64) {
        for l1 in [0.0, tiny * 0.5, tiny * 2.0] {
            let rule = Ftrl {
                lr: 1e-4,
                initial_accumulator_value: 0.0,
                l1,
                ..Ftrl::default()
            };
            rule.validate().unwrap();
            // Every length through the lanes' loop and its ends, ± the tiny gradient.
            let n = 37;
            let g: Vec<T> = (0..n)
                .map(|i| T::from_f64(if i % 2 == 0 { tiny } else { -tiny }))
                .collect();
            let zeros = || Vec::from_iter((0..n).map(|_| T::ZERO));
            let (mut p, mut q) = (zeros(), zeros());
            let (mut a0, mut a1, mut b0, mut b1) = (zeros(), zeros(), zeros(), zeros());
            let (mut sa, mut sb) = (StepCount::default(), StepCount::default());
            rule.step(&mut sa, &mut p, &g, &mut [&mut a0, &mut a1])
                .unwrap();
            rule.step_reference(&mut sb, &mut q, &g, &mut [&mut b0, &mut b1])
                .unwrap();
            for i in 0..n {
                assert_eq!(a0[i].to_f64(), 0.0, "g² underflows");
                let want = if l1 >= tiny {
                    0.0
                } else if i % 2 == 0 {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                };
                assert_eq!(q[i].to_f64(), want, "reference, {i}, l1 {l1:e}");
                assert_eq!(
                    p[i].to_f64().to_bits(),
                    want.to_bits(),
                    "lanes, {i}, l1 {l1:e}"
                );
            }
        }
    }

    #[test]
    fn underflowing_gradient_f32() {
        underflowing_gradient::<f32>(1e-30);
    }

    #[test]
    fn underflowing_gradient_f64() {
        underflowing_gradient::<f64>(1e-200);
    }

    #[test]
    fn zero_denominator_f32() {
        zero_denominator::<f32>();
    }

    #[test]
    fn zero_denominator_f64() {
        zero_denominator::<f64>();
    }
}
