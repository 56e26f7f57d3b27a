//! Retention: the allowed `retentionInDays` values, and the pass that deletes expired events (run every
//! [`RETENTION_INTERVAL`] by [`LogsService::spawn_retention`]). The same pass collects the events of streams no
//! record names any more (a deletion interrupted between the store and the event storage).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use gantry_model::time::now_millis;
use gantry_store::Store;

use crate::keys::{self, ParsedKey};
use crate::records::{decode, GroupRecord, StreamRecord};
use crate::{LogsError, LogsService};

/// The values PutRetentionPolicy accepts.
pub const RETENTION_DAYS: [i32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// How often the background pass runs.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(60);

/// Event storage rows of streams no record names are collected once they are this old (a younger row may belong
/// to a stream whose creation is still under way).
const ORPHAN_AGE_MS: i64 = 10 * 60 * 1000;

/// Streams expired per event storage transaction.
const EXPIRE_CHUNK: usize = 64;

pub(crate) fn check_retention_days(days: i64) -> Result<i32, LogsError> {
    match RETENTION_DAYS.iter().find(|&&d| i64::from(d) == days) {
        Some(&d) => Ok(d),
        None => {
            let allowed: Vec<String> = RETENTION_DAYS.iter().map(|d| d.to_string()).collect();
            Err(LogsError::invalid(format!(
                "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: \
                 Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            )))
        }
    }
}

impl<S: Store> LogsService<S> {
    /// Deletes every event older than its group's retention at `now_ms`, and the events of streams that no longer
    /// exist. Returns how many events were deleted for retention.
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<u64, LogsError> {
        let mut cutoffs: HashMap<(String, String), i64> = HashMap::new();
        let mut streams: Vec<((String, String), u64)> = Vec::new();
        let mut referenced = HashSet::new();
        let mut complete = true;
        for kv in self.store.range(keys::ROOT) {
            match keys::parse(&kv.key) {
                Some(ParsedKey::Group { region, group }) => match decode::<GroupRecord>(&kv) {
                    Ok(record) => {
                        if let Some(cutoff) = record.cutoff(now_ms) {
                            cutoffs.insert((region, group), cutoff);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "skipping a log group record"),
                },
                Some(ParsedKey::Stream { region, group, .. }) => {
                    match decode::<StreamRecord>(&kv) {
                        Ok(record) => {
                            referenced.insert(record.id);
                            streams.push(((region, group), record.id));
                        }
                        Err(e) => {
                            // Its id is unknown: collecting unnamed events now could delete this stream's.
                            complete = false;
                            tracing::warn!(error = %e, "skipping a log stream record");
                        }
                    }
                }
                None => {}
            }
        }
        let work: Vec<(u64, i64)> = streams
            .into_iter()
            .filter_map(|(group, id)| cutoffs.get(&group).map(|&cutoff| (id, cutoff)))
            .collect();
        let orphans_before = now_ms.min(now_millis()) - ORPHAN_AGE_MS;
        self.blocking(move |ev| {
            let mut removed = 0;
            for chunk in work.chunks(EXPIRE_CHUNK) {
                removed += ev.expire(chunk)?;
            }
            if complete {
                let orphans: Vec<u64> = ev
                    .all_stats()?
                    .into_iter()
                    .filter(|(id, stats)| {
                        !referenced.contains(id) && stats.created < orphans_before
                    })
                    .map(|(id, _)| id)
                    .collect();
                if !orphans.is_empty() {
                    tracing::info!(
                        streams = orphans.len(),
                        "collecting events of deleted log streams"
                    );
                    ev.drop_streams(&orphans)?;
                }
            }
            Ok(removed)
        })
        .await
    }

    /// Runs [`LogsService::enforce_retention`] every [`RETENTION_INTERVAL`] whenever this server holds `lease`,
    /// until the task is aborted.
    pub fn spawn_retention(
        self: Arc<Self>,
        lease: gantry_store::lease::Lease,
    ) -> tokio::task::JoinHandle<()> {
        gantry_store::lease::spawn_leased(lease, move || {
            let svc = self.clone();
            async move { svc.run_retention().await }
        })
    }

    async fn run_retention(self: Arc<Self>) {
        let mut tick = tokio::time::interval(RETENTION_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.enforce_retention(now_millis()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(events = n, "deleted expired log events"),
                Err(e) => tracing::warn!(error = %e, "log retention pass failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_days() {
        assert_eq!(check_retention_days(1).unwrap(), 1);
        assert_eq!(check_retention_days(3653).unwrap(), 3653);
        for bad in [0, 2, -1, 4000, i64::MAX] {
            let e = check_retention_days(bad).unwrap_err().to_string();
            assert!(e.contains("enum value set: [1, 3, 5"), "{e}");
        }
    }
}
