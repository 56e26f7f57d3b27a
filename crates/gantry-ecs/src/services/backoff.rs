//! Launch back-off for services whose tasks keep failing: after each new failure the next launch waits twice as
//! long (1 s, 2 s, 4 s ... up to [`MAX_DELAY_SECS`]), so a crash-looping task is restarted calmly, not in a tight
//! loop. A completed rollout starts over. Kept in memory: after a restart the first launch is immediate.

use std::collections::HashMap;
use std::sync::Mutex;

pub const MAX_DELAY_SECS: f64 = 300.0;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct State {
    failures_seen: i64,
    consecutive: u32,
    not_before: f64,
}

#[derive(Default)]
pub struct LaunchBackoff {
    services: Mutex<HashMap<String, State>>,
}

/// The delay after `consecutive` failures in a row.
pub fn delay(consecutive: u32) -> f64 {
    if consecutive == 0 {
        return 0.0;
    }
    2f64.powi(consecutive.min(16) as i32 - 1)
        .min(MAX_DELAY_SECS)
}

impl LaunchBackoff {
    /// Whether the service may launch now, given the failures counted so far and whether its rollout is done.
    pub fn allows(&self, service: &str, failures: i64, settled: bool, now: f64) -> bool {
        let Ok(mut services) = self.services.lock() else {
            return true;
        };
        let s = services.entry(service.to_string()).or_default();
        if settled {
            *s = State {
                failures_seen: failures,
                ..Default::default()
            };
            return true;
        }
        if failures > s.failures_seen {
            s.consecutive += (failures - s.failures_seen) as u32;
            s.failures_seen = failures;
            s.not_before = now + delay(s.consecutive);
        }
        now >= s.not_before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        assert_eq!(delay(0), 0.0);
        assert_eq!(delay(1), 1.0);
        assert_eq!(delay(4), 8.0);
        assert_eq!(delay(30), MAX_DELAY_SECS);
    }

    #[test]
    fn failures_hold_launches_back_until_settled() {
        let b = LaunchBackoff::default();
        assert!(b.allows("s", 0, false, 0.0));
        assert!(!b.allows("s", 1, false, 0.5));
        assert!(!b.allows("s", 1, false, 1.0));
        assert!(b.allows("s", 1, false, 1.5));
        assert!(!b.allows("s", 2, false, 2.0));
        assert!(!b.allows("s", 2, false, 3.9));
        assert!(b.allows("s", 2, false, 4.0));
        // Settled: the count starts over.
        assert!(b.allows("s", 2, true, 5.0));
        assert!(!b.allows("s", 3, false, 5.0));
        assert!(b.allows("s", 3, false, 6.0));
    }
}
