//! The C ABI over the gradstep kernels (`libgradstep.a`, `libgradstep.so`).
//!
//! This crate is the home of the C interface; the generated header
//! `include/gradstep.h`, the status codes, the allocation-free and handle-based APIs and
//! checkpoints arrive with the C ABI issue. Today it exports the library version.

#![deny(missing_docs)]

use core::ffi::c_char;

/// The library version as a NUL-terminated string (`"0.1.0"`), valid for the life of
/// the process. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn gradstep_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_crate_version() {
        // SAFETY: gradstep_version returns a static NUL-terminated string.
        let v = unsafe { core::ffi::CStr::from_ptr(gradstep_version()) };
        assert_eq!(v.to_str(), Ok(env!("CARGO_PKG_VERSION")));
    }
}
