//! Gradient accumulation over micro-batches into caller-owned buffers (Keras
//! `gradient_accumulation_steps`, optax `MultiSteps`, torch's repeated `backward()`).
//!
//! ```
//! use gradstep::{Accumulator, Reduction};
//!
//! let mut buf = [f32::NAN; 3]; // needs no zeroing: the first add copies
//! let mut acc = Accumulator::default();
//! acc.add(&mut [&mut buf[..]], &[&[1.0, 2.0, 3.0][..]])?;
//! acc.add(&mut [&mut buf[..]], &[&[3.0, 2.0, 1.0][..]])?;
//! assert_eq!(acc.finish(&mut [&mut buf[..]], Reduction::Mean), 2);
//! assert_eq!(buf, [2.0, 2.0, 2.0]);
//! assert_eq!(acc.count, 0); // ready for the next round
//! # Ok::<(), gradstep::Error>(())
//! ```
//!
//! ```text
//! add:     a ← g          (first micro-batch: a copy, whatever a held)
//!          a ← a + g      (later ones, in T)
//! finish:  a ← a / T(k)   (Reduction::Mean)
//!          a ← a          (Reduction::Sum)
//! ```
//!
//! Mean is Keras's: the sum first, divided once at the end (correctly rounded division,
//! not a multiplication by 1/k). optax `MultiSteps` keeps a running mean
//! `a ← a + (g − a)/(n + 1)` instead, which rounds differently; torch users usually
//! divide the loss by k before each backward pass, which equals `Sum` of pre-divided
//! gradients.

use crate::driver::{Kernel, run};
use crate::error::{Buffer, Error};
use crate::lanes::{Divisor, Lanes};
use crate::real::Real;
use crate::reduce::{self, Map};

/// How [`Accumulator::finish`] turns the sum of k micro-batch gradients into one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// The sum divided by k.
    #[default]
    Mean,
    /// The sum.
    Sum,
}

/// Counts the micro-batches accumulated into caller-owned buffers since the last
/// [`Accumulator::finish`]. Plain data; `Default` is the empty accumulator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Accumulator {
    /// Micro-batches added since the last `finish` (0: the buffers hold nothing yet).
    pub count: u64,
}

impl Accumulator {
    /// Adds one micro-batch: `acc[i] ← grads[i]` if this is the first since the last
    /// finish (so the buffers need no zeroing), else `acc[i] ← acc[i] + grads[i]`.
    ///
    /// Errors, with nothing written: [`Error::LengthMismatch`] with
    /// [`Buffer::Grads`] when the number of gradient slices differs from the number of
    /// buffers (`expected`/`found` are then slice counts) or a gradient slice's length
    /// differs from its buffer's; [`Error::StepOverflow`] if `count` would pass
    /// `u64::MAX`.
    pub fn add<T: Real>(&mut self, acc: &mut [&mut [T]], grads: &[&[T]]) -> Result<(), Error> {
        if grads.len() != acc.len() {
            return Err(Error::LengthMismatch {
                buffer: Buffer::Grads,
                expected: acc.len(),
                found: grads.len(),
            });
        }
        for (a, g) in acc.iter().zip(grads) {
            if g.len() != a.len() {
                return Err(Error::LengthMismatch {
                    buffer: Buffer::Grads,
                    expected: a.len(),
                    found: g.len(),
                });
            }
        }
        let count = self.count.checked_add(1).ok_or(Error::StepOverflow)?;
        for (a, g) in acc.iter_mut().zip(grads) {
            if self.count == 0 {
                a.copy_from_slice(g);
            } else {
                run::<T, 0, _>(&AddInto, a, g, []);
            }
        }
        self.count = count;
        Ok(())
    }

    /// Finishes a round: applies `reduction` to the buffers, resets `count` to 0 and
    /// returns the number k of micro-batches that were accumulated. With k = 0 the
    /// buffers hold no gradient yet, so they are set to 0 (the empty sum, and the mean
    /// taken as 0).
    pub fn finish<T: Real>(&mut self, acc: &mut [&mut [T]], reduction: Reduction) -> u64 {
        let k = self.count;
        if k == 0 {
            for a in acc.iter_mut() {
                a.fill(T::ZERO);
            }
        } else if reduction == Reduction::Mean && k > 1 {
            let div = DivideBy(Divisor::new(T::from_f64(k as f64)));
            for a in acc.iter_mut() {
                reduce::map(&div, a);
            }
        }
        self.count = 0;
        k
    }
}

#[derive(Clone, Copy)]
struct AddInto;
impl<T: Real> Kernel<T, 0> for AddInto {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, a: &mut V, g: V, _: &mut [V; 0]) {
        *a = *a + g;
    }
}

struct DivideBy<T>(Divisor<T>);
impl<T: Real> Map<T> for DivideBy<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, x: V) -> V {
        x.div_by(self.0)
    }
}
