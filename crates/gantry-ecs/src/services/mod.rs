//! Services: the desired count of a task definition kept running, and deployments that replace its tasks.

// The rollout arithmetic lands before the service controller that applies it.
#[allow(dead_code)]
pub(crate) mod rollout;
