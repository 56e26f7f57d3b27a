//! Forgetting stopped tasks. ECS keeps a STOPPED task visible for about an hour, then it is gone; Gantry does the
//! same, so that state does not grow without bound.

use std::sync::Arc;
use std::time::Duration;

use gantry_store::{Store, Txn};

use crate::records::TaskRecord;
use crate::{keys, EcsService};

/// How long a STOPPED task stays visible.
pub const STOPPED_TASK_RETENTION: Duration = Duration::from_secs(3600);
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The tasks to forget at `now` (epoch seconds): STOPPED for longer than `retention`.
pub fn expired<'a>(
    tasks: impl Iterator<Item = &'a TaskRecord>,
    now: f64,
    retention: Duration,
) -> Vec<&'a TaskRecord> {
    tasks
        .filter(|t| {
            t.task.is_stopped()
                && t.task
                    .stopped_at
                    .is_some_and(|s| now - s > retention.as_secs_f64())
        })
        .collect()
}

impl<S: Store> EcsService<S> {
    /// Deletes every task STOPPED for longer than the retention; returns how many.
    pub async fn forget_stopped_tasks(&self, now: f64) -> Result<usize, crate::EcsError> {
        let records = self.repo.list::<TaskRecord>("/ecs/");
        let mut txn = Txn::new();
        let mut count = 0;
        for t in expired(
            records.iter().map(|r| &r.value),
            now,
            STOPPED_TASK_RETENTION,
        ) {
            let (Some(region), Some(cluster)) =
                (region_of(&t.task.task_arn), cluster_of(&t.task.cluster_arn))
            else {
                continue;
            };
            txn = txn.delete(keys::task(region, cluster, t.task.id()));
            count += 1;
        }
        if count > 0 {
            self.repo.commit(txn).await?;
        }
        Ok(count)
    }

    /// Runs [`Self::forget_stopped_tasks`] every minute.
    pub fn spawn_cleanup(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = self.forget_stopped_tasks(gantry_model::time::now()).await {
                    tracing::warn!(error = %e, "forgetting stopped tasks failed");
                }
            }
        })
    }
}

fn region_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(3)
}

fn cluster_of(cluster_arn: &str) -> Option<&str> {
    cluster_arn.rsplit_once("cluster/").map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use gantry_model::ecs::Task;

    use super::*;

    fn task(last: &str, stopped_at: Option<f64>) -> TaskRecord {
        TaskRecord {
            task: Task {
                last_status: last.into(),
                stopped_at,
                ..Default::default()
            },
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
        let out = expired(tasks.iter(), 4000.0, Duration::from_secs(3600));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].task.stopped_at, Some(0.0));
    }

    #[test]
    fn arns_split() {
        assert_eq!(
            region_of("arn:aws:ecs:eu-west-1:0:task/c/1"),
            Some("eu-west-1")
        );
        assert_eq!(
            cluster_of("arn:aws:ecs:eu-west-1:0:cluster/prod"),
            Some("prod")
        );
    }
}
