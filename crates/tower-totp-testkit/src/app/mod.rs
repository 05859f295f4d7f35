//! The in-process reference application, built once for every test, bench
//! and fuzz target that needs a whole service: tower-sessions'
//! `SessionManagerLayer` outside, a small router inside it, and
//! [`TotpLayer`](tower_totp::http::TotpLayer) around the application's
//! pages.
//!
//! | Route | What |
//! |---|---|
//! | `POST /login` | JSON `{"username", "password"}`; every password is right unless a [password check](AppBuilder::password_check) is set; then [`TotpAuth::password_verified`], answering `{"next": …}` (503 when it fails) |
//! | `POST /logout` | [`TotpAuth::logout`] |
//! | `/2fa…` | [`TotpAuth::endpoints`] |
//! | `/sensitive` | behind the layer and a 2-minute [`TotpAuth::step_up`] |
//! | `/misplaced` | a step-up *without* the layer: a setup mistake |
//! | anything else | behind the layer: [`routes::hello`], a JSON report of what the layer found |
//!
//! [`AppBuilder`] chooses the store (a [`TestStore`] over the memory store
//! by default), the clock (a [`ManualClock`] at [`START`]), the engine's
//! configuration, the [`TotpAuth`] options, the user directory, the session
//! store (or none), and the outer layers a deployment adds (the session
//! guard). A [`Client`] keeps the cookies like a browser.
//!
//! [`START`]: crate::START

mod client;
pub mod routes;
mod stack;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceBuilder};
use tower_sessions::SessionStore;
use tower_totp::clock::{Clock, ManualClock, UnixTime};
use tower_totp::http::{RememberDevice, StaticDirectory, TotpAuth, TotpAuthBuilder, UserDirectory};
use tower_totp::seal::Keyring;
use tower_totp::store::TotpStore;
use tower_totp::{ConfirmAs, TotpConfig, TwoFactor, UserId, UserInfo, UserKind};

pub use client::{Client, Reply, Target, assert_problem, assert_redirect};
pub use stack::{PasswordCheck, Stack};

use crate::phone::Phone;
use crate::store::TestStore;
use crate::{START, STEP};

/// The error of a boxed body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every answer of the app.
pub type Body = BoxBody<Bytes, BoxError>;

/// The whole service, boxed.
pub type AppService = BoxCloneSyncService<Request<Full<Bytes>>, Response<Body>, Infallible>;

/// The application under test and its handles. Clones share everything.
#[derive(Clone)]
pub struct App<S = TestStore> {
    /// The HTTP side: engine, policy, layers.
    pub auth: TotpAuth,
    /// The engine's clock.
    pub clock: ManualClock,
    /// The user directory (empty and unused when the builder was given
    /// another [`directory`](AppBuilder::directory)).
    pub users: StaticDirectory,
    /// The engine's store.
    pub store: S,
    /// Calls that reached the pages behind the layer.
    pub hits: Arc<AtomicUsize>,
    /// The whole service.
    pub service: AppService,
}

/// How to build an [`App`].
#[must_use]
pub struct AppBuilder<S = TestStore> {
    config: TotpConfig,
    clock: ManualClock,
    store: S,
    keyring: Option<Keyring>,
    users: StaticDirectory,
    /// Another directory than `users`: how to hand it to `TotpAuth`, and a
    /// handle for the login.
    directory: Option<(AuthFor, Arc<dyn UserDirectory>)>,
    customise: Box<dyn FnOnce(TotpAuthBuilder) -> TotpAuthBuilder>,
    stack: Stack,
    refuse_unknown_users: bool,
}

/// Starts the `TotpAuth` builder over an engine, with a directory.
type AuthFor = Box<dyn FnOnce(TwoFactor) -> TotpAuthBuilder>;

impl Default for AppBuilder {
    fn default() -> Self {
        Self {
            config: TotpConfig::new("Acme").expect("a valid issuer"),
            clock: ManualClock::new(UnixTime::from_secs(START)),
            store: TestStore::default(),
            keyring: None,
            users: StaticDirectory::default(),
            directory: None,
            customise: Box::new(|b| b),
            stack: Stack::new(),
            refuse_unknown_users: false,
        }
    }
}

impl<S: TotpStore + Clone> AppBuilder<S> {
    /// Use `store` as the engine's store.
    pub fn store<T: TotpStore + Clone>(self, store: T) -> AppBuilder<T> {
        AppBuilder {
            config: self.config,
            clock: self.clock,
            store,
            keyring: self.keyring,
            users: self.users,
            directory: self.directory,
            customise: self.customise,
            stack: self.stack,
            refuse_unknown_users: self.refuse_unknown_users,
        }
    }

    /// Change the engine's configuration.
    pub fn config(mut self, f: impl FnOnce(TotpConfig) -> TotpConfig) -> Self {
        self.config = f(self.config);
        self
    }

    /// Use `clock` (instances of one service share one).
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = clock;
        self
    }

    /// Seal secrets with `keys` (instances of one service load the same).
    pub fn keyring(mut self, keys: Keyring) -> Self {
        self.keyring = Some(keys);
        self
    }

    /// Use `users` as the directory (instances of one service share one).
    pub fn users(mut self, users: StaticDirectory) -> Self {
        self.users = users;
        self
    }

    /// Use `directory` instead of a [`StaticDirectory`] (a simulated fleet
    /// too large to list); [`App::users`] then stays empty and unused.
    pub fn directory<D: UserDirectory + Clone>(mut self, directory: D) -> Self {
        let lookup: Arc<dyn UserDirectory> = Arc::new(directory.clone());
        let auth_for: AuthFor = Box::new(move |engine| TotpAuth::builder(engine, directory));
        self.directory = Some((auth_for, lookup));
        self
    }

    /// Check the password of `POST /login` (its `password` member) with
    /// `check`: a wrong one is a 401. Without it, every password is right.
    pub fn password_check(
        mut self,
        check: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.stack = self.stack.password_check(check);
        self
    }

    /// Change the `TotpAuth` builder (remember-device, refusal response...).
    pub fn auth(mut self, f: impl FnOnce(TotpAuthBuilder) -> TotpAuthBuilder + 'static) -> Self {
        self.customise = Box::new(f);
        self
    }

    /// Keep the sessions in `store` instead of tower-sessions' memory store.
    pub fn session_store<T: SessionStore + Clone>(mut self, store: T) -> Self {
        self.stack = self.stack.session_store(store);
        self
    }

    /// Leave `SessionManagerLayer` out: a setup mistake.
    pub fn without_sessions(mut self) -> Self {
        self.stack = self.stack.without_sessions();
        self
    }

    /// Put [`TotpAuth::session_guard`] outside the sessions, as a service
    /// with a session store that can fail does (a failed session save is a
    /// 503, not tower-sessions' bare 500).
    pub fn session_guard(mut self) -> Self {
        self.stack = self.stack.session_guard();
        self
    }

    /// `POST /login` answers 401 for a name the directory does not know,
    /// as an application does before it hands over to tower-totp.
    pub fn refuse_unknown_users(mut self) -> Self {
        self.refuse_unknown_users = true;
        self
    }

    /// Build the engine, the HTTP side and the stack.
    ///
    /// # Panics
    ///
    /// If the engine cannot be built.
    pub fn build(self) -> App<S> {
        let mut engine = TwoFactor::builder(self.config)
            .clock(self.clock.clone())
            .store(self.store.clone());
        if let Some(keys) = self.keyring {
            engine = engine.keyring(keys);
        }
        let engine = engine.build().expect("an engine");
        let (builder, lookup) = match self.directory {
            Some((auth_for, lookup)) => (auth_for(engine), lookup),
            None => {
                let lookup: Arc<dyn UserDirectory> = Arc::new(self.users.clone());
                (TotpAuth::builder(engine, self.users.clone()), lookup)
            }
        };
        let auth = (self.customise)(builder).build();
        let hits = Arc::new(AtomicUsize::new(0));
        let mut stack = self.stack;
        if self.refuse_unknown_users {
            stack = stack.known_users(lookup);
        }
        let service = stack.build(&auth, &hits);
        App {
            auth,
            clock: self.clock,
            users: self.users,
            store: self.store,
            hits,
            service,
        }
    }
}

impl App {
    /// The reference app with every default.
    pub fn new() -> Self {
        AppBuilder::default().build()
    }

    /// A builder, with every default.
    pub fn setup() -> AppBuilder {
        AppBuilder::default()
    }
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone> App<S> {
    /// A JSON client.
    pub fn client(&self) -> Client {
        Client::of(self)
    }

    /// A browser: `Accept: text/html`.
    pub fn browser(&self) -> Client {
        self.client().html()
    }

    /// The same app with `layer` outside everything (a same-origin check).
    pub fn with_outer_layer<L, T, B>(&self, layer: L) -> Self
    where
        L: Layer<AppService, Service = T>,
        T: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        T::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        let service = ServiceBuilder::new()
            .map_response(|res: Response<B>| res.map(|b| b.map_err(Into::into).boxed()))
            .service(layer.layer(self.service.clone()));
        Self {
            service: BoxCloneSyncService::new(service),
            ..self.clone()
        }
    }

    /// Add a user to the directory.
    pub fn user(&self, name: &str, kind: UserKind, require_2fa: bool) -> UserId {
        self.users.insert(
            name,
            UserInfo {
                kind,
                require_2fa,
                display_name: format!("{name} (display)"),
            },
        );
        UserId::new(name)
    }

    /// Enroll `user` through the engine (no HTTP) as another authenticator:
    /// their phone. The confirming code's step is used.
    pub async fn enroll_directly(&self, user: &UserId) -> Phone {
        self.enroll_as(user, ConfirmAs::AnotherAuthenticator).await
    }

    /// Enroll `user` through the engine (no HTTP), confirming `as_`.
    pub async fn enroll_as(&self, user: &UserId, as_: ConfirmAs) -> Phone {
        Phone::enroll(self.auth.engine(), &self.clock, user, as_).await
    }

    /// Move the clock on.
    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    /// Move on to the next code step (the last code was used).
    pub fn next_step(&self) {
        self.clock.advance(STEP);
    }

    /// The clock, in whole seconds.
    pub fn now_secs(&self) -> u64 {
        self.clock.now().as_secs()
    }

    /// Calls that reached the pages behind the layer.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A remember-device key for tests, its cookie allowed over plain HTTP.
pub fn remember_device(ttl: Duration) -> RememberDevice {
    RememberDevice::new([42; 32], ttl).insecure_cookie()
}
