//! `gradstep_last_error`: every refusal leaves the Rust error's message, with its
//! numbers, for the thread that made the call; a success empties it; the copy works as
//! `snprintf` does and never writes past the length given.

use core::ffi::c_char;
use core::ptr;

use gradstep::optimizer::{
    gradstep_optimizer_free, gradstep_optimizer_new, gradstep_optimizer_set_lr,
};
use gradstep::rules::{
    GRADSTEP_F32, GRADSTEP_RULE_ADAM, gradstep_rule, gradstep_rule_default, gradstep_rule_parse,
    gradstep_rule_step_f32, gradstep_scalars,
};
use gradstep::status::*;
use kernels::rules::AnyRule;

/// The thread's last error, read with a buffer of exactly the right size.
fn last_error() -> String {
    // SAFETY: NULL with length 0 only asks for the length.
    let len = unsafe { gradstep_last_error(ptr::null_mut(), 0) };
    let mut buf = vec![0x55u8; len + 1];
    // SAFETY: `buf` holds `len + 1` bytes.
    let again = unsafe { gradstep_last_error(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(again, len);
    assert_eq!(buf[len], 0, "not NUL-terminated");
    buf.pop();
    String::from_utf8(buf).expect("the message is UTF-8")
}

fn adam() -> gradstep_rule {
    let mut r = core::mem::MaybeUninit::<gradstep_rule>::zeroed();
    // SAFETY: a valid pointer to write to.
    let status = unsafe { gradstep_rule_default(GRADSTEP_RULE_ADAM, r.as_mut_ptr()) };
    assert_eq!(status, GRADSTEP_OK);
    // SAFETY: written by gradstep_rule_default.
    unsafe { r.assume_init() }
}

/// One Adam step over 4 params with a state of `state_len` floats.
fn step(rule: &gradstep_rule, state_len: usize) -> gradstep_status {
    let mut scalars = gradstep_scalars::default();
    let (mut p, g, mut s) = ([1f32; 4], [0.5f32; 4], vec![0f32; state_len]);
    // SAFETY: every buffer valid for the lengths given.
    unsafe {
        gradstep_rule_step_f32(
            rule,
            &mut scalars,
            p.as_mut_ptr(),
            g.as_ptr(),
            4,
            s.as_mut_ptr(),
            s.len(),
        )
    }
}

#[test]
fn a_refused_hyperparameter_says_which_value_and_why() {
    let mut rule = adam();
    rule.params.adam.lr = -1.0;
    assert_eq!(step(&rule, 8), GRADSTEP_INVALID_HYPERPARAMETER);
    assert_eq!(
        last_error(),
        "invalid hyperparameter lr = -1: must be finite and >= 0"
    );
}

#[test]
fn a_wrong_state_length_says_the_length_expected_and_its_factors() {
    assert_eq!(step(&adam(), 7), GRADSTEP_STATE_LAYOUT);
    assert_eq!(
        last_error(),
        "state length 7, expected 8 (2 slots \u{d7} 4)"
    );
    let mut amsgrad = adam();
    amsgrad.params.adam.amsgrad = 1;
    assert_eq!(step(&amsgrad, 8), GRADSTEP_STATE_LAYOUT);
    assert_eq!(
        last_error(),
        "state length 8, expected 12 (3 slots \u{d7} 4)"
    );
}

#[test]
fn a_success_empties_it_and_calls_without_a_status_leave_it() {
    assert_eq!(step(&adam(), 7), GRADSTEP_STATE_LAYOUT);
    let message = last_error();
    assert!(!message.is_empty());
    // Reading it, and the functions that return no status, do not change it.
    assert_eq!(last_error(), message);
    assert!(!gradstep_status_str(3).is_null());
    assert!(!gradstep::gradstep_version().is_null());
    assert!(!gradstep::rules::gradstep_rule_name(GRADSTEP_RULE_ADAM).is_null());
    assert_eq!(last_error(), message);
    assert_eq!(step(&adam(), 8), GRADSTEP_OK);
    assert_eq!(last_error(), "");
}

#[test]
fn refusals_without_more_detail_give_the_status_message() {
    // SAFETY: NULL is refused before anything is read or written.
    let status = unsafe { gradstep_rule_default(GRADSTEP_RULE_ADAM, ptr::null_mut()) };
    assert_eq!(status, GRADSTEP_NULL_POINTER);
    assert_eq!(last_error(), "null pointer");
    let mut r = adam();
    // SAFETY: a valid pointer.
    assert_eq!(
        unsafe { gradstep_rule_default(9999, &mut r) },
        GRADSTEP_UNKNOWN_KIND
    );
    assert_eq!(last_error(), "unknown rule, schedule or option");
}

/// `gradstep_rule_parse` gives the CLI's message: the kernel's `SpecError` text.
#[test]
fn a_rule_text_that_does_not_parse_gives_the_parser_message() {
    for (text, status) in [
        ("adam:lx=1", GRADSTEP_BAD_RULE_TEXT),
        ("adma", GRADSTEP_UNKNOWN_KIND),
        ("adam:lr=-1", GRADSTEP_INVALID_HYPERPARAMETER),
        ("adam:amsgrad=2", GRADSTEP_BAD_RULE_TEXT),
    ] {
        let expected = AnyRule::parse(text).unwrap_err().to_string();
        let c = std::ffi::CString::new(text).unwrap();
        let mut r = adam();
        // SAFETY: a NUL-terminated string and a valid output.
        assert_eq!(unsafe { gradstep_rule_parse(c.as_ptr(), &mut r) }, status);
        assert_eq!(last_error(), expected, "{text}");
    }
    // The messages name what is wrong.
    let c = c"adam:lx=1";
    let mut r = adam();
    // SAFETY: as above.
    unsafe { gradstep_rule_parse(c.as_ptr(), &mut r) };
    assert!(last_error().contains("lx"), "{}", last_error());
}

#[test]
fn handle_refusals_give_the_optimizer_message() {
    let mut opt = ptr::null_mut();
    // SAFETY: valid pointers.
    assert_eq!(
        unsafe { gradstep_optimizer_new(&adam(), GRADSTEP_F32, &mut opt) },
        GRADSTEP_OK
    );
    // SAFETY: a live handle.
    let status = unsafe { gradstep_optimizer_set_lr(opt, 5, 0.1) };
    assert_eq!(status, GRADSTEP_NO_SUCH_GROUP);
    assert_eq!(last_error(), "no param group 5");
    // SAFETY: a live handle.
    let status = unsafe { gradstep_optimizer_set_lr(opt, 0, f64::NAN) };
    assert_eq!(status, GRADSTEP_INVALID_HYPERPARAMETER);
    assert!(last_error().contains("lr = NaN"), "{}", last_error());
    // SAFETY: a live handle, freed once.
    assert_eq!(unsafe { gradstep_optimizer_free(opt) }, GRADSTEP_OK);
    assert_eq!(last_error(), "");
}

#[test]
fn the_copy_works_as_snprintf() {
    assert_eq!(step(&adam(), 7), GRADSTEP_STATE_LAYOUT);
    let full = "state length 7, expected 8 (2 slots \u{d7} 4)";
    // Length 0, or NULL: nothing written, full length returned.
    let mut buf = [0x55u8; 64];
    // SAFETY: `buf` is valid for 0 bytes.
    assert_eq!(
        unsafe { gradstep_last_error(buf.as_mut_ptr().cast(), 0) },
        full.len()
    );
    assert!(buf.iter().all(|&b| b == 0x55));
    // SAFETY: NULL is never written.
    assert_eq!(
        unsafe { gradstep_last_error(ptr::null_mut(), 9) },
        full.len()
    );
    // Length 6: five bytes and the NUL, nothing beyond.
    // SAFETY: `buf` is valid for 6 bytes.
    assert_eq!(
        unsafe { gradstep_last_error(buf.as_mut_ptr().cast(), 6) },
        full.len()
    );
    assert_eq!(&buf[..6], b"state\0");
    assert!(buf[6..].iter().all(|&b| b == 0x55));
    // A cut inside the two bytes of '×' keeps the text UTF-8: the cut moves before it.
    let cut = full.find('\u{d7}').unwrap() + 1;
    let mut buf = [0x55u8; 64];
    // SAFETY: `buf` is valid for `cut + 1 <= 64` bytes.
    unsafe { gradstep_last_error(buf.as_mut_ptr().cast::<c_char>(), cut + 1) };
    let nul = buf.iter().position(|&b| b == 0).unwrap();
    assert_eq!(nul, cut - 1);
    assert_eq!(std::str::from_utf8(&buf[..nul]), Ok(&full[..cut - 1]));
    // Exactly the length plus one: the whole message.
    let mut buf = vec![0x55u8; full.len() + 1];
    // SAFETY: `buf` holds `full.len() + 1` bytes.
    unsafe { gradstep_last_error(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(&buf[..full.len()], full.as_bytes());
    assert_eq!(buf[full.len()], 0);
}

#[test]
fn each_thread_has_its_own() {
    assert_eq!(step(&adam(), 7), GRADSTEP_STATE_LAYOUT);
    let mine = last_error();
    std::thread::spawn(|| {
        // A fresh thread has no message, and its refusal is its own.
        assert_eq!(last_error(), "");
        let mut rule = adam();
        rule.params.adam.lr = -1.0;
        assert_eq!(step(&rule, 8), GRADSTEP_INVALID_HYPERPARAMETER);
        assert!(last_error().starts_with("invalid hyperparameter lr"));
    })
    .join()
    .unwrap();
    assert_eq!(last_error(), mine);
}
