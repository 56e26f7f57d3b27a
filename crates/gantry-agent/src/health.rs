//! Health as ECS reports it, from Docker's HEALTHCHECK results. Pure functions.

use crate::runtime::Health;

pub const HEALTHY: &str = "HEALTHY";
pub const UNHEALTHY: &str = "UNHEALTHY";
pub const UNKNOWN: &str = "UNKNOWN";

/// A container's `healthStatus`: `None` without a health check, UNKNOWN until Docker has a verdict.
pub fn container_health(has_health_check: bool, health: Option<Health>) -> Option<&'static str> {
    if !has_health_check {
        return None;
    }
    Some(match health {
        Some(Health::Healthy) => HEALTHY,
        Some(Health::Unhealthy) => UNHEALTHY,
        _ => UNKNOWN,
    })
}

/// One container as the task's health sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub essential: bool,
    pub has_health_check: bool,
    pub health: Option<Health>,
}

/// A task's `healthStatus`: HEALTHY when every essential container with a health check is healthy, UNHEALTHY when
/// any of them is unhealthy, UNKNOWN otherwise (also when none has a health check).
pub fn task_health(members: impl IntoIterator<Item = Member>) -> &'static str {
    let checked: Vec<Option<Health>> = members
        .into_iter()
        .filter(|m| m.essential && m.has_health_check)
        .map(|m| m.health)
        .collect();
    if checked.contains(&Some(Health::Unhealthy)) {
        UNHEALTHY
    } else if !checked.is_empty() && checked.iter().all(|h| *h == Some(Health::Healthy)) {
        HEALTHY
    } else {
        UNKNOWN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(essential: bool, has_health_check: bool, health: Option<Health>) -> Member {
        Member {
            essential,
            has_health_check,
            health,
        }
    }

    #[test]
    fn container_health_needs_a_check() {
        assert_eq!(container_health(false, Some(Health::Healthy)), None);
        assert_eq!(container_health(true, None), Some(UNKNOWN));
        assert_eq!(
            container_health(true, Some(Health::Starting)),
            Some(UNKNOWN)
        );
        assert_eq!(container_health(true, Some(Health::Healthy)), Some(HEALTHY));
        assert_eq!(
            container_health(true, Some(Health::Unhealthy)),
            Some(UNHEALTHY)
        );
    }

    #[test]
    fn task_health_follows_essential_checked_containers() {
        assert_eq!(task_health([]), UNKNOWN);
        assert_eq!(task_health([m(true, false, None)]), UNKNOWN);
        assert_eq!(
            task_health([m(true, true, Some(Health::Healthy)), m(true, false, None)]),
            HEALTHY
        );
        assert_eq!(
            task_health([
                m(true, true, Some(Health::Healthy)),
                m(true, true, Some(Health::Starting))
            ]),
            UNKNOWN
        );
        assert_eq!(
            task_health([
                m(true, true, Some(Health::Healthy)),
                m(true, true, Some(Health::Unhealthy))
            ]),
            UNHEALTHY
        );
        // a non-essential container's health does not count
        assert_eq!(
            task_health([
                m(true, true, Some(Health::Healthy)),
                m(false, true, Some(Health::Unhealthy))
            ]),
            HEALTHY
        );
    }
}
