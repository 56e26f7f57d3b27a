//! The routing snapshot: per listener its rules in priority order, per target group the targets that get traffic.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::model::Action;
use crate::rules::Condition;

#[derive(Default)]
pub struct Routes {
    pub listeners: HashMap<String, ListenerRoutes>,
    /// (DNS name in lower case, port) -> the listener, for the front sockets.
    pub by_host: HashMap<(String, u16), String>,
    /// Port -> the HTTPS listeners on it, for TLS connections to a front socket whose SNI is not a DNS name.
    pub tls_by_port: HashMap<u16, Vec<String>>,
    pub target_groups: HashMap<String, Arc<TargetGroupRoutes>>,
}

pub struct ListenerRoutes {
    /// Its load balancer's ARN (the metrics' key).
    pub load_balancer: String,
    /// The mark of its load balancer's connections to targets.
    pub mark: u32,
    /// Its load balancer's pooled client (connections with its mark).
    pub(crate) upstream: super::proxy::Upstream,
    pub protocol: String,
    pub port: u16,
    /// Rules by priority, the default rule's (no conditions) last.
    pub rules: Vec<(Vec<Condition>, Vec<Action>)>,
    /// The load balancer's idle timeout.
    pub idle_timeout: std::time::Duration,
    /// HTTPS and TLS listeners: how connections are decrypted.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `routing.http2.enabled`: HTTP/2 from clients (ALPN on HTTPS, prior knowledge on HTTP).
    pub http2: bool,
}

pub struct TargetInService {
    pub addr: SocketAddr,
    /// Requests and connections in flight to it (least outstanding requests, draining).
    pub in_flight: Arc<AtomicUsize>,
    /// The share of its turns it takes: below 1 during slow start.
    pub share: f64,
}

impl TargetInService {
    /// Counts one request or connection to the target until the guard is dropped, however its task ends.
    pub fn begin(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.in_flight.clone())
    }
}

/// One request or connection counted in its target's `in_flight`.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a target group keeps a client on one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stickiness {
    None,
    /// ALB's duration-based `AWSALB` cookie, valid this long.
    LbCookie(Duration),
    /// NLB's: the same client address goes to the same target.
    SourceIp,
}

pub struct TargetGroupRoutes {
    pub arn: String,
    /// The targets that get new requests: the healthy ones, or every registered one that is not draining when
    /// none is healthy (ALB's fail-open).
    pub targets: Vec<TargetInService>,
    pub algorithm: String,
    pub stickiness: Stickiness,
    /// How the proxy speaks to the targets, from the target group's protocol: `http`, or `https` (TLS).
    pub scheme: &'static str,
    next: AtomicUsize,
}

impl TargetGroupRoutes {
    pub fn new(
        arn: String,
        targets: Vec<TargetInService>,
        algorithm: String,
        stickiness: Stickiness,
    ) -> TargetGroupRoutes {
        TargetGroupRoutes {
            arn,
            targets,
            algorithm,
            stickiness,
            scheme: "http",
            next: AtomicUsize::new(0),
        }
    }

    /// The target in service at `addr`, if it still is.
    pub fn find(&self, addr: SocketAddr) -> Option<&TargetInService> {
        self.targets.iter().find(|t| t.addr == addr)
    }

    /// The target for a new connection from `client`: by source IP when the group is sticky that way, else by
    /// the group's algorithm.
    pub fn pick_for(&self, client: IpAddr) -> Option<&TargetInService> {
        if self.stickiness != Stickiness::SourceIp || self.targets.is_empty() {
            return self.pick();
        }
        // A fixed hash (not the std's seeded one) so that a client keeps its target across routing rebuilds.
        let h = match client {
            IpAddr::V4(a) => fnv1a(&a.octets()),
            IpAddr::V6(a) => fnv1a(&a.octets()),
        };
        self.targets.get((h % self.targets.len() as u64) as usize)
    }

    /// The target for the next request, by the group's algorithm.
    pub fn pick(&self) -> Option<&TargetInService> {
        if self.targets.is_empty() {
            return None;
        }
        match self.algorithm.as_str() {
            // A target in slow start counts as busier than it is.
            "least_outstanding_requests" => self.targets.iter().min_by(|a, b| {
                let load = |t: &TargetInService| {
                    (t.in_flight.load(Ordering::Relaxed) + 1) as f64 / t.share
                };
                load(a).total_cmp(&load(b))
            }),
            "weighted_random" => {
                use rand::Rng;
                let i = rand::thread_rng().gen_range(0..self.targets.len());
                self.targets.get(i)
            }
            _ => {
                // A turn that falls on a target in slow start passes to the next one unless the target takes it.
                let n = self.targets.len();
                let mut chosen = None;
                for _ in 0..n {
                    let t = &self.targets[self.next.fetch_add(1, Ordering::Relaxed) % n];
                    if t.share >= 1.0 || super::slow_start::takes_turn(t.share, rand::random()) {
                        return Some(t);
                    }
                    chosen.get_or_insert(t);
                }
                chosen
            }
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(ports: &[u16], stickiness: Stickiness) -> TargetGroupRoutes {
        let targets = ports
            .iter()
            .map(|p| TargetInService {
                addr: SocketAddr::from(([127, 0, 0, 1], *p)),
                in_flight: Arc::default(),
                share: 1.0,
            })
            .collect();
        TargetGroupRoutes::new("tg".into(), targets, "round_robin".into(), stickiness)
    }

    #[test]
    fn a_target_in_slow_start_gets_its_share_of_round_robin_turns() {
        let mut g = group(&[1, 2], Stickiness::None);
        g.targets[1].share = 0.25;
        let to_slow = (0..20_000)
            .filter(|_| g.pick().unwrap().addr.port() == 2)
            .count();
        // Weights 1 and 0.25: a fifth of the requests (a turn it passes goes to the other, and the next pick
        // starts at it again).
        assert!((3_600..4_400).contains(&to_slow), "{to_slow}");
    }

    #[test]
    fn round_robin_and_source_ip() {
        let g = group(&[1, 2], Stickiness::None);
        let picks: Vec<u16> = (0..4)
            .map(|_| g.pick_for("10.0.0.1".parse().unwrap()).unwrap().addr.port())
            .collect();
        assert_eq!(picks, [1, 2, 1, 2]);
        let g = group(&[1, 2, 3], Stickiness::SourceIp);
        let one = g.pick_for("10.0.0.1".parse().unwrap()).unwrap().addr;
        assert!((0..10).all(|_| g.pick_for("10.0.0.1".parse().unwrap()).unwrap().addr == one));
        let spread: std::collections::HashSet<u16> = (0..50u8)
            .map(|i| g.pick_for(IpAddr::from([10, 0, 0, i])).unwrap().addr.port())
            .collect();
        assert_eq!(spread.len(), 3);
        assert!(group(&[], Stickiness::SourceIp)
            .pick_for("10.0.0.1".parse().unwrap())
            .is_none());
    }

    #[test]
    fn in_flight_guards_count_until_dropped() {
        let g = group(&[1], Stickiness::None);
        let t = g.find(SocketAddr::from(([127, 0, 0, 1], 1))).unwrap();
        let (a, b) = (t.begin(), t.begin());
        assert_eq!(t.in_flight.load(Ordering::Relaxed), 2);
        drop(a);
        drop(b);
        assert_eq!(t.in_flight.load(Ordering::Relaxed), 0);
        assert!(g.find(SocketAddr::from(([127, 0, 0, 1], 2))).is_none());
    }
}
