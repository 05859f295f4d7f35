//! What the application tells us about its users ([`UserDirectory`]), and
//! a ready one over an in-memory map ([`StaticDirectory`]) for tests,
//! examples and applications that keep their users in memory.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::store::StoreError;
use crate::user::{UserId, UserInfo};

/// What the application tells us about its users.
///
/// Called on every guarded request, so keep it cheap (a cache or an
/// in-memory map in front of the user table).
#[async_trait]
pub trait UserDirectory: Send + Sync + 'static {
    /// The user's kind, "Require Two Factor Authentication" flag and display
    /// name; `None` if the user no longer exists (their session ends).
    async fn user_info(&self, user: &UserId) -> Result<Option<UserInfo>, StoreError>;

    /// The same answer as [`user_info`](Self::user_info) when the directory
    /// has it at hand without waiting (an in-memory map or cache), for the
    /// layer's check on every guarded request; [`UserLookup::NotAtHand`]
    /// when it has not, and the layer then awaits `user_info`.
    ///
    /// The layer reads only the kind and the require flag, so the display
    /// name may be left empty. The default answers `NotAtHand`; an override
    /// saves a boxed future (and, with an empty name, a copy of the name)
    /// per request. [`StaticDirectory`] overrides it.
    fn user_info_now(&self, user: &UserId) -> UserLookup {
        let _ = user;
        UserLookup::NotAtHand
    }

    /// When the enrollment requirement first applied to `user`, for the
    /// grace period ([`PolicySettings::grace_days`](crate::policy::PolicySettings::grace_days)):
    /// the time kept with the user if there is one, else `now`, kept and
    /// returned. Called by [`TotpAuth::password_verified`](super::TotpAuth::password_verified)
    /// at each login whose requirement is to enrol, so the first such login
    /// starts the period. Keep it durably, with the user (a column of the
    /// user table): a restart or a second instance must not start the
    /// period again. Set-if-absent must be one statement
    /// (`UPDATE ... SET since = COALESCE(since, $now) ... RETURNING since`),
    /// so two logins at once agree on one time.
    ///
    /// The default answers `Ok(None)`: the directory keeps no such time, and
    /// then there is no grace period (enrolling is forced at once, as with
    /// 0 days). Failing closed: a directory that cannot say when the period
    /// started must not grant one.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the time cannot be read or kept; the login is
    /// refused then (503), never let through.
    async fn requirement_since(
        &self,
        user: &UserId,
        now: UnixTime,
    ) -> Result<Option<UnixTime>, StoreError> {
        let _ = (user, now);
        Ok(None)
    }
}

/// The answer of [`UserDirectory::user_info_now`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserLookup {
    /// The user, at hand (the display name may be empty).
    Found(UserInfo),
    /// No such user: their session ends.
    NoSuchUser,
    /// Not known without waiting: ask [`UserDirectory::user_info`].
    NotAtHand,
}

/// [`StaticDirectory::set_require_2fa`] for a user it does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no such user in the directory")]
pub struct UnknownUser;

/// Users in a shared map; clones share it, and changes (such as the
/// "Require Two Factor Authentication" flag) are seen by the next request.
///
/// It keeps [`UserDirectory::requirement_since`] in memory too: the grace
/// period of a user starts again when the process does (fine for tests
/// and examples; a real application keeps it with its users).
#[derive(Debug, Clone, Default)]
pub struct StaticDirectory {
    users: Arc<RwLock<HashMap<UserId, UserInfo>>>,
    required_since: Arc<RwLock<HashMap<UserId, UnixTime>>>,
}

impl StaticDirectory {
    /// Add or replace a user.
    pub fn insert(&self, user: impl Into<UserId>, info: UserInfo) {
        self.write().insert(user.into(), info);
    }

    /// Remove a user.
    pub fn remove(&self, user: &UserId) -> Option<UserInfo> {
        self.required_since
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(user);
        self.write().remove(user)
    }

    /// Change a user's "Require Two Factor Authentication" flag.
    ///
    /// # Errors
    ///
    /// [`UnknownUser`] when the directory does not hold `user`.
    pub fn set_require_2fa(&self, user: &UserId, require: bool) -> Result<(), UnknownUser> {
        let mut users = self.write();
        let info = users.get_mut(user).ok_or(UnknownUser)?;
        info.require_2fa = require;
        Ok(())
    }

    /// A user's information.
    pub fn get(&self, user: &UserId) -> Option<UserInfo> {
        self.users
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .cloned()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<UserId, UserInfo>> {
        self.users.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl UserDirectory for StaticDirectory {
    async fn user_info(&self, user: &UserId) -> Result<Option<UserInfo>, StoreError> {
        Ok(self.get(user))
    }

    /// Always at hand; without the display name, which the layer does not
    /// read (no copy of it on every guarded request).
    fn user_info_now(&self, user: &UserId) -> UserLookup {
        let users = self.users.read().unwrap_or_else(|p| p.into_inner());
        match users.get(user) {
            Some(info) => UserLookup::Found(UserInfo {
                kind: info.kind,
                require_2fa: info.require_2fa,
                display_name: String::new(),
            }),
            None => UserLookup::NoSuchUser,
        }
    }

    async fn requirement_since(
        &self,
        user: &UserId,
        now: UnixTime,
    ) -> Result<Option<UnixTime>, StoreError> {
        if self.get(user).is_none() {
            return Ok(None);
        }
        let mut since = self
            .required_since
            .write()
            .unwrap_or_else(|p| p.into_inner());
        Ok(Some(*since.entry(user.clone()).or_insert(now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::UserKind;

    #[tokio::test]
    async fn the_answer_at_hand_is_the_awaited_one_without_the_name() {
        let users = StaticDirectory::default();
        let info = UserInfo {
            kind: UserKind::External,
            require_2fa: true,
            display_name: "Ann Example".into(),
        };
        users.insert("ann", info.clone());
        let ann = UserId::new("ann");
        let UserLookup::Found(now) = users.user_info_now(&ann) else {
            panic!("a user of a static directory is always at hand");
        };
        let awaited = users.user_info(&ann).await.unwrap().unwrap();
        assert_eq!(awaited, info);
        assert_eq!((now.kind, now.require_2fa), (info.kind, info.require_2fa));
        assert!(now.display_name.is_empty());
        // A change is seen at once; an unknown user is no such user.
        users.set_require_2fa(&ann, false).unwrap();
        assert!(matches!(
            users.user_info_now(&ann),
            UserLookup::Found(UserInfo {
                require_2fa: false,
                ..
            })
        ));
        let bob = UserId::new("bob");
        assert_eq!(users.user_info_now(&bob), UserLookup::NoSuchUser);
        assert_eq!(users.set_require_2fa(&bob, true), Err(UnknownUser));
    }
}
