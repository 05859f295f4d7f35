//! Which lockouts have been told of already: a lockout refuses every
//! attempt until it ends, and the metric and the security event want it
//! once, not once per refused attempt.
//!
//! The stores answer a refused attempt with the time left, so `now +
//! retry_after` is the lockout's end, the same for every attempt it
//! refuses: that end, per user, is all that is kept. Bounded (10,000
//! users, quick_cache evicts the rest) and per process: another instance,
//! or this one after an eviction, tells of the same lockout once more.

use std::fmt;

use quick_cache::sync::Cache;

use crate::clock::UnixTime;
use crate::user::UserId;

/// How many users' last lockout end is kept.
const CAPACITY: usize = 10_000;

pub(super) struct Lockouts(Cache<UserId, u64>);

impl fmt::Debug for Lockouts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lockouts")
            .field("users", &self.0.len())
            .finish()
    }
}

impl Lockouts {
    pub(super) fn new() -> Self {
        Self(Cache::new(CAPACITY))
    }

    /// Whether the lockout of `user` ending at `until` is one not told of
    /// yet (and from now on, it is). Two refusals at the same moment may
    /// both say yes: about once, never never.
    pub(super) fn is_new(&self, user: &UserId, until: UnixTime) -> bool {
        let end = until.as_millis();
        if self.0.get(user) == Some(end) {
            return false;
        }
        self.0.insert(user.clone(), end);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lockout_is_new_once_and_the_next_again() {
        let l = Lockouts::new();
        let alice = UserId::new("alice");
        let bob = UserId::new("bob");
        let t = UnixTime::from_secs(100);
        assert!(l.is_new(&alice, t));
        assert!(!l.is_new(&alice, t));
        assert!(l.is_new(&bob, t));
        assert!(l.is_new(&alice, UnixTime::from_secs(102)));
    }
}
