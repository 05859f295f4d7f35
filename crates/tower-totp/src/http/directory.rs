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
}
