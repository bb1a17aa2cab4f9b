//! With the allocator refusing, the C boundary still returns a status: never an abort
//! (Rust's infallible allocations abort the process on failure, which no
//! `catch_unwind` stops). A global allocator that fails on request, on this thread only:
//! every allocation, the small ones, or the k-th of a whole C session (one child process
//! per k, each of which must end the session with the bits of a session that never
//! failed).

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::mem::MaybeUninit;
use core::ptr;
use std::alloc::System;

use gradstep::buffers::{gradstep_buffer_free, gradstep_buffer_new_f32};
use gradstep::optimizer::*;
use gradstep::rules::*;
use gradstep::schedules::*;
use gradstep::status::*;
use gradstep::training::{gradstep_clip_grad_norm_f32, gradstep_total_norm_f32};

struct Failing;

/// Which of this thread's allocations fail.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    None,
    All,
    /// Those aligned to less than a page: every one but a buffer's own.
    Small,
    /// The next one after this many more succeed (then `None`).
    After(usize),
}

thread_local! {
    static FAIL: Cell<Mode> = const { Cell::new(Mode::None) };
}

fn fails(layout: Layout) -> bool {
    FAIL.try_with(|f| match f.get() {
        Mode::None => false,
        Mode::All => true,
        Mode::Small => layout.align() < 4096,
        Mode::After(0) => {
            f.set(Mode::None);
            true
        }
        Mode::After(k) => {
            f.set(Mode::After(k - 1));
            false
        }
    })
    .unwrap_or(false)
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
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if fails(layout) {
            return ptr::null_mut();
        }
        // SAFETY: forwarded.
        unsafe { System.alloc_zeroed(layout) }
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

/// A session's C calls: each made under the countdown (`Mode::After`) until its
/// allocation is refused, and a call refused for memory made again with memory (which
/// must then succeed: the refusal changed nothing). `GS_TRACE=1` names each call on
/// stderr, to find the one that aborted.
struct Session {
    armed: Option<usize>,
    /// The countdown's allocation was reached and refused.
    refused: bool,
}

impl Session {
    fn call(&mut self, what: &str, mut f: impl FnMut() -> gradstep_status) {
        let status = match self.armed {
            Some(k) if !self.refused => {
                if std::env::var_os("GS_TRACE").is_some() {
                    eprintln!("call {what}");
                }
                FAIL.set(Mode::After(k));
                let status = f();
                match FAIL.replace(Mode::None) {
                    Mode::After(left) => self.armed = Some(left),
                    _ => self.refused = true,
                }
                status
            }
            _ => f(),
        };
        match status {
            GRADSTEP_OK => {}
            GRADSTEP_OUT_OF_MEMORY if self.refused => {
                assert_eq!(f(), GRADSTEP_OK, "{what}, again after a refusal for memory");
            }
            s => panic!("{what}: status {s:?}"),
        }
    }
}

/// A C session over every kind of handle and the calls that allocate: two optimizers
/// (one a Lookahead composite, f64) with groups, tensors, schedules from configs and
/// from handles (one a SequentialLR), steps, schedule steps, a learning rate set, and
/// checkpoints saved and loaded; schedule handles stepped; a buffer; clipping. Returns
/// the bits it ends with (params, learning rates, checkpoints).
fn session(s: &mut Session) -> Vec<u64> {
    let mut bits = Vec::new();
    let parse = |text: &core::ffi::CStr| {
        let mut rule = MaybeUninit::<gradstep_rule>::zeroed();
        // SAFETY: a NUL-terminated text and a valid out pointer.
        assert_eq!(
            unsafe { gradstep_rule_parse(text.as_ptr(), rule.as_mut_ptr()) },
            GRADSTEP_OK
        );
        // SAFETY: written by the parse.
        unsafe { rule.assume_init() }
    };
    let adam = parse(c"adam:lr=1e-2,amsgrad=true");
    let mut params = [vec![0.5f32; 40], vec![-0.25f32; 24]];
    let grads = [vec![0.1f32; 40], vec![-0.3f32; 24]];
    let mut cosine = gradstep_schedule_default(GRADSTEP_SCHEDULE_COSINE);
    cosine.params.cosine.t_max = 10;
    let plateau = gradstep_schedule_default(GRADSTEP_SCHEDULE_PLATEAU);
    let mut members = [
        gradstep_schedule_default(GRADSTEP_SCHEDULE_LINEAR),
        gradstep_schedule_default(GRADSTEP_SCHEDULE_EXPONENTIAL),
    ];
    members[0].params.linear.total_iters = 2;
    members[1].params.exponential.gamma = 0.5;
    let milestones = [2u64];
    // SAFETY (every call below): live handles, valid pointers and lengths.
    unsafe {
        let mut a = ptr::null_mut();
        s.call("new", || {
            gradstep_optimizer_new(&adam, GRADSTEP_F32, &mut a)
        });
        let mut group = 0usize;
        s.call("group", || {
            gradstep_optimizer_add_group(a, &adam, &mut group)
        });
        let [p0, p1] = &mut params;
        s.call("params 0", || {
            gradstep_optimizer_add_params_f32(a, 0, p0.as_mut_ptr(), grads[0].as_ptr(), 40)
        });
        s.call("params 1", || {
            gradstep_optimizer_add_params_f32(a, 1, p1.as_mut_ptr(), grads[1].as_ptr(), 24)
        });
        s.call("threads", || gradstep_optimizer_set_threads(a, 1));
        s.call("step", || gradstep_optimizer_step(a));
        s.call("set lr", || gradstep_optimizer_set_lr(a, 1, 0.05));
        s.call("attach", || {
            gradstep_optimizer_attach_schedule(a, 0, &cosine)
        });
        s.call("attach plateau", || {
            gradstep_optimizer_attach_schedule(a, 1, &plateau)
        });
        for epoch in 0..3 {
            s.call("step", || gradstep_optimizer_step(a));
            s.call("schedule step", || gradstep_optimizer_schedule_step(a));
            s.call("metric step", || {
                gradstep_optimizer_schedule_step_metric(a, 1.0 + epoch as f64)
            });
        }
        let mut len = 0usize;
        s.call("len", || gradstep_optimizer_checkpoint_len(a, &mut len));
        let mut bytes = vec![0u8; len];
        let mut written = 0;
        s.call("save", || {
            gradstep_optimizer_checkpoint_save(a, bytes.as_mut_ptr(), len, &mut written)
        });
        s.call("step", || gradstep_optimizer_step(a));
        s.call("load", || {
            gradstep_optimizer_checkpoint_load(a, bytes.as_ptr(), written)
        });
        s.call("step", || gradstep_optimizer_step(a));
        bits.extend(bytes.iter().map(|&b| u64::from(b)));
        for g in 0..2 {
            let mut lr = 0.0;
            s.call("lr", || gradstep_optimizer_lr(a, g, &mut lr));
            bits.push(lr.to_bits());
        }

        let mut la = MaybeUninit::<gradstep_lookahead>::zeroed();
        let text = c"lookahead(sgd:lr=0.1,momentum=0.9):k=3";
        assert_eq!(
            gradstep_lookahead_parse(text.as_ptr(), la.as_mut_ptr()),
            GRADSTEP_OK
        );
        let la = la.assume_init();
        let mut b = ptr::null_mut();
        s.call("new lookahead", || {
            gradstep_optimizer_new_lookahead(&la, GRADSTEP_F64, &mut b)
        });
        let mut weights = vec![1.0f64; 33];
        let dw: Vec<f64> = (0..33).map(|i| f64::from(i) * 0.01 - 0.1).collect();
        s.call("params f64", || {
            gradstep_optimizer_add_params_f64(b, 0, weights.as_mut_ptr(), dw.as_ptr(), 33)
        });
        let mut sched = ptr::null_mut();
        s.call("sequential", || {
            gradstep_schedule_new_sequential(
                members.as_ptr(),
                2,
                milestones.as_ptr(),
                0.1,
                &mut sched,
            )
        });
        s.call("attach handle", || {
            gradstep_optimizer_attach_schedule_handle(b, 0, sched)
        });
        for _ in 0..4 {
            s.call("step f64", || gradstep_optimizer_step(b));
            s.call("schedule step f64", || gradstep_optimizer_schedule_step(b));
            s.call("schedule handle step", || gradstep_schedule_step(sched));
        }
        let mut len = 0usize;
        s.call("len f64", || gradstep_optimizer_checkpoint_len(b, &mut len));
        let mut bytes = vec![0u8; len];
        let mut written = 0;
        s.call("save f64", || {
            gradstep_optimizer_checkpoint_save(b, bytes.as_mut_ptr(), len, &mut written)
        });
        s.call("load f64", || {
            gradstep_optimizer_checkpoint_load(b, bytes.as_ptr(), written)
        });
        s.call("step f64", || gradstep_optimizer_step(b));
        let (mut lr, mut momentum, mut has) = (0.0, 0.0, 0u8);
        s.call("schedule lr", || {
            gradstep_schedule_lr(sched, &mut lr, &mut momentum, &mut has)
        });
        bits.push(lr.to_bits());
        let mut chained = ptr::null_mut();
        s.call("chained", || {
            gradstep_schedule_new_chained(members.as_ptr(), 2, 0.1, &mut chained)
        });
        s.call("chained step", || gradstep_schedule_step(chained));
        s.call("schedule lr", || {
            gradstep_schedule_lr(chained, &mut lr, &mut momentum, &mut has)
        });
        bits.push(lr.to_bits());

        let mut buffer = ptr::null_mut::<f32>();
        s.call("buffer", || gradstep_buffer_new_f32(100, &mut buffer));
        s.call("buffer free", || gradstep_buffer_free(buffer.cast()));
        let ptrs = [params[0].as_mut_ptr(), params[1].as_mut_ptr()];
        let cptrs = ptrs.map(|p| p.cast_const());
        let lens = [40usize, 24];
        let mut norm = 0.0;
        s.call("total norm", || {
            gradstep_total_norm_f32(cptrs.as_ptr(), lens.as_ptr(), 2, 2.0, &mut norm)
        });
        s.call("clip", || {
            gradstep_clip_grad_norm_f32(ptrs.as_ptr(), lens.as_ptr(), 2, 0.5, 2.0, 0, &mut norm)
        });
        bits.push(norm.to_bits());

        for h in [sched, chained] {
            s.call("schedule free", || gradstep_schedule_free(h));
        }
        for h in [a, b] {
            s.call("free", || gradstep_optimizer_free(h));
        }
        bits.extend(weights.iter().map(|w| w.to_bits()));
    }
    bits.extend(params.iter().flatten().map(|p| u64::from(p.to_bits())));
    bits
}

/// The child of [`every_allocation_of_a_session_fails_in_turn`]: a session with every
/// allocation allowed (which also makes what a process makes once: the core count, the
/// thread's error record), then the same session with allocation `GS_FAIL_AT` of its C
/// calls refused, which must end with the same bits.
#[test]
fn session_child() {
    let Ok(k) = std::env::var("GS_FAIL_AT") else {
        return;
    };
    let k: usize = k.parse().unwrap();
    let expected = session(&mut Session {
        armed: None,
        refused: false,
    });
    let mut s = Session {
        armed: Some(k),
        refused: false,
    };
    let found = session(&mut s);
    assert!(
        found == expected,
        "the session's bits differ after a refusal"
    );
    println!("GS_REFUSED {}", s.refused);
}

/// Every allocation the session's C calls make, refused in turn (one child process
/// each): every call returns `GRADSTEP_OK` or `GRADSTEP_OUT_OF_MEMORY`, never aborts, and
/// a call refused for memory, made again, continues the session to the same bits.
#[test]
fn every_allocation_of_a_session_fails_in_turn() {
    let exe = std::env::current_exe().unwrap();
    let mut refused = 0;
    for k in 0.. {
        let out = std::process::Command::new(&exe)
            .args([
                "--exact",
                "session_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("GS_FAIL_AT", k.to_string())
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "allocation {k} refused: {}\n{stdout}\n{stderr}",
            out.status
        );
        if stdout.contains("GS_REFUSED false") {
            break;
        }
        assert!(stdout.contains("GS_REFUSED true"), "{stdout}");
        refused += 1;
    }
    // A session that allocated nothing would test nothing.
    assert!(refused >= 20, "{refused} allocations");
    println!("{refused} allocations refused in turn");
}
