//! The owning optimizer with Lookahead: each tensor's step is the kernel's
//! `Lookahead<AnyRule>` bit for bit (slow weights from the params at the tensor's
//! first step), its state_dict names pytorch_optimizer's slices, and its checkpoint
//! resumes bit for bit, refusing other Lookahead options before changing anything.

mod common;

use common::{bits, data};
use gradstep::lookahead::{Lookahead, SyncMomentum};
use gradstep::rules::AnyRule;
use gradstep_optim::{Error, GroupId, Optimizer, TensorId};

const LENS: [usize; 3] = [5, 0, 37];

fn spec() -> Lookahead<AnyRule> {
    Lookahead::parse("lookahead(sgd:lr=0.05,momentum=0.9,nesterov):k=2,alpha=0.3,momentum=pullback")
        .unwrap()
}

fn grads(t: u64) -> Vec<Vec<f64>> {
    LENS.iter().map(|&n| data(t * 17 + n as u64, n)).collect()
}

fn train(opt: &mut Optimizer<f64>, params: &mut [Vec<f64>], steps: std::ops::Range<u64>) {
    for t in steps {
        let g = grads(t);
        let mut list: Vec<(&mut [f64], &[f64])> = params
            .iter_mut()
            .zip(&g)
            .map(|(p, g)| (&mut p[..], &g[..]))
            .collect();
        opt.step(&mut list).unwrap();
    }
}

fn fresh() -> (Optimizer<f64>, Vec<Vec<f64>>) {
    let mut opt = Optimizer::new_lookahead(spec()).unwrap();
    for &n in &LENS {
        opt.add_tensor(GroupId(0), n).unwrap();
    }
    (opt, LENS.iter().map(|&n| data(n as u64 + 1, n)).collect())
}

#[test]
fn each_tensor_steps_as_the_kernel_composite() {
    let la = spec();
    let (mut opt, mut params) = fresh();
    assert_eq!(opt.lookahead(), Some(la.over(())));
    let mut mine = params.clone();
    let mut state: Vec<Vec<Vec<f64>>> = LENS
        .iter()
        .map(|&n| vec![vec![0.0; n]; la.state_slots()])
        .collect();
    let mut scalars = vec![la.fresh_scalars(); LENS.len()];
    train(&mut opt, &mut params, 0..5);
    for t in 0..5 {
        for (i, g) in grads(t).iter().enumerate() {
            let mut view: Vec<&mut [f64]> = state[i].iter_mut().map(|s| &mut s[..]).collect();
            la.step(&mut scalars[i], &mut mine[i], g, &mut view)
                .unwrap();
        }
    }
    for i in 0..LENS.len() {
        assert_eq!(bits(&params[i]), bits(&mine[i]), "tensor {i}");
        for (name, slot) in la.slot_names().zip(&state[i]) {
            let ours = opt.tensor_slot(TensorId(i), name).unwrap().unwrap();
            assert_eq!(bits(ours), bits(slot), "tensor {i}: {name}");
        }
    }
    let d = opt.state_dict();
    let names: Vec<_> = d.state[0].slots.iter().map(|s| s.name).collect();
    assert_eq!(names, ["momentum_buffer", "slow_params", "slow_momentum"]);
    assert_eq!(d.state[2].step(), 5);
}

#[test]
fn checkpoints_and_state_dicts_resume_bit_for_bit() {
    let (mut whole, mut p_whole) = fresh();
    train(&mut whole, &mut p_whole, 0..7);

    let (mut first, mut p) = fresh();
    train(&mut first, &mut p, 0..3);
    let bytes = first.checkpoint().unwrap();
    assert_eq!(bytes.len(), first.checkpoint_len(false).unwrap());

    // Other options, or none: refused, nothing changed.
    let mut plain = Optimizer::<f64>::new(spec().rule).unwrap();
    for &n in &LENS {
        plain.add_tensor(GroupId(0), n).unwrap();
    }
    assert!(matches!(
        plain.load_checkpoint(&bytes),
        Err(Error::Mismatch { .. })
    ));
    let mut other = Optimizer::<f64>::new_lookahead(Lookahead { k: 3, ..spec() }).unwrap();
    for &n in &LENS {
        other.add_tensor(GroupId(0), n).unwrap();
    }
    let before = other.checkpoint().unwrap();
    assert!(matches!(
        other.load_checkpoint(&bytes),
        Err(Error::Mismatch { .. })
    ));
    assert_eq!(other.checkpoint().unwrap(), before);

    let (mut second, _) = fresh();
    second.load_checkpoint(&bytes).unwrap();
    assert_eq!(second.checkpoint().unwrap(), bytes);
    let mut p2 = p.clone();
    train(&mut second, &mut p2, 3..7);
    let (mut third, _) = fresh();
    third.load_state_dict(&first.state_dict()).unwrap();
    let mut p3 = p.clone();
    train(&mut third, &mut p3, 3..7);
    for i in 0..LENS.len() {
        assert_eq!(bits(&p2[i]), bits(&p_whole[i]), "checkpoint: tensor {i}");
        assert_eq!(bits(&p3[i]), bits(&p_whole[i]), "state_dict: tensor {i}");
    }
    assert_eq!(second.checkpoint().unwrap(), whole.checkpoint().unwrap());
}

#[test]
fn options_are_checked_and_fixed_once_tensors_exist() {
    let mut opt = Optimizer::<f32>::new(AnyRule::parse("adam").unwrap()).unwrap();
    for bad in [
        Lookahead {
            k: 0,
            ..Lookahead::new(())
        },
        Lookahead {
            alpha: 2.0,
            ..Lookahead::new(())
        },
    ] {
        assert!(matches!(
            opt.set_lookahead(Some(bad)),
            Err(Error::Kernel(gradstep::Error::InvalidHyperparameter { .. }))
        ));
        assert_eq!(opt.lookahead(), None);
    }
    let la = Lookahead {
        momentum: SyncMomentum::Reset,
        ..Lookahead::new(())
    };
    opt.set_lookahead(Some(la)).unwrap();
    opt.add_tensor(GroupId(0), 3).unwrap();
    assert!(matches!(
        opt.set_lookahead(None),
        Err(Error::Mismatch { .. })
    ));
    assert_eq!(opt.lookahead(), Some(la));
    let names: Vec<_> = opt.state_dict().state[0]
        .slots
        .iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["exp_avg", "exp_avg_sq", "slow_params"]);
}
