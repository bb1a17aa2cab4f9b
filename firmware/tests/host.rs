//! The training logic on the host (`cargo test --no-default-features --target <host
//! triple>`): both sessions pass with the params the Cortex-M4F image must also reach
//! (`FINGERPRINTS_64`), and a run reset after an epoch resumes from the checkpoint and
//! ends with the same model as a run without a reset.

use gradstep_firmware::train::{Buffers, Outcome, run};
use gradstep_flash_store::{RamFlash, Store};

#[test]
fn trains_resumes_and_matches_an_uninterrupted_run() {
    let mut region = vec![0u8; 64 * 1024];
    let mut b = Box::new(Buffers::new());
    let mut out = String::new();
    let mut store = Store::new(RamFlash::<1024, 4>::new(&mut region)).unwrap();
    assert_eq!(
        run(&mut out, &mut store, &mut b, Some(3)).unwrap(),
        Outcome::Reset
    );
    *b = Buffers::new(); // RAM is lost; the store survives.
    let outcome = run(&mut out, &mut store, &mut b, Some(3)).unwrap();
    print!("{out}");
    assert_eq!(outcome, Outcome::Passed);
    assert!(out.contains("adam: resumed from checkpoint seq 3"));

    let mut region2 = vec![0u8; 64 * 1024];
    let mut b2 = Box::new(Buffers::new());
    let mut out2 = String::new();
    let mut store2 = Store::new(RamFlash::<1024, 4>::new(&mut region2)).unwrap();
    assert_eq!(
        run(&mut out2, &mut store2, &mut b2, None).unwrap(),
        Outcome::Passed
    );
    assert_eq!(b.params.map(f32::to_bits), b2.params.map(f32::to_bits));
}
