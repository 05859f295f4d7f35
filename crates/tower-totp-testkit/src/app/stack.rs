//! [`Stack`]: the reference app's service over a [`TotpAuth`] built
//! elsewhere (the simulator's engine), with the sessions and the outer
//! layers a deployment adds.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use http::Response;
use http_body_util::BodyExt;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceBuilder};
use tower_sessions::{MemoryStore as SessionMemoryStore, SessionManagerLayer, SessionStore};
use tower_totp::http::{TotpAuth, UserDirectory};

use super::AppService;
use super::routes::{self, Login};

/// Wraps the router (the sessions layer).
type Wrap = Box<dyn FnOnce(AppService) -> AppService>;

/// The application's password check: user name and password, right or not.
pub type PasswordCheck = dyn Fn(&str, &str) -> bool + Send + Sync;

/// How the service around the routes is put together: the sessions (by
/// default tower-sessions' memory store, with the cookie allowed over plain
/// HTTP), the session guard, the login's checks.
#[must_use]
pub struct Stack {
    sessions: Option<Wrap>,
    session_guard: bool,
    known_users: Option<Arc<dyn UserDirectory>>,
    password: Option<Arc<PasswordCheck>>,
}

impl Default for Stack {
    fn default() -> Self {
        Self {
            sessions: Some(Box::new(|router| {
                sessions_over(SessionMemoryStore::default(), router)
            })),
            session_guard: false,
            known_users: None,
            password: None,
        }
    }
}

fn sessions_over<T: SessionStore + Clone>(store: T, router: AppService) -> AppService {
    let layer = SessionManagerLayer::new(store).with_secure(false);
    BoxCloneSyncService::new(layer.layer(router))
}

impl Stack {
    /// Memory sessions, no session guard, every login right.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep the sessions in `store` instead of a fresh memory store (a
    /// clone of a memory store shares its sessions).
    pub fn session_store<T: SessionStore + Clone>(mut self, store: T) -> Self {
        self.sessions = Some(Box::new(move |router| sessions_over(store, router)));
        self
    }

    /// Leave `SessionManagerLayer` out: a setup mistake.
    pub fn without_sessions(mut self) -> Self {
        self.sessions = None;
        self
    }

    /// Put [`TotpAuth::session_guard`] outside the sessions, as a service
    /// with a session store that can fail does (a failed session save is a
    /// 503, not tower-sessions' bare 500).
    pub fn session_guard(mut self) -> Self {
        self.session_guard = true;
        self
    }

    /// `POST /login` answers 401 for a name `users` does not know, as an
    /// application does before it hands over to tower-totp.
    pub fn known_users(mut self, users: Arc<dyn UserDirectory>) -> Self {
        self.known_users = Some(users);
        self
    }

    /// Check the password of `POST /login` (its `password` member) with
    /// `check`: a wrong one is a 401 `bad_credentials`. Without it, every
    /// password is right.
    pub fn password_check(
        mut self,
        check: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.password = Some(Arc::new(check));
        self
    }

    /// The service over `auth`; `hits` counts the calls that reach the
    /// pages behind the layer.
    pub fn build(self, auth: &TotpAuth, hits: &Arc<AtomicUsize>) -> AppService {
        let login = Login {
            auth: auth.clone(),
            users: self.known_users,
            password: self.password,
        };
        let mut service = routes::router(auth, hits, login);
        if let Some(sessions) = self.sessions {
            service = sessions(service);
        }
        if self.session_guard {
            service = BoxCloneSyncService::new(
                ServiceBuilder::new()
                    .map_response(|res: Response<_>| res.map(BodyExt::boxed))
                    .layer(auth.session_guard())
                    .service(service),
            );
        }
        service
    }
}
