//! Forgetting stopped tasks. ECS keeps a STOPPED task visible for about an hour, then it is gone; Gantry does the
//! same, so that state does not grow without bound.

use std::sync::Arc;
use std::time::Duration;

use gantry_store::{Store, Txn};

use crate::records::TaskRecord;
use crate::repo::{Repo, Versioned};
use crate::EcsService;

/// How long a STOPPED task stays visible.
pub const STOPPED_TASK_RETENTION: Duration = Duration::from_secs(3600);
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Whether a task is to be forgotten at `now` (epoch seconds): STOPPED for longer than `retention`.
pub fn is_expired(t: &TaskRecord, now: f64, retention: Duration) -> bool {
    t.task.is_stopped()
        && t.task
            .stopped_at
            .is_some_and(|s| now - s > retention.as_secs_f64())
}

impl<S: Store> EcsService<S> {
    /// Deletes every task STOPPED for longer than the retention; returns how many.
    pub async fn forget_stopped_tasks(&self, now: f64) -> Result<usize, crate::EcsError> {
        // Task keys of every region: `/ecs/{region}/tasks/{cluster}/{id}`.
        let records: Vec<Versioned<TaskRecord>> = self
            .repo
            .store
            .range("/ecs/")
            .into_iter()
            .filter(|kv| kv.key.split('/').nth(3) == Some("tasks"))
            .filter_map(Repo::<S>::decode)
            .collect();
        let keys: Vec<&str> = records
            .iter()
            .filter(|r| is_expired(&r.value, now, STOPPED_TASK_RETENTION))
            .map(|r| r.kv.key.as_str())
            .collect();
        if !keys.is_empty() {
            let txn = keys.iter().fold(Txn::new(), |txn, k| txn.delete(*k));
            self.repo.commit(txn).await?;
        }
        Ok(keys.len())
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
        let retention = Duration::from_secs(3600);
        let out: Vec<bool> = tasks
            .iter()
            .map(|t| is_expired(t, 4000.0, retention))
            .collect();
        assert_eq!(out, [true, false, false]);
    }
}
