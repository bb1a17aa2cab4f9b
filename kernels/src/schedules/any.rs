//! One type for every built-in schedule, so that schedules of different kinds can be
//! stored together (in [`SequentialLr`](super::SequentialLr),
//! [`ChainedScheduler`](super::ChainedScheduler), or a caller's own table).

use super::{
    Closed, ConstantLr, CosineAnnealingLr, CosineAnnealingWarmRestarts, CyclicLr, ExponentialLr,
    Group, LambdaLr, LinearLr, MultiStepLr, MultiplicativeLr, Noam, OneCycleLr, PiecewiseConstant,
    PolynomialLr, Scheduler, StepLr, WarmupDecay,
};
use crate::error::Error;

/// Any built-in [`Scheduler`]. User functions are plain `fn` pointers here (closures
/// that capture nothing coerce to them); [`LambdaLr`] itself takes any closure.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum AnyScheduler {
    /// [`LambdaLr`].
    Lambda(LambdaLr<fn(u64) -> f64>),
    /// [`MultiplicativeLr`].
    Multiplicative(MultiplicativeLr<fn(u64) -> f64>),
    /// [`StepLr`].
    Step(StepLr),
    /// [`MultiStepLr`].
    MultiStep(MultiStepLr),
    /// [`ConstantLr`].
    Constant(ConstantLr),
    /// [`LinearLr`].
    Linear(LinearLr),
    /// [`ExponentialLr`].
    Exponential(ExponentialLr),
    /// [`PolynomialLr`].
    Polynomial(PolynomialLr),
    /// [`CosineAnnealingLr`].
    CosineAnnealing(CosineAnnealingLr),
    /// [`CosineAnnealingWarmRestarts`].
    CosineAnnealingWarmRestarts(CosineAnnealingWarmRestarts),
    /// [`CyclicLr`].
    Cyclic(CyclicLr),
    /// [`OneCycleLr`].
    OneCycle(OneCycleLr),
    /// [`WarmupDecay`], driven by its closed form.
    WarmupDecay(Closed<WarmupDecay>),
    /// [`Noam`], driven by its closed form.
    Noam(Closed<Noam>),
    /// [`PiecewiseConstant`], driven by its closed form.
    PiecewiseConstant(Closed<PiecewiseConstant>),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyScheduler::Lambda($s) => $e,
            AnyScheduler::Multiplicative($s) => $e,
            AnyScheduler::Step($s) => $e,
            AnyScheduler::MultiStep($s) => $e,
            AnyScheduler::Constant($s) => $e,
            AnyScheduler::Linear($s) => $e,
            AnyScheduler::Exponential($s) => $e,
            AnyScheduler::Polynomial($s) => $e,
            AnyScheduler::CosineAnnealing($s) => $e,
            AnyScheduler::CosineAnnealingWarmRestarts($s) => $e,
            AnyScheduler::Cyclic($s) => $e,
            AnyScheduler::OneCycle($s) => $e,
            AnyScheduler::WarmupDecay($s) => $e,
            AnyScheduler::Noam($s) => $e,
            AnyScheduler::PiecewiseConstant($s) => $e,
        }
    };
}

impl Scheduler for AnyScheduler {
    fn start(&mut self, group: &mut Group) -> Result<(), Error> {
        delegate!(self, s => s.start(group))
    }
    fn step(&mut self, group: &mut Group) -> Result<(), Error> {
        delegate!(self, s => s.step(group))
    }
    fn last_epoch(&self) -> i64 {
        delegate!(self, s => s.last_epoch())
    }
    fn attach(&mut self, group: &mut Group) -> Result<(), Error> {
        delegate!(self, s => s.attach(group))
    }
    fn initial_step(&mut self, group: &mut Group) -> Result<(), Error> {
        delegate!(self, s => s.initial_step(group))
    }
    fn restart(&mut self, group: &mut Group) -> Result<(), Error> {
        delegate!(self, s => s.restart(group))
    }
    fn undo(&mut self) {
        delegate!(self, s => s.undo())
    }
}

macro_rules! from {
    ($($variant:ident($t:ty) $(via $wrap:path)?;)*) => {$(
        impl From<$t> for AnyScheduler {
            fn from(s: $t) -> Self {
                AnyScheduler::$variant($($wrap)?(s))
            }
        }
    )*};
}

from! {
    Lambda(LambdaLr<fn(u64) -> f64>);
    Multiplicative(MultiplicativeLr<fn(u64) -> f64>);
    Step(StepLr);
    MultiStep(MultiStepLr);
    Constant(ConstantLr);
    Linear(LinearLr);
    Exponential(ExponentialLr);
    Polynomial(PolynomialLr);
    CosineAnnealing(CosineAnnealingLr);
    CosineAnnealingWarmRestarts(CosineAnnealingWarmRestarts);
    Cyclic(CyclicLr);
    OneCycle(OneCycleLr);
    WarmupDecay(WarmupDecay) via Closed::new;
    Noam(Noam) via Closed::new;
    PiecewiseConstant(PiecewiseConstant) via Closed::new;
}
