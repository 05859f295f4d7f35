//! One-time codes: parameters, secrets, generation (RFC 4226 / RFC 6238)
//! and the rule that turns what a person typed into a code.

mod hotp;
mod input;
mod params;
mod secret;

pub use hotp::Hotp;
pub use input::{Code, Malformed, parse_code, parse_typed_code};
pub use params::{Algorithm, CodeParams};
pub use secret::{MIN_SECRET_BITS, Secret, SecretError};
