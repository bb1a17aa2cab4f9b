//! Checkpoints: an optimizer's complete state in a caller-provided byte buffer.
//!
//! A checkpoint holds the rule and every hyperparameter (bit-exact), the scalar state
//! ([`StepCount`], [`NAdamScalars`], [`AsgdScalars`]), the state slices and, optionally,
//! the parameters themselves (firmware writes those to flash too). Restoring one and
//! continuing gives the same bits as never having stopped. Nothing allocates and no byte
//! string makes the decoder panic: every refusal is an [`Error::Checkpoint`] (or, for
//! hyperparameters out of range, the rule's own [`Error::InvalidHyperparameter`]), and
//! every check happens before anything is written.
//!
//! ```
//! use gradstep::checkpoint::{self, ElementType};
//! use gradstep::{Adam, Rule, StepCount};
//!
//! let adam = Adam { lr: 0.01, ..Adam::default() };
//! let (mut params, grads) = ([1.0f32, -2.0, 3.0], [0.5f32, -0.5, 0.25]);
//! let (mut m, mut v, mut scalars) = ([0.0f32; 3], [0.0f32; 3], StepCount::default());
//! adam.step(&mut scalars, &mut params, &grads, &mut [&mut m, &mut v])?;
//!
//! let mut buf = [0u8; 256];
//! let len = checkpoint::encoded_len(&adam, ElementType::F32, 3, true)?;
//! assert_eq!(checkpoint::encode(&adam, &scalars, &[&m, &v], Some(&params), &mut buf)?, len);
//!
//! // Later, perhaps in another process: size the buffers from the header, then restore.
//! let header = checkpoint::peek(&buf)?;
//! assert_eq!((header.n, header.slots, header.has_params), (3, 2, true));
//! let (mut m2, mut v2, mut params2) = ([0.0f32; 3], [0.0f32; 3], [0.0f32; 3]);
//! let (rule, scalars2) =
//!     checkpoint::decode::<Adam, f32>(&buf[..len], &mut [&mut m2, &mut v2], Some(&mut params2))?;
//! assert_eq!((rule, scalars2, params2, m2, v2), (adam, scalars, params, m, v));
//! # Ok::<(), gradstep::Error>(())
//! ```
//!
//! ## Format, version 1
//! All integers and floats are little-endian; floats are stored as their IEEE-754 bits,
//! so every value (including −0, NaN payloads and subnormals) comes back exactly.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"GSCK"` |
//! | 4 | 2 | format version, `u16` = 1 |
//! | 6 | 2 | rule id, `u16` ([`RuleId`]) |
//! | 8 | 8 | total length `L` in bytes, `u64`, including the checksum |
//! | 16 | 1 | element type ([`ElementType`]): 1 = `f32`, 2 = `f64`; size `e` = 4 or 8 |
//! | 17 | 1 | flags: bit 0 = params section present; bits 1–7 are 0 |
//! | 18 | 1 | number of state slices `k` (as the rule's options need, 0–4) |
//! | 19 | 1 | reserved, 0 |
//! | 20 | 4 | rule section length `R` in bytes, `u32` (fixed per rule, see below) |
//! | 24 | 8 | element count `n`, `u64`: length of the params and of every state slice (0 if there are none) |
//! | 32 | `R` | rule section: hyperparameters, option bits, scalar state |
//! | 32 + `R` | `k·n·e` | state slices, one after the other, in [`Rule::slot_names`] order |
//! | 32 + `R` + `k·n·e` | `n·e` | params, if flag bit 0 |
//! | `L` − 4 | 4 | CRC-32 (ISO-HDLC, the zlib/PNG/Ethernet CRC), `u32`, of bytes `0..L−4` |
//!
//! The header and every field of the rule section are multiples of 8 bytes long, so
//! the arrays start at an 8-byte-aligned offset from the checkpoint's start. Bytes after `L`
//! are ignored: a checkpoint can be read straight out of a larger flash region.
//!
//! The rule section is, in this order: the hyperparameters that are numbers, one `f64`
//! each; one `u64` whose bit `i` is the `i`-th boolean option (the other bits are 0);
//! one `u64` per choice field (a [`Choice`](crate::rules::Choice): the index of its
//! value, in the order of the registry row's `choice` list; rules without choice
//! fields, every rule below up to id 11, have none, so their sections are as they
//! always were and the format stays version 1); the scalar state: the step counter
//! (`u64`), then NAdam's μ-product or ASGD's η and μ (`f64`). Field order, per rule:
//!
//! | id | rule | `f64` hyperparameters | option bits 0, 1, 2 | scalar state | `R` |
//! |---|---|---|---|---|---|
//! | 1 | [`Sgd`] | lr, momentum, dampening, weight_decay | nesterov, maximize | step | 48 |
//! | 2 | [`Adam`] | lr, beta1, beta2, eps, weight_decay | decoupled_weight_decay, amsgrad, maximize | step | 56 |
//! | 3 | [`AdamW`] | lr, beta1, beta2, eps, weight_decay | amsgrad, maximize | step | 56 |
//! | 4 | [`Adamax`] | lr, beta1, beta2, eps, weight_decay | maximize | step | 56 |
//! | 5 | [`NAdam`] | lr, beta1, beta2, eps, weight_decay, momentum_decay | decoupled_weight_decay, maximize | step, mu_product | 72 |
//! | 6 | [`RAdam`] | lr, beta1, beta2, eps, weight_decay | decoupled_weight_decay, maximize | step | 56 |
//! | 7 | [`Adagrad`] | lr, lr_decay, weight_decay, initial_accumulator_value, eps | maximize | step | 56 |
//! | 8 | [`Adadelta`] | lr, rho, eps, weight_decay | maximize | step | 48 |
//! | 9 | [`RmsProp`] | lr, alpha, eps, weight_decay, momentum | centered, maximize | step | 56 |
//! | 10 | [`Rprop`] | lr, etaminus, etaplus, step_size_min, step_size_max | maximize | step | 56 |
//! | 11 | [`Asgd`] | lr, lambd, alpha, t0, weight_decay | maximize | step, eta, mu | 72 |
//! | 12 | [`Proximal`] | lr, beta1, dampening, beta2, gamma, eps, initial_accumulator_value, l1, l2 | maximize; then choices momentum, adapt, l2_kind, l1_kind, representation | step | 128 |
//! | 13 | [`Ftrl`] | lr, lr_power, initial_accumulator_value, l1, l2, l2_shrinkage, beta | single_l2, sqrt_denominator, maximize | step | 72 |
//! | 14 | [`Adan`] | lr, beta1, beta2, beta3, eps, weight_decay | decoupled_weight_decay, maximize | step | 64 |
//! | 15 | [`Lamb`] | lr, beta1, beta2, eps, weight_decay | maximize, decoupled_weight_decay, no_v_correction, clamp_norm, eps_in_ratio (bits 1–4 added later: older LAMB checkpoints hold them as 0 and load unchanged) | step | 56 |
//! | 16 | [`RmsPropBc`] | lr, alpha, eps, weight_decay | maximize | step | 48 |
//! | 17 | [`OnlineRmsProp`] | lr, gamma, eps, weight_decay | maximize | step | 48 |
//! | 18 | [`ScAdagrad`] | lr, xi_1, xi_2, weight_decay | maximize | step | 48 |
//! | 19 | [`ScRmsProp`] | lr, gamma, xi_1, xi_2, weight_decay | maximize | step | 56 |
//!
//! Rule ids are never reused; a new rule gets the next number. Any change to the layout
//! of an existing rule or of the header is a new format version.
//!
//! ## What the decoder checks, in order
//! 1. The magic ([`CheckpointError::BadMagic`]; a buffer too short to hold what is
//!    being read is [`CheckpointError::Truncated`]), the version
//!    ([`CheckpointError::UnsupportedVersion`]), that the buffer holds the stated length.
//! 2. The checksum ([`CheckpointError::ChecksumMismatch`]). CRC-32 detects every error
//!    of up to 32 consecutive bits, so any single corrupted byte is caught here (or in
//!    step 1, if it hits the magic, the version or the length).
//! 3. The header's structure: a known rule and element type, reserved bits and byte 0,
//!    at most 4 slices, the rule's section length, `n` = 0 when there are no arrays,
//!    and `L` agreeing with `k`, `n` and `e` ([`CheckpointError::UnknownRule`],
//!    [`CheckpointError::InvalidField`]). [`peek`] stops here, without step 2.
//! 4. That it is what the caller restores into: the rule ([`CheckpointError::WrongRule`],
//!    not checked by [`decode_any`]) and the element type
//!    ([`CheckpointError::WrongElementType`]).
//! 5. The rule section: no unknown option bits ([`CheckpointError::InvalidField`]),
//!    every choice a known index (`InvalidField { field: "choices" }`), a
//!    scalar state that steps can produce (after step 0, NAdam's μ-product in [0, 1];
//!    ASGD's η finite and ≥ 0, μ in (0, 1]: else `InvalidField { field: "scalar
//!    state" }`; the encoder refuses such state too), the
//!    hyperparameters pass the rule's `validate()` ([`Error::InvalidHyperparameter`]),
//!    and `k` is the number of slices the rule's options need.
//! 6. The destinations: `k` state slices ([`CheckpointError::SlotCount`]) of `n`
//!    elements ([`CheckpointError::LengthMismatch`]), params of `n` elements if given,
//!    and then the checkpoint must have them ([`CheckpointError::ParamsAbsent`]).
//!
//! Only then are the state slices and params written.
//!
//! [`Sgd`]: crate::Sgd
//! [`Adam`]: crate::Adam
//! [`AdamW`]: crate::AdamW
//! [`Adamax`]: crate::Adamax
//! [`NAdam`]: crate::NAdam
//! [`RAdam`]: crate::RAdam
//! [`Adagrad`]: crate::Adagrad
//! [`Adadelta`]: crate::Adadelta
//! [`RmsProp`]: crate::RmsProp
//! [`Rprop`]: crate::Rprop
//! [`Asgd`]: crate::Asgd
//! [`Proximal`]: crate::Proximal
//! [`Ftrl`]: crate::Ftrl
//! [`Adan`]: crate::Adan
//! [`Lamb`]: crate::Lamb
//! [`RmsPropBc`]: crate::RmsPropBc
//! [`OnlineRmsProp`]: crate::OnlineRmsProp
//! [`ScAdagrad`]: crate::ScAdagrad
//! [`ScRmsProp`]: crate::ScRmsProp
//! [`StepCount`]: crate::StepCount
//! [`NAdamScalars`]: crate::NAdamScalars
//! [`AsgdScalars`]: crate::AsgdScalars
//! [`Error::Checkpoint`]: crate::Error::Checkpoint
//! [`Error::InvalidHyperparameter`]: crate::Error::InvalidHyperparameter
//! [`Rule::slot_names`]: crate::Rule::slot_names

use core::fmt;

use crate::error::{Buffer, Error};
use crate::real::Real;
use crate::rules::{MAX_STATE_SLOTS, ScalarKind, ScalarState};
use crate::{AsgdScalars, NAdamScalars, Rule, StepCount};

pub use crate::rules::{AnyRule, AnyScalars, RuleId};

/// The first four bytes of every checkpoint.
pub const MAGIC: [u8; 4] = *b"GSCK";

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// Length of the fixed header, before the rule section.
pub const HEADER_LEN: usize = 32;

/// Length of the trailing checksum.
pub const CHECKSUM_LEN: usize = 4;

const FLAG_PARAMS: u8 = 1;

// Slicing-by-16 (16 KiB of tables) where there is cache to hold it; the 1 KiB table on
// microcontrollers, where flash is scarce and checkpoints are small. Same CRC either way.
#[cfg(gradstep_simd)]
type CrcTable = crc::Table<16>;
#[cfg(not(gradstep_simd))]
type CrcTable = crc::Table<1>;

static CRC32: crc::Crc<u32, CrcTable> = crc::Crc::<u32, CrcTable>::new(&crc::CRC_32_ISO_HDLC);

/// The CRC-32 checkpoints carry (ISO-HDLC: zlib's, PNG's), of `bytes`: for containers
/// that hold checkpoints (the owning optimizer's, firmware records) and for tests that
/// forge checkpoints.
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC32.checksum(bytes)
}

/// Why a checkpoint could not be written or read. Wrapped in [`Error::Checkpoint`].
///
/// [`Error::Checkpoint`]: crate::Error::Checkpoint
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The output buffer is shorter than the checkpoint ([`encoded_len`]).
    BufferTooSmall {
        /// Bytes the checkpoint needs.
        needed: usize,
        /// Bytes the output buffer has.
        found: usize,
    },
    /// The input ends before the checkpoint does.
    Truncated {
        /// Bytes needed to read on (the stated total length, once it has been read).
        needed: u64,
        /// Bytes given.
        found: usize,
    },
    /// The input does not start with [`MAGIC`]: not a gradstep checkpoint.
    BadMagic,
    /// A format version this build cannot read.
    UnsupportedVersion {
        /// The checkpoint's version.
        found: u16,
    },
    /// The stored CRC-32 differs from the one computed over the bytes: corrupted.
    ChecksumMismatch {
        /// The CRC the checkpoint carries.
        stored: u32,
        /// The CRC of the bytes as they are.
        computed: u32,
    },
    /// A rule id this build does not know.
    UnknownRule {
        /// The checkpoint's rule id.
        found: u16,
    },
    /// The checkpoint is of another rule than the one restored into.
    WrongRule {
        /// The rule restored into.
        expected: RuleId,
        /// The checkpoint's rule.
        found: RuleId,
    },
    /// The checkpoint's element type is not the destination's.
    WrongElementType {
        /// The destination's element type.
        expected: ElementType,
        /// The checkpoint's element type.
        found: ElementType,
    },
    /// A field is inconsistent with the format or with the rest of the checkpoint,
    /// although the checksum matches (a checkpoint not written by [`encode`]).
    InvalidField {
        /// Which field: `"length"`, `"element type"`, `"flags"`, `"reserved"`,
        /// `"rule section length"`, `"n"`, `"options"`, `"choices"`, `"scalar state"`
        /// or `"state slots"`.
        field: &'static str,
    },
    /// The number of destination state slices is not the checkpoint's.
    SlotCount {
        /// Slices in the checkpoint.
        expected: usize,
        /// Slices given.
        found: usize,
    },
    /// A destination buffer's length is not the checkpoint's element count `n`.
    LengthMismatch {
        /// Which buffer.
        section: Section,
        /// The checkpoint's `n`.
        expected: u64,
        /// The buffer's length.
        found: usize,
    },
    /// Params were asked for, but the checkpoint has no params section.
    ParamsAbsent,
    /// The checkpoint's length does not fit in `usize`.
    TooLarge,
    /// [`encode_any`] was given scalar state of another kind than the rule's.
    WrongScalars {
        /// The rule.
        rule: RuleId,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CheckpointError::BufferTooSmall { needed, found } => write!(
                f,
                "checkpoint needs {needed} bytes, the output buffer has {found}"
            ),
            CheckpointError::Truncated { needed, found } => {
                write!(f, "checkpoint truncated: {found} bytes, {needed} needed")
            }
            CheckpointError::BadMagic => f.write_str("not a gradstep checkpoint (bad magic)"),
            CheckpointError::UnsupportedVersion { found } => write!(
                f,
                "checkpoint format version {found} is not supported (this build reads {FORMAT_VERSION})"
            ),
            CheckpointError::ChecksumMismatch { stored, computed } => write!(
                f,
                "checkpoint corrupted: stored CRC-32 {stored:#010x}, computed {computed:#010x}"
            ),
            CheckpointError::UnknownRule { found } => {
                write!(f, "checkpoint has unknown rule id {found}")
            }
            CheckpointError::WrongRule { expected, found } => {
                write!(f, "checkpoint is of rule {found}, expected {expected}")
            }
            CheckpointError::WrongElementType { expected, found } => {
                write!(f, "checkpoint holds {found} elements, expected {expected}")
            }
            CheckpointError::InvalidField { field } => {
                write!(f, "malformed checkpoint: invalid {field}")
            }
            CheckpointError::SlotCount { expected, found } => write!(
                f,
                "checkpoint has {expected} state slices, {found} destination slices given"
            ),
            CheckpointError::LengthMismatch {
                section,
                expected,
                found,
            } => write!(
                f,
                "{section} has length {found}, checkpoint has {expected} elements"
            ),
            CheckpointError::ParamsAbsent => f.write_str("checkpoint has no params section"),
            CheckpointError::TooLarge => f.write_str("checkpoint length overflows usize"),
            CheckpointError::WrongScalars { rule } => {
                write!(f, "scalar state is not of the kind rule {rule} keeps")
            }
        }
    }
}

impl From<CheckpointError> for Error {
    fn from(e: CheckpointError) -> Self {
        Error::Checkpoint(e)
    }
}

/// Which destination buffer a [`CheckpointError::LengthMismatch`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Section {
    /// The state slice at this index.
    State(usize),
    /// The params.
    Params,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Section::State(i) => write!(f, "state slice {i}"),
            Section::Params => f.write_str("params slice"),
        }
    }
}

/// The element type of a checkpoint's arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum ElementType {
    /// `f32`, 4 bytes.
    F32 = 1,
    /// `f64`, 8 bytes.
    F64 = 2,
}

impl ElementType {
    /// The type with this code, if any.
    pub const fn from_u8(code: u8) -> Option<Self> {
        match code {
            1 => Some(ElementType::F32),
            2 => Some(ElementType::F64),
            _ => None,
        }
    }

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            ElementType::F32 => 4,
            ElementType::F64 => 8,
        }
    }

    /// The element type of `T`.
    pub const fn of<T: Element>() -> Self {
        T::TYPE
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElementType::F32 => "f32",
            ElementType::F64 => "f64",
        })
    }
}

/// An element type checkpoints store: `f32` or `f64`.
pub trait Element: Real + sealed::ElementCodec {
    /// Its code in the header.
    const TYPE: ElementType;
}

impl Element for f32 {
    const TYPE: ElementType = ElementType::F32;
}

impl Element for f64 {
    const TYPE: ElementType = ElementType::F64;
}

/// A rule that can be checkpointed: every built-in rule. Sealed, because the format
/// gives each rule a number and a fixed layout.
pub trait Checkpointable: Rule<Scalars: sealed::ScalarCodec> + sealed::RuleCodec {
    /// The rule's number in the format.
    const ID: RuleId;
}

/// What a checkpoint's header says; read by [`peek`] without the rest of the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The format version.
    pub version: u16,
    /// The rule.
    pub rule: RuleId,
    /// The element type of the arrays.
    pub element: ElementType,
    /// The element count: the length of the params and of every state slice.
    pub n: u64,
    /// The number of state slices.
    pub slots: usize,
    /// Whether the checkpoint holds the params.
    pub has_params: bool,
    /// The checkpoint's total length in bytes, checksum included.
    pub len: u64,
}

/// Writes `src` to the front of `dst` as checkpoints store arrays (little-endian,
/// `size_of::<T>()` bytes each), for containers that carry arrays of their own (the
/// owning optimizer's Lookahead slices). Returns the bytes written; refused, with
/// `dst` untouched, if it is too short.
pub fn write_elements<T: Element>(src: &[T], dst: &mut [u8]) -> Result<usize, CheckpointError> {
    let needed = src.len().saturating_mul(core::mem::size_of::<T>());
    let found = dst.len();
    let dst = dst
        .get_mut(..needed)
        .ok_or(CheckpointError::BufferTooSmall { needed, found })?;
    T::write_le(src, dst);
    Ok(needed)
}

/// Reads `dst.len()` elements written by [`write_elements`] from the front of `src`;
/// returns the bytes read. Refused, with `dst` untouched, if `src` is too short.
pub fn read_elements<T: Element>(src: &[u8], dst: &mut [T]) -> Result<usize, CheckpointError> {
    let needed = dst.len().saturating_mul(core::mem::size_of::<T>());
    let found = src.len();
    let src = src.get(..needed).ok_or(CheckpointError::Truncated {
        needed: needed as u64,
        found,
    })?;
    T::read_le(src, dst);
    Ok(needed)
}

/// The private half of the traits above: how values become bytes and back.
mod sealed {
    use super::CheckpointError;
    use super::wire::{Reader, Writer};

    pub trait ElementCodec: Sized {
        /// Writes `src` to `dst`, which is exactly `src.len() · size` bytes long.
        fn write_le(src: &[Self], dst: &mut [u8]);
        /// Reads `dst.len()` elements from `src`, which is exactly that many long.
        fn read_le(src: &[u8], dst: &mut [Self]);
    }

    pub trait ScalarCodec: Sized + Copy {
        /// Bytes in the rule section.
        const LEN: usize;
        fn write(&self, w: &mut Writer<'_>);
        fn read(r: &mut Reader<'_>) -> Result<Self, CheckpointError>;
    }

    pub trait RuleCodec: super::Rule<Scalars: ScalarCodec> {
        /// The rule section's length `R`.
        const SECTION_LEN: usize;
        fn write_section(&self, scalars: &Self::Scalars, w: &mut Writer<'_>);
        fn read_section(r: &mut Reader<'_>) -> Result<(Self, Self::Scalars), CheckpointError>;
    }
}

use sealed::{ElementCodec, RuleCodec, ScalarCodec};

impl ElementCodec for f32 {
    fn write_le(src: &[Self], dst: &mut [u8]) {
        for (d, x) in dst.as_chunks_mut::<4>().0.iter_mut().zip(src) {
            *d = x.to_le_bytes();
        }
    }
    fn read_le(src: &[u8], dst: &mut [Self]) {
        for (x, s) in dst.iter_mut().zip(src.as_chunks::<4>().0) {
            *x = f32::from_le_bytes(*s);
        }
    }
}

impl ElementCodec for f64 {
    fn write_le(src: &[Self], dst: &mut [u8]) {
        for (d, x) in dst.as_chunks_mut::<8>().0.iter_mut().zip(src) {
            *d = x.to_le_bytes();
        }
    }
    fn read_le(src: &[u8], dst: &mut [Self]) {
        for (x, s) in dst.iter_mut().zip(src.as_chunks::<8>().0) {
            *x = f64::from_le_bytes(*s);
        }
    }
}

use wire::{Reader, Writer};

/// Byte cursors; public only to the sealed traits.
mod wire {
    /// Appends to a buffer that the caller has already checked is long enough; past the
    /// end it writes nothing (and never panics).
    pub struct Writer<'a> {
        pub(super) buf: &'a mut [u8],
        pub(super) pos: usize,
    }

    /// Reads from the front of a byte slice; reading past the end is an error, not a
    /// panic.
    pub struct Reader<'a> {
        pub(super) buf: &'a [u8],
    }
}

impl<'a> Writer<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }
    fn next(&mut self, len: usize) -> Option<&mut [u8]> {
        let end = self.pos.saturating_add(len);
        let dst = self.buf.get_mut(self.pos..end);
        self.pos = end;
        dst
    }
    fn bytes(&mut self, b: &[u8]) {
        if let Some(dst) = self.next(b.len()) {
            dst.copy_from_slice(b);
        }
    }
    fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    fn elements<T: Element>(&mut self, xs: &[T]) {
        if let Some(dst) = self.next(xs.len().saturating_mul(T::TYPE.size())) {
            T::write_le(xs, dst);
        }
    }
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], CheckpointError> {
        let (head, rest) =
            self.buf
                .split_first_chunk::<N>()
                .ok_or(CheckpointError::InvalidField {
                    field: "rule section length",
                })?;
        self.buf = rest;
        Ok(*head)
    }
    fn u64(&mut self) -> Result<u64, CheckpointError> {
        self.array::<8>().map(u64::from_le_bytes)
    }
    fn f64(&mut self) -> Result<f64, CheckpointError> {
        self.u64().map(f64::from_bits)
    }
}

/// Bit `*k` of `bits`, then advances `*k`.
fn next_bit(bits: u64, k: &mut u32) -> bool {
    let b = bits.checked_shr(*k).unwrap_or(0) & 1 == 1;
    *k += 1;
    b
}

impl AnyScalars {
    /// Whether steps can produce this scalar state: NAdam's μ-product in [0, 1] (a
    /// product of momentum coefficients in [0, 1), from 1); ASGD's η finite and ≥ 0
    /// (γ / (1 + κγt)^α with γ, κ, α ≥ 0) and μ in (0, 1] (1 / max(1, t − t₀)). The
    /// decoder refuses any other (`InvalidField { field: "scalar state" }`): restored, it
    /// would make every later step silently wrong.
    ///
    /// At step 0 the other fields are ignored by the next step, so every value is
    /// reachable there (a C caller's fresh, all-zero `gradstep_scalars` is), as
    /// [`crate::rules::ScalarState::check`] says.
    pub fn is_reachable(&self) -> bool {
        match self {
            AnyScalars::Step(s) => s.check().is_ok(),
            AnyScalars::NAdam(s) => s.check().is_ok(),
            AnyScalars::Asgd(s) => s.check().is_ok(),
        }
    }
}

/// [`AnyScalars::is_reachable`] as the decoder's refusal.
fn scalar_in_range(ok: bool) -> Result<(), CheckpointError> {
    if ok {
        Ok(())
    } else {
        Err(CheckpointError::InvalidField {
            field: "scalar state",
        })
    }
}

impl ScalarCodec for StepCount {
    const LEN: usize = 8;
    fn write(&self, w: &mut Writer<'_>) {
        w.u64(self.step);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, CheckpointError> {
        Ok(StepCount::new(r.u64()?))
    }
}

impl ScalarCodec for NAdamScalars {
    const LEN: usize = 16;
    fn write(&self, w: &mut Writer<'_>) {
        w.u64(self.step);
        w.f64(self.mu_product);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, CheckpointError> {
        let s = NAdamScalars::new(r.u64()?, r.f64()?);
        scalar_in_range(AnyScalars::NAdam(s).is_reachable())?;
        Ok(s)
    }
}

impl ScalarCodec for AsgdScalars {
    const LEN: usize = 24;
    fn write(&self, w: &mut Writer<'_>) {
        w.u64(self.step);
        w.f64(self.eta);
        w.f64(self.mu);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, CheckpointError> {
        let s = AsgdScalars {
            step: r.u64()?,
            eta: r.f64()?,
            mu: r.f64()?,
        };
        scalar_in_range(AnyScalars::Asgd(s).is_reachable())?;
        Ok(s)
    }
}

/// The checkpoint codec of every rule, from the registry row: the order of the fields
/// in the rule section. Adding a field to a rule fails to compile in the registry's
/// completeness check (the struct literal names every field), which is the reminder
/// that the format changes.
macro_rules! codec {
    ($({
        id: $id:literal, rule: $rule:ident, name: $name:ident, reference: $reference:literal,
        scalars: $scalars:ident, momentum: [$($momentum:ident)?],
        f64: [$($f:ident),*], bool: [$($b:ident),*],
        choice: [$($c:ident: $ct:ident),*] $(,)?
    }),* $(,)?) => {
        /// The rule section's length `R`.
        const fn section_len(rule: RuleId) -> usize {
            match rule {
                $(RuleId::$rule => <crate::$rule as RuleCodec>::SECTION_LEN,)*
            }
        }

        $(
            impl Checkpointable for crate::$rule {
                const ID: RuleId = RuleId::$rule;
            }

            impl RuleCodec for crate::$rule {
                const SECTION_LEN: usize =
                    8 * ([$(stringify!($f)),*].len() + 1 + <[&str]>::len(&[$(stringify!($c)),*]))
                        + <crate::$scalars as ScalarCodec>::LEN;

                fn write_section(&self, scalars: &crate::$scalars, w: &mut Writer<'_>) {
                    $(w.f64(self.$f);)*
                    let options = [$(self.$b),*];
                    let bits = options
                        .iter()
                        .enumerate()
                        .fold(0u64, |acc, (k, &on)| acc | (u64::from(on) << k));
                    w.u64(bits);
                    $(w.u64(u64::from(crate::rules::Choice::index(self.$c)));)*
                    scalars.write(w);
                }

                fn read_section(
                    r: &mut Reader<'_>,
                ) -> Result<(Self, crate::$scalars), CheckpointError> {
                    $(let $f = r.f64()?;)*
                    let bits = r.u64()?;
                    let mut k = 0u32;
                    $(let $b = next_bit(bits, &mut k);)*
                    if bits.checked_shr(k).unwrap_or(0) != 0 {
                        return Err(CheckpointError::InvalidField { field: "options" });
                    }
                    $(let $c = u32::try_from(r.u64()?)
                        .ok()
                        .and_then(<crate::$ct as crate::rules::Choice>::from_index)
                        .ok_or(CheckpointError::InvalidField { field: "choices" })?;)*
                    let scalars = <crate::$scalars as ScalarCodec>::read(r)?;
                    Ok((crate::$rule { $($f,)* $($b,)* $($c,)* }, scalars))
                }
            }
        )*

        /// [`decode`] into whichever rule the checkpoint holds.
        fn decode_any_verified<T: Element>(
            c: &Verified<'_>,
            state: &mut [&mut [T]],
            params: Option<&mut [T]>,
        ) -> Result<(AnyRule, AnyScalars), Error> {
            match c.header.rule {
                $(RuleId::$rule => {
                    let (r, s) = restore::<crate::$rule, T>(c, state, params)?;
                    Ok((AnyRule::$rule(r), s.into()))
                })*
            }
        }

        /// The rule and scalar state of a verified checkpoint, checked as [`decode`] does.
        fn inspect_verified(c: &Verified<'_>) -> Result<(AnyRule, AnyScalars), Error> {
            match c.header.rule {
                $(RuleId::$rule => {
                    let (r, s) = checked_section::<crate::$rule>(c)?;
                    Ok((AnyRule::$rule(r), s.into()))
                })*
            }
        }

        /// [`encode`] of whichever rule `rule` is.
        fn encode_any_dispatch<T: Element>(
            rule: &AnyRule,
            scalars: &AnyScalars,
            state: &[&[T]],
            params: Option<&[T]>,
            out: &mut [u8],
        ) -> Result<usize, Error> {
            match rule {
                $(AnyRule::$rule(r) => {
                    let s = <crate::$scalars as ScalarKind>::from_any(*scalars)
                        .ok_or(CheckpointError::WrongScalars { rule: RuleId::$rule })?;
                    encode(r, &s, state, params, out)
                })*
            }
        }

        /// [`encoded_len`] for a rule known at run time.
        fn encoded_len_any(
            rule: &AnyRule,
            element: ElementType,
            n: usize,
            with_params: bool,
        ) -> Result<usize, Error> {
            match rule {
                $(AnyRule::$rule(r) => encoded_len(r, element, n, with_params),)*
            }
        }
    };
}

crate::for_each_rule!(codec);

impl AnyRule {
    /// [`encoded_len`] for this rule.
    pub fn encoded_len(
        &self,
        element: ElementType,
        n: usize,
        with_params: bool,
    ) -> Result<usize, Error> {
        encoded_len_any(self, element, n, with_params)
    }

    /// The fresh scalar state (step 0) of the rule's kind ([`AnyRule::fresh_scalars`]).
    pub fn default_scalars(&self) -> AnyScalars {
        self.fresh_scalars()
    }
}

/// The total length, in `u64` so that it can be checked on any target.
fn total_len(
    section: usize,
    slots: usize,
    element: ElementType,
    n: u64,
    params: bool,
) -> Option<u64> {
    let arrays = (slots as u64 + u64::from(params))
        .checked_mul(n)?
        .checked_mul(element.size() as u64)?;
    ((HEADER_LEN + CHECKSUM_LEN) as u64)
        .checked_add(section as u64)?
        .checked_add(arrays)
}

/// The length of the checkpoint [`encode`] writes for `rule` with `n` elements of type
/// `element` (and the params section if `with_params`). Depends on the rule's options
/// through the number of state slices.
///
/// The only error is [`CheckpointError::TooLarge`], when the length overflows `usize`.
pub fn encoded_len<R: Checkpointable>(
    rule: &R,
    element: ElementType,
    n: usize,
    with_params: bool,
) -> Result<usize, Error> {
    total_len(
        R::SECTION_LEN,
        rule.state_slots(),
        element,
        n as u64,
        with_params,
    )
    .and_then(|len| usize::try_from(len).ok())
    .ok_or(Error::Checkpoint(CheckpointError::TooLarge))
}

/// Writes the checkpoint of `rule`, its scalar state, its state slices and (if given)
/// the params to the front of `out`, and returns its length ([`encoded_len`]).
///
/// `n` is the length of `params` if given, else of the state slices, else 0. Refused,
/// with `out` untouched: invalid hyperparameters ([`Error::InvalidHyperparameter`]),
/// scalar state no steps produce ([`Error::InvalidScalarState`]: the decoder would
/// refuse it), a number of slices other than [`Rule::state_slots`] ([`Error::StateSlots`]), slices of
/// unequal lengths ([`Error::LengthMismatch`]), and an `out` too short
/// ([`CheckpointError::BufferTooSmall`]).
pub fn encode<R: Checkpointable, T: Element>(
    rule: &R,
    scalars: &R::Scalars,
    state: &[&[T]],
    params: Option<&[T]>,
    out: &mut [u8],
) -> Result<usize, Error> {
    rule.validate()?;
    scalars.check()?;
    let slots = rule.state_slots();
    if state.len() != slots {
        return Err(Error::StateSlots {
            expected: slots,
            found: state.len(),
        });
    }
    let n = match (params, state.first()) {
        (Some(p), _) => p.len(),
        (None, Some(s)) => s.len(),
        (None, None) => 0,
    };
    if let Some((i, s)) = state.iter().enumerate().find(|(_, s)| s.len() != n) {
        return Err(Error::LengthMismatch {
            buffer: Buffer::State(i),
            expected: n,
            found: s.len(),
        });
    }
    let len = encoded_len(rule, T::TYPE, n, params.is_some())?;
    let found = out.len();
    let out = out
        .get_mut(..len)
        .ok_or(CheckpointError::BufferTooSmall { needed: len, found })?;

    let mut w = Writer::new(out);
    w.bytes(&MAGIC);
    w.u16(FORMAT_VERSION);
    w.u16(R::ID as u16);
    w.u64(len as u64);
    w.u8(T::TYPE as u8);
    w.u8(if params.is_some() { FLAG_PARAMS } else { 0 });
    // At most MAX_STATE_SLOTS (4): fits.
    w.u8(slots as u8);
    w.u8(0);
    w.u32(R::SECTION_LEN as u32);
    w.u64(n as u64);
    rule.write_section(scalars, &mut w);
    for s in state {
        w.elements(s);
    }
    if let Some(p) = params {
        w.elements(p);
    }
    let body = len - CHECKSUM_LEN;
    let crc = CRC32.checksum(w.buf.get(..body).unwrap_or_default());
    w.u32(crc);
    Ok(len)
}

/// [`encode`] for a rule known at run time. `scalars` must be of the rule's kind
/// ([`CheckpointError::WrongScalars`] otherwise).
pub fn encode_any<T: Element>(
    rule: &AnyRule,
    scalars: &AnyScalars,
    state: &[&[T]],
    params: Option<&[T]>,
    out: &mut [u8],
) -> Result<usize, Error> {
    encode_any_dispatch(rule, scalars, state, params, out)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..)?
        .first_chunk::<2>()
        .map(|c| u16::from_le_bytes(*c))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..)?
        .first_chunk::<4>()
        .map(|c| u32::from_le_bytes(*c))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..)?
        .first_chunk::<8>()
        .map(|c| u64::from_le_bytes(*c))
}

fn truncated(needed: usize, found: usize) -> CheckpointError {
    CheckpointError::Truncated {
        needed: needed as u64,
        found,
    }
}

/// Magic, version and stated total length: what must hold before anything else is
/// read. Returns the total length.
fn preamble(bytes: &[u8]) -> Result<u64, CheckpointError> {
    let prefix = bytes.get(..MAGIC.len()).unwrap_or(bytes);
    if prefix != &MAGIC[..prefix.len()] {
        return Err(CheckpointError::BadMagic);
    }
    let version = u16_at(bytes, 4).ok_or(truncated(6, bytes.len()))?;
    if version != FORMAT_VERSION {
        return Err(CheckpointError::UnsupportedVersion { found: version });
    }
    let len = u64_at(bytes, 8).ok_or(truncated(16, bytes.len()))?;
    if len < (HEADER_LEN + CHECKSUM_LEN) as u64 {
        return Err(CheckpointError::InvalidField { field: "length" });
    }
    Ok(len)
}

/// The header's fields after the preamble, checked against each other.
fn parse_header(bytes: &[u8], len: u64) -> Result<Header, CheckpointError> {
    let header = bytes
        .first_chunk::<HEADER_LEN>()
        .ok_or(truncated(HEADER_LEN, bytes.len()))?;
    let id = u16_at(header, 6).unwrap_or_default();
    let rule = RuleId::from_u16(id).ok_or(CheckpointError::UnknownRule { found: id })?;
    let element = ElementType::from_u8(header[16]).ok_or(CheckpointError::InvalidField {
        field: "element type",
    })?;
    let flags = header[17];
    if flags & !FLAG_PARAMS != 0 {
        return Err(CheckpointError::InvalidField { field: "flags" });
    }
    let slots = usize::from(header[18]);
    if slots > MAX_STATE_SLOTS {
        return Err(CheckpointError::InvalidField {
            field: "state slots",
        });
    }
    if header[19] != 0 {
        return Err(CheckpointError::InvalidField { field: "reserved" });
    }
    let section = u32_at(header, 20).unwrap_or_default();
    if section as usize != section_len(rule) {
        return Err(CheckpointError::InvalidField {
            field: "rule section length",
        });
    }
    let n = u64_at(header, 24).unwrap_or_default();
    let has_params = flags & FLAG_PARAMS != 0;
    // What `encode` writes when there is no array to take `n` from; keeps every
    // accepted byte string one that `encode` produces.
    if slots == 0 && !has_params && n != 0 {
        return Err(CheckpointError::InvalidField { field: "n" });
    }
    if total_len(section_len(rule), slots, element, n, has_params) != Some(len) {
        return Err(CheckpointError::InvalidField { field: "length" });
    }
    Ok(Header {
        version: FORMAT_VERSION,
        rule,
        element,
        n,
        slots,
        has_params,
        len,
    })
}

/// Reads and checks the header from the first [`HEADER_LEN`] bytes, without the rest
/// of the checkpoint, so that a caller can size its buffers before reading the rest.
///
/// The checksum is not verified (it covers the whole checkpoint): [`decode`] does that.
pub fn peek(bytes: &[u8]) -> Result<Header, Error> {
    let len = preamble(bytes)?;
    Ok(parse_header(bytes, len)?)
}

/// A checkpoint whose checksum and structure have been verified.
struct Verified<'a> {
    header: Header,
    section: &'a [u8],
    arrays: &'a [u8],
}

fn verify(bytes: &[u8]) -> Result<Verified<'_>, CheckpointError> {
    let len = preamble(bytes)?;
    let needed = CheckpointError::Truncated {
        needed: len,
        found: bytes.len(),
    };
    let len_usize = usize::try_from(len).map_err(|_| needed)?;
    let all = bytes.get(..len_usize).ok_or(needed)?;
    let (body, stored) = all
        .split_last_chunk::<CHECKSUM_LEN>()
        .ok_or(CheckpointError::InvalidField { field: "length" })?;
    let stored = u32::from_le_bytes(*stored);
    let computed = CRC32.checksum(body);
    if stored != computed {
        return Err(CheckpointError::ChecksumMismatch { stored, computed });
    }
    let header = parse_header(body, len)?;
    let rest = body.get(HEADER_LEN..).unwrap_or_default();
    let (section, arrays) =
        rest.split_at_checked(section_len(header.rule))
            .ok_or(CheckpointError::InvalidField {
                field: "rule section length",
            })?;
    Ok(Verified {
        header,
        section,
        arrays,
    })
}

/// The rule section of a verified checkpoint of rule `R`: read, its hyperparameters
/// validated, and its slot count the one the checkpoint's header states.
fn checked_section<R: Checkpointable>(c: &Verified<'_>) -> Result<(R, R::Scalars), Error> {
    let (rule, scalars) = R::read_section(&mut Reader { buf: c.section })?;
    rule.validate()?;
    if rule.state_slots() != c.header.slots {
        return Err(CheckpointError::InvalidField {
            field: "state slots",
        }
        .into());
    }
    Ok((rule, scalars))
}

/// Checks everything about a verified checkpoint and the destinations, then restores.
fn restore<R: Checkpointable, T: Element>(
    c: &Verified<'_>,
    state: &mut [&mut [T]],
    params: Option<&mut [T]>,
) -> Result<(R, R::Scalars), Error> {
    let h = &c.header;
    if h.rule != R::ID {
        return Err(CheckpointError::WrongRule {
            expected: R::ID,
            found: h.rule,
        }
        .into());
    }
    if h.element != T::TYPE {
        return Err(CheckpointError::WrongElementType {
            expected: T::TYPE,
            found: h.element,
        }
        .into());
    }
    let (rule, scalars) = checked_section::<R>(c)?;
    if state.len() != h.slots {
        return Err(CheckpointError::SlotCount {
            expected: h.slots,
            found: state.len(),
        }
        .into());
    }
    let mismatch = |section, found: usize| CheckpointError::LengthMismatch {
        section,
        expected: h.n,
        found,
    };
    for (i, s) in state.iter().enumerate() {
        if s.len() as u64 != h.n {
            return Err(mismatch(Section::State(i), s.len()).into());
        }
    }
    match (&params, h.has_params) {
        (Some(p), true) if p.len() as u64 != h.n => {
            return Err(mismatch(Section::Params, p.len()).into());
        }
        (Some(_), false) => return Err(CheckpointError::ParamsAbsent.into()),
        _ => {}
    }

    // Cut every array out of the checkpoint before writing the first one, so that a
    // (verified-impossible) inconsistency still cannot leave a partial restore.
    let arrays = h.slots + usize::from(h.has_params);
    let mut regions: [&[u8]; MAX_STATE_SLOTS + 1] = [&[]; MAX_STATE_SLOTS + 1];
    if arrays > 0 {
        let bytes_each = usize::try_from(h.n)
            .ok()
            .and_then(|n| n.checked_mul(T::TYPE.size()))
            .ok_or(CheckpointError::InvalidField { field: "length" })?;
        let mut rest = c.arrays;
        for region in regions.iter_mut().take(arrays) {
            let (head, tail) = rest
                .split_at_checked(bytes_each)
                .ok_or(CheckpointError::InvalidField { field: "length" })?;
            *region = head;
            rest = tail;
        }
    }
    for (s, region) in state.iter_mut().zip(regions) {
        T::read_le(region, s);
    }
    if let (Some(p), true) = (params, h.has_params) {
        T::read_le(regions[h.slots.min(MAX_STATE_SLOTS)], p);
    }
    Ok((rule, scalars))
}

/// Restores a checkpoint of rule `R` with elements `T`: returns the rule (with the
/// checkpoint's hyperparameters) and its scalar state, and fills the state slices and,
/// if given, the params.
///
/// `state` must hold the checkpoint's number of slices ([`Header::slots`], from [`peek`])
/// of `n` elements each. `params` may be `None` to restore the optimizer state alone
/// (the params section, if any, is then skipped); if given, the checkpoint must have a
/// params section. Every check listed in the [module docs](self) happens before anything
/// is written: on `Err`, `state` and `params` are untouched.
pub fn decode<R: Checkpointable, T: Element>(
    bytes: &[u8],
    state: &mut [&mut [T]],
    params: Option<&mut [T]>,
) -> Result<(R, R::Scalars), Error> {
    restore(&verify(bytes)?, state, params)
}

/// Checks a whole checkpoint as [`decode_any`] does, without restoring it: the magic,
/// version and length, the checksum, the header's structure, the rule section (known
/// option bits, hyperparameters the rule's `validate()` accepts, the slot count the
/// options need). Returns the header, the rule and its scalar state. A checkpoint that
/// passes decodes into destinations of the header's shape.
///
/// Use it before keeping bytes that must restore later (firmware's flash store does):
/// [`peek`] reads the header alone.
pub fn inspect(bytes: &[u8]) -> Result<(Header, AnyRule, AnyScalars), Error> {
    let c = verify(bytes)?;
    let (rule, scalars) = inspect_verified(&c)?;
    Ok((c.header, rule, scalars))
}

/// [`decode`] into whichever rule the checkpoint holds.
pub fn decode_any<T: Element>(
    bytes: &[u8],
    state: &mut [&mut [T]],
    params: Option<&mut [T]>,
) -> Result<(AnyRule, AnyScalars), Error> {
    decode_any_verified(&verify(bytes)?, state, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Adam, Asgd, NAdam};

    #[test]
    fn section_lengths_match_the_documented_table() {
        let table = [
            (RuleId::Sgd, 48),
            (RuleId::Adam, 56),
            (RuleId::AdamW, 56),
            (RuleId::Adamax, 56),
            (RuleId::NAdam, 72),
            (RuleId::RAdam, 56),
            (RuleId::Adagrad, 56),
            (RuleId::Adadelta, 48),
            (RuleId::RmsProp, 56),
            (RuleId::Rprop, 56),
            (RuleId::Asgd, 72),
            (RuleId::Proximal, 128),
            (RuleId::Ftrl, 72),
            (RuleId::Adan, 64),
            (RuleId::Lamb, 56),
            (RuleId::RmsPropBc, 48),
            (RuleId::OnlineRmsProp, 48),
            (RuleId::ScAdagrad, 48),
            (RuleId::ScRmsProp, 56),
        ];
        for (id, len) in table {
            assert_eq!(RuleId::from_u16(id as u16), Some(id));
            assert_eq!(section_len(id), len, "{id}");
        }
        assert_eq!(table.len(), RuleId::ALL.len(), "a row per rule");
        assert_eq!(RuleId::from_u16(0), None);
        assert_eq!(
            RuleId::from_u16(*RuleId::ALL.last().unwrap() as u16 + 1),
            None
        );
    }

    #[test]
    fn inspect_checks_what_decode_checks() {
        let adam = Adam {
            lr: 0.5,
            amsgrad: true,
            ..Adam::default()
        };
        let scalars = StepCount::new(7);
        let (m, v, vmax) = ([1.0f32, 2.0], [3.0f32, 4.0], [5.0f32, 6.0]);
        let mut buf = [0u8; 128];
        let len = encode(&adam, &scalars, &[&m, &v, &vmax], None, &mut buf).unwrap();
        let (header, rule, any) = inspect(&buf[..len]).unwrap();
        assert_eq!((header.n, header.slots, header.len), (2, 3, len as u64));
        assert_eq!(
            (rule, any),
            (AnyRule::Adam(adam), AnyScalars::Step(scalars))
        );

        // A flipped bit in the arrays: the header still peeks, inspect refuses.
        let mut corrupt = buf;
        corrupt[len - 6] ^= 0x10;
        assert!(peek(&corrupt[..len]).is_ok());
        assert!(matches!(
            inspect(&corrupt[..len]),
            Err(Error::Checkpoint(CheckpointError::ChecksumMismatch { .. }))
        ));
        // A valid checksum over lr = -1: refused as the constructor refuses it.
        let mut refused = buf;
        refused[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(&(-1.0f64).to_le_bytes());
        let crc = CRC32.checksum(&refused[..len - CHECKSUM_LEN]);
        refused[len - CHECKSUM_LEN..len].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            inspect(&refused[..len]),
            Err(Error::InvalidHyperparameter { name: "lr", .. })
        ));
    }

    /// Found by fuzzing (fuzz/fuzz_targets/checkpoint_decode.rs): a checkpoint with a valid
    /// CRC and ASGD's η = NaN decoded, and every later step then wrote NaN params.
    #[test]
    fn scalar_state_no_step_produces_is_refused() {
        fn forged(rule: AnyRule, scalars: AnyScalars, at: usize, value: f64) -> ([u8; 128], usize) {
            let len = rule.encoded_len(ElementType::F64, 0, false).unwrap();
            let mut buf = [0u8; 128];
            let empty: [&[f64]; MAX_STATE_SLOTS] = [&[]; MAX_STATE_SLOTS];
            let state = &empty[..rule.state_slots()];
            encode_any::<f64>(&rule, &scalars, state, None, &mut buf).unwrap();
            let section = HEADER_LEN + section_len(rule.id());
            let field = section - at;
            buf[field..field + 8].copy_from_slice(&value.to_le_bytes());
            let crc = CRC32.checksum(&buf[..len - CHECKSUM_LEN]);
            buf[len - CHECKSUM_LEN..len].copy_from_slice(&crc.to_le_bytes());
            (buf, len)
        }
        let refused = Err(Error::Checkpoint(CheckpointError::InvalidField {
            field: "scalar state",
        }));
        let asgd = AnyRule::from(Asgd::default());
        let asgd_scalars = AnyScalars::Asgd(AsgdScalars {
            step: 3,
            eta: 0.01,
            mu: 1.0,
        });
        let nadam = AnyRule::from(NAdam::default());
        let nadam_scalars = AnyScalars::NAdam(NAdamScalars::new(3, 0.5));
        // ASGD's section ends with η then μ; NAdam's with the μ-product.
        for (rule, scalars, at, bad) in [
            (asgd, asgd_scalars, 16, f64::NAN),
            (asgd, asgd_scalars, 16, -0.5),
            (asgd, asgd_scalars, 16, f64::INFINITY),
            (asgd, asgd_scalars, 8, 0.0),
            (asgd, asgd_scalars, 8, 1.5),
            (asgd, asgd_scalars, 8, f64::NAN),
            (nadam, nadam_scalars, 8, f64::NAN),
            (nadam, nadam_scalars, 8, -1e-300),
            (nadam, nadam_scalars, 8, 1.0 + f64::EPSILON),
        ] {
            let (buf, len) = forged(rule, scalars, at, bad);
            let bytes = &buf[..len];
            assert_eq!(inspect(bytes).map(|_| ()), refused, "{rule:?} {bad}");
            let (mut a, mut b): ([f64; 0], [f64; 0]) = ([], []);
            let mut state: [&mut [f64]; 2] = [&mut a, &mut b];
            let state = &mut state[..rule.state_slots()];
            assert_eq!(decode_any::<f64>(bytes, state, None).map(|_| ()), refused);
        }
        // The edges steps do reach are accepted.
        for (rule, scalars, at, good) in [
            (asgd, asgd_scalars, 16, 0.0),
            (asgd, asgd_scalars, 8, 1.0),
            (nadam, nadam_scalars, 8, 0.0),
            (nadam, nadam_scalars, 8, 1.0),
        ] {
            let (buf, len) = forged(rule, scalars, at, good);
            assert!(inspect(&buf[..len]).is_ok(), "{rule:?} {good}");
        }
    }
}
