//! Derived cfgs, computed in one place (the way rust-lang/libm's `configure.rs` does).
//!
//! `gradstep_simd`: the target has vector registers that `wide` drives natively, so the
//! rules run on multi-lane vectors; elsewhere (Cortex-M, RISC-V without V, ...) they run
//! on scalar lanes, which is what those cores execute fastest anyway.
//!
//! `gradstep_no_long_multiply`: the target has no 32 × 32 → 64-bit multiply instruction
//! (ARM's `UMULL`), so LLVM makes each such product a call of `__aeabi_lmul`, and
//! `crate::power` forms it from 16-bit halves instead. These are the Thumb-1-only cores:
//! ARMv6-M (Cortex-M0/M0+/M1), ARMv8-M Baseline (Cortex-M23), and ARMv4T/ARMv5TE in
//! Thumb state. Told apart by the target's name: stable rustc sets no `target_feature`
//! cfg on ARM (`v6m`, `thumb2` and the like are unstable; `rustc --print cfg` shows
//! none), and the one cfg that separates thumbv6m-none-eabi from thumbv7em-none-eabihf,
//! `target_has_atomic`, would miss ARMv8-M Baseline, which has atomics.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_FORCE_SCALAR");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let has = |f: &str| features.split(',').any(|x| x == f);
    let vector_target = match arch.as_str() {
        "x86_64" => true,
        "x86" => has("sse2"),
        "aarch64" => has("neon"),
        "wasm32" => has("simd128"),
        _ => false,
    };
    let forced_scalar = std::env::var_os("CARGO_FEATURE_FORCE_SCALAR").is_some();
    if vector_target && !forced_scalar {
        println!("cargo:rustc-cfg=gradstep_simd");
    }
    let target = std::env::var("TARGET").unwrap_or_default();
    let thumb1_only = ["thumbv4t", "thumbv5te", "thumbv6m", "thumbv8m.base"];
    if arch == "arm" && thumb1_only.iter().any(|t| target.starts_with(t)) {
        println!("cargo:rustc-cfg=gradstep_no_long_multiply");
    }
}
