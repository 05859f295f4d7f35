//! The four store traits on SQLite.
//!
//! Each method clones what it needs (ids are cheap `Arc`s and short
//! strings), then runs one closure on the connection. A method that writes
//! more than one statement opens an IMMEDIATE transaction: it takes the
//! write lock at `BEGIN`, so a read inside it cannot go stale before the
//! write, and no other process can deadlock it by upgrading a read lock.
//! Returning early drops the transaction, which rolls it back.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::recovery::RecoveryHash;
use tower_totp::seal::SealedSecret;
use tower_totp::store::{
    Activated, Activation, Authenticator, AuthenticatorId, ConfirmationStart, ConsumeOutcome,
    EnrollmentStore, PendingEnrollment, PendingLimits, PutPending, RecoveryOutcome, RecoveryStore,
    ResealOutcome, ResyncCandidate, RevokeOutcome, StepStore, StoreError, SyncState, ThrottleStore,
    UserStatus, VerificationStart,
};
use tower_totp::throttle::{Attempt, ThrottlePolicy, ThrottleState};

use crate::SqliteStore;
use crate::codec::{
    Failure, Invalid, code_params, get_opt_u64, get_u64, sealed_secret, u64_to_sql,
};

/// Begin a transaction that holds the write lock from the start.
fn write_tx(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

/// Make sure the user's row exists (epoch 0, no throttle state), so that
/// the rows that refer to it can be written.
fn ensure_user(tx: &Transaction<'_>, user: &UserId) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO users (user_id, epoch, throttle_attempts, throttle_locked_until)
         VALUES (?1, ?2, 0, ?2)
         ON CONFLICT (user_id) DO NOTHING",
    )?
    .execute(params![user.as_str(), u64_to_sql(0)])?;
    Ok(())
}

/// Increase the user's epoch by one and return it. The row must exist.
fn bump_epoch(tx: &Transaction<'_>, user: &UserId) -> Result<u64, Failure> {
    let epoch = tx
        .prepare_cached("SELECT epoch FROM users WHERE user_id = ?1")?
        .query_row(params![user.as_str()], |row| get_u64(row, 0))?;
    // Checked in Rust rather than `epoch + 1` in SQL, where an overflow
    // would silently turn the integer into a float.
    let next = epoch.checked_add(1).ok_or(Invalid("epoch"))?;
    tx.prepare_cached("UPDATE users SET epoch = ?2 WHERE user_id = ?1")?
        .execute(params![user.as_str(), u64_to_sql(next)])?;
    Ok(next)
}

/// What `clear_throttle` writes. The users row must exist.
fn clear_throttle_row(tx: &Connection, user: &UserId) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE users SET throttle_attempts = 0, throttle_locked_until = ?2
         WHERE user_id = ?1",
    )?
    .execute(params![user.as_str(), u64_to_sql(0)])?;
    Ok(())
}

/// Replace the user's recovery codes with `hashes`. The users row must
/// exist.
fn store_recovery_codes(
    tx: &Transaction<'_>,
    user: &UserId,
    hashes: &[RecoveryHash],
) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM recovery_codes WHERE user_id = ?1")?
        .execute(params![user.as_str()])?;
    let mut insert =
        tx.prepare_cached("INSERT INTO recovery_codes (user_id, hash) VALUES (?1, ?2)")?;
    for hash in hashes {
        insert.execute(params![user.as_str(), &hash.as_bytes()[..]])?;
    }
    Ok(())
}

/// The user's epoch, whether any authenticator is active, and when a reset
/// last ended the user's sessions.
fn read_status(conn: &Connection, user: &UserId) -> rusqlite::Result<UserStatus> {
    let status = conn
        .prepare_cached(
            "SELECT epoch, EXISTS (SELECT 1 FROM authenticators WHERE user_id = ?1),
                    sessions_ended_at
             FROM users WHERE user_id = ?1",
        )?
        .query_row(params![user.as_str()], |row| {
            Ok(UserStatus {
                epoch: get_u64(row, 0)?,
                enrolled: row.get(1)?,
                sessions_ended_at: get_opt_u64(row, 2)?.map(UnixTime::from_millis),
            })
        })
        .optional()?;
    Ok(status.unwrap_or_default())
}

/// [`EnrollmentStore::activate_pending`] inside its transaction: every
/// check reads before the first write, and a refusal returns before it, so
/// dropping the transaction rolls back nothing.
fn activate(tx: &Transaction<'_>, user: &UserId, a: &Activation) -> Result<Activated, Failure> {
    let replaces = tx
        .prepare_cached("SELECT replaces FROM pending_enrollments WHERE user_id = ?1 AND id = ?2")?
        .query_row(params![user.as_str(), a.pending_id.as_str()], |row| {
            row.get::<_, Option<String>>(0)
        })
        .optional()?;
    // No such pending enrollment: confirmed, replaced or expired meanwhile.
    let Some(replaces) = replaces else {
        return Ok(Activated::NoPending);
    };
    // How many are active, and whether the replaced one is among them.
    let (active, replaced_active): (i64, i64) = tx
        .prepare_cached(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE id = ?2)
             FROM authenticators WHERE user_id = ?1",
        )?
        .query_row(params![user.as_str(), replaces.as_deref()], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let had_any = active > 0;
    if a.first_only && had_any {
        return Ok(Activated::AlreadyEnrolled);
    }
    let staying =
        usize::try_from(active - replaced_active).map_err(|_| Invalid("authenticator count"))?;
    if staying >= a.max_authenticators {
        return Ok(Activated::TooMany);
    }
    let codes_left: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM recovery_codes WHERE user_id = ?1)")?
        .query_row(params![user.as_str()], |row| row.get(0))?;

    if let Some(old) = &replaces {
        tx.prepare_cached("DELETE FROM authenticators WHERE user_id = ?1 AND id = ?2")?
            .execute(params![user.as_str(), old])?;
    }
    // Copied row to row: the sealed secret is never decoded here.
    tx.prepare_cached(
        "INSERT INTO authenticators
             (user_id, id, name, secret, algorithm, digits, period, created_at,
              last_step, drift_offset, resync_step, resync_offset)
         SELECT user_id, id, name, secret, algorithm, digits, period, ?3,
                ?4, ?5, NULL, NULL
         FROM pending_enrollments WHERE user_id = ?1 AND id = ?2",
    )?
    .execute(params![
        user.as_str(),
        a.pending_id.as_str(),
        u64_to_sql(a.now.as_millis()),
        u64_to_sql(a.step),
        a.offset,
    ])?;
    // This pending enrollment only: other sessions' stay.
    tx.prepare_cached("DELETE FROM pending_enrollments WHERE user_id = ?1 AND id = ?2")?
        .execute(params![user.as_str(), a.pending_id.as_str()])?;
    let epoch = bump_epoch(tx, user)?;
    clear_throttle_row(tx, user)?;
    let recovery_issued = !had_any || !codes_left;
    if recovery_issued {
        store_recovery_codes(tx, user, &a.recovery)?;
    }
    Ok(Activated::Done {
        epoch,
        recovery_issued,
    })
}

/// The user's active authenticators, oldest first.
fn read_authenticators(conn: &Connection, user: &UserId) -> rusqlite::Result<Vec<Authenticator>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, secret, algorithm, digits, period, created_at,
                last_step, drift_offset, resync_step, resync_offset
         FROM authenticators WHERE user_id = ?1
         ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map(params![user.as_str()], |row| {
        let resync = match (get_opt_u64(row, 9)?, row.get::<_, Option<i64>>(10)?) {
            (Some(step), Some(offset)) => Some(ResyncCandidate { step, offset }),
            _ => None,
        };
        Ok(Authenticator {
            id: AuthenticatorId::new(row.get::<_, String>(0)?),
            name: row.get(1)?,
            secret: sealed_secret(row, 2)?,
            params: code_params(row, 3)?,
            created_at: UnixTime::from_millis(get_u64(row, 6)?),
            sync: SyncState {
                last_step: get_opt_u64(row, 7)?,
                offset: row.get(8)?,
                resync,
            },
        })
    })?;
    rows.collect()
}

/// The user's pending enrollment `id`, if there is one.
fn read_pending(
    conn: &Connection,
    user: &UserId,
    id: &AuthenticatorId,
) -> rusqlite::Result<Option<PendingEnrollment>> {
    conn.prepare_cached(
        "SELECT id, name, secret, algorithm, digits, period, created_at, replaces
             FROM pending_enrollments WHERE user_id = ?1 AND id = ?2",
    )?
    .query_row(params![user.as_str(), id.as_str()], |row| {
        Ok(PendingEnrollment {
            id: AuthenticatorId::new(row.get::<_, String>(0)?),
            name: row.get(1)?,
            secret: sealed_secret(row, 2)?,
            params: code_params(row, 3)?,
            created_at: UnixTime::from_millis(get_u64(row, 6)?),
            replaces: row.get::<_, Option<String>>(7)?.map(AuthenticatorId::new),
        })
    })
    .optional()
}

#[async_trait]
impl EnrollmentStore for SqliteStore {
    async fn status(&self, user: &UserId) -> Result<UserStatus, StoreError> {
        if let Some(status) = self.status_cache().and_then(|cache| cache.fresh(user)) {
            return Ok(status);
        }
        let (store, user) = (self.clone(), user.clone());
        self.run(move |conn| {
            Ok(match store.status_cache() {
                Some(cache) => cache.read_through(conn, &user, |conn| read_status(conn, &user))?,
                None => read_status(conn, &user)?,
            })
        })
        .await
    }

    /// From the status cache when its copy is fresh (other connections
    /// checked within `max_staleness`, as `status` would answer); else, and
    /// without the cache, not at hand.
    fn status_now(&self, user: &UserId) -> tower_totp::store::StatusLookup {
        match self.status_cache().and_then(|cache| cache.fresh(user)) {
            Some(status) => tower_totp::store::StatusLookup::Found(status),
            None => tower_totp::store::StatusLookup::NotAtHand,
        }
    }

    async fn authenticators(&self, user: &UserId) -> Result<Vec<Authenticator>, StoreError> {
        let user = user.clone();
        self.run(move |conn| Ok(read_authenticators(conn, &user)?))
            .await
    }

    async fn put_pending(
        &self,
        user: &UserId,
        pending: PendingEnrollment,
        limits: PendingLimits,
    ) -> Result<PutPending, StoreError> {
        let user = user.clone();
        self.run(move |conn| {
            let tx = write_tx(conn)?;
            ensure_user(&tx, &user)?;
            // Expired ones first, so they never count against the cap.
            tx.prepare_cached(
                "DELETE FROM pending_enrollments WHERE user_id = ?1 AND created_at < ?2",
            )?
            .execute(params![
                user.as_str(),
                u64_to_sql(limits.expired_before.as_millis())
            ])?;
            let waiting: i64 = tx
                .prepare_cached("SELECT COUNT(*) FROM pending_enrollments WHERE user_id = ?1")?
                .query_row(params![user.as_str()], |row| row.get(0))?;
            let waiting = usize::try_from(waiting).map_err(|_| Invalid("pending count"))?;
            if waiting >= limits.max {
                // The pruning stays, as in the memory store: expired ones
                // are gone either way.
                tx.commit()?;
                return Ok(PutPending::TooMany);
            }
            // A plain INSERT: an id already taken (a 64-bit random collision)
            // is an error, never a silent overwrite of another session's.
            tx.prepare_cached(
                "INSERT INTO pending_enrollments
                     (user_id, id, name, secret, algorithm, digits, period, created_at, replaces)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                user.as_str(),
                pending.id.as_str(),
                pending.name,
                pending.secret.to_bytes(),
                pending.params.algorithm().as_str(),
                pending.params.digits(),
                pending.params.period(),
                u64_to_sql(pending.created_at.as_millis()),
                pending.replaces.as_ref().map(AuthenticatorId::as_str),
            ])?;
            tx.commit()?;
            Ok(PutPending::Stored)
        })
        .await
    }

    async fn pending(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<Option<PendingEnrollment>, StoreError> {
        let (user, id) = (user.clone(), id.clone());
        self.run(move |conn| Ok(read_pending(conn, &user, &id)?))
            .await
    }

    async fn begin_confirmation(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        now: UnixTime,
        policy: &ThrottlePolicy,
        digits: Option<u8>,
    ) -> Result<ConfirmationStart, StoreError> {
        let (user, id, policy) = (user.clone(), id.clone(), *policy);
        self.run(move |conn| {
            // The read and the charge under the write lock taken at BEGIN,
            // as in `begin_attempt`: concurrent attempts queue up.
            let tx = write_tx(conn)?;
            let pending = read_pending(&tx, &user, &id)?;
            let attempt = match &pending {
                // The pending enrollment's row refers to the users row.
                Some(p) if Some(p.params.digits()) == digits => {
                    Some(charge_attempt(&tx, &user, now, &policy)?)
                }
                _ => None,
            };
            tx.commit()?;
            Ok(ConfirmationStart { pending, attempt })
        })
        .await
    }

    async fn remove_pending(&self, user: &UserId, id: &AuthenticatorId) -> Result<(), StoreError> {
        let (user, id) = (user.clone(), id.clone());
        self.run(move |conn| {
            conn.prepare_cached("DELETE FROM pending_enrollments WHERE user_id = ?1 AND id = ?2")?
                .execute(params![user.as_str(), id.as_str()])?;
            Ok(())
        })
        .await
    }

    async fn activate_pending(
        &self,
        user: &UserId,
        activation: &Activation,
    ) -> Result<Activated, StoreError> {
        let (user, activation) = (user.clone(), activation.clone());
        self.run_changing_status(user.clone(), move |conn| {
            let tx = write_tx(conn)?;
            let outcome = activate(&tx, &user, &activation)?;
            if matches!(outcome, Activated::Done { .. }) {
                tx.commit()?;
            }
            Ok(outcome)
        })
        .await
    }

    async fn revoke(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<RevokeOutcome, StoreError> {
        let (user, id) = (user.clone(), id.clone());
        self.run_changing_status(user.clone(), move |conn| {
            let tx = write_tx(conn)?;
            let removed = tx
                .prepare_cached("DELETE FROM authenticators WHERE user_id = ?1 AND id = ?2")?
                .execute(params![user.as_str(), id.as_str()])?;
            if removed == 0 {
                return Ok(RevokeOutcome::NotFound);
            }
            // The last one gone: the recovery codes go with it (the next
            // first enrollment issues a fresh set).
            tx.prepare_cached(
                "DELETE FROM recovery_codes WHERE user_id = ?1
                 AND NOT EXISTS (SELECT 1 FROM authenticators WHERE user_id = ?1)",
            )?
            .execute(params![user.as_str()])?;
            bump_epoch(&tx, &user)?;
            tx.commit()?;
            Ok(RevokeOutcome::Revoked)
        })
        .await
    }

    async fn reseal(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        secret: SealedSecret,
    ) -> Result<ResealOutcome, StoreError> {
        let (user, id) = (user.clone(), id.clone());
        self.run(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE authenticators SET secret = ?3 WHERE user_id = ?1 AND id = ?2",
                )?
                .execute(params![user.as_str(), id.as_str(), secret.to_bytes()])?;
            Ok(if changed > 0 {
                ResealOutcome::Resealed
            } else {
                ResealOutcome::NotFound
            })
        })
        .await
    }

    async fn reset(&self, user: &UserId, now: UnixTime) -> Result<(), StoreError> {
        let user = user.clone();
        self.run_changing_status(user.clone(), move |conn| {
            let tx = write_tx(conn)?;
            // The users row stays: it holds the epoch and the throttle state.
            ensure_user(&tx, &user)?;
            for sql in [
                "DELETE FROM authenticators WHERE user_id = ?1",
                "DELETE FROM pending_enrollments WHERE user_id = ?1",
                "DELETE FROM recovery_codes WHERE user_id = ?1",
            ] {
                tx.prepare_cached(sql)?.execute(params![user.as_str()])?;
            }
            bump_epoch(&tx, &user)?;
            tx.prepare_cached("UPDATE users SET sessions_ended_at = ?2 WHERE user_id = ?1")?
                .execute(params![user.as_str(), u64_to_sql(now.as_millis())])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl StepStore for SqliteStore {
    async fn begin_verification(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
        digits: Option<u8>,
    ) -> Result<VerificationStart, StoreError> {
        let (user, policy) = (user.clone(), *policy);
        self.run(move |conn| {
            // One transaction for the reads and the charge, IMMEDIATE since
            // it may write: the charge sees every attempt before it, and
            // the authenticators read are those the attempt was charged for.
            let tx = write_tx(conn)?;
            let status = read_status(&tx, &user)?;
            let authenticators = read_authenticators(&tx, &user)?;
            let attempt = if authenticators
                .iter()
                .any(|a| Some(a.params.digits()) == digits)
            {
                // The authenticators' rows refer to the users row.
                Some(charge_attempt(&tx, &user, now, &policy)?)
            } else {
                None
            };
            tx.commit()?;
            Ok(VerificationStart {
                status,
                authenticators,
                attempt,
            })
        })
        .await
    }

    async fn consume_step(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        step: u64,
        offset: i64,
    ) -> Result<ConsumeOutcome, StoreError> {
        let (user, id) = (user.clone(), id.clone());
        self.run(move |conn| {
            // Two writes, one transaction: a consumed step also clears the
            // user's throttle (the trait's contract, which spares the engine
            // a `clear_throttle` round trip), and no reader may see the step
            // spent with the failures still counted.
            let tx = write_tx(conn)?;
            // The compare-and-set is this one statement, under the write
            // lock taken at BEGIN: of many concurrent calls with the same
            // step (from this process or another), one changes the row and
            // the others then find `last_step < step` false.
            let consumed = tx
                .prepare_cached(
                    "UPDATE authenticators
                     SET last_step = ?3, drift_offset = ?4, resync_step = NULL, resync_offset = NULL
                     WHERE user_id = ?1 AND id = ?2 AND (last_step IS NULL OR last_step < ?3)",
                )?
                .execute(params![
                    user.as_str(),
                    id.as_str(),
                    u64_to_sql(step),
                    offset
                ])?;
            if consumed > 0 {
                // The users row exists: the authenticator just updated
                // refers to it.
                clear_throttle_row(&tx, &user)?;
                tx.commit()?;
                return Ok(ConsumeOutcome::Consumed);
            }
            // Nothing changed, so nothing is consumed whatever this read
            // says; it only tells a replay from a missing authenticator.
            // Returning drops the transaction, which rolls back nothing.
            let exists: bool = tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM authenticators WHERE user_id = ?1 AND id = ?2)",
                )?
                .query_row(params![user.as_str(), id.as_str()], |row| row.get(0))?;
            Ok(if exists {
                ConsumeOutcome::Replayed
            } else {
                ConsumeOutcome::NotFound
            })
        })
        .await
    }

    async fn record_miss(
        &self,
        user: &UserId,
        candidate: Option<(AuthenticatorId, ResyncCandidate)>,
    ) -> Result<(), StoreError> {
        let user = user.clone();
        // `None` binds NULLs: `id = NULL` is never true, so every row keeps
        // its candidate. Either way the one statement visits and rewrites
        // every authenticator row of the user, and `misses` changes in each
        // (see schema V2): the same pages are written and the same commit
        // (one `fsync`) is made whether or not a candidate is kept, so the
        // response time does not say which it was.
        let (id, step, offset) = match candidate {
            Some((id, c)) => (Some(id), Some(u64_to_sql(c.step)), Some(c.offset)),
            None => (None, None, None),
        };
        self.run(move |conn| {
            conn.prepare_cached(
                "UPDATE authenticators SET
                     misses = (misses + 1) % 4294967296,
                     resync_step = CASE WHEN id = ?2 THEN ?3 ELSE resync_step END,
                     resync_offset = CASE WHEN id = ?2 THEN ?4 ELSE resync_offset END
                 WHERE user_id = ?1",
            )?
            .execute(params![
                user.as_str(),
                id.as_ref().map(AuthenticatorId::as_str),
                step,
                offset,
            ])?;
            Ok(())
        })
        .await
    }
}

/// Read the user's throttle state, if the user has a row.
fn read_throttle(conn: &Connection, user: &UserId) -> Result<Option<ThrottleState>, Failure> {
    let raw = conn
        .prepare_cached(
            "SELECT throttle_attempts, throttle_locked_until FROM users WHERE user_id = ?1",
        )?
        .query_row(params![user.as_str()], |row| {
            Ok((row.get::<_, i64>(0)?, get_u64(row, 1)?))
        })
        .optional()?;
    let Some((attempts, locked_until)) = raw else {
        return Ok(None);
    };
    Ok(Some(ThrottleState {
        attempts: u32::try_from(attempts).map_err(|_| Invalid("throttle attempts"))?,
        locked_until: UnixTime::from_millis(locked_until),
    }))
}

/// [`ThrottleState::begin`] on the user's row, inside a write transaction.
/// The users row must exist.
fn charge_attempt(
    tx: &Transaction<'_>,
    user: &UserId,
    now: UnixTime,
    policy: &ThrottlePolicy,
) -> Result<Attempt, Failure> {
    let mut state = read_throttle(tx, user)?.unwrap_or_default();
    let attempt = state.begin(now, policy);
    if attempt == Attempt::Allowed {
        tx.prepare_cached(
            "UPDATE users SET throttle_attempts = ?2, throttle_locked_until = ?3
             WHERE user_id = ?1",
        )?
        .execute(params![
            user.as_str(),
            state.attempts,
            u64_to_sql(state.locked_until.as_millis()),
        ])?;
    }
    Ok(attempt)
}

#[async_trait]
impl ThrottleStore for SqliteStore {
    async fn begin_attempt(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
    ) -> Result<Attempt, StoreError> {
        let (user, policy) = (user.clone(), *policy);
        self.run(move |conn| {
            // Read, apply the pure transition, write: all under the write
            // lock taken at BEGIN, so concurrent attempts queue up and each
            // sees the one before it.
            let tx = write_tx(conn)?;
            ensure_user(&tx, &user)?;
            let attempt = charge_attempt(&tx, &user, now, &policy)?;
            tx.commit()?;
            Ok(attempt)
        })
        .await
    }

    async fn clear_throttle(&self, user: &UserId) -> Result<(), StoreError> {
        let user = user.clone();
        self.run(move |conn| Ok(clear_throttle_row(conn, &user)?))
            .await
    }

    async fn throttle_state(&self, user: &UserId) -> Result<ThrottleState, StoreError> {
        let user = user.clone();
        self.run(move |conn| Ok(read_throttle(conn, &user)?.unwrap_or_default()))
            .await
    }
}

#[async_trait]
impl RecoveryStore for SqliteStore {
    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        hashes: Vec<RecoveryHash>,
    ) -> Result<(), StoreError> {
        let user = user.clone();
        self.run(move |conn| {
            let tx = write_tx(conn)?;
            ensure_user(&tx, &user)?;
            store_recovery_codes(&tx, &user, &hashes)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn consume_recovery_code(
        &self,
        user: &UserId,
        hash: &RecoveryHash,
    ) -> Result<RecoveryOutcome, StoreError> {
        let (user, hash) = (user.clone(), *hash);
        self.run(move |conn| {
            // One statement, so atomic: of concurrent uses, one deletes the
            // row. SQLite compares the BLOBs with memcmp through an index,
            // not in constant time. That is acceptable here: what is
            // compared is a SHA-256 of a 60-bit random code salted with the
            // user id, so timing could at most leak bytes of a stored hash,
            // and even a whole hash only allows an offline search of about
            // 2^59 hashes per code, no better than a stolen database gives.
            let removed = conn
                .prepare_cached(
                    "DELETE FROM recovery_codes WHERE rowid =
                         (SELECT rowid FROM recovery_codes WHERE user_id = ?1 AND hash = ?2 LIMIT 1)",
                )?
                .execute(params![user.as_str(), &hash.as_bytes()[..]])?;
            Ok(if removed > 0 {
                RecoveryOutcome::Consumed
            } else {
                RecoveryOutcome::NoMatch
            })
        })
        .await
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, StoreError> {
        let user = user.clone();
        self.run(move |conn| {
            let count: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?1")?
                .query_row(params![user.as_str()], |row| row.get(0))?;
            Ok(usize::try_from(count).map_err(|_| Invalid("recovery code count"))?)
        })
        .await
    }
}
