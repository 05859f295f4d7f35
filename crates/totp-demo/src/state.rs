//! What every handler shares: the TOTP handle, the users, the admin
//! switches. Its own module, below the router and the handlers, so that
//! the handlers import it without importing the router that mounts them.

use std::sync::Arc;

use tower_totp::http::TotpAuth;

use crate::activity::Activity;
use crate::health::Health;
use crate::idle_throttles::IdleThrottles;
use crate::scrape::Scrape;
use crate::settings::Settings;
use crate::users::Users;

/// What the handlers share. axum clones the state for every request, so
/// it is one pointer to [`Shared`] rather than the dozen `Arc`s inside it.
#[derive(Clone, Debug)]
pub(crate) struct AppState(Arc<Shared>);

/// The contents of [`AppState`].
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) auth: TotpAuth,
    pub(crate) users: Users,
    pub(crate) settings: Settings,
    /// When to forget the password counters nobody needs any more.
    pub(crate) idle_throttles: IdleThrottles,
    /// What `GET /health` checks.
    pub(crate) health: Health,
    /// The users' security activity.
    pub(crate) activity: Activity,
    /// What `GET /metrics` renders, and who may read it.
    pub(crate) scrape: Option<Scrape>,
}

impl AppState {
    pub(crate) fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
