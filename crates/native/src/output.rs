//! Output for people and for machines: progress bars on a terminal, JSONL otherwise.

use std::fmt::Display;
use std::io::{self, IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// The progress bars on screen, shared with the log writer so that log lines appear above
/// the bars instead of through them.
fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// A writer for log lines on standard error that hides the progress bars while it writes.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        bars().suspend(|| io::stderr().write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Returns a progress bar towards `total`, drawn on standard error only if standard output
/// is a terminal.
pub fn bar(total: u64, label: &'static str) -> ProgressBar {
    let style =
        ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    visible(
        ProgressBar::new(total)
            .with_style(style)
            .with_message(label),
    )
}

/// Returns a spinner with a running count, shown like [`bar`].
pub fn counter(label: &'static str) -> ProgressBar {
    let style = ProgressStyle::with_template("{spinner} {msg} {pos} ({per_sec})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    visible(
        ProgressBar::new_spinner()
            .with_style(style)
            .with_message(label),
    )
}

fn visible(progress: ProgressBar) -> ProgressBar {
    if !io::stdout().is_terminal() {
        progress.set_draw_target(ProgressDrawTarget::hidden());
        return progress;
    }
    let progress = bars().add(progress);
    progress.enable_steady_tick(Duration::from_millis(200));
    progress
}

/// Returns `number` followed by `singular` if it is 1, or by `plural` otherwise, such as
/// "1 message" or "0 messages".
pub fn counted<N>(number: N, singular: &str, plural: &str) -> String
where
    N: Copy + Display + PartialEq + From<u8>,
{
    let noun = if number == N::from(1) {
        singular
    } else {
        plural
    };
    format!("{number} {noun}")
}

/// Writes each item as one line of JSON to standard output.
///
/// # Errors
///
/// Fails if standard output is closed or an item cannot be encoded.
pub fn print_jsonl<T: Serialize>(items: &[T]) -> anyhow::Result<()> {
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    for item in items {
        serde_json::to_writer(&mut stdout, item)?;
        stdout.write_all(b"\n")?;
    }
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::counted;

    #[test]
    fn counted_picks_the_noun() {
        assert_eq!(counted(0_usize, "message", "messages"), "0 messages");
        assert_eq!(counted(1_u64, "message", "messages"), "1 message");
        assert_eq!(counted(2_u64, "entry", "entries"), "2 entries");
    }
}
