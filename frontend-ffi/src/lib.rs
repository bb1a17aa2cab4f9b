//! The C ABI over the gradstep kernels (`libgradstep.a`, `libgradstep.so`), described by
//! the generated header `include/gradstep.h`.
//!
//! Every exported function returns a [`gradstep_status`] (or a value that cannot fail),
//! checks every pointer (NULL, alignment) before use, and catches panics, so that no
//! input can crash the host process or unwind into C.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(non_camel_case_types)]

// The kernel crate, depended on as `kernels` (see Cargo.toml), under its own name.
extern crate kernels as gradstep;

mod boundary;
pub mod buffers;
pub mod checkpoint;
pub mod optimizer;
mod registry;
pub mod rules;
pub mod schedules;
pub mod status;
pub mod training;

use core::ffi::c_char;

pub use status::gradstep_status;

/// The library version as a NUL-terminated string (`"0.1.0"`), valid for the life of
/// the process. Never NULL. Compare with the header's `GRADSTEP_VERSION_STRING` to
/// detect a header/library mismatch.
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

    #[test]
    fn every_status_has_its_own_text_and_number() {
        let mut seen = std::collections::HashSet::new();
        for (k, &status) in status::gradstep_status::ALL.iter().enumerate() {
            let code = status as u32;
            // Numbers are dense and never reused: the table is in number order.
            assert_eq!(code as usize, k, "{status:?}");
            assert_eq!(status::gradstep_status::from_u32(code), Some(status));
            // SAFETY: gradstep_status_str returns a static NUL-terminated string.
            let s = unsafe { core::ffi::CStr::from_ptr(status::gradstep_status_str(code)) };
            assert_eq!(s, status.message());
            let s = s.to_str().unwrap();
            assert_ne!(s, "unknown status", "code {code}");
            assert!(seen.insert(s.to_owned()), "code {code} repeats {s}");
        }
        let after = status::gradstep_status::ALL.len() as u32;
        assert_eq!(status::gradstep_status::from_u32(after), None);
        for code in [after, 9999, u32::MAX] {
            // SAFETY: as above.
            let unknown = unsafe { core::ffi::CStr::from_ptr(status::gradstep_status_str(code)) };
            assert_eq!(unknown.to_str(), Ok("unknown status"));
        }
    }
}
