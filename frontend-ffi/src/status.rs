//! Status codes: what every exported function returns.

use core::ffi::c_char;

use gradstep::Error;
use gradstep::checkpoint::CheckpointError;

use crate::boundary::note;

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
    /// A handle is NULL-free but not a live gradstep handle (freed, or foreign); or a
    /// pointer given to `gradstep_buffer_free` is not a live buffer from
    /// `gradstep_buffer_new_f32`/`_f64`.
    GRADSTEP_INVALID_HANDLE = 10,
    /// The output buffer is too small.
    GRADSTEP_BUFFER_TOO_SMALL = 11,
    /// A checkpoint could not be read: truncated, corrupted, wrong version, wrong rule
    /// or wrong element type.
    GRADSTEP_BAD_CHECKPOINT = 12,
    /// Memory could not be allocated: by a handle, a buffer or a checkpoint function
    /// (the step functions never allocate).
    GRADSTEP_OUT_OF_MEMORY = 13,
    /// gradstep hit an internal error (a caught panic, printed nowhere); please report
    /// it. A handle whose call it was is refused with this status from then on (its
    /// state may be half-updated); it can still be freed.
    GRADSTEP_INTERNAL_ERROR = 14,
    /// Two buffers that must be distinct overlap: two that a call writes (params and
    /// state), or one it writes and one it reads (params and grads). Every output,
    /// a struct or a single value included (`*total_norm`, an accumulator, a handle's
    /// `*out`), must overlap nothing the call reads (buffers, arrays of pointers or
    /// lengths, the rule, a config, a spec's text) and no other output.
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
    /// A length is more than one object can hold (`PTRDIFF_MAX` bytes), or a size
    /// computed from lengths overflows.
    GRADSTEP_LENGTH_TOO_LARGE = 22,
    /// A rule's text (`gradstep_rule_parse`) is not `NAME[:FIELD=VALUE,...]` with a known
    /// name, known fields and values of their kind, or is longer than
    /// `GRADSTEP_RULE_TEXT_MAX` bytes.
    GRADSTEP_BAD_RULE_TEXT = 23,
    /// The handle is in use by another call (on another thread, or a callback calling
    /// back into the handle it was called from); nothing was done. Retry later.
    GRADSTEP_BUSY = 24,
    /// Scalar state that no run of steps produces, after step 0 (NAdam's `mu_product`
    /// outside [0, 1], ASGD's `eta` not finite and ≥ 0 or `mu` outside (0, 1]): stepped,
    /// every later step would be silently wrong. Keep the struct a step or a
    /// checkpoint wrote; at step 0 these fields are ignored.
    GRADSTEP_INVALID_SCALAR_STATE = 25,
    /// The optimizer handle has no param group of that index (before session 23:
    /// `GRADSTEP_LENGTH_MISMATCH`).
    GRADSTEP_NO_SUCH_GROUP = 26,
}

pub use gradstep_status::*;

/// The status of a kernel error; the conversion also [`note`]s the error's message
/// (`"invalid hyperparameter lr = -1: must be finite and >= 0"`) for
/// `gradstep_last_error`, so every `?` on a kernel result carries its detail.
impl From<Error> for gradstep_status {
    fn from(e: Error) -> Self {
        note(status_of(e), e)
    }
}

/// The status of a kernel error.
fn status_of(e: Error) -> gradstep_status {
    match e {
        Error::LengthMismatch { .. } => GRADSTEP_LENGTH_MISMATCH,
        Error::StateSlots { .. } | Error::FlatStateLength { .. } => GRADSTEP_STATE_LAYOUT,
        Error::InvalidHyperparameter { .. } => GRADSTEP_INVALID_HYPERPARAMETER,
        Error::StepOverflow => GRADSTEP_STEP_OVERFLOW,
        Error::InvalidScalarState { .. } => GRADSTEP_INVALID_SCALAR_STATE,
        Error::NonFiniteNorm { .. } => GRADSTEP_NON_FINITE_NORM,
        Error::ScheduleFinished { .. } => GRADSTEP_SCHEDULE_FINISHED,
        Error::Checkpoint(c) => match c {
            CheckpointError::BufferTooSmall { .. } => GRADSTEP_BUFFER_TOO_SMALL,
            // A length computed from lengths overflows: no buffer is at fault.
            CheckpointError::TooLarge => GRADSTEP_LENGTH_TOO_LARGE,
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

/// The one table of statuses and their messages. It is a `match` on the enum, so a
/// variant without its row does not compile; [`gradstep_status::message`] and
/// [`gradstep_status::from_u32`] both expand from it.
macro_rules! table {
    ($($status:ident => $message:literal,)*) => {
        impl gradstep_status {
            /// Every status, in number order.
            pub const ALL: &'static [gradstep_status] = &[$($status),*];

            /// A short English description, NUL-terminated for C.
            pub const fn message(self) -> &'static core::ffi::CStr {
                match self {
                    $($status => $message,)*
                }
            }

            /// The status numbered `code`, if there is one.
            pub const fn from_u32(code: u32) -> Option<gradstep_status> {
                $(if code == $status as u32 {
                    return Some($status);
                })*
                None
            }
        }
    };
}

table! {
    GRADSTEP_OK => c"ok",
    GRADSTEP_NULL_POINTER => c"null pointer",
    GRADSTEP_MISALIGNED_POINTER => c"misaligned pointer",
    GRADSTEP_LENGTH_MISMATCH => c"buffer length does not match the parameters",
    GRADSTEP_STATE_LAYOUT => c"wrong number or length of state buffers",
    GRADSTEP_INVALID_HYPERPARAMETER => c"invalid hyperparameter",
    GRADSTEP_STEP_OVERFLOW => c"step counter overflow",
    GRADSTEP_NON_FINITE_NORM => c"non-finite gradient norm",
    GRADSTEP_SCHEDULE_FINISHED => c"schedule finished",
    GRADSTEP_UNKNOWN_KIND => c"unknown rule, schedule or option",
    GRADSTEP_INVALID_HANDLE => c"invalid handle",
    GRADSTEP_BUFFER_TOO_SMALL => c"buffer too small",
    GRADSTEP_BAD_CHECKPOINT => c"bad checkpoint",
    GRADSTEP_OUT_OF_MEMORY => c"out of memory",
    GRADSTEP_INTERNAL_ERROR => c"internal error",
    GRADSTEP_OVERLAPPING_BUFFERS => c"overlapping buffers",
    GRADSTEP_CHECKPOINT_VERSION => c"unsupported checkpoint version",
    GRADSTEP_CHECKPOINT_WRONG_RULE => c"checkpoint is of another rule",
    GRADSTEP_CHECKPOINT_WRONG_TYPE => c"checkpoint is of another element type",
    GRADSTEP_WRONG_RULE => c"hyperparameters of another rule",
    GRADSTEP_WRONG_ELEMENT_TYPE => c"buffers of another element type",
    GRADSTEP_CHECKPOINT_MISMATCH => c"checkpoint is of an optimizer of another shape",
    GRADSTEP_LENGTH_TOO_LARGE => c"length too large",
    GRADSTEP_BAD_RULE_TEXT => c"bad rule text",
    GRADSTEP_BUSY => c"handle busy in another call",
    GRADSTEP_INVALID_SCALAR_STATE => c"scalar state that no step produces",
    GRADSTEP_NO_SUCH_GROUP => c"no such param group",
}

/// A short English description of `status`, as a static NUL-terminated string; never
/// NULL (unknown numbers give "unknown status").
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_status_str(status: u32) -> *const c_char {
    match gradstep_status::from_u32(status) {
        Some(s) => s.message().as_ptr(),
        None => c"unknown status".as_ptr(),
    }
}

/// The message of this thread's last refused call, as the Rust side words it, with the
/// numbers: `"invalid hyperparameter lr = -1: must be finite and >= 0"`, `"state
/// length 7, expected 8 (2 slots × 4)"` (UTF-8). It is thread-local: a call on another
/// thread never changes it.
///
/// Every function that returns a `gradstep_status` sets it: to the refusal's message
/// when it returns anything but `GRADSTEP_OK` (the status's own `gradstep_status_str`
/// text when there is nothing more to say, e.g. `"null pointer"`), and to the empty
/// string when it returns `GRADSTEP_OK`. Functions that return no status
/// (`gradstep_version`, `gradstep_status_str`, `gradstep_rule_name`,
/// `gradstep_schedule_default`, this one) leave it as it is. So read it right after
/// the call that failed, before any other gradstep call on the same thread.
///
/// Works like `snprintf`: copies at most `len - 1` bytes of the message (cut at a
/// character boundary) into `buf` and a terminating NUL, writes nothing when `buf` is
/// NULL or `len` is 0, never writes past `len`, and returns the full message length
/// in bytes (without the NUL). A result `>= len` means the message was cut:
/// `gradstep_last_error(NULL, 0) + 1` bytes always hold it.
///
/// # Safety
/// `buf` must be NULL or valid for writes of `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gradstep_last_error(buf: *mut c_char, len: usize) -> usize {
    // SAFETY: the caller's contract, forwarded.
    unsafe { crate::boundary::last_error(buf.cast(), len) }
}
