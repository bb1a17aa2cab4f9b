//! Every output of a C function is disjoint from everything the call reads and from
//! every other output: placed over an input (a buffer, an array of pointers or lengths,
//! a struct such as the rule, a config or the scalar state, the text of a spec) or over
//! another output, the call is refused with `GRADSTEP_OVERLAPPING_BUFFERS` and writes
//! nothing.
//!
//! Written first (session 22, from a hostile C caller's report): every case below was
//! accepted before. Two of them corrupted the caller's memory with `GRADSTEP_OK`: an
//! accumulator inside the buffer `_finish` divides was overwritten with its reset count,
//! and one over the lengths array was incremented as if it were the count.

use core::mem::{MaybeUninit, align_of, size_of};
use core::ptr;

use gradstep::checkpoint::{
    gradstep_checkpoint_info, gradstep_checkpoint_len, gradstep_checkpoint_peek,
    gradstep_checkpoint_save_f32,
};
use gradstep::optimizer::{
    gradstep_lookahead, gradstep_lookahead_parse, gradstep_optimizer, gradstep_optimizer_add_group,
    gradstep_optimizer_free, gradstep_optimizer_new, gradstep_optimizer_new_lookahead,
};
use gradstep::rules::{
    GRADSTEP_F32, GRADSTEP_RULE_ADAM, gradstep_rule, gradstep_rule_default, gradstep_rule_parse,
    gradstep_rule_state_len, gradstep_rule_step_f32, gradstep_rule_step_scratch_f32,
    gradstep_scalars,
};
use gradstep::schedules::{
    GRADSTEP_SCHEDULE_EXPONENTIAL, gradstep_schedule, gradstep_schedule_config,
    gradstep_schedule_default, gradstep_schedule_free, gradstep_schedule_lr, gradstep_schedule_new,
    gradstep_schedule_new_chained, gradstep_schedule_new_sequential,
};
use gradstep::status::*;
use gradstep::training::*;

/// Caller memory in which any struct can be placed over any other at a given byte
/// offset (aligned for every type used here). Reached only through one raw pointer,
/// as C memory is: every pointer handed out stays valid (Miri runs these tests).
struct Arena(*mut [u64; 512]);

/// 64-byte alignment for the arena's words.
#[repr(C, align(64))]
struct Words([u64; 512]);

impl Arena {
    fn new() -> Arena {
        // Something other than zeros, so that any write shows.
        let mut words = Box::new(Words([0; 512]));
        for (i, w) in words.0.iter_mut().enumerate() {
            *w = 0x3FF0_0000_0000_0000 | i as u64;
        }
        Arena(Box::into_raw(words).cast())
    }

    /// A pointer to a `T` at byte offset `off` (aligned for `T`).
    fn at<T>(&self, off: usize) -> *mut T {
        assert_eq!(off % align_of::<T>(), 0);
        assert!(off + size_of::<T>() <= size_of::<Words>());
        // SAFETY: in bounds (checked).
        unsafe { self.0.cast::<u8>().add(off).cast() }
    }

    /// Places `value` at byte offset `off`, returning its pointer.
    fn put<T>(&self, off: usize, value: T) -> *mut T {
        let p = self.at::<T>(off);
        // SAFETY: in bounds and aligned (`at`).
        unsafe { p.write(value) };
        p
    }

    fn bytes(&self) -> Vec<u8> {
        // SAFETY: the arena's words, read through its pointer.
        let words = unsafe { self.0.read() };
        words.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: from `Box::into_raw` in `new`, dropped once.
        drop(unsafe { Box::from_raw(self.0.cast::<Words>()) });
    }
}

/// Runs `call` over the arena and asserts it is refused as overlapping and that the
/// arena is exactly as before.
fn refused(what: &str, arena: &Arena, call: impl FnOnce() -> gradstep_status) {
    let before = arena.bytes();
    let status = call();
    assert_eq!(status, GRADSTEP_OVERLAPPING_BUFFERS, "{what}");
    assert!(arena.bytes() == before, "{what}: a refused call wrote");
}

fn adam() -> gradstep_rule {
    let mut r = MaybeUninit::<gradstep_rule>::zeroed();
    // SAFETY: a valid out pointer.
    assert_eq!(
        unsafe { gradstep_rule_default(GRADSTEP_RULE_ADAM, r.as_mut_ptr()) },
        GRADSTEP_OK
    );
    // SAFETY: written above.
    unsafe { r.assume_init() }
}

#[test]
fn accumulators_overlap_nothing_they_read_or_write() {
    // SAFETY (whole test): every pointer is into the arena, aligned, and valid for the
    // lengths passed.
    unsafe {
        // `_finish` with the accumulator inside the buffer it divides, over the lengths
        // array, and over the pointer array.
        for acc_at in [24usize, 512, 520] {
            // The accumulator first: where it lies under an array, its count is the
            // array's element.
            let a = Arena::new();
            let acc = a.put(acc_at, gradstep_accumulator { count: 2 });
            let buf = a.at::<f64>(0);
            let ptrs = a.put::<[*mut f64; 1]>(520, [buf]);
            let lens = a.put::<[usize; 1]>(512, [4]);
            refused(&format!("finish, acc at {acc_at}"), &a, || {
                gradstep_accumulate_finish_f64(acc, ptrs.cast(), lens.cast(), 1, 1)
            });
        }
        // Accumulating, with the accumulator over the lengths, either pointer array,
        // or a gradient (read).
        for acc_at in [512usize, 528, 536, 256] {
            let a = Arena::new();
            let acc = a.put(acc_at, gradstep_accumulator { count: 0 });
            let (buf, grad) = (a.at::<f32>(0), a.at::<f32>(256));
            let lens = a.put::<[usize; 1]>(512, [4]);
            let bufs = a.put::<[*mut f32; 1]>(528, [buf]);
            let grads = a.put::<[*const f32; 1]>(536, [grad.cast_const()]);
            refused(&format!("accumulate, acc at {acc_at}"), &a, || {
                gradstep_accumulate_f32(acc, bufs.cast(), grads.cast(), lens.cast(), 1)
            });
        }
    }
}

#[test]
fn norms_and_flags_are_not_written_over_what_they_read() {
    // SAFETY (whole test): as above.
    unsafe {
        // Outputs over a gradient, the lengths array, or the pointer array; each case
        // in fresh memory.
        let grads = |a: &Arena| {
            let g = a.at::<f64>(0);
            let ptrs = a.put::<[*const f64; 1]>(520, [g.cast_const()]);
            let lens = a.put::<[usize; 1]>(512, [4]);
            (ptrs.cast::<*const f64>(), lens.cast::<usize>())
        };
        for out_at in [0usize, 512, 520] {
            let a = Arena::new();
            let (ptrs, lens) = grads(&a);
            let out = a.at::<f64>(out_at);
            refused(&format!("total norm at {out_at}"), &a, || {
                gradstep_total_norm_f64(ptrs, lens, 1, 2.0, out)
            });
            let a = Arena::new();
            let (ptrs, lens) = grads(&a);
            let flag = a.at::<u8>(out_at + 1);
            refused(&format!("all finite at {}", out_at + 1), &a, || {
                gradstep_all_finite_f64(ptrs, lens, 1, flag)
            });
        }
        // Clipping and unscaling: the total or the flag over the lengths or the
        // pointer array (over the gradients they were refused already).
        let grads = |a: &Arena| {
            let g = a.at::<f32>(0);
            let ptrs = a.put::<[*mut f32; 1]>(520, [g]);
            let lens = a.put::<[usize; 1]>(512, [4]);
            (ptrs.cast::<*mut f32>(), lens.cast::<usize>())
        };
        for out_at in [512usize, 520] {
            let a = Arena::new();
            let (ptrs, lens) = grads(&a);
            let out = a.at::<f64>(out_at);
            refused(&format!("clip total at {out_at}"), &a, || {
                gradstep_clip_grad_norm_f32(ptrs, lens, 1, 0.1, 2.0, 0, out)
            });
            let a = Arena::new();
            let (ptrs, lens) = grads(&a);
            let flag = a.at::<u8>(out_at + 1);
            let state = a.put(
                600,
                gradstep_scaler_state {
                    scale: 2.0,
                    growth_tracker: 0,
                },
            );
            refused(&format!("unscale flag at {}", out_at + 1), &a, || {
                gradstep_grad_scaler_unscale_f32(state, ptrs, lens, 1, flag)
            });
        }
        // Unscaling gradients that hold the scaler's state (read).
        let a = Arena::new();
        let g = a.at::<f32>(0);
        let ptrs = a.put::<[*mut f32; 1]>(520, [g]);
        let lens = a.put::<[usize; 1]>(512, [4]);
        let state = a.put(
            8,
            gradstep_scaler_state {
                scale: 2.0,
                growth_tracker: 0,
            },
        );
        let flag = a.at::<u8>(600);
        refused("unscale over its state", &a, || {
            gradstep_grad_scaler_unscale_f32(state, ptrs.cast(), lens.cast(), 1, flag)
        });
        // The scaler's state written over its config.
        let a = Arena::new();
        let config = a.put(0, gradstep_grad_scaler_default());
        let state = a.at::<gradstep_scaler_state>(8);
        refused("scaler init", &a, || {
            gradstep_grad_scaler_init(config, state)
        });
        // The state over the config's last field (its interval then reads as 1.0's
        // bits, a valid one).
        let a = Arena::new();
        let config = a.put(0, gradstep_grad_scaler_default());
        let state = a.put(
            24,
            gradstep_scaler_state {
                scale: 1.0,
                growth_tracker: 0,
            },
        );
        refused("scaler update", &a, || {
            gradstep_grad_scaler_update(config, state, 1)
        });
    }
}

#[test]
fn rule_steps_write_nothing_over_the_rule() {
    let rule = adam();
    let n = 8;
    // SAFETY (whole test): as above; the state is 2n floats.
    unsafe {
        // The rule inside the params, inside the state, inside the scratch, and under
        // the scalars.
        for (rule_at, scalars_at) in [(0usize, 1024usize), (128, 1024), (2048, 1024), (1024, 1024)]
        {
            let a = Arena::new();
            let (p, g, s, u) = (
                a.at::<f32>(0),
                a.at::<f32>(512),
                a.at::<f32>(128),
                a.at::<f32>(2048),
            );
            // The scalars first: at the rule's place they begin with its bytes (step
            // 2, the kind), a state the step accepts.
            let sc = a.put(scalars_at, gradstep_scalars::default());
            let r = a.put(rule_at, rule);
            let what = format!("step, rule at {rule_at}, scalars at {scalars_at}");
            if rule_at == 2048 {
                refused(&what, &a, || {
                    gradstep_rule_step_scratch_f32(r, sc, p, g, n, s, 2 * n, u, n)
                });
            } else {
                refused(&what, &a, || {
                    gradstep_rule_step_f32(r, sc, p, g, n, s, 2 * n)
                });
            }
        }
        // The state length over the rule.
        let a = Arena::new();
        let r = a.put(0, rule);
        let out = a.at::<usize>(8);
        refused("state length", &a, || gradstep_rule_state_len(r, n, out));
    }
}

#[test]
fn specs_are_not_parsed_into_their_own_text() {
    let text = b"adam:lr=0.01\0";
    // SAFETY (whole test): the text is NUL-terminated inside the arena.
    unsafe {
        let a = Arena::new();
        let t = a.at::<u8>(8);
        ptr::copy_nonoverlapping(text.as_ptr(), t, text.len());
        let out = a.at::<gradstep_rule>(0);
        refused("rule parse", &a, || gradstep_rule_parse(t.cast(), out));
        let la_text = b"lookahead(adam):k=5\0";
        let a = Arena::new();
        let t = a.at::<u8>(64);
        ptr::copy_nonoverlapping(la_text.as_ptr(), t, la_text.len());
        let out = a.at::<gradstep_lookahead>(0);
        refused("lookahead parse", &a, || {
            gradstep_lookahead_parse(t.cast(), out)
        });
    }
}

#[test]
fn checkpoints_are_not_written_over_their_inputs() {
    let rule = adam();
    let n = 4;
    // SAFETY (whole test): as above.
    unsafe {
        let a = Arena::new();
        let r = a.put(0, rule);
        let out = a.at::<usize>(16);
        refused("checkpoint length over the rule", &a, || {
            gradstep_checkpoint_len(r, GRADSTEP_F32, n, 1, out)
        });

        // Save with the rule, or the scalars, inside the output; `written` inside the
        // rule.
        let mut len = 0;
        assert_eq!(
            gradstep_checkpoint_len(&rule, GRADSTEP_F32, n, 1, &mut len),
            GRADSTEP_OK
        );
        assert!(len < 2048, "{len}");
        for (rule_at, scalars_at, written_at) in [
            (1024usize, 3072usize, 3800usize),
            (3072, 1024, 3800),
            (3072, 3400, 3080),
        ] {
            let a = Arena::new();
            let (state, params) = (a.at::<f32>(0), a.at::<f32>(512));
            let out = a.at::<u8>(1024);
            let r = a.put(rule_at, rule);
            let sc = a.put(scalars_at, gradstep_scalars::default());
            let written = a.at::<usize>(written_at);
            refused(
                &format!("save, rule {rule_at}, scalars {scalars_at}"),
                &a,
                || gradstep_checkpoint_save_f32(r, sc, state, 2 * n, params, n, out, len, written),
            );
        }

        // Peek's answer over the bytes it reads.
        let a = Arena::new();
        let (state, params) = (a.at::<f32>(0), a.at::<f32>(512));
        let bytes = a.at::<u8>(1024);
        let mut written = 0;
        let sc = gradstep_scalars::default();
        assert_eq!(
            gradstep_checkpoint_save_f32(
                &rule,
                &sc,
                state,
                2 * n,
                params,
                n,
                bytes,
                len,
                &mut written
            ),
            GRADSTEP_OK
        );
        let info = a.at::<gradstep_checkpoint_info>(1024);
        refused("peek", &a, || {
            gradstep_checkpoint_peek(bytes, written, info)
        });
    }
}

#[test]
fn handles_are_not_written_over_their_configs() {
    let rule = adam();
    // SAFETY (whole test): as above; every handle made is freed.
    unsafe {
        let a = Arena::new();
        let r = a.put(0, rule);
        let out = a.at::<*mut gradstep_optimizer>(8);
        refused("optimizer over its rule", &a, || {
            gradstep_optimizer_new(r, GRADSTEP_F32, out)
        });

        let mut la = MaybeUninit::<gradstep_lookahead>::zeroed();
        assert_eq!(
            gradstep_lookahead_parse(c"lookahead(adam)".as_ptr(), la.as_mut_ptr()),
            GRADSTEP_OK
        );
        let a = Arena::new();
        let l = a.put(0, la.assume_init());
        let out = a.at::<*mut gradstep_optimizer>(8);
        refused("lookahead optimizer over its options", &a, || {
            gradstep_optimizer_new_lookahead(l, GRADSTEP_F32, out)
        });

        let mut opt = ptr::null_mut();
        assert_eq!(
            gradstep_optimizer_new(&rule, GRADSTEP_F32, &mut opt),
            GRADSTEP_OK
        );
        let a = Arena::new();
        let r = a.put(0, rule);
        let group = a.at::<usize>(8);
        refused("group index over its rule", &a, || {
            gradstep_optimizer_add_group(opt, r, group)
        });
        assert_eq!(gradstep_optimizer_free(opt), GRADSTEP_OK);

        let config: gradstep_schedule_config =
            gradstep_schedule_default(GRADSTEP_SCHEDULE_EXPONENTIAL);
        let a = Arena::new();
        let c = a.put(0, config);
        let out = a.at::<*mut gradstep_schedule>(8);
        refused("schedule over its config", &a, || {
            gradstep_schedule_new(c, 0.1, out)
        });
        // Composites: the handle over a member or a milestone.
        for out_at in [8usize, 2 * size_of::<gradstep_schedule_config>()] {
            let a = Arena::new();
            let members = a.put(0, [config, config]);
            let milestones = a.put(2 * size_of::<gradstep_schedule_config>(), [3u64]);
            let out = a.at::<*mut gradstep_schedule>(out_at);
            refused(&format!("sequential, out at {out_at}"), &a, || {
                gradstep_schedule_new_sequential(members.cast(), 2, milestones.cast(), 0.1, out)
            });
        }
        let a = Arena::new();
        let members = a.put(0, [config, config]);
        let out = a.at::<*mut gradstep_schedule>(8);
        refused("chained", &a, || {
            gradstep_schedule_new_chained(members.cast(), 2, 0.1, out)
        });

        // A schedule's three answers written over each other.
        let mut s = ptr::null_mut();
        assert_eq!(gradstep_schedule_new(&config, 0.1, &mut s), GRADSTEP_OK);
        let a = Arena::new();
        let (lr, has) = (a.at::<f64>(0), a.at::<u8>(16));
        refused("lr and momentum at one place", &a, || {
            gradstep_schedule_lr(s, lr, lr, has)
        });
        let a = Arena::new();
        let (lr, momentum, has) = (a.at::<f64>(0), a.at::<f64>(8), a.at::<u8>(16));
        refused("the flag inside the lr", &a, || {
            gradstep_schedule_lr(s, lr, momentum, lr.cast())
        });
        assert_eq!(gradstep_schedule_lr(s, lr, momentum, has), GRADSTEP_OK);
        assert_eq!(*lr, 0.1);
        assert_eq!(gradstep_schedule_free(s), GRADSTEP_OK);
    }
}
