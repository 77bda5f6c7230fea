-- l2pop store schema v1 (PostgreSQL). Keep in step with migrations/sqlite/0001_initial.sql.
-- Never edit a released migration (sqlx refuses a changed checksum): add NNNN_<what>.sql.

-- Key/value facts about this store: 'cluster_id' (random u64, decimal) and
-- 'log_floor' (highest seq removed from command_log by compaction, decimal).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The single leadership row. Every new leader bumps epoch in its own committed
-- transaction before reading the log; every write first re-checks it (fencing).
CREATE TABLE leader (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    epoch  BIGINT NOT NULL CHECK (epoch >= 0),
    holder TEXT NOT NULL,
    since  TIMESTAMPTZ
);
INSERT INTO leader (id, epoch, holder, since) VALUES (1, 0, '', NULL);

-- The command log: one opaque JSON command per seq, seq contiguous from 1.
CREATE TABLE command_log (
    seq         BIGINT PRIMARY KEY CHECK (seq > 0),
    command     TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Per notification stream, the highest seq the broker confirmed.
CREATE TABLE published (
    stream     TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL CHECK (seq >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Serialized engine state after applying every command up to and including seq.
CREATE TABLE snapshot (
    seq        BIGINT PRIMARY KEY CHECK (seq >= 0),
    state      BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
