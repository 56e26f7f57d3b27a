//! Forgetting stopped tasks. ECS keeps a STOPPED task visible for about an hour, then it is gone; Gantry does the
//! same, so that state does not grow without bound.

use std::sync::Arc;
use std::time::Duration;

use gantry_store::{Store, Txn};

use crate::index::TaskSummary;
use crate::{keys, EcsService};

/// How long a STOPPED task stays visible.
pub const STOPPED_TASK_RETENTION: Duration = Duration::from_secs(3600);
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Whether a task is to be forgotten at `now` (epoch seconds): STOPPED for longer than `retention`.
pub fn is_expired(t: &TaskSummary, now: f64, retention: Duration) -> bool {
    !t.holds
        && t.stopped_at
            .is_some_and(|s| now - s > retention.as_secs_f64())
}

impl<S: Store> EcsService<S> {
    /// Deletes the tasks stopped longer than the retention ago, found in the index (no record is decoded).
    pub async fn forget_stopped_tasks(&self, now: f64) -> Result<usize, crate::EcsError> {
        let expired = self
            .index
            .find_tasks(|t| is_expired(t, now, STOPPED_TASK_RETENTION));
        if !expired.is_empty() {
            let txn = expired
                .iter()
                .fold(Txn::new(), |txn, (region, cluster, id)| {
                    txn.delete(keys::task(region, cluster, id))
                });
            self.repo.commit(txn).await?;
        }
        Ok(expired.len())
    }

    /// Sweeps whenever this server holds `lease`, until the process ends.
    pub fn spawn_cleanup(
        self: Arc<Self>,
        lease: gantry_store::lease::Lease,
    ) -> tokio::task::JoinHandle<()> {
        gantry_store::lease::spawn_leased(lease, move || {
            let svc = self.clone();
            async move { svc.run_cleanup().await }
        })
    }

    async fn run_cleanup(self: Arc<Self>) {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = self.forget_stopped_tasks(gantry_model::time::now()).await {
                tracing::warn!(error = %e, "forgetting stopped tasks failed");
            }
            let now_ms = gantry_model::time::now_millis().max(0) as u64;
            if let Err(e) = self.prune_events(now_ms).await {
                tracing::warn!(error = %e, "pruning old events failed");
            }
            self.sweep_interfaces().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(last: &str, stopped_at: Option<f64>) -> TaskSummary {
        TaskSummary {
            holds: last != "STOPPED",
            stopped_at,
            ..Default::default()
        }
    }

    #[test]
    fn only_long_stopped_tasks_expire() {
        let tasks = [
            task("STOPPED", Some(0.0)),
            task("STOPPED", Some(3000.0)),
            task("RUNNING", None),
        ];
        let retention = Duration::from_secs(3600);
        let out: Vec<bool> = tasks
            .iter()
            .map(|t| is_expired(t, 4000.0, retention))
            .collect();
        assert_eq!(out, [true, false, false]);
    }
}
