//! ALB's slow start: a target that has just become healthy gets a share of its turns that grows linearly from
//! nothing to all of them over the target group's `slow_start.duration_seconds`. A target is not slowed when it
//! becomes healthy while its group has no other healthy target (it is then all there is).

use std::time::Duration;

/// The share of its turns a target healthy for `elapsed` takes, in (0, 1].
pub fn share(elapsed: Duration, duration: Duration) -> f64 {
    if duration.is_zero() || elapsed >= duration {
        return 1.0;
    }
    // Never quite nothing: a target in its first moment still gets a request now and then.
    (elapsed.as_secs_f64() / duration.as_secs_f64()).max(0.01)
}

/// Whether a round-robin turn that falls on a target of `share` is taken, given a uniform `draw` in [0, 1).
pub fn takes_turn(share: f64, draw: f64) -> bool {
    draw < share
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_grows_linearly_to_all() {
        let d = Duration::from_secs(100);
        assert_eq!(share(Duration::ZERO, d), 0.01);
        assert!((share(Duration::from_secs(25), d) - 0.25).abs() < 1e-9);
        assert_eq!(share(Duration::from_secs(100), d), 1.0);
        assert_eq!(share(Duration::from_secs(500), d), 1.0);
        assert_eq!(share(Duration::ZERO, Duration::ZERO), 1.0, "off");
    }

    #[test]
    fn a_turn_is_taken_in_proportion_to_the_share() {
        let taken = (0..1000)
            .filter(|i| takes_turn(0.3, *i as f64 / 1000.0))
            .count();
        assert_eq!(taken, 300);
        assert!((0..1000).all(|i| takes_turn(1.0, i as f64 / 1000.0)));
    }
}
