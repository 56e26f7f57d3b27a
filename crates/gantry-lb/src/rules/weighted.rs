//! Weighted forward actions: which target group a request goes to, in proportion to the groups' weights.

use rand::Rng;

use super::error::RuleError;

/// "Each target group weight is a value from 0 to 999."
pub const MAX_TARGET_GROUP_WEIGHT: u32 = 999;
/// Quotas: "Target Groups per Action per Application Load Balancer" 5.
pub const MAX_TARGET_GROUPS_PER_ACTION: usize = 5;

/// The index chosen by `roll`, a number drawn uniformly from `0..sum(weights)`: each index owns a run of rolls as
/// long as its weight, so a weight of 0 owns none and is never chosen. `None` when every weight is 0 or the roll
/// is out of range.
pub fn pick_weighted(weights: &[u32], roll: u32) -> Option<usize> {
    pick(weights, u64::from(roll))
}

/// [`pick_weighted`] with the roll drawn from `rng`.
pub fn pick_weighted_rng(weights: &[u32], rng: &mut impl Rng) -> Option<usize> {
    // Summed in u64 so that no list of u32 weights can overflow.
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    pick(weights, rng.gen_range(0..total))
}

fn pick(weights: &[u32], roll: u64) -> Option<usize> {
    let mut end = 0u64;
    for (index, weight) in weights.iter().enumerate() {
        end += u64::from(*weight);
        if roll < end {
            return Some(index);
        }
    }
    None
}

/// Checks a forward action's weights: each from 0 to 999, at most five target groups.
pub fn validate_weights(weights: &[u32]) -> Result<(), RuleError> {
    if weights.len() > MAX_TARGET_GROUPS_PER_ACTION {
        return Err(RuleError::TooManyTargetGroups {
            max: MAX_TARGET_GROUPS_PER_ACTION,
        });
    }
    match weights.iter().find(|w| **w > MAX_TARGET_GROUP_WEIGHT) {
        Some(w) => Err(RuleError::InvalidTargetGroupWeight(*w)),
        None => Ok(()),
    }
}
