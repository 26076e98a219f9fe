//! `landscape-dispatcher`: the Weather Landscape job dispatcher on one machine.
//!
//! It runs the core's dispatch logic against an embedded SQLite store that contains the
//! KV namespace, the queues and the job ledger, with the settings of the Worker's
//! `wrangler.toml`.

mod cli;
mod clock;
mod commands;
mod output;
mod plan;
mod runner;
mod settings;
mod store;

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, LogFormat, RunArgs};
use crate::commands::{load_settings, open_store, UsageError};
use crate::runner::{RunOptions, RunSummary, FAIL_SENDS_VAR};
use crate::settings::{ConsumerOverrides, SettingsError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);

    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader such as `head` closed standard output: it has all the output it wants.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            let usage = error.downcast_ref::<UsageError>().is_some()
                || error.downcast_ref::<SettingsError>().is_some();
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// Returns whether `error` comes from writing to a closed pipe.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let kind = match cause.downcast_ref::<io::Error>() {
            Some(error) => Some(error.kind()),
            None => cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind),
        };
        kind == Some(io::ErrorKind::BrokenPipe)
    })
}

/// Sends logs to standard error, filtered by `RUST_LOG` (by default, `info`).
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| output::LogWriter)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn execute(cli: Cli) -> Result<()> {
    let db = cli.db.as_path();
    let config = cli.config.as_path();
    match cli.command {
        Command::Send { queue, file } => commands::send(db, config, &queue, file.as_ref()),
        Command::Kv(command) => commands::kv(db, command),
        Command::Formats(command) => commands::formats(db, config, command),
        Command::Run(args) => run(db, config, &args),
        Command::Queue(command) => commands::queue(db, config, command),
        Command::Dlq(command) => commands::dlq(db, config, command),
        Command::Plan { file } => plan::plan(db, config, file.as_ref()),
    }
}

/// Consumes the queue until a stop signal or, with `--drain`, until it is empty.
///
/// The first SIGINT or SIGTERM lets the batch in hand commit, then the run ends with exit
/// code 0; a second one ends the process at once, and the claimed batch is delivered again
/// after the visibility timeout.
fn run(db: &Path, config: &Path, args: &RunArgs) -> Result<()> {
    let mut settings = load_settings(config)?;
    settings.apply(overrides(args))?;
    if let Some(base) = args.retry_delay {
        settings.core.retry.base_delay_secs = base;
    }
    let mut store = open_store(db)?;

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))
            .context("failed to install the signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("failed to install the signal handler")?;
    }

    let options = run_options(args);
    let consumer = &settings.consumer;
    let pending = store
        .len(&consumer.queue)
        .with_context(|| format!("{}: failed to count the queue", db.display()))?;
    let progress = if args.drain {
        output::bar(pending, "draining")
    } else {
        output::counter("consuming")
    };
    tracing::info!(
        db = %db.display(),
        queue = %consumer.queue,
        pending,
        max_batch_size = consumer.max_batch_size,
        max_batch_timeout_secs = consumer.max_batch_timeout_secs,
        max_retries = consumer.max_retries,
        retry_base_delay_secs = settings.core.retry.base_delay_secs,
        drain = args.drain,
        "runner started"
    );
    if settings.core.retry.base_delay_secs != consumer.retry_delay_secs {
        tracing::warn!(
            retry_delay = consumer.retry_delay_secs,
            RETRY_BASE_DELAY_SECS = settings.core.retry.base_delay_secs,
            "retries start after RETRY_BASE_DELAY_SECS, which differs from the consumer's retry_delay; set both to the same value in {}",
            settings.path.display()
        );
    }
    if options.fail_sends.is_some() {
        tracing::warn!("{FAIL_SENDS_VAR} is set: every send fails (test hook)");
    }

    let summary =
        runner::run(&mut store, &settings, &options, &stop, &progress).with_context(|| {
            format!(
                "{}: the run failed; committed batches are kept",
                db.display()
            )
        })?;
    progress.finish_and_clear();

    tracing::info!(
        batches = summary.batches,
        messages = summary.messages,
        "runner stopped"
    );
    if summary.duplicate_jobs > 0 {
        tracing::info!(
            duplicate_jobs = summary.duplicate_jobs,
            "jobs whose ids the job ledger already contained were not sent again; \
             `queue purge {} --ledger` deletes the ledger",
            settings.jobs_queue
        );
    }
    print_summary(&summary)?;
    Ok(())
}

fn overrides(args: &RunArgs) -> ConsumerOverrides {
    ConsumerOverrides {
        max_batch_size: args.max_batch_size,
        max_batch_timeout_secs: args.max_batch_timeout,
        max_retries: args.max_retries,
        retry_delay_secs: args.retry_delay,
    }
}

fn run_options(args: &RunArgs) -> RunOptions {
    RunOptions {
        drain: args.drain,
        visibility_timeout: Duration::from_secs(args.visibility_timeout),
        max_batches: args.max_batches,
        fail_sends: std::env::var(FAIL_SENDS_VAR)
            .ok()
            .filter(|value| !value.is_empty()),
    }
}

fn print_summary(summary: &RunSummary) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "batches        {}", summary.batches)?;
    writeln!(stdout, "messages       {}", summary.messages)?;
    writeln!(stdout, "events         {}", summary.events)?;
    writeln!(stdout, "jobs           {}", summary.jobs)?;
    writeln!(stdout, "duplicate jobs {}", summary.duplicate_jobs)?;
    writeln!(stdout, "acked          {}", summary.acked)?;
    writeln!(stdout, "retried        {}", summary.retried)?;
    writeln!(stdout, "dead-lettered  {}", summary.dead_lettered)?;
    writeln!(
        stdout,
        "elapsed        {:.3} s",
        summary.elapsed.as_secs_f64()
    )?;
    writeln!(stdout, "messages/s     {:.0}", summary.messages_per_sec())?;
    writeln!(stdout, "events/s       {:.0}", summary.events_per_sec())
}
