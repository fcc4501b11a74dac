//! The order in which a worker looks at its queues (RQ's `--dequeue-strategy`).

use std::str::FromStr;

use crate::error::{Error, Result};

/// How a worker orders its queues for the next dequeue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DequeueStrategy {
    /// Always in the given order: a queue is served only when those before it are empty.
    #[default]
    Default,
    /// After each dequeue, the queues after the one just served come first, so every queue
    /// gets its turn.
    RoundRobin,
    /// A new random order after each dequeue.
    Random,
}

impl DequeueStrategy {
    /// RQ's name for the strategy.
    pub fn as_str(self) -> &'static str {
        match self {
            DequeueStrategy::Default => "default",
            DequeueStrategy::RoundRobin => "round_robin",
            DequeueStrategy::Random => "random",
        }
    }

    /// Reorders `queues` after a dequeue that served `served` (a queue name).
    pub(crate) fn reorder(self, queues: &mut [String], served: Option<&str>) {
        match self {
            DequeueStrategy::Default => {}
            DequeueStrategy::RoundRobin => {
                if let Some(position) =
                    served.and_then(|name| queues.iter().position(|q| q == name))
                {
                    queues.rotate_left(position + 1);
                }
            }
            DequeueStrategy::Random => {
                // Fisher-Yates with the randomness of a v4 UUID: fine for fairness, not crypto.
                let mut bits = uuid::Uuid::new_v4().as_u128();
                for i in (1..queues.len()).rev() {
                    let j = usize::try_from(bits % (i as u128 + 1)).unwrap_or(0);
                    bits /= i as u128 + 1;
                    if bits == 0 {
                        bits = uuid::Uuid::new_v4().as_u128();
                    }
                    queues.swap(i, j);
                }
            }
        }
    }
}

impl FromStr for DequeueStrategy {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "default" => Ok(DequeueStrategy::Default),
            "round_robin" => Ok(DequeueStrategy::RoundRobin),
            "random" => Ok(DequeueStrategy::Random),
            other => Err(Error::invalid(
                "dequeue strategy",
                format!("{other:?}: use default, round_robin or random"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues() -> Vec<String> {
        ["a", "b", "c"].map(str::to_owned).to_vec()
    }

    #[test]
    fn round_robin_puts_the_queues_after_the_served_one_first() {
        let mut order = queues();
        DequeueStrategy::RoundRobin.reorder(&mut order, Some("a"));
        assert_eq!(order, ["b", "c", "a"]);
        DequeueStrategy::RoundRobin.reorder(&mut order, Some("c"));
        assert_eq!(order, ["a", "b", "c"]);
        DequeueStrategy::RoundRobin.reorder(&mut order, None);
        assert_eq!(order, ["a", "b", "c"]);
    }

    #[test]
    fn random_keeps_every_queue() {
        let mut order = queues();
        for _ in 0..20 {
            DequeueStrategy::Random.reorder(&mut order, None);
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, queues());
        }
    }
}
