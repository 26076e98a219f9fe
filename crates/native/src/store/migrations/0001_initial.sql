-- The KV namespace: one row per key, values as the text that was put.
CREATE TABLE kv (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Every queue in one table: `weather-ready`, `landscape-jobs` and the
-- dead-letter queue, told apart by `queue`.
--
-- `seq` never repeats (AUTOINCREMENT), so a message id stays unique for the
-- life of the file, even after purges.
-- `attempts` counts deliveries: 0 while queued, 1 after the first claim.
-- Times are Unix microseconds. A message is ready when `visible_at` (its
-- enqueue time, or the end of a retry delay) has passed and it holds no
-- lease: `lease_expires_at` is set when a consumer claims it and reset to 0
-- on a retry. A claim leaves `visible_at` alone, so it does not move the
-- message in the index below.
CREATE TABLE messages (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    queue            TEXT NOT NULL,
    body             TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    enqueued_at      INTEGER NOT NULL,
    visible_at       INTEGER NOT NULL,
    lease_expires_at INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT
);

CREATE INDEX messages_by_queue_and_visibility ON messages (queue, visible_at);

-- Every job id ever sent to the jobs queue. A job is enqueued only when its
-- ledger row is new, in the same transaction, so a redelivered event adds no
-- second copy of a job.
-- NOTE: nothing prunes the ledger yet, so it grows by one row per job sent;
-- deleting rows older than the longest redelivery window would bound it.
CREATE TABLE job_ledger (
    job_id        TEXT PRIMARY KEY NOT NULL,
    dispatched_at INTEGER NOT NULL
) WITHOUT ROWID;
