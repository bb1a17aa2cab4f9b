//! torch's `optimizer.state_dict()`: the param groups' hyperparameters and the
//! per-tensor state, as a view that borrows the optimizer's buffers, and
//! [`Optimizer::load_state_dict`], which checks everything before copying anything.

use gradstep::checkpoint::Element;
use gradstep::rules::{AnyRule, AnyScalars};
use gradstep::schedules::Group;

use crate::error::{Buffer, Error};
use crate::schedule::{Schedule, ScheduleState};
use crate::{GroupId, Optimizer, TensorId};

/// torch's `optimizer.state_dict()`: `param_groups` and `state`. Returned by
/// [`Optimizer::state_dict`] (borrowing the optimizer's state) and taken by
/// [`Optimizer::load_state_dict`] (which copies from whatever it borrows).
#[derive(Clone, Debug, PartialEq)]
pub struct StateDict<'a, T> {
    /// One entry per param group, in [`GroupId`] order.
    pub param_groups: Vec<GroupState>,
    /// One entry per tensor, in [`TensorId`] order (torch's `state[p]`).
    pub state: Vec<TensorState<'a, T>>,
}

/// One of torch's `param_groups`: its hyperparameters (with the learning rate and
/// momentum the next step uses), its tensors, and its schedule's position.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupState {
    /// The hyperparameters, as the next step uses them (torch's `group["lr"]`,
    /// `group["momentum"]` or `group["betas"][0]` included).
    pub rule: AnyRule,
    /// torch's `group["initial_lr"]`: set by the first schedule attached.
    pub initial_lr: Option<f64>,
    /// Whether a cycling schedule (CyclicLR, OneCycleLR) has taken over the group's
    /// momentum ([`Group::momentum`] is `Some`).
    pub momentum_cycled: bool,
    /// The attached schedule's position, if one is attached.
    pub schedule: Option<ScheduleState>,
    /// torch's `group["params"]`: the group's tensors, in registration order.
    pub params: Vec<TensorId>,
}

impl GroupState {
    /// torch's `group["lr"]`.
    pub fn lr(&self) -> f64 {
        self.rule.lr()
    }
}

/// One tensor's state (torch's `optimizer.state[p]`).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorState<'a, T> {
    /// The group the tensor belongs to.
    pub group: GroupId,
    /// The scalar state; [`AnyScalars::step`] is torch's `state[p]["step"]`.
    pub scalars: AnyScalars,
    /// The state slices, named as torch names them (`exp_avg`, `exp_avg_sq`, ...), in
    /// [`AnyRule::slot_names`] order.
    pub slots: Vec<Slot<'a, T>>,
}

impl<T> TensorState<'_, T> {
    /// torch's `state[p]["step"]`.
    pub fn step(&self) -> u64 {
        self.scalars.step()
    }
}

/// A named state slice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slot<'a, T> {
    /// torch's key in `state[p]`.
    pub name: &'static str,
    /// The values, as long as the tensor.
    pub values: &'a [T],
}

/// Scalar state the rules' own steps can produce ([`AnyScalars::is_reachable`]).
fn check_scalars(s: &AnyScalars) -> Result<(), Error> {
    if s.is_reachable() {
        Ok(())
    } else {
        Err(Error::Invalid {
            field: "scalar state",
        })
    }
}

/// What a group becomes, checked.
pub(crate) struct NextGroup {
    pub(crate) rule: AnyRule,
    pub(crate) initial_lr: Option<f64>,
    pub(crate) momentum_cycled: bool,
    pub(crate) schedule: Option<Schedule>,
}

impl<T: Element> Optimizer<T> {
    /// torch's `optimizer.state_dict()`, borrowing the state.
    pub fn state_dict(&self) -> StateDict<'_, T> {
        let param_groups = self
            .groups
            .iter()
            .enumerate()
            .map(|(g, group)| GroupState {
                rule: group.rule,
                initial_lr: group.initial_lr,
                momentum_cycled: group.momentum_cycled,
                schedule: group.schedule.as_ref().map(Schedule::state),
                params: self
                    .tensors
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.group == g)
                    .map(|(i, _)| TensorId(i))
                    .collect(),
            })
            .collect();
        let state = self
            .tensors
            .iter()
            .map(|t| {
                let rule = &self.groups[t.group].rule;
                TensorState {
                    group: GroupId(t.group),
                    scalars: t.scalars,
                    slots: crate::slot_names(rule, self.lookahead)
                        .zip(t.slots(crate::slots_of(rule, self.lookahead)))
                        .map(|(name, values)| Slot { name, values })
                        .collect(),
                }
            })
            .collect();
        StateDict {
            param_groups,
            state,
        }
    }

    /// torch's `optimizer.load_state_dict(d)`: replaces every group's hyperparameters,
    /// `initial_lr` and schedule position, and every tensor's scalar and slice state,
    /// with `d`'s.
    ///
    /// `d` must have this optimizer's shape: as many groups, each with the same tensors
    /// (ids and order), the same rule kind, tensors of the registered lengths with the
    /// rule's slots by name, a schedule position exactly where a schedule is attached
    /// (of the same kind: attach the schedules before loading, as in torch). Its values
    /// must be ones the constructors accept (the rule's `validate`, a finite
    /// non-negative `initial_lr`, finite scalar state, a schedule position its own steps
    /// could reach). Everything is checked before anything is copied: on `Err` the
    /// optimizer is unchanged. A [`StateDict`] borrows the optimizer it came from, so
    /// to load an edited one into the same optimizer take it from a clone
    /// (`let src = opt.clone(); let mut d = src.state_dict(); …; opt.load_state_dict(&d)`).
    pub fn load_state_dict(&mut self, d: &StateDict<'_, T>) -> Result<(), Error> {
        let next = self.check_state_dict(d)?;
        for (group, next) in self.groups.iter_mut().zip(next) {
            group.rule = next.rule;
            group.initial_lr = next.initial_lr;
            group.momentum_cycled = next.momentum_cycled;
            group.schedule = next.schedule;
        }
        for (t, s) in self.tensors.iter_mut().zip(&d.state) {
            t.scalars = s.scalars;
            for (dst, src) in t.slots_mut().zip(&s.slots) {
                dst.copy_from_slice(src.values);
            }
        }
        Ok(())
    }

    /// Every check of [`Optimizer::load_state_dict`]; returns the groups as they will be.
    pub(crate) fn check_state_dict(&self, d: &StateDict<'_, T>) -> Result<Vec<NextGroup>, Error> {
        if d.param_groups.len() != self.groups.len() {
            return Err(Error::Mismatch {
                what: "number of param groups",
            });
        }
        if d.state.len() != self.tensors.len() {
            return Err(Error::Mismatch {
                what: "number of tensors",
            });
        }
        let mut next = Vec::new();
        next.try_reserve_exact(self.groups.len())
            .map_err(|_| Error::OutOfMemory {
                requested: self.groups.len(),
            })?;
        for (g, (group, saved)) in self.groups.iter().zip(&d.param_groups).enumerate() {
            let rule = saved.rule;
            if rule.id() != self.kind {
                return Err(Error::WrongRule {
                    expected: self.kind,
                    found: rule.id(),
                });
            }
            rule.validate()?;
            self.check_slots(g, &rule)?;
            let mut members = self
                .tensors
                .iter()
                .enumerate()
                .filter(|(_, t)| t.group == g)
                .map(|(i, _)| TensorId(i));
            if !(members.by_ref().eq(saved.params.iter().copied())) {
                return Err(Error::Mismatch {
                    what: "a group's tensors",
                });
            }
            if let Some(lr) = saved.initial_lr
                && !(lr.is_finite() && lr >= 0.0)
            {
                return Err(Error::Invalid {
                    field: "initial_lr",
                });
            }
            if saved.momentum_cycled && rule.momentum().is_none() {
                return Err(Error::Invalid {
                    field: "momentum_cycled",
                });
            }
            let schedule = match (&group.schedule, &saved.schedule) {
                (Some(s), Some(state)) => Some(s.at(state, saved.initial_lr)?),
                (None, None) => None,
                (Some(_), None) => {
                    return Err(Error::Mismatch {
                        what: "a group has a schedule attached, the saved one has none",
                    });
                }
                (None, Some(_)) => {
                    return Err(Error::Mismatch {
                        what: "a saved group has a schedule: attach it before loading",
                    });
                }
            };
            next.push(NextGroup {
                rule,
                initial_lr: saved.initial_lr,
                momentum_cycled: saved.momentum_cycled,
                schedule,
            });
        }
        for (i, (t, saved)) in self.tensors.iter().zip(&d.state).enumerate() {
            let id = TensorId(i);
            if saved.group.0 != t.group {
                return Err(Error::Mismatch {
                    what: "a tensor's group",
                });
            }
            let rule = &next[t.group].rule;
            if !rule.scalars_fit(&saved.scalars) {
                return Err(Error::Mismatch {
                    what: "a tensor's scalar state is of another rule's kind",
                });
            }
            check_scalars(&saved.scalars)?;
            let count = crate::slots_of(rule, self.lookahead);
            if saved.slots.len() != count
                || (saved
                    .slots
                    .iter()
                    .zip(crate::slot_names(rule, self.lookahead)))
                .any(|(s, n)| s.name != n)
            {
                return Err(Error::Mismatch {
                    what: "a tensor's state slots (names or number)",
                });
            }
            // The slot count may differ from the current rule's (amsgrad turned on):
            // the buffer is re-sized on commit only if it is already that size.
            if count != crate::slots_of(&self.groups[t.group].rule, self.lookahead) {
                return Err(Error::Mismatch {
                    what: "a tensor's number of state slots (change amsgrad, centered, momentum with set_rule)",
                });
            }
            for (k, s) in saved.slots.iter().enumerate() {
                if s.values.len() != t.n {
                    return Err(Error::LengthMismatch {
                        tensor: id,
                        buffer: Buffer::State(k),
                        expected: t.n,
                        found: s.values.len(),
                    });
                }
            }
        }
        Ok(next)
    }
}

/// The group's values as schedules see them.
pub(crate) fn group_view(rule: &AnyRule, initial_lr: Option<f64>, cycled: bool) -> Group {
    Group {
        lr: rule.lr(),
        initial_lr,
        momentum: if cycled { rule.momentum() } else { None },
    }
}
