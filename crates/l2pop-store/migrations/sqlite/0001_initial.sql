-- l2pop store schema v1 (SQLite). Keep in step with migrations/postgres/0001_initial.sql.
-- Never edit a released migration (sqlx refuses a changed checksum): add NNNN_<what>.sql.

-- Key/value facts about this store: 'cluster_id' (random u64, decimal) and
-- 'log_floor' (highest seq removed from command_log by compaction, decimal).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- The single leadership row. Every new leader bumps epoch in its own committed
-- transaction before reading the log; every write first re-checks it (fencing).
CREATE TABLE leader (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    epoch  INTEGER NOT NULL CHECK (epoch >= 0),
    holder TEXT NOT NULL,
    since  TEXT
);
INSERT INTO leader (id, epoch, holder, since) VALUES (1, 0, '', NULL);

-- The command log: one opaque JSON command per seq, seq contiguous from 1.
CREATE TABLE command_log (
    seq         INTEGER PRIMARY KEY CHECK (seq > 0),
    command     TEXT NOT NULL,
    recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Per notification stream, the highest seq the broker confirmed.
CREATE TABLE published (
    stream     TEXT PRIMARY KEY NOT NULL,
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Serialized engine state after applying every command up to and including seq.
CREATE TABLE snapshot (
    seq        INTEGER PRIMARY KEY CHECK (seq >= 0),
    state      BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
