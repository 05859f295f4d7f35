//! [`TotpAuth`]: the shared handle an application builds once. Each layer
//! and the endpoints add their own constructor to it in their module
//! ([`TotpAuth::layer`], [`TotpAuth::endpoints`], ...); the login hooks are
//! in [`login`]. Everything else reads the handle through its methods.

mod login;

pub use login::LoginOutcome;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;

use super::clock_hint::ClockHintRule;
use super::directory::UserDirectory;
use super::language::{Languages, Strings};
use super::negotiate::Format;
use super::pages::{DefaultPages, Pages};
use super::refusal::Refusal;
use super::remember::RememberDevice;
use crate::policy::Policy;
use crate::two_factor::TwoFactor;

/// A replacement for the refusal responses: gets the refusal and what the
/// client reads.
pub type RefusalResponder = dyn Fn(&Refusal, Format) -> Response<Full<Bytes>> + Send + Sync;

/// The HTTP side's settings.
#[derive(Debug, Clone)]
struct Settings {
    prefix: String,
    login_path: String,
    after_login: String,
    pending_step_ttl: Duration,
    recent_step: Duration,
    body_limit: usize,
    clock_hint: ClockHintRule,
    languages: Languages,
}

struct Inner {
    engine: TwoFactor,
    users: Arc<dyn UserDirectory>,
    policy: Policy,
    settings: Settings,
    pages: Arc<dyn Pages>,
    responder: Option<Arc<RefusalResponder>>,
    remember: Option<RememberDevice>,
}

/// The TOTP second step for an HTTP application: build it once, then take
/// [`TotpAuth::layer`] for the routes to guard, [`TotpAuth::endpoints`] to
/// mount under the prefix, and call [`TotpAuth::password_verified`] from the
/// login handler. Cheap to clone.
#[derive(Clone)]
pub struct TotpAuth {
    inner: Arc<Inner>,
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

    /// Add (or replace) the default pages' strings for the language `tag`
    /// (`fr`, `pt-BR`), chosen by a request's `Accept-Language`. English
    /// and German are shipped; English is the fallback.
    pub fn language(mut self, tag: &str, strings: Strings) -> Self {
        self.settings.languages.add(tag, strings);
        self
    }

    /// Replace every refusal response with your own.
    pub fn refusal_response(
        mut self,
        f: impl Fn(&Refusal, Format) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Self {
        self.responder = Some(Arc::new(f));
        self
    }

    /// When an accepted code's offset earns a clock hint (default
    /// [`ClockHintRule::default`]: a step fast, or two steps slow).
    pub fn clock_hint(mut self, rule: ClockHintRule) -> Self {
        self.settings.clock_hint = rule;
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
                clock_hint: ClockHintRule::default(),
                languages: Languages::default(),
            },
            pages: Arc::new(DefaultPages),
            responder: None,
            remember: None,
        }
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

    /// The application's users.
    pub(crate) fn users(&self) -> &dyn UserDirectory {
        &*self.inner.users
    }

    /// The HTML pages.
    pub(crate) fn pages(&self) -> &dyn Pages {
        &*self.inner.pages
    }

    /// The strings of the default pages for a request's `Accept-Language`.
    /// Pages in one language get English, whatever the request asks.
    pub(crate) fn strings_for(&self, headers: &http::HeaderMap) -> Arc<Strings> {
        if self.inner.pages.uses_languages() {
            self.inner.settings.languages.pick(headers)
        } else {
            self.inner.settings.languages.pick(&http::HeaderMap::new())
        }
    }

    /// The application's own refusal responses, if it set them.
    pub(crate) fn responder(&self) -> Option<&RefusalResponder> {
        self.inner.responder.as_deref()
    }

    /// "Remember this device", if offered.
    pub(crate) fn remember(&self) -> Option<&RememberDevice> {
        self.inner.remember.as_ref()
    }

    /// The application's login page.
    pub(crate) fn login_path(&self) -> &str {
        &self.inner.settings.login_path
    }

    /// Where browsers go after the second step.
    pub(crate) fn after_login(&self) -> &str {
        &self.inner.settings.after_login
    }

    /// How long a pending second step may take.
    pub(crate) fn pending_step_ttl(&self) -> Duration {
        self.inner.settings.pending_step_ttl
    }

    /// How recent a second step must be for the recent-step endpoints.
    pub(crate) fn recent_step(&self) -> Duration {
        self.inner.settings.recent_step
    }

    /// When an accepted code earns a clock hint.
    pub(crate) fn clock_hint_rule(&self) -> ClockHintRule {
        self.inner.settings.clock_hint
    }

    /// The largest request body the endpoints read.
    pub(crate) fn body_limit(&self) -> usize {
        self.inner.settings.body_limit
    }
}
