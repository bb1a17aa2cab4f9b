//! Params updated per second (Gparam/s) by f32 Adam: the bare kernel, the owning
//! optimizer on one thread, and on every thread the system reports. Medians of 7
//! interleaved rounds; ratios in one run are the claims, not absolute numbers.
//!
//! `cargo run -p gradstep-optim --release --example throughput [rule spec]`

use std::time::Instant;

use gradstep::rules::AnyRule;
use gradstep_optim::{GroupId, Optimizer};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let spec = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "adam:lr=1e-3".into());
    let rule = AnyRule::parse(&spec).unwrap_or_else(|e| panic!("{e}"));
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    println!("{rule}, f32, {threads} threads available");
    println!(
        "{:>9} {:>8} {:>12} {:>12}",
        "n",
        "kernel",
        "optimizer/1",
        format!("optimizer/{threads}")
    );
    for n in [1usize << 12, 1 << 16, 1 << 20, 1 << 24] {
        let reps = ((1usize << 26) / n).clamp(3, 4000);
        let mut params = vec![0.5f32; n];
        let grads: Vec<f32> = (0..n).map(|i| (i as f32 * 1e-3).sin()).collect();
        let mut state = vec![0.0f32; rule.state_slots() * n];
        let mut scalars = rule.fresh_scalars();
        let mut one = Optimizer::<f32>::new(rule).unwrap();
        one.add_tensor(GroupId(0), n).unwrap();
        one.set_threads(1);
        let mut many = one.clone();
        many.set_threads(threads);
        let (mut k, mut o1, mut om) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..7 {
            let t = Instant::now();
            for _ in 0..reps {
                rule.step_flat(&mut scalars, &mut params, &grads, &mut state)
                    .unwrap();
            }
            k.push((n * reps) as f64 / t.elapsed().as_secs_f64() / 1e9);
            for (opt, out) in [(&mut one, &mut o1), (&mut many, &mut om)] {
                let t = Instant::now();
                for _ in 0..reps {
                    opt.step(&mut [(&mut params, &grads)]).unwrap();
                }
                out.push((n * reps) as f64 / t.elapsed().as_secs_f64() / 1e9);
            }
        }
        println!(
            "{n:>9} {:>8.3} {:>12.3} {:>12.3}",
            median(k),
            median(o1),
            median(om)
        );
    }
}
