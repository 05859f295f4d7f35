//! An authenticator app: the codes a phone shows for a secret at the time
//! of a clock, possibly with the phone's clock some steps off.

use serde_json::Value;
use tower_totp::clock::{Clock, ManualClock};
use tower_totp::code::{CodeParams, Hotp, Secret};
use tower_totp::{ConfirmAs, TwoFactor, UserId};

/// An authenticator app holding one secret, reading time from a shared
/// [`ManualClock`]; clones share the clock.
#[derive(Clone)]
pub struct Phone {
    hotp: Hotp,
    params: CodeParams,
    clock: ManualClock,
    /// How many steps the phone's clock is ahead of the server's.
    offset: i64,
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of test output.
        f.debug_struct("Phone")
            .field("params", &self.params)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl Phone {
    /// An app holding `secret` with `params`, on `clock`.
    pub fn new(secret: &Secret, params: CodeParams, clock: ManualClock) -> Self {
        Self {
            hotp: Hotp::new(secret, params),
            params,
            clock,
            offset: 0,
        }
    }

    /// Enroll `user` through `engine` (no HTTP), confirming `as_`: the
    /// phone that synced, on `clock` (the engine's). The confirming code's
    /// step is used.
    ///
    /// # Panics
    ///
    /// If the engine refuses or fails.
    pub async fn enroll(
        engine: &TwoFactor,
        clock: &ManualClock,
        user: &UserId,
        as_: ConfirmAs,
    ) -> Self {
        let e = engine
            .start_enrollment(user, user.as_str(), "Phone", None)
            .await
            .expect("start enrollment")
            .expect("under the caps");
        let phone = Self::new(e.secret(), e.params(), clock.clone());
        let confirmed = engine
            .confirm_enrollment(user, e.id(), &phone.code(), as_)
            .await
            .expect("confirm enrollment");
        assert!(confirmed.is_confirmed(), "enrollment not confirmed");
        phone
    }

    /// An app that scanned the base32 `secret` (default parameters).
    ///
    /// # Panics
    ///
    /// If `secret` is not base32.
    pub fn from_base32(secret: &str, clock: &ManualClock) -> Self {
        let secret = Secret::from_base32(secret).expect("a base32 secret");
        Self::new(&secret, CodeParams::default(), clock.clone())
    }

    /// From the `secret` member of `GET /2fa/enroll`'s JSON.
    ///
    /// # Panics
    ///
    /// If the member is missing or not base32.
    pub fn from_enroll_json(v: &Value, clock: &ManualClock) -> Self {
        Self::from_base32(v["secret"].as_str().expect("a secret member"), clock)
    }

    /// The same phone with its clock `steps` steps ahead of the server's
    /// (behind when negative).
    #[must_use]
    pub fn drifted(&self, steps: i64) -> Self {
        Self {
            offset: steps,
            ..self.clone()
        }
    }

    /// The code parameters.
    pub fn params(&self) -> CodeParams {
        self.params
    }

    /// The step the app is at now.
    pub fn step(&self) -> u64 {
        self.params
            .step_at(self.clock.now())
            .checked_add_signed(self.offset)
            .expect("a step in range")
    }

    /// The code the app shows at `step`.
    pub fn code_for_step(&self, step: u64) -> String {
        self.hotp.code_string(step)
    }

    /// The code the app shows `steps` steps from now.
    pub fn code_at_offset(&self, steps: i64) -> String {
        let step = self
            .step()
            .checked_add_signed(steps)
            .expect("a step in range");
        self.code_for_step(step)
    }

    /// The code the app shows now.
    pub fn code(&self) -> String {
        self.code_for_step(self.step())
    }

    /// The code shown now, typed with a space in the middle (`123 456`).
    pub fn code_spaced(&self) -> String {
        let c = self.code();
        let (a, b) = c.split_at(c.len() / 2);
        format!("{a} {b}")
    }

    /// A well-formed code that matches no step within 15 of the app's.
    pub fn wrong_code(&self) -> String {
        self.wrong_code_within(15)
    }

    /// A well-formed code that matches no step within `steps` of the app's.
    pub fn wrong_code_within(&self, steps: u64) -> String {
        let now = self.step();
        let near: Vec<String> = (now.saturating_sub(steps)..=now.saturating_add(steps))
            .map(|s| self.code_for_step(s))
            .collect();
        let digits = usize::from(self.params.digits());
        (0..1_000_000u32)
            .map(|n| format!("{n:0digits$}"))
            .find(|c| !near.contains(c))
            .expect("a wrong code")
    }
}
