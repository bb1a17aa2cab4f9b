//! The optimizer moves a tensor's state to the params' offset within a cache line
//! when the params move: the values, not their meaning, so the results stay the
//! kernel's bit for bit wherever the caller's params sit from step to step.

use gradstep::rules::RuleId;
use gradstep_optim::{GroupId, Optimizer};

fn value(i: usize, t: usize) -> f32 {
    ((i * 7 + t * 13) % 29) as f32 / 29.0 - 0.5
}

#[test]
fn state_follows_params_that_move_between_steps() {
    let n = 37;
    let rule = RuleId::Adam.default_rule();
    let mut opt = Optimizer::<f32>::new(rule).unwrap();
    opt.add_tensor(GroupId(0), n).unwrap();
    opt.set_threads(1);
    // The kernel with its own state, as the reference.
    let mut scalars = rule.fresh_scalars();
    let mut state = vec![0.0f32; 2 * n];
    let mut reference: Vec<f32> = (0..n).map(|i| value(i, 99)).collect();
    // The caller's params sit at a different offset (in f32s) within a big buffer at
    // every step, so each step's params start elsewhere within a cache line.
    let mut buffer = vec![0.0f32; n + 32];
    let mut at = 0;
    buffer[at..at + n].copy_from_slice(&reference);
    for t in 0..12 {
        let grads: Vec<f32> = (0..n).map(|i| value(i, t)).collect();
        rule.step_flat(&mut scalars, &mut reference, &grads, &mut state)
            .unwrap();
        opt.step(&mut [(&mut buffer[at..at + n], &grads[..])])
            .unwrap();
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&buffer[at..at + n]), bits(&reference), "step {t}");
        let next = (at + 5) % 17;
        buffer.copy_within(at..at + n, next);
        at = next;
    }
    let exp_avg_sq = opt
        .tensor_slot(gradstep_optim::TensorId(0), "exp_avg_sq")
        .unwrap()
        .unwrap();
    assert_eq!(exp_avg_sq, &state[n..]);
}
