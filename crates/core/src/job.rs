//! The `landscape-jobs` message: its id and its body.

use serde::Serialize;

use crate::event::Event;
use crate::time::Timestamp;

/// One job ready to send: its id, also found in the body, and the JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedJob {
    /// Deterministic id; see [`job_id`](crate::job_id) for its form.
    pub job_id: String,
    /// JSON body of the `landscape-jobs` message.
    pub body: String,
}

#[derive(Serialize)]
struct JobBody<'a> {
    zip_code: &'a str,
    format_name: &'a str,
    lat: f64,
    lon: f64,
    enqueued_at: &'a str,
    job_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fetched_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a str>,
}

/// Returns the deterministic id of the job for `location` and `format`.
///
/// The form is `{location}:{format}:{stamp}`, where `stamp` is the event's
/// `fetched_at` in UTC as `YYYYMMDDTHHMMSS.ffffffZ` (fraction truncated to
/// microseconds), or `msg-{message_id}` when the event has no valid
/// `fetched_at`. For example `78729:bw:20251120T120000.123456Z`. The same
/// event delivered again yields the same ids, and two `fetched_at` texts that
/// name the same instant yield the same ids.
pub fn job_id(
    location: &str,
    format: &str,
    fetched_at: Option<Timestamp>,
    message_id: &str,
) -> String {
    let mut id = String::with_capacity(location.len() + format.len() + 26);
    id.push_str(location);
    id.push(':');
    id.push_str(format);
    id.push(':');
    match fetched_at {
        Some(at) => at.write_compact(&mut id),
        None => {
            id.push_str("msg-");
            id.push_str(message_id);
        }
    }
    id
}

/// Builds the job for one event and one format.
pub(crate) fn build(
    event: &Event<'_>,
    format: &str,
    message_id: &str,
    enqueued_at: &str,
) -> PlannedJob {
    let fetched_at = event.fetched_at.as_ref();
    let job_id = job_id(
        &event.location,
        format,
        fetched_at.map(|f| f.at),
        message_id,
    );
    let body = JobBody {
        zip_code: &event.location,
        format_name: format,
        lat: event.lat,
        lon: event.lon,
        enqueued_at,
        job_id: &job_id,
        fetched_at: fetched_at.map(|f| f.text.as_ref()),
        traceparent: event.traceparent.as_deref(),
    };

    // NOTE: serializing this struct cannot fail: every field is a string or a finite number.
    let body = serde_json::to_string(&body).unwrap_or_default();
    PlannedJob { job_id, body }
}
