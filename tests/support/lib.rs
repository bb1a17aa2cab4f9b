//! Shared support for gradstep's cross-crate tests: loading the trajectories recorded
//! from PyTorch (`tests/fixtures/torch/`) and the one tolerance table they are judged by.

pub mod fixtures;
pub mod tolerance;
