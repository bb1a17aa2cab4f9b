//! The one error type of the owning optimizer.

use core::fmt;

use gradstep::rules::RuleId;

use crate::{GroupId, TensorId};

/// Which of a tensor's buffers a [`Error::LengthMismatch`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Buffer {
    /// The caller's parameters.
    Params,
    /// The caller's gradients.
    Grads,
    /// The state slice at this index ([`gradstep::rules::AnyRule::slot_names`] order).
    State(usize),
}

impl fmt::Display for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Buffer::Params => f.write_str("params"),
            Buffer::Grads => f.write_str("grads"),
            Buffer::State(i) => write!(f, "state slice {i}"),
        }
    }
}

/// Why a call was refused. Every refusal leaves the optimizer (and every buffer the
/// caller passed) exactly as it was.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The kernel's own refusal: a hyperparameter out of range, a step counter at its
    /// end, a schedule's error, a malformed kernel checkpoint inside the container.
    Kernel(gradstep::Error),
    /// A group was given a rule of another kind than the optimizer's (torch has one
    /// optimizer class per optimizer).
    WrongRule {
        /// The optimizer's rule.
        expected: RuleId,
        /// The rule given.
        found: RuleId,
    },
    /// No group with this id.
    NoSuchGroup(GroupId),
    /// No tensor with this id.
    NoSuchTensor(TensorId),
    /// [`Optimizer::step`](crate::Optimizer::step) was given another number of tensors
    /// than are registered.
    TensorCount {
        /// Registered tensors.
        expected: usize,
        /// Tensors given.
        found: usize,
    },
    /// A buffer's length is not the registered tensor's.
    LengthMismatch {
        /// The tensor.
        tensor: TensorId,
        /// Which buffer.
        buffer: Buffer,
        /// The tensor's registered length.
        expected: usize,
        /// The buffer's length.
        found: usize,
    },
    /// Allocating a tensor's state, a checkpoint or a [`PageBuffer`](crate::PageBuffer)
    /// failed or its size overflows, or so did a small allocation of the optimizer's
    /// own bookkeeping (a group, an attached schedule or the copy a schedule step takes,
    /// a load's staging): the call changed nothing.
    OutOfMemory {
        /// Elements (or bytes, for a checkpoint) asked for.
        requested: usize,
    },
    /// The group's rule has no momentum (or β₁) for a schedule or a caller to set.
    NoMomentum {
        /// The group.
        group: GroupId,
    },
    /// New options for a group would change the number of state slices of its
    /// registered tensors, whose state was allocated for the group's rule (SGD's
    /// momentum buffer exists only with momentum ≠ 0; Adam's `max_exp_avg_sq` only with
    /// AMSGrad): set such options before adding the group's tensors.
    StateSlots {
        /// The group.
        group: GroupId,
        /// The slices its tensors have.
        slots: usize,
        /// The slices the new options need.
        needed: usize,
    },
    /// A state dict or checkpoint does not fit this optimizer: its shape (groups,
    /// tensors, lengths, membership, slot names), its rule kind or element type, or the
    /// schedules attached here.
    Mismatch {
        /// What differs.
        what: &'static str,
    },
    /// A state dict or checkpoint holds a value that the constructors refuse or that
    /// the format forbids (a non-finite `initial_lr`, scalar state or schedule
    /// position, a nonzero reserved byte, ...).
    Invalid {
        /// Which field.
        field: &'static str,
    },
    /// The bytes are not a whole-optimizer checkpoint this build reads (magic, version,
    /// length or checksum).
    Corrupt {
        /// What was wrong.
        what: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Kernel(e) => fmt::Display::fmt(&e, f),
            Error::WrongRule { expected, found } => write!(
                f,
                "the optimizer's rule is {expected}; a group of rule {found} cannot join it"
            ),
            Error::NoSuchGroup(g) => write!(f, "no param group {}", g.0),
            Error::NoSuchTensor(t) => write!(f, "no tensor {}", t.0),
            Error::TensorCount { expected, found } => {
                write!(f, "{found} tensors given, {expected} are registered")
            }
            Error::LengthMismatch {
                tensor,
                buffer,
                expected,
                found,
            } => write!(
                f,
                "tensor {}: {buffer} has length {found}, the tensor {expected}",
                tensor.0
            ),
            Error::OutOfMemory { requested } => {
                write!(f, "cannot allocate {requested} elements")
            }
            Error::NoMomentum { group } => write!(
                f,
                "param group {}: the rule has no momentum (or β₁) to set",
                group.0
            ),
            Error::StateSlots {
                group,
                slots,
                needed,
            } => write!(
                f,
                "param group {}: the new options need {needed} state slices per tensor, its \
                 tensors have {slots} (set them before adding tensors)",
                group.0
            ),
            Error::Mismatch { what } => write!(f, "does not fit this optimizer: {what}"),
            Error::Invalid { field } => write!(f, "invalid {field}"),
            Error::Corrupt { what } => write!(f, "not a readable optimizer checkpoint: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Kernel(e) => Some(e),
            _ => None,
        }
    }
}

impl From<gradstep::Error> for Error {
    fn from(e: gradstep::Error) -> Self {
        Error::Kernel(e)
    }
}
