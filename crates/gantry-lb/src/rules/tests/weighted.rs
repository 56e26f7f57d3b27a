use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::rules::{pick_weighted, pick_weighted_rng, validate_weights, RuleError};

#[test]
fn rolls_map_onto_runs_as_long_as_the_weights() {
    let weights = [3, 0, 2];
    let picks: Vec<Option<usize>> = (0..6).map(|roll| pick_weighted(&weights, roll)).collect();
    assert_eq!(
        picks,
        vec![Some(0), Some(0), Some(0), Some(2), Some(2), None]
    );
}

#[test]
fn zero_weights_are_never_chosen_and_all_zero_chooses_nothing() {
    assert_eq!(pick_weighted(&[0, 0], 0), None);
    assert_eq!(pick_weighted(&[], 0), None);
    assert_eq!(pick_weighted(&[0, 5], 0), Some(1));
    let mut rng = StdRng::seed_from_u64(1);
    assert_eq!(pick_weighted_rng(&[0, 0, 0], &mut rng), None);
    for _ in 0..1000 {
        assert_eq!(pick_weighted_rng(&[0, 7, 0], &mut rng), Some(1));
    }
}

#[test]
fn eighty_twenty_split_is_within_one_percent_over_100000_rolls() {
    let mut rng = StdRng::seed_from_u64(0x80_20);
    let weights = [80, 20];
    let mut counts = [0u32; 2];
    let rolls = 100_000;
    for _ in 0..rolls {
        let index = pick_weighted_rng(&weights, &mut rng).expect("a non-zero weight");
        counts[index] += 1;
    }
    let share = f64::from(counts[0]) / f64::from(rolls);
    assert!((share - 0.80).abs() < 0.01, "first group got {share}");
}

#[test]
fn exhaustive_rolls_give_exact_proportions() {
    let weights = [10, 20, 999];
    let total: u32 = weights.iter().sum();
    let mut counts = [0u32; 3];
    for roll in 0..total {
        counts[pick_weighted(&weights, roll).expect("in range")] += 1;
    }
    assert_eq!(counts, weights);
}

#[test]
fn huge_weights_do_not_overflow() {
    let mut rng = StdRng::seed_from_u64(9);
    assert!(pick_weighted_rng(&[u32::MAX, u32::MAX], &mut rng).is_some());
    assert_eq!(pick_weighted(&[u32::MAX, u32::MAX], u32::MAX), Some(1));
}

#[test]
fn weights_are_validated() {
    assert_eq!(validate_weights(&[0, 999, 1]), Ok(()));
    assert_eq!(
        validate_weights(&[1000]),
        Err(RuleError::InvalidTargetGroupWeight(1000))
    );
    assert_eq!(
        validate_weights(&[1; 6]),
        Err(RuleError::TooManyTargetGroups { max: 5 })
    );
}
