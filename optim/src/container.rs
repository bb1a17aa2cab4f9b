//! The whole-optimizer checkpoint: a container of kernel checkpoints (layout in the
//! crate docs).

use gradstep::checkpoint::{self, Element, ElementType};
use gradstep::lookahead::SyncMomentum;
use gradstep::rules::{AnyRule, AnyScalars};
use gradstep::schedules::Progress;

use crate::error::{Buffer, Error};
use crate::schedule::{
    CHAINED_KIND, MAX_MEMBERS, MemberState, PLATEAU_KIND, SEQUENTIAL_KIND, ScheduleState,
};
use crate::state::{GroupState, Slot, StateDict, TensorState};
use crate::{GroupId, Optimizer, TensorId, zeros};

const MAGIC: [u8; 4] = *b"GSOP";
/// Version 1 is the C handle's older layout.
const VERSION: u16 = 2;
const HEADER_LEN: usize = 24;
const GROUP_FIXED: usize = 72;
const TENSOR_FIXED: usize = 16;
const CHECKSUM_LEN: usize = 4;
const FLAG_PARAMS: u8 = 1;
const FLAG_LOOKAHEAD: u8 = 2;
const LOOKAHEAD_LEN: usize = 24;

const G_INITIAL_LR: u64 = 1;
const G_MOMENTUM: u64 = 1 << 1;
const G_SCHEDULE: u64 = 1 << 2;
const G_PLATEAU: u64 = 1 << 3;
const G_RESTARTS: u64 = 1 << 4;
const G_COMPOSITE: u64 = 1 << 5;
const G_ALL: u64 = (1 << 6) - 1;
/// A composite's member record: kind, flags, last_epoch, step_count, base_lr, T_i, T_cur.
const MEMBER_LEN: usize = 56;

static CRC32: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISO_HDLC);

const fn padded(len: usize) -> Option<usize> {
    match len.checked_add(7) {
        Some(x) => Some(x & !7),
        None => None,
    }
}

/// A [`SyncMomentum`]'s number in the container: its place in [`SyncMomentum::ALL`].
fn momentum_index(m: SyncMomentum) -> u64 {
    SyncMomentum::ALL.iter().position(|&x| x == m).unwrap_or(0) as u64
}

fn too_large() -> Error {
    Error::OutOfMemory {
        requested: usize::MAX,
    }
}

/// The eight schedule words of a group record (offsets 16..64).
fn schedule_words(s: Option<&ScheduleState>) -> (u64, [u64; 6]) {
    match s {
        None => (0, [0; 6]),
        Some(ScheduleState::Epochs {
            kind,
            progress,
            restarts,
        }) => {
            let (t_i, t_cur) = restarts.map_or((0, 0), |(a, b)| (a.to_bits(), b.to_bits()));
            let flags = G_SCHEDULE | if restarts.is_some() { G_RESTARTS } else { 0 };
            (
                flags,
                [
                    u64::from(*kind),
                    progress.last_epoch as u64,
                    progress.step_count,
                    progress.base_lr.to_bits(),
                    t_i,
                    t_cur,
                ],
            )
        }
        Some(ScheduleState::Composite {
            kind, last_epoch, ..
        }) => (
            G_SCHEDULE | G_COMPOSITE,
            [u64::from(*kind), *last_epoch as u64, 0, 0, 0, 0],
        ),
        Some(ScheduleState::Plateau {
            best,
            num_bad_epochs,
            cooldown_counter,
            last_epoch,
        }) => (
            G_SCHEDULE | G_PLATEAU,
            [
                u64::from(PLATEAU_KIND),
                *last_epoch,
                *num_bad_epochs,
                best.to_bits(),
                *cooldown_counter,
                0,
            ],
        ),
    }
}

/// A composite's members, if `s` is one.
fn members(s: Option<&ScheduleState>) -> &[Option<MemberState>] {
    match s {
        Some(ScheduleState::Composite { members, .. }) => members,
        _ => &[],
    }
}

/// The length of a group record's member block: a count, then one record per member
/// (none for a schedule that is not a composite).
fn members_len(s: Option<&ScheduleState>) -> usize {
    match s {
        Some(ScheduleState::Composite { members, .. }) => {
            8 + MEMBER_LEN * members.iter().flatten().count()
        }
        _ => 0,
    }
}

/// A member record's seven words.
fn member_words(m: &MemberState) -> [u64; 7] {
    let (t_i, t_cur) = m
        .restarts
        .map_or((0, 0), |(a, b)| (a.to_bits(), b.to_bits()));
    [
        u64::from(m.kind),
        u64::from(m.restarts.is_some()),
        m.progress.last_epoch as u64,
        m.progress.step_count,
        m.progress.base_lr.to_bits(),
        t_i,
        t_cur,
    ]
}

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn space(&mut self, len: usize) -> Result<&mut [u8], Error> {
        let end = self.at.checked_add(len).ok_or_else(too_large)?;
        let (start, found) = (self.at, self.buf.len());
        self.at = end;
        self.buf.get_mut(start..end).ok_or(Error::Kernel(
            gradstep::CheckpointError::BufferTooSmall { needed: end, found }.into(),
        ))
    }
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.space(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }
    fn u64(&mut self, v: u64) -> Result<(), Error> {
        self.put(&v.to_le_bytes())
    }
    /// Zeros up to the next multiple of 8.
    fn pad(&mut self) -> Result<(), Error> {
        let to = padded(self.at).ok_or_else(too_large)?;
        self.space(to - self.at)?.fill(0);
        Ok(())
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

fn corrupt(what: &'static str) -> Error {
    Error::Corrupt { what }
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], Error> {
        let end = self
            .at
            .checked_add(len)
            .ok_or(corrupt("a record runs past the end"))?;
        let out = self
            .buf
            .get(self.at..end)
            .ok_or(corrupt("a record runs past the end"))?;
        self.at = end;
        Ok(out)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let b = self.take(N)?;
        b.try_into()
            .map_err(|_| corrupt("a record runs past the end"))
    }
    fn u32(&mut self) -> Result<u32, Error> {
        self.array::<4>().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, Error> {
        self.array::<8>().map(u64::from_le_bytes)
    }
    /// A `u64` length, then that many bytes.
    fn block(&mut self) -> Result<&'a [u8], Error> {
        let len =
            usize::try_from(self.u64()?).map_err(|_| corrupt("a record runs past the end"))?;
        self.take(len)
    }
    /// The zero padding up to the next multiple of 8.
    fn pad(&mut self) -> Result<(), Error> {
        let to = padded(self.at).ok_or(corrupt("a record runs past the end"))?;
        if self.take(to - self.at)?.iter().any(|&b| b != 0) {
            return Err(Error::Invalid { field: "padding" });
        }
        Ok(())
    }
}

/// A tensor's decoded contents, held until everything has been checked.
struct Staged<T> {
    group: usize,
    scalars: AnyScalars,
    state: Vec<T>,
    params: Vec<T>,
}

impl<T: Element> Optimizer<T> {
    /// A tensor's state slices after its rule's: Lookahead's (0 without it).
    fn own_slots(&self, rule: &AnyRule) -> usize {
        crate::slots_of(rule, self.lookahead) - rule.state_slots()
    }

    /// The length of [`Optimizer::checkpoint`] (or, `with_params`,
    /// [`Optimizer::checkpoint_with_params`]) for the optimizer as it is;
    /// [`Error::OutOfMemory`] for a length no allocation holds (over `isize::MAX`).
    pub fn checkpoint_len(&self, with_params: bool) -> Result<usize, Error> {
        let mut len = HEADER_LEN + CHECKSUM_LEN;
        if self.lookahead.is_some() {
            len += LOOKAHEAD_LEN;
        }
        for g in &self.groups {
            let r = g.rule.encoded_len(T::TYPE, 0, false)?;
            let state = g.schedule.as_ref().map(|s| s.state());
            let record = GROUP_FIXED
                .checked_add(r)
                .and_then(padded)
                .and_then(|l| l.checked_add(members_len(state.as_ref())))
                .ok_or_else(too_large)?;
            len = len.checked_add(record).ok_or_else(too_large)?;
        }
        for t in &self.tensors {
            let rule = &self.groups[t.group].rule;
            let r = rule.encoded_len(T::TYPE, t.n, with_params)?;
            let own = self
                .own_slots(rule)
                .checked_mul(t.n)
                .and_then(|e| e.checked_mul(core::mem::size_of::<T>()))
                .and_then(padded)
                .ok_or_else(too_large)?;
            let record = TENSOR_FIXED
                .checked_add(r)
                .and_then(padded)
                .and_then(|l| l.checked_add(own))
                .ok_or_else(too_large)?;
            len = len.checked_add(record).ok_or_else(too_large)?;
        }
        // No allocation holds more than isize::MAX bytes (a stateless tensor can be
        // registered at any length: its params are the caller's).
        if len > isize::MAX as usize {
            return Err(too_large());
        }
        Ok(len)
    }

    /// The whole optimizer's state as bytes (the container in the crate docs): every
    /// group's hyperparameters, `initial_lr` and schedule position, every tensor's
    /// scalar state and state slices. Not the params: the caller owns those (see
    /// [`Optimizer::checkpoint_with_params`]).
    pub fn checkpoint(&self) -> Result<Vec<u8>, Error> {
        self.to_vec(None)
    }

    /// [`Optimizer::checkpoint`] with each tensor's params (`params[i]` for tensor `i`)
    /// in its record, for [`Optimizer::load_checkpoint_with_params`].
    pub fn checkpoint_with_params(&self, params: &[&[T]]) -> Result<Vec<u8>, Error> {
        self.to_vec(Some(params))
    }

    fn to_vec(&self, params: Option<&[&[T]]>) -> Result<Vec<u8>, Error> {
        let len = self.checkpoint_len(params.is_some())?;
        let mut out = Vec::new();
        out.try_reserve_exact(len)
            .map_err(|_| Error::OutOfMemory { requested: len })?;
        out.resize(len, 0);
        let written = self.write_checkpoint(params, &mut out)?;
        out.truncate(written);
        Ok(out)
    }

    /// Writes the checkpoint (with the params if given) to the front of `out`, which
    /// must hold [`Optimizer::checkpoint_len`] bytes; returns its length.
    pub fn write_checkpoint(
        &self,
        params: Option<&[&[T]]>,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        if let Some(p) = params {
            self.check_params(p.iter().map(|p| p.len()), p.len())?;
        }
        let len = self.checkpoint_len(params.is_some())?;
        let found = out.len();
        let out = out.get_mut(..len).ok_or(Error::Kernel(
            gradstep::CheckpointError::BufferTooSmall { needed: len, found }.into(),
        ))?;
        let count = |n: usize| u32::try_from(n).map_err(|_| too_large());
        let mut w = Writer { buf: out, at: 0 };
        w.put(&MAGIC)?;
        w.put(&VERSION.to_le_bytes())?;
        let mut flags = if params.is_some() { FLAG_PARAMS } else { 0 };
        if self.lookahead.is_some() {
            flags |= FLAG_LOOKAHEAD;
        }
        w.put(&[T::TYPE as u8, flags])?;
        w.put(&count(self.groups.len())?.to_le_bytes())?;
        w.put(&count(self.tensors.len())?.to_le_bytes())?;
        w.u64(len as u64)?;
        if let Some(la) = self.lookahead {
            w.u64(la.k)?;
            w.u64(la.alpha.to_bits())?;
            w.u64(momentum_index(la.momentum))?;
        }
        for g in &self.groups {
            let state = g.schedule.as_ref().map(|s| s.state());
            let (mut flags, words) = schedule_words(state.as_ref());
            if g.initial_lr.is_some() {
                flags |= G_INITIAL_LR;
            }
            if g.momentum_cycled {
                flags |= G_MOMENTUM;
            }
            w.u64(flags)?;
            w.u64(g.initial_lr.unwrap_or(0.0).to_bits())?;
            for word in words {
                w.u64(word)?;
            }
            let r = g.rule.encoded_len(T::TYPE, 0, false)?;
            w.u64(r as u64)?;
            // The hyperparameters alone: `n` = 0, every state slice empty.
            let slots = g.rule.state_slots();
            let empty: [&[T]; gradstep::MAX_STATE_SLOTS] = Default::default();
            checkpoint::encode_any(
                &g.rule,
                &g.rule.fresh_scalars(),
                &empty[..slots.min(gradstep::MAX_STATE_SLOTS)],
                None,
                w.space(r)?,
            )?;
            w.pad()?;
            let members = members(state.as_ref());
            if !members.is_empty() {
                w.u64(members.iter().flatten().count() as u64)?;
                for m in members.iter().flatten() {
                    for word in member_words(m) {
                        w.u64(word)?;
                    }
                }
            }
        }
        for (i, t) in self.tensors.iter().enumerate() {
            let rule = &self.groups[t.group].rule;
            let own = self.own_slots(rule);
            w.put(&count(t.group)?.to_le_bytes())?;
            w.put(&count(own)?.to_le_bytes())?;
            let p = params.and_then(|p| p.get(i).copied());
            let r = rule.encoded_len(T::TYPE, t.n, p.is_some())?;
            w.u64(r as u64)?;
            let slots = rule.state_slots();
            let mut slices: [&[T]; gradstep::MAX_STATE_SLOTS] = Default::default();
            for (s, slot) in slices.iter_mut().zip(t.slots(slots)) {
                *s = slot;
            }
            checkpoint::encode_any(
                rule,
                &t.scalars,
                &slices[..slots.min(gradstep::MAX_STATE_SLOTS)],
                p,
                w.space(r)?,
            )?;
            w.pad()?;
            for slot in t.slots(slots + own).skip(slots) {
                let bytes = slot.len().saturating_mul(core::mem::size_of::<T>());
                checkpoint::write_elements(slot, w.space(bytes)?)
                    .map_err(|e| Error::Kernel(e.into()))?;
            }
            w.pad()?;
        }
        let body = w.at;
        let crc = CRC32.checksum(w.buf.get(..body).unwrap_or_default());
        w.put(&crc.to_le_bytes())?;
        Ok(w.at)
    }

    fn check_params(&self, lens: impl Iterator<Item = usize>, count: usize) -> Result<(), Error> {
        if count != self.tensors.len() {
            return Err(Error::TensorCount {
                expected: self.tensors.len(),
                found: count,
            });
        }
        for (i, (t, len)) in self.tensors.iter().zip(lens).enumerate() {
            if len != t.n {
                return Err(Error::LengthMismatch {
                    tensor: TensorId(i),
                    buffer: Buffer::Params,
                    expected: t.n,
                    found: len,
                });
            }
        }
        Ok(())
    }

    /// Restores a checkpoint written by [`Optimizer::checkpoint`] (or
    /// [`Optimizer::checkpoint_with_params`], whose params are then ignored) into an
    /// optimizer of the same shape: the same rule kind and element type, as many
    /// groups, tensors of the same lengths in the same groups and order, and the same
    /// kinds of schedules attached (torch: construct the optimizer and schedulers, then
    /// load their state). Everything listed in the crate docs is checked before
    /// anything changes: on `Err` the optimizer is as it was.
    pub fn load_checkpoint(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.load(bytes, None)
    }

    /// [`Optimizer::load_checkpoint`] that also restores each tensor's params into
    /// `params[i]` (the checkpoint must hold them). On `Err` neither the optimizer nor
    /// any of `params` changed.
    pub fn load_checkpoint_with_params(
        &mut self,
        bytes: &[u8],
        params: &mut [&mut [T]],
    ) -> Result<(), Error> {
        self.check_params(params.iter().map(|p| p.len()), params.len())?;
        self.load(bytes, Some(params))
    }

    fn load(&mut self, bytes: &[u8], params: Option<&mut [&mut [T]]>) -> Result<(), Error> {
        let (has_params, has_lookahead, body) = self.verify(bytes)?;
        if params.is_some() && !has_params {
            return Err(Error::Mismatch {
                what: "the checkpoint holds no params",
            });
        }
        let mut r = Reader {
            buf: body,
            at: HEADER_LEN,
        };
        if has_lookahead != self.lookahead.is_some() {
            return Err(Error::Mismatch {
                what: "Lookahead options: set (or not) as in the saved optimizer before loading",
            });
        }
        if let Some(la) = self.lookahead {
            let saved = [r.u64()?, r.u64()?, r.u64()?];
            if saved != [la.k, la.alpha.to_bits(), momentum_index(la.momentum)] {
                return Err(Error::Mismatch {
                    what: "Lookahead options (k, alpha, momentum) differ from the saved ones",
                });
            }
        }
        let mut groups = Vec::new();
        groups
            .try_reserve_exact(self.groups.len())
            .map_err(|_| Error::OutOfMemory {
                requested: self.groups.len(),
            })?;
        for _ in &self.groups {
            groups.push(self.read_group(&mut r)?);
        }
        let mut staged = Vec::new();
        staged
            .try_reserve_exact(self.tensors.len())
            .map_err(|_| Error::OutOfMemory {
                requested: self.tensors.len(),
            })?;
        for (i, t) in self.tensors.iter().enumerate() {
            let group = r.u32()? as usize;
            let own_saved = r.u32()?;
            let bytes = r.block()?;
            r.pad()?;
            if group != t.group {
                return Err(Error::Mismatch {
                    what: "a tensor's group",
                });
            }
            let header = checkpoint::peek(bytes)?;
            let slots = self.groups[t.group].rule.state_slots();
            let own = self.own_slots(&self.groups[t.group].rule);
            if own_saved as usize != own {
                return Err(Error::Invalid {
                    field: "a tensor's number of Lookahead slices",
                });
            }
            // A kernel checkpoint without arrays records n = 0 (a rule without state
            // slices, saved without params): there is no length to compare then.
            let n = if slots == 0 && !has_params { 0 } else { t.n };
            if header.n != n as u64 || header.slots != slots {
                return Err(Error::Mismatch {
                    what: "a tensor's length or number of state slices",
                });
            }
            if header.has_params != has_params {
                return Err(Error::Invalid {
                    field: "a tensor's params section",
                });
            }
            // Bounded by the registered tensor: at most what the optimizer holds.
            let mut state = zeros::<T>((slots + own) * t.n)?;
            let mut tensor_params = zeros::<T>(if params.is_some() { t.n } else { 0 })?;
            let (rule, scalars) = {
                let mut slices: [&mut [T]; gradstep::MAX_STATE_SLOTS] = Default::default();
                for (s, chunk) in slices.iter_mut().zip(state.chunks_mut(t.n.max(1))) {
                    *s = chunk;
                }
                let p = params.is_some().then_some(&mut tensor_params[..]);
                checkpoint::decode_any(bytes, &mut slices[..slots], p)?
            };
            if own > 0 {
                let len = own * t.n * core::mem::size_of::<T>();
                checkpoint::read_elements(r.take(len)?, &mut state[slots * t.n..])
                    .map_err(|e| Error::Kernel(e.into()))?;
                r.pad()?;
            }
            if rule != groups[t.group].rule {
                return Err(Error::Invalid {
                    field: "a tensor's rule (not its group's)",
                });
            }
            let members = &mut groups[t.group].params;
            members
                .try_reserve(1)
                .map_err(|_| Error::OutOfMemory { requested: 1 })?;
            members.push(TensorId(i));
            staged.push(Staged {
                group,
                scalars,
                state,
                params: tensor_params,
            });
        }
        if r.at != body.len() {
            return Err(corrupt("records do not fill the stated length"));
        }
        let mut state = Vec::new();
        state
            .try_reserve_exact(staged.len())
            .map_err(|_| Error::OutOfMemory {
                requested: staged.len(),
            })?;
        for s in &staged {
            let rule = &self.groups[s.group].rule;
            let count = crate::slots_of(rule, self.lookahead);
            let names = crate::slot_names(rule, self.lookahead);
            let slots = crate::try_collect(names.enumerate().map(|(k, name)| Slot {
                name,
                values: slot_of(&s.state, count, k),
            }))?;
            state.push(TensorState {
                group: GroupId(s.group),
                scalars: s.scalars,
                slots,
            });
        }
        let d = StateDict {
            param_groups: groups,
            state,
        };
        self.load_state_dict(&d)?;
        if let Some(params) = params {
            for (dst, s) in params.iter_mut().zip(&staged) {
                dst.copy_from_slice(&s.params);
            }
        }
        Ok(())
    }

    /// The container's frame: magic, version, length, CRC, element type, flags and
    /// counts. Returns the params flag and the bytes before the checksum.
    fn verify<'b>(&self, bytes: &'b [u8]) -> Result<(bool, bool, &'b [u8]), Error> {
        let prefix = bytes.get(..MAGIC.len()).unwrap_or(bytes);
        if prefix != &MAGIC[..prefix.len()] {
            return Err(corrupt("bad magic"));
        }
        let head: &[u8; HEADER_LEN] = bytes
            .first_chunk()
            .ok_or(corrupt("shorter than the header"))?;
        let version = u16::from_le_bytes([head[4], head[5]]);
        if version != VERSION {
            return Err(corrupt("unsupported version"));
        }
        let len = u64::from_le_bytes(head[16..24].try_into().unwrap_or_default());
        let len = usize::try_from(len).map_err(|_| corrupt("truncated"))?;
        if len < HEADER_LEN + CHECKSUM_LEN {
            return Err(corrupt("stated length too short"));
        }
        let all = bytes.get(..len).ok_or(corrupt("truncated"))?;
        let (body, stored) = all
            .split_last_chunk::<CHECKSUM_LEN>()
            .ok_or(corrupt("truncated"))?;
        if CRC32.checksum(body) != u32::from_le_bytes(*stored) {
            return Err(corrupt("checksum mismatch"));
        }
        let element = ElementType::from_u8(head[6]).ok_or(Error::Invalid {
            field: "element type",
        })?;
        if element != T::TYPE {
            return Err(Error::Mismatch {
                what: "element type",
            });
        }
        let flags = head[7];
        if flags & !(FLAG_PARAMS | FLAG_LOOKAHEAD) != 0 {
            return Err(Error::Invalid { field: "flags" });
        }
        let groups = u32::from_le_bytes(head[8..12].try_into().unwrap_or_default());
        let tensors = u32::from_le_bytes(head[12..16].try_into().unwrap_or_default());
        if groups as usize != self.groups.len() {
            return Err(Error::Mismatch {
                what: "number of param groups",
            });
        }
        if tensors as usize != self.tensors.len() {
            return Err(Error::Mismatch {
                what: "number of tensors",
            });
        }
        Ok((flags & FLAG_PARAMS != 0, flags & FLAG_LOOKAHEAD != 0, body))
    }

    fn read_group(&self, r: &mut Reader<'_>) -> Result<GroupState, Error> {
        let flags = r.u64()?;
        if flags & !G_ALL != 0 {
            return Err(Error::Invalid {
                field: "group flags",
            });
        }
        let initial = f64::from_bits(r.u64()?);
        let mut w = [0u64; 6];
        for word in &mut w {
            *word = r.u64()?;
        }
        let rule_bytes = r.block()?;
        r.pad()?;
        let mut members = [None; MAX_MEMBERS];
        if flags & G_COMPOSITE != 0 {
            let count = usize::try_from(r.u64()?)
                .ok()
                .filter(|c| (2..=MAX_MEMBERS).contains(c))
                .ok_or(Error::Invalid {
                    field: "number of schedule members",
                })?;
            for m in members.iter_mut().take(count) {
                let mut w = [0u64; 7];
                for word in &mut w {
                    *word = r.u64()?;
                }
                let state = MemberState {
                    kind: u16::try_from(w[0])
                        .ok()
                        .filter(|&k| k != 0 && k != PLATEAU_KIND)
                        .ok_or(Error::Invalid {
                            field: "schedule kind",
                        })?,
                    progress: Progress {
                        last_epoch: w[2] as i64,
                        step_count: w[3],
                        base_lr: f64::from_bits(w[4]),
                    },
                    restarts: match w[1] {
                        0 => None,
                        1 => Some((f64::from_bits(w[5]), f64::from_bits(w[6]))),
                        _ => {
                            return Err(Error::Invalid {
                                field: "schedule member flags",
                            });
                        }
                    },
                };
                // Canonical: unused words are zero.
                if member_words(&state) != w {
                    return Err(Error::Invalid {
                        field: "unused schedule fields",
                    });
                }
                *m = Some(state);
            }
        }
        let initial_lr = if flags & G_INITIAL_LR != 0 {
            Some(initial)
        } else if initial.to_bits() != 0 {
            return Err(Error::Invalid {
                field: "initial_lr",
            });
        } else {
            None
        };
        let schedule = match flags & (G_SCHEDULE | G_PLATEAU | G_RESTARTS | G_COMPOSITE) {
            0 => None,
            f if f == G_SCHEDULE | G_COMPOSITE => {
                let kind = u16::try_from(w[0])
                    .ok()
                    .filter(|&k| k == SEQUENTIAL_KIND || k == CHAINED_KIND)
                    .ok_or(Error::Invalid {
                        field: "schedule kind",
                    })?;
                Some(ScheduleState::Composite {
                    kind,
                    last_epoch: w[1] as i64,
                    members,
                })
            }
            f if f == G_SCHEDULE || f == G_SCHEDULE | G_RESTARTS => {
                let kind = u16::try_from(w[0])
                    .ok()
                    .filter(|&k| k != 0 && k != PLATEAU_KIND)
                    .ok_or(Error::Invalid {
                        field: "schedule kind",
                    })?;
                let restarts =
                    (f & G_RESTARTS != 0).then(|| (f64::from_bits(w[4]), f64::from_bits(w[5])));
                Some(ScheduleState::Epochs {
                    kind,
                    progress: Progress {
                        last_epoch: w[1] as i64,
                        step_count: w[2],
                        base_lr: f64::from_bits(w[3]),
                    },
                    restarts,
                })
            }
            f if f == G_SCHEDULE | G_PLATEAU => Some(ScheduleState::Plateau {
                best: f64::from_bits(w[3]),
                num_bad_epochs: w[2],
                cooldown_counter: w[4],
                last_epoch: w[1],
            }),
            _ => {
                return Err(Error::Invalid {
                    field: "group flags",
                });
            }
        };
        // Canonical: the words a group does not use are zero.
        if schedule_words(schedule.as_ref()).1 != w {
            return Err(Error::Invalid {
                field: "unused schedule fields",
            });
        }
        let header = checkpoint::peek(rule_bytes)?;
        if header.n != 0 || header.has_params {
            return Err(Error::Invalid {
                field: "a group's hyperparameter record",
            });
        }
        let mut empty: [&mut [T]; gradstep::MAX_STATE_SLOTS] = Default::default();
        let slots = header.slots.min(gradstep::MAX_STATE_SLOTS);
        let (rule, scalars): (AnyRule, AnyScalars) =
            checkpoint::decode_any(rule_bytes, &mut empty[..slots], None)?;
        if scalars != rule.fresh_scalars() {
            return Err(Error::Invalid {
                field: "a group's hyperparameter record",
            });
        }
        Ok(GroupState {
            rule,
            initial_lr,
            momentum_cycled: flags & G_MOMENTUM != 0,
            schedule,
            params: Vec::new(),
        })
    }
}

/// Slot `k` of `count` in a flat state buffer.
fn slot_of<T>(state: &[T], count: usize, k: usize) -> &[T] {
    let n = state.len().checked_div(count).unwrap_or(0);
    state
        .get(k.saturating_mul(n)..k.saturating_add(1).saturating_mul(n))
        .unwrap_or_default()
}
