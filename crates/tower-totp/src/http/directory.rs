//! A ready [`UserDirectory`] over an in-memory map, for tests, examples and
//! applications that keep their users in memory.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::auth::UserDirectory;
use crate::store::StoreError;
use crate::user::{UserId, UserInfo};

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

    /// Change a user's require flag; whether the user exists.
    pub fn set_require_2fa(&self, user: &UserId, require: bool) -> bool {
        match self.write().get_mut(user) {
            Some(info) => {
                info.require_2fa = require;
                true
            }
            None => false,
        }
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
    fn user_info_now(&self, user: &UserId) -> Option<Option<UserInfo>> {
        let users = self.users.read().unwrap_or_else(|p| p.into_inner());
        Some(users.get(user).map(|info| UserInfo {
            kind: info.kind,
            require_2fa: info.require_2fa,
            display_name: String::new(),
        }))
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
        let now = users.user_info_now(&ann).unwrap().unwrap();
        let awaited = users.user_info(&ann).await.unwrap().unwrap();
        assert_eq!(awaited, info);
        assert_eq!((now.kind, now.require_2fa), (info.kind, info.require_2fa));
        assert!(now.display_name.is_empty());
        // A change is seen at once; an unknown user is `Some(None)`.
        users.set_require_2fa(&ann, false);
        assert!(!users.user_info_now(&ann).unwrap().unwrap().require_2fa);
        assert_eq!(users.user_info_now(&UserId::new("bob")), Some(None));
    }
}
