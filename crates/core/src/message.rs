//! A consumed queue message, as every runtime hands it to the core.

use crate::time::Timestamp;

/// One message of a consumer batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// Queue message id, unique per message; job ids fall back to it.
    pub id: &'a str,
    /// Delivery attempt, 1 on the first delivery.
    pub attempts: u32,
    /// Body as JSON text: in the Worker, `JSON.stringify` of the body; natively, the line as sent.
    pub body: &'a str,
    /// Time the message was sent to the queue.
    pub timestamp: Timestamp,
}
