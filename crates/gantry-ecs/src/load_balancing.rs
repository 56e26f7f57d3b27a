//! What ECS needs of Elastic Load Balancing, as a small trait the binary implements over the ELBv2 service: the
//! facts of a target group a service names, and registering, deregistering and reading the health of the
//! targets of its tasks. ECS knows nothing else of load balancers.

use std::future::Future;
use std::pin::Pin;

/// A target group as ECS validates a service against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupFacts {
    /// `instance` or `ip`.
    pub target_type: String,
    /// Some listener or rule of a load balancer forwards to it.
    pub has_load_balancer: bool,
}

/// A registered target's state, as DescribeTargetHealth says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    Initial,
    Healthy,
    Unhealthy,
    /// Deregistered, its requests draining.
    Draining,
    /// The target group is used by no load balancer, or has health checks off: nothing to wait for.
    Unchecked,
}

pub type LbFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

pub trait LoadBalancing: Send + Sync + 'static {
    /// The target group, or `None` when it does not exist.
    fn target_group(&self, region: &str, arn: &str) -> Option<TargetGroupFacts>;
    /// The target's state; `None` when it is not registered (any more).
    fn target_state(&self, region: &str, arn: &str, id: &str, port: u16) -> Option<TargetState>;
    fn register<'a>(
        &'a self,
        region: &'a str,
        arn: &'a str,
        id: &'a str,
        port: u16,
    ) -> LbFuture<'a>;
    fn deregister<'a>(
        &'a self,
        region: &'a str,
        arn: &'a str,
        id: &'a str,
        port: u16,
    ) -> LbFuture<'a>;
}
