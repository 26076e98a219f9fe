//! Property test: the SQLite queue against a plain in-memory model of its semantics.
//!
//! Random sequences of enqueues, clock steps, claims and settlements run on both, and
//! every claim and every count must agree.

use proptest::prelude::*;

use super::Store;

const QUEUE: &str = "q";
const DEAD_LETTERS: &str = "dlq";
const SECOND: i64 = 1_000_000;

#[derive(Clone, Debug)]
enum Operation {
    Enqueue(usize),
    Advance(i64),
    Claim { limit: usize, lease_secs: i64 },
    Ack(usize),
    Retry { index: usize, delay_secs: i64 },
    DeadLetter(usize),
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        (1_usize..5).prop_map(Operation::Enqueue),
        (0_i64..20).prop_map(Operation::Advance),
        (1_usize..6, 1_i64..10)
            .prop_map(|(limit, lease_secs)| Operation::Claim { limit, lease_secs }),
        (0_usize..8).prop_map(Operation::Ack),
        (0_usize..8, 0_i64..10)
            .prop_map(|(index, delay_secs)| Operation::Retry { index, delay_secs }),
        (0_usize..8).prop_map(Operation::DeadLetter),
    ]
}

/// One message of the model queue.
#[derive(Clone, Debug)]
struct ModelMessage {
    seq: i64,
    attempts: u32,
    visible_at: i64,
    lease_expires_at: i64,
}

/// The reference: a list of messages, the clock and the next row id.
#[derive(Debug, Default)]
struct Model {
    messages: Vec<ModelMessage>,
    dead_letters: u64,
    now: i64,
    next_seq: i64,
}

impl Model {
    fn enqueue(&mut self, count: usize) {
        for _ in 0..count {
            self.next_seq += 1;
            self.messages.push(ModelMessage {
                seq: self.next_seq,
                attempts: 0,
                visible_at: self.now,
                lease_expires_at: 0,
            });
        }
    }

    fn is_ready(&self, message: &ModelMessage) -> bool {
        message.visible_at <= self.now && message.lease_expires_at <= self.now
    }

    /// Claims the oldest ready messages and returns their (seq, attempts).
    fn claim(&mut self, limit: usize, lease_until: i64) -> Vec<(i64, u32)> {
        let mut ready: Vec<usize> = (0..self.messages.len())
            .filter(|&index| self.is_ready(&self.messages[index]))
            .collect();
        ready.sort_by_key(|&index| (self.messages[index].visible_at, self.messages[index].seq));
        ready.truncate(limit);

        let mut claimed: Vec<(i64, u32)> = ready
            .into_iter()
            .map(|index| {
                let message = &mut self.messages[index];
                message.attempts += 1;
                message.lease_expires_at = lease_until;
                (message.seq, message.attempts)
            })
            .collect();
        claimed.sort_unstable();
        claimed
    }

    fn remove(&mut self, seq: i64) {
        self.messages.retain(|message| message.seq != seq);
    }

    fn retry(&mut self, seq: i64, attempts: u32, visible_at: i64) {
        if let Some(message) = self.messages.iter_mut().find(|message| message.seq == seq) {
            message.attempts = message.attempts.max(attempts);
            message.visible_at = visible_at;
            message.lease_expires_at = 0;
        }
    }

    /// Returns (total, ready, delayed, in flight).
    fn counts(&self) -> (u64, u64, u64, u64) {
        let count = |keep: &dyn Fn(&ModelMessage) -> bool| {
            self.messages.iter().filter(|message| keep(message)).count() as u64
        };
        (
            self.messages.len() as u64,
            count(&|message| self.is_ready(message)),
            count(&|message| message.visible_at > self.now && message.lease_expires_at <= self.now),
            count(&|message| message.lease_expires_at > self.now),
        )
    }
}

/// Runs `operations` on a fresh store and on the model, checking that they agree.
fn check(operations: &[Operation]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(&dir.path().join("store.db")).expect("open");
    let mut model = Model::default();
    let mut claimed: Vec<(i64, u32)> = Vec::new();

    for operation in operations {
        match operation {
            Operation::Enqueue(count) => {
                let bodies = vec!["{}".to_owned(); *count];
                store.enqueue(QUEUE, &bodies, model.now).expect("enqueue");
                model.enqueue(*count);
            }
            Operation::Advance(secs) => model.now += secs * SECOND,
            Operation::Claim { limit, lease_secs } => {
                let lease_until = model.now + lease_secs * SECOND;
                let from_store = store
                    .claim(QUEUE, *limit, model.now, lease_until)
                    .expect("claim");
                let from_store: Vec<(i64, u32)> = from_store
                    .iter()
                    .map(|message| (message.seq, message.attempts))
                    .collect();
                let from_model = model.claim(*limit, lease_until);
                prop_assert_eq!(&from_store, &from_model);
                claimed.extend(from_model);
            }
            Operation::Ack(index) => {
                let Some((seq, _)) = take(&mut claimed, *index) else {
                    continue;
                };
                let mut commit = store.begin_batch().expect("begin");
                commit.ack(seq).expect("ack");
                commit.commit().expect("commit");
                model.remove(seq);
            }
            Operation::Retry { index, delay_secs } => {
                let Some((seq, attempts)) = take(&mut claimed, *index) else {
                    continue;
                };
                let visible_at = model.now + delay_secs * SECOND;
                let mut commit = store.begin_batch().expect("begin");
                commit
                    .retry(seq, attempts, visible_at, "failed")
                    .expect("retry");
                commit.commit().expect("commit");
                model.retry(seq, attempts, visible_at);
            }
            Operation::DeadLetter(index) => {
                let Some((seq, _)) = take(&mut claimed, *index) else {
                    continue;
                };
                let mut commit = store.begin_batch().expect("begin");
                commit
                    .dead_letter(seq, DEAD_LETTERS, "{}", model.now)
                    .expect("dead letter");
                commit.commit().expect("commit");
                model.remove(seq);
                model.next_seq += 1;
                model.dead_letters += 1;
            }
        }

        let stats = store.stats(QUEUE, model.now).expect("stats");
        prop_assert_eq!(
            (stats.total, stats.ready, stats.delayed, stats.in_flight),
            model.counts()
        );
        prop_assert_eq!(
            store.stats(DEAD_LETTERS, model.now).expect("stats").total,
            model.dead_letters
        );
    }
    Ok(())
}

/// Removes and returns the claimed message at `index` modulo the count, if any.
///
/// A message claimed twice (after its lease ran out) may appear twice; settling it once
/// removes the copy at `index` only, as a late settlement from a dead consumer would.
fn take(claimed: &mut Vec<(i64, u32)>, index: usize) -> Option<(i64, u32)> {
    if claimed.is_empty() {
        return None;
    }
    let index = index % claimed.len();
    Some(claimed.remove(index))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn queue_matches_model(operations in prop::collection::vec(operation(), 1..40)) {
        check(&operations)?;
    }
}
