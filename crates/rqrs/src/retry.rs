//! Running a job again: after a failure ([`Retry`]) or after a success ([`Repeat`]), and the
//! rules that pick the interval before the next run, as RQ picks them. Both are stored as RQ
//! stores them (`retries_left`, `retry_intervals`, `enqueue_at_front_on_retry`, `repeats_left`,
//! `repeat_intervals`), so that Python producers' `Retry(max, interval)` and `Repeat(times,
//! interval)` work on an rqrs worker and the reverse.

use crate::error::{Error, Result};

/// How often, and after how long, a failed job runs again (RQ's `Retry`).
///
/// # Examples
/// ```
/// use rqrs::Retry;
///
/// let retry = Retry::new(3).intervals([10, 30, 60]);
/// assert_eq!(retry.max(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    max: u32,
    intervals: Vec<u64>,
    at_front: bool,
}

impl Retry {
    /// Up to `max` more runs after a failure, at once (interval 0).
    pub fn new(max: u32) -> Self {
        Retry {
            max,
            intervals: vec![0],
            at_front: false,
        }
    }

    /// Seconds to wait before every retry.
    pub fn interval(mut self, seconds: u64) -> Self {
        self.intervals = vec![seconds];
        self
    }

    /// Seconds to wait before each retry in turn, as RQ indexes them: while more retries remain
    /// than there are intervals, the first one is used (see [`next_interval`]).
    pub fn intervals(mut self, seconds: impl IntoIterator<Item = u64>) -> Self {
        self.intervals = interval_list(seconds);
        self
    }

    /// Exponential backoff (an rqrs option, written out as RQ's list of intervals so that any
    /// worker honours it): `base`, `2 × base`, `4 × base`... seconds, each at most `cap`.
    pub fn exponential(mut self, base: u64, cap: u64) -> Self {
        self.intervals = (0..self.max.max(1))
            .map(|n| base.saturating_mul(1u64 << n.min(62)).min(cap))
            .collect();
        self
    }

    /// Randomizes each interval between half of it and all of it ("equal jitter"), so that jobs
    /// failing together do not all retry at the same moment. The draw happens once, when the
    /// job is enqueued, and is stored as RQ's list of intervals.
    pub fn jitter(mut self) -> Self {
        for interval in &mut self.intervals {
            let half = *interval / 2;
            let draw =
                u64::try_from(uuid::Uuid::new_v4().as_u128() % u128::from(half + 1)).unwrap_or(0);
            *interval = *interval - half + draw;
        }
        self
    }

    /// Put the job at the head of its queue when it is retried.
    pub fn at_front(mut self, at_front: bool) -> Self {
        self.at_front = at_front;
        self
    }

    /// The number of retries.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// The intervals in seconds.
    pub fn intervals_secs(&self) -> &[u64] {
        &self.intervals
    }

    /// Whether retries go to the head of the queue.
    pub fn is_at_front(&self) -> bool {
        self.at_front
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.max == 0 {
            return Err(Error::invalid("retry", "max must be 1 or more"));
        }
        Ok(())
    }
}

/// Runs a job again after it succeeds (RQ 2.3's `Repeat`).
///
/// # Examples
/// ```
/// use rqrs::Repeat;
///
/// let repeat = Repeat::new(2).intervals([0, 60]);
/// assert_eq!(repeat.times(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeat {
    times: u32,
    intervals: Vec<u64>,
}

impl Repeat {
    /// `times` more runs, each at once.
    pub fn new(times: u32) -> Self {
        Repeat {
            times,
            intervals: vec![0],
        }
    }

    /// Seconds between runs, as RQ indexes them (see [`repeat_interval`]).
    pub fn intervals(mut self, seconds: impl IntoIterator<Item = u64>) -> Self {
        self.intervals = interval_list(seconds);
        self
    }

    /// The number of repeats.
    pub fn times(&self) -> u32 {
        self.times
    }

    /// The intervals in seconds.
    pub fn intervals_secs(&self) -> &[u64] {
        &self.intervals
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.times == 0 {
            return Err(Error::invalid("repeat", "times must be 1 or more"));
        }
        Ok(())
    }
}

/// A list of intervals as RQ stores it: never empty (`[0]` for none given), since a Python
/// worker indexes it.
pub(crate) fn interval_list(seconds: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let intervals: Vec<u64> = seconds.into_iter().collect();
    if intervals.is_empty() {
        vec![0]
    } else {
        intervals
    }
}

/// The delay before the next retry when `retries_left` remain, as RQ computes it:
/// `intervals[max(len - retries_left, 0)]`, so the first interval while more retries remain
/// than intervals (and the last one for `retries_left` 0, which no caller asks for).
pub(crate) fn next_interval(intervals: &[u64], retries_left: u64) -> u64 {
    let len = intervals.len() as u64;
    let index = len.saturating_sub(retries_left);
    intervals
        .get(usize::try_from(index).unwrap_or(usize::MAX))
        .or(intervals.last())
        .copied()
        .unwrap_or(0)
}

/// The delay before the next repeat when `repeats_left` remain, as RQ computes it: indexed by
/// the runs *remaining*, `intervals[repeats_left - 1]` (the last one past the end), so `[0, 5]`
/// with two repeats waits 5 s first (RQ 2.12's `Repeat`; kept so that Python producers get what
/// they get from Python workers).
pub(crate) fn repeat_interval(intervals: &[u64], repeats_left: u64) -> u64 {
    let index = usize::try_from(repeats_left.saturating_sub(1)).unwrap_or(usize::MAX);
    intervals
        .get(index)
        .or(intervals.last())
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_follow_rqs_indexing() {
        // Retry(max=3, interval=[10, 30, 60]): retries_left 3, 2, 1 -> 10, 30, 60.
        assert_eq!(
            [3, 2, 1].map(|left| next_interval(&[10, 30, 60], left)),
            [10, 30, 60]
        );
        // More retries than intervals: the first interval is used until the list fits.
        assert_eq!(
            [4, 3, 2, 1].map(|left| next_interval(&[10, 30], left)),
            [10, 10, 10, 30]
        );
        assert_eq!(next_interval(&[], 1), 0);
    }

    #[test]
    fn repeat_intervals_are_indexed_by_the_repeats_left() {
        assert_eq!([2, 1].map(|left| repeat_interval(&[0, 5], left)), [5, 0]);
        assert_eq!(repeat_interval(&[7], 3), 7);
        assert_eq!(repeat_interval(&[], 1), 0);
    }

    #[test]
    fn exponential_backoff_is_capped() {
        assert_eq!(
            Retry::new(5).exponential(2, 10).intervals_secs(),
            [2, 4, 8, 10, 10]
        );
    }

    #[test]
    fn jitter_keeps_each_interval_between_its_half_and_itself() {
        for _ in 0..100 {
            let retry = Retry::new(4).exponential(10, 1000).jitter();
            for (interval, full) in retry.intervals_secs().iter().zip([10, 20, 40, 80]) {
                assert!(
                    (full / 2..=full).contains(interval),
                    "{interval} for {full}"
                );
            }
        }
    }
}
