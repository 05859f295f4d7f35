-- Version 2: tower-sessions' sessions (`PostgresSessionStore`), one row a
-- session, the record as JSON, so the service's sessions can live in the
-- same pool and schema as the store.
CREATE TABLE {schema}.sessions (
    id         text   NOT NULL PRIMARY KEY,
    record     text   NOT NULL,
    -- Unix seconds: a session is gone once this has passed.
    expires_at bigint NOT NULL
);
CREATE INDEX sessions_expires_at ON {schema}.sessions (expires_at);
