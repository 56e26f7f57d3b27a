//! The routing snapshot: per listener its rules in priority order, per target group the targets that get traffic.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::model::Action;
use crate::rules::Condition;

#[derive(Default)]
pub struct Routes {
    pub listeners: HashMap<String, ListenerRoutes>,
    /// (DNS name in lower case, port) -> the listener, for the front sockets.
    pub by_host: HashMap<(String, u16), String>,
    pub target_groups: HashMap<String, Arc<TargetGroupRoutes>>,
}

pub struct ListenerRoutes {
    pub protocol: String,
    pub port: u16,
    /// Rules by priority, the default rule's (no conditions) last.
    pub rules: Vec<(Vec<Condition>, Vec<Action>)>,
    /// The load balancer's idle timeout.
    pub idle_timeout: std::time::Duration,
}

pub struct TargetInService {
    pub addr: SocketAddr,
    /// Requests in flight to it (least outstanding requests, draining).
    pub in_flight: Arc<AtomicUsize>,
}

pub struct TargetGroupRoutes {
    pub arn: String,
    /// The targets that get new requests: the healthy ones, or every registered one that is not draining when
    /// none is healthy (ALB's fail-open).
    pub targets: Vec<TargetInService>,
    pub algorithm: String,
    next: AtomicUsize,
}

impl TargetGroupRoutes {
    pub fn new(arn: String, targets: Vec<TargetInService>, algorithm: String) -> TargetGroupRoutes {
        TargetGroupRoutes {
            arn,
            targets,
            algorithm,
            next: AtomicUsize::new(0),
        }
    }

    /// The target for the next request, by the group's algorithm.
    pub fn pick(&self) -> Option<&TargetInService> {
        if self.targets.is_empty() {
            return None;
        }
        match self.algorithm.as_str() {
            "least_outstanding_requests" => self
                .targets
                .iter()
                .min_by_key(|t| t.in_flight.load(Ordering::Relaxed)),
            "weighted_random" => {
                use rand::Rng;
                let i = rand::thread_rng().gen_range(0..self.targets.len());
                self.targets.get(i)
            }
            _ => {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % self.targets.len();
                self.targets.get(i)
            }
        }
    }
}
