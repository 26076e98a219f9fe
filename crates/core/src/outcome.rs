//! The fate of each message: ack, retry after a delay, or dead letter.

use std::fmt;

use serde::Serialize;

use crate::message::Message;
use crate::time::Timestamp;

/// The action a runtime takes on one consumed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledge it: its jobs were sent, or it was a copy of an event whose jobs were.
    Ack,
    /// Retry it after `delay_secs`, because a KV read or a send failed transiently.
    Retry {
        /// Delay before the message becomes visible again, in seconds.
        delay_secs: u32,
        /// Failure that caused the retry, for logs and for the dead letter once retries run out.
        reason: String,
    },
    /// Move it to the dead-letter queue, because it can never succeed.
    DeadLetter {
        /// Stable, low-cardinality code.
        code: DeadLetterCode,
        /// Human-readable reason naming the field and the value.
        reason: String,
    },
}

/// A stable, low-cardinality reason for a dead letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeadLetterCode {
    /// The body is not a JSON object, or not valid JSON.
    InvalidBody,
    /// The body is larger than the limit.
    BodyTooLarge,
    /// `zip_code` is missing, not a string, or not a location id.
    InvalidLocation,
    /// `lat` or `lon` is missing, not a number, or out of range.
    InvalidCoordinates,
    /// The message reuses the id of another message of its batch with another body.
    DuplicateMessageId,
    /// The queue rejected the send batch permanently, for example for its size.
    SendRejected,
    /// One event's jobs exceed the limits of a single send batch or queue message.
    JobsTooLarge,
    /// The message failed on every delivery until `max_retries` ran out.
    ///
    /// The core never produces it; queues apply it with the last retry reason.
    RetriesExhausted,
}

impl DeadLetterCode {
    /// Every code, for tools that list or filter them.
    pub const ALL: [Self; 8] = [
        Self::InvalidBody,
        Self::BodyTooLarge,
        Self::InvalidLocation,
        Self::InvalidCoordinates,
        Self::DuplicateMessageId,
        Self::SendRejected,
        Self::JobsTooLarge,
        Self::RetriesExhausted,
    ];

    /// Returns the code as written in logs and dead letters, such as `invalid_body`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidBody => "invalid_body",
            Self::BodyTooLarge => "body_too_large",
            Self::InvalidLocation => "invalid_location",
            Self::InvalidCoordinates => "invalid_coordinates",
            Self::DuplicateMessageId => "duplicate_message_id",
            Self::SendRejected => "send_rejected",
            Self::JobsTooLarge => "jobs_too_large",
            Self::RetriesExhausted => "retries_exhausted",
        }
    }

    /// Parses a code written by [`DeadLetterCode::as_str`].
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|known| known.as_str() == code)
    }
}

impl fmt::Display for DeadLetterCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Exponential retry backoff with jitter.
///
/// The delay for delivery attempt `n` is `base_delay_secs * 2^(n-1)`, plus up
/// to a quarter of that as jitter, capped at `max_delay_secs`. It is never
/// shorter than `base_delay_secs` unless the cap is lower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay of the first retry, in seconds. By default, 10.
    pub base_delay_secs: u32,
    /// Maximum delay, in seconds. By default, 43,200 (12 hours, the Cloudflare Queues maximum).
    pub max_delay_secs: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_delay_secs: 10,
            max_delay_secs: 43_200,
        }
    }
}

impl RetryPolicy {
    /// Returns the delay in seconds after delivery attempt `attempts` (1 for the first).
    ///
    /// `jitter` is a number in `[0, 1)` that the caller draws; the same value gives
    /// the same delay.
    pub fn delay_secs(&self, attempts: u32, jitter: f64) -> u32 {
        let doublings = attempts.saturating_sub(1).min(32);
        let cap = u64::from(self.max_delay_secs);
        let backoff = (u64::from(self.base_delay_secs) << doublings).min(cap);
        let spread = (backoff as f64 * 0.25 * jitter.clamp(0.0, 1.0)) as u64;

        u32::try_from((backoff + spread).min(cap)).unwrap_or(self.max_delay_secs)
    }
}

/// Returns a number in `[0, 1)` drawn from `seed` and `index` with SplitMix64.
pub(crate) fn jitter(seed: u64, index: usize) -> f64 {
    let mut z = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1_u64 << 53) as f64
}

/// The largest body a dead-letter record repeats whole, in bytes; the record must stay
/// under the 128,000-byte queue message limit.
pub const MAX_RECORD_BODY_BYTES: usize = 100_000;

#[derive(Serialize)]
struct DeadLetterRecord<'a> {
    message_id: &'a str,
    code: DeadLetterCode,
    reason: &'a str,
    attempts: u32,
    dead_lettered_at: String,
    body: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_bytes: Option<usize>,
}

/// Encodes the message that both runtimes put on the dead-letter queue.
///
/// It is a JSON object with `message_id`, `code`, `reason`, `attempts`,
/// `dead_lettered_at` and `body`, the original body text unchanged, so that a
/// replay can send it again as it came. A body over [`MAX_RECORD_BODY_BYTES`]
/// is cut to that size at a character boundary, and `body_bytes` then gives
/// its full size.
pub fn dead_letter_record(
    message: &Message<'_>,
    code: DeadLetterCode,
    reason: &str,
    now: Timestamp,
) -> String {
    let mut cut = message.body.len().min(MAX_RECORD_BODY_BYTES);
    while !message.body.is_char_boundary(cut) {
        cut -= 1;
    }
    let record = DeadLetterRecord {
        message_id: message.id,
        code,
        reason,
        attempts: message.attempts,
        dead_lettered_at: now.to_string(),
        body: &message.body[..cut],
        body_bytes: (cut < message.body.len()).then_some(message.body.len()),
    };
    serde_json::to_string(&record).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_from_base_and_caps() {
        let policy = RetryPolicy::default();
        let cases = [
            (0, 10),
            (1, 10),
            (2, 20),
            (3, 40),
            (4, 80),
            (12, 20_480),
            (13, 40_960),
            (14, 43_200),
            (500, 43_200),
        ];

        for (attempts, expected) in cases {
            assert_eq!(
                policy.delay_secs(attempts, 0.0),
                expected,
                "attempts {attempts}"
            );
        }
    }

    #[test]
    fn jitter_adds_at_most_a_quarter() {
        let policy = RetryPolicy::default();

        assert_eq!(policy.delay_secs(3, 0.999_999), 49);
        assert_eq!(policy.delay_secs(14, 0.999_999), 43_200);
    }

    #[test]
    fn jitter_is_deterministic_and_in_range() {
        for index in 0..1_000 {
            let value = jitter(42, index);

            assert!((0.0..1.0).contains(&value));
            assert_eq!(value, jitter(42, index));
        }
        assert_ne!(jitter(1, 0), jitter(2, 0));
    }

    #[test]
    fn codes_round_trip() {
        for code in DeadLetterCode::ALL {
            assert_eq!(DeadLetterCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(DeadLetterCode::parse("bogus"), None);
    }

    #[test]
    fn dead_letter_record_cuts_huge_body() {
        let body = "é".repeat(MAX_RECORD_BODY_BYTES);
        let message = Message {
            id: "m1",
            attempts: 1,
            body: &body,
            timestamp: Timestamp::from_unix_micros(0),
        };

        let record = dead_letter_record(
            &message,
            DeadLetterCode::BodyTooLarge,
            "too large",
            Timestamp::from_unix_micros(0),
        );

        let parsed: serde_json::Value = serde_json::from_str(&record).unwrap();
        assert_eq!(
            parsed["body"].as_str().map(str::len),
            Some(MAX_RECORD_BODY_BYTES)
        );
        assert_eq!(parsed["body_bytes"], 2 * MAX_RECORD_BODY_BYTES);
        assert!(record.len() < 128_000);
    }

    #[test]
    fn dead_letter_record_keeps_body() {
        let message = Message {
            id: "m1",
            attempts: 1,
            body: "weather ready for 78729",
            timestamp: Timestamp::from_unix_micros(0),
        };

        let record = dead_letter_record(
            &message,
            DeadLetterCode::InvalidBody,
            "not JSON",
            Timestamp::from_unix_micros(0),
        );

        assert_eq!(
            record,
            r#"{"message_id":"m1","code":"invalid_body","reason":"not JSON","attempts":1,"dead_lettered_at":"1970-01-01T00:00:00.000000Z","body":"weather ready for 78729"}"#
        );
    }
}
