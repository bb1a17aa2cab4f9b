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

/// The distance between two addresses' offsets within a 4 KiB page, either way round.
fn page_distance(a: usize, b: usize) -> usize {
    let d = (a % 4096 + 4096 - b % 4096) % 4096;
    d.min(4096 - d)
}

/// 4K aliasing: a state slice 64 bytes behind the params modulo a page makes every
/// load of it wait for the params' store of the iteration before (Adam at 1K
/// parameters: 3.7× slower on a Zen 4). Wherever the caller's params and grads land,
/// the optimizer moves the slots of a large enough tensor apart from them and from
/// each other, and the results stay the kernel's bit for bit.
#[test]
fn state_moves_away_from_params_and_grads_within_a_page() {
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for spec in ["adam", "adam:amsgrad", "sgd:momentum=0.9", "adan"] {
        let rule = gradstep::rules::AnyRule::parse(spec).unwrap();
        let slots = rule.state_slots();
        for n in [1024usize, 1000, 4099] {
            let mut opt = Optimizer::<f32>::new(rule).unwrap();
            opt.add_tensor(GroupId(0), n).unwrap();
            opt.set_threads(1);
            let names: Vec<&str> = rule.slot_names().to_vec();
            let slot_addr = |opt: &Optimizer<f32>, k: usize| {
                let id = gradstep_optim::TensorId(0);
                opt.tensor_slot(id, names[k])
                    .unwrap()
                    .unwrap()
                    .as_ptr()
                    .addr()
            };
            let mut scalars = rule.fresh_scalars();
            let mut state = vec![0.0f32; slots * n];
            let mut reference: Vec<f32> = (0..n).map(|i| value(i, 99)).collect();
            // Room to put the params and the grads at any offset within a page.
            let mut pbuf = vec![0.0f32; n + 2048];
            let gbuf = vec![0.0f32; n + 2048];
            for t in 0..8 {
                // The params 64 bytes past the first slot (modulo a page), the grads
                // 64 bytes past the second: the worst places, before the optimizer
                // moves the slots (at t = 0 the slots hold their fresh zeros).
                let before: Vec<usize> = (0..slots).map(|k| slot_addr(&opt, k)).collect();
                let s0 = slot_addr(&opt, 0);
                let s1 = slot_addr(&opt, slots - 1);
                let at_offset = |buf: *const f32, want: usize| {
                    let gap = (want % 4096 + 4096 - buf.addr() % 4096) % 4096;
                    assert_eq!(gap % 4, 0);
                    gap / 4
                };
                let pa = at_offset(pbuf.as_ptr(), s0 + 64 + 4 * t);
                let ga = at_offset(gbuf.as_ptr(), s1 + 64 + 8 * t);
                pbuf[pa..pa + n].copy_from_slice(&reference);
                let mut gbuf = gbuf.clone();
                for i in 0..n {
                    gbuf[ga + i] = value(i, t);
                }
                let grads = &gbuf[ga..ga + n];
                rule.step_flat(&mut scalars, &mut reference, grads, &mut state)
                    .unwrap();
                let params = &mut pbuf[pa..pa + n];
                opt.step(&mut [(&mut *params, grads)]).unwrap();
                assert_eq!(bits(params), bits(&reference), "{spec}, {n}, step {t}");
                let (p, g) = (params.as_ptr().addr(), grads.as_ptr().addr());
                let addrs: Vec<usize> = (0..slots).map(|k| slot_addr(&opt, k)).collect();
                if t >= 4 {
                    // Moved four times: the state stays put from then on (a caller
                    // alternating buffers would otherwise have it copied every step).
                    assert_eq!(addrs, before, "{spec}, {n}, step {t}");
                    continue;
                }
                for (k, &a) in addrs.iter().enumerate() {
                    assert_eq!(a % 64, p % 64, "{spec}, {n}: slot {k} in the params' line");
                    let mut near = page_distance(a, p).min(page_distance(a, g));
                    for &b in &addrs[..k] {
                        near = near.min(page_distance(a, b));
                    }
                    // A page shared by the params, the grads and the slots: at least
                    // half an even share (the placement is greedy), less a line.
                    let share = 4096 / (slots + 2) / 2 - 64;
                    assert!(
                        near >= share,
                        "{spec}, {n}, step {t}: slot {k} {near} B away"
                    );
                }
            }
            for (k, name) in names.iter().enumerate() {
                let id = gradstep_optim::TensorId(0);
                let slot = opt.tensor_slot(id, name).unwrap().unwrap();
                assert_eq!(
                    bits(slot),
                    bits(&state[k * n..(k + 1) * n]),
                    "{spec}: {name}"
                );
            }
        }
    }
}

/// `place_state` does ahead of time what a step does first: a step on the same buffers
/// then leaves the state where it is (the C handle places at registration, so that no
/// step moves memory another thread last touched).
#[test]
fn placed_ahead_the_state_stays_put() {
    let n = 1024;
    let rule = gradstep::rules::AnyRule::parse("adam").unwrap();
    let mut opt = Optimizer::<f32>::new(rule).unwrap();
    let id = opt.add_tensor(GroupId(0), n).unwrap();
    let addr =
        |opt: &Optimizer<f32>, name| opt.tensor_slot(id, name).unwrap().unwrap().as_ptr().addr();
    let mut pbuf = vec![0.5f32; n + 1024];
    let grads = vec![0.25f32; n];
    // The params 64 bytes past the first moment, modulo a page: it must move.
    let before = addr(&opt, "exp_avg");
    let gap = (before + 64 + 4096 - pbuf.as_ptr().addr() % 4096) % 4096 / 4;
    let params = &mut pbuf[gap..gap + n];
    opt.place_state(id, params.as_ptr(), grads.as_ptr())
        .unwrap();
    let placed = (addr(&opt, "exp_avg"), addr(&opt, "exp_avg_sq"));
    assert_ne!(placed.0, before);
    assert!(page_distance(placed.0, params.as_ptr().addr()) >= 768);
    opt.step(&mut [(&mut *params, &grads[..])]).unwrap();
    assert_eq!((addr(&opt, "exp_avg"), addr(&opt, "exp_avg_sq")), placed);
    assert!(
        opt.place_state(gradstep_optim::TensorId(1), params.as_ptr(), grads.as_ptr())
            .is_err()
    );
}
