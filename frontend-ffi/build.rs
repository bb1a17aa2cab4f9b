//! Gives the shared library its SONAME on ELF targets: `libgradstep.so.0.MINOR` while
//! the version is 0.x (each 0.x minor may break the ABI, as Cargo's semver reads it),
//! `libgradstep.so.MAJOR` from 1.0 on. scripts/install.sh installs the matching
//! symlinks. The exported symbols need no version script of ours: rustc already
//! exports only the `#[no_mangle]` functions (`gradstep_*`) from a cdylib.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("set by cargo");
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").expect("set by cargo");
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let elf = !matches!(
        os.as_str(),
        "macos" | "ios" | "windows" | "none" | "uefi" | "tvos" | "watchos" | "visionos"
    );
    if elf {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libgradstep.so.{abi}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
