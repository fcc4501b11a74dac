//! How long records are kept ([`Ttl`]) and how long a job may run ([`Timeout`]): durations, with
//! the special values RQ writes as `0` and `-1` named. The backends keep whole seconds, so
//! a fraction of a second is rounded up (never down to "no time at all").

use std::time::Duration;

/// How long something is kept: a job's result or failure, or a worker's default for results.
///
/// RQ writes these as seconds, with `0` for "not kept" and `-1` for "kept forever"; here those
/// are [`Ttl::NOT_KEPT`] and [`Ttl::FOREVER`].
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use rqrs::Ttl;
///
/// let ten_minutes = Ttl::from(Duration::from_secs(600));
/// assert_eq!(ten_minutes.duration(), Some(Duration::from_secs(600)));
/// assert_eq!(Ttl::FOREVER.duration(), None);
/// assert_eq!(Ttl::NOT_KEPT.to_seconds(), 0);
/// assert_eq!(Ttl::FOREVER.to_seconds(), -1);
/// assert_eq!(Ttl::from_seconds(-1), Ttl::FOREVER);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ttl(Option<u64>);

impl Ttl {
    /// Not kept at all: dropped as soon as it is written (RQ's `0`). A job whose result is not
    /// kept is deleted when it finishes.
    pub const NOT_KEPT: Ttl = Ttl(Some(0));
    /// Kept until deleted (RQ's `-1`).
    pub const FOREVER: Ttl = Ttl(None);

    /// Kept for `seconds`.
    pub const fn seconds(seconds: u64) -> Ttl {
        Ttl(Some(seconds))
    }

    /// RQ's number of seconds: `-1` (or any negative number) is forever, `0` not kept.
    pub fn from_seconds(seconds: i64) -> Ttl {
        Ttl(u64::try_from(seconds).ok())
    }

    /// How long, in whole seconds; `None` for forever.
    pub fn duration(self) -> Option<Duration> {
        self.0.map(Duration::from_secs)
    }

    /// RQ's number of seconds: `-1` for forever.
    pub fn to_seconds(self) -> i64 {
        self.0
            .map_or(-1, |seconds| i64::try_from(seconds).unwrap_or(i64::MAX))
    }

    /// Whether it is kept forever.
    pub fn is_forever(self) -> bool {
        self.0.is_none()
    }
}

impl From<Duration> for Ttl {
    fn from(duration: Duration) -> Self {
        Ttl(Some(whole_seconds(duration)))
    }
}

/// How long a job may run before the worker stops it: a duration, or [`Timeout::UNLIMITED`]
/// (RQ's `-1`).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use rqrs::Timeout;
///
/// assert_eq!(Timeout::from(Duration::from_millis(1500)).duration(), Some(Duration::from_secs(2)));
/// assert_eq!(Timeout::UNLIMITED.to_seconds(), -1);
/// assert_eq!(Timeout::from_seconds(-1), Timeout::UNLIMITED);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeout(Option<u64>);

impl Timeout {
    /// No limit (RQ's `-1`).
    pub const UNLIMITED: Timeout = Timeout(None);

    /// At most `seconds`.
    pub const fn seconds(seconds: u64) -> Timeout {
        Timeout(Some(seconds))
    }

    /// RQ's number of seconds: `-1` (or any negative number) is no limit.
    pub fn from_seconds(seconds: i64) -> Timeout {
        Timeout(u64::try_from(seconds).ok())
    }

    /// How long, in whole seconds; `None` for no limit.
    pub fn duration(self) -> Option<Duration> {
        self.0.map(Duration::from_secs)
    }

    /// RQ's number of seconds: `-1` for no limit.
    pub fn to_seconds(self) -> i64 {
        self.0
            .map_or(-1, |seconds| i64::try_from(seconds).unwrap_or(i64::MAX))
    }
}

impl From<Duration> for Timeout {
    fn from(duration: Duration) -> Self {
        Timeout(Some(whole_seconds(duration)))
    }
}

/// Seconds, rounded up so that a sub-second duration never becomes 0 ("no time at all").
pub(crate) fn whole_seconds(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rqs_numbers_round_trip() {
        for seconds in [0, 1, 500, -1] {
            assert_eq!(Ttl::from_seconds(seconds).to_seconds(), seconds);
            assert_eq!(Timeout::from_seconds(seconds).to_seconds(), seconds);
        }
        assert_eq!(Ttl::from_seconds(-7), Ttl::FOREVER);
        assert_eq!(Ttl::from(Duration::from_millis(1)), Ttl::seconds(1));
        assert_eq!(Ttl::from(Duration::ZERO), Ttl::NOT_KEPT);
    }
}
