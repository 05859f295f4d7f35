//! Shared set-up for the engine's integration tests: a `TwoFactor` over a
//! `MemoryStore`, driven by a `ManualClock`, and a simulated phone.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use tower_totp::clock::{Clock, ManualClock, UnixTime};
use tower_totp::code::Hotp;
use tower_totp::recovery::RecoveryCodes;
use tower_totp::store::{AuthenticatorId, MemoryStore};
use tower_totp::verify::Window;
use tower_totp::{ConfirmAs, Confirmation, TotpConfig, TwoFactor, UserId, Verdict};
use tower_totp_testkit::phone::Phone;

/// 2023-11-14T22:13:30Z, the first second of a 30-second step.
pub const T0: u64 = 1_700_000_010;

/// Steps the clock moves on after an enrollment: more than any window or
/// drift used in the tests, so no code a test sends is older than the
/// confirming one.
pub const AFTER_ENROLLMENT: u64 = 30;

/// An engine, its clock and its store (clones share state with the engine's).
pub struct Harness {
    pub tfa: TwoFactor,
    pub clock: ManualClock,
    pub store: MemoryStore,
}

/// The default configuration under the issuer "Acme".
pub fn config() -> TotpConfig {
    TotpConfig::new("Acme").unwrap()
}

/// The default configuration with another window.
pub fn config_with_window(behind: u32, ahead: u32, max_drift: u32) -> TotpConfig {
    config().with_window(Window::new(behind, ahead, max_drift).unwrap())
}

impl Harness {
    /// An engine with `config`, its clock at `T0`.
    pub fn new(config: TotpConfig) -> Self {
        Self::at(config, UnixTime::from_secs(T0))
    }

    /// An engine with `config`, its clock at `start`.
    pub fn at(config: TotpConfig, start: UnixTime) -> Self {
        let clock = ManualClock::new(start);
        let store = MemoryStore::new();
        let tfa = TwoFactor::builder(config)
            .clock(clock.clone())
            .store(store.clone())
            .build()
            .unwrap();
        Self { tfa, clock, store }
    }

    /// The engine's current step for its configured parameters.
    pub fn step(&self) -> u64 {
        self.tfa.config().params().step_at(self.clock.now())
    }

    /// Move the clock forward by `n` periods.
    pub fn advance_steps(&self, n: u64) {
        let period = u64::from(self.tfa.config().params().period());
        self.clock.advance(Duration::from_secs(period * n));
    }

    /// Enrol `name` for `user` and confirm it with the code of the current
    /// step, then move the clock [`AFTER_ENROLLMENT`] steps on.
    pub async fn enroll(&self, user: &UserId, name: &str) -> Device {
        self.enroll_replacing(user, name, None).await
    }

    /// As [`Harness::enroll`], replacing the authenticator `replaces`.
    pub async fn enroll_replacing(
        &self,
        user: &UserId,
        name: &str,
        replaces: Option<AuthenticatorId>,
    ) -> Device {
        let enrollment = self
            .tfa
            .start_enrollment(user, "someone@example.com", name, replaces)
            .await
            .unwrap()
            .unwrap();
        let device = Device {
            phone: Phone::new(enrollment.secret(), enrollment.params(), self.clock.clone()),
            id: enrollment.id().clone(),
            recovery: None,
        };
        let code = device.phone.code();
        match self
            .tfa
            .confirm_enrollment(user, &device.id, &code, ConfirmAs::AnotherAuthenticator)
            .await
            .unwrap()
        {
            Confirmation::Confirmed {
                authenticator,
                recovery_codes,
                ..
            } => {
                assert_eq!(authenticator, device.id);
                self.advance_steps(AFTER_ENROLLMENT);
                Device {
                    recovery: recovery_codes,
                    ..device
                }
            }
            other => panic!("enrollment not confirmed: {other:?}"),
        }
    }

    /// `verify` that must not fail with an error.
    pub async fn verify(&self, user: &UserId, input: &str) -> Verdict {
        self.tfa.verify(user, input).await.unwrap()
    }
}

/// An enrolled authenticator app: its id, the phone (on the harness's
/// clock), and the recovery codes its confirmation showed.
pub struct Device {
    pub id: AuthenticatorId,
    pub phone: Phone,
    /// Recovery codes shown when this device's enrollment was confirmed.
    pub recovery: Option<RecoveryCodes>,
}

impl Device {
    /// The code this device shows when its clock is `offset` steps away from
    /// the server's (the harness's clock is the phone's).
    pub fn code(&self, offset: i64) -> String {
        self.phone.code_at_offset(offset)
    }

    /// A well-formed code that matches no step within 20 of the server's.
    pub fn wrong_code(&self) -> String {
        self.phone.wrong_code_within(20)
    }

    /// The code of an absolute step.
    pub fn code_for_step(&self, step: u64) -> String {
        self.phone.code_for_step(step)
    }
}

/// The accepted step's offset, or a panic naming the verdict.
pub fn accepted_offset(verdict: &Verdict) -> i64 {
    match verdict {
        Verdict::Accepted { offset, .. } => *offset,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

/// A well-formed code that `hotp` shows at no step within 20 of `step`.
pub fn wrong_code(hotp: &Hotp, step: u64) -> String {
    let near: Vec<u32> = (step.saturating_sub(20)..=step.saturating_add(20))
        .map(|s| hotp.code(s))
        .collect();
    let modulus = hotp.params().modulus();
    let value = (0..modulus).find(|v| !near.contains(v)).unwrap();
    format!(
        "{value:0width$}",
        width = usize::from(hotp.params().digits())
    )
}
