//! The demo's own tables (users and the admin switches) behind one
//! interface, in SQLite ([`sqlite`]) or PostgreSQL ([`postgres`]).
//!
//! Each backend module holds only the SQL of its database; what the rows
//! mean (password hashes, the in-memory copies, who may change what) is in
//! [`crate::users`] and [`crate::settings`], written once for both. The
//! operations are the few the demo needs, each one statement or one
//! transaction, so that two instances writing at once never undo each
//! other.
//!
//! An enum rather than a trait object: there are exactly two backends, both
//! in this crate, and the start-up calls must stay synchronous for SQLite
//! (see [`Db::users`]), which a boxed `async_trait` future would hide.

pub(crate) mod postgres;
pub(crate) mod sqlite;

use tower_totp::policy::PolicySettings;

use crate::error::DemoError;
use crate::users::User;

/// A row of the user table: the user and its argon2id password hash (a
/// PHC string, the same in both databases).
#[derive(Clone)]
pub(crate) struct UserRecord {
    pub(crate) user: User,
    pub(crate) password_hash: String,
}

/// Both tables as one read saw them: never the users of one admin change
/// with the switches of the one before.
pub(crate) struct Snapshot {
    pub(crate) users: Vec<UserRecord>,
    /// `None` if the switches were never saved.
    pub(crate) settings: Option<PolicySettings>,
}

/// One security event of a user, as both databases keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventRow {
    /// When, Unix milliseconds.
    pub(crate) at_ms: i64,
    /// The event's name (`enrollment_completed`...).
    pub(crate) kind: String,
    /// The sentence shown to the user.
    pub(crate) detail: String,
}

/// Any of the switches; `None` keeps the saved value.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SettingsPatch {
    pub(crate) enabled: Option<bool>,
    pub(crate) internal_users: Option<bool>,
    pub(crate) external_users: Option<bool>,
    /// At most [`crate::settings::MAX_GRACE_DAYS`] (checked by the caller).
    pub(crate) grace_days: Option<u32>,
}

/// The demo's tables in one of the two databases. PostgreSQL calls made
/// while serving are bounded by the store timeout; SQLite's wait on the
/// local file by its busy timeout (and `GET /health`'s bound). Clones share the
/// connection (SQLite) or the pool (PostgreSQL).
#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(sqlite::Db),
    Postgres(postgres::Db),
}

impl Db {
    /// Every user. Start-up only: with SQLite this runs on the calling
    /// thread and never waits, so `app` can build the demo without a
    /// runtime (the future is ready at its first poll).
    pub(crate) async fn users(&self) -> Result<Vec<UserRecord>, DemoError> {
        match self {
            Self::Sqlite(db) => db.users(),
            Self::Postgres(db) => db.users().await,
        }
    }

    /// If the user table is empty, insert `rows`; whether this call did,
    /// and the table as it is afterwards. One transaction that waits out
    /// any other instance doing the same, so that of several instances
    /// starting at once on a new database exactly one seeds. Start-up only
    /// (like [`Db::users`]).
    pub(crate) async fn seed_users(
        &self,
        rows: Vec<UserRecord>,
    ) -> Result<(bool, Vec<UserRecord>), DemoError> {
        match self {
            Self::Sqlite(db) => db.seed_users(&rows),
            Self::Postgres(db) => db.seed_users(&rows).await,
        }
    }

    /// Insert the `rows` whose user names are missing, keep the others;
    /// the table afterwards. Start-up only (like [`Db::users`]).
    #[cfg(feature = "load-baseline")]
    pub(crate) async fn add_missing_users(
        &self,
        rows: Vec<UserRecord>,
    ) -> Result<Vec<UserRecord>, DemoError> {
        match self {
            Self::Sqlite(db) => db.add_missing_users(&rows),
            Self::Postgres(db) => db.add_missing_users(&rows).await,
        }
    }

    /// Save `defaults` unless switches are saved already; the saved ones.
    /// Start-up only (like [`Db::users`]).
    pub(crate) async fn init_settings(
        &self,
        defaults: PolicySettings,
    ) -> Result<PolicySettings, DemoError> {
        match self {
            Self::Sqlite(db) => db.init_settings(defaults),
            Self::Postgres(db) => db.init_settings(defaults).await,
        }
    }

    /// One cheap read of the demo's tables, for `GET /health` (which bounds
    /// it).
    pub(crate) async fn ping(&self) -> Result<(), DemoError> {
        match self {
            Self::Sqlite(db) => db.ping().await,
            Self::Postgres(db) => db.ping().await,
        }
    }

    /// Set a user's "Require Two Factor Authentication" flag; whether the
    /// user exists.
    pub(crate) async fn set_require_2fa(
        &self,
        username: String,
        require: bool,
    ) -> Result<bool, DemoError> {
        match self {
            Self::Sqlite(db) => db.set_require_2fa(username, require).await,
            Self::Postgres(db) => db.bounded(db.set_require_2fa(&username, require)).await,
        }
    }

    /// When the enrollment requirement first applied to `username` (Unix
    /// milliseconds): the time kept, or `now_ms` kept and returned. One
    /// statement, so two logins at once agree on one time.
    pub(crate) async fn requirement_since(
        &self,
        username: String,
        now_ms: i64,
    ) -> Result<i64, DemoError> {
        match self {
            Self::Sqlite(db) => db.requirement_since(username, now_ms).await,
            Self::Postgres(db) => db.bounded(db.requirement_since(&username, now_ms)).await,
        }
    }

    /// The newest `limit` security events of `username`, newest first.
    pub(crate) async fn recent_events(
        &self,
        username: String,
        limit: usize,
    ) -> Result<Vec<EventRow>, DemoError> {
        match self {
            Self::Sqlite(db) => db.recent_events(username, limit).await,
            Self::Postgres(db) => db.bounded(db.recent_events(&username, limit)).await,
        }
    }

    /// Keep `event` of `username`, and only the newest `kept` of theirs:
    /// a guesser who locks an account again and again cannot grow the
    /// table without end. One transaction (SQLite) or one statement.
    pub(crate) async fn add_event(
        &self,
        username: String,
        event: EventRow,
        kept: usize,
    ) -> Result<(), DemoError> {
        match self {
            Self::Sqlite(db) => db.add_event(username, event, kept).await,
            Self::Postgres(db) => db.bounded(db.add_event(&username, event, kept)).await,
        }
    }

    /// Save all the switches.
    pub(crate) async fn save_settings(&self, s: PolicySettings) -> Result<(), DemoError> {
        match self {
            Self::Sqlite(db) => db.save_settings(s).await,
            Self::Postgres(db) => db.bounded(db.save_settings(s)).await,
        }
    }

    /// Change the switches `patch` names in one statement; all of them
    /// afterwards.
    pub(crate) async fn patch_settings(
        &self,
        patch: SettingsPatch,
    ) -> Result<PolicySettings, DemoError> {
        match self {
            Self::Sqlite(db) => db.patch_settings(patch).await,
            Self::Postgres(db) => db.bounded(db.patch_settings(patch)).await,
        }
    }

    /// If someone else (another instance, or a hand edit) committed a
    /// change to the tables since the last call that applied one, read both
    /// tables in one snapshot and hand it to `apply`; whether it did. The
    /// first call always does. `apply` runs before any later snapshot is
    /// applied, so copies never go back to an older state.
    pub(crate) async fn if_changed(
        &self,
        apply: impl FnOnce(Snapshot) + Send + 'static,
    ) -> Result<bool, DemoError> {
        match self {
            Self::Sqlite(db) => db.if_changed(apply).await,
            Self::Postgres(db) => db.bounded(db.if_changed(apply)).await,
        }
    }
}

/// How both databases spell a user kind: its serialised name, which
/// [`kind_from_sql`] reads back.
fn kind_to_sql(kind: tower_totp::UserKind) -> &'static str {
    kind.as_str()
}

/// The kind spelled `text`; anything but `external` is internal, the kind
/// the switches ask more of.
fn kind_from_sql(text: &str) -> tower_totp::UserKind {
    if text == "external" {
        tower_totp::UserKind::External
    } else {
        tower_totp::UserKind::Internal
    }
}
