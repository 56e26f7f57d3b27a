//! `GET /metrics` of the load balancers: the data plane's counters, and each target group's HealthyHostCount and
//! UnHealthyHostCount as its targets stand now.

use std::fmt::Write;

use gantry_aws::metrics::label;
use gantry_store::Store;

use crate::api::target_group_users;
use crate::api::targets::target_health;
use crate::dataplane::dimension;
use crate::model::TargetGroupRecord;
use crate::service::LbService;

impl<S: Store> LbService<S> {
    /// The load balancers' figures in the Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        self.data_plane.metrics.render(out);
        let mut rows = Vec::new();
        for kv in self.store.range("/elbv2/") {
            let mut parts = kv.key.split('/').skip(2);
            let (Some(region), Some("targetgroups")) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(tg) = serde_json::from_slice::<TargetGroupRecord>(&kv.value) else {
                continue;
            };
            let arn = &tg.target_group.target_group_arn;
            let in_use = !target_group_users(self, region, arn).is_empty();
            let (mut healthy, mut unhealthy) = (0, 0);
            for t in &tg.targets {
                match target_health(self, &tg, in_use, t).0.as_str() {
                    "healthy" => healthy += 1,
                    "unhealthy" => unhealthy += 1,
                    _ => {}
                }
            }
            rows.push((label(&dimension(arn)), healthy, unhealthy));
        }
        for (metric, help, pick) in [
            ("healthy_host_count", "HealthyHostCount", 0usize),
            ("unhealthy_host_count", "UnHealthyHostCount", 1),
        ] {
            let _ = writeln!(out, "# HELP gantry_elb_target_group_{metric} {help} (CloudWatch dimension TargetGroup).");
            let _ = writeln!(out, "# TYPE gantry_elb_target_group_{metric} gauge");
            for (d, h, u) in &rows {
                let v = if pick == 0 { h } else { u };
                let _ = writeln!(
                    out,
                    "gantry_elb_target_group_{metric}{{target_group=\"{d}\"}} {v}"
                );
            }
        }
    }
}
