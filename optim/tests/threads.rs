//! The threaded, chunked step gives the single-threaded step's bits, for every rule,
//! any thread count and any chunk length.

mod common;

use common::{bits, data, variant, with_slots};
use gradstep::checkpoint::Element;
use gradstep::lookahead::{Lookahead, SyncMomentum};
use gradstep::rules::RuleId;
use gradstep::schedules::StepLr;
use gradstep_optim::{CHUNK_ALIGN, DEFAULT_CHUNK_LEN, GroupId, Optimizer};

/// Mixed sizes: empty, shorter than a chunk, exactly one, one and a bit, many.
const LENS: [usize; 8] = [0, 1, 7, 64, 65, 1000, 5003, 33];

fn run<T: Element>(
    id: RuleId,
    lookahead: Option<Lookahead<()>>,
    threads: usize,
    chunk_len: usize,
) -> (Vec<Vec<u64>>, Vec<u8>) {
    let mut opt = Optimizer::<T>::new(with_slots(id)).unwrap();
    opt.set_lookahead(lookahead).unwrap();
    let g = opt.add_group(variant(id)).unwrap();
    for (k, &n) in LENS.iter().enumerate() {
        opt.add_tensor(if k % 3 == 0 { g } else { GroupId(0) }, n)
            .unwrap();
    }
    opt.attach_schedule(g, StepLr::new(1, 0.7)).unwrap();
    opt.set_threads(threads);
    opt.set_chunk_len(chunk_len);
    let mut params: Vec<Vec<T>> = LENS.iter().map(|&n| data(n as u64, n)).collect();
    for t in 0..4 {
        let grads: Vec<Vec<T>> = LENS.iter().map(|&n| data(t * 31 + n as u64, n)).collect();
        let mut list: Vec<(&mut [T], &[T])> = params
            .iter_mut()
            .zip(&grads)
            .map(|(p, g)| (&mut p[..], &g[..]))
            .collect();
        opt.step(&mut list).unwrap();
        opt.schedule_step().unwrap();
    }
    (
        params.iter().map(|p| bits(p)).collect(),
        opt.checkpoint().unwrap(),
    )
}

fn same_bits<T: Element>() {
    for &id in RuleId::ALL {
        let one = run::<T>(id, None, 1, 64);
        for (threads, chunk) in [(2, 64), (3, 64), (8, 128), (4, 1), (2, DEFAULT_CHUNK_LEN)] {
            let many = run::<T>(id, None, threads, chunk);
            assert!(one == many, "{id}: {threads} threads, chunks of {chunk}");
        }
    }
}

/// Every rule under Lookahead (k = 2: syncs at steps 2 and 4 of the 4), the momentum
/// option taking turns across the rules.
#[test]
fn threads_give_the_same_bits_under_lookahead() {
    for (i, &id) in RuleId::ALL.iter().enumerate() {
        let la = Lookahead {
            k: 2,
            alpha: 0.3,
            momentum: SyncMomentum::ALL[i % 3],
            ..Lookahead::new(())
        };
        let one = run::<f32>(id, Some(la), 1, 64);
        let plain = run::<f32>(id, None, 1, 64);
        assert!(one.0 != plain.0, "{id}: Lookahead changed nothing");
        for (threads, chunk) in [(3, 64), (4, 1)] {
            let many = run::<f32>(id, Some(la), threads, chunk);
            assert!(
                one == many,
                "{id} {la:?}: {threads} threads, chunks of {chunk}"
            );
        }
    }
}

#[test]
fn threads_give_the_same_bits_f32() {
    same_bits::<f32>();
}

#[test]
fn threads_give_the_same_bits_f64() {
    same_bits::<f64>();
}

#[test]
fn settings() {
    let mut opt = Optimizer::<f32>::new(RuleId::Sgd.default_rule()).unwrap();
    assert!(opt.threads() >= 1);
    assert_eq!(opt.chunk_len(), DEFAULT_CHUNK_LEN);
    opt.set_threads(0);
    assert_eq!(opt.threads(), 1);
    opt.set_chunk_len(1);
    assert_eq!(opt.chunk_len(), CHUNK_ALIGN);
    opt.set_chunk_len(65);
    assert_eq!(opt.chunk_len(), 2 * CHUNK_ALIGN);
    opt.set_chunk_len(usize::MAX);
    assert!(opt.chunk_len() >= CHUNK_ALIGN);
}

/// LAMB's tensors up to `SCRATCH_MAX_BYTES` step with scratch memory, the larger ones
/// without, and on several threads the scratch runs out after the first tensors (it
/// holds about `SCRATCH_MAX_BYTES` for all of them): every tensor's bits are still the
/// kernel's step without scratch, one tensor at a time, for any thread count.
fn lamb_scratch_matches_the_kernel<T: Element>() {
    let max = gradstep_optim::SCRATCH_MAX_BYTES / core::mem::size_of::<T>();
    let lens = [max / 2 + 3, 5, max, max + 1, max / 4, 4096, 3 * max / 4];
    let rule = gradstep::rules::AnyRule::parse("lamb:weight_decay=0.01").unwrap();
    let want: Vec<Vec<u64>> = lens
        .iter()
        .map(|&n| {
            let mut p = data::<T>(n as u64, n);
            let mut state = vec![vec![T::ZERO; n]; 2];
            let mut scalars = rule.fresh_scalars();
            for t in 0..3 {
                let g = data::<T>(t * 31 + n as u64, n);
                let [m, v] = &mut state[..] else {
                    unreachable!()
                };
                rule.step(&mut scalars, &mut p, &g, &mut [m, v]).unwrap();
            }
            bits(&p)
        })
        .collect();
    for (threads, chunk) in [(1, DEFAULT_CHUNK_LEN), (2, DEFAULT_CHUNK_LEN), (2, 4096)] {
        let mut opt = Optimizer::<T>::new(rule).unwrap();
        for &n in &lens {
            opt.add_tensor(GroupId(0), n).unwrap();
        }
        opt.set_threads(threads);
        opt.set_chunk_len(chunk);
        let mut params: Vec<Vec<T>> = lens.iter().map(|&n| data(n as u64, n)).collect();
        for t in 0..3 {
            let grads: Vec<Vec<T>> = lens.iter().map(|&n| data(t * 31 + n as u64, n)).collect();
            let mut list: Vec<(&mut [T], &[T])> = params
                .iter_mut()
                .zip(&grads)
                .map(|(p, g)| (&mut p[..], &g[..]))
                .collect();
            opt.step(&mut list).unwrap();
        }
        for (k, p) in params.iter().enumerate() {
            assert!(
                bits(p) == want[k],
                "tensor {k} of {}: {threads} threads, chunks of {chunk}",
                lens[k]
            );
        }
        // One tensor alone, with scratch.
        let n = lens[0];
        let mut p = data::<T>(n as u64, n);
        let mut single = Optimizer::<T>::new(rule).unwrap();
        single.add_tensor(GroupId(0), n).unwrap();
        for t in 0..3 {
            let g = data::<T>(t * 31 + n as u64, n);
            single
                .step_tensor(gradstep_optim::TensorId(0), &mut p, &g)
                .unwrap();
        }
        assert!(bits(&p) == want[0], "step_tensor");
    }
}

#[test]
fn lamb_scratch_matches_the_kernel_f32() {
    lamb_scratch_matches_the_kernel::<f32>();
}

#[test]
fn lamb_scratch_matches_the_kernel_f64() {
    lamb_scratch_matches_the_kernel::<f64>();
}
