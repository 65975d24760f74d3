//! The numerics version: one integer naming which bits the CPU code produces.
//!
//! Two builds with the same numerics version give bit-identical CPU results (weights, metrics)
//! for the same config, data and seed, on every x86-64 CPU with AVX2 and FMA. It is part of
//! every training and evaluation hash, so a stored model or evaluation made by code that
//! computed different bits is never reused, and it is written into every artifact, record,
//! baseline and report.
//!
//! **Bump it in the same commit as any change that alters the bits of a CPU run** (a kernel's
//! summation order, a loss's formula, a random stream), then re-bless: `MIXBENCH_BLESS_CANARY=1
//! cargo test --release --test canary`, `mixbench reproduce all --profile smoke --bless`, and
//! regenerate (or retire) the curated reports under `docs/reports/`. The canary test fails with
//! that instruction when bits change without a bump. Nothing else belongs in the hashes: a
//! change that leaves the bits alone (a README edit, a refactor, a faster kernel with the same
//! summation order) must not bump it.
//!
//! History:
//! - 0: results written before versioning (their `model.json` has no `numerics_version`).
//! - 1: the CPU kernels of #15; matmul/convolution reductions blocked in fixed k-chunks of
//!   [`crate::kernels::cpu_float::K_BLOCK`] on every CPU; `eval_every` in the training hash.

/// The current numerics version.
pub const NUMERICS_VERSION: u32 = 1;
