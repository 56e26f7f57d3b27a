//! The I/O of a pass: the snapshot the plan reads, and its application batch by batch under the gate.

use super::plan::{plan, BlobFile, LinkRef, Plan, Snapshot};
use super::{GcOptions, GcPass, GcReport};
use crate::digest::Digest;
use crate::errors::{RegistryError, Result};
use crate::meta::now;
use crate::Registry;
use gantry_store::Store;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Digests re-checked and deleted under one exclusive guard: pushes wait at most one batch.
const BATCH: usize = 128;
const RETRIES: usize = 8;

impl<S: Store> Registry<S> {
    /// One whole pass now. Passes never overlap (the periodic one and the admin endpoint share this).
    pub async fn collect_garbage(&self, options: GcOptions) -> Result<GcReport> {
        let _one = self.gc_running.lock().await;
        let started = std::time::Instant::now();
        let pass = self.gc_plan(options, now()).await?;
        let report = self.gc_apply(&pass).await?;
        tracing::info!(
            blobs = report.blobs_removed,
            bytes = report.bytes_freed,
            links = report.links_removed,
            uploads = report.uploads_removed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "registry garbage collection"
        );
        Ok(report)
    }

    /// Decides what is garbage at `now`, without deleting anything.
    pub async fn gc_plan(&self, options: GcOptions, now: u64) -> Result<GcPass> {
        // Files first: a blob written after the listing is not a candidate.
        let blobs = self
            .blobs
            .list()
            .await?
            .into_iter()
            .map(|(d, size)| BlobFile {
                digest: d.to_string(),
                size,
            })
            .collect();
        let refs = self.meta.blob_references();
        let snapshot = Snapshot {
            blobs,
            manifests: refs.manifests,
            links: refs.links.into_iter().map(|(l, _)| l).collect(),
        };
        Ok(GcPass {
            now,
            options,
            plan: plan(&snapshot, now, options.link_grace_secs),
        })
    }

    /// Applies a decision: per batch of digests, under the exclusive guard, reads the metadata again and deletes
    /// only what is still garbage; then ends idle upload sessions and removes stray staged files.
    pub async fn gc_apply(&self, pass: &GcPass) -> Result<GcReport> {
        let mut by_digest: BTreeMap<&str, (Vec<&LinkRef>, Option<&BlobFile>)> = BTreeMap::new();
        for l in &pass.plan.links {
            by_digest.entry(&l.digest).or_default().0.push(l);
        }
        for b in &pass.plan.blobs {
            by_digest.entry(&b.digest).or_default().1 = Some(b);
        }
        let entries: Vec<_> = by_digest.into_iter().collect();
        let mut report = GcReport::default();
        for batch in entries.chunks(BATCH) {
            let links: Vec<LinkRef> = batch
                .iter()
                .flat_map(|(_, (l, _))| l.iter().map(|l| (*l).clone()))
                .collect();
            let blobs: Vec<BlobFile> = batch.iter().filter_map(|(_, (_, b))| b.cloned()).collect();
            self.apply_batch(pass, &links, blobs, &mut report).await?;
        }
        let expiry = pass.options.upload_expiry_secs;
        let (n, bytes) = self.uploads.expire(pass.now, expiry).await;
        report.uploads_removed += n;
        report.bytes_freed += bytes;
        let (_, bytes) = self.uploads.remove_strays(pass.now, expiry).await?;
        report.bytes_freed += bytes;
        Ok(report)
    }

    async fn apply_batch(
        &self,
        pass: &GcPass,
        planned_links: &[LinkRef],
        planned_blobs: Vec<BlobFile>,
        report: &mut GcReport,
    ) -> Result<()> {
        let planned: HashSet<(&str, &str)> = planned_links
            .iter()
            .map(|l| (l.repo.as_str(), l.digest.as_str()))
            .collect();
        let _gate = self.meta.gate().exclusive().await;
        for _ in 0..RETRIES {
            // No linking path runs now: what the store says is all there is.
            let refs = self.meta.blob_references();
            let snapshot = Snapshot {
                blobs: planned_blobs.clone(),
                manifests: refs.manifests,
                links: refs.links.iter().map(|(l, _)| l.clone()).collect(),
            };
            let Plan { links, blobs } = plan(&snapshot, pass.now, pass.options.link_grace_secs);
            let still: HashSet<(&str, &str)> = links
                .iter()
                .map(|l| (l.repo.as_str(), l.digest.as_str()))
                .filter(|k| planned.contains(k))
                .collect();
            let kvs: Vec<_> = refs
                .links
                .iter()
                .filter(|(l, _)| still.contains(&(l.repo.as_str(), l.digest.as_str())))
                .map(|(_, kv)| kv.clone())
                .collect();
            if !self.meta.delete_links_unchanged(&kvs).await? {
                // A link was removed meanwhile (an unlink, a repository deletion): look again.
                continue;
            }
            report.links_removed += kvs.len() as u64;
            for b in blobs {
                let Some(digest) = Digest::parse(&b.digest) else {
                    continue;
                };
                if let Some(size) = self.blobs.remove(&digest).await? {
                    report.blobs_removed += 1;
                    report.bytes_freed += size;
                }
            }
            return Ok(());
        }
        Err(RegistryError::Conflict)
    }

    /// Runs a pass every `interval` (the first one `interval` after the start) whenever this server holds `lease`;
    /// failures are logged.
    pub fn spawn_gc(
        self: Arc<Self>,
        interval: Duration,
        options: GcOptions,
        lease: gantry_store::lease::Lease,
    ) -> tokio::task::JoinHandle<()> {
        gantry_store::lease::spawn_leased(lease, move || {
            let registry = self.clone();
            async move {
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if let Err(e) = registry.collect_garbage(options).await {
                        tracing::warn!(error = %e, "registry garbage collection failed");
                    }
                }
            }
        })
    }
}

impl<S: Store> Registry<S> {
    /// The gate linking paths share with the collector (for tests that hold a linking step open).
    pub fn gc_gate(&self) -> &super::gate::Gate {
        self.meta.gate()
    }
}
