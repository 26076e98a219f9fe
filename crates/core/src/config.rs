//! Settings of the core that runtimes load from their configuration.

use crate::outcome::RetryPolicy;
use crate::registry::Registry;

/// Everything the core needs to plan a batch besides the batch, KV and the clock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Known formats, default first. By default, [`Registry::builtin`].
    pub registry: Registry,
    /// Retry backoff. By default, 10 s doubling, capped at 43,200 s.
    pub retry: RetryPolicy,
}
