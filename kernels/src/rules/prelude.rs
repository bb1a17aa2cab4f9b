//! What most rules do to the gradient (and the params) before their own update:
//! `maximize`, then L2 weight decay on the gradient or decoupled decay of the params.

use super::nonzero;
use crate::lanes::Lanes;
use crate::real::Real;

/// Per-step form of `maximize` and `weight_decay`, in torch's order:
/// `g ← −g` (maximize); then either `g ← g + λθ` (L2) or `θ ← θ·(1 − γλ)` (decoupled).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Prelude<T> {
    maximize: bool,
    l2: bool,
    decoupled: bool,
    weight_decay: T,
    decay: T,
}

impl<T: Real> Prelude<T> {
    /// `decoupled` selects AdamW-style decay with factor `1 − lr·weight_decay`.
    /// Weight decay 0 disables both forms, as in torch (which skips the operation).
    pub(crate) fn new(maximize: bool, weight_decay: f64, decoupled: bool, lr: f64) -> Self {
        // Without decay 1 − lr·0 is 1 for any finite lr, so it is not computed: on a core
        // without a double-precision unit each product and difference is a library call.
        let on = nonzero(weight_decay);
        Prelude {
            maximize,
            l2: on && !decoupled,
            decoupled: on && decoupled,
            weight_decay: T::from_f64(weight_decay),
            decay: if on {
                T::from_f64(1.0 - lr * weight_decay)
            } else {
                T::ONE
            },
        }
    }

    /// The prelude does nothing (no `maximize`, no weight decay).
    pub(crate) fn is_identity(&self) -> bool {
        !(self.maximize || self.l2 || self.decoupled)
    }

    /// The prelude only decays the params (AdamW's decoupled weight decay).
    pub(crate) fn is_decoupled_only(&self) -> bool {
        self.decoupled && !(self.maximize || self.l2)
    }

    /// With `VARIANT` 0 the identity, with 1 the decoupled decay only: [`Prelude::apply`]
    /// when [`Prelude::is_identity`] or [`Prelude::is_decoupled_only`] holds.
    #[inline(always)]
    pub(crate) fn apply_plain<V: Lanes<Scalar = T>, const VARIANT: u8>(
        &self,
        p: &mut V,
        g: V,
    ) -> V {
        if VARIANT == 1 {
            *p = *p * V::splat(self.decay);
        }
        g
    }

    /// Applies the prelude: may scale `p`, returns the effective gradient.
    #[inline(always)]
    pub(crate) fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V) -> V {
        let mut g = if self.maximize { -g } else { g };
        if self.l2 {
            g = g + V::splat(self.weight_decay) * *p;
        }
        if self.decoupled {
            *p = *p * V::splat(self.decay);
        }
        g
    }
}
