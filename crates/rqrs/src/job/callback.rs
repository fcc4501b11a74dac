//! Callbacks (RQ's `Callback`): functions the worker calls when a job ends.

use crate::defaults::CALLBACK_TIMEOUT;
use crate::ttl::Timeout;

/// A function called when a job ends, named as registered in the worker's functions (RQ's
/// `Callback`, which stores only the name and a timeout).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use rqrs::{Callback, Timeout};
///
/// let callback = Callback::new("tasks.notify").timeout(Duration::from_secs(5));
/// assert_eq!(callback.name(), "tasks.notify");
/// assert_eq!(callback.time_limit(), Timeout::seconds(5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    name: String,
    timeout: Timeout,
}

impl Callback {
    /// Calls the function registered as `name`, with RQ's default timeout (60 s,
    /// [`CALLBACK_TIMEOUT`](crate::CALLBACK_TIMEOUT)).
    pub fn new(name: impl Into<String>) -> Self {
        Callback {
            name: name.into(),
            timeout: CALLBACK_TIMEOUT.into(),
        }
    }

    /// How long the callback may run.
    pub fn timeout(mut self, timeout: impl Into<Timeout>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// The function's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long the callback may run.
    pub fn time_limit(&self) -> Timeout {
        self.timeout
    }
}
