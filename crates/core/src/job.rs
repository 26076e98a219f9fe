//! The `landscape-jobs` message: its id and its body.

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
    let stamp = stamp(fetched_at, message_id);
    let mut id = String::with_capacity(location.len() + format.len() + stamp.len() + 1);
    push_id(&mut id, location, format, &stamp);
    id
}

fn stamp(fetched_at: Option<Timestamp>, message_id: &str) -> String {
    let mut stamp = String::with_capacity(32);
    match fetched_at {
        Some(at) => at.write_compact(&mut stamp),
        None => {
            stamp.push_str("msg-");
            stamp.push_str(message_id);
        }
    }
    stamp
}

fn push_id(out: &mut String, location: &str, format: &str, stamp: &str) {
    out.push_str(location);
    out.push(':');
    out.push_str(format);
    out.push(':');
    out.push_str(stamp);
}

/// The parts of an event's job bodies that do not depend on the format, built once per event.
///
/// A body is, in this field order, `{"zip_code", "format_name", "lat", "lon",
/// "enqueued_at", "job_id"}` followed by `"fetched_at"` and `"traceparent"`
/// when the event has valid ones.
pub(crate) struct JobTemplate<'e> {
    location: &'e str,
    stamp: String,
    stamp_is_plain: bool,
    middle: String,
    tail: String,
}

impl<'e> JobTemplate<'e> {
    pub fn new(event: &'e Event<'_>, message_id: &str, enqueued_at: &str) -> Self {
        let mut middle = String::with_capacity(96);
        middle.push_str(",\"lat\":");
        push_number(&mut middle, event.lat);
        middle.push_str(",\"lon\":");
        push_number(&mut middle, event.lon);
        middle.push_str(",\"enqueued_at\":");
        push_plain_string(&mut middle, enqueued_at);
        middle.push_str(",\"job_id\":");

        let mut tail = String::with_capacity(96);
        if let Some(fetched_at) = &event.fetched_at {
            tail.push_str(",\"fetched_at\":");
            push_plain_string(&mut tail, &fetched_at.text);
        }
        if let Some(traceparent) = &event.traceparent {
            tail.push_str(",\"traceparent\":");
            push_plain_string(&mut tail, traceparent);
        }
        tail.push('}');

        let stamp = stamp(event.fetched_at.as_ref().map(|f| f.at), message_id);
        Self {
            location: &event.location,
            stamp_is_plain: is_plain(&stamp),
            stamp,
            middle,
            tail,
        }
    }

    /// Builds the job for one format.
    pub fn build(&self, format: &str) -> PlannedJob {
        let mut job_id =
            String::with_capacity(self.location.len() + format.len() + self.stamp.len() + 2);
        push_id(&mut job_id, self.location, format, &self.stamp);

        let mut body =
            String::with_capacity(48 + 2 * job_id.len() + self.middle.len() + self.tail.len());
        body.push_str("{\"zip_code\":");
        push_plain_string(&mut body, self.location);
        body.push_str(",\"format_name\":");
        push_plain_string(&mut body, format);
        body.push_str(&self.middle);
        if self.stamp_is_plain {
            push_plain_string(&mut body, &job_id);
        } else {
            push_escaped_string(&mut body, &job_id);
        }
        body.push_str(&self.tail);

        PlannedJob { job_id, body }
    }
}

/// Appends `text` as a JSON string with no escapes.
///
/// Callers pass only validated text: location ids, registry names,
/// timestamps and traceparents are ASCII letters, digits and `-:._+`.
fn push_plain_string(out: &mut String, text: &str) {
    debug_assert!(is_plain(text), "{text:?} needs JSON escapes");
    out.push('"');
    out.push_str(text);
    out.push('"');
}

fn push_escaped_string(out: &mut String, text: &str) {
    out.push_str(&serde_json::Value::from(text).to_string());
}

fn is_plain(text: &str) -> bool {
    text.bytes()
        .all(|byte| (0x20..0x7f).contains(&byte) && byte != b'"' && byte != b'\\')
}

/// Appends a finite number in serde_json's form: the shortest text that reads back the same.
fn push_number(out: &mut String, value: f64) {
    out.push_str(&serde_json::Value::from(value).to_string());
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use proptest::prelude::*;
    use serde::Serialize;

    use super::*;
    use crate::event::FetchedAt;

    /// The body as a derived serializer writes it, to check the hand-written one against.
    #[derive(Serialize)]
    struct Reference<'a> {
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

    fn event(
        lat: f64,
        lon: f64,
        fetched_at: Option<&str>,
        traceparent: Option<&str>,
    ) -> Event<'static> {
        Event {
            location: Cow::Borrowed("78729"),
            lat,
            lon,
            fetched_at: fetched_at.map(|text| FetchedAt {
                text: Cow::Owned(text.to_owned()),
                at: Timestamp::parse_rfc3339(text).unwrap(),
            }),
            traceparent: traceparent.map(|text| Cow::Owned(text.to_owned())),
        }
    }

    proptest! {
        #[test]
        fn body_matches_derived_serializer(
            lat in -90.0..=90.0_f64,
            lon in -180.0..=180.0_f64,
            message_id in "\\PC{0,12}",
            with_time in any::<bool>(),
            with_trace in any::<bool>(),
        ) {
            let fetched_at = with_time.then_some("2025-11-20T12:00:00.123456Z");
            let traceparent = with_trace.then_some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
            let event = event(lat, lon, fetched_at, traceparent);
            let enqueued_at = "2025-11-20T12:05:00.000000Z";

            let job = JobTemplate::new(&event, &message_id, enqueued_at).build("bw");

            let reference = Reference {
                zip_code: "78729",
                format_name: "bw",
                lat,
                lon,
                enqueued_at,
                job_id: &job_id("78729", "bw", event.fetched_at.as_ref().map(|f| f.at), &message_id),
                fetched_at,
                traceparent,
            };
            prop_assert_eq!(job.body, serde_json::to_string(&reference).unwrap());
        }
    }

    #[test]
    fn job_id_forms() {
        let at = Timestamp::parse_rfc3339("2025-11-20T07:00:00.5-05:00");

        assert_eq!(
            job_id("78729", "bw", at, "m1"),
            "78729:bw:20251120T120000.500000Z"
        );
        assert_eq!(job_id("78729", "bw", None, "m1"), "78729:bw:msg-m1");
    }

    #[test]
    fn message_id_with_quotes_is_escaped() {
        let event = event(1.0, 2.0, None, None);

        let job = JobTemplate::new(&event, "a\"b", "2025-11-20T12:05:00.000000Z").build("bw");

        let parsed: serde_json::Value = serde_json::from_str(&job.body).unwrap();
        assert_eq!(parsed["job_id"], "78729:bw:msg-a\"b");
    }
}
