//! f32 Adam (lr 1e-3) throughput on each x86-64 instruction-set level this CPU has, and
//! on the build's automatic choice, in Gparam/s (parameters updated per second / 1e9),
//! with ratios to SSE2. Sizes and levels are interleaved round by round and the median
//! of the rounds is printed, so that a noisy, shared machine affects every column alike.
//!
//! Run: `cargo run -p gradstep --release --example isa_speed [-- ROUNDS]`; build with
//! `RUSTFLAGS="-C target-cpu=native"` to compare a native build's `auto` column.

#[cfg(target_arch = "x86_64")]
fn main() {
    use gradstep::isa::{self, Level};
    use gradstep::rules::AnyRule;
    use std::hint::black_box;
    use std::time::Instant;

    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(7);
    let sizes = [4usize << 10, 64 << 10, 1 << 20];
    // `None`: the level the build picks by itself.
    let mut levels: Vec<Option<Level>> = [Level::Sse2, Level::Avx2, Level::Avx512]
        .into_iter()
        .filter(|l| isa::available(*l))
        .map(Some)
        .collect();
    levels.push(None);
    let rule = AnyRule::parse("adam:lr=1e-3").expect("valid spec");
    let slots = rule.state_slots();
    println!(
        "f32 Adam, one thread, medians of {rounds} interleaved rounds; automatic level: {}",
        isa::detected().name()
    );

    // results[size][level] = Gparam/s per round
    let mut results = vec![vec![Vec::new(); levels.len()]; sizes.len()];
    for _ in 0..rounds {
        for (si, &n) in sizes.iter().enumerate() {
            let grads: Vec<f32> = (0..n).map(|i| ((i % 97) as f32 - 48.0) * 1e-3).collect();
            let mut params: Vec<f32> = (0..n).map(|i| (i % 89) as f32 * 1e-2).collect();
            let mut state = vec![0.0f32; slots * n];
            // About 30 ms of work per measurement.
            let reps = ((30_000_000 / n) / 2).max(2);
            for (li, level) in levels.iter().enumerate() {
                assert!(isa::set_level(*level));
                let mut scalars = rule.fresh_scalars();
                // One warm-up step (initializes the state, faults the pages in).
                rule.step_flat(&mut scalars, &mut params, &grads, &mut state)
                    .expect("step");
                let t = Instant::now();
                for _ in 0..reps {
                    let r =
                        rule.step_flat(&mut scalars, &mut params, black_box(&grads), &mut state);
                    black_box(r).expect("step");
                }
                let secs = t.elapsed().as_secs_f64();
                results[si][li].push((n * reps) as f64 / secs / 1e9);
            }
        }
    }
    assert!(isa::set_level(None));

    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let name = |l: &Option<Level>| l.map_or("auto".to_string(), |l| l.name().to_string());
    print!("{:>8}", "size");
    for l in &levels {
        print!(" {:>10}", name(l));
    }
    for l in &levels[1..] {
        print!(" {:>12}", format!("{}/sse2", name(l)));
    }
    println!();
    for (si, &n) in sizes.iter().enumerate() {
        let med: Vec<f64> = results[si].iter_mut().map(median).collect();
        print!("{:>7}K", n >> 10);
        for m in &med {
            print!(" {m:>10.3}");
        }
        for m in &med[1..] {
            print!(" {:>12.2}", m / med[0]);
        }
        println!();
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    println!("isa_speed compares x86-64 instruction-set levels; this is not x86-64");
}
