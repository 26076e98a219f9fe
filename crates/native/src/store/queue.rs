//! The queues and the job ledger.
//!
//! A message is ready when `visible_at <= now` and it has no unexpired lease. A consumer
//! claims ready messages by raising `attempts` and setting a lease. If the consumer dies,
//! the lease runs out and the messages become ready again (at-least-once delivery). It then settles
//! the batch in one [`BatchCommit`]: jobs and their ledger rows, acks, retries and dead
//! letters commit together or not at all, and the same transaction may claim the next batch.

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;
use serde_json::value::RawValue;

use super::{Store, StoreError};

/// A message handed to a consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedMessage {
    /// Row id, unique for the life of the file.
    pub seq: i64,
    /// Message id passed to the core: `seq` in decimal.
    pub id: String,
    /// Deliveries so far, counting this one: 1 on the first delivery.
    pub attempts: u32,
    /// The message as it was enqueued.
    pub body: String,
    /// Enqueue time in Unix microseconds.
    pub enqueued_at: i64,
}

/// A queued message as `queue peek` and `dlq list` show it.
#[derive(Debug, Serialize)]
pub struct StoredMessage {
    /// Message id.
    pub id: String,
    /// Deliveries so far.
    pub attempts: u32,
    /// Enqueue time in Unix microseconds.
    pub enqueued_at_micros: i64,
    /// Time the message becomes ready, in Unix microseconds.
    pub visible_at_micros: i64,
    /// Reason of the last retry, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The body: embedded as JSON if it is valid JSON, otherwise as a string.
    pub body: MessageBody,
}

/// A message body for output: raw JSON when the text parses, a JSON string otherwise.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum MessageBody {
    /// The body is valid JSON.
    Json(Box<RawValue>),
    /// The body is not valid JSON.
    Text(String),
}

impl MessageBody {
    fn new(text: String) -> Self {
        match RawValue::from_string(text.clone()) {
            Ok(raw) => Self::Json(raw),
            Err(_) => Self::Text(text),
        }
    }
}

/// Message counts of one queue at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// All messages in the queue.
    pub total: u64,
    /// Messages a consumer may claim now.
    pub ready: u64,
    /// Retried messages waiting for their delay to pass.
    pub delayed: u64,
    /// Messages claimed by a consumer whose lease has not run out.
    pub in_flight: u64,
}

/// Counts returned by `replay_dead_letters`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayCount {
    /// Records whose body went back on the consumer queue.
    pub replayed: u64,
    /// Records left in place because they are not dead-letter records.
    pub unreadable: u64,
}

/// The part of a dead-letter record that a replay needs.
#[derive(serde::Deserialize)]
struct DeadLetterFields {
    code: String,
    body: String,
}

impl Store {
    /// Appends one message per body to `queue` and returns how many were added.
    ///
    /// All bodies commit in one transaction, so a caller that sends in chunks loses at
    /// most the chunk in hand on a crash.
    ///
    /// # Errors
    ///
    /// Fails if a write fails; then nothing of this call is written.
    pub fn enqueue(
        &mut self,
        queue: &str,
        bodies: &[String],
        now: i64,
    ) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        insert_messages(&tx, queue, bodies.iter().map(String::as_str), now)?;
        tx.commit()?;
        Ok(bodies.len())
    }

    /// Claims up to `limit` ready messages of `queue`, oldest first, until `lease_until`.
    ///
    /// Each claimed message's `attempts` goes up by one.
    ///
    /// # Errors
    ///
    /// Fails if the claim cannot be written; then nothing is claimed.
    pub fn claim(
        &mut self,
        queue: &str,
        limit: usize,
        now: i64,
        lease_until: i64,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let claimed = claim_ready(&tx, queue, limit, now, lease_until)?;
        tx.commit()?;
        Ok(claimed)
    }

    /// Counts the ready messages of `queue`, stopping at `limit`.
    ///
    /// # Errors
    ///
    /// Fails if the read fails.
    pub fn ready_count(&self, queue: &str, now: i64, limit: usize) -> Result<usize, StoreError> {
        count_ready(&self.conn, queue, now, limit)
    }

    /// Returns the earliest `visible_at` among the messages of `queue` that hold no lease,
    /// or `None` if there are none.
    ///
    /// For a ready message it is the time it became ready; otherwise the time the next
    /// message will, unless a lease runs out first.
    ///
    /// # Errors
    ///
    /// Fails if the read fails.
    pub fn earliest_visible_at(&self, queue: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let earliest = self
            .conn
            .prepare_cached(
                "SELECT visible_at FROM messages
                 WHERE queue = ?1 AND lease_expires_at <= ?2
                 ORDER BY visible_at
                 LIMIT 1",
            )?
            .query_row(params![queue, now], |row| row.get(0))
            .optional()?;
        Ok(earliest)
    }

    /// Returns the number of messages in `queue`, leased or not.
    ///
    /// Unlike [`Store::stats`] it reads only the queue index, not each message row.
    ///
    /// # Errors
    ///
    /// Fails if the read fails.
    pub fn len(&self, queue: &str) -> Result<u64, StoreError> {
        let count = self
            .conn
            .prepare_cached("SELECT count(*) FROM messages WHERE queue = ?1")?
            .query_row([queue], |row| row.get(0))?;
        Ok(count)
    }

    /// Returns whether `queue` holds no message at all, leased or not.
    ///
    /// # Errors
    ///
    /// Fails if the read fails.
    pub fn is_empty(&self, queue: &str) -> Result<bool, StoreError> {
        let exists: bool = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM messages WHERE queue = ?1)")?
            .query_row([queue], |row| row.get(0))?;
        Ok(!exists)
    }

    /// Starts the transaction that settles claimed batches.
    ///
    /// # Errors
    ///
    /// Fails if the write lock cannot be taken.
    pub fn begin_batch(&mut self) -> Result<BatchCommit<'_>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        Ok(BatchCommit { tx })
    }

    /// Returns the message counts of `queue`.
    ///
    /// # Errors
    ///
    /// Fails if the read fails.
    pub fn stats(&self, queue: &str, now: i64) -> Result<QueueStats, StoreError> {
        let stats = self
            .conn
            .prepare_cached(
                "SELECT count(*),
                        coalesce(sum(visible_at <= ?2 AND lease_expires_at <= ?2), 0),
                        coalesce(sum(visible_at > ?2 AND lease_expires_at <= ?2), 0),
                        coalesce(sum(lease_expires_at > ?2), 0)
                 FROM messages WHERE queue = ?1",
            )?
            .query_row(params![queue, now], |row| {
                Ok(QueueStats {
                    total: row.get(0)?,
                    ready: row.get(1)?,
                    delayed: row.get(2)?,
                    in_flight: row.get(3)?,
                })
            })?;
        Ok(stats)
    }

    /// Returns up to `limit` messages of `queue` in delivery order, without claiming them.
    ///
    /// # Errors
    ///
    /// Fails if the read fails.
    pub fn peek(&self, queue: &str, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT seq, attempts, enqueued_at, visible_at, last_error, body
             FROM messages WHERE queue = ?1
             ORDER BY visible_at, seq
             LIMIT ?2",
        )?;
        let messages = statement
            .query_map(params![queue, limit_param(limit)], |row| {
                let seq: i64 = row.get(0)?;
                Ok(StoredMessage {
                    id: seq.to_string(),
                    attempts: row.get(1)?,
                    enqueued_at_micros: row.get(2)?,
                    visible_at_micros: row.get(3)?,
                    last_error: row.get(4)?,
                    body: MessageBody::new(row.get(5)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(messages)
    }

    /// Deletes every message of `queue` and returns how many there were.
    ///
    /// The job ledger is kept, so jobs sent before a purge are not sent again.
    ///
    /// # Errors
    ///
    /// Fails if the write fails.
    pub fn purge(&mut self, queue: &str) -> Result<usize, StoreError> {
        let deleted = self
            .conn
            .execute("DELETE FROM messages WHERE queue = ?1", [queue])?;
        Ok(deleted)
    }

    /// Deletes every message of `queue` and every job id of the ledger in one transaction,
    /// and returns how many of each there were.
    ///
    /// Afterwards, events sent again produce all their jobs again.
    ///
    /// # Errors
    ///
    /// Fails if the write fails; then nothing is deleted.
    pub fn purge_with_ledger(&mut self, queue: &str) -> Result<(usize, usize), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let messages = tx.execute("DELETE FROM messages WHERE queue = ?1", [queue])?;
        let job_ids = tx.execute("DELETE FROM job_ledger", [])?;
        tx.commit()?;
        Ok((messages, job_ids))
    }

    /// Moves the original bodies of dead-letter records from `dead_letter_queue` back to
    /// `target` as new messages, keeping only records whose code is `code` if given.
    ///
    /// # Errors
    ///
    /// Fails if a read or write fails; then nothing is moved.
    pub fn replay_dead_letters(
        &mut self,
        dead_letter_queue: &str,
        target: &str,
        code: Option<&str>,
        now: i64,
    ) -> Result<ReplayCount, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let records: Vec<(i64, String)> = tx
            .prepare("SELECT seq, body FROM messages WHERE queue = ?1 ORDER BY seq")?
            .query_map([dead_letter_queue], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;

        let mut count = ReplayCount::default();
        for (seq, record) in records {
            let Ok(fields) = serde_json::from_str::<DeadLetterFields>(&record) else {
                count.unreadable += 1;
                continue;
            };
            if code.is_some_and(|code| code != fields.code) {
                continue;
            }
            insert_messages(&tx, target, [fields.body.as_str()], now)?;
            tx.execute("DELETE FROM messages WHERE seq = ?1", [seq])?;
            count.replayed += 1;
        }
        tx.commit()?;
        Ok(count)
    }

    /// Returns how many job ids the ledger holds.
    ///
    /// # Errors
    ///
    /// Fails if the read fails.
    pub fn ledger_len(&self) -> Result<u64, StoreError> {
        let count = self
            .conn
            .query_row("SELECT count(*) FROM job_ledger", [], |row| row.get(0))
            .optional()?;
        Ok(count.unwrap_or(0))
    }
}

/// The open transaction that settles claimed batches; dropping it rolls everything back.
pub struct BatchCommit<'s> {
    tx: Transaction<'s>,
}

impl BatchCommit<'_> {
    /// Enqueues the jobs whose ids the ledger does not hold yet, records their ids, and
    /// returns how many were new.
    ///
    /// # Errors
    ///
    /// Fails if a write fails. The transaction may then hold part of the jobs, so the
    /// caller must drop it instead of committing.
    pub fn send_jobs<'j>(
        &mut self,
        queue: &str,
        jobs: impl IntoIterator<Item = (&'j str, &'j str)>,
        now: i64,
    ) -> Result<usize, StoreError> {
        insert_new_jobs(&self.tx, queue, jobs, now)
    }

    /// Deletes an acknowledged message.
    ///
    /// # Errors
    ///
    /// Fails if the write fails.
    pub fn ack(&mut self, seq: i64) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("DELETE FROM messages WHERE seq = ?1")?
            .execute([seq])?;
        Ok(())
    }

    /// Releases a message for redelivery at `visible_at`, recording its `attempts` so far
    /// and `error` as its last error.
    ///
    /// The stored count never goes down, so a late retry from a consumer whose lease ran
    /// out cannot undo the deliveries counted since.
    ///
    /// # Errors
    ///
    /// Fails if the write fails.
    pub fn retry(
        &mut self,
        seq: i64,
        attempts: u32,
        visible_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "UPDATE messages
                 SET attempts = max(attempts, ?2), visible_at = ?3, lease_expires_at = 0,
                     last_error = ?4
                 WHERE seq = ?1",
            )?
            .execute(params![seq, attempts, visible_at, error])?;
        Ok(())
    }

    /// Replaces a message by `record` on `dead_letter_queue`.
    ///
    /// # Errors
    ///
    /// Fails if a write fails.
    pub fn dead_letter(
        &mut self,
        seq: i64,
        dead_letter_queue: &str,
        record: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        insert_messages(&self.tx, dead_letter_queue, [record], now)?;
        self.ack(seq)
    }

    /// Claims up to `limit` ready messages of `queue` until `lease_until`, as part of this
    /// transaction; see [`Store::claim`].
    ///
    /// # Errors
    ///
    /// Fails if the claim cannot be written.
    pub fn claim(
        &mut self,
        queue: &str,
        limit: usize,
        now: i64,
        lease_until: i64,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        claim_ready(&self.tx, queue, limit, now, lease_until)
    }

    /// Takes up to `limit` ready messages of `queue` for settling in this transaction, oldest
    /// first, with `attempts` counting this delivery.
    ///
    /// Unlike [`BatchCommit::claim`] it writes nothing: the open transaction holds the
    /// write lock, and settling deletes or updates each message before the commit. A
    /// rollback leaves the messages ready, as if they had not been delivered.
    ///
    /// # Errors
    ///
    /// Fails if the read fails.
    pub fn take(
        &mut self,
        queue: &str,
        limit: usize,
        now: i64,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        let mut statement = self.tx.prepare_cached(
            "SELECT seq, attempts + 1, body, enqueued_at FROM messages
             WHERE queue = ?1 AND visible_at <= ?2 AND lease_expires_at <= ?2
             ORDER BY visible_at, seq
             LIMIT ?3",
        )?;
        let taken = statement
            .query_map(params![queue, now, limit_param(limit)], claimed_message)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(taken)
    }

    /// Counts the ready messages of `queue`, stopping at `limit`; see [`Store::ready_count`].
    ///
    /// # Errors
    ///
    /// Fails if the read fails.
    pub fn ready_count(&self, queue: &str, now: i64, limit: usize) -> Result<usize, StoreError> {
        count_ready(&self.tx, queue, now, limit)
    }

    pub(super) fn connection(&self) -> &Connection {
        &self.tx
    }

    /// Commits the batch.
    ///
    /// # Errors
    ///
    /// Fails if the commit fails; then nothing of the batch is written.
    pub fn commit(self) -> Result<(), StoreError> {
        self.tx.commit()?;
        Ok(())
    }
}

fn claim_ready(
    conn: &Connection,
    queue: &str,
    limit: usize,
    now: i64,
    lease_until: i64,
) -> Result<Vec<ClaimedMessage>, StoreError> {
    let mut statement = conn.prepare_cached(
        "UPDATE messages
         SET attempts = attempts + 1, lease_expires_at = ?3
         WHERE seq IN (
             SELECT seq FROM messages
             WHERE queue = ?1 AND visible_at <= ?2 AND lease_expires_at <= ?2
             ORDER BY visible_at, seq
             LIMIT ?4
         )
         RETURNING seq, attempts, body, enqueued_at",
    )?;
    let rows = statement.query_map(
        params![queue, now, lease_until, limit_param(limit)],
        claimed_message,
    )?;
    let mut claimed = rows.collect::<Result<Vec<_>, _>>()?;

    // RETURNING gives no order; deliver oldest first.
    claimed.sort_unstable_by_key(|message| message.seq);
    Ok(claimed)
}

/// Reads a row of `seq, attempts, body, enqueued_at`.
fn claimed_message(row: &rusqlite::Row<'_>) -> rusqlite::Result<ClaimedMessage> {
    let seq: i64 = row.get(0)?;
    Ok(ClaimedMessage {
        seq,
        id: seq.to_string(),
        attempts: row.get(1)?,
        body: row.get(2)?,
        enqueued_at: row.get(3)?,
    })
}

fn count_ready(
    conn: &Connection,
    queue: &str,
    now: i64,
    limit: usize,
) -> Result<usize, StoreError> {
    let count: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM (
                 SELECT 1 FROM messages
                 WHERE queue = ?1 AND visible_at <= ?2 AND lease_expires_at <= ?2
                 LIMIT ?3
             )",
        )?
        .query_row(params![queue, now, limit_param(limit)], |row| row.get(0))?;
    Ok(usize::try_from(count).unwrap_or(0))
}

fn insert_messages<'b>(
    conn: &Connection,
    queue: &str,
    bodies: impl IntoIterator<Item = &'b str>,
    now: i64,
) -> Result<(), StoreError> {
    let mut statement = conn.prepare_cached(
        "INSERT INTO messages (queue, body, enqueued_at, visible_at) VALUES (?1, ?2, ?3, ?3)",
    )?;
    for body in bodies {
        statement.execute(params![queue, body, now])?;
    }
    Ok(())
}

fn insert_new_jobs<'j>(
    conn: &Connection,
    queue: &str,
    jobs: impl IntoIterator<Item = (&'j str, &'j str)>,
    now: i64,
) -> Result<usize, StoreError> {
    let mut record_job = conn.prepare_cached(
        "INSERT OR IGNORE INTO job_ledger (job_id, dispatched_at) VALUES (?1, ?2)",
    )?;
    let mut enqueue_job = conn.prepare_cached(
        "INSERT INTO messages (queue, body, enqueued_at, visible_at) VALUES (?1, ?2, ?3, ?3)",
    )?;

    let mut sent = 0;
    for (job_id, body) in jobs {
        let is_new = record_job.execute(params![job_id, now])? == 1;
        if is_new {
            enqueue_job.execute(params![queue, body, now])?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// Converts a row limit for SQLite, where a negative LIMIT means none.
fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000;

    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store.db")).expect("open");
        (dir, store)
    }

    fn bodies(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|text| (*text).to_owned()).collect()
    }

    #[test]
    fn claim_hides_until_lease_expires() {
        let (_dir, mut store) = temp_store();
        store
            .enqueue("q", &bodies(&["a", "b", "c"]), 0)
            .expect("enqueue");

        let first = store.claim("q", 2, SECOND, 10 * SECOND).expect("claim");
        let during_lease = store
            .claim("q", 10, 2 * SECOND, 30 * SECOND)
            .expect("claim");
        let after_lease = store
            .claim("q", 10, 13 * SECOND, 20 * SECOND)
            .expect("claim");

        let first_bodies: Vec<&str> = first.iter().map(|message| message.body.as_str()).collect();
        assert_eq!(first_bodies, ["a", "b"]);
        assert!(first.iter().all(|message| message.attempts == 1));
        assert_eq!(during_lease.len(), 1);
        assert_eq!(during_lease[0].body, "c");
        let redelivered: Vec<(&str, u32)> = after_lease
            .iter()
            .map(|message| (message.body.as_str(), message.attempts))
            .collect();
        assert_eq!(redelivered, [("a", 2), ("b", 2)]);
    }

    #[test]
    fn retry_hides_until_delay_passes() {
        let (_dir, mut store) = temp_store();
        store.enqueue("q", &bodies(&["a"]), 0).expect("enqueue");
        let claimed = store.claim("q", 1, 0, 30 * SECOND).expect("claim");

        let mut commit = store.begin_batch().expect("begin");
        commit
            .retry(claimed[0].seq, 1, 5 * SECOND, "timed out")
            .expect("retry");
        commit.commit().expect("commit");

        assert_eq!(store.ready_count("q", 4 * SECOND, 10).expect("count"), 0);
        assert_eq!(store.stats("q", 4 * SECOND).expect("stats").delayed, 1);
        assert_eq!(store.ready_count("q", 5 * SECOND, 10).expect("count"), 1);
        let peeked = store.peek("q", 10).expect("peek");
        assert_eq!(peeked[0].last_error.as_deref(), Some("timed out"));
    }

    #[test]
    fn ledger_skips_known_jobs_after_purge() {
        let (_dir, mut store) = temp_store();

        let mut commit = store.begin_batch().expect("begin");
        let first = commit
            .send_jobs("jobs", [("j1", "{}"), ("j2", "{}")], 0)
            .expect("send");
        commit.commit().expect("commit");
        store.purge("jobs").expect("purge");
        let mut commit = store.begin_batch().expect("begin");
        let second = commit
            .send_jobs("jobs", [("j2", "{}"), ("j3", "{}")], 0)
            .expect("send");
        commit.commit().expect("commit");

        assert_eq!(first, 2);
        assert_eq!(second, 1);
        assert_eq!(store.stats("jobs", 0).expect("stats").total, 1);
        assert_eq!(store.ledger_len().expect("ledger"), 3);
    }

    #[test]
    fn purge_with_ledger_sends_jobs_again() {
        let (_dir, mut store) = temp_store();
        let mut commit = store.begin_batch().expect("begin");
        commit
            .send_jobs("jobs", [("j1", "{}"), ("j2", "{}")], 0)
            .expect("send");
        commit.commit().expect("commit");

        let purged = store.purge_with_ledger("jobs").expect("purge");
        let mut commit = store.begin_batch().expect("begin");
        let sent = commit.send_jobs("jobs", [("j1", "{}")], 0).expect("send");
        commit.commit().expect("commit");

        assert_eq!(purged, (2, 2));
        assert_eq!(sent, 1);
        assert_eq!(store.ledger_len().expect("ledger"), 1);
    }

    #[test]
    fn rollback_keeps_messages_and_ledger() {
        let (_dir, mut store) = temp_store();
        store.enqueue("q", &bodies(&["a"]), 0).expect("enqueue");

        let mut commit = store.begin_batch().expect("begin");
        let taken = commit.take("q", 10, 0).expect("take");
        commit.send_jobs("jobs", [("j1", "{}")], 0).expect("send");
        commit.ack(taken[0].seq).expect("ack");
        drop(commit);

        assert_eq!(store.stats("q", 0).expect("stats").ready, 1);
        assert_eq!(store.ledger_len().expect("ledger"), 0);
        assert_eq!(
            store.claim("q", 10, 0, SECOND).expect("claim")[0].attempts,
            1
        );
    }

    #[test]
    fn replay_filters_by_code() {
        let (_dir, mut store) = temp_store();
        let records = [
            r#"{"code":"invalid_body","body":"x"}"#,
            r#"{"code":"retries_exhausted","body":"y"}"#,
            "not a record",
        ];
        store.enqueue("dlq", &bodies(&records), 0).expect("enqueue");

        let count = store
            .replay_dead_letters("dlq", "q", Some("retries_exhausted"), 0)
            .expect("replay");

        assert_eq!(
            count,
            ReplayCount {
                replayed: 1,
                unreadable: 1
            }
        );
        assert_eq!(store.peek("q", 10).expect("peek").len(), 1);
        assert_eq!(store.stats("dlq", 0).expect("stats").total, 2);
    }
}
