//! Who is asked for a second factor: the admin switches and their precedence.
//!
//! | Enable TOTP 2FA | TFA for the user's kind | Require flag | Enrolled | Outcome |
//! |---|---|---|---|---|
//! | off | any | any | any | [`Requirement::NotRequired`] |
//! | on | off | any | any | [`Requirement::NotRequired`] |
//! | on | on | any | yes | [`Requirement::Challenge`] |
//! | on | on | on | no | [`Requirement::Enroll`] |
//! | on | on | off | no | [`Requirement::NotRequired`] |
//!
//! # The enrollment grace period
//!
//! [`PolicySettings::grace_days`] (0, the default, keeps the table above as
//! it is) lets a user whose outcome is [`Requirement::Enroll`] log in with
//! the password alone for that many days, counted from the first login at
//! which the requirement applied to them (see [`GracePeriod`]). After it,
//! enrolling is forced again. A grace session has **no second factor**: the
//! layer marks it [`SecondFactor::Grace`](crate::http::SecondFactor::Grace),
//! the `TotpVerified` extractor refuses it and `StepUpLayer` routes still
//! demand enrollment. Details: `docs/policy.md`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::user::{UserInfo, UserKind};

/// The admin switches of the "Two Factor Auth" tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySettings {
    /// "Enable TOTP 2FA": the global switch.
    pub enabled: bool,
    /// "TFA for Internal Users".
    pub internal_users: bool,
    /// "TFA for External Users".
    pub external_users: bool,
    /// "Grace period (days)": how many days a user who must enrol may still
    /// log in with the password alone, from the first login at which the
    /// requirement applied to them. 0 (the default): none, enrol at once.
    #[serde(default)]
    pub grace_days: u32,
}

/// Seconds in a grace day. A day is 86 400 seconds here, not a calendar
/// day: the period ends at the same clock time, whatever the time zone.
const DAY_SECS: u64 = 86_400;

impl Default for PolicySettings {
    /// On globally and for internal users, off for external users.
    fn default() -> Self {
        Self {
            enabled: true,
            internal_users: true,
            external_users: false,
            grace_days: 0,
        }
    }
}

/// A user's enrollment grace period, from [`PolicySettings::grace`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracePeriod {
    /// The last instant is the one before: at `until` enrolling is forced.
    pub until: UnixTime,
}

impl GracePeriod {
    /// Whether the period still runs at `now` (`now < until`).
    pub fn runs_at(self, now: UnixTime) -> bool {
        now < self.until
    }
}

/// What a user must do after their password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    /// Nothing: 2FA does not apply to them.
    NotRequired,
    /// Enter a code from an enrolled authenticator.
    Challenge,
    /// Enrol an authenticator first (the require flag is set and they have none).
    Enroll,
}

impl PolicySettings {
    /// Whether the switches ask users of `kind` for a second factor at all.
    pub fn applies_to(&self, kind: UserKind) -> bool {
        self.enabled
            && match kind {
                UserKind::Internal => self.internal_users,
                UserKind::External => self.external_users,
            }
    }

    /// The requirement for `user`, who has (or has not) an authenticator.
    pub fn requirement(&self, user: &UserInfo, enrolled: bool) -> Requirement {
        if !self.applies_to(user.kind) {
            Requirement::NotRequired
        } else if enrolled {
            Requirement::Challenge
        } else if user.require_2fa {
            Requirement::Enroll
        } else {
            Requirement::NotRequired
        }
    }

    /// The grace period of a user whose requirement is
    /// [`Requirement::Enroll`] and first applied at `since`; `None` when
    /// [`grace_days`](Self::grace_days) is 0.
    ///
    /// ```
    /// use tower_totp::clock::UnixTime;
    /// use tower_totp::policy::PolicySettings;
    ///
    /// let s = PolicySettings { grace_days: 7, ..PolicySettings::default() };
    /// let grace = s.grace(UnixTime::from_secs(1_000)).unwrap();
    /// assert_eq!(grace.until, UnixTime::from_secs(1_000 + 7 * 86_400));
    /// assert!(grace.runs_at(UnixTime::from_secs(1_000 + 7 * 86_400 - 1)));
    /// assert!(!grace.runs_at(grace.until));
    /// assert_eq!(PolicySettings::default().grace(UnixTime::EPOCH), None);
    /// ```
    pub fn grace(&self, since: UnixTime) -> Option<GracePeriod> {
        (self.grace_days > 0).then(|| GracePeriod {
            until: since.saturating_add(Duration::from_secs(
                u64::from(self.grace_days).saturating_mul(DAY_SECS),
            )),
        })
    }

    /// The switches in the low bits, the grace days in the high 32: one
    /// atomic word, so a reader never sees half of a change.
    fn to_bits(self) -> u64 {
        u64::from(self.enabled)
            | u64::from(self.internal_users) << 1
            | u64::from(self.external_users) << 2
            | u64::from(self.grace_days) << 32
    }

    fn from_bits(bits: u64) -> Self {
        Self {
            enabled: bits & 1 != 0,
            internal_users: bits & 2 != 0,
            external_users: bits & 4 != 0,
            // The high 32 bits: the cast keeps exactly them.
            #[allow(clippy::cast_possible_truncation)]
            grace_days: (bits >> 32) as u32,
        }
    }
}

/// The live policy: clones share it, and a change is seen by the next request.
///
/// Reading it is one atomic load, so it costs nothing on the request path.
///
/// ```
/// use tower_totp::policy::{Policy, PolicySettings};
///
/// let policy = Policy::new(PolicySettings::default());
/// let seen_by_layer = policy.clone();
/// policy.set(PolicySettings { enabled: false, ..policy.get() });
/// assert!(!seen_by_layer.get().enabled);
/// ```
#[derive(Debug, Clone)]
pub struct Policy {
    bits: Arc<AtomicU64>,
}

impl Default for Policy {
    fn default() -> Self {
        Self::new(PolicySettings::default())
    }
}

impl Policy {
    /// A live policy starting from `settings`.
    pub fn new(settings: PolicySettings) -> Self {
        Self {
            bits: Arc::new(AtomicU64::new(settings.to_bits())),
        }
    }

    /// The current settings.
    pub fn get(&self) -> PolicySettings {
        PolicySettings::from_bits(self.bits.load(Ordering::Acquire))
    }

    /// Replace the settings; the next request sees them.
    pub fn set(&self, settings: PolicySettings) {
        self.bits.store(settings.to_bits(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination of the three switches, the kind, the require flag
    /// and enrollment, against the precedence table written independently.
    #[test]
    fn every_combination_follows_the_table() {
        let mut seen = 0;
        for bits in 0u64..8 {
            let settings = PolicySettings::from_bits(bits);
            assert_eq!(PolicySettings::from_bits(settings.to_bits()), settings);
            for kind in [UserKind::Internal, UserKind::External] {
                for require_2fa in [false, true] {
                    for enrolled in [false, true] {
                        let user = UserInfo {
                            kind,
                            require_2fa,
                            display_name: String::new(),
                        };
                        let class_on = match kind {
                            UserKind::Internal => settings.internal_users,
                            UserKind::External => settings.external_users,
                        };
                        let expected = match (settings.enabled, class_on, enrolled, require_2fa) {
                            (false, _, _, _) | (true, false, _, _) => Requirement::NotRequired,
                            (true, true, true, _) => Requirement::Challenge,
                            (true, true, false, true) => Requirement::Enroll,
                            (true, true, false, false) => Requirement::NotRequired,
                        };
                        assert_eq!(
                            settings.requirement(&user, enrolled),
                            expected,
                            "{settings:?} {kind:?} require={require_2fa} enrolled={enrolled}"
                        );
                        seen += 1;
                    }
                }
            }
        }
        assert_eq!(seen, 64);
    }

    #[test]
    fn changes_are_live_across_clones() {
        let p = Policy::default();
        let q = p.clone();
        for bits in 0u64..8 {
            p.set(PolicySettings::from_bits(bits));
            assert_eq!(q.get(), PolicySettings::from_bits(bits));
        }
        let s = PolicySettings {
            grace_days: u32::MAX,
            ..PolicySettings::from_bits(5)
        };
        p.set(s);
        assert_eq!(q.get(), s);
    }

    #[test]
    fn the_grace_period_ends_after_its_days_and_saturates() {
        let s = PolicySettings {
            grace_days: 2,
            ..PolicySettings::default()
        };
        let g = s.grace(UnixTime::from_secs(10)).unwrap();
        assert!(g.runs_at(UnixTime::from_secs(10 + 2 * 86_400 - 1)));
        assert!(!g.runs_at(UnixTime::from_secs(10 + 2 * 86_400)));
        let far = PolicySettings {
            grace_days: u32::MAX,
            ..s
        };
        assert!(far.grace(UnixTime::from_secs(u64::MAX / 1000)).is_some());
    }
}
