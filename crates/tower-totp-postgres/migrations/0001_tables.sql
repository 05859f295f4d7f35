-- Version 1: users, authenticators, pending enrollments, recovery codes.
-- `{schema}` is replaced by the store's quoted schema name.
--
-- Every u64 (steps, epochs, times in milliseconds) is a BIGINT through the
-- order-preserving map of codec::u64_to_sql (the top bit flipped), so
-- `last_step < $3` compares as Rust compares the u64s, and `epoch + 1`
-- is the next epoch (an overflow is an error, never a wrap). Offsets are
-- BIGINTs as they are.
--
-- `users` holds the epoch and the throttle state; its rows are never
-- deleted, not even by a reset, so the epoch never goes back. Every
-- operation that changes more than one row of a user takes this row's
-- lock first, so they queue per user and never deadlock each other.
CREATE TABLE {schema}.users (
    user_id               TEXT   NOT NULL PRIMARY KEY,
    epoch                 BIGINT NOT NULL,
    throttle_attempts     BIGINT NOT NULL CHECK (throttle_attempts BETWEEN 0 AND 4294967295),
    throttle_locked_until BIGINT NOT NULL,
    sessions_ended_at     BIGINT
);

CREATE TABLE {schema}.authenticators (
    user_id       TEXT     NOT NULL REFERENCES {schema}.users (user_id),
    id            TEXT     NOT NULL,
    name          TEXT     NOT NULL,
    secret        BYTEA    NOT NULL,
    algorithm     TEXT     NOT NULL,
    digits        SMALLINT NOT NULL,
    period        BIGINT   NOT NULL,
    created_at    BIGINT   NOT NULL,
    last_step     BIGINT,
    drift_offset  BIGINT   NOT NULL,
    resync_step   BIGINT,
    resync_offset BIGINT,
    PRIMARY KEY (user_id, id),
    CHECK ((resync_step IS NULL) = (resync_offset IS NULL))
);

-- One per session that started an enrollment: several may wait at once.
CREATE TABLE {schema}.pending_enrollments (
    user_id    TEXT     NOT NULL REFERENCES {schema}.users (user_id),
    id         TEXT     NOT NULL,
    name       TEXT     NOT NULL,
    secret     BYTEA    NOT NULL,
    algorithm  TEXT     NOT NULL,
    digits     SMALLINT NOT NULL,
    period     BIGINT   NOT NULL,
    created_at BIGINT   NOT NULL,
    replaces   TEXT,
    PRIMARY KEY (user_id, id)
);

-- No uniqueness on (user_id, hash): like the memory store, a set holding
-- the same hash twice keeps both, and each use removes one (by its row id).
CREATE TABLE {schema}.recovery_codes (
    row_id  BIGINT NOT NULL GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id TEXT   NOT NULL REFERENCES {schema}.users (user_id),
    hash    BYTEA  NOT NULL CHECK (length(hash) = 32)
);

CREATE INDEX recovery_codes_by_user ON {schema}.recovery_codes (user_id, hash);
