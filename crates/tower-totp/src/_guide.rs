//! The guides of the repository's `README.md` and `docs/`, rendered here so
//! that every Rust example in them is compiled as a doc test and cannot
//! drift from the API. Nothing to import: this module only holds text.
//!
//! Built for the documentation and the doc tests only (the Markdown lives
//! outside this crate's folder, in the workspace).

#[doc = include_str!("../../../README.md")]
pub mod readme {}

#[doc = include_str!("../../../docs/integration.md")]
pub mod integration {}

#[doc = include_str!("../../../docs/policy.md")]
pub mod policy {}

#[doc = include_str!("../../../docs/verification.md")]
pub mod verification {}

#[doc = include_str!("../../../docs/security.md")]
pub mod security {}

#[doc = include_str!("../../../docs/performance.md")]
pub mod performance {}

#[doc = include_str!("../../../docs/metrics.md")]
pub mod metrics {}
