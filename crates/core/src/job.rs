//! The `landscape-jobs` message: its id and its body.

use crate::event::Event;
use crate::time::Timestamp;

/// One job ready to send: its JSON body and its id, which the body also contains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedJob {
    /// JSON body of the `landscape-jobs` message.
    pub body: String,
    id: JobId,
}

/// The storage of a job's id.
#[derive(Clone, Debug, PartialEq, Eq)]
enum JobId {
    /// In the body, unescaped, at this byte range; this saves one allocation per job.
    InBody(std::ops::Range<usize>),
    /// A copy of its own, because the body contains it with JSON escapes.
    Owned(String),
}

impl PlannedJob {
    /// Creates a job with an empty id, for tests of packing.
    #[cfg(test)]
    pub(crate) fn with_body(body: String) -> Self {
        Self {
            body,
            id: JobId::Owned(String::new()),
        }
    }

    /// Returns the deterministic id; see [`job_id`](crate::job_id) for its form.
    pub fn job_id(&self) -> &str {
        match &self.id {
            JobId::InBody(range) => self.body.get(range.clone()).unwrap_or_default(),
            JobId::Owned(id) => id,
        }
    }
}

/// Returns the deterministic id of the job for `location` and `format`.
///
/// The form is `{location}:{format}:{stamp}`, where `stamp` is the event's
/// `fetched_at` in UTC as `YYYYMMDDTHHMMSS.ffffffZ` (fraction truncated to
/// microseconds), or `msg-{message_id}` when the event has no valid
/// `fetched_at`. For example `78729:bw:20251120T120000.123456Z`. The same
/// event delivered again yields the same ids, and two `fetched_at` texts that
/// name the same microsecond yield the same ids.
pub fn job_id(
    location: &str,
    format: &str,
    fetched_at: Option<Timestamp>,
    message_id: &str,
) -> String {
    let stamp = Stamp::new(fetched_at, message_id);
    let mut id = String::with_capacity(location.len() + format.len() + stamp.len() + 2);
    stamp.push_id(&mut id, location, format);
    id
}

/// The last part of an event's job ids.
enum Stamp<'m> {
    /// `fetched_at` in the compact UTC form.
    Time([u8; 23]),
    /// The queue message id, used when there is no valid `fetched_at`.
    Message(&'m str),
}

impl<'m> Stamp<'m> {
    fn new(fetched_at: Option<Timestamp>, message_id: &'m str) -> Self {
        match fetched_at {
            Some(at) => Self::Time(at.compact()),
            None => Self::Message(message_id),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Time(bytes) => bytes.len(),
            Self::Message(id) => "msg-".len() + id.len(),
        }
    }

    fn push_id(&self, out: &mut String, location: &str, format: &str) {
        out.push_str(location);
        out.push(':');
        out.push_str(format);
        out.push(':');
        match self {
            Self::Time(bytes) => out.push_str(std::str::from_utf8(bytes).unwrap_or_default()),
            Self::Message(id) => {
                out.push_str("msg-");
                out.push_str(id);
            }
        }
    }

    /// Returns true if ids with this stamp need no JSON escapes.
    fn is_plain(&self) -> bool {
        match self {
            Self::Time(_) => true,
            Self::Message(id) => is_plain(id),
        }
    }
}

/// Appends one job per format of `event` to `jobs`.
///
/// A body is, in this field order, `{"zip_code", "format_name", "lat", "lon",
/// "enqueued_at", "job_id"}` followed by `"fetched_at"` and `"traceparent"`
/// when the event has valid ones.
pub(crate) fn build_jobs<'f>(
    event: &Event<'_>,
    formats: impl Iterator<Item = &'f str>,
    message_id: &str,
    enqueued_at: &str,
    jobs: &mut Vec<PlannedJob>,
) {
    let stamp = Stamp::new(event.fetched_at.as_ref().map(|f| f.at), message_id);
    let stamp_is_plain = stamp.is_plain();
    let fetched_at = event.fetched_at.as_ref().map(|f| f.text.as_ref());
    let traceparent = event.traceparent.as_deref();
    let fixed_len = event.location.len()
        + event.lat.text.len()
        + event.lon.text.len()
        + enqueued_at.len()
        + fetched_at.map_or(0, |text| text.len() + 16)
        + traceparent.map_or(0, |text| text.len() + 17)
        + 96;

    for format in formats {
        let id_len = event.location.len() + format.len() + stamp.len() + 2;
        let mut body = String::with_capacity(fixed_len + format.len() + id_len);
        body.push_str("{\"zip_code\":");
        push_plain_string(&mut body, &event.location);
        body.push_str(",\"format_name\":");
        push_plain_string(&mut body, format);
        body.push_str(",\"lat\":");
        body.push_str(&event.lat.text);
        body.push_str(",\"lon\":");
        body.push_str(&event.lon.text);
        body.push_str(",\"enqueued_at\":");
        push_plain_string(&mut body, enqueued_at);
        body.push_str(",\"job_id\":");
        let id = if stamp_is_plain {
            body.push('"');
            let start = body.len();
            stamp.push_id(&mut body, &event.location, format);
            let range = start..body.len();
            body.push('"');
            JobId::InBody(range)
        } else {
            let mut id = String::with_capacity(id_len);
            stamp.push_id(&mut id, &event.location, format);
            push_escaped_string(&mut body, &id);
            JobId::Owned(id)
        };
        if let Some(text) = fetched_at {
            body.push_str(",\"fetched_at\":");
            push_plain_string(&mut body, text);
        }
        if let Some(text) = traceparent {
            body.push_str(",\"traceparent\":");
            push_plain_string(&mut body, text);
        }
        body.push('}');

        jobs.push(PlannedJob { body, id });
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
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

fn is_plain(text: &str) -> bool {
    text.bytes()
        .all(|byte| (0x20..0x7f).contains(&byte) && byte != b'"' && byte != b'\\')
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use proptest::prelude::*;
    use serde::Serialize;

    use super::*;
    use crate::event::{Coordinate, FetchedAt};

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

    fn coordinate(value: f64) -> Coordinate<'static> {
        Coordinate {
            value,
            text: Cow::Owned(serde_json::Value::from(value).to_string()),
        }
    }

    fn event(
        lat: f64,
        lon: f64,
        fetched_at: Option<&str>,
        traceparent: Option<&str>,
    ) -> Event<'static> {
        Event {
            location: Cow::Borrowed("78729"),
            lat: coordinate(lat),
            lon: coordinate(lon),
            fetched_at: fetched_at.map(|text| FetchedAt {
                text: Cow::Owned(text.to_owned()),
                at: Timestamp::parse_rfc3339(text).unwrap(),
            }),
            traceparent: traceparent.map(|text| Cow::Owned(text.to_owned())),
        }
    }

    fn build_one(event: &Event<'_>, message_id: &str, enqueued_at: &str) -> PlannedJob {
        let mut jobs = Vec::new();
        build_jobs(
            event,
            ["bw"].into_iter(),
            message_id,
            enqueued_at,
            &mut jobs,
        );
        jobs.remove(0)
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

            let job = build_one(&event, &message_id, enqueued_at);

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

        let job = build_one(&event, "a\"b", "2025-11-20T12:05:00.000000Z");

        let parsed: serde_json::Value = serde_json::from_str(&job.body).unwrap();
        assert_eq!(parsed["job_id"], "78729:bw:msg-a\"b");
    }
}
