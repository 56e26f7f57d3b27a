//! The lifecycle job: every interval, applies each repository's lifecycle policy and deletes the images it expires
//! (the manifest and its tags; the blobs stay for the garbage collector).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gantry_store::lease::{spawn_leased, Lease};
use gantry_store::Store;
use tokio::task::JoinHandle;

use super::evaluate::{evaluate, Image};
use super::images::images_of;
use super::policy::parse_policy;
use crate::digest::Digest;
use crate::errors::Result;
use crate::meta::{now, Meta};
use crate::Registry;

/// Runs [`run_once`] whenever this server holds `lease`: at once and then every `interval`, for as long as the
/// runtime lives. The first run is at start so that a server restarted more often than the interval still applies
/// its policies.
pub fn spawn_lifecycle<S: Store>(
    registry: Arc<Registry<S>>,
    interval: Duration,
    lease: Lease,
) -> JoinHandle<()> {
    spawn_leased(lease, move || {
        let registry = registry.clone();
        async move {
            let mut ticks = tokio::time::interval(interval);
            // After a long run, wait a whole interval again rather than catching up in a burst.
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let expired = run_once(&registry, now()).await;
                if expired > 0 {
                    tracing::info!(expired, "lifecycle policies expired images");
                }
            }
        }
    })
}

/// Applies every repository's lifecycle policy as of `now` (epoch seconds); returns how many images it expired. A
/// repository that fails is logged and skipped, so that one bad repository does not stop the others.
pub async fn run_once<S: Store>(registry: &Registry<S>, now: u64) -> usize {
    let mut total = 0;
    for repo in registry.meta.repos() {
        let Some(text) = repo.lifecycle_policy.as_deref() else {
            continue;
        };
        match apply(&registry.meta, &repo.name, text, now).await {
            Ok(n) => total += n,
            Err(e) => {
                tracing::warn!(repository = %repo.name, error = %e, "lifecycle policy not applied")
            }
        }
    }
    total
}

/// The images of repository `name` as the lifecycle evaluator sees them.
pub(crate) fn current_images<S: Store>(meta: &Meta<S>, name: &str) -> Vec<Image> {
    images_of(&meta.manifests(name), &meta.tag_records(name))
}

async fn apply<S: Store>(meta: &Meta<S>, name: &str, text: &str, now: u64) -> Result<usize> {
    let policy = match parse_policy(text) {
        Ok(p) => p,
        Err(e) => {
            // Checked when it was put; a policy stored by an older, laxer version is left alone, not guessed at.
            tracing::warn!(repository = %name, error = %e, "stored lifecycle policy is invalid");
            return Ok(0);
        }
    };
    let images = current_images(meta, name);
    let by_digest: HashMap<&str, &Image> = images.iter().map(|i| (i.digest.as_str(), i)).collect();
    let mut expired = 0;
    for e in evaluate(&policy, &images, now) {
        let (Some(digest), Some(image)) =
            (Digest::parse(&e.digest), by_digest.get(e.digest.as_str()))
        else {
            continue;
        };
        if meta
            .delete_manifest_if_tags(name, &digest, &image.tags)
            .await?
        {
            tracing::info!(repository = %name, digest = %e.digest, rule_priority = e.rule_priority,
                "image expired by lifecycle policy");
            expired += 1;
        }
    }
    meta.update_repo(name, |r| r.lifecycle_evaluated_at = Some(now))
        .await?;
    Ok(expired)
}
