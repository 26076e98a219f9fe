//! The pure core of the Weather Landscape job dispatcher.
//!
//! The dispatcher consumes `weather-ready` events, reads the image formats
//! configured for each location from the `formats:{location}` KV key, and fans
//! each event out into one `landscape-jobs` job per format. This crate decides
//! everything and performs no I/O: the runtimes (the Cloudflare Worker and the
//! native runner) read and write bytes and carry out its decisions. The clock
//! and the jitter seed are inputs, so the same batch, KV values, clock and
//! seed always give the same plan.
//!
//! A consumer batch goes through three steps:
//!
//! 1. [`Batch::decode`] validates each message and coalesces copies of the same event;
//!    [`Batch::kv_key_chunks`] lists the KV keys to read in bulk.
//! 2. [`Batch::fan_out`] takes the KV results and builds the jobs, packed into
//!    [`SendBatch`]es within the queue's limits.
//! 3. [`Plan::settle`] takes the result of each send and returns one [`Outcome`] per
//!    message (ack, retry after a delay, or dead letter) and a [`BatchReport`].
//!
//! ```
//! use landscape_core::{Batch, Config, KvRead, Message, Outcome, SendResult, Timestamp};
//!
//! let config = Config::default();
//! let messages = [Message {
//!     id: "m1",
//!     attempts: 1,
//!     body: r#"{"zip_code": "78729", "lat": 30.4515, "lon": -97.7676, "fetched_at": "2025-11-20T12:00:00Z"}"#,
//!     timestamp: Timestamp::from_unix_micros(0),
//! }];
//!
//! let batch = Batch::decode(&config, &messages);
//! assert_eq!(batch.kv_keys(), ["formats:78729"]);
//!
//! let now = Timestamp::from_unix_micros(1_763_640_001_000_000);
//! let plan = batch.fan_out(|_key| KvRead::Value(r#"["rgb_light", "bw"]"#), now);
//! assert_eq!(plan.jobs().count(), 2);
//!
//! let results = vec![SendResult::Sent; plan.send_batches().len()];
//! let settlement = plan.settle(&results, 7);
//! assert_eq!(settlement.outcomes, [Outcome::Ack]);
//! ```

#![deny(missing_docs)]

mod batch;
mod config;
mod event;
mod fields;
mod formats;
mod job;
mod location;
mod message;
mod outcome;
mod registry;
mod report;
mod time;

pub use batch::{Batch, KvRead, Plan, SendBatch, SendResult, Settlement};
pub use config::Config;
pub use formats::{encode_formats, resolve_formats};
pub use job::{job_id, PlannedJob};
pub use location::{kv_key, validate_location, LocationError};
pub use message::Message;
pub use outcome::{
    dead_letter_record, DeadLetterCode, Outcome, RetryPolicy, MAX_RECORD_BODY_BYTES,
};
pub use registry::{Format, Registry, RegistryError, MAX_FORMATS, MAX_FORMAT_NAME_BYTES};
pub use report::{BatchReport, Warning, WarningCode};
pub use time::Timestamp;

/// The maximum size of a `weather-ready` body, in bytes; a larger body is dead-lettered.
pub const MAX_BODY_BYTES: usize = 128_000;

/// The maximum number of keys in one bulk KV read.
pub const MAX_KV_KEYS_PER_READ: usize = 100;

/// The maximum number of messages in one send batch.
pub const MAX_SEND_BATCH_MESSAGES: usize = 100;

/// The maximum size of one send batch, in bytes, counting each body plus [`SEND_METADATA_BYTES`].
pub const MAX_SEND_BATCH_BYTES: usize = 256_000;

/// The bytes of metadata counted for each message of a send batch besides its body.
pub const SEND_METADATA_BYTES: usize = 100;
