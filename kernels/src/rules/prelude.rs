//! What most rules do to the gradient (and the params) before their own update:
//! `maximize`, then L2 weight decay on the gradient or decoupled decay of the params.

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
        let on = weight_decay != 0.0;
        Prelude {
            maximize,
            l2: on && !decoupled,
            decoupled: on && decoupled,
            weight_decay: T::from_f64(weight_decay),
            decay: T::from_f64(1.0 - lr * weight_decay),
        }
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
