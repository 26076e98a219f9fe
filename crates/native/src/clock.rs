//! The wall clock, in the units the store keeps.

use std::time::{SystemTime, UNIX_EPOCH};

/// Returns the current time in Unix microseconds.
///
/// A clock before 1970 reads as 0; one past the year 294,247 saturates.
pub fn now_micros() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}
