//! A multi-threaded step in a process forked after the helper threads started: the
//! child has none of them, and its step must neither wait for them forever nor give
//! other bits (it steps on the calling thread alone).
#![cfg(unix)]

use gradstep::Adam;
use gradstep::rules::AnyRule;
use gradstep_optim::{CHUNK_ALIGN, GroupId, Optimizer};
use std::time::{Duration, Instant};

const LENS: [usize; 4] = [5000, 777, 4096, 3];

fn optimizer(threads: usize) -> Optimizer<f32> {
    let mut opt = Optimizer::<f32>::new(AnyRule::from(Adam::default())).unwrap();
    for n in LENS {
        opt.add_tensor(GroupId(0), n).unwrap();
    }
    opt.set_threads(threads);
    opt.set_chunk_len(CHUNK_ALIGN);
    opt
}

fn step(opt: &mut Optimizer<f32>, params: &mut [Vec<f32>], t: usize) {
    let grads: Vec<Vec<f32>> = LENS
        .iter()
        .map(|&n| {
            (0..n)
                .map(|i| ((i * 7 + t * 13) % 29) as f32 / 10.0 - 1.4)
                .collect()
        })
        .collect();
    let mut list: Vec<(&mut [f32], &[f32])> = params
        .iter_mut()
        .zip(&grads)
        .map(|(p, g)| (&mut p[..], &g[..]))
        .collect();
    opt.step(&mut list).unwrap();
}

#[test]
fn a_forked_child_steps_alone() {
    let start: Vec<Vec<f32>> = LENS
        .iter()
        .map(|&n| (0..n).map(|i| (i % 17) as f32 / 8.0 - 1.0).collect())
        .collect();
    // The reference: two steps on one thread.
    let (mut one, mut want) = (optimizer(1), start.clone());
    step(&mut one, &mut want, 0);
    step(&mut one, &mut want, 1);
    // The first step on two threads starts the helper pool in this process.
    let (mut two, mut params) = (optimizer(2), start);
    step(&mut two, &mut params, 0);
    // SAFETY: the child only steps, compares and leaves by `_exit`.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        step(&mut two, &mut params, 1);
        let same = params
            .iter()
            .flatten()
            .map(|x| x.to_bits())
            .eq(want.iter().flatten().map(|x| x.to_bits()));
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(if same { 0 } else { 3 }) };
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = 0;
    loop {
        // SAFETY: `child` is this process's child; `status` is a valid out pointer.
        let done = unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) };
        assert!(done >= 0, "waitpid failed");
        if done == child {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: signals this process's own child.
            unsafe { libc::kill(child, libc::SIGKILL) };
            // SAFETY: as above; reaps the killed child.
            unsafe { libc::waitpid(child, &mut status, 0) };
            panic!("the forked child's step did not finish in 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the child's step gave other bits"
    );
    // And the parent's pool still serves the parent.
    step(&mut two, &mut params, 1);
    assert!(
        params
            .iter()
            .flatten()
            .map(|x| x.to_bits())
            .eq(want.iter().flatten().map(|x| x.to_bits()))
    );
}
