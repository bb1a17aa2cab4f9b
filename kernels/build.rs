//! Derived cfgs, computed in one place (the way rust-lang/libm's `configure.rs` does).
//!
//! `gradstep_simd`: the target has vector registers that `wide` drives natively, so the
//! rules run on multi-lane vectors; elsewhere (Cortex-M, RISC-V without V, ...) they run
//! on scalar lanes, which is what those cores execute fastest anyway.

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
}
