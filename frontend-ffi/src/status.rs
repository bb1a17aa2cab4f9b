//! Status codes: what every exported function returns.

use core::ffi::c_char;

use gradstep::Error;
use gradstep::checkpoint::CheckpointError;

/// The result of a gradstep call. `GRADSTEP_OK` is 0; every other value names one kind
/// of refusal, and in every case nothing the caller passed was written. Numbers are
/// never reused: a code that is retired stays reserved.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum gradstep_status {
    /// Success.
    GRADSTEP_OK = 0,
    /// A required pointer was NULL (also when the length is 0).
    GRADSTEP_NULL_POINTER = 1,
    /// A pointer is not aligned for its element type.
    GRADSTEP_MISALIGNED_POINTER = 2,
    /// A buffer's length does not match the parameters' length.
    GRADSTEP_LENGTH_MISMATCH = 3,
    /// The number or total length of state buffers is not what the rule needs.
    GRADSTEP_STATE_LAYOUT = 4,
    /// A hyperparameter (or schedule setting) is out of range, NaN or infinite.
    GRADSTEP_INVALID_HYPERPARAMETER = 5,
    /// The step counter would overflow.
    GRADSTEP_STEP_OVERFLOW = 6,
    /// Clipping with `error_if_nonfinite` found a NaN or infinite total norm.
    GRADSTEP_NON_FINITE_NORM = 7,
    /// A fixed-length schedule (OneCycleLR) was stepped past its end.
    GRADSTEP_SCHEDULE_FINISHED = 8,
    /// The rule, schedule or other enumerated value is not one gradstep knows.
    GRADSTEP_UNKNOWN_KIND = 9,
    /// A handle is NULL-free but not a live gradstep handle (freed, or foreign).
    GRADSTEP_INVALID_HANDLE = 10,
    /// The output buffer is too small.
    GRADSTEP_BUFFER_TOO_SMALL = 11,
    /// A checkpoint could not be read: truncated, corrupted, wrong version, wrong rule
    /// or wrong element type.
    GRADSTEP_BAD_CHECKPOINT = 12,
    /// Memory could not be allocated (handle API only).
    GRADSTEP_OUT_OF_MEMORY = 13,
    /// gradstep hit an internal error (a caught panic); please report it.
    GRADSTEP_INTERNAL_ERROR = 14,
    /// Two buffers that must be distinct overlap (e.g. params and grads).
    GRADSTEP_OVERLAPPING_BUFFERS = 15,
    /// A checkpoint was written by a format version this library does not read.
    GRADSTEP_CHECKPOINT_VERSION = 16,
    /// A checkpoint holds another rule than the one it is being restored into.
    GRADSTEP_CHECKPOINT_WRONG_RULE = 17,
    /// A checkpoint holds another element type (f32/f64) than the buffers given.
    GRADSTEP_CHECKPOINT_WRONG_TYPE = 18,
    /// Hyperparameters of another rule than the optimizer's.
    GRADSTEP_WRONG_RULE = 19,
    /// Buffers of another element type than the optimizer's.
    GRADSTEP_WRONG_ELEMENT_TYPE = 20,
    /// A checkpoint of an optimizer of another shape (groups, tensors, lengths, or a
    /// schedule that is not attached again).
    GRADSTEP_CHECKPOINT_MISMATCH = 21,
}

pub use gradstep_status::*;

impl From<Error> for gradstep_status {
    fn from(e: Error) -> Self {
        match e {
            Error::LengthMismatch { .. } => GRADSTEP_LENGTH_MISMATCH,
            Error::StateSlots { .. } | Error::FlatStateLength { .. } => GRADSTEP_STATE_LAYOUT,
            Error::InvalidHyperparameter { .. } => GRADSTEP_INVALID_HYPERPARAMETER,
            Error::StepOverflow => GRADSTEP_STEP_OVERFLOW,
            Error::NonFiniteNorm { .. } => GRADSTEP_NON_FINITE_NORM,
            Error::ScheduleFinished { .. } => GRADSTEP_SCHEDULE_FINISHED,
            Error::Checkpoint(c) => match c {
                CheckpointError::BufferTooSmall { .. } | CheckpointError::TooLarge => {
                    GRADSTEP_BUFFER_TOO_SMALL
                }
                CheckpointError::UnsupportedVersion { .. } => GRADSTEP_CHECKPOINT_VERSION,
                CheckpointError::WrongRule { .. } => GRADSTEP_CHECKPOINT_WRONG_RULE,
                CheckpointError::WrongElementType { .. } => GRADSTEP_CHECKPOINT_WRONG_TYPE,
                CheckpointError::LengthMismatch { .. } => GRADSTEP_LENGTH_MISMATCH,
                CheckpointError::SlotCount { .. } => GRADSTEP_STATE_LAYOUT,
                _ => GRADSTEP_BAD_CHECKPOINT,
            },
            _ => GRADSTEP_INTERNAL_ERROR,
        }
    }
}

/// A short English description of `status`, as a static NUL-terminated string; never
/// NULL (unknown numbers give "unknown status").
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_status_str(status: u32) -> *const c_char {
    let text: &'static str = match status {
        0 => "ok\0",
        1 => "null pointer\0",
        2 => "misaligned pointer\0",
        3 => "buffer length does not match the parameters\0",
        4 => "wrong number or length of state buffers\0",
        5 => "invalid hyperparameter\0",
        6 => "step counter overflow\0",
        7 => "non-finite gradient norm\0",
        8 => "schedule finished\0",
        9 => "unknown rule, schedule or option\0",
        10 => "invalid handle\0",
        11 => "buffer too small\0",
        12 => "bad checkpoint\0",
        13 => "out of memory\0",
        14 => "internal error\0",
        15 => "overlapping buffers\0",
        16 => "unsupported checkpoint version\0",
        17 => "checkpoint is of another rule\0",
        18 => "checkpoint is of another element type\0",
        19 => "hyperparameters of another rule\0",
        20 => "buffers of another element type\0",
        21 => "checkpoint is of an optimizer of another shape\0",
        _ => "unknown status\0",
    };
    text.as_ptr().cast()
}
