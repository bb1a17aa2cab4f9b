//! With the allocator refusing every request, the C boundary still returns a status:
//! the refusal's message (which needs memory) is cut short or left out, never an abort
//! (Rust's infallible allocations abort the process on failure, which no
//! `catch_unwind` stops). A global allocator that fails on request, on this thread only.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::ptr;
use std::alloc::System;

use gradstep::buffers::{gradstep_buffer_free, gradstep_buffer_new_f32};
use gradstep::rules::{gradstep_rule, gradstep_rule_parse};
use gradstep::status::*;

struct Failing;

/// Which of this thread's allocations fail.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    None,
    All,
    /// Those aligned to less than a page: every one but a buffer's own.
    Small,
}

thread_local! {
    static FAIL: Cell<Mode> = const { Cell::new(Mode::None) };
}

fn fails(layout: Layout) -> bool {
    match FAIL.try_with(Cell::get).unwrap_or(Mode::None) {
        Mode::None => false,
        Mode::All => true,
        Mode::Small => layout.align() < 4096,
    }
}

// SAFETY: System's allocator, or NULL (a refusal) while the thread asks for it.
unsafe impl GlobalAlloc for Failing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if fails(layout) {
            return ptr::null_mut();
        }
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { System.dealloc(p, layout) }
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        if fails(layout) {
            return ptr::null_mut();
        }
        // SAFETY: forwarded.
        unsafe { System.realloc(p, layout, size) }
    }
}

#[global_allocator]
static ALLOC: Failing = Failing;

/// Runs `f` with this thread's allocations of `mode` failing.
fn starved<R>(mode: Mode, f: impl FnOnce() -> R) -> R {
    FAIL.set(mode);
    let r = f();
    FAIL.set(Mode::None);
    r
}

fn last_error() -> String {
    // SAFETY: NULL with length 0 only asks for the length.
    let len = unsafe { gradstep_last_error(ptr::null_mut(), 0) };
    let mut buf = vec![0u8; len + 1];
    // SAFETY: `buf` holds `len + 1` bytes.
    unsafe { gradstep_last_error(buf.as_mut_ptr().cast(), buf.len()) };
    buf.pop();
    String::from_utf8(buf).unwrap()
}

#[test]
fn refusals_without_memory_return_their_status() {
    let parse = || {
        let mut rule = core::mem::MaybeUninit::<gradstep_rule>::zeroed();
        // SAFETY: a NUL-terminated text and a valid out pointer.
        unsafe { gradstep_rule_parse(c"adam:lx=1".as_ptr(), rule.as_mut_ptr()) }
    };
    assert_eq!(parse(), GRADSTEP_BAD_RULE_TEXT);
    let full = last_error();
    assert!(full.contains("unknown field 'lx'"), "{full}");
    // The same refusal, its message formatted into memory there is none of: the status
    // all the same, the message cut short (here: empty).
    assert_eq!(starved(Mode::All, parse), GRADSTEP_BAD_RULE_TEXT);
    let cut = last_error();
    assert!(full.starts_with(&cut), "{cut:?}");
    assert_eq!(parse(), GRADSTEP_BAD_RULE_TEXT);
    assert_eq!(last_error(), full);

    // No memory for a buffer.
    let mut out = ptr::null_mut::<f32>();
    // SAFETY: a valid out pointer.
    let status = starved(Mode::All, || unsafe {
        gradstep_buffer_new_f32(1000, &mut out)
    });
    assert_eq!(status, GRADSTEP_OUT_OF_MEMORY);
    assert!(out.is_null(), "a refusal wrote *out");
    // Memory for the buffers but not for the table that records them: each is
    // recorded while the table has room, then refused (and freed) when it must grow.
    let mut made = Vec::new();
    let refused = loop {
        let mut p = ptr::null_mut::<f32>();
        // SAFETY: a valid out pointer.
        let s = starved(Mode::Small, || unsafe {
            gradstep_buffer_new_f32(1, &mut p)
        });
        match s {
            GRADSTEP_OK => made.push(p),
            s => break (s, p),
        }
        assert!(made.len() < 1 << 16, "the table never grew");
    };
    assert_eq!(refused, (GRADSTEP_OUT_OF_MEMORY, ptr::null_mut()));
    for p in made {
        // SAFETY: each from gradstep_buffer_new_f32, freed once.
        assert_eq!(unsafe { gradstep_buffer_free(p.cast()) }, GRADSTEP_OK);
    }
}
