//! Lookahead (Zhang et al., 2019, "Lookahead Optimizer: k steps forward, 1 step back"):
//! a wrapper over any [`Rule`] that pulls the params back towards a slow copy every `k`
//! steps (`pytorch_optimizer.Lookahead`, `optax.lookahead`).
//!
//! ```
//! use gradstep::{Adam, Lookahead, Rule};
//!
//! let la = Lookahead::new(Adam { lr: 0.1, ..Adam::default() });
//! let mut scalars = Default::default();
//! let mut params = [1.0f32, -2.0];
//! let (mut m, mut v, mut slow) = ([0.0f32; 2], [0.0f32; 2], [0.0f32; 2]);
//! for _ in 0..5 {
//!     la.step(&mut scalars, &mut params, &[0.5, -0.5], &mut [&mut m, &mut v], &mut slow)?;
//! }
//! // After k = 5 steps the params are halfway between the fast ones and where they
//! // started (α = 0.5), and the slow copy holds them.
//! assert!((params[0] - (1.0 - 0.25)).abs() < 1e-5 && slow == params);
//! # Ok::<(), gradstep::Error>(())
//! ```

use crate::driver::{Buffers, Drive, Kernel};
use crate::error::{Buffer, Error, require};
use crate::lanes::{Lanes, Lerp};
use crate::real::Real;
use crate::rules::{Rule, ScalarState, check_buffers, lerp};

/// Any [`Rule`] with Lookahead's slow weights.
///
/// For step `t = 1, 2, …` of the wrapped rule (fast weights θ, slow weights φ):
///
/// ```text
/// φ ← θ                                    before the first step (fresh state)
/// θ ← the wrapped rule's step
/// if t mod k = 0:
///     θ ← θ + (1 − α)(φ − θ)               (torch.lerp: α·θ + (1 − α)·φ)
///     φ ← θ
///     momentum_buffer ← 0                  if reset_momentum (and the rule has one)
/// ```
///
/// | symbol | field | default | valid |
/// |---|---|---|---|
/// | k | `k` | 5 | ≥ 1 |
/// | α | `alpha` | 0.5 | [0, 1] |
/// | | `reset_momentum` | false | |
///
/// State: the wrapped rule's slices, plus the slow weights φ (`slow_params`, as
/// long as the params) passed separately; scalar state: the wrapped rule's, whose step
/// counter also times the syncs (pytorch_optimizer keeps a separate counter that
/// equals it unless k is changed during training).
///
/// Follows `pytorch_optimizer.Lookahead` 4.1.0 (`pullback_momentum='none'`, or
/// `'reset'` with `reset_momentum`, which zeroes the wrapped rule's state slice named
/// `momentum_buffer`, SGD's; other rules have none and are unchanged, as in
/// pytorch_optimizer). Its `'pullback'` (interpolating the momentum with a slow copy
/// of its own) is not provided. `optax.lookahead(fast, sync_period, slow_step_size)`
/// is the same rule in exact arithmetic with `k = sync_period`, `α = slow_step_size`
/// and the fast state kept (`reset_state=False`), but interpolates from the slow side,
/// φ + α(θ − φ), which rounds differently; it is not recorded here.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lookahead<R> {
    /// The wrapped (fast) rule.
    pub rule: R,
    /// Steps between syncs k.
    pub k: u64,
    /// Slow step size α: the fraction of the way from φ to θ that a sync keeps.
    pub alpha: f64,
    /// Zero the wrapped rule's `momentum_buffer` at each sync.
    pub reset_momentum: bool,
}

impl<R: Default> Default for Lookahead<R> {
    fn default() -> Self {
        Lookahead::new(R::default())
    }
}

/// The sync, as one element kernel: `θ ← lerp(θ, φ, 1 − α)`, `φ ← θ`.
#[derive(Clone, Copy, Debug)]
struct Sync<T> {
    lerp: Lerp<T>,
}

impl<T: Real> Kernel<T, 1> for Sync<T> {
    #[inline(always)]
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, _g: V, [slow]: &mut [V; 1]) {
        *p = self.lerp.apply::<V, false>(*p, *slow);
        *slow = *p;
    }
}

impl<R> Lookahead<R> {
    /// Wraps `rule` with pytorch_optimizer's defaults: k = 5, α = 0.5, no reset.
    pub const fn new(rule: R) -> Self {
        Lookahead {
            rule,
            k: 5,
            alpha: 0.5,
            reset_momentum: false,
        }
    }
}

impl<R: Rule> Lookahead<R> {
    /// Checks k, α and the wrapped rule's hyperparameters.
    pub fn validate(&self) -> Result<(), Error> {
        require(self.k >= 1, "k", self.k as f64, "must be >= 1")?;
        require(
            (0.0..=1.0).contains(&self.alpha),
            "alpha",
            self.alpha,
            "must be in [0, 1]",
        )?;
        self.rule.validate()
    }

    /// The wrapped rule's state slices (the slow weights are passed on their own).
    pub fn slot_names(&self) -> &'static [&'static str] {
        self.rule.slot_names()
    }

    /// Every check before anything is written; `Some(t)` is the step about to be taken.
    fn begin<T>(
        &self,
        scalars: &R::Scalars,
        params: &[T],
        grads: &[T],
        state: &[&mut [T]],
        slow: &[T],
    ) -> Result<u64, Error> {
        self.validate()?;
        let t = scalars.step().checked_add(1).ok_or(Error::StepOverflow)?;
        check_buffers(params, grads, state, self.rule.state_slots())?;
        if slow.len() != params.len() {
            return Err(Error::LengthMismatch {
                buffer: Buffer::State(state.len()),
                expected: params.len(),
                found: slow.len(),
            });
        }
        Ok(t)
    }

    /// The wrapped rule's `momentum_buffer` slice, if it has one.
    fn momentum_slot(&self) -> Option<usize> {
        self.rule
            .slot_names()
            .iter()
            .position(|n| *n == "momentum_buffer")
    }

    /// One step: the wrapped rule's [`Rule::step`], then the sync every k steps. `slow`
    /// holds φ, as long as `params`; on fresh state (step 0) it is filled from the
    /// params first. On `Err` nothing was written (every check comes first).
    pub fn step<T: Real>(
        &self,
        scalars: &mut R::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
        slow: &mut [T],
    ) -> Result<(), Error> {
        let t = self.begin(scalars, params, grads, state, slow)?;
        if t == 1 {
            slow.copy_from_slice(params);
        }
        self.rule.step(scalars, params, grads, state)?;
        if t % self.k == 0 {
            let sync = Sync {
                lerp: Lerp::new(1.0 - self.alpha),
            };
            Buffers::new(params, grads, &mut [&mut *slow], false).run::<1, _>(&sync, None)?;
            if let (true, Some(k)) = (self.reset_momentum, self.momentum_slot()) {
                state[k].fill(T::ZERO);
            }
        }
        Ok(())
    }

    /// [`Lookahead::step`] with the wrapped rule's [`Rule::step_reference`] and the sync
    /// written as a plain loop.
    pub fn step_reference<T: Real>(
        &self,
        scalars: &mut R::Scalars,
        params: &mut [T],
        grads: &[T],
        state: &mut [&mut [T]],
        slow: &mut [T],
    ) -> Result<(), Error> {
        let t = self.begin(scalars, params, grads, state, slow)?;
        if t == 1 {
            for (s, p) in slow.iter_mut().zip(params.iter()) {
                *s = *p;
            }
        }
        self.rule.step_reference(scalars, params, grads, state)?;
        if t % self.k == 0 {
            for (p, s) in params.iter_mut().zip(slow.iter_mut()) {
                *p = lerp(*p, *s, 1.0 - self.alpha);
                *s = *p;
            }
            if self.reset_momentum {
                for (name, slot) in self.rule.slot_names().iter().zip(state.iter_mut()) {
                    if *name == "momentum_buffer" {
                        for x in slot.iter_mut() {
                            *x = T::ZERO;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
