//! Admin changes made by another instance, applied here at the next
//! request.
//!
//! Each instance keeps the users and the switches in memory (the layer
//! asks about them on every request) and writes them through to the
//! database. With `--redis` (several instances on one SQLite file) or
//! `--postgres` (several on one PostgreSQL), one instance's copies go stale
//! when another writes. Before each request (with a session, so not
//! `/health`), [`refresh`] asks the database one cheap question, "changed
//! since I last read?", and only if the answer is yes are both tables read
//! again, in one snapshot, and the copies replaced. The request then runs
//! with what the other instance saved. How each database answers is in
//! [`Db::if_changed`]: SQLite's `PRAGMA data_version`, a counter in shared
//! memory; with PostgreSQL a counter row bumped by a trigger in the
//! transaction of every change (see `db/postgres.rs`).
//!
//! Why not keep the switches in Redis: the users (and their password
//! hashes) stay in the database either way, so a second notification
//! channel would only move half the problem; the database is already the
//! place of record and this check costs one small read per request. A
//! failing check answers 503 rather than serving with switches that may be
//! stale (a stale copy could still have 2FA off after an admin turned it
//! on).
//!
//! With SQLite and without `--redis` one process owns the file and writes
//! through its own copies, so there is nothing to refresh and this layer is
//! not installed.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::db::Db;
use crate::respond::{Failure, Format};
use crate::settings::Settings;
use crate::users::Users;

/// The copies to keep fresh, and the database that says when.
#[derive(Debug, Clone)]
pub(crate) struct Live {
    pub(crate) db: Db,
    pub(crate) users: Users,
    pub(crate) settings: Settings,
}

impl Live {
    /// Read the users and switches again if someone else changed them
    /// since the last look; whether they were read.
    pub(crate) async fn refresh(&self) -> Result<bool, crate::DemoError> {
        let users = self.users.clone();
        let settings = self.settings.clone();
        self.db
            .if_changed(move |snapshot| {
                users.replace(snapshot.users);
                settings.replace(snapshot.settings);
            })
            .await
    }
}

/// The middleware: [`Live::refresh`], then the request; 503 if the
/// database cannot be read.
pub(crate) async fn refresh(State(live): State<Live>, req: Request, next: Next) -> Response {
    match live.refresh().await {
        Ok(reloaded) => {
            if reloaded {
                tracing::debug!("users and switches read again");
            }
            next.run(req).await
        }
        Err(e) => Failure::unavailable(Format::of(req.headers()), &e).into_response(),
    }
}
