//! Admin changes made by another instance, applied here at the next
//! request.
//!
//! Each instance keeps the users and the switches in memory (the layer
//! asks about them on every request) and writes them through to SQLite.
//! With `--redis`, several instances share one SQLite file, and one
//! instance's copies go stale when another writes. Before each request
//! (with a session, so not `/health`), [`refresh`] asks SQLite's
//! `PRAGMA data_version`, which changes whenever another connection
//! commits to the file: one counter read on this instance's connection,
//! no table read. Only if it moved are both tables read again, in one read
//! transaction, and the copies replaced. The request then runs with what
//! the other instance saved.
//!
//! Why not keep the switches in Redis: the users (and their password
//! hashes) stay in SQLite either way, so a second notification channel
//! would only move half the problem; the file is already the place of
//! record and this check costs one pragma per request. A failing check
//! answers 503 rather than serving with switches that may be stale (a
//! stale copy could still have 2FA off after an admin turned it on).
//!
//! Without `--redis` one process owns the file and writes through its own
//! copies, so there is nothing to refresh and this layer is not installed.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::db::Db;
use crate::respond::{Failure, Format};
use crate::settings::Settings;
use crate::users::Users;

/// The copies to keep fresh, and the connection whose `data_version` says
/// when.
#[derive(Debug, Clone)]
pub(crate) struct Live {
    pub(crate) db: Db,
    pub(crate) users: Users,
    pub(crate) settings: Settings,
}

impl Live {
    /// Read the users and switches again if another connection changed
    /// the file since the last look; whether they were read.
    pub(crate) async fn refresh(&self) -> Result<bool, crate::DemoError> {
        let users = self.users.clone();
        let settings = self.settings.clone();
        self.db
            .if_changed(move |conn| {
                // One snapshot of both tables: never the users of one
                // admin change with the switches of the one before.
                let tx = conn.transaction()?;
                users.reload(&tx)?;
                settings.reload(&tx)?;
                tx.commit()
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
