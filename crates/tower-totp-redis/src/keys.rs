//! Key names.
//!
//! All of one user's state lives under keys that start with the same hash
//! tag, `{<prefix><user>}`, so Redis Cluster puts them on one slot and a
//! script may touch all of them:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `{p u}:epoch` | string | the epoch, a decimal integer (`INCR`) |
//! | `{p u}:auth` | hash | the active authenticators, fields `<field>:<id>` |
//! | `{p u}:pending` | hash | the pending enrollments, fields `<field>:<id>` |
//! | `{p u}:recovery` | set | the recovery code hashes, 32 raw bytes each |
//! | `{p u}:throttle` | hash | `attempts` and `until`; expires by itself |
//! | `{p u}:sessions_ended` | string | the last reset's time, ms since 1970 |
//!
//! `auth` fields per authenticator `<id>`: `name`, `secret` (sealed bytes),
//! `params` (JSON), `created` (ms), `last` (20-digit step), `offset`, and
//! the resync candidate `rstep` (20-digit step) and `roff`, both empty or
//! both absent when there is none.
//!
//! `pending` fields per pending enrollment `<id>` (one per session that
//! started one): `name`, `secret`, `params`, `created` (20-digit ms, which
//! the scripts compare to prune expired ones) and, if it replaces an
//! authenticator, `replaces`. One hash per user, so that `put_pending` can
//! prune, count and add in one script without knowing the ids in advance.
//! Before issue 11 the same key held one pending enrollment with the fields
//! `id`, `name`, `secret`, `params`, `created`, `replaces` (no `:<id>`):
//! those are never read as a pending enrollment, and `put_pending` deletes
//! them.
//!
//! Prefix and user id are escaped (`%` → `%25`, `{` → `%7B`, `}` → `%7D`)
//! before they go between the braces: no user id can end the hash tag early
//! or make one user's key equal another's.

use tower_totp::UserId;

/// The keys of one user.
#[derive(Debug)]
pub(crate) struct UserKeys {
    tag: String,
}

impl UserKeys {
    pub(crate) fn new(prefix: &str, user: &UserId) -> Self {
        let mut tag = String::with_capacity(prefix.len() + user.as_str().len() + 2);
        tag.push('{');
        escape_into(&mut tag, prefix);
        escape_into(&mut tag, user.as_str());
        tag.push('}');
        Self { tag }
    }

    fn key(&self, suffix: &str) -> String {
        let mut key = String::with_capacity(self.tag.len() + 1 + suffix.len());
        key.push_str(&self.tag);
        key.push(':');
        key.push_str(suffix);
        key
    }

    /// The epoch, a decimal integer.
    pub(crate) fn epoch(&self) -> String {
        self.key("epoch")
    }

    /// The active authenticators.
    pub(crate) fn auth(&self) -> String {
        self.key("auth")
    }

    /// The pending enrollments.
    pub(crate) fn pending(&self) -> String {
        self.key("pending")
    }

    /// When the last reset ended the user's sessions.
    pub(crate) fn sessions_ended(&self) -> String {
        self.key("sessions_ended")
    }

    /// The recovery code hashes.
    pub(crate) fn recovery(&self) -> String {
        self.key("recovery")
    }

    /// The throttle state.
    pub(crate) fn throttle(&self) -> String {
        self.key("throttle")
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let k = UserKeys::new("tower-totp:", &UserId::new("alice"));
        assert_eq!(k.epoch(), "{tower-totp:alice}:epoch");
        assert_eq!(k.auth(), "{tower-totp:alice}:auth");
        assert_eq!(k.throttle(), "{tower-totp:alice}:throttle");
        assert_eq!(k.pending(), "{tower-totp:alice}:pending");
        assert_eq!(k.sessions_ended(), "{tower-totp:alice}:sessions_ended");
    }

    #[test]
    fn braces_in_user_ids_cannot_break_out_of_the_tag() {
        let k = UserKeys::new("p:", &UserId::new("bob}:auth:x{"));
        assert_eq!(k.epoch(), "{p:bob%7D:auth:x%7B}:epoch");
        // Escaping is injective: `%` itself is escaped.
        let a = UserKeys::new("p:", &UserId::new("%7D"));
        let b = UserKeys::new("p:", &UserId::new("}"));
        assert_ne!(a.epoch(), b.epoch());
    }
}
