//! The four store traits on PostgreSQL.
//!
//! Each method is one statement, or one transaction that starts by locking
//! the user's row in `users` (`FOR UPDATE`). That lock is what makes a
//! read-then-write atomic under PostgreSQL's default READ COMMITTED
//! isolation: operations on one user queue behind it, and each statement
//! after it reads a snapshot taken once the lock is held, so it sees every
//! write committed before. Taking the user's row first in every operation
//! that writes more than one row also means they never deadlock each
//! other. Returning early drops the transaction, which rolls it back.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, Transaction};
use tower_totp::UserId;
use tower_totp::clock::UnixTime;
use tower_totp::recovery::RecoveryHash;
use tower_totp::seal::SealedSecret;
use tower_totp::store::{
    Activated, Activation, Authenticator, AuthenticatorId, ConfirmationStart, ConsumeOutcome,
    EnrollmentStore, PendingEnrollment, PendingLimits, PutPending, RecoveryOutcome, RecoveryStore,
    ResealOutcome, ResyncCandidate, RevokeOutcome, StatusLookup, StepStore, StoreError, SyncState,
    ThrottleStore, UserStatus, VerificationStart,
};
use tower_totp::throttle::{Attempt, ThrottlePolicy, ThrottleState};

use crate::PostgresStore;
use crate::codec::{
    Invalid, code_params, db_error, get, get_opt_u64, get_u64, sealed_secret, u64_to_sql,
};

/// The columns of `users` an operation reads under the user's lock.
const USER_COLUMNS: &str = "throttle_attempts, throttle_locked_until";

/// The columns of an authenticator, as [`authenticator`] reads them.
const AUTHENTICATOR_COLUMNS: &str = "id, name, secret, algorithm, digits, period, created_at,
     last_step, drift_offset, resync_step, resync_offset";

/// The columns of a pending enrollment, as [`pending_enrollment`] reads them.
const PENDING_COLUMNS: &str = "id, name, secret, algorithm, digits, period, created_at, replaces";

/// `columns` (comma-separated) each prefixed with `alias.`.
fn qualified(alias: &str, columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `delay_after` is constant beyond 63 doublings.
const MAX_RAMP: u32 = 64;

/// Every lockout end [`ThrottleState::begin`] could set at `now`, encoded
/// for SQL: index 0 for attempt counts up to the free attempts, index `j`
/// for `free + j`, the last for every larger count (the delay stops
/// growing there). The statement picks one by the count it reads under the
/// lock, so the 64-bit time arithmetic stays in Rust (the Redis store's
/// scripts do the same).
fn ramp(now: UnixTime, policy: &ThrottlePolicy) -> Vec<i64> {
    let until = |delay| u64_to_sql(now.saturating_add(delay).as_millis());
    let mut steps = vec![until(std::time::Duration::ZERO)];
    for j in 1..=MAX_RAMP {
        let Some(n) = policy.free_attempts().checked_add(j) else {
            break;
        };
        let delay = policy.delay_after(n);
        steps.push(until(delay));
        if delay >= policy.max_delay() || n == u32::MAX {
            break;
        }
    }
    steps
}

fn throttle_state(row: &PgRow) -> Result<ThrottleState, StoreError> {
    Ok(ThrottleState {
        attempts: u32::try_from(get::<i64>(row, "throttle_attempts")?)
            .map_err(|_| Invalid("throttle attempts"))?,
        locked_until: UnixTime::from_millis(get_u64(row, "throttle_locked_until")?),
    })
}

fn authenticator(row: &PgRow) -> Result<Authenticator, StoreError> {
    let resync = match (
        get_opt_u64(row, "resync_step")?,
        get::<Option<i64>>(row, "resync_offset")?,
    ) {
        (Some(step), Some(offset)) => Some(ResyncCandidate { step, offset }),
        _ => None,
    };
    Ok(Authenticator {
        id: AuthenticatorId::new(get::<String>(row, "id")?),
        name: get(row, "name")?,
        secret: sealed_secret(row)?,
        params: code_params(row)?,
        created_at: UnixTime::from_millis(get_u64(row, "created_at")?),
        sync: SyncState {
            last_step: get_opt_u64(row, "last_step")?,
            offset: get(row, "drift_offset")?,
            resync,
        },
    })
}

fn pending_enrollment(row: &PgRow) -> Result<PendingEnrollment, StoreError> {
    Ok(PendingEnrollment {
        id: AuthenticatorId::new(get::<String>(row, "id")?),
        name: get(row, "name")?,
        secret: sealed_secret(row)?,
        params: code_params(row)?,
        created_at: UnixTime::from_millis(get_u64(row, "created_at")?),
        replaces: get::<Option<String>>(row, "replaces")?.map(AuthenticatorId::new),
    })
}

impl PostgresStore {
    /// Begin a transaction (READ COMMITTED, the server's default).
    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(db_error)
    }

    /// Lock the user's row and read its throttle state; `None` if the user
    /// has no row (then no authenticators, pending enrollments or codes
    /// either: their rows refer to it).
    async fn lock_user(
        &self,
        conn: &mut PgConnection,
        user: &UserId,
    ) -> Result<Option<ThrottleState>, StoreError> {
        let row = sqlx::query(&self.sql(&format!(
            "SELECT {USER_COLUMNS} FROM {{schema}}.users WHERE user_id = $1 FOR UPDATE"
        )))
        .bind(user.as_str())
        .fetch_optional(conn)
        .await
        .map_err(db_error)?;
        row.as_ref().map(throttle_state).transpose()
    }

    /// Make the user's row if missing (epoch 0, no throttle state), lock it
    /// and read its throttle state, in one statement: `ON CONFLICT DO
    /// UPDATE` locks the row it finds and returns its latest version.
    async fn ensure_user(
        &self,
        conn: &mut PgConnection,
        user: &UserId,
    ) -> Result<ThrottleState, StoreError> {
        let row = sqlx::query(&self.sql(&format!(
            "INSERT INTO {{schema}}.users (user_id, epoch, throttle_attempts, throttle_locked_until)
             VALUES ($1, $2, 0, $2)
             ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id
             RETURNING {USER_COLUMNS}"
        )))
        .bind(user.as_str())
        .bind(u64_to_sql(0))
        .fetch_one(conn)
        .await
        .map_err(db_error)?;
        throttle_state(&row)
    }

    /// [`ThrottleState::begin`] on `state`, the user's locked row, written
    /// back when it charges.
    async fn charge(
        &self,
        conn: &mut PgConnection,
        user: &UserId,
        mut state: ThrottleState,
        now: UnixTime,
        policy: &ThrottlePolicy,
    ) -> Result<Attempt, StoreError> {
        let attempt = state.begin(now, policy);
        if attempt == Attempt::Allowed {
            sqlx::query(&self.sql(
                "UPDATE {schema}.users SET throttle_attempts = $2, throttle_locked_until = $3
                 WHERE user_id = $1",
            ))
            .bind(user.as_str())
            .bind(i64::from(state.attempts))
            .bind(u64_to_sql(state.locked_until.as_millis()))
            .execute(conn)
            .await
            .map_err(db_error)?;
        }
        Ok(attempt)
    }

    /// The user's active authenticators, oldest first (ids in byte order,
    /// as the memory store sorts them, whatever the database's collation).
    async fn read_authenticators(
        &self,
        conn: &mut PgConnection,
        user: &UserId,
    ) -> Result<Vec<Authenticator>, StoreError> {
        let rows = sqlx::query(&self.sql(&format!(
            "SELECT {AUTHENTICATOR_COLUMNS} FROM {{schema}}.authenticators WHERE user_id = $1
             ORDER BY created_at, id COLLATE \"C\""
        )))
        .bind(user.as_str())
        .fetch_all(conn)
        .await
        .map_err(db_error)?;
        rows.iter().map(authenticator).collect()
    }

    async fn read_pending(
        &self,
        conn: &mut PgConnection,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<Option<PendingEnrollment>, StoreError> {
        let row = sqlx::query(&self.sql(&format!(
            "SELECT {PENDING_COLUMNS} FROM {{schema}}.pending_enrollments
             WHERE user_id = $1 AND id = $2"
        )))
        .bind(user.as_str())
        .bind(id.as_str())
        .fetch_optional(conn)
        .await
        .map_err(db_error)?;
        row.as_ref().map(pending_enrollment).transpose()
    }

    /// Replace the user's recovery codes; the user's row is locked.
    async fn store_recovery_codes(
        &self,
        conn: &mut PgConnection,
        user: &UserId,
        hashes: &[RecoveryHash],
    ) -> Result<(), StoreError> {
        sqlx::query(&self.sql("DELETE FROM {schema}.recovery_codes WHERE user_id = $1"))
            .bind(user.as_str())
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
        let hashes: Vec<Vec<u8>> = hashes.iter().map(|h| h.as_bytes().to_vec()).collect();
        sqlx::query(&self.sql(
            "INSERT INTO {schema}.recovery_codes (user_id, hash)
             SELECT $1, hash FROM unnest($2::bytea[]) AS hash",
        ))
        .bind(user.as_str())
        .bind(hashes)
        .execute(conn)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Increase the user's epoch by one and return it; with `clear`, also
    /// forget the throttle failures. The user's row is locked.
    async fn bump_epoch(
        &self,
        conn: &mut PgConnection,
        user: &UserId,
        clear_throttle: bool,
    ) -> Result<u64, StoreError> {
        let row = sqlx::query(&self.sql(
            "UPDATE {schema}.users SET epoch = epoch + 1,
                 throttle_attempts = CASE WHEN $2 THEN 0 ELSE throttle_attempts END,
                 throttle_locked_until = CASE WHEN $2 THEN $3 ELSE throttle_locked_until END
             WHERE user_id = $1
             RETURNING epoch",
        ))
        .bind(user.as_str())
        .bind(clear_throttle)
        .bind(u64_to_sql(0))
        .fetch_one(conn)
        .await
        .map_err(db_error)?;
        get_u64(&row, "epoch")
    }

    /// [`EnrollmentStore::activate_pending`] inside its transaction: every
    /// check reads before the first write, and a refusal returns before it.
    async fn activate(
        &self,
        conn: &mut PgConnection,
        user: &UserId,
        a: &Activation,
    ) -> Result<Activated, StoreError> {
        if self.lock_user(&mut *conn, user).await?.is_none() {
            // No row, so no pending enrollment either.
            return Ok(Activated::NoPending);
        }
        let Some(pending) = self.read_pending(&mut *conn, user, &a.pending_id).await? else {
            // Confirmed, replaced or expired meanwhile.
            return Ok(Activated::NoPending);
        };
        let counts = sqlx::query(&self.sql(
            "SELECT count(*) AS active,
                    count(*) FILTER (WHERE id = $2) AS replaced_active,
                    EXISTS (SELECT 1 FROM {schema}.recovery_codes WHERE user_id = $1) AS codes_left
             FROM {schema}.authenticators WHERE user_id = $1",
        ))
        .bind(user.as_str())
        .bind(pending.replaces.as_ref().map(AuthenticatorId::as_str))
        .fetch_one(&mut *conn)
        .await
        .map_err(db_error)?;
        let active: i64 = get(&counts, "active")?;
        let replaced_active: i64 = get(&counts, "replaced_active")?;
        let codes_left: bool = get(&counts, "codes_left")?;
        let had_any = active > 0;
        if a.first_only && had_any {
            return Ok(Activated::AlreadyEnrolled);
        }
        let staying = usize::try_from(active - replaced_active)
            .map_err(|_| Invalid("authenticator count"))?;
        if staying >= a.max_authenticators {
            return Ok(Activated::TooMany);
        }
        // The replaced one goes, the pending one becomes active (copied
        // row to row: the sealed secret is never decoded here) and leaves
        // the pending table; other sessions' pending enrollments stay.
        sqlx::query(&self.sql(
            "WITH replaced AS (
                 DELETE FROM {schema}.authenticators WHERE user_id = $1 AND id = $6
             ), activated AS (
                 DELETE FROM {schema}.pending_enrollments WHERE user_id = $1 AND id = $2
                 RETURNING user_id, id, name, secret, algorithm, digits, period
             )
             INSERT INTO {schema}.authenticators
                 (user_id, id, name, secret, algorithm, digits, period, created_at,
                  last_step, drift_offset, resync_step, resync_offset)
             SELECT user_id, id, name, secret, algorithm, digits, period, $3, $4, $5, NULL, NULL
             FROM activated",
        ))
        .bind(user.as_str())
        .bind(a.pending_id.as_str())
        .bind(u64_to_sql(a.now.as_millis()))
        .bind(u64_to_sql(a.step))
        .bind(a.offset)
        .bind(pending.replaces.as_ref().map(AuthenticatorId::as_str))
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
        let epoch = self.bump_epoch(&mut *conn, user, true).await?;
        let recovery_issued = !had_any || !codes_left;
        if recovery_issued {
            self.store_recovery_codes(&mut *conn, user, &a.recovery)
                .await?;
        }
        Ok(Activated::Done {
            epoch,
            recovery_issued,
        })
    }
}

#[async_trait]
impl EnrollmentStore for PostgresStore {
    async fn status(&self, user: &UserId) -> Result<UserStatus, StoreError> {
        let row = sqlx::query(&self.sql(
            "SELECT epoch, sessions_ended_at,
                    EXISTS (SELECT 1 FROM {schema}.authenticators a WHERE a.user_id = $1)
                        AS enrolled
             FROM {schema}.users WHERE user_id = $1",
        ))
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(UserStatus::default());
        };
        Ok(UserStatus {
            epoch: get_u64(&row, "epoch")?,
            enrolled: get(&row, "enrolled")?,
            sessions_ended_at: get_opt_u64(&row, "sessions_ended_at")?.map(UnixTime::from_millis),
        })
    }

    /// Never at hand: every answer comes from the server, so that every
    /// instance sees a revocation at once.
    fn status_now(&self, _user: &UserId) -> StatusLookup {
        StatusLookup::NotAtHand
    }

    async fn authenticators(&self, user: &UserId) -> Result<Vec<Authenticator>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        self.read_authenticators(&mut conn, user).await
    }

    async fn put_pending(
        &self,
        user: &UserId,
        pending: PendingEnrollment,
        limits: PendingLimits,
    ) -> Result<PutPending, StoreError> {
        let mut tx = self.begin().await?;
        self.ensure_user(&mut tx, user).await?;
        // Expired ones first, so they never count against the cap; then
        // the count, under the user's lock, so two sessions cannot both
        // take the last place.
        let waiting: i64 = sqlx::query_scalar(&self.sql(
            "WITH expired AS (
                 DELETE FROM {schema}.pending_enrollments WHERE user_id = $1 AND created_at < $2
                 RETURNING id
             )
             SELECT count(*) FROM {schema}.pending_enrollments
             WHERE user_id = $1 AND id NOT IN (SELECT id FROM expired)",
        ))
        .bind(user.as_str())
        .bind(u64_to_sql(limits.expired_before.as_millis()))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        let waiting = usize::try_from(waiting).map_err(|_| Invalid("pending count"))?;
        if waiting >= limits.max {
            // The pruning stays, as in the memory store.
            tx.commit().await.map_err(db_error)?;
            return Ok(PutPending::TooMany);
        }
        // A plain INSERT: an id already taken (a 64-bit random collision)
        // is an error, never a silent overwrite of another session's.
        sqlx::query(&self.sql(
            "INSERT INTO {schema}.pending_enrollments
                 (user_id, id, name, secret, algorithm, digits, period, created_at, replaces)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        ))
        .bind(user.as_str())
        .bind(pending.id.as_str())
        .bind(&pending.name)
        .bind(pending.secret.to_bytes())
        .bind(pending.params.algorithm().as_str())
        .bind(i16::from(pending.params.digits()))
        .bind(i64::from(pending.params.period()))
        .bind(u64_to_sql(pending.created_at.as_millis()))
        .bind(pending.replaces.as_ref().map(AuthenticatorId::as_str))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(PutPending::Stored)
    }

    async fn pending(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<Option<PendingEnrollment>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        self.read_pending(&mut conn, user, id).await
    }

    async fn begin_confirmation(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        now: UnixTime,
        policy: &ThrottlePolicy,
        digits: Option<u8>,
    ) -> Result<ConfirmationStart, StoreError> {
        let mut tx = self.begin().await?;
        let Some(throttle) = self.lock_user(&mut tx, user).await? else {
            // No row, so no pending enrollment to charge for.
            return Ok(ConfirmationStart {
                pending: None,
                attempt: None,
            });
        };
        let pending = self.read_pending(&mut tx, user, id).await?;
        let attempt = match &pending {
            Some(p) if Some(p.params.digits()) == digits => {
                Some(self.charge(&mut tx, user, throttle, now, policy).await?)
            }
            _ => None,
        };
        tx.commit().await.map_err(db_error)?;
        Ok(ConfirmationStart { pending, attempt })
    }

    async fn remove_pending(&self, user: &UserId, id: &AuthenticatorId) -> Result<(), StoreError> {
        sqlx::query(
            &self.sql("DELETE FROM {schema}.pending_enrollments WHERE user_id = $1 AND id = $2"),
        )
        .bind(user.as_str())
        .bind(id.as_str())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn activate_pending(
        &self,
        user: &UserId,
        activation: &Activation,
    ) -> Result<Activated, StoreError> {
        let mut tx = self.begin().await?;
        let outcome = self.activate(&mut tx, user, activation).await?;
        if matches!(outcome, Activated::Done { .. }) {
            tx.commit().await.map_err(db_error)?;
        }
        Ok(outcome)
    }

    async fn revoke(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<RevokeOutcome, StoreError> {
        let mut tx = self.begin().await?;
        if self.lock_user(&mut tx, user).await?.is_none() {
            return Ok(RevokeOutcome::NotFound);
        }
        // The last one gone: the recovery codes go with it (the next
        // first enrollment issues a fresh set).
        let removed: i64 = sqlx::query_scalar(&self.sql(
            "WITH removed AS (
                 DELETE FROM {schema}.authenticators WHERE user_id = $1 AND id = $2
                 RETURNING id
             ), codes AS (
                 DELETE FROM {schema}.recovery_codes
                 WHERE user_id = $1 AND EXISTS (SELECT 1 FROM removed)
                   AND NOT EXISTS (
                       SELECT 1 FROM {schema}.authenticators
                       WHERE user_id = $1 AND id <> $2
                   )
             )
             SELECT count(*) FROM removed",
        ))
        .bind(user.as_str())
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        if removed == 0 {
            return Ok(RevokeOutcome::NotFound);
        }
        self.bump_epoch(&mut tx, user, false).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(RevokeOutcome::Revoked)
    }

    async fn reseal(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        secret: SealedSecret,
    ) -> Result<ResealOutcome, StoreError> {
        let changed =
            sqlx::query(&self.sql(
                "UPDATE {schema}.authenticators SET secret = $3 WHERE user_id = $1 AND id = $2",
            ))
            .bind(user.as_str())
            .bind(id.as_str())
            .bind(secret.to_bytes())
            .execute(&self.pool)
            .await
            .map_err(db_error)?
            .rows_affected();
        Ok(if changed > 0 {
            ResealOutcome::Resealed
        } else {
            ResealOutcome::NotFound
        })
    }

    async fn reset(&self, user: &UserId, now: UnixTime) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        // The users row stays: it holds the epoch and the throttle state.
        self.ensure_user(&mut tx, user).await?;
        sqlx::query(&self.sql(
            "WITH a AS (DELETE FROM {schema}.authenticators WHERE user_id = $1),
                  p AS (DELETE FROM {schema}.pending_enrollments WHERE user_id = $1),
                  r AS (DELETE FROM {schema}.recovery_codes WHERE user_id = $1)
             UPDATE {schema}.users SET epoch = epoch + 1, sessions_ended_at = $2
             WHERE user_id = $1",
        ))
        .bind(user.as_str())
        .bind(u64_to_sql(now.as_millis()))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }
}

#[async_trait]
impl StepStore for PostgresStore {
    async fn begin_verification(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
        digits: Option<u8>,
    ) -> Result<VerificationStart, StoreError> {
        // One statement, one round trip. `owner` locks the user's row and
        // reads its throttle state as the lock found it (the newest
        // committed); `charged` applies `ThrottleState::begin` to it when
        // an authenticator has the code's digit count: the attempt count
        // saturates at u32::MAX, and the lockout end comes from `ramp`,
        // precomputed here for every attempt count (`throttle` module).
        // Concurrent calls queue on the lock, so each charge sees the one
        // before it. The status and the authenticators are the statement's
        // snapshot, taken before the lock: at worst a write older than
        // this call by the lock wait is missed, and what is decided on
        // them is decided again by `consume_step`'s compare-and-set.
        let ramp = ramp(now, policy);
        let rows = sqlx::query(&self.sql(&format!(
            "WITH owner AS (
                 SELECT user_id, throttle_attempts, throttle_locked_until
                 FROM {{schema}}.users WHERE user_id = $1 FOR UPDATE
             ), chargeable AS (
                 SELECT EXISTS (
                     SELECT 1 FROM {{schema}}.authenticators WHERE user_id = $1 AND digits = $3
                 ) AS yes
             ), next AS (
                 SELECT user_id, throttle_locked_until,
                        LEAST(throttle_attempts + 1, 4294967295) AS attempts
                 FROM owner
             ), charged AS (
                 UPDATE {{schema}}.users u SET
                     throttle_attempts = n.attempts,
                     throttle_locked_until = ($4::bigint[])[
                         CASE WHEN n.attempts <= $5 THEN 1
                              ELSE LEAST(n.attempts - $5, cardinality($4::bigint[]) - 1) + 1
                         END]
                 FROM next n, chargeable c
                 WHERE u.user_id = n.user_id AND c.yes AND n.throttle_locked_until <= $2
                 RETURNING 1
             )
             SELECT s.epoch, s.sessions_ended_at, o.throttle_locked_until,
                    c.yes AS chargeable, EXISTS (SELECT 1 FROM charged) AS charged,
                    a.id IS NOT NULL AS has_authenticator,
                    {}
             FROM owner o
             CROSS JOIN chargeable c
             JOIN {{schema}}.users s ON s.user_id = o.user_id
             LEFT JOIN {{schema}}.authenticators a ON a.user_id = o.user_id
             ORDER BY a.created_at, a.id COLLATE \"C\"",
            qualified("a", AUTHENTICATOR_COLUMNS),
        )))
        .bind(user.as_str())
        .bind(u64_to_sql(now.as_millis()))
        .bind(digits.map(i16::from))
        .bind(ramp)
        .bind(i64::from(policy.free_attempts()))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let Some(first) = rows.first() else {
            // No row: not enrolled, nothing to charge.
            return Ok(VerificationStart {
                status: UserStatus::default(),
                authenticators: Vec::new(),
                attempt: None,
            });
        };
        let mut authenticators = Vec::with_capacity(rows.len());
        for row in &rows {
            if get(row, "has_authenticator")? {
                authenticators.push(authenticator(row)?);
            }
        }
        let status = UserStatus {
            epoch: get_u64(first, "epoch")?,
            enrolled: !authenticators.is_empty(),
            sessions_ended_at: get_opt_u64(first, "sessions_ended_at")?.map(UnixTime::from_millis),
        };
        let attempt = if !get::<bool>(first, "chargeable")? {
            None
        } else if get(first, "charged")? {
            Some(Attempt::Allowed)
        } else {
            let until = UnixTime::from_millis(get_u64(first, "throttle_locked_until")?);
            Some(Attempt::Locked {
                retry_after: until.duration_since(now),
            })
        };
        Ok(VerificationStart {
            status,
            authenticators,
            attempt,
        })
    }

    async fn consume_step(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        step: u64,
        offset: i64,
    ) -> Result<ConsumeOutcome, StoreError> {
        // One statement. `owner` locks the user's row first (the order
        // every operation takes; the authenticator's row is locked only
        // when the join with it yields the row to update). The
        // compare-and-set is `last_step < $3`: of concurrent calls with one
        // step, the first updates the row and the others, waking up after
        // its commit, re-check the condition on the new row (READ
        // COMMITTED re-evaluates an UPDATE's WHERE on a row changed under
        // it) and update nothing. A consumed step clears the throttle in
        // the same statement, so no reader sees the step spent with its
        // failures still counted.
        let row = sqlx::query(&self.sql(
            "WITH owner AS (
                 SELECT user_id FROM {schema}.users WHERE user_id = $1 FOR UPDATE
             ), consumed AS (
                 UPDATE {schema}.authenticators a
                 SET last_step = $3, drift_offset = $4, resync_step = NULL, resync_offset = NULL
                 FROM owner
                 WHERE a.user_id = owner.user_id AND a.id = $2
                   AND (a.last_step IS NULL OR a.last_step < $3)
                 RETURNING a.user_id
             ), cleared AS (
                 UPDATE {schema}.users u SET throttle_attempts = 0, throttle_locked_until = $5
                 FROM consumed WHERE u.user_id = consumed.user_id
             )
             SELECT EXISTS (SELECT 1 FROM consumed) AS consumed,
                    EXISTS (
                        SELECT 1 FROM {schema}.authenticators WHERE user_id = $1 AND id = $2
                    ) AS known",
        ))
        .bind(user.as_str())
        .bind(id.as_str())
        .bind(u64_to_sql(step))
        .bind(offset)
        .bind(u64_to_sql(0))
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        // `known` only tells a replay from a missing authenticator: nothing
        // is consumed whatever it says.
        Ok(if get(&row, "consumed")? {
            ConsumeOutcome::Consumed
        } else if get(&row, "known")? {
            ConsumeOutcome::Replayed
        } else {
            ConsumeOutcome::NotFound
        })
    }

    async fn record_miss(
        &self,
        user: &UserId,
        candidate: Option<(AuthenticatorId, ResyncCandidate)>,
    ) -> Result<(), StoreError> {
        // `None` binds NULLs: `id = NULL` is never true, so every row keeps
        // its candidate. Either way the one statement locks the user's row
        // and rewrites every authenticator row of the user (PostgreSQL
        // writes a new row version even when the values stay), so a kept
        // candidate and a plain miss cost the server the same.
        let (id, step, offset) = match candidate {
            Some((id, c)) => (Some(id), Some(u64_to_sql(c.step)), Some(c.offset)),
            None => (None, None, None),
        };
        sqlx::query(&self.sql(
            "WITH owner AS (
                 SELECT user_id FROM {schema}.users WHERE user_id = $1 FOR UPDATE
             )
             UPDATE {schema}.authenticators a SET
                 resync_step = CASE WHEN a.id = $2 THEN $3 ELSE a.resync_step END,
                 resync_offset = CASE WHEN a.id = $2 THEN $4 ELSE a.resync_offset END
             FROM owner WHERE a.user_id = owner.user_id",
        ))
        .bind(user.as_str())
        .bind(id.as_ref().map(AuthenticatorId::as_str))
        .bind(step)
        .bind(offset)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}

#[async_trait]
impl ThrottleStore for PostgresStore {
    async fn begin_attempt(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
    ) -> Result<Attempt, StoreError> {
        // Read, apply the pure transition, write: under the user's lock, so
        // concurrent attempts queue up and each sees the one before it.
        let mut tx = self.begin().await?;
        let throttle = self.ensure_user(&mut tx, user).await?;
        let attempt = self.charge(&mut tx, user, throttle, now, policy).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(attempt)
    }

    async fn clear_throttle(&self, user: &UserId) -> Result<(), StoreError> {
        sqlx::query(&self.sql(
            "UPDATE {schema}.users SET throttle_attempts = 0, throttle_locked_until = $2
             WHERE user_id = $1",
        ))
        .bind(user.as_str())
        .bind(u64_to_sql(0))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn throttle_state(&self, user: &UserId) -> Result<ThrottleState, StoreError> {
        let row = sqlx::query(&self.sql(
            "SELECT throttle_attempts, throttle_locked_until FROM {schema}.users
             WHERE user_id = $1",
        ))
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.as_ref()
            .map_or(Ok(ThrottleState::default()), throttle_state)
    }
}

#[async_trait]
impl RecoveryStore for PostgresStore {
    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        hashes: Vec<RecoveryHash>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        self.ensure_user(&mut tx, user).await?;
        self.store_recovery_codes(&mut tx, user, &hashes).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    async fn consume_recovery_code(
        &self,
        user: &UserId,
        hash: &RecoveryHash,
    ) -> Result<RecoveryOutcome, StoreError> {
        // One statement, so atomic: of concurrent uses of one code, one
        // locks its row and deletes it; the others skip the locked row and
        // find none (`SKIP LOCKED`), or, with the same hash twice in the
        // set, take the other copy. PostgreSQL compares the hashes through
        // an index, not in constant time. That is acceptable here: what is
        // compared is a SHA-256 of a 60-bit random code salted with the
        // user id, so timing could at most leak bytes of a stored hash, and
        // even a whole hash only allows an offline search of about 2^59
        // hashes per code, no better than a stolen database gives.
        let removed = sqlx::query(&self.sql(
            "DELETE FROM {schema}.recovery_codes WHERE row_id = (
                 SELECT row_id FROM {schema}.recovery_codes
                 WHERE user_id = $1 AND hash = $2
                 LIMIT 1 FOR UPDATE SKIP LOCKED
             )",
        ))
        .bind(user.as_str())
        .bind(&hash.as_bytes()[..])
        .execute(&self.pool)
        .await
        .map_err(db_error)?
        .rows_affected();
        Ok(if removed > 0 {
            RecoveryOutcome::Consumed
        } else {
            RecoveryOutcome::NoMatch
        })
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, StoreError> {
        let count: i64 = sqlx::query_scalar(
            &self.sql("SELECT count(*) FROM {schema}.recovery_codes WHERE user_id = $1"),
        )
        .bind(user.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(usize::try_from(count).map_err(|_| Invalid("recovery code count"))?)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::codec::u64_from_sql;

    /// The index `begin_verification`'s statement picks for a stored
    /// attempt count, in Rust.
    fn pick(ramp: &[i64], stored: u32, free: u32) -> i64 {
        let attempts = i64::from(stored) + 1;
        let attempts = attempts.min(4_294_967_295);
        let len = i64::try_from(ramp.len()).unwrap_or(i64::MAX);
        let index = if attempts <= i64::from(free) {
            0
        } else {
            (attempts - i64::from(free)).min(len - 1)
        };
        ramp[usize::try_from(index).unwrap_or(usize::MAX)]
    }

    #[test]
    fn the_ramp_gives_what_throttle_state_begin_sets() {
        let policies = [
            ThrottlePolicy::default(),
            ThrottlePolicy::new(0, Duration::from_millis(1), Duration::from_secs(3600))
                .unwrap_or_default(),
            ThrottlePolicy::new(u32::MAX - 2, Duration::from_secs(1), Duration::from_secs(2))
                .unwrap_or_default(),
        ];
        for policy in policies {
            for now in [
                UnixTime::from_secs(1_000),
                UnixTime::from_millis(u64::MAX - 5),
            ] {
                let ramp = ramp(now, &policy);
                let counts = (0..200).chain([u32::MAX - 3, u32::MAX - 2, u32::MAX - 1, u32::MAX]);
                for stored in counts {
                    let mut state = ThrottleState {
                        attempts: stored,
                        locked_until: UnixTime::EPOCH,
                    };
                    assert_eq!(state.begin(now, &policy), Attempt::Allowed);
                    let picked = pick(&ramp, stored, policy.free_attempts());
                    assert_eq!(
                        u64_from_sql(picked),
                        state.locked_until.as_millis(),
                        "{policy:?} after {stored}"
                    );
                }
            }
        }
    }
}
