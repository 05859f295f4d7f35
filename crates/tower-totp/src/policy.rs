//! Who is asked for a second factor: the admin switches and their precedence.
//!
//! | Enable TOTP 2FA | TFA for the user's kind | Require flag | Enrolled | Outcome |
//! |---|---|---|---|---|
//! | off | any | any | any | [`Requirement::NotRequired`] |
//! | on | off | any | any | [`Requirement::NotRequired`] |
//! | on | on | any | yes | [`Requirement::Challenge`] |
//! | on | on | on | no | [`Requirement::Enroll`] |
//! | on | on | off | no | [`Requirement::NotRequired`] |

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Serialize};

use crate::user::{UserInfo, UserKind};

/// The three admin switches of the "Two Factor Auth" tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySettings {
    /// "Enable TOTP 2FA": the global switch.
    pub enabled: bool,
    /// "TFA for Internal Users".
    pub internal_users: bool,
    /// "TFA for External Users".
    pub external_users: bool,
}

impl Default for PolicySettings {
    /// On globally and for internal users, off for external users.
    fn default() -> Self {
        Self {
            enabled: true,
            internal_users: true,
            external_users: false,
        }
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

    fn to_bits(self) -> u8 {
        u8::from(self.enabled)
            | u8::from(self.internal_users) << 1
            | u8::from(self.external_users) << 2
    }

    fn from_bits(bits: u8) -> Self {
        Self {
            enabled: bits & 1 != 0,
            internal_users: bits & 2 != 0,
            external_users: bits & 4 != 0,
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
    bits: Arc<AtomicU8>,
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
            bits: Arc::new(AtomicU8::new(settings.to_bits())),
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
        for bits in 0u8..8 {
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
        for bits in 0u8..8 {
            p.set(PolicySettings::from_bits(bits));
            assert_eq!(q.get(), PolicySettings::from_bits(bits));
        }
    }
}
