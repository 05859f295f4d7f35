//! The decision: which step a code matches, inside the window centred on the
//! user's learned offset, or outside it within the maximum drift.
//!
//! - [`Window`] holds the geometry: the steps accepted around the expected
//!   one ([`Window::steps`]), those a resynchronisation looks at
//!   ([`Window::resync_steps`]) and how fast an offset may change
//!   ([`Window::allows_offset_change`]).
//! - `matching` compares a code with a run of steps in constant time.
//! - `decision` is the rule itself, a pure function of the codes, the
//!   window, each device's sync state and the server's step: no store, no
//!   clock. The engine ([`TwoFactor::verify`](crate::TwoFactor::verify))
//!   reads the inputs from the store and writes the outcome back.
//! - [`Verdict`] and [`RejectReason`] are what the engine answers.

pub(crate) mod decision;
pub(crate) mod matching;
mod verdict;
mod window;

pub use verdict::{RejectReason, Verdict};
pub(crate) use window::offset_of;
pub use window::{DEFAULT_MAX_DRIFT_RATE, Window};
