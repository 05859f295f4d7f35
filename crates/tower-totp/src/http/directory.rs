//! What the application tells us about its users ([`UserDirectory`]), and
//! a ready one over an in-memory map ([`StaticDirectory`]) for tests,
//! examples and applications that keep their users in memory.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

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
#[derive(Debug, Clone, Default)]
pub struct StaticDirectory {
    users: Arc<RwLock<HashMap<UserId, UserInfo>>>,
}

impl StaticDirectory {
    /// Add or replace a user.
    pub fn insert(&self, user: impl Into<UserId>, info: UserInfo) {
        self.write().insert(user.into(), info);
    }

    /// Remove a user.
    pub fn remove(&self, user: &UserId) -> Option<UserInfo> {
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
