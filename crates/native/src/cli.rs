//! The command line.

use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use landscape_core::DeadLetterCode;

/// The Weather Landscape job dispatcher on one machine, with an embedded SQLite store.
///
/// It consumes `weather-ready` events, reads each location's `formats:` entry from the
/// store's KV namespace and sends one `landscape-jobs` message per format, as the
/// Cloudflare Worker does, with the settings of the same `wrangler.toml`.
///
/// Exit codes: 0 on success, 1 on a runtime failure, 2 on a usage or configuration error,
/// such as an invalid wrangler.toml or a --db file that does not exist.
#[derive(Debug, Parser)]
#[command(name = "landscape-dispatcher", version, max_term_width = 100)]
pub struct Cli {
    /// SQLite store file. Commands that write (send, kv put, kv bulk put, formats
    /// set|add|remove, run) create it; the others, except plan, fail if it does not exist.
    #[arg(
        long,
        global = true,
        env = "LANDSCAPE_DISPATCHER_DB",
        default_value = "landscape-dispatcher.db"
    )]
    pub db: PathBuf,

    /// The wrangler.toml to read queue, KV and format settings from.
    #[arg(
        long,
        global = true,
        env = "LANDSCAPE_DISPATCHER_CONFIG",
        default_value = "wrangler.toml"
    )]
    pub config: PathBuf,

    /// Log line format on standard error; RUST_LOG sets the filter (by default, info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// Log line formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per log record.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enqueue one message per line of JSONL; blank lines are skipped.
    ///
    /// Each line is enqueued as given, so invalid bodies reach the dispatcher and are
    /// dead-lettered there.
    Send {
        /// Queue to send to: one of the queues named in wrangler.toml.
        queue: String,
        /// JSONL file; `-` or nothing reads standard input.
        file: Option<PathBuf>,
    },
    /// Read and write the KV namespace.
    #[command(subcommand)]
    Kv(KvCommand),
    /// Read and change the formats of one location, checked against the format registry.
    #[command(subcommand)]
    Formats(FormatsCommand),
    /// Consume the weather-ready queue until SIGINT or SIGTERM, or until drained.
    ///
    /// On the first SIGINT or SIGTERM the batch in hand is committed and the run exits
    /// with 0; a second signal exits at once. The summary goes to standard output.
    ///
    /// The id of every job sent is recorded in the store's job ledger in the same
    /// transaction. A job whose id the ledger already contains is not sent again, and the
    /// summary counts it as a duplicate job. So a redelivered event adds no second copy of
    /// a job, and events sent again after `queue purge landscape-jobs` produce no jobs
    /// until `queue purge landscape-jobs --ledger` clears the ledger.
    ///
    /// Each batch writes one log line with the core's report: at INFO if every message was
    /// acked, at WARN if one was retried, dead-lettered or raised a warning. The summary's
    /// messages/s counts delivered messages and events/s distinct valid events, both per
    /// second of the run's wall time.
    ///
    /// Test hook: with LANDSCAPE_DISPATCHER_FAIL_SENDS set to some text, every send to the
    /// jobs queue fails as a transient error with that text, so messages are retried and
    /// finally dead-lettered.
    Run(RunArgs),
    /// Inspect or empty a queue.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Inspect or replay the dead-letter queue.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Print the jobs that events would produce against the current KV, as JSONL; writes nothing.
    ///
    /// Lines are planned in chunks of 100 as if each were a queue message with the id
    /// `line-N`, so an event without a valid fetched_at gets the job id suffix
    /// `msg-line-N` here, where a run uses the queue message id. A missing store file
    /// counts as an empty KV namespace.
    ///
    /// Standard output holds only the jobs. Each line that would be dead-lettered or
    /// retried is described on standard error with its line number, code and reason, up
    /// to 20 lines, followed by the number of such lines.
    Plan {
        /// JSONL file of events; `-` or nothing reads standard input.
        file: Option<PathBuf>,
    },
}

/// KV subcommands.
#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Print the value of a key.
    Get {
        /// The key, such as `formats:78729`.
        key: String,
    },
    /// Write a value, replacing any previous one.
    Put {
        /// The key.
        key: String,
        /// The value, stored as given.
        value: String,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: String,
    },
    /// Print the keys, one per line, in byte order.
    List {
        /// Print only keys that start with this prefix.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Write many entries at once.
    #[command(subcommand)]
    Bulk(KvBulkCommand),
}

/// Bulk KV subcommands.
#[derive(Debug, Subcommand)]
pub enum KvBulkCommand {
    /// Write the entries of a JSON file in the layout `wrangler kv bulk put` reads.
    ///
    /// The file is an array of objects with `key` and `value` strings. An object may add
    /// `base64: true` for a base64 value. The fields `expiration`, `expiration_ttl` and
    /// `metadata` are accepted and ignored. All entries are written in one transaction.
    Put {
        /// The JSON file.
        file: PathBuf,
    },
}

/// Format subcommands.
#[derive(Debug, Subcommand)]
pub enum FormatsCommand {
    /// Print the formats a location resolves to, one per line, default first.
    Get {
        /// Location id: a 5-digit ZIP code, or 2 uppercase letters and 4 to 10 digits.
        location: String,
    },
    /// Replace a location's formats; the default format is always kept first.
    Set {
        /// Location id.
        location: String,
        /// Format names from the registry.
        #[arg(required = true)]
        formats: Vec<String>,
    },
    /// Add formats to a location.
    Add {
        /// Location id.
        location: String,
        /// Format names from the registry.
        #[arg(required = true)]
        formats: Vec<String>,
    },
    /// Remove formats from a location; the default format cannot be removed.
    ///
    /// A format the location does not have, or a location without a formats entry, gets a
    /// note on standard error and exit code 0; nothing is written unless a format was
    /// removed.
    Remove {
        /// Location id.
        location: String,
        /// Format names from the registry.
        #[arg(required = true)]
        formats: Vec<String>,
    },
}

/// Options of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Stop once the queue is empty, instead of waiting for more messages.
    ///
    /// The run waits for delayed retries and for the leases of other consumers, because
    /// their messages are still queued. Partial batches are delivered without waiting for
    /// max_batch_timeout.
    #[arg(long)]
    pub drain: bool,

    /// Messages per batch, 1 to 100; replaces max_batch_size.
    #[arg(long, value_name = "MESSAGES")]
    pub max_batch_size: Option<u32>,

    /// Seconds to wait for a full batch, 0 to 60; replaces max_batch_timeout.
    #[arg(long, value_name = "SECS")]
    pub max_batch_timeout: Option<u32>,

    /// Retries before a message is dead-lettered, 0 to 100; replaces max_retries.
    #[arg(long, value_name = "COUNT")]
    pub max_retries: Option<u32>,

    /// Base retry delay in seconds, 0 to 43200; replaces retry_delay and RETRY_BASE_DELAY_SECS.
    #[arg(long, value_name = "SECS")]
    pub retry_delay: Option<u32>,

    /// Seconds a claimed batch stays hidden from other consumers, 1 to 43200. After that,
    /// the batch of a consumer that died is delivered again.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=43_200))]
    pub visibility_timeout: u64,

    /// Stop after this many batches.
    #[arg(long, value_name = "COUNT")]
    pub max_batches: Option<u64>,
}

/// Queue subcommands.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Print message counts (ready, delayed by a retry, in flight, and total) and the
    /// number of job ids in the job ledger.
    Stats {
        /// Queue name; by default, every queue named in wrangler.toml.
        queue: Option<String>,
    },
    /// Print the next messages in delivery order as JSONL, without claiming them.
    Peek {
        /// Queue name.
        queue: String,
        /// Maximum number of messages to print.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Delete every message of a queue.
    ///
    /// The job ledger is kept unless --ledger is given. It contains the id of every job
    /// sent, and a job whose id it contains is not sent again. So after a purge without
    /// --ledger, events sent again produce none of the jobs they produced before.
    Purge {
        /// Queue name.
        queue: String,
        /// Also delete every job id of the job ledger, so that events sent again produce
        /// their jobs again. Valid only with the jobs queue (landscape-jobs in the shipped
        /// wrangler.toml).
        #[arg(long)]
        ledger: bool,
    },
}

/// Dead-letter subcommands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Print the dead-letter records as JSONL, oldest first.
    List {
        /// Maximum number of records to print.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Send the original bodies of dead-letter records back to the consumer queue.
    Replay {
        /// Replay only records with this code, such as `retries_exhausted`.
        #[arg(long, value_parser = dead_letter_codes())]
        code: Option<String>,
    },
}

/// Accepts the dead-letter codes of the core, and lists them in help and errors.
fn dead_letter_codes() -> PossibleValuesParser {
    PossibleValuesParser::new(DeadLetterCode::ALL.map(DeadLetterCode::as_str))
}
