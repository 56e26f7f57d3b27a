//! The load balancers' background work, one pass at a time: open the sockets of stored listeners (after a restart)
//! and close those of deleted ones, probe the targets that are due, finish deregistrations whose delay is over or
//! whose last request ended, and rebuild the routing snapshot the proxy reads.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gantry_store::{Store, Txn};

use crate::api::{actions_target_groups, listener_rules_of};
use crate::attributes;
use crate::dataplane::{
    mark, ListenerRoutes, Routes, Stickiness, TargetGroupRoutes, TargetInService,
};
use crate::health::{probe, State, TargetKey};
use crate::keys;
use crate::model::{ListenerRecord, LoadBalancerRecord, TargetGroupRecord, TargetRecord};
use crate::service::{encode, LbService};

/// The longest the controller waits between passes.
pub const PASS: Duration = Duration::from_millis(500);

/// Per target, what the controller keeps between passes.
#[derive(Default)]
pub(crate) struct Runtime {
    next_check: HashMap<TargetKey, Instant>,
    probing: HashSet<TargetKey>,
    in_flight: HashMap<TargetKey, Arc<AtomicUsize>>,
    /// When each healthy target became healthy, for slow start (`None`: not slowed).
    healthy_since: HashMap<TargetKey, Option<Instant>>,
}

/// Everything stored under `/elbv2/`, by kind, with each record's region.
struct Snapshot {
    load_balancers: Vec<(String, LoadBalancerRecord)>,
    target_groups: Vec<(String, TargetGroupRecord)>,
    listeners: Vec<(String, ListenerRecord)>,
}

impl<S: Store> LbService<S> {
    fn runtime<T>(&self, f: impl FnOnce(&mut Runtime) -> T) -> T {
        let mut r = self.runtime.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut r)
    }

    fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot {
            load_balancers: Vec::new(),
            target_groups: Vec::new(),
            listeners: Vec::new(),
        };
        for kv in self.store.range("/elbv2/") {
            let mut parts = kv.key.split('/').skip(2);
            let (Some(region), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let region = region.to_string();
            match kind {
                "loadbalancers" => s
                    .load_balancers
                    .extend(serde_json::from_slice(&kv.value).ok().map(|r| (region, r))),
                "targetgroups" => s
                    .target_groups
                    .extend(serde_json::from_slice(&kv.value).ok().map(|r| (region, r))),
                "listeners" => s
                    .listeners
                    .extend(serde_json::from_slice(&kv.value).ok().map(|r| (region, r))),
                _ => {}
            }
        }
        s
    }

    /// Runs the passes until the process ends. Every server opens the listeners' sockets, probes the targets (as
    /// each node of an ALB does) and routes; only the holder of `deregistrations` finishes deregistrations, the one
    /// store write of the pass.
    pub fn spawn_controller(
        self: Arc<Self>,
        deregistrations: gantry_store::lease::Lease,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                self.pass(deregistrations.is_held()).await;
                let _ = tokio::time::timeout(PASS, self.data_plane.changed.notified()).await;
            }
        })
    }

    async fn pass(self: &Arc<Self>, finish_deregistrations: bool) {
        let snap = self.snapshot();
        self.sync_sockets(&snap).await;
        if finish_deregistrations {
            self.finish_deregistrations(&snap).await;
        }
        let snap = self.snapshot();
        self.start_probes(&snap);
        self.data_plane.set_routes(self.routes(&snap));
    }

    async fn sync_sockets(&self, snap: &Snapshot) {
        let address_of: HashMap<&str, &str> = snap
            .load_balancers
            .iter()
            .map(|(_, lb)| {
                (
                    lb.load_balancer.load_balancer_arn.as_str(),
                    lb.address.as_str(),
                )
            })
            .collect();
        let live: HashSet<&str> = snap
            .listeners
            .iter()
            .map(|(_, l)| l.listener.listener_arn.as_str())
            .collect();
        self.data_plane.close_except(|arn| live.contains(arn));
        let mut front_ports: Vec<u16> = snap
            .listeners
            .iter()
            .filter(|(_, l)| matches!(l.listener.protocol.as_str(), "HTTP" | "HTTPS"))
            .map(|(_, l)| l.listener.port)
            .collect();
        front_ports.sort_unstable();
        front_ports.dedup();
        self.data_plane
            .sync_front(&self.config.front_address, &front_ports)
            .await;
        for (_, l) in &snap.listeners {
            let Some(addr) = address_of.get(l.listener.load_balancer_arn.as_str()) else {
                continue;
            };
            if !self.data_plane.is_bound(
                &l.listener.listener_arn,
                addr,
                l.listener.port,
                &l.listener.protocol,
            ) {
                if let Err(e) = self.data_plane.open(addr, l).await {
                    tracing::warn!(listener = %l.listener.listener_arn, error = %e, "listener cannot serve");
                }
            }
        }
    }

    /// The target groups some listener or rule forwards to, each with the load balancer its health checks are
    /// made for (the first by ARN when several use it: one check serves them all).
    fn used_target_groups(&self, snap: &Snapshot) -> HashMap<String, String> {
        let mut used: HashMap<String, String> = HashMap::new();
        for (region, l) in &snap.listeners {
            let lb = &l.listener.load_balancer_arn;
            for rule in listener_rules_of(self, region, l) {
                for tg in actions_target_groups(&rule.rule.actions) {
                    let first = used.entry(tg).or_insert_with(|| lb.clone());
                    if lb < first {
                        *first = lb.clone();
                    }
                }
            }
        }
        used
    }

    async fn finish_deregistrations(&self, snap: &Snapshot) {
        let now = gantry_model::time::now();
        for (region, tg) in &snap.target_groups {
            let delay =
                attributes::number(&tg.attributes, "deregistration_delay.timeout_seconds", 300)
                    as f64;
            let arn = &tg.target_group.target_group_arn;
            let done = |t: &TargetRecord| {
                let Some(at) = t.deregistered_at else {
                    return false;
                };
                let idle = self.runtime(|r| {
                    r.in_flight
                        .get(&(arn.clone(), t.id.clone(), t.port))
                        .is_none_or(|n| n.load(Ordering::Relaxed) == 0)
                });
                now - at >= delay || idle
            };
            if !tg.targets.iter().any(done) {
                continue;
            }
            let _w = self.writes.lock().await;
            let key = keys::target_group(region, &tg.target_group.target_group_name);
            let Some(mut current) = self.get::<TargetGroupRecord>(&key) else {
                continue;
            };
            let finished: Vec<TargetKey> = current
                .targets
                .iter()
                .filter(|t| done(t))
                .map(|t| (arn.clone(), t.id.clone(), t.port))
                .collect();
            if finished.is_empty() {
                continue;
            }
            current
                .targets
                .retain(|t| !finished.contains(&(arn.clone(), t.id.clone(), t.port)));
            if let Err(e) = self.store.txn(Txn::new().put(key, encode(&current))).await {
                tracing::warn!(error = %e, "finishing a deregistration failed");
                continue;
            }
            for k in &finished {
                self.health.forget(k);
                self.runtime(|r| r.in_flight.remove(k));
            }
        }
    }

    /// Where a target is reached.
    fn target_addr(
        &self,
        region: &str,
        tg: &TargetGroupRecord,
        t: &TargetRecord,
    ) -> Option<SocketAddr> {
        let ip: IpAddr = if tg.target_group.target_type == "ip" {
            t.id.parse().ok()?
        } else {
            self.resolve_instance(region, &t.id)?
        };
        Some(SocketAddr::new(ip, t.port))
    }

    fn start_probes(self: &Arc<Self>, snap: &Snapshot) {
        let used = self.used_target_groups(snap);
        let now = Instant::now();
        for (region, tg) in &snap.target_groups {
            let g = &tg.target_group;
            let Some(lb) = used.get(&g.target_group_arn) else {
                continue;
            };
            if !g.health_check_enabled {
                continue;
            }
            for t in tg.targets.iter().filter(|t| t.deregistered_at.is_none()) {
                let key: TargetKey = (g.target_group_arn.clone(), t.id.clone(), t.port);
                let due = self.runtime(|r| {
                    let due = !r.probing.contains(&key)
                        && r.next_check.get(&key).is_none_or(|at| *at <= now);
                    if due {
                        r.probing.insert(key.clone());
                        r.next_check.insert(
                            key.clone(),
                            now + Duration::from_secs(g.health_check_interval_seconds as u64),
                        );
                    }
                    due
                });
                if !due {
                    continue;
                }
                let Some(addr) = self.target_addr(region, tg, t) else {
                    self.runtime(|r| r.probing.remove(&key));
                    continue;
                };
                let check = probe::Check::of(g, addr, mark::of(lb));
                let svc = self.clone();
                let (healthy, unhealthy) = (g.healthy_threshold_count, g.unhealthy_threshold_count);
                tokio::spawn(async move {
                    let result = check.run().await;
                    let before = svc.health.get(&key).state;
                    let after = svc
                        .health
                        .observe(key.clone(), result, healthy, unhealthy)
                        .state;
                    svc.runtime(|r| r.probing.remove(&key));
                    if before != after {
                        svc.data_plane.refresh();
                    }
                });
            }
        }
    }

    fn routes(&self, snap: &Snapshot) -> Routes {
        let mut routes = Routes::default();
        let mut tls_used: HashSet<String> = HashSet::new();
        let lbs: HashMap<&str, &LoadBalancerRecord> = snap
            .load_balancers
            .iter()
            .map(|(_, lb)| (lb.load_balancer.load_balancer_arn.as_str(), lb))
            .collect();
        for (region, l) in &snap.listeners {
            let Some(lb) = lbs.get(l.listener.load_balancer_arn.as_str()) else {
                continue;
            };
            let rules = listener_rules_of(self, region, l)
                .into_iter()
                .filter_map(|r| {
                    Some((
                        crate::api::conditions_of(&r.rule.conditions)?,
                        r.rule.actions,
                    ))
                })
                .collect();
            let idle = attributes::number(&lb.attributes, "idle_timeout.timeout_seconds", 60);
            let http2 = lb
                .attributes
                .get("routing.http2.enabled")
                .is_none_or(|v| v == "true");
            let tls = if crate::api::certificates::is_tls(&l.listener.protocol) {
                let mut fingerprint = String::new();
                let tls = self.listener_tls(region, l, http2, &mut fingerprint);
                tls_used.insert(fingerprint);
                if tls.is_none() {
                    continue;
                }
                tls
            } else {
                None
            };
            // The front sockets speak HTTP and HTTPS: TCP and TLS listeners are reached at their load balancer's
            // own address.
            if matches!(l.listener.protocol.as_str(), "HTTP" | "HTTPS") {
                routes.by_host.insert(
                    (
                        lb.load_balancer.dns_name.to_ascii_lowercase(),
                        l.listener.port,
                    ),
                    l.listener.listener_arn.clone(),
                );
            }
            if l.listener.protocol == "HTTPS" {
                routes
                    .tls_by_port
                    .entry(l.listener.port)
                    .or_default()
                    .push(l.listener.listener_arn.clone());
            }
            let mark = mark::of(&l.listener.load_balancer_arn);
            routes.listeners.insert(
                l.listener.listener_arn.clone(),
                ListenerRoutes {
                    load_balancer: l.listener.load_balancer_arn.clone(),
                    mark,
                    upstream: self.data_plane.upstream(mark),
                    protocol: l.listener.protocol.clone(),
                    port: l.listener.port,
                    rules,
                    idle_timeout: Duration::from_secs(idle),
                    tls,
                    http2,
                },
            );
        }
        let mut keep: HashSet<TargetKey> = HashSet::new();
        let now = Instant::now();
        for (region, tg) in &snap.target_groups {
            let g = &tg.target_group;
            let mut healthy = Vec::new();
            let mut all = Vec::new();
            let slow_start = Duration::from_secs(attributes::number(
                &tg.attributes,
                "slow_start.duration_seconds",
                0,
            ));
            // A target that becomes healthy in a group with no healthy target is not slowed: it is all there is.
            let group_had_healthy =
                self.runtime(|r| r.healthy_since.keys().any(|k| k.0 == g.target_group_arn));
            for t in tg.targets.iter().filter(|t| t.deregistered_at.is_none()) {
                let Some(addr) = self.target_addr(region, tg, t) else {
                    continue;
                };
                let key: TargetKey = (g.target_group_arn.clone(), t.id.clone(), t.port);
                let in_flight =
                    self.runtime(|r| r.in_flight.entry(key.clone()).or_default().clone());
                keep.insert(key.clone());
                let state = self.health.get(&key).state;
                let share = if g.health_check_enabled && state == State::Healthy {
                    let since = self.runtime(|r| {
                        *r.healthy_since
                            .entry(key.clone())
                            .or_insert_with(|| group_had_healthy.then_some(now))
                    });
                    since.map_or(1.0, |at| {
                        crate::dataplane::slow_start_share(now.duration_since(at), slow_start)
                    })
                } else {
                    self.runtime(|r| r.healthy_since.remove(&key));
                    1.0
                };
                // Without health checks every target gets traffic; `initial` ones get none until healthy.
                if !g.health_check_enabled || state == State::Healthy {
                    healthy.push(TargetInService {
                        addr,
                        in_flight: in_flight.clone(),
                        share,
                    });
                }
                if g.health_check_enabled && state != State::Initial {
                    all.push(TargetInService {
                        addr,
                        in_flight,
                        share: 1.0,
                    });
                }
            }
            for t in tg.targets.iter().filter(|t| t.deregistered_at.is_some()) {
                keep.insert((g.target_group_arn.clone(), t.id.clone(), t.port));
            }
            // Fail-open: with no healthy target, every judged one gets traffic.
            let targets = if healthy.is_empty() { all } else { healthy };
            let algorithm = tg
                .attributes
                .get("load_balancing.algorithm.type")
                .cloned()
                .unwrap_or_else(|| "round_robin".into());
            let mut group = TargetGroupRoutes::new(
                g.target_group_arn.clone(),
                targets,
                algorithm,
                stickiness_of(tg),
            );
            if g.protocol.as_deref() == Some("HTTPS") {
                group.scheme = "https";
            }
            routes
                .target_groups
                .insert(g.target_group_arn.clone(), Arc::new(group));
        }
        self.health.retain(|k| keep.contains(k));
        self.data_plane.tls.retain(|f| tls_used.contains(f));
        // Counters of deleted load balancers and target groups go with them.
        let known: HashSet<&str> = snap
            .load_balancers
            .iter()
            .map(|(_, lb)| lb.load_balancer.load_balancer_arn.as_str())
            .chain(
                snap.target_groups
                    .iter()
                    .map(|(_, tg)| tg.target_group.target_group_arn.as_str()),
            )
            .collect();
        self.data_plane.metrics.retain(|arn| known.contains(arn));
        let marks: HashSet<u32> = snap
            .load_balancers
            .iter()
            .map(|(_, lb)| mark::of(&lb.load_balancer.load_balancer_arn))
            .collect();
        self.data_plane.retain_upstreams(|m| marks.contains(&m));
        self.runtime(|r| {
            r.in_flight.retain(|k, _| keep.contains(k));
            r.next_check.retain(|k, _| keep.contains(k));
            r.healthy_since.retain(|k, _| keep.contains(k));
        });
        routes
    }
}

pub(crate) type SharedRuntime = Mutex<Runtime>;

/// A target group's stickiness from its attributes: `lb_cookie` for HTTP groups, `source_ip` for TCP ones
/// (`app_cookie` is accepted by the API but not acted on).
fn stickiness_of(tg: &TargetGroupRecord) -> Stickiness {
    let a = &tg.attributes;
    if !attributes::flag(a, "stickiness.enabled") {
        return Stickiness::None;
    }
    match a.get("stickiness.type").map(String::as_str) {
        Some("lb_cookie") => Stickiness::LbCookie(Duration::from_secs(attributes::number(
            a,
            "stickiness.lb_cookie.duration_seconds",
            86400,
        ))),
        Some("source_ip") => Stickiness::SourceIp,
        _ => Stickiness::None,
    }
}
