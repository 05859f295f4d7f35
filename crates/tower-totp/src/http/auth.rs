//! [`TotpAuth`]: the shared handle an application builds once, and from
//! which it gets the layer, the endpoints and the login hook.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use tower_sessions::Session;

use super::endpoints::Endpoints;
use super::layer::TotpLayer;
use super::pages::{DefaultPages, Pages};
use super::refusal::{
    Next, Refusal, RefusalReason, page_response, problem_response, redirect_response,
};
use super::remember::RememberDevice;
use super::same_origin::SameOriginLayer;
use super::session::{SessionState, Stage};
use super::session_guard::SessionGuardLayer;
use super::step_up::StepUpLayer;
use crate::policy::{Policy, Requirement};
use crate::store::StoreError;
use crate::two_factor::TwoFactor;
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
    /// layer's check on every guarded request; `None` when it has not, and
    /// the layer then awaits `user_info`. `Some(None)`: no such user.
    ///
    /// The layer reads only the kind and the require flag, so the display
    /// name may be left empty. The default returns `None`; an override saves
    /// a boxed future (and, with an empty name, a copy of the name) per
    /// request. [`StaticDirectory`](super::StaticDirectory) overrides it.
    fn user_info_now(&self, user: &UserId) -> Option<Option<UserInfo>> {
        let _ = user;
        None
    }
}

/// A replacement for the refusal responses: gets the refusal and whether the
/// client wants HTML.
pub type RefusalResponder = dyn Fn(&Refusal, bool) -> Response<Full<Bytes>> + Send + Sync;

/// What comes after the password, as [`TotpAuth::password_verified`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Logged in: 2FA does not apply to this user now.
    Done,
    /// Enter a code (`GET {prefix}` shows the second screen).
    Totp,
    /// Enrol first (`GET {prefix}/enroll`).
    Enroll,
}

impl NextStep {
    /// As the `next` member of JSON answers.
    pub fn as_next(self) -> Next {
        match self {
            Self::Done => Next::Done,
            Self::Totp => Next::Totp,
            Self::Enroll => Next::Enroll,
        }
    }
}

/// The HTTP side's settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) prefix: String,
    pub(crate) login_path: String,
    pub(crate) after_login: String,
    pub(crate) pending_step_ttl: Duration,
    pub(crate) recent_step: Duration,
    pub(crate) body_limit: usize,
}

pub(crate) struct Inner {
    pub(crate) engine: TwoFactor,
    pub(crate) users: Arc<dyn UserDirectory>,
    pub(crate) policy: Policy,
    pub(crate) settings: Settings,
    pub(crate) pages: Arc<dyn Pages>,
    pub(crate) responder: Option<Arc<RefusalResponder>>,
    pub(crate) remember: Option<RememberDevice>,
}

/// The TOTP second step for an HTTP application: build it once, then take
/// [`TotpAuth::layer`] for the routes to guard, [`TotpAuth::endpoints`] to
/// mount under the prefix, and call [`TotpAuth::password_verified`] from the
/// login handler. Cheap to clone.
#[derive(Clone)]
pub struct TotpAuth {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for TotpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpAuth")
            .field("engine", &self.inner.engine)
            .field("policy", &self.inner.policy)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// Builds a [`TotpAuth`].
#[must_use]
pub struct TotpAuthBuilder {
    engine: TwoFactor,
    users: Arc<dyn UserDirectory>,
    policy: Policy,
    settings: Settings,
    pages: Arc<dyn Pages>,
    responder: Option<Arc<RefusalResponder>>,
    remember: Option<RememberDevice>,
}

impl fmt::Debug for TotpAuthBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpAuthBuilder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl TotpAuthBuilder {
    /// The live admin policy (default: [`Policy::default`]). Keep a clone to
    /// change it at run time.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Where the endpoints are mounted (default `/2fa`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        let p: String = prefix.into();
        self.settings.prefix = format!("/{}", p.trim_matches('/'));
        self
    }

    /// The application's login page, where browsers go when the login
    /// must start again (default `/login`).
    pub fn login_path(mut self, path: impl Into<String>) -> Self {
        self.settings.login_path = path.into();
        self
    }

    /// Where browsers go after the second step (default `/`).
    pub fn after_login(mut self, path: impl Into<String>) -> Self {
        self.settings.after_login = path.into();
        self
    }

    /// How long a pending second step may take (default 5 minutes).
    pub fn pending_step_ttl(mut self, ttl: Duration) -> Self {
        self.settings.pending_step_ttl = ttl;
        self
    }

    /// How recent a second step must be to re-sync, list or revoke
    /// authenticators and issue new recovery codes (default 5 minutes).
    pub fn recent_step(mut self, window: Duration) -> Self {
        self.settings.recent_step = window;
        self
    }

    /// Largest request body the endpoints read (default 16 KiB).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.settings.body_limit = bytes;
        self
    }

    /// Replace the HTML pages.
    pub fn pages(mut self, pages: impl Pages) -> Self {
        self.pages = Arc::new(pages);
        self
    }

    /// Replace every refusal response with your own.
    pub fn refusal_response(
        mut self,
        f: impl Fn(&Refusal, bool) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Self {
        self.responder = Some(Arc::new(f));
        self
    }

    /// Offer "remember this device" (off by default).
    pub fn remember_device(mut self, remember: RememberDevice) -> Self {
        self.remember = Some(remember);
        self
    }

    /// The handle.
    pub fn build(self) -> TotpAuth {
        TotpAuth {
            inner: Arc::new(Inner {
                engine: self.engine,
                users: self.users,
                policy: self.policy,
                settings: self.settings,
                pages: self.pages,
                responder: self.responder,
                remember: self.remember,
            }),
        }
    }
}

impl TotpAuth {
    /// Start building over `engine` and the application's `users`.
    pub fn builder(engine: TwoFactor, users: impl UserDirectory) -> TotpAuthBuilder {
        TotpAuthBuilder {
            engine,
            users: Arc::new(users),
            policy: Policy::default(),
            settings: Settings {
                prefix: "/2fa".into(),
                login_path: "/login".into(),
                after_login: "/".into(),
                pending_step_ttl: Duration::from_secs(5 * 60),
                recent_step: Duration::from_secs(5 * 60),
                body_limit: 16 * 1024,
            },
            pages: Arc::new(DefaultPages),
            responder: None,
            remember: None,
        }
    }

    /// The layer that guards the application's routes.
    pub fn layer(&self) -> TotpLayer {
        TotpLayer::new(self.clone())
    }

    /// A layer for sensitive routes: demands a second step done within
    /// `max_age` (inside [`TotpAuth::layer`]).
    pub fn step_up(&self, max_age: Duration) -> StepUpLayer {
        StepUpLayer::new(self.clone(), max_age)
    }

    /// A layer for right outside tower-sessions' `SessionManagerLayer`: when
    /// the session store fails to save a session after the application
    /// answered, tower-sessions replies with a bare 500; this turns it into
    /// the 503 refusal the layer gives for any failing store.
    pub fn session_guard(&self) -> SessionGuardLayer {
        SessionGuardLayer::new(self.clone())
    }

    /// A [`SameOriginLayer`] (own origin from the request's host) whose
    /// refusals look like this handle's: its refusal response or pages.
    /// Place it outside the session layer, around every route.
    pub fn same_origin(&self) -> SameOriginLayer {
        let auth = self.clone();
        SameOriginLayer::new().refusal_response(move |refusal, html| auth.refuse(*refusal, html))
    }

    /// The `/2fa` endpoints, a `tower::Service` to mount at the prefix.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints::new(self.clone())
    }

    /// The engine.
    pub fn engine(&self) -> &TwoFactor {
        &self.inner.engine
    }

    /// The live policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The prefix the endpoints are mounted at.
    pub fn prefix(&self) -> &str {
        &self.inner.settings.prefix
    }

    /// Call once the application has checked `user`'s password: records the
    /// login in the session and says what comes next.
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
    ) -> Result<NextStep, crate::Error> {
        let info =
            self.inner.users.user_info(user).await?.ok_or_else(|| {
                StoreError::corrupt("password_verified called for an unknown user")
            })?;
        let status = self.inner.engine.status(user).await?;
        let requirement = self.inner.policy.get().requirement(&info, status.enrolled);
        let state = SessionState {
            user: user.clone(),
            since: self.inner.engine.now(),
            stage: Stage::Pending,
        };
        session.cycle_id().await.map_err(session_error)?;
        // A pending enrollment of an earlier login in this session is not
        // this login's.
        self.drop_own_enrollment(session).await?;
        state.save(session).await.map_err(session_error)?;
        Ok(match requirement {
            Requirement::NotRequired => NextStep::Done,
            Requirement::Challenge => NextStep::Totp,
            Requirement::Enroll => NextStep::Enroll,
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
        self.inner.engine.reset_by(admin, user).await
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
        let Some(id) = super::own_enrollment::load(session)
            .await
            .map_err(session_error)?
        else {
            return Ok(());
        };
        if let Some(state) = SessionState::load(session).await.map_err(session_error)? {
            self.inner
                .engine
                .cancel_enrollment(&state.user, &id)
                .await?;
        }
        super::own_enrollment::clear(session)
            .await
            .map_err(session_error)
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

    /// The response for a refusal: the application's own if it set one,
    /// else a redirect or page for browsers and problem+json for the rest.
    pub(crate) fn refuse(&self, refusal: Refusal, html: bool) -> Response<Full<Bytes>> {
        if let Some(f) = &self.inner.responder {
            let mut res = f(&refusal, html);
            res.extensions_mut().insert(refusal);
            return res;
        }
        if !html {
            return problem_response(&refusal);
        }
        let s = &self.inner.settings;
        let to = match (refusal.reason, refusal.next) {
            (RefusalReason::CodeRejected(_) | RefusalReason::Throttled { .. }, _) => None,
            (_, Some(Next::Login)) => Some(s.login_path.clone()),
            (_, Some(Next::Totp)) => Some(s.prefix.clone()),
            (_, Some(Next::Enroll)) => Some(format!("{}/enroll", s.prefix)),
            _ => None,
        };
        match to {
            Some(location) => redirect_response(&location, &refusal),
            None => page_response(self.inner.pages.message(&refusal), &refusal),
        }
    }
}

pub(crate) fn session_error(e: tower_sessions::session::Error) -> crate::Error {
    crate::Error::Store(StoreError::unavailable(e))
}
