//! Shared support for gradstep's cross-crate tests: loading the trajectories recorded
//! from PyTorch (`tests/fixtures/torch/`), the one tolerance table they are judged by, and
//! the list of benchmark entries.

pub mod bench;
pub mod clip_fixtures;
pub mod fixtures;
pub mod steps;
pub mod tolerance;

// The README's Rust example runs as a doctest of this crate.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
