//! Step learning-rate schedule, set at the start of each epoch as the reference code does.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// lr(epoch) = base × Π gammas[i] over milestones[i] ≤ epoch (epochs counted from 0).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSchedule {
    /// Epochs at which the next gamma starts to apply, ascending.
    #[serde(default)]
    pub milestones: Vec<usize>,
    /// Multipliers, one per milestone.
    #[serde(default)]
    pub gammas: Vec<f64>,
}

impl StepSchedule {
    /// Learning rate for `epoch` given the base rate.
    pub fn lr(&self, base: f64, epoch: usize) -> f64 {
        let mut lr = base;
        for (&m, &g) in self.milestones.iter().zip(&self.gammas) {
            if epoch >= m {
                lr *= g;
            } else {
                break;
            }
        }
        lr
    }

    /// Checks milestones and gammas pair up and ascend.
    pub fn validate(&self) -> Result<(), String> {
        if self.milestones.len() != self.gammas.len() {
            return Err(format!(
                "schedule: {} milestones but {} gammas; give one gamma per milestone",
                self.milestones.len(),
                self.gammas.len()
            ));
        }
        if self.milestones.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "schedule: milestones must ascend, got {:?}",
                self.milestones
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_schedule() {
        let s = StepSchedule {
            milestones: vec![400, 800],
            gammas: vec![0.1, 0.1],
        };
        assert_eq!(s.lr(0.1, 0), 0.1);
        assert_eq!(s.lr(0.1, 399), 0.1);
        assert!((s.lr(0.1, 400) - 0.01).abs() < 1e-15);
        assert!((s.lr(0.1, 1199) - 0.001).abs() < 1e-15);
        assert!(s.validate().is_ok());
        assert!(
            StepSchedule {
                milestones: vec![2],
                gammas: vec![]
            }
            .validate()
            .is_err()
        );
    }
}
