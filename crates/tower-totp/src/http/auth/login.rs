//! The login hooks the application calls: after its password check, at
//! logout, and for an administrator's reset.

use tower_sessions::Session;

use super::TotpAuth;
use crate::http::clock_hint::ClockHint;
use crate::http::own_enrollment;
use crate::http::refusal::Next;
use crate::http::session::{SessionState, session_error};
use crate::policy::Requirement;
use crate::store::StoreError;
use crate::user::UserId;

impl TotpAuth {
    /// Call once the application has checked `user`'s password: records the
    /// login in the session and says what comes next: [`Next::Done`] (2FA
    /// does not apply now), [`Next::Totp`] (`GET {prefix}` shows the second
    /// screen) or [`Next::Enroll`] (`GET {prefix}/enroll`); never
    /// [`Next::Login`].
    ///
    /// The session id is cycled here (a new login never reuses an old id).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Store`] when the user directory, the store or the
    /// session store fails; refuse the login then.
    pub async fn password_verified(
        &self,
        session: &Session,
        user: &UserId,
    ) -> Result<Next, crate::Error> {
        let info =
            self.users().user_info(user).await?.ok_or_else(|| {
                StoreError::corrupt("password_verified called for an unknown user")
            })?;
        let status = self.engine().status(user).await?;
        let requirement = self.policy().get().requirement(&info, status.enrolled);
        let state = SessionState::pending(user.clone(), self.engine().now());
        session.cycle_id().await.map_err(session_error)?;
        // A pending enrollment of an earlier login in this session is not
        // this login's.
        self.drop_own_enrollment(session).await?;
        // Nor is a clock hint an earlier login left for its landing page.
        ClockHint::forget(session).await.map_err(session_error)?;
        state.save(session).await.map_err(session_error)?;
        Ok(match requirement {
            Requirement::NotRequired => Next::Done,
            Requirement::Challenge => Next::Totp,
            Requirement::Enroll => Next::Enroll,
        })
    }

    /// An administrator's reset of `user`'s second factor: every
    /// authenticator, pending enrollment and recovery code removed, and
    /// every session of `user` ended, with an audit event
    /// (`admin_reset`) naming `admin` and `user`. The application checks
    /// that `admin` may do it.
    ///
    /// Sessions end through [`UserStatus::sessions_ended_at`](crate::store::UserStatus::sessions_ended_at),
    /// which the layer and the endpoints read with the status they read on
    /// every request anyway: a session whose password login is at or before
    /// the reset loses its login state on its next request and is answered
    /// `401 not_logged_in` (a redirect to the login page for browsers). This
    /// works with every session store, the memory one included, which
    /// cannot list sessions by user; a store that can may also delete them.
    ///
    /// The comparison is of two clock readings: the reset's, by this
    /// engine's clock, and each login's, by the clock of the instance that
    /// took the password. Instances must keep their clocks in step (NTP): a
    /// login on an instance whose clock runs `d` ahead survives a reset
    /// made less than `d` after it. A per-user login generation in the store
    /// would not depend on clocks; it is not done yet.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use tower_totp::http::{StaticDirectory, TotpAuth};
    /// use tower_totp::{TotpConfig, TwoFactor, UserId};
    ///
    /// let engine = TwoFactor::builder(TotpConfig::new("Acme").unwrap()).build().unwrap();
    /// let auth = TotpAuth::builder(engine, StaticDirectory::default()).build();
    /// auth.reset_user(&UserId::new("admin"), &UserId::new("jsmith")).await.unwrap();
    /// let status = auth.engine().status(&UserId::new("jsmith")).await.unwrap();
    /// assert!(!status.enrolled && status.sessions_ended_at.is_some());
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`crate::Error::Store`] when the store fails; nothing is reset then.
    pub async fn reset_user(&self, admin: &UserId, user: &UserId) -> Result<(), crate::Error> {
        self.engine().reset_by(admin, user).await
    }

    /// Forget the login in this session (the application may also flush the
    /// whole session).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Store`] when the session store fails.
    pub async fn logout(&self, session: &Session) -> Result<(), crate::Error> {
        self.drop_own_enrollment(session).await?;
        SessionState::clear(session).await.map_err(session_error)
    }

    /// Forget the pending enrollment this session started, in the session
    /// and in the store: it would otherwise count against the user's cap
    /// until it expires (a user who logs in again and again in one browser
    /// would run into it).
    async fn drop_own_enrollment(&self, session: &Session) -> Result<(), crate::Error> {
        let Some(id) = own_enrollment::load(session).await.map_err(session_error)? else {
            return Ok(());
        };
        if let Some(state) = SessionState::load(session).await.map_err(session_error)? {
            self.inner
                .engine
                .cancel_enrollment(&state.user, &id)
                .await?;
        }
        own_enrollment::clear(session).await.map_err(session_error)
    }

    /// The user logged in with a password in this session, if any. It
    /// reads the session only: a login that an administrator's reset
    /// ([`reset_user`](Self::reset_user)) ended is still returned here
    /// until the layer or the endpoints see the session again and clear it.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Store`] when the session store fails.
    pub async fn session_user(&self, session: &Session) -> Result<Option<UserId>, crate::Error> {
        Ok(SessionState::load(session)
            .await
            .map_err(session_error)?
            .map(|s| s.user))
    }
}
