//! A target's health as ELBv2 judges it, as plain data: one passing check makes a new target healthy,
//! `UnhealthyThresholdCount` consecutive failures make it unhealthy, and `HealthyThresholdCount` consecutive
//! passes bring an unhealthy one back.

/// What one health check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Passed,
    /// An HTTP answer whose code the matcher does not accept.
    CodeMismatch(u16),
    TimedOut,
    /// No connection, or a malformed answer.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Initial,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub state: State,
    /// The last failing probe while not healthy (for the reason code).
    pub last_failure: Option<Probe>,
    /// Whether any check ran yet.
    pub checked: bool,
    passes: u32,
    failures: u32,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            state: State::Initial,
            last_failure: None,
            checked: false,
            passes: 0,
            failures: 0,
        }
    }
}

impl Health {
    /// Takes one probe's result into account.
    pub fn observe(&mut self, probe: Probe, healthy_threshold: u32, unhealthy_threshold: u32) {
        self.checked = true;
        if probe == Probe::Passed {
            self.passes += 1;
            self.failures = 0;
            let needed = if self.state == State::Initial {
                1
            } else {
                healthy_threshold
            };
            if self.passes >= needed {
                self.state = State::Healthy;
                self.last_failure = None;
            }
        } else {
            self.failures += 1;
            self.passes = 0;
            self.last_failure = Some(probe);
            if self.failures >= unhealthy_threshold {
                self.state = State::Unhealthy;
            }
        }
    }

    /// ELBv2's (state, reason, description) for a registered target in use.
    pub fn describe(&self) -> (&'static str, Option<&'static str>, Option<String>) {
        match (self.state, &self.last_failure) {
            (State::Healthy, _) => ("healthy", None, None),
            (State::Initial, _) if !self.checked => (
                "initial",
                Some("Elb.RegistrationInProgress"),
                Some("Target registration is in progress".into()),
            ),
            (State::Initial, _) => (
                "initial",
                Some("Elb.InitialHealthChecking"),
                Some("Initial health checks in progress".into()),
            ),
            (State::Unhealthy, Some(Probe::CodeMismatch(code))) => (
                "unhealthy",
                Some("Target.ResponseCodeMismatch"),
                Some(format!("Health checks failed with these codes: [{code}]")),
            ),
            (State::Unhealthy, Some(Probe::TimedOut)) => (
                "unhealthy",
                Some("Target.Timeout"),
                Some("Request timed out".into()),
            ),
            (State::Unhealthy, _) => (
                "unhealthy",
                Some("Target.FailedHealthChecks"),
                Some("Health checks failed".into()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_makes_a_new_target_healthy() {
        let mut h = Health::default();
        assert_eq!(h.describe().1, Some("Elb.RegistrationInProgress"));
        h.observe(Probe::Failed, 5, 2);
        assert_eq!(
            (h.state, h.describe().1),
            (State::Initial, Some("Elb.InitialHealthChecking"))
        );
        h.observe(Probe::Passed, 5, 2);
        assert_eq!(h.state, State::Healthy);
    }

    #[test]
    fn thresholds_take_it_out_and_back() {
        let mut h = Health::default();
        h.observe(Probe::Passed, 3, 2);
        h.observe(Probe::CodeMismatch(500), 3, 2);
        assert_eq!(h.state, State::Healthy);
        h.observe(Probe::CodeMismatch(500), 3, 2);
        assert_eq!(h.describe().0, "unhealthy");
        assert_eq!(h.describe().1, Some("Target.ResponseCodeMismatch"));
        assert_eq!(
            h.describe().2.as_deref(),
            Some("Health checks failed with these codes: [500]")
        );
        h.observe(Probe::Passed, 3, 2);
        h.observe(Probe::Passed, 3, 2);
        assert_eq!(h.state, State::Unhealthy);
        // A failure in between restarts the count.
        h.observe(Probe::TimedOut, 3, 2);
        h.observe(Probe::Passed, 3, 2);
        h.observe(Probe::Passed, 3, 2);
        assert_eq!(h.state, State::Unhealthy);
        h.observe(Probe::Passed, 3, 2);
        assert_eq!(h.state, State::Healthy);
    }

    #[test]
    fn failures_of_a_new_target_make_it_unhealthy() {
        let mut h = Health::default();
        h.observe(Probe::TimedOut, 5, 2);
        h.observe(Probe::TimedOut, 5, 2);
        assert_eq!(h.describe().1, Some("Target.Timeout"));
    }
}
