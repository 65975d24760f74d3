//! When the trainer writes a checkpoint (burn-train's checkpointer-strategy seam): by epoch
//! count, by wall time, or any rule a caller supplies. Only *whether* a checkpoint is written
//! depends on it, never what is computed, so results stay bit-identical under any policy.

use std::time::Instant;

/// Decides at each epoch's end whether to checkpoint.
pub trait CheckpointPolicy {
    /// Whether to write a checkpoint after `epoch`; `last` marks the final epoch. Called once
    /// per epoch, in order; a `true` means the checkpoint is written.
    fn due(&mut self, epoch: usize, last: bool) -> bool;
}

/// Every `every` epochs (and after the last; 0 = by time only), and at an epoch's end once
/// `minutes` passed since the last checkpoint (0 = never by time).
pub struct EveryEpochsOrMinutes {
    every: usize,
    minutes: f64,
    since: Instant,
}

impl EveryEpochsOrMinutes {
    /// The policy of a suite's `checkpoint_every` and `checkpoint_minutes`.
    pub fn new(every: usize, minutes: f64) -> Self {
        EveryEpochsOrMinutes {
            every,
            minutes,
            since: Instant::now(),
        }
    }
}

impl CheckpointPolicy for EveryEpochsOrMinutes {
    fn due(&mut self, epoch: usize, last: bool) -> bool {
        let by_epoch = self.every > 0 && ((epoch + 1).is_multiple_of(self.every) || last);
        // The final epoch's model is saved as the artifact, so time never forces a checkpoint there.
        let by_time = self.minutes > 0.0
            && !last
            && self.since.elapsed().as_secs_f64() >= self.minutes * 60.0;
        let due = by_epoch || by_time;
        if due {
            self.since = Instant::now();
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_counts_and_the_last_epoch_are_due() {
        let mut p = EveryEpochsOrMinutes::new(3, 0.0);
        let due: Vec<bool> = (0..7).map(|e| p.due(e, e == 6)).collect();
        assert_eq!(due, [false, false, true, false, false, true, true]);
        let mut never = EveryEpochsOrMinutes::new(0, 0.0);
        assert!((0..5).all(|e| !never.due(e, e == 4)));
    }

    #[test]
    fn elapsed_minutes_are_due_except_at_the_last_epoch() {
        let mut p = EveryEpochsOrMinutes::new(0, 1e-9);
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(p.due(0, false));
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(!p.due(1, true));
    }
}
