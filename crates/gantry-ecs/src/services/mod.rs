//! Services: the desired count of a task definition kept running, and deployments that replace its tasks.
//! `api` records what the user wants; `controller` makes it so with `rollout`'s plans.

pub(crate) mod api;
pub(crate) mod backoff;
pub(crate) mod controller;
mod launch;
mod load_balancers;
pub(crate) mod record;
pub(crate) mod rollout;
mod targets;
mod validate;

pub(crate) use controller::is_failure;
pub(crate) use targets::start_draining;
