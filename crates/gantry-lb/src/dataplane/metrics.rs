//! The load balancers' CloudWatch figures as counters (RequestCount, HTTPCode_Target_NXX_Count,
//! HTTPCode_ELB_NXX_Count, TargetResponseTime, ActiveConnectionCount), kept per load balancer and target group with
//! AWS's dimension values (`app/web/0123...`, `targetgroup/web/0123...`), for `GET /metrics` now and for
//! CloudWatch metrics and auto scaling later.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gantry_aws::metrics::label;

#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
    /// Answers from targets by class: 2XX..5XX at 0..3.
    pub target: [AtomicU64; 4],
    /// The load balancer's own answers by class.
    pub elb: [AtomicU64; 4],
    /// TargetResponseTime: microseconds summed over the answers from targets.
    pub response_micros: AtomicU64,
    pub active_connections: AtomicI64,
}

impl Counters {
    fn class(status: u16) -> Option<usize> {
        (200..600)
            .contains(&status)
            .then(|| (status / 100 - 2) as usize)
    }

    pub fn target_answer(&self, status: u16, seconds: f64) {
        if let Some(c) = Self::class(status) {
            self.target[c].fetch_add(1, Ordering::Relaxed);
        }
        self.response_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn elb_answer(&self, status: u16) {
        if let Some(c) = Self::class(status) {
            self.elb[c].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The AWS dimension value of a load balancer or target group ARN: what follows `loadbalancer/`, or the
/// `targetgroup/...` resource.
pub fn dimension(arn: &str) -> String {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or(arn);
    resource
        .strip_prefix("loadbalancer/")
        .unwrap_or(resource)
        .to_string()
}

#[derive(Default)]
pub struct Metrics {
    load_balancers: Mutex<BTreeMap<String, Arc<Counters>>>,
    target_groups: Mutex<BTreeMap<String, Arc<Counters>>>,
}

fn entry(map: &Mutex<BTreeMap<String, Arc<Counters>>>, arn: &str) -> Arc<Counters> {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    match m.get(arn) {
        Some(c) => c.clone(),
        None => m.entry(arn.to_string()).or_default().clone(),
    }
}

impl Metrics {
    pub fn load_balancer(&self, arn: &str) -> Arc<Counters> {
        entry(&self.load_balancers, arn)
    }

    pub fn target_group(&self, arn: &str) -> Arc<Counters> {
        entry(&self.target_groups, arn)
    }

    /// Forgets what `keep` does not name (deleted resources).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        for map in [&self.load_balancers, &self.target_groups] {
            map.lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|arn, _| keep(arn));
        }
    }

    pub fn render(&self, out: &mut String) {
        for (map, name, dim) in [
            (&self.load_balancers, "load_balancer", "LoadBalancer"),
            (&self.target_groups, "target_group", "TargetGroup"),
        ] {
            let m = map.lock().unwrap_or_else(|p| p.into_inner());
            let rows: Vec<(String, &Arc<Counters>)> = m
                .iter()
                .map(|(arn, c)| (label(&dimension(arn)), c))
                .collect();
            let series = |out: &mut String,
                          metric: &str,
                          help: &str,
                          kind: &str,
                          value: &dyn Fn(&Counters) -> String| {
                let _ = writeln!(
                    out,
                    "# HELP gantry_elb_{name}_{metric} {help} (CloudWatch dimension {dim})."
                );
                let _ = writeln!(out, "# TYPE gantry_elb_{name}_{metric} {kind}");
                for (d, c) in &rows {
                    let _ = writeln!(
                        out,
                        "gantry_elb_{name}_{metric}{{{name}=\"{d}\"}} {}",
                        value(c)
                    );
                }
            };
            let get = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
            series(
                out,
                "request_count_total",
                "RequestCount",
                "counter",
                &|c| get(&c.requests),
            );
            for (i, class) in ["2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
                let upper = class.to_uppercase();
                series(
                    out,
                    &format!("httpcode_target_{class}_count_total"),
                    &format!("HTTPCode_Target_{upper}_Count"),
                    "counter",
                    &|c| get(&c.target[i]),
                );
                if name == "load_balancer" {
                    series(
                        out,
                        &format!("httpcode_elb_{class}_count_total"),
                        &format!("HTTPCode_ELB_{upper}_Count"),
                        "counter",
                        &|c| get(&c.elb[i]),
                    );
                }
            }
            series(
                out,
                "target_response_time_seconds_total",
                "TargetResponseTime summed over the answers from targets",
                "counter",
                &|c| format!("{}", c.response_micros.load(Ordering::Relaxed) as f64 / 1e6),
            );
            if name == "load_balancer" {
                series(
                    out,
                    "active_connection_count",
                    "ActiveConnectionCount: client connections open on its own address",
                    "gauge",
                    &|c| c.active_connections.load(Ordering::Relaxed).to_string(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_class_and_renders_with_aws_dimensions() {
        let m = Metrics::default();
        let lb = "arn:aws:elasticloadbalancing:us-east-1:0:loadbalancer/app/web/0123";
        let tg = "arn:aws:elasticloadbalancing:us-east-1:0:targetgroup/web/4567";
        let c = m.load_balancer(lb);
        c.requests.fetch_add(3, Ordering::Relaxed);
        c.target_answer(200, 0.5);
        c.target_answer(503, 0.25);
        c.elb_answer(502);
        m.target_group(tg).target_answer(404, 0.1);
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains(
                "gantry_elb_load_balancer_request_count_total{load_balancer=\"app/web/0123\"} 3\n"
            ),
            "{out}"
        );
        assert!(out.contains("gantry_elb_load_balancer_httpcode_target_2xx_count_total{load_balancer=\"app/web/0123\"} 1\n"));
        assert!(out.contains("gantry_elb_load_balancer_httpcode_elb_5xx_count_total{load_balancer=\"app/web/0123\"} 1\n"));
        assert!(out.contains("gantry_elb_load_balancer_target_response_time_seconds_total{load_balancer=\"app/web/0123\"} 0.75\n"));
        assert!(out.contains("gantry_elb_target_group_httpcode_target_4xx_count_total{target_group=\"targetgroup/web/4567\"} 1\n"));
        m.retain(|arn| arn != lb);
        let mut out = String::new();
        m.render(&mut out);
        assert!(!out.contains("app/web/0123"));
    }
}
