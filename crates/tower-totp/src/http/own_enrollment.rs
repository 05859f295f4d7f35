//! The pending enrollment a session started: its id, kept in that session.
//!
//! A user may have several pending enrollments, one per session that
//! started one; the id in the session is what shows or confirms it, so
//! another session of the same user (someone else who knows the password)
//! never sees its secret and cannot confirm or replace it. The id lives
//! under a key of its own, [`ENROLLMENT_KEY`], so that the layer's check on
//! every request reads nothing more than before.

use tower_sessions::Session;

use crate::store::AuthenticatorId;

/// The session key of the pending enrollment's id.
pub(crate) const ENROLLMENT_KEY: &str = "tower_totp.enrollment";

/// The id of the pending enrollment this session started, if any.
pub(crate) async fn load(
    session: &Session,
) -> Result<Option<AuthenticatorId>, tower_sessions::session::Error> {
    Ok(match session.get_value(ENROLLMENT_KEY).await? {
        Some(serde_json::Value::String(id)) => Some(AuthenticatorId::new(id)),
        _ => None,
    })
}

/// Keep `id` as this session's pending enrollment.
pub(crate) async fn save(
    session: &Session,
    id: &AuthenticatorId,
) -> Result<(), tower_sessions::session::Error> {
    session.insert(ENROLLMENT_KEY, id.as_str()).await
}

/// This session has no pending enrollment any more (confirmed, or the
/// login ended).
pub(crate) async fn clear(session: &Session) -> Result<(), tower_sessions::session::Error> {
    session.remove_value(ENROLLMENT_KEY).await.map(|_| ())
}
